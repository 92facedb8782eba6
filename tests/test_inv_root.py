"""inv_root against a float64 NumPy eigh reference, on every backend; every branch of both methods.

Tolerances: eigh is backward stable, so its relative error is at most about
``κ^{1/p}·n·u`` (``u`` the unit roundoff); the coupled Newton iteration adds
the rounding of its products, amplified in the same way.  The bounds below
are 100× the errors measured on an AMD EPYC (OpenBLAS/MKL) for these
matrices, far from the last ulp.
"""

from __future__ import annotations

import numpy as np
import pytest
import support

from polarlinalg import inv_root


def psd(n, kappa, seed=0, batch=(), complex_=False):
    rng = np.random.default_rng(seed)
    shape = (*batch, n, n)
    z = rng.standard_normal(shape)
    if complex_:
        z = z + 1j * rng.standard_normal(shape)
    q, _ = np.linalg.qr(z)
    w = np.logspace(0, -np.log10(kappa), n)
    return (q * w) @ np.conj(np.swapaxes(q, -1, -2))


def reference(a, p, eps=0.0):
    w, v = np.linalg.eigh(a)
    w = np.maximum(w, 0) + eps
    return (v * (w ** (-1.0 / p))[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))


def rel(x, y):
    return np.linalg.norm(x - y) / np.linalg.norm(y)


# (method, dtype) -> relative error bound for κ ≤ 1e4, p ≤ 4
BOUND = {
    ("eigh", "float64"): 1e-10,
    ("eigh", "float32"): 1e-3,
    ("newton", "float64"): 1e-10,
    ("newton", "float32"): 5e-3,
}


@pytest.mark.parametrize("method", ["eigh", "newton"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("p", [1, 2, 4])
def test_matches_reference(backend, method, dtype, p):
    support.need_dtype(backend, dtype)
    a = psd(16, 1e4, batch=(2,))
    got = backend.to_numpy(inv_root(backend.asarray(a, dtype), p, method=method, eps=1e-3))
    assert rel(got, reference(a, p, 1e-3)) < BOUND[method, dtype]


def test_fractional_root_and_complex(backend):
    a = psd(12, 1e3, seed=1)
    got = backend.to_numpy(inv_root(backend.asarray(a, "float64"), 0.5, eps=0.0))
    assert rel(got, reference(a, 0.5)) < 1e-9
    if backend.dtype("complex128") is None:
        return
    c = psd(10, 1e2, seed=2, complex_=True)
    for method in ("eigh", "newton"):
        got = backend.to_numpy(inv_root(backend.asarray(c, "complex128"), 4, method=method))
        assert rel(got, reference(c, 4)) < 1e-10


def test_singular_without_eps_is_inf_with_eigh():
    a = np.diag([1.0, 0.0])
    out = inv_root(a, 2)
    assert np.isinf(out).any()
    np.testing.assert_allclose(inv_root(a, 2, eps=1e-2), np.diag([1 / np.sqrt(1.01), 10.0]))


def test_newton_stops_early_eagerly_and_runs_masked_when_traced():
    jax = pytest.importorskip("jax")
    a = psd(8, 10.0, seed=3)
    want = reference(a, 4)
    eager = inv_root(jax.numpy.asarray(a), 4, method="newton")
    traced = jax.jit(lambda x: inv_root(x, 4, method="newton"))(jax.numpy.asarray(a))
    both = jax.jit(lambda x: inv_root(x, 4, method="newton", steps=3))(jax.numpy.asarray(a))
    assert rel(np.asarray(eager), want) < 1e-12
    assert rel(np.asarray(traced), want) < 1e-12  # converged matrices stay frozen
    assert rel(np.asarray(both), want) > 1e-6  # 3 steps are not enough for κ = 10
    eigh = jax.jit(lambda x: inv_root(x, 4))(jax.numpy.asarray(a))
    assert rel(np.asarray(eigh), want) < 1e-12


def test_newton_step_count_matters_eagerly():
    a = psd(8, 1e3, seed=4)
    few = inv_root(a, 4, method="newton", steps=2)
    many = inv_root(a, 4, method="newton")
    assert rel(few, reference(a, 4)) > 1e-2 > 1e-12 > rel(many, reference(a, 4))


def test_newton_in_bfloat16_torch():
    torch = pytest.importorskip("torch")
    a = psd(16, 1e2, seed=5)
    got = inv_root(
        torch.tensor(a, dtype=torch.float32), 4, method="newton", compute_dtype="bfloat16"
    )
    assert got.dtype == torch.float32
    assert rel(got.double().numpy(), reference(a, 4)) < 0.1  # bfloat16: u = 3.9e-3; measured 1e-2


def test_zero_size(backend):
    for shape in ((0, 3, 3), (0, 0)):
        out = inv_root(backend.asarray(np.zeros(shape), "float64"), 2)
        assert tuple(out.shape) == shape


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"p": 0}, ValueError, "p must be"),
        ({"p": -2}, ValueError, "p must be"),
        ({"p": 2.5, "method": "newton"}, ValueError, "integer p"),
        ({"p": 2, "eps": -1.0}, ValueError, "eps"),
        ({"p": 2, "eps": True}, TypeError, "eps"),
        ({"p": 2, "method": "svd"}, ValueError, "eigh"),
        ({"p": 2, "steps": 0}, ValueError, "steps"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        inv_root(np.eye(3), **kwargs)


def test_bad_arrays():
    with pytest.raises(ValueError, match="square"):
        inv_root(np.ones((3, 4)), 2)
    with pytest.raises(ValueError, match="square"):
        inv_root(np.ones(3), 2)
    with pytest.raises(TypeError, match="floating"):
        inv_root(np.eye(3, dtype=np.int64), 2)
    with pytest.raises(ValueError, match="NaN"):
        inv_root(np.full((2, 2), np.nan), 2)
    assert np.isnan(inv_root(np.full((2, 2), np.nan), 2, check_finite=False)).all()
