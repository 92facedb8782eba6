"""The Newton–Schulz family: odd polynomial iterations driven by a schedule.

Starting from ``X₀ = A / (s·‖A‖_F)`` (all singular values in ``[0, 1/s]``),
each step applies one odd quintic to the singular values,

    X ← a X + b (XXᴴ) X + c (XXᴴ)² X = (aI + bG + cG²) X,   G = XXᴴ,

with its own row ``(a, b, c)`` of a coefficient schedule.  The singular
vectors never change; after ``k`` steps ``X_k = P φ(Σ) Qᴴ`` with ``φ`` the
composition of the ``k`` quintics, so ``X_k`` is the polar factor up to how
close ``φ`` maps the singular values to 1.  Only matrix products: fast on
accelerators and usable in bfloat16, but approximate (each schedule has a
documented output band).

Cost per step on the short side (``x`` is ``k × N``, ``k ≤ N``): ``2k²N + k³``
multiply-adds (``G``, ``G²``, ``(bG + cG²) X``); ``2k²N`` for cubic rows
(``c = 0``, no ``G²``).

References
----------
Schulz (1933); Higham, *Functions of Matrices*, SIAM 2008, §8.3; Jordan et al.,
"Muon" (2024); Amsel, Persson, Musco, Gower, "The Polar Express",
arXiv:2505.16932 (2025); Grishina et al., "CANS", arXiv:2506.10935 (2025).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._coefficients import (
    RECOMMENDED_SAFETY,
    Schedule,
    apply_schedule,
    resolve_schedule,
)
from polarlinalg._compat import addmm
from polarlinalg._dtypes import is_low_precision
from polarlinalg._linalg import conj_transpose, eye_like
from polarlinalg._methods._base import Method, Progress
from polarlinalg._methods._scaling import host_scale, normalise_frobenius

__all__ = ["NEWTON_SCHULZ", "POLAR_EXPRESS", "SchedulePlan", "iterate", "plan_schedule"]

DEFAULT_STEPS = 5
POLAR_EXPRESS_SAFETY = 1.01


class SchedulePlan(NamedTuple):
    """A resolved schedule: one row per step, the normalisation safety factor and floor."""

    rows: Schedule
    safety: float
    eps: float = 0.0
    normalised: bool = False  # the input is already X₀ (see _prescale)


def check_eps(value: Any) -> float:
    """Return the normalisation floor as a float, or raise ValueError unless finite and ≥ 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < float("inf")
    ):
        raise ValueError(f"eps must be a finite real number >= 0; got {value!r}")
    return float(value)


def check_safety(value: Any) -> float:
    """Return the safety factor as a float, or raise ValueError outside ``[1, 2)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 1.0 <= value < 2.0:
        raise ValueError(f"safety must be a real number in [1, 2); got {value!r}")
    return float(value)


def plan_schedule(
    steps: int | None, coefficients: Any, options: Mapping[str, Any], default: str
) -> SchedulePlan:
    """Resolve ``coefficients`` (default ``default``) to ``steps`` rows.

    The safety factor ``s`` always divides the normalisation (``X₀ = A/(s‖A‖_F)``,
    or ``A/max(s‖A‖_F, eps)`` with the ``eps`` option);
    ``None`` means the named schedule's recommended factor
    (:data:`RECOMMENDED_SAFETY`, 1 for explicit rows).
    A *named* schedule holds the published, unscaled rows, so it also gets
    ``(a/s, b/s³, c/s⁵)`` on every row but its last; rows given explicitly are
    used exactly as given (:func:`polarlinalg.polar_express_coefficients`
    already applies the safety factor to the rows it designs).
    """
    name = default if coefficients is None else coefficients
    rows = resolve_schedule(name)
    if options["safety"] is None:
        safety = RECOMMENDED_SAFETY.get(name, 1.0) if isinstance(name, str) else 1.0
    else:
        safety = check_safety(options["safety"])
    n = DEFAULT_STEPS if steps is None else steps
    row_safety = safety if isinstance(name, str) else 1.0
    eps = check_eps(options.get("eps", 0.0))
    return SchedulePlan(apply_schedule(rows, n, row_safety), safety, eps)


def quintic_step(xp: ModuleType, x: Any, row: tuple[float, float, float], eye: Any | None) -> Any:
    """One step ``x ← (aI + bG + cG²) x`` with ``G = x xᴴ`` (``x`` wide, ``eye`` k × k).

    In float32/float64 the polynomial is assembled on the small ``k × k`` side
    as ``aI + G(bI + cG)``, so the only full-size work is the two products
    with ``x``.  In half precision (and on PyTorch, which fuses it) the step is
    ``a x + (bG + cG²) x`` instead, as ``torch.optim.Muon`` computes it:
    rounding ``aI + …`` to bfloat16 would lose the small terms next to
    ``a ≈ 3.4`` on the diagonal and roughly quadruples the error of a
    five-step bfloat16 run.
    """
    a, b, c = row
    g = x @ conj_transpose(xp, x)
    if _fused(xp, x):
        q = b * g if c == 0.0 else addmm(xp, b, g, c, g, g)
        return addmm(xp, a, x, 1.0, q, x)
    poly = b * g + a * eye if c == 0.0 else g @ (c * g + b * eye) + a * eye
    return poly @ x


def _fused(xp: ModuleType, x: Any) -> bool:
    """Whether :func:`quintic_step` uses the big-side form (see there)."""
    return is_low_precision(xp, x.dtype) or type(x).__module__ == "torch"


def iterate(xp: ModuleType, x: Any, rows: Schedule) -> Any:
    """Apply the schedule ``rows`` to an already normalised wide stack ``x``."""
    # the big-side form (PyTorch, half precision) needs no identity
    eye = None if _fused(xp, x) else eye_like(xp, x, x.shape[-2])
    for row in rows:
        x = quintic_step(xp, x, row, eye)
    return x


def _run(xp: ModuleType, x: Any, plan: SchedulePlan) -> tuple[Any, Progress]:
    x0 = x if plan.normalised else normalise_frobenius(xp, x, plan.safety, plan.eps)
    return iterate(xp, x0, plan.rows), Progress(len(plan.rows), None, None)


def _prescale(xp: ModuleType, a: Any, plan: SchedulePlan) -> tuple[Any, SchedulePlan] | None:
    """``X₀`` in ``a``'s own precision, before the cast to a narrower compute dtype.

    Only where one pass gives the norms (:func:`host_scale`; eager PyTorch on a
    CPU): then the normalisation reads ``a`` once and multiplies once, and the
    cast rounds the normalised entries once, instead of normalising the
    rounded copy (a float32 copy of it first, for the norm, in half
    precision).  None elsewhere.
    """
    scale = host_scale(xp, a, plan.safety, plan.eps)
    if scale is None:
        return None
    return a * scale, plan._replace(normalised=True)


def _schedule_method(name: str, summary: str, schedule: str, safety: float | None) -> Method:
    """Return a plain Newton–Schulz method defaulting to ``schedule`` and ``safety``."""
    return Method(
        name=name,
        summary=summary,
        family="polynomial",
        orientation="wide",
        low_precision=True,
        default_steps=DEFAULT_STEPS,
        takes_coefficients=True,
        configure=functools.partial(plan_schedule, default=schedule),
        run=_run,
        options={"safety": safety, "eps": 0.0},
        prescale=_prescale,
    )


NEWTON_SCHULZ = _schedule_method(
    "newton_schulz",
    "odd-quintic Newton–Schulz iteration with any coefficient schedule (default 'muon')",
    schedule="muon",
    safety=None,
)

POLAR_EXPRESS = _schedule_method(
    "polar_express",
    "Newton–Schulz with the Polar Express minimax schedule and safety factor 1.01",
    schedule="polar_express",
    safety=POLAR_EXPRESS_SAFETY,
)
