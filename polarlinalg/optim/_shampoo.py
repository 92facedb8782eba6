"""Shampoo and SOAP for any Array API namespace: thin constructors of their rules."""

from __future__ import annotations

from polarlinalg._rules.shampoo import ShampooRule
from polarlinalg._rules.soap import SOAPRule
from polarlinalg.optim._adapter import RuleOptimizer
from polarlinalg.optim._polar import LearningRate, Rules

__all__ = ["SOAP", "Shampoo"]


class Shampoo(RuleOptimizer):
    r"""Shampoo (Gupta, Koren, Singer 2018; Anil et al. 2020) for NumPy, CuPy, ….

    The keywords and the update of :class:`polarlinalg.torch.Shampoo`
    (formulas in :mod:`polarlinalg._rules.shampoo`); ``lr`` may be a schedule
    ``lr(steps_taken)`` and ``rules`` routes parameters as in
    :class:`polarlinalg.optim.PolarGrad` (labels ``"auto"``, ``"shampoo"``,
    ``"adamw"``).

    Examples
    --------
    >>> import numpy as np
    >>> from polarlinalg.optim import Shampoo
    >>> params = {"w": np.eye(4, 3), "b": np.zeros(3)}
    >>> opt = Shampoo(lr=0.1)
    >>> state = opt.init(params)
    >>> params, state = opt.step(params, params, state)
    """

    def __init__(
        self,
        lr: LearningRate,
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
        rules: Rules = None,
        adamw_lr: LearningRate | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
        check_finite: bool = True,
    ) -> None:
        rule = ShampooRule(
            betas=betas,
            eps=eps,
            grafting=grafting,
            graft_beta2=graft_beta2,
            graft_eps=graft_eps,
            precondition_every=precondition_every,
            start_preconditioning_step=start_preconditioning_step,
            max_preconditioner_dim=max_preconditioner_dim,
            inv_root_override=inv_root_override,
            root_method=root_method,
            root_steps=root_steps,
            bias_correction=bias_correction,
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


class SOAP(RuleOptimizer):
    r"""SOAP (Vyas et al., arXiv:2409.11321) with the reference's arguments, any namespace.

    The update of :class:`polarlinalg.torch.SOAP` (formulas in
    :mod:`polarlinalg._rules.soap`): the first step of each parameter only
    initialises its bases, the weight decay follows the step.  Parameters
    with fewer than two dimensions follow AdamW with ``adamw_*`` (None:
    SOAP's ``lr``, ``betas``, ``eps`` and ``weight_decay``).

    Examples
    --------
    >>> import numpy as np
    >>> from polarlinalg.optim import SOAP
    >>> params = {"w": np.eye(4, 3), "b": np.zeros(3)}
    >>> opt = SOAP()
    >>> state = opt.init(params)
    >>> params, state = opt.step(params, params, state)
    """

    def __init__(
        self,
        lr: LearningRate = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        max_precondition_dim: int = 10000,
        correct_bias: bool = True,
        *,
        rules: Rules = None,
        adamw_lr: LearningRate | None = None,
        adamw_betas: tuple[float, float] | None = None,
        adamw_eps: float | None = None,
        adamw_weight_decay: float | None = None,
        check_finite: bool = True,
    ) -> None:
        rule = SOAPRule(
            betas=betas,
            shampoo_beta=shampoo_beta,
            eps=eps,
            precondition_frequency=precondition_frequency,
            max_precondition_dim=max_precondition_dim,
            correct_bias=correct_bias,
        )
        super().__init__(
            rule,
            lr,
            weight_decay=weight_decay,
            rules=rules,
            adamw_lr=adamw_lr,
            adamw_betas=betas if adamw_betas is None else adamw_betas,
            adamw_eps=eps if adamw_eps is None else adamw_eps,
            adamw_weight_decay=weight_decay if adamw_weight_decay is None else adamw_weight_decay,
            check_finite=check_finite,
        )
