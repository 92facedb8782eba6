"""The public API type-checks as documented: mypy on tests/typecheck/typed_usage.py.

``polarlinalg`` ships ``py.typed``; the typed example uses every public entry
point the way a user would annotate it, and mypy (pinned in the ``test``
extra, configured in pyproject.toml's ``[tool.mypy]``) must accept it.  The
same mypy run checks a file of misuses, whose errors must be reported: the
check can fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "typecheck" / "typed_usage.py"

MISUSES = """
import numpy as np
import torch

import polarlinalg as pl
from polarlinalg.torch import PolarGrad, param_groups

a = np.eye(3)
u = pl.polar(a, return_info=True).u  # a pair (result, info) with return_info=True
model = torch.nn.Linear(3, 3)
PolarGrad(model.parameters(), lr=0.1, momentom=0.9)
param_groups(model, embeding="adamw")
text: str = pl.polar_express_coefficients(lower=1e-3, steps=5)
"""


def test_py_typed_ships_with_the_package():
    assert (ROOT / "polarlinalg" / "py.typed").is_file()
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(
        r'\[tool\.setuptools\.package-data\]\s*polarlinalg\s*=\s*\["py\.typed"\]', config
    )


def test_mypy_accepts_the_typed_example_and_rejects_misuses(tmp_path):
    for module in ("mypy", "torch", "jax", "optax"):  # the example uses all three wrappers
        pytest.importorskip(module)
    bad = tmp_path / "misuses.py"
    bad.write_text(MISUSES, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", str(EXAMPLE), str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert not [e for e in errors if "typed_usage.py" in e], output
    assert result.returncode == 1, output
    where = {int(e.split(":")[1]) for e in errors if "misuses.py" in e}
    lines = MISUSES.splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, text in enumerate(lines, start=1) if fragment in text)

    for fragment in ("return_info=True).u", "momentom", "embeding", "text: str"):
        assert line_of(fragment) in where, f"mypy missed {fragment!r}:\n{output}"


def test_the_typed_example_runs():
    for module in ("torch", "jax", "optax"):
        pytest.importorskip(module)
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "optim: ['b', 'w']" in result.stdout
