"""The public contract of polar() and orthogonalize(), on every backend."""

import functools
import math

import numpy as np
import pytest
from support import need_dtype, relative_residual, to_f64

import polarlinalg as pl
from polarlinalg import METHODS, orthogonalize, polar
from polarlinalg._methods import get_method
from polarlinalg.testing import random_matrix

ITERATIVE = [m for m in METHODS if m != "svd"]


def _converging(method):
    """Arguments under which ``method`` reaches the polar factor (muon's rows never do)."""
    if method == "svd":
        return {}
    if method == "newton_schulz":
        return {"steps": 10, "coefficients": "polar_express", "safety": 1.01}
    return {"steps": 10}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(12, 12), (20, 7), (7, 20), (2, 3, 9, 5), (1, 6), (6, 1)])
@pytest.mark.parametrize("side", ["right", "left"])
def test_shapes_sides_and_factors(backend, method, shape, side):
    dtype = "float64" if backend.dtype("float64") is not None else "float32"
    a = backend.asarray(random_matrix(shape, cond=5.0, seed=1), dtype)
    u, h = polar(a, side, method=method, **_converging(method))
    m, n = shape[-2:]
    assert u.shape == a.shape
    assert h.shape == ((*shape[:-2], n, n) if side == "right" else (*shape[:-2], m, m))
    u64, h64, a64 = (to_f64(backend, x) for x in (u, h, a))
    product = u64 @ h64 if side == "right" else h64 @ u64
    assert relative_residual(a64, product) <= 1e-6
    np.testing.assert_allclose(h64, np.swapaxes(h64, -1, -2).conj(), atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_output_matches_input_namespace_dtype_and_device(backend, xp, method):
    for dtype in ("float32", "float64", "complex64", "bfloat16"):
        if backend.dtype(dtype) is None:
            continue
        a = (
            backend.asarray(random_matrix((6, 4), cond=2.0, seed=2), dtype)
            if not dtype.startswith("complex")
            else backend.asarray(random_matrix((6, 4), complex=True, seed=2), dtype)
        )
        u = orthogonalize(a, method=method)
        u2, h = polar(a, method=method)
        for out in (u, u2, h):
            assert out.dtype == a.dtype
            assert type(out) is type(a)
            assert pl._compat.array_namespace(out) is pl._compat.array_namespace(a)
        import array_api_compat

        assert array_api_compat.device(u) == array_api_compat.device(a)


@pytest.mark.parametrize("method", METHODS)
def test_integer_input_is_promoted_to_default_float(backend, xp, method):
    a = (
        xp.asarray(
            np.arange(12).reshape(4, 3) % 5 + np.eye(4, 3, dtype=np.int64) * 3,
            device=backend.device,
        )
        if backend.name != "numpy"
        else np.arange(12).reshape(4, 3)
    )
    default = xp.__array_namespace_info__().default_dtypes(device=backend.device)["real floating"]
    u = orthogonalize(a, method=method)
    assert u.dtype == default
    u, h = polar(a, method=method)
    assert u.dtype == default and h.dtype == default


@pytest.mark.parametrize("method", METHODS)
def test_zero_matrix_gives_zero_not_nan(backend, xp, method):
    for dtype in ("float32", "bfloat16", "complex64"):
        if backend.dtype(dtype) is None:
            continue
        a = backend.asarray(np.zeros((3, 5, 4)), dtype)
        u, h = polar(a, method=method)
        assert np.all(to_f64(backend, u) == 0) and np.all(to_f64(backend, h) == 0)
        assert np.all(to_f64(backend, orthogonalize(a, method=method)) == 0)


@pytest.mark.parametrize("method", METHODS)
def test_zero_matrix_inside_a_batch(backend, method):
    a_np = random_matrix((3, 8, 5), cond=2.0, seed=3)
    a_np[1] = 0.0
    u = to_f64(
        backend,
        orthogonalize(backend.asarray(a_np, "float32"), method=method, **_converging(method)),
    )
    assert np.all(u[1] == 0)
    assert np.all(np.isfinite(u))
    np.testing.assert_allclose(u[0].T @ u[0], np.eye(5), atol=1e-4)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1e12, 1e30])
def test_scale_invariance_without_eps_floor(backend, method, scale):
    # No eps floor in the normalisation: a tiny matrix is orthogonalised like any other,
    # and a huge one does not overflow.
    a_np = random_matrix((10, 6), cond=3.0, seed=4)
    a = backend.asarray(a_np * scale, "float32")
    u = to_f64(backend, orthogonalize(a, method=method, **_converging(method)))
    ref = to_f64(
        backend,
        orthogonalize(backend.asarray(a_np, "float32"), method=method, **_converging(method)),
    )
    np.testing.assert_allclose(u, ref, atol=1e-5)
    np.testing.assert_allclose(u.T @ u, np.eye(6), atol=1e-4)


def test_float16_input_with_large_values(backend):
    need_dtype(backend, "float16")
    # ‖A‖_F² would overflow float16 (max 65504); the norm is taken in float32 after scaling
    a = backend.asarray(random_matrix((16, 8), cond=2.0, seed=5) * 3e3, "float16")
    u = to_f64(backend, orthogonalize(a, steps=8))
    assert np.all(np.isfinite(u))
    np.testing.assert_allclose(u.T @ u, np.eye(8), atol=3e-2)


@pytest.mark.parametrize("method", METHODS)
def test_empty_matrices(backend, xp, method):
    for shape in [(0, 3), (3, 0), (2, 0, 0)]:
        a = backend.asarray(np.zeros(shape), "float32")
        u, h = polar(a, method=method)
        assert u.shape == shape
        assert h.shape == (*shape[:-2], shape[-1], shape[-1])


def test_compute_dtype_override(backend):
    need_dtype(backend, "float64")
    a = backend.asarray(random_matrix((30, 20), cond=1e4, seed=6), "float32")
    u32 = to_f64(backend, orthogonalize(a, method="svd"))
    u64 = orthogonalize(a, method="svd", compute_dtype="float64")
    assert u64.dtype == a.dtype
    u64 = to_f64(backend, u64)
    # computing in float64 leaves only the final rounding to float32
    assert (
        np.linalg.norm(u64.T @ u64 - np.eye(20)) <= np.linalg.norm(u32.T @ u32 - np.eye(20)) + 1e-6
    )
    assert np.max(np.abs(u64.T @ u64 - np.eye(20))) < 1e-6
    u_obj = orthogonalize(a, method="polar_express", compute_dtype=backend.dtype("float64"))
    assert u_obj.dtype == a.dtype


def test_factorization_methods_compute_half_precision_in_float32(backend):
    need_dtype(backend, "bfloat16")
    a = backend.asarray(random_matrix((16, 8), cond=10.0, seed=7), "bfloat16")
    u = orthogonalize(a, method="svd")
    assert u.dtype == a.dtype
    u64 = to_f64(backend, u)
    # only the final rounding to bfloat16 (unit 2^-8) remains
    assert np.max(np.abs(u64.T @ u64 - np.eye(8))) < 2e-2
    with pytest.raises(ValueError, match="cannot compute in"):
        orthogonalize(a, method="svd", compute_dtype="bfloat16")


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (5,)])
def test_ndim_below_two(backend, shape):
    a = backend.asarray(np.ones(shape), "float32")
    for call in (lambda: polar(a), lambda: orthogonalize(a)):
        with pytest.raises(
            ValueError, match=r"shape \(\.\.\., m, n\).*got shape " + re_shape(shape)
        ):
            call()


def re_shape(shape):
    return re.escape(str(tuple(shape)))


import re  # noqa: E402


def test_unknown_method_lists_valid_ones(backend):
    a = backend.asarray(np.eye(3), "float32")
    with pytest.raises(ValueError, match=r"unknown polar method 'qr'.*'svd'.*'polar_express'"):
        orthogonalize(a, method="qr")
    with pytest.raises(ValueError, match="unknown polar method"):
        polar(a, method=None)


def test_unknown_coefficients_lists_valid_ones(backend):
    a = backend.asarray(np.eye(3), "float32")
    with pytest.raises(ValueError, match=r"unknown coefficient schedule 'jordan'.*'muon'"):
        orthogonalize(a, method="newton_schulz", coefficients="jordan")


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("method", METHODS)
def test_non_finite_input_is_rejected_eagerly(backend, method, bad):
    a_np = np.eye(4)
    a_np[1, 2] = bad
    a = backend.asarray(a_np, "float32")
    with pytest.raises(ValueError, match="NaN or infinity"):
        orthogonalize(a, method=method)
    with pytest.raises(ValueError, match="NaN or infinity"):
        polar(a, method=method)
    # Opting out skips the check: the bad matrix's factor is all NaN on every method
    # and backend (no raw Cholesky/SVD error), and the other matrices of a batch are
    # exact as without it.
    good = random_matrix((4, 4), cond=10.0, seed=3)
    batch = backend.asarray(np.stack([good, a_np]), "float32")
    u, info = orthogonalize(batch, method=method, check_finite=False, return_info=True)
    u = to_f64(backend, u)
    want = to_f64(backend, orthogonalize(backend.asarray(good, "float32"), method=method))
    np.testing.assert_allclose(u[0], want, rtol=0, atol=1e-5)
    if get_method(method).family == "polynomial":
        assert np.isnan(u[1]).any()  # products propagate NaN through the rows it reaches
    else:
        assert np.isnan(u[1]).all()
    if info.converged is not None:
        assert [bool(c) for c in np.asarray(backend.to_numpy(info.converged))] == [True, False]
    (u, h) = polar(batch, method=method, check_finite=False)
    assert np.isnan(to_f64(backend, h)[1]).any() and not np.isnan(to_f64(backend, h)[0]).any()


@pytest.mark.parametrize("steps", [0, -1, 2.5, True, "3"])
def test_bad_steps(backend, steps):
    a = backend.asarray(np.eye(3), "float32")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        orthogonalize(a, steps=steps)


def test_svd_takes_no_steps_or_coefficients(backend):
    a = backend.asarray(np.eye(3), "float32")
    with pytest.raises(ValueError, match="not iterative"):
        polar(a, method="svd", steps=3)
    with pytest.raises(ValueError, match="takes no coefficient"):
        polar(a, method="svd", coefficients="muon")


def test_unknown_option_is_a_type_error(backend):
    a = backend.asarray(np.eye(3), "float32")
    with pytest.raises(TypeError, match=r"unexpected option.*lower.*accepts: safety"):
        orthogonalize(a, lower=1e-3)
    with pytest.raises(TypeError, match="accepts: none"):
        polar(a, method="svd", safety=1.0)


@pytest.mark.parametrize("safety", [0.5, 2.0, "x", True])
def test_bad_safety(safety):
    with pytest.raises(ValueError, match="safety"):
        orthogonalize(np.eye(3), safety=safety)


def test_bad_side(backend):
    a = backend.asarray(np.eye(3), "float32")
    with pytest.raises(ValueError, match="side must be 'right' or 'left'"):
        polar(a, side="up")


def test_bad_compute_dtype(backend):
    a = backend.asarray(np.eye(3), "float32")
    with pytest.raises(ValueError, match="no dtype named 'float7'"):
        orthogonalize(a, compute_dtype="float7")
    with pytest.raises(ValueError, match="compute_dtype must be a floating dtype"):
        orthogonalize(a, compute_dtype="int32")
    if backend.dtype("complex64") is not None:
        with pytest.raises(ValueError, match="is complex but the input is real"):
            orthogonalize(a, compute_dtype="complex64")
        c = backend.asarray(np.eye(3) + 0j, "complex64")
        with pytest.raises(ValueError, match="is real but the input is complex"):
            orthogonalize(c, compute_dtype="float32")


def test_non_arrays_are_rejected():
    with pytest.raises(TypeError, match="expected arrays of one Array API framework"):
        orthogonalize([[1.0, 0.0], [0.0, 1.0]])


def test_bad_input_leaves_the_input_untouched(backend):
    a_np = random_matrix((5, 4), seed=8)
    a = backend.asarray(a_np, "float32")
    before = to_f64(backend, a)
    with pytest.raises(ValueError):
        orthogonalize(a, steps=0)
    orthogonalize(a)
    polar(a, side="left")
    np.testing.assert_array_equal(to_f64(backend, a), before)


def test_no_float64_is_created_for_float32_work():
    # array-api-strict's "no_float64" device raises as soon as float64 appears.
    strict = pytest.importorskip("array_api_strict")
    device = strict.Device("no_float64")
    a = strict.asarray(random_matrix((12, 8), seed=9), dtype=strict.float32, device=device)
    for method in METHODS:
        u, h = polar(a, method=method)
        assert u.dtype == strict.float32 and h.dtype == strict.float32
        pl.diagnostics.orthogonality_error(u)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("dtype", "scale", "shape"),
    [
        ("float16", 2e-6, (4, 4)),
        ("float16", 1e4, (100, 100)),
        ("float32", 1e-39, (4, 4)),
        ("float32", 1e37, (60, 60)),
    ],
)
def test_extreme_scales_stay_finite(backend, method, dtype, scale, shape):
    # the normalisation divides by an element first: no overflow, underflow or inf reciprocal
    need_dtype(backend, dtype)
    if backend.name == "numpy" and dtype == "float16" and shape[0] > 50 and method != "svd":
        pytest.skip("NumPy has no float16 BLAS: slow")
    a_np = random_matrix(shape, cond=3.0, seed=14) if shape[0] < 50 else np.ones(shape)
    a = backend.asarray(a_np * scale, dtype)
    if not np.all(np.isfinite(to_f64(backend, a))) or np.any(to_f64(backend, a) == 0):
        pytest.skip(f"{backend.name} flushes or overflows this {dtype} input")
    u = to_f64(backend, orthogonalize(a, method=method))
    assert np.all(np.isfinite(u))
    assert np.abs(u).max() > 1e-3  # not flushed to zero
    assert np.linalg.svd(u, compute_uv=False).max() <= 1.2


def test_compute_dtype_from_another_framework_is_a_clear_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="compute_dtype must be a floating dtype"):
        orthogonalize(torch.eye(3), compute_dtype=np.float64)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_values_overflowing_the_compute_dtype():
    a = np.full((3, 3), 1e5, np.float32) + np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="overflow the compute dtype"):
        orthogonalize(a, compute_dtype="float16")


def test_torch_vmap():
    torch = pytest.importorskip("torch")
    x = torch.randn(4, 8, 6, dtype=torch.float64)
    for method in ("polar_express", "qdwh"):
        batched = torch.func.vmap(functools.partial(orthogonalize, method=method))(x)
        torch.testing.assert_close(batched, orthogonalize(x, method=method), atol=1e-10, rtol=0)
