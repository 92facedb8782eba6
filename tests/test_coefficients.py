import math

import numpy as np
import pytest

from polarlinalg import COEFFICIENTS
from polarlinalg._coefficients import (
    apply_schedule,
    resolve_schedule,
    schedule_band,
    schedule_response,
)


def test_published_schedules_are_present():
    for name in ("muon", "tuned5", "polar_express", "cans", "cubic"):
        assert name in COEFFICIENTS
        for row in COEFFICIENTS[name]:
            assert len(row) == 3 and all(isinstance(v, float) for v in row)
    assert COEFFICIENTS["muon"] == ((3.4445, -4.7750, 2.0315),)
    assert len(COEFFICIENTS["polar_express"]) == 8
    assert COEFFICIENTS["polar_express"][-1] == (1.875, -1.25, 0.375)


def test_table_is_read_only():
    with pytest.raises(TypeError):
        COEFFICIENTS["mine"] = ((1.0, 0.0, 0.0),)
    assert "mine" not in COEFFICIENTS


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown coefficient schedule 'nope'.*'muon'.*'cubic'"):
        resolve_schedule("nope")


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [(1.0, 2.0)],
        [(1.0, 2.0, float("nan"))],
        ["abc"],
        [(1.0, True, 0.0)],
        3.0,
        [(1.0, "x", 0.0)],
        [(1.0, 2.0, math.inf)],
    ],
)
def test_malformed_rows_are_rejected(rows):
    with pytest.raises(ValueError, match="coefficient"):
        resolve_schedule(rows)


def test_user_rows_are_normalised_to_float_tuples():
    rows = resolve_schedule([[3, -4, 2], np.array([1.5, -0.5, 0.0])])
    assert rows == ((3.0, -4.0, 2.0), (1.5, -0.5, 0.0))


def test_apply_schedule_repeats_last_row_and_scales_all_but_it():
    rows = ((2.0, -1.0, 0.5), (1.875, -1.25, 0.375))
    out = apply_schedule(rows, 4, safety=1.1)
    assert len(out) == 4
    assert out[0] == pytest.approx((2.0 / 1.1, -1.0 / 1.1**3, 0.5 / 1.1**5))
    assert out[1:] == (rows[1],) * 3
    assert apply_schedule(rows, 1, safety=1.0) == rows[:1]


def test_single_row_schedule_is_never_scaled():
    assert apply_schedule(COEFFICIENTS["muon"], 3, safety=1.05) == COEFFICIENTS["muon"] * 3


def test_schedule_response_composes_quintics():
    rows = ((2.0, -1.0, 0.0), (1.5, -0.5, 0.0))
    x = np.array([0.1, 0.5])
    y1 = 2 * x - x**3
    expected = 1.5 * y1 - 0.5 * y1**3
    np.testing.assert_allclose(schedule_response(rows, x), expected, rtol=1e-15)


def test_muon_band_matches_the_published_one():
    # Jordan's quintic ×5: σ′ ∈ about [0.68, 1.13] for σ ∈ [0.01, 1].
    low, high = schedule_band(COEFFICIENTS["muon"] * 5, 0.01, 1.0)
    assert 0.675 < low < 0.69
    assert 1.125 < high < 1.14


@pytest.mark.parametrize(
    ("steps", "low", "high"),
    [
        (5, (0.83, 0.86), (1.11, 1.13)),
        (6, (0.99, 0.996), (1.0005, 1.002)),
        (7, (0.9999, 1.0), (0.9999, 1.0001)),
    ],
)
def test_polar_express_bands(steps, low, high):
    rows = apply_schedule(COEFFICIENTS["polar_express"], steps, 1.01)
    lo, hi = schedule_band(rows, 1e-3, 1 / 1.01)
    assert low[0] <= lo <= low[1]
    assert high[0] <= hi <= high[1]
