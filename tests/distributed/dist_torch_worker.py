"""Spawned by test_dist_torch.py: train a small model under DDP and FSDP2 on gloo.

``python dist_torch_worker.py WORLD OUTDIR [CASE ...]`` starts WORLD processes
(one process group shared by every check, initialised through a file, so no
port is needed), runs the given cases of :data:`CASES` (default: all, and then
also checks that an FSDP2 distributed checkpoint reloads and continues
identically) under DDP and FSDP2, and has rank 0 write ``OUTDIR/results.pt``:
the final full parameters of each run.  The
single-process reference (:func:`train`) is computed by the test itself.
"""

from __future__ import annotations

import datetime
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from polarlinalg.torch import SOAP, Muon, NorMuon, PolarGrad, Shampoo

STEPS = 5
# float64 throughout: a distributed run sums the gradient in another order than the
# single process, and a polar factor amplifies that rounding by up to 1/gap of the singular
# values (Newton–Schulz's first steps by ~3.4 each), so in float32 a 1e-7 difference became
# 1e-5 on one BLAS setting (MKL_CBWR=AVX2) and not on others.  In float64 the same
# amplification stays far below the tolerance on every BLAS.
DTYPE = torch.float64
BATCH = 32  # rows per rank: full-rank gradients (a polar factor of a rank-deficient
# matrix is not determined on its null space, so rounding would decide it)

CASES = {
    "polargrad_momentum": lambda params: PolarGrad(
        params, lr=0.02, momentum=0.9, weight_decay=0.1, adamw_lr=0.01
    ),
    "polargrad_polar_first_batched": lambda params: PolarGrad(
        params, lr=0.02, momentum=0.8, polar_first=True, nesterov=True, batch=True
    ),
    "polargrad_plain_shape_scale": lambda params: PolarGrad(
        params, lr=0.05, method="newton_schulz", steps=8, scale="shape"
    ),
    "muon": lambda params: [
        Muon(
            [
                {"params": [p for p in params if p.ndim == 2]},
                {"params": [p for p in params if p.ndim > 2], "flatten": True},  # (6, 12)
            ],
            lr=0.05,
            compute_dtype=torch.float64,
        ),
        torch.optim.AdamW([p for p in params if p.ndim < 2], lr=0.01),
    ],
    # the generic rules: the owner holds a matrix's state and runs the rule on it whole
    "shampoo": lambda params: Shampoo(
        params,
        lr=0.01,
        betas=(0.9, 0.99),
        eps=1e-6,
        weight_decay=0.05,
        precondition_every=2,
        max_preconditioner_dim=16,  # blocks of the 32-wide layers
    ),
    # modes up to 6 rotated: every rotated mode's statistic has full rank (a rank-deficient
    # one's eigenbasis is arbitrary on its null space, so rounding would decide it)
    "soap": lambda params: SOAP(params, lr=0.01, precondition_frequency=2, max_precondition_dim=6),
    "normuon": lambda params: NorMuon(
        params, lr=0.01, weight_decay=0.1, compute_dtype=torch.float64
    ),
}


class Net(nn.Module):
    """Same-shape matrices, rows not divisible by 2 or 4, a shard-less rank, a matrix batch."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(12, 32)
        self.h1 = nn.Linear(32, 32)
        self.h2 = nn.Linear(32, 32)
        self.out = nn.Linear(32, 7)  # 7 rows: uneven shards
        self.tiny = nn.Parameter(torch.randn(3, 7) * 0.3)  # 3 rows: one rank of 4 holds none
        self.mix = nn.Parameter(torch.randn(6, 4, 3) * 0.3)  # a batch of 6 matrices
        self.register_buffer("proj", torch.randn(18, 3) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(x))
        h = torch.tanh(self.h1(h)) + torch.tanh(self.h2(h))
        mixed = torch.einsum("bki,kij->bkj", h[:, :24].reshape(-1, 6, 4), self.mix)
        return torch.tanh(self.out(h)) @ self.tiny.T + mixed.reshape(-1, 18) @ self.proj


def data(world: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(world * BATCH, 12, generator=gen, dtype=DTYPE)
    return x, torch.randn(world * BATCH, 3, generator=gen, dtype=DTYPE)


def make_model(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net().to(DTYPE)


def optimizers(case: str, model: nn.Module) -> list[torch.optim.Optimizer]:
    made = CASES[case](list(model.parameters()))
    return made if isinstance(made, list) else [made]


def run_steps(model, opts, x, y, steps) -> None:
    for _ in range(steps):
        loss = (model(x) - y).square().mean()
        loss.backward()
        for opt in opts:
            opt.step()
            opt.zero_grad()


def full_params(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in model.named_parameters():
        value = p.full_tensor() if hasattr(p, "full_tensor") else p
        out[name.removeprefix("module.")] = value.detach().clone()
    return out


def train(case: str, world: int) -> dict[str, torch.Tensor]:
    """The single-process reference: the whole batch of every rank at once."""
    model = make_model()
    x, y = data(world)
    run_steps(model, optimizers(case, model), x, y, STEPS)
    return full_params(model)


def _fsdp(model: nn.Module) -> nn.Module:
    from torch.distributed.fsdp import fully_shard

    for name in ("h1", "h2"):
        fully_shard(getattr(model, name))
    fully_shard(model)
    return model


def _run(rank: int, world: int, outdir: str, cases: list[str]) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"file://{os.path.join(outdir, 'store')}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        x, y = data(world)
        x, y = x[rank * BATCH : (rank + 1) * BATCH], y[rank * BATCH : (rank + 1) * BATCH]
        results = {}
        for case in cases:
            model = nn.parallel.DistributedDataParallel(make_model())
            run_steps(model, optimizers(case, model), x, y, STEPS)
            results[f"ddp/{case}"] = full_params(model)
            model = _fsdp(make_model())
            run_steps(model, optimizers(case, model), x, y, STEPS)
            results[f"fsdp/{case}"] = full_params(model)
        if cases == list(CASES):
            results.update(_checkpoint(x, y, outdir))
        if rank == 0:
            torch.save(results, os.path.join(outdir, "results.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _checkpoint(x, y, outdir) -> dict[str, dict[str, torch.Tensor]]:
    """Save under FSDP2 after 3 steps; continuing and reloading-then-continuing agree."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    case = "polargrad_momentum"
    path = os.path.join(outdir, "checkpoint")
    model = _fsdp(make_model())
    (opt,) = optimizers(case, model)
    run_steps(model, [opt], x, y, 3)
    model_sd, optim_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=path)
    run_steps(model, [opt], x, y, 2)
    continued = full_params(model)

    model = _fsdp(make_model(seed=123))  # other weights: the checkpoint must replace them
    (opt,) = optimizers(case, model)
    model_sd, optim_sd = get_state_dict(model, opt)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    sharded = [v for v in opt.state.values() if "momentum_buffer" in v]
    placements = {str(getattr(v["momentum_buffer"], "placements", "plain")) for v in sharded}
    run_steps(model, [opt], x, y, 2)
    return {
        "checkpoint/continued": continued,
        "checkpoint/reloaded": full_params(model),
        "checkpoint/momentum_placements": placements,
    }


def main() -> None:
    world, outdir = int(sys.argv[1]), sys.argv[2]
    cases = sys.argv[3:] or list(CASES)
    unknown = set(cases) - set(CASES)
    if unknown:
        raise SystemExit(f"unknown cases {sorted(unknown)}; choose from {list(CASES)}")
    mp.spawn(_run, args=(world, outdir, cases), nprocs=world, join=True)


if __name__ == "__main__":
    main()
