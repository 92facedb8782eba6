import math

import numpy as np
import pytest
from support import need_dtype, to_f64

from polarlinalg import diagnostics as dg
from polarlinalg import orthogonalize, polar
from polarlinalg.testing import random_matrix, reference_polar


def _dtype(backend):
    return "float64" if backend.dtype("float64") is not None else "float32"


def test_measures_match_numpy_formulas(backend):
    dtype = _dtype(backend)
    a_np = random_matrix((2, 12, 7), cond=30.0, seed=1)
    a = backend.asarray(a_np, dtype)
    u, h = polar(a, method="polar_express", steps=3)
    a64, u64, h64 = (to_f64(backend, x) for x in (a, u, h))
    tol = 1e-10 if dtype == "float64" else 1e-5

    ortho = to_f64(backend, dg.orthogonality_error(u))
    expected = np.linalg.norm(
        np.swapaxes(u64, -1, -2) @ u64 - np.eye(7), axis=(-2, -1)
    ) / math.sqrt(7)
    assert ortho.shape == (2,)
    np.testing.assert_allclose(ortho, expected, rtol=1e-4, atol=tol)

    bwd = to_f64(backend, dg.backward_error(a, u, h))
    expected = np.linalg.norm(a64 - u64 @ h64, axis=(-2, -1)) / np.linalg.norm(a64, axis=(-2, -1))
    np.testing.assert_allclose(bwd, expected, rtol=1e-4, atol=tol)

    s = np.linalg.svd(a64, compute_uv=False)
    nuc = to_f64(backend, dg.nuclear_norm(a))
    np.testing.assert_allclose(nuc, s.sum(-1), rtol=1e-5)
    nuc_u = to_f64(backend, dg.nuclear_norm(a, u))
    np.testing.assert_allclose(nuc_u, np.sum(a64 * u64, axis=(-2, -1)), rtol=1e-5)
    gap = to_f64(backend, dg.polar_gap(a, u))
    np.testing.assert_allclose(gap, (s.sum(-1) - nuc_u) / s.sum(-1), rtol=1e-3, atol=tol)
    # three steps are not converged: σ′ overshoots 1 here, so ⟨A, U⟩ > ‖A‖_*
    assert np.all(np.abs(gap) > 1e-3)

    kappa = to_f64(backend, dg.condition_number(a))
    np.testing.assert_allclose(kappa, s[..., 0] / s[..., -1], rtol=1e-4)


def test_exact_polar_factor_has_zero_gap_and_errors(backend):
    dtype = _dtype(backend)
    a = backend.asarray(random_matrix((9, 9), cond=10.0, complex=False, seed=2), dtype)
    u, h = polar(a, method="svd")
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert float(dg.polar_gap(a, u)) <= tol
    assert float(dg.orthogonality_error(u)) <= tol
    assert float(dg.backward_error(a, u, h)) <= tol
    assert float(dg.hermitian_error(h)) <= tol


def test_nuclear_norm_from_polar_factor_complex(backend):
    need_dtype(backend, "complex128")
    a_np = random_matrix((6, 10), cond=5.0, complex=True, seed=3)
    a = backend.asarray(a_np, "complex128")
    u = orthogonalize(a, method="svd")
    expected = np.linalg.svd(a_np, compute_uv=False).sum()
    assert float(dg.nuclear_norm(a, u)) == pytest.approx(expected, rel=1e-12)
    assert float(dg.nuclear_norm(a)) == pytest.approx(expected, rel=1e-12)


def test_condition_number_is_inf_when_singular(backend):
    a_np = np.zeros((3, 5, 4))
    a_np[0] = np.eye(5, 4)
    a_np[2, :3, :3] = np.diag([3.0, 2.0, 1.0])  # exactly rank 3
    kappa = to_f64(backend, dg.condition_number(backend.asarray(a_np, "float32")))
    assert kappa[0] == pytest.approx(1.0) and np.isinf(kappa[1]) and np.isinf(kappa[2])
    a_np = np.zeros((2, 5, 5))
    a_np[0] = np.eye(5)
    kappa = to_f64(backend, dg.condition_number(backend.asarray(a_np, "float32")))
    assert kappa[0] == pytest.approx(1.0) and np.isinf(kappa[1])


def test_zero_matrices_give_zero_not_nan(backend):
    z = backend.asarray(np.zeros((4, 3)), "float32")
    assert float(dg.backward_error(z, z, backend.asarray(np.zeros((3, 3)), "float32"))) == 0.0
    assert float(dg.polar_gap(z, z)) == 0.0
    assert float(dg.hermitian_error(backend.asarray(np.zeros((3, 3)), "float32"))) == 0.0
    assert float(dg.forward_error(z, z)) == 0.0


def test_half_precision_is_measured_in_float32(backend):
    need_dtype(backend, "bfloat16")
    a = backend.asarray(random_matrix((16, 8), seed=5), "bfloat16")
    u = orthogonalize(a, steps=8)
    out = dg.nuclear_norm(a, u)
    assert out.dtype == backend.dtype("float32")
    assert float(out) == pytest.approx(
        float(np.linalg.svd(to_f64(backend, a), compute_uv=False).sum()), rel=2e-2
    )


def test_integer_input(backend):
    a = backend.asarray(np.array([[2, 0], [0, 1]]), None)
    assert float(dg.condition_number(a)) == pytest.approx(2.0)


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        dg.orthogonality_error(np.ones(3))
    with pytest.raises(ValueError, match="side"):
        dg.backward_error(np.eye(2), np.eye(2), np.eye(2), side="top")
    with pytest.raises(ValueError, match="shape"):
        dg.condition_number(np.float64(1.0))


def test_forward_error_against_reference():
    a = random_matrix((10, 6), cond=1e3, seed=6)
    ref = reference_polar(a)
    u = orthogonalize(a.astype(np.float32), method="svd")
    assert float(dg.forward_error(u, ref.u)) < 1e-3
