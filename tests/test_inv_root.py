"""inv_root: (a + εI)^(−1/p) by eigh and by the coupled Newton iteration, on every backend.

References are NumPy float64 eigh of the input *as the backend holds it* (after the
cast to the test's dtype), written here, never the backend under test.

Tolerances (``u`` the unit roundoff of the compute dtype, ``κ`` the condition number of
``A + εI``): measured on an AMD EPYC (NumPy/OpenBLAS, PyTorch/MKL, JAX) the relative
Frobenius error of both methods stayed below ``3.3·u·(√n + κ)`` in float32/float64 (float32
eigh of PyTorch and JAX at κ = 1e4 is the worst), and below ``2.0·u·√κ`` in
bfloat16/float16 for κ ≤ 1e3; the tests allow 16× and 8× those scales, so that another
LAPACK/BLAS (Intel MKL's other code paths, cuSOLVER) passes without asserting at the last
ulp.  See docs/matrix_functions.md.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from support import UNIT, get_backend, need_dtype, to_f64

import polarlinalg as pl
from polarlinalg import inv_root
from polarlinalg._inv_root import (
    INV_ROOT_METHODS,
    default_newton_steps,
    newton_run,
    newton_tolerance,
)

# --- helpers -----------------------------------------------------------------------------


def psd(shape, cond=1.0, *, complex_=False, rank=None, seed=0):
    """``Q diag(λ) Qᴴ`` with Haar ``Q`` and ``λ`` geometric from 1 to ``1/cond`` (float64)."""
    *batch, n, _ = shape
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((*batch, n, n))
    if complex_:
        z = z + 1j * rng.standard_normal((*batch, n, n))
    q, _ = np.linalg.qr(z)
    lam = np.geomspace(1.0, 1.0 / cond, n)
    if rank is not None:
        lam[rank:] = 0.0
    return (q * lam[..., None, :]) @ np.swapaxes(q.conj(), -1, -2)


def reference(a, p, eps=0.0):
    """NumPy float64 ``V diag((max(λ, 0) + ε)^(−1/p)) Vᴴ`` of the Hermitian part."""
    h = (a + np.swapaxes(a.conj(), -1, -2)) / 2
    w, v = np.linalg.eigh(h)
    w = np.maximum(w, 0.0) + eps
    return (v * (w ** (-1.0 / p))[..., None, :]) @ np.swapaxes(v.conj(), -1, -2)


def rel_error(x, ref):
    """Worst ``‖x − ref‖_F/‖ref‖_F`` over a stack."""
    num = np.linalg.norm(x - ref, axis=(-2, -1))
    return float(np.max(num / np.linalg.norm(ref, axis=(-2, -1))))


def band(dtype, n, kappa):
    """The tolerance of this file (see the module docstring)."""
    u = UNIT[dtype]
    if dtype in ("bfloat16", "float16"):
        return 8.0 * 2.0 * u * math.sqrt(kappa)
    return 16.0 * 3.3 * u * (math.sqrt(n) + kappa)


def effective_cond(cond, eps):
    return (1.0 + eps) / (1.0 / cond + eps)


def check(backend, a_np, dtype, p, method, eps=0.0, cond=1.0, **kwargs):
    """Run ``inv_root`` on ``a_np`` cast to ``dtype``; assert dtype, shape and accuracy."""
    a = backend.asarray(a_np, dtype)
    x = inv_root(a, p, method=method, eps=eps, **kwargs)
    assert x.dtype == a.dtype and tuple(x.shape) == tuple(a.shape)
    assert type(x) is type(a)
    assert pl._compat.device(x) == pl._compat.device(a)
    a64 = to_f64(backend, a)
    err = rel_error(to_f64(backend, x), reference(a64, p, eps))
    real = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
    tol = band(real, a_np.shape[-1], effective_cond(cond, eps))
    assert err <= tol, (method, dtype, p, cond, eps, err, tol)
    return x


# --- accuracy against the float64 reference ------------------------------------------------

CASES = [(method, p) for method in INV_ROOT_METHODS for p in (1, 2, 4, 0.5)]
CASES = [c for c in CASES if not (c[0] == "newton" and c[1] == 0.5)]


@pytest.mark.parametrize("method", INV_ROOT_METHODS)
@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128", "complex64"])
def test_matches_float64_eigh_reference(backend, method, dtype):
    need_dtype(backend, dtype)
    complex_ = dtype.startswith("complex")
    roots = (1, 2, 4, 0.5) if method == "eigh" else (1, 2, 4)
    conds = (1.0, 1e2, 1e4) if dtype in ("float32", "complex64") else (1.0, 1e2, 1e4, 1e6)
    seed = 0
    for shape in ((12, 12), (2, 3, 12, 12)):
        for i, cond in enumerate(conds):
            eps = 1e-3 if (i + len(shape)) % 2 else 0.0  # each κ with and without ε
            seed += 1
            a_np = psd(shape, cond, complex_=complex_, seed=seed)
            for p in roots:
                check(backend, a_np, dtype, p, method, eps=eps, cond=cond)


@pytest.mark.parametrize("method", INV_ROOT_METHODS)
def test_rank_deficient_with_eps(backend, method):
    dtype = "float64" if backend.dtype("float64") is not None else "float32"
    a_np = psd((2, 16, 16), 1e2, rank=6, seed=3)
    for eps in (1e-2, 1e-4):
        check(backend, a_np, dtype, 4, method, eps=eps, cond=1e2)


@pytest.mark.parametrize("method", INV_ROOT_METHODS)
def test_only_the_hermitian_part_counts(backend, method):
    dtype = "float64" if backend.dtype("float64") is not None else "float32"
    a_np = psd((10, 10), 10.0, seed=4)
    skew = np.random.default_rng(5).standard_normal((10, 10))
    skew = skew - skew.T
    x = inv_root(backend.asarray(a_np + 0.1 * skew, dtype), 2, method=method)
    np.testing.assert_allclose(to_f64(backend, x), reference(a_np, 2), rtol=0, atol=1e-5)
    # and the result is Hermitian
    x64 = to_f64(backend, x)
    np.testing.assert_allclose(x64, x64.T, rtol=0, atol=1e-12 if dtype == "float64" else 1e-5)


def test_known_values():
    a = np.diag([4.0, 16.0, 81.0])
    for method in INV_ROOT_METHODS:
        np.testing.assert_allclose(inv_root(a, 2, method=method), np.diag([1 / 2, 1 / 4, 1 / 9]))
        np.testing.assert_allclose(
            inv_root(a, 4, method=method), np.diag([4**-0.25, 16**-0.25, 81**-0.25])
        )
    np.testing.assert_allclose(inv_root(a, 0.5), np.diag([1 / 16, 1 / 256, 1 / 81**2]))
    np.testing.assert_allclose(
        inv_root(np.diag([1.0, 0.0]), 2, eps=1e-2), np.diag([1 / np.sqrt(1.01), 10.0])
    )
    # eps is added before the root, to every eigenvalue
    np.testing.assert_allclose(inv_root(np.diag([3.0, 15.0]), 2, eps=1.0), np.diag([0.5, 0.25]))
    x = inv_root(np.diag([3.0, 15.0]), 2, method="newton", eps=1.0)
    np.testing.assert_allclose(x, np.diag([0.5, 0.25]), rtol=1e-14)


@pytest.mark.parametrize("method", INV_ROOT_METHODS)
@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_scale_extremes(backend, method, scale):
    # the bound b is taken relative to the largest entry: nothing overflows or underflows
    a_np = psd((8, 8), 10.0, seed=6)
    a = backend.asarray(a_np * scale, "float32")
    x = to_f64(backend, inv_root(a, 4, method=method))
    ref = reference(to_f64(backend, a), 4)
    assert np.all(np.isfinite(x))
    assert rel_error(x, ref) <= band("float32", 8, 10.0)


def test_integer_like_p_and_numpy_scalars():
    a = psd((6, 6), 10.0, seed=7)
    want = reference(a, 4)
    for p in (4, 4.0, np.int64(4), np.float32(4.0)):
        np.testing.assert_allclose(inv_root(a, p, method="newton"), want, atol=1e-13)
    np.testing.assert_allclose(inv_root(a, 2, eps=np.float64(0.5)), reference(a, 2, 0.5))


# --- the coupled Newton iteration: early exit, masking, guards ------------------------------


def _numpy_xp():
    import array_api_compat.numpy as xp

    return xp


def test_newton_eager_stops_early_per_matrix():
    xp = _numpy_xp()
    a = np.stack([psd((16, 16), 1.0, seed=8), psd((16, 16), 1e6, seed=9)])
    both = newton_run(xp, a, 4, 0.0, 100, np.float64)
    assert bool(np.all(both.converged)) and bool(np.all(both.stopped))
    assert both.iterations < 30  # far below the cap of 100
    easy = newton_run(xp, a[:1], 4, 0.0, 100, np.float64)
    assert easy.iterations < both.iterations  # the loop ends once every matrix stopped
    # the frozen easy matrix is its own eager result, bit for bit
    np.testing.assert_array_equal(both.x[0], easy.x[0])
    np.testing.assert_allclose(
        pl._linalg.symmetrize(xp, both.x), reference(a, 4), rtol=0, atol=1e-9
    )


def test_newton_traced_path_runs_the_fixed_count_and_masks():
    xp = _numpy_xp()
    a = np.stack([psd((16, 16), 1.0, seed=8), psd((16, 16), 1e6, seed=9)])
    eager = newton_run(xp, a, 4, 0.0, 40, np.float64)
    traced = newton_run(xp, a, 4, 0.0, 40, np.float64, traced=True)
    assert traced.iterations == 40 and eager.iterations < 40
    # converged matrices are frozen, so running on changes nothing
    np.testing.assert_array_equal(traced.x, eager.x)
    assert bool(np.all(traced.converged))
    short = newton_run(xp, a, 4, 0.0, 8, np.float64, traced=True)
    assert short.iterations == 8
    assert list(short.converged) == [True, False]  # κ = 1e6 needs about 20 steps


def test_newton_steps_and_defaults():
    xp = _numpy_xp()
    a = psd((12, 12), 1e4, seed=10)
    one = newton_run(xp, a, 4, 0.0, 1, np.float64)
    assert one.iterations == 1 and not bool(one.converged)
    # a few steps short of convergence is a worse, finite result
    x3 = inv_root(a, 4, method="newton", steps=3)
    assert np.all(np.isfinite(x3)) and rel_error(x3, reference(a, 4)) > 1e-3
    assert default_newton_steps(xp, np.float64, 4) == 46
    assert default_newton_steps(xp, np.float32, 4) == 23
    assert default_newton_steps(xp, np.float32, 1) == 30
    assert default_newton_steps(xp, np.float16, 4) == 12
    assert newton_tolerance(xp, np.float32, 64, 4) == pytest.approx(4 * 2.0**-23 * 8)


def test_newton_keeps_the_last_iterate_when_rounding_made_a_indefinite():
    # a small negative eigenvalue (the rounding of a PSD matrix) would grow to overflow
    xp = _numpy_xp()
    q, _ = np.linalg.qr(np.random.default_rng(11).standard_normal((12, 12)))
    lam = np.geomspace(1.0, 1e-3, 12)
    lam[-1] = -1e-6
    a = (q * lam) @ q.T
    run = newton_run(xp, a, 4, 0.0, 200, np.float64)
    assert np.all(np.isfinite(run.x))
    assert bool(run.stopped) and not bool(run.converged)
    assert run.iterations < 200
    # ... while eps makes it positive definite again, and then it converges
    ok = newton_run(xp, a, 4, 1e-3, 200, np.float64)
    assert bool(ok.converged)


def test_singular_matrices_without_eps():
    with np.errstate(divide="ignore", invalid="ignore"):
        x = inv_root(np.diag([4.0, 0.0]), 2)
    assert x[1, 1] == np.inf  # 0^(-1/p); NaN where inf meets a zero of an eigenvector
    assert not np.any(np.isfinite(x))
    z = inv_root(np.zeros((2, 3, 3)), 4, method="newton")
    assert np.all(z == np.inf)
    y = inv_root(np.diag([4.0, 0.0]), 2, method="newton")
    assert np.all(np.isfinite(y)) and y[0, 0] == pytest.approx(0.5)
    assert y[1, 1] > 1e6  # the null space grows by (1 + 1/p) per step: finite, meaningless


# --- dtypes ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision(backend, dtype):
    need_dtype(backend, dtype)
    for cond in (10.0, 1e2):
        a_np = psd((2, 32, 32), cond, seed=12)
        check(backend, a_np, dtype, 4, "newton", cond=cond)
        check(backend, a_np, dtype, 2, "newton", eps=1e-2, cond=cond)
        # eigh computes half precision in float32 and rounds back
        check(backend, a_np, dtype, 4, "eigh", cond=cond)


def test_newton_in_bfloat16_from_float32_input(backend):
    need_dtype(backend, "bfloat16")
    a_np = psd((24, 24), 1e2, seed=13)
    a = backend.asarray(a_np, "float32")
    x = inv_root(a, 4, method="newton", compute_dtype="bfloat16")
    assert x.dtype == a.dtype
    err = rel_error(to_f64(backend, x), reference(to_f64(backend, a), 4))
    assert err <= band("bfloat16", 24, 1e2)
    # a dtype object works too; and eigh refuses half precision
    x2 = inv_root(a, 4, method="newton", compute_dtype=backend.dtype("bfloat16"))
    np.testing.assert_array_equal(to_f64(backend, x2), to_f64(backend, x))
    with pytest.raises(ValueError, match="eigh"):
        inv_root(a, 4, method="eigh", compute_dtype="bfloat16")


def test_compute_dtype_float64_for_float32_input(backend):
    need_dtype(backend, "float64")
    a = backend.asarray(psd((12, 12), 1e4, seed=14), "float32")
    for method in INV_ROOT_METHODS:
        x = inv_root(a, 4, method=method, compute_dtype="float64")
        assert x.dtype == a.dtype
        err = rel_error(to_f64(backend, x), reference(to_f64(backend, a), 4))
        assert err <= 4 * UNIT["float32"]  # float64 work, rounded once to float32


# --- zero-size, non-finite input, errors --------------------------------------------------


@pytest.mark.parametrize("method", INV_ROOT_METHODS)
@pytest.mark.parametrize("shape", [(0, 0), (0, 4, 4), (3, 0, 0), (2, 0, 5, 5)])
def test_zero_size(backend, method, shape):
    dtype = "float64" if backend.dtype("float64") is not None else "float32"
    a = backend.asarray(np.zeros(shape), dtype)
    x = inv_root(a, 4, method=method)
    assert tuple(x.shape) == shape and x.dtype == a.dtype


@pytest.mark.parametrize("method", INV_ROOT_METHODS)
def test_nonfinite_input(backend, method):
    a_np = np.stack([psd((6, 6), 10.0, seed=15), psd((6, 6), 10.0, seed=16)])
    a_np[1, 2, 3] = np.nan
    a = backend.asarray(a_np, "float32")
    with pytest.raises(ValueError, match="NaN or infinity"):
        inv_root(a, 4, method=method)
    x = to_f64(backend, inv_root(a, 4, method=method, check_finite=False))
    assert np.all(np.isnan(x[1]))  # that matrix is all NaN ...
    assert rel_error(x[0], reference(a_np[0], 4)) <= band("float32", 6, 10.0)  # ... not the other


def test_bad_arguments():
    a = np.eye(3)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        inv_root(a, 2, eps=-1e-3)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="eps"):
            inv_root(a, 2, eps=bad)
    for bad in (True, "1e-3", np.array([1e-3]), None):
        with pytest.raises(TypeError, match="eps"):
            inv_root(a, 2, eps=bad)
    for bad in (0, -1, -0.5, math.nan, math.inf):
        with pytest.raises(ValueError, match="p must be"):
            inv_root(a, bad)
    for bad in (True, "4", None):
        with pytest.raises(TypeError, match="p must be"):
            inv_root(a, bad)
    with pytest.raises(ValueError, match="positive integer p"):
        inv_root(a, 2.5, method="newton")
    with pytest.raises(ValueError, match="choose one of 'eigh', 'newton'"):
        inv_root(a, 2, method="svd")
    with pytest.raises(ValueError, match="square"):
        inv_root(np.ones((3, 4)), 2)
    with pytest.raises(ValueError, match="square"):
        inv_root(np.ones(3), 2)
    with pytest.raises(TypeError, match="floating"):
        inv_root(np.eye(3, dtype=np.int64), 2)
    with pytest.raises(TypeError, match="floating"):
        inv_root(np.eye(3, dtype=bool), 2, method="newton")
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="steps"):
            inv_root(a, 2, method="newton", steps=bad)
    with pytest.raises(ValueError, match="not iterative"):
        inv_root(a, 2, method="eigh", steps=5)
    with pytest.raises(ValueError, match="no dtype named 'nonsense'"):
        inv_root(a, 2, compute_dtype="nonsense")
    with pytest.raises(ValueError, match="complex"):
        inv_root(a, 2, compute_dtype="complex128")
    with pytest.raises(TypeError, match="Array API"):
        inv_root([[1.0, 0.0], [0.0, 1.0]], 2)


def test_exported():
    assert "inv_root" in pl.__all__ and pl.inv_root is inv_root
    assert "inv_root" in pl.__doc__


# --- compiled ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
@pytest.mark.parametrize("method", INV_ROOT_METHODS)
def test_jax_jit(backend_name, method):
    backend = get_backend(backend_name)
    import jax

    # one well- and one ill-conditioned matrix: under jit the first is frozen by masking
    a_np = np.stack([psd((16, 16), 1.0, seed=17), psd((16, 16), 1e4, seed=18)])
    a = backend.asarray(a_np, "float32")
    f = jax.jit(lambda a: inv_root(a, 4, method=method))
    x = f(a)
    assert x.dtype == a.dtype and x.shape == a.shape
    err = rel_error(to_f64(backend, x), reference(to_f64(backend, a), 4))
    assert err <= band("float32", 16, 1e4)
    eager = inv_root(a, 4, method=method)
    np.testing.assert_allclose(to_f64(backend, x), to_f64(backend, eager), rtol=2e-3, atol=0)
    # NaN propagates under jit instead of raising
    bad = a_np.copy()
    bad[0, 0, 0] = np.nan
    y = to_f64(backend, f(backend.asarray(bad, "float32")))
    assert np.all(np.isnan(y[0])) and np.all(np.isfinite(y[1]))
    # zero-size under jit (static shapes)
    assert f(backend.asarray(np.zeros((0, 3, 3)), "float32")).shape == (0, 3, 3)


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
def test_jax_jit_float64_fixed_count(backend_name):
    backend = get_backend(backend_name)
    need_dtype(backend, "float64")
    import jax

    a = backend.asarray(psd((8, 8), 10.0, seed=3), "float64")
    want = reference(to_f64(backend, a), 4)
    full = jax.jit(lambda x: inv_root(x, 4, method="newton"))(a)
    assert rel_error(to_f64(backend, full), want) < 1e-12  # converged matrices stay frozen
    short = jax.jit(lambda x: inv_root(x, 4, method="newton", steps=3))(a)
    assert rel_error(to_f64(backend, short), want) > 1e-6  # 3 steps are not enough for κ = 10


@pytest.mark.parametrize("backend_name", ["jax", "jax-gpu"])
def test_jax_jit_newton_bfloat16_and_vmap(backend_name):
    backend = get_backend(backend_name)
    import jax

    a_np = psd((3, 16, 16), 10.0, seed=19)
    a = backend.asarray(a_np, "bfloat16")
    x = jax.jit(functools.partial(inv_root, p=4, method="newton"))(a)
    assert x.dtype == a.dtype
    assert rel_error(to_f64(backend, x), reference(to_f64(backend, a), 4)) <= band(
        "bfloat16", 16, 10.0
    )
    b = backend.asarray(a_np, "float32")
    v = jax.vmap(functools.partial(inv_root, p=2, method="newton"))(b)
    np.testing.assert_allclose(to_f64(backend, v), reference(to_f64(backend, b), 2), rtol=1e-4)


@pytest.mark.parametrize("backend_name", ["torch", "torch-cuda"])
@pytest.mark.parametrize("method", INV_ROOT_METHODS)
def test_torch_compile_fullgraph(backend_name, method):
    backend = get_backend(backend_name)
    import torch

    torch._dynamo.reset()
    kwargs = {"steps": 4} if method == "newton" else {}
    f = torch.compile(
        functools.partial(inv_root, p=4, method=method, **kwargs),
        fullgraph=True,
        backend="aot_eager",
    )
    a = backend.asarray(psd((2, 12, 12), 10.0, seed=20), "float32")
    np.testing.assert_allclose(
        to_f64(backend, f(a)),
        to_f64(backend, inv_root(a, 4, method=method, **kwargs)),
        rtol=1e-5,
        atol=0,
    )


def test_docs_example_runs(capsys):
    """The ```python block of docs/matrix_functions.md runs as written (in this process)."""
    import re
    from pathlib import Path

    pytest.importorskip("torch")
    pytest.importorskip("jax")
    page = Path(__file__).resolve().parent.parent / "docs" / "matrix_functions.md"
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(page), "exec"), {})
    assert float(capsys.readouterr().out) < 1e-12
