"""What is timed: polarlinalg's methods and the anchors, per backend.

A :class:`Candidate` is a callable on one input array plus the list of
operations of its floor (:mod:`polarlinalg.bench.floors`).  Anchors are the
alternatives a user would pick instead, included when installed:

* ``scipy.linalg.polar`` (NumPy; SVD-based, a Python loop over a stack);
* ``jax.scipy.linalg.polar`` with ``method="qdwh"`` and ``"svd"`` (JAX, jitted;
  it supports only ``m ≥ n`` for the right polar decomposition);
* the SVD-based polar of PyTorch and CuPy (``U = PQᴴ``, ``H = QΣQᴴ``);
* ``torch.optim.Muon``'s own Newton–Schulz (a private function of
  ``torch/optim/_muon.py``, imported guardedly: a torch without it just has
  no such row; it always computes in bfloat16 and takes single matrices);
* a plain Jordan-style NS5 loop written here (5 steps, coefficients
  ``(3.4445, −4.775, 2.0315)``, ``torch.addmm`` on PyTorch);
* for :func:`polarlinalg.inv_root`: ``scipy.linalg.fractional_matrix_power``
  (NumPy; Schur–Padé, in float64 whatever the input; single matrices).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from polarlinalg._dtypes import has_bfloat16_matmul
from polarlinalg.bench.cases import Case
from polarlinalg.bench.floors import (
    Op,
    accurate_ops,
    gram_newton_schulz_ops,
    inv_root_ops,
    newton_schulz_ops,
    svd_polar_ops,
)

__all__ = [
    "ACCURATE",
    "INV_ROOT",
    "JORDAN",
    "POLYNOMIAL",
    "Candidate",
    "anchors_for",
    "inv_root_candidates",
    "polarlinalg_candidates",
]

POLYNOMIAL = ("newton_schulz", "polar_express", "gram_newton_schulz")
"""polarlinalg's Newton–Schulz family."""

ACCURATE = ("qdwh", "zolo", "newton", "svd")
"""polarlinalg's methods accurate to working precision."""

INV_ROOT = "inv_root"
"""The ``--methods`` name of the :func:`polarlinalg.inv_root` rows (both of its methods)."""

JORDAN = (3.4445, -4.775, 2.0315)
NS_STEPS = 5

GRAM_ONE_BLOCK = 5
"""Restart period of the extra Gram Newton–Schulz row: one block for the default 5 steps.

The default period (3) restarts once in 5 steps, which caps the flop saving at
1.5× for aspect 4; a single block saves 1.8×.  In float32 the two give the same
result at 5 steps (docs/performance.md); for longer schedules one block per 5
steps is measurably less accurate, so the library's default stays 3."""


@dataclass
class Candidate:
    """One timed callable.

    Attributes
    ----------
    name : str
        Row label (a polarlinalg method name, or the anchor's name).
    source : {"polarlinalg", "anchor"}
    family : {"polynomial", "accurate", "inv_root"}
    fn : callable
        Takes one input array; returns ``u`` or ``(u, h)``.
    ops : callable
        ``ops(case, x)`` returns the floor's operations for input ``x``.
    jitted : bool
        Compiled with ``jax.jit`` (its first call includes compilation).
    supports : callable
        ``supports(case)``: whether this candidate can take the case.
    note : str
        One line for the docs.
    unsupported : str
        The reason recorded among the skipped rows where ``supports`` says no.
    """

    name: str
    source: str
    family: str
    fn: Callable[[Any], Any]
    ops: Callable[[Case, Any], list[Op]]
    jitted: bool = False
    supports: Callable[[Case], bool] = field(default=lambda case: True)
    note: str = ""
    unsupported: str = "shape not supported"


def _is_jax(backend: Any) -> bool:
    return backend.name.startswith("jax")


def _eps(xp: Any, x: Any) -> float:
    return float(xp.finfo(x.dtype).eps)


def _jordan_ops(case: Case, x: Any) -> list[Op]:
    return newton_schulz_ops(case.batch, case.m, case.n, [JORDAN] * NS_STEPS)


# --- polarlinalg ---------------------------------------------------------------------------


def _polynomial_ops(method: str, **options: Any) -> Callable[[Case, Any], list[Op]]:
    from polarlinalg._methods import get_method

    def ops(case: Case, x: Any) -> list[Op]:
        spec = get_method(method)
        plan = spec.plan(None, None, options)
        if method == "gram_newton_schulz":
            from polarlinalg._methods import gram_newton_schulz as gns

            limit = float("inf")
            if case.dtype in ("bfloat16", "float16"):
                limit = gns._FLOAT16_GROWTH_LIMIT
            blocks = gns.blocks(plan.rows, plan.restart, limit)
            return gram_newton_schulz_ops(case.batch, case.m, case.n, blocks)
        return newton_schulz_ops(case.batch, case.m, case.n, plan.rows)

    return ops


def _qdwh_steps(lower: float, eps: float, iterations: int) -> list[tuple[str, int]]:
    from polarlinalg._methods._rational import CHOLESKY_MIN_SHIFT
    from polarlinalg._methods.qdwh import DEFAULT_MAX_STEPS, NS, weight_schedule

    weights = [w for w in weight_schedule(lower, eps, DEFAULT_MAX_STEPS) if w != NS]
    weights = (weights + [(3.0, 1.0, 3.0)] * iterations)[:iterations]  # Halley after the schedule
    return [("qr" if 1.0 / c < CHOLESKY_MIN_SHIFT else "cholesky", 1) for _, _, c in weights]


def _zolo_steps(lower: float, eps: float, iterations: int) -> list[tuple[str, int]]:
    from polarlinalg._methods._lower_bound import LOWER_MARGIN
    from polarlinalg._methods._rational import CHOLESKY_MIN_SHIFT
    from polarlinalg._methods.zolo import _FALLBACK, DEFAULT_MAX_STEPS, design_schedule

    steps = design_schedule(lower, eps, DEFAULT_MAX_STEPS, margin=LOWER_MARGIN)
    steps = (steps + [_FALLBACK] * iterations)[:iterations]
    out = []
    for step in steps:
        qr = sum(1 for s in step.shifts if s < CHOLESKY_MIN_SHIFT)
        if qr:
            out.append(("qr", qr))
        if len(step.shifts) - qr:
            out.append(("cholesky", len(step.shifts) - qr))
    return out


def _static_info(method: str, eps: float) -> tuple[int, int]:
    """Return (iterations, finishing steps) of a traced run: the schedule from ``ℓ = ε``."""
    if method == "qdwh":
        from polarlinalg._methods.qdwh import DEFAULT_MAX_STEPS, NS, weight_schedule

        schedule = weight_schedule(eps, eps, DEFAULT_MAX_STEPS)
        ns = sum(1 for w in schedule if w == NS)
        return len(schedule) - ns, ns + 1
    if method == "zolo":
        from polarlinalg._methods.zolo import DEFAULT_MAX_STEPS, design_schedule

        return len(design_schedule(eps, eps, DEFAULT_MAX_STEPS)), 1
    if method == "newton":
        from polarlinalg._methods.newton import static_counts

        newton, ns = static_counts(eps, eps)
        return newton, ns + 1
    raise ValueError(f"no static schedule for {method!r}")


def _accurate_ops(method: str, traced: bool) -> Callable[[Case, Any], list[Op]]:
    def ops(case: Case, x: Any) -> list[Op]:
        b, m, n = case.batch, max(case.m, case.n), min(case.m, case.n)
        if method == "svd":
            return svd_polar_ops(b, m, n)
        from polarlinalg._compat import array_namespace

        xp = array_namespace(x)
        eps = _eps(xp, x)
        if traced:
            lower = eps
            iterations, finishing = _static_info(method, eps)
        else:
            import polarlinalg as pl

            _, info = pl.polar(x, method=method, return_info=True, check_finite=False)
            lower, iterations, finishing = info.lower, info.iterations, info.finishing_steps
        if method == "newton":
            out = [Op("qr", b, (m, n)), *[Op("inv", b, (n,))] * iterations]
            out += [Op("matmul", b, (n, n, n))] * (2 * finishing)
            return [*out, Op("matmul", b, (m, n, n)), Op("matmul", b, (n, m, n))]
        steps = (_qdwh_steps if method == "qdwh" else _zolo_steps)(lower, eps, iterations)
        return accurate_ops(b, m, n, estimate=not traced, steps=steps, finishing=finishing)

    return ops


def polarlinalg_candidates(backend: Any, methods: Sequence[str]) -> list[Candidate]:
    """Return polarlinalg's ``methods`` on ``backend`` as candidates (jitted on JAX).

    The Newton–Schulz family runs through :func:`polarlinalg.orthogonalize`
    (as an optimizer calls it), the accurate methods through
    :func:`polarlinalg.polar` (both factors, as ``scipy.linalg.polar``);
    ``check_finite=False`` in both.  ``gram_newton_schulz`` also gets a row
    with ``restart=GRAM_ONE_BLOCK``.
    """
    import polarlinalg as pl

    jit = _is_jax(backend)
    out = []
    for method in methods:
        polynomial = method in POLYNOMIAL
        variants: list[tuple[str, dict[str, Any]]] = [(method, {})]
        if method == "gram_newton_schulz":
            variants.append((f"{method} restart={GRAM_ONE_BLOCK}", {"restart": GRAM_ONE_BLOCK}))
        for name, options in variants:
            entry = pl.orthogonalize if polynomial else pl.polar
            fn = functools.partial(entry, method=method, check_finite=False, **options)
            if jit:
                import jax

                fn = jax.jit(fn)
            ops = (
                _polynomial_ops(method, **options)
                if polynomial
                else _accurate_ops(method, traced=jit)
            )
            out.append(
                Candidate(
                    name=name,
                    source="polarlinalg",
                    family="polynomial" if polynomial else "accurate",
                    fn=fn,
                    ops=ops,
                    jitted=jit,
                    note=("orthogonalize" if polynomial else "polar")
                    + (", jax.jit" if jit else "")
                    + (f", restart={options['restart']}" if options else ""),
                )
            )
    return out


def _inv_root_ops(method: str, p: int, traced: bool) -> Callable[[Case, Any], list[Op]]:
    """Floor of ``inv_root``: eigh and one product, or the Newton steps actually run.

    Eagerly the step count is the run's own (early exit); under ``jax.jit``
    the fixed count, :func:`polarlinalg._inv_root.default_newton_steps`.
    """

    def ops(case: Case, x: Any) -> list[Op]:
        if method == "eigh":
            return inv_root_ops(case.batch, case.n, "eigh", p, 0)
        from polarlinalg._compat import array_namespace
        from polarlinalg._inv_root import default_newton_steps, newton_run

        xp = array_namespace(x)
        steps = default_newton_steps(xp, x.dtype, p)
        if not traced:
            steps = newton_run(xp, x, p, 0.0, steps, x.dtype).iterations
        return inv_root_ops(case.batch, case.n, "newton", p, steps)

    return ops


def inv_root_candidates(backend: Any, p: int) -> list[Candidate]:
    """Return ``inv_root(a, p)`` by ``"eigh"`` and by ``"newton"`` (jitted on JAX)."""
    import polarlinalg as pl

    jit = _is_jax(backend)
    out = []
    for method in ("eigh", "newton"):
        fn = functools.partial(pl.inv_root, p=p, method=method, check_finite=False)
        if jit:
            import jax

            fn = jax.jit(fn)
        out.append(
            Candidate(
                name=f"inv_root ({method})",
                source="polarlinalg",
                family="inv_root",
                fn=fn,
                ops=_inv_root_ops(method, p, traced=jit),
                jitted=jit,
                note=f"inv_root(a, {p}, method={method!r})" + (", jax.jit" if jit else ""),
            )
        )
    return out


def _fractional_power(p: int) -> Callable[[Any], Any]:
    def root(a: Any) -> Any:
        import scipy.linalg

        return scipy.linalg.fractional_matrix_power(a, -1.0 / p).real

    return root


# --- anchors ---------------------------------------------------------------------------------


def _plain_ns5(backend: Any) -> Callable[[Any], Any]:
    """Return a Jordan-style NS5 loop in the backend's own idiom."""
    a, b, c = JORDAN
    xp = backend.xp
    if backend.name.startswith("torch"):
        import torch

        def loop(g: Any) -> Any:
            tall = g.shape[-2] > g.shape[-1]
            x = g.mT if tall else g
            x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=1e-7)
            mm = torch.addmm if x.ndim == 2 else torch.baddbmm
            for _ in range(NS_STEPS):
                gram = x @ x.mT
                x = mm(x, mm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
            return x.mT if tall else x

        return loop

    def generic(g: Any) -> Any:
        tall = g.shape[-2] > g.shape[-1]
        x = xp.matrix_transpose(g) if tall else g
        x = x / xp.maximum(xp.linalg.matrix_norm(x, keepdims=True), 1e-7)
        for _ in range(NS_STEPS):
            gram = x @ xp.matrix_transpose(x)
            x = a * x + (b * gram + c * (gram @ gram)) @ x
        return xp.matrix_transpose(x) if tall else x

    if _is_jax(backend):
        import jax

        return jax.jit(generic)
    return generic


def _svd_polar(xp: Any) -> Callable[[Any], Any]:
    def polar(a: Any) -> tuple[Any, Any]:
        p, s, qh = xp.linalg.svd(a, full_matrices=False)
        q = xp.matrix_transpose(qh)
        return p @ qh, (q * s[..., None, :]) @ qh

    return polar


def _scipy_polar(a: Any) -> Any:
    import numpy as np
    import scipy.linalg

    if a.ndim == 2:
        return scipy.linalg.polar(a)
    pairs = [scipy.linalg.polar(m) for m in a]
    return np.stack([u for u, _ in pairs]), np.stack([h for _, h in pairs])


def _svd_anchor_ops(case: Case, x: Any) -> list[Op]:
    return svd_polar_ops(case.batch, case.m, case.n)


def _jax_anchors(backend: Any) -> list[Candidate]:
    import jax
    import jax.scipy.linalg as jsl

    def polar(method: str) -> Callable[[Any], Any]:
        one = functools.partial(jsl.polar, method=method)
        return jax.jit(lambda a: one(a) if a.ndim == 2 else jax.vmap(one)(a))

    qdwh_ops = _accurate_ops("qdwh", traced=True)
    return [
        Candidate(
            "jax.scipy.linalg.polar (qdwh)",
            "anchor",
            "accurate",
            polar("qdwh"),
            qdwh_ops,
            jitted=True,
            supports=lambda case: case.m >= case.n,
            note="jitted (vmap over a stack); floor: polarlinalg's static QDWH schedule",
        ),
        Candidate(
            "jax.scipy.linalg.polar (svd)",
            "anchor",
            "accurate",
            polar("svd"),
            _svd_anchor_ops,
            jitted=True,
            supports=lambda case: case.m >= case.n,
            note="jitted (vmap over a stack)",
        ),
    ]


EMULATED_BF16_WORK = 256 * 256 * 1024
"""Largest ``k²N`` (short side ``k``, long side ``N``) at which the always-bfloat16
``torch.optim.Muon`` anchor is timed where PyTorch emulates bfloat16 products
(:func:`polarlinalg._dtypes.has_bfloat16_matmul`): there a 1024² call takes about
30 s and a 2048² one four minutes, against 0.2 and 1.8 s in float32."""


def _short_side_work(case: Case) -> int:
    k, n = min(case.m, case.n), max(case.m, case.n)
    return k * k * n


def _torch_muon_ns() -> Callable[[Any], Any] | None:
    try:
        from torch.optim._muon import _zeropower_via_newtonschulz
    except ImportError:
        return None
    return lambda g: _zeropower_via_newtonschulz(g, JORDAN, NS_STEPS, 1e-7)


def anchors_for(backend: Any, family: str, p: int = 4) -> list[Candidate]:
    """Return the anchors of ``family`` installed for ``backend``.

    ``family`` is "polynomial", "accurate" or "inv_root" (whose anchors take
    the root ``p``).
    """
    out: list[Candidate] = []
    name = backend.name
    if family == "inv_root":
        if name == "numpy":
            try:
                import scipy.linalg
            except ImportError:
                return out
            out.append(
                Candidate(
                    "scipy.linalg.fractional_matrix_power",
                    "anchor",
                    "inv_root",
                    _fractional_power(p),
                    _inv_root_ops("eigh", p, traced=False),
                    supports=lambda case: case.batch == 1,
                    note="Schur–Padé in float64 (any input dtype); single matrices; floor: eigh's",
                )
            )
        return out
    if family == "polynomial":
        out.append(
            Candidate(
                "plain NS5 loop",
                "anchor",
                "polynomial",
                _plain_ns5(backend),
                _jordan_ops,
                jitted=_is_jax(backend),
                note="Jordan's coefficients, 5 steps, in the input dtype",
            )
        )
        if name.startswith("torch"):
            muon_ns = _torch_muon_ns()
            if muon_ns is not None:
                fast = has_bfloat16_matmul(backend.xp, backend.device)
                out.append(
                    Candidate(
                        "torch.optim.Muon NS",
                        "anchor",
                        "polynomial",
                        muon_ns,
                        _jordan_ops,
                        supports=lambda case: (
                            case.batch == 1
                            and (fast or _short_side_work(case) <= EMULATED_BF16_WORK)
                        ),
                        note="torch.optim._muon._zeropower_via_newtonschulz: always bfloat16",
                        unsupported="single matrices only"
                        if fast
                        else (
                            "single matrices only, and bfloat16 products are emulated on this "
                            "CPU (no bfloat16 in oneDNN, about 100x slower than float32): "
                            "timed up to k²N = 256²·1024 only"
                        ),
                    )
                )
        return out
    if name == "numpy":
        try:
            import scipy.linalg  # noqa: F401
        except ImportError:
            return out
        out.append(
            Candidate(
                "scipy.linalg.polar",
                "anchor",
                "accurate",
                _scipy_polar,
                _svd_anchor_ops,
                note="SVD-based (LAPACK gesdd); a Python loop over a stack",
            )
        )
    elif _is_jax(backend):
        out.extend(_jax_anchors(backend))
    elif name.startswith("torch") or name == "cupy":
        out.append(
            Candidate(
                f"{name.split('-')[0]} SVD polar",
                "anchor",
                "accurate",
                _svd_polar(backend.xp),
                _svd_anchor_ops,
                note="U = PQᴴ, H = QΣQᴴ from the framework's thin SVD",
            )
        )
    return out
