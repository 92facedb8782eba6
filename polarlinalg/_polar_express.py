"""Design of Polar Express coefficient schedules (greedy minimax, Remez).

Amsel, Persson, Musco and Gower, "The Polar Express: Optimal Matrix Sign
Methods and Their Application to the Muon Algorithm", arXiv:2505.16932
(2025), show that the best composition of odd polynomials for mapping
``[ℓ, 1]`` to ``1`` is greedy: at each step take the odd quintic
``p(x) = a x + b x³ + c x⁵`` that minimises ``max_{x∈[ℓ,u]} |1 − p(x)|`` on the
current interval, then continue on the interval ``p([ℓ, u])``.

The minimax quintic equioscillates at four points ``ℓ < q < r < u``:
``1 − p = +E, −E, +E, −E`` there, with ``q, r`` the interior critical points
of ``p``.  The Remez exchange alternates between the 4×4 linear system for
``(a, b, c, E)`` and the critical points, which solve the quadratic
``5c t² + 3b t + a = 0`` in ``t = x²``.  Everything runs on the host in float64.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from polarlinalg._coefficients import Schedule, apply_schedule

__all__ = ["PAPER_CUSHION", "polar_express_coefficients"]

PAPER_CUSHION = 0.02407327424182761
"""The cushion used to generate the published Polar Express table."""

# Above this ratio ℓ/u the minimax quintic equals, to double precision, the
# limit (15x − 10x³ + 3x⁵)/8: the degree-5 Newton–Schulz polish with
# p(1) = 1, p'(1) = p''(1) = 0.  The Remez system is singular there.
_FLAT_RATIO = 1.0 - 5e-6
_LIMIT_ROW = (15.0 / 8.0, -10.0 / 8.0, 3.0 / 8.0)


def _minimax_quintic_unit(lower: float) -> tuple[float, float, float]:
    """Minimax odd quintic approximating 1 on ``[lower, 1]`` (Remez exchange)."""
    if lower >= _FLAT_RATIO:
        return _LIMIT_ROW
    q, r = (3.0 * lower + 1.0) / 4.0, (lower + 3.0) / 4.0
    signs = np.array([1.0, -1.0, 1.0, -1.0])
    previous = math.inf
    for _ in range(100):
        nodes = np.array([lower, q, r, 1.0])
        system = np.stack([nodes, nodes**3, nodes**5, signs], axis=1)
        a, b, c, err = np.linalg.solve(system, np.ones(4))
        # interior critical points: p'(x) = a + 3b x² + 5c x⁴ = 0
        root = math.sqrt(max(9.0 * b * b - 20.0 * a * c, 0.0))
        t1, t2 = (-3.0 * b - root) / (10.0 * c), (-3.0 * b + root) / (10.0 * c)
        q, r = sorted((math.sqrt(max(t1, 0.0)), math.sqrt(max(t2, 0.0))))
        if abs(err - previous) <= 1e-15:
            break
        previous = err
    return float(a), float(b), float(c)


def _evaluate(row: tuple[float, float, float], x: float) -> float:
    a, b, c = row
    x2 = x * x
    return x * (a + x2 * (b + c * x2))


def polar_express_coefficients(
    lower: float = 1e-3,
    steps: int = 8,
    safety: float = 1.01,
    cushion: float = PAPER_CUSHION,
) -> Schedule:
    """Design a Polar Express schedule for singular values in ``[lower, 1]``.

    Greedy minimax composition of odd quintics (Amsel et al., 2025, Alg. 1):
    step ``k`` uses the quintic that best approximates 1 on the current
    interval ``[ℓ_k, u_k]`` (starting from ``[lower, 1]``), recentred so that
    ``p(ℓ_k) + p(u_k) = 2``; the next interval is ``[p(ℓ_k), 2 − p(ℓ_k)]``.
    While ``ℓ_k/u_k`` is below ``cushion`` the quintic is designed on
    ``[cushion·u_k, u_k]`` instead, which keeps the first polynomials from
    overshooting when ``lower`` is tiny.

    Parameters
    ----------
    lower : float, default 1e-3
        Lower end of the singular values the schedule must handle, after the
        input is normalised to ``‖X‖ ≤ 1``; ``0 < lower < 1``.
    steps : int, default 8
        Number of rows (iteration steps) to design.
    safety : float, default 1.01
        Safety factor ``s ≥ 1`` applied afterwards to every row but the last:
        ``(a, b, c) → (a/s, b/s³, c/s⁵)``.  Use it together with normalising
        the input by ``s·‖X‖_F`` (as the ``"polar_express"`` method does), so
        rounding errors that push a singular value just above 1 cannot blow
        up.  ``safety=1`` gives the raw rows.
    cushion : float, default 0.02407327424182761
        Lower limit on the design interval's ratio ``ℓ/u``, in ``(0, 1)``.
        The default is the value behind the published table; the sketch in
        the paper's text rounds it to 0.02, which gives a different first row.

    Returns
    -------
    tuple of (a, b, c)
        ``steps`` rows of float coefficients.  With the defaults they equal the
        published table (``COEFFICIENTS["polar_express"]`` with the safety
        factor applied) to about 1e-11.

    Raises
    ------
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> rows = polar_express_coefficients(lower=1e-3, steps=8, safety=1.0)
    >>> [round(v, 6) for v in rows[0]]
    [8.287212, -23.595887, 17.300387]
    """
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    for name, value, lo, hi in (("lower", lower, 0.0, 1.0), ("cushion", cushion, 0.0, 1.0)):
        if not isinstance(value, numbers.Real) or not lo < float(value) < hi:
            raise ValueError(f"{name} must lie in the open interval ({lo}, {hi}); got {value!r}")
    if not isinstance(safety, numbers.Real) or not 1.0 <= float(safety) < 2.0:
        raise ValueError(f"safety must lie in [1, 2); got {safety!r}")

    low, up = float(lower), 1.0
    rows = []
    for _ in range(int(steps)):
        design_low = max(low, float(cushion) * up) / up
        if design_low >= _FLAT_RATIO:
            # Interval of relative width < 1e-5: the minimax quintic is the
            # polish polynomial, flat at the interval's midpoint.
            centre = (low + up) / 2.0
        else:
            centre = up
        # The quintic is designed on [design_low, 1]; rescale it to the interval.
        a, b, c = _minimax_quintic_unit(design_low)
        row = (a / centre, b / centre**3, c / centre**5)
        # Recentre around 1 on the true interval: p(low) + p(up) = 2.
        k = 2.0 / (_evaluate(row, low) + _evaluate(row, up))
        row = (row[0] * k, row[1] * k, row[2] * k)
        rows.append(row)
        low = _evaluate(row, low)
        up = 2.0 - low
    return apply_schedule(tuple(rows), len(rows), float(safety))
