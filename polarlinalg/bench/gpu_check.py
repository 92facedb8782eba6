"""One command for a lent GPU: validation, the GPU benchmark rows and a short LM run.

``benchmarks/gpu_check.sh`` (or ``python -m polarlinalg.bench.gpu_check``) runs,
one after another, each as its own process with its own time limit, within
``--budget`` seconds (480 by default, the 8 minutes of the issue):

1. **validate**: ``polarlinalg validate`` on the GPU backends present
   (``torch-cuda``, ``jax-gpu``, ``cupy``): every method and dtype against
   NumPy float64 references, then ``inv_root`` and the optimizers' rules;
2. **bench**: ``polarlinalg bench`` at 4096², the rows of the GPU targets
   (``polar_express`` bfloat16 against its matmul floor, QDWH float32 against
   the SVD-based polar), and the optimizer step on 12 GPT-2-small layers
   (``polarlinalg.torch.Muon`` and ``PolarGrad`` against ``torch.optim.Muon``
   on CUDA; the optax step on JAX);
3. **lm**: 50 steps of ``polarlinalg experiment lm --preset gpu`` for AdamW,
   Muon and PolarGradM (QDWH).

A step that fails or runs out of its time is recorded, and the next one runs.
Then ``gpu-check.json`` (everything, with each step's command, exit status,
time and log file) and ``gpu-check.md`` (the tables for docs/performance.md)
are written into ``--out``.

``--dry-run`` prints the GPU plan, then runs the same three steps on the CPU at
tiny sizes (NumPy and PyTorch, a 32² benchmark, the ``tiny`` LM preset for a
few steps), so that CI checks the whole path in well under a minute.
``--plan-only`` prints the plan and runs nothing.

The GPU image of the project's machines lacks array-api-compat and
array-api-strict, which ``import polarlinalg`` needs; the shell script installs
them from wheels carried in ``.whl/`` before Python starts (docs/performance.md,
*On a GPU*).  No framework is imported by this module: every step is a child
process (with ``XLA_PYTHON_CLIENT_PREALLOCATE=false``, so that JAX leaves GPU
memory to PyTorch and CuPy in the same process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "Step", "main", "plan", "summary_markdown"]

SCHEMA = "polarlinalg-gpu-check/1"
GPU_BACKENDS = "torch-cuda,jax-gpu,cupy"
LM_ARMS = "adamw,muon,polargradm_qdwh"
DEFAULT_BUDGET_S = 480.0
_MIN_STEP_S = 20.0  # what a later step keeps back from an earlier one's limit


@dataclass(frozen=True)
class Step:
    """One child process of the check: its name, arguments, environment and time cap."""

    name: str
    args: tuple[str, ...]
    cap_s: float
    env: tuple[tuple[str, str], ...] = ()
    output: str = ""  # the file or folder (under --out) the step writes its results to

    def command(self, python: str = "python") -> str:
        """Return the command line as a shell would run it (for the plan and the summary)."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        line = shlex.join([python, "-m", *self.args])
        return f"{env} {line}" if env else line


def plan(out: Path, *, dry_run: bool, lm_steps: int = 50, lm_arms: str = LM_ARMS) -> list[Step]:
    """Return the steps of the check, writing their results under ``out``.

    With ``dry_run`` the steps are the CPU stand-ins at tiny sizes.
    """
    if dry_run:
        validate = Step(
            "validate",
            (
                "polarlinalg",
                "validate",
                "--methods",
                "polar_express",
                "--dtypes",
                "float32",
                "--json",
                str(out / "validate.json"),
            ),
            60.0,
            (("POLARLINALG_BACKENDS", "numpy,torch"),),
            "validate.json",
        )
        bench = (
            "--backends",
            "torch",
            *("--dtypes", "float32", "--sizes", "32", "--repeats", "1", "--warmup", "1"),
            *("--min-time", "0", "--warmup-time", "0", "--optimizer-layers", "1"),
            *("--optimizer-shapes", "32x64,64x32"),
        )
        lm = ("--preset", "tiny", "--quick", "--device", "cpu", "--threads", "1")
    else:
        validate = Step(
            "validate",
            ("polarlinalg", "validate", "--json", str(out / "validate.json")),
            190.0,
            (("POLARLINALG_BACKENDS", GPU_BACKENDS),),
            "validate.json",
        )
        bench = ("--device", "gpu", "--dtypes", "bfloat16,float32", "--sizes", "4096")
        lm = ("--preset", "gpu", "--steps", str(lm_steps))
    return [
        validate,
        Step(
            "bench",
            (
                "polarlinalg",
                "bench",
                *bench,
                *("--methods", "polar_express,qdwh,svd", "--aspects", "1", "--batch", "0"),
                *("--no-anchors", "--optimizer-families", "muon"),
                *("--json", str(out / "bench.json")),
            ),
            60.0 if dry_run else 130.0,
            output="bench.json",
        ),
        Step(
            "lm",
            (
                "polarlinalg",
                "experiment",
                "lm",
                *lm,
                *("--arms", lm_arms, "--no-plots", "--no-progress", "--out", str(out / "lm")),
            ),
            60.0 if dry_run else 130.0,
            output="lm/runs.json",
        ),
    ]


def _run_step(step: Step, limit_s: float, out: Path, python: str) -> dict:
    """Run ``step`` for at most ``limit_s`` seconds; return its record (log under ``out``)."""
    log = out / f"{step.name}.log"
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1"}
    env.update(dict(step.env))
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():  # a checkout: the steps run it without an install
        paths = (str(root), env.get("PYTHONPATH", ""))
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    start = time.perf_counter()
    timed_out = False
    with log.open("w", encoding="utf-8") as fh:
        try:
            rc: int | None = subprocess.run(
                [python, "-m", *step.args],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=limit_s,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            rc, timed_out = None, True
    wall = time.perf_counter() - start
    return {
        "name": step.name,
        "command": step.command(python),
        "limit_s": round(limit_s, 1),
        "rc": rc,
        "timed_out": timed_out,
        "wall_s": round(wall, 2),
        "log": log.name,
        "output": step.output if (out / step.output).exists() else None,
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _validate_part(out: Path) -> dict | None:
    rows = _read_json(out / "validate.json")
    if not isinstance(rows, list):
        return None
    failed = [r for r in rows if not r.get("passed")]
    backends = sorted({r.get("backend", "?") for r in rows})
    return {
        "rows": len(rows),
        "passed": len(rows) - len(failed),
        "failed": [
            {k: r.get(k) for k in ("method", "backend", "dtype", "case", "reason")} for r in failed
        ],
        "backends": backends,
    }


def _bench_part(out: Path) -> dict | None:
    result = _read_json(out / "bench.json")
    if not isinstance(result, dict):
        return None
    keep = ("backend", "dtype", "shape", "candidate", "median_s", "time_over_floor")
    keep += ("forward_error",)
    steps = [
        {
            "backend": record["backend"],
            "device": record.get("device", ""),
            "reference": record["reference"],
            "rows": [
                {
                    k: row[k]
                    for k in ("candidate", "median_s", "ratio_to_reference", "time_over_floor")
                }
                | {"update_difference": row.get("update_difference")}
                for row in record["rows"]
            ],
        }
        for record in result.get("optimizer_steps", [])
    ]
    meta = result.get("metadata", {})
    return {
        "gpus": meta.get("gpus", []),
        "backends": meta.get("backends", []),
        "backends_missing": meta.get("backends_missing", []),
        "targets": [t for t in result.get("targets", []) if "(GPU)" in t["target"]],
        "rows": [{k: r[k] for k in keep} for r in result.get("rows", [])],
        "optimizer_steps": steps,
    }


def _lm_part(out: Path) -> dict | None:
    runs = _read_json(out / "lm" / "runs.json")
    if not isinstance(runs, dict):
        return None
    keep = ("arm", "final_val_loss", "diverged", "steps_done", "train_time_s", "tokens_per_s")
    return {
        "preset": runs.get("preset", {}).get("name"),
        "steps": runs.get("preset", {}).get("steps"),
        "environment": runs.get("environment", {}),
        "runs": [{k: r.get(k) for k in keep} for r in runs.get("runs", [])],
    }


def _gpu_names() -> list[str]:
    """Return the GPUs ``nvidia-smi -L`` lists (none without it); imports no framework."""
    try:
        text = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def _ms(seconds: Any) -> str:
    return "—" if not isinstance(seconds, int | float) else f"{1e3 * seconds:.1f}"


def _num(x: Any, spec: str = ".2f") -> str:
    return "—" if not isinstance(x, int | float) else format(x, spec)


def summary_markdown(summary: dict) -> str:
    """Return the Markdown summary of a check's JSON ``summary``."""
    kind = "dry run on the CPU, tiny sizes" if summary["dry_run"] else "GPU"
    gpus = ", ".join(summary["machine"]["gpus"]) or "none found"
    lines = [
        f"## GPU check ({kind}), {summary['machine']['date']}",
        "",
        f"Machine: {summary['machine']['cpu']}; GPUs: {gpus}; "
        f"total {summary['total_s']:.0f} s of a {summary['budget_s']:.0f} s budget.",
        "",
        "| step | exit | seconds (limit) | command |",
        "| --- | --- | --- | --- |",
    ]
    for s in summary["steps"]:
        status = "timed out" if s["timed_out"] else str(s["rc"])
        lines.append(
            f"| {s['name']} | {status} | {s['wall_s']:.0f} ({s['limit_s']:.0f}) "
            f"| `{s['command']}` |"
        )
    v = summary["validate"]
    lines += ["", "### validate", ""]
    if v is None:
        lines.append("No result (see validate.log).")
    else:
        lines.append(
            f"{v['rows']} rows on {', '.join(v['backends'])}: {v['passed']} passed, "
            f"{len(v['failed'])} failed."
        )
        lines += [
            f"- FAIL {f['method']} {f['backend']} {f['dtype']} {f['case']}: {f['reason']}"
            for f in v["failed"]
        ]
    b = summary["bench"]
    lines += ["", "### bench", ""]
    if b is None:
        lines.append("No result (see bench.log).")
    else:
        lines += ["| target | backend | measured | met |", "| --- | --- | --- | --- |"]
        for t in b["targets"]:
            met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
            lines.append(f"| {t['target']} | {t['backend']} | {_num(t['value'])} | {met} |")
        lines += [
            "",
            "| backend | dtype | shape | candidate | ms | × floor | forward error |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in b["rows"]:
            lines.append(
                f"| {r['backend']} | {r['dtype']} | {r['shape']} | {r['candidate']} "
                f"| {_ms(r['median_s'])} | {_num(r['time_over_floor'])} "
                f"| {_num(r['forward_error'], '.1e')} |"
            )
        for record in b["optimizer_steps"]:
            lines += [
                "",
                f"Optimizer step, {record['backend']} ({record['device']}):",
                "",
                f"| candidate | ms/step | × {record['reference']} | × floor | Δ first update |",
                "| --- | --- | --- | --- | --- |",
            ]
            for r in record["rows"]:
                lines.append(
                    f"| {r['candidate']} | {_ms(r['median_s'])} | "
                    f"{_num(r['ratio_to_reference'])} | {_num(r['time_over_floor'])} "
                    f"| {_num(r['update_difference'], '.1e')} |"
                )
    lm = summary["lm"]
    lines += ["", "### lm", ""]
    if lm is None:
        lines.append("No result (see lm.log).")
    else:
        lines += [
            f"Preset `{lm['preset']}`, {lm['steps']} steps, device "
            f"{lm['environment'].get('device', '?')}.",
            "",
            "| arm | final val loss | steps | train s | tokens/s |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in lm["runs"]:
            loss = _num(r["final_val_loss"], ".4f") + (" (diverged)" if r["diverged"] else "")
            lines.append(
                f"| {r['arm']} | {loss} | {r['steps_done']} | {_num(r['train_time_s'], '.1f')} "
                f"| {_num(r['tokens_per_s'], ',.0f')} |"
            )
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/gpu_check.sh",
        description=(
            "On a GPU, in one go: polarlinalg validate on torch-cuda, jax-gpu and cupy; the "
            "GPU benchmark rows at 4096² and the optimizer step against torch.optim.Muon; "
            "50 steps of the LM gpu preset for AdamW, Muon and PolarGradM; one JSON and one "
            "Markdown summary."
        ),
    )
    parser.add_argument("--out", default=None, help="output folder (default gpu-check)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the GPU plan, then run the same steps on the CPU at tiny sizes",
    )
    parser.add_argument("--plan-only", action="store_true", help="print the plan, run nothing")
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET_S,
        metavar="S",
        help=f"seconds for all steps together (default {DEFAULT_BUDGET_S:.0f})",
    )
    parser.add_argument(
        "--lm-steps", type=int, default=50, help="steps of the LM gpu preset (default 50)"
    )
    parser.add_argument("--lm-arms", default=LM_ARMS, help=f"LM arms (default {LM_ARMS})")
    parser.add_argument(
        "--skip",
        default="",
        metavar="STEPS",
        help="comma-separated steps to leave out: validate, bench, lm",
    )
    return parser


def _print_plan(title: str, steps: Sequence[Step], python: str) -> None:
    print(title)
    for s in steps:
        print(f"  [{s.name}, up to {s.cap_s:.0f} s] {s.command(python)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; return 0 when every step ran and passed, 1 otherwise (2: bad arguments)."""
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.budget > 0:
        parser.error(f"--budget must be positive; got {args.budget}")
    if args.lm_steps < 1:
        parser.error(f"--lm-steps must be a positive integer; got {args.lm_steps}")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = sorted(skip - {"validate", "bench", "lm"})
    if unknown:
        parser.error(f"--skip: unknown {', '.join(unknown)}; choose from validate, bench, lm")
    out = Path(args.out or ("gpu-check-dry-run" if args.dry_run else "gpu-check"))
    python = sys.executable or "python3"
    gpu_out = Path(args.out or "gpu-check")
    gpu_steps = plan(gpu_out, dry_run=False, lm_steps=args.lm_steps, lm_arms=args.lm_arms)
    _print_plan(f"GPU plan (budget {args.budget:.0f} s), results in {gpu_out}/:", gpu_steps, python)
    steps = gpu_steps if not args.dry_run else plan(out, dry_run=True, lm_arms=args.lm_arms)
    if args.dry_run:
        _print_plan("Dry run: the same steps on the CPU at tiny sizes:", steps, python)
    if args.plan_only:
        return 0
    steps = [s for s in steps if s.name not in skip]
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    records = []
    for i, step in enumerate(steps):
        left = args.budget - (time.perf_counter() - start) - _MIN_STEP_S * (len(steps) - i - 1)
        limit = min(step.cap_s, left)
        if limit < 5:
            records.append(
                {
                    "name": step.name,
                    "command": step.command(python),
                    "limit_s": 0,
                    "rc": None,
                    "timed_out": True,
                    "wall_s": 0.0,
                    "log": "",
                    "output": None,
                }
            )
            print(f"{step.name}: no time left in the budget", flush=True)
            continue
        print(f"{step.name}: running (up to {limit:.0f} s; log {out / step.name}.log)", flush=True)
        record = _run_step(step, limit, out, python)
        status = "timed out" if record["timed_out"] else f"exit {record['rc']}"
        print(f"{step.name}: {status} after {record['wall_s']:.0f} s", flush=True)
        records.append(record)
    from polarlinalg.bench.machine import cpu_model

    summary = {
        "schema": SCHEMA,
        "dry_run": bool(args.dry_run),
        "machine": {
            "cpu": cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "gpus": _gpu_names(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "budget_s": args.budget,
        "total_s": round(time.perf_counter() - start, 1),
        "steps": records,
        "validate": _validate_part(out) if "validate" not in skip else None,
        "bench": _bench_part(out) if "bench" not in skip else None,
        "lm": _lm_part(out) if "lm" not in skip else None,
    }
    (out / "gpu-check.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    markdown = summary_markdown(summary)
    (out / "gpu-check.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {out / 'gpu-check.json'} and {out / 'gpu-check.md'}")
    ok = all(r["rc"] == 0 for r in records)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
