"""The machinery every ``polarlinalg.torch`` optimizer shares.

:class:`_MatrixOptimizer` validates param groups (before they are added),
checks every gradient before any state changes, routes parameters to the
matrix rule or to AdamW, keeps state dtypes through ``state_dict``, and hands
parameters on a process group to :mod:`polarlinalg._distributed.torch_step`.
Subclasses say which matrix rule a group has and how it steps.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import array_api_compat.torch as torch_namespace
import torch
from torch.optim import Optimizer

from polarlinalg._compat import array_namespace
from polarlinalg._dtypes import state_dtype
from polarlinalg._rules import (
    AdamWRule,
    PolarGradRule,
    adamw_direction,
    as_matrices,
    check_lr,
    check_weight_decay,
    choose_rule,
    polargrad_direction_parts,
)
from polarlinalg._rules.finite import non_finite_error
from polarlinalg._rules.hyperparams import (
    check_compute_dtype,
    check_pair,
)

__all__ = ["ParamsT"]

ParamsT = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def _xp(x: torch.Tensor) -> Any:
    """Return the Array API namespace of torch tensors (array-api-compat's wrapper)."""
    return array_namespace(x)


def _state_dtype(p: torch.Tensor) -> torch.dtype:
    return state_dtype(_xp(p), p.dtype)


def _check_lr(value: Any, name: str = "lr") -> None:
    """:func:`check_lr`, also for a tensor, which must have one element (as torch.optim's)."""
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a number or a 1-element tensor; got a tensor of shape "
                f"{tuple(value.shape)}"
            )
        value = value.detach().reshape(())
    check_lr(value, name)


def _distributed() -> Any:
    """Return the distributed step module when a process group is initialised, else None.

    The single-process path pays two function calls per step for this; the
    module (and ``torch.distributed.tensor``) is imported only when needed.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    from polarlinalg._distributed import torch_step

    return torch_step


class _MatrixOptimizer(Optimizer):
    """Shared machinery: param-group validation, bucketing, the two rules, state dtypes."""

    _rule_keys: tuple[str, ...] = ()

    def _matrix_rule(self, group: Mapping[str, Any]) -> PolarGradRule:
        raise NotImplementedError

    def _rule(self, group: Mapping[str, Any]) -> PolarGradRule:
        """Build the matrix rule of ``group``, its ``compute_dtype`` checked against torch's."""
        check_compute_dtype(group["compute_dtype"], group["method"], torch_namespace)
        return self._matrix_rule(group)

    def _check_group(self, group: Mapping[str, Any]) -> None:
        """Raise for invalid hyper-parameters or parameters of ``group``."""
        _check_lr(group["lr"])
        check_weight_decay(group["weight_decay"])
        if group.get("batch") not in (None, True, False):
            raise ValueError(f"batch must be None, True or False; got {group['batch']!r}")
        if group.get("distributed", True) not in (True, False):
            raise ValueError(f"distributed must be True or False; got {group['distributed']!r}")
        self._rule(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_group(group)
        except Exception:
            self.param_groups.pop()
            raise

    def _cached_rule(self, group: dict[str, Any]) -> PolarGradRule:
        key = tuple(repr(group[k]) for k in self._rule_keys)
        cached = group.get("_polarlinalg_rule")
        if cached is None or cached[0] != key:
            cached = (key, self._rule(group))
            group["_polarlinalg_rule"] = cached
        return cached[1]

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        for group in out["param_groups"]:
            group.pop("_polarlinalg_rule", None)
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load ``state_dict``, keeping each state tensor's saved dtype.

        ``torch.optim.Optimizer.load_state_dict`` casts floating state to the
        parameter's dtype, which would round the float32 momentum of a
        bfloat16 parameter; here it is restored at its saved dtype (moved to
        the parameter's device).  Every tensor is copied, ``step`` too: torch
        keeps the given ``step`` tensors, so two optimizers loaded from one
        in-memory ``state_dict`` would count each other's steps.
        """
        saved_ids = itertools.chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = itertools.chain.from_iterable(g["params"] for g in self.param_groups)
        id_map = dict(zip(saved_ids, params, strict=False))
        saved_state = state_dict["state"]
        super().load_state_dict(state_dict)
        for sid, p in id_map.items():
            for key, value in saved_state.get(sid, {}).items():
                if key == "step" and torch.is_tensor(value):  # own copy: never shared
                    self.state[p][key] = value.detach().clone()
                    continue
                restored = _restore(value, p.device)
                if restored is not None:
                    self.state[p][key] = restored

    # -- step -------------------------------------------------------------------------------

    def _describe(self, group: int, index: int) -> str:
        """Name a parameter in errors: by name when the groups have names, else by position."""
        names = self.param_groups[group].get("param_names")
        p = self.param_groups[group]["params"][index]
        where = repr(names[index]) if names else f"{index} of param group {group}"
        return f"parameter {where} (shape {tuple(p.shape)})"

    def _choose(self, group: Mapping[str, Any], p: torch.Tensor) -> str:
        return choose_rule(
            group.get("rule", "auto"), p.ndim, name=f"parameter of shape {tuple(p.shape)}"
        )

    def _gather(self) -> list[tuple[dict[str, Any], PolarGradRule, list, list]]:
        """Check every gradient first, so a bad one raises before any state changes.

        With ``check_finite``, the gradients of every parameter the step
        touches (matrix and AdamW alike) are checked in one device
        synchronisation.
        """
        work = []
        checked: list[tuple[int, int, torch.Tensor]] = []  # (group, position, parameter)
        for index, group in enumerate(self.param_groups):
            rule = self._cached_rule(group)
            matrices, vectors = [], []
            for i, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(
                        f"{type(self).__name__} does not support sparse gradients: the gradient "
                        f"of {self._describe(index, i)} is sparse; use a dense embedding or "
                        "torch.optim.SparseAdam for it"
                    )
                if self._choose(group, p) == "polargrad":
                    matrices.append(p)
                else:
                    vectors.append(p)
                if group.get("check_finite", False):
                    checked.append((index, i, p))
            work.append((group, rule, matrices, vectors))
        if checked:
            distributed = _distributed()
            grads = [p.grad for *_, p in checked]
            if distributed is None:
                flags = torch.stack([torch.isfinite(g).all() for g in grads])
            else:  # every rank must agree, also on the shards it does not hold
                flags = distributed.finite_flags(grads)
            if not bool(flags.all()):
                index, i, _ = checked[int(torch.argmin(flags.to(torch.int8)))]
                raise non_finite_error(self._describe(index, i))
        return work

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Take one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = self._gather()
        distributed = _distributed()
        for group, rule, matrices, vectors in work:
            if matrices and distributed is not None:
                matrices = self._distributed_step(distributed, group, rule, matrices)
            if matrices:
                self._matrix_step(group, rule, matrices)
            if vectors:
                self._adamw_step(group, vectors, None if distributed is None else distributed.local)
        return loss

    def _distributed_step(
        self, distributed: Any, group: dict[str, Any], rule: Any, params: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Step the matrices that live on a process group; return those left to this rank."""
        return distributed.matrix_step(self, group, rule, params, _apply)

    def _matrix_step(
        self, group: dict[str, Any], rule: PolarGradRule, params: list[torch.Tensor]
    ) -> None:
        buckets: dict[tuple[Any, ...], list[torch.Tensor]] = {}
        batch = group.get("batch")
        for p in params:
            shape = tuple(as_matrices(p.grad, rule.flatten).shape)
            together = p.grad.device.type != "cpu" if batch is None else batch
            key = (shape, p.grad.dtype, p.grad.device, None if together else id(p))
            buckets.setdefault(key, []).append(p)
        lr, wd = group["lr"], group["weight_decay"]
        for (shape, *_), bucket in buckets.items():
            grads = _stack([as_matrices(p.grad, rule.flatten) for p in bucket])
            bufs = None
            if rule.has_buffer:
                for p in bucket:
                    if "momentum_buffer" not in self.state[p]:
                        self.state[p]["momentum_buffer"] = torch.zeros_like(
                            p, dtype=_state_dtype(p), memory_format=torch.contiguous_format
                        )
                bufs = _stack([self.state[p]["momentum_buffer"].reshape(shape) for p in bucket])
            direction, constant, bufs = polargrad_direction_parts(_xp(grads), rule, grads, bufs)
            if bufs is not None:
                torch._foreach_copy_(
                    [self.state[p]["momentum_buffer"] for p in bucket],
                    [
                        b.reshape(p.shape)
                        for b, p in zip(_unstack(bufs, len(bucket)), bucket, strict=True)
                    ],
                )
            if not isinstance(constant, (int, float)):
                direction, constant = direction * constant, 1.0
            updates = [
                d.reshape(p.shape).to(p.dtype)
                for d, p in zip(_unstack(direction, len(bucket)), bucket, strict=True)
            ]
            _apply(bucket, updates, lr, wd, constant)

    def _adamw_step(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        local: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """AdamW on ``params``; ``local`` maps a DTensor to this rank's shard (elementwise)."""
        lr = group["lr"] if group.get("adamw_lr") is None else group["adamw_lr"]
        rule = _adamw_rule(group)
        updates = []
        targets = params
        for p in params:
            state = self.state[p]
            if "step" not in state:
                dtype = _state_dtype(p)
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, dtype=dtype)
                real = torch.empty(0, dtype=dtype).real.dtype
                state["exp_avg_sq"] = torch.zeros_like(p, dtype=real)
            state["step"] += 1
            count = state["step"].to(state["exp_avg_sq"].dtype)  # float64 for float64 params
            grad, exp_avg, exp_avg_sq = p.grad, state["exp_avg"], state["exp_avg_sq"]
            if local is not None:
                grad, exp_avg, exp_avg_sq = local(grad), local(exp_avg), local(exp_avg_sq)
            d, mu, nu = adamw_direction(_xp(grad), rule, grad, exp_avg, exp_avg_sq, count)
            exp_avg.copy_(mu)
            exp_avg_sq.copy_(nu)
            updates.append(d.to(p.dtype))
        if local is not None:
            targets = [local(p) for p in params]
        _apply(targets, updates, lr, group.get("adamw_weight_decay", 0.0))


def _restore(value: Any, device: torch.device) -> Any:
    """Return saved floating state copied at its own dtype (tuples too), else None."""
    if torch.is_tensor(value):
        return value.to(device=device, copy=True) if value.is_floating_point() else None
    if isinstance(value, (tuple, list)) and value and all(torch.is_tensor(v) for v in value):
        return type(value)(v.to(device=device, copy=True) for v in value)
    return None


def _adamw_rule(group: Mapping[str, Any]) -> AdamWRule:
    """Return the AdamW hyper-parameters of ``group``, validated."""
    b1, b2 = check_pair("adamw_betas", group.get("adamw_betas", (0.9, 0.999)))
    return AdamWRule(b1=b1, b2=b2, eps=group.get("adamw_eps", 1e-8))


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack along a new first axis; a single tensor is returned as it is.

    A single matrix stays 2-D: no copy, and 2-D products (``addmm``) are
    faster than batched ones of batch size 1 on CPUs.
    """
    return tensors[0] if len(tensors) == 1 else torch.stack(tensors)


def _unstack(stacked: torch.Tensor, count: int) -> list[torch.Tensor]:
    """Invert :func:`_stack`."""
    return [stacked] if count == 1 else list(stacked.unbind(0))


def _apply(
    params: list[torch.Tensor], updates: list[torch.Tensor], lr: Any, wd: Any, scale: float = 1.0
) -> None:
    """``p ← (1 − lr·wd) p − lr·scale·u`` for each pair, with foreach kernels."""
    if torch.is_tensor(lr) and lr.ndim:  # a 1-element tensor; foreach kernels need it 0-d
        lr = lr.reshape(())
    if wd != 0:
        torch._foreach_mul_(params, 1 - lr * wd)
    if torch.is_tensor(lr):
        torch._foreach_sub_(params, torch._foreach_mul(updates, lr * scale))
    else:
        torch._foreach_add_(params, updates, alpha=-lr * scale)
