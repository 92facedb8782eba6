"""``polarlinalg experiment lm``: train every arm and write the results.

::

    polarlinalg experiment lm --preset tiny --seeds 0,1 --out results/lm
    polarlinalg experiment lm --preset gpu --arms adamw,polargradm_embed_head --device cuda
    polarlinalg experiment lm --quick --out /tmp/lm      # a few small steps of every arm
    polarlinalg experiment lm --merge run-a run-b --out all   # one report from several

Learning rates come from the preset; ``--lr ROLE=VALUE`` (repeatable) sets one
role for every arm that uses it (roles: ``adamw``, ``muon``,
``polargrad_hidden``, ``polargrad_embed_head``, ``shampoo``, ``soap``,
``normuon``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from polarlinalg._argtypes import csv_list, positive_int, seed_list
from polarlinalg.experiments.lm.arms import ARM_NAMES, get_arm
from polarlinalg.experiments.lm.presets import PRESETS, get_preset

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
    parser.add_argument("--seeds", type=seed_list, default=[0], help="comma-separated (default 0)")
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
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line arguments ``argv``; return the exit status."""
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
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

    # torch and matplotlib only now: --help and bad arguments stay fast
    from polarlinalg.experiments.lm.data import build_corpus
    from polarlinalg.experiments.lm.report import write_results
    from polarlinalg.experiments.lm.train import resolve_device, train_run

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        resolve_device(device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    corpus = build_corpus(args.cache_dir)
    meta = corpus.meta
    print(
        f"corpus: {meta['train_files']} training files ({meta['train_bytes']:,} bytes), "
        f"{meta['val_files']} validation files ({meta['val_bytes']:,} bytes) from {meta['root']}"
    )
    results = []
    for arm in arms:
        for seed in args.seeds:
            result = train_run(
                preset, arm, seed, corpus, device=device, lrs=lrs, progress=not args.no_progress
            )
            status = " (diverged)" if result.diverged else ""
            print(
                f"{arm.name:<26} seed {seed}: val loss {result.final_val_loss:.4f}{status}, "
                f"{result.tokens_per_s:,.0f} tokens/s, optimizer {100 * result.opt_share:.1f}% "
                f"of {result.train_time:.1f} s"
            )
            results.append(result)
    written = write_results(
        args.out,
        results,
        preset=preset,
        corpus_meta=meta,
        device=device,
        plots=not args.no_plots,
    )
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
