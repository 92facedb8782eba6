"""The figures of a run (matplotlib, imported only here).

For every backend and dtype: *time vs size* (single square matrices, one line
per candidate, the floor of each polarlinalg method dashed with × markers in
its colour, so a one-size run shows it too) and *accuracy vs time* (every row:
forward error against milliseconds, one colour per candidate and one marker
per shape, the Pareto picture a user chooses from).  Log axes label their
decades, and 2 and 5 in between when the data spans less than two decades.  The inv_root rows get
their own pair (``…_<dtype>_inv_root.png``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from polarlinalg._pyplot import pyplot

__all__ = ["require_matplotlib", "write_plots"]

_HINT = "install the extra: pip install 'polarlinalg[experiments]'"


def require_matplotlib() -> None:
    """Raise ImportError with the extra to install if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"--plot needs matplotlib; {_HINT}") from exc


def _groups(rows: Sequence[dict]) -> dict[tuple[str, str], list[dict]]:
    """Rows by (backend, dtype); the inv_root rows (another problem) get figures of their own."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        dtype = r["dtype"] + ("_inv_root" if r["family"] == "inv_root" else "")
        out.setdefault((r["backend"], dtype), []).append(r)
    return out


_MARKERS = "os^vD<>pP*Xh"
_FLOOR = "its floor (dashed, ×)"


def _colours(plt, names: Sequence[str]) -> dict[str, object]:
    """One colour per candidate (tab10, tab20 past ten candidates: no colour repeats)."""
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _tick_label(value: float, _position: object = None) -> str:
    """``0.25``, ``40``, ``10⁻⁷``, ``2×10⁻⁷``: plain numbers between 1e-3 and 1e4."""
    if value <= 0:
        return ""
    if 1e-3 <= value < 1e4:
        return f"{value:g}"
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10.0**exponent
    if abs(mantissa - round(mantissa)) < 1e-6 and round(mantissa) == 1:
        return f"$10^{{{exponent}}}$"
    return f"${mantissa:.2g}\\times10^{{{exponent}}}$"


def _log_axis(axis, values: Sequence[float]) -> None:
    """Log scale with labelled decades; within two decades, labels at 2 and 5 too.

    Matplotlib labels only the powers of ten by default, so a forward error that
    spans 0.12 to 0.35 gets no label at all (or crowded ``3.5×10⁻¹`` ones).
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, numticks=9))
    axis.set_major_formatter(FuncFormatter(_tick_label))
    axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0), numticks=12))
    positive = [v for v in values if v > 0]
    narrow = bool(positive) and max(positive) / min(positive) < 1e2
    axis.set_minor_formatter(FuncFormatter(_tick_label) if narrow else NullFormatter())


def _time_vs_size(plt, rows: list[dict], title: str, path: Path) -> bool:
    square = [r for r in rows if r["m"] == r["n"] and r["batch"] == 1]
    if not square:
        return False
    names = list(dict.fromkeys(r["candidate"] for r in square))
    colour = _colours(plt, names)
    fig, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    floors = False
    for name in names:
        mine = sorted((r for r in square if r["candidate"] == name), key=lambda r: r["n"])
        ours = mine[0]["source"] == "polarlinalg"
        ax.plot(
            [r["n"] for r in mine],
            [1e3 * r["median_s"] for r in mine],
            "-o" if ours else ":s",
            color=colour[name],
            label=name if ours else f"{name} (anchor)",
        )
        if ours:  # a marker on every floor point: a one-size run has no line to dash
            ax.plot(
                [r["n"] for r in mine],
                [1e3 * r["floor_s"] for r in mine],
                "--x",
                color=colour[name],
                alpha=0.6,
                linewidth=1,
                markersize=6,
            )
            floors = True
    if floors:  # one legend entry says what the dashed lines are
        ax.plot([], [], "--x", color="0.4", linewidth=1, label=_FLOOR)
    sizes = sorted({r["n"] for r in square})
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    if len(sizes) == 1:
        ax.set_xlim(sizes[0] / 1.5, sizes[0] * 1.5)
    ax.set_yscale("log")
    _log_axis(ax.yaxis, [1e3 * r[k] for r in square for k in ("median_s", "floor_s")])
    ax.set_xlabel("n (square n × n)")
    ax.set_ylabel("median time, ms")
    ax.set_title(title)
    fig.legend(fontsize=7, loc="outside right upper")
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _pareto(plt, rows: list[dict], title: str, path: Path, ylabel: str) -> None:
    """Forward error against time: colour per candidate, marker per shape (two legends)."""
    from matplotlib.lines import Line2D

    names = list(dict.fromkeys(r["candidate"] for r in rows))
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    colour = _colours(plt, names)
    marker = {shape: _MARKERS[i % len(_MARKERS)] for i, shape in enumerate(shapes)}
    floor_error = 1e-17  # exact results (error 0) are drawn here, on a log axis
    fig, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    for r in rows:
        ax.scatter(
            1e3 * r["median_s"],
            max(r["forward_error"], floor_error),
            marker=marker[r["shape"]],
            color=colour[r["candidate"]],
            alpha=0.85,
            s=36,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, [1e3 * r["median_s"] for r in rows])
    _log_axis(ax.yaxis, [max(r["forward_error"], floor_error) for r in rows])
    ax.set_xlabel("median time, ms")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    by_candidate = [
        Line2D([], [], linestyle="", marker="o", color=colour[n], label=n) for n in names
    ]
    by_shape = [
        Line2D([], [], linestyle="", marker=marker[s], color="0.3", label=s) for s in shapes
    ]
    for handles, what, where in (
        (by_candidate, "candidate (colour)", "outside right upper"),
        (by_shape, "shape (marker)", "outside right lower"),
    ):
        fig.legend(handles=handles, title=what, fontsize=7, title_fontsize=7, loc=where)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(rows: Sequence[dict], directory: str | Path) -> list[Path]:
    """Write the PNG figures of ``rows`` into ``directory`` (created); return their paths."""
    plt = pyplot("--plot")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for (backend, dtype), group in _groups(rows).items():
        stem = f"{backend}_{dtype}"
        path = directory / f"time_vs_size_{stem}.png"
        if _time_vs_size(plt, group, f"{backend} {dtype}: time vs size", path):
            written.append(path)
        path = directory / f"accuracy_vs_time_{stem}.png"
        if dtype.endswith("_inv_root"):
            ylabel = "relative error ‖X − X_eigh‖_F / ‖X_eigh‖_F (float64 eigh)"
        else:
            ylabel = "forward error ‖U − U_svd‖_F / ‖U_svd‖_F"
        _pareto(plt, group, f"{backend} {dtype}: accuracy vs time", path, ylabel)
        written.append(path)
    return written
