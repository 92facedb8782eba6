"""NorMuon for any Array API namespace: a thin constructor of its rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from polarlinalg._rules.muon import MUON_COEFFICIENTS
from polarlinalg._rules.normuon import NorMuonRule
from polarlinalg.optim._adapter import RuleOptimizer
from polarlinalg.optim._polar import LearningRate, Rules

__all__ = ["NorMuon"]


class NorMuon(RuleOptimizer):
    r"""NorMuon (Li et al., arXiv:2510.05491) for NumPy, CuPy, ….

    The keywords and the update of :class:`polarlinalg.torch.NorMuon`
    (formulas in :mod:`polarlinalg._rules.normuon`), computing in the
    parameters' dtype unless ``compute_dtype`` says otherwise; labels for
    ``rules`` are ``"auto"``, ``"normuon"`` and ``"adamw"``.

    Examples
    --------
    >>> import numpy as np
    >>> from polarlinalg.optim import NorMuon
    >>> params = {"w": np.eye(4, 3), "b": np.zeros(3)}
    >>> opt = NorMuon(lr=1e-3)
    >>> state = opt.init(params)
    >>> params, state = opt.step(params, params, state)
    """

    def __init__(
        self,
        lr: LearningRate,
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
        rules: Rules = None,
        adamw_lr: LearningRate | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
        check_finite: bool = True,
    ) -> None:
        rule = NorMuonRule(
            momentum=momentum,
            beta2=beta2,
            nesterov=nesterov,
            eps=eps,
            update_scale=update_scale,
            adjust_lr_fn=adjust_lr_fn,
            method=method,
            ns_coefficients=ns_coefficients,
            ns_steps=ns_steps,
            coefficients=coefficients,
            ns_eps=ns_eps,
            compute_dtype=compute_dtype,
            layout=layout,
            method_options=dict(method_options or {}),
        )
        super().__init__(
            rule,
            lr,
            weight_decay=weight_decay,
            rules=rules,
            adamw_lr=adamw_lr,
            adamw_betas=adamw_betas,
            adamw_eps=adamw_eps,
            adamw_weight_decay=adamw_weight_decay,
            check_finite=check_finite,
        )
