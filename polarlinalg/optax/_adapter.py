"""One optax adapter that runs any :class:`~polarlinalg._rules._base.MatrixRule`.

:func:`scale_by_rule` maps the rule over the leaves: its state is the step
count and a tree of the rule's per-leaf states, its output the directions
``D``; amortized work branches with ``jax.lax.cond``, so it runs only on the
steps it is due, also under ``jax.jit``.  :func:`apply_rule_step` turns the
directions into the parameter change with the rule's own ``increment``
(decoupled weight decay, in the order the rule's reference uses), the
learning rate (a number or a schedule of the step) and an optional decay
mask.  :func:`rule_optimizer` chains the two for the matrix leaves and sends
the others to ``optax.adamw``, as :func:`polarlinalg.optax.polargrad` does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from polarlinalg._rules._base import eager_cond
from polarlinalg._rules.hyperparams import check_flag, check_lr, check_pair, check_weight_decay
from polarlinalg.optax._common import finite_checked, labels

__all__ = ["ApplyRuleStepState", "ScaleByRuleState", "apply_rule_step", "scale_by_rule"]


class ScaleByRuleState(NamedTuple):
    """State of :func:`scale_by_rule`: the step count and one rule state per leaf."""

    count: jax.Array
    inner: Any


class ApplyRuleStepState(NamedTuple):
    """State of :func:`apply_rule_step`: the step count (for schedules and the rule)."""

    count: jax.Array


def scale_by_rule(rule: Any) -> optax.GradientTransformation:
    """Return the transformation whose updates are ``rule``'s directions ``D`` per leaf.

    Every leaf must suit the rule (at least two dimensions, real floating);
    ``init`` raises otherwise, naming the shape.
    """

    def init_fn(params: Any) -> ScaleByRuleState:
        for leaf in jax.tree.leaves(params):
            rule.check_param(tuple(leaf.shape), leaf.dtype, jnp)
        inner = jax.tree.map(lambda p: rule.init(jnp, p), params)
        return ScaleByRuleState(count=jnp.zeros([], jnp.int32), inner=inner)

    def update_fn(
        updates: Any, state: ScaleByRuleState, params: Any = None
    ) -> tuple[Any, ScaleByRuleState]:
        del params
        count = optax.safe_increment(state.count)
        # traced (jax.jit): lax.cond, so amortized work runs only when due; eagerly a
        # Python branch (lax.cond would compile fresh closures on every call)
        cond = jax.lax.cond if isinstance(count, jax.core.Tracer) else eager_cond
        leaves, treedef = jax.tree.flatten(updates)
        inner = treedef.flatten_up_to(state.inner)
        out = [rule.update(jnp, g, s, count, cond) for g, s in zip(leaves, inner, strict=True)]
        directions = treedef.unflatten(
            [d.astype(g.dtype) for (d, _), g in zip(out, leaves, strict=True)]
        )
        new_inner = treedef.unflatten([s for _, s in out])
        return directions, ScaleByRuleState(count=count, inner=new_inner)

    return optax.GradientTransformation(init_fn, update_fn)


def apply_rule_step(
    rule: Any,
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
) -> optax.GradientTransformation:
    """Return the transformation ``D ↦ Δ = rule.increment(X, D, γ, λ, t)``; needs ``params``.

    ``learning_rate`` may be a schedule of the step (0, 1, …); leaves where
    ``weight_decay_mask`` (a tree of bools, or a function of the params
    returning one) is False get no decay.
    """

    def init_fn(params: Any) -> ApplyRuleStepState:
        del params
        return ApplyRuleStepState(count=jnp.zeros([], jnp.int32))

    def update_fn(
        updates: Any, state: ApplyRuleStepState, params: Any = None
    ) -> tuple[Any, ApplyRuleStepState]:
        if params is None:
            raise ValueError(optax.NO_PARAMS_MSG)
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        count = optax.safe_increment(state.count)
        mask = weight_decay_mask(params) if callable(weight_decay_mask) else weight_decay_mask
        if mask is None:
            mask = jax.tree.map(lambda _: True, params)

        def one(keep: Any, d: Any, x: Any) -> Any:
            if isinstance(d, optax.MaskedNode):  # a leaf of another partition
                return d
            wd = weight_decay if keep else 0.0
            return rule.increment(jnp, x, d, lr, wd, count).astype(x.dtype)

        # the mask is the primary tree: under optax.partition the updates hold
        # MaskedNode subtrees where the mask (built from the full params) has leaves
        new = jax.tree.map(one, mask, updates, params)
        return new, ApplyRuleStepState(count=count)

    return optax.GradientTransformation(init_fn, update_fn)


def rule_optimizer(
    rule: Any,
    learning_rate: optax.ScalarOrSchedule,
    *,
    weight_decay: Any,
    weight_decay_mask: Any,
    rules: Any,
    adamw_lr: optax.ScalarOrSchedule | None,
    adamw_betas: tuple[float, float],
    adamw_eps: float,
    adamw_weight_decay: float,
    mu_dtype: Any = None,
    check_finite: bool,
) -> optax.GradientTransformation:
    """``rule`` on the matrix leaves, ``optax.adamw`` on the others (label ``"adamw"``).

    ``rules`` are ``optax.partition`` labels (``rule.name`` or ``"adamw"``)
    or a function of the params returning them; default: leaves with ≥ 2
    dimensions to the rule.  With ``check_finite``, eager updates first check
    every gradient leaf for NaN/inf.
    """
    check_lr(learning_rate, "learning_rate")
    check_weight_decay(weight_decay)
    check_weight_decay(adamw_weight_decay, "adamw_weight_decay")
    if adamw_lr is not None:
        check_lr(adamw_lr, "adamw_lr")
    b1, b2 = check_pair("adamw_betas", adamw_betas)
    check_flag("check_finite", check_finite)
    matrix = optax.chain(
        scale_by_rule(rule), apply_rule_step(rule, learning_rate, weight_decay, weight_decay_mask)
    )
    other = optax.adamw(
        learning_rate=learning_rate if adamw_lr is None else adamw_lr,
        b1=b1,
        b2=b2,
        eps=adamw_eps,
        weight_decay=adamw_weight_decay,
        mu_dtype=mu_dtype,
    )
    both = optax.partition({rule.name: matrix, "adamw": other}, labels(rules, rule.name, "adamw"))
    return finite_checked(both, check_finite)
