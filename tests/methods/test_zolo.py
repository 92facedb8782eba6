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
from polarlinalg._methods.zolo import MAX_DEGREE, choose_degree, zolo_step
from polarlinalg.testing import random_matrix

EPS64, EPS32 = 2.0**-52, 2.0**-23


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize(("shape", "cond"), ACCURACY_CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128", "complex64"])
def test_accuracy_in_two_iterations(backend, dtype, shape, cond, side):
    info = accuracy_case(backend, "zolo", dtype, shape, cond, side)
    assert info.iterations <= 2


def test_two_iterations_up_to_kappa_1e16(backend):
    need_dtype(backend, "float64")
    a = backend.asarray(random_matrix((40, 30), cond=1e16, seed=2), "float64")
    (u, h), info = polar(a, method="zolo", return_info=True)
    assert info.iterations <= 2
    check_accurate(backend, a, u, h, "right", ACCURATE["float64"])


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
