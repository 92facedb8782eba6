"""Small matrix helpers on the Array API standard, shared by the methods.

Every function takes the namespace ``xp`` first and works on stacks of
matrices (the last two axes), real or complex.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from polarlinalg._compat import device
from polarlinalg._dtypes import at_least_float32, is_complex, real_dtype

__all__ = [
    "conj_transpose",
    "eye_like",
    "frobenius_norm",
    "normal_divisor",
    "real_inner",
    "safe_divisor",
    "safe_reciprocal",
    "scaled_frobenius_norm",
    "symmetrize",
]


def conj_transpose(xp: ModuleType, x: Any) -> Any:
    """Return the conjugate transpose of the last two axes (a plain transpose when real)."""
    xt = xp.matrix_transpose(x)
    return xp.conj(xt) if is_complex(xp, x.dtype) else xt


def symmetrize(xp: ModuleType, h: Any) -> Any:
    """Return the Hermitian part ``(h + hᴴ)/2``."""
    return (h + conj_transpose(xp, h)) * 0.5


def eye_like(xp: ModuleType, x: Any, n: int) -> Any:
    """Return the ``n × n`` identity with the dtype and device of ``x``."""
    return xp.eye(n, dtype=x.dtype, device=device(x))


def scaled_frobenius_norm(xp: ModuleType, x: Any) -> tuple[Any, Any]:
    """Return ``(p, r)`` with ``‖x‖_F = p·r`` per matrix, both of shape ``(..., 1, 1)``.

    ``p = max|xᵢⱼ|`` is an element's magnitude, so it is representable in the
    input dtype, and ``r = ‖x/p‖_F ∈ [1, √(mn)]`` is computed in at least
    float32: neither overflows or underflows, whatever the scale of ``x`` (a
    float16 gradient of 1e4, a float32 matrix of 1e-39).  Normalising as
    ``(x / p) / r`` is then safe too.  For an all-zero matrix ``p = 0`` and
    ``r = 1``.  The full-size work is three passes (the max, one division,
    the norm; a float32 copy in half precision).  A matrix with no rows or
    no columns has ``p = 0`` and ``r = 1``, like a zero matrix.

    Outside the normal range ``p`` is the largest magnitude clamped by
    :func:`normal_divisor` into ``[tiny, 1/tiny]`` (``tiny`` the smallest
    normal number, ``2^-1022`` in float64): then ``r ∈ [2^-52, 4√(mn)]``
    (float64) instead, and ``x / p`` is still safe on XLA, which divides by
    ``p`` as a multiplication by ``1/p``.
    """
    dtype = at_least_float32(xp, real_dtype(xp, x.dtype))
    if x.shape[-2] == 0 or x.shape[-1] == 0:
        # no entries: ‖x‖_F = 0 (PyTorch rejects an inf-norm over an empty axis);
        # shapes are static, so this branch is jit-safe
        peak = xp.zeros((*x.shape[:-2], 1, 1), dtype=dtype, device=device(x))
        return peak, xp.ones_like(peak)
    # max |x_ij| in one pass (exact in any dtype); zeros become ones on the
    # reduced array only, so the full-size work is one division and one norm
    if x.dtype != dtype and not is_complex(xp, x.dtype):
        # half precision: work in float32 (subnormal float16 entries, which some
        # backends flush to zero, stay exact there; the norm's sum needs it anyway)
        x = xp.astype(x, dtype)
    peak = xp.linalg.vector_norm(x, axis=(-2, -1), keepdims=True, ord=float("inf"))
    divisor = normal_divisor(xp, peak)
    rel = xp.linalg.vector_norm(x / divisor, axis=(-2, -1), keepdims=True)
    if divisor.dtype != dtype:
        divisor = xp.astype(divisor, dtype)
    if rel.dtype != dtype:
        rel = xp.astype(rel, dtype)
    zero = peak == 0
    return xp.where(zero, xp.zeros_like(divisor), divisor), xp.where(zero, xp.ones_like(rel), rel)


def frobenius_norm(xp: ModuleType, x: Any) -> Any:
    """Return ``‖x‖_F`` of each matrix, shape ``(..., 1, 1)``, in at least float32.

    Computed as ``p·r`` (:func:`scaled_frobenius_norm`), so the sum of squares
    can neither overflow nor underflow; an all-zero matrix has norm exactly 0.
    """
    peak, rel = scaled_frobenius_norm(xp, x)
    return peak * rel


def safe_divisor(xp: ModuleType, s: Any) -> Any:
    """Return ``s`` with zeros replaced by ones, so dividing by it never gives NaN."""
    return xp.where(s == 0, xp.ones_like(s), s)


def normal_divisor(xp: ModuleType, peak: Any) -> Any:
    """Return the nonnegative ``peak`` clamped into ``[tiny, 1/tiny]``, zeros as ones.

    ``tiny`` is the dtype's smallest normal number (``2^-1022`` in float64,
    ``2^-126`` in float32).  Dividing a matrix by its largest magnitude
    ``peak`` normalises it; dividing by this instead is safe on every
    backend.  XLA (JAX) computes ``x / b`` for a broadcast ``b`` as
    ``x · (1/b)``, and ``1/b`` is a normal number only inside that range: for
    ``b > 1/tiny`` (float64 entries above 4.5e307, float32 above 8.5e37) it
    is subnormal, and CPUs flush it to zero (a zero matrix out of a finite
    one); for ``b < 2^-1024`` it overflows.  Both clamps are powers of two, so
    an out-of-range ``peak`` gives a quotient that is exact (subnormal input)
    or rounded once, with entries of magnitude at most ``peak/divisor``: at
    most 4 (``2^1024/2^1022``), and at least ``2^-52`` of the largest.
    """
    tiny = float(xp.finfo(peak.dtype).smallest_normal)
    clamped = xp.minimum(xp.maximum(peak, xp.full_like(peak, tiny)), xp.full_like(peak, 1.0 / tiny))
    return xp.where(peak == 0, xp.ones_like(peak), clamped)


def safe_reciprocal(xp: ModuleType, s: Any) -> Any:
    """Return ``1/s`` where ``s != 0`` and ``0`` where ``s == 0``.

    Dividing a zero matrix by its (zero) norm this way gives zeros, not NaN.
    """
    return xp.where(s == 0, xp.zeros_like(s), 1.0 / safe_divisor(xp, s))


def real_inner(xp: ModuleType, a: Any, b: Any) -> Any:
    """Return ``Re⟨a, b⟩ = Re Σ conj(a) ⊙ b`` per matrix, shape ``(...)``.

    Half-precision inputs are widened to float32 first, so the sum keeps its
    accuracy; the result has that (at least 32-bit, real) dtype.
    """
    wide = at_least_float32(xp, a.dtype)
    if a.dtype != wide:
        a, b = xp.astype(a, wide), xp.astype(b, wide)
    elif b.dtype != wide:
        b = xp.astype(b, wide)
    prod = xp.conj(a) * b if is_complex(xp, a.dtype) else a * b
    total = xp.sum(prod, axis=(-2, -1))
    return xp.real(total) if is_complex(xp, total.dtype) else total
