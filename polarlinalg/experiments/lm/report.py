"""Results on disk: CSV/JSON, the summary table and the PNG plots.

:func:`write_results` writes, into one directory,

- ``log.csv``: one row per (arm, seed, step) with the training loss and, where
  measured, the validation loss and the gradient statistics;
- ``runs.json``: per run its learning rates, final validation loss,
  tokens/s, optimizer share and time, plus the preset, the corpus and the
  environment (versions, device, date);
- ``summary.csv`` and ``summary.md``: per arm the mean (and standard deviation
  over seeds) of the final validation loss, tokens/s and optimizer share;
  ``summary.md`` also compares every arm with ``adamw`` and ``muon`` on the
  seeds they share (:func:`paired`), and PolarGrad's rate with Muon's
  (:mod:`polarlinalg.experiments.lm.lr_scale`);
- ``loss_vs_steps.png``, ``loss_vs_time.png``, ``grad_condition.png``.

:func:`read_results` reads such a directory back and :func:`merge_results`
combines several (arms run in separate processes or on separate machines)
into one report.

Only the plots need matplotlib (``pip install polarlinalg[experiments]``).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polarlinalg.experiments.lm.arms import ARMS
from polarlinalg.experiments.lm.lr_scale import (
    hidden_shape_scales,
    lr_scale_markdown,
    lr_scale_rows,
)
from polarlinalg.experiments.lm.results import RunResult

__all__ = [
    "BASELINES",
    "LOG_COLUMNS",
    "merge_results",
    "paired",
    "read_results",
    "summarize",
    "write_results",
]

BASELINES = ("adamw", "muon")
"""The arms every other arm is compared with, seed by seed, in ``summary.md``."""

LOG_COLUMNS = (
    "arm",
    "seed",
    "step",
    "time",
    "lr_factor",
    "train_loss",
    "val_loss",
    "kappa_embed",
    "kappa_head",
    "nuc_embed",
    "nuc_head",
    "nuc_m_hidden",
    "nuc_m_ends",
)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) != len(values) or not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else math.nan)


def summarize(results: Sequence[Any]) -> list[dict[str, Any]]:
    """Return one row per arm (in :data:`ARMS` order): seeds, final validation loss, speed."""
    by_arm: dict[str, list[Any]] = {}
    for r in sorted(results, key=lambda r: _arm_order(r.arm)):
        by_arm.setdefault(r.arm, []).append(r)
    rows = []
    for arm, runs in by_arm.items():
        mean, std = _mean_std([r.final_val_loss for r in runs])
        rows.append(
            {
                "arm": arm,
                "description": ARMS[arm].description if arm in ARMS else "",
                "seeds": len(runs),
                "val_loss_mean": mean,
                "val_loss_std": std,
                "val_loss_per_seed": [r.final_val_loss for r in runs],
                "diverged": sum(r.diverged for r in runs),
                "tokens_per_s": statistics.fmean(r.tokens_per_s for r in runs),
                "opt_share": statistics.fmean(r.opt_share for r in runs),
                "lrs": runs[0].lrs,
            }
        )
    return rows


def paired(results: Sequence[Any], baseline: str) -> list[dict[str, Any]]:
    r"""Compare every arm with ``baseline`` on the seeds both ran.

    For arm ``a`` and the shared seeds ``s = 1..n`` the differences
    ``d_s = L_a(s) − L_baseline(s)`` of final validation loss give the mean gap
    ``d̄``, its standard deviation and standard error ``SE = sd/√n``; the gap
    is called *clear* when ``|d̄| > 2·SE`` (needs ``n ≥ 2``; a diverged run in
    either arm makes the gap infinite in its direction).  Negative ``d̄``:
    the arm ends below the baseline.  Returns one dict per arm (not the
    baseline itself); empty when the baseline did not run.
    """
    finals: dict[str, dict[int, float]] = {}
    for r in sorted(results, key=lambda r: _arm_order(r.arm)):
        loss = math.inf if r.diverged else r.final_val_loss
        finals.setdefault(r.arm, {})[r.seed] = loss
    base = finals.get(baseline)
    if not base:
        return []
    rows = []
    for arm, by_seed in finals.items():
        if arm == baseline:
            continue
        seeds = sorted(set(by_seed) & set(base))
        diffs = [by_seed[s] - base[s] for s in seeds]
        finite = bool(diffs) and all(math.isfinite(d) for d in diffs)
        mean = statistics.fmean(diffs) if finite else math.nan
        sd = statistics.stdev(diffs) if finite and len(diffs) > 1 else math.nan
        se = sd / math.sqrt(len(diffs)) if math.isfinite(sd) else math.nan
        rows.append(
            {
                "arm": arm,
                "baseline": baseline,
                "seeds": seeds,
                "gap_mean": mean,
                "gap_std": sd,
                "gap_se": se,
                "clear": bool(math.isfinite(se) and abs(mean) > 2 * se),
            }
        )
    return rows


def _paired_markdown(results: Sequence[Any]) -> str:
    lines = []
    for baseline in BASELINES:
        rows = paired(results, baseline)
        if not rows:
            continue
        lines += [
            "",
            f"Paired against `{baseline}` (same seeds; gap = arm − {baseline}, final validation "
            "loss; *clear* when |mean| > 2 standard errors):",
            "",
            "| arm | seeds | mean gap | sd | standard error | clear? |",
            "|---|---|---|---|---|---|",
        ]
        for row in rows:
            verdict = "—"
            if math.isfinite(row["gap_se"]):
                side = "lower" if row["gap_mean"] < 0 else "higher"
                verdict = f"yes, {side}" if row["clear"] else "no"
            lines.append(
                f"| `{row['arm']}` | {len(row['seeds'])} | {row['gap_mean']:+.4f} | "
                f"{row['gap_std']:.4f} | {row['gap_se']:.4f} | {verdict} |"
            )
    return "\n".join(lines) + ("\n" if lines else "")


def _arm_order(arm: str) -> int:
    names = list(ARMS)
    return names.index(arm) if arm in ARMS else len(names)


def _format_lrs(lrs: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in lrs.items())


def _markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| arm | learning rates | seeds | final val loss (nats/byte) | tokens/s "
        "| optimizer share |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        loss = f"{row['val_loss_mean']:.4f}"
        if math.isfinite(row["val_loss_std"]):
            loss += f" ± {row['val_loss_std']:.4f}"
        if row["diverged"]:
            loss += f" ({row['diverged']} diverged)"
        lines.append(
            f"| `{row['arm']}` | {_format_lrs(row['lrs'])} | {row['seeds']} | {loss} | "
            f"{row['tokens_per_s']:,.0f} | {100 * row['opt_share']:.1f}% |"
        )
    return "\n".join(lines) + "\n"


def _environment(device: str, threads: int | None = None) -> dict[str, Any]:
    import torch

    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    return env


def write_results(
    out: str | Path,
    results: Sequence[Any],
    *,
    preset: Any,
    corpus_meta: dict[str, Any],
    device: str,
    plots: bool = True,
    environment: dict[str, Any] | None = None,
    threads: int | None = None,
) -> list[Path]:
    """Write the files listed in the module docstring to ``out``; return their paths.

    ``threads`` is the PyTorch thread count of the runs (default this
    process's), recorded in ``runs.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    preset_dict = preset if isinstance(preset, dict) else dataclasses.asdict(preset)
    written = []
    log_path = out / "log.csv"
    with log_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_COLUMNS, restval="")
        writer.writeheader()
        for r in results:
            for row in r.log:
                writer.writerow({"arm": r.arm, "seed": r.seed, **row})
    written.append(log_path)
    rows = summarize(results)
    runs = {
        "preset": preset_dict,
        "corpus": {k: v for k, v in corpus_meta.items() if k != "val_file_list"},
        "environment": (environment if environment is not None else _environment(device, threads)),
        "runs": [
            {
                "arm": r.arm,
                "seed": r.seed,
                "lrs": r.lrs,
                "final_val_loss": r.final_val_loss,
                "diverged": r.diverged,
                "steps_done": len(r.log),
                "train_time_s": r.train_time,
                "opt_time_s": r.opt_time,
                "tokens_per_s": r.tokens_per_s,
                "opt_share": r.opt_share,
            }
            for r in results
        ],
        "summary": rows,
        "paired": {b: paired(results, b) for b in BASELINES},
        "lr_scale": lr_scale_rows(results, hidden_shape_scales(preset_dict)),
    }
    runs_path = out / "runs.json"
    runs_path.write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")
    written.append(runs_path)
    summary_csv = out / "summary.csv"
    with summary_csv.open("w", newline="", encoding="utf-8") as fh:
        fields = [k for k in rows[0] if k != "val_loss_per_seed"] if rows else ["arm"]
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "lrs": _format_lrs(row["lrs"])})
    written.append(summary_csv)
    summary_md = out / "summary.md"
    summary_md.write_text(
        _markdown(rows) + _paired_markdown(results) + lr_scale_markdown(runs["lr_scale"]),
        encoding="utf-8",
    )
    written.append(summary_md)
    if plots:
        written.extend(_plot(out, results))
    return written


def read_results(
    directory: str | Path, *, require_log: bool = True
) -> tuple[dict[str, Any], list[RunResult]]:
    """Read a directory written by :func:`write_results`; return ``(runs.json, results)``.

    With ``require_log=False`` a directory whose ``log.csv`` is absent (kept out of a
    repository for its size) is read from ``runs.json`` alone: every run's ``log`` is
    then empty, which is enough for the final-loss comparisons of
    :mod:`~polarlinalg.experiments.lm.horizon` but not for curves or a merge.
    """
    directory = Path(directory)
    runs_path, log_path = directory / "runs.json", directory / "log.csv"
    for path in (runs_path, log_path):
        if not path.is_file() and (path is runs_path or require_log):
            raise ValueError(f"{str(directory)!r} holds no {path.name}; is it a results directory?")
    info = json.loads(runs_path.read_text(encoding="utf-8"))
    logs: dict[tuple[str, int], list[dict[str, float]]] = {}
    if log_path.is_file():
        with log_path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                key = (row.pop("arm"), int(row.pop("seed")))
                entry = {k: float(v) for k, v in row.items() if v != ""}
                entry["step"] = int(entry["step"])
                logs.setdefault(key, []).append(entry)
    results = []
    for run in info["runs"]:
        results.append(
            RunResult(
                arm=run["arm"],
                seed=run["seed"],
                lrs=run["lrs"],
                log=logs.get((run["arm"], run["seed"]), []),
                final_val_loss=run["final_val_loss"],
                train_time=run["train_time_s"],
                opt_time=run["opt_time_s"],
                tokens=round(run["tokens_per_s"] * run["train_time_s"]),
                diverged=run["diverged"],
            )
        )
    return info, results


def merge_results(
    directories: Sequence[str | Path], out: str | Path, *, plots: bool = True
) -> list[Path]:
    """Combine result directories of the same preset into one report in ``out``.

    Raises ValueError when the presets differ or an (arm, seed) pair repeats.
    """
    if not directories:
        raise ValueError("directories must name at least one results directory")
    infos, results = [], []
    for directory in directories:
        info, runs = read_results(directory)
        if infos and info["preset"] != infos[0]["preset"]:
            raise ValueError(
                f"{str(directory)!r} was run with another preset than {str(directories[0])!r}"
            )
        infos.append(info)
        results.extend(runs)
    seen = set()
    for r in results:
        if (r.arm, r.seed) in seen:
            raise ValueError(f"arm {r.arm!r} seed {r.seed} appears in more than one directory")
        seen.add((r.arm, r.seed))
    first = infos[0]
    return write_results(
        out,
        results,
        preset=first["preset"],
        corpus_meta=first["corpus"],
        device=first["environment"].get("device", ""),
        plots=plots,
        environment={**first["environment"], "merged_from": [str(d) for d in directories]},
    )


def _smooth(values: list[float], width: int) -> list[float]:
    """Trailing moving average over ``width`` values."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= width:
            total -= values[i - width]
        out.append(total / min(i + 1, width))
    return out


def _series(runs: Sequence[Any], key: str, x: str) -> tuple[list[float], list[float]]:
    """Mean over seeds of ``key`` against ``x``, on the steps every run measured."""
    xs, ys, _, _ = _band(runs, key, x)
    return xs, ys


def _band(
    runs: Sequence[Any], key: str, x: str
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Return ``x`` and the mean, minimum and maximum over seeds of ``key`` on shared steps."""
    per_run = [{row["step"]: row for row in r.log if key in row} for r in runs]
    steps = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    xs = [statistics.fmean(p[s][x] for p in per_run) for s in steps]
    values = [[p[s][key] for p in per_run] for s in steps]
    return (
        xs,
        [statistics.fmean(v) for v in values],
        [min(v) for v in values],
        [max(v) for v in values],
    )


LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def _styles(arms: Sequence[str], plt: Any) -> dict[str, dict[str, Any]]:
    """Return a colour, line style and marker per arm (the triple repeats after 60 arms)."""
    colors = plt.get_cmap("tab20").colors
    cycle = list(colors[::2]) + list(colors[1::2])
    return {
        arm: {
            "color": cycle[i % len(cycle)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)],
        }
        for i, arm in enumerate(arms)
    }


def _plot(out: Path, results: Sequence[Any]) -> list[Path]:
    from polarlinalg._pyplot import pyplot

    plt = pyplot("the plots (or pass --no-plots)")
    by_arm: dict[str, list[Any]] = {}
    for r in sorted(results, key=lambda r: _arm_order(r.arm)):
        by_arm.setdefault(r.arm, []).append(r)
    styles = _styles(list(by_arm), plt)
    paths = []
    for x, name, label in (("step", "loss_vs_steps", "step"), ("time", "loss_vs_time", "s")):
        fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
        for arm, runs in by_arm.items():
            style = styles[arm]
            xs, mean, low, high = _band(runs, "train_loss", x)
            every = max(1, len(xs) // 8)  # a few markers tell the lines apart
            ax_train.plot(xs, _smooth(mean, 10), label=arm, lw=1.2, markevery=every, ms=4, **style)
            if len(runs) > 1:
                ax_train.fill_between(
                    xs, _smooth(low, 10), _smooth(high, 10), color=style["color"], alpha=0.15
                )
            xs, mean, low, high = _band(runs, "val_loss", x)
            ax_val.plot(xs, mean, label=arm, ms=4, lw=1.2, **style)
            if len(runs) > 1:
                ax_val.fill_between(xs, low, high, color=style["color"], alpha=0.15)
        band = " (band: min–max over seeds)" if any(len(r) > 1 for r in by_arm.values()) else ""
        ax_train.set_title("training loss (10-step moving average)" + band, fontsize=10)
        ax_val.set_title("validation loss, mean over seeds" + band, fontsize=10)
        for ax in (ax_train, ax_val):
            ax.set_xlabel("training time (s)" if label == "s" else "step")
            ax.set_ylabel("cross-entropy (nats/byte)")
            ax.grid(alpha=0.3)
        _clip_loss_axis(ax_train, by_arm, "train_loss")
        _clip_loss_axis(ax_val, by_arm, "val_loss")
        ax_val.legend(fontsize=8)
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), constrained_layout=True)
    panels = (
        ("kappa_embed", "κ₂ of the embedding gradient (rows of bytes in the batch)"),
        ("kappa_head", "κ₂ of the head gradient"),
        ("nuc_embed", "nuclear norm of the embedding gradient"),
        ("nuc_head", "nuclear norm of the head gradient"),
    )
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for arm, runs in by_arm.items():
            xs, ys = _series(runs, key, "step")
            ax.plot(xs, ys, label=arm, ms=3, lw=1, **styles[arm])
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes.flat[1].legend(fontsize=8)
    path = out / "grad_condition.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def _clip_loss_axis(ax: Any, by_arm: dict[str, list[Any]], key: str) -> None:
    """Show the interesting range: from the best loss to a little above the worst final one."""
    values = [row[key] for runs in by_arm.values() for r in runs for row in r.log if key in row]
    finals = [
        [row[key] for row in r.log if key in row][-1]
        for runs in by_arm.values()
        for r in runs
        if any(key in row for row in r.log)
    ]
    finite = [v for v in values if math.isfinite(v)]
    finite_finals = [v for v in finals if math.isfinite(v)]
    if finite and finite_finals:
        low, high = min(finite), max(finite_finals)
        ax.set_ylim(low - 0.05 * (high - low + 0.1), high + 0.6 * (high - low + 0.1) + 0.3)
