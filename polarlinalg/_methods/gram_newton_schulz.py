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
* a half-precision computation (bfloat16 or float16) never iterates in
  bfloat16: it runs in float16 on devices with float16 matrix units (GPUs:
  the same speed as bfloat16, three more mantissa bits) and in float32
  elsewhere (CPUs, where float16 products are emulated, 55–140× slower than
  bfloat16, and float32 ones are the fast path); see
  :func:`working_dtype`.  In float16 the blocks are also cut where the
  product of the rows' ``|a|`` would pass 150 (the default Polar Express
  blocks reach 133), because spurious negative eigenvalues grow like that
  product squared.

Without these, bfloat16 Gram iterations on ill-conditioned inputs produced
singular values of 6 to 3000 in our tests (and 12 float16 steps in one
block, infinities), where the plain iteration stays below 1.13.  float32 has
float16's range and more mantissa, so on CPUs the result is that of the
float32 computation, rounded.

Same schedules, safety factor and output band as :mod:`newton_schulz`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._coefficients import Schedule
from polarlinalg._compat import device
from polarlinalg._dtypes import fast_half_dtype, is_low_precision
from polarlinalg._linalg import conj_transpose, eye_like, symmetrize
from polarlinalg._methods._base import Method, Progress, check_positive_int
from polarlinalg._methods._scaling import normalise_frobenius
from polarlinalg._methods.newton_schulz import POLAR_EXPRESS_SAFETY, plan_schedule

__all__ = ["GRAM_NEWTON_SCHULZ", "GramPlan", "working_dtype"]

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


def working_dtype(xp: ModuleType, dtype: Any, dev: Any) -> Any:
    """Return the dtype the iteration runs in for compute dtype ``dtype`` on device ``dev``.

    ``dtype`` itself unless it is half precision; then float16 on devices with
    float16 matrix units and float32 elsewhere
    (:func:`polarlinalg._dtypes.fast_half_dtype`; see the module docstring).
    """
    if is_low_precision(xp, dtype):
        return fast_half_dtype(xp, dev)
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
    work = working_dtype(xp, dtype, device(x))
    if work != dtype and xp.finfo(work).max >= xp.finfo(dtype).max:
        x = xp.astype(x, work)  # widening: the float32 computation of the same input
    x = normalise_frobenius(xp, x, plan.safety, plan.eps)
    if x.dtype != work:  # bfloat16 → float16: normalised first, into float16's range
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
