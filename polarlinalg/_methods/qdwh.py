"""QDWH: the QR-based dynamically weighted Halley iteration (accurate, the default of ``polar``).

For ``X₀ = A/α`` (``‖X₀‖₂ ≤ 1``) and a lower bound ``ℓ ≤ σ_min(X₀)``, each step is
the best rational approximation of type (3, 2) to ``sign`` on ``[ℓ, 1]``,

    X ← X (aI + bXᴴX)(I + cXᴴX)⁻¹ = (b/c) X + (a − b/c) X (I + cXᴴX)⁻¹,

with ``d = (4(1 − ℓ²)/ℓ⁴)^{1/3}``, ``a = √(1+d) + √(2 − d + 2(2 − ℓ²)/(ℓ²√(1+d)))``,
``b = (a − 1)²/4``, ``c = a + b − 1``, and then ``ℓ ← ℓ(a + bℓ²)/(1 + cℓ²)``.  The
scalar map sends ``[ℓ, 1]`` into ``[ℓ', 1]``, so the schedule of weights is
fixed on the host from ``ℓ`` alone.  While ``c > 100`` a step uses the QR form
(``X (I + cXᴴX)⁻¹ = Q₁Q₂ᴴ/√c`` from ``[√c X; I] = [Q₁; Q₂]R``), afterwards the
cheaper Cholesky form; both are backward stable there (Nakatsukasa & Higham
2012).  Once ``1 − ℓ ≤ 0.1`` the weights are nearly Halley's ``(3, 1, 3)``, and
Newton–Schulz steps ``X ← 1.5X − 0.5X(XᴴX)`` (``δ → 1.5δ²``, two matrix
products) finish the job more cheaply, down to ``√ε``; a final Newton–Schulz
polish restores orthogonality to working precision.  From ``ℓ = 1e-16`` that is
four QDWH steps (two QR-form) and three Newton–Schulz steps.

``ℓ``: eager arrays get an estimate from one QR factorization, or one LU
factorization for square matrices on NumPy and PyTorch (:mod:`._lower_bound`),
so well-conditioned inputs skip the QR-form steps;
under ``jax.jit``/``torch.compile`` the schedule comes from ``lower=``
(default: the compute dtype's ε, as JAX does) and is static.  Convergence is
tested after every step (``‖X_{k+1} − X_k‖_F ≤ (5ε)^{1/3}``): eagerly the loop
stops when every matrix passed, continuing with Halley steps ``(3, 1, 3)`` if the
schedule ran out first; traced, converged matrices are frozen by masking.

References
----------
Y. Nakatsukasa, Z. Bai, F. Gygi. Optimizing Halley's iteration for computing
the matrix polar decomposition. SIAM J. Matrix Anal. Appl. 31(5), 2010.
Y. Nakatsukasa, N. J. Higham. Backward stability of iterations for computing
the polar decomposition. SIAM J. Matrix Anal. Appl. 33(2), 2012.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._methods._base import Progress, check_positive_int
from polarlinalg._methods._rational import (
    iterate,
    polish,
    prepare,
    rational_method,
    shifted_products,
)

__all__ = ["NS", "QDWH", "QDWHPlan", "qdwh_weights", "weight_schedule"]

DEFAULT_MAX_STEPS = 10
_HALLEY = (3.0, 1.0, 3.0)
NS = "ns"
# Once every singular value is within this of 1, Newton–Schulz steps (two matrix
# products, quadratic convergence) finish more cheaply than Cholesky-form QDWH steps.
NS_SWITCH = 0.1
# Steps with c above this (the QR-form steps) barely move well-separated singular
# values, so a small change says nothing about convergence; JAX does not test them either.
_TESTABLE_C = 100.0


class QDWHPlan(NamedTuple):
    """Host-side arguments: the iteration cap and the caller's lower bound (or None)."""

    max_steps: int
    lower: float | None


def check_lower(value: Any) -> float | None:
    """Validate a user ``lower=`` (a bound on ``1/κ₂(A)``): None or a float in (0, 1]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value <= 1.0:
        raise ValueError(
            f"lower must be a number in (0, 1] (a lower bound on 1/cond(a)) or None; got {value!r}"
        )
    return float(value)


def qdwh_weights(ell: float) -> tuple[float, float, float]:
    """Return the dynamic weights ``(a, b, c)`` for the lower bound ``ℓ`` (host, float64)."""
    l2 = ell * ell
    d = (4.0 * (1.0 - l2) / (l2 * l2)) ** (1.0 / 3.0)
    sq = math.sqrt(1.0 + d)
    a = sq + math.sqrt(max(2.0 - d + 2.0 * (2.0 - l2) / (l2 * sq), 0.0))
    b = (a - 1.0) ** 2 / 4.0
    return a, b, a + b - 1.0


def weight_schedule(
    ell: float, eps: float, max_steps: int, switch: float = NS_SWITCH
) -> list[tuple[float, float, float] | str]:
    """Return the host-side schedule that takes ``[ℓ, 1]`` to within ``√ε`` of 1.

    QDWH weights ``(a, b, c)`` while ``1 − ℓ > switch``, then the marker
    ``"ns"`` for each Newton–Schulz step (``δ → 1.5δ²``) still needed; the final
    polish (one more Newton–Schulz step) then reaches working precision.  At
    most ``max_steps`` entries.
    """
    ell = max(ell, 1e-30)
    target = math.sqrt(eps)
    out: list[tuple[float, float, float] | str] = []
    while 1.0 - ell > switch and len(out) < max_steps:
        a, b, c = qdwh_weights(ell)
        l2 = ell * ell
        ell = min(ell * (a + b * l2) / (1.0 + c * l2), 1.0)
        out.append((a, b, c))
    delta = 1.0 - ell
    while delta > target and len(out) < max_steps:
        delta = 1.5 * delta * delta
        out.append(NS)
    return out


def _configure(steps: int | None, coefficients: Any, options: Mapping[str, Any]) -> QDWHPlan:
    max_steps = DEFAULT_MAX_STEPS if steps is None else check_positive_int("steps", steps)
    return QDWHPlan(max_steps, check_lower(options["lower"]))


def _step(xp: ModuleType, x: Any, weights: tuple[float, float, float] | str) -> Any:
    if weights == NS:
        return polish(xp, x)
    a, b, c = weights
    e = b / c
    y = shifted_products(xp, x, [1.0 / c])[0, ...]  # X (XᴴX + I/c)⁻¹ = c·X (I + cXᴴX)⁻¹
    return e * x + ((a - e) / c) * y


def _run(xp: ModuleType, x: Any, plan: QDWHPlan) -> tuple[Any, Progress]:
    start = prepare(xp, x, plan.lower)
    eps = float(xp.finfo(x.dtype).eps)
    return iterate(
        xp,
        start,
        lambda ell: weight_schedule(ell, eps, plan.max_steps),
        lambda y, w: _step(xp, y, w),
        _HALLEY,
        plan.max_steps,
        testable=lambda w: w == NS or w[2] <= _TESTABLE_C,
        finishing=lambda w: w == NS,
    )


QDWH = rational_method(
    "qdwh",
    "QR-based dynamically weighted Halley iteration (accurate; polar's default)",
    max_steps=DEFAULT_MAX_STEPS,
    configure=_configure,
    run=_run,
    options={"lower": None},
)
