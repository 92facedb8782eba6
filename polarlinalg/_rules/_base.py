"""The contract every preconditioner rule follows, and the registry of rules.

A *rule* is a frozen dataclass of hyper-parameters (never the learning rate
or the weight decay, which belong to the wrapper and its schedules) with four
methods that take the array namespace explicitly and return new arrays::

    rule.check_param(shape, dtype_name)        -> None (raise for what it cannot do)
    rule.init(xp, param)                       -> State (a NamedTuple of arrays)
    rule.update(xp, grad, state, count, cond)  -> (direction D, new State)
    rule.increment(xp, param, D, lr, wd, count) -> Δ, the change of the parameter

``count`` is the step number ``t ≥ 1`` of this parameter (a Python int, or a
0-d integer array under ``jax.jit``).  Amortized work (a new Shampoo root, a
new SOAP eigenbasis) depends on ``count``; the rule decides *where* it sits in
the step and calls ``cond(pred, true_fn, false_fn, operand)`` for it, and the
wrapper decides *how* to branch: :func:`eager_cond` (a Python ``if``) for
PyTorch and the functional optimizer, ``jax.lax.cond`` under optax, so the
amortized work really is skipped on the other steps in both.

``State`` field names are the ``torch.optim`` state keys; a field may hold a
tuple of arrays (one per tensor mode or block).  The default
:meth:`MatrixRule.increment` is decoupled weight decay with the unscaled
learning rate, ``Δ = −γ(λX + D)``; a rule whose reference decays after the
step (SOAP) overrides it.

The wrappers (``polarlinalg.torch``, ``polarlinalg.optax``,
``polarlinalg.optim``) each have one generic adapter that runs any rule, so
adding an optimizer means writing its rule, its signatures and its tests.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

__all__ = ["MatrixRule", "eager_cond", "static_int", "static_number"]

Cond = Callable[[Any, Callable[[Any], Any], Callable[[Any], Any], Any], Any]


def eager_cond(pred: Any, true_fn: Callable[[Any], Any], false_fn: Callable[[Any], Any], x: Any):
    """``true_fn(x) if pred else false_fn(x)``: the branch for eager arrays and host counts."""
    return true_fn(x) if bool(pred) else false_fn(x)


def static_number(name: str, value: Any) -> float:
    """Return ``value`` as a float; arrays are refused, the rule fixes the computation with it.

    Raises TypeError naming ``name`` (and, for optax users, ``static_args``).
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise TypeError(
        f"{name} must be a Python number; got {value!r} (it shapes the computation: under "
        f"optax.inject_hyperparams list it in static_args{_OPTAX_NAME.get(name, '')})"
    )


_OPTAX_NAME = {"betas[0]": " (optax's name: b1)", "betas[1]": " (optax's name: b2)"}


def static_int(name: str, value: Any, *, optional: bool = False) -> int | None:
    """Return ``value`` as a positive Python int (None when ``optional``); arrays are refused.

    Raises ValueError for a non-positive or non-integral number, TypeError
    (naming ``static_args``) for an array.
    """
    if value is None and optional:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
        return int(value)
    if hasattr(value, "shape"):
        raise TypeError(
            f"{name} must be a Python int; got an array (it shapes the computation: under "
            f"optax.inject_hyperparams list it in static_args)"
        )
    raise ValueError(f"{name} must be a positive integer; got {value!r}")


class MatrixRule:
    """Base of the rules for parameters with at least two dimensions.

    Subclasses are frozen dataclasses that validate in ``__post_init__`` and
    set :attr:`name` and :attr:`state_type`.
    """

    name: ClassVar[str] = ""
    """The rule's label (``"shampoo"``, ``"soap"``, ``"normuon"``)."""

    state_type: ClassVar[type] = tuple
    """The NamedTuple type of the per-parameter state."""

    def check_param(self, shape: tuple[int, ...], dtype: Any, xp: ModuleType) -> None:
        """Raise ValueError/TypeError for a parameter this rule cannot update."""
        if len(shape) < 2:
            raise ValueError(
                f"{self.name} needs parameters with at least 2 dimensions; got shape {shape} "
                "(the wrappers send such parameters to AdamW)"
            )
        if xp.isdtype(dtype, "complex floating"):
            raise TypeError(
                f"{self.name} does not support complex parameters (shape {shape}); use "
                "PolarGrad or Muon, whose polar factor is defined for complex matrices"
            )
        if not xp.isdtype(dtype, "real floating"):
            raise TypeError(f"{self.name} needs floating parameters; got dtype {dtype}")

    def init(self, xp: ModuleType, param: Any) -> Any:
        """Return the initial state of ``param``."""
        raise NotImplementedError

    def update(
        self, xp: ModuleType, grad: Any, state: Any, count: Any, cond: Cond = eager_cond
    ) -> tuple[Any, Any]:
        """Return ``(D, new state)`` for step ``count`` with gradient ``grad``."""
        raise NotImplementedError

    def increment(
        self, xp: ModuleType, param: Any, direction: Any, lr: Any, weight_decay: Any, count: Any
    ) -> Any:
        """Return ``Δ`` with ``X ← X + Δ``: here ``Δ = −γ(λX + D)``, ``D`` cast to ``X``'s dtype."""
        del count
        if direction.dtype != param.dtype:
            direction = xp.astype(direction, param.dtype)
        if isinstance(weight_decay, numbers.Real) and float(weight_decay) == 0.0:
            return -lr * direction
        return -lr * (weight_decay * param + direction)
