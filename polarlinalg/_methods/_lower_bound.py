"""Eager estimates of the extreme singular values, for the rational iterations.

QDWH and ZOLO-PD choose their weights from ``ℓ ≤ σ_min(X₀)`` with
``‖X₀‖₂ ≤ 1``.  A small ``ℓ`` is always safe but costs iterations (JAX fixes
``ℓ = ε``, so even an orthogonal input pays two QR-based steps); and the cheap
normalisation ``α ≥ ‖A‖₂`` can overestimate the norm by ``√n``, which looks
like bad conditioning.  On eager arrays this module estimates both for about
the cost of one iteration:

1. ``R`` of the QR factorization of ``X₀`` (``σ(R) = σ(X₀)``), R alone where
   the framework offers it; for square matrices on NumPy (with SciPy) and
   PyTorch, an LU factorization with partial pivoting of ``X₀ᵀ`` instead
   (``2n³/3`` flops against ``4n³/3``, and LAPACK's ``getrf`` runs faster
   than ``geqrf``);
2. six power iterations each on ``RᴴR`` (matrix–vector products) and on
   ``R⁻¹R⁻ᴴ`` (two triangular solves with a vector), from a fixed
   pseudo-random start; they approach ``‖R‖₂`` and ``‖R⁻¹‖₂ = 1/σ_min`` from
   below, at ``O(n²)`` each.  With the LU factors ``X₀ᵀ = PLU`` the same
   iterations run on ``X₀ᴴX₀`` (products with ``X₀``) and on ``M⁻¹M⁻ᴴ``,
   ``M = X₀ᵀ`` (two LU solves with a vector): ``‖M⁻¹‖₂ = ‖X₀⁻¹‖₂``.  LU is
   backward stable in practice (its growth factor is tiny for all but
   contrived matrices), so the solves see a matrix within a modest multiple
   of ``ε‖X₀‖`` of ``X₀``: an estimate of the same quality, well inside the
   margins below.

The new scale is ``β = 1.1·ν_max`` (capped at 1) and the bound
``ℓ = 1/(1.5·ν_inv·β)``; the margins keep the estimates on the safe side
unless power iteration has not resolved an extreme singular value.  An error
there costs only iterations: the methods test convergence and continue (a
singular value slightly above 1, or below ``ℓ``, still converges, just later).
Singular input (an infinite or NaN ``R⁻¹``) gives no estimate.
"""

from __future__ import annotations

import math
import warnings
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from polarlinalg._compat import _namespace_kind, device, qr_r, solve_triangular
from polarlinalg._dtypes import real_dtype
from polarlinalg._linalg import conj_transpose, safe_divisor

__all__ = ["LOWER_MARGIN", "Bounds", "estimate_bounds", "normalised", "power_norm", "start_vector"]

_POWER_STEPS = 6
_NORM_MARGIN = 1.1
LOWER_MARGIN = 1.5


class Bounds(NamedTuple):
    """Per-matrix rescaling ``beta`` (shape ``(..., 1, 1)``) and ``lower`` for ``X₀/beta``."""

    beta: Any
    lower: float


def start_vector(xp: ModuleType, like: Any) -> Any:
    """Return a fixed pseudo-random unit vector per matrix of ``like``, shape ``(..., n, 1)``."""
    n = like.shape[-1]
    start = np.cos(np.arange(1, n + 1) * 1.7)  # fixed; no structure aligned with the axes
    v = xp.asarray(start / np.linalg.norm(start), dtype=like.dtype, device=device(like))
    return xp.broadcast_to(xp.reshape(v, (n, 1)), (*like.shape[:-2], n, 1))


def normalised(xp: ModuleType, v: Any) -> Any:
    """Return ``v`` divided by its 2-norm, per matrix (a zero ``v`` stays zero)."""
    norm = xp.linalg.vector_norm(v, axis=(-2, -1), keepdims=True)
    return v / xp.astype(safe_divisor(xp, norm), v.dtype)


def power_norm(xp: ModuleType, a: Any, steps: int) -> Any:
    """Estimate ``‖a‖₂`` per matrix (from below) by ``steps`` power iterations on ``aᴴa``.

    Matrix–vector products only, a fixed number of them: it traces under jit.
    Returns a real array of the batch shape.
    """
    a_h = conj_transpose(xp, a)
    v = start_vector(xp, a)
    nu = None
    for _ in range(steps):
        w = a @ v
        nu = xp.linalg.vector_norm(w, axis=(-2, -1))
        v = normalised(xp, a_h @ w)
    return xp.astype(nu, real_dtype(xp, a.dtype))


def _lu_solver(xp: ModuleType, x0: Any) -> tuple[Any, Any] | None:
    """For square ``x0`` on NumPy (SciPy) or PyTorch: ``(diag(U), solve)`` from ``M = x0ᵀ = PLU``.

    ``solve(b, adjoint)`` returns ``M⁻¹b`` (or ``M⁻ᴴb``) for ``b`` of shape
    ``(..., n, 1)``.  ``x0ᵀ`` is factorized because it is column-major for a
    C-ordered ``x0`` (LAPACK's order: no transposing copy) and has the same
    singular values.  None for other shapes and namespaces (they use QR).
    """
    if x0.shape[-1] != x0.shape[-2]:
        return None
    kind = _namespace_kind(xp)
    m = xp.matrix_transpose(x0)
    if kind == "torch":
        import torch

        lu, piv, _ = torch.linalg.lu_factor_ex(m)

        def solve_torch(b: Any, adjoint: bool) -> Any:
            return torch.linalg.lu_solve(lu, piv, b, adjoint=adjoint)

        return xp.linalg.diagonal(lu), solve_torch
    if kind != "numpy":
        return None
    try:
        import scipy.linalg
    except ImportError:
        return None
    with warnings.catch_warnings():  # an exactly singular matrix is detected from diag(U)
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        lu, piv = scipy.linalg.lu_factor(m, check_finite=False)
    trans = 2 if xp.isdtype(x0.dtype, "complex floating") else 1

    def solve_numpy(b: Any, adjoint: bool) -> Any:
        mode = trans if adjoint else 0
        return scipy.linalg.lu_solve((lu, piv), b, trans=mode, check_finite=False)

    return xp.linalg.diagonal(lu), solve_numpy


def estimate_bounds(xp: ModuleType, x0: Any) -> Bounds | None:
    """Estimate a rescaling and ``ℓ`` for the tall stack ``x0`` (``‖x0‖₂ ≤ 1``), or None.

    Eager arrays only: ``lower`` is a Python float read from the device.
    """
    try:
        lu = _lu_solver(xp, x0)
        if lu is None:
            r = qr_r(xp, x0)
            diag = xp.linalg.diagonal(r)
            r_h = conj_transpose(xp, r)

            def inverse(b: Any, adjoint: bool) -> Any:
                if adjoint:
                    return solve_triangular(xp, r_h, b, lower=True)
                return solve_triangular(xp, r, b, lower=False)

            factor = r  # RᴴR = x0ᴴx0: power iterations on the smaller R
        else:
            diag, inverse = lu
            factor = x0
        if not bool(xp.all(diag != 0)):
            return None  # exactly singular (a zero matrix, a zero column): no σ_min > 0
        rdtype = real_dtype(xp, x0.dtype)
        nu_max = power_norm(xp, factor, _POWER_STEPS)
        w = start_vector(xp, factor)
        nu_inv = None
        for _ in range(_POWER_STEPS):
            # ‖F⁻¹‖₂ by power iteration on F⁻¹F⁻ᴴ (F = R, or M = x0ᵀ): two solves
            t = inverse(w, True)
            nu_inv = xp.linalg.vector_norm(t, axis=(-2, -1))
            w = normalised(xp, inverse(t, False))
        beta = xp.minimum(_NORM_MARGIN * nu_max, xp.ones_like(nu_max))
        lower = float(xp.min(1.0 / (LOWER_MARGIN * xp.astype(nu_inv, rdtype) * beta)))
    except (ArithmeticError, RuntimeError, ValueError):  # numpy/torch LinAlgError: singular R
        return None
    if not math.isfinite(lower) or lower <= 0.0:
        return None
    return Bounds(xp.reshape(beta, (*beta.shape, 1, 1)), min(lower, 1.0))
