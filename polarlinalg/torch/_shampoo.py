"""Shampoo and SOAP, the Kronecker-factored preconditioners, as ``torch.optim`` optimizers."""

from __future__ import annotations

from typing import Any

import torch

from polarlinalg._rules.shampoo import ShampooRule
from polarlinalg._rules.soap import SOAPRule
from polarlinalg.torch._adapter import RuleOptimizer, defaults_of
from polarlinalg.torch._base import ParamsT

__all__ = ["SOAP", "Shampoo"]


class Shampoo(RuleOptimizer):
    r"""Shampoo (Gupta, Koren, Singer 2018; Anil et al. 2020) with grafting and blocking.

    For a matrix ``X`` with gradient ``G``: ``L ← β₂L + (1−β₂)GGᵀ``,
    ``R ← β₂R + (1−β₂)GᵀG`` (summed for ``β₂ = 1``), ``M̂`` the EMA of ``G``
    (``β₁``), ``S = (L + εI)^{−1/4} M̂ (R + εI)^{−1/4}`` (order ``k``:
    ``−1/(2k)`` per mode), the step ``X ← (1−γλ)X − γD`` with ``D = S`` scaled
    to the norm of Adam's step per block (``grafting="adam"``), of ``M̂``
    (``"sgd"``) or not at all (``"none"``).  With ``β₁ = β₂ = 0``, no grafting
    and ``ε → 0`` one step is the polar factor of ``G`` (Muon).  Parameters
    with fewer than two dimensions follow AdamW.  The maths, with references:
    :mod:`polarlinalg._rules.shampoo` and ``docs/preconditioners.md``.

    Parameters
    ----------
    params : iterable of tensors or dicts
        Parameters or param groups (each may override every keyword).
    lr : float or Tensor
        ``γ``.
    betas : (float, float), default (0.9, 0.999)
        ``β₁ ∈ [0, 1)``, ``β₂ ∈ [0, 1]`` (1: summed statistics, classic Shampoo).
    eps : float, default 1e-12
        Added as ``L + εI`` when a root is taken.
    weight_decay : float, default 0
        Decoupled ``λ``.
    grafting : {"adam", "sgd", "none"}, default "adam"
    graft_beta2, graft_eps : float, default 0.999, 1e-8
        Adam grafting's second-moment decay and epsilon.
    precondition_every : int, default 1
        Steps between new roots.
    start_preconditioning_step : int, optional
        First preconditioned step (default ``precondition_every``); earlier
        steps take the grafted method's step.
    max_preconditioner_dim : int or None, default 1024
        Larger dimensions are split into blocks of this size (None: never).
    inv_root_override : float, optional
        Every factor as ``(S + εI)^{−1/p}`` with this ``p`` (default ``2k``).
    root_method : {"eigh", "newton"}, default "eigh"
        :func:`polarlinalg.inv_root` method; ``root_steps`` its iterations.
    bias_correction : bool, default True
        Divide the EMAs by ``1 − βᵗ``.
    rule : {"auto", "shampoo", "adamw"}, default "auto"
        Per group: ``"auto"`` sends ≥ 2-D parameters to Shampoo.
    adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay, check_finite
        As in :class:`polarlinalg.torch.PolarGrad`.

    Examples
    --------
    >>> import torch
    >>> from polarlinalg.torch import Shampoo
    >>> model = torch.nn.Linear(8, 4)
    >>> opt = Shampoo(model.parameters(), lr=1e-2)
    >>> model(torch.randn(16, 8)).square().mean().backward()
    >>> _ = opt.step()
    """

    rule_cls = ShampooRule

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-12,
        weight_decay: float = 0.0,
        grafting: str = "adam",
        graft_beta2: float = 0.999,
        graft_eps: float = 1e-8,
        precondition_every: int = 1,
        start_preconditioning_step: int | None = None,
        max_preconditioner_dim: int | None = 1024,
        inv_root_override: float | None = None,
        root_method: str = "eigh",
        root_steps: int | None = None,
        bias_correction: bool = True,
        rule: str = "auto",
        adamw_lr: float | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
        check_finite: bool = True,
    ) -> None:
        super().__init__(params, defaults_of(locals()))


class SOAP(RuleOptimizer):
    r"""SOAP (Vyas et al., arXiv:2409.11321): Adam in Shampoo's eigenbasis; a drop-in.

    The reference's signature, defaults and update (nikhilvyas/SOAP,
    pytorch-optimizer's ``SOAP``): ``L, R`` EMAs of ``GGᵀ, GᵀG`` with
    ``shampoo_beta`` (None: ``β₂``), Adam with the second moment in the basis
    ``Q_L, Q_R`` of their eigenvectors, refreshed every
    ``precondition_frequency`` steps by one power iteration and QR; the first
    step only initialises; bias-corrected step size; weight decay after the
    step.  Modes larger than ``max_precondition_dim`` are not rotated.
    Differences: parameters with fewer than two dimensions follow AdamW (by
    default with SOAP's ``betas``, ``eps`` and ``weight_decay``; the reference
    runs unrotated Adam on them, skipping their first step) and
    ``merge_dims``/``precondition_1d``/``normalize_gradient`` are not offered.
    See :mod:`polarlinalg._rules.soap`.

    Parameters
    ----------
    params : iterable of tensors or dicts
    lr : float or Tensor, default 3e-3
    betas : (float, float), default (0.95, 0.95)
    shampoo_beta : float, optional
    eps : float, default 1e-8
    weight_decay : float, default 0.01
    precondition_frequency : int, default 10
    max_precondition_dim : int, default 10000
    correct_bias : bool, default True
    rule : {"auto", "soap", "adamw"}, default "auto"
    adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay : optional
        AdamW for the other parameters; None takes ``lr``, ``betas``, ``eps``
        and ``weight_decay``.
    check_finite : bool, default True
        As in :class:`polarlinalg.torch.PolarGrad`.

    Examples
    --------
    >>> import torch
    >>> from polarlinalg.torch import SOAP
    >>> model = torch.nn.Linear(8, 4)
    >>> opt = SOAP(model.parameters(), lr=3e-3, precondition_frequency=10)
    >>> for _ in range(2):
    ...     model(torch.randn(16, 8)).square().mean().backward()
    ...     _ = opt.step()
    ...     opt.zero_grad()
    """

    rule_cls = SOAPRule

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        max_precondition_dim: int = 10000,
        correct_bias: bool = True,
        *,
        rule: str = "auto",
        adamw_lr: float | None = None,
        adamw_betas: tuple[float, float] | None = None,
        adamw_eps: float | None = None,
        adamw_weight_decay: float | None = None,
        check_finite: bool = True,
    ) -> None:
        defaults: dict[str, Any] = defaults_of(locals())
        for key, fallback in (("betas", betas), ("eps", eps), ("weight_decay", weight_decay)):
            if defaults[f"adamw_{key}"] is None:
                defaults[f"adamw_{key}"] = fallback
        super().__init__(params, defaults)
