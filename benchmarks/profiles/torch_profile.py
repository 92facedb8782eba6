"""Where the time of the PyTorch misses of the performance issue goes, op by op.

Profiles, with ``torch.profiler`` on the CPU, the two PyTorch rows of the
performance targets that are ratios against another implementation:

- one optimizer step on GPT-2-small hidden matrices (per layer 768×2304,
  768×768, 768×3072, 3072×768; float32 parameters, fixed gradients):
  ``torch.optim.Muon`` (defaults), ``polarlinalg.torch.Muon`` (defaults) and
  ``polarlinalg.torch.PolarGrad`` configured as in ``polarlinalg bench``
  (momentum 0.95, Nesterov, weight decay 0.1, the same bfloat16 Newton–Schulz;
  ``check_finite=False``, as ``torch.optim.Muon`` checks nothing);
- ``polarlinalg.orthogonalize(a, method="polar_express")`` on square float32
  matrices against its floor, the products alone in a plain loop.

For each it prints the aten operators by self time (calls, ms per step or call,
share) and, from interleaved timing outside the profiler, the median ratio.
Run it on an otherwise idle machine::

    python benchmarks/profiles/torch_profile.py --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

import polarlinalg as pl


def _steppers(layers: int, shapes: list[tuple[int, int]] | None) -> dict[str, Callable[[], None]]:
    """The bench's own optimizer steps (``polarlinalg bench``'s Muon family), by name."""
    from polarlinalg.backends import available_backends
    from polarlinalg.bench.optimizers import _numpy_params, _torch_steppers, gpt2_shapes

    shapes = gpt2_shapes(layers) if shapes is None else shapes
    init = _numpy_params(shapes, 0, scale=True)
    grads = [_numpy_params(shapes, seed, scale=False) for seed in (1, 2)]
    steppers, _ = _torch_steppers(available_backends("torch")[0], init, grads)
    counter = iter(range(10**9))
    return {s.name: (lambda s=s: s.step(next(counter))) for s in steppers}


def _ops(fn: Callable[[], Any], calls: int) -> list[dict[str, Any]]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    rows = [
        {"op": e.key, "calls": e.count / calls, "ms": e.self_cpu_time_total / 1e3 / calls}
        for e in prof.key_averages()
        if e.self_cpu_time_total > 0
    ]
    total = sum(r["ms"] for r in rows)
    for r in rows:
        r["share"] = r["ms"] / total
    return sorted(rows, key=lambda r: -r["ms"])


def _ratios(fns: dict[str, Callable[[], Any]], rounds: int, ref: str) -> dict[str, Any]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {
        k: {
            "median_s": statistics.median(v),
            "ratio": statistics.median(a / b for a, b in zip(v, times[ref], strict=True)),
        }
        for k, v in times.items()
    }


def _floor(x: torch.Tensor, rows: list[tuple[float, float, float]]) -> Callable[[], Any]:
    def run() -> torch.Tensor:
        y = x
        for a, b, c in rows:
            g = y @ y.mT
            q = torch.addmm(g, g, g, beta=b, alpha=c)
            y = torch.addmm(y, q, y, beta=a)
        return y

    return run


def _print(title: str, rows: list[dict[str, Any]], limit: int) -> None:
    print(f"\n{title}")
    print(f"  {'op':34s} {'calls':>7s} {'ms':>9s} {'share':>6s}")
    for r in rows[:limit]:
        print(f"  {r['op'][:34]:34s} {r['calls']:7.1f} {r['ms']:9.3f} {r['share']:6.1%}")
    print(f"  {'total':34s} {'':7s} {sum(r['ms'] for r in rows):9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=4, help="GPT-2-small layers (default 4)")
    parser.add_argument(
        "--shapes", default=None, help="other matrices than GPT-2 small's, e.g. 64x128,128x64"
    )
    parser.add_argument("--sizes", default="256,512", help="polar_express sizes")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", default=None)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    shapes = None
    if args.shapes:
        shapes = [tuple(int(v) for v in item.split("x")) for item in args.shapes.split(",")]
    steppers = _steppers(args.layers, shapes)
    for fn in steppers.values():
        fn()
        fn()
    report["step"] = {"layers": args.layers, "ops": {}}
    for name, fn in steppers.items():
        rows = _ops(fn, 3)
        report["step"]["ops"][name] = rows
        _print(f"{name}: one step, {args.layers} layers (ms per step)", rows, args.top)
    report["step"]["timing"] = _ratios(steppers, args.rounds, "torch.optim.Muon")
    print("\nstep, interleaved medians:")
    for name, r in report["step"]["timing"].items():
        print(f"  {name:30s} {r['median_s'] * 1e3:9.1f} ms  {r['ratio']:.3f}x torch.optim.Muon")

    from polarlinalg._coefficients import apply_schedule, resolve_schedule

    report["polar_express"] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        a = torch.randn(n, n, generator=torch.Generator().manual_seed(n))
        ours = lambda a=a: pl.orthogonalize(a, method="polar_express")  # noqa: E731
        rows_ = apply_schedule(resolve_schedule("polar_express"), 5, 1.01)
        floor = _floor(a / a.norm(), [tuple(map(float, r)) for r in rows_])
        for fn in (ours, floor) * 3:
            fn()
        ops = _ops(ours, 20)
        _print(f"polar_express {n}x{n} float32 (ms per call)", ops, args.top)
        timing = _ratios({"polar_express": ours, "floor": floor}, args.rounds * 4, "floor")
        report["polar_express"][n] = {"ops": ops, "timing": timing}
        t = timing["polar_express"]
        print(f"  interleaved: {t['median_s'] * 1e3:.3f} ms, {t['ratio']:.3f}x its floor")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
