"""PolarGrad, Muon and NorMuon as optax gradient transformations (the polar-factor rules)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from polarlinalg._coefficients import COEFFICIENTS
from polarlinalg._distributed import jax_layout
from polarlinalg._rules import PolarGradRule, as_matrices, polargrad_direction
from polarlinalg._rules._blocks import block_sizes, check_heads, check_split
from polarlinalg._rules.hyperparams import (
    ONE_SIDED_RULES,
    check_compute_dtype,
    check_flag,
    check_lr,
    check_pair,
    check_weight_decay,
)
from polarlinalg._rules.muon import MUON_COEFFICIENTS, muon_polar_settings
from polarlinalg._rules.normuon import NorMuonRule
from polarlinalg.optax._adapter import rule_optimizer, scale_by_rule
from polarlinalg.optax._common import Labels
from polarlinalg.optax._common import finite_checked as _finite_checked
from polarlinalg.optax._common import labels as _labels
from polarlinalg.optax._common import static_int as _static_int

__all__ = [
    "MatrixBlocks",
    "ScaleByPolarGradState",
    "muon",
    "normuon",
    "polargrad",
    "scale_by_normuon",
    "scale_by_polargrad",
]


class ScaleByPolarGradState(NamedTuple):
    """State of :func:`scale_by_polargrad`: step count and momentum buffers."""

    count: jax.Array
    mu: Any


class MatrixBlocks(NamedTuple):
    """How one leaf is cut into blocks, each its own matrix (fused QKV, gate/up, heads).

    In the style of ``optax.contrib.MuonDimensionNumbers``: pass one for every
    matrix leaf, a pytree of them (a prefix of the params; ``None`` for a leaf
    that is one matrix) or a function of the params returning such a tree,
    as ``matrix_blocks=`` of :func:`scale_by_polargrad`, :func:`polargrad`
    or :func:`muon`.  Blocks are cut along the output axis, the *last* axis of
    a flax kernel ``(in, out)`` (``layout="in_out"``, the default here; the
    rows with ``"out_in"``).

    Attributes
    ----------
    split : tuple of int, optional
        Block sizes along the output axis, summing to it (``(d, d, d)`` for a
        fused QKV kernel ``(d, 3d)``).
    heads : int, optional
        Cut the output axis (or each ``split`` block) into ``heads`` equal
        blocks.
    """

    split: tuple[int, ...] | None = None
    heads: int | None = None


BlocksOrFn = MatrixBlocks | Any | Callable[[Any], Any] | None


class _Held:
    """A per-leaf value kept out of pytree flattening."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _is_spec(x: Any) -> bool:
    return x is None or isinstance(x, (MatrixBlocks, optax.MaskedNode))


def _check_blocks(spec: Any) -> MatrixBlocks | None:
    if spec is None:
        return None
    if not isinstance(spec, MatrixBlocks):
        raise TypeError(f"matrix_blocks leaves must be MatrixBlocks or None; got {spec!r}")
    return MatrixBlocks(check_split(spec.split), check_heads(spec.heads))


def _leaf_blocks(blocks: BlocksOrFn, tree: Any) -> list[MatrixBlocks | None]:
    """Return the :class:`MatrixBlocks` (or None) of every leaf of ``tree``, in leaf order."""
    leaves, treedef = jax.tree.flatten(tree)
    spec = blocks(tree) if callable(blocks) and not isinstance(blocks, MatrixBlocks) else blocks
    if spec is None or isinstance(spec, MatrixBlocks):
        return [_check_blocks(spec)] * len(leaves)
    try:
        held = jax.tree.map(
            lambda b, sub: jax.tree.map(lambda _: _Held(b), sub), spec, tree, is_leaf=_is_spec
        )
        out = [h.value for h in treedef.flatten_up_to(held)]
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "matrix_blocks must be MatrixBlocks, None, or a pytree of them that is a prefix of "
            f"the params (or a function returning one): {exc}"
        ) from None
    return [_check_blocks(b) for b in out]


def _in_order(rules: list[PolarGradRule]) -> Callable[[Any], PolarGradRule]:
    """Return ``rule_of(leaf)`` giving ``rules`` in turn, cyclically.

    :func:`polarlinalg._distributed.jax_layout.layout_update` asks once per
    leaf, in leaf order (possibly on tracers of ``jax.sharding.auto_axes``,
    which have no identity to look up).
    """
    if all(r is rules[0] for r in rules):
        return lambda g: rules[0]
    calls = [0]

    def rule_of(g: Any) -> PolarGradRule:
        rule = rules[calls[0] % len(rules)]
        calls[0] += 1
        return rule

    return rule_of


def _polargrad_update(rule: PolarGradRule, g: Any, buf: Any, count: Any) -> tuple[Any, Any]:
    grad = as_matrices(g, rule.flatten)
    if buf is not None:
        buf = jnp.reshape(buf, grad.shape)
    direction, buf = polargrad_direction(jnp, rule, grad, buf, count)
    direction = jnp.reshape(direction, g.shape).astype(g.dtype)
    return direction, (None if buf is None else jnp.reshape(buf, g.shape))


def _transformation(
    rule_of: Callable[[Any, MatrixBlocks | None], PolarGradRule],
    mu_dtype: Any,
    has_buffer: bool,
    blocks: BlocksOrFn = None,
) -> optax.GradientTransformation:
    """Return the matrix rule as a transformation; ``rule_of(leaf, blocks)`` is a leaf's rule."""

    def rules(tree: Any) -> list[PolarGradRule]:
        leaves = jax.tree.leaves(tree)
        return [rule_of(g, b) for g, b in zip(leaves, _leaf_blocks(blocks, tree), strict=True)]

    def init_fn(params: Any) -> ScaleByPolarGradState:
        named = jax.tree_util.tree_flatten_with_path(params)[0]
        for (path, leaf), rule in zip(named, rules(params), strict=True):
            if getattr(leaf, "ndim", 0) < 2:
                raise ValueError(
                    f"the matrix rule needs leaves with at least 2 dimensions; got shape "
                    f"{tuple(leaf.shape)} (polargrad() sends such leaves to AdamW)"
                )
            try:
                rule.block_sizes(tuple(as_matrices(leaf, rule.flatten).shape))
            except ValueError as exc:
                raise ValueError(f"leaf {jax.tree_util.keystr(path)}: {exc}") from None
        mu = None
        if has_buffer:
            # zeros_like: the buffer of a sharded parameter is sharded like it
            mu = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype or p.dtype), params)
        return ScaleByPolarGradState(count=jnp.zeros([], jnp.int32), mu=mu)

    def update_fn(
        updates: Any, state: ScaleByPolarGradState, params: Any = None
    ) -> tuple[Any, ScaleByPolarGradState]:
        del params
        count = optax.safe_increment(state.count)
        leaves, treedef = jax.tree.flatten(updates)
        bufs = None if state.mu is None else treedef.flatten_up_to(state.mu)
        leaf_rules = rules(updates)
        mesh = jax_layout.active_mesh()
        if mesh is not None:  # under jax.set_mesh: whole matrices per device
            new, bufs = jax_layout.layout_update(_in_order(leaf_rules), leaves, bufs, count, mesh)
        else:
            new = []
            for i, (g, rule) in enumerate(zip(leaves, leaf_rules, strict=True)):
                d, b = _polargrad_update(rule, g, None if bufs is None else bufs[i], count)
                new.append(d)
                if bufs is not None:
                    bufs[i] = b
        mu = None if bufs is None else treedef.unflatten(bufs)
        return treedef.unflatten(new), ScaleByPolarGradState(count=count, mu=mu)

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_polargrad(
    momentum: float = 0.0,
    polar_first: bool = False,
    nesterov: bool = False,
    method: str = "qdwh",
    steps: int | None = None,
    coefficients: Any = None,
    compute_dtype: Any = None,
    scale: str = "nuclear",
    scale_factor: float = 1.0,
    layout: str = "in_out",
    flatten: bool = False,
    bias_correction: bool = False,
    mu_dtype: Any = None,
    check_finite: bool = True,
    method_options: Mapping[str, Any] | None = None,
    *,
    form: str = "polar",
    form_eps: float = 1e-8,
    matrix_blocks: BlocksOrFn = None,
) -> optax.GradientTransformation:
    r"""Scale every leaf by the matrix rule of PolarGrad (Lau, Long, Su, arXiv:2505.21799).

    Momentum first: ``M ← βM + (1−β)G``, ``U = polar(M)``, update ``s(M, U)·U``;
    polar first: ``U = polar(G)``, ``M ← βM + (1−β)U``, update ``s(G, U)·M``,
    with ``s`` the nuclear norm ``⟨·, U⟩`` (``scale="nuclear"``), 1, the shape
    factor or the RMS factor (see :class:`polarlinalg.torch.PolarGrad`).  The
    output is the *direction*; chain ``optax.scale_by_learning_rate`` (or use
    :func:`polargrad`).  Every leaf must have ≥ 2 dimensions.

    Parameters
    ----------
    momentum, polar_first, nesterov, method, steps, coefficients, compute_dtype,
    scale, scale_factor, flatten, check_finite, method_options
        As in :class:`polarlinalg.torch.PolarGrad`.
    layout : {"in_out", "out_in"}, default "in_out"
        Axis order of kernels for ``scale="shape"`` (flax: ``in × out``).
    bias_correction : bool, default False
        Divide the momentum by ``1 − βᵗ`` (as ``optax.contrib.muon``).
    mu_dtype : dtype, optional
        Dtype of the momentum (default: the leaf's), e.g. float32 for
        bfloat16 parameters.
    check_finite : bool, default True
        Outside ``jax.jit``, raise ValueError naming the leaf when a gradient
        holds NaN or infinity (nothing is computed).  Under ``jax.jit`` values
        cannot be read: NaN then propagates, as with False.
    form : {"polar", "rownorm", "polar_right", "polar_left"}, default "polar"
        The polar factor, or a row-normalised or one-sided update for
        embeddings and LM heads (Lau & Su, arXiv:2605.18106; see
        :class:`polarlinalg.torch.PolarGrad`'s ``rule``), on the leaf as stored.
    form_eps : float, default 1e-8
        ``ε`` of the non-polar forms.
    matrix_blocks : MatrixBlocks, pytree or callable, optional
        Fused weights and per-head matrices (see :class:`MatrixBlocks`): each
        block is orthogonalised and scaled on its own.
    """
    steps = _static_int("steps", steps)
    options = dict(method_options or {})
    check_flag("check_finite", check_finite)
    check_compute_dtype(compute_dtype, method, jnp)

    rule = PolarGradRule(
        momentum=momentum,
        polar_first=polar_first,
        nesterov=nesterov,
        bias_correction=bias_correction,
        method=method,
        steps=steps,
        coefficients=coefficients,
        scale=scale,
        scale_factor=scale_factor,
        layout=layout,
        flatten=flatten,
        compute_dtype=compute_dtype,
        check_finite=False,  # checked up front, naming the leaf
        method_options=options,
        form=form,
        form_eps=form_eps,
    )
    if isinstance(matrix_blocks, MatrixBlocks):
        _check_blocks(matrix_blocks)
    tx = _transformation(_with_blocks(rule), mu_dtype, rule.has_buffer, matrix_blocks)
    return _finite_checked(tx, check_finite)


def _with_blocks(rule: PolarGradRule) -> Callable[[Any, MatrixBlocks | None], PolarGradRule]:
    """Return ``rule_of(leaf, blocks)``: ``rule`` with the leaf's blocks (built once each)."""
    built: dict[MatrixBlocks, PolarGradRule] = {}

    def rule_of(g: Any, blocks: MatrixBlocks | None) -> PolarGradRule:
        del g
        if blocks is None:
            return rule
        if blocks not in built:
            built[blocks] = dataclasses.replace(rule, split=blocks.split, heads=blocks.heads)
        return built[blocks]

    return rule_of


def polargrad(
    learning_rate: optax.ScalarOrSchedule,
    momentum: float = 0.0,
    polar_first: bool = False,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
    method: str = "qdwh",
    steps: int | None = None,
    coefficients: Any = None,
    compute_dtype: Any = None,
    scale: str = "nuclear",
    scale_factor: float = 1.0,
    layout: str = "in_out",
    flatten: bool = False,
    mu_dtype: Any = None,
    rules: Labels = None,
    adamw_lr: optax.ScalarOrSchedule | None = None,
    adamw_betas: tuple[float, float] = (0.9, 0.999),
    adamw_eps: float = 1e-8,
    adamw_weight_decay: float = 0.0,
    check_finite: bool = True,
    method_options: Mapping[str, Any] | None = None,
    *,
    form_eps: float = 1e-8,
    matrix_blocks: BlocksOrFn = None,
) -> optax.GradientTransformation:
    r"""PolarGrad / PolarSGD / PolarGradM, with AdamW for non-matrix leaves.

    Matrix leaves: ``X ← (1 − γλ)X − γD`` with ``D`` from
    :func:`scale_by_polargrad`; the others: ``optax.adamw(adamw_lr, *adamw_betas,
    adamw_eps, weight_decay=adamw_weight_decay)``.  Same hyper-parameters and
    trajectory as :class:`polarlinalg.torch.PolarGrad` (except ``layout``'s
    default, see the module docstring).

    Parameters
    ----------
    learning_rate : float or schedule
        ``γ``.
    weight_decay : float, default 0
        ``λ`` (decoupled, multiplied by the learning rate).
    weight_decay_mask : pytree or callable, optional
        As in ``optax.add_decayed_weights``.
    rules : pytree or callable, optional
        Labels ``"polargrad"``/``"adamw"`` per leaf (or a function of the
        params returning them), as ``optax.partition``'s ``param_labels``;
        default: leaves with ≥ 2 dimensions to ``"polargrad"``.  The labels
        ``"rownorm"``, ``"polar_right"`` and ``"polar_left"`` send a leaf to
        the matrix rule with that ``form`` (embeddings, LM heads).
    form_eps : float, default 1e-8
        ``ε`` of those forms.
    matrix_blocks : MatrixBlocks, pytree or callable, optional
        Fused weights and per-head matrices (:class:`MatrixBlocks`), for the
        leaves of every matrix label.
    adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay
        AdamW for the other leaves (``adamw_lr`` defaults to ``learning_rate``).
    mu_dtype : dtype, optional
        Dtype of both rules' first moments.
    check_finite : bool, default True
        Outside ``jax.jit``, raise ValueError naming the leaf when the
        gradient of any leaf (either rule) holds NaN or infinity.  Under
        ``jax.jit`` NaN propagates.
    momentum, polar_first, nesterov, method, steps, coefficients, compute_dtype
        As in :func:`scale_by_polargrad`.
    scale, scale_factor, layout, flatten, method_options
        As in :func:`scale_by_polargrad`.

    Examples
    --------
    >>> import jax.numpy as jnp, optax
    >>> from polarlinalg.optax import polargrad
    >>> params = {"w": jnp.ones((4, 3)) + jnp.eye(4, 3), "b": jnp.zeros(3)}
    >>> tx = polargrad(learning_rate=0.1, momentum=0.9)
    >>> state = tx.init(params)
    >>> updates, state = tx.update(params, state, params)
    >>> params = optax.apply_updates(params, updates)
    """
    check_lr(learning_rate, "learning_rate")
    check_weight_decay(weight_decay)
    check_weight_decay(adamw_weight_decay, "adamw_weight_decay")
    b1, b2 = check_pair("adamw_betas", adamw_betas)
    check_flag("check_finite", check_finite)

    def matrix(form: str) -> optax.GradientTransformation:
        return optax.chain(
            scale_by_polargrad(
                momentum=momentum,
                polar_first=polar_first,
                nesterov=nesterov,
                method=method,
                steps=steps,
                coefficients=coefficients,
                compute_dtype=compute_dtype,
                scale=scale,
                scale_factor=scale_factor,
                layout=layout,
                flatten=flatten,
                mu_dtype=mu_dtype,
                check_finite=False,  # every leaf is checked below, before the partition
                method_options=method_options,
                form=form,
                form_eps=form_eps,
                matrix_blocks=matrix_blocks,
            ),
            optax.add_decayed_weights(weight_decay, weight_decay_mask),
            optax.scale_by_learning_rate(learning_rate),
        )

    other = optax.adamw(
        learning_rate=learning_rate if adamw_lr is None else adamw_lr,
        b1=b1,
        b2=b2,
        eps=adamw_eps,
        weight_decay=adamw_weight_decay,
        mu_dtype=mu_dtype,
    )
    transforms = {"polargrad": matrix("polar"), "adamw": other}
    transforms.update({name: matrix(name) for name in ONE_SIDED_RULES})
    both = optax.partition(transforms, _labels(rules, "polargrad", "adamw"))
    return _finite_checked(both, check_finite)


def _muon_rows(ns_coeffs: Any, ns_steps: Any) -> tuple[Any, int]:
    """Return ``(coefficient rows, steps)`` with ``optax.contrib.muon``'s meaning."""
    if isinstance(ns_coeffs, str):
        if ns_coeffs == "standard":
            return (MUON_COEFFICIENTS,), _static_int("ns_steps", ns_steps)
        if ns_coeffs not in COEFFICIENTS:
            valid = ", ".join(repr(k) for k in ("standard", *COEFFICIENTS))
            raise ValueError(f"unknown ns_coeffs preset {ns_coeffs!r}; choose one of {valid}")
        return ns_coeffs, _static_int("ns_steps", ns_steps)
    try:  # on the host: the rows fix the computation, they are not traced values
        table = np.atleast_2d(np.asarray(ns_coeffs, dtype=np.float64))
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        raise TypeError(
            "ns_coeffs must be concrete numbers; under optax.inject_hyperparams pass "
            "static_args=('ns_coeffs',)"
        ) from None
    rows = tuple(tuple(float(c) for c in r) for r in table.tolist())
    if any(len(r) != 3 for r in rows):
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3); got {ns_coeffs!r}")
    steps = _static_int("ns_steps", ns_steps)
    if len(rows) > 1:  # optax runs every given row, once each
        if steps is not None and len(rows) > steps:
            raise ValueError(f"Not enough ns_steps ({steps}) for {len(rows)} coefficient rows")
        return rows, len(rows)
    return rows, steps


def muon(
    learning_rate: optax.ScalarOrSchedule,
    ns_coeffs: Any = MUON_COEFFICIENTS,
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    method: str = "newton_schulz",
    coefficients: Any = None,
    compute_dtype: Any = None,
    adam_b1: float = 0.9,
    adam_b2: float = 0.999,
    adam_eps_root: float = 0.0,
    adam_weight_decay: float = 0.0,
    adam_learning_rate: optax.ScalarOrSchedule | None = None,
    consistent_rms: float | None = None,
    matrix_blocks: BlocksOrFn = None,
) -> optax.GradientTransformation:
    r"""Muon with ``optax.contrib.muon``'s arguments and updates, and any polar method.

    On 2-D leaves: ``m ← βm + (1−β)g`` with bias correction (Nesterov:
    ``m̂ = β m/(1−βᵗ⁺¹) + (1−β) g/(1−βᵗ)``), ``O = NS(m̂/‖m̂‖_F)`` in the
    leaf's dtype, times ``⟨m̂, O⟩`` if ``adaptive`` (PolarGrad's nuclear-norm
    scaling), times ``√max(1, fan_out/fan_in)`` (or
    ``√max(fan_in, fan_out)·consistent_rms``), plus decoupled weight decay,
    times ``−learning_rate``.  Other leaves: ``optax.adamw`` with the
    ``adam_*`` arguments, exactly as ``optax.contrib.muon``.

    Differences from ``optax.contrib.muon``: ``eps`` floors the Frobenius norm
    (``max(‖m̂‖, eps)``) instead of being added to it, which changes nothing
    for gradients well above ``eps``; ``ns_steps`` must be static;
    ``preconditioning`` and ``muon_weight_dimension_numbers`` are not
    offered (leaves with more than two dimensions go to AdamW, as there by
    default).  ``method`` picks any polar method (``"qdwh"`` gives an exact
    polar factor), ``coefficients`` any schedule of
    :data:`polarlinalg.COEFFICIENTS` or rows (replacing ``ns_coeffs``).
    ``matrix_blocks`` (:class:`MatrixBlocks`, cut along the last axis of the
    kernels) orthogonalises each block of a fused kernel on its own, with the
    block's shape factor; blocks of unequal sizes cannot be combined with
    ``adaptive=True`` (ValueError).
    """
    check_lr(learning_rate, "learning_rate")
    check_compute_dtype(compute_dtype, method, jnp)
    rows, steps = _muon_rows(ns_coeffs, ns_steps)
    floor = float(eps) if isinstance(eps, numbers.Real) else None  # a traced eps: no floor
    steps, coefficients, options = muon_polar_settings(method, coefficients, rows, steps, floor)

    def rule_of(g: Any, blocks: MatrixBlocks | None = None) -> PolarGradRule:
        m, n = g.shape[-2], g.shape[-1]  # (fan_in, fan_out)
        split, heads = (None, None) if blocks is None else blocks
        sizes = block_sizes(tuple(g.shape), split, heads, -1)
        scale = "nuclear" if adaptive else "none"
        if sizes is not None and len(set(sizes)) == 1:
            n = sizes[0]  # every block is (fan_in, n): its own shape factor
        elif sizes is not None:  # unequal blocks: the rule's per-block shape scales
            if adaptive:
                raise ValueError(
                    f"muon(adaptive=True) with blocks of unequal sizes {sizes} (leaf of shape "
                    f"{tuple(g.shape)}) is not supported; use equal blocks or adaptive=False"
                )
            scale = "shape" if consistent_rms is None else "rms"
        if scale in ("shape", "rms"):
            factor: Any = 1.0 if consistent_rms is None else consistent_rms / 0.2
        elif consistent_rms is None:
            factor = math.sqrt(max(1.0, n / m))
        else:
            factor = math.sqrt(max(m, n)) * consistent_rms
        return PolarGradRule(
            momentum=beta,
            nesterov=nesterov,
            bias_correction=True,
            method=method,
            steps=steps,
            coefficients=coefficients,
            scale=scale,
            scale_factor=factor,
            layout="in_out",
            compute_dtype=compute_dtype,
            check_finite=False,
            method_options=options,
            split=split,
            heads=heads,
        )

    rule_of(jnp.zeros((1, 1)))  # validates the configuration now
    if isinstance(matrix_blocks, MatrixBlocks):
        _check_blocks(matrix_blocks)
    matrix = optax.chain(
        _transformation(rule_of, mu_dtype, True, matrix_blocks),
        optax.add_decayed_weights(weight_decay, weight_decay_mask),
        optax.scale_by_learning_rate(learning_rate),
    )
    other = optax.adamw(
        learning_rate=learning_rate if adam_learning_rate is None else adam_learning_rate,
        b1=adam_b1,
        b2=adam_b2,
        eps=eps,
        eps_root=adam_eps_root,
        weight_decay=adam_weight_decay,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
    )
    return optax.partition({"muon": matrix, "adam": other}, _labels(None, "muon", "adam", True))


def scale_by_normuon(
    momentum: float = 0.95,
    beta2: float = 0.95,
    *,
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
    layout: str = "in_out",
    method_options: Mapping[str, Any] | None = None,
) -> optax.GradientTransformation:
    r"""Scale every leaf by NorMuon (Li et al., arXiv:2510.05491).

    Orthogonalised momentum normalised by a per-neuron second moment and
    rescaled (see :class:`polarlinalg.torch.NorMuon`).  ``layout="in_out"``
    (flax kernels): the columns are the neurons.
    """
    check_compute_dtype(compute_dtype, method, jnp)
    return scale_by_rule(
        NorMuonRule(
            momentum=momentum,
            beta2=beta2,
            nesterov=nesterov,
            eps=eps,
            update_scale=update_scale,
            adjust_lr_fn=adjust_lr_fn,
            method=method,
            ns_coefficients=ns_coefficients,
            ns_steps=_static_int("ns_steps", ns_steps),
            coefficients=coefficients,
            ns_eps=ns_eps,
            compute_dtype=compute_dtype,
            layout=layout,
            method_options=dict(method_options or {}),
        )
    )


def normuon(
    learning_rate: optax.ScalarOrSchedule,
    momentum: float = 0.95,
    beta2: float = 0.95,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
    *,
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
    layout: str = "in_out",
    method_options: Mapping[str, Any] | None = None,
    rules: Labels = None,
    adamw_lr: optax.ScalarOrSchedule | None = None,
    adamw_betas: tuple[float, float] = (0.9, 0.999),
    adamw_eps: float = 1e-8,
    adamw_weight_decay: float = 0.0,
    check_finite: bool = True,
) -> optax.GradientTransformation:
    r"""NorMuon on the matrix leaves, AdamW on the others.

    ``X ← (1 − γλ)X − γD`` with ``D`` from :func:`scale_by_normuon`; the
    other arguments as in :func:`polargrad` (labels ``"normuon"``/``"adamw"``).

    Examples
    --------
    >>> import jax.numpy as jnp, optax
    >>> from polarlinalg.optax import normuon
    >>> params = {"w": jnp.eye(4, 3), "b": jnp.zeros(3)}
    >>> tx = normuon(learning_rate=1e-3)
    >>> state = tx.init(params)
    >>> updates, state = tx.update(params, state, params)
    """
    check_compute_dtype(compute_dtype, method, jnp)
    rule = NorMuonRule(
        momentum=momentum,
        beta2=beta2,
        nesterov=nesterov,
        eps=eps,
        update_scale=update_scale,
        adjust_lr_fn=adjust_lr_fn,
        method=method,
        ns_coefficients=ns_coefficients,
        ns_steps=_static_int("ns_steps", ns_steps),
        coefficients=coefficients,
        ns_eps=ns_eps,
        compute_dtype=compute_dtype,
        layout=layout,
        method_options=dict(method_options or {}),
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
