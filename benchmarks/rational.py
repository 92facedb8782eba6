"""Time the accurate methods (QDWH, ZOLO-PD, Newton) against what a user would pick instead.

In one run, on one backend, square matrices:

* JAX (jitted, CPU or GPU): polarlinalg ``polar(method="qdwh")`` against
  ``jax.scipy.linalg.polar(method="qdwh")`` on Gaussian inputs (both with the
  static ``ℓ = ε`` schedule), and on well-conditioned inputs (κ = 10), where
  polarlinalg is also run with ``lower=0.05`` (a known bound, the way to use
  one under ``jit``) and eagerly (the estimate of ℓ);
* NumPy: ``polar`` (QDWH, eager estimate) against ``scipy.linalg.polar`` (SVD);
* PyTorch / CuPy: ``polar`` (QDWH) against the library's own SVD-based polar
  (``method="svd"``), the only alternative those frameworks have;
* every method's accuracy (orthogonality, backward error) beside its time.

Median of ``--repeats`` runs after a warm-up (which also compiles under jit),
inputs rotated.  Usage::

    python benchmarks/rational.py --backend jax --sizes 512 1024
    python benchmarks/rational.py --backend numpy --sizes 1024 --json out.json
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import polarlinalg as pl
from polarlinalg.backends import Backend, available_backends, enable_jax_x64
from polarlinalg.testing import random_matrix


def _median_time(
    fn: Callable[[Any], Any], inputs: list[Any], backend: Backend, repeats: int
) -> float:
    out = fn(inputs[0])
    _block(out)
    backend.synchronize()
    samples = []
    for i in range(repeats):
        start = time.perf_counter()
        _block(fn(inputs[i % len(inputs)]))
        backend.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _block(out: Any) -> None:
    for leaf in out if isinstance(out, tuple) else (out,):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()


def _accuracy(backend: Backend, a: Any, result: Any) -> tuple[float, float]:
    u, h = result
    a64, u64, h64 = (backend.to_numpy(t).astype(np.float64) for t in (a, u, h))
    orth = np.linalg.norm(u64.T @ u64 - np.eye(u64.shape[1])) / np.sqrt(u64.shape[1])
    bwd = np.linalg.norm(a64 - u64 @ h64) / np.linalg.norm(a64)
    return float(orth), float(bwd)


def _candidates(backend: Backend) -> dict[str, tuple[Callable[[Any], Any], str]]:
    """Name → (function, group); the group's first entry is the reference."""
    if backend.name.startswith("jax"):
        import jax

        return {
            "jax.scipy.linalg.polar (qdwh)": (
                jax.jit(functools.partial(jax.scipy.linalg.polar, method="qdwh")),
                "alternative",
            ),
            "polarlinalg qdwh, jit": (jax.jit(pl.polar), "ours"),
            "polarlinalg qdwh, jit, lower=0.05": (
                jax.jit(functools.partial(pl.polar, lower=0.05)),
                "ours, known bound",
            ),
            "polarlinalg qdwh, eager": (pl.polar, "ours"),
            "polarlinalg zolo, jit": (jax.jit(functools.partial(pl.polar, method="zolo")), "ours"),
            "polarlinalg newton, jit": (
                jax.jit(functools.partial(pl.polar, method="newton")),
                "ours",
            ),
        }
    if backend.name == "numpy":
        import scipy.linalg

        return {
            "scipy.linalg.polar (svd)": (scipy.linalg.polar, "alternative"),
            "polarlinalg qdwh": (pl.polar, "ours"),
            "polarlinalg zolo": (functools.partial(pl.polar, method="zolo"), "ours"),
            "polarlinalg newton": (functools.partial(pl.polar, method="newton"), "ours"),
        }
    return {
        "polarlinalg svd (the framework's SVD)": (
            functools.partial(pl.polar, method="svd"),
            "alternative",
        ),
        "polarlinalg qdwh": (pl.polar, "ours"),
        "polarlinalg zolo": (functools.partial(pl.polar, method="zolo"), "ours"),
        "polarlinalg newton": (functools.partial(pl.polar, method="newton"), "ours"),
    }


def run(backend: Backend, sizes: list[int], dtypes: list[str], repeats: int) -> list[dict]:
    """Time every candidate; return one record per (size, dtype, input, candidate)."""
    records = []
    for n in sizes:
        for dtype in dtypes:
            if backend.dtype(dtype) is None:
                continue
            for kind in ("gaussian", "kappa=10"):
                if kind == "gaussian":
                    mats = [np.random.default_rng(s).standard_normal((n, n)) for s in range(3)]
                else:
                    mats = [random_matrix((n, n), cond=10.0, seed=s) for s in range(3)]
                inputs = [backend.asarray(m, dtype) for m in mats]
                reference = None
                for name, (fn, group) in _candidates(backend).items():
                    if "lower=" in name and kind == "gaussian":
                        continue  # the bound 0.05 is only valid for the well-conditioned input
                    seconds = _median_time(fn, inputs, backend, repeats)
                    if group == "alternative":
                        reference = seconds
                    orth, bwd = _accuracy(backend, inputs[0], fn(inputs[0]))
                    records.append(
                        dict(
                            backend=backend.name,
                            device=backend.device_name,
                            dtype=dtype,
                            n=n,
                            input=kind,
                            candidate=name,
                            seconds=seconds,
                            ratio=seconds / reference if reference else None,
                            orthogonality=orth,
                            backward=bwd,
                        )
                    )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    try:
        enable_jax_x64()
    except ImportError:
        pass
    (backend,) = available_backends(args.backend)
    records = run(backend, args.sizes, args.dtypes, args.repeats)
    print(f"# {platform.processor() or platform.machine()}, {backend.name} ({backend.device_name})")
    print(
        f"{'n':>5} {'dtype':8} {'input':9} {'candidate':36} {'ms':>9} {'ratio':>6} "
        f"{'orthog.':>8} {'backward':>8}"
    )
    for r in records:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(
            f"{r['n']:>5} {r['dtype']:8} {r['input']:9} {r['candidate']:36} "
            f"{1e3 * r['seconds']:9.1f} {ratio:>6} {r['orthogonality']:8.1e} {r['backward']:8.1e}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(records, fh, indent=2)


if __name__ == "__main__":
    main()
