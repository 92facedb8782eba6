"""The machinery shared by QDWH, ZOLO-PD and Newton: both shifted-solve forms, scaling, tests."""

import numpy as np
import pytest
from support import need_dtype, to_f64

from polarlinalg._methods._rational import (
    CHOLESKY_MIN_SHIFT,
    orthogonal_enough,
    polish,
    scale_to_unit_norm,
    shifted_products,
)
from polarlinalg.testing import random_matrix


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("shifts", [[1e-6], [0.5], [1e-9, 3e-3, 0.02, 2.0]])
def test_shifted_products_both_forms(backend, dtype, shifts):
    # shifts below CHOLESKY_MIN_SHIFT take the QR form, the others the Cholesky form
    need_dtype(backend, dtype)
    a_np = random_matrix((2, 30, 12), cond=1e3, complex=dtype.startswith("complex"), seed=1)
    x = backend.asarray(a_np, dtype)
    x64 = to_f64(backend, x)
    out = to_f64(backend, shifted_products(backend.xp, x, shifts))
    assert out.shape == (len(shifts), 2, 30, 12)
    tol = 1e-11 if dtype != "float32" else 2e-4
    for i, s in enumerate(shifts):
        w = np.swapaxes(x64, -1, -2).conj() @ x64 + s * np.eye(12)
        expected = np.swapaxes(np.linalg.solve(w, np.swapaxes(x64, -1, -2).conj()), -1, -2).conj()
        scale = np.max(np.abs(expected))
        np.testing.assert_allclose(out[i], expected, atol=tol * scale)
    assert any(s < CHOLESKY_MIN_SHIFT for s in shifts) or all(
        s >= CHOLESKY_MIN_SHIFT for s in shifts
    )


def test_scale_to_unit_norm(backend):
    a_np = (
        random_matrix((3, 20, 8), cond=10.0, seed=2) * np.array([1e-20, 1.0, 1e20])[:, None, None]
    )
    x = to_f64(backend, scale_to_unit_norm(backend.xp, backend.asarray(a_np, "float32")))
    s = np.linalg.svd(x, compute_uv=False)
    assert np.all(s[..., 0] <= 1 + 1e-6) and np.all(s[..., 0] > 0.2)
    zero = backend.asarray(np.zeros((4, 3)), "float32")
    assert np.all(to_f64(backend, scale_to_unit_norm(backend.xp, zero)) == 0)


def test_polish_and_orthogonality_test(backend):
    q = np.linalg.qr(random_matrix((16, 6), seed=3))[0]
    for delta, expect in [(1e-9, True), (1e-3, False)]:
        x = backend.asarray(q * (1 + delta), "float64") if backend.dtype("float64") else None
        if x is None:
            pytest.skip("no float64")
        assert bool(orthogonal_enough(backend.xp, x)) is expect
        y = to_f64(backend, polish(backend.xp, x))
        err = np.abs(y.T @ y - np.eye(6)).max()
        assert err < 1e-14 if delta < 1e-6 else err < 1e-5


def test_driver_replans_then_falls_back():
    # A design that never returns a step: the driver must replan once (estimate the bounds
    # on the current iterate), then continue with the fallback (Halley) steps to convergence.
    import array_api_compat.numpy as xp

    from polarlinalg._methods._rational import Start, iterate
    from polarlinalg._methods.qdwh import _HALLEY, _step

    a = scale_to_unit_norm(xp, random_matrix((30, 20), cond=50.0, seed=5))
    calls = []

    def design(ell):
        calls.append(ell)
        return []

    u, progress = iterate(
        xp, Start(a, 1e-2, False), design, lambda y, w: _step(xp, y, w), _HALLEY, max_steps=12
    )
    assert len(calls) == 2  # the initial design and one replan
    assert progress.iterations > 0 and bool(progress.converged)
    np.testing.assert_allclose(u.T @ u, np.eye(20), atol=1e-13)


def test_driver_traced_runs_the_static_schedule_only():
    import array_api_compat.numpy as xp

    from polarlinalg._methods._rational import Start, iterate
    from polarlinalg._methods.qdwh import _HALLEY, _step

    a = scale_to_unit_norm(xp, random_matrix((30, 20), cond=1e6, seed=6))
    _u, progress = iterate(
        xp,
        Start(a, 0.5, True),
        lambda ell: [_HALLEY],
        lambda y, w: _step(xp, y, w),
        _HALLEY,
        max_steps=12,
    )
    assert progress.iterations == 1  # no early exit, no replan, no fallback when traced
    assert not bool(progress.converged)
