r"""Inverse p-th roots of Hermitian positive semi-definite matrices: ``(A + εI)^{−1/p}``.

The matrix function behind Shampoo's preconditioners.  Two methods:

``"eigh"`` (the reference)
    ``A = V diag(λ) Vᴴ`` by ``xp.linalg.eigh`` of ``(A + Aᴴ)/2``; eigenvalues
    below zero (rounding of a PSD matrix) are set to zero, then
    ``V diag((λ + ε)^{−1/p}) Vᴴ`` (a zero ``λ + ε`` gives a non-finite
    result).  Backward stable: the result is that of a matrix within a few
    ulps of ``A`` (relative to ``‖A‖``), so its relative error grows like
    ``κ(A + εI)^{1/p}·u`` at most.  Computed in float32 or wider (no eigh
    in half precision on any backend).
``"newton"`` (matmul-only)
    The coupled Newton iteration (Guo & Higham 2006; used by Anil et al.'s
    scalable Shampoo): with ``b ≥ λ_max(A)`` (the smaller of the Frobenius
    norm and the largest absolute row sum) and ``z = (1 + p)/(2b)``,
    ``X₀ = z^{1/p} I``, ``M₀ = z A``, then ``T = ((p + 1)I − M)/p``,
    ``X ← X T``, ``M ← Tᵖ M``; ``M → I`` and ``X → A^{−1/p}``.  Only matrix
    products, so it runs in bfloat16 on accelerators.  Small eigenvalues grow
    by ``((p + 1)/p)ᵖ`` per step (2.44 for ``p = 4``) until they reach the
    quadratic phase: about ``log(κ√n)/log 2.44 + 5`` steps; the default 40
    cover ``κ√n`` up to about ``1e13`` for ``p = 4``.  Eagerly it stops when
    every matrix has ``max|M − I| ≤ tol``; traced (``jax.jit``) it runs the
    fixed count and freezes converged matrices with ``where``.

Measured bands (relative Frobenius error against a float64 NumPy eigh
reference, ``p ∈ {2, 4}``, ``n = 64``, PSD matrices with log-spaced
eigenvalues of condition ``κ``; AMD EPYC, NumPy/OpenBLAS):

=========  ===============  ===============  ================
κ          eigh float64     eigh float32     newton float32
=========  ===============  ===============  ================
1          1e-15            1e-7             1e-7
1e2        4e-15            2e-7             1e-6
1e4        2e-13            7e-6             4e-5
1e6        2e-11            4e-4             3e-3
=========  ===============  ===============  ================

Newton in float64 matches eigh's column; in bfloat16 (torch, n = 16,
κ ≤ 1e3) it reaches 0.5–4e-2.
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any

from polarlinalg._compat import array_namespace, dtype_from_name, is_traced
from polarlinalg._dtypes import at_least_float32
from polarlinalg._linalg import conj_transpose, eye_like

__all__ = ["INV_ROOT_METHODS", "NEWTON_STEPS", "inv_root"]

INV_ROOT_METHODS: tuple[str, ...] = ("eigh", "newton")
"""Methods of :func:`inv_root`."""

NEWTON_STEPS = 40
"""Default maximum number of coupled Newton steps."""


def _check(a: Any, p: Any, method: str, eps: Any, steps: Any) -> None:
    if method not in INV_ROOT_METHODS:
        valid = ", ".join(repr(m) for m in INV_ROOT_METHODS)
        raise ValueError(f"unknown inv_root method {method!r}; choose one of {valid}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 < p < math.inf:
        raise ValueError(f"p must be a positive number; got {p!r}")
    if method == "newton" and float(p) != int(p):
        raise ValueError(f"method='newton' needs an integer p; got {p!r} (use method='eigh')")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a number >= 0; got {eps!r}")
    if not 0.0 <= float(eps) < math.inf:
        raise ValueError(f"eps must be a finite number >= 0; got {eps!r}")
    if steps is not None and (
        isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1
    ):
        raise ValueError(f"steps must be a positive integer or None; got {steps!r}")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"inv_root needs square matrices (..., n, n); got shape {tuple(a.shape)}")


def inv_root(
    a: Any,
    p: float,
    *,
    method: str = "eigh",
    eps: float = 0.0,
    steps: int | None = None,
    compute_dtype: Any = None,
    check_finite: bool = True,
) -> Any:
    r"""Return ``(a + eps·I)^{−1/p}`` for Hermitian positive semi-definite ``a``.

    Parameters
    ----------
    a : array, shape (..., n, n)
        Hermitian PSD matrices (a batch over the leading axes), real or
        complex, of any Array API namespace.  Only ``(a + aᴴ)/2`` is used.
    p : float
        The root: any positive number for ``"eigh"``, a positive integer for
        ``"newton"``.
    method : {"eigh", "newton"}, default "eigh"
        See the module docstring.
    eps : float, default 0
        Regularisation ``ε ≥ 0``.  With ``eps = 0`` a singular ``a`` has no
        inverse root: the result is not finite (``"eigh"``: inf/NaN entries).
    steps : int, optional
        Maximum number of Newton steps (default :data:`NEWTON_STEPS`).
    compute_dtype : dtype or str, optional
        Dtype of the computation (``"newton"`` may use bfloat16/float16;
        ``"eigh"`` at least float32).  Default: ``a``'s dtype, at least
        float32 for ``"eigh"``.
    check_finite : bool, default True
        Raise ValueError for NaN/inf input (eager arrays only).

    Returns
    -------
    array, shape (..., n, n)
        In ``a``'s dtype.

    Raises
    ------
    ValueError, TypeError
        For a bad ``p``, ``eps``, ``steps`` or ``method``, non-square input,
        non-floating dtypes, or (``check_finite``) NaN/inf.

    References
    ----------
    Guo, Higham, "A Schur–Newton method for the matrix p-th root and its
    inverse", SIAM J. Matrix Anal. Appl. 28 (2006); Anil, Gupta, Koren,
    Regan, Singer, "Scalable Second Order Optimization for Deep Learning",
    arXiv:2002.09018 (2020).

    Examples
    --------
    >>> import numpy as np
    >>> from polarlinalg import inv_root
    >>> a = np.array([[4.0, 0.0], [0.0, 16.0]])
    >>> inv_root(a, 2)
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    xp = array_namespace(a)
    _check(a, p, method, eps, steps)
    if not xp.isdtype(a.dtype, ("real floating", "complex floating")):
        raise TypeError(f"inv_root needs a floating array; got dtype {a.dtype}")
    if check_finite and not is_traced(a) and not bool(xp.all(xp.isfinite(a))):
        raise ValueError("inv_root: the input contains NaN or infinity")
    if math.prod(a.shape) == 0:
        return xp.zeros_like(a)
    dtype = a.dtype
    if compute_dtype is None:
        compute = dtype if method == "newton" else at_least_float32(xp, dtype)
    else:
        compute = (
            dtype_from_name(xp, compute_dtype) if isinstance(compute_dtype, str) else compute_dtype
        )
        if method == "eigh":
            compute = at_least_float32(xp, compute)
    x = a if a.dtype == compute else xp.astype(a, compute)
    x = (x + conj_transpose(xp, x)) / 2
    if method == "eigh":
        out = _eigh_root(xp, x, float(p), float(eps))
    else:
        out = _newton_root(xp, x, int(p), float(eps), NEWTON_STEPS if steps is None else steps)
    return out if out.dtype == dtype else xp.astype(out, dtype)


def _eigh_root(xp: ModuleType, a: Any, p: float, eps: float) -> Any:
    w, v = xp.linalg.eigh(a)
    w = xp.maximum(w, xp.zeros_like(w)) + eps
    scaled = v * xp.astype(w ** (-1.0 / p), v.dtype)[..., None, :]
    return scaled @ conj_transpose(xp, v)


def _tolerance(xp: ModuleType, dtype: Any, n: int) -> float:
    real = (
        xp.real(xp.zeros(1, dtype=dtype)).dtype if xp.isdtype(dtype, "complex floating") else dtype
    )
    return float(xp.finfo(real).eps) * math.sqrt(n)


def _power(m: Any, p: int) -> Any:
    out, base = None, m
    while p:
        if p & 1:
            out = base if out is None else out @ base
        p >>= 1
        if p:
            base = base @ base
    return out


def _newton_root(xp: ModuleType, a: Any, p: int, eps: float, steps: int) -> Any:
    n = a.shape[-1]
    eye = eye_like(xp, a, n)
    if eps:
        a = a + eps * eye
    mag = xp.abs(a)
    fro = xp.sqrt(xp.sum(xp.real(mag * mag), axis=(-2, -1), keepdims=True))
    rows = xp.max(xp.sum(xp.real(mag), axis=-1, keepdims=True), axis=-2, keepdims=True)
    bound = xp.minimum(fro, rows)
    bound = xp.where(bound > 0, bound, xp.ones_like(bound))
    z = (1.0 + p) / (2.0 * bound)
    z = xp.astype(z, a.dtype)
    x = xp.zeros_like(a) + eye * z ** (1.0 / p)
    m = a * z
    tol = _tolerance(xp, a.dtype, n)
    traced = is_traced(a)
    for _ in range(steps):
        err = xp.max(xp.abs(m - eye), axis=(-2, -1), keepdims=True)
        done = err <= tol
        if not traced and bool(xp.all(done)):
            break
        t = ((p + 1) * eye - m) / p
        x = xp.where(done, x, x @ t)
        m = xp.where(done, m, _power(t, p) @ m)
    return x
