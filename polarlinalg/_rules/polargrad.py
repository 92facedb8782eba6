r"""The matrix rule of the PolarGrad family (PolarGrad, PolarSGD, PolarGradM, Muon).

For a weight ``X`` (``m × n``, or a stack of them) with gradient ``G``,
learning rate ``γ``, momentum ``β`` and decoupled weight decay ``λ``, one step is
``X ← (1 − γλ) X − γ D`` with the *direction* ``D`` below.  Write
``U = polar(·)`` for the polar factor (any method of :data:`polarlinalg.METHODS`)
and ``⟨A, B⟩ = Re tr(Aᴴ B)``.

Momentum first (``polar_first=False``, the paper's default PolarGradM, and Muon)::

    M ← β M + (1 − β) G          M̃ = M   (Nesterov: M̃ = β M + (1 − β) G)
    U = polar(M̃)                 D = s(M̃, U) · U

Polar first (``polar_first=True``)::

    U = polar(G)
    M ← β M + (1 − β) U          M̃ = M   (Nesterov: M̃ = β M + (1 − β) U)
    D = s(G, U) · M̃

``β = 0`` is plain PolarGrad (PolarSGD with stochastic gradients): ``D = s(G, U) U``.
The scale ``s`` is, times ``scale_factor``:

* ``"nuclear"``: ``⟨A, U⟩ = tr(H) = ‖A‖_*`` for the polar decomposition
  ``A = U H`` (computed from the approximate ``U``), so the step vanishes
  with the gradient ("null-gradient consistency");
* ``"none"``: 1 (Muon without its shape adjustment);
* ``"shape"``: ``√max(1, fan_out/fan_in)`` (Jordan's Muon, ``torch.optim.Muon``);
* ``"rms"``: ``0.2 √max(m, n)`` (Moonlight: the update RMS matches AdamW's).

With ``bias_correction`` the momentum is divided by ``1 − βᵗ`` (and, with
Nesterov, ``M̃ = β M/(1 − βᵗ⁺¹) + (1 − β) X/(1 − βᵗ)``) as in ``optax.contrib.muon``.

**Forms** (``form``): ``polar(·)`` above may be replaced by another
symmetry-compatible map ``W(A)`` for embeddings and LM heads (Lau & Su,
"Symmetry-Compatible Principle for Optimizer Design", arXiv:2605.18106), with
``ε = form_eps`` and ``aᵢ`` the rows of ``A`` (the matrix as stored)::

    "polar"        W = polar(A)                       (the default)
    "rownorm"      W = diag(1/(‖aᵢ‖₂ + ε)) A          (RowNormM)
    "polar_right"  W = A (AᴴA + εI)^{−1/2}            (RightPolarGradM)
    "polar_left"   W = (AAᴴ + εI)^{−1/2} A            (LeftPolarGradM)

The one-sided forms equal ``U diag(σ/√(σ² + ε)) Vᴴ`` for ``A = U Σ Vᴴ`` (the
damped polar factor; with ``ε = 0`` and full rank, ``polar(A)``) and differ
in cost: the right Gram is ``n × n``, the left one ``m × m``.  The inverse
square root is :func:`polarlinalg._inv_root.inv_root` (``"eigh"``); ``method``,
``steps``, ``coefficients`` and ``compute_dtype`` apply to ``"polar"`` only.
``"nuclear"`` then scales by ``⟨A, W⟩``: ``Σ σ²/√(σ² + ε)`` for the one-sided
forms (the authors' ``ν = tr(C·C^{−1/2})`` with ``α = 1``, not clamped) and
``Σᵢ ‖aᵢ‖²/(‖aᵢ‖ + ε)`` (≈ ``‖A‖₂,₁``, the dual norm) for ``"rownorm"``;
``scale="none"`` is the authors' RowNormM (``α = 0``).

**Blocks** (``split``, ``heads``, see :mod:`polarlinalg._rules._blocks`): the
matrix is cut along its output axis into blocks, and ``W``, the nuclear scale
and the shape scales are those of each block; the momentum stays per
parameter (elementwise).

References
----------
Lau, Long, Su, "PolarGrad: A Class of Matrix-Gradient Optimizers from a Unifying
Preconditioning Perspective", arXiv:2505.21799 (2025); Jordan et al., "Muon" (2024);
Liu et al., "Muon is Scalable for LLM Training", arXiv:2502.16982 (2025).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any

from polarlinalg._compat import array_namespace, lerp, lerp_
from polarlinalg._inv_root import _eigh_root, inv_root
from polarlinalg._linalg import conj_transpose
from polarlinalg._methods import get_method
from polarlinalg._polar import orthogonalize
from polarlinalg._rules._blocks import block_sizes, check_heads, check_split, map_blocks
from polarlinalg._rules.hyperparams import (
    FORMS,
    LAYOUTS,
    SCALES,
    check_beta,
    check_choice,
    check_compute_dtype,
    check_nonnegative,
)

__all__ = [
    "PolarGradRule",
    "apply_update",
    "as_matrices",
    "direction_constant",
    "direction_factor",
    "polargrad_direction",
    "polargrad_direction_parts",
]


@dataclass(frozen=True)
class PolarGradRule:
    """Hyper-parameters of the matrix rule (everything but ``γ`` and ``λ``).

    Building one validates it: an unknown method, scale, schedule or
    ``compute_dtype`` name, bad ``steps``, ``β ∉ [0, 1)`` or an option the
    method does not accept raise ValueError or TypeError here, before any
    state exists.

    Attributes
    ----------
    momentum : float
        ``β`` in ``[0, 1)``; 0 disables the momentum buffer.
    polar_first : bool
        Polar factor of the gradient first, momentum on ``U`` after.
    nesterov : bool
        Nesterov look-ahead on the momentum.
    bias_correction : bool
        Divide the momentum by ``1 − βᵗ`` (optax convention).
    method, steps, coefficients, compute_dtype, method_options
        Passed to :func:`polarlinalg.orthogonalize`.
    scale : {"nuclear", "none", "shape", "rms"}
        See the module docstring.
    scale_factor : float
        Constant multiplying the scale.
    layout : {"out_in", "in_out"}
        How a weight's axes map to the layer, for ``scale="shape"``:
        ``"out_in"`` for ``torch.nn.Linear`` weights (``out × in``: fan-out
        ``m``, fan-in ``n``), ``"in_out"`` for flax/optax kernels.
    flatten : bool
        Treat a parameter with more than 2 dimensions as one matrix
        ``(shape[0], -1)`` (conv weights) instead of a batch of matrices over
        its leading dimensions.
    check_finite : bool
        Let :func:`polarlinalg.orthogonalize` reject NaN/inf (eager only).
        Otherwise a matrix holding NaN/inf gets a NaN polar factor, whatever
        the method (see :func:`polarlinalg.orthogonalize`).  The wrappers check the
        gradients themselves, before the step, and build their rules with
        False.
    split : tuple of int, optional
        Block sizes along the output dimension (rows for ``layout="out_in"``,
        columns for ``"in_out"``), summing to it: a fused QKV or gate/up
        weight is treated as one matrix per block.  Checked against each
        weight at the step (ValueError naming the shape).
    heads : int, optional
        Cut the output dimension (or each ``split`` block) into ``heads``
        equal blocks: ``(H·d, n)`` becomes ``H`` matrices ``(d, n)``.
    form : {"polar", "rownorm", "polar_right", "polar_left"}
        The map ``W`` applied to each (block of a) matrix; see the module
        docstring.  The wrappers set it from the param group's ``rule``.
    form_eps : float
        ``ε ≥ 0`` of the ``"rownorm"`` and one-sided forms (default 1e-8, the
        authors').
    """

    momentum: Any = 0.0
    polar_first: bool = False
    nesterov: bool = False
    bias_correction: bool = False
    method: str = "qdwh"
    steps: int | None = None
    coefficients: Any = None
    scale: str = "nuclear"
    scale_factor: Any = 1.0
    layout: str = "out_in"
    flatten: bool = False
    compute_dtype: Any = None
    check_finite: bool = True
    method_options: Mapping[str, Any] = field(default_factory=dict)
    split: tuple[int, ...] | None = None
    heads: int | None = None
    form: str = "polar"
    form_eps: float = 1e-8

    def __post_init__(self) -> None:
        check_beta("momentum", self.momentum)
        object.__setattr__(self, "split", check_split(self.split))
        object.__setattr__(self, "heads", check_heads(self.heads))
        check_choice("form", self.form, FORMS)
        check_nonnegative("form_eps", self.form_eps)
        if isinstance(self.form_eps, (int, float)) and self.form_eps == 0:
            # rownorm divides the zero rows of unseen tokens by ε, and the one-sided roots
            # invert the zero eigenvalues of a rank-deficient Gram matrix plus ε
            raise ValueError("form_eps must be > 0 (it keeps zero rows and eigenvalues finite)")
        check_choice("scale", self.scale, SCALES)
        for name in ("polar_first", "nesterov", "bias_correction", "flatten", "check_finite"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False; got {getattr(self, name)!r}")
        check_choice("layout", self.layout, LAYOUTS)
        factor = self.scale_factor
        if isinstance(factor, bool) or (
            isinstance(factor, numbers.Real) and not math.isfinite(factor)
        ):
            raise ValueError(f"scale_factor must be a finite number; got {factor!r}")
        options = dict(self.method_options or {})
        object.__setattr__(self, "method_options", MappingProxyType(options))
        # resolves the schedule and checks steps and options now, not at the first step
        get_method(self.method).plan(self.steps, self.coefficients, options)
        check_compute_dtype(self.compute_dtype, self.method)

    @property
    def blocked(self) -> bool:
        """Whether ``split`` or ``heads`` cut each matrix into blocks."""
        return self.split is not None or self.heads is not None

    def block_sizes(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """Block sizes along the output axis of a matrix of ``shape`` (None: no blocks).

        Raises ValueError naming ``shape`` when ``split``/``heads`` do not fit it.
        """
        axis = -2 if self.layout == "out_in" else -1
        return block_sizes(tuple(shape), self.split, self.heads, axis)

    @property
    def has_buffer(self) -> bool:
        """Whether the rule keeps a momentum buffer (β is an array or nonzero)."""
        beta = self.momentum
        return not (isinstance(beta, numbers.Real) and float(beta) == 0.0)


def as_matrices(x: Any, flatten: bool) -> Any:
    """Return the matrix view of a parameter or gradient with ≥ 2 dimensions.

    A 2-D array is returned as is.  With more dimensions the leading ones are
    a batch of matrices, or with ``flatten`` the array becomes one matrix
    ``(shape[0], prod(shape[1:]))`` (a conv weight ``out × in × kh × kw``).
    """
    if x.ndim < 2:
        raise ValueError(
            f"the matrix rule needs an array with at least 2 dimensions; got shape {tuple(x.shape)}"
        )
    if flatten and x.ndim > 2:
        return array_namespace(x).reshape(x, (x.shape[0], math.prod(x.shape[1:])))
    return x


def _inner(xp: ModuleType, a: Any, b: Any) -> Any:
    """``Re tr(aᴴ b)`` per matrix, shape ``(..., 1, 1)``.

    Each ``m × n`` matrix is read as an ``r × (mn/r)`` one (``r``: the largest
    divisor of ``mn`` up to 16), and the sum ``Σ conj(aᵢⱼ) bᵢⱼ`` is the trace
    of the small ``r × r`` product ``A Bᵀ`` of the two: the same terms, summed
    in another order (``2·r·mn`` flops, one pass over each operand, like the
    elementwise form).  Why a product: XLA's CPU backend (jaxlib 0.10) turns an
    elementwise-multiply-and-sum, and a vector dot product, into a reduction
    that it fuses with every matrix product producing ``b`` (the whole
    Newton–Schulz iteration) into one YNNPACK fusion several times slower than
    the products alone; a matrix product with two non-trivial output axes stays
    a fusion of its own (docs/performance.md).  Without such a divisor (``mn``
    a product of primes above 16) the elementwise form is used.
    """
    if a.dtype != b.dtype:  # the product needs one dtype; the elementwise form promoted
        common = xp.result_type(a, b)
        a, b = xp.astype(a, common), xp.astype(b, common)
    m, n = a.shape[-2], a.shape[-1]
    complex_ = xp.isdtype(a.dtype, "complex floating")
    r = next((d for d in range(16, 1, -1) if (m * n) % d == 0), 1)
    if r == 1:
        prod = xp.conj(a) * b if complex_ else a * b
        total = xp.sum(prod, axis=(-2, -1), keepdims=True)
    else:
        batch = tuple(a.shape[:-2])
        fold_a = xp.reshape(a, (*batch, r, (m * n) // r))
        fold_b = xp.reshape(b, (*tuple(b.shape[:-2]), r, (m * n) // r))
        if complex_:
            fold_a = xp.conj(fold_a)
        small = fold_a @ xp.matrix_transpose(fold_b)  # (..., r, r)
        flat = xp.reshape(small, (*tuple(small.shape[:-2]), r * r))
        total = xp.sum(flat[..., :: r + 1], axis=-1)[..., None, None]  # the trace
    return xp.real(total) if xp.isdtype(total.dtype, "complex floating") else total


def _shape_scale(rule: PolarGradRule, shape: tuple[int, ...]) -> float:
    m, n = shape[-2], shape[-1]
    if rule.scale == "shape":
        fan_in, fan_out = (n, m) if rule.layout == "out_in" else (m, n)
        return math.sqrt(max(1.0, fan_out / fan_in))
    if rule.scale == "rms":
        return 0.2 * math.sqrt(max(m, n))
    return 1.0


def _momentum(
    rule: PolarGradRule, buf: Any, x: Any, count: Any, inplace: bool = False
) -> tuple[Any, Any]:
    """Return ``(M̃, new buffer)`` for the new term ``x``.

    ``inplace=True`` lets a caller that owns ``buf`` (a torch.optim wrapper's
    state) have it updated in place where the framework allows
    (:func:`polarlinalg._compat.lerp_`): the new buffer is then ``buf`` itself,
    one pass and no new array.  The default leaves ``buf`` unchanged, as a
    functional update must.
    """
    beta = rule.momentum
    xp = array_namespace(buf)
    new = (lerp_ if inplace else lerp)(xp, buf, x, 1 - beta)
    if not rule.bias_correction:
        return (lerp(xp, x, new, beta) if rule.nesterov else new), new
    if count is None:
        raise ValueError("bias_correction needs the step count")
    if rule.nesterov:
        look = beta * (new / (1 - beta ** (count + 1))) + (1 - beta) * (x / (1 - beta**count))
        return look, new
    return new / (1 - beta**count), new


def _orthogonalize(rule: PolarGradRule, x: Any) -> Any:
    return orthogonalize(
        x,
        method=rule.method,
        steps=rule.steps,
        coefficients=rule.coefficients,
        compute_dtype=rule.compute_dtype,
        check_finite=rule.check_finite,
        **rule.method_options,
    )


def polargrad_direction(
    xp: ModuleType,
    rule: PolarGradRule,
    grad: Any,
    buf: Any | None,
    count: Any = None,
) -> tuple[Any, Any | None]:
    """One step of the matrix rule: return ``(D, new momentum buffer)``.

    Parameters
    ----------
    xp : namespace
        Array namespace of ``grad``.
    rule : PolarGradRule
        The hyper-parameters.
    grad : array, shape (..., m, n)
        Gradient, already in matrix view (:func:`as_matrices`); leading axes
        are a batch of independent matrices, each with its own scale.
    buf : array or None
        Momentum buffer, same shape as ``grad`` (its dtype is the state dtype,
        e.g. float32 for a bfloat16 parameter); None when ``rule`` has no
        momentum.
    count : int or array, optional
        Step number ``t ≥ 1`` (after this step), needed for ``bias_correction``.

    Returns
    -------
    direction : array, shape (..., m, n)
        ``D`` in ``X ← (1 − γλ) X − γ D``, in the buffer's dtype (the
        gradient's without momentum).
    buf : array or None
        The new momentum buffer (None without momentum).
    """
    direction, constant, buf = polargrad_direction_parts(xp, rule, grad, buf, count)
    if isinstance(constant, numbers.Real) and float(constant) == 1.0:
        return direction, buf
    return direction * constant, buf


def polargrad_direction_parts(
    xp: ModuleType,
    rule: PolarGradRule,
    grad: Any,
    buf: Any | None,
    count: Any = None,
    inplace: bool = False,
    fold_scale: bool = False,
) -> tuple[Any, Any, Any | None]:
    """:func:`polargrad_direction` as ``(D / c, c, buffer)`` with ``c`` a per-step constant.

    ``c`` collects the scale that does not depend on the data (the shape or
    RMS factor times ``scale_factor``; the nuclear-norm factor, one per matrix,
    is already applied), so a wrapper can fold it into its learning rate
    instead of spending a pass over the direction on it.  ``inplace``: see
    :func:`_momentum` (for a caller that owns ``buf``).  ``fold_scale=True``
    returns the data-dependent scale too (the nuclear norm, momentum first)
    as part of ``c``, then an array broadcastable to ``D``, so a wrapper can
    fuse it into its update as well.
    """
    if buf is not None and grad.dtype != buf.dtype:
        grad = xp.astype(grad, buf.dtype)
    if rule.polar_first:
        u, scale, constant = direction_factor(xp, rule, grad)
        if buf is not None:
            look, buf = _momentum(rule, buf, u, count, inplace)
        else:
            look = u
        if scale is not None:  # ⟨G, U⟩ of this step's gradient scales the average
            look = look * scale
        return look, constant, buf
    look = grad
    if buf is not None:
        look, buf = _momentum(rule, buf, grad, count, inplace)
    u, scale, constant = direction_factor(xp, rule, look)
    if scale is not None:
        if fold_scale:
            return u, (scale if constant == 1.0 else scale * constant), buf
        u = u * scale
    return u, constant, buf


def _form(xp: ModuleType, rule: PolarGradRule, a: Any) -> Any:
    """``W(A)`` of ``rule.form`` for a batch of matrices ``a`` (..., m, n)."""
    if rule.form == "polar":
        return _orthogonalize(rule, a)
    eps = rule.form_eps  # a number, or a 0-d array (optax.inject_hyperparams)
    if rule.form == "rownorm":
        norms = xp.linalg.vector_norm(a, axis=-1, keepdims=True)
        return a / (norms + eps)
    right = rule.form == "polar_right"
    gram = conj_transpose(xp, a) @ a if right else a @ conj_transpose(xp, a)
    if isinstance(eps, (int, float)):
        # ε after clamping the eigenvalues at 0: rounding makes the zero eigenvalues of a
        # rank-deficient Gram matrix (a wide A for "polar_right") slightly negative, far
        # beyond a small ε in float32, and (λ + ε)^(-1/2) would then be NaN
        root = inv_root(gram, 2, eps=float(eps), check_finite=False)
    else:  # a traced ε (optax.inject_hyperparams): the same clamp, ε an array
        root = _eigh_root(xp, gram, 2, eps, masked=False)
    return a @ root if right else root @ a  # A (AᴴA + εI)^{-1/2}, (AAᴴ + εI)^{-1/2} A


def _spread(xp: ModuleType, like: Any, value: float) -> Any:
    """``value`` as per-matrix values ``(..., 1, 1)`` of ``like``'s real dtype."""
    one = like[..., :1, :1]
    if xp.isdtype(one.dtype, "complex floating"):
        one = xp.real(one)
    return xp.zeros_like(one) + value


def direction_constant(rule: PolarGradRule, shape: tuple[int, ...]) -> float:
    """Return the data-free factor ``c`` of :func:`direction_factor` for ``shape``.

    ``scale_factor`` times the shape scale of the blocks when they are all
    alike (of the whole matrix without blocks); with blocks of unequal sizes
    the shape scales are per block, in the array factor, and ``c`` is
    ``scale_factor`` alone.
    """
    sizes = rule.block_sizes(tuple(shape))
    if sizes is None:
        return _shape_scale(rule, tuple(shape)) * rule.scale_factor
    if len(set(sizes)) > 1:
        return rule.scale_factor
    m, n = shape[-2], shape[-1]
    block = (sizes[0], n) if rule.layout == "out_in" else (m, sizes[0])
    return _shape_scale(rule, block) * rule.scale_factor


def direction_factor(xp: ModuleType, rule: PolarGradRule, a: Any) -> tuple[Any, Any | None, Any]:
    """Return ``(W, s, c)``: the map of ``rule.form`` per block and its scales.

    Parameters
    ----------
    xp : namespace
    rule : PolarGradRule
    a : array, shape (..., m, n)
        Matrices (the momentum, or the gradient polar first).

    Returns
    -------
    W : array, shape (..., m, n)
        ``W(A)`` of each block (of each matrix without blocks).
    s : array or None
        The data-dependent scale, broadcastable to ``W``: ``⟨A_b, W_b⟩`` per
        block ``b`` with ``scale="nuclear"`` (shape ``(..., 1, 1)`` without
        blocks, ``(..., m, 1)``/``(..., 1, n)`` with blocks along the rows or
        the columns), times the per-block shape scale when block sizes differ;
        None when there is none.
    c : float
        :func:`direction_constant`; the direction is ``c·s·W``.
    """
    sizes = rule.block_sizes(tuple(a.shape))
    constant = direction_constant(rule, tuple(a.shape))
    nuclear = rule.scale == "nuclear"
    if sizes is None:
        w = _form(xp, rule, a)
        return w, (_inner(xp, a, w) if nuclear else None), constant
    uneven = len(set(sizes)) > 1 and rule.scale in ("shape", "rms")

    def per_block(block: Any) -> tuple[Any, ...]:
        w = _form(xp, rule, block)
        scale = _inner(xp, block, w) if nuclear else None
        if uneven:
            shape = _shape_scale(rule, tuple(block.shape))
            scale = _spread(xp, w, shape) if scale is None else scale * shape
        return (w,) if scale is None else (w, scale)

    out = map_blocks(xp, per_block, [a], sizes, rule.layout == "out_in")
    return out[0], (out[1] if len(out) > 1 else None), constant


def apply_update(param: Any, direction: Any, lr: Any, weight_decay: Any) -> Any:
    """Return ``(1 − γλ) X − γ D`` (decoupled weight decay with the unscaled ``γ``)."""
    xp = array_namespace(param)
    if direction.dtype != param.dtype:
        direction = xp.astype(direction, param.dtype)
    if isinstance(weight_decay, numbers.Real) and float(weight_decay) == 0.0:
        return param - lr * direction
    return param * (1 - lr * weight_decay) - lr * direction
