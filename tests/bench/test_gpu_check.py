"""``benchmarks/gpu_check.sh`` / ``polarlinalg.bench.gpu_check``: its plan and its dry run.

The GPU run itself needs a lent GPU; CI runs the dry run (the same three steps on
the CPU at tiny sizes) and checks the summary it writes.  No timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from polarlinalg.bench import gpu_check
from polarlinalg.bench.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _args(step: gpu_check.Step) -> list[str]:
    return list(step.args)


def test_gpu_plan_covers_the_issue():
    steps = {s.name: s for s in gpu_check.plan(Path("out"), dry_run=False)}
    assert list(steps) == ["validate", "bench", "lm"]
    assert dict(steps["validate"].env)["POLARLINALG_BACKENDS"] == "torch-cuda,jax-gpu,cupy"
    bench = _args(steps["bench"])
    for flag, value in [
        ("--device", "gpu"),
        ("--sizes", "4096"),
        ("--dtypes", "bfloat16,float32"),
        ("--methods", "polar_express,qdwh,svd"),
        ("--optimizer-families", "muon"),
    ]:
        assert bench[bench.index(flag) + 1] == value
    assert "--optimizer-layers" not in bench  # the full 12 GPT-2-small layers
    lm = _args(steps["lm"])
    assert lm[:3] == ["polarlinalg", "experiment", "lm"]
    assert lm[lm.index("--preset") + 1] == "gpu" and lm[lm.index("--steps") + 1] == "50"
    assert lm[lm.index("--arms") + 1] == "adamw,muon,polargradm_qdwh"
    # within the 8 minutes, with room for the summary
    assert sum(s.cap_s for s in steps.values()) <= gpu_check.DEFAULT_BUDGET_S - 20
    # every step's arguments parse (bench's here; the others in the dry run)
    build_parser().parse_args(bench[2:])


def test_dry_run_runs_every_step_and_writes_the_summary(tmp_path, capsys):
    out = tmp_path / "check"
    assert gpu_check.main(["--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "GPU plan" in printed and "--preset gpu --steps 50" in printed
    summary = json.loads((out / "gpu-check.json").read_text())
    assert summary["schema"] == gpu_check.SCHEMA and summary["dry_run"] is True
    assert [s["name"] for s in summary["steps"]] == ["validate", "bench", "lm"]
    assert all(s["rc"] == 0 and not s["timed_out"] for s in summary["steps"])
    assert all((out / s["log"]).is_file() for s in summary["steps"])
    v = summary["validate"]
    assert v["rows"] > 0 and v["passed"] == v["rows"] and v["backends"] == ["numpy", "torch"]
    b = summary["bench"]
    assert {r["candidate"] for r in b["rows"]} == {"polar_express", "qdwh", "svd"}
    (step,) = b["optimizer_steps"]
    assert step["reference"] == "torch.optim.Muon"
    assert {r["candidate"] for r in step["rows"]} >= {"polarlinalg.torch.Muon"}
    gpu_targets = [t for t in b["targets"] if "(GPU)" in t["target"]]
    assert gpu_targets and all(t["met"] is None for t in gpu_targets)  # no GPU here
    assert [r["arm"] for r in summary["lm"]["runs"]] == ["adamw", "muon", "polargradm_qdwh"]
    assert all(r["steps_done"] > 0 for r in summary["lm"]["runs"])
    md = (out / "gpu-check.md").read_text()
    for heading in ("## GPU check (dry run", "### validate", "### bench", "### lm"):
        assert heading in md
    assert "torch.optim.Muon" in md and "polargradm_qdwh" in md


def test_summary_says_when_a_step_left_no_result():
    summary = {
        "dry_run": False,
        "machine": {"cpu": "x", "gpus": ["GPU 0: H200"], "date": "d"},
        "budget_s": 480.0,
        "total_s": 200.0,
        "steps": [
            {
                "name": "validate",
                "rc": None,
                "timed_out": True,
                "wall_s": 190.0,
                "limit_s": 190.0,
                "command": "python -m polarlinalg validate",
            },
        ],
        "validate": None,
        "bench": None,
        "lm": None,
    }
    md = gpu_check.summary_markdown(summary)
    assert "| validate | timed out | 190 (190) |" in md
    assert md.count("No result") == 3 and "GPU 0: H200" in md


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--skip", "train"], "--skip: unknown train"),
        (["--budget", "0"], "--budget must be positive"),
        (["--lm-steps", "0"], "--lm-steps must be a positive integer"),
    ],
)
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizer-families", "adam"], "unknown adam"),
        (["--optimizer-shapes", "64x"], "expected shapes such as"),
    ],
)
def test_bench_optimizer_options(argv, message, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert message in capsys.readouterr().err
    args = build_parser().parse_args(["--optimizer-shapes", "64x128,32X16"])
    assert args.optimizer_shapes == [(64, 128), (32, 16)]


def test_shell_script_plan_and_missing_wheels(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(SCRIPT), "--plan-only"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "polarlinalg validate" in done.stdout and "experiment lm --preset gpu" in done.stdout
    # an interpreter without array-api-compat (here: one that fails every command) and no wheels
    env = {**os.environ, "PYTHON": "false", "WHEELS": str(tmp_path)}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "holds no wheels" in done.stderr
