"""PolarGrad's rate against Muon's from logged nuclear norms (experiments.lm.lr_scale)."""

from __future__ import annotations

import math

import pytest

from polarlinalg.experiments.lm.lr_scale import (
    hidden_shape_scales,
    lr_scale_markdown,
    lr_scale_rows,
)
from polarlinalg.experiments.lm.presets import get_preset
from polarlinalg.experiments.lm.results import RunResult


def _run(arm, seed, lrs, norms=()):
    log = [{"step": i + 1, "train_loss": 1.0} for i in range(10)]
    for i, v in enumerate(norms):
        log[i]["nuc_m_hidden"] = v
    return RunResult(arm, seed, lrs, log, 2.0, 1.0, 0.5, 10, False)


def test_shape_scales_are_those_of_the_models_hidden_matrices():
    torch = pytest.importorskip("torch")
    from polarlinalg.experiments.lm.model import GPT, GPTConfig

    preset = get_preset("tiny")
    config = GPTConfig(preset.n_layer, preset.n_head, preset.d_model, preset.seq_len)
    with torch.device("meta"):
        hidden = GPT(config).parameter_groups()["hidden"]
    expected = [math.sqrt(max(1.0, p.shape[0] / p.shape[1])) for p in hidden]
    assert hidden_shape_scales(preset) == pytest.approx(expected)


def test_rows_relate_the_two_steps():
    scales = [1.0, 2.0, 3.0]  # median 2
    results = [
        _run("muon", 0, {"muon": 0.05}),
        _run("polargradm_polar_express", 0, {"polargrad_hidden": 0.3}, [1.0, 2.0, 3.0]),
        _run("polargradm_polar_express", 1, {"polargrad_hidden": 0.3}, [2.0, 4.0, 6.0]),
    ]
    (row,) = lr_scale_rows(results, scales)
    assert row["seeds"] == 2 and row["nuc_median"] == pytest.approx(3.0)  # median of 2 and 4
    assert row["polargrad_step"] == pytest.approx(0.9)
    assert row["muon_step"] == pytest.approx(0.1)
    assert row["ratio"] == pytest.approx(9.0)
    assert row["gamma_equal"] == pytest.approx(0.1 / 3.0)
    assert "| `polargradm_polar_express` | 0.3 | 3 " in lr_scale_markdown([row])


def test_no_muon_or_no_norms_gives_nothing():
    assert lr_scale_rows([_run("polargradm_qdwh", 0, {"polargrad_hidden": 1.0}, [1.0])], [1]) == []
    assert lr_scale_rows([_run("muon", 0, {"muon": 0.1})], [1.0]) == []
    assert lr_scale_markdown([]) == ""
