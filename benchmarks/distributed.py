"""Step time of polarlinalg.torch optimizers versus the number of processes (CPU, gloo).

The parameter set has GPT-2 small's matrix shapes (12 layers of 768×2304,
768×768, 768×3072 and 3072×768, ``out × in``); embeddings and vectors are
left out, as they go to AdamW, which runs locally and costs the same on every
rank.  Gradients are random and identical on every rank, so the figures are the
optimizer step alone (no forward or backward pass):

* ``1 process``: the single-process optimizer, no process group;
* ``ddp``: plain tensors on every rank (what DistributedDataParallel leaves
  to the optimizer): owners orthogonalise, one all-gather returns the results;
* ``fsdp``: DTensor parameters sharded on dim 0 (what ``fully_shard`` leaves):
  two all-to-alls per step.

The share spent in communication is the time inside the collectives; a
barrier before each one measures apart the time spent waiting for slower
ranks (imbalance, or on a shared machine, other processes).  Each process
uses ``--threads`` threads.

Usage::

    nice -n 10 python benchmarks/distributed.py --worlds 1 2 4 --steps 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

LAYER = [(2304, 768), (768, 768), (3072, 768), (768, 3072)]  # attn qkv, attn proj, fc, mlp proj


def shapes(layers: int) -> list[tuple[int, int]]:
    return LAYER * layers


def make_optimizer(name: str, params):
    from polarlinalg.torch import Muon, PolarGrad

    if name == "muon":  # torch.optim.Muon's defaults: 5 Newton–Schulz steps in bfloat16
        return Muon(params, lr=0.02)
    if name == "polargrad":  # nuclear-norm scale, Polar Express in float32
        return PolarGrad(
            params, lr=1e-3, momentum=0.9, method="newton_schulz", coefficients="polar_express"
        )
    raise ValueError(f"unknown optimizer {name!r}")


class CommTimer:
    """Time the collectives the optimizer calls, apart from waiting for the other ranks.

    A barrier before each collective absorbs the wait for slower ranks
    (``wait``); the collective after it is the transfer (``seconds``).
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.wait = 0.0

    def install(self) -> None:
        barrier = dist.barrier
        for name in ("all_to_all_single", "all_gather", "all_reduce"):
            original = getattr(dist, name)

            def timed(*args, _original=original, **kwargs):
                start = time.perf_counter()
                barrier(group=kwargs.get("group"))
                ready = time.perf_counter()
                out = _original(*args, **kwargs)
                self.wait += ready - start
                self.seconds += time.perf_counter() - ready
                return out

            setattr(dist, name, timed)


def volume_bytes(mode: str, world: int, layers: int, element: int) -> float:
    """Bytes each rank receives per step (see docs/distributed.md)."""
    total = sum(m * n for m, n in shapes(layers))
    if world == 1:
        return 0.0
    if mode == "ddp":  # all-gather: every rank receives the others' results (≈ (W−1)/W of all)
        return total * (world - 1) / world * element
    # fsdp: a rank holds 1/W of each matrix; it receives the other rows of the matrices it
    # owns (≈ N/W of them) and, on the way back, its rows of the matrices others own
    return 2 * total / world * (world - 1) / world * element


def _params(mode: str, layers: int, world: int):
    gen = torch.Generator().manual_seed(0)
    full = [torch.randn(s, generator=gen) * 0.02 for s in shapes(layers)]
    grads = [torch.randn(s, generator=gen) for s in shapes(layers)]
    if mode != "fsdp":
        params = [torch.nn.Parameter(p) for p in full]
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        return params
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (world,))
    params = [torch.nn.Parameter(distribute_tensor(p, mesh, [Shard(0)])) for p in full]
    for p, g in zip(params, grads, strict=True):
        p.grad = distribute_tensor(g, mesh, [Shard(0)])
    return params


def measure(mode, world, rank, args) -> dict:
    torch.set_num_threads(args.threads)
    params = _params(mode, args.layers, world)
    opt = make_optimizer(args.optimizer, params)
    timer = CommTimer()
    opt.step()  # warm-up: state allocation, first-call overheads
    if world > 1:
        timer.install()
        dist.barrier()
    times, comm, wait = [], [], []
    for _ in range(args.steps):
        before, waited = timer.seconds, timer.wait
        start = time.perf_counter()
        opt.step()
        if world > 1:
            dist.barrier()
        times.append(time.perf_counter() - start)
        comm.append(timer.seconds - before)
        wait.append(timer.wait - waited)
    return {"step_s": times, "comm_s": comm, "wait_s": wait}


def _worker(rank, world, mode, store, args, out):
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=1800),
    )
    try:
        result = measure(mode, world, rank, args)
        gathered = [None] * world
        dist.all_gather_object(gathered, result)
        if rank == 0:
            with open(out, "w") as f:
                json.dump(gathered, f)
    finally:
        dist.destroy_process_group()


def run(mode, world, args) -> dict:
    if world == 1:
        per_rank = [measure(mode, 1, 0, args)]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "result.json")
            store = os.path.join(tmp, "store")
            mp.spawn(_worker, args=(world, mode, store, args, out), nprocs=world, join=True)
            with open(out) as f:
                per_rank = json.load(f)
    step = statistics.median(max(r["step_s"][i] for r in per_rank) for i in range(args.steps))
    comm = statistics.median(
        statistics.mean(r["comm_s"][i] for r in per_rank) for i in range(args.steps)
    )
    element = 4  # float32 payloads (Muon's momentum, hence M̃ and the direction, are float32)
    busy = [  # time outside collectives and waits, per rank: the spread shows the imbalance
        statistics.median(
            s - c - w for s, c, w in zip(r["step_s"], r["comm_s"], r["wait_s"], strict=True)
        )
        for r in per_rank
    ]
    wait = statistics.median(
        statistics.mean(r["wait_s"][i] for r in per_rank) for i in range(args.steps)
    )
    return {
        "mode": mode if world > 1 else "1 process",
        "world": world,
        "step_s": step,
        "comm_s": comm,
        "comm_share": comm / step,
        "wait_s": wait,
        "compute_s_min": min(busy),
        "compute_s_max": max(busy),
        "recv_mb_per_rank": volume_bytes(mode, world, args.layers, element) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--modes", nargs="+", default=["ddp", "fsdp"], choices=["ddp", "fsdp"])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--optimizer", default="muon", choices=["muon", "polargrad"])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    rows = []
    for world in args.worlds:
        for mode in args.modes if world > 1 else args.modes[:1]:
            row = run(mode, world, args)
            rows.append(row)
            print(
                f"{row['mode']:>9} {world} proc: step {row['step_s']:.3f} s, "
                f"communication {row['comm_s']:.3f} s ({100 * row['comm_share']:.0f} %), "
                f"waiting for other ranks {row['wait_s']:.2f} s, "
                f"compute per rank {row['compute_s_min']:.2f}-{row['compute_s_max']:.2f} s, "
                f"receives {row['recv_mb_per_rank']:.1f} MB/rank",
                flush=True,
            )
    meta = {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "args": vars(args),
        "command": " ".join(sys.argv),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"metadata": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
