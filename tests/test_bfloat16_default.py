"""The PyTorch Muon-type optimizers compute in bfloat16 only where it is fast.

On a CPU without bfloat16 support in oneDNN (AVX2-only x86) PyTorch emulates
bfloat16 products about 100× slower than float32 (1.3 against 143 GFLOP/s at
768 × 3072 on an AMD EPYC), so the default compute dtype of ``Muon`` and
``NorMuon`` is float32 there and bfloat16 elsewhere (``torch.optim.Muon``'s).
These tests force either answer of the hardware check, so they pass on any CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from polarlinalg import _dtypes

torch = pytest.importorskip("torch")

from polarlinalg.torch import Muon, NorMuon  # noqa: E402


@pytest.fixture(params=[True, False], ids=["bf16-hardware", "bf16-emulated"])
def fast_bf16(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(_dtypes, "_torch_cpu_bfloat16_matmul", lambda: request.param)
    return request.param


def test_only_torch_on_a_cpu_asks_the_hardware(fast_bf16: bool) -> None:
    import array_api_compat.numpy as xnp
    import array_api_compat.torch as xt

    cpu = torch.device("cpu")
    assert _dtypes.has_bfloat16_matmul(xt, cpu) is fast_bf16
    assert _dtypes.has_bfloat16_matmul(torch, "cpu") is fast_bf16
    assert _dtypes.has_bfloat16_matmul(xt, torch.device("cuda", 0)) is True  # no GPU needed
    assert _dtypes.has_bfloat16_matmul(xnp, "cpu") is True
    want = torch.bfloat16 if fast_bf16 else torch.float32
    assert _dtypes.fast_bfloat16_dtype(xt, cpu) == want


def test_the_real_check_answers_a_bool() -> None:
    _dtypes._torch_cpu_bfloat16_matmul.cache_clear()
    assert isinstance(_dtypes._torch_cpu_bfloat16_matmul(), bool)


def _rule(opt: torch.optim.Optimizer) -> object:
    return opt._rule(opt.param_groups[0])  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [Muon, NorMuon])
def test_default_compute_dtype_follows_the_hardware(cls: type, fast_bf16: bool) -> None:
    w = torch.nn.Parameter(torch.randn(6, 4))
    want = torch.bfloat16 if fast_bf16 else torch.float32
    assert _rule(cls([w], lr=0.02)).compute_dtype == want
    # an explicit choice is kept on any CPU; other methods keep the parameter's dtype
    assert _rule(cls([w], lr=0.02, compute_dtype=torch.bfloat16)).compute_dtype == torch.bfloat16
    assert _rule(cls([w], lr=0.02, method="qdwh")).compute_dtype is None


def test_emulated_bf16_cpu_steps_as_explicit_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dtypes, "_torch_cpu_bfloat16_matmul", lambda: False)
    gen = torch.Generator().manual_seed(0)
    x0, g = torch.randn(12, 8, generator=gen), torch.randn(12, 8, generator=gen)
    params = [torch.nn.Parameter(x0.clone()) for _ in range(3)]
    opts = [
        Muon([params[0]], lr=0.05),
        Muon([params[1]], lr=0.05, compute_dtype=torch.float32),
        Muon([params[2]], lr=0.05, compute_dtype=torch.bfloat16),
    ]
    for p, opt in zip(params, opts, strict=True):
        p.grad = g.clone()
        opt.step()
    torch.testing.assert_close(params[0].detach(), params[1].detach(), rtol=0, atol=0)
    # and it is the bfloat16 update to bfloat16 rounding of five NS steps (≤ 4 % RMS)
    d32 = (params[0] - x0).detach().numpy().astype(np.float64)
    d16 = (params[2] - x0).detach().numpy().astype(np.float64)
    assert 0 < np.linalg.norm(d32 - d16) / np.linalg.norm(d32) < 0.04
