"""QDWH against NumPy float64 SVD references, on every backend."""

import functools

import numpy as np
import pytest
from support import (
    ACCURACY_CASES,
    accuracy_case,
    check_accurate,
    get_backend,
    need_dtype,
    orthogonality,
    relative_residual,
    to_f64,
)

from polarlinalg import orthogonalize, polar
from polarlinalg._methods.qdwh import NS, qdwh_weights, weight_schedule
from polarlinalg.testing import random_matrix


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize(("shape", "cond"), ACCURACY_CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128", "complex64"])
def test_accuracy(backend, dtype, shape, cond, side):
    info = accuracy_case(backend, "qdwh", dtype, shape, cond, side)
    assert info.iterations <= 6
    assert np.all(np.asarray(backend.to_numpy(backend.xp.asarray(info.converged))))


def test_large_float64(backend):
    # the contract: n ≤ 1000, κ ≤ 1e12 in float64; one big case per backend
    if backend.name == "array_api_strict":
        pytest.skip("general-solve fallback makes this slow; smaller cases cover strict")
    need_dtype(backend, "float64")
    a = backend.asarray(random_matrix((400, 300), cond=1e12, seed=2), "float64")
    u, h = polar(a)
    check_accurate(backend, a, u, h, "right", 1e-13)


def test_iteration_counts(backend):
    need_dtype(backend, "float64")
    counts = {}
    for cond in (1.0, 1e2, 1e8, 1e16):
        a = backend.asarray(random_matrix((50, 40), cond=cond, seed=3), "float64")
        _, info = orthogonalize(a, method="qdwh", return_info=True)
        counts[cond] = info.iterations
    assert counts[1e16] <= 6
    assert counts[1.0] <= 3 < 6 and counts[1.0] <= counts[1e2] <= counts[1e8] <= counts[1e16]


def test_both_branches_and_the_finish_are_used_and_accurate():
    # κ = 1e8 with ℓ = ε: two QR-form steps (c > 100), Cholesky-form steps, then
    # Newton–Schulz finishing steps.
    schedule = weight_schedule(2.0**-52, 2.0**-52, 10)
    weights = [w for w in schedule if w != NS]
    assert sum(c > 100 for _, _, c in weights) == 2
    assert sum(c <= 100 for _, _, c in weights) >= 2
    assert schedule.count(NS) >= 1 and schedule[-1] == NS
    a = random_matrix((60, 40), cond=1e8, seed=4)
    (u, h), info = polar(a, method="qdwh", lower=2.0**-52, return_info=True)
    assert info.iterations == len(weights) and info.finishing_steps == schedule.count(NS) + 1
    assert orthogonality(u) <= 1e-13 and relative_residual(a, u @ h) <= 1e-13


def test_weights_reduce_to_halley_near_one():
    a, b, c = qdwh_weights(1.0 - 1e-12)
    assert (a, b, c) == pytest.approx((3.0, 1.0, 3.0), rel=1e-5)
    assert weight_schedule(1.0, 2.0**-52, 10) == []
    # within 0.1 of 1 only Newton–Schulz steps remain (δ → 1.5δ² down to √ε)
    assert weight_schedule(0.95, 2.0**-52, 10) == [NS] * 3


def test_fallback_after_an_overestimated_lower_bound():
    # A caller's lower=0.9 on a κ = 1e6 matrix: the designed schedule ends unconverged;
    # eagerly, Halley steps continue until convergence.
    a = random_matrix((40, 30), cond=1e6, seed=5)
    (u, h), info = polar(a, method="qdwh", lower=0.9, return_info=True)
    steps = info.iterations + info.finishing_steps - 1  # the final polish is not a step
    assert steps > len(weight_schedule(0.9, 2.0**-52, 10))
    assert info.iterations >= 1  # the re-planned schedule used QDWH steps
    assert bool(info.converged)
    assert orthogonality(u) <= 1e-13 and relative_residual(a, u @ h) <= 1e-13


def test_steps_is_the_maximum():
    a = random_matrix((40, 30), cond=1e10, seed=6)
    u, info = orthogonalize(a, method="qdwh", steps=2, return_info=True)
    assert info.iterations == 2 and not bool(info.converged)
    assert orthogonality(u) > 1e-6


def test_rank_deficient_and_zero(backend):
    need_dtype(backend, "float64")
    a = backend.asarray(random_matrix((50, 30), cond=10.0, rank=12, seed=7), "float64")
    u, h = polar(a, method="qdwh")
    check_accurate(backend, a, u, h, "right", 1e-13)
    z = backend.asarray(np.zeros((2, 6, 4)), "float64")
    u, h = polar(z, method="qdwh")
    assert np.all(to_f64(backend, u) == 0) and np.all(to_f64(backend, h) == 0)


def test_exact_zero_singular_values_give_a_partial_isometry():
    # A zero column has an exactly zero singular value: QDWH keeps U zero there (the
    # canonical partial isometry), and a = u h still holds.
    a = random_matrix((10, 4), seed=8)
    a[:, 2] = 0.0
    u, h = polar(a, method="qdwh")
    np.testing.assert_allclose(u[:, 2], 0.0, atol=1e-15)
    assert relative_residual(a, u @ h) <= 1e-14
    s = np.linalg.svd(u, compute_uv=False)
    np.testing.assert_allclose(s, [1, 1, 1, 0], atol=1e-14)


def test_half_precision_computes_in_float32(backend):
    need_dtype(backend, "bfloat16")
    a = backend.asarray(random_matrix((20, 10), cond=10.0, seed=9), "bfloat16")
    u, h = polar(a)
    assert u.dtype == a.dtype and h.dtype == a.dtype
    u64 = to_f64(backend, u)
    assert np.abs(u64.T @ u64 - np.eye(10)).max() < 2e-2


def test_matches_scipy_polar():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a = random_matrix((50, 30), cond=1e4, seed=10)
    for side in ("right", "left"):
        u, h = polar(a, side)
        u_ref, h_ref = scipy_linalg.polar(a, side=side)
        np.testing.assert_allclose(u, u_ref, atol=1e-11)
        np.testing.assert_allclose(h, h_ref, atol=1e-12)


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
def test_matches_jax_polar(backend_name):
    backend = get_backend(backend_name)
    import jax

    a = backend.asarray(random_matrix((50, 30), cond=1e4, seed=11), "float64")
    u_ref, h_ref = jax.scipy.linalg.polar(a, method="qdwh")
    u, h = polar(a)
    np.testing.assert_allclose(to_f64(backend, u), to_f64(backend, u_ref), atol=1e-11)
    np.testing.assert_allclose(to_f64(backend, h), to_f64(backend, h_ref), atol=1e-12)
    # and jitted, where the schedule is static (ℓ = ε) and masking replaces early exit
    u_jit, _ = jax.jit(functools.partial(polar, method="qdwh"))(a)
    np.testing.assert_allclose(to_f64(backend, u_jit), to_f64(backend, u_ref), atol=1e-11)


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
def test_traced_batch_masks_converged_matrices(backend_name):
    # one orthogonal and one ill-conditioned matrix in a batch under jit: both exact
    backend = get_backend(backend_name)
    import jax

    a_np = np.stack(
        [
            np.linalg.qr(random_matrix((30, 20), seed=12))[0],
            random_matrix((30, 20), cond=1e10, seed=13),
        ]
    )
    a = backend.asarray(a_np, "float64")
    u, h = jax.jit(polar)(a)
    check_accurate(backend, a, u, h, "right", 1e-13)


def test_bad_options():
    with pytest.raises(ValueError, match="lower must be a number in"):
        polar(np.eye(3), lower=0.0)
    with pytest.raises(ValueError, match="lower must be a number in"):
        polar(np.eye(3), lower=2.0)
    with pytest.raises(ValueError, match="takes no coefficient"):
        polar(np.eye(3), coefficients="muon")
    with pytest.raises(TypeError, match="accepts: lower"):
        polar(np.eye(3), safety=1.01)


def test_n_1000_float64():
    # the size: n = 1000, κ = 1e12, float64 (NumPy; the other backends run 400 × 300)
    a = random_matrix((1000, 1000), cond=1e12, seed=14)
    (u, h), info = polar(a, return_info=True)
    assert orthogonality(u) <= 1e-13 and relative_residual(a, u @ h) <= 1e-13
    assert info.iterations <= 6
