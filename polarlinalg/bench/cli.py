"""``polarlinalg bench``: the command line of the benchmark harness."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polarlinalg._argtypes import csv_list as _csv
from polarlinalg._argtypes import finite_float_at_least
from polarlinalg._argtypes import nonnegative_int as _nonnegative_int
from polarlinalg._argtypes import positive_int as _positive_int

__all__ = ["build_parser", "main"]

CPU_BACKENDS = ("numpy", "torch", "jax")
GPU_BACKENDS = ("torch-cuda", "jax-gpu", "cupy")
DTYPES = ("float32", "float64", "bfloat16")


def _sizes(text: str) -> list[int]:
    parts = _csv(text)
    if not parts:
        raise argparse.ArgumentTypeError("expected comma-separated sizes such as 256,1024")
    return [_positive_int(p) for p in parts]


def _aspects(text: str) -> list[Any]:
    from polarlinalg.bench.cases import parse_aspect

    try:
        return [parse_aspect(p) for p in _csv(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cond(text: str) -> float:
    return finite_float_at_least(text, 1.0, "a number >= 1")


def _seconds(text: str) -> float:
    return finite_float_at_least(text, 0.0, "seconds >= 0")


def _families(text: str) -> list[str]:
    from polarlinalg.bench.optimizers import FAMILIES

    names = _csv(text)
    bad = [n for n in names if n not in FAMILIES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {', '.join(bad) or '(none given)'}; choose from {', '.join(FAMILIES)}"
        )
    return names


def _matrix_shapes(text: str) -> list[tuple[int, int]]:
    shapes = []
    for part in _csv(text):
        sides = part.lower().split("x")
        if len(sides) != 2 or not all(side.strip().isdigit() for side in sides):
            raise argparse.ArgumentTypeError(f"expected shapes such as 64x128,128x64; got {part!r}")
        shapes.append((_positive_int(sides[0]), _positive_int(sides[1])))
    if not shapes:
        raise argparse.ArgumentTypeError("expected shapes such as 64x128,128x64")
    return shapes


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``polarlinalg bench``."""
    parser = argparse.ArgumentParser(
        prog="polarlinalg bench",
        description=(
            "Time polarlinalg's polar methods beside the anchors (scipy, jax.scipy, torch, "
            "CuPy, torch.optim.Muon's Newton-Schulz, a plain NS5 loop) and the floor of "
            "bare matrix products or factorizations, with the accuracy of every row, and "
            "inv_root by eigh and by the coupled Newton iteration; then one optimizer step "
            "on a GPT-2-small-shaped parameter set."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one small size, float32, 3 repeats (< 2 min on CPU); the targets, stated for the "
        "full run's sizes, are shown but not judged",
    )
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON")
    parser.add_argument("--plot", metavar="DIR", help="write PNG figures into DIR")
    parser.add_argument(
        "--device",
        choices=("cpu", "gpu", "all"),
        default=None,
        help="backends of this device kind: cpu = numpy,torch,jax; gpu = torch-cuda,jax-gpu,"
        "cupy (default: cpu, or the --backends given)",
    )
    parser.add_argument("--backends", type=_csv, help="comma-separated backend names")
    parser.add_argument(
        "--methods",
        type=_csv,
        help="comma-separated polarlinalg methods, and inv_root for the inverse p-th root rows "
        "(eigh vs newton; default: all)",
    )
    parser.add_argument(
        "--dtypes", type=_csv, help="comma-separated dtypes among float32,float64,bfloat16"
    )
    parser.add_argument("--sizes", type=_sizes, help="long sides, e.g. 256,512,1024")
    parser.add_argument("--aspects", type=_aspects, help="ratios n/m, e.g. 1,4,1/4 (all methods)")
    parser.add_argument(
        "--batch", type=_nonnegative_int, help="stack depth of the batched cases (0 or 1: none)"
    )
    parser.add_argument("--repeats", type=_positive_int, help="timed calls per row")
    parser.add_argument("--warmup", type=_positive_int, help="untimed calls first (>= 1)")
    parser.add_argument(
        "--min-time",
        type=_seconds,
        metavar="S",
        help="keep timing a row until S seconds are spent, up to 50 rounds (0.5; quick 0.1)",
    )
    parser.add_argument(
        "--warmup-time",
        type=_seconds,
        metavar="S",
        help="keep warming up a row until S seconds are spent (0.3; quick 0.2)",
    )
    parser.add_argument("--cond", type=_cond, help="condition number of the inputs (1e3)")
    parser.add_argument("--no-anchors", action="store_true", help="time polarlinalg alone")
    parser.add_argument(
        "--optimizer-layers",
        type=_nonnegative_int,
        help="GPT-2-small layers of the optimizer-step benchmark (0: skip it)",
    )
    parser.add_argument(
        "--optimizer-families",
        type=_families,
        metavar="F",
        help="optimizer-step families, comma-separated: muon (torch.optim.Muon, optax), "
        "shampoo, soap (PyTorch only) (default: all)",
    )
    parser.add_argument(
        "--optimizer-shapes",
        type=_matrix_shapes,
        metavar="S",
        help="matrix shapes of the optimizer step instead of GPT-2-small layers, e.g. 64x128",
    )
    return parser


def _config(args: argparse.Namespace) -> Any:
    from polarlinalg.bench.cases import FULL, QUICK

    config = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    if args.sizes is not None:
        changes["polynomial_sizes"] = changes["accurate_sizes"] = tuple(args.sizes)
        changes["inv_root_sizes"] = tuple(args.sizes)
        changes["batched_sizes"] = (min(args.sizes),)
    if args.dtypes is not None:
        changes["polynomial_dtypes"] = tuple(d for d in args.dtypes if d in DTYPES)
        changes["inv_root_dtypes"] = changes["polynomial_dtypes"]
        changes["accurate_dtypes"] = tuple(d for d in args.dtypes if d in DTYPES[:2])
    if args.aspects is not None:
        changes["accurate_aspects"] = tuple(args.aspects)
    for name in ("aspects", "batch", "repeats", "warmup", "cond"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = tuple(value) if isinstance(value, list) else value
    if args.min_time is not None:
        changes["min_time_s"] = args.min_time
    if args.warmup_time is not None:
        changes["min_warmup_s"] = args.warmup_time
    if args.optimizer_layers is not None:
        changes["optimizer_layers"] = args.optimizer_layers
        if args.repeats is not None:
            changes["optimizer_repeats"] = args.repeats
    elif args.repeats is not None:
        changes["optimizer_repeats"] = args.repeats
    if args.optimizer_families is not None:
        changes["optimizer_families"] = tuple(args.optimizer_families)
    if args.optimizer_shapes is not None:
        changes["optimizer_shapes"] = tuple(args.optimizer_shapes)
    return config.replace(**changes)


def _backend_names(args: argparse.Namespace) -> list[str]:
    from polarlinalg.backends import BACKEND_NAMES

    by_device = {"cpu": CPU_BACKENDS, "gpu": GPU_BACKENDS, "all": CPU_BACKENDS + GPU_BACKENDS}
    if args.backends is not None:
        unknown = [b for b in args.backends if b not in BACKEND_NAMES]
        if unknown:
            raise ValueError(
                f"--backends: unknown {', '.join(unknown)}; choose from {', '.join(BACKEND_NAMES)}"
            )
        names = list(args.backends)
        if args.device is not None:
            names = [n for n in names if n in by_device[args.device]]
            if not names:
                raise ValueError(f"--backends {args.backends} has none on --device {args.device}")
        return names
    return list(by_device[args.device or "cpu"])


def _validate(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Return (backend names, methods) or raise ValueError naming the bad argument."""
    from polarlinalg import METHODS
    from polarlinalg.bench.candidates import INV_ROOT

    known = (*METHODS, INV_ROOT)
    methods = list(known) if args.methods is None else args.methods
    unknown = [m for m in methods if m not in known]
    if unknown or not methods:
        raise ValueError(
            f"--methods: unknown {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(known)}"
        )
    if args.dtypes is not None:
        bad = [d for d in args.dtypes if d not in DTYPES]
        if bad or not args.dtypes:
            raise ValueError(
                f"--dtypes: unknown {', '.join(bad) or '(none given)'}; "
                f"choose from {', '.join(DTYPES)}"
            )
    return _backend_names(args), methods


def _matrix_part(
    backends: list[Any], methods: list[str], config: Any, anchors: bool
) -> tuple[list[dict], list[dict]]:
    from polarlinalg.bench.runner import run_matrix

    return run_matrix(backends, methods, config, anchors=anchors)


def _optimizer_part(backends: list[Any], config: Any) -> list[dict]:
    from polarlinalg.bench.optimizers import gpt2_shapes, run_optimizers
    from polarlinalg.bench.runner import _stderr

    out = []
    if config.optimizer_layers < 1:
        return out
    shapes = config.optimizer_shapes or None
    for backend in backends:
        if not backend.name.startswith(("torch", "jax")):
            continue
        if "muon" in config.optimizer_families and _muon_step_too_slow(
            backend, config.optimizer_shapes or gpt2_shapes(config.optimizer_layers)
        ):
            _stderr(
                f"skip the muon optimizer step on {backend.name}: bfloat16 products are emulated "
                "on this CPU (no bfloat16 in oneDNN, about 100x slower than float32), and "
                "torch.optim.Muon always computes in bfloat16: one step of "
                f"{config.optimizer_layers} GPT-2-small layer(s) would take minutes "
                "(polarlinalg.torch.Muon computes in float32 here by default)"
            )
        elif "muon" in config.optimizer_families:
            try:
                out.append(
                    run_optimizers(
                        backend,
                        config.optimizer_layers,
                        config.optimizer_repeats,
                        progress=_stderr,
                        shapes=shapes,
                    )
                )
            except ImportError as exc:  # optax missing, or a torch without torch.optim.Muon
                _stderr(f"skip optimizer step on {backend.name}: {exc}")
        if backend.name.startswith("torch"):
            out.extend(_kronecker_families(backend, config))
    return out


def _muon_step_too_slow(backend: Any, shapes: Any) -> bool:
    """Whether ``torch.optim.Muon`` on ``shapes`` is too slow to time on ``backend``.

    True for PyTorch on a CPU whose bfloat16 products are emulated, once the
    Newton–Schulz work ``Σ k²N`` exceeds what the anchor rows time there
    (:data:`~polarlinalg.bench.candidates.EMULATED_BF16_WORK`; one GPT-2-small layer
    is 81 times that).
    """
    from polarlinalg._dtypes import has_bfloat16_matmul
    from polarlinalg.bench.candidates import EMULATED_BF16_WORK

    if not backend.name.startswith("torch") or has_bfloat16_matmul(backend.xp, backend.device):
        return False
    work = sum(min(m, n) ** 2 * max(m, n) for m, n in shapes)
    return work > EMULATED_BF16_WORK


def _kronecker_families(backend: Any, config: Any) -> list[dict]:
    """Shampoo and SOAP against pytorch-optimizer and heavyball (PyTorch only).

    On CPUs one GPT-2 layer (the roots of its 3072 × 3072 statistics take
    seconds there); the full benchmark times one whole period of
    ``PRECONDITION_EVERY`` steps, the quick one only steps without new roots.
    """
    from polarlinalg.bench.optimizers import PRECONDITION_EVERY, run_optimizers
    from polarlinalg.bench.runner import _stderr

    on_cpu = str(backend.device).startswith("cpu")
    layers = min(1, config.optimizer_layers) if on_cpu else config.optimizer_layers
    repeats = PRECONDITION_EVERY if config.optimizer_repeats >= 3 else config.optimizer_repeats
    out = []
    for family in ("shampoo", "soap"):
        if family not in config.optimizer_families:
            continue
        try:
            out.append(
                run_optimizers(
                    backend,
                    layers,
                    repeats,
                    progress=_stderr,
                    family=family,
                    shapes=config.optimizer_shapes or None,
                )
            )
        except ImportError as exc:  # pytorch-optimizer or heavyball missing
            _stderr(
                f"skip the {family} step on {backend.name}: {exc} (pip install polarlinalg[test])"
            )
    return out


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict:
    """Run the benchmark for parsed ``args``; return the result (see :mod:`.schema`)."""
    from polarlinalg.backends import available_backends, enable_jax_x64
    from polarlinalg.bench.machine import load_average, machine_info
    from polarlinalg.bench.schema import SCHEMA
    from polarlinalg.bench.targets import check_targets

    names, methods = _validate(args)
    config = _config(args)
    if any(n.startswith("jax") for n in names) and "float64" in config.accurate_dtypes:
        try:
            enable_jax_x64()
        except ImportError:
            pass
    backends = available_backends(names)
    if not backends:
        raise ValueError(f"none of the backends {', '.join(names)} is installed with a device here")
    missing = [n for n in names if n not in {b.name for b in backends}]
    start = time.perf_counter()
    metadata = machine_info()
    rows, skipped = _matrix_part(backends, methods, config, not args.no_anchors)
    steps = _optimizer_part(backends, config)
    later = machine_info()  # the frameworks are imported by now
    metadata["gpus"], metadata["threads"] = later["gpus"], later["threads"]
    metadata["loadavg_end"] = load_average()
    metadata["wall_s"] = time.perf_counter() - start
    metadata["command"] = "polarlinalg bench " + " ".join(argv)
    metadata["backends"] = [b.name for b in backends]
    metadata["backends_missing"] = missing
    metadata["config"] = _config_dict(config)
    quick = bool(args.quick and args.sizes is None)  # --sizes makes it a sized run
    metadata["quick"] = quick
    return {
        "schema": SCHEMA,
        "metadata": metadata,
        "rows": rows,
        "skipped": skipped,
        "optimizer_steps": steps,
        "targets": check_targets(rows, quick=quick),
    }


def _config_dict(config: Any) -> dict:
    import dataclasses

    out = dataclasses.asdict(config)
    for key in ("aspects", "accurate_aspects"):
        out[key] = [str(a) for a in out[key]]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``polarlinalg bench``; return the exit status (2 for bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.plot is not None:
        from polarlinalg.bench.plots import require_matplotlib

        try:
            require_matplotlib()
        except ImportError as exc:
            parser.error(str(exc))
    try:
        result = run(args, argv)
    except ValueError as exc:
        parser.error(str(exc))
    from polarlinalg.bench.report import text_summary
    from polarlinalg.bench.schema import check

    check(result)
    print(text_summary(result))
    meta = result["metadata"]
    print(
        f"{len(result['rows'])} rows on {', '.join(meta['backends'])} in {meta['wall_s']:.0f} s; "
        f"load average {meta['loadavg_start']} -> {meta['loadavg_end']}"
    )
    if meta["backends_missing"]:
        print(f"not installed or no device here: {', '.join(meta['backends_missing'])}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.plot:
        from polarlinalg.bench.plots import write_plots

        for path in write_plots(result["rows"], args.plot):
            print(f"wrote {path}")
    if not result["rows"] and not result["optimizer_steps"]:
        print("polarlinalg bench: error: nothing was measured", file=sys.stderr)
        return 1
    return 0
