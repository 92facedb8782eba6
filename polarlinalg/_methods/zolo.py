"""ZOLO-PD: polar decomposition by Zolotarev's rational functions, in two iterations.

Zolotarev's best rational approximation of type ``(2r+1, 2r)`` to ``sign(x)`` on
``[−1, −ℓ] ∪ [ℓ, 1]`` is, scaled so that it maps ``[ℓ, 1]`` into ``[ℓ', 1]``,

    Ẑ(x) = M̂ x ∏_{j=1}^{r} (x² + c_{2j}) / (x² + c_{2j−1})
         = M̂ (x + Σ_j a_j x / (x² + c_{2j−1})),

with ``c_i = ℓ² sn²(iK'/(2r+1); k') / cn²(iK'/(2r+1); k')``, ``k' = √(1 − ℓ²)``,
``K' = K(k')`` (computed on the host by :mod:`polarlinalg._elliptic`),
``a_j = −∏_k (c_{2j−1} − c_{2k}) / ∏_{k≠j} (c_{2j−1} − c_{2k−1})`` and
``M̂ = ∏_j (1 + c_{2j−1})/(1 + c_{2j})``.  The matrix iteration

    X ← M̂ (X + Σ_j a_j X (XᴴX + c_{2j−1} I)⁻¹)

needs ``r`` independent shifted solves per step; here they are one batched
factorization (QR form for shifts below 1/100, Cholesky form above, see
:mod:`._rational`).  The degree ``r`` (at most 8) is the smallest for which two
iterations take ``ℓ`` to within ``5ε`` of 1, computed on the host; for double
precision that is ``r = 2`` up to ``κ = 6.5``, 3 to 180, 4 to 1.5e4, 5 to 2e6,
6 to 1e9, 7 to 3e12 and 8 beyond, as in the PolarGrad code.  ``r = 1`` is QDWH.

``ℓ`` comes from the same eager estimate as QDWH, the caller's ``lower=``, or the
dtype's ε under tracing; ``degree=`` fixes ``r``.  With the automatic degree the
schedule is designed for the smallest ``ℓ`` that ``r`` takes to ``5ε`` in as many
steps (:func:`design_schedule`): the step count then does not depend on the last
digits of an estimate, which differ between BLAS libraries.  Convergence is tested after
each iteration; eagerly, if two iterations were not enough (an estimate of ℓ
that was too large), further QDWH-type iterations follow.

References
----------
Y. Nakatsukasa, R. W. Freund. Computing fundamental matrix decompositions
accurately via the matrix sign function in two iterations: the power of
Zolotarev's functions. SIAM Review 58(3), 2016.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._elliptic import zolotarev_c
from polarlinalg._methods._base import Progress, check_positive_int
from polarlinalg._methods._lower_bound import LOWER_MARGIN
from polarlinalg._methods._rational import (
    iterate,
    prepare,
    rational_method,
    shifted_products,
)
from polarlinalg._methods.qdwh import check_lower

__all__ = [
    "ZOLO",
    "ZoloPlan",
    "ZoloStep",
    "choose_degree",
    "design_floor",
    "design_schedule",
    "zolo_step",
]

DEFAULT_MAX_STEPS = 4
MAX_DEGREE = 8


class ZoloPlan(NamedTuple):
    """Host-side arguments: iteration cap, the caller's ``lower`` and ``degree`` (or None)."""

    max_steps: int
    lower: float | None
    degree: int | None


class ZoloStep(NamedTuple):
    """One iteration: shifts ``c_{2j−1}``, partial-fraction weights ``a_j``, scale ``M̂``."""

    shifts: tuple[float, ...]
    weights: tuple[float, ...]
    scale: float

    def __call__(self, x: float) -> float:
        """Apply the scalar map ``Ẑ`` to ``x`` (host, float64)."""
        total = x
        for a, c in zip(self.weights, self.shifts, strict=True):
            total += a * x / (x * x + c)
        return self.scale * total


def _product(values: list[float]) -> float:
    out = 1.0
    for v in values:  # a loop, not math.prod(generator): TorchDynamo traces this host code
        out *= v
    return out


def zolo_step(ell: float, r: int) -> ZoloStep:
    """Return the type ``(2r+1, 2r)`` Zolotarev step for ``[ℓ, 1]``."""
    c = zolotarev_c(ell, r)
    odd, even = c[0::2], c[1::2]
    weights = []
    for j in range(r):
        num = _product([odd[j] - e for e in even])
        den = _product([odd[j] - odd[k] for k in range(r) if k != j])
        weights.append(-num / den)
    scale = _product([(1.0 + o) / (1.0 + e) for o, e in zip(odd, even, strict=True)])
    return ZoloStep(tuple(odd), tuple(weights), scale)


def _schedule(ell: float, r: int, eps: float, max_steps: int) -> list[ZoloStep]:
    steps = []
    ell = max(ell, 1e-30)
    while ell + 5.0 * eps < 1.0 and len(steps) < max_steps:
        step = zolo_step(ell, r)
        steps.append(step)
        ell = min(step(ell), 1.0)
    return steps


def choose_degree(ell: float, eps: float) -> int:
    """Smallest ``r ≤ 8`` whose two iterations take ``[ℓ, 1]`` to within ``5ε`` of 1."""
    for r in range(1, MAX_DEGREE + 1):
        if len(_schedule(ell, r, eps, 3)) <= 2:
            return r
    return MAX_DEGREE


@functools.cache
def design_floor(r: int, steps: int, eps: float) -> float:
    """Return a small ``ℓ`` whose degree-``r`` schedule still has at most ``steps`` steps.

    Bisection in ``log ℓ`` on ``[1e-30, 1]`` (host, cached), keeping the upper end
    on the side where the schedule is short enough, so the returned ``ℓ`` always
    satisfies the condition.  Near the boundary whether the last step lands within
    ``5ε`` of 1 is decided by the rounding of the float64 coefficients (``1 − Ẑ``
    is computed to a few ε), so this is *a* crossing, not the unique one.
    """

    def short(ell: float) -> bool:
        return len(_schedule(ell, r, eps, steps + 1)) <= steps

    lo, hi = math.log(1e-30), 0.0
    if short(1e-30):
        return 1e-30
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if short(math.exp(mid)):
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


def design_schedule(
    ell: float, eps: float, max_steps: int, degree: int | None = None, margin: float = 1.0
) -> list[ZoloStep]:
    """Return the host-side steps for ``ℓ ≤ σ_min(X₀)`` (unit precision ``eps``).

    With ``degree`` given, the schedule for ``[ℓ, 1]`` with that ``r``.  Otherwise
    ``r`` is :func:`choose_degree`'s, and the schedule is designed for the
    *smallest* ``ℓ`` (:func:`design_floor`) that this ``r`` takes to ``5ε`` in as
    many steps as ``ℓ`` needs: the same cost, a wider interval, so an estimate of
    ``σ_min`` a little too large, or rounding in the first step, does not cost an
    iteration, and the step count no longer flips with the last digits of ``ℓ``
    (the estimate differs in those between BLAS libraries).

    ``margin`` is the safety factor already taken off ``ℓ`` (the eager estimate
    uses 1.5): when even ``r = 8`` needs three steps from ``ℓ`` but two suffice
    from ``margin·ℓ``, the two-step design is used.  In float64 that floor is
    ``ℓ ≈ 5e-17``, below ``σ_min(X₀) ≥ 1/(1.1κ) ≥ 9e-17`` for every ``κ ≤ 1e16``;
    eagerly the orthogonality test after the schedule still catches a singular
    value it missed, and further iterations follow.
    """
    if degree is not None:
        return _schedule(ell, degree, eps, max_steps)
    r = choose_degree(ell, eps)
    count = len(_schedule(ell, r, eps, 3))
    if count == 0:
        return []
    if count > 2:
        if margin * ell < design_floor(r, 2, eps):
            return _schedule(ell, r, eps, max_steps)
        return _schedule(design_floor(r, 2, eps), r, eps, max_steps)
    return _schedule(min(ell, design_floor(r, count, eps)), r, eps, max_steps)


_FALLBACK = zolo_step(0.5, 1)


def _configure(steps: int | None, coefficients: Any, options: Mapping[str, Any]) -> ZoloPlan:
    max_steps = DEFAULT_MAX_STEPS if steps is None else check_positive_int("steps", steps)
    degree = options["degree"]
    if degree is not None:
        degree = check_positive_int("degree", degree)
        if degree > MAX_DEGREE:
            raise ValueError(f"degree must be at most {MAX_DEGREE}; got {degree}")
    return ZoloPlan(max_steps, check_lower(options["lower"]), degree)


def _apply(xp: ModuleType, x: Any, step: ZoloStep) -> Any:
    """One step ``X ← M̂ (X + Σⱼ aⱼ X (XᴴX + cⱼI)⁻¹)``.

    The ``r ≤ 8`` weighted terms are added one by one (host-side weights), not
    reduced over the stacking axis: under ``jax.jit`` on CPU (jaxlib 0.10) XLA
    pulls the products that feed a reduction into one YNNPACK fusion that runs
    about 3× slower (docs/performance.md).
    """
    products = shifted_products(xp, x, list(step.shifts))  # (r, ..., m, n)
    out = x
    for j, weight in enumerate(step.weights):
        out = out + weight * products[j, ...]
    return step.scale * out


def _run(xp: ModuleType, x: Any, plan: ZoloPlan) -> tuple[Any, Progress]:
    start = prepare(xp, x, plan.lower)
    eps = float(xp.finfo(x.dtype).eps)

    # A caller's ``lower`` is a bound, not an estimate: its schedule is not lifted.
    margin = 1.0 if plan.lower is not None else LOWER_MARGIN

    def design(ell: float) -> list[ZoloStep]:
        return design_schedule(ell, eps, plan.max_steps, plan.degree, margin)

    # The designed steps are not change-tested (a tiny change after the first one
    # does not mean convergence); the orthogonality test after them decides.
    return iterate(
        xp,
        start,
        design,
        lambda y, s: _apply(xp, y, s),
        _FALLBACK,
        plan.max_steps,
        testable=lambda s: s is _FALLBACK,
    )


ZOLO = rational_method(
    "zolo",
    "ZOLO-PD: Zolotarev rational iterations, two steps to working precision (accurate)",
    max_steps=DEFAULT_MAX_STEPS,
    configure=_configure,
    run=_run,
    options={"lower": None, "degree": None},
)
