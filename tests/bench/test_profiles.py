"""The profile scripts of benchmarks/profiles run end to end at small sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROFILES = Path(__file__).resolve().parents[2] / "benchmarks" / "profiles"


def _run(script: str, *args: str, tmp_path: Path) -> dict:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, str(PROFILES / script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def test_torch_profile(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    report = _run(
        "torch_profile.py",
        *("--threads", "1", "--shapes", "48x96,96x48", "--sizes", "32", "--rounds", "1"),
        tmp_path=tmp_path,
    )
    timing = report["step"]["timing"]
    assert set(timing) == {
        "torch.optim.Muon",
        "polarlinalg.torch.Muon",
        "polarlinalg.torch.PolarGrad",
    }
    assert timing["torch.optim.Muon"]["ratio"] == 1.0
    ops = report["step"]["ops"]["polarlinalg.torch.Muon"]
    assert any(r["op"] in ("aten::addmm", "aten::mm") for r in ops)
    assert abs(sum(r["share"] for r in ops) - 1.0) < 1e-6
    assert report["polar_express"]["32"]["timing"]["floor"]["ratio"] == 1.0


def test_qdwh_profile(tmp_path: Path) -> None:
    pytest.importorskip("scipy")
    report = _run("qdwh_profile.py", "--n", "64", "--repeats", "1", tmp_path=tmp_path)
    groups = {row["group"] for row in report["rows"]}
    assert groups == {"ours", "scipy"}
    for group in groups:  # each side's phase shares add up to its whole
        shares = [row["share"] for row in report["rows"] if row["group"] == group]
        assert abs(sum(shares) - 1.0) < 1e-6
        assert report["totals"][group]["flops"] > 0
