"""``polarlinalg validate``, matrix-function part: :func:`polarlinalg.inv_root` on every backend.

Each row computes ``(A + εI)^{−1/p}`` (``p = 4``, Shampoo's root of a matrix
factor; ``ε = 0``) of a fixed ``32 × 32`` PSD matrix with log-spaced
eigenvalues of condition ``κ`` by one method in one dtype and compares it
with the float64 NumPy eigh reference:

error
    ``‖X − X_ref‖_F / ‖X_ref‖_F``.

A row passes below :data:`BANDS` ``[method, dtype] · (1 + κ^{1/2})``: eigh is
backward stable (error ≲ ``κ^{1/p}·u`` for ``p = 4``), the coupled Newton
iteration adds rounding amplified like ``κ^{1/2}`` (measured on an AMD EPYC
with OpenBLAS and MKL: well inside these bands; docs/algorithms.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from polarlinalg.backends import Backend

__all__ = ["BANDS", "CONDITIONS", "InvRootResult", "format_table", "run"]

CONDITIONS = (1.0, 1e2, 1e4)
BANDS = {
    ("eigh", "float64"): 1e-13,
    ("eigh", "float32"): 1e-5,
    ("newton", "float64"): 1e-13,
    ("newton", "float32"): 2e-5,
    ("newton", "bfloat16"): 3e-2,
}
"""Relative error allowed at κ = 1 (multiplied by ``1 + √κ``)."""

N, P = 32, 4


@dataclass
class InvRootResult:
    """One row."""

    backend: str
    method: str
    dtype: str
    cond: float
    error: float | None
    passed: bool
    seconds: float
    note: str = ""


def _matrix(kappa: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    w = np.logspace(0, -math.log10(kappa), N)
    return (q * w) @ q.T, (q * w ** (-1.0 / P)) @ q.T


def run(backends: Sequence[Backend], dtypes: Sequence[str] | None = None) -> list[InvRootResult]:
    """Run every method × dtype × κ on every backend."""
    from polarlinalg import inv_root

    rows = []
    for backend in backends:
        for (method, dtype), band in BANDS.items():
            if dtypes is not None and dtype not in dtypes:
                continue
            if dtype == "bfloat16":
                if backend.dtype("bfloat16") is None or not backend.name.startswith("torch"):
                    continue  # matmul in bfloat16: PyTorch (and JAX on accelerators)
            elif backend.dtype(dtype) is None:
                continue
            # bfloat16 Newton diverges (NaN) by κ = 1e4 here: its rows stop at 1e2
            for kappa in CONDITIONS if dtype != "bfloat16" else CONDITIONS[:2]:
                a, ref = _matrix(kappa)
                start = time.perf_counter()
                try:
                    x = backend.asarray(a, "float32" if dtype == "bfloat16" else dtype)
                    extra = {"compute_dtype": "bfloat16"} if dtype == "bfloat16" else {}
                    got = backend.to_numpy(inv_root(x, P, method=method, **extra))
                except Exception as exc:  # a failed row, with its message
                    rows.append(
                        InvRootResult(
                            backend.name,
                            method,
                            dtype,
                            kappa,
                            None,
                            False,
                            0.0,
                            f"{type(exc).__name__}: {exc}",
                        )
                    )
                    continue
                error = float(np.linalg.norm(got.astype(np.float64) - ref) / np.linalg.norm(ref))
                ok = bool(np.isfinite(error)) and error <= band * (1 + math.sqrt(kappa))
                rows.append(
                    InvRootResult(
                        backend.name, method, dtype, kappa, error, ok, time.perf_counter() - start
                    )
                )
    return rows


def format_table(rows: Sequence[InvRootResult]) -> str:
    """Return the rows as an aligned text table."""
    head = f"{'backend':<18} {'method':<7} {'dtype':<9} {'κ':>6} {'error':>9} {'band':>8}  result"
    lines = [head, "-" * len(head)]
    for r in rows:
        err = "—" if r.error is None else f"{r.error:.1e}"
        band = BANDS[r.method, r.dtype] * (1 + math.sqrt(r.cond))
        verdict = "ok" if r.passed else f"FAIL {r.note}".rstrip()
        lines.append(
            f"{r.backend:<18} {r.method:<7} {r.dtype:<9} {r.cond:>6.0e} {err:>9} {band:>8.1e}  "
            f"{verdict}"
        )
    return "\n".join(lines)
