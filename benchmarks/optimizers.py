"""Time one optimizer step of ``polarlinalg.torch.Muon`` against ``torch.optim.Muon``.

The parameters are the hidden matrices of a GPT-2-small-shaped model: per layer
one 768×768, one 768×3072, one 3072×768 and one 768×2304 float32 matrix, for
``--layers`` layers (12 in GPT-2 small), on one device.  Each optimizer gets
its own copy of the same parameters and the same random gradients, and its
default hyper-parameters (both compute Newton–Schulz in bfloat16).  In one
run this measures:

* ``torch.optim.Muon``, the reference;
* ``polarlinalg.torch.Muon`` (``method="newton_schulz"``, Jordan's
  coefficients: the same update), and with ``--polar-express`` also
  ``method="polar_express"``;
* the floor: only the bfloat16 matrix products the Newton–Schulz steps need,
  5 steps × 3 products (``G = XXᵀ``, ``G·G``, ``Q·X``) on every matrix in its
  wide orientation, batched per parameter shape (``torch.bmm`` on
  preallocated inputs), with its FLOP count.

Each step is timed separately (``torch.cuda.synchronize`` on CUDA); after
``--warmup`` untimed steps, the candidates are timed in interleaved rounds
(the order alternating between rounds), and the median of ``--repeats`` is
reported with its ratio to ``torch.optim.Muon`` and to the floor.  The
process CPU time over the wall-clock time of the timed steps is printed beside
them (``--device cpu``): on an otherwise idle CPU it is close to the number
of threads, and a lower figure means other work shared the cores and the
timings are not trustworthy.  The update of the first step is compared with
``torch.optim.Muon``'s (relative Frobenius difference over all matrices:
bfloat16 rounding gives about 1e-2 for the same method; ``polar_express`` is
a different polynomial).  Usage::

    python benchmarks/optimizers.py --device cpu --layers 12 --repeats 7
    python benchmarks/optimizers.py --device cuda --polar-express --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch

import polarlinalg
import polarlinalg.torch as pltorch

LAYER_SHAPES = [(768, 768), (768, 3072), (3072, 768), (768, 2304)]
NS_STEPS = 5


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_params(layers: int, device: torch.device, seed: int = 0) -> list[torch.Tensor]:
    """Return the float32 hidden matrices of ``layers`` GPT-2-small layers."""
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(shape, generator=gen) * shape[1] ** -0.5).to(device)
        for _ in range(layers)
        for shape in LAYER_SHAPES
    ]


def make_grads(params: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=gen).to(p.device) for p in params]


class Candidate:
    """One optimizer over its own copy of the parameters."""

    def __init__(self, name: str, build: Callable[[list], torch.optim.Optimizer], init: list):
        self.name = name
        self.params = [torch.nn.Parameter(p.clone()) for p in init]
        self.opt = build(self.params)
        self.samples: list[float] = []
        self.cpu: list[float] = []

    def set_grads(self, grads: list[torch.Tensor]) -> None:
        for p, g in zip(self.params, grads, strict=True):
            p.grad = g

    def step(self, device: torch.device) -> tuple[float, float]:
        """Return the wall-clock and the process CPU seconds of one step."""
        _sync(device)
        cpu, start = time.process_time(), time.perf_counter()
        self.opt.step()
        _sync(device)
        return time.perf_counter() - start, time.process_time() - cpu


def floor_fn(params: list[torch.Tensor]) -> tuple[Callable[[], None], float]:
    """Return the floor (bare bf16 products of 5 NS steps, batched per shape) and its flops."""
    stacks: dict[tuple[int, int], list[torch.Tensor]] = {}
    for p in params:
        stacks.setdefault(tuple(p.shape), []).append(p)
    inputs = []
    flops = 0.0
    for mats in stacks.values():
        x = torch.stack([m if m.shape[0] <= m.shape[1] else m.mT for m in mats])
        x = (x / x.norm(dim=(-2, -1), keepdim=True)).to(torch.bfloat16).contiguous()
        gram = x @ x.mT
        b, k, n = x.shape
        flops += b * NS_STEPS * (2 * 2 * k * k * n + 2 * k**3)
        inputs.append((x, gram))

    def products() -> None:
        for x, gram in inputs:
            for _ in range(NS_STEPS):
                torch.bmm(x, x.mT)
                torch.bmm(gram, gram)
                torch.bmm(gram, x)

    return products, flops


def _time_floor(fn: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _update_difference(ours: Candidate, ref: Candidate, init: list[torch.Tensor]) -> float:
    num = den = 0.0
    for p, q, x in zip(ours.params, ref.params, init, strict=True):
        d_ours, d_ref = (p.detach() - x).double(), (q.detach() - x).double()
        num += float((d_ours - d_ref).square().sum())
        den += float(d_ref.square().sum())
    return (num / den) ** 0.5


def run(device: torch.device, layers: int, repeats: int, warmup: int, polar_express: bool) -> dict:
    """Time every candidate and the floor; return the records and the first-step agreement."""
    init = make_params(layers, device)
    grads = [make_grads(init, seed) for seed in (1, 2)]
    builders: dict[str, Callable[[list], torch.optim.Optimizer]] = {
        "torch.optim.Muon": lambda ps: torch.optim.Muon(ps),
        "polarlinalg.torch.Muon": lambda ps: pltorch.Muon(ps),
    }
    if polar_express:
        builders["polarlinalg.torch.Muon (polar_express)"] = lambda ps: pltorch.Muon(
            ps, method="polar_express"
        )
    candidates = [Candidate(name, build, init) for name, build in builders.items()]
    ref = candidates[0]

    # first step from the same state: how close are the updates?
    for c in candidates:
        c.set_grads(grads[0])
        c.step(device)
    agreement = {c.name: _update_difference(c, ref, init) for c in candidates[1:]}

    for i in range(warmup - 1 + repeats):
        order = candidates if i % 2 == 0 else candidates[::-1]
        for c in order:
            c.set_grads(grads[i % 2])
            seconds, cpu = c.step(device)
            if i >= warmup - 1:
                c.samples.append(seconds)
                c.cpu.append(cpu)

    floor, flops = floor_fn(init)
    floor_seconds = _time_floor(floor, device, warmup, repeats)
    reference = statistics.median(ref.samples)
    records = []
    for c in candidates:
        seconds = statistics.median(c.samples)
        records.append(
            dict(
                candidate=c.name,
                seconds=seconds,
                min_seconds=min(c.samples),
                max_seconds=max(c.samples),
                ratio_to_torch=seconds / reference,
                ratio_to_floor=seconds / floor_seconds,
                cpu_over_wall=sum(c.cpu) / sum(c.samples),
                update_difference=agreement.get(c.name),
            )
        )
    records.append(
        dict(
            candidate="floor: bf16 NS products",
            seconds=floor_seconds,
            ratio_to_torch=floor_seconds / reference,
            ratio_to_floor=1.0,
            floor_gflops=flops / floor_seconds / 1e9,
            floor_flops=flops,
        )
    )
    return dict(
        device=str(device),
        device_name=_device_name(device),
        layers=layers,
        matrices=len(init),
        repeats=repeats,
        warmup=warmup,
        python=platform.python_version(),
        torch=torch.__version__,
        polarlinalg=polarlinalg.__version__,
        threads=torch.get_num_threads(),
        records=records,
    )


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--layers", type=int, default=12, help="GPT-2 small has 12")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per optimizer")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (≥ 1)")
    parser.add_argument(
        "--polar-express", action="store_true", help='also time Muon(method="polar_express")'
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.layers < 1 or args.repeats < 1 or args.warmup < 1:
        parser.error("--layers, --repeats and --warmup must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device")
    result = run(
        torch.device(args.device), args.layers, args.repeats, args.warmup, args.polar_express
    )
    print(
        f"# {result['device_name']} ({result['device']}, {result['threads']} threads), "
        f"Python {result['python']}, torch {result['torch']}, "
        f"polarlinalg {result['polarlinalg']}"
    )
    print(
        f"# {result['layers']} layers, {result['matrices']} float32 matrices, "
        f"median of {result['repeats']} steps after {result['warmup']} warm-up step(s)"
    )
    print(
        f"{'candidate':<40} {'ms/step':>9} {'min–max ms':>17} {'×torch':>7} {'×floor':>7} "
        f"{'CPU/wall':>8}  Δupdate"
    )
    for r in result["records"]:
        spread = (
            f"{1e3 * r['min_seconds']:.0f}–{1e3 * r['max_seconds']:.0f}"
            if "min_seconds" in r
            else f"{r['floor_gflops']:.0f} GFLOP/s"
        )
        diff = r.get("update_difference")
        usage = r.get("cpu_over_wall")
        print(
            f"{r['candidate']:<40} {1e3 * r['seconds']:9.1f} {spread:>17} "
            f"{r['ratio_to_torch']:7.3f} {r['ratio_to_floor']:7.2f} "
            f"{'—' if usage is None else f'{usage:.2f}':>8}  "
            f"{'—' if diff is None else f'{diff:.1e}'}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
