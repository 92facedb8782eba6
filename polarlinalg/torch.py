"""PolarGrad and Muon as ``torch.optim.Optimizer`` subclasses.

::

    from polarlinalg.torch import PolarGrad
    opt = PolarGrad(model.parameters(), lr=1e-2, momentum=0.9)
    loss.backward(); opt.step(); opt.zero_grad()

Parameters with at least two dimensions follow the matrix rule of the
PolarGrad family (:mod:`polarlinalg._rules.polargrad`); the others (biases,
norm weights, scalars) follow AdamW, with hyper-parameters of their own
(``adamw_lr``, ``adamw_betas``, ``adamw_eps``, ``adamw_weight_decay``).  A
param group's ``rule`` (``"auto"``, ``"polargrad"`` or ``"adamw"``) sends
embeddings or heads to either rule.  On accelerators, matrices of the same
shape, dtype and device are orthogonalised together in one batched call
(``batch``).

:class:`Muon` has ``torch.optim.Muon``'s signature, defaults and results, with
any polar method and coefficient schedule.

State for bfloat16/float16 parameters is kept in float32, and stays float32
through ``state_dict``/``load_state_dict`` (PyTorch's loader would cast it to
the parameter dtype).

Across processes (an initialised ``torch.distributed`` process group) the
same optimizers share the orthogonalisation between the ranks, one owner per
matrix: DTensor parameters sharded on dimension 0 (FSDP2's ``fully_shard``)
are assembled on their owner by an all-to-all and sent back as rows, with the
momentum sharded like the parameter; plain parameters (DistributedDataParallel
replicas) are orthogonalised by their owner and all-gathered.  Results equal
the single-process optimizer's.  A param group with ``"distributed": False``
keeps its plain parameters on the single-process path (every rank computes
everything, no collective).  See ``docs/distributed.md``.
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
from polarlinalg._methods import get_method
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
    RULES,
    check_choice,
    check_compute_dtype,
    check_flag,
    check_pair,
)
from polarlinalg._rules.muon import MUON_COEFFICIENTS, muon_rule

__all__ = ["Muon", "PolarGrad"]

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
        the parameter's device).
        """
        saved_ids = itertools.chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = itertools.chain.from_iterable(g["params"] for g in self.param_groups)
        id_map = dict(zip(saved_ids, params, strict=False))
        saved_state = state_dict["state"]
        super().load_state_dict(state_dict)
        for sid, p in id_map.items():
            for key, value in saved_state.get(sid, {}).items():
                if torch.is_tensor(value) and value.is_floating_point() and key != "step":
                    self.state[p][key] = value.to(device=p.device, copy=True)

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
                matrices = distributed.matrix_step(self, group, rule, matrices, _apply)
            if matrices:
                self._matrix_step(group, rule, matrices)
            if vectors:
                self._adamw_step(group, vectors, None if distributed is None else distributed.local)
        return loss

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


class PolarGrad(_MatrixOptimizer):
    r"""PolarGrad, PolarSGD and PolarGradM (Lau, Long, Su, arXiv:2505.21799).

    For a matrix parameter ``X`` with gradient ``G``: momentum first
    (default) ``M ← βM + (1−β)G``, ``U = polar(M)``, ``X ← (1−γλ)X − γ⟨M,U⟩U``;
    polar first ``U = polar(G)``, ``M ← βM + (1−β)U``, ``X ← (1−γλ)X − γ⟨G,U⟩M``.
    ``⟨M, U⟩ = tr(H)`` is the nuclear norm of ``M``; ``β = 0`` is plain
    PolarGrad.  Parameters with fewer than two dimensions follow AdamW.

    Parameters
    ----------
    params : iterable of tensors or dicts
        Parameters or param groups; a group may override every keyword below
        and set ``rule`` (``"auto"``, ``"polargrad"``, ``"adamw"``).
    lr : float or Tensor
        ``γ``.  Note the scale: ``⟨M, U⟩`` grows with the gradient, so
        PolarGrad's learning rates are far smaller than Muon's on large
        gradients (the paper uses 4e-8 to 5e1 across problems).
    momentum : float, default 0
        ``β`` in ``[0, 1)``.
    polar_first : bool, default False
    nesterov : bool, default False
    weight_decay : float, default 0
        Decoupled weight decay ``λ`` for the matrix rule.
    method : str, default "qdwh"
        Any of :data:`polarlinalg.METHODS`.
    steps, coefficients, compute_dtype
        As in :func:`polarlinalg.orthogonalize`.
    scale : {"nuclear", "none", "shape", "rms"}, default "nuclear"
        ``⟨M, U⟩`` (PolarGrad), 1 (Muon), ``√max(1, fan_out/fan_in)`` or
        ``0.2·√max(m, n)`` (Moonlight); times ``scale_factor``.
    scale_factor : float, default 1
    layout : {"out_in", "in_out"}, default "out_in"
        Axis order of the weights for ``scale="shape"`` (``nn.Linear``
        weights are ``out × in``).
    flatten : bool, default False
        Conv weights as ``(out, -1)`` matrices instead of a batch of matrices.
    rule : {"auto", "polargrad", "adamw"}, default "auto"
    adamw_lr : float, optional
        AdamW's learning rate (default ``lr``).
    adamw_betas, adamw_eps, adamw_weight_decay
        AdamW's hyper-parameters.
    check_finite : bool, default True
        Raise ValueError naming the parameter, before any parameter or state
        changes, when the gradient of any parameter the step touches (matrix
        or AdamW) holds NaN or infinity; costs one device synchronisation per
        step.  With False NaN propagates into the parameter instead, whatever
        the method.
    method_options : dict, optional
        Extra options of the polar method.
    batch : bool, optional
        Orthogonalise matrices of the same shape, dtype and device in one
        batched call.  Default: on accelerators (fewer kernel launches), not
        on CPUs, where batched products of these sizes measured slower than
        one 2-D product per matrix and stacking costs a copy.

    Raises
    ------
    ValueError, TypeError
        For invalid hyper-parameters, at construction (or ``add_param_group``).
    RuntimeError
        For sparse gradients, at ``step``.

    Examples
    --------
    >>> import torch
    >>> from polarlinalg.torch import PolarGrad
    >>> model = torch.nn.Linear(8, 4)
    >>> opt = PolarGrad(model.parameters(), lr=0.01, momentum=0.9)
    >>> model(torch.randn(16, 8)).square().mean().backward()
    >>> _ = opt.step()
    """

    _rule_keys = (
        "momentum",
        "polar_first",
        "nesterov",
        "method",
        "steps",
        "coefficients",
        "compute_dtype",
        "scale",
        "scale_factor",
        "layout",
        "flatten",
        "check_finite",
        "method_options",
    )

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor,
        *,
        momentum: float = 0.0,
        polar_first: bool = False,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        method: str = "qdwh",
        steps: int | None = None,
        coefficients: Any = None,
        compute_dtype: Any = None,
        scale: str = "nuclear",
        scale_factor: float = 1.0,
        layout: str = "out_in",
        flatten: bool = False,
        rule: str = "auto",
        adamw_lr: float | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
        check_finite: bool = True,
        method_options: Mapping[str, Any] | None = None,
        batch: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "polar_first": polar_first,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
            "method": method,
            "steps": steps,
            "coefficients": coefficients,
            "compute_dtype": compute_dtype,
            "scale": scale,
            "scale_factor": scale_factor,
            "layout": layout,
            "flatten": flatten,
            "rule": rule,
            "adamw_lr": adamw_lr,
            "adamw_betas": adamw_betas,
            "adamw_eps": adamw_eps,
            "adamw_weight_decay": adamw_weight_decay,
            "check_finite": check_finite,
            "method_options": dict(method_options or {}),
            "batch": batch,
        }
        super().__init__(params, defaults)

    def _matrix_rule(self, group: Mapping[str, Any]) -> PolarGradRule:
        return PolarGradRule(
            momentum=group["momentum"],
            polar_first=group["polar_first"],
            nesterov=group["nesterov"],
            method=group["method"],
            steps=group["steps"],
            coefficients=group["coefficients"],
            compute_dtype=group["compute_dtype"],
            scale=group["scale"],
            scale_factor=group["scale_factor"],
            layout=group["layout"],
            flatten=group["flatten"],
            check_finite=False,  # _gather checks every gradient before the step
            method_options=group["method_options"] or {},
        )

    def _check_group(self, group: Mapping[str, Any]) -> None:
        super()._check_group(group)
        check_flag("check_finite", group["check_finite"])
        check_choice("rule", group["rule"], RULES)
        if group["adamw_lr"] is not None:
            _check_lr(group["adamw_lr"], "adamw_lr")
        check_weight_decay(group["adamw_weight_decay"], "adamw_weight_decay")
        _adamw_rule(group)
        for p in group["params"]:
            self._choose(group, p)


class Muon(_MatrixOptimizer):
    r"""Muon, a drop-in for ``torch.optim.Muon`` with any polar method.

    Same signature, defaults and update as ``torch.optim.Muon``:
    ``B ← μB + (1−μ)G`` (``lerp``), ``Ũ = G + μ(B − G)`` with Nesterov else
    ``B``, ``O = NS(Ũ)`` in bfloat16 with ``Ũ/‖Ũ‖_F.clamp(eps)``,
    ``X ← (1 − γλ)X − γ·a(A, B)·O`` with ``a = √max(1, A/B)`` (``adjust_lr_fn``
    None or ``"original"``) or ``0.2√max(A, B)`` (``"match_rms_adamw"``).

    Extra keywords: ``method`` (default ``"newton_schulz"``; any of
    :data:`polarlinalg.METHODS`), ``coefficients`` (a schedule name or rows,
    replacing ``ns_coefficients``) and ``compute_dtype`` (default: bfloat16
    for the polynomial methods, as ``torch.optim.Muon``; the parameter's
    dtype, at least float32, for the others).  Differences: parameters with
    more than two dimensions are accepted (a batch of matrices over the
    leading dimensions), the momentum buffer of a bfloat16 parameter is kept
    in float32, and ``momentum`` must lie in ``[0, 1)``.  ``batch`` as in
    :class:`PolarGrad` (same-shape matrices in one batched call on
    accelerators).

    Examples
    --------
    >>> import torch
    >>> from polarlinalg.torch import Muon
    >>> w = torch.nn.Parameter(torch.randn(16, 8))
    >>> opt = Muon([w], lr=0.02, coefficients="polar_express")
    >>> w.sum().backward()
    >>> _ = opt.step()
    """

    _rule_keys = (
        "momentum",
        "nesterov",
        "ns_coefficients",
        "eps",
        "ns_steps",
        "adjust_lr_fn",
        "method",
        "coefficients",
        "compute_dtype",
    )

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = MUON_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        *,
        method: str = "newton_schulz",
        coefficients: Any = None,
        compute_dtype: Any = None,
        batch: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": ns_coefficients,
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
            "method": method,
            "coefficients": coefficients,
            "compute_dtype": compute_dtype,
            "batch": batch,
        }
        super().__init__(params, defaults)

    def _matrix_rule(self, group: Mapping[str, Any]) -> PolarGradRule:
        compute_dtype = group["compute_dtype"]
        if compute_dtype is None and get_method(group["method"]).low_precision:
            compute_dtype = torch.bfloat16
        return muon_rule(
            momentum=group["momentum"],
            nesterov=group["nesterov"],
            ns_coefficients=group["ns_coefficients"],
            ns_steps=group["ns_steps"],
            eps=group["eps"],
            adjust_lr_fn=group["adjust_lr_fn"],
            method=group["method"],
            coefficients=group["coefficients"],
            compute_dtype=compute_dtype,
        )

    def _check_group(self, group: Mapping[str, Any]) -> None:
        super()._check_group(group)
        for p in group["params"]:
            if p.ndim < 2:
                raise ValueError(
                    "Muon only supports parameters with at least 2 dimensions; found one of "
                    f"shape {tuple(p.shape)} (use polarlinalg.torch.PolarGrad, which sends "
                    "it to AdamW, or a separate torch.optim.AdamW)"
                )
            if torch.is_complex(p):
                raise ValueError("Muon does not support complex parameters; use PolarGrad")

    def _choose(self, group: Mapping[str, Any], p: torch.Tensor) -> str:
        return "polargrad"
