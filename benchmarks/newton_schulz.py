"""Time the Newton–Schulz family against the alternatives and the matmul floor.

For each shape (wide ``k × N``; tall inputs are transposed by every method) this
measures, in one run on one backend and dtype:

* polarlinalg ``newton_schulz`` (muon rows), ``polar_express`` and
  ``gram_newton_schulz``, 5 steps;
* the alternative a user would pick: on PyTorch, ``torch.optim.Muon``'s own
  ``_zeropower_via_newtonschulz`` (it always computes in bfloat16, so it is
  timed only in bfloat16 rows) and a plain fused loop (``torch.addmm``, the
  Jordan-style code found in most Muon implementations) in the row's dtype;
* the floor: the bare matrix products of 5 plain steps (``G = XXᴴ``, ``G²``,
  ``(bG + cG²)X``) on preallocated inputs, with their FLOP count.

Each timing is the median of ``--repeats`` runs after a warm-up, inputs
rotated between runs.  Usage::

    python benchmarks/newton_schulz.py --backend torch --dtype float32
    python benchmarks/newton_schulz.py --backend numpy --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import polarlinalg as pl
from polarlinalg.backends import Backend, available_backends
from polarlinalg.testing import random_matrix

SHAPES = [(512, 512), (1024, 1024), (512, 2048), (256, 2048), (512, 4096)]
STEPS = 5


def _time(fn: Callable[[Any], Any], inputs: list[Any], backend: Backend, repeats: int) -> float:
    fn(inputs[0])
    backend.synchronize()
    samples = []
    for i in range(repeats):
        x = inputs[i % len(inputs)]
        start = time.perf_counter()
        fn(x)
        backend.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _floor(backend: Backend, x: Any) -> Callable[[Any], Any]:
    xp = backend.xp
    g = x @ xp.matrix_transpose(x)

    def products(_: Any) -> None:
        for _ in range(STEPS):
            gx = x @ xp.matrix_transpose(x)
            gg = g @ g
            _ = gg @ x
        return gx

    return products


def _torch_alternatives(dtype: str) -> dict[str, Callable[[Any], Any]]:
    import torch

    a, b, c = pl.COEFFICIENTS["muon"][0]

    def fused_loop(g: Any) -> Any:
        x = g / g.norm().clamp(min=1e-7)
        for _ in range(STEPS):
            gram = x @ x.T
            update = torch.addmm(gram, gram, gram, beta=b, alpha=c)
            x = torch.addmm(x, update, x, beta=a)
        return x

    out = {"plain fused NS loop": fused_loop}
    if dtype == "bfloat16":
        from torch.optim._muon import _zeropower_via_newtonschulz

        out["torch.optim.Muon NS"] = lambda g: _zeropower_via_newtonschulz(
            g, (a, b, c), STEPS, 1e-7
        )
    return out


def run(backend: Backend, dtype: str, repeats: int, shapes: list[tuple[int, int]]) -> list[dict]:
    """Time every candidate on every shape; return one record per (shape, candidate)."""
    records = []
    for k, n in shapes:
        inputs = [backend.asarray(random_matrix((k, n), cond=1e3, seed=s), dtype) for s in range(3)]
        candidates: dict[str, Callable[[Any], Any]] = {
            "newton_schulz (muon)": lambda g: pl.orthogonalize(
                g, method="newton_schulz", check_finite=False
            ),
            "polar_express": lambda g: pl.orthogonalize(g, check_finite=False),
            "gram_newton_schulz": lambda g: pl.orthogonalize(
                g, method="gram_newton_schulz", check_finite=False
            ),
        }
        if backend.name.startswith("torch"):
            candidates.update(_torch_alternatives(dtype))
        floor = _time(_floor(backend, inputs[0]), inputs, backend, repeats)
        flops = STEPS * (2 * 2 * k * k * n + 2 * k**3)
        reference = None
        for name, fn in candidates.items():
            seconds = _time(fn, inputs, backend, repeats)
            if name == "plain fused NS loop":
                reference = seconds
            records.append(
                dict(
                    backend=backend.name,
                    dtype=dtype,
                    shape=f"{k}x{n}",
                    candidate=name,
                    seconds=seconds,
                    floor_seconds=floor,
                    time_over_floor=seconds / floor,
                    floor_gflops=flops / floor / 1e9,
                )
            )
        for r in records:
            if r["shape"] == f"{k}x{n}" and reference is not None:
                r["time_over_plain_loop"] = r["seconds"] / reference
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="two small shapes, 3 repeats")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    (backend,) = available_backends(args.backend)
    shapes = SHAPES[:2] if args.quick else SHAPES
    records = run(backend, args.dtype, 3 if args.quick else args.repeats, shapes)
    print(f"# {platform.processor() or platform.machine()}, {backend.name} {args.dtype}")
    print(f"{'shape':>10}  {'candidate':<24} {'ms':>9} {'×floor':>7} {'×plain':>7}  floor GFLOP/s")
    for r in records:
        plain = r.get("time_over_plain_loop")
        plain_text = f"{plain:7.2f}" if plain is not None else "      —"
        print(
            f"{r['shape']:>10}  {r['candidate']:<24} {1e3 * r['seconds']:9.1f} "
            f"{r['time_over_floor']:7.2f} {plain_text}  {r['floor_gflops']:.1f}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(records, fh, indent=2)


if __name__ == "__main__":
    main()
