"""The GPT of the language-model benchmark, and the `tiny` preset's smoke test."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from polarlinalg.experiments.lm.arms import build_optimizers, get_arm  # noqa: E402
from polarlinalg.experiments.lm.model import GPT, GPTConfig  # noqa: E402
from polarlinalg.experiments.lm.presets import get_preset  # noqa: E402

SMALL = GPTConfig(n_layer=2, n_head=2, d_model=32, seq_len=16)


def test_parameter_groups_partition_the_model():
    model = GPT(SMALL)
    groups = model.parameter_groups()
    ids = [id(p) for ps in groups.values() for p in ps]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert groups["embed"][0].shape == groups["head"][0].shape == (256, 32)
    assert groups["embed"][0] is not groups["head"][0]  # untied
    assert all(p.ndim == 2 for p in groups["hidden"]) and len(groups["hidden"]) == 8
    assert all(p.ndim == 1 for p in groups["vectors"])


def test_attention_is_causal():
    torch.manual_seed(0)
    model = GPT(SMALL).eval()
    tokens = torch.randint(256, (2, 16))
    changed = tokens.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 256
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_config_and_input_checks():
    with pytest.raises(ValueError, match="n_head"):
        GPTConfig(n_layer=1, n_head=3, d_model=32, seq_len=8)
    with pytest.raises(ValueError, match="seq_len"):
        GPTConfig(n_layer=1, n_head=2, d_model=32, seq_len=0)
    with pytest.raises(ValueError, match="seq_len"):
        GPT(SMALL)(torch.zeros(1, 17, dtype=torch.long))


def test_tiny_preset_smoke_loss_decreases_on_a_fixed_batch():
    preset = get_preset("tiny")
    torch.manual_seed(0)
    config = GPTConfig(preset.n_layer, preset.n_head, preset.d_model, preset.seq_len)
    model = GPT(config)
    optimizers = build_optimizers(get_arm("adamw"), model.parameter_groups(), preset.lrs)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(256, (2, preset.seq_len), generator=gen)
    y = torch.roll(x, -1, dims=1)  # a learnable target: the next token of the same row
    losses = []
    for _ in range(6):
        loss = model.loss(x, y)
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        for opt in optimizers:
            opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[0] == pytest.approx(math.log(256), abs=0.3)
    assert losses[-1] < losses[0] - 0.5
