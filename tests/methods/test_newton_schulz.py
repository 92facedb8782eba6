"""The Newton–Schulz family against what its schedule does in exact arithmetic.

After normalisation, a schedule maps each singular value x ↦ φ(x) (the composed
quintics) and keeps the singular vectors, so the computed U must equal
P φ(Σ/(s‖A‖_F)) Qᴴ up to rounding (``exact_iterate``): a much sharper check
than a band, and it holds for every schedule.
"""

import numpy as np
import pytest
from support import POLYNOMIAL, need_dtype, projected_distance, significant, to_f64

from polarlinalg import COEFFICIENTS, orthogonalize, polar
from polarlinalg._coefficients import RECOMMENDED_SAFETY, apply_schedule, schedule_band
from polarlinalg.testing import exact_iterate, random_matrix, reference_polar

SHAPES = {"wide": (24, 56), "tall": (56, 24), "batched": (2, 20, 20)}


def _check_against_exact(backend, dtype, a_np, rows, norm_safety, **kwargs):
    a = backend.asarray(a_np, dtype)
    a64 = to_f64(backend, a)
    ref = reference_polar(a64)
    u = orthogonalize(a, **kwargs)
    assert u.shape == a.shape and u.dtype == a.dtype
    exact, _ = exact_iterate(ref, rows, norm_safety)
    dev = projected_distance(to_f64(backend, u), exact, ref, significant(ref, dtype))
    assert dev <= POLYNOMIAL[dtype], dev
    return u, ref


def _check_named_schedule(backend, dtype, a_np, schedule, steps):
    """Check ``newton_schulz`` with a named schedule; return ``(u, rows, safety)``."""
    safety = RECOMMENDED_SAFETY.get(schedule, 1.0)
    rows = apply_schedule(COEFFICIENTS[schedule], steps, safety)
    u, _ = _check_against_exact(
        backend,
        dtype,
        a_np,
        rows,
        safety,
        method="newton_schulz",
        coefficients=schedule,
        steps=steps,
    )
    return u, rows, safety


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("schedule", ["muon", "tuned5", "polar_express", "cans", "cubic"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_schedules_match_exact_iterate(backend, dtype, schedule, shape):
    need_dtype(backend, dtype)
    a_np = random_matrix(SHAPES[shape], cond=1e3, seed=11)
    _check_named_schedule(backend, dtype, a_np, schedule, steps=7)


@pytest.mark.parametrize("steps", [1, 5, 8, 11])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
def test_polar_express_method(backend, dtype, steps):
    need_dtype(backend, dtype)
    a_np = random_matrix((32, 48), cond=1e2, complex=dtype.startswith("complex"), seed=steps)
    rows = apply_schedule(COEFFICIENTS["polar_express"], steps, 1.01)
    _check_against_exact(backend, dtype, a_np, rows, 1.01, method="polar_express", steps=steps)


def test_default_steps_are_five(backend):
    a_np = random_matrix((16, 24), cond=10.0, seed=2)
    rows = apply_schedule(COEFFICIENTS["polar_express"], 5, 1.01)
    _check_against_exact(backend, "float32", a_np, rows, 1.01)
    rows = apply_schedule(COEFFICIENTS["muon"], 5, 1.0)
    _check_against_exact(backend, "float32", a_np, rows, 1.0, method="newton_schulz")


def test_user_rows_and_safety_option(backend):
    # Explicit rows are used as given; the safety factor only scales the normalisation.
    a_np = random_matrix((20, 30), cond=10.0, seed=4)
    rows = [(2.0, -1.5, 0.5), (1.5, -0.5, 0.0)]
    expanded = apply_schedule(tuple(rows), 6, 1.0)
    _check_against_exact(
        backend,
        "float64",
        a_np,
        expanded,
        1.05,
        method="newton_schulz",
        coefficients=rows,
        steps=6,
        safety=1.05,
    )


def test_cubic_converges_to_the_polar_factor(backend):
    # Classic Newton–Schulz converges quadratically once σ is near 1: 30 steps from
    # σ ≥ 0.1 reach the polar factor to working precision.
    need_dtype(backend, "float64")
    a = backend.asarray(random_matrix((30, 20), cond=5.0, seed=5), "float64")
    u = to_f64(backend, orthogonalize(a, method="newton_schulz", coefficients="cubic", steps=30))
    ref = reference_polar(to_f64(backend, a))
    np.testing.assert_allclose(u, ref.u, atol=1e-12)


def test_muon_band(backend):
    # Jordan's quintic ×5 puts σ′ in [0.682, 1.1344] (published: "about [0.68, 1.13]")
    # for normalised σ in [0.01, 1].
    # Singular values 1 ... 0.013 over 12 values: normalised by ‖A‖_F they span
    # about [0.01, 0.77].
    a_np = random_matrix((12, 40), cond=77.0, seed=6)
    ref = reference_polar(a_np)
    x = ref.s / np.linalg.norm(ref.s)
    assert 0.0095 < x.min() and x.max() < 1
    u = to_f64(backend, orthogonalize(backend.asarray(a_np, "float32"), method="newton_schulz"))
    sigma = np.linalg.svd(u, compute_uv=False)
    assert sigma.min() >= 0.6818 - 1e-3 and sigma.max() <= 1.1344 + 1e-3


@pytest.mark.parametrize("shape", [(64, 48), (48, 64), (3, 32, 32)])
def test_polar_express_8_steps_float32(backend, shape):
    # polar_express×8: |σ′ − 1| ≤ 1e-2 in float32 for κ ≤ 1e3 while the normalised σ stay
    # above about 3e-4 (here they are ≥ 5e-4; see docs/algorithms.md).
    a = backend.asarray(random_matrix(shape, cond=1e3, seed=7), "float32")
    u = to_f64(backend, orthogonalize(a, steps=8))
    sigma = np.linalg.svd(u, compute_uv=False)
    assert np.max(np.abs(sigma - 1)) <= 1e-2


@pytest.mark.parametrize("schedule", ["muon", "tuned5", "polar_express", "cans"])
@pytest.mark.parametrize("cond", [1.0, 1e2, 1e8])
@pytest.mark.parametrize("steps", [5, 8])
def test_bfloat16(backend, schedule, cond, steps):
    # Polar Express and CANS rows diverge in bfloat16 without their safety factor.
    need_dtype(backend, "bfloat16")
    a_np = random_matrix((48, 160), cond=cond, seed=8)
    u, rows, safety = _check_named_schedule(backend, "bfloat16", a_np, schedule, steps)
    ceiling = schedule_band(rows, 1e-6, 1 / safety)[1]
    assert np.linalg.svd(to_f64(backend, u), compute_uv=False).max() <= ceiling + 0.05


def test_polar_h_is_hermitian_part_of_uh_a(backend):
    a = (
        backend.asarray(random_matrix((20, 12), cond=10.0, seed=9), "float64")
        if backend.dtype("float64")
        else backend.asarray(random_matrix((20, 12), cond=10.0, seed=9), "float32")
    )
    u, h = polar(a, method="polar_express", steps=8)
    u64, h64, a64 = to_f64(backend, u), to_f64(backend, h), to_f64(backend, a)
    expected = u64.T @ a64
    np.testing.assert_allclose(h64, (expected + expected.T) / 2, atol=1e-5)


def test_named_schedule_gets_the_safety_factor_on_its_rows(backend):
    a_np = random_matrix((20, 30), cond=10.0, seed=4)
    rows = apply_schedule(COEFFICIENTS["tuned5"], 5, 1.05)
    _check_against_exact(
        backend,
        "float32",
        a_np,
        rows,
        1.05,
        method="newton_schulz",
        coefficients="tuned5",
        safety=1.05,
    )


def test_designed_rows_reproduce_the_default(backend):
    # polar_express_coefficients() applies the safety factor itself, so its rows passed
    # explicitly give the same iterate as the default named schedule.
    from polarlinalg import polar_express_coefficients

    a = backend.asarray(random_matrix((24, 40), cond=1e2, seed=10), "float32")
    designed = orthogonalize(a, coefficients=polar_express_coefficients(steps=8), steps=5)
    default = orthogonalize(a)
    np.testing.assert_allclose(to_f64(backend, designed), to_f64(backend, default), atol=1e-6)


def test_newton_schulz_with_polar_express_rows_is_the_polar_express_method(backend):
    a = backend.asarray(random_matrix((24, 40), cond=1e2, seed=12), "float32")
    np.testing.assert_array_equal(
        to_f64(backend, orthogonalize(a, method="newton_schulz", coefficients="polar_express")),
        to_f64(backend, orthogonalize(a, method="polar_express")),
    )
