"""The tiny preset's learning rates are the interior optima of the recorded sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polarlinalg.experiments.lm.presets import get_preset

SWEEP = Path(__file__).resolve().parents[2] / "docs" / "img" / "lm" / "sweep.json"


def test_tiny_rates_are_the_sweeps_interior_optima():
    record = json.loads(SWEEP.read_text(encoding="utf-8"))
    preset = get_preset("tiny")
    assert record["preset"]["name"] == "tiny" and record["preset"]["steps"] == preset.steps
    assert not set(record["seeds"]) & {0, 1, 2}  # never the seeds of the results
    assert set(record["roles"]) == set(preset.lrs)
    for role, sweep in record["roles"].items():
        assert sweep["interior"], (role, sweep["message"])
        points = sweep["points"]
        k = [p["lr"] for p in points].index(sweep["best_lr"])
        assert 0 < k < len(points) - 1, role  # tried on both sides...
        assert points[k - 1]["loss"] > points[k]["loss"] < points[k + 1]["loss"], role  # worse
        assert preset.lrs[role] == pytest.approx(sweep["best_lr"], rel=1e-9), role
