"""Gram Newton–Schulz: the same iterate as the plain iteration, on the Gram matrix."""

import numpy as np
import pytest
from support import POLYNOMIAL, need_dtype, projected_distance, significant, to_f64

import polarlinalg._methods.gram_newton_schulz as gram_module
from polarlinalg import COEFFICIENTS, orthogonalize
from polarlinalg._coefficients import apply_schedule, schedule_band
from polarlinalg.testing import exact_iterate, random_matrix, reference_polar


# restart=1: every step recomputes R; 2 and 3: blocks; 10: no restart at all.
@pytest.mark.parametrize("restart", [1, 2, 3, 10])
@pytest.mark.parametrize("steps", [5, 7])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("shape", [(16, 80), (80, 16), (2, 12, 48)])
def test_matches_exact_iterate(backend, dtype, steps, restart, shape):
    need_dtype(backend, dtype)
    a = backend.asarray(
        random_matrix(shape, cond=1e3, complex=dtype == "complex128", seed=1), dtype
    )
    ref = reference_polar(to_f64(backend, a))
    u = orthogonalize(a, method="gram_newton_schulz", steps=steps, restart=restart)
    assert u.shape == a.shape and u.dtype == a.dtype
    exact, _ = exact_iterate(ref, apply_schedule(COEFFICIENTS["polar_express"], steps, 1.01), 1.01)
    # Without restarts the rounding of R compounds: about 1e-3 in float32 at κ = 1e3,
    # against 1e-5 with the default restart (docs/algorithms.md).
    tol = POLYNOMIAL[dtype] * (1 if restart <= 3 else 10)
    assert projected_distance(to_f64(backend, u), exact, ref, significant(ref, dtype)) <= tol


def test_equals_plain_iteration_in_float64(backend):
    need_dtype(backend, "float64")
    a = backend.asarray(random_matrix((24, 200), cond=1e4, seed=2), "float64")
    for coefficients in ("polar_express", "muon", "cubic"):
        u_gram = orthogonalize(a, method="gram_newton_schulz", coefficients=coefficients, steps=6)
        u_plain = orthogonalize(
            a, method="newton_schulz", coefficients=coefficients, steps=6, safety=1.01
        )
        np.testing.assert_allclose(to_f64(backend, u_gram), to_f64(backend, u_plain), atol=1e-12)


@pytest.fixture(params=["device", "float16"])
def half_work(request, monkeypatch):
    """The working precision of half-precision input: the device's choice (float32 on
    CPUs), or float16 forced, the GPU path, so that its stability is tested on CPUs too."""
    if request.param == "float16":
        monkeypatch.setattr(gram_module, "fast_half_dtype", lambda xp, dev: xp.float16)
    return request.param


@pytest.mark.parametrize("cond", [1e2, 1e3, 1e8])
def test_bfloat16_stays_in_band(backend, cond, half_work):
    # Without restarts and a wider working precision, bfloat16 Gram iterations on
    # these inputs produced singular values of 6 to 3000.
    need_dtype(backend, "bfloat16")
    a = backend.asarray(random_matrix((64, 512), cond=cond, seed=3), "bfloat16")
    ref = reference_polar(to_f64(backend, a))
    rows = apply_schedule(COEFFICIENTS["polar_express"], 5, 1.01)
    u = orthogonalize(a, method="gram_newton_schulz")
    assert u.dtype == a.dtype
    u64 = to_f64(backend, u)
    exact, _ = exact_iterate(ref, rows, 1.01)
    assert (
        projected_distance(u64, exact, ref, significant(ref, "bfloat16")) <= POLYNOMIAL["bfloat16"]
    )
    ceiling = schedule_band(rows, 1e-6, 1 / 1.01)[1]
    assert np.linalg.svd(u64, compute_uv=False).max() <= ceiling + 0.05


@pytest.mark.parametrize("restart", [0, -1, 1.5, True, "2"])
def test_bad_restart(restart):
    with pytest.raises(ValueError, match="restart"):
        orthogonalize(np.eye(3), method="gram_newton_schulz", restart=restart)


def test_blocks_respect_restart_and_float16_growth():
    from polarlinalg._methods.gram_newton_schulz import blocks

    rows = COEFFICIENTS["muon"] * 12  # a = 3.4445 per step
    assert [len(b) for b in blocks(rows, 5)] == [5, 5, 2]
    assert [len(b) for b in blocks(rows, 12)] == [12]
    # 3.4445^4 ≈ 141 < 150 < 3.4445^5 ≈ 485
    assert [len(b) for b in blocks(rows, 12, growth_limit=150.0)] == [4, 4, 4]
    pe = apply_schedule(COEFFICIENTS["polar_express"], 8, 1.01)
    # 8.2·4.07·3.91 ≈ 130 < 150; the remaining rows have a ≤ 3.3
    assert [len(b) for b in blocks(pe, 3, 150.0)] == [3, 3, 2]
    assert [len(b) for b in blocks(pe, 8, 150.0)] == [3, 5]


def test_long_blocks_do_not_overflow_in_half_precision(backend, half_work):
    # Without the growth limit, 12 muon rows in one float16 block overflow Q (3.4^12 ≈ 3e6).
    need_dtype(backend, "bfloat16")
    a = backend.asarray(random_matrix((32, 256), cond=1e3, seed=4), "bfloat16")
    u = to_f64(
        backend,
        orthogonalize(a, method="gram_newton_schulz", coefficients="muon", steps=12, restart=12),
    )
    assert np.all(np.isfinite(u))
    assert np.linalg.svd(u, compute_uv=False).max() <= 1.134 + 0.05


def _on_cpu(backend) -> bool:
    return not backend.name.endswith(("cuda", "gpu")) and backend.name != "cupy"


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_computes_in_float32_on_cpu(backend, dtype):
    # float16 products are emulated on CPUs (55–140× slower than bfloat16): there the
    # iteration runs in float32, and the result is the float32 computation, rounded.
    half = need_dtype(backend, dtype)
    if not _on_cpu(backend):
        pytest.skip("a GPU backend computes half precision in float16")
    xp = backend.xp
    a = backend.asarray(random_matrix((64, 512), cond=1e3, seed=3), dtype)
    assert gram_module.working_dtype(xp, half, backend.device) == xp.float32
    u = orthogonalize(a, method="gram_newton_schulz")
    assert u.dtype == half
    u32 = orthogonalize(xp.astype(a, xp.float32), method="gram_newton_schulz")
    want = to_f64(backend, xp.astype(u32, half))
    # The float16 computation differs from this by about 0.1 here (κ = 1e3).
    assert np.linalg.norm(to_f64(backend, u) - want) <= 1e-2 * np.linalg.norm(want)


class _Device:
    """A stand-in for a device object: torch's ``.type`` or JAX's ``.platform``."""

    def __init__(self, **kind: str) -> None:
        self.__dict__.update(kind)


@pytest.mark.parametrize(
    ("dev", "float16"),
    [
        ("cpu", False),
        (_Device(type="cpu"), False),
        (_Device(platform="cpu"), False),
        (_Device(type="cuda"), True),
        (_Device(type="mps"), True),
        (_Device(platform="gpu"), True),
        (_Device(platform="tpu"), False),
        ("cuda:0", True),
    ],
)
def test_working_dtype_by_device(backend, dev, float16):
    if backend.name.startswith("cupy"):
        pytest.skip("CuPy arrays live on a GPU: float16 whatever the device object says")
    xp = backend.xp
    for name in ("bfloat16", "float16"):
        half = backend.dtype(name)
        if half is None:
            continue
        want = xp.float16 if float16 else xp.float32
        assert gram_module.working_dtype(xp, half, dev) == want
    assert gram_module.working_dtype(xp, xp.float32, dev) == xp.float32
