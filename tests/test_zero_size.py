"""Zero-size input: empty batches and matrices with no rows or no columns.

Shapes are static, so the public layer answers zero-size input before any
method runs (NumPy's ``qr`` rejects an empty batch, PyTorch an inf-norm over an
empty axis), the same way eagerly and under ``jax.jit``/``torch.compile``:

* ``u`` is empty like ``a``; ``h`` is the zero matrix of shape ``(..., n, n)``
  (right) or ``(..., m, m)`` (left), the square root of ``aᴴa`` or ``aaᴴ``;
* :class:`polarlinalg.PolarInfo` has ``iterations == finishing_steps == 0``
  for the iterative methods, ``lower`` None, and ``converged`` an all-True
  array of the batch shape for the rational methods (None for the others);
  ``"svd"`` reports all None, as for any input;
* the diagnostics return arrays of the batch shape: errors and norms are 0,
  the condition number is 1.
"""

import functools

import numpy as np
import pytest
from support import get_backend, to_f64

import polarlinalg as pl
from polarlinalg import METHODS, diagnostics, orthogonalize, polar
from polarlinalg._methods import get_method

SHAPES = [(0, 4, 3), (0, 3, 4), (2, 0, 3), (2, 3, 0), (0, 3), (3, 0), (0, 0), (2, 1, 0, 0)]
DTYPES = ["float32", "float64", "complex64", "bfloat16"]


def _h_shape(shape, side):
    m, n = shape[-2:]
    k = n if side == "right" else m
    return (*shape[:-2], k, k)


def _check_info(backend, info, method, shape):
    spec = get_method(method)
    assert isinstance(info, pl.PolarInfo)
    assert info.method == method
    if spec.family == "direct":
        assert info == pl.PolarInfo(method, None, None, None, None)
        return
    assert info.iterations == 0
    assert info.finishing_steps == 0
    assert info.lower is None
    if spec.family == "rational":
        assert info.converged.dtype == backend.xp.bool
        assert info.converged.shape == shape[:-2]
        assert np.all(backend.to_numpy(info.converged))
    else:
        assert info.converged is None


def _check_factors(backend, a, u, h, shape, side):
    assert u.shape == shape and u.dtype == a.dtype and type(u) is type(a)
    assert h.shape == _h_shape(shape, side) and h.dtype == a.dtype
    assert np.all(to_f64(backend, h) == 0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_polar_and_orthogonalize(backend, method, shape):
    for dtype in DTYPES:
        if backend.dtype(dtype) is None:
            continue
        a = backend.asarray(np.zeros(shape), dtype)
        for side in ("right", "left"):
            u, h = polar(a, side, method=method)
            _check_factors(backend, a, u, h, shape, side)
            (u, h), info = polar(a, side, method=method, return_info=True)
            _check_factors(backend, a, u, h, shape, side)
            _check_info(backend, info, method, shape)
        u = orthogonalize(a, method=method)
        assert u.shape == shape and u.dtype == a.dtype
        u, info = orthogonalize(a, method=method, return_info=True)
        assert u.shape == shape and u.dtype == a.dtype
        _check_info(backend, info, method, shape)


@pytest.mark.parametrize("method", METHODS)
def test_integer_input_is_promoted(backend, xp, method):
    a = xp.zeros((2, 0, 3), dtype=xp.int32, device=backend.device)
    default = xp.__array_namespace_info__().default_dtypes(device=backend.device)["real floating"]
    u, h = polar(a, method=method)
    assert u.dtype == default and h.dtype == default
    assert u.shape == (2, 0, 3) and h.shape == (2, 3, 3)


@pytest.mark.parametrize("method", METHODS)
def test_options_are_still_validated(backend, method):
    # zero-size input skips the method, not the checks of its arguments
    a = backend.asarray(np.zeros((0, 4, 3)), "float32")
    with pytest.raises(TypeError, match="unexpected option"):
        orthogonalize(a, method=method, no_such_option=1)
    with pytest.raises(ValueError, match="side must be"):
        polar(a, "up", method=method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(0, 4, 3), (2, 0, 3), (3, 0)], ids=str)
def test_jax_jit(method, shape):
    backend = get_backend("jax")
    import jax

    seen = []

    def run(x, side):
        (u, h), info = polar(x, side, method=method, return_info=True)
        seen.append(info)  # the Python fields are fixed at trace time
        return u, h, info.converged, orthogonalize(x, method=method)

    for dtype in ("float32", "float64"):
        a = backend.asarray(np.zeros(shape), dtype)
        for side in ("right", "left"):
            seen.clear()
            u, h, converged, u2 = jax.jit(functools.partial(run, side=side))(a)
            _check_factors(backend, a, u, h, shape, side)
            assert u2.shape == shape and u2.dtype == a.dtype
            (info,) = seen
            _check_info(backend, info._replace(converged=converged), method, shape)


@pytest.mark.parametrize("method", METHODS)
def test_torch_compile(method):
    backend = get_backend("torch")
    import torch

    torch._dynamo.reset()
    f = torch.compile(
        functools.partial(polar, side="left", method=method), fullgraph=True, backend="aot_eager"
    )
    for shape in [(0, 4, 3), (2, 3, 0)]:
        a = backend.asarray(np.zeros(shape), "float32")
        u, h = f(a)
        _check_factors(backend, a, u, h, shape, "left")


def _diagnostics(a, h):
    return {
        "orthogonality_error": diagnostics.orthogonality_error(a),
        "backward_error": diagnostics.backward_error(a, a, h),
        "hermitian_error": diagnostics.hermitian_error(h),
        "forward_error": diagnostics.forward_error(a, a),
        "nuclear_norm": diagnostics.nuclear_norm(a),
        "nuclear_norm_from_u": diagnostics.nuclear_norm(a, a),
        "polar_gap": diagnostics.polar_gap(a, a),
        "condition_number": diagnostics.condition_number(a),
    }


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_diagnostics(backend, shape):
    dtype = "float64" if backend.dtype("float64") is not None else "float32"
    a = backend.asarray(np.zeros(shape), dtype)
    h = backend.asarray(np.zeros(_h_shape(shape, "right")), dtype)
    for name, value in _diagnostics(a, h).items():
        out = to_f64(backend, value)
        assert out.shape == shape[:-2], name
        expected = 1.0 if name == "condition_number" else 0.0
        assert np.all(out == expected), (name, out)


def test_diagnostics_of_an_empty_batch_keep_the_dtype(backend):
    # an empty batch of ordinary matrices: empty results, in at least float32
    for dtype in ("float32", "bfloat16", "complex64"):
        if backend.dtype(dtype) is None:
            continue
        a = backend.asarray(np.zeros((0, 4, 3)), dtype)
        h = backend.asarray(np.zeros((0, 3, 3)), dtype)
        for name, value in _diagnostics(a, h).items():
            assert value.shape == (0,), name
            assert value.dtype == backend.dtype("float32"), name


def test_condition_number_of_no_columns_next_to_a_singular_matrix(backend):
    # 1 for no singular values, inf for a zero one: the two are not confused
    dtype = "float64" if backend.dtype("float64") is not None else "float32"
    assert float(diagnostics.condition_number(backend.asarray(np.zeros((4, 0)), dtype))) == 1.0
    assert float(diagnostics.condition_number(backend.asarray(np.zeros((4, 1)), dtype))) == np.inf
