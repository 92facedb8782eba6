"""Quick runs report the targets without judging them; the figures' floor line and markers."""

from __future__ import annotations

import copy

import pytest

from polarlinalg.bench import schema
from polarlinalg.bench.report import targets_count, targets_table
from polarlinalg.bench.targets import NOT_JUDGED, check_targets


def _row(**changes):
    row = {
        "backend": "numpy", "device": "cpu", "dtype": "float32", "shape": "64x256", "m": 64,
        "n": 256, "batch": 1, "candidate": "polar_express", "source": "polarlinalg",
        "family": "polynomial", "jitted": False, "median_s": 2.0, "q1_s": 1.9, "q3_s": 2.1,
        "min_s": 1.8, "first_call_s": 2.5, "compile_s": None, "repeats": 3,
        "orthogonality": 0.3, "forward_error": 0.2, "floor_s": 1.0, "floor_flops": 1e9,
        "floor_ops": "15 matmul", "time_over_floor": 2.0, "time_over_floor_min": 2.0, "gflops": 0.5,
    }  # fmt: skip
    row.update(changes)
    return row


ROWS = [
    _row(),
    _row(candidate="gram_newton_schulz", median_s=1.0, time_over_floor=1.05),
    _row(shape="256x256", m=256, n=256, time_over_floor=1.02),
]


def test_quick_run_reports_values_without_verdicts():
    full = check_targets(ROWS)
    quick = check_targets(ROWS, quick=True)
    assert len(full) == len(quick)
    sized = [t for t in full if "GPU" not in t["target"]]
    assert {t["met"] for t in sized} == {True, False}  # a full run judges them
    for f, q in zip(full, quick, strict=True):
        assert q["target"] == f["target"] and q["value"] == f["value"]
        if "GPU" in q["target"]:  # 4096² rows: not measured either way
            assert q["met"] is None and q["judged"] is True and q["value"] is None
        else:
            assert q["met"] is None and q["judged"] is False
            verdict = "would be met" if f["met"] else "would be missed"
            assert q["detail"] == f"{verdict} at these sizes; {f['detail']}"
        schema._check_keys(q, schema._TARGET_KEYS, "target")
    table = targets_table(quick)
    assert "**no**" not in table and "| yes |" not in table
    assert table.count(f"| {NOT_JUDGED} |") == len(sized)
    assert targets_table(full).count("**no**") == sum(t["met"] is False for t in full)
    line = targets_count(quick)
    assert f"{len(sized)} {NOT_JUDGED}" in line and "0 met, 0 missed" in line


def test_schema_accepts_old_records_and_checks_judged():
    result = {
        "schema": schema.SCHEMA,
        "metadata": {
            "cpu": "x", "cores": 2, "date": "2026-12-04", "versions": {}, "loadavg_start": None,
            "loadavg_end": None, "config": {},
        },
        "rows": ROWS, "skipped": [], "optimizer_steps": [],
        "targets": check_targets(ROWS, quick=True),
    }  # fmt: skip
    schema.check(result)
    old = copy.deepcopy(result)
    for t in old["targets"]:
        del t["judged"]
    schema.check(old)
    bad = copy.deepcopy(result)
    bad["targets"][0]["judged"] = "no"
    with pytest.raises(ValueError, match="judged"):
        schema.check(bad)


class _KeepFigures:
    """pyplot whose ``close`` keeps the figure for inspection."""

    def __init__(self) -> None:
        from polarlinalg._pyplot import pyplot

        self._plt = pyplot("test")
        self.figures = []

    def __getattr__(self, name):
        return getattr(self._plt, name)

    def close(self, fig) -> None:
        self.figures.append(fig)


def test_time_vs_size_draws_the_floor_even_at_one_size(tmp_path):
    pytest.importorskip("matplotlib")
    from polarlinalg.bench.plots import _time_vs_size

    plt = _KeepFigures()
    rows = [
        _row(shape="256x256", m=256, n=256),
        _row(shape="256x256", m=256, n=256, candidate="scipy.linalg.polar", source="anchor"),
    ]
    assert _time_vs_size(plt, rows, "t", tmp_path / "t.png")
    (fig,) = plt.figures
    floors = [
        line
        for line in fig.axes[0].get_lines()
        if line.get_linestyle() == "--" and line.get_marker() == "x" and len(line.get_xdata())
    ]
    assert len(floors) == 1  # the polarlinalg row's floor, visible as a marker
    assert list(floors[0].get_ydata()) == [1e3 * rows[0]["floor_s"]]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("floor" in label for label in labels)
    plt._plt.close(fig)


def test_accuracy_vs_time_has_a_marker_per_shape_and_labelled_ticks(tmp_path):
    pytest.importorskip("matplotlib")
    from polarlinalg.bench.plots import _pareto, _tick_label

    plt = _KeepFigures()
    rows = [
        _row(shape=shape, candidate=name, forward_error=err, median_s=t)
        for shape in ("64x256", "256x256", "8x256x256")
        for name, err, t in (("polar_express", 0.15, 2e-3), ("newton_schulz", 0.3, 3e-3))
    ]
    _pareto(plt, rows, "t", tmp_path / "a.png", "forward error")
    (fig,) = plt.figures
    candidates, shapes = fig.legends
    assert [t.get_text() for t in shapes.get_texts()] == ["64x256", "256x256", "8x256x256"]
    markers = [h.get_marker() for h in shapes.legend_handles]
    assert len(set(markers)) == 3
    assert [t.get_text() for t in candidates.get_texts()] == ["polar_express", "newton_schulz"]
    fig.canvas.draw()
    ax = fig.axes[0]
    # errors 0.15–0.3 lie inside one decade: the minor ticks 0.2 (and 0.5 beyond) are labelled
    ylabels = {t.get_text() for t in ax.yaxis.get_ticklabels(minor=True)} - {""}
    assert "0.2" in ylabels
    assert _tick_label(0.25) == "0.25" and _tick_label(1e-7) == "$10^{-7}$"
    assert _tick_label(2e-7) == "$2\\times10^{-7}$" and _tick_label(0.0) == ""
    plt._plt.close(fig)
