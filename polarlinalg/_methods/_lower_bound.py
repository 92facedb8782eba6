"""Eager estimates of the extreme singular values, for the rational iterations.

QDWH and ZOLO-PD choose their weights from ``ℓ ≤ σ_min(X₀)`` with
``‖X₀‖₂ ≤ 1``.  A small ``ℓ`` is always safe but costs iterations (JAX fixes
``ℓ = ε``, so even an orthogonal input pays two QR-based steps); and the cheap
normalisation ``α ≥ ‖A‖₂`` can overestimate the norm by ``√n``, which looks
like bad conditioning.  On eager arrays this module estimates both for about
the cost of one iteration:

1. ``R`` of the QR factorization of ``X₀`` (``σ(R) = σ(X₀)``), R alone where
   the framework offers it;
2. ``R⁻¹`` by one triangular solve against the identity;
3. six power iterations each on ``RᴴR`` and on ``R⁻¹R⁻ᴴ`` (matrix–vector
   products from a fixed pseudo-random start), which approach ``‖R‖₂`` and
   ``‖R⁻¹‖₂ = 1/σ_min`` from below.

The new scale is ``β = 1.1·ν_max`` and the bound ``ℓ = max(1/‖R⁻¹‖_F,
1/(1.5·ν_inv)) / β``; ``1/‖R⁻¹‖_F ≤ σ_min`` always, and the margins keep the
estimates on the safe side unless power iteration has not resolved an
extreme singular value.  An error there costs only iterations: the methods
test convergence and continue (a singular value slightly above 1, or below
``ℓ``, still converges, just later).  Singular input (an infinite or NaN
``R⁻¹``) gives no estimate.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from polarlinalg._compat import device, qr_r, solve_triangular
from polarlinalg._dtypes import real_dtype
from polarlinalg._linalg import conj_transpose, eye_like

__all__ = ["Bounds", "estimate_bounds"]

_POWER_STEPS = 6
_NORM_MARGIN = 1.1
_LOWER_MARGIN = 1.5


class Bounds(NamedTuple):
    """Per-matrix rescaling ``beta`` (shape ``(..., 1, 1)``) and ``lower`` for ``X₀/beta``."""

    beta: Any
    lower: float


def _power_norm(xp: ModuleType, a: Any, steps: int) -> Any:
    """Estimate ``‖a‖₂`` per matrix by power iteration on ``aᴴa`` (from below)."""
    n = a.shape[-1]
    start = np.cos(np.arange(1, n + 1) * 1.7)  # fixed; no structure aligned with the axes
    v = xp.asarray(start / np.linalg.norm(start), dtype=a.dtype, device=device(a))
    v = xp.broadcast_to(xp.reshape(v, (n, 1)), (*a.shape[:-2], n, 1))
    a_h = conj_transpose(xp, a)
    nu = None
    for _ in range(steps):
        w = a @ v
        nu = xp.linalg.vector_norm(w, axis=(-2, -1))
        v = a_h @ w
        v = v / xp.astype(xp.linalg.vector_norm(v, axis=(-2, -1), keepdims=True), v.dtype)
    return nu


def estimate_bounds(xp: ModuleType, x0: Any) -> Bounds | None:
    """Estimate a rescaling and ``ℓ`` for the tall stack ``x0`` (``‖x0‖₂ ≤ 1``), or None.

    Eager arrays only: ``lower`` is a Python float read from the device.
    """
    n = x0.shape[-1]
    try:
        r = qr_r(xp, x0)
        eye = xp.broadcast_to(eye_like(xp, r, n), r.shape)
        r_inv = solve_triangular(xp, r, eye, lower=False)
        rdtype = real_dtype(xp, r.dtype)
        nu_max = xp.astype(_power_norm(xp, r, _POWER_STEPS), rdtype)
        nu_inv = xp.astype(_power_norm(xp, conj_transpose(xp, r_inv), _POWER_STEPS), rdtype)
        fro_inv = xp.linalg.vector_norm(r_inv, axis=(-2, -1))
        beta = xp.minimum(_NORM_MARGIN * nu_max, xp.ones_like(nu_max))
        sigma_min = xp.maximum(1.0 / fro_inv, 1.0 / (_LOWER_MARGIN * nu_inv))
        lower = float(xp.min(sigma_min / beta))
    except (ArithmeticError, RuntimeError, ValueError):  # numpy/torch LinAlgError: singular R
        return None
    if not math.isfinite(lower) or lower <= 0.0:
        return None
    return Bounds(xp.reshape(beta, (*beta.shape, 1, 1)), min(lower, 1.0))
