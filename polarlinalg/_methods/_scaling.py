"""Normalisation shared by the polynomial iterations."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from polarlinalg._compat import host_frobenius_norms
from polarlinalg._dtypes import real_dtype
from polarlinalg._linalg import safe_divisor, scaled_frobenius_norm

__all__ = ["host_scale", "normalise_frobenius"]


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
    scale = host_scale(xp, x, safety, eps)
    if scale is not None:
        return x * scale
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


def host_scale(xp: ModuleType, x: Any, safety: float, eps: float) -> Any:
    """Return ``1/max(safety·‖x‖_F, eps)`` per matrix from one pass, or None.

    Only where the norms can be read on the host for free
    (:func:`polarlinalg._compat.host_frobenius_norms`: eager PyTorch on a CPU),
    and only when every norm is in the range where one unscaled sum of squares
    is accurate: finite (no square overflowed) and at least
    ``√(mn·tiny)`` (``tiny`` the accumulating dtype's smallest normal number),
    so the squares that underflow change the sum by at most one rounding
    error; and with ``1/norm`` a normal number.  Anything else, NaN and
    infinity included, returns None and takes the two-factor path of
    :func:`normalise_frobenius`, which is safe for every input.  This path is
    one pass and one multiplication instead of four passes there (PyTorch's
    inf-norm is also a slow reduction on CPUs).  A single matrix gets a Python
    float (PyTorch multiplies half-precision tensors by it in float32); a
    stack gets a ``(..., 1, 1)`` tensor of ``x``'s dtype, when every factor is
    a normal number of that dtype.
    """
    norms = host_frobenius_norms(x)
    if norms is None:
        return None
    accumulate = xp.finfo(xp.float32 if x.dtype in (xp.float16, xp.bfloat16) else x.dtype)
    tiny = float(accumulate.smallest_normal)
    low = math.sqrt(x.shape[-2] * x.shape[-1] * tiny)
    if not all(low <= v and math.isfinite(v) and safety * v * tiny <= 1.0 for v in norms):
        return None
    scales = [1.0 / max(safety * v, eps) for v in norms]
    if x.ndim == 2:
        return scales[0]
    info = xp.finfo(x.dtype)
    if not all(float(info.smallest_normal) <= f <= float(info.max) for f in scales):
        return None
    return xp.reshape(xp.asarray(scales, dtype=x.dtype, device=x.device), (*x.shape[:-2], 1, 1))
