"""Normalisation shared by the polynomial iterations."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from polarlinalg._dtypes import real_dtype
from polarlinalg._linalg import safe_divisor, scaled_frobenius_norm

__all__ = ["normalise_frobenius"]


def normalise_frobenius(xp: ModuleType, x: Any, safety: float = 1.0, eps: float = 0.0) -> Any:
    """Return ``x / max(safety·‖x‖_F, eps)`` per matrix: every singular value is ≤ 1/safety.

    With ``‖x‖_F = p·r`` (:func:`polarlinalg._linalg.scaled_frobenius_norm`), in
    at least float32: ``p`` is an element's magnitude (clamped into the normal range
    by :func:`polarlinalg._linalg.normal_divisor`) and ``r`` about ``[1, √(mn)]``, so
    nothing overflows or underflows.  Single and double precision compute
    ``(x / p) · 1/(safety·r)``: the division is exact up to rounding.  Half
    precision multiplies by ``f = 1/(p·safety·r)`` in two factors ``√f``, each
    rounded to the input dtype: one ``f`` can overflow float16 (a matrix of
    1e-6 needs ``f ≈ 1e6``) while ``√f`` is representable for any input with a
    normal entry, and the work stays two passes in half precision.  There is
    ``eps`` floor by default: a tiny nonzero matrix is normalised exactly like a
    large one, and an all-zero matrix stays zero.  ``eps > 0`` reproduces the
    clamp of ``torch.optim.Muon`` (``X / ‖X‖_F.clamp(min=eps)``): matrices with
    ``safety·‖x‖_F < eps`` are divided by ``eps`` and come out smaller than 1.
    """
    peak, rel = scaled_frobenius_norm(xp, x)
    rdtype = real_dtype(xp, x.dtype)
    if eps > 0.0:
        norm = xp.maximum(peak * (safety * rel), xp.full_like(peak, eps))
        if rdtype != peak.dtype:  # half precision: two representable factors
            root = xp.astype(xp.sqrt(1.0 / norm), x.dtype)
            return (x * root) * root
        # (x / p) / max(safety·r, eps/p): one division by ‖x‖_F could be by a number
        # above 1/tiny, which XLA turns into a flushed-to-zero reciprocal
        divisor = safe_divisor(xp, peak)
        scale = xp.maximum(safety * rel, eps / divisor)
        return x / xp.astype(divisor, rdtype) / xp.astype(scale, rdtype)
    if rdtype != peak.dtype:  # half precision (always real)
        root = xp.astype(xp.sqrt(1.0 / (safe_divisor(xp, peak) * (safety * rel))), x.dtype)
        return (x * root) * root
    return x / xp.astype(safe_divisor(xp, peak), rdtype) * xp.astype(1.0 / (safety * rel), rdtype)
