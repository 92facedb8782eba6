"""DCP checkpoints of polarlinalg.torch optimizers under FSDP2, reloaded at other world sizes.

A 2-process FSDP2 run (gloo, CPU) trains each optimizer of
:data:`CASES` for ``BEFORE`` steps and saves model and optimizer state with
``torch.distributed.checkpoint``; the checkpoint is then loaded by a 1-rank FSDP2
run, by a 4-process FSDP2 run and by one process without a process group (a
plain model), each of which trains ``AFTER`` more steps.  Every run must end
where an uninterrupted single-process run of ``BEFORE + AFTER`` steps ends
(float64, 1e-9: only the gradient reduction's summation order differs).
"""

from __future__ import annotations

import pytest
from support import run_script

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

import dist_checkpoint_worker as worker  # noqa: E402
import dist_torch_worker as base  # noqa: E402

TIMEOUT = 300
# One xdist worker runs this module: the spawned runs are a module fixture.
pytestmark = [
    pytest.mark.xdist_group("dist_checkpoint"),
    # DCP's load without a process group says it assumes a single process
    pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning"),
]
CASES = ["polargrad_momentum", "muon", "shampoo", "soap", "normuon"]
GENERIC = {"shampoo", "soap", "normuon"}  # the owner of a matrix holds its whole state


def _spawn(phase: str, world: int, outdir) -> None:
    """Run one phase of the worker in its own session; kill the session on a timeout."""
    args = [worker.__file__, phase, str(world), str(outdir), *CASES]
    run_script(args, f"{world}-process {phase}", TIMEOUT)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Save at 2 ranks; load at 1 and at 4.  Returns the directory and each load's results."""
    outdir = tmp_path_factory.mktemp("dcp")
    _spawn("save", 2, outdir)
    loaded = {2: torch.load(outdir / "saved2.pt", weights_only=False)}
    for world in (1, 4):
        _spawn("load", world, outdir)
        loaded[world] = torch.load(outdir / f"loaded{world}.pt", weights_only=False)
    return outdir, loaded


@pytest.fixture(scope="module")
def uninterrupted():
    return {case: worker.uninterrupted(case) for case in CASES}


def _assert_matches(got, want):
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-9, msg=name)


@pytest.mark.parametrize("world", [1, 4])
@pytest.mark.parametrize("case", CASES)
def test_fsdp2_checkpoint_from_two_ranks_continues_at(checkpoints, uninterrupted, case, world):
    _, loaded = checkpoints
    _assert_matches(loaded[world][case], uninterrupted[case])


@pytest.mark.parametrize("case", CASES)
def test_state_after_resharding_to_four_ranks_is_held_once(checkpoints, case):
    """PolarGrad/Muon: rows on every rank; generic rules: each matrix's state on one rank."""
    _, loaded = checkpoints
    holders = loaded[4][f"{case}/holders"]
    assert holders
    for name, held in holders.items():
        if case in GENERIC:
            assert sorted(held) == ["", "", "", "whole"], name
        else:
            assert held == ["sharded"] * 4, name


@pytest.mark.parametrize("case", worker.FULL)
def test_full_state_dict_from_two_ranks_continues_at_four(checkpoints, uninterrupted, case):
    """``full_state_dict=True`` on rank 0 holds every matrix's state, also a generic rule's."""
    _, loaded = checkpoints
    _assert_matches(loaded[4][f"{case}/full"], uninterrupted[case])


def test_one_ranks_state_dict_of_a_generic_rule_is_refused_on_every_rank(checkpoints):
    """Under DDP rank 0's opt.state_dict() lacks the matrices rank 1 owns: no silent restart."""
    _, loaded = checkpoints
    message = loaded[2]["ddp/one_rank_state_dict"]
    assert "holds no optimizer state for it" in message
    assert "Checkpoints across world sizes" in message


@pytest.mark.parametrize(
    "case",
    CASES,
)
def test_fsdp2_checkpoint_loads_without_a_process_group(checkpoints, uninterrupted, case):
    """A plain model in one process (no process group) continues the 2-rank run."""
    outdir, _ = checkpoints
    model = base.make_model(seed=123)
    opts = base.optimizers(case, model)
    worker.load(model, opts, str(outdir / case))
    x, y = worker.data()
    base.run_steps(model, opts, x, y, worker.AFTER)
    _assert_matches(base.full_params(model), uninterrupted[case])


def test_the_optimizer_state_is_what_makes_the_runs_agree(checkpoints, uninterrupted):
    """The check can fail: the model alone, with a fresh optimizer, ends elsewhere."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    outdir, _ = checkpoints
    case = "shampoo"
    model = base.make_model(seed=123)
    opts = base.optimizers(case, model)
    state = {"model": get_model_state_dict(model)}
    dcp.load(state, checkpoint_id=str(outdir / case))
    set_model_state_dict(model, state["model"])
    x, y = worker.data()
    base.run_steps(model, opts, x, y, worker.AFTER)
    got, want = base.full_params(model), uninterrupted[case]
    assert max(float((got[k] - want[k]).abs().max()) for k in want) > 1e-4
