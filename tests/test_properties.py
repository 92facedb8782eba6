"""Property-based tests over shapes and batch dimensions (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import AVAILABLE

from polarlinalg import COEFFICIENTS, METHODS, orthogonalize, polar
from polarlinalg._coefficients import RECOMMENDED_SAFETY, apply_schedule
from polarlinalg._methods import get_method
from polarlinalg.testing import exact_iterate, random_matrix, reference_polar

shapes = st.tuples(
    st.lists(st.integers(1, 3), min_size=0, max_size=2),
    st.integers(1, 12),
    st.integers(1, 12),
).map(lambda t: (*t[0], t[1], t[2]))
backends = st.sampled_from(sorted(AVAILABLE) or ["none"])
needs_a_backend = pytest.mark.skipif(not AVAILABLE, reason="no selected backend is available")


@needs_a_backend
@settings(max_examples=60, deadline=None)
@given(
    shape=shapes,
    method=st.sampled_from(METHODS),
    side=st.sampled_from(["right", "left"]),
    name=backends,
    seed=st.integers(0, 2**16),
    complex_=st.booleans(),
)
def test_polar_identity_and_shapes(shape, method, side, name, seed, complex_):
    backend = AVAILABLE[name]
    dtype = "complex128" if complex_ else "float64"
    if backend.dtype(dtype) is None:
        dtype = "complex64" if complex_ else "float32"
    a_np = random_matrix(shape, cond=10.0, complex=complex_, seed=seed)
    a = backend.asarray(a_np, dtype)
    kwargs = {}
    if get_method(method).family == "polynomial":
        kwargs = {"steps": 12, "coefficients": "polar_express", "safety": 1.01}
    u, h = polar(a, side, method=method, **kwargs)
    m, n = shape[-2:]
    assert u.shape == shape
    assert h.shape == ((*shape[:-2], n, n) if side == "right" else (*shape[:-2], m, m))
    u64 = backend.to_numpy(u).astype(np.complex128)
    h64 = backend.to_numpy(h).astype(np.complex128)
    prod = u64 @ h64 if side == "right" else h64 @ u64
    tol = 1e-9 if dtype.endswith("128") or dtype == "float64" else 1e-4
    np.testing.assert_allclose(prod, a_np, atol=tol * max(1, np.abs(a_np).max()) * 10)
    np.testing.assert_allclose(h64, np.swapaxes(h64, -1, -2).conj(), atol=tol)


@settings(max_examples=40, deadline=None)
@given(
    shape=shapes,
    steps=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    schedule=st.sampled_from(sorted(COEFFICIENTS)),
)
def test_iterate_equals_exact_arithmetic_prediction(shape, steps, seed, schedule):
    a = random_matrix(shape, cond=100.0, seed=seed)
    u = orthogonalize(a, method="newton_schulz", coefficients=schedule, steps=steps)
    safety = RECOMMENDED_SAFETY.get(schedule, 1.0)
    rows = apply_schedule(COEFFICIENTS[schedule], steps, safety)
    exact, _ = exact_iterate(reference_polar(a), rows, safety)
    np.testing.assert_allclose(u, exact, atol=1e-10)
