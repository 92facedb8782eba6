"""Coefficient schedules of the odd-quintic Newton–Schulz family.

One step maps ``X ← a X + b (XXᴴ) X + c (XXᴴ)² X``, that is each singular
value ``σ ↦ p(σ) = a σ + b σ³ + c σ⁵``.  A schedule is a sequence of rows
``(a, b, c)``, one per step; a schedule shorter than the number of steps
repeats its last row.  Schedules are data: :data:`COEFFICIENTS` holds the
published ones, and any sequence of rows is accepted wherever a name is.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

__all__ = [
    "COEFFICIENTS",
    "RECOMMENDED_SAFETY",
    "Row",
    "Schedule",
    "apply_schedule",
    "resolve_schedule",
    "schedule_band",
    "schedule_response",
]

Row = tuple[float, float, float]
Schedule = tuple[Row, ...]

_TABLE: dict[str, Schedule] = {
    # Jordan's quintic (Muon; torch.optim.Muon, KellerJordan/Muon, Moonlight): fast growth of
    # small singular values at the price of an output band of about [0.68, 1.13].
    "muon": ((3.4445, -4.7750, 2.0315),),
    # Tuned five-row set (modded-nanogpt track 2; optax "dion" preset).
    "tuned5": (
        (4.0848, -6.8946, 2.9270),
        (3.9505, -6.3029, 2.6377),
        (3.7418, -5.5913, 2.3037),
        (2.8769, -3.1427, 1.2046),
        (2.8366, -3.0525, 1.2012),
    ),
    # Polar Express (Amsel, Persson, Musco, Gower 2025), unscaled minimax rows for σ ∈ [1e-3, 1];
    # reproduced by polar_express_coefficients(safety=1.0).
    "polar_express": (
        (8.28721201814563, -23.595886519098837, 17.300387312530933),
        (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
        (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
        (3.3184196573706015, -2.488488024314874, 0.51004894012372),
        (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
        (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
        (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
        (1.875, -1.25, 0.375),
    ),
    # CANS (Grishina et al. 2025), first rows; Chebyshev-optimised quintics.
    "cans": (
        (8.4703, -25.1081, 18.6293),
        (4.1828, -3.1087, 0.5806),
        (3.9619, -2.9541, 0.5630),
        (3.2866, -2.4647, 0.5074),
        (2.2737, -1.6447, 0.4162),
    ),
    # Classic cubic Newton–Schulz X ← (3X − XXᴴX)/2: converges for σ ∈ (0, √3),
    # quadratically near 1; slow from small σ, a good final polish.
    "cubic": ((1.5, -0.5, 0.0),),
}

COEFFICIENTS: Mapping[str, Schedule] = MappingProxyType(_TABLE)
"""Published coefficient schedules by name (read-only)."""

RECOMMENDED_SAFETY: Mapping[str, float] = MappingProxyType({"polar_express": 1.01, "cans": 1.01})
"""Safety factor used with a named schedule unless ``safety=`` is given (others: 1).

Polar Express and CANS rows map ``[ℓ, 1]`` onto their whole output band, with
``p(1)`` near the band's top: a singular value that rounding pushes just above
1 overshoots, and the next rows amplify it.  In bfloat16 both schedules
diverge without a safety factor (entries of 1e5 to inf in our tests); with
Polar Express's 1.01 they stay in band.  The other schedules tolerate it.
"""


def _as_list(obj: object) -> list | None:
    """Return the items of a sequence or 1-d array-like, or None for anything else."""
    if isinstance(obj, (str, bytes)) or not hasattr(obj, "__len__") or not hasattr(obj, "__iter__"):
        return None
    return list(obj)


def _check_row(i: int, row: object) -> Row:
    values = _as_list(row)
    if values is None or len(values) != 3:
        raise ValueError(
            f"coefficient row {i} must be a sequence (a, b, c) of three numbers; got {row!r}"
        )
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"coefficient row {i} must hold real numbers; got {row!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"coefficient row {i} has a non-finite value: {row!r}")
        out.append(value)
    return (out[0], out[1], out[2])


def resolve_schedule(coefficients: str | Sequence[Sequence[float]]) -> Schedule:
    """Return the rows of a named schedule, or validate a user's rows.

    Parameters
    ----------
    coefficients : str or sequence of (a, b, c)
        A key of :data:`COEFFICIENTS` or the rows themselves.

    Returns
    -------
    tuple of (float, float, float)

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or malformed rows.
    """
    if isinstance(coefficients, str):
        try:
            return _TABLE[coefficients]
        except KeyError:
            names = ", ".join(repr(k) for k in _TABLE)
            raise ValueError(
                f"unknown coefficient schedule {coefficients!r}; choose one of {names} "
                "or pass a sequence of (a, b, c) rows"
            ) from None
    rows = _as_list(coefficients)
    if not rows:
        raise ValueError(
            "coefficients must be a schedule name or a non-empty sequence of (a, b, c) rows; "
            f"got {coefficients!r}"
        )
    return tuple(_check_row(i, row) for i, row in enumerate(rows))


def apply_schedule(rows: Schedule, steps: int, safety: float = 1.0) -> Schedule:
    """Expand ``rows`` to exactly ``steps`` rows, applying a safety factor.

    Parameters
    ----------
    rows : tuple of (a, b, c)
        The schedule; its last row is repeated when ``steps`` exceeds its length.
    steps : int
        Number of iteration steps.
    safety : float, default 1.0
        Polar Express's safety factor ``s ≥ 1``: every row but the schedule's
        final row becomes ``(a/s, b/s³, c/s⁵)``, i.e. ``p(σ/s)``, which keeps
        singular values that rounding pushed slightly above the design
        interval from blowing up.  The final (repeated) row is the
        converged polish and stays unscaled.

    Returns
    -------
    tuple of (a, b, c), length ``steps``
    """
    last = len(rows) - 1
    out = []
    for i in range(steps):
        a, b, c = rows[min(i, last)]
        if safety != 1.0 and i < last:
            a, b, c = a / safety, b / safety**3, c / safety**5
        out.append((a, b, c))
    return tuple(out)


def schedule_response(rows: Schedule, x: np.ndarray) -> np.ndarray:
    """Return ``φ(x)``, the composition of the schedule's quintics, in float64.

    This is what the iteration does to each singular value in exact
    arithmetic: after normalisation ``X₀ = P diag(x) Qᴴ`` becomes
    ``P diag(φ(x)) Qᴴ``.
    """
    y = np.asarray(x, dtype=np.float64)
    for a, b, c in rows:
        y2 = y * y
        y = y * (a + y2 * (b + c * y2))
    return y


def schedule_band(rows: Schedule, lower: float, upper: float = 1.0) -> tuple[float, float]:
    """Return ``(min φ, max φ)`` over ``x ∈ [lower, upper]``: the schedule's output band.

    Evaluated on a dense log-spaced grid (20,000 points), which resolves the
    band to about 1e-6 for the published schedules.
    """
    grid = np.concatenate([np.geomspace(lower, upper, 20_000), [lower, upper]])
    y = schedule_response(rows, grid)
    return float(y.min()), float(y.max())
