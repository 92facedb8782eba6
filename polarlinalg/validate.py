"""``polarlinalg validate``: every method × backend × dtype on a fixed suite.

Each row runs :func:`polarlinalg.polar` on one matrix of the suite and
measures, in NumPy float64 against the SVD of the very input it was given
(after rounding to the row's dtype):

orthogonality
    ``‖UᴴU − I‖_F/√k`` on the short side ``k = min(m, n)``.
backward
    ``‖A − UH‖_F/‖A‖_F`` with the ``H`` returned by ``polar``.
forward
    ``‖(U − U_svd) Q_s‖_F/√r``: distance to the float64 polar factor on the
    ``r`` singular directions that are significant in this dtype
    (``σᵢ > 10·u·‖A‖_F``, u the unit roundoff); elsewhere ``U`` is not determined by the data.
deviation
    Polynomial methods only: the same distance to ``P φ(Σ/(s‖A‖_F)) Qᴴ``,
    what the method's schedule gives in exact arithmetic.  It measures the
    implementation; the band ``[min φ, max φ]`` over the input's significant
    singular values measures the schedule.

σmax(U)
    The largest singular value of the computed ``U``.

A row passes when the measures its method family promises are within the
documented tolerances (:data:`TOLERANCES`, docs/algorithms.md): direct and
rational methods orthogonality, backward and forward error (the last scaled
by the condition number of the significant singular values, capped at 1);
polynomial methods the deviation, and ``σmax(U)`` at most the schedule's
ceiling ``max φ`` on ``(0, 1/s]`` plus the same tolerance (no blow-up).
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from polarlinalg._coefficients import schedule_band
from polarlinalg._methods import METHODS, get_method
from polarlinalg._polar import polar
from polarlinalg.backends import BACKEND_NAMES, Backend, available_backends
from polarlinalg.diagnostics import backward_error, orthogonality_error
from polarlinalg.testing import exact_iterate, random_matrix, reference_polar

__all__ = [
    "DTYPES",
    "SUITE",
    "TOLERANCES",
    "Case",
    "Result",
    "RowCallback",
    "format_table",
    "requested_backends",
    "run",
    "to_json",
]


@dataclass(frozen=True)
class Case:
    """One matrix of the suite."""

    name: str
    shape: tuple[int, ...]
    cond: float
    rank: int | None = None
    complex: bool = False
    seed: int = 0

    def matrix(self) -> np.ndarray:
        """Return the float64/complex128 matrix of this case."""
        return random_matrix(
            self.shape, cond=self.cond, rank=self.rank, complex=self.complex, seed=self.seed
        )


SUITE: tuple[Case, ...] = (
    Case("square", (64, 64), 1.0, seed=1),
    Case("square-k1e4", (96, 96), 1e4, seed=2),
    Case("tall-k1e2", (160, 48), 1e2, seed=3),
    Case("wide-k1e3", (40, 150), 1e3, seed=4),
    Case("batched-k10", (3, 40, 24), 10.0, seed=5),
    Case("complex-k1e2", (48, 48), 1e2, complex=True, seed=6),
    Case("square-k1e8", (80, 80), 1e8, seed=7),
    Case("rank-deficient", (72, 56), 1e2, rank=20, seed=8),
)
"""The matrices of ``polarlinalg validate``: κ from 1 to 1e8, batched, complex, rank-deficient."""

DTYPES: tuple[str, ...] = ("float32", "float64", "bfloat16", "float16")
"""Dtypes validated (complex cases use the matching complex dtype; bfloat16 where available)."""

_COMPLEX = {"float32": "complex64", "float64": "complex128"}

# What each backend needs: the module it imports, how to get it, whether it needs a GPU.
_NEEDS: dict[str, tuple[str, str, bool]] = {
    "numpy": ("numpy", "install it with pip install numpy", False),
    "array_api_strict": (
        "array_api_strict",
        "install it with pip install array-api-strict",
        False,
    ),
    "torch": ("torch", 'install it with pip install "polarlinalg[torch]"', False),
    "torch-cuda": ("torch", "it needs a CUDA build of PyTorch (pytorch.org) and a CUDA GPU", True),
    "jax": ("jax", 'install it with pip install "polarlinalg[jax]"', False),
    "jax-gpu": ("jax", 'it needs pip install "jax[cuda12]" and a CUDA GPU', True),
    "cupy": (
        "cupy",
        'install it with pip install "polarlinalg[cuda12]" (or "polarlinalg[cuda13]") on a '
        "machine with a CUDA GPU",
        True,
    ),
}

# Unit roundoff of each dtype (half the machine epsilon).
_UNIT = {"float32": 2.0**-24, "float64": 2.0**-53, "bfloat16": 2.0**-8, "float16": 2.0**-11}


@dataclass(frozen=True)
class Tolerance:
    """Documented tolerances of one method family in one dtype.

    ``orthogonality`` and ``backward`` bound those measures; ``forward`` is
    multiplied by the condition number of the significant singular values
    (capped at 1); ``deviation`` bounds the distance to the exact-arithmetic
    iterate of a polynomial schedule.
    """

    orthogonality: float
    backward: float
    forward: float
    deviation: float


TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(orthogonality=1e-13, backward=1e-13, forward=1e-13, deviation=1e-11),
    "float32": Tolerance(orthogonality=5e-6, backward=5e-6, forward=5e-6, deviation=5e-4),
    "bfloat16": Tolerance(orthogonality=2e-2, backward=2e-2, forward=2e-2, deviation=0.25),
    "float16": Tolerance(orthogonality=3e-3, backward=3e-3, forward=3e-3, deviation=0.1),
}


@dataclass
class Result:
    """One row of the validation table."""

    method: str
    backend: str
    device: str
    dtype: str
    case: str
    shape: str
    cond: float
    orthogonality: float
    backward: float
    forward: float
    deviation: float | None
    band_low: float | None
    band_high: float | None
    sigma_max: float
    seconds: float
    passed: bool
    reason: str


def _significant(ref: Any, dtype: str) -> np.ndarray:
    s = ref.s
    fro = np.sqrt(np.sum(s**2, axis=-1, keepdims=True))
    return s > 10.0 * _UNIT[dtype] * fro


def _projected_distance(u: np.ndarray, target: np.ndarray, ref: Any, mask: np.ndarray) -> float:
    """RMS distance ``‖(u − target) Q_s‖_F/√r`` over the worst matrix of the stack."""
    q = ref.qh.conj().swapaxes(-1, -2) * mask[..., None, :]
    diff = (u - target) @ q
    num = np.sqrt(np.sum(np.abs(diff) ** 2, axis=(-2, -1)))
    r = np.maximum(mask.sum(axis=-1), 1)
    return float(np.max(num / np.sqrt(r)))


def _sigma_max(u: np.ndarray) -> float:
    return float(np.max(np.linalg.svd(u, compute_uv=False)))


def _check_accurate(tol: Tolerance, orth: float, bwd: float, fwd: float, cond: float) -> list[str]:
    fwd_tol = min(tol.forward * cond, 1.0)
    failures = []
    if orth > tol.orthogonality:
        failures.append(f"orthogonality {orth:.1e} > {tol.orthogonality:.0e}")
    if bwd > tol.backward:
        failures.append(f"backward {bwd:.1e} > {tol.backward:.0e}")
    if fwd > fwd_tol:
        failures.append(f"forward {fwd:.1e} > {fwd_tol:.0e}")
    return failures


RowCallback = Callable[[Any, int, int], object]
"""``on_row(row, done, total)``: called by the ``run`` functions of ``polarlinalg validate``
after each row, with the number of rows done so far and the number of rows of the run."""


def _applies(backend: Backend, dtype: str, case: Case) -> bool:
    """Whether ``case`` has a row in ``dtype`` on ``backend`` (complex: a complex dtype)."""
    if case.complex and dtype not in _COMPLEX:
        return False
    return backend.dtype(_COMPLEX[dtype] if case.complex else dtype) is not None


def _run_one(backend: Backend, method: str, dtype: str, case: Case) -> Result | None:
    if not _applies(backend, dtype, case):
        return None
    target_dtype = _COMPLEX[dtype] if case.complex else dtype
    spec = get_method(method)
    a_in = backend.asarray(case.matrix(), target_dtype)
    # The reference is the SVD of exactly the input the method sees (after rounding).
    a = backend.to_numpy(a_in).astype(np.complex128 if case.complex else np.float64)
    ref = reference_polar(a)
    start = time.perf_counter()
    u_in, h_in = polar(a_in, method=method)
    backend.synchronize()
    seconds = time.perf_counter() - start
    u = backend.to_numpy(u_in).astype(a.dtype)
    h = backend.to_numpy(h_in).astype(a.dtype)

    tol = TOLERANCES[dtype]
    mask = _significant(ref, dtype)
    orth = float(np.max(orthogonality_error(u)))
    bwd = float(np.max(backward_error(a, u, h)))
    fwd = _projected_distance(u, ref.u, ref, mask)
    s_sig = np.where(mask, ref.s, np.inf)
    cond_sig = float(np.max(ref.s[..., 0] / np.min(s_sig, axis=-1)))
    sigma_max = _sigma_max(u)

    deviation = band_low = band_high = None
    if spec.family == "polynomial":
        plan = spec.plan(None, None, {})
        exact, phi = exact_iterate(ref, plan.rows, plan.safety)
        deviation = _projected_distance(u, exact, ref, mask)
        band_low, band_high = float(phi[mask].min()), float(phi[mask].max())
        ceiling = schedule_band(plan.rows, 1e-6, 1.0 / plan.safety)[1] + tol.deviation
        failures = []
        if deviation > tol.deviation:
            failures.append(f"deviation {deviation:.1e} > {tol.deviation:.0e}")
        if sigma_max > ceiling:
            failures.append(f"σ_max(U) {sigma_max:.3f} > {ceiling:.3f}")
    else:
        failures = _check_accurate(tol, orth, bwd, fwd, cond_sig)
    return Result(
        method=method,
        backend=backend.name,
        device=backend.device_name,
        dtype=target_dtype,
        case=case.name,
        shape="×".join(str(s) for s in case.shape),
        cond=case.cond,
        orthogonality=orth,
        backward=bwd,
        forward=fwd,
        deviation=deviation,
        band_low=band_low,
        band_high=band_high,
        sigma_max=sigma_max,
        seconds=seconds,
        passed=not failures,
        reason="; ".join(failures),
    )


def requested_backends(names: Iterable[str] | str) -> list[Backend]:
    """Return the backends ``names`` (a list or a comma-separated string), all of them.

    Raises
    ------
    ValueError
        For an unknown name, or for requested backends that are not available
        here, one line each: not installed (and how to install it) or
        without a device.
    """
    if isinstance(names, str):
        names = names.replace(" ", "").split(",")
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"no backend named; choose from {', '.join(BACKEND_NAMES)}")
    found = available_backends(names)
    have = {b.name for b in found}
    missing = [n for n in dict.fromkeys(names) if n not in have]
    lines = []
    for name in missing:
        module, hint, gpu = _NEEDS[name]
        if importlib.util.find_spec(module) is None:
            why = f"{module} is not installed"
        elif gpu:
            why = f"{module} finds no GPU"
        else:
            why = f"{module} is installed but failed to load (try: python -c 'import {module}')"
        lines.append(f"backend {name} is not available here: {why}; {hint}")
    if lines:
        raise ValueError("\n".join(lines))
    return found


def run(
    backends: Iterable[str] | str | None = None,
    methods: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    cases: Sequence[Case] = SUITE,
    *,
    on_row: RowCallback | None = None,
) -> list[Result]:
    """Run the validation suite and return its rows.

    Parameters
    ----------
    backends : iterable of str or str, optional
        Backend names, each of which must be available
        (:func:`requested_backends`); default: every installed one, or those
        of ``POLARLINALG_BACKENDS`` that are installed (see
        :func:`polarlinalg.backends.available_backends`).
    methods : sequence of str, optional
        Method names (default: all of :data:`polarlinalg.METHODS`).
    dtypes : sequence of str, optional
        Subset of :data:`DTYPES`; the complex cases run in the matching
        complex dtype (complex64 with float32, complex128 with float64).
    cases : sequence of Case, optional
        The matrices (default :data:`SUITE`).
    on_row : callable, optional
        ``on_row(row, done, total)`` is called as soon as each row is computed
        (``polarlinalg validate`` streams its progress with it).

    Raises
    ------
    ValueError
        For an unknown method or dtype, or a named backend that is not
        available.
    """
    methods = list(METHODS if methods is None else methods)
    for name in methods:
        get_method(name)
    dtypes = list(DTYPES if dtypes is None else dtypes)
    bad = sorted(set(dtypes) - set(DTYPES))
    if bad:
        raise ValueError(_dtype_error(bad))
    found = available_backends() if backends is None else requested_backends(backends)
    jobs = [
        (backend, method, dtype, case)
        for backend in found
        for method in methods
        for dtype in dtypes
        for case in cases
        if _applies(backend, dtype, case)
    ]
    rows: list[Result] = []
    for job in jobs:
        result = _run_one(*job)
        if result is not None:
            rows.append(result)
            if on_row is not None:
                on_row(result, len(rows), len(jobs))
    return rows


def _dtype_error(bad: list[str]) -> str:
    lines = [f"unknown dtype(s) {', '.join(bad)}; choose from {', '.join(DTYPES)}"]
    real = {c: r for r, c in _COMPLEX.items()}
    lines += [
        f"{c}: the complex cases of the suite run in {c} with {real[c]}" for c in bad if c in real
    ]
    return "\n".join(lines)


def _sci(x: float | None) -> str:
    return "—" if x is None else f"{x:.1e}"


def format_table(rows: Sequence[Result]) -> str:
    """Render the rows as a fixed-width text table."""
    header = (
        "method",
        "backend",
        "device",
        "dtype",
        "case",
        "shape",
        "κ",
        "orthog.",
        "backward",
        "forward",
        "deviation",
        "exact σ′ band",
        "σmax(U)",
        "status",
    )
    body = []
    for r in rows:
        band = "—" if r.band_low is None else f"[{r.band_low:.3f}, {r.band_high:.3f}]"
        body.append(
            (
                r.method,
                r.backend,
                r.device,
                r.dtype,
                r.case,
                r.shape,
                f"{r.cond:.0e}",
                _sci(r.orthogonality),
                _sci(r.backward),
                _sci(r.forward),
                _sci(r.deviation),
                band,
                f"{r.sigma_max:.3f}",
                "pass" if r.passed else "FAIL: " + r.reason,
            )
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(rows: Sequence[Result]) -> str:
    """Return the rows as JSON (a list of objects; floats, with null for n/a)."""

    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return json.dumps([{k: clean(v) for k, v in asdict(r).items()} for r in rows], indent=2)
