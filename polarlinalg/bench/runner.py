"""The matrix benchmark: one row per (backend, dtype, case, candidate).

For every backend and case, the inputs are generated once in NumPy
(:func:`polarlinalg.testing.random_matrix`, singular values spaced from 1 to
``1/cond``), cast to the row's dtype on the backend, and rotated between the
timed calls.  Each row holds the timing, the accuracy of the output on the
first input, and the floor of the candidate's operations, timed on the same
backend and dtype in rounds interleaved with the candidate's calls: the
row's *time over floor* is the median over rounds of the two neighbouring
samples' ratio.

:func:`polarlinalg.inv_root` rows (``--methods inv_root``) time ``"eigh"``
and ``"newton"`` on single ``n × n`` PSD matrices ``G Gᵀ`` of condition
``cond`` (``G`` from :func:`polarlinalg.testing.random_matrix` with
``√cond``), with the root ``p`` of the configuration; their accuracy is the
relative error against the float64 eigh root of the input as held.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from polarlinalg.bench.accuracy import accuracy, inv_root_reference, root_accuracy
from polarlinalg.bench.candidates import (
    ACCURATE,
    INV_ROOT,
    POLYNOMIAL,
    Candidate,
    anchors_for,
    inv_root_candidates,
    polarlinalg_candidates,
)
from polarlinalg.bench.cases import Case, Config, cases_for
from polarlinalg.bench.floors import FloorProgram
from polarlinalg.bench.timing import measure_interleaved, paired_ratio
from polarlinalg.testing import random_matrix, reference_polar

__all__ = ["Skip", "run_matrix"]

Skip = dict[str, Any]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _op_summary(ops: Sequence[Any]) -> str:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.kind] = counts.get(op.kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


class _Inputs:
    """NumPy inputs and float64 references, shared between backends (keyed by shape, dtype)."""

    def __init__(self, count: int, cond: float) -> None:
        self.count, self.cond = count, cond
        self._mats: dict[tuple[int, ...], list[np.ndarray]] = {}
        self._refs: dict[tuple[tuple[int, ...], str], np.ndarray] = {}

    def matrices(self, case: Case) -> list[np.ndarray]:
        if case.shape not in self._mats:
            self._mats[case.shape] = [
                random_matrix(case.shape, cond=self.cond, seed=s) for s in range(self.count)
            ]
        return self._mats[case.shape]

    def reference(self, case: Case, backend: Any, x0: Any) -> np.ndarray:
        key = (case.shape, case.dtype)
        if key not in self._refs:
            self._refs[key] = reference_polar(backend.to_numpy(x0)).u
        return self._refs[key]

    def psd(self, case: Case) -> list[np.ndarray]:
        key = ("psd", *case.shape)
        if key not in self._mats:
            gs = [
                random_matrix(case.shape, cond=float(np.sqrt(self.cond)), seed=s)
                for s in range(self.count)
            ]
            self._mats[key] = [g @ np.swapaxes(g, -1, -2) for g in gs]
        return self._mats[key]

    def root_reference(self, case: Case, backend: Any, x0: Any, p: int) -> np.ndarray:
        key = (("root", p, *case.shape), case.dtype)
        if key not in self._refs:
            self._refs[key] = inv_root_reference(backend.to_numpy(x0), p)
        return self._refs[key]


def _families(methods: Sequence[str]) -> dict[str, list[str]]:
    return {
        "polynomial": [m for m in methods if m in POLYNOMIAL],
        "accurate": [m for m in methods if m in ACCURATE],
        "inv_root": [m for m in methods if m == INV_ROOT],
    }


def run_matrix(
    backends: Sequence[Any],
    methods: Sequence[str],
    config: Config,
    *,
    anchors: bool = True,
    progress: Callable[[str], None] = _stderr,
) -> tuple[list[dict], list[Skip]]:
    """Time every candidate on every case; return ``(rows, skipped)``.

    Parameters
    ----------
    backends : sequence of polarlinalg.backends.Backend
    methods : sequence of str
        polarlinalg methods (the anchors of their families come with them),
        and ``"inv_root"`` for the :func:`polarlinalg.inv_root` rows.
    config : Config
        Sizes, dtypes, repeats (see :mod:`polarlinalg.bench.cases`).
    anchors : bool, default True
        Also time the anchors installed for each backend.
    progress : callable
        Receives one line per row.

    Returns
    -------
    rows : list of dict
        See :mod:`polarlinalg.bench.schema` for the keys.
    skipped : list of dict
        ``{"backend", "dtype", "shape", "candidate", "reason"}`` for every
        candidate that could not run a case (e.g. a dtype the backend lacks).
    """
    inputs = _Inputs(config.inputs, config.cond)
    rows: list[dict] = []
    skipped: list[Skip] = []
    families = _families(methods)
    sizes = {
        "polynomial": config.polynomial_sizes,
        "accurate": config.accurate_sizes,
        "inv_root": config.inv_root_sizes,
    }
    dtypes = {
        "polynomial": config.polynomial_dtypes,
        "accurate": config.accurate_dtypes,
        "inv_root": config.inv_root_dtypes,
    }
    aspects = {
        "polynomial": config.aspects,
        "accurate": config.accurate_aspects,
        "inv_root": (Fraction(1),),
    }
    p = config.inv_root_p
    for backend in backends:
        for family, names in families.items():
            if not names:
                continue
            if family == "inv_root":
                candidates = inv_root_candidates(backend, p)
                cases = cases_for(sizes[family], aspects[family], dtypes[family], 1, ())
            else:
                candidates = polarlinalg_candidates(backend, names)
                cases = cases_for(
                    sizes[family],
                    aspects[family],
                    dtypes[family],
                    config.batch,
                    config.batched_sizes,
                )
            if anchors:
                candidates += anchors_for(backend, family, p)
            for case in cases:
                if backend.dtype(case.dtype) is None:
                    skipped.append(_skip(backend, case, "all", "backend has no such dtype"))
                    continue
                if family == "inv_root":
                    xs = [backend.asarray(a, case.dtype) for a in inputs.psd(case)]
                    ref = inputs.root_reference(case, backend, xs[0], p)
                else:
                    xs = [backend.asarray(a, case.dtype) for a in inputs.matrices(case)]
                    ref = inputs.reference(case, backend, xs[0])
                floors = FloorProgram(backend, case.dtype)
                for cand in candidates:
                    if not cand.supports(case):
                        skipped.append(_skip(backend, case, cand.name, cand.unsupported))
                        continue
                    try:
                        row = _row(backend, case, cand, xs, ref, floors, config)
                    except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:
                        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                        skipped.append(_skip(backend, case, cand.name, reason))
                        progress(f"skip {backend.name} {case.label} {cand.name}: {reason}")
                        continue
                    rows.append(row)
                    progress(_progress_line(row))
    return rows, skipped


def _skip(backend: Any, case: Case, name: str, reason: str) -> Skip:
    return {
        "backend": backend.name,
        "dtype": case.dtype,
        "shape": case.label,
        "candidate": name,
        "reason": reason,
    }


def _row(
    backend: Any,
    case: Case,
    cand: Candidate,
    xs: list[Any],
    ref: np.ndarray,
    floors: FloorProgram,
    config: Config,
) -> dict:
    ops = cand.ops(case, xs[0])
    timing, floor = measure_interleaved(
        [(cand.fn, xs), (floors.program(ops), [None])],
        repeats=config.repeats,
        warmup=config.warmup,
        synchronize=backend.synchronize,
        min_warmup_s=config.min_warmup_s,
        min_time_s=config.min_time_s,
    )
    if cand.family == "inv_root":
        acc = root_accuracy(backend, cand.fn(xs[0]), ref)
    else:
        acc = accuracy(backend, xs[0], cand.fn(xs[0]), ref)
    floor_s, floor_min_s, floor_flops = floor.median, floor.minimum, floors.flops(ops)
    row = {
        "backend": backend.name,
        "device": backend.device_name,
        "dtype": case.dtype,
        "shape": case.label,
        "m": case.m,
        "n": case.n,
        "batch": case.batch,
        "aspect": case.n / case.m,
        "candidate": cand.name,
        "source": cand.source,
        "family": cand.family,
        "jitted": cand.jitted,
        **timing.as_dict(),
        "compile_s": max(timing.first_call - timing.median, 0.0) if cand.jitted else None,
        **acc,
        "floor_s": floor_s,
        "floor_flops": floor_flops,
        "floor_ops": _op_summary(ops),
        "time_over_floor": paired_ratio(timing, floor),
        "time_over_floor_min": timing.minimum / floor_min_s if floor_min_s > 0 else None,
        "gflops": floor_flops / timing.median / 1e9,
        "floor_gflops": floor_flops / floor_s / 1e9 if floor_s > 0 else None,
        "timestamp": time.time(),
    }
    return row


def _progress_line(r: dict) -> str:
    orth = "—" if r["orthogonality"] is None else f"{r['orthogonality']:.1e}"
    return (
        f"{r['backend']:>6} {r['dtype']:>8} {r['shape']:>11} {r['candidate']:<30} "
        f"{1e3 * r['median_s']:9.2f} ms  x{r['time_over_floor']:.2f} floor  "
        f"orth {orth}  fwd {r['forward_error']:.1e}"
    )
