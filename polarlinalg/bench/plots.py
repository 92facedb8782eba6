"""The figures of a run (matplotlib, imported only here).

For every backend and dtype: *time vs size* (single square matrices, one line
per candidate, the floor of polarlinalg's methods dashed) and *accuracy vs
time* (every row: forward error against milliseconds, one marker per
candidate, the Pareto picture a user chooses from).  The inv_root rows get
their own pair (``…_<dtype>_inv_root.png``).
"""

from __future__ import annotations

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


def _time_vs_size(plt, rows: list[dict], title: str, path: Path) -> bool:
    square = [r for r in rows if r["m"] == r["n"] and r["batch"] == 1]
    if not square:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["candidate"] for r in square):
        mine = sorted((r for r in square if r["candidate"] == name), key=lambda r: r["n"])
        style = "-o" if mine[0]["source"] == "polarlinalg" else ":s"
        line = ax.plot(
            [r["n"] for r in mine], [1e3 * r["median_s"] for r in mine], style, label=name
        )
        if mine[0]["source"] == "polarlinalg":
            ax.plot(
                [r["n"] for r in mine],
                [1e3 * r["floor_s"] for r in mine],
                "--",
                color=line[0].get_color(),
                alpha=0.5,
                linewidth=1,
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("n (square n × n)")
    ax.set_ylabel("median time, ms (dashed: floor)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _pareto(plt, rows: list[dict], title: str, path: Path, ylabel: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = "os^vD<>pP*Xh"
    for i, name in enumerate(dict.fromkeys(r["candidate"] for r in rows)):
        mine = [r for r in rows if r["candidate"] == name]
        ax.scatter(
            [1e3 * r["median_s"] for r in mine],
            [max(r["forward_error"], 1e-17) for r in mine],
            marker=markers[i % len(markers)],
            label=name,
            alpha=0.8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("median time, ms")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
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
