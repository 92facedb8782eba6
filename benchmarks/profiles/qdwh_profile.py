"""Where the time of ``polarlinalg.polar(a, method="qdwh")`` goes, beside ``scipy.linalg.polar``.

Builds the benchmark's input (one ``n × n`` float64 matrix of condition ``--cond``
from :func:`polarlinalg.testing.random_matrix`, seed 0, as
:mod:`polarlinalg.bench.runner` does), runs our QDWH once with
``return_info=True`` to learn the lower bound it used and how many steps it ran,
and then replays the method phase by phase: the same NumPy/SciPy/LAPACK calls
that :mod:`polarlinalg._methods.qdwh` (through :mod:`._rational`,
:mod:`._lower_bound` and :mod:`polarlinalg._compat`) makes, in the same order and
on the same shapes, with the QR form split into ``geqrf`` / ``orgqr`` / the
product ``Q₁Q₂ᴴ`` and the Cholesky form into the Gram matrix / ``potrf`` /
``potrs`` (the two triangular solves).  It also times ``scipy.linalg.polar``
and its pieces (the ``gesdd`` SVD, ``U = WVᴴ``, ``H``) and both full calls.

Each phase is timed ``--repeats`` times and its minimum kept.  FLOPs are
counted (the Gram matrix ``XᴴX`` as NumPy computes it, with ``syrk``: ``mn²``;
the SVD with the Golub–Van Loan R-SVD count that :mod:`polarlinalg.bench.floors`
uses, a convention, not what ``gesdd`` executes).  BLAS threads default to 1
(``threadpoolctl`` when installed, else the usual environment variables, set
before NumPy is imported).  On a loaded machine compare FLOPs and shares, not
absolute times.

Run from the repository root::

    nice -n 19 .venv/bin/python benchmarks/profiles/qdwh_profile.py --json qdwh.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _limit_threads(threads: int) -> Any:
    """Limit BLAS threads: threadpoolctl if installed, else env vars (NumPy not yet imported)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if "numpy" in sys.modules:
            raise RuntimeError("NumPy was imported before the thread limit was set") from None
        for var in _THREAD_VARS:
            os.environ[var] = str(threads)
        return None
    import numpy  # noqa: F401  (load the BLAS so that threadpoolctl sees it)

    return threadpool_limits(limits=threads, user_api="blas")


class Phases:
    """Accumulates (phase, flops, seconds) rows.

    Calls with the same name within one repeat add up; across repeats
    (:meth:`next_repeat`) each phase keeps its minimum.
    """

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self._current: dict[str, float] = {}

    def run(self, group: str, name: str, flops: float, fn: Callable[..., Any], *args: Any) -> Any:
        """Time ``fn(*args)`` as the phase ``name`` of ``group``; return its result."""
        start = time.perf_counter()
        out = fn(*args)
        seconds = time.perf_counter() - start
        key = f"{group}: {name}"
        row = self.rows.setdefault(
            key, {"group": group, "phase": name, "flops": 0.0, "seconds": float("inf")}
        )
        if key not in self._current:
            row["flops"] = 0.0
        row["flops"] += flops
        self._current[key] = self._current.get(key, 0.0) + seconds
        return out

    def next_repeat(self) -> None:
        for key, seconds in self._current.items():
            self.rows[key]["seconds"] = min(self.rows[key]["seconds"], seconds)
        self._current = {}


def _qdwh_replay(ph: Phases, a: Any, lower: float, steps: list[Any], eps: float) -> Any:
    """Replay our QDWH (NumPy backend, one tall matrix) phase by phase; return ``(U, H)``."""
    import numpy as np
    import scipy.linalg
    from scipy.linalg import lapack
    from scipy.linalg._decomp_qr import safecall  # how scipy.linalg.qr calls LAPACK

    from polarlinalg._compat import array_namespace
    from polarlinalg._linalg import symmetrize
    from polarlinalg._methods._lower_bound import (
        _lu_solver,
        normalised,
        power_norm,
        start_vector,
    )
    from polarlinalg._methods._rational import (
        CHOLESKY_MIN_SHIFT,
        change,
        convergence_tolerance,
        orthogonal_enough,
        polish,
        scale_to_unit_norm,
    )
    from polarlinalg._methods.qdwh import _TESTABLE_C, NS

    xp = array_namespace(a)  # the namespace polar() dispatches to (array_api_compat's NumPy)
    m, n = a.shape
    g = "ours"
    ph.run(g, "input check (one sum)", m * n, lambda: bool(np.isfinite(np.sum(a))))
    x = ph.run(g, "normalise (elementwise)", 0.0, lambda: scale_to_unit_norm(xp, a))
    nu = ph.run(g, "power norm (8 x 2 matvec)", 8 * 4.0 * m * n, lambda: power_norm(xp, x, 8))

    def rescale() -> Any:
        scale = np.minimum(1.1 * nu, 1.0)
        return x / scale

    x = ph.run(g, "normalise (elementwise)", 0.0, rescale)

    # bound estimate (estimate_bounds): LU of xᵀ for square NumPy input, else R alone;
    # then power iterations for ‖X₀‖₂ and ‖X₀⁻¹‖₂
    use_lu = _lu_solver(xp, np.eye(2)) is not None and m == n
    if use_lu:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            fac = ph.run(
                g,
                "bound: LU of X0^T (getrf)",
                2.0 * n**3 / 3,
                lambda: scipy.linalg.lu_factor(x.T, check_finite=False),
            )
        diag, factor = np.diagonal(fac[0]), x

        def inverse(b: Any, adjoint: bool) -> Any:
            return scipy.linalg.lu_solve(fac, b, trans=1 if adjoint else 0, check_finite=False)
    else:
        r = ph.run(
            g, "bound: R-only QR (geqrf)", 2.0 * n * n * (m - n / 3), lambda: np.linalg.qr(x, "r")
        )
        diag, factor = np.diagonal(r), r

        def inverse(b: Any, adjoint: bool) -> Any:
            if adjoint:
                return scipy.linalg.solve_triangular(r.T, b, lower=True, check_finite=False)
            return scipy.linalg.solve_triangular(r, b, lower=False, check_finite=False)

    def bound_power() -> tuple[float, float]:
        assert bool(np.all(diag != 0))
        nu_max = power_norm(xp, factor, 6)
        w = start_vector(xp, factor)
        nu_inv = None
        for _ in range(6):
            t = inverse(w, True)
            nu_inv = np.linalg.vector_norm(t)
            w = normalised(xp, inverse(t, False))
        beta = min(1.1 * float(nu_max), 1.0)
        return beta, 1.0 / (1.5 * float(nu_inv) * beta)

    solve_flops = (4.0 if use_lu else 2.0) * n * n
    beta, est = ph.run(g, "bound: power iterations", 6 * (4.0 * m * n + solve_flops), bound_power)
    assert abs(est - lower) <= 1e-12 * lower, (est, lower)
    x = ph.run(g, "normalise (elementwise)", 0.0, lambda: x / beta)

    tol = convergence_tolerance(xp, x.dtype)
    done = False
    geqrf, orgqr = lapack.get_lapack_funcs(("geqrf", "orgqr"), (x,))
    for k, step in enumerate(steps, 1):
        if step == NS:
            name = f"NS step {k}"
            new = ph.run(g, f"{name}: polish (gram syrk + gemm)", 3.0 * m * n * n, polish, xp, x)
        else:
            a_w, b_w, c_w = step
            e = b_w / c_w
            s = 1.0 / c_w
            if s < CHOLESKY_MIN_SHIFT:
                name = f"QDWH step {k} (QR form, c={c_w:.3g})"
                root = np.sqrt(s)

                def stack(x: Any, root: float) -> Any:
                    # _qr_form: the transpose of [Xᵀ, √s·I] (column-major); SciPy copies it
                    st = np.concatenate([x.T, root * np.eye(n)], axis=1).T
                    return np.array(st, order="F")

                f = ph.run(g, f"{name}: stack (column-major) + copy", 0.0, stack, x, root)
                big = m + n
                qr, tau = ph.run(
                    g,
                    f"{name}: geqrf {big}x{n}",
                    2.0 * n * n * (big - n / 3),
                    lambda f: safecall(geqrf, "geqrf", f, overwrite_a=1)[:2],
                    f,
                )
                ph.run(g, f"{name}: triu R (scipy qr; discarded)", 0.0, np.triu, qr[:n, :])
                q = ph.run(
                    g,
                    f"{name}: orgqr (form Q)",
                    2.0 * n * n * (big - n / 3),
                    lambda qr, tau: safecall(orgqr, "orgqr", qr[:, :n], tau, overwrite_a=1)[0],
                    qr,
                    tau,
                )
                y = ph.run(
                    g,
                    f"{name}: Q1 Q2^H (gemm)",
                    2.0 * m * n * n,
                    lambda q, root: (q[:m, :] @ q[m:, :].T) * (1.0 / root),
                    q,
                    root,
                )
            else:
                name = f"QDWH step {k} (Cholesky form, c={c_w:.3g})"
                gram = ph.run(
                    g,
                    f"{name}: gram X^H X (syrk)",
                    1.0 * m * n * n,
                    lambda x: symmetrize(xp, x.T @ x),
                    x,
                )
                w = ph.run(g, f"{name}: + sI", 0.0, lambda gram, s: gram + s * np.eye(n), gram, s)
                factor = ph.run(
                    g,
                    f"{name}: potrf",
                    n**3 / 3.0,
                    lambda w: scipy.linalg.cho_factor(w, lower=True, check_finite=False),
                    w,
                )
                sol = ph.run(
                    g,
                    f"{name}: potrs (2 trsm)",
                    2.0 * m * n * n,
                    lambda factor, x: scipy.linalg.cho_solve(factor, x.T, check_finite=False),
                    factor,
                    x,
                )
                y = sol.T
            new = ph.run(
                g,
                f"{name}: combine (elementwise)",
                0.0,
                lambda x, y, e, a_w, c_w: e * x + ((a_w - e) / c_w) * y,
                x,
                y,
                e,
                a_w,
                c_w,
            )
        if step == NS or step[2] <= _TESTABLE_C:
            done = ph.run(
                g,
                "convergence tests",
                3.0 * m * n,
                lambda new, x: bool(change(xp, new, x) <= tol),
                new,
                x,
            )
        x = new
    # iterate(): one Gram matrix shared by the final orthogonality test and the polish
    gram = ph.run(g, "final gram X^H X (syrk, shared)", 1.0 * m * n * n, lambda: x.T @ x)
    if not done:  # the test is skipped eagerly once every matrix has converged
        ph.run(
            g,
            "final orthogonal_enough (6 matvec)",
            12.0 * n * n,
            lambda: orthogonal_enough(xp, x, gram),
        )
    u = ph.run(g, "final polish (gemm)", 2.0 * m * n * n, lambda: polish(xp, x, gram))
    h = ph.run(g, "H = sym(U^H A) (gemm)", 2.0 * m * n * n, lambda: symmetrize(xp, u.T @ a))
    return u, h


def _scipy_replay(ph: Phases, a: Any) -> Any:
    import scipy.linalg

    m, n = a.shape
    g = "scipy"
    w, s, vh = ph.run(
        g,
        "gesdd SVD (GVL R-SVD count)",
        6.0 * m * n * n + 20.0 * n**3,
        lambda: scipy.linalg.svd(a, full_matrices=False),
    )
    u = ph.run(g, "U = W Vh (gemm)", 2.0 * m * n * n, lambda: w.dot(vh))
    h = ph.run(g, "H = (V s) Vh (gemm)", 2.0 * n**3, lambda: (vh.T.conj() * s).dot(vh))
    return u, h


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1024, help="matrix size (1024)")
    parser.add_argument("--cond", type=float, default=1e3, help="condition number (1e3)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (1)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per phase, min kept (3)")
    parser.add_argument("--json", metavar="OUT", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    limiter = _limit_threads(args.threads)

    import numpy as np
    import scipy.linalg

    import polarlinalg as pl
    from polarlinalg._methods.qdwh import DEFAULT_MAX_STEPS, weight_schedule
    from polarlinalg.testing import random_matrix

    a = random_matrix((args.n, args.n), cond=args.cond, seed=0)
    (u_ref, _), info = pl.polar(a, method="qdwh", return_info=True)
    eps = float(np.finfo(np.float64).eps)
    schedule = weight_schedule(info.lower, eps, DEFAULT_MAX_STEPS)
    taken = info.iterations + info.finishing_steps - 1
    if taken > len(schedule):
        raise SystemExit("the run went past its schedule (replanned): replay not supported")
    steps = schedule[:taken]

    ph = Phases()
    full = Phases()
    for _ in range(args.repeats):
        u, _ = _qdwh_replay(ph, a, info.lower, steps, eps)
        _scipy_replay(ph, a)
        full.run("ours", "full pl.polar(a, method='qdwh')", 0.0, lambda: pl.polar(a, method="qdwh"))
        full.run("scipy", "full scipy.linalg.polar(a)", 0.0, lambda: scipy.linalg.polar(a))
        ph.next_repeat()
        full.next_repeat()
    replay_err = float(np.max(np.abs(u - u_ref)))

    rows = list(ph.rows.values())
    totals = {}
    for group in ("ours", "scipy"):
        grp = [r for r in rows if r["group"] == group]
        totals[group] = (sum(r["flops"] for r in grp), sum(r["seconds"] for r in grp))
        for r in grp:
            r["share"] = r["seconds"] / totals[group][1]
    print(
        f"n={args.n} cond={args.cond:g} threads={args.threads} repeats={args.repeats} "
        f"lower={info.lower:.3g} iterations={info.iterations} "
        f"finishing_steps={info.finishing_steps} (final polish included)"
    )
    print(
        f"schedule run: {[w if isinstance(w, str) else round(w[2], 3) for w in steps]} (c values)"
    )
    print(f"max |U_replay - U_polar| = {replay_err:.2e}")
    header = f"{'phase':<62} {'GFLOP':>7} {'ms':>9} {'GFLOP/s':>8} {'share':>6}"
    for group in ("ours", "scipy"):
        print(f"\n[{group}]\n{header}")
        for r in (r for r in rows if r["group"] == group):
            rate = f"{r['flops'] / r['seconds'] / 1e9:8.1f}" if r["flops"] else f"{'—':>8}"
            print(
                f"{r['phase']:<62} {r['flops'] / 1e9:7.2f} {1e3 * r['seconds']:9.1f} "
                f"{rate} {100 * r['share']:5.1f}%"
            )
        fl, sec = totals[group]
        print(f"{'sum of phases':<62} {fl / 1e9:7.2f} {1e3 * sec:9.1f} {fl / sec / 1e9:8.1f}")
    for r in full.rows.values():
        print(f"{r['phase']:<62} {'':>7} {1e3 * r['seconds']:9.1f}")
    ratio = (
        full.rows["ours: full pl.polar(a, method='qdwh')"]["seconds"]
        / full.rows["scipy: full scipy.linalg.polar(a)"]["seconds"]
    )
    print(f"full-call ratio ours/scipy: {ratio:.2f}")
    if args.json:
        payload = {
            "n": args.n,
            "cond": args.cond,
            "threads": args.threads,
            "repeats": args.repeats,
            "lower": info.lower,
            "iterations": info.iterations,
            "finishing_steps": info.finishing_steps,
            "rows": rows,
            "full": list(full.rows.values()),
            "totals": {k: {"flops": v[0], "seconds": v[1]} for k, v in totals.items()},
            "ratio": ratio,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1)
    del limiter
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
