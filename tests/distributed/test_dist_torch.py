"""polarlinalg.torch under DistributedDataParallel and FSDP2 (gloo, CPU processes).

One spawned run per world size (2 and 4 processes) trains every case of
``dist_torch_worker.CASES`` under DDP and under FSDP2 and checks a distributed
checkpoint; the tests compare its results with the single-process optimizer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

import dist_torch_worker as worker  # noqa: E402

from polarlinalg.torch import PolarGrad  # noqa: E402

WORLDS = [2, 4]
TIMEOUT = 300


def _spawn(world: int, outdir) -> dict:
    """Run the worker in its own session; kill the whole session on a timeout."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [sys.executable, worker.__file__, str(world), str(outdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the {world}-process run did not finish in {TIMEOUT} s")
    if proc.returncode != 0:
        pytest.fail(f"the {world}-process run failed:\n{out.decode(errors='replace')[-5000:]}")
    return torch.load(outdir / "results.pt", weights_only=False)


@pytest.fixture(scope="module", params=WORLDS, ids=lambda w: f"{w}proc")
def run(request, tmp_path_factory):
    world = request.param
    return world, _spawn(world, tmp_path_factory.mktemp(f"dist{world}"))


@pytest.mark.parametrize("case", list(worker.CASES))
def test_ddp_and_fsdp2_match_single_process(run, case):
    world, results = run
    want = worker.train(case, world)
    start = worker.full_params(worker.make_model())
    for mode in ("ddp", "fsdp"):
        got = results[f"{mode}/{case}"]
        assert got.keys() == want.keys()
        for name in want:
            assert not torch.equal(want[name], start[name])  # every parameter was trained
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-5, msg=name)


def test_fsdp2_checkpoint_reloads_and_continues(run):
    _, results = run
    continued, reloaded = results["checkpoint/continued"], results["checkpoint/reloaded"]
    for name in continued:
        torch.testing.assert_close(reloaded[name], continued[name], rtol=0, atol=1e-7)
    assert results["checkpoint/momentum_placements"] == {"(Shard(dim=0),)"}


def test_distributed_option_is_validated_without_a_process_group():
    w = torch.nn.Parameter(torch.randn(4, 3))
    with pytest.raises(ValueError, match="distributed must be True or False"):
        PolarGrad([{"params": [w], "distributed": "yes"}], lr=0.1)
    opt = PolarGrad([{"params": [w], "distributed": False}], lr=0.1)
    w.grad = torch.randn(4, 3)
    opt.step()  # no process group: the single-process step
