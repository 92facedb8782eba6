"""Gram Newton–Schulz on bfloat16 input on a CPU, beside ``polar_express``.

On CPUs ``method="gram_newton_schulz"`` computes a half-precision input in
float32 (float16 products are emulated there); this times both methods on
bfloat16 input, interleaved, medians of 7 calls.  Run on an idle machine::

    python benchmarks/profiles/gram_half.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import polarlinalg as pl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for shape in ((256, 1024), (1024, 4096)):
        a = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
        methods = ("gram_newton_schulz", "polar_express")
        fns = {m: (lambda m=m, a=a: pl.orthogonalize(a, method=m)) for m in methods}
        for fn in fns.values():
            fn()
            fn()
        times: dict[str, list[float]] = {m: [] for m in methods}
        for _ in range(7):
            for m, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[m].append(time.perf_counter() - start)
        cells = ", ".join(f"{m} {statistics.median(v) * 1e3:.1f} ms" for m, v in times.items())
        print(f"bfloat16 {shape[0]}x{shape[1]}: {cells}")


if __name__ == "__main__":
    main()
