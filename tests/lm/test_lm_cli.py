"""`polarlinalg experiment lm`: argument checks and the files a run writes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from polarlinalg.experiments.lm.cli import ROLES, main
from polarlinalg.experiments.lm.presets import get_preset

NEW_ARMS = ("shampoo", "soap", "normuon")


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


def test_help_lists_the_new_arms_and_roles(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name in NEW_ARMS:
        assert name in text
    assert "torch_muon, shampoo, soap, normuon" in text  # --arms lists every arm
    assert "polargrad_embed_head, shampoo, soap, normuon" in text  # --lr lists every role
    assert set(NEW_ARMS) <= set(ROLES)


def test_bad_arm_names_list_the_new_arms(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--arms", "soap,shampo"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown arm 'shampo'" in err and "shampoo, soap, normuon" in err


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


def test_quick_run_of_shampoo_soap_normuon(tmp_path, capsys, restore_threads):
    out = tmp_path / "out"
    argv = ["--quick", "--arms", ",".join(NEW_ARMS), "--seeds", "0", "--lr", "soap=0.002"]
    argv += ["--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-plots"]
    assert main([*argv, "--no-progress", "--device", "cpu", "--threads", "1"]) == 0
    runs = json.loads((out / "runs.json").read_text(encoding="utf-8"))
    assert [r["arm"] for r in runs["runs"]] == list(NEW_ARMS)
    assert all(not r["diverged"] and r["steps_done"] == 6 for r in runs["runs"])
    assert runs["runs"][1]["lrs"] == {"soap": 0.002, "adamw": get_preset("tiny").lrs["adamw"]}
    rows = list(csv.DictReader((out / "log.csv").open(encoding="utf-8")))
    for name in NEW_ARMS:
        losses = [float(r["train_loss"]) for r in rows if r["arm"] == name]
        assert len(losses) == 6 and losses[-1] < losses[0], name
    printed = capsys.readouterr().out
    assert all(f"{name} " in printed for name in NEW_ARMS)
    assert "| `normuon` |" in (out / "summary.md").read_text(encoding="utf-8")
