"""The matrix arms whose rates are not the paper's run at their sweeps' interior optima.

The sweeps (``polarlinalg experiment PROBLEM --sweep ARM…``, seed 1042, full size) are
committed under ``benchmarks/results/experiments/sweep-*.json``; docs/experiments.md shows
them.  A rate changed in ``arms.py`` without a new sweep fails here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from polarlinalg.experiments.arms import ARMS

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "experiments"
SWEPT = {
    "quadratic": ("polargrad-qdwh", "shampoo", "soap"),
    "logistic": ("shampoo", "soap"),
    "completion": ("polargrad-qdwh", "shampoo", "soap"),
}


def _sweeps(problem: str) -> dict:
    arms: dict = {}
    for path in sorted(RESULTS.glob(f"sweep-{problem}*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        assert record["problem"] == problem and 1042 in record["seeds"]
        assert not {42, 142, 242} & set(record["seeds"])  # never a result seed
        arms.update(record["arms"])
    return arms


@pytest.mark.parametrize("problem", list(SWEPT))
def test_swept_arms_run_at_their_interior_optimum(problem: str) -> None:
    if not RESULTS.is_dir():
        pytest.skip("benchmarks/results is not in this checkout")
    sweeps = _sweeps(problem)
    arms = {a.name: a for a in ARMS[problem]}
    for name in SWEPT[problem]:
        bracket = sweeps[name]
        assert bracket["interior"], (problem, name, bracket["message"])
        best = bracket["best_lr"]
        lrs = sorted(p["lr"] for p in bracket["points"])
        assert lrs[0] < best < lrs[-1]  # worse rates on both sides were run
        assert math.isclose(arms[name].lr, best, rel_tol=1e-9), (problem, name)
