"""ZOLO-PD against NumPy float64 SVD references, on every backend."""

import functools

import numpy as np
import pytest
from support import (
    ACCURACY_CASES,
    ACCURATE,
    accuracy_case,
    check_accurate,
    get_backend,
    need_dtype,
    orthogonality,
    to_f64,
)

from polarlinalg import orthogonalize, polar
from polarlinalg._methods.zolo import (
    MAX_DEGREE,
    choose_degree,
    design_floor,
    design_schedule,
    zolo_step,
)
from polarlinalg.testing import random_matrix

EPS64, EPS32 = 2.0**-52, 2.0**-23


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize(("shape", "cond"), ACCURACY_CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128", "complex64"])
def test_accuracy_in_two_iterations(backend, dtype, shape, cond, side):
    info = accuracy_case(backend, "zolo", dtype, shape, cond, side)
    assert info.iterations <= 2


@pytest.mark.parametrize("shape", [(40, 30), (30, 30), (64, 16)])
def test_two_iterations_up_to_kappa_1e16(backend, shape):
    # At κ = 1e16 the estimate of ℓ varies in its last digits between BLAS libraries
    # (5.6e-17 … 7.4e-17 seen on OpenBLAS, MKL and XLA); the schedule must not.
    need_dtype(backend, "float64")
    for seed in range(6):
        a = backend.asarray(random_matrix(shape, cond=1e16, seed=seed), "float64")
        (u, h), info = polar(a, method="zolo", return_info=True)
        assert info.iterations <= 2, (seed, info)
        check_accurate(backend, a, u, h, "right", ACCURATE["float64"])


@pytest.mark.parametrize("eps", [EPS64, EPS32])
def test_design_step_count_does_not_depend_on_the_last_digits_of_ell(eps):
    # Whether the last step lands within 5ε of 1 is decided by rounding in the
    # float64 coefficients; the designed schedule is the floor's, so one (r, steps)
    # always gives the same steps.
    for kappa in (1e1, 1e3, 1e6, 1e9, 1e12, 1e16):
        ell = 1.0 / kappa
        lengths = {
            len(design_schedule(ell * (1 + 1e-3 * k), eps, 4, margin=1.5)) for k in range(40)
        }
        assert len(lengths) == 1 and lengths <= {1, 2}, (kappa, lengths)
        r = choose_degree(ell, eps)
        floor = design_floor(r, 2, eps)
        assert floor <= ell or r == MAX_DEGREE
        steps = design_schedule(ell, eps, 4, margin=1.5)
        # the designed steps take all of [min(ℓ, floor), 1] to within a few ε of 1
        for x0 in np.geomspace(min(ell, floor), 1.0, 50):
            x = float(x0)
            for step in steps:
                x = step(x)
            assert 1.0 - x <= 10.0 * eps, (kappa, x0, 1.0 - x)


def test_design_lifts_only_an_estimate_by_its_margin():
    floor = design_floor(MAX_DEGREE, 2, EPS64)
    assert 1e-17 < floor < 9e-17  # below σ_min(X₀) ≥ 1/(1.1κ) for every κ ≤ 1e16
    below = 1e-17  # r = 8 needs three steps from here
    lift = 1.2 * floor / below
    assert len(design_schedule(below, EPS64, 4, margin=lift)) == 2  # an estimate: lifted
    assert len(design_schedule(below, EPS64, 4, margin=1.0)) == 3  # a caller's bound: kept
    assert len(design_schedule(below, EPS64, 4, margin=1.5)) == 3  # beyond the margin
    assert len(design_schedule(1e-20, EPS64, 4, degree=8)) == 3
    assert design_schedule(1.0, EPS64, 4) == []


def test_a_callers_tiny_lower_keeps_its_longer_schedule():
    a = random_matrix((30, 20), cond=1e3, seed=7)
    _, info = orthogonalize(a, method="zolo", lower=1e-20, return_info=True)
    assert info.iterations == 3  # honoured: designed for [1e-20, 1], not lifted to two steps


def test_degree_choice_matches_the_published_table():
    # the PolarGrad code's double-precision table: κ < 6.5 → 2, < 180 → 3, < 1.5e4 → 4,
    # < 2e6 → 5, < 1e9 → 6, < 3e12 → 7, else 8
    table = [(6.0, 2), (150.0, 3), (1e4, 4), (1e6, 5), (5e8, 6), (1e12, 7), (1e16, 8)]
    for kappa, r in table:
        assert choose_degree(1.0 / kappa, EPS64) == r
    # single precision needs lower degrees
    assert choose_degree(1e-3, EPS32) < choose_degree(1e-3, EPS64)
    assert choose_degree(1e-30, EPS64) == MAX_DEGREE


@pytest.mark.parametrize("ell", [0.5, 1e-2, 1e-8, 1e-16])
@pytest.mark.parametrize("r", [1, 2, 4, 8])
def test_zolotarev_step_maps_into_the_unit_interval(ell, r):
    # Ẑ is the best approximation of sign on [ℓ, 1], normalised so Ẑ(1) = 1:
    # it maps [ℓ, 1] into [Ẑ(ℓ), 1], with its minimum at ℓ
    step = zolo_step(ell, r)
    grid = np.geomspace(ell, 1.0, 20001)
    values = np.array([step(x) for x in grid[::50]] + [step(1.0)])
    assert step(1.0) == pytest.approx(1.0, abs=1e-14)
    assert values.max() <= 1 + 1e-13
    assert values.min() >= step(ell) - 1e-13
    # the shifts c_{2j−1} increase and are positive; r = 1 is QDWH's rational
    assert all(c > 0 for c in step.shifts) and list(step.shifts) == sorted(step.shifts)


def test_degree_one_is_qdwh():
    from polarlinalg._methods.qdwh import qdwh_weights

    for ell in (0.3, 1e-4, 1e-12):
        a, b, c = qdwh_weights(ell)
        step = zolo_step(ell, 1)
        for x in (ell, 0.5, 1.0):
            qdwh = x * (a + b * x * x) / (1 + c * x * x)
            assert step(x) == pytest.approx(qdwh, rel=1e-10)


def test_fallback_after_an_overestimated_lower_bound():
    a = random_matrix((40, 30), cond=1e8, seed=3)
    (u, _h), info = polar(a, method="zolo", lower=0.5, return_info=True)
    assert info.iterations > 2 and bool(info.converged)
    assert orthogonality(u) <= 1e-13


def test_degree_option():
    a = random_matrix((30, 20), cond=1e3, seed=4)
    _, info = orthogonalize(a, method="zolo", degree=2, return_info=True)
    assert info.iterations > 2  # degree 2 needs more than two steps at κ = 1e3
    with pytest.raises(ValueError, match="degree must be at most 8"):
        orthogonalize(a, method="zolo", degree=9)
    with pytest.raises(ValueError, match="degree must be a positive integer"):
        orthogonalize(a, method="zolo", degree=0)


def test_rank_deficient_and_zero(backend):
    need_dtype(backend, "float64")
    a = backend.asarray(random_matrix((50, 30), cond=10.0, rank=12, seed=5), "float64")
    u, h = polar(a, method="zolo")
    check_accurate(backend, a, u, h, "right", 1e-13)
    z = backend.asarray(np.zeros((3, 4)), "float64")
    assert np.all(to_f64(backend, orthogonalize(z, method="zolo")) == 0)


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
def test_jit_uses_the_static_schedule(backend_name):
    backend = get_backend(backend_name)
    import jax

    a = backend.asarray(random_matrix((30, 20), cond=1e6, seed=6), "float64")
    u, h = jax.jit(functools.partial(polar, method="zolo"))(a)
    check_accurate(backend, a, u, h, "right", 1e-13)
