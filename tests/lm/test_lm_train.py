"""The training loop on a small preset over a small corpus."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from polarlinalg.experiments.lm.arms import get_arm
from polarlinalg.experiments.lm.data import build_corpus
from polarlinalg.experiments.lm.presets import get_preset
from polarlinalg.experiments.lm.train import resolve_device, train_run

PRESET = get_preset("tiny").replace(
    n_layer=1,
    n_head=2,
    d_model=32,
    seq_len=16,
    batch_size=4,
    steps=6,
    warmup_steps=2,
    eval_every=3,
    eval_batches=2,
    diag_every=4,
)


pytestmark = pytest.mark.xdist_group("lm_train")  # one worker builds the module's corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    for i in range(40):
        (root / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n" * 20)
    return build_corpus(tmp_path_factory.mktemp("cache"), root=root, val_fraction=0.2)


def test_train_run_logs(corpus):
    result = train_run(PRESET, get_arm("muon"), 3, corpus, device="cpu", progress=False)
    assert [row["step"] for row in result.log] == [1, 2, 3, 4, 5, 6]
    assert [row["step"] for row in result.log if "val_loss" in row] == [3, 6]
    assert [row["step"] for row in result.log if "kappa_head" in row] == [1, 4, 6]
    assert result.final_val_loss == result.log[-1]["val_loss"]
    assert result.lrs == {"muon": PRESET.lrs["muon"], "adamw": PRESET.lrs["adamw"]}
    assert result.tokens == 6 * 4 * 16 and 0 < result.opt_share < 1
    assert all(row["kappa_head"] >= 1 and row["nuc_head"] > 0 for row in result.log[::3])
    times = [row["time"] for row in result.log]
    assert times == sorted(times) and not result.diverged
    # the seed fixes initialisation and data
    again = train_run(PRESET, get_arm("muon"), 3, corpus, device="cpu", progress=False)
    assert [r["train_loss"] for r in again.log] == [r["train_loss"] for r in result.log]


def test_divergence_stops_the_run(corpus):
    lrs = {"polargrad_embed_head": 1e38}
    result = train_run(
        PRESET, get_arm("polargradm_embed_head"), 0, corpus, device="cpu", lrs=lrs, progress=False
    )
    assert result.diverged and math.isnan(result.final_val_loss)
    assert len(result.log) < PRESET.steps


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("abacus")
