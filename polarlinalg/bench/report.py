"""Plain-text and Markdown tables of a run (the docs page is rendered from the Markdown)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from polarlinalg.bench.targets import NOT_JUDGED

__all__ = [
    "format_ms",
    "matrix_table",
    "step_table",
    "targets_count",
    "targets_table",
    "text_summary",
]


def format_ms(seconds: float) -> str:
    """Milliseconds with three significant digits."""
    ms = 1e3 * seconds
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def _groups(rows: Iterable[dict]) -> dict[tuple[str, str, str], list[dict]]:
    out: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        out.setdefault((r["backend"], r["family"], r["dtype"]), []).append(r)
    return out


def matrix_table(rows: Sequence[dict]) -> str:
    """One Markdown table: candidate rows of one (backend, family, dtype) group.

    For the ``inv_root`` family the orthogonality column is "—" and the forward
    error is the root's relative error against float64 eigh.
    """
    head = (
        "| shape | candidate | ms (IQR) | × floor (min) | floor GFLOP/s | achieved GFLOP/s "
        "| orthogonality | forward error | compile s |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = []
    for r in rows:
        name = r["candidate"] if r["source"] == "polarlinalg" else f"*{r['candidate']}*"
        compile_s = "" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
        floor_rate = r["floor_flops"] / r["floor_s"] / 1e9
        orth = "—" if r["orthogonality"] is None else f"{r['orthogonality']:.1e}"
        lines.append(
            f"| {r['shape']} | {name} | {format_ms(r['median_s'])} "
            f"({format_ms(r['q3_s'] - r['q1_s'])}) | {r['time_over_floor']:.2f} "
            f"({r['time_over_floor_min']:.2f}) "
            f"| {floor_rate:.0f} | {r['gflops']:.0f} | {orth} "
            f"| {r['forward_error']:.1e} | {compile_s} |"
        )
    return head + "\n".join(lines) + "\n"


def step_table(record: dict) -> str:
    """Markdown table of one optimizer-step record."""
    head = (
        f"| candidate | ms/step (IQR) | × {record['reference']} | × floor | CPU/wall "
        "| Δ first update |\n| --- | --- | --- | --- | --- | --- |\n"
    )
    lines = []
    for r in record["rows"]:
        diff = "—" if r["update_difference"] is None else f"{r['update_difference']:.1e}"
        lines.append(
            f"| {r['candidate']} | {format_ms(r['median_s'])} ({format_ms(r['q3_s'] - r['q1_s'])}) "
            f"| {r['ratio_to_reference']:.2f} | {r['time_over_floor']:.2f} "
            f"| {r['cpu_over_wall']:.2f} | {diff} |"
        )
    floor = record["rows"][0]
    lines.append(
        f"| floor: {floor['floor_dtype']} NS products ({record['floor_gflops']:.0f} GFLOP/s) "
        f"| {format_ms(floor['floor_s'])} | {floor['floor_s'] / record['rows'][0]['median_s']:.2f} "
        "| 1 | | |"
    )
    return head + "\n".join(lines) + "\n"


def targets_table(targets: Sequence[dict]) -> str:
    """Markdown table of the target records."""
    head = "| target | backend | dtype | shape | measured | met | detail |\n"
    head += "| --- | --- | --- | --- | --- | --- | --- |\n"
    lines = []
    for t in targets:
        value = "—" if t["value"] is None else f"{t['value']:.2f}"
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        if t["met"] is None and t.get("judged", True) is False:
            met = NOT_JUDGED
        lines.append(
            f"| {t['target']} | {t['backend']} | {t['dtype']} | {t['shape']} | {value} | {met} "
            f"| {t['detail']} |"
        )
    return head + "\n".join(lines) + "\n"


def targets_count(targets: Sequence[dict]) -> str:
    """One line: how many targets were met, missed, not judged and not measured."""
    counts = {"met": 0, "missed": 0, NOT_JUDGED: 0, "not measured": 0}
    for t in targets:
        if t["met"] is True:
            counts["met"] += 1
        elif t["met"] is False:
            counts["missed"] += 1
        elif t.get("judged", True) is False:
            counts[NOT_JUDGED] += 1
        else:
            counts["not measured"] += 1
    return f"targets: {len(targets)}: " + ", ".join(f"{n} {k}" for k, n in counts.items())


def text_summary(result: dict) -> str:
    """Return what the command prints at the end: the row groups, the steps and the targets."""
    parts = []
    for (backend, family, dtype), rows in _groups(result["rows"]).items():
        parts.append(f"## {backend} {dtype}, {family}\n\n{matrix_table(rows)}")
    for record in result["optimizer_steps"]:
        parts.append(
            f"## optimizer step, {record['backend']}, {record['layers']} layer(s)\n\n"
            f"{step_table(record)}"
        )
    if result["targets"]:
        targets = result["targets"]
        parts.append(f"## targets\n\n{targets_table(targets)}\n{targets_count(targets)}\n")
    if result["skipped"]:
        lines = [
            f"- {s['backend']} {s['dtype']} {s['shape']} {s['candidate']}: {s['reason']}"
            for s in result["skipped"]
        ]
        parts.append("## skipped\n\n" + "\n".join(lines) + "\n")
    return "\n".join(parts)
