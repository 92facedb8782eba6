r"""Run one arm on one problem and log the paper's diagnostics at every step.

For ``k = 0, …, steps`` the trace holds, at the iterate ``X_k``: the loss
(on step ``k``'s minibatch for stochastic problems), the gap ``f(X_k) − f*``
where ``f*`` is known (for the quadratic problem evaluated in float64 on the
host, so a float32 run is measured against the float64 optimum), and for each
parameter the gradient's condition number ``κ₂(∇f) = σ_max/σ_min`` and nuclear
norm ``‖∇f‖_* = Σσᵢ`` (one ``svdvals`` on the backend); and the cumulative
wall time of the optimizer steps alone (gradient and update, device
synchronised, diagnostics excluded).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polarlinalg.experiments.arms import Arm, make_stepper

__all__ = ["Trace", "run_arm", "to_host"]


@dataclass
class Trace:
    """The log of one run: an arm on a problem with one seed.

    Attributes
    ----------
    problem, arm, label : str
    seed : int
    columns : dict of str to numpy.ndarray
        ``step``, ``loss``, ``gap`` (NaN where ``f*`` is unknown), ``time``
        (seconds, cumulative) and ``grad_cond_<name>``, ``grad_nuc_<name>`` per
        parameter; one entry per logged step.
    diverged : bool
        True if the loss became NaN or inf (the run stopped there).
    """

    problem: str
    arm: str
    label: str
    seed: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    diverged: bool = False

    @property
    def steps(self) -> int:
        """The last logged step."""
        return int(self.columns["step"][-1])


def to_host(x: Any) -> np.ndarray:
    """Return array ``x`` as a NumPy array (CPU arrays through DLPack)."""
    if isinstance(x, np.ndarray):
        return x
    get = getattr(x, "get", None)  # CuPy
    if callable(get) and type(x).__module__.startswith("cupy"):
        return get()
    cpu = getattr(x, "cpu", None)  # torch (any device)
    if callable(cpu) and type(x).__module__.startswith("torch"):
        return cpu().numpy()
    try:
        return np.from_dlpack(x)
    except (TypeError, RuntimeError, BufferError, AttributeError):
        return np.asarray(x)


def _block(params: dict[str, Any]) -> None:
    for value in params.values():
        wait = getattr(value, "block_until_ready", None)  # JAX dispatches asynchronously
        if callable(wait):
            wait()


def _spectrum(xp: Any, g: Any) -> tuple[float, float]:
    s = to_host(xp.linalg.svdvals(g)).astype(np.float64)
    smin = float(s.min())
    return (float(s.max()) / smin if smin > 0 else float("inf")), float(s.sum())


def run_arm(
    problem: Any,
    arm: Arm,
    *,
    steps: int,
    seed: int = 0,
    log_every: int = 1,
    synchronize: Callable[[], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> Trace:
    """Run ``arm`` for ``steps`` steps on ``problem`` and return its :class:`Trace`.

    Parameters
    ----------
    problem : QuadraticRegression, LogisticRegression or MatrixCompletion
        Any object with ``init_params``, ``loss``, ``grads``, ``sample_batch``,
        ``f_star``, ``parameter_names`` and ``xp``.
    arm : Arm
    steps : int
        Number of optimizer steps (the trace has ``steps // log_every + 1`` rows,
        plus the last step).
    seed : int, default 0
        Seed of the minibatch generator (the data's seed is the problem's).
    log_every : int, default 1
        Log diagnostics every this many steps (and at the last one).
    synchronize : callable, optional
        Waits for queued device work (``Backend.synchronize``) before a step's
        clock stops; JAX arrays are also waited on directly.
    on_step : callable, optional
        Called with the number of steps just taken (a progress bar's update).

    Returns
    -------
    Trace
        Stops early, with ``diverged=True``, if the loss becomes NaN or inf.
    """
    if steps < 0 or log_every < 1:
        raise ValueError(f"need steps >= 0 and log_every >= 1; got {steps}, {log_every}")
    xp = problem.xp
    stepper = make_stepper(arm, problem)
    rng = np.random.default_rng(seed)
    params = problem.init_params()
    state = stepper.init(params)
    names = tuple(problem.parameter_names)
    rows: dict[str, list[float]] = {key: [] for key in ("step", "loss", "gap", "time")}
    for name in names:
        rows[f"grad_cond_{name}"] = []
        rows[f"grad_nuc_{name}"] = []
    reference = getattr(problem, "reference_loss", None)
    elapsed = 0.0
    diverged = False
    batch = problem.sample_batch(rng)
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is logged, not warned
        for k in range(steps + 1):
            if k % log_every == 0 or k == steps:
                loss = float(to_host(problem.loss(params, batch)))
                if reference is not None:
                    host = {name: to_host(params[name]) for name in names}
                    gap = reference(host) - problem.f_star
                elif problem.f_star is not None:
                    gap = loss - problem.f_star
                else:
                    gap = float("nan")
                rows["step"].append(k)
                rows["loss"].append(loss)
                rows["gap"].append(gap)
                rows["time"].append(elapsed)
                finite = bool(np.isfinite(loss))
                grads = problem.grads(params, batch) if finite else {}
                for name in names:
                    cond, nuc = _spectrum(xp, grads[name]) if finite else (np.nan, np.nan)
                    rows[f"grad_cond_{name}"].append(cond)
                    rows[f"grad_nuc_{name}"].append(nuc)
                if not finite:
                    diverged = True
                    break
            if k == steps:
                break
            start = time.perf_counter()
            params, state = stepper.step(params, batch, state)
            _block(params)
            if synchronize is not None:
                synchronize()
            elapsed += time.perf_counter() - start
            batch = problem.sample_batch(rng)
            if on_step is not None:
                on_step(1)
            if not all(bool(xp.all(xp.isfinite(params[name]))) for name in names):
                rows["step"].append(k + 1)
                rows["time"].append(elapsed)
                for key in rows:
                    if key not in ("step", "time"):
                        rows[key].append(np.nan)
                diverged = True
                break
    columns = {key: np.asarray(values, dtype=np.float64) for key, values in rows.items()}
    columns["step"] = columns["step"].astype(np.int64)
    return Trace(problem.name, arm.name, arm.label, seed, columns, diverged)
