"""The nuclear-norm scale's inner product ``⟨A, B⟩ = Re tr(Aᴴ B)`` (``_rules/polargrad._inner``).

It is computed as the trace of a small product of the folded matrices (so that
XLA does not fuse it with the Newton–Schulz products); these tests hold it to
the elementwise formula it replaced, and to a float64 reference.
"""

import numpy as np
import pytest
from support import need_dtype, to_f64

from polarlinalg._rules.polargrad import _inner


def _elementwise(xp, a, b):
    """The former formula: ``Re Σ conj(a) ⊙ b`` over the last two axes."""
    prod = xp.conj(a) * b if xp.isdtype(a.dtype, "complex floating") else a * b
    total = xp.sum(prod, axis=(-2, -1), keepdims=True)
    return xp.real(total) if xp.isdtype(total.dtype, "complex floating") else total


# 4×6: r = 12; 17×19 = 323 has no divisor ≤ 16 (elementwise path); 7×9: r = 9;
# a stack; a vector-like 1×5; 64×96: r = 16.
SHAPES = [(4, 6), (17, 19), (7, 9), (3, 8, 12), (1, 5), (64, 96)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128"])
def test_matches_elementwise_formula(backend, shape, dtype):
    need_dtype(backend, dtype)
    xp = backend.xp
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, *shape))
    if dtype.startswith("complex"):
        a = a + 1j * rng.standard_normal(shape)
        b = b + 1j * rng.standard_normal(shape)
    xa, xb = backend.asarray(a, dtype), backend.asarray(b, dtype)
    got = _inner(xp, xa, xb)
    assert tuple(got.shape) == (*shape[:-2], 1, 1)
    assert not xp.isdtype(got.dtype, "complex floating")
    old = to_f64(backend, _elementwise(xp, xa, xb))
    exact = np.real(np.sum(np.conj(a) * b, axis=(-2, -1), keepdims=True))
    # Both sum the same n·m products in another order: each is within n·m·u·Σ|aᵢⱼ bᵢⱼ|.
    magnitude = np.sum(np.abs(a * b), axis=(-2, -1), keepdims=True)
    u = 1e-16 if dtype in ("float64", "complex128") else 6e-8
    bound = 4 * u * shape[-1] * shape[-2] * magnitude
    new = to_f64(backend, got)
    assert np.all(np.abs(new - exact) <= bound)
    assert np.all(np.abs(new - old) <= 2 * bound)


def test_zero_size_and_mixed_dtypes(backend):
    xp = backend.xp
    need_dtype(backend, "float64")
    empty = backend.asarray(np.zeros((2, 0, 3)), "float32")
    assert to_f64(backend, _inner(xp, empty, empty)).tolist() == [[[0.0]], [[0.0]]]
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 8, 12))
    got = _inner(xp, backend.asarray(a, "float32"), backend.asarray(b, "float64"))
    assert got.dtype == backend.dtype("float64")
    np.testing.assert_allclose(to_f64(backend, got)[0, 0], np.sum(a * b), rtol=1e-6)
