r"""Inverse p-th roots of Hermitian positive semidefinite matrices: ``(A + εI)^{−1/p}``.

The matrix function behind Shampoo's preconditioners (``L^{−1/4} G R^{−1/4}``).
Two methods, both on the Hermitian part ``(A + Aᴴ)/2``:

``"eigh"`` (the reference)
    ``A = V diag(λ) Vᴴ`` by ``xp.linalg.eigh``; eigenvalues below zero
    (rounding of a PSD matrix) are set to zero, then
    ``V diag((λ + ε)^{−1/p}) Vᴴ``.  Computed in float32 or wider (no framework
    has a half-precision eigh).
``"newton"`` (matmul-only)
    The coupled Newton iteration (Guo & Higham 2006; Anil et al. 2020):
    ``X₀ = z^{1/p} I``, ``M₀ = z A`` with ``z = (1 + p)/(2b)``, ``b ≥ λ_max(A)``,
    then ``T = ((p + 1)I − M)/p``, ``X ← X T``, ``M ← Tᵖ M`` until ``M ≈ I``.
    Only matrix products, so it runs in bfloat16 on accelerators.

See :func:`inv_root` for the details, the step counts and the measured
accuracy, and docs/matrix_functions.md.
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._compat import array_namespace, device, fori_loop, is_traced
from polarlinalg._dtypes import at_least_float32, is_low_precision, plan_dtypes, real_dtype
from polarlinalg._linalg import conj_transpose, eye_like, normal_divisor, symmetrize
from polarlinalg._methods._base import check_positive_int

__all__ = [
    "DEFAULT_METHOD",
    "INV_ROOT_METHODS",
    "NewtonRun",
    "default_newton_steps",
    "inv_root",
    "newton_run",
    "newton_tolerance",
]

Array = Any

INV_ROOT_METHODS: tuple[str, ...] = ("eigh", "newton")
"""The ``method=`` names of :func:`inv_root`."""

DEFAULT_METHOD = "eigh"
"""Method of :func:`inv_root` when none is given."""

_MARGIN_STEPS = 2
"""Steps the default adds to the scalar model's count (``b`` overestimates ``λ_max``)."""


class NewtonRun(NamedTuple):
    """One run of the coupled Newton iteration (what tests and benchmarks inspect).

    Attributes
    ----------
    x : array
        The iterate ``X`` (the root), in the compute dtype, not yet symmetrised.
    iterations : int
        Steps run: eagerly until every matrix stopped (or ``steps``), traced
        exactly ``steps``.
    converged : array of bool, shape (...)
        Per matrix, whether ``‖M − I‖_F`` reached the tolerance.
    stopped : array of bool, shape (...)
        Per matrix, whether it stopped early: converged, or its ``‖M − I‖_F``
        grew (the rounding floor, or an indefinite ``A``) and the last
        iterate was kept.
    """

    x: Array
    iterations: int
    converged: Array
    stopped: Array


# --- arguments -----------------------------------------------------------------------------


def _check_method(method: Any) -> str:
    if not isinstance(method, str) or method not in INV_ROOT_METHODS:
        valid = ", ".join(repr(m) for m in INV_ROOT_METHODS)
        raise ValueError(f"unknown inv_root method {method!r}; choose one of {valid}")
    return method


def _check_p(p: Any, method: str) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a positive real number; got {p!r}")
    value = float(p)
    if not 0.0 < value < math.inf:  # rejects NaN too
        raise ValueError(f"p must be a finite number > 0; got {p!r}")
    if method == "newton" and value != int(value):
        raise ValueError(
            f"method='newton' needs a positive integer p; got {p!r} (use method='eigh')"
        )
    return value


def _check_eps(eps: Any) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a real number >= 0 (a Python float); got {eps!r}")
    value = float(eps)
    if not 0.0 <= value < math.inf:  # rejects NaN too
        raise ValueError(f"eps must be a finite number >= 0; got {eps!r}")
    return value


def _check_steps(steps: Any, method: str) -> int | None:
    if steps is None:
        return None
    if method == "eigh":
        raise ValueError("method 'eigh' is not iterative and takes no steps")
    return check_positive_int("steps", steps)


def _check_array(xp: ModuleType, a: Any) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(
            "inv_root needs square matrices of shape (..., n, n) with at least 2 dimensions; "
            f"got shape {tuple(a.shape)}"
        )
    try:
        floating = xp.isdtype(a.dtype, ("real floating", "complex floating"))
    except (TypeError, ValueError):  # e.g. NumPy's ml_dtypes bfloat16
        floating = False
    if not floating:
        raise TypeError(
            f"inv_root needs a real or complex floating array; got dtype {a.dtype} "
            "(cast integer input to a floating dtype first)"
        )


# --- the public function ---------------------------------------------------------------------


def inv_root(
    a: Array,
    p: float,
    *,
    method: str = DEFAULT_METHOD,
    eps: float = 0.0,
    steps: int | None = None,
    compute_dtype: Any = None,
    check_finite: bool = True,
) -> Array:
    r"""Return ``(a + eps·I)^{−1/p}`` for Hermitian positive semidefinite ``a``.

    The inverse p-th root is the Hermitian PSD matrix ``X`` with
    ``X^{−p} = A + εI``: for ``A = V diag(λ) Vᴴ``,
    ``X = V diag((λ + ε)^{−1/p}) Vᴴ``.  Shampoo preconditions with
    ``L^{−1/4} G R^{−1/4}`` (``p = 4`` for matrices, ``2k`` for order-``k``
    tensors).  Only the Hermitian part ``(a + aᴴ)/2`` is used.

    **eigh** (the accurate reference): ``xp.linalg.eigh`` of the Hermitian
    part; eigenvalues below zero (rounding of a PSD matrix) are clamped to
    zero, then ``V diag((λ + ε)^{−1/p}) Vᴴ``.  The eigendecomposition is
    backward stable, so the error grows like ``κ(A + εI)·u/p`` (``u`` the unit
    roundoff of the compute dtype): the small eigenvalues, which dominate
    the root, are only known to ``u·‖A‖``.  Half-precision input is computed
    in float32 and rounded back.

    **newton** (matmul-only): the coupled Newton iteration for the inverse
    p-th root (Guo & Higham 2006; the Distributed Shampoo of Anil et al.
    2020).  With ``A = a + εI``, an upper bound ``b ≥ λ_max(A)`` (the smaller
    of ``‖A‖_F`` and the largest absolute row sum, both cheap) and
    ``z = (1 + p)/(2b)``,

        X₀ = z^{1/p} I,  M₀ = z A,
        T = ((p + 1) I − M)/p,  X ← X T,  M ← Tᵖ M,

    keeps ``M = Xᵖ A`` (all are polynomials in ``A``), maps every eigenvalue
    ``μ ∈ (0, (p + 1)/2]`` of ``M`` by ``μ ← μ((p + 1 − μ)/p)ᵖ`` towards 1, and
    so ``X → A^{−1/p}``.  ``Tᵖ`` is formed by repeated squaring, so a step
    costs ``⌊log₂ p⌋ + popcount(p) + 1`` matrix products (4 for ``p = 4``).
    Small eigenvalues grow by ``((p + 1)/p)ᵖ`` per step (2 for ``p = 1``, 2.44
    for ``p = 4``, ``e`` as ``p → ∞``) until the quadratic phase, so the
    iteration needs about ``log(κ·b/λ_max)/log((1 + 1/p)ᵖ) + 5`` steps
    (measured in float64: 11 for ``κ = 1e2`` and 21 for ``κ = 1e6`` at
    ``p = 4``, 14 and 26 at ``p = 1``).
    Eagerly it stops once every matrix has ``‖M − I‖_F ≤ p·ε_mach·√n`` (a few
    times the rounding floor, ``≈ p·u·√n/2``), or once ``‖M − I‖_F`` grows (in
    exact arithmetic it decreases strictly for a positive definite ``A``; a
    growth is the rounding floor, or a negative eigenvalue that rounding put
    into ``A``, which the iteration would amplify to overflow): that
    matrix keeps its previous iterate.  Under ``jax.jit``/``torch.compile``
    (or ``vmap``) it runs exactly ``steps`` steps and freezes the matrices
    that stopped with ``where``.  The result is symmetrised.

    Parameters
    ----------
    a : array, shape (..., n, n)
        Hermitian positive semidefinite matrices (a batch over the leading
        axes), real or complex, of any Array API namespace.
    p : float
        The root, ``p > 0``: any positive number for ``"eigh"``, a positive
        integer (``4`` or ``4.0``) for ``"newton"``.
    method : {"eigh", "newton"}, default "eigh"
        ``"eigh"`` is the reference; ``"newton"`` uses only matrix products
        (bfloat16-capable) and its errors are of the same size in float32 and
        float64 (see Notes).
    eps : float, default 0.0
        ``ε ≥ 0`` added as ``a + εI`` (a Python number; negative values, NaN,
        infinity and bools are rejected).  With ``eps = 0`` a singular ``a`` has
        no inverse root and the result is not finite: ``"eigh"`` puts
        ``0^{−1/p} = inf`` into ``V diag(·) Vᴴ``, so entries come out ±inf or
        NaN (``0·inf``; ``diag(4, 0)`` gives ``[[nan, nan], [nan, inf]]``);
        ``"newton"`` gives ``inf`` everywhere for ``a = 0``, and for other
        singular ``a`` a finite, meaningless result whose null-space part grows
        by ``1 + 1/p`` per step.  No Python branch looks at the values.
    steps : int, optional
        ``"newton"`` only: the maximum number of iterations, run in full when
        traced.  The default is the scalar model's count for
        ``κ(A)·b/λ_max`` up to ``1/u`` of the compute dtype (the largest
        condition it can resolve: 1.7e7 in float32, 9e15 in float64, 256 in
        bfloat16) plus 2: for ``p = 4`` that is 23 (float32), 46 (float64)
        and 9 (bfloat16) steps, for ``p = 1`` 30, 60 and 12; see
        :func:`default_newton_steps`.
    compute_dtype : dtype or str, optional
        Dtype to compute in, a dtype of ``a``'s namespace or its name
        (``"float32"``, ``"bfloat16"``), as in
        :func:`polarlinalg.orthogonalize`.  ``"newton"`` defaults to ``a``'s
        dtype (bfloat16/float16 included), ``"eigh"`` to at least float32 and
        refuses half precision.  The bound ``b`` and the starting matrices
        are always formed in at least float32.
    check_finite : bool, default True
        Raise ValueError for NaN/inf input on eager arrays.  Under
        ``jax.jit``/``torch.compile``, or with False, a matrix holding NaN or
        infinity gets an all-NaN root (the others of the batch are
        unaffected), with no device synchronisation.

    Returns
    -------
    array, shape (..., n, n)
        Same namespace, device, dtype and shape as ``a``.  Zero-size input
        (``n = 0`` or an empty batch) gives an empty array of that shape.

    Raises
    ------
    ValueError
        For non-square input or ``a.ndim < 2``, an unknown method (the
        message lists the valid ones), ``p ≤ 0``, a non-integer ``p`` with
        ``"newton"``, a negative or non-finite ``eps``, bad ``steps`` (or any
        ``steps`` with ``"eigh"``), a half-precision ``compute_dtype`` with
        ``"eigh"``, or (``check_finite``) NaN/inf input.
    TypeError
        For a non-floating ``a`` (integer, bool), a ``p`` or ``eps`` that is
        not a real number (bools included), or non-array input.

    See Also
    --------
    polar : the polar factor, which is ``G (GᴴG)^{−1/2}``: Shampoo without
        accumulation.

    Notes
    -----
    Measured accuracy, relative error ``‖X − X_ref‖_F/‖X_ref‖_F`` against a
    NumPy float64 eigh of the same (rounded) input, worst over ``p ∈ {2, 4}``,
    ``n ∈ {64, 256}`` and three seeds; PSD matrices ``Q diag(λ) Qᵀ`` with
    Haar ``Q`` and ``λ`` geometric from 1 to ``1/κ``, ``ε = 0``; AMD EPYC CPU,
    NumPy 2.4 (OpenBLAS), PyTorch 2.13 (MKL):

    ======================  ========  ========  ========  ========
    method, dtype, backend  κ = 1     κ = 1e2   κ = 1e4   κ = 1e6
    ======================  ========  ========  ========  ========
    eigh float64, torch     2e-15     7e-15     2e-13     2e-11
    newton float64          1e-15     6e-15     2e-13     2e-11
    eigh float32, torch     9e-7      3e-6      7e-4      8e-2
    eigh float32, NumPy     3e-7      3e-7      4e-7      4e-7
    newton float32          1e-7      2e-6      7e-5      5e-3
    newton bfloat16, torch  0 (¹)     2e-2      —         —
    ======================  ========  ========  ========  ========

    Both methods' errors grow about linearly with ``κ`` (the small
    eigenvalues, which dominate ``A^{−1/p}``, are known only to ``u·‖A‖``):
    over every backend (NumPy, PyTorch, JAX), ``p ∈ {1, 2, 4}`` and
    ``n ≤ 256`` they stayed below ``3.3·u·(√n + κ)``.  NumPy's float32 eigh
    computes in float64 internally (hence its flat row); PyTorch's and JAX's
    are true float32, and the float32 Newton iteration is then the more
    accurate of the two for ``κ ≥ 1e4``.  In bfloat16 and float16 (Newton,
    ``κ ≤ 1e3``, ``p ≤ 4``) the error stayed below ``2·u·√κ``: 1.8e-2 at
    ``κ = 10``, 4.4e-2 at ``1e2``, 0.29 at ``1e3`` in bfloat16; rounding a
    PSD matrix of ``κ ≳ 1e3`` to bfloat16 (``2⁻⁹‖A‖`` per entry) usually
    makes it indefinite ("—": the root does not exist; ¹ a matrix of
    ``κ = 1`` rounds to the identity exactly), so there add
    ``eps`` (about ``1e-2·λ_max``) or keep ``a`` in float32 and pass
    ``compute_dtype="bfloat16"``.  docs/matrix_functions.md has the full
    tables and timings.

    References
    ----------
    C.-H. Guo, N. J. Higham. A Schur–Newton method for the matrix p-th root
    and its inverse. SIAM J. Matrix Anal. Appl. 28(3), 2006.
    R. Anil, V. Gupta, T. Koren, K. Regan, Y. Singer. Scalable second order
    optimization for deep learning. arXiv:2002.09018, 2020.
    V. Gupta, T. Koren, Y. Singer. Shampoo: preconditioned stochastic tensor
    optimization. ICML 2018.
    N. J. Higham. *Functions of Matrices*, SIAM 2008, §7.

    Examples
    --------
    >>> import numpy as np
    >>> from polarlinalg import inv_root
    >>> a = np.array([[4.0, 0.0], [0.0, 16.0]])
    >>> inv_root(a, 2)
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    >>> x = inv_root(a, 4, method="newton")
    >>> bool(np.allclose(np.linalg.matrix_power(x, -4), a))
    True
    """
    method = _check_method(method)
    p = _check_p(p, method)
    eps = _check_eps(eps)
    steps = _check_steps(steps, method)
    xp = array_namespace(a)
    _check_array(xp, a)
    dtypes = plan_dtypes(
        xp, a.dtype, device(a), compute_dtype=compute_dtype, low_precision_ok=True, method=method
    )
    compute = dtypes.compute
    if method == "eigh":
        if compute_dtype is None:
            compute = at_least_float32(xp, compute)
        elif is_low_precision(xp, compute):
            raise ValueError(
                f"method 'eigh' cannot compute in {compute_dtype!r} (no framework has a "
                "half-precision eigh); use float32 or wider, or method='newton'"
            )
    if math.prod(a.shape) == 0:  # static shapes: the same eagerly and traced
        return xp.zeros(a.shape, dtype=a.dtype, device=device(a))
    checked = check_finite and not is_traced(a)
    if checked and not bool(xp.all(xp.isfinite(a))):
        raise ValueError(
            "the input contains NaN or infinity; its inverse root is undefined "
            "(pass check_finite=False to skip this check)"
        )
    if method == "eigh":
        x = _cast(xp, a, compute)
        _check_overflow(xp, a, x, checked)
        out = _eigh_root(xp, x, p, eps, masked=not checked)
    else:
        n_steps = default_newton_steps(xp, compute, int(p)) if steps is None else steps
        run = newton_run(xp, a, int(p), eps, n_steps, compute, checked)
        out = symmetrize(xp, run.x)
    return _cast(xp, out, a.dtype)


def _cast(xp: ModuleType, x: Array, dtype: Any) -> Array:
    return x if x.dtype == dtype else xp.astype(x, dtype)


def _check_overflow(xp: ModuleType, a: Array, x: Array, checked: bool) -> None:
    """Eagerly, raise if casting to a narrower compute dtype overflowed (as :func:`polar`)."""
    if not checked or x is a:
        return
    if float(xp.finfo(x.dtype).max) < float(xp.finfo(a.dtype).max):
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError(
                f"the input's values overflow the compute dtype {x.dtype}; "
                "choose a wider compute_dtype"
            )


# --- eigh ------------------------------------------------------------------------------------


def _eigh_root(xp: ModuleType, x: Array, p: float, eps: Any, masked: bool) -> Array:
    """``V diag((max(λ, 0) + ε)^{−1/p}) Vᴴ`` of the Hermitian part of ``x``.

    ``eps`` is a Python number or a 0-d array (a traced hyper-parameter, cast to
    the eigenvalues' dtype).

    Unchecked input (``check_finite=False`` or traced) holding NaN/inf is
    decomposed as the identity and its root made NaN: some backends' eigh
    raise on non-finite input (PyTorch, NumPy), others return NaN.
    """
    h = symmetrize(xp, x)
    finite = None
    if masked:
        finite = xp.all(xp.isfinite(h), axis=(-2, -1), keepdims=True)
        h = xp.where(finite, h, eye_like(xp, h, h.shape[-1]))
    w, v = xp.linalg.eigh(h)
    w = xp.maximum(w, xp.zeros_like(w))
    if not isinstance(eps, (int, float)):
        w = w + xp.astype(eps, w.dtype)
    elif eps:
        w = w + eps
    s = w ** (-1.0 / p)  # inf where λ + ε = 0
    if s.dtype != v.dtype:
        s = xp.astype(s, v.dtype)
    out = (v * xp.expand_dims(s, axis=-2)) @ conj_transpose(xp, v)
    if finite is not None:
        out = xp.where(finite, out, xp.full_like(out, math.nan))
    return out


# --- coupled Newton ------------------------------------------------------------------------


def _unit_roundoff(xp: ModuleType, dtype: Any) -> float:
    return float(xp.finfo(real_dtype(xp, dtype)).eps) / 2.0


def _growth_count(p: int, kappa: float, tol: float) -> int:
    """Count the steps of ``μ ← μ((p + 1 − μ)/p)ᵖ`` from ``(p + 1)/(2κ)`` to ``|μ − 1| ≤ tol``."""
    mu, count = (p + 1.0) / (2.0 * kappa), 0
    while abs(mu - 1.0) > tol and count < 1000:
        mu = mu * ((p + 1.0 - mu) / p) ** p
        count += 1
    return count


def default_newton_steps(xp: ModuleType, dtype: Any, p: int) -> int:
    """Default ``steps`` of ``"newton"``: the scalar model's count for ``κ·b/λ_max = 1/u``, plus 2.

    ``u`` is the unit roundoff of the compute ``dtype``: condition numbers
    beyond ``1/u`` are not resolved by the dtype at all.  The model runs the
    iteration on the smallest eigenvalue ``μ₀ = (p + 1)/(2κ)`` until it is
    within ``√u`` of 1 (one more quadratic step reaches ``u``, counted in the
    margin).  For ``p = 4``: 23 steps (float32), 46 (float64), 9 (bfloat16).
    """
    u = _unit_roundoff(xp, dtype)
    return _growth_count(int(p), 1.0 / u, math.sqrt(u)) + _MARGIN_STEPS


def newton_tolerance(xp: ModuleType, dtype: Any, n: int, p: int) -> float:
    """Return the convergence tolerance on ``‖M − I‖_F``: ``p·ε·√n`` (ε = 2u, machine epsilon).

    Measured (PyTorch and NumPy, ``n`` from 16 to 1024, ``p`` from 1 to 8,
    float64, float32, bfloat16) the iteration levels off at ``‖M − I‖_F``
    between ``0.25·p·u·√n`` and ``0.6·p·u·√n``: the tolerance is about four
    times that floor.  Once below it, ``X`` is within ``‖M − I‖₂/p ≤ ε·√n`` of
    the exact iterate's limit, below the rounding of ``X`` itself.
    """
    return 2.0 * _unit_roundoff(xp, dtype) * p * math.sqrt(n)


def _power(xp: ModuleType, t: Array, p: int) -> Array:
    """``tᵖ`` by repeated squaring: ``⌊log₂ p⌋ + popcount(p) − 1`` products."""
    out, base = None, t
    while p:
        if p & 1:
            out = base if out is None else out @ base
        p >>= 1
        if p:
            base = base @ base
    return out


def _deviation(xp: ModuleType, m: Array, eye: Array) -> Array:
    """``‖M − I‖_F`` per matrix, shape ``(...)``, in at least float32."""
    d = m - eye
    wide = at_least_float32(xp, d.dtype)
    if d.dtype != wide:
        d = xp.astype(d, wide)
    return xp.linalg.vector_norm(d, axis=(-2, -1))


def _start(
    xp: ModuleType, a: Array, p: int, eps: float, compute: Any
) -> tuple[Array, Array, Array]:
    """Return ``(X₀, M₀, zero)``: the start in ``compute`` (formed in at least float32).

    ``A = (a + aᴴ)/2 + εI``; ``b = min(‖A‖_F, max row sum of |A|)`` is taken as
    ``peak·b'`` with ``peak = max|Aᵢⱼ|`` (clamped into the normal range by
    :func:`polarlinalg._linalg.normal_divisor`) and ``b'`` of ``A/peak``, so
    nothing overflows or underflows whatever the scale of ``a``: then
    ``M₀ = (A/peak)·(p + 1)/(2b')`` and
    ``X₀ = ((p + 1)/(2b'))^{1/p}·peak^{−1/p}·I``.  ``zero`` (shape
    ``(..., 1, 1)``) marks the zero matrices (``a = 0``, ``ε = 0``), which get
    the start of the identity and an infinite root at the end.
    """
    setup = at_least_float32(xp, compute)
    h = symmetrize(xp, _cast(xp, a, setup))
    eye = eye_like(xp, h, h.shape[-1])
    if eps:
        h = h + eps * eye
    peak = xp.max(xp.abs(h), axis=(-2, -1), keepdims=True)
    divisor = normal_divisor(xp, peak)  # 1 for a zero matrix
    scaled = h / _cast(xp, divisor, setup)
    mag = xp.abs(scaled)
    fro = xp.linalg.vector_norm(mag, axis=(-2, -1), keepdims=True)
    rows = xp.max(xp.sum(mag, axis=-1, keepdims=True), axis=-2, keepdims=True)
    zero = peak == 0
    bound = xp.where(zero, xp.ones_like(fro), xp.minimum(fro, rows))  # b/peak ≥ λ_max/peak
    z = (p + 1.0) / (2.0 * bound)
    m0 = scaled * _cast(xp, z, setup)
    x0 = eye * _cast(xp, z ** (1.0 / p) * divisor ** (-1.0 / p), setup)
    return _cast(xp, x0, compute), _cast(xp, m0, compute), zero


def newton_run(
    xp: ModuleType,
    a: Array,
    p: int,
    eps: float,
    steps: int,
    compute: Any,
    checked: bool = True,
    traced: bool | None = None,
) -> NewtonRun:
    """Run the coupled Newton iteration on ``a`` (square, nonempty); see :func:`inv_root`.

    Per step and matrix, with ``d = ‖M − I‖_F`` (in at least float32): the
    new iterate is kept unless the matrix already stopped or its ``d`` grew
    (then it keeps the previous iterate and stops); it has converged, and
    stops, once ``d ≤`` :func:`newton_tolerance`; a non-finite ``d`` stops it
    too.  Eagerly the loop ends when every matrix stopped (one host
    synchronisation per step); traced (default: :func:`polarlinalg._compat.is_traced`;
    tests force it on eager arrays) it runs exactly ``steps`` steps, as one
    ``jax.lax.fori_loop`` under JAX.
    """
    x, m, zero = _start(xp, a, p, eps, compute)
    n = x.shape[-1]
    eye = eye_like(xp, m, n)
    if traced is None:
        traced = is_traced(m)
    tol = newton_tolerance(xp, compute, n, p)
    dev = _deviation(xp, m, eye)
    converged = dev <= tol
    stopped = converged | ~xp.isfinite(dev)

    def step(state: tuple[Array, ...]) -> tuple[Array, ...]:
        x, m, dev, converged, stopped = state
        t = ((p + 1.0) * eye - m) * (1.0 / p)
        x_new = x @ t
        m_new = _power(xp, t, p) @ m
        dev_new = _deviation(xp, m_new, eye)
        grew = dev_new > dev  # the rounding floor, or an indefinite A diverging
        keep = stopped | grew
        x = xp.where(keep[..., None, None], x, x_new)
        m = xp.where(keep[..., None, None], m, m_new)
        newly = ~keep & (dev_new <= tol)
        stopped = stopped | grew | newly | ~xp.isfinite(dev_new)
        return x, m, xp.where(keep, dev, dev_new), converged | newly, stopped

    state = (x, m, dev, converged, stopped)
    if traced:
        state = fori_loop(m, steps, step, state)
        taken = steps
    else:
        taken = 0
        while taken < steps and not bool(xp.all(state[4])):
            state = step(state)
            taken += 1
    x, _, _, converged, stopped = state
    x = xp.where(zero, xp.full_like(x, math.inf), x)
    if not checked:
        # NaN/inf input: the whole matrix NaN (products spread it only partly)
        finite = xp.all(xp.isfinite(a), axis=(-2, -1), keepdims=True)
        x = xp.where(finite, x, xp.full_like(x, math.nan))
    return NewtonRun(x, taken, converged, stopped)
