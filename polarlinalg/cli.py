"""Command-line interface (``polarlinalg`` and ``python -m polarlinalg``).

``validate`` lives here; ``bench`` and ``experiment`` are their own command lines
(:mod:`polarlinalg.bench.cli`, :mod:`polarlinalg.experiments.cli`), imported only
when they run, so ``polarlinalg validate`` never pays for matplotlib or a framework.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from polarlinalg._argtypes import csv_list as _csv

__all__ = ["main"]


class _Progress:
    """Progress of ``polarlinalg validate`` on stderr, row by row as the rows are computed.

    On a terminal with tqdm installed: one progress bar per part (polar, inv_root,
    optimizers), failed rows printed above it.  Otherwise (a log, a pipe, or no
    tqdm): one line per row, flushed at once, so that a long run shows what it is
    doing.  The tables and the summary still go to stdout at the end.
    """

    def __init__(self, stream: TextIO | None = None, bar: bool | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        if bar is None:
            bar = self.stream.isatty() and importlib.util.find_spec("tqdm") is not None
        self.bar = bar
        self._tqdm: Any = None

    def part(self, name: str) -> Callable[[Any, int, int], None]:
        """Return the ``on_row(row, done, total)`` callback of one part of the run."""

        def on_row(row: Any, done: int, total: int) -> None:
            if self.bar:
                if self._tqdm is None:
                    from tqdm import tqdm

                    self._tqdm = tqdm(total=total, desc=name, unit="row", file=self.stream)
                if not row.passed:  # a failure stays on screen above the bar
                    self._tqdm.write(f"{name}: {_describe(row)}", file=self.stream)
                self._tqdm.set_postfix_str(_describe(row), refresh=False)
                self._tqdm.update(1)
                if done == total:
                    self.close()
            else:
                width = len(str(total))
                print(f"{name} {done:>{width}}/{total}  {_describe(row)}", file=self.stream)
                self.stream.flush()

        return on_row

    def close(self) -> None:
        """Close the current progress bar (if any)."""
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None


def _describe(row: Any) -> str:
    """One short line for a row of any of the validate tables."""
    what = row.optimizer if hasattr(row, "optimizer") else row.method
    fields = [what, row.backend, row.dtype, getattr(row, "case", "")]
    text = "  ".join(f for f in fields if f)
    if row.passed:
        return f"{text}: pass"
    why = getattr(row, "reason", None) or getattr(row, "note", "")
    return f"{text}: FAIL {why}".rstrip()


def _validate(args: argparse.Namespace) -> int:
    from polarlinalg import validate
    from polarlinalg.backends import BACKEND_NAMES, available_backends, enable_jax_x64

    try:
        enable_jax_x64()  # float64 rows on JAX; this process only
    except ImportError:
        pass
    start = time.perf_counter()
    progress = _Progress()
    try:
        if args.backends is None:  # every installed one (or POLARLINALG_BACKENDS's)
            found = available_backends()
            if not found:  # POLARLINALG_BACKENDS names none that is here: say why
                found = validate.requested_backends(os.environ.get("POLARLINALG_BACKENDS", ""))
        else:  # each one named must be here
            found = validate.requested_backends(args.backends)
        rows = validate.run(
            backends=[b.name for b in found],
            methods=args.methods,
            dtypes=args.dtypes,
            on_row=progress.part("polar"),
        )
        optimizer_rows: list = []
        root_rows: list = []
        if args.methods is None:  # the whole job: inv_root and the optimizers' rules too
            from polarlinalg import validate_inv_root, validate_optimizers

            root_rows = validate_inv_root.run(found, args.dtypes, on_row=progress.part("inv_root"))
            optimizer_rows = validate_optimizers.run(
                found, args.dtypes, on_row=progress.part("optimizers")
            )
    except ValueError as exc:
        progress.close()
        for line in str(exc).splitlines():
            print(f"polarlinalg validate: error: {line}", file=sys.stderr)
        return 2
    finally:
        progress.close()
    elapsed = time.perf_counter() - start
    if not rows:
        print("polarlinalg validate: error: nothing was validated", file=sys.stderr)
        return 1
    print(validate.format_table(rows))
    failed = [r for r in rows if not r.passed]
    if root_rows:
        from polarlinalg import validate_inv_root

        print()
        print(f"inv_root: (A + εI)^(-1/{validate_inv_root.P}) against float64 eigh")
        print(validate_inv_root.format_table(root_rows))
        failed += [r for r in root_rows if not r.passed]
    if optimizer_rows:
        from polarlinalg import validate_optimizers

        print()
        print(f"optimizers: {validate_optimizers.STEPS} steps against NumPy float64")
        print(validate_optimizers.format_table(optimizer_rows))
        failed += [r for r in optimizer_rows if not r.passed]
    names = ", ".join(b.name for b in found)
    missing = [n for n in BACKEND_NAMES if n not in {b.name for b in found}]
    print()
    print(
        f"{len(rows) + len(root_rows) + len(optimizer_rows)} rows on {names}: "
        f"{len(rows) + len(root_rows) + len(optimizer_rows) - len(failed)} passed, "
        f"{len(failed)} failed "
        f"({elapsed:.1f} s)"
    )
    if missing and args.backends is None:
        print(f"not installed or no device here: {', '.join(missing)}")
    if args.json:
        Path(args.json).write_text(validate.to_json(rows) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    from polarlinalg import __version__

    parser = argparse.ArgumentParser(
        prog="polarlinalg",
        description="Polar decomposition for every Array API framework.",
    )
    parser.add_argument("--version", action="version", version=f"polarlinalg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    val = commands.add_parser(
        "validate",
        help="check every method on every installed backend against float64 references",
        description=(
            "Run every polar method on every installed backend and dtype over a fixed suite "
            "of matrices, compare with float64 SVD references, print a table and exit with "
            "status 1 if any row fails its documented tolerance.  Each row is reported on "
            "stderr as soon as it is computed (a progress bar on a terminal with tqdm, one line "
            "per row otherwise)."
        ),
    )
    val.add_argument(
        "--backends",
        type=_csv,
        default=None,
        help=(
            "comma-separated backends among numpy,array_api_strict,torch,torch-cuda,jax,"
            "jax-gpu,cupy, each of which must be available (default: all installed; env "
            "POLARLINALG_BACKENDS filters them)"
        ),
    )
    val.add_argument(
        "--methods", type=_csv, default=None, help="comma-separated methods (default: all)"
    )
    val.add_argument(
        "--dtypes",
        type=_csv,
        default=None,
        help=(
            "comma-separated dtypes among float32,float64,bfloat16,float16 (default: all; "
            "bfloat16 on torch and jax only); the complex cases run in complex64 with "
            "float32 and complex128 with float64"
        ),
    )
    val.add_argument("--json", metavar="PATH", default=None, help="also write the rows as JSON")
    val.set_defaults(func=_validate)
    for name, (summary, _) in _DELEGATED.items():
        # Parsed by the command's own parser (see ``main``); listed here for --help.
        commands.add_parser(name, help=summary, add_help=False)
    return parser


# Commands with a command line of their own: name -> (summary, module with ``main(argv)``).
_DELEGATED = {
    "bench": (
        "time every method and backend against the anchors and the hardware floor",
        "polarlinalg.bench.cli",
    ),
    "experiment": (
        "run the PolarGrad paper's experiments (quadratic, logistic, completion, lm)",
        "polarlinalg.experiments.cli",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        import importlib

        module = importlib.import_module(_DELEGATED[argv[0]][1])
        return int(module.main(argv[1:]))
    args = _parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
