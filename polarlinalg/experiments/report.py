"""Results of the matrix experiments: summary table, CSV, JSON and plots.

The plots are the paper's three panels against the step ``k``: the loss gap
``f(X_k) − f*`` (the loss where ``f*`` is unknown) on a log scale, the
gradient's condition number ``κ₂(∇f(X_k))`` and its nuclear norm
``‖∇f(X_k)‖_*``; one line per arm, the median over seeds, with a band from
the minimum to the maximum over seeds and a marker per arm on the loss panel.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polarlinalg.experiments.runner import Trace

__all__ = [
    "Summary",
    "format_table",
    "plot",
    "read_json",
    "summarize",
    "write_csv",
    "write_json",
]


@dataclass(frozen=True)
class Summary:
    """One row of the summary table: an arm over its seeds.

    Attributes
    ----------
    arm, label : str
    seeds : int
        Number of runs.
    metric : str
        ``"gap"`` (``f − f*``) or ``"loss"`` where ``f*`` is unknown.
    final : float
        Median over seeds of the metric at the last step (for a minibatch loss, of
        its mean over the last tenth of the logged steps).
    final_min, final_max : float
        Its range over seeds.
    steps_to_threshold : float
        Median over seeds of the first step with ``metric ≤ threshold·metric₀``
        (NaN if a run never gets there).
    time_s : float
        Median over seeds of the optimizer's total wall time.
    ms_per_step : float
    diverged : int
        Number of runs that diverged.
    """

    arm: str
    label: str
    seeds: int
    metric: str
    final: float
    final_min: float
    final_max: float
    steps_to_threshold: float
    time_s: float
    ms_per_step: float
    diverged: int


def _metric(trace: Trace) -> tuple[str, np.ndarray]:
    gap = trace.columns["gap"]
    if np.all(np.isnan(gap)):
        return "loss", trace.columns["loss"]
    return "gap", gap


def _first_below(steps: np.ndarray, values: np.ndarray, level: float) -> float:
    hits = np.nonzero(values <= level)[0]
    return float(steps[hits[0]]) if hits.size else math.nan


def summarize(traces: Sequence[Trace], threshold: float) -> list[Summary]:
    """Return one :class:`Summary` per arm (in first-seen order).

    ``threshold`` is relative: a run reaches it at the first logged step with
    ``metric ≤ threshold · metric(X₀)``.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1); got {threshold!r}")
    groups: dict[str, list[Trace]] = {}
    for trace in traces:
        groups.setdefault(trace.arm, []).append(trace)
    rows = []
    for arm, runs in groups.items():
        finals, reach, times, per_step = [], [], [], []
        name = "gap"
        for run in runs:
            name, values = _metric(run)
            steps = run.columns["step"]
            if run.diverged:
                finals.append(math.inf)
            elif name == "loss":  # a minibatch loss is noisy: average the last tenth
                finals.append(float(np.mean(values[-max(1, len(values) // 10) :])))
            else:
                finals.append(float(values[-1]))
            reach.append(_first_below(steps, values, threshold * values[0]))
            times.append(run.columns["time"][-1])
            per_step.append(1e3 * run.columns["time"][-1] / max(int(steps[-1]), 1))
        finite_reach = np.asarray(reach)
        rows.append(
            Summary(
                arm=arm,
                label=runs[0].label,
                seeds=len(runs),
                metric=name,
                final=float(np.median(finals)),
                final_min=float(np.min(finals)),
                final_max=float(np.max(finals)),
                steps_to_threshold=(
                    math.nan if np.isnan(finite_reach).any() else float(np.median(finite_reach))
                ),
                time_s=float(np.median(times)),
                ms_per_step=float(np.median(per_step)),
                diverged=sum(run.diverged for run in runs),
            )
        )
    return rows


def _fmt(value: float, spec: str) -> str:
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "diverged"
    return format(value, spec)


def format_table(rows: Sequence[Summary], threshold: float, markdown: bool = False) -> str:
    """Return the summary as an aligned text table (or a Markdown table)."""
    metric = rows[0].metric if rows else "gap"
    head = [
        "arm",
        "final f − f* (median)" if metric == "gap" else "final loss, last 10% (median)",
        "range over seeds",
        f"steps to {threshold:g}×",
        "time (s)",
        "ms/step",
    ]
    body = [
        [
            r.label + (f" [{r.diverged} diverged]" if r.diverged else ""),
            _fmt(r.final, ".3e"),
            f"{_fmt(r.final_min, '.2e')} … {_fmt(r.final_max, '.2e')}",
            _fmt(r.steps_to_threshold, ".0f"),
            _fmt(r.time_s, ".1f"),
            _fmt(r.ms_per_step, ".2f"),
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt.format(*head), rule, *(fmt.format(*row) for row in body)])


def write_csv(traces: Sequence[Trace], path: str | Path) -> Path:
    """Write every logged step of every trace as one long CSV table; return the path."""
    path = Path(path)
    keys = sorted({k for t in traces for k in t.columns if k != "step"})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["problem", "arm", "seed", "step", *keys])
        for t in traces:
            for i, step in enumerate(t.columns["step"]):
                values = [t.columns[k][i] if k in t.columns else "" for k in keys]
                writer.writerow(
                    [
                        t.problem,
                        t.arm,
                        t.seed,
                        int(step),
                        *(repr(float(v)) if v != "" else "" for v in values),
                    ]
                )
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def write_json(
    traces: Sequence[Trace], summary: Sequence[Summary], meta: Mapping[str, Any], path: str | Path
) -> Path:
    """Write ``{"meta", "summary", "runs"}`` as JSON (NaN as null); return the path."""
    runs = [
        {
            "problem": t.problem,
            "arm": t.arm,
            "label": t.label,
            "seed": t.seed,
            "diverged": t.diverged,
            "columns": {k: v.tolist() for k, v in t.columns.items()},
        }
        for t in traces
    ]
    document = {"meta": meta, "summary": [asdict(r) for r in summary], "runs": runs}
    Path(path).write_text(json.dumps(_jsonable(document), indent=1) + "\n", encoding="utf-8")
    return Path(path)


def read_json(path: str | Path) -> tuple[list[Trace], dict[str, Any]]:
    """Return ``(traces, meta)`` from a file written by :func:`write_json` (to re-plot it)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))

    def column(values: list[Any]) -> np.ndarray:
        return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)

    traces = []
    for run in document["runs"]:
        columns = {k: column(v) for k, v in run["columns"].items()}
        columns["step"] = columns["step"].astype(np.int64)
        traces.append(
            Trace(run["problem"], run["arm"], run["label"], run["seed"], columns, run["diverged"])
        )
    return traces, document["meta"]


def _median_curve(runs: Sequence[Trace], key: str) -> tuple[np.ndarray, np.ndarray]:
    steps, median, _, _ = _median_band(runs, key)
    return steps, median


def _median_band(
    runs: Sequence[Trace], key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the steps and the median, minimum and maximum over seeds of ``key``."""
    shortest = min(len(r.columns["step"]) for r in runs)
    values = np.stack([r.columns[key][:shortest] for r in runs])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (diverged runs)
        return (
            runs[0].columns["step"][:shortest],
            np.nanmedian(values, axis=0),
            np.nanmin(values, axis=0),
            np.nanmax(values, axis=0),
        )


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "H")


def plot(traces: Sequence[Trace], path: str | Path, title: str = "") -> Path:
    """Save the three-panel figure (loss gap, κ₂(∇f), ‖∇f‖_*) as a PNG; return the path.

    Problems with two factors (completion) show ``X``'s gradient solid and
    ``Y``'s dashed.  Requires matplotlib (``pip install polarlinalg[experiments]``).
    """
    from polarlinalg._pyplot import pyplot

    plt = pyplot("plots")
    groups: dict[str, list[Trace]] = {}
    for trace in traces:
        groups.setdefault(trace.arm, []).append(trace)
    names = [k[len("grad_cond_") :] for k in traces[0].columns if k.startswith("grad_cond_")]
    metric, _ = _metric(traces[0])
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), constrained_layout=True)
    tab20 = plt.get_cmap("tab20").colors  # dark shades first: 20 distinct colours
    cycle = list(tab20[::2]) + list(tab20[1::2])
    for i, (arm, runs) in enumerate(groups.items()):
        color = cycle[i % len(cycle)]
        style = "--" if "decay" in arm else "-"
        steps, values, low, high = _median_band(runs, "gap" if metric == "gap" else "loss")
        positive = np.where(values > 0, values, np.nan)
        # markers at staggered steps: arms whose curves coincide stay visible
        every = (i % 7 * max(1, len(steps) // 70), max(1, len(steps) // 10))
        axes[0].semilogy(
            steps,
            positive,
            style,
            color=color,
            label=runs[0].label,
            lw=1.4,
            marker=MARKERS[i % len(MARKERS)],
            markevery=every,
            ms=5,
        )
        if len(runs) > 1:
            axes[0].fill_between(
                steps,
                np.where(low > 0, low, np.nan),
                np.where(high > 0, high, np.nan),
                color=color,
                alpha=0.12,
            )
        for j, name in enumerate(names):
            dash = style if j == 0 else ":"
            steps, cond = _median_curve(runs, f"grad_cond_{name}")
            axes[1].semilogy(steps, cond, dash, color=color, lw=1.1)
            steps, nuc = _median_curve(runs, f"grad_nuc_{name}")
            axes[2].semilogy(steps, nuc, dash, color=color, lw=1.1)
    suffix = "" if len(names) < 2 else f"  ({names[0]} solid, {names[1]} dotted)"
    axes[0].set_ylabel("f(X_k) − f*" if metric == "gap" else "f(X_k) (minibatch)")
    axes[1].set_ylabel("κ₂(∇f(X_k))" + suffix)
    axes[2].set_ylabel("‖∇f(X_k)‖_*")
    for ax in axes:
        ax.set_xlabel("step k")
        ax.grid(True, which="major", alpha=0.3)
    fig.legend(loc="outside lower center", ncol=min(6, len(groups)), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
