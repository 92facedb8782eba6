"""The seed-paired comparison of the LM summary (polarlinalg.experiments.lm.report.paired)."""

from __future__ import annotations

import math
import statistics

import pytest

from polarlinalg.experiments.lm.report import _paired_markdown, paired
from polarlinalg.experiments.lm.results import RunResult


def _run(arm: str, seed: int, loss: float, diverged: bool = False) -> RunResult:
    return RunResult(
        arm=arm,
        seed=seed,
        lrs={},
        log=[],
        final_val_loss=loss,
        train_time=1.0,
        opt_time=0.5,
        tokens=100,
        diverged=diverged,
    )


def test_gap_mean_sd_and_standard_error_on_shared_seeds():
    base = {0: 2.00, 1: 2.10, 2: 1.95, 3: 2.05}
    arm = {0: 1.90, 1: 2.02, 2: 1.84}  # seed 3 missing: compared on 0, 1, 2 only
    results = [_run("adamw", s, v) for s, v in base.items()]
    results += [_run("muon", s, v) for s, v in arm.items()]
    (row,) = paired(results, "adamw")
    diffs = [arm[s] - base[s] for s in (0, 1, 2)]
    assert row["arm"] == "muon" and row["seeds"] == [0, 1, 2]
    assert row["gap_mean"] == pytest.approx(statistics.fmean(diffs))
    assert row["gap_std"] == pytest.approx(statistics.stdev(diffs))
    assert row["gap_se"] == pytest.approx(statistics.stdev(diffs) / math.sqrt(3))
    assert row["clear"]  # -0.097 ± 0.0067: far beyond two standard errors
    text = _paired_markdown(results)
    assert "Paired against `adamw`" in text and "| `muon` | 3 | -0.0967 |" in text
    assert "yes, lower" in text


def test_noisy_gap_is_not_clear_and_one_seed_has_no_verdict():
    results = [_run("adamw", s, 2.0) for s in range(3)]
    results += [_run("soap", s, 2.0 + d) for s, d in enumerate((0.05, -0.06, 0.02))]
    results += [_run("shampoo", 0, 1.5)]
    rows = {r["arm"]: r for r in paired(results, "adamw")}
    assert not rows["soap"]["clear"]
    assert math.isnan(rows["shampoo"]["gap_se"]) and not rows["shampoo"]["clear"]
    assert "| `shampoo` | 1 | -0.5000 | nan | nan | — |" in _paired_markdown(results)


def test_diverged_run_and_missing_baseline():
    results = [_run("adamw", 0, 2.0), _run("adamw", 1, 2.0)]
    results += [_run("muon", 0, 1.9), _run("muon", 1, math.nan, diverged=True)]
    (row,) = paired(results, "adamw")
    assert math.isnan(row["gap_mean"]) and not row["clear"]
    assert paired(results, "normuon") == []
