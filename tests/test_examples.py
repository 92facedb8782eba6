"""Every script of examples/ runs with no arguments and exits with status 0.

Each runs in a fresh interpreter (the venv's Python running this test) from
the repository root, with one BLAS/OpenMP thread; a script whose framework is
not installed is skipped.  The training scripts check themselves that their
loss fell; the CuPy script prints why it is skipped when there is no GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# script -> modules it needs (cupy_polar.py needs none: it reports a missing GPU itself)
NEEDS = {
    "torch_training.py": ("torch",),
    "jax_optax_training.py": ("jax", "optax"),
    "numpy_optim.py": (),
    "cupy_polar.py": (),
}


def test_every_example_is_listed():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(NEEDS)
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in scripts:
        assert name in readme, name


def _run(script: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("script", sorted(NEEDS))
def test_example_runs(script):
    for module in NEEDS[script]:
        pytest.importorskip(module)
    result = _run(script)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout.strip(), "the example printed nothing"
    if script.endswith("_training.py"):
        assert "training loss" in result.stdout


def test_cupy_example_says_why_it_is_skipped():
    try:
        import cupy

        has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        has_gpu = False
    if has_gpu:
        pytest.skip("a CUDA device is here: test_example_runs runs the GPU path")
    result = _run("cupy_polar.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("skipped: no CUDA device")
