import itertools

import numpy as np
import pytest

from polarlinalg import COEFFICIENTS, polar_express_coefficients
from polarlinalg._coefficients import apply_schedule, schedule_band, schedule_response


def test_reproduces_the_published_table():
    rows = np.array(polar_express_coefficients(lower=1e-3, steps=8, safety=1.0))
    table = np.array(COEFFICIENTS["polar_express"])
    np.testing.assert_allclose(rows, table, rtol=0, atol=1e-10)


def test_default_safety_matches_the_scaled_table():
    rows = np.array(polar_express_coefficients())
    scaled = np.array(apply_schedule(COEFFICIENTS["polar_express"], 8, 1.01))
    np.testing.assert_allclose(rows, scaled, rtol=0, atol=1e-10)
    # the last row is the unscaled polish
    assert rows[-1] == pytest.approx((1.875, -1.25, 0.375), abs=1e-12)


def test_first_quintic_equioscillates():
    # Above the cushion the first row is the minimax quintic on [lower, 1]:
    # the error 1 − p alternates with equal size at lower, q, r, 1.
    lower = 0.1
    ((a, b, c),) = polar_express_coefficients(lower=lower, steps=1, safety=1.0)
    disc = np.sqrt(9 * b * b - 20 * a * c)
    q, r = np.sqrt(sorted([(-3 * b - disc) / (10 * c), (-3 * b + disc) / (10 * c)]))
    err = 1 - schedule_response(((a, b, c),), np.array([lower, q, r, 1.0]))
    np.testing.assert_allclose(err, err[0] * np.array([1, -1, 1, -1]), rtol=1e-9)
    grid = np.linspace(lower, 1, 10001)
    assert np.max(np.abs(1 - schedule_response(((a, b, c),), grid))) <= abs(err[0]) * (1 + 1e-9)


@pytest.mark.parametrize(
    ("lower", "steps", "bound"), [(1e-2, 5, 1e-4), (1e-4, 8, 5e-3), (1e-6, 11, 1e-3)]
)
def test_custom_lower_bounds_converge(lower, steps, bound):
    rows = polar_express_coefficients(lower=lower, steps=steps, safety=1.0)
    lo, hi = schedule_band(rows, lower, 1.0)
    assert 1 - bound <= lo and hi <= 1 + bound


def test_more_steps_never_hurt():
    errs = []
    for steps in range(1, 9):
        rows = polar_express_coefficients(lower=1e-3, steps=steps, safety=1.0)
        lo, hi = schedule_band(rows, 1e-3, 1.0)
        errs.append(max(1 - lo, hi - 1))
    assert all(b <= a + 1e-15 for a, b in itertools.pairwise(errs))


def test_a_design_for_a_smaller_lower_bound_handles_it_better():
    tight = polar_express_coefficients(lower=1e-5, steps=6, safety=1.0)
    default = polar_express_coefficients(lower=1e-3, steps=6, safety=1.0)
    assert schedule_band(tight, 1e-5, 1.0)[0] > schedule_band(default, 1e-5, 1.0)[0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lower": 0.0},
        {"lower": 1.0},
        {"lower": -1},
        {"steps": 0},
        {"steps": 2.5},
        {"steps": True},
        {"safety": 0.99},
        {"safety": 3.0},
        {"cushion": 0.0},
        {"cushion": 1.5},
        {"lower": "x"},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        polar_express_coefficients(**kwargs)
