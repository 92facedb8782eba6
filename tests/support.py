"""Shared helpers of the test suite (importable as ``support``).

Tolerances are by dtype and documented in docs/algorithms.md.  References are
always NumPy float64 (polarlinalg.testing), never the backend under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest

from polarlinalg.backends import BACKEND_NAMES, Backend, available_backends, enable_jax_x64
from polarlinalg.testing import Reference, reference_polar

try:
    enable_jax_x64()
except ImportError:
    pass

SELECTED = os.environ.get("POLARLINALG_BACKENDS")
AVAILABLE: dict[str, Backend] = {b.name: b for b in available_backends(SELECTED)}

# Accurate methods (QDWH, ZOLO-PD, Newton, SVD): orthogonality and backward
# error, relative.
ACCURATE = {"float64": 1e-13, "complex128": 1e-13, "float32": 5e-6, "complex64": 5e-6}

# Polynomial methods: RMS distance per significant singular direction to the
# exact-arithmetic iterate P φ(Σ) Qᴴ.
POLYNOMIAL = {
    "float64": 1e-11,
    "complex128": 1e-11,
    "float32": 5e-4,
    "complex64": 5e-4,
    "bfloat16": 0.25,
    "float16": 0.1,
}

UNIT = {
    "float64": 2.0**-53,
    "complex128": 2.0**-53,
    "float32": 2.0**-24,
    "complex64": 2.0**-24,
    "bfloat16": 2.0**-8,
    "float16": 2.0**-11,
}


def backend_params() -> list:
    """One pytest param per known backend; unavailable ones are skipped."""
    wanted = BACKEND_NAMES if not SELECTED else [n.strip() for n in SELECTED.split(",")]
    params = []
    for name in BACKEND_NAMES:
        if name in AVAILABLE:
            params.append(pytest.param(name, id=name))
        else:
            why = "not selected" if name not in wanted else "not installed or no device here"
            params.append(
                pytest.param(name, id=name, marks=pytest.mark.skip(reason=f"{name}: {why}"))
            )
    return params


def get_backend(name: str) -> Backend:
    """Return an installed backend by name, or skip the test."""
    if name not in AVAILABLE:
        pytest.skip(f"{name}: not installed or no device here")
    return AVAILABLE[name]


def need_dtype(backend: Backend, name: str):
    """Return the backend's dtype ``name`` or skip the test."""
    dtype = backend.dtype(name)
    if dtype is None:
        pytest.skip(f"{backend.name} has no {name}")
    return dtype


def to_f64(backend: Backend, x) -> np.ndarray:
    """Return ``x`` as a float64 (complex128) NumPy array."""
    a = backend.to_numpy(x)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def significant(ref: Reference, dtype: str) -> np.ndarray:
    """Mask of the singular values above the dtype's noise floor ``10·u·‖A‖_F``."""
    fro = np.sqrt(np.sum(ref.s**2, axis=-1, keepdims=True))
    return ref.s > 10.0 * UNIT[dtype] * fro


def projected_distance(u: np.ndarray, target: np.ndarray, ref: Reference, mask) -> float:
    """Worst RMS distance ``‖(u − target) Q_s‖_F/√r`` over a stack."""
    q = ref.qh.conj().swapaxes(-1, -2) * mask[..., None, :]
    diff = (u - target) @ q
    num = np.sqrt(np.sum(np.abs(diff) ** 2, axis=(-2, -1)))
    return float(np.max(num / np.sqrt(np.maximum(mask.sum(axis=-1), 1))))


def orthogonality(u: np.ndarray) -> float:
    """Worst ``‖UᴴU − I‖_F/√k`` over a stack (short side)."""
    m, n = u.shape[-2:]
    g = u.conj().swapaxes(-1, -2) @ u if m >= n else u @ u.conj().swapaxes(-1, -2)
    k = min(m, n)
    return float(np.max(np.linalg.norm(g - np.eye(k), axis=(-2, -1)) / np.sqrt(k)))


def relative_residual(a: np.ndarray, b: np.ndarray) -> float:
    """Worst ``‖a − b‖_F/‖a‖_F`` over a stack."""
    num = np.linalg.norm(a - b, axis=(-2, -1))
    den = np.linalg.norm(a, axis=(-2, -1))
    return float(np.max(num / np.where(den == 0, 1, den)))


def check_accurate(backend, a, u, h, side, tol, forward_tol=None):
    """Assert the accuracy contract of the accurate methods, measured in float64."""
    a64, u64, h64 = (to_f64(backend, t) for t in (a, u, h))
    check_accurate_f64(a64, u64, h64, side, tol, forward_tol)


def check_accurate_f64(a64, u64, h64, side, tol, forward_tol=None, h_rounding=0.0):
    """:func:`check_accurate` on float64 NumPy arrays.

    ``h_rounding`` bounds ``‖δh‖_F``, a rounding error of ``h`` beyond the
    method's (``h`` with subnormal entries, see tests/test_extremes.py); it
    widens the checks on ``h`` by that much.
    """
    norm_a = np.max(np.linalg.norm(a64, axis=(-2, -1), ord=2))
    assert orthogonality(u64) <= tol
    product = u64 @ h64 if side == "right" else h64 @ u64
    fro_a = np.min(np.linalg.norm(a64, axis=(-2, -1)))
    assert relative_residual(a64, product) <= tol + h_rounding / np.where(fro_a == 0, 1, fro_a)
    assert np.max(np.abs(h64 - np.swapaxes(h64, -1, -2).conj())) <= tol * norm_a + h_rounding
    assert np.min(np.linalg.eigvalsh(h64)) >= -(tol * norm_a + h_rounding)
    if forward_tol is not None:
        ref = reference_polar(a64)
        assert relative_residual(ref.u, u64) <= forward_tol


ACCURACY_CASES = [
    ((60, 60), 1e3),
    ((80, 30), 1e12),
    ((30, 80), 1e6),
    ((2, 3, 20, 12), 1e2),
    ((40, 40), 1.0),
]
"""(shape, κ) of the accuracy tests of the accurate methods (float32 caps κ at 1e5)."""


def accuracy_case(backend, method, dtype, shape, cond, side):
    """Run ``polar`` on one case and assert the accuracy contract; return its ``PolarInfo``."""
    from polarlinalg import polar
    from polarlinalg.testing import random_matrix

    need_dtype(backend, dtype)
    if dtype in ("float32", "complex64"):
        cond = min(cond, 1e5)
    a_np = random_matrix(shape, cond=cond, complex=dtype.startswith("complex"), seed=1)
    a = backend.asarray(a_np, dtype)
    (u, h), info = polar(a, side, method=method, return_info=True)
    assert u.dtype == a.dtype and u.shape == a.shape
    tol = ACCURATE[dtype]
    check_accurate(
        backend, a, u, h, side, tol, forward_tol=10 * tol * cond if cond <= 1e3 else None
    )
    return info


def run_script(args: Sequence[str], what: str, timeout: float) -> None:
    """Run ``python *args`` in a session of its own, one OpenMP thread per process.

    Fails the test naming ``what`` when the script exits non-zero (with the end of
    its output) or outlives ``timeout`` seconds (then the whole session is killed,
    spawned ranks included).
    """
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the {what} did not finish in {timeout} s")
    if proc.returncode != 0:
        pytest.fail(f"the {what} failed:\n{out.decode(errors='replace')[-5000:]}")
