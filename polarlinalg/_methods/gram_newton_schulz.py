"""Gram Newton–Schulz: the Newton–Schulz family iterated on the Gram matrix.

For a wide ``X`` (``k × N`` with ``k ≪ N``) every quintic step is a polynomial
in the small Gram matrix ``R = XXᴴ``: with ``p = aI + bR + cR²`` the step is
``X ← pX``, so ``X_t = Q_t X₀`` with ``Q_{t+1} = p Q_t`` and
``R_{t+1} = p R_t p``.  Only ``k × k`` products are needed until the end,
where ``Q`` is applied to ``X₀`` once (Zhang, Amsel, Chen and Dao, 2026).

Cost for ``s`` steps in ``b = ⌈s/r⌉`` blocks (restart every ``r`` steps):
``2b·k²N`` multiply-adds for the Gram matrices and the applications of ``Q``,
plus ``4k³`` per step on the small side (``R²``, ``ZQ``, ``ZR``, ``(pR)Z``)
less ``k³`` at the start and ``2k³`` at the end of each block, against
``s·(2k²N + k³)`` for the plain iteration.  With the defaults (``s = 5``,
``r = 3``: blocks of 3 and 2 steps) that is ``4k²N + 14k³`` against
``10k²N + 5k³``: fewer flops once ``N/k > 1.5``, 1.5× fewer at ``N = 4k``,
1.85× fewer at ``N = 8k``.

Stability: ``R`` holds squared singular values, so rounding errors of size
``u·‖R‖`` swamp every ``σ² < u`` and can turn into spurious negative
eigenvalues that the recursion amplifies; and ``Q`` grows like the product of
the rows' ``a`` coefficients in directions of small ``σ``, amplifying the
rounding of ``Q X``.  Two measures keep it within the plain iteration's
accuracy (measured in docs/algorithms.md):

* the iteration restarts (``X ← Q X``, ``R ← XXᴴ``, ``Q ← I``) every
  ``restart`` steps (default 3: blocks of 3 and 2 for the default 5 steps);
* a half-precision computation runs in float16 (a bfloat16 one is switched:
  the same speed on GPU matrix units, three more mantissa bits), and its
  blocks are also cut where the product of the rows' ``|a|`` would pass 150
  (the default Polar Express blocks reach 133), because spurious negative
  eigenvalues grow like that product squared.

Without these, bfloat16 Gram iterations on ill-conditioned inputs produced
singular values of 6 to 3000 in our tests (and 12 float16 steps in one
block, infinities), where the plain iteration stays below 1.13.  On CPUs
without float16 matrix units the float16 switch makes bfloat16 input slower
(docs/performance.md).

Same schedules, safety factor and output band as :mod:`newton_schulz`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._coefficients import Schedule
from polarlinalg._dtypes import is_low_precision
from polarlinalg._linalg import conj_transpose, eye_like, symmetrize
from polarlinalg._methods._base import Method, Progress, check_positive_int
from polarlinalg._methods._scaling import normalise_frobenius
from polarlinalg._methods.newton_schulz import POLAR_EXPRESS_SAFETY, plan_schedule

__all__ = ["GRAM_NEWTON_SCHULZ", "GramPlan"]

DEFAULT_RESTART = 3


class GramPlan(NamedTuple):
    """Schedule rows, normalisation safety factor and restart period."""

    rows: Schedule
    safety: float
    restart: int
    eps: float = 0.0


def _configure(steps: int | None, coefficients: Any, options: Mapping[str, Any]) -> GramPlan:
    schedule = plan_schedule(steps, coefficients, options, default="polar_express")
    restart = check_positive_int("restart", options["restart"])
    return GramPlan(schedule.rows, schedule.safety, restart, schedule.eps)


def _gram_polynomial(xp: ModuleType, x: Any, rows: Schedule) -> Any:
    """Return ``Q`` with ``Q x`` equal to ``len(rows)`` quintic steps applied to ``x``."""
    r = x @ conj_transpose(xp, x)
    q = None
    for i, (a, b, c) in enumerate(rows):
        z = b * r if c == 0.0 else b * r + c * (r @ r)  # p(R) − aI
        q = a * eye_like(xp, r, r.shape[-1]) + z if q is None else a * q + z @ q
        if i + 1 < len(rows):
            pr = a * r + z @ r  # p R
            r = symmetrize(xp, a * pr + pr @ z)  # p R p
    return q


def _half_dtype(xp: ModuleType, dtype: Any) -> Any:
    """Return float16 for a bfloat16 ``dtype`` (see the module docstring), else ``dtype``."""
    if is_low_precision(xp, dtype) and hasattr(xp, "float16") and dtype != xp.float16:
        return xp.float16
    return dtype


# In float16, blocks are cut before the product of their rows' |a| passes this:
# errors in R (spurious negative eigenvalues) grow like that product squared and
# overflow float16 (max 65504) in long blocks.
_FLOAT16_GROWTH_LIMIT = 150.0


def blocks(rows: Schedule, restart: int, growth_limit: float = math.inf) -> list[Schedule]:
    """Split ``rows`` into restart blocks of at most ``restart`` rows.

    A block also ends before the product of its rows' ``|a|`` (the growth of
    ``Q`` in directions of small singular values) would exceed ``growth_limit``.
    Host-side: the blocks are fixed before any array is touched.
    """
    out: list[Schedule] = []
    block: list[tuple[float, float, float]] = []
    growth = 1.0
    for row in rows:
        step_growth = max(abs(row[0]), 1.0)
        if block and (len(block) == restart or growth * step_growth > growth_limit):
            out.append(tuple(block))
            block, growth = [], 1.0
        block.append(row)
        growth *= step_growth
    if block:
        out.append(tuple(block))
    return out


def _run(xp: ModuleType, x: Any, plan: GramPlan) -> tuple[Any, Progress]:
    dtype = x.dtype
    x = normalise_frobenius(xp, x, plan.safety, plan.eps)
    work = _half_dtype(xp, dtype)
    if work != dtype:
        x = xp.astype(x, work)
    limit = _FLOAT16_GROWTH_LIMIT if xp.finfo(work).bits == 16 else math.inf
    for block in blocks(plan.rows, plan.restart, limit):
        x = _gram_polynomial(xp, x, block) @ x
    u = x if work == dtype else xp.astype(x, dtype)
    return u, Progress(len(plan.rows), None, None)


GRAM_NEWTON_SCHULZ = Method(
    name="gram_newton_schulz",
    summary="Newton–Schulz on the Gram matrix XXᴴ with restarts (for strongly rectangular input)",
    family="polynomial",
    orientation="wide",
    low_precision=True,
    default_steps=5,
    takes_coefficients=True,
    configure=_configure,
    run=_run,
    options={"safety": POLAR_EXPRESS_SAFETY, "restart": DEFAULT_RESTART, "eps": 0.0},
)
