"""Scale extremes: well-conditioned matrices times 1e±300 and 1e-310 (float64), 1e±30 (float32).

The polar factor does not depend on the scale, and every method first divides
by the largest magnitude, clamped into the normal range
(``polarlinalg._linalg.normal_divisor``; the SVD's LAPACK scales likewise), so
a scaled matrix must give the accuracy of an unscaled one: the accurate methods the contract of
``support.check_accurate`` at ``support.ACCURATE``, the polynomial methods
their exact-arithmetic iterate ``P φ(Σ/(s‖A‖_F)) Qᴴ`` to ``support.POLYNOMIAL``
and hence singular values in their schedule's band.  Everything is measured
in float64 NumPy after an exact rescaling by a power of two (``np.ldexp``: no
rounding, and no overflow of ``‖A‖_F²`` for ``A ≈ 1e300``).

Subnormal input (float64 entries below 2^-1022 ≈ 2.2e-308) has fewer bits.
The spacing there is fixed at ``η = 2^-1074 ≈ 4.9e-324``, so storing ``A``
rounds each entry by up to ``η/2`` absolutely: the stored matrix is
``Ã = A + E`` with ``‖E‖_F ≤ √(mn)·η/2``, relative to ``‖A‖_F ≈ 1e-310`` about
``2.5e-14·√(mn)``, some 200 times float64's unit roundoff (entries near 1e-311
keep about 41 of 53 bits).  What is achievable:

* ``Ã`` is all the methods see, and exactly: its largest magnitude is below
  ``2^-1022``, so they divide it by that power of two, an exact operation
  with a normal result, after which the computation is an ordinary float64
  one.  So ``U`` is orthonormal to
  ``ACCURATE`` and as close to ``U(Ã)`` as for any input (``10·tol·κ``).
* The polar factor of the intended ``A`` is determined by ``Ã`` only to first
  order ``‖U(Ã) − U(A)‖_F ≤ 2‖E‖_F/(σ_min(A) + σ_min(Ã)) ≈ ‖E‖_F/σ_min(A)``
  (Li and Sun, SIMAX 25 (2003), real full-rank matrices), that is
  ``κ₂·√(mn)·η/(2‖A‖₂)`` in the worst case: about ``κ·5e-14`` for small
  matrices of 1e-310.  The test allows ``3‖E‖_F/σ_min`` and checks ``‖E‖_F``
  against its bound, so both halves of the statement are pinned.
* ``h = sym(uᴴÃ)`` (right; ``sym(Ãuᴴ)`` left) is itself subnormal: each
  entry is a sum of ``m`` products (``n`` on the left), each product and sum
  rounded by up to ``η/2``, and the symmetrisation adds up to ``η``, so
  ``‖δh‖_F ≤ k(j + 1)η`` for a ``k × k`` ``h`` with ``j``-term sums (merely
  rounding the exact ``h`` to the grid costs ``kη/2``).  The backward error
  ``‖Ã − uh‖_F/‖Ã‖_F`` is therefore allowed ``ACCURATE + k(j + 1)η/‖Ã‖_F``
  (``‖u‖₂ ≈ 1``), not ``ACCURATE`` alone; observed: about 3e-13 for 20 × 12.

Backends whose arithmetic flushes subnormals to zero (XLA on CPU: JAX reads
``1e-310`` as 0 in its operations) see the zero matrix; for them the result
is pinned to the polar factor of zero, ``u = h = 0``.

Entries near the largest float (``test_entries_near_the_largest_float``): XLA
computes ``x / b`` for a broadcast ``b`` as ``x · (1/b)``, and ``1/b`` is
subnormal, flushed to zero on CPUs, for ``b > 2^1022`` (float64; ``2^126`` in
float32), which is why the normalising divisor is clamped.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import (
    ACCURATE,
    POLYNOMIAL,
    UNIT,
    check_accurate_f64,
    need_dtype,
    orthogonality,
    projected_distance,
    relative_residual,
    significant,
    to_f64,
)

from polarlinalg import METHODS, orthogonalize, polar
from polarlinalg._coefficients import schedule_band
from polarlinalg._methods import get_method
from polarlinalg.testing import exact_iterate, random_matrix, reference_polar

CASES = [
    ("float64", 1e300),
    ("float64", 1e-300),
    ("float64", 1e-310),
    ("float32", 1e30),
    ("float32", 1e-30),
]
CASE_IDS = [f"{dtype}-{scale:g}" for dtype, scale in CASES]
ACCURATE_METHODS = [m for m in METHODS if get_method(m).family != "polynomial"]
POLYNOMIAL_METHODS = [m for m in METHODS if get_method(m).family == "polynomial"]
ETA = 2.0**-1074  # spacing of the float64 subnormals
TINY = float(np.finfo(np.float64).tiny)  # smallest normal float64

# A few fixed shapes (tall, wide, batched square, one column): JAX compiles each
# operation per shape, so drawing new shapes would mostly time the compiler.
SHAPES = [(7, 4), (4, 7), (2, 5, 5), (6, 1)]
shapes = st.sampled_from(SHAPES)
examples = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the backend is stateless
)


def _exponent(scale: float) -> int:
    """``e`` with ``2^e·scale ≈ 1``: ``np.ldexp(x, e)`` rescales exactly."""
    return -round(math.log2(scale))


def _scaled_input(backend, shape, cond, seed, dtype, scale):
    """Return ``(a, stored, a_np)``: ``a_np·scale`` on the backend and its stored values."""
    need_dtype(backend, dtype)
    a_np = random_matrix(shape, cond=cond, seed=seed)
    a = backend.asarray(a_np * scale, dtype)
    return a, to_f64(backend, a), a_np


def _flushes_subnormals(backend) -> bool:
    """Whether the backend's float64 arithmetic reads subnormals as zero (XLA on CPU)."""
    x = backend.asarray(np.full((2, 2), 2.0**-1070), "float64")
    return bool(np.all(to_f64(backend, x * 3.0) == 0))


def _flushed(backend, stored) -> bool:
    """Whether the backend sees the stored input as the zero matrix."""
    return bool(np.max(np.abs(stored)) < TINY) and _flushes_subnormals(backend)


def _check_flushed(*factors):
    """Pin a flushing backend: the result is the polar factor of 0."""
    for f in factors:
        assert np.all(f == 0)


@pytest.mark.parametrize(("dtype", "scale"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("method", ACCURATE_METHODS)
@examples
@given(
    shape=shapes,
    cond=st.sampled_from([1.0, 10.0, 100.0]),
    seed=st.integers(0, 2**16),
    side=st.sampled_from(["right", "left"]),
)
def test_accurate_methods(backend, method, dtype, scale, shape, cond, seed, side):
    a, stored, a_np = _scaled_input(backend, shape, cond, seed, dtype, scale)
    u, h = polar(a, side, method=method)
    if _flushed(backend, stored):
        _check_flushed(to_f64(backend, u), to_f64(backend, h))
        return
    e = _exponent(scale)
    a64, u64, h64 = np.ldexp(stored, e), to_f64(backend, u), np.ldexp(to_f64(backend, h), e)
    assert np.all(np.isfinite(u64)) and np.all(np.isfinite(h64))
    tol = ACCURATE[dtype]
    subnormal = np.max(np.abs(stored)) < TINY
    h_rounding = 0.0
    if subnormal:  # ‖δh‖_F ≤ k(j + 1)η for k × k h of j-term sums, rescaled
        m, n = shape[-2:]
        k, j = (n, m) if side == "right" else (m, n)
        h_rounding = k * (j + 1) * float(np.ldexp(ETA, e))
    check_accurate_f64(a64, u64, h64, side, tol, 10 * tol * cond, h_rounding)
    if subnormal:
        _check_against_the_intended_matrix(a_np, scale, e, a64, u64, tol, cond)


def _check_against_the_intended_matrix(a_np, scale, e, a64, u64, tol, cond):
    """The subnormal case: ``u`` is as close to ``U(A)`` as the stored ``Ã`` determines it."""
    intended = a_np * np.ldexp(scale, e)  # ldexp exact; the product rounds in normal range
    m, n = a_np.shape[-2:]
    err = np.linalg.norm(a64 - intended, axis=(-2, -1))  # ‖E‖_F, rescaled
    norm = np.linalg.norm(intended, axis=(-2, -1))
    assert np.all(err <= math.sqrt(m * n) * np.ldexp(ETA, e) / 2 + UNIT["float64"] * norm)
    ref = reference_polar(intended)
    k = min(m, n)
    forward = np.linalg.norm(u64 - ref.u, axis=(-2, -1)) / math.sqrt(k)
    allowed = 10 * tol * cond + 3 * err / (ref.s[..., -1] * math.sqrt(k))
    assert np.all(forward <= allowed), (forward, allowed)


@pytest.mark.parametrize(("dtype", "scale"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("method", POLYNOMIAL_METHODS)
@examples
@given(shape=shapes, cond=st.sampled_from([1.0, 10.0, 100.0]), seed=st.integers(0, 2**16))
def test_polynomial_methods(backend, method, dtype, scale, shape, cond, seed):
    a, stored, _ = _scaled_input(backend, shape, cond, seed, dtype, scale)
    u = orthogonalize(a, method=method)
    assert u.shape == a.shape and u.dtype == a.dtype
    if _flushed(backend, stored):
        _check_flushed(to_f64(backend, u))
        return
    u64 = to_f64(backend, u)
    assert np.all(np.isfinite(u64))
    ref = reference_polar(np.ldexp(stored, _exponent(scale)))
    plan = get_method(method).plan(None, None, {})
    exact, _ = exact_iterate(ref, plan.rows, plan.safety)
    tol = POLYNOMIAL[dtype]
    assert projected_distance(u64, exact, ref, significant(ref, dtype)) <= tol
    # hence the singular values lie in the schedule's band over the normalised σ
    fro = np.sqrt(np.sum(ref.s**2, axis=-1, keepdims=True))
    x = ref.s / (plan.safety * fro)
    low, high = schedule_band(plan.rows, float(x.min()), float(x.max()))
    sigma = np.linalg.svd(u64, compute_uv=False)
    assert low - tol <= sigma.min() and sigma.max() <= high + tol, (sigma, low, high)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES[:3], ids=str)
def test_entries_near_the_largest_float(backend, method, dtype, shape):
    # Entries of half the largest float, all of one sign: any unscaled inner product
    # (a Householder reflector's, a Gram matrix's) overflows.  κ₂ ≈ 11; only u is
    # formed (h, of norm 3.8× the largest entry, is not representable).
    need_dtype(backend, dtype)
    m, n = shape[-2:]
    structured = np.ones(shape) / 4 + np.broadcast_to(np.eye(m, n), shape) / 8
    top = float(np.finfo(dtype).max) / 2
    a = backend.asarray(structured / np.max(structured) * top, dtype)
    e = _exponent(top)
    a64 = np.ldexp(to_f64(backend, a), e)
    u64 = to_f64(backend, orthogonalize(a, method=method))
    assert np.all(np.isfinite(u64))
    ref = reference_polar(a64)
    spec = get_method(method)
    if spec.family != "polynomial":
        tol = ACCURATE[dtype]
        assert orthogonality(u64) <= tol
        cond = float(np.max(ref.s[..., 0] / ref.s[..., -1]))
        assert relative_residual(ref.u, u64) <= 10 * tol * cond
        return
    plan = spec.plan(None, None, {})
    exact, _ = exact_iterate(ref, plan.rows, plan.safety)
    assert projected_distance(u64, exact, ref, significant(ref, dtype)) <= POLYNOMIAL[dtype]
