r"""Learning-rate sweeps of the benchmark's roles, bracketed until the optimum is interior.

``polarlinalg experiment lm --sweep ROLE[,ROLE…]`` sweeps each named role
(:data:`ROLE_ARMS` says which arm trains it) with a
:class:`~polarlinalg.experiments.sweep.Bracket` started at the preset's rate:
the objective is the final validation loss, averaged over the sweep's seeds
(a diverged run counts as worse than any finite loss).  Roles named in one
``--sweep`` are swept at the same time with every other rate fixed; a later
``--sweep`` (a later *stage*) runs with the earlier stages' optima, e.g.
AdamW first, then the matrix rules whose arms train the rest with AdamW,
then ``polargrad_embed_head``, whose arm uses Muon's rate.

:func:`write_sweep` writes ``sweep.json`` (every point, per seed),
``sweep.md`` and ``sweep.png`` (loss against rate, one panel per role).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from polarlinalg.experiments.lm.pool import RunPool, RunTask
from polarlinalg.experiments.lm.presets import Preset
from polarlinalg.experiments.sweep import (
    Bracket,
    SweepPoint,
    combine,
    format_points,
    plot_brackets,
    run_brackets,
)

__all__ = ["ROLE_ARMS", "SWEEP_SEEDS", "sweep_roles", "write_sweep"]

ROLE_ARMS: dict[str, str] = {
    "adamw": "adamw",
    "muon": "muon",
    "polargrad_hidden": "polargradm_polar_express",
    "polargrad_embed_head": "polargradm_embed_head",
    "shampoo": "shampoo",
    "soap": "soap",
    "normuon": "normuon",
}
"""The arm whose final validation loss measures each role's rate."""

SWEEP_SEEDS = (1000,)
"""Default seeds of a sweep: none of the result seeds (0, 1, 2) of the docs."""


def _objective(results: list[Any]) -> tuple[float, dict[str, Any]]:
    losses = [r.final_val_loss if not r.diverged else math.inf for r in results]
    mean = statistics.fmean(losses) if all(math.isfinite(v) for v in losses) else math.inf
    detail = {
        "seeds": [r.seed for r in results],
        "val_loss_per_seed": losses,
        "diverged": sum(r.diverged for r in results),
        "lrs": results[0].lrs,
        "train_time_s": [r.train_time for r in results],
    }
    return mean, detail


def sweep_roles(
    stages: Sequence[Sequence[str]],
    preset: Preset,
    seeds: Sequence[int],
    pool: RunPool,
    *,
    lrs: Mapping[str, float] | None = None,
    device: str = "cpu",
    cache_dir: str | None = None,
    factor: float = math.sqrt(10.0),
    max_points: int = 10,
    on_point: Callable[[str, SweepPoint], None] | None = None,
) -> tuple[dict[str, Bracket], dict[str, dict[str, float]]]:
    """Sweep the roles of each stage in turn; return the brackets and each role's fixed rates.

    Parameters
    ----------
    stages : sequence of sequences of str
        Roles (keys of :data:`ROLE_ARMS`); each stage starts from the rates
        of ``preset`` and ``lrs`` with the earlier stages' optima.
    preset : Preset
    seeds : sequence of int
        The sweep's seeds; a point's objective is the mean final validation
        loss over them.
    pool : RunPool
        Where the runs happen (entered by the caller).
    lrs : mapping, optional
        Rate overrides, as ``--lr``; a swept role starts its grid there.

    Returns
    -------
    brackets : dict
        Role → its :class:`~polarlinalg.experiments.sweep.Bracket` (check
        ``interior``; ``message`` says why not).
    fixed : dict
        Role → the rates of the other roles while it was swept.
    """
    seen: set[str] = set()
    for stage in stages:
        for role in stage:
            if role not in ROLE_ARMS:
                raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLE_ARMS)}")
            if role in seen:
                raise ValueError(f"role {role!r} is swept twice")
            seen.add(role)
    if not seeds:
        raise ValueError("a sweep needs at least one seed")
    rates = {**preset.lrs, **(lrs or {})}
    brackets: dict[str, Bracket] = {}
    fixed: dict[str, dict[str, float]] = {}
    for stage in stages:
        stage_brackets = {
            role: Bracket(rates[role], factor=factor, max_points=max_points) for role in stage
        }
        for role in stage:
            fixed[role] = {r: v for r, v in rates.items() if r != role}

        def submit(role: str, lr: float, base: Mapping[str, float] = dict(rates)) -> Any:
            task_lrs = {**base, role: lr}
            runs = [
                pool.submit(RunTask(preset, ROLE_ARMS[role], seed, task_lrs, device, cache_dir))
                for seed in seeds
            ]
            return combine(runs, _objective)

        run_brackets(stage_brackets, submit, on_point=on_point)
        for role, bracket in stage_brackets.items():
            brackets[role] = bracket
            if bracket.best is not None and math.isfinite(bracket.best.loss):
                rates[role] = bracket.best.lr
    return brackets, fixed


def _fmt(loss: float) -> str:
    return f"{loss:.3f}" if math.isfinite(loss) else "diverged"


def sweep_markdown(
    brackets: Mapping[str, Bracket], fixed: Mapping[str, Mapping[str, float]]
) -> str:
    """One table row per role: arm, the other rates, every rate → loss (best in bold)."""
    lines = [
        "| role (arm swept) | other rates fixed | learning rate → final validation loss "
        "| optimum | interior |",
        "|---|---|---|---|---|",
    ]
    for role, bracket in brackets.items():
        best = bracket.best
        others = ", ".join(
            f"{r} {v:.3g}" for r, v in fixed[role].items() if r in _roles_of(ROLE_ARMS[role])
        )
        lines.append(
            f"| `{role}` (`{ROLE_ARMS[role]}`) | {others or '—'} | "
            f"{format_points(bracket, _fmt)} | "
            f"{'—' if best is None else f'{best.lr:.3g}'} | "
            f"{'yes' if bracket.interior else 'NO: ' + bracket.message} |"
        )
    return "\n".join(lines) + "\n"


def _roles_of(arm: str) -> tuple[str, ...]:
    from polarlinalg.experiments.lm.arms import ARMS

    return ARMS[arm].roles


def write_sweep(
    out: str | Path,
    brackets: Mapping[str, Bracket],
    fixed: Mapping[str, Mapping[str, float]],
    *,
    meta: Mapping[str, Any],
    plots: bool = True,
) -> list[Path]:
    """Write ``sweep.json``, ``sweep.md`` and (with ``plots``) ``sweep.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        **meta,
        "roles": {
            role: {"arm": ROLE_ARMS[role], "fixed": dict(fixed[role]), **b.summary()}
            for role, b in brackets.items()
        },
    }
    written = [out / "sweep.json", out / "sweep.md"]
    written[0].write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    written[1].write_text(sweep_markdown(brackets, fixed), encoding="utf-8")
    if plots and brackets:
        written.append(
            plot_brackets(
                brackets, out / "sweep.png", str(meta.get("title", "")), "final validation loss"
            )
        )
    return written
