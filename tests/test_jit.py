"""jax.jit and torch.compile of the public functions (no value-dependent Python branching)."""

import functools

import numpy as np
import pytest
from support import POLYNOMIAL, get_backend, projected_distance, significant, to_f64

from polarlinalg import METHODS, orthogonalize, polar
from polarlinalg._methods import get_method
from polarlinalg.testing import exact_iterate, random_matrix, reference_polar

COMPILED = list(METHODS)


def assert_same_result(backend, method, a, traced, eager):
    """Traced and eager results agree: to rounding, or in bfloat16 both within the method's band.

    Compilers fuse bfloat16 chains and keep some intermediates in float32, so a polynomial
    method's bfloat16 results differ elementwise by up to the bfloat16 deviation; both must
    stay within it of the exact-arithmetic iterate.
    """
    spec = get_method(method)
    if a.dtype == backend.dtype("bfloat16") and spec.family == "polynomial":
        a64 = to_f64(backend, a)
        ref = reference_polar(a64)
        plan = spec.plan(None, None, {})
        exact, _ = exact_iterate(ref, plan.rows, plan.safety)
        mask = significant(ref, "bfloat16")
        for u in (traced, eager):
            assert (
                projected_distance(to_f64(backend, u), exact, ref, mask) <= POLYNOMIAL["bfloat16"]
            )
        return
    atol = 1e-2 if a.dtype == backend.dtype("bfloat16") else 1e-5
    np.testing.assert_allclose(to_f64(backend, traced), to_f64(backend, eager), atol=atol)


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "complex64"])
def test_jax_jit_matches_eager(backend_name, method, dtype):
    backend = get_backend(backend_name)
    import jax

    complex_ = dtype == "complex64"
    a = backend.asarray(random_matrix((3, 24, 40), cond=50.0, complex=complex_, seed=1), dtype)
    f = jax.jit(functools.partial(orthogonalize, method=method))
    u_jit = f(a)
    u_eager = orthogonalize(a, method=method)
    assert u_jit.dtype == a.dtype and u_jit.shape == a.shape
    assert_same_result(backend, method, a, u_jit, u_eager)
    g = jax.jit(functools.partial(polar, side="left", method=method))
    _, h = g(a)
    assert h.shape == (3, 24, 24)


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
def test_jax_jit_propagates_nan(backend_name):
    # Under jit the values cannot be inspected: NaN propagates instead of raising.
    backend = get_backend(backend_name)
    import jax

    a_np = random_matrix((8, 6), seed=2)
    a_np[0, 0] = np.nan
    u = jax.jit(orthogonalize)(backend.asarray(a_np, "float32"))
    assert np.isnan(to_f64(backend, u)).all()


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
def test_jax_vmap_and_grad_trace(backend_name):
    backend = get_backend(backend_name)
    import jax
    import jax.numpy as jnp

    a = backend.asarray(random_matrix((4, 10, 6), cond=5.0, seed=3), "float32")
    batched = jax.vmap(orthogonalize)(a)
    np.testing.assert_allclose(
        to_f64(backend, batched), to_f64(backend, orthogonalize(a)), atol=1e-5
    )
    grad = jax.grad(lambda x: jnp.sum(orthogonalize(x) * x))(a[0])
    assert np.all(np.isfinite(to_f64(backend, grad)))


@pytest.mark.parametrize("backend_name", ["torch", "torch-cuda"])
@pytest.mark.parametrize("method", COMPILED)
def test_torch_compile_fullgraph(backend_name, method):
    # One real inductor compile; the others only need graph capture, which is what
    # fullgraph=True checks (no graph break from value-dependent code).
    backend = get_backend(backend_name)
    import torch

    torch._dynamo.reset()
    compiler = "inductor" if method == "polar_express" else "aot_eager"
    f = torch.compile(
        functools.partial(orthogonalize, method=method), fullgraph=True, backend=compiler
    )
    for dtype in ("float32", "bfloat16"):
        a = backend.asarray(random_matrix((2, 16, 48), cond=20.0, seed=4), dtype)
        u = f(a)
        assert u.dtype == a.dtype and u.shape == a.shape
        assert_same_result(backend, method, a, u, orthogonalize(a, method=method))


@pytest.mark.parametrize("backend_name", ["torch", "torch-cuda"])
def test_torch_compile_polar_fullgraph(backend_name):
    backend = get_backend(backend_name)
    import torch

    torch._dynamo.reset()
    f = torch.compile(
        functools.partial(polar, method="polar_express", steps=8),
        fullgraph=True,
        backend="aot_eager",
    )
    a = backend.asarray(random_matrix((20, 12), cond=5.0, seed=5), "float32")
    _, h = f(a)
    _, h_ref = polar(a, method="polar_express", steps=8)
    np.testing.assert_allclose(to_f64(backend, h), to_f64(backend, h_ref), atol=1e-5)
