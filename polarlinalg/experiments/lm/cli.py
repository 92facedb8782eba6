"""``polarlinalg experiment lm``: train every arm and write the results.

::

    polarlinalg experiment lm --preset tiny --seeds 0,1 --out results/lm
    polarlinalg experiment lm --preset gpu --arms adamw,polargradm_embed_head --device cuda
    polarlinalg experiment lm --quick --out /tmp/lm      # a few small steps of every arm
    polarlinalg experiment lm --merge run-a run-b --out all   # one report from several
    polarlinalg experiment lm --horizon run-200 run-2000 --out horizon  # ranking vs steps
    polarlinalg experiment lm --sweep adamw --sweep muon,normuon --jobs 2 --out sweep

Learning rates come from the preset; ``--lr ROLE=VALUE`` (repeatable) sets one
role for every arm that uses it (roles: ``adamw``, ``muon``,
``polargrad_hidden``, ``polargrad_embed_head``, ``shampoo``, ``soap``,
``normuon``).  ``--sweep ROLE[,ROLE…]`` (repeatable: one stage each) sweeps
those roles' rates until each optimum is interior
(:mod:`polarlinalg.experiments.lm.sweep`); ``--jobs N`` runs N runs at once in
worker processes of ``--threads`` (default 1) threads each.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from polarlinalg._argtypes import csv_list, positive_int, seed_list
from polarlinalg.experiments.lm.arms import ARM_NAMES, get_arm
from polarlinalg.experiments.lm.presets import PRESETS, get_preset
from polarlinalg.experiments.sweep import add_grid_options

__all__ = ["main"]

PROG = "polarlinalg experiment lm"
QUICK_STEPS = 6
QUICK_BATCH = 4
ROLES = (
    "adamw",
    "muon",
    "polargrad_hidden",
    "polargrad_embed_head",
    "shampoo",
    "soap",
    "normuon",
)


def _lr(text: str) -> tuple[str, float]:
    role, sep, value = text.partition("=")
    if not sep or role not in ROLES:
        raise argparse.ArgumentTypeError(
            f"--lr takes ROLE=VALUE with ROLE one of {', '.join(ROLES)}; got {text!r}"
        )
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not rate > 0:
        raise argparse.ArgumentTypeError(f"--lr {role}= needs a positive number; got {value!r}")
    return role, rate


def _roles(text: str) -> list[str]:
    from polarlinalg.experiments.lm.sweep import ROLE_ARMS

    roles = csv_list(text)
    unknown = [r for r in roles if r not in ROLE_ARMS]
    if not roles or unknown:
        raise argparse.ArgumentTypeError(
            f"--sweep takes roles from {', '.join(ROLE_ARMS)}; got {text!r}"
        )
    return roles


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Train a small GPT byte-level on the Python standard library's source with each "
            "optimizer arm (AdamW, Muon, PolarGradM, torch.optim.Muon, Shampoo, SOAP, NorMuon) "
            "and write CSV/JSON results, a summary table and PNG plots."
        ),
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument(
        "--arms",
        type=csv_list,
        default=list(ARM_NAMES),
        help=f"comma-separated arms (default all): {', '.join(ARM_NAMES)}",
    )
    parser.add_argument(
        "--seeds",
        type=seed_list,
        default=None,
        help="comma-separated (default 0; for --sweep 1000, apart from the result seeds)",
    )
    parser.add_argument(
        "--steps", type=positive_int, help="override the preset's steps (schedule rescaled)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"{QUICK_STEPS} steps of {QUICK_BATCH} windows per arm and 2 evaluation batches, "
            "to check that everything runs"
        ),
    )
    parser.add_argument(
        "--device", default=None, help="auto, cpu, cuda or cuda:N (default: the preset's)"
    )
    parser.add_argument(
        "--lr",
        type=_lr,
        action="append",
        default=[],
        metavar="ROLE=VALUE",
        help=f"set a learning rate role ({', '.join(ROLES)}); repeatable",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="CPU threads of PyTorch (torch.set_num_threads; default PyTorch's)",
    )
    parser.add_argument("--out", default="lm-results", help="output directory")
    parser.add_argument(
        "--cache-dir", default=None, help="corpus cache (default ~/.cache/polarlinalg/lm)"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        help="train nothing: combine these results directories (same preset) into --out",
    )
    parser.add_argument(
        "--horizon",
        nargs=2,
        metavar=("SHORT_DIR", "LONG_DIR"),
        help=(
            "train nothing: compare two results directories of one preset that differ in steps "
            "(does the ranking hold?); writes horizon.md, horizon.json, horizon.png into --out"
        ),
    )
    parser.add_argument(
        "--sweep",
        type=_roles,
        action="append",
        default=[],
        metavar="ROLE[,ROLE...]",
        help=(
            "sweep these roles' learning rates (log grid from the preset's rate, extended until "
            "the best is interior) instead of training the arms; repeat for later stages, which "
            "use the earlier stages' optima"
        ),
    )
    add_grid_options(parser, "a role")
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="runs at once, in worker processes (default 1: in this process)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line arguments ``argv``; return the exit status."""
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.horizon:
        if args.merge or args.sweep:
            parser.error("--horizon excludes --merge and --sweep")
        from polarlinalg.experiments.lm.horizon import (
            compare_directories,
            horizon_markdown,
            write_horizon,
        )

        try:
            comparison = compare_directories(*args.horizon)
        except ValueError as exc:
            parser.error(f"--horizon: {exc}")
        written = write_horizon(args.out, comparison, plots=not args.no_plots)
        print(horizon_markdown(comparison))
        print(f"wrote {', '.join(str(p) for p in written)}")
        return 0
    if args.merge:
        from polarlinalg.experiments.lm.report import merge_results

        try:
            written = merge_results(args.merge, args.out, plots=not args.no_plots)
        except ValueError as exc:
            parser.error(f"--merge: {exc}")
        print(f"wrote {', '.join(str(p) for p in written)}")
        return 0
    try:
        arms = [get_arm(name) for name in args.arms]
    except ValueError as exc:
        parser.error(f"--arms: {exc}")
    if not arms:
        parser.error("--arms: give at least one arm")
    if args.steps is not None and args.quick:
        parser.error("--steps and --quick exclude each other")
    preset = get_preset(args.preset)
    if args.quick:
        preset = preset.replace(steps=QUICK_STEPS, batch_size=QUICK_BATCH, eval_batches=2)
    elif args.steps is not None:
        preset = preset.replace(steps=args.steps)
    device = args.device or preset.device
    lrs = dict(args.lr)
    if args.sweep and args.sweep_max_points < 3:
        parser.error("--sweep-max-points must be at least 3")
    if args.sweep and args.merge:
        parser.error("--sweep and --merge exclude each other")

    # torch and matplotlib only now: --help and bad arguments stay fast
    from polarlinalg.experiments.lm.data import build_corpus
    from polarlinalg.experiments.lm.pool import RunPool, RunTask
    from polarlinalg.experiments.lm.train import resolve_device

    if args.threads is not None and args.jobs == 1:
        import torch

        torch.set_num_threads(args.threads)
    try:
        resolve_device(device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    if args.jobs > 1 and device != "cpu":
        parser.error("--jobs > 1 runs CPU processes; use --device cpu")
    corpus = build_corpus(args.cache_dir)
    meta = corpus.meta
    print(
        f"corpus: {meta['train_files']} training files ({meta['train_bytes']:,} bytes), "
        f"{meta['val_files']} validation files ({meta['val_bytes']:,} bytes) from {meta['root']}"
    )
    pool = RunPool(args.jobs, threads=args.threads or 1, progress=not args.no_progress)
    if args.sweep:
        return _sweep(args, preset, lrs, device, pool, parser)
    seeds = args.seeds if args.seeds is not None else [0]
    tasks = [
        RunTask(preset, arm.name, seed, lrs, device, args.cache_dir)
        for arm in arms
        for seed in seeds
    ]
    with pool:
        futures = [pool.submit(task) for task in tasks]
        results = []
        for future in futures:
            result = future.result()
            status = " (diverged)" if result.diverged else ""
            print(
                f"{result.arm:<26} seed {result.seed}: val loss {result.final_val_loss:.4f}"
                f"{status}, {result.tokens_per_s:,.0f} tokens/s, optimizer "
                f"{100 * result.opt_share:.1f}% of {result.train_time:.1f} s",
                flush=True,
            )
            results.append(result)
    from polarlinalg.experiments.lm.report import write_results

    written = write_results(
        args.out,
        results,
        preset=preset,
        corpus_meta=meta,
        device=device,
        plots=not args.no_plots,
        threads=args.threads or (1 if args.jobs > 1 else None),
    )
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _sweep(
    args: argparse.Namespace,
    preset: Any,
    lrs: dict[str, float],
    device: str,
    pool: Any,
    parser: argparse.ArgumentParser,
) -> int:
    import dataclasses
    import datetime

    from polarlinalg.experiments.lm.sweep import ROLE_ARMS, SWEEP_SEEDS, sweep_roles, write_sweep

    seeds = list(args.seeds if args.seeds is not None else SWEEP_SEEDS)

    def show(role: str, point: Any) -> None:
        loss = f"{point.loss:.4f}" if math.isfinite(point.loss) else "diverged"
        print(f"sweep {role:<22} lr {point.lr:<10.4g} val loss {loss}", flush=True)

    try:
        with pool:
            brackets, fixed = sweep_roles(
                args.sweep,
                preset,
                seeds,
                pool,
                lrs=lrs,
                device=device,
                cache_dir=args.cache_dir,
                factor=args.sweep_factor,
                max_points=args.sweep_max_points,
                on_point=show,
            )
    except ValueError as exc:
        parser.error(f"--sweep: {exc}")
    title = (
        f"preset {preset.name}, {preset.steps} steps, seeds {','.join(map(str, seeds))}, "
        f"grid factor {args.sweep_factor:.3g}"
    )
    written = write_sweep(
        args.out,
        brackets,
        fixed,
        meta={
            "title": title,
            "preset": dataclasses.asdict(preset),
            "seeds": seeds,
            "stages": args.sweep,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
        plots=not args.no_plots,
    )
    status = 0
    for role, bracket in brackets.items():
        best = bracket.best
        if bracket.interior:
            print(f"{role}: optimum {best.lr:.4g} (val loss {best.loss:.4f}), interior")
        else:
            print(f"{PROG}: {role} ({ROLE_ARMS[role]}): {bracket.message}", file=sys.stderr)
            status = 1
    print(f"wrote {', '.join(str(p) for p in written)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
