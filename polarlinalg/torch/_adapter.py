"""One ``torch.optim`` adapter that runs any :class:`~polarlinalg._rules._base.MatrixRule`.

A named optimizer (:class:`~polarlinalg.torch.Shampoo`, ``SOAP``, ``NorMuon``)
is a signature: it puts its keywords in ``defaults`` and names its rule class.
Group keys are ``lr``, ``weight_decay``, the routing and AdamW keys, and the
rule's dataclass fields; the rule of a group is built from them (and
validated) when the group is added.  Per parameter the state holds ``step``
(a float32 tensor, as torch's optimizers) and the fields of the rule's state
NamedTuple under their own names (a field may be a tuple of tensors).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import array_api_compat.torch as torch_namespace
import torch

from polarlinalg._distributed.state_lists import tuple_fields_as_lists
from polarlinalg._rules._base import MatrixRule
from polarlinalg._rules.hyperparams import check_choice, check_flag, check_weight_decay
from polarlinalg.torch._base import (
    ParamsT,
    _adamw_rule,
    _check_lr,
    _distributed,
    _MatrixOptimizer,
    _xp,
)

__all__ = ["RuleOptimizer", "defaults_of"]


def _rule_fields(rule_cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(rule_cls))


class RuleOptimizer(_MatrixOptimizer):
    """A ``torch.optim.Optimizer`` stepping matrices with ``rule_cls`` and the rest with AdamW.

    Subclasses set :attr:`rule_cls` and pass every keyword in ``defaults``.
    """

    rule_cls: ClassVar[type] = MatrixRule

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._rule_keys = _rule_fields(cls.rule_cls)

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        super().__init__(params, defaults)
        # tuple state fields (Shampoo's statistics, SOAP's bases) as lists in state dicts,
        # as under a process group: torch.distributed.checkpoint saves list elements one by
        # one, so a checkpoint saved at any world size loads into a single process
        self.register_state_dict_post_hook(tuple_fields_as_lists)

    # -- the rule of a group ------------------------------------------------------------------

    def _rule_kwargs(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """Return the rule's constructor arguments from ``group`` (a subclass may translate)."""
        return {name: group[name] for name in self._rule_keys}

    def _rule(self, group: Mapping[str, Any]) -> Any:
        return self.rule_cls(**self._rule_kwargs(group))

    def _choose(self, group: Mapping[str, Any], p: torch.Tensor) -> str:
        """``"polargrad"`` (the base class's label for the matrix rule) or ``"adamw"``."""
        name = self.rule_cls.name
        choice = check_choice("rule", group.get("rule", "auto"), ("auto", name, "adamw"))
        if choice == "adamw" or (choice == "auto" and p.ndim < 2):
            return "adamw"
        if p.ndim < 2:
            raise ValueError(
                f"parameter of shape {tuple(p.shape)} has {p.ndim} dimension(s); {name} needs "
                "at least 2 (send it to rule='adamw' or leave rule='auto')"
            )
        return "polargrad"

    def _check_group(self, group: Mapping[str, Any]) -> None:
        super()._check_group(group)
        check_flag("check_finite", group["check_finite"])
        if group["adamw_lr"] is not None:
            _check_lr(group["adamw_lr"], "adamw_lr")
        check_weight_decay(group["adamw_weight_decay"], "adamw_weight_decay")
        _adamw_rule(group)
        rule = self._rule(group)
        for p in group["params"]:
            if self._choose(group, p) == "polargrad":
                rule.check_param(tuple(p.shape), p.dtype, torch_namespace)

    # -- the step -----------------------------------------------------------------------------

    def _distributed_step(
        self, distributed: Any, group: dict[str, Any], rule: Any, params: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return distributed.rule_step(self, group, rule, params)

    def _count(self, p: torch.Tensor) -> int:
        """Advance and return the step count ``t ≥ 1`` of ``p``."""
        state = self.state[p]
        if "step" not in state:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
        state["step"] += 1
        return int(state["step"])

    def _direction(self, rule: Any, p: torch.Tensor, grad: torch.Tensor, count: int) -> Any:
        """Run the rule on ``grad`` (whole) with ``p``'s state; return the direction."""
        state = self.state[p]
        xp = _xp(grad)
        fields = rule.state_type._fields
        _init_rule_state(state, rule, grad)
        current = rule.state_type(*(state[key] for key in fields))
        direction, new = rule.update(xp, grad, current, count)
        for key, value in zip(fields, new, strict=True):
            state[key] = _store(state[key], value)
        return direction

    def _init_matrix_state(self, p: torch.Tensor, rule: Any, bufs: list[torch.Tensor]) -> None:
        """Create the step count and rule state of matrix ``p`` if missing (``bufs`` unused).

        Across processes only the owner of a matrix holds its rule state, so
        there it is created on the first step instead (:meth:`_direction`).
        """
        if _distributed() is not None:
            return
        state = self.state[p]
        if "step" not in state:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
        _init_rule_state(state, rule, p.grad)

    # Under torch.compile the rule step runs eagerly, once per step for every group (one
    # graph break outside the loop over the groups, so the rest of the step is compiled
    # once): its branch on the step count (amortized roots and bases) needs the count on
    # the host, and TorchDynamo 2.13 replayed the count's in-place increment around such a
    # break (steps counted twice, states mixed up).  The AdamW step stays compiled.
    @torch.compiler.disable
    def _matrix_steps(self, jobs: list[tuple[Any, ...]]) -> None:
        for group, rule, params, *_ in jobs:
            self._matrix_step(group, rule, params)

    def _matrix_step(self, group: dict[str, Any], rule: Any, params: list[torch.Tensor]) -> None:
        lr, wd = _scalar(group["lr"]), group["weight_decay"]
        for p in params:
            count = self._count(p)
            direction = self._direction(rule, p, p.grad, count)
            p.add_(rule.increment(_xp(p), p, direction, lr, wd, count))


def _init_rule_state(state: dict[str, Any], rule: Any, grad: torch.Tensor) -> None:
    """Put ``rule.init`` (for a gradient like ``grad``) in ``state`` unless it is there."""
    fields = rule.state_type._fields
    if fields[0] not in state:
        for key, value in zip(fields, rule.init(_xp(grad), grad), strict=True):
            state[key] = value


def _store(old: Any, new: Any) -> Any:
    """Return the state value to keep: ``old`` with ``new`` copied in when they match.

    Keeping the state tensors themselves (a tuple field element by element)
    lets a compiled step that guards on them (``torch.compile`` of the
    optimizer step guards on every state tensor) run without recompiling.
    """
    if torch.is_tensor(old) and torch.is_tensor(new):
        if old.shape == new.shape and old.dtype == new.dtype and old.device == new.device:
            return old if old is new else old.copy_(new)
        return new
    if isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new):
        return tuple(_store(o, n) for o, n in zip(old, new, strict=True))
    return new


def _scalar(lr: Any) -> Any:
    """Return a 1-element learning-rate tensor as 0-d (it broadcasts like a number)."""
    return lr.reshape(()) if torch.is_tensor(lr) and lr.ndim else lr


def defaults_of(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Return a named optimizer's ``locals()`` as ``defaults``: every keyword but ``params``."""
    skip = {"self", "params", "__class__"}
    return {
        k: (dict(v) if k == "method_options" and v is not None else v)
        for k, v in arguments.items()
        if k not in skip
    }
