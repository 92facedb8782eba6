"""``polarlinalg validate``, optimizer part: every matrix rule on every backend and dtype.

Each row runs :data:`STEPS` steps of one optimizer of :mod:`polarlinalg.optim`
(which runs the framework-free rule as it is, on any namespace) on a fixed
problem — a tall, a square and a wide matrix and a vector (AdamW), gradients
of ``Σ ½‖X∘X − T‖²`` — on the row's backend and dtype, and compares the
parameters with the same optimizer run in NumPy float64:

error
    ``max |X − X₆₄| / max |X₆₄|`` over all parameters.

A row passes when the error is below :data:`TOLERANCES` of its dtype: the
backends compute the same formulas in another order, and the roots (Shampoo)
and eigenbases (SOAP, whose statistics here have full rank) amplify that
rounding by at most a modest factor on this problem.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from polarlinalg.backends import Backend

__all__ = ["OPTIMIZERS", "STEPS", "TOLERANCES", "OptimizerResult", "format_table", "run"]

STEPS = 4
SHAPES = {"tall": (12, 8), "square": (8, 8), "wide": (6, 10), "bias": (8,)}
TOLERANCES = {"float64": 1e-9, "float32": 1e-3}
"""Largest passing error per dtype."""


def _optimizers() -> dict[str, Callable[[], Any]]:
    from polarlinalg import optim

    return {
        "polargrad": lambda: optim.PolarGrad(0.02, momentum=0.9, method="qdwh"),
        "muon": lambda: optim.Muon(0.02),
        "normuon": lambda: optim.NorMuon(0.02, weight_decay=0.1),
        # ε above the float32 rounding of the statistics, as one would train with
        "shampoo": lambda: optim.Shampoo(0.02, eps=1e-4, precondition_every=2),
        # ε above the float32 rounding of the rotated second moment: with the default 1e-8
        # a rotated coordinate whose gradient is rounding noise gets a ±γ step whose sign
        # the rounding decides (backends then differ by 7e-2 in float32, 4e-8 in float64)
        "soap": lambda: optim.SOAP(
            0.02, precondition_frequency=2, max_precondition_dim=8, eps=1e-3
        ),
    }


OPTIMIZERS: tuple[str, ...] = ("polargrad", "muon", "normuon", "shampoo", "soap")


@dataclass
class OptimizerResult:
    """One row: an optimizer on a backend and dtype."""

    backend: str
    optimizer: str
    dtype: str
    error: float | None
    passed: bool
    seconds: float
    note: str = ""


def _problem() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    x0 = {k: rng.uniform(-1, 1, s) for k, s in SHAPES.items()}
    targets = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    return x0, targets


def _trajectory(backend: Backend, name: str, dtype: str) -> dict[str, np.ndarray]:
    x0, targets = _problem()
    opt = _optimizers()[name]()
    params = {k: backend.asarray(v, dtype) for k, v in x0.items()}
    tgt = {k: backend.asarray(v, dtype) for k, v in targets.items()}
    state = opt.init(params)
    for _ in range(STEPS):
        grads = {k: 2 * p * (p * p - tgt[k]) for k, p in params.items()}
        params, state = opt.step(params, grads, state)
    return {k: backend.to_numpy(v).astype(np.float64) for k, v in params.items()}


def run(
    backends: Sequence[Backend],
    dtypes: Sequence[str] | None = None,
    *,
    on_row: Callable[[OptimizerResult, int, int], object] | None = None,
) -> list[OptimizerResult]:
    """Run every optimizer on every backend and dtype (float32, float64 by default).

    Parameters
    ----------
    backends : sequence of polarlinalg.backends.Backend
        Where to run.
    dtypes : sequence of str, optional
        Among the keys of :data:`TOLERANCES`; others are ignored, as are dtypes
        a backend lacks.
    on_row : callable, optional
        ``on_row(row, done, total)`` is called as soon as each row is computed.
    """
    from polarlinalg.backends import available_backends

    (numpy_backend,) = available_backends("numpy")
    dtypes = [d for d in (dtypes or TOLERANCES) if d in TOLERANCES]
    jobs = [
        (backend, name, dtype)
        for backend in backends
        for name in OPTIMIZERS
        for dtype in dtypes
        if backend.dtype(dtype) is not None
    ]
    references = {name: _trajectory(numpy_backend, name, "float64") for name in OPTIMIZERS}
    rows = []
    for backend, name, dtype in jobs:
        rows.append(_run_one(backend, name, dtype, references[name]))
        if on_row is not None:
            on_row(rows[-1], len(rows), len(jobs))
    return rows


def _run_one(
    backend: Backend, name: str, dtype: str, ref: dict[str, np.ndarray]
) -> OptimizerResult:
    start = time.perf_counter()
    try:
        got = _trajectory(backend, name, dtype)
    except Exception as exc:  # a failure is a failed row, with its message
        note = f"{type(exc).__name__}: {exc}"
        return OptimizerResult(backend.name, name, dtype, None, False, 0.0, note)
    scale = max(float(np.max(np.abs(v))) for v in ref.values())
    error = max(float(np.max(np.abs(got[k] - ref[k]))) for k in ref) / scale
    ok = bool(np.isfinite(error)) and error <= TOLERANCES[dtype]
    return OptimizerResult(backend.name, name, dtype, error, ok, time.perf_counter() - start)


def format_table(rows: Sequence[OptimizerResult]) -> str:
    """Return the rows as an aligned text table."""
    head = f"{'backend':<18} {'optimizer':<10} {'dtype':<8} {'error':>9} {'tol':>7}  result"
    lines = [head, "-" * len(head)]
    for r in rows:
        err = "—" if r.error is None else f"{r.error:.1e}"
        tol = f"{TOLERANCES[r.dtype]:.0e}"
        verdict = "ok" if r.passed else f"FAIL {r.note}".rstrip()
        lines.append(f"{r.backend:<18} {r.optimizer:<10} {r.dtype:<8} {err:>9} {tol:>7}  {verdict}")
    return "\n".join(lines)


def as_dicts(rows: Sequence[OptimizerResult]) -> list[dict[str, Any]]:
    """Return the rows as JSON-ready dicts."""
    return [asdict(r) for r in rows]
