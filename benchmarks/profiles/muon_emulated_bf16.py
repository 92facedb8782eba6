"""One Muon step on one GPT-2-small layer: ``polarlinalg.torch.Muon`` against ``torch.optim.Muon``.

For CPUs where PyTorch emulates bfloat16 products (no bfloat16 in oneDNN, e.g.
AVX2-only x86): there ``torch.optim.Muon`` (always bfloat16) pays the emulation,
and ``polarlinalg.torch.Muon`` computes in float32 by default.  Prints a JSON
record: the CPU, oneDNN's bfloat16 answer, the step times (ours: median of 5
after a warm-up; torch's: two single steps, each over a minute on such a CPU)
and the relative difference of the first updates.  Two threads, as the bench.
"""

from __future__ import annotations

import json
import platform
import time

import torch

import polarlinalg.torch as pl
from polarlinalg import _dtypes

SHAPES = [(2304, 768), (768, 768), (3072, 768), (768, 3072)]  # (out, in) of one layer


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=gen) * 0.02 for s in SHAPES]
    grads = [torch.randn(s, generator=gen) for s in SHAPES]

    def make(build):
        params = [torch.nn.Parameter(x.clone()) for x in init]
        return params, build(params)

    def step(params, opt) -> float:
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        start = time.perf_counter()
        opt.step()
        return time.perf_counter() - start

    out = {
        "cpu": _cpu(),
        "bfloat16_matmul": _dtypes._torch_cpu_bfloat16_matmul(),
        "torch": torch.__version__,
    }
    ours, opt = make(lambda ps: pl.Muon(ps, lr=0.02))
    step(ours, opt)
    out["polarlinalg.torch.Muon_s"] = sorted(step(ours, opt) for _ in range(5))[2]
    a, opt_a = make(lambda ps: pl.Muon(ps, lr=0.02))
    b, opt_b = make(lambda ps: torch.optim.Muon(ps, lr=0.02))
    step(a, opt_a)
    out["torch.optim.Muon_first_s"] = step(b, opt_b)
    with torch.no_grad():
        num = sum(float((x - y).double().norm() ** 2) for x, y in zip(a, b, strict=True))
        den = sum(float((y - i).double().norm() ** 2) for y, i in zip(b, init, strict=True))
    out["first_update_relative_difference"] = (num / den) ** 0.5
    out["torch.optim.Muon_second_s"] = step(b, opt_b)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
