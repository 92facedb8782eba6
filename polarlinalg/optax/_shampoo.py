"""Shampoo and SOAP as optax gradient transformations.

``scale_by_shampoo``/``scale_by_soap`` output the rule's direction ``D`` per
leaf (every leaf ≥ 2-D); ``shampoo``/``soap`` add the learning rate and the
decoupled weight decay in the rule's order and send the other leaves to
``optax.adamw``.  The formulas: :mod:`polarlinalg._rules.shampoo` and
:mod:`polarlinalg._rules.soap`; the same trajectories as
:class:`polarlinalg.torch.Shampoo` and :class:`polarlinalg.torch.SOAP`.
"""

from __future__ import annotations

from typing import Any

import optax

from polarlinalg._rules.shampoo import ShampooRule
from polarlinalg._rules.soap import SOAPRule
from polarlinalg.optax._adapter import rule_optimizer, scale_by_rule

__all__ = ["scale_by_shampoo", "scale_by_soap", "shampoo", "soap"]


def scale_by_shampoo(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-12,
    *,
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
) -> optax.GradientTransformation:
    r"""Scale every leaf by Shampoo's preconditioner (Gupta, Koren, Singer 2018).

    ``D = (L + εI)^{−1/4} M̂ (R + εI)^{−1/4}`` for a matrix (``−1/(2k)`` per
    mode for order ``k``) with the grafted norm; ``b1``, ``b2`` are
    :class:`polarlinalg.torch.Shampoo`'s ``betas`` and the other arguments
    its keywords.  New roots are computed under ``jax.lax.cond``, only on the
    steps they are due.  The arguments are static (Python numbers): under
    ``optax.inject_hyperparams`` list them in ``static_args``.
    """
    return scale_by_rule(
        ShampooRule(
            betas=(b1, b2),
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
    )


def shampoo(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-12,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
    *,
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
    rules: Any = None,
    adamw_lr: optax.ScalarOrSchedule | None = None,
    adamw_betas: tuple[float, float] = (0.9, 0.999),
    adamw_eps: float = 1e-8,
    adamw_weight_decay: float = 0.0,
    check_finite: bool = True,
) -> optax.GradientTransformation:
    r"""Shampoo on the matrix leaves, AdamW on the others.

    ``X ← (1 − γλ)X − γD`` with ``D`` from :func:`scale_by_shampoo`.
    ``rules``: ``optax.partition`` labels ``"shampoo"``/``"adamw"`` (default:
    leaves with ≥ 2 dimensions to Shampoo); ``adamw_*`` as in
    :func:`polarlinalg.optax.polargrad`; ``check_finite`` raises (eagerly)
    naming a leaf whose gradient holds NaN/inf.

    Examples
    --------
    >>> import jax.numpy as jnp, optax
    >>> from polarlinalg.optax import shampoo
    >>> params = {"w": jnp.eye(4, 3), "b": jnp.zeros(3)}
    >>> tx = shampoo(learning_rate=0.1)
    >>> state = tx.init(params)
    >>> updates, state = tx.update(params, state, params)
    >>> params = optax.apply_updates(params, updates)
    """
    rule = ShampooRule(
        betas=(b1, b2),
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
    return rule_optimizer(
        rule,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        rules=rules,
        adamw_lr=adamw_lr,
        adamw_betas=adamw_betas,
        adamw_eps=adamw_eps,
        adamw_weight_decay=adamw_weight_decay,
        check_finite=check_finite,
    )


def scale_by_soap(
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    precondition_frequency: int = 10,
    max_precondition_dim: int = 10000,
    correct_bias: bool = True,
) -> optax.GradientTransformation:
    r"""Scale every leaf by SOAP (Vyas et al., arXiv:2409.11321): Adam in Shampoo's eigenbasis.

    The output is ``D`` including the bias-corrected step-size factor; the
    first step outputs zeros (it only initialises the bases).  Chain
    :func:`polarlinalg.optax._adapter.apply_rule_step` or use :func:`soap`,
    which also applies the weight decay after the step as the reference does.
    """
    return scale_by_rule(
        SOAPRule(
            betas=(b1, b2),
            shampoo_beta=shampoo_beta,
            eps=eps,
            precondition_frequency=precondition_frequency,
            max_precondition_dim=max_precondition_dim,
            correct_bias=correct_bias,
        )
    )


def soap(
    learning_rate: optax.ScalarOrSchedule = 3e-3,
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    weight_decay_mask: Any = None,
    precondition_frequency: int = 10,
    max_precondition_dim: int = 10000,
    correct_bias: bool = True,
    *,
    rules: Any = None,
    adamw_lr: optax.ScalarOrSchedule | None = None,
    adamw_betas: tuple[float, float] | None = None,
    adamw_eps: float | None = None,
    adamw_weight_decay: float | None = None,
    check_finite: bool = True,
) -> optax.GradientTransformation:
    r"""SOAP with the reference's arguments on the matrix leaves, AdamW on the others.

    ``X ← (X − γD)(1 − γλ)`` (weight decay after the step; none at the
    first step) with ``D`` from :func:`scale_by_soap`; the other leaves follow
    ``optax.adamw`` with ``adamw_*`` (None: SOAP's ``learning_rate``,
    ``(b1, b2)``, ``eps`` and ``weight_decay``).  Same trajectory as
    :class:`polarlinalg.torch.SOAP`.

    Examples
    --------
    >>> import jax.numpy as jnp, optax
    >>> from polarlinalg.optax import soap
    >>> params = {"w": jnp.eye(4, 3), "b": jnp.zeros(3)}
    >>> tx = soap()
    >>> state = tx.init(params)
    >>> for _ in range(2):
    ...     updates, state = tx.update(params, state, params)
    ...     params = optax.apply_updates(params, updates)
    """
    rule = SOAPRule(
        betas=(b1, b2),
        shampoo_beta=shampoo_beta,
        eps=eps,
        precondition_frequency=precondition_frequency,
        max_precondition_dim=max_precondition_dim,
        correct_bias=correct_bias,
    )
    return rule_optimizer(
        rule,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        rules=rules,
        adamw_lr=adamw_lr,
        adamw_betas=(b1, b2) if adamw_betas is None else adamw_betas,
        adamw_eps=eps if adamw_eps is None else adamw_eps,
        adamw_weight_decay=weight_decay if adamw_weight_decay is None else adamw_weight_decay,
        check_finite=check_finite,
    )
