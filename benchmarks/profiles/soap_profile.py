"""Where one SOAP period's time goes: an op-level profile of three SOAP implementations.

Builds ``pytorch_optimizer.SOAP``, ``heavyball.SOAP`` and ``polarlinalg.torch.SOAP``
on the hidden matrices of GPT-2-small layers exactly as the step benchmark does
(:func:`polarlinalg.bench.optimizers._kronecker_builders` with ``family="soap"``:
new bases every :data:`~polarlinalg.bench.optimizers.PRECONDITION_EVERY` steps for
all, the same parameters and the two alternating gradients), runs the untimed
first step and ``--warmup`` more steps (by default a whole period for heavyball,
whose ``torch.compile``-d refresh must be compiled before the profile, and two
for the others), then runs one period of ``PRECONDITION_EVERY`` steps under
:mod:`torch.profiler` (one refresh in it for every optimizer).  The first run
on a machine also compiles heavyball's kernels (inductor, max-autotune: a few
minutes; later runs take them from inductor's cache, about a minute and a
half in all on a 2-core Xeon).  Per optimizer it prints the ops by self CPU time (calls, ms,
share of the period), the matrix products by operand shapes, and a summary line:
the median step of the period (a step without refresh) and the mean (the
refresh amortized).  On a shared machine compare op counts and shares, not
absolute times.

Run from the repository root::

    nice -n 19 .venv/bin/python benchmarks/profiles/soap_profile.py --json soap.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from polarlinalg.bench.optimizers import (
    LAYER_SHAPES,
    PRECONDITION_EVERY,
    _kronecker_builders,
    _numpy_params,
)

_PRODUCTS = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm")


def _build(layers: int) -> tuple[dict[str, Any], list[list[torch.Tensor]]]:
    shapes = [s for _ in range(layers) for s in LAYER_SHAPES]
    init = _numpy_params(shapes, 0, scale=True)
    grads = [
        [torch.asarray(g) for g in _numpy_params(shapes, seed, scale=False)] for seed in (1, 2)
    ]
    runs = {}
    for name, build in _kronecker_builders("soap").items():
        params = [torch.nn.Parameter(torch.asarray(p).clone()) for p in init]
        runs[name] = (params, build(params))
    return runs, grads


def _step(params: list, opt: Any, grads: list, i: int) -> float:
    for p, g in zip(params, grads[i % 2], strict=True):
        p.grad = g
    start = time.perf_counter()
    opt.step()
    return time.perf_counter() - start


def _op_table(prof: Any, total_us: float, top: int) -> list[dict[str, Any]]:
    rows = [
        {
            "op": e.key,
            "calls": int(e.count),
            "self_ms": e.self_cpu_time_total / 1e3,
            "share": e.self_cpu_time_total / total_us if total_us else float("nan"),
        }
        for e in prof.key_averages()
        if e.self_cpu_time_total > 0
    ]
    rows.sort(key=lambda r: -r["self_ms"])
    head, rest = rows[:top], rows[top:]
    if rest:
        head.append(
            {
                "op": f"({len(rest)} other ops)",
                "calls": sum(r["calls"] for r in rest),
                "self_ms": sum(r["self_ms"] for r in rest),
                "share": sum(r["share"] for r in rest),
            }
        )
    return head


def _product_table(prof: Any, total_us: float) -> list[dict[str, Any]]:
    rows = [
        {
            "op": e.key,
            "shapes": [list(s) for s in e.input_shapes if s],
            "calls": int(e.count),
            "self_ms": e.self_cpu_time_total / 1e3,
            "share": e.self_cpu_time_total / total_us if total_us else float("nan"),
        }
        for e in prof.key_averages(group_by_input_shape=True)
        if e.key in _PRODUCTS
    ]
    rows.sort(key=lambda r: -r["self_ms"])
    return rows


def _print(name: str, record: dict[str, Any]) -> None:
    print(f"\n== {name}")
    print(f"   {'op':<44}{'calls':>7}{'self ms':>11}{'share':>8}")
    for r in record["ops"]:
        print(f"   {r['op'][:44]:<44}{r['calls']:>7}{r['self_ms']:>11.1f}{r['share']:>8.1%}")
    print(f"   {'total (profiled self CPU)':<44}{record['op_calls']:>7}{record['self_ms']:>11.1f}")
    print("   matrix products by operand shapes:")
    for r in record["products"]:
        shapes = " x ".join("x".join(map(str, s)) for s in r["shapes"])
        print(
            f"     {r['op']:<12}{shapes:<30}{r['calls']:>5}{r['self_ms']:>11.1f}{r['share']:>8.1%}"
        )
    print(
        f"   {record['products_calls']} products ({record['products_share']:.1%} of self CPU); "
        f"median step {1e3 * record['median_s']:.1f} ms, mean {1e3 * record['mean_s']:.1f} ms "
        f"over {len(record['steps_s'])} steps"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the profile; return (and print, and with ``--json`` write) the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (1)")
    parser.add_argument("--layers", type=int, default=1, help="GPT-2-small layers (1)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"steps after the first (default {PRECONDITION_EVERY} for heavyball, 2 otherwise)",
    )
    parser.add_argument("--top", type=int, default=14, help="ops listed per optimizer (14)")
    parser.add_argument("--only", default=None, help="profile only optimizers whose name has this")
    parser.add_argument("--json", metavar="OUT", default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.layers < 1 or (args.warmup is not None and args.warmup < 1):
        parser.error("--threads, --layers and --warmup must be at least 1")
    torch.set_num_threads(args.threads)
    runs, grads = _build(args.layers)
    if args.only:
        runs = {k: v for k, v in runs.items() if args.only in k}
    record: dict[str, Any] = {
        "threads": args.threads,
        "layers": args.layers,
        "shapes": [list(s) for s in LAYER_SHAPES],
        "period": PRECONDITION_EVERY,
        "warmup": args.warmup,
        "torch": torch.__version__,
        "optimizers": {},
    }
    with torch.no_grad():
        for name, (params, opt) in runs.items():
            warmup = args.warmup or (PRECONDITION_EVERY if "heavyball" in name else 2)
            for i in range(warmup + 1):  # the first step only initialises
                _step(params, opt, grads, i)
            start = warmup + 1
            steps = []
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                for i in range(start, start + PRECONDITION_EVERY):
                    steps.append(_step(params, opt, grads, i))
            total_us = sum(e.self_cpu_time_total for e in prof.key_averages())
            products = _product_table(prof, total_us)
            rec = {
                "warmup": warmup,
                "median_s": statistics.median(steps),
                "mean_s": float(np.mean(steps)),
                "steps_s": steps,
                "self_ms": total_us / 1e3,
                "op_calls": sum(int(e.count) for e in prof.key_averages()),
                "ops": _op_table(prof, total_us, args.top),
                "products": products,
                "products_calls": sum(r["calls"] for r in products),
                "products_share": sum(r["share"] for r in products),
            }
            record["optimizers"][name] = rec
            _print(name, rec)
    names = list(record["optimizers"])
    if names:
        base = record["optimizers"][names[0]]
        print("\nsummary (median: a step without refresh; mean: the period, refresh amortized)")
        for name in names:
            r = record["optimizers"][name]
            print(
                f"  {name:<28} median {1e3 * r['median_s']:8.1f} ms "
                f"(x{r['median_s'] / base['median_s']:.2f})  mean {1e3 * r['mean_s']:8.1f} ms "
                f"(x{r['mean_s'] / base['mean_s']:.2f})  products/period {r['products_calls']:>4} "
                f"({r['products_share']:.0%})"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
    return record


if __name__ == "__main__":
    main()
