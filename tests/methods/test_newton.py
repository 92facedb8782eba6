"""Scaled Newton (after QR, Newton–Schulz near convergence) against NumPy float64 references."""

import functools

import numpy as np
import pytest
from support import (
    ACCURACY_CASES,
    accuracy_case,
    check_accurate,
    get_backend,
    orthogonality,
    to_f64,
)

from polarlinalg import orthogonalize, polar
from polarlinalg._methods.newton import static_counts
from polarlinalg.testing import random_matrix


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize(("shape", "cond"), ACCURACY_CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128", "complex64"])
def test_accuracy(backend, dtype, shape, cond, side):
    info = accuracy_case(backend, "newton", dtype, shape, cond, side)
    assert info.iterations <= 12


def test_static_counts():
    newton, ns = static_counts(1e-16, 2.0**-52)
    assert 7 <= newton <= 10 and 1 <= ns <= 4
    assert static_counts(0.9, 2.0**-52)[0] <= 3


def test_exactly_singular_input_is_completed():
    # Diagonal entries of R below ε‖R‖ are lifted: an exactly singular matrix still gets
    # an orthonormal polar factor (no NaN), and a = u h holds.
    a = random_matrix((8, 5), seed=2)
    a[:, 1] = a[:, 3]  # rank 4
    a[:, 4] = 0.0  # rank 3
    u, h = polar(a, method="newton")
    assert np.all(np.isfinite(u))
    assert orthogonality(u) <= 1e-13
    np.testing.assert_allclose(u @ h, a, atol=1e-13)


def test_zero_matrix_and_batch(backend):
    a_np = random_matrix((3, 6, 4), cond=10.0, seed=3)
    a_np[1] = 0.0
    u = to_f64(backend, orthogonalize(backend.asarray(a_np, "float32"), method="newton"))
    assert np.all(u[1] == 0) and np.all(np.isfinite(u))
    np.testing.assert_allclose(u[0].T @ u[0], np.eye(4), atol=5e-6)


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
def test_jit_uses_static_counts(backend_name):
    backend = get_backend(backend_name)
    import jax

    a = backend.asarray(random_matrix((30, 20), cond=1e8, seed=4), "float64")
    u, h = jax.jit(functools.partial(polar, method="newton"))(a)
    check_accurate(backend, a, u, h, "right", 1e-13)


def test_steps_is_the_maximum():
    a = random_matrix((30, 20), cond=1e10, seed=5)
    _u, info = orthogonalize(a, method="newton", steps=3, return_info=True)
    assert info.iterations == 3 and not bool(info.converged)
