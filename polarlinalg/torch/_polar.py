"""PolarGrad, Muon and NorMuon: the polar-factor rules as ``torch.optim`` optimizers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from polarlinalg._dtypes import fast_bfloat16_dtype
from polarlinalg._methods import get_method
from polarlinalg._rules import PolarGradRule, as_matrices
from polarlinalg._rules.hyperparams import (
    RULES,
    check_choice,
    check_flag,
    check_weight_decay,
    form_of_rule,
)
from polarlinalg._rules.muon import MUON_COEFFICIENTS, muon_rule
from polarlinalg._rules.normuon import NorMuonRule
from polarlinalg.torch._adapter import RuleOptimizer, defaults_of
from polarlinalg.torch._base import ParamsT, _adamw_rule, _check_lr, _MatrixOptimizer

__all__ = ["Muon", "NorMuon", "PolarGrad"]


def _check_blocks(opt: _MatrixOptimizer, group: Mapping[str, Any], rule: PolarGradRule) -> Any:
    """Return ``rule`` after checking its ``split``/``heads`` against the group's matrices.

    Runs when the rule is built (``add_param_group``, or after a change of the
    group's keys), so a weight they do not fit raises ValueError naming its
    shape before any step.
    """
    if rule.blocked:
        for p in group["params"]:
            if opt._choose(group, p) == "polargrad":
                rule.block_sizes(tuple(as_matrices(p, rule.flatten).shape))
    return rule


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
        and set ``rule`` (see below), ``split`` and ``heads``.
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
    split : tuple of int, optional
        Fused weights (QKV, gate/up): sizes of the blocks along the output
        dimension (rows of an ``nn.Linear`` weight; columns with
        ``layout="in_out"``), summing to it.  Each block is its own matrix:
        its own polar factor, nuclear-norm and shape scale.  The momentum
        stays per parameter.  Set it in the param group of the fused weights.
    heads : int, optional
        Per-head matrices: ``(H·d, n)`` becomes ``H`` blocks ``(d, n)``; with
        ``split``, each split block is cut into ``heads`` blocks.
    rule : str, default "auto"
        ``"auto"`` (≥ 2-D to the matrix rule, others to AdamW),
        ``"polargrad"``, ``"adamw"``, or a one-sided rule for embeddings and
        LM heads (Lau & Su, arXiv:2605.18106): ``"rownorm"`` (RowNormM:
        each row of the momentum divided by its norm plus ``form_eps``),
        ``"polar_right"`` (``M(MᵀM + εI)^{−1/2}``) or ``"polar_left"``
        (``(MMᵀ + εI)^{−1/2}M``); these keep the momentum and the ``scale``
        of the matrix rule (``scale="none"`` for the authors' RowNormM).
    form_eps : float, default 1e-8
        ``ε`` of the one-sided rules.
    adamw_lr : float, optional
        AdamW's learning rate while ``lr`` equals the group's ``reference_lr``
        (its ``lr`` when added): a step uses ``adamw_lr · lr / reference_lr``,
        so schedulers and manual changes of ``lr`` scale AdamW alike.  None
        (default): ``lr`` itself.
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
        "split",
        "heads",
        "rule",
        "form_eps",
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
        split: tuple[int, ...] | None = None,
        heads: int | None = None,
        rule: str = "auto",
        form_eps: float = 1e-8,
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
            "split": split,
            "heads": heads,
            "rule": rule,
            "form_eps": form_eps,
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
        rule = PolarGradRule(
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
            check_finite=False,  # _check tests every gradient before the step
            method_options=group["method_options"] or {},
            split=group["split"],
            heads=group["heads"],
            form=form_of_rule(group["rule"]),
            form_eps=group["form_eps"],
        )
        return _check_blocks(self, group, rule)

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


def _default_half(group: Mapping[str, Any]) -> torch.dtype:
    """Default compute dtype of a polynomial polar step: bfloat16, as ``torch.optim.Muon``.

    Except where PyTorch emulates bfloat16 products (a CPU without bfloat16 support
    in oneDNN, e.g. AVX2-only x86, where they run about 100× slower than float32):
    there float32, whose result is at least as accurate.  The group's first
    parameter decides the device.
    """
    params = group["params"]
    device = params[0].device if params else torch.device("cpu")
    return fast_bfloat16_dtype(torch, device)


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
    for the polynomial methods, as ``torch.optim.Muon``, except on CPUs where
    PyTorch emulates bfloat16 products, about 100× slower than float32 (no
    AVX-512/AMX, e.g. AVX2-only x86): float32 there; the parameter's dtype, at
    least float32, for the other methods).  As ``torch.optim.Muon``, it
    refuses parameters with fewer or more than two dimensions (ValueError),
    but ``flatten=True`` (or the param-group key) takes a conv weight as one
    ``(out, in·kh·kw)`` matrix.  It has no AdamW path: a group with
    ``rule="adamw"`` is refused.  Differences: the momentum buffer of a
    bfloat16 parameter is kept in float32, and ``momentum`` must lie in
    ``[0, 1)``.  ``torch.optim.Muon``'s state dicts load (same names; the keys
    it lacks take these defaults).  ``batch`` as in
    :class:`PolarGrad` (same-shape matrices in one batched call on
    accelerators).  ``split`` and ``heads`` (fused QKV or gate/up weights,
    per-head matrices: each block orthogonalised on its own, with its own
    shape factor ``√max(1, A_b/B)``), ``form_eps`` and a group's ``rule``
    (``"rownorm"``, ``"polar_right"``, ``"polar_left"``: the one-sided
    updates for embeddings and LM heads, scaled by the same shape factor) are
    as in :class:`PolarGrad`.

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
        "split",
        "heads",
        "form_eps",
        "rule",
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
        split: tuple[int, ...] | None = None,
        heads: int | None = None,
        form_eps: float = 1e-8,
        flatten: bool = False,
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
            "split": split,
            "heads": heads,
            "form_eps": form_eps,
            "flatten": flatten,
            "batch": batch,
        }
        super().__init__(params, defaults)

    def _matrix_rule(self, group: Mapping[str, Any]) -> PolarGradRule:
        compute_dtype = group["compute_dtype"]
        if compute_dtype is None and get_method(group["method"]).low_precision:
            compute_dtype = _default_half(group)
        rule = muon_rule(
            momentum=group["momentum"],
            nesterov=group["nesterov"],
            ns_coefficients=group["ns_coefficients"],
            ns_steps=group["ns_steps"],
            eps=group["eps"],
            adjust_lr_fn=group["adjust_lr_fn"],
            method=group["method"],
            coefficients=group["coefficients"],
            compute_dtype=compute_dtype,
            split=group.get("split"),
            heads=group.get("heads"),
            form=form_of_rule(group.get("rule", "auto")),
            form_eps=group.get("form_eps", 1e-8),
        )
        # flatten: a conv weight as one (shape[0], -1) matrix; without it Muon refuses
        # parameters of more than two dimensions, as torch.optim.Muon does
        rule = dataclasses.replace(rule, flatten=group.get("flatten", False) is True)
        return _check_blocks(self, group, rule)

    _group_defaults: ClassVar[Mapping[str, Any]] = {"flatten": False}
    """Defaults of keys that state dicts of ``torch.optim.Muon`` lack."""

    def _check_group(self, group: Mapping[str, Any]) -> None:
        check_flag("flatten", group["flatten"])
        if group.get("rule", "auto") == "adamw":
            raise ValueError(
                "Muon has no AdamW path: a param group with rule='adamw' would be "
                "orthogonalised; give those parameters to torch.optim.AdamW, or use "
                "polarlinalg.torch.PolarGrad, which runs AdamW for them"
            )
        for p in group["params"]:
            if p.ndim < 2:
                raise ValueError(
                    "Muon only supports parameters with at least 2 dimensions; found one of "
                    f"shape {tuple(p.shape)} (use polarlinalg.torch.PolarGrad, which sends "
                    "it to AdamW, or a separate torch.optim.AdamW)"
                )
            if p.ndim > 2 and not group["flatten"]:
                rows = p.shape[0]
                raise ValueError(
                    f"Muon takes 2-D parameters, as torch.optim.Muon; found one of shape "
                    f"{tuple(p.shape)}. Set 'flatten': True in its param group to "
                    f"orthogonalise it as one ({rows}, {p.numel() // max(rows, 1)}) matrix "
                    "(the usual Muon treatment of conv weights), or use "
                    "polarlinalg.torch.PolarGrad, which also takes the leading dimensions as "
                    "a batch of matrices"
                )
            if torch.is_complex(p):
                raise ValueError("Muon does not support complex parameters; use PolarGrad")
        super()._check_group(group)

    def _choose(self, group: Mapping[str, Any], p: torch.Tensor) -> str:
        return "polargrad"


class NorMuon(RuleOptimizer):
    r"""NorMuon (Li et al., arXiv:2510.05491): Muon with a per-neuron second moment.

    ``M ← β₁M + (1−β₁)G``, ``O = polar(M̃)`` (Nesterov ``M̃`` by default;
    Muon's bfloat16 Newton–Schulz unless ``method``/``compute_dtype`` say
    otherwise), ``v ← β₂v + (1−β₂)·mean_row(O²)`` (one number per output
    neuron, the rows of ``nn.Linear`` weights), ``Ô = O/(√v + ε)``, rescaled
    to the RMS 0.2 (``update_scale="match_rms"``, the paper's Algorithm 1:
    AdamW's learning rates carry over) or to ``‖O‖_F`` times Muon's shape
    factor (``"preserve_norm"``, the official code's and pytorch-optimizer's
    default: Muon's learning rates carry over); ``X ← (1−γλ)X − γD``.
    Parameters with fewer than two dimensions follow AdamW; those with more
    are one ``(shape[0], −1)`` matrix.  See :mod:`polarlinalg._rules.normuon`.

    Parameters
    ----------
    params : iterable of tensors or dicts
    lr : float or Tensor
        ``γ``.
    momentum : float, default 0.95
        ``β₁``.
    beta2 : float, default 0.95
        ``β₂`` of the per-neuron second moment.
    weight_decay : float, default 0
    nesterov : bool, default True
    eps : float, default 1e-10
    update_scale : {"match_rms", "preserve_norm"}, default "match_rms"
    adjust_lr_fn : {None, "original", "match_rms_adamw"}
        Muon's shape factor (``"preserve_norm"`` only), as ``torch.optim.Muon``.
    method, ns_coefficients, ns_steps, coefficients, compute_dtype
        The polar step, as in :class:`Muon` (default: Newton–Schulz with
        Jordan's coefficients, 5 steps, in bfloat16, or float32 on CPUs where
        PyTorch emulates bfloat16 products).
    ns_eps : float, default 1e-7
        Floor of the normalising Frobenius norm.
    layout : {"out_in", "in_out"}, default "out_in"
        Rows (``nn.Linear``) or columns are the neurons.
    method_options : dict, optional
    rule : {"auto", "normuon", "adamw"}, default "auto"
    adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay, check_finite
        As in :class:`PolarGrad` (``adamw_lr`` defaults to ``lr``).

    Examples
    --------
    >>> import torch
    >>> from polarlinalg.torch import NorMuon
    >>> model = torch.nn.Linear(8, 4)
    >>> opt = NorMuon(model.parameters(), lr=1e-3)
    >>> model(torch.randn(16, 8)).square().mean().backward()
    >>> _ = opt.step()
    """

    rule_cls = NorMuonRule

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor,
        *,
        momentum: float = 0.95,
        beta2: float = 0.95,
        weight_decay: float = 0.0,
        nesterov: bool = True,
        eps: float = 1e-10,
        update_scale: str = "match_rms",
        adjust_lr_fn: str | None = None,
        method: str = "newton_schulz",
        ns_coefficients: tuple[float, float, float] = MUON_COEFFICIENTS,
        ns_steps: int = 5,
        coefficients: Any = None,
        ns_eps: float = 1e-7,
        compute_dtype: Any = None,
        layout: str = "out_in",
        method_options: Mapping[str, Any] | None = None,
        rule: str = "auto",
        adamw_lr: float | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
        check_finite: bool = True,
    ) -> None:
        super().__init__(params, defaults_of(locals()))

    def _rule_kwargs(self, group: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = super()._rule_kwargs(group)
        if kwargs["compute_dtype"] is None and get_method(kwargs["method"]).low_precision:
            kwargs["compute_dtype"] = _default_half(group)  # as torch.optim.Muon where fast
        kwargs["method_options"] = kwargs["method_options"] or {}
        return kwargs
