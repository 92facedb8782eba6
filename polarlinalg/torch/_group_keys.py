"""Which param-group keys a ``polarlinalg.torch`` optimizer takes, and the check of the others.

A param group may carry the optimizer's own keys (its ``defaults``, the
fields of its rule), keys that torch itself reads or writes (``params``,
``param_names``; ``initial_lr``, ``max_lr``, ``min_lr``, ``max_momentum``,
``base_momentum`` and ``swa_lr`` from the schedulers; the flags and
hyper-parameters of ``torch.optim``'s optimizers) and metadata of the user's
(``name``, ``layer``, ...).  Two kinds of key are refused, because a group
that carries them would silently change nothing:

* a hyper-parameter of another ``polarlinalg.torch`` optimizer that this one
  does not take (``split`` on :class:`~polarlinalg.torch.Shampoo`,
  ``momentum`` on :class:`~polarlinalg.torch.SOAP`, ``eps`` on
  :class:`~polarlinalg.torch.PolarGrad`); these take precedence over
  ``torch.optim``'s keys of the same name;
* a near miss of one of this optimizer's keys (``momentun``,
  ``weight_decy``), found with :func:`difflib.get_close_matches`.

The keys of every optimizer are read from its constructor's signature and
its rule's fields, so a new keyword is known as soon as it exists.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import torch

__all__ = ["TORCH_WRITTEN", "check_group_keys", "class_keys", "torch_keys"]

TORCH_WRITTEN: frozenset[str] = frozenset(
    {
        "params",
        "param_names",
        "initial_lr",  # every LRScheduler
        "max_lr",  # OneCycleLR
        "min_lr",  # OneCycleLR
        "max_momentum",  # OneCycleLR, CyclicLR
        "base_momentum",  # OneCycleLR, CyclicLR
        "swa_lr",  # torch.optim.swa_utils.SWALR
    }
)
"""Keys that torch writes into param groups itself."""

_CUTOFF = 0.8
"""Similarity (:class:`difflib.SequenceMatcher` ratio) from which a key is a near miss:
``momentun``/``momentum`` is 0.875, ``ns_step``/``ns_steps`` 0.93; user metadata such as
``name`` or ``lr_scale`` stays far below against every key of ours."""


@functools.cache
def torch_keys() -> frozenset[str]:
    """Return the keyword names of every ``torch.optim`` optimizer, and :data:`TORCH_WRITTEN`."""
    keys = set(TORCH_WRITTEN) | {"differentiable", "foreach", "fused", "maximize", "capturable"}
    for name in dir(torch.optim):
        cls = getattr(torch.optim, name)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer):
            keys.update(_keywords(cls))
    return frozenset(keys)


def _keywords(cls: type) -> set[str]:
    """Return the keyword names of ``cls.__init__`` but ``self``, ``params``, ``defaults``."""
    try:
        parameters = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):  # a C-level or otherwise opaque signature
        return set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in kinds} - {"self", "params", "defaults"}


def class_keys(cls: type) -> frozenset[str]:
    """Return the param-group keys of a ``polarlinalg.torch`` optimizer class.

    Its constructor's keywords, its ``_rule_keys`` (the rule's fields) and its
    ``_group_defaults``.
    """
    keys = _keywords(cls) | set(getattr(cls, "_rule_keys", ())) | set(cls._group_defaults)
    return frozenset(keys)


def _concrete_subclasses(base: type) -> Iterable[type]:
    for cls in base.__subclasses__():
        if cls.__module__.startswith("polarlinalg.") and "__init__" in vars(cls):
            yield cls
        yield from _concrete_subclasses(cls)


def _owners(base: type) -> dict[str, list[str]]:
    """Map every key of a ``polarlinalg`` optimizer derived from ``base`` to its classes."""
    owners: dict[str, list[str]] = {}
    for cls in _concrete_subclasses(base):
        for key in class_keys(cls):
            names = owners.setdefault(key, [])
            if cls.__name__ not in names:
                names.append(cls.__name__)
    return owners


def check_group_keys(group: Mapping[str, Any], own: Iterable[str], owner: str, base: type) -> None:
    """Raise ValueError for a key of ``group`` that ``owner`` would silently ignore.

    Parameters
    ----------
    group : mapping
        The param group.
    own : iterable of str
        The keys ``owner`` takes.
    owner : str
        The optimizer's class name, for the message.
    base : type
        The base class of the ``polarlinalg.torch`` optimizers, whose
        subclasses' keys are the polarlinalg hyper-parameters.
    """
    own = set(own)
    others: dict[str, list[str]] | None = None
    for key in group:
        if key in own or key in TORCH_WRITTEN or not isinstance(key, str) or key.startswith("_"):
            continue
        close = difflib.get_close_matches(key, sorted(own), n=1, cutoff=_CUTOFF)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if others is None:
            others = _owners(base)
        if key in others:
            where = ", ".join(sorted(others[key]))
            raise ValueError(
                f"param-group key {key!r} is a hyper-parameter of polarlinalg.torch.{where}, "
                f"not of {owner}, which would ignore it{hint}"
            )
        if close and key not in torch_keys():
            raise ValueError(f"unknown param-group key {key!r} for {owner}{hint}")
