"""The eager fast paths give what the general paths give.

- PyTorch CPU tensors are normalised from one host-side norm
  (``_scaling.host_scale``); every other input, and every norm outside the
  range where one unscaled sum of squares is accurate, takes the two-factor
  path.  Both must agree, and the extremes must take the safe one.
- ``orthogonalize`` normalises before a narrowing cast where that path applies
  (``newton_schulz._prescale``); ``polar`` never does.
- The finiteness check reads one sum and falls back to the elementwise test
  when a sum of finite entries overflows.
- The torch wrappers update the momentum in place (``check_finite=False``) and
  fuse the nuclear-norm scale into the parameter update: the same trajectory
  as the out-of-place path, and the same state tensors.
"""

from __future__ import annotations

import numpy as np
import pytest

import polarlinalg as pl
from polarlinalg._methods import _scaling, newton_schulz

torch = pytest.importorskip("torch")

import polarlinalg.torch as pl_torch  # noqa: E402


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    taken: list[bool] = []
    real = _scaling.host_scale

    def spy(*args: object) -> object:
        out = real(*args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(_scaling, "host_scale", spy)
    monkeypatch.setattr(newton_schulz, "host_scale", spy)
    return taken


def _without_host_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_scaling, "host_frobenius_norms", lambda x: None)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 6)])
def test_host_normalisation_matches_the_two_factor_path(
    monkeypatch: pytest.MonkeyPatch, dtype: str, shape: tuple[int, ...]
) -> None:
    xp = pl._compat.array_namespace(torch.zeros(1))
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(*shape, generator=gen, dtype=torch.float64) * 3.0).to(getattr(torch, dtype))
    taken = _spy(monkeypatch)
    fast = _scaling.normalise_frobenius(xp, x, 1.01, 0.0)
    assert taken == [True]
    _without_host_path(monkeypatch)
    slow = _scaling.normalise_frobenius(xp, x, 1.01, 0.0)
    assert fast.dtype == slow.dtype == x.dtype
    tol = {"float64": 1e-14, "float32": 1e-6, "bfloat16": 2e-2, "float16": 2e-3}[dtype]
    np.testing.assert_allclose(fast.double().numpy(), slow.double().numpy(), rtol=tol, atol=tol)
    norms = torch.linalg.matrix_norm(fast.double())
    assert torch.all(norms <= 1 / 1.01 * (1 + 4 * tol))


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(1e-30, "float32"), (1e30, "float32"), (1e-200, "float64"), (3e37, "bfloat16")],
)
def test_extreme_scales_take_the_safe_path(
    monkeypatch: pytest.MonkeyPatch, value: float, dtype: str
) -> None:
    xp = pl._compat.array_namespace(torch.zeros(1))
    base = torch.randn(6, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = (base * value).to(getattr(torch, dtype))
    taken = _spy(monkeypatch)
    out = _scaling.normalise_frobenius(xp, x, 1.0, 0.0)
    assert taken == [False]
    expected = (base / torch.linalg.matrix_norm(base)).numpy()
    tol = 2e-2 if dtype == "bfloat16" else 1e-5
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=tol, atol=tol)


def test_nan_and_zero_take_the_safe_path(monkeypatch: pytest.MonkeyPatch) -> None:
    xp = pl._compat.array_namespace(torch.zeros(1))
    taken = _spy(monkeypatch)
    zero = _scaling.normalise_frobenius(xp, torch.zeros(3, 4), 1.0, 0.0)
    nan = _scaling.normalise_frobenius(xp, torch.full((3, 4), float("nan")), 1.0, 0.0)
    assert taken == [False, False]
    assert torch.equal(zero, torch.zeros(3, 4))
    assert torch.isnan(nan).all()


def test_eps_floor_on_the_host_path(monkeypatch: pytest.MonkeyPatch) -> None:
    xp = pl._compat.array_namespace(torch.zeros(1))
    x = torch.full((2, 2), 0.25)  # ‖x‖_F = 0.5 < eps: divided by eps
    taken = _spy(monkeypatch)
    out = _scaling.normalise_frobenius(xp, x, 1.0, 2.0)
    assert taken == [True]
    assert torch.allclose(out, x / 2.0)


@pytest.mark.parametrize("compute", ["bfloat16", "float16"])
@pytest.mark.parametrize("method", ["newton_schulz", "polar_express"])
def test_normalised_before_a_narrowing_cast(
    monkeypatch: pytest.MonkeyPatch, compute: str, method: str
) -> None:
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(2, 16, 40, generator=gen) * 1e3
    dtype = getattr(torch, compute)
    taken = _spy(monkeypatch)
    fast = pl.orthogonalize(a, method=method, compute_dtype=dtype)
    assert taken == [True]  # once, on the float32 input (the method then skips its own)
    _without_host_path(monkeypatch)
    slow = pl.orthogonalize(a, method=method, compute_dtype=dtype)
    assert fast.dtype == slow.dtype == torch.float32
    # the two paths round differently (once, or twice): agreement to half-precision rounding
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=3e-2)
    s = np.linalg.svd(fast.double().numpy(), compute_uv=False)
    assert s.max() < 1.25 and s.min() > 0.5  # the Newton–Schulz band, as without the fast path


def test_polar_keeps_its_input_unscaled() -> None:
    a = torch.randn(24, 10, generator=torch.Generator().manual_seed(4)) * 50
    u, h = pl.polar(a, method="polar_express", steps=8, compute_dtype=torch.bfloat16)
    rel = torch.linalg.matrix_norm(u @ h - a) / torch.linalg.matrix_norm(a)
    assert float(rel) < 0.1  # bfloat16 products; H must be Uᴴa, not Uᴴ(a/‖a‖)


def test_finite_check_survives_an_overflowing_sum(xp) -> None:
    big = xp.full((4, 6), 2e38, dtype=xp.float32)  # finite entries, infinite sum
    u = pl.orthogonalize(big + xp.eye(4, 6, dtype=xp.float32) * 5e37, method="svd")
    assert bool(xp.all(xp.isfinite(u)))
    bad = xp.where(xp.eye(4, 6, dtype=xp.bool), xp.asarray(float("inf")), big)
    with pytest.raises(ValueError, match="NaN or infinity"):
        pl.orthogonalize(bad, method="svd")


CONFIGS = {
    "momentum_first_nesterov": {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    "polar_first": {"momentum": 0.9, "polar_first": True},
    "split_blocks": {"momentum": 0.8, "split": (2, 4)},
    "batched": {"momentum": 0.9, "batch": True},
    "flatten_conv": {"momentum": 0.9, "flatten": True},
    "shape_scale": {"momentum": 0.9, "scale": "shape"},
}


def _run(config: dict, check_finite: bool, steps: int = 4) -> tuple[list, object]:
    gen = torch.Generator().manual_seed(5)
    shapes = [(6, 5), (6, 5), (3, 2, 2, 2)] if config.get("flatten") else [(6, 5), (6, 5), (6, 3)]
    params = [
        torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes
    ]
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in "abcd"]
    opt = pl_torch.PolarGrad(params, lr=0.05, method="svd", check_finite=check_finite, **config)
    buffers = None
    for gs in grads[:steps]:
        for p, g in zip(params, gs, strict=True):
            p.grad = g
        opt.step()
        if buffers is None:
            buffers = [opt.state[p]["momentum_buffer"] for p in params]
    return params, (opt, buffers)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_in_place_step_follows_the_out_of_place_one(name: str) -> None:
    config = CONFIGS[name]
    ref, _ = _run(config, check_finite=True)
    params, (opt, buffers) = _run(config, check_finite=False)
    for p, q in zip(params, ref, strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12, atol=1e-12)
    for p, buf in zip(params, buffers, strict=True):
        assert opt.state[p]["momentum_buffer"] is buf  # the state tensors are kept
