"""Normalisation shared by the polynomial iterations."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from polarlinalg._dtypes import real_dtype
from polarlinalg._linalg import frobenius_norm, safe_reciprocal

__all__ = ["normalise_frobenius"]


def normalise_frobenius(xp: ModuleType, x: Any, safety: float = 1.0) -> Any:
    """Return ``x / (safety·‖x‖_F)`` per matrix, so every singular value is ≤ 1/safety.

    The norm is taken in at least float32 without overflow or underflow
    (see :func:`polarlinalg._linalg.frobenius_norm`), and there is no ``eps``
    floor: a tiny nonzero matrix is normalised exactly like a large one, and
    an all-zero matrix stays zero.
    """
    scale = safe_reciprocal(xp, frobenius_norm(xp, x) * safety)
    return x * xp.astype(scale, real_dtype(xp, x.dtype))
