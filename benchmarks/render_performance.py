"""Render docs/performance.md tables and PNG figures from a ``polarlinalg bench`` JSON.

The page keeps its hand-written preface (machine, how to reproduce, the reasons
behind missed targets); everything between the two marker lines below is
replaced by tables generated from the JSON, and the figures are written next
to the page::

    <!-- BEGIN GENERATED: polarlinalg bench -->
    <!-- END GENERATED: polarlinalg bench -->

Several JSON files (e.g. one run per backend) are merged: their rows and
optimizer steps are concatenated, the targets are checked again on all rows,
and the run section lists every run's machine, date and load.  Usage::

    polarlinalg bench --backends torch --json benchmarks/results/cpu-torch.json
    python benchmarks/render_performance.py benchmarks/results/cpu-*.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from polarlinalg.bench import schema
from polarlinalg.bench.plots import write_plots
from polarlinalg.bench.report import matrix_table, step_table, targets_table
from polarlinalg.bench.targets import check_targets

BEGIN = "<!-- BEGIN GENERATED: polarlinalg bench -->"
END = "<!-- END GENERATED: polarlinalg bench -->"
FAMILY_TITLES = {
    "polynomial": "Newton–Schulz family (polarlinalg.orthogonalize) and its anchors",
    "accurate": "Accurate methods (polarlinalg.polar) and their anchors",
    "inv_root": "Inverse p-th roots (polarlinalg.inv_root): eigh vs the coupled Newton iteration",
}


def _metadata(meta: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    config = meta["config"]
    gpus = ", ".join(meta.get("gpus") or []) or "none"
    return (
        f"- Backends: {', '.join(meta.get('backends', []))}.\n"
        f"- Machine: {meta['cpu']}, {meta['cores']} cores; GPUs: {gpus}; thread settings: "
        f"{meta.get('threads') or 'defaults'}.\n"
        f"- Versions: {versions}.\n"
        f"- Date: {meta['date']} (commit {meta.get('git_commit') or 'unknown'}); "
        f"wall time {meta.get('wall_s', 0) / 60:.1f} min.\n"
        f"- Load average (1, 5, 15 min) at start {meta['loadavg_start']}, at end "
        f"{meta['loadavg_end']} (the machine is shared; a load above the core count means "
        "the timings include contention).\n"
        f"- Command: `{meta.get('command', 'polarlinalg bench')}`; per row at least "
        f"{config['warmup']} warm-up round(s) and {config.get('min_warmup_s', 0):g} s of them, "
        f"then at least {config['repeats']} timed rounds and "
        f"{config.get('min_time_s', 0):g} s of them (at most 50), each round one call of the "
        f"candidate and one of its floor; {config['inputs']} inputs rotated, condition "
        f"number {config['cond']:g}.\n"
    )


def _figures(paths: list[Path], page: Path) -> str:
    lines = []
    for path in paths:
        rel = os.path.relpath(path, page.parent).replace(os.sep, "/")
        lines.append(f"![{path.stem.replace('_', ' ')}]({rel})")
    return "\n\n".join(lines) + "\n"


def merge(results: list[dict]) -> dict:
    """Return one result holding the rows and steps of ``results`` (targets checked again)."""
    for result in results:
        schema.check(result)
    rows = [r for result in results for r in result["rows"]]
    return {
        "schema": schema.SCHEMA,
        "runs": [result["metadata"] for result in results],
        "rows": rows,
        "skipped": [s for result in results for s in result["skipped"]],
        "optimizer_steps": [s for result in results for s in result["optimizer_steps"]],
        "targets": check_targets(rows, quick=any(r["metadata"].get("quick") for r in results)),
    }


def render(result: dict, page: Path, images: Path) -> str:
    """Return the generated Markdown for a merged result (figures written into ``images``)."""
    parts = ["### Runs\n"]
    for meta in result["runs"]:
        parts.append(_metadata(meta))
    parts += [
        "### Targets\n",
        "Ratios measured side by side in this run (`met` is `not measured` where this run has "
        "no rows for it, e.g. every GPU target on a CPU-only machine, and `not judged at quick "
        "sizes` in a `--quick` run).\n",
        targets_table(result["targets"]),
    ]
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in result["rows"]:
        groups.setdefault((r["family"], r["backend"], r["dtype"]), []).append(r)
    for family in FAMILY_TITLES:
        keys = [k for k in groups if k[0] == family]
        if not keys:
            continue
        parts.append(f"### {FAMILY_TITLES[family]}\n")
        for key in keys:
            _, backend, dtype = key
            parts.append(f"#### {backend} ({groups[key][0]['device']}), {dtype}\n")
            parts.append(matrix_table(groups[key]))
    for record in result["optimizer_steps"]:
        parts.append(
            f"### Optimizer step, {record['backend']} ({record['device']}): {record['layers']} "
            f"GPT-2-small layers, {record['matrices']} matrices, "
            f"{record['parameters'] / 1e6:.1f}M parameters\n"
        )
        parts.append(step_table(record))
    if result["skipped"]:
        parts.append("### Not measured in this run\n")
        parts.append(
            "\n".join(
                f"- {s['backend']} {s['dtype']} {s['shape']} {s['candidate']}: {s['reason']}"
                for s in result["skipped"]
            )
            + "\n"
        )
    paths = write_plots(result["rows"], images)
    if paths:
        parts.append("### Figures\n")
        parts.append(_figures(paths, page))
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, nargs="+", help="polarlinalg bench --json files")
    parser.add_argument("--page", type=Path, default=Path("docs/performance.md"))
    parser.add_argument("--images", type=Path, default=Path("docs/img/bench"))
    args = parser.parse_args()
    result = merge([json.loads(path.read_text(encoding="utf-8")) for path in args.json])
    text = args.page.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{args.page} lacks the marker lines {BEGIN!r} and {END!r}", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    body = render(result, args.page, args.images)
    args.page.write_text(f"{head}{BEGIN}\n\n{body}\n{END}{tail}", encoding="utf-8")
    print(f"wrote {args.page} and the figures in {args.images}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
