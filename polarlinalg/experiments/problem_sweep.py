r"""Learning-rate sweeps of the matrix problems' arms, bracketed until the optimum is interior.

``polarlinalg experiment quadratic|logistic|completion --sweep ARM[,ARM…]``
sweeps each named arm's initial rate ``γ₀`` with a
:class:`~polarlinalg.experiments.sweep.Bracket` started at the arm's rate (the
paper's, or the ``--quick`` one): the objective of a rate is the median over
the sweep's seeds of the arm's final metric (the gap ``f(X_T) − f*`` where
``f*`` is known, else the minibatch loss averaged over the last tenth of the
run, as in :func:`polarlinalg.experiments.report.summarize`); a diverged run
counts as worse than any finite one.  A ``StepLR`` decay keeps its shape: the
sweep scales ``γ₀``.

The default sweep seed (:data:`SWEEP_SEEDS`) is not one of the paper's result
seeds (42, 142, 242), so a rate is never chosen on the runs that report it.

:func:`write_sweep` writes ``sweep.json`` (every point with its per-seed
values), ``sweep.md`` and ``sweep.png`` (metric against rate, one panel per arm).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polarlinalg.experiments.sweep import (
    Bracket,
    SweepPoint,
    format_points,
    immediate,
    plot_brackets,
    run_brackets,
)

__all__ = ["SWEEP_SEEDS", "final_metric", "sweep_arms", "sweep_markdown", "write_sweep"]

SWEEP_SEEDS = (1042,)
"""Default seeds of a sweep: none of the paper's result seeds (42, 142, 242)."""


def final_metric(trace: Any) -> float:
    """Return the run's final metric as the summary table reports it; ``inf`` if it diverged."""
    from polarlinalg.experiments.report import summarize

    if trace.diverged:
        return math.inf
    (row,) = summarize([trace], 0.5)
    return row.final


def _objective(values: Sequence[float]) -> float:
    if not all(math.isfinite(v) for v in values):
        return math.inf
    return float(np.median(values))


def sweep_arms(
    arms: Sequence[Any],
    seeds: Sequence[int],
    run: Callable[[Any, int], Any],
    *,
    factor: float = math.sqrt(10.0),
    max_points: int = 10,
    on_point: Callable[[str, SweepPoint], None] | None = None,
) -> dict[str, Bracket]:
    """Sweep the initial learning rate of each arm; return arm name → its bracket.

    Parameters
    ----------
    arms : sequence of :class:`~polarlinalg.experiments.arms.Arm`
        Each is swept from its own ``lr``.
    seeds : sequence of int
        The seeds every rate is run with (at least one).
    run : callable
        ``run(arm, seed)`` trains ``arm`` and returns its
        :class:`~polarlinalg.experiments.runner.Trace`.
    factor, max_points
        As in :class:`~polarlinalg.experiments.sweep.Bracket`.
    on_point : callable, optional
        ``on_point(arm_name, point)`` after each recorded rate.
    """
    if not seeds:
        raise ValueError("a sweep needs at least one seed")
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"an arm is named twice in {names}")
    by_name = {arm.name: arm for arm in arms}
    brackets = {arm.name: Bracket(arm.lr, factor=factor, max_points=max_points) for arm in arms}

    def evaluate(name: str, lr: float) -> tuple[float, dict[str, Any]]:
        arm = by_name[name].with_lr(lr)
        values = [final_metric(run(arm, seed)) for seed in seeds]
        return _objective(values), {"seeds": list(seeds), "final_per_seed": values}

    run_brackets(brackets, lambda name, lr: immediate(evaluate, name, lr), on_point=on_point)
    return brackets


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "diverged"


def sweep_markdown(brackets: Mapping[str, Bracket], metric: str) -> str:
    """One table row per arm: every rate → median final metric (best in bold), the optimum."""
    lines = [
        f"| arm | learning rate → median final {metric} | optimum | interior |",
        "|---|---|---|---|",
    ]
    for name, bracket in brackets.items():
        best = bracket.best
        lines.append(
            f"| `{name}` | {format_points(bracket, _fmt)} | "
            f"{'—' if best is None else f'{best.lr:.3g}'} | "
            f"{'yes' if bracket.interior else 'NO: ' + bracket.message} |"
        )
    return "\n".join(lines) + "\n"


def write_sweep(
    out: str | Path,
    brackets: Mapping[str, Bracket],
    *,
    meta: Mapping[str, Any],
    metric: str,
    plots: bool = True,
) -> list[Path]:
    """Write ``sweep.json``, ``sweep.md`` and (with ``plots``) ``sweep.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {**meta, "metric": metric, "arms": {n: b.summary() for n, b in brackets.items()}}
    written = [out / "sweep.json", out / "sweep.md"]
    written[0].write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    title = str(meta.get("title", ""))
    written[1].write_text(
        (f"{title}\n\n" if title else "") + sweep_markdown(brackets, metric), encoding="utf-8"
    )
    if plots and brackets:
        written.append(
            plot_brackets(brackets, out / "sweep.png", title, f"final {metric} (median)", logy=True)
        )
    return written
