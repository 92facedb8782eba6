"""polarlinalg.optax under jax.jit with parameters sharded over 4 host CPU devices.

The main pytest process has initialised JAX with one device, so the check runs
``dist_jax_worker.py`` in a fresh interpreter with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")

import dist_jax_worker as worker

TIMEOUT = 300
# One worker runs this module under pytest-xdist (--dist loadgroup): the spawned run is a
# module fixture, and split across workers it would run once per worker.
pytestmark = pytest.mark.xdist_group("dist_jax")


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    try:
        proc = subprocess.run(
            [sys.executable, worker.__file__],
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the 4-device JAX run did not finish in {TIMEOUT} s")
    if proc.returncode != 0:
        pytest.fail(f"the 4-device JAX run failed:\n{proc.stdout[-2000:]}{proc.stderr[-5000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind,name", worker.CASES)
def test_sharded_run_equals_unsharded(report, kind, name):
    result = report[f"{kind}/{name}"]
    assert result["moved"] > 1e-2  # every leaf was trained
    assert result["error"] < 1e-6
    assert result["param_sharding"] == "P('d', None)"
    assert result["momentum_sharding"] == ["P('d', None)"]  # state sharded like the leaf


def test_no_collective_inside_the_iteration(report):
    """3 and 8 Newton–Schulz steps compile to the same collectives: none per step."""
    ops = report["auto/polargrad_momentum"]["collectives"]
    assert ops["3"] == ops["8"]
    assert ops["3"].get("all-to-all", 0) >= 1  # whole matrices are moved to their device
