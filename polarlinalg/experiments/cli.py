"""``polarlinalg experiment``: the paper's experiments from the command line.

``polarlinalg experiment quadratic|logistic|completion [options]`` runs the arms
of :mod:`polarlinalg.experiments.arms` on a problem of :mod:`polarlinalg.problems`,
shows a progress bar, prints a summary table and writes ``<problem>.csv``,
``<problem>.json``, ``<problem>.png`` and ``summary.md`` to ``--out``.
``--sweep ARM[,ARM…]`` instead sweeps those arms' learning rates until each
optimum is interior (:mod:`polarlinalg.experiments.problem_sweep`);
``--merge JSON…`` combines result files of separate processes into one report.
``polarlinalg experiment lm …`` is the language-model benchmark
(:mod:`polarlinalg.experiments.lm.cli`).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polarlinalg._argtypes import csv_list, seed_list
from polarlinalg.experiments.sweep import add_grid_options

__all__ = ["PROBLEMS", "ProblemConfig", "main"]


@dataclass(frozen=True)
class ProblemConfig:
    """Defaults of one problem: full size (the paper's) and ``--quick``.

    ``quick_lr`` overrides arm learning rates at the quick size: PolarGrad's
    rate scales with ``1/‖∇f‖_*``, which shrinks with the problem, so the
    paper's rates do not carry over (chosen by a sweep; docs/experiments.md);
    Shampoo's and SOAP's full-size rates come from sweeps at the full size
    (:mod:`polarlinalg.experiments.arms`); the quick sizes keep an earlier
    pilot's.
    """

    steps: int
    quick_steps: int
    quick_sizes: dict[str, Any]
    threshold: float
    quick_lr: dict[str, float] = field(default_factory=dict)


PROBLEMS: dict[str, ProblemConfig] = {
    "quadratic": ProblemConfig(
        steps=4000,
        quick_steps=400,
        quick_sizes={"m": 100, "n": 20, "p": 200, "q": 50},
        threshold=1e-6,
        quick_lr={
            "polargrad-qdwh": 3.2e-6,
            "polargrad-qdwh-decay": 3.2e-6,
            "polargrad-zolo": 3.2e-6,
            "polargrad-qdwh2": 3.2e-6,
            "polargradm-momentum-first": 8e-6,
            "polargradm-polar-first": 1.6e-5,
            # an earlier pilot's quick-size rates; full size: the sweep's (arms.py)
            "shampoo": 5e-2,
            "soap": 3e-2,
        },
    ),
    "logistic": ProblemConfig(
        steps=1500,
        quick_steps=200,
        quick_sizes={"m": 200, "n": 20, "samples": 2000, "q": 80, "batch_size": 200},
        threshold=0.1,
        quick_lr={
            "polarsgd-qdwh": 4.5e-6,
            "polarsgd-qdwh-decay": 7.5e-6,
            "polarsgd-zolo": 4.5e-6,
            "polarsgdm-momentum-first": 7.5e-6,
            "polarsgdm-polar-first": 7.5e-6,
            # the pilot's quick-size rates; full size: the sweep's 1e-3 and 1.58e-2 (arms.py)
            "shampoo": 1e-2,
            "soap": 5e-2,
        },
    ),
    "completion": ProblemConfig(
        steps=1000,
        quick_steps=300,
        quick_sizes={"m": 100, "n": 50, "rank": 3},
        threshold=1e-6,
        quick_lr={
            "polargrad-qdwh": 4.0,
            "polargrad-qdwh-decay": 4.0,
            "polargrad-zolo": 4.0,
            "polargradm-momentum-first": 12.5,
            "polargradm-polar-first": 12.5,
            "altgd": 12.5,
        },
    ),
}


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE; got {text!r}")
    return key.strip(), value.strip()


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polarlinalg experiment",
        description=(
            "Run the PolarGrad paper's matrix experiments (Lau, Long, Su, 2025) on any "
            "backend: every optimizer arm, the loss gap, κ₂ and nuclear norm of the "
            "gradient at every step, a summary table, CSV/JSON results and PNG plots. "
            "'polarlinalg experiment lm --help' for the language-model benchmark."
        ),
    )
    parser.add_argument("problem", choices=[*PROBLEMS, "lm"], help="which experiment")
    parser.add_argument(
        "--backend",
        default="numpy",
        choices=["numpy", "array_api_strict", "torch", "jax", "cupy"],
        help="array framework (default numpy)",
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu (default), or cuda/gpu for torch, jax and cupy"
    )
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "float64"], help="default float32"
    )
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: paper's)")
    parser.add_argument(
        "--seeds",
        type=seed_list,
        default=None,
        help="comma-separated (default 42; for --sweep 1042, apart from the paper's seeds)",
    )
    parser.add_argument(
        "--arms", type=csv_list, default=None, help="comma-separated (default: all)"
    )
    parser.add_argument(
        "--lr",
        type=_assignment,
        action="append",
        default=[],
        metavar="ARM=LR",
        help="override an arm's learning rate (repeatable)",
    )
    parser.add_argument(
        "--size",
        type=_assignment,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a problem size, e.g. m=200 (repeatable)",
    )
    parser.add_argument("--out", default=None, help="output folder (default experiment-PROBLEM)")
    parser.add_argument(
        "--quick", action="store_true", help="reduced size and steps (a smoke run, < 1 min)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="relative level for the 'steps to' column (default per problem)",
    )
    parser.add_argument("--log-every", type=int, default=1, help="log every N steps (default 1)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list-arms", action="store_true", help="list the arms and exit")
    parser.add_argument(
        "--sweep",
        type=csv_list,
        default=None,
        metavar="ARM[,ARM...]",
        help=(
            "sweep these arms' learning rates (log grid from the arm's rate, extended until the "
            "best is interior) instead of the comparison run"
        ),
    )
    add_grid_options(parser, "an arm")
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="JSON",
        help=(
            "run nothing: combine result JSONs of this problem with the same settings "
            "(e.g. seeds run in separate processes) into one report in --out"
        ),
    )
    return parser


def _backend(name: str, device: str, dtype: str) -> Any:
    from polarlinalg.backends import available_backends, enable_jax_x64

    gpu = device.lower() not in ("cpu", "")
    if name == "cupy" and not gpu:
        raise ValueError("cupy runs on a GPU only: pass --device cuda")
    if gpu and name in ("numpy", "array_api_strict"):
        raise ValueError(f"--backend {name} runs on the CPU only")
    full = {"torch": "torch-cuda", "jax": "jax-gpu"}.get(name, name) if gpu else name
    if name == "jax" and dtype == "float64":
        try:
            enable_jax_x64()
        except ImportError:
            pass
    found = available_backends([full])
    if not found:
        raise ValueError(f"backend {full!r} is not installed or has no device here")
    return found[0]


def _problem(name: str, sizes: dict[str, Any], seed: int, backend: Any, dtype: str) -> Any:
    from polarlinalg import problems

    cls = {
        "quadratic": problems.QuadraticRegression,
        "logistic": problems.LogisticRegression,
        "completion": problems.MatrixCompletion,
    }[name]
    try:
        return cls(**sizes, seed=seed, xp=backend.xp, dtype=dtype, device=backend.device)
    except TypeError as exc:
        raise ValueError(f"bad --size for {name}: {exc}") from None


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        print("(no progress bar: pip install 'polarlinalg[experiments]')", file=sys.stderr)
        return None
    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        unit="step",
        dynamic_ncols=True,
        file=sys.stderr,
        mininterval=0.1 if interactive else 30.0,  # a log file gets a line every 30 s
    )


def _meta(args: argparse.Namespace, backend: Any, sizes: dict[str, Any], steps: int) -> dict:
    from polarlinalg import __version__

    return {
        "problem": args.problem,
        "backend": backend.name,
        "device": backend.device_name,
        "dtype": args.dtype,
        "steps": steps,
        "seeds": args.seeds,
        "sizes": sizes,
        "quick": args.quick,
        "polarlinalg": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _run(args: argparse.Namespace) -> int:
    from polarlinalg.experiments.arms import default_arms
    from polarlinalg.experiments.runner import run_arm

    if args.merge is not None:
        return _merge(args)
    config = PROBLEMS[args.problem]
    arms = default_arms(args.problem, args.arms)
    if args.list_arms:
        for arm in arms:
            decay = f", StepLR{arm.decay}" if arm.decay else ""
            print(f"{arm.name:28s} {arm.label}  (lr {arm.lr:g}{decay})")
        return 0
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be positive; got {args.steps}")
    if args.log_every < 1:
        raise ValueError(f"--log-every must be positive; got {args.log_every}")
    if args.sweep is not None:
        if not args.sweep:
            raise ValueError("--sweep needs at least one arm")
        missing = sorted(set(args.sweep) - {a.name for a in arms})
        if missing:
            raise ValueError(
                f"--sweep: unknown arm(s) {', '.join(missing)}; choose from "
                f"{', '.join(a.name for a in arms)}"
            )
        if args.sweep_max_points < 3:
            raise ValueError("--sweep-max-points must be at least 3")
    if not args.no_plot and importlib.util.find_spec("matplotlib") is None:
        raise ValueError(
            "plots need matplotlib: pip install 'polarlinalg[experiments]' (or --no-plot)"
        )
    overrides = dict(args.lr)
    unknown = sorted(set(overrides) - {a.name for a in arms})
    if unknown:
        raise ValueError(f"--lr for arm(s) not being run: {', '.join(unknown)}")
    lrs = {**(config.quick_lr if args.quick else {}), **{k: float(v) for k, v in overrides.items()}}
    arms = [arm.with_lr(lrs[arm.name]) if arm.name in lrs else arm for arm in arms]
    sizes = {**(config.quick_sizes if args.quick else {})}
    sizes.update({k: _number(v) for k, v in args.size})
    steps = args.steps or (config.quick_steps if args.quick else config.steps)
    threshold = config.threshold if args.threshold is None else args.threshold
    backend = _backend(args.backend, args.device, args.dtype)
    out = Path(args.out or f"experiment-{args.problem}")
    out.mkdir(parents=True, exist_ok=True)
    if args.sweep is not None:
        return _sweep(args, [a for a in arms if a.name in args.sweep], sizes, steps, backend, out)
    seeds = args.seeds if args.seeds is not None else [42]
    args.seeds = seeds

    bar = _progress(len(arms) * len(args.seeds) * steps, not args.no_progress)
    traces = []
    try:
        for seed in args.seeds:
            problem = _problem(args.problem, sizes, seed, backend, args.dtype)
            for arm in arms:
                if bar is not None:
                    bar.set_description(f"{arm.name} (seed {seed})")
                trace = run_arm(
                    problem,
                    arm,
                    steps=steps,
                    seed=seed,
                    log_every=args.log_every,
                    synchronize=backend.synchronize,
                    on_step=None if bar is None else bar.update,
                )
                if bar is not None and trace.diverged:
                    bar.update(steps - trace.steps)
                traces.append(trace)
    finally:
        if bar is not None:
            bar.close()

    meta = _meta(args, backend, sizes, steps)
    meta["threshold"] = threshold
    meta["arms"] = {
        a.name: {
            "label": a.label,
            "lr": a.lr,
            "decay": a.decay,
            "kind": a.kind,
            "options": dict(a.options),
        }
        for a in arms
    }
    return _report(traces, meta, out, plot=not args.no_plot)


def _report(traces: list[Any], meta: dict[str, Any], out: Path, *, plot: bool) -> int:
    """Print the summary table and write the CSV, JSON, ``summary.md`` and (``plot``) PNG."""
    from polarlinalg.experiments import report

    problem, threshold = meta["problem"], meta["threshold"]
    rows = report.summarize(traces, threshold)
    title = (
        f"{problem} on {meta['backend']} ({meta['device']}, {meta['dtype']}), "
        f"{meta['steps']} steps, seeds {','.join(map(str, meta['seeds']))}"
    )
    print(title)
    print(report.format_table(rows, threshold))
    written = [
        report.write_csv(traces, out / f"{problem}.csv"),
        report.write_json(traces, rows, meta, out / f"{problem}.json"),
    ]
    (out / "summary.md").write_text(
        f"{title}\n\n{report.format_table(rows, threshold, markdown=True)}\n", encoding="utf-8"
    )
    written.append(out / "summary.md")
    if plot:
        written.append(report.plot(traces, out / f"{problem}.png", title))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


# the settings that must agree for runs to share one table
_MERGE_KEYS = ("problem", "backend", "device", "dtype", "steps", "sizes", "quick", "threshold")


def _merge(args: argparse.Namespace) -> int:
    """``--merge``: one report from result JSONs of the same problem and settings.

    Runs of separate processes (other seeds, other arms, e.g. one per core) become
    one table and one figure.  The settings in ``_MERGE_KEYS`` must agree, an
    ``(arm, seed)`` pair may appear once, and an arm must have the same rate,
    decay and options in every file.
    """
    from polarlinalg.experiments import report

    if args.sweep is not None:
        raise ValueError("--merge excludes --sweep")
    if not args.no_plot and importlib.util.find_spec("matplotlib") is None:
        raise ValueError(
            "plots need matplotlib: pip install 'polarlinalg[experiments]' (or --no-plot)"
        )
    traces: list[Any] = []
    merged: dict[str, Any] | None = None
    seen: dict[tuple[str, int], str] = {}
    for path in args.merge:
        try:
            runs, meta = report.read_json(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"--merge: cannot read {path!r} as an experiment JSON ({exc})"
            ) from None
        if meta.get("problem") != args.problem:
            raise ValueError(
                f"--merge: {path!r} holds the {meta.get('problem')!r} problem, not {args.problem!r}"
            )
        if merged is None:
            merged = {**meta, "arms": dict(meta.get("arms", {})), "merged_from": []}
        for key in _MERGE_KEYS:
            if meta.get(key) != merged.get(key):
                raise ValueError(
                    f"--merge: {path!r} has {key} {meta.get(key)!r}, the first file "
                    f"{merged.get(key)!r}; only runs of the same settings share a table"
                )
        for name, arm in meta.get("arms", {}).items():
            if merged["arms"].setdefault(name, arm) != arm:
                raise ValueError(
                    f"--merge: arm {name!r} differs between files ({merged['arms'][name]} vs "
                    f"{arm} in {path!r})"
                )
        for trace in runs:
            key = (trace.arm, trace.seed)
            if key in seen:
                raise ValueError(
                    f"--merge: arm {trace.arm!r} seed {trace.seed} is in both {seen[key]!r} "
                    f"and {path!r}"
                )
            seen[key] = path
            traces.append(trace)
        merged["merged_from"].append({"path": str(path), "date": meta.get("date")})
    assert merged is not None  # argparse asks for at least one file
    merged["seeds"] = sorted({t.seed for t in traces})
    if args.threshold is not None:
        merged["threshold"] = args.threshold
    out = Path(args.out or f"experiment-{args.problem}")
    out.mkdir(parents=True, exist_ok=True)
    return _report(traces, merged, out, plot=not args.no_plot)


def _sweep(
    args: argparse.Namespace,
    arms: list[Any],
    sizes: dict[str, Any],
    steps: int,
    backend: Any,
    out: Path,
) -> int:
    from polarlinalg.experiments.problem_sweep import SWEEP_SEEDS, sweep_arms, write_sweep
    from polarlinalg.experiments.runner import run_arm

    seeds = list(args.seeds if args.seeds is not None else SWEEP_SEEDS)
    problems = {seed: _problem(args.problem, sizes, seed, backend, args.dtype) for seed in seeds}
    metric = "gap" if problems[seeds[0]].f_star is not None else "loss"

    def run(arm: Any, seed: int) -> Any:
        return run_arm(
            problems[seed],
            arm,
            steps=steps,
            seed=seed,
            log_every=args.log_every,
            synchronize=backend.synchronize,
        )

    def show(name: str, point: Any) -> None:
        value = f"{point.loss:.4g}" if math.isfinite(point.loss) else "diverged"
        print(f"sweep {name:<28} lr {point.lr:<10.4g} final {metric} {value}", flush=True)

    brackets = sweep_arms(
        arms,
        seeds,
        run,
        factor=args.sweep_factor,
        max_points=args.sweep_max_points,
        on_point=show,
    )
    title = (
        f"{args.problem} sweep on {backend.name} ({args.dtype}), {steps} steps, "
        f"seeds {','.join(map(str, seeds))}, grid factor {args.sweep_factor:.3g}"
    )
    meta = {**_meta(args, backend, sizes, steps), "seeds": seeds, "title": title}
    written = write_sweep(out, brackets, meta=meta, metric=metric, plots=not args.no_plot)
    status = 0
    for name, bracket in brackets.items():
        best = bracket.best
        if bracket.interior:
            print(f"{name}: optimum {best.lr:.4g} (final {metric} {best.loss:.4g}), interior")
        else:
            print(f"polarlinalg experiment: {name}: {bracket.message}", file=sys.stderr)
            status = 1
    print("wrote " + ", ".join(str(p) for p in written))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``polarlinalg experiment``; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lm":
        from polarlinalg.experiments.lm.cli import main as lm_main

        return int(lm_main(argv[1:]))
    args = _parser().parse_args(argv)
    if args.problem == "lm":  # options before the problem name
        print(
            "polarlinalg experiment: error: put 'lm' first: polarlinalg experiment lm ...",
            file=sys.stderr,
        )
        return 2
    try:
        return _run(args)
    except ValueError as exc:
        print(f"polarlinalg experiment: error: {exc}", file=sys.stderr)
        return 2
