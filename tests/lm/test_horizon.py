"""The short-vs-long horizon comparison (polarlinalg.experiments.lm.horizon)."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from polarlinalg.experiments.lm.cli import main
from polarlinalg.experiments.lm.horizon import (
    compare_directories,
    compare_horizons,
    horizon_json,
    horizon_markdown,
    kendall_tau_b,
    write_horizon,
)
from polarlinalg.experiments.lm.presets import get_preset
from polarlinalg.experiments.lm.report import read_results, write_results
from polarlinalg.experiments.lm.results import RunResult

SHORT = get_preset("tiny")
LONG = SHORT.replace(steps=2000)
SEEDS = (0, 1, 2)
# per-seed offsets added to an arm's loss: the same for every arm makes paired gaps exact
SAME_NOISE = (0.0, 0.01, -0.01)


def _run(arm: str, seed: int, loss: float, *, diverged: bool = False, lrs=None) -> RunResult:
    return RunResult(
        arm=arm,
        seed=seed,
        lrs=dict(lrs or {"adamw": 1e-3, "muon": 0.03}),
        log=[],
        final_val_loss=loss,
        train_time=1.0,
        opt_time=0.5,
        tokens=100,
        diverged=diverged,
    )


def _results(means: dict[str, float], noise=SAME_NOISE) -> list[RunResult]:
    return [_run(a, s, m + noise[s]) for a, m in means.items() for s in SEEDS]


def _compare(short_means, long_means, **kw):
    return compare_horizons(
        _results(short_means, kw.get("short_noise", SAME_NOISE)),
        _results(long_means, kw.get("long_noise", SAME_NOISE)),
        short_preset=SHORT,
        long_preset=LONG,
    )


def _reference_tau(x, y):
    """Kendall's tau-b from the definition with rank lists (independent of the module)."""
    n = len(x)
    pairs = list(itertools.combinations(range(n), 2))
    s = sum(math.copysign(1, (x[i] - x[j]) * (y[i] - y[j])) for i, j in pairs
            if x[i] != x[j] and y[i] != y[j])  # fmt: skip
    tx = sum(x[i] == x[j] for i, j in pairs)
    ty = sum(y[i] == y[j] for i, j in pairs)
    return s / math.sqrt((len(pairs) - tx) * (len(pairs) - ty))


def test_identical_rankings():
    short = {"adamw": 2.1, "muon": 1.9, "normuon": 1.85, "soap": 2.05}
    long = {a: m - 0.5 for a, m in short.items()}
    c = _compare(short, long)
    assert c.tau == 1.0 and c.flips == []
    assert [a.arm for a in c.arms] == ["normuon", "muon", "soap", "adamw"]
    assert [a.short_rank for a in c.arms] == [1, 2, 3, 4] == [a.long_rank for a in c.arms]
    assert all(a.rank_change == 0 for a in c.arms)
    assert c.verdict == "ranking holds: tau = 1.00 over 4 arms, no flips"
    normuon = c.arms[0]
    assert normuon.short_loss_mean == pytest.approx(1.85)
    assert normuon.short_loss_std == pytest.approx(0.01)
    assert (normuon.short_loss_min, normuon.short_loss_max) == pytest.approx((1.84, 1.86))
    assert normuon.short_steps == [200] and normuon.long_steps == [2000]
    assert normuon.short_seeds == [0, 1, 2]
    # baseline gaps: every arm vs adamw and vs muon, unchanged in sign, clear at both
    gaps = {(g.arm, g.baseline): g for g in c.baseline_gaps}
    assert set(gaps) == {(a, b) for a in short for b in ("adamw", "muon") if a != b}
    g = gaps["muon", "adamw"]
    assert g.short_gap == pytest.approx(-0.2) and g.long_gap == pytest.approx(-0.2)
    assert g.short_clear and g.long_clear  # identical per-seed noise: SE = 0
    assert not g.sign_changed and not g.clear_changed
    text = horizon_markdown(c)
    assert "**Verdict:** ranking holds: tau = 1.00 over 4 arms, no flips." in text
    assert "No pair of arms changes order." in text
    assert (
        "| `normuon` | 200 → 2000 | 3 → 3 | 1.8500 ± 0.0100 | 1 | 1.3500 ± 0.0100 | 1 | +0 |"
        in text
    )


def test_full_reversal():
    short = {"adamw": 2.0, "muon": 2.1, "soap": 2.2, "shampoo": 2.3}
    long = {"adamw": 1.9, "muon": 1.8, "soap": 1.7, "shampoo": 1.6}
    c = _compare(short, long)
    assert c.tau == -1.0
    assert len(c.flips) == 6 and all(f.short_clear and f.long_clear for f in c.flips)
    assert [a.rank_change for a in c.arms] == [3, 1, -1, -3]
    flip = next(f for f in c.flips if (f.first, f.second) == ("adamw", "shampoo"))
    assert flip.short_gap == pytest.approx(-0.3) and flip.long_gap == pytest.approx(0.3)
    assert c.verdict == (
        "ranking changes: tau = -1.00 over 4 arms, 6 flips, 6 clear at the short horizon, "
        "6 at the long one, 6 at both"
    )
    g = next(g for g in c.baseline_gaps if (g.arm, g.baseline) == ("soap", "adamw"))
    assert g.sign_changed and not g.clear_changed


def test_one_flip_clear_and_not_clear():
    short = {"adamw": 2.0, "muon": 1.9, "normuon": 1.91}
    long = {"adamw": 1.5, "muon": 1.41, "normuon": 1.40}
    # same noise for every arm: the muon/normuon gap is exact at both horizons, hence clear
    clear = _compare(short, long)
    (flip,) = clear.flips
    assert (flip.first, flip.second) == ("muon", "normuon")
    assert flip.short_gap == pytest.approx(-0.01) and flip.long_gap == pytest.approx(0.01)
    assert flip.short_clear and flip.long_clear
    assert clear.tau == pytest.approx(1 / 3)
    assert clear.verdict.startswith("ranking changes: tau = 0.33 over 3 arms, 1 flip, 1 clear")

    # normuon's seeds scattered by ±0.05: the 0.01 gap is well within two standard errors
    short_runs = _results(short)
    long_runs = _results(long)
    for runs in (short_runs, long_runs):
        for r in runs:
            if r.arm == "normuon":
                r.final_val_loss += (0.05, -0.05, 0.0)[r.seed]
    noisy = compare_horizons(short_runs, long_runs, short_preset=SHORT, long_preset=LONG)
    (flip,) = noisy.flips
    assert not flip.short_clear and not flip.long_clear
    assert noisy.verdict == (
        "ranking holds up to noise: tau = 0.33 over 3 arms, 1 flip, not clear at either horizon"
    )
    text = horizon_markdown(noisy)
    assert "| `muon` | `normuon` | -0.0100 | no | +0.0100 | no |" in text


def test_flip_clear_only_at_the_short_horizon_weakens_the_ranking():
    short_runs = _results({"adamw": 2.0, "muon": 1.9, "normuon": 1.91})
    long_runs = _results({"adamw": 1.5, "muon": 1.41, "normuon": 1.40})
    for r in long_runs:  # scatter normuon at the long horizon only
        if r.arm == "normuon":
            r.final_val_loss += (0.05, -0.05, 0.0)[r.seed]
    c = compare_horizons(short_runs, long_runs, short_preset=SHORT, long_preset=LONG)
    (flip,) = c.flips
    assert flip.short_clear and not flip.long_clear
    assert c.verdict == (
        "ranking weakens: tau = 0.33 over 3 arms, 1 flip, 1 clear at the short horizon, "
        "0 at the long one"
    )
    g = next(g for g in c.baseline_gaps if (g.arm, g.baseline) == ("normuon", "muon"))
    assert g.sign_changed and g.short_clear and not g.long_clear and g.clear_changed


def test_ties_share_a_rank_and_tau_b_corrects_for_them():
    # muon and muon_qk_clip tie at the short horizon (as in the committed 200-step results)
    short = {"adamw": 2.0, "muon": 1.9, "muon_qk_clip": 1.9, "normuon": 1.8}
    long = {"adamw": 1.5, "muon": 1.45, "muon_qk_clip": 1.4, "normuon": 1.3}
    c = _compare(short, long)
    ranks = {a.arm: (a.short_rank, a.long_rank) for a in c.arms}
    assert ranks == {"normuon": (1, 1), "muon": (2, 3), "muon_qk_clip": (2, 2), "adamw": (4, 4)}
    assert c.flips == []  # a tie that resolves is not a flip
    xs = [short[a] for a in short]
    ys = [long[a] for a in short]
    assert c.tau == pytest.approx(_reference_tau(xs, ys))
    assert c.tau == pytest.approx(5 / math.sqrt(5 * 6))
    assert c.tau < 1
    assert c.verdict.startswith("ranking holds: tau = 0.91 over 4 arms")


def test_kendall_tau_b_against_the_definition_and_edge_cases():
    x = [3.0, 1.0, 2.0, 2.0, 5.0, 4.0, 4.0]
    y = [2.0, 1.0, 3.0, 3.0, 4.0, 6.0, 5.0]
    assert kendall_tau_b(x, y) == pytest.approx(_reference_tau(x, y))
    assert kendall_tau_b(x, x) == pytest.approx(1.0)
    assert kendall_tau_b([1.0, math.inf], [math.inf, 1.0]) == -1.0
    assert math.isnan(kendall_tau_b([1.0], [2.0]))
    assert math.isnan(kendall_tau_b([1.0, 1.0], [1.0, 2.0]))  # one side all tied
    with pytest.raises(ValueError, match="same length"):
        kendall_tau_b([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        kendall_tau_b([1.0, math.nan], [1.0, 2.0])


def test_diverged_arm_ranks_last_and_has_no_gap():
    short = _results({"adamw": 2.0, "muon": 1.9})
    long = _results({"adamw": 1.5}) + [_run("muon", s, math.nan, diverged=True) for s in SEEDS]
    c = compare_horizons(short, long, short_preset=SHORT, long_preset=LONG)
    muon = next(a for a in c.arms if a.arm == "muon")
    assert muon.long_loss_mean == math.inf and muon.long_rank == 2 and muon.long_diverged == 3
    (flip,) = c.flips
    assert flip.short_clear and math.isnan(flip.long_gap) and not flip.long_clear
    data = horizon_json(c)
    json.dumps(data, allow_nan=False)  # strict JSON: inf and NaN became None
    assert data["arms"][0]["arm"] == "muon" and data["arms"][0]["long_loss_mean"] is None
    assert "diverged (3)" in horizon_markdown(c)


def test_notes_for_changed_rates_and_one_sided_arms():
    short = _results({"adamw": 2.0, "muon": 1.9, "soap": 2.1})
    long = [_run("adamw", s, 1.5, lrs={"adamw": 3e-3}) for s in SEEDS]
    long += _results({"muon": 1.4, "shampoo": 1.45})
    # the preset's own rates are not compared (a run's --lr overrides them): the runs' are
    long_preset = LONG.replace(lrs={}, eval_batches=16)
    c = compare_horizons(short, long, short_preset=SHORT, long_preset=long_preset)
    assert c.only_short == ["soap"] and c.only_long == ["shampoo"]
    assert [a.arm for a in c.arms] == ["muon", "adamw"]
    assert [a.lrs_differ for a in c.arms] == [False, True]
    assert c.preset_differences == ["eval_batches"]
    text = horizon_markdown(c)
    assert "learning rates differ between the horizons for `adamw` (" in text
    assert "the presets also differ in `eval_batches`" in text
    assert "only at the short horizon: `soap`" in text
    assert "only at the long horizon: `shampoo`" in text
    plain = _compare({"adamw": 2.0, "muon": 1.9}, {"adamw": 1.5, "muon": 1.4})
    assert plain.preset_differences == [] and "Note:" not in horizon_markdown(plain)


@pytest.mark.parametrize(
    ("short_preset", "long_preset", "message"),
    [
        (SHORT, get_preset("gpu").replace(steps=2000), "share the preset's name"),
        (SHORT, LONG.replace(d_model=256), "share the preset's d_model"),
        (SHORT, SHORT, "must differ in steps; both ran 200"),
        (LONG, SHORT, "swap them"),
        (SHORT, {"name": "tiny"}, "need the field 'steps'"),
        (SHORT, [1, 2], "preset must be a Preset or a dict"),
    ],
)
def test_bad_presets(short_preset, long_preset, message):
    runs = _results({"adamw": 2.0})
    with pytest.raises(ValueError, match=message):
        compare_horizons(runs, runs, short_preset=short_preset, long_preset=long_preset)


def test_no_common_arm():
    with pytest.raises(ValueError, match="no arm ran at both horizons: short has adamw, long"):
        compare_horizons(
            _results({"adamw": 2.0}),
            _results({"muon": 1.5}),
            short_preset=SHORT,
            long_preset=LONG,
        )


def _write(directory, preset, means):
    write_results(
        directory,
        _results(means),
        preset=preset,
        corpus_meta={},
        device="cpu",
        plots=False,
        environment={"device": "cpu"},
    )


def test_cli_writes_the_three_files(tmp_path, capsys):
    _write(tmp_path / "short", SHORT, {"adamw": 2.0, "muon": 1.9, "normuon": 1.91})
    _write(tmp_path / "long", LONG, {"adamw": 1.5, "muon": 1.41, "normuon": 1.40})
    out = tmp_path / "out"
    argv = ["--horizon", str(tmp_path / "short"), str(tmp_path / "long"), "--out", str(out)]
    plots = True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plots = False
    assert main(argv if plots else [*argv, "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "**Verdict:** ranking changes: tau = 0.33 over 3 arms, 1 flip" in printed
    assert (out / "horizon.md").read_text(encoding="utf-8") in printed
    data = json.loads((out / "horizon.json").read_text(encoding="utf-8"))
    assert data["short_steps"] == 200 and data["long_steps"] == 2000
    assert data["flips"][0]["first"] == "muon" and data["kendall_tau_b"] == pytest.approx(1 / 3)
    if plots:
        assert (out / "horizon.png").read_bytes()[:4] == b"\x89PNG"

    # no plots: two files only
    assert main([*argv[:3], "--out", str(tmp_path / "bare"), "--no-plots"]) == 0
    assert {p.name for p in (tmp_path / "bare").iterdir()} == {"horizon.md", "horizon.json"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--merge", "x"], "--horizon excludes --merge and --sweep"),
        (["--sweep", "adamw"], "--horizon excludes --merge and --sweep"),
    ],
)
def test_cli_horizon_excludes_merge_and_sweep(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        main(["--horizon", "a", "b", *extra, "--out", str(tmp_path)])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_reports_bad_directories(tmp_path, capsys):
    _write(tmp_path / "short", SHORT, {"adamw": 2.0})
    argv = ["--horizon", str(tmp_path / "short"), str(tmp_path / "short")]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--out", str(tmp_path / "out"), "--no-plots"])
    assert info.value.code == 2
    assert "--horizon: the horizons must differ in steps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--horizon", str(tmp_path), str(tmp_path / "short"), "--out", str(tmp_path / "o")])
    assert "holds no runs.json" in capsys.readouterr().err


def test_write_horizon_without_plots(tmp_path):
    c = _compare({"adamw": 2.0, "muon": 1.9}, {"adamw": 1.5, "muon": 1.4})
    written = write_horizon(tmp_path, c, plots=False)
    assert [p.name for p in written] == ["horizon.md", "horizon.json"]


def test_horizon_reads_a_directory_without_log_csv(tmp_path):
    # a long run committed without its (large) log.csv: the final losses in runs.json
    # are enough for the comparison; the default read still asks for the log
    _write(tmp_path / "short", SHORT, {"adamw": 2.0, "muon": 1.9, "normuon": 1.91})
    long_runs = _results({"adamw": 1.5, "muon": 1.41, "normuon": 1.40})
    for r in long_runs:  # a full-length training log, as a real run has
        r.log.extend({"step": s, "train_loss": 3.0 - s / 1000} for s in range(2000))
    write_results(
        tmp_path / "long",
        long_runs,
        preset=LONG,
        corpus_meta={},
        device="cpu",
        plots=False,
        environment={"device": "cpu"},
    )
    _, logged = read_results(tmp_path / "long")
    assert all(len(r.log) == 2000 for r in logged)
    full = compare_directories(tmp_path / "short", tmp_path / "long")
    (tmp_path / "long" / "log.csv").unlink()
    with pytest.raises(ValueError, match=r"holds no log\.csv"):
        read_results(tmp_path / "long")
    _, runs = read_results(tmp_path / "long", require_log=False)
    assert len(runs) == 9 and all(r.log == [] for r in runs)
    assert [r.final_val_loss for r in runs] == [r.final_val_loss for r in logged]
    bare = compare_directories(tmp_path / "short", tmp_path / "long")
    assert horizon_json(bare) == horizon_json(full)
    assert bare.long_steps == 2000


def test_rates_equal_up_to_rounding_are_the_same_rate():
    # a sweep's grid point 0.010000000000000002 and a preset's 0.01: the same rate
    short = [_run("soap", s, 2.0, lrs={"soap": 0.010000000000000002}) for s in SEEDS]
    long = [_run("soap", s, 1.2, lrs={"soap": 0.01}) for s in SEEDS]
    other = [_run("soap", s, 1.2, lrs={"soap": 0.0100001}) for s in SEEDS]
    same = compare_horizons(short, long, short_preset=SHORT, long_preset=LONG)
    moved = compare_horizons(short, other, short_preset=SHORT, long_preset=LONG)
    assert [a.lrs_differ for a in same.arms] == [False]
    assert [a.lrs_differ for a in moved.arms] == [True]
