"""Spawned by test_dist_checkpoint.py: DCP checkpoints of FSDP2 runs across world sizes.

``python dist_checkpoint_worker.py save WORLD OUTDIR CASE ...`` trains each case of
``dist_torch_worker.CASES`` for :data:`BEFORE` steps under FSDP2 on WORLD gloo
processes and saves model and optimizer state with ``torch.distributed.checkpoint``
to ``OUTDIR/<case>``.  ``... load WORLD OUTDIR CASE ...`` builds the model and the
optimizers again (other initial weights), loads each checkpoint, trains
:data:`AFTER` more steps and has rank 0 write the full parameters to
``OUTDIR/loaded<WORLD>.pt``.  WORLD 1 runs in this process, on a 1-rank group.
Every world size trains on the same global batch (:data:`ROWS` rows split evenly
over the ranks), so each run computes the same gradients as one process would.
"""

from __future__ import annotations

import datetime
import os
import sys

import dist_torch_worker as base  # this script's folder is on sys.path
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

BEFORE, AFTER = 3, 2
# full state dicts (gathered on rank 0): PolarGrad's reshards; a generic rule's lacks the
# state of the matrices rank 0 did not own, which the next step must refuse
FULL = ("polargrad_momentum", "shampoo")
ROWS = 64  # the global batch: full-rank gradients, divisible by 1, 2 and 4 ranks


def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(ROWS, 12, generator=gen, dtype=base.DTYPE)
    return x, torch.randn(ROWS, 3, generator=gen, dtype=base.DTYPE)


def uninterrupted(case: str) -> dict[str, torch.Tensor]:
    """The single-process reference: BEFORE + AFTER steps on the whole batch."""
    model = base.make_model()
    x, y = data()
    base.run_steps(model, base.optimizers(case, model), x, y, BEFORE + AFTER)
    return base.full_params(model)


def state_dicts(model: nn.Module, opts: list[torch.optim.Optimizer]) -> dict[str, object]:
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_sd, optim_sd = get_state_dict(model, opts)
    return {"model": model_sd, "optim": optim_sd}


def load(model: nn.Module, opts: list[torch.optim.Optimizer], path: str) -> None:
    """Load the checkpoint at ``path`` into ``model`` and ``opts`` (any world size)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_state_dict

    state = state_dicts(model, opts)
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, opts, model_state_dict=state["model"], optim_state_dict=state["optim"])


def _holders(model: nn.Module, opts: list[torch.optim.Optimizer]) -> dict[str, list[str]]:
    """Return, for each matrix parameter, how each rank holds its state beyond ``step``.

    ``"sharded"``: DTensors (a share of the rows on every rank); ``"whole"``: plain
    tensors (the owner of a matrix under a generic rule); ``""``: nothing.
    """
    mine = {}
    for name, p in model.named_parameters():
        if p.ndim < 2:
            continue
        state = next((opt.state[p] for opt in opts if p in opt.state), {})
        values = [v for k, v in state.items() if k != "step"]
        if not values:
            mine[name] = ""
        elif all(type(v).__name__ == "DTensor" for v in values):
            mine[name] = "sharded"
        else:
            mine[name] = "whole"
    everyone: list[dict[str, str]] = [{} for _ in range(dist.get_world_size())]
    dist.all_gather_object(everyone, mine)
    return {name: [held[name] for held in everyone] for name in mine}


def _save_full(model: nn.Module, opts: list[torch.optim.Optimizer], path: str) -> None:
    """Gather a full state dict on rank 0 (``full_state_dict=True``) and save it there."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_sd, optim_sd = get_state_dict(model, opts, options=options)
    if dist.get_rank() == 0:
        torch.save({"model": model_sd, "optim": optim_sd}, path)


def _continue_full(case: str, x, y, path: str) -> dict[str, torch.Tensor] | str:
    """Load the full state dict on every rank and continue; or return the error it raises."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    model = base._fsdp(base.make_model(seed=123))
    opts = base.optimizers(case, model)
    full = torch.load(path, weights_only=False)
    set_state_dict(
        model,
        opts,
        model_state_dict=full["model"],
        optim_state_dict=full["optim"],
        options=StateDictOptions(full_state_dict=True),
    )
    try:
        base.run_steps(model, opts, x, y, AFTER)
    except RuntimeError as error:
        return str(error)
    return base.full_params(model)


def _one_rank_state_dict(case: str, x, y) -> str:
    """Under DDP, load rank 0's ``opt.state_dict()`` on every rank: each rank must refuse."""
    model = nn.parallel.DistributedDataParallel(base.make_model())
    (opt,) = base.optimizers(case, model)
    base.run_steps(model, [opt], x, y, 2)
    saved = [opt.state_dict() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(saved, src=0)
    (opt,) = base.optimizers(case, model)
    opt.load_state_dict(saved[0])
    try:
        base.run_steps(model, [opt], x, y, 1)
    except RuntimeError as error:
        return str(error)
    return "no error"


def _run(rank: int, world: int, phase: str, outdir: str, cases: list[str]) -> None:
    import torch.distributed.checkpoint as dcp

    dist.init_process_group(
        "gloo",
        init_method=f"file://{os.path.join(outdir, f'store-{phase}{world}')}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=40),
    )
    try:
        x, y = data()
        rows = ROWS // world
        x, y = x[rank * rows : (rank + 1) * rows], y[rank * rows : (rank + 1) * rows]
        results = {}
        for case in cases:
            path = os.path.join(outdir, case)
            if phase == "save":
                model = base._fsdp(base.make_model())
                opts = base.optimizers(case, model)
                base.run_steps(model, opts, x, y, BEFORE)
                dcp.save(state_dicts(model, opts), checkpoint_id=path)
                if case in FULL:
                    _save_full(model, opts, f"{path}.full.pt")
                if case == "shampoo":
                    results["ddp/one_rank_state_dict"] = _one_rank_state_dict(case, x, y)
            else:
                model = base._fsdp(base.make_model(seed=123))
                opts = base.optimizers(case, model)
                load(model, opts, path)
                base.run_steps(model, opts, x, y, AFTER)
                results[case] = base.full_params(model)
                results[f"{case}/holders"] = _holders(model, opts)
                if case in FULL and world > 1:
                    results[f"{case}/full"] = _continue_full(case, x, y, f"{path}.full.pt")
        if rank == 0:
            name = f"loaded{world}.pt" if phase == "load" else f"saved{world}.pt"
            torch.save(results, os.path.join(outdir, name))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def main() -> None:
    phase, world, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cases = sys.argv[4:] or list(base.CASES)
    if phase not in ("save", "load"):
        raise SystemExit(f"phase must be 'save' or 'load'; got {phase!r}")
    unknown = set(cases) - set(base.CASES)
    if unknown:
        raise SystemExit(f"unknown cases {sorted(unknown)}; choose from {list(base.CASES)}")
    store = os.path.join(outdir, f"store-{phase}{world}")
    if os.path.exists(store):  # a file store must start empty
        os.remove(store)
    if world == 1:
        _run(0, 1, phase, outdir, cases)
    else:
        mp.spawn(_run, args=(world, phase, outdir, cases), nprocs=world, join=True)


if __name__ == "__main__":
    main()
