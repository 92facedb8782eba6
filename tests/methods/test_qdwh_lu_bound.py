"""The LU-based bound estimate for square matrices (NumPy with SciPy, PyTorch)."""

import numpy as np
import pytest
from support import need_dtype, to_f64

from polarlinalg._methods import _lower_bound
from polarlinalg._methods._lower_bound import estimate_bounds
from polarlinalg._methods._rational import scale_to_unit_norm
from polarlinalg.testing import random_matrix


@pytest.mark.parametrize("complex_", [False, True])
def test_square_estimate_brackets_and_matches_qr(backend, monkeypatch, complex_):
    dtype = "complex128" if complex_ else "float64"
    need_dtype(backend, dtype)
    xp = backend.xp
    for shape, cond in [((50, 50), 1e3), ((3, 30, 30), 1e8)]:
        a = random_matrix(shape, cond=cond, seed=2, complex=complex_)
        x0 = scale_to_unit_norm(xp, backend.asarray(a, dtype))
        bounds = estimate_bounds(xp, x0)
        assert bounds is not None
        s = np.linalg.svd(to_f64(backend, x0) / to_f64(backend, bounds.beta), compute_uv=False)
        assert s[..., 0].max() <= 1.0 + 1e-12
        assert s[..., -1].min() / 3 <= bounds.lower <= s[..., -1].min()
        # The QR path (the other namespaces, and tall input) agrees closely.
        with monkeypatch.context() as m:
            m.setattr(_lower_bound, "_lu_solver", lambda xp, x0: None)
            by_qr = estimate_bounds(xp, x0)
        assert by_qr is not None
        assert abs(bounds.lower / by_qr.lower - 1.0) < 0.2
        np.testing.assert_allclose(to_f64(backend, bounds.beta), to_f64(backend, by_qr.beta))


def test_square_singular_input_gives_no_estimate(backend):
    need_dtype(backend, "float64")
    a = np.zeros((5, 5))
    a[:, 0] = 1.0
    assert estimate_bounds(backend.xp, backend.asarray(a, "float64")) is None
    assert estimate_bounds(backend.xp, backend.asarray(np.zeros((2, 4, 4)), "float64")) is None


def test_lu_path_is_used_where_available():
    xnp = pytest.importorskip("array_api_compat.numpy")
    pytest.importorskip("scipy")
    x0 = np.eye(4)
    assert _lower_bound._lu_solver(xnp, x0) is not None
    assert _lower_bound._lu_solver(xnp, np.ones((5, 4))) is None  # tall: QR
