"""``polarlinalg validate``, matrix-function part: :func:`polarlinalg.inv_root` on every backend.

Each row computes ``(A + εI)^{−1/p}`` of one matrix of :data:`SUITE` by one
method in one dtype and compares it, in NumPy float64, with the eigh of the
very input it was given (after rounding to the row's dtype):

error
    ``‖X − X_ref‖_F / ‖X_ref‖_F`` (the worst matrix of a stack).

A row passes when the error is within the documented band (:func:`band`,
docs/matrix_functions.md) of its dtype, ``n`` and the condition number
``κ = (1 + ε)/(1/κ_A + ε)`` of ``A + εI``:

* float32 and float64 (complex64, complex128): ``10·u·(√n + κ)``;
* bfloat16 and float16: ``5·u·√κ``, for the matrices with ``κ ≤ 100``
  (rounding a PSD matrix of larger ``κ`` to bfloat16 can make it indefinite).

``u`` is the unit roundoff; both are about three times the worst errors
measured on an AMD EPYC over NumPy, PyTorch and JAX (``3.3·u·(√n + κ)`` and
``2·u·√κ``).  ``"eigh"`` computes half precision in float32 and rounds the
result; ``"newton"`` runs in the row's dtype.  JAX rows run under
``jax.jit`` (the Newton iteration's fixed-count, masked path; eager JAX would
compile every operation for every shape, about a second per row), on the
matrices that share one compiled function (the batched, complex and
regularised ones are left to the other backends).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polarlinalg.backends import Backend

__all__ = [
    "DTYPES",
    "HALF_MAX_COND",
    "SUITE",
    "InvRootResult",
    "P",
    "RootCase",
    "band",
    "format_table",
    "run",
]

P = 4
"""Shampoo's root of a matrix factor, the root of most cases."""

DTYPES: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")
"""Dtypes validated (complex cases in complex128/complex64; half precision where available)."""

HALF_MAX_COND = 1e2
"""Largest ``κ`` of ``A + εI`` validated in bfloat16 and float16."""

_UNIT = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}
_COMPLEX = {"float64": "complex128", "float32": "complex64"}


@dataclass(frozen=True)
class RootCase:
    """One matrix: ``Q diag(λ) Qᴴ`` with ``λ`` geometric from 1 to ``1/cond``."""

    name: str
    n: int
    cond: float
    p: float = P
    eps: float = 0.0
    batch: int = 1
    complex: bool = False
    seed: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        """The array shape (no batch axis for ``batch = 1``)."""
        return (self.n, self.n) if self.batch == 1 else (self.batch, self.n, self.n)

    @property
    def effective_cond(self) -> float:
        """``κ(A + εI)``."""
        return (1.0 + self.eps) / (1.0 / self.cond + self.eps)

    def matrix(self) -> np.ndarray:
        """Return the float64/complex128 matrix of this case."""
        rng = np.random.default_rng(self.seed)
        z = rng.standard_normal((self.batch, self.n, self.n))
        if self.complex:
            z = z + 1j * rng.standard_normal((self.batch, self.n, self.n))
        q, _ = np.linalg.qr(z)
        lam = np.geomspace(1.0, 1.0 / self.cond, self.n)
        a = (q * lam) @ np.swapaxes(q.conj(), -1, -2)
        return a[0] if self.batch == 1 else a


SUITE: tuple[RootCase, ...] = (
    RootCase("k1", 32, 1.0, seed=1),
    RootCase("k1e2", 32, 1e2, seed=2),
    RootCase("k1e4", 32, 1e4, seed=3),
    RootCase("k1e8+eps", 32, 1e8, eps=1e-4, seed=4),
    RootCase("batched-k10-p2", 32, 10.0, p=2, batch=3, seed=5),
    RootCase("complex-k1e2", 32, 1e2, complex=True, seed=6),
)
"""The matrices: κ from 1 to 1e4, a regularised κ = 1e8 (ε = 1e-4), a batch with p = 2, complex."""


def band(dtype: str, n: int, cond: float) -> float:
    """Return the documented error band of ``inv_root`` in ``dtype`` for ``n × n`` matrices."""
    real = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
    u = _UNIT[real]
    if real in ("bfloat16", "float16"):
        return 5.0 * u * math.sqrt(cond)
    return 10.0 * u * (math.sqrt(n) + cond)


@dataclass
class InvRootResult:
    """One row of the inv_root table."""

    backend: str
    method: str
    dtype: str
    case: str
    shape: str
    p: float
    eps: float
    cond: float
    error: float | None
    band: float
    passed: bool
    seconds: float
    note: str = ""


def _reference(a: np.ndarray, p: float, eps: float) -> np.ndarray:
    h = (a + np.swapaxes(a.conj(), -1, -2)) / 2
    w, v = np.linalg.eigh(h)
    w = np.maximum(w, 0.0) + eps
    return (v * (w ** (-1.0 / p))[..., None, :]) @ np.swapaxes(v.conj(), -1, -2)


def _rows_for(backend: Backend, dtype: str) -> list[RootCase]:
    half = dtype in ("bfloat16", "float16")
    out = []
    for case in SUITE:
        if half and (case.complex or case.effective_cond > HALF_MAX_COND):
            continue
        if backend.name.startswith("jax") and (case.complex or case.batch > 1 or case.eps):
            continue  # one compile per method and dtype under jax.jit (p, ε, shape fixed)
        out.append(case)
    return out


def _function(backend: Backend, method: str, case: RootCase) -> Callable[[Any], Any]:
    from polarlinalg import inv_root

    def f(a: Any) -> Any:
        return inv_root(a, case.p, method=method, eps=case.eps)

    return f


@functools.cache
def _jitted(method: str, p: float, eps: float) -> Callable[[Any], Any]:
    """One ``jax.jit`` wrapper per (method, p, ε): rows of one shape and dtype share a compile."""
    import jax

    from polarlinalg import inv_root

    return jax.jit(lambda a: inv_root(a, p, method=method, eps=eps))


def run(
    backends: Sequence[Backend],
    dtypes: Sequence[str] | None = None,
    *,
    on_row: Callable[[InvRootResult, int, int], object] | None = None,
) -> list[InvRootResult]:
    """Run every method × dtype × case of :data:`SUITE` on every backend.

    Parameters
    ----------
    backends : sequence of polarlinalg.backends.Backend
        Where to run.
    dtypes : sequence of str, optional
        A subset of :data:`DTYPES` (default: all; the complex case runs in the
        complex dtype of float32 and float64).  A dtype a backend lacks gives
        no rows.
    on_row : callable, optional
        ``on_row(row, done, total)`` is called as soon as each row is computed.
    """
    from polarlinalg._inv_root import INV_ROOT_METHODS

    wanted = DTYPES if dtypes is None else tuple(d for d in DTYPES if d in dtypes)
    jobs = []
    for backend in backends:
        for method in INV_ROOT_METHODS:
            for dtype in wanted:
                for case in _rows_for(backend, dtype):
                    if method == "newton" and case.p != int(case.p):
                        continue
                    target = _COMPLEX[dtype] if case.complex else dtype
                    if backend.dtype(target) is None:
                        continue
                    jobs.append((backend, method, target, case))
    rows = []
    for job in jobs:
        rows.append(_run_one(*job))
        if on_row is not None:
            on_row(rows[-1], len(rows), len(jobs))
    return rows


def _run_one(backend: Backend, method: str, dtype: str, case: RootCase) -> InvRootResult:
    limit = band(dtype, case.n, case.effective_cond)
    fields = {
        "backend": backend.name,
        "method": method,
        "dtype": dtype,
        "case": case.name,
        "shape": "×".join(str(s) for s in case.shape),
        "p": case.p,
        "eps": case.eps,
        "cond": case.effective_cond,
        "band": limit,
    }
    start = time.perf_counter()
    try:
        a_in = backend.asarray(case.matrix(), dtype)
        if backend.name.startswith("jax"):
            x = _jitted(method, case.p, case.eps)(a_in)
        else:
            x = _function(backend, method, case)(a_in)
        backend.synchronize()
        seconds = time.perf_counter() - start
        kind = np.complex128 if case.complex else np.float64
        a = backend.to_numpy(a_in).astype(kind)
        got = backend.to_numpy(x).astype(kind)
    except Exception as exc:  # a failed row, with its message
        return InvRootResult(
            **fields,
            error=None,
            passed=False,
            seconds=time.perf_counter() - start,
            note=f"{type(exc).__name__}: {exc}",
        )
    ref = _reference(a, case.p, case.eps)
    num = np.linalg.norm(got - ref, axis=(-2, -1))
    error = float(np.max(num / np.linalg.norm(ref, axis=(-2, -1))))
    ok = bool(np.isfinite(error)) and error <= limit
    note = "" if ok else f"error {error:.1e} > band {limit:.1e}"
    return InvRootResult(**fields, error=error, passed=ok, seconds=seconds, note=note)


def format_table(rows: Sequence[InvRootResult]) -> str:
    """Return the rows as an aligned text table."""
    header = ("backend", "method", "dtype", "case", "shape", "p", "ε", "κ", "error", "band", "")
    body = [
        (
            r.backend,
            r.method,
            r.dtype,
            r.case,
            r.shape,
            f"{r.p:g}",
            f"{r.eps:g}",
            f"{r.cond:.0e}",
            "—" if r.error is None else f"{r.error:.1e}",
            f"{r.band:.1e}",
            "ok" if r.passed else f"FAIL {r.note}".rstrip(),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
