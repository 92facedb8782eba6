"""QK-Clip in the language-model benchmark: recorded max logits, the clip, the arm."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from polarlinalg.experiments.lm import model as model_module  # noqa: E402
from polarlinalg.experiments.lm.arms import QK_CLIP_THRESHOLD, get_arm  # noqa: E402
from polarlinalg.experiments.lm.data import build_corpus  # noqa: E402
from polarlinalg.experiments.lm.model import GPT, GPTConfig, max_causal_logits  # noqa: E402
from polarlinalg.experiments.lm.presets import get_preset  # noqa: E402
from polarlinalg.experiments.lm.sweep import ROLE_ARMS  # noqa: E402
from polarlinalg.experiments.lm.train import train_run  # noqa: E402

ONE_LAYER = GPTConfig(n_layer=1, n_head=4, d_model=32, seq_len=12)


def reference_max_logits(model, tokens):
    """Per head of the first layer, in float64: max over the batch of ⟨q_i, k_j⟩/√d, j ≤ i."""
    attn = model.blocks[0].attn
    with torch.no_grad():
        x = model.blocks[0].norm1(model.embed(tokens)).double()
        b, t, d = x.shape
        h = model.config.n_head
        qkv = x @ attn.qkv.weight.double().T
        q, k, _ = qkv.view(b, t, 3, h, d // h).unbind(2)
        q, k = (z.transpose(1, 2) for z in (q, k))
        cos, sin = model.rope_cos[:t].double(), model.rope_sin[:t].double()
        q, k = model_module._rotate(q, cos, sin), model_module._rotate(k, cos, sin)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d // h)
        s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), -math.inf)
        return s.amax(dim=(0, 2, 3))


def sharpened_model(seed=0):
    """A one-layer GPT whose heads have max logits spread over about 1 to 100."""
    torch.manual_seed(seed)
    model = GPT(ONE_LAYER)
    with torch.no_grad():
        w = model.blocks[0].attn.qkv.weight
        w[:64] *= torch.tensor([3.0, 10.0, 30.0, 60.0]).repeat_interleave(8)[:, None].repeat(2, 1)
    return model


def test_recorded_max_logits_match_a_reference_and_only_when_asked():
    model = sharpened_model()
    tokens = torch.randint(256, (3, 12), generator=torch.Generator().manual_seed(0))
    model(tokens)
    assert model.max_attention_logits() is None  # off by default
    model.record_max_logits()
    model(tokens)
    recorded = model.max_attention_logits()
    assert recorded.shape == (1, 4)
    torch.testing.assert_close(
        recorded[0].double(), reference_max_logits(model, tokens), rtol=1e-5, atol=1e-5
    )
    model(tokens[:1] * 0)  # maxima accumulate over forward passes until reset
    torch.testing.assert_close(model.max_attention_logits(reset=True), recorded)
    assert model.max_attention_logits() is None
    model.eval()
    model(tokens)
    assert model.max_attention_logits() is None  # eval passes do not feed the clip


def test_max_causal_logits_masks_the_future_and_chunks_agree(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    q, k = torch.randn(5, 3, 7, 4, generator=gen), torch.randn(5, 3, 7, 4, generator=gen)
    q[:, :, :3] *= 100.0  # early queries and late keys are large: their products are the
    k[:, :, 3:] *= 100.0  # largest logits, all at positions the causal mask hides
    s = (q.double() @ k.double().transpose(-1, -2)) / 2.0
    allowed = [(b, i, j) for b in range(5) for i in range(7) for j in range(i + 1)]
    expected = [max(float(s[b, h, i, j]) for b, i, j in allowed) for h in range(3)]
    whole = max_causal_logits(q, k)
    torch.testing.assert_close(whole.double().tolist(), expected, rtol=1e-6, atol=0)
    assert all(float(s[:, h].max()) > 10 * expected[h] for h in range(3))
    monkeypatch.setattr(model_module, "_LOGIT_CHUNK", 3 * 7 * 7 * 2)  # two windows a chunk
    torch.testing.assert_close(max_causal_logits(q, k), whole, rtol=0, atol=0)


def test_gpt_qk_clip_brings_clipped_heads_to_the_threshold():
    model = sharpened_model()
    tokens = torch.randint(256, (3, 12), generator=torch.Generator().manual_seed(2))
    model.record_max_logits()
    model(tokens)
    before = model.max_attention_logits()[0]
    tau = float(before.sort().values[1:3].prod().sqrt())  # two heads on each side
    clipped = before > tau
    assert int(clipped.sum()) == 2
    v_rows = model.blocks[0].attn.qkv.weight[64:].detach().clone()
    returned = model.qk_clip_(tau)
    torch.testing.assert_close(returned[0], before, rtol=0, atol=0)
    assert model.max_attention_logits() is None  # consumed
    model(tokens)
    after = model.max_attention_logits()[0]
    torch.testing.assert_close(after[clipped], torch.full((2,), tau), rtol=1e-5, atol=0)
    torch.testing.assert_close(after[~clipped], before[~clipped], rtol=1e-6, atol=0)
    assert torch.equal(model.blocks[0].attn.qkv.weight[64:], v_rows)
    assert model.qk_clip_(tau) is not None and model.qk_clip_(tau) is None  # nothing recorded


def test_muon_qk_clip_arm_clips_after_every_step(tmp_path, monkeypatch):
    arm = get_arm("muon_qk_clip")
    assert arm.qk_clip == QK_CLIP_THRESHOLD == 100.0 and arm.roles == ("muon", "adamw")
    assert set(arm.roles) <= set(ROLE_ARMS)  # the sweep can set its rates
    root = tmp_path / "src"
    root.mkdir()
    for i in range(30):
        (root / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n" * 20)
    corpus = build_corpus(tmp_path / "cache", root=root, val_fraction=0.2)
    preset = get_preset("tiny").replace(
        n_layer=1,
        n_head=2,
        d_model=32,
        seq_len=16,
        batch_size=4,
        steps=4,
        warmup_steps=1,
        eval_every=2,
        eval_batches=2,
        diag_every=2,
    )
    seen = []
    original = GPT.qk_clip_

    def spy(self, threshold):
        logits = original(self, threshold)
        seen.append((threshold, logits))
        return logits

    monkeypatch.setattr(GPT, "qk_clip_", spy)
    result = train_run(preset, arm, 0, corpus, device="cpu", progress=False)
    assert not result.diverged and len(result.log) == 4
    assert [t for t, _ in seen] == [100.0] * 4
    assert all(v is not None and v.shape == (1, 2) for _, v in seen)  # one forward's maxima each
    seen.clear()
    train_run(preset, get_arm("muon"), 0, corpus, device="cpu", progress=False)
    assert seen == []  # the plain arm neither records nor clips
