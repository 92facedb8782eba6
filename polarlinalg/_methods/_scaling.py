"""Normalisation shared by the polynomial iterations."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from polarlinalg._dtypes import real_dtype
from polarlinalg._linalg import safe_divisor, scaled_frobenius_norm

__all__ = ["normalise_frobenius"]


def normalise_frobenius(xp: ModuleType, x: Any, safety: float = 1.0) -> Any:
    """Return ``x / (safety·‖x‖_F)`` per matrix, so every singular value is ≤ 1/safety.

    Computed as ``(x / p) · 1/(safety·r)`` with ``‖x‖_F = p·r``
    (:func:`polarlinalg._linalg.scaled_frobenius_norm`): ``p`` is an element of
    ``x``, so the division is exact up to rounding, and the factor
    ``1/(safety·r)`` lies in ``[1/(safety·√(mn)), 1/safety]``, so no step
    overflows or underflows.  Half-precision input is scaled in float32 and
    rounded once (a float16 ``p`` can be subnormal, and XLA flushes subnormal
    operands to zero).  There is no ``eps`` floor: a tiny nonzero matrix is
    normalised exactly like a large one, and an all-zero matrix stays zero.
    """
    peak, rel = scaled_frobenius_norm(xp, x)
    factor = 1.0 / (safety * rel)
    rdtype = real_dtype(xp, x.dtype)
    if rdtype != peak.dtype:  # half precision (always real): scale in float32, round once
        wide = xp.astype(x, peak.dtype)
        return xp.astype(wide / safe_divisor(xp, peak) * factor, x.dtype)
    return x / xp.astype(safe_divisor(xp, peak), rdtype) * xp.astype(factor, rdtype)
