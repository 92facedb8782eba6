"""The machinery every ``polarlinalg.torch`` optimizer shares.

:class:`_MatrixOptimizer` validates param groups (before they are added),
checks every gradient before any state changes, routes parameters to the
matrix rule or to AdamW, keeps state dtypes through ``state_dict``, and hands
parameters on a process group to :mod:`polarlinalg._distributed.torch_step`.
Subclasses say which matrix rule a group has and how it steps.

The step follows ``torch.optim``'s layout so that ``torch.compile`` compiles
it once: :meth:`_MatrixOptimizer._init_group` routes the parameters of a group,
creates missing state and fills lists of tensors.  TorchDynamo runs a method
of that name eagerly while it traces an optimizer's ``step`` (and guards on
the param groups and the structure of ``state``), so the traced step holds
only tensor arithmetic on those lists, with no per-parameter guard.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

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
from polarlinalg.torch._group_keys import check_group_keys

__all__ = ["ParamsT"]

ParamsT = Iterable[torch.Tensor] | Iterable[dict[str, Any]]

_ADAMW_KEYS = ("adamw_lr", "adamw_betas", "adamw_eps", "adamw_weight_decay")

_SHARED_KEYS = ("distributed", "reference_lr")
"""Group keys every optimizer takes besides its ``defaults``: ``distributed`` (see
``docs/distributed.md``) and ``reference_lr`` (the group's ``lr`` when it was added,
against which ``adamw_lr`` follows the schedule)."""


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


def _as_float(value: Any) -> float:
    """Return a number or a 1-element tensor as a Python float (a copy, never an alias)."""
    if torch.is_tensor(value):
        return float(value.detach().reshape(()))
    return float(value)


def _distributed() -> Any:
    """Return the distributed step module when a process group is initialised, else None.

    The single-process path pays two function calls per step for this; the
    module (and ``torch.distributed.tensor``) is imported only when needed.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    from polarlinalg._distributed import torch_step

    return torch_step


def finite_by_device(grads: list[torch.Tensor]) -> torch.Tensor:
    """Return one bool per gradient on the host: True where every entry is finite.

    The gradients are reduced on their own devices, one stacked flag tensor
    and one device synchronisation per device, and the flags are combined on
    the host; gradients on the ``meta`` device hold no values and count as
    finite.
    """
    flags = torch.ones(len(grads), dtype=torch.bool)
    by_device: dict[torch.device, list[int]] = {}
    for i, g in enumerate(grads):
        by_device.setdefault(g.device, []).append(i)
    for device, index in by_device.items():
        if device.type == "meta":
            continue
        local = torch.stack([torch.isfinite(grads[i]).all() for i in index])
        flags[index] = local.to("cpu")
    return flags


class _MatrixOptimizer(Optimizer):
    """Shared machinery: param-group validation, bucketing, the two rules, state dtypes."""

    _rule_keys: tuple[str, ...] = ()
    _group_defaults: ClassVar[Mapping[str, Any]] = {}
    """Group keys (and defaults) a subclass takes besides its constructor's keywords."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        extra = {k: v for k, v in self._group_defaults.items() if k not in defaults}
        super().__init__(params, {**defaults, **extra})

    def _matrix_rule(self, group: Mapping[str, Any]) -> PolarGradRule:
        raise NotImplementedError

    def _rule(self, group: Mapping[str, Any]) -> Any:
        """Build the matrix rule of ``group``, its ``compute_dtype`` checked against torch's."""
        check_compute_dtype(group["compute_dtype"], group["method"], torch_namespace)
        return self._matrix_rule(group)

    # -- param groups -------------------------------------------------------------------------

    def _own_keys(self) -> set[str]:
        """Return the param-group keys this optimizer takes (see :mod:`._group_keys`)."""
        return {*self.defaults, *self._rule_keys, *self._group_defaults, *_SHARED_KEYS}

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
        """Add a param group, checked as the constructor's (nothing is kept if it raises).

        Keys of other ``polarlinalg.torch`` optimizers and near misses of this
        one's keys raise ValueError (:mod:`polarlinalg.torch._group_keys`).
        ``reference_lr`` is set to the group's ``lr`` unless given.
        """
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            check_group_keys(group, self._own_keys(), type(self).__name__, _MatrixOptimizer)
            self._check_group(group)
            group.setdefault("reference_lr", _as_float(group["lr"]))
            _check_lr(group["reference_lr"], "reference_lr")
        except Exception:
            self.param_groups.pop()
            raise

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore, filling the keys a saved group lacks (as ``torch.optim``'s optimizers).

        ``load_state_dict`` ends here too, so a state dict of
        ``torch.optim.Muon`` (or of an older polarlinalg) loads with this
        optimizer's defaults for the keys it does not have; ``reference_lr``
        falls back to the scheduler's ``initial_lr``, else the group's ``lr``.
        """
        super().__setstate__(state)
        self.__dict__.pop("_polarlinalg_rules", None)
        for group in self.param_groups:
            group.pop("_polarlinalg_rule", None)  # the rule cache of polarlinalg ≤ 0.x groups
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            if "reference_lr" not in group:
                group["reference_lr"] = _as_float(group.get("initial_lr", group["lr"]))

    def _cached_rules(self, index: int, group: Mapping[str, Any]) -> tuple[Any, AdamWRule]:
        """Return the (validated) matrix and AdamW rules of group ``index``, built once.

        They are kept on the optimizer, keyed by the group's position and
        rebuilt when one of their hyper-parameters changes (a scheduler that
        cycles ``momentum``, a manual change).
        """
        rules = self.__dict__.setdefault("_polarlinalg_rules", {})
        keys = (*self._rule_keys, *self._group_defaults, "adamw_betas", "adamw_eps")
        key = repr([group.get(k) for k in keys])
        cached = rules.get(index)
        if cached is None or cached[0] != key:
            cached = (key, self._rule(group), _adamw_rule(group))
            rules[index] = cached
        return cached[1], cached[2]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load ``state_dict``, keeping each state tensor's saved dtype.

        ``torch.optim.Optimizer.load_state_dict`` casts floating state to the
        parameter's dtype, which would round the float32 momentum of a
        bfloat16 parameter; here it is restored at its saved dtype (moved to
        the parameter's device).  Every tensor is copied, ``step`` too: torch
        keeps the given ``step`` tensors, so two optimizers loaded from one
        in-memory ``state_dict`` would count each other's steps.  Group keys
        the saved groups lack take this optimizer's defaults
        (:meth:`__setstate__`), so ``torch.optim.Muon``'s state dicts load
        into :class:`~polarlinalg.torch.Muon` with their momentum buffers.
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

    def _check_sparse(self, index: int, i: int, p: torch.Tensor) -> None:
        if p.grad.is_sparse:
            raise RuntimeError(
                f"{type(self).__name__} does not support sparse gradients: the gradient "
                f"of {self._describe(index, i)} is sparse; use a dense embedding or "
                "torch.optim.SparseAdam for it"
            )

    def _checks_finite(self) -> bool:
        for group in self.param_groups:
            if group.get("check_finite", False):
                return True
        return False

    @torch.compiler.disable
    def _check(self) -> None:
        """Check every group and gradient first, so bad input raises before any state changes.

        Builds (and so validates) the rules of every group, refuses sparse
        gradients and, with ``check_finite``, checks the gradients of every
        parameter the step touches (matrix and AdamW alike), reduced per
        device with one synchronisation each.  Under ``torch.compile`` this
        runs eagerly (one graph break), and only for ``check_finite``.
        """
        checked: list[tuple[int, int, torch.Tensor]] = []  # (group, position, parameter)
        for index, group in enumerate(self.param_groups):
            self._cached_rules(index, group)
            finite = group.get("check_finite", False)
            for i, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                self._check_sparse(index, i, p)
                if finite:
                    checked.append((index, i, p))
        if not checked:
            return
        distributed = _distributed()
        grads = [p.grad for *_, p in checked]
        if distributed is None:
            flags = finite_by_device(grads)
        else:  # every rank must agree, also on the shards it does not hold
            flags = distributed.finite_flags(grads)
        if not bool(flags.all()):
            index, i, _ = checked[int(torch.argmin(flags.to(torch.int8)))]
            raise non_finite_error(self._describe(index, i))

    def _init_matrix_state(self, p: torch.Tensor, rule: Any, bufs: list[torch.Tensor]) -> None:
        """Create the momentum buffer of matrix ``p`` if missing and append it to ``bufs``."""
        if not rule.has_buffer:
            return
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(
                p, dtype=_state_dtype(p), memory_format=torch.contiguous_format
            )
        bufs.append(state["momentum_buffer"])

    def _init_group(
        self,
        index: int,
        group: dict[str, Any],
        matrices: list[torch.Tensor],
        grads: list[torch.Tensor],
        bufs: list[torch.Tensor],
        vectors: list[torch.Tensor],
        vector_grads: list[torch.Tensor],
        exp_avgs: list[torch.Tensor],
        exp_avg_sqs: list[torch.Tensor],
        steps: list[torch.Tensor],
    ) -> None:
        """Route the parameters of group ``index`` with gradients, create missing state, fill lists.

        Matrices (and their gradients and momentum buffers) go to the first
        three lists, the AdamW parameters (gradients, moments, step counts) to
        the others.  Under ``torch.compile`` TorchDynamo runs this eagerly
        while tracing (``torch.optim``'s ``_init_group`` protocol): it must
        only append to the lists it is given.
        """
        rule, _ = self._cached_rules(index, group)
        for i, p in enumerate(group["params"]):
            if p.grad is None:
                continue
            self._check_sparse(index, i, p)
            if self._choose(group, p) == "polargrad":
                matrices.append(p)
                grads.append(p.grad)
                self._init_matrix_state(p, rule, bufs)
                continue
            state = self.state[p]
            if "step" not in state:
                dtype = _state_dtype(p)
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, dtype=dtype)
                real = torch.empty(0, dtype=dtype).real.dtype
                state["exp_avg_sq"] = torch.zeros_like(p, dtype=real)
            vectors.append(p)
            vector_grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Take one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not torch.compiler.is_compiling() or self._checks_finite():
            self._check()
        work = []
        for index, group in enumerate(self.param_groups):
            lists: tuple[list[torch.Tensor], ...] = ([], [], [], [], [], [], [], [])
            self._init_group(index, group, *lists)
            work.append((index, group, lists))
        distributed = _distributed()
        jobs = []
        for index, group, lists in work:
            matrices, grads, bufs, vectors, vector_grads, exp_avgs, exp_avg_sqs, steps = lists
            rule, adamw = self._polarlinalg_rules[index][1:]
            if matrices and distributed is not None:
                matrices = self._distributed_step(distributed, group, rule, matrices)
                grads = [p.grad for p in matrices]
                if bufs:
                    bufs = [self.state[p]["momentum_buffer"] for p in matrices]
            if matrices:
                jobs.append((group, rule, matrices, grads, bufs))
            if vectors:
                local = None if distributed is None else distributed.local
                self._adamw_step(
                    group, adamw, vectors, vector_grads, exp_avgs, exp_avg_sqs, steps, local
                )
        if jobs:
            self._matrix_steps(jobs)
        return loss

    def _distributed_step(
        self, distributed: Any, group: dict[str, Any], rule: Any, params: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Step the matrices that live on a process group; return those left to this rank."""
        return distributed.matrix_step(self, group, rule, params, _apply)

    def _matrix_steps(self, jobs: list[tuple[Any, ...]]) -> None:
        """Step the matrices of every group: ``(group, rule, params, grads, bufs)`` each."""
        for group, rule, params, grads, bufs in jobs:
            _polar_step(group, rule, params, grads, bufs)

    def _adamw_step(
        self,
        group: dict[str, Any],
        rule: AdamWRule,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        exp_avgs: list[torch.Tensor],
        exp_avg_sqs: list[torch.Tensor],
        steps: list[torch.Tensor],
        local: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """AdamW on ``params``; ``local`` maps a DTensor to this rank's shard (elementwise)."""
        updates = []
        for p, grad, exp_avg, exp_avg_sq, count in zip(
            params, grads, exp_avgs, exp_avg_sqs, steps, strict=True
        ):
            count.add_(1)
            t = count.to(exp_avg_sq.dtype)  # float64 for float64 params
            if local is not None:
                grad, exp_avg, exp_avg_sq = local(grad), local(exp_avg), local(exp_avg_sq)
            d, mu, nu = adamw_direction(_xp(grad), rule, grad, exp_avg, exp_avg_sq, t)
            exp_avg.copy_(mu)
            exp_avg_sq.copy_(nu)
            updates.append(d.to(p.dtype))
        targets = params if local is None else [local(p) for p in params]
        _apply(targets, updates, adamw_lr(group), group.get("adamw_weight_decay", 0.0))


def adamw_lr(group: Mapping[str, Any]) -> Any:
    """Return the AdamW learning rate of ``group`` now: ``adamw_lr · lr / reference_lr``.

    ``adamw_lr`` is AdamW's rate while ``lr`` equals ``reference_lr`` (the
    group's ``lr`` when it was added), so a scheduler or a manual change of
    ``lr`` scales AdamW by the same factor as the matrix rule.  ``adamw_lr``
    None means ``lr`` itself; a ``reference_lr`` of 0 (a group added with
    ``lr=0``) leaves no ratio, and ``adamw_lr`` is used as it is.
    """
    lr, base = group["lr"], group.get("adamw_lr")
    if base is None:
        return lr
    reference = group.get("reference_lr")
    if not reference:
        return base
    return base * (lr / reference)


def _polar_step(
    group: Mapping[str, Any],
    rule: PolarGradRule,
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    bufs: list[torch.Tensor],
) -> None:
    """Step ``params`` with the matrix rule, same-shape matrices together when batching."""
    buckets: dict[tuple[Any, ...], list[int]] = {}
    batch = group.get("batch")
    for i, g in enumerate(grads):
        shape = tuple(as_matrices(g, rule.flatten).shape)
        together = g.device.type != "cpu" if batch is None else batch
        key = (shape, g.dtype, g.device, None if together else i)
        buckets.setdefault(key, []).append(i)
    lr, wd = group["lr"], group["weight_decay"]
    for (shape, *_), members in buckets.items():
        stacked = _stack([as_matrices(grads[i], rule.flatten) for i in members])
        # The momentum buffers are this optimizer's state: without check_finite the rule
        # updates a single matrix's buffer in place (the state tensor itself, when it has
        # the matrix shape); stacks and reshaped buffers are copies, copied back below.
        # With check_finite the polar step may still raise (a momentum that overflowed),
        # and the state must then be left as it was: out of place.
        single = bool(bufs) and len(members) == 1 and tuple(bufs[members[0]].shape) == shape
        given = None
        if bufs:
            given = (
                bufs[members[0]] if single else _stack([bufs[i].reshape(shape) for i in members])
            )
        direction, constant, buf = polargrad_direction_parts(
            _xp(stacked), rule, stacked, given, inplace=not rule.check_finite, fold_scale=True
        )
        if buf is not None and not (single and buf is given):
            news = _unstack(buf, len(members))
            torch._foreach_copy_(
                [bufs[i] for i in members],
                [b.reshape(bufs[i].shape) for b, i in zip(news, members, strict=True)],
            )
        bucket = [params[i] for i in members]
        if not isinstance(constant, (int, float)):  # per-matrix scales (the nuclear norm)
            fused = not torch.is_tensor(lr) and all(p.shape == shape[-2:] for p in bucket)
            if fused:  # p ← (1 − γλ) p − γ·s·U in one pass per matrix: no scaled copy of U
                _apply_scaled(bucket, _unstack(direction, len(members)), lr, wd, constant)
                continue
            direction, constant = direction * constant, 1.0
        updates = [
            d.reshape(p.shape).to(p.dtype)
            for d, p in zip(_unstack(direction, len(members)), bucket, strict=True)
        ]
        _apply(bucket, updates, lr, wd, constant)


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


def _apply_scaled(
    params: list[torch.Tensor],
    directions: list[torch.Tensor],
    lr: float,
    wd: Any,
    scales: torch.Tensor,
) -> None:
    """``p ← (1 − lr·wd) p − lr·sᵢ·dᵢ`` for 2-D ``params``; ``scales`` stacks the ``sᵢ``.

    ``sᵢ`` broadcasts to ``dᵢ`` (a ``1 × 1`` nuclear norm, or one per block
    row or column).  ``addcmul_`` reads ``dᵢ`` once and writes ``p`` once, in
    ``p``'s dtype.
    """
    if wd != 0:
        torch._foreach_mul_(params, 1 - lr * wd)
    per_matrix = [scales] if len(params) == 1 else list(scales.unbind(0))
    for p, d, s in zip(params, directions, per_matrix, strict=True):
        p.addcmul_(d, s, value=-lr)
