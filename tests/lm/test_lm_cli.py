"""`polarlinalg experiment lm`: argument checks and the files a run writes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from polarlinalg.experiments.lm.cli import main


def test_importing_the_package_and_cli_loads_no_framework():
    code = (
        "import sys, polarlinalg.experiments.lm, polarlinalg.experiments.lm.cli, "
        "polarlinalg.experiments.lm.presets, polarlinalg.experiments.lm.data; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'tqdm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--arms", "adamw,sgd"], "unknown arm 'sgd'"),
        (["--seeds", "0,x"], "comma-separated non-negative integer seeds"),
        (["--steps", "0"], "expected a positive integer"),
        (["--lr", "momentum=0.1"], "--lr takes ROLE=VALUE"),
        (["--lr", "muon=-1"], "needs a positive number"),
        (["--quick", "--steps", "5"], "exclude each other"),
        (["--preset", "huge"], "invalid choice"),
    ],
)
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def restore_threads():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_quick_run_writes_results(tmp_path, capsys, restore_threads):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    argv = ["--quick", "--arms", "adamw,polargradm_embed_head", "--seeds", "0,1"]  # 4 runs
    argv += ["--lr", "adamw=0.002", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    # one thread: these matrices are too small to gain from two, and on a busy machine
    # two OpenMP threads wait on each other
    assert main([*argv, "--no-progress", "--device", "cpu", "--threads", "1"]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {
        "log.csv",
        "runs.json",
        "summary.csv",
        "summary.md",
        "loss_vs_steps.png",
        "loss_vs_time.png",
        "grad_condition.png",
    }
    rows = list(csv.DictReader((out / "log.csv").open(encoding="utf-8")))
    assert len(rows) == 2 * 2 * 6
    assert {(r["arm"], r["seed"]) for r in rows} == {
        (a, s) for a in ("adamw", "polargradm_embed_head") for s in ("0", "1")
    }
    assert all(float(r["train_loss"]) > 0 for r in rows)
    assert rows[5]["val_loss"] and rows[0]["kappa_head"]
    runs = json.loads((out / "runs.json").read_text(encoding="utf-8"))
    assert runs["preset"]["steps"] == 6 and runs["preset"]["batch_size"] == 4
    assert len(runs["runs"]) == 4
    assert runs["runs"][0]["lrs"] == {"adamw": 0.002}
    summary = runs["summary"]
    assert [s["arm"] for s in summary] == ["adamw", "polargradm_embed_head"]
    assert all(s["seeds"] == 2 and s["val_loss_mean"] > 0 for s in summary)
    assert "| `adamw` |" in (out / "summary.md").read_text(encoding="utf-8")
    assert (out / "loss_vs_steps.png").read_bytes()[:4] == b"\x89PNG"
    assert "val loss" in capsys.readouterr().out

    # read back and merged into another directory: the same table and logs
    merged = tmp_path / "merged"
    assert main(["--merge", str(out), "--out", str(merged), "--no-plots"]) == 0
    assert (merged / "summary.md").read_text() == (out / "summary.md").read_text()
    assert (merged / "log.csv").read_text() == (out / "log.csv").read_text()
    again = json.loads((merged / "runs.json").read_text(encoding="utf-8"))
    assert again["runs"] == runs["runs"] and again["preset"] == runs["preset"]
    with pytest.raises(SystemExit):
        main(["--merge", str(out), str(out), "--out", str(tmp_path / "twice")])
    assert "appears in more than one directory" in capsys.readouterr().err
