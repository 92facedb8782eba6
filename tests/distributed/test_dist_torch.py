"""polarlinalg.torch under DistributedDataParallel and FSDP2 (gloo, CPU processes).

One spawned run of 2 processes trains every case of ``dist_torch_worker.CASES``
under DDP and under FSDP2 and checks a distributed checkpoint; one run of 4
processes trains one case.  The tests compare the results with the
single-process optimizer.
"""

from __future__ import annotations

import pytest
from support import run_script

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

import dist_torch_worker as worker  # noqa: E402

from polarlinalg.torch import PolarGrad  # noqa: E402

TIMEOUT = 300
# One worker runs this module under pytest-xdist (--dist loadgroup): the spawned run is a
# module fixture, and split across workers it would run once per worker.
pytestmark = pytest.mark.xdist_group("dist_torch")
FOUR_PROCESS_CASE = "polargrad_momentum"


def _spawn(world: int, outdir, cases=()) -> dict:
    """Run the worker in its own session; kill the whole session on a timeout."""
    run_script([worker.__file__, str(world), str(outdir), *cases], f"{world}-process run", TIMEOUT)
    return torch.load(outdir / "results.pt", weights_only=False)


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    return _spawn(2, tmp_path_factory.mktemp("dist2"))


@pytest.fixture(scope="module")
def run4(tmp_path_factory):
    return _spawn(4, tmp_path_factory.mktemp("dist4"), [FOUR_PROCESS_CASE])


def _check(results, case, world):
    want = worker.train(case, world)
    start = worker.full_params(worker.make_model())
    for mode in ("ddp", "fsdp"):
        got = results[f"{mode}/{case}"]
        assert got.keys() == want.keys()
        for name in want:
            assert not torch.equal(want[name], start[name])  # every parameter was trained
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-9, msg=name)


@pytest.mark.parametrize("case", list(worker.CASES))
def test_two_processes_match_single_process(run2, case):
    _check(run2, case, 2)


def test_four_processes_match_single_process(run4):
    _check(run4, FOUR_PROCESS_CASE, 4)


def test_fsdp2_checkpoint_reloads_and_continues(run2):
    results = run2
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
