"""Quality measures of a polar decomposition, and gradient statistics.

Every function takes Array API arrays of any supported framework, works on
stacks of matrices (the last two axes), and returns an array of the batch
shape (0-d for a single matrix) in the same namespace, computed in at least
float32.  For validation against references, pass float64 NumPy arrays.

Zero-size input: an empty batch ``(0, m, n)`` gives an empty result of shape
``(0,)``.  A matrix with no rows or no columns (``m = 0`` or ``n = 0``) has no
entries and no singular values, so every norm and error is 0
(:func:`orthogonality_error` included: its ``0 × 0`` Gram matrix is the
identity, so such a matrix counts as orthonormal, and it is its own polar
factor), :func:`nuclear_norm` is the empty sum 0 and :func:`condition_number`
is 1, the value of an orthonormal matrix (see there).

References
----------
Higham, *Functions of Matrices*, SIAM 2008, ch. 8; Lau, Long and Su,
"PolarGrad", arXiv:2505.21799 (2025), for the nuclear-norm identities.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from polarlinalg._compat import array_namespace, device
from polarlinalg._dtypes import at_least_float32, real_dtype
from polarlinalg._linalg import conj_transpose, eye_like, frobenius_norm, real_inner, safe_divisor

__all__ = [
    "backward_error",
    "condition_number",
    "forward_error",
    "hermitian_error",
    "nuclear_norm",
    "orthogonality_error",
    "polar_gap",
]

Array = Any


def _widen(xp: Any, *arrays: Array) -> list[Array]:
    out = []
    for x in arrays:
        if xp.isdtype(x.dtype, ("integral", "bool")):
            info = xp.__array_namespace_info__()
            dtype = info.default_dtypes(device=device(x))["real floating"]
        else:
            dtype = at_least_float32(xp, x.dtype)
        out.append(x if x.dtype == dtype else xp.astype(x, dtype))
    return out


def _check_matrix(x: Array, name: str) -> None:
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., m, n); got shape {tuple(x.shape)}")


def _fro(xp: Any, x: Array) -> Array:
    return frobenius_norm(xp, x)[..., 0, 0]


def orthogonality_error(u: Array) -> Array:
    """Return ``‖UᴴU − I‖_F / √n`` (or ``‖UUᴴ − I‖_F / √m`` for wide ``U``).

    The Gram matrix is taken on the short side ``k = min(m, n)``, so the
    measure is 0 exactly when the columns (tall) or rows (wide) are
    orthonormal; it is the RMS deviation of ``σᵢ(U)²`` from 1.
    """
    _check_matrix(u, "u")
    xp = array_namespace(u)
    (u,) = _widen(xp, u)
    m, n = u.shape[-2], u.shape[-1]
    gram = conj_transpose(xp, u) @ u if m >= n else u @ conj_transpose(xp, u)
    k = min(m, n)
    return _fro(xp, gram - eye_like(xp, gram, k)) / math.sqrt(max(k, 1))


def backward_error(a: Array, u: Array, h: Array, side: Literal["right", "left"] = "right") -> Array:
    """Return ``‖a − u h‖_F / ‖a‖_F`` (right) or ``‖a − h u‖_F / ‖a‖_F`` (left); 0 for ``a = 0``."""
    for x, name in ((a, "a"), (u, "u"), (h, "h")):
        _check_matrix(x, name)
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left'; got {side!r}")
    xp = array_namespace(a, u, h)
    a, u, h = _widen(xp, a, u, h)
    residual = a - (u @ h if side == "right" else h @ u)
    return _fro(xp, residual) / safe_divisor(xp, _fro(xp, a))


def hermitian_error(h: Array) -> Array:
    """Return ``‖h − hᴴ‖_F / ‖h‖_F`` (0 for ``h = 0``)."""
    _check_matrix(h, "h")
    xp = array_namespace(h)
    (h,) = _widen(xp, h)
    return _fro(xp, h - conj_transpose(xp, h)) / safe_divisor(xp, _fro(xp, h))


def forward_error(u: Array, u_ref: Array) -> Array:
    """Return ``‖u − u_ref‖_F / ‖u_ref‖_F`` (0 when both are 0)."""
    _check_matrix(u, "u")
    _check_matrix(u_ref, "u_ref")
    xp = array_namespace(u, u_ref)
    u, u_ref = _widen(xp, u, u_ref)
    return _fro(xp, u - u_ref) / safe_divisor(xp, _fro(xp, u_ref))


def nuclear_norm(a: Array, u: Array | None = None) -> Array:
    """Return the nuclear norm ``‖a‖_* = Σσᵢ = tr(H)``.

    Parameters
    ----------
    a : array, shape (..., m, n)
    u : array, shape (..., m, n), optional
        A polar factor of ``a``.  Then ``‖a‖_* = Re⟨a, u⟩`` costs one
        elementwise product and a sum, no SVD (PolarGrad's step scale); with
        an approximate ``u`` it is the corresponding estimate.  Without ``u``
        the singular values are computed.
    """
    _check_matrix(a, "a")
    xp = array_namespace(a) if u is None else array_namespace(a, u)
    if u is not None:
        _check_matrix(u, "u")
        return real_inner(xp, a, u)
    (a,) = _widen(xp, a)
    return xp.sum(xp.linalg.svdvals(a), axis=-1)


def polar_gap(a: Array, u: Array) -> Array:
    """Return ``(‖a‖_* − Re⟨a, u⟩) / ‖a‖_*``: how well ``u`` estimates the nuclear norm.

    0 for the exact polar factor, positive for an approximate one whose
    singular values are below 1 (0 for ``a = 0``).
    """
    exact = nuclear_norm(a)
    xp = array_namespace(exact)
    estimate = nuclear_norm(a, u)
    if estimate.dtype != exact.dtype:
        estimate = xp.astype(estimate, exact.dtype)
    return (exact - estimate) / safe_divisor(xp, exact)


def condition_number(a: Array) -> Array:
    """Return the 2-norm condition number ``κ₂ = σ_max / σ_min`` over ``min(m, n)`` values.

    ``inf`` when ``σ_min = 0`` (a singular or rank-deficient matrix, or zero).
    This is the "gradient anisotropy" of the PolarGrad paper when ``a`` is a
    gradient.  A matrix with no rows or no columns (``min(m, n) = 0``) has no
    singular values; its condition number is defined as 1, the value of an
    orthonormal matrix, which it vacuously is (:func:`orthogonality_error` is
    0).  This keeps ``κ₂ ≥ 1`` and ``1/κ₂ ∈ [0, 1]`` (a valid ``lower=`` for the
    rational methods), where ``‖a‖₂‖a⁺‖₂ = 0·0`` (MATLAB's ``cond([])``) would
    not; NumPy's ``cond`` raises instead.
    """
    _check_matrix(a, "a")
    xp = array_namespace(a)
    (a,) = _widen(xp, a)
    if a.shape[-2] == 0 or a.shape[-1] == 0:
        rdtype = real_dtype(xp, a.dtype)
        return xp.ones(a.shape[:-2], dtype=rdtype, device=device(a))
    s = xp.linalg.svdvals(a)
    s_max = xp.max(s, axis=-1)
    s_min = xp.min(s, axis=-1)
    inf = xp.full_like(s_max, math.inf)
    return xp.where(s_min == 0, inf, s_max / safe_divisor(xp, s_min))
