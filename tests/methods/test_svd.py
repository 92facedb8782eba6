"""The SVD reference method, on every backend, against NumPy float64."""

import numpy as np
import pytest
from support import ACCURATE, orthogonality, relative_residual, significant, to_f64

from polarlinalg import polar
from polarlinalg.testing import random_matrix, reference_polar

CASES = {
    "square": dict(shape=(40, 40), cond=1.0),
    "tall-ill": dict(shape=(60, 20), cond=1e6),
    "wide": dict(shape=(20, 60), cond=1e3),
    "batched": dict(shape=(2, 3, 16, 12), cond=1e2),
    "complex": dict(shape=(24, 24), cond=1e2, complex=True),
    "rank-deficient": dict(shape=(30, 20), cond=1e2, rank=8),
}


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_accuracy(backend, precision, case, side):
    spec = CASES[case]
    dtype = (
        {"float32": "complex64", "float64": "complex128"}[precision]
        if spec.get("complex")
        else precision
    )
    if backend.dtype(dtype) is None:
        pytest.skip(f"{backend.name} has no {dtype}")
    a = backend.asarray(random_matrix(seed=3, **spec), dtype)
    a64 = to_f64(backend, a)
    ref = reference_polar(a64)
    u, h = polar(a, side, method="svd")
    assert u.shape == a.shape
    u64, h64 = to_f64(backend, u), to_f64(backend, h)
    tol = ACCURATE[dtype]
    norm_a = np.max(np.linalg.norm(a64, axis=(-2, -1)))

    # orthonormal even for rank-deficient input (the SVD completes the basis)
    assert orthogonality(u64) <= tol
    product = u64 @ h64 if side == "right" else h64 @ u64
    assert relative_residual(a64, product) <= tol
    assert np.max(np.abs(h64 - h64.conj().swapaxes(-1, -2))) <= tol * norm_a
    assert np.min(np.linalg.eigvalsh(h64)) >= -tol * norm_a
    # h is perfectly conditioned: error ~ backward error
    np.testing.assert_allclose(h64, ref.h(side), atol=10 * tol * norm_a, rtol=0)
    # the polar factor is determined on the significant singular directions only,
    # with an error that grows like κ·ε there
    mask = significant(ref, dtype)
    s_sig = np.where(mask, ref.s, np.inf)
    cond = float(np.max(ref.s[..., 0] / np.min(s_sig, axis=-1)))
    q = ref.qh.conj().swapaxes(-1, -2) * mask[..., None, :]
    err = np.max(np.linalg.norm((u64 - ref.u) @ q, axis=(-2, -1)) / np.sqrt(mask.sum(-1)))
    assert err <= min(10 * tol * cond, 1.0)


def test_matches_scipy_polar():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a = random_matrix((30, 20), cond=1e3, seed=1)
    for side in ("right", "left"):
        u, h = polar(a, side, method="svd")
        u_ref, h_ref = scipy_linalg.polar(a, side=side)
        np.testing.assert_allclose(u, u_ref, atol=1e-12)
        np.testing.assert_allclose(h, h_ref, atol=1e-12)
