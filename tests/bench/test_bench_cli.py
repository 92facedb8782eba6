"""The harness end to end on CPU, in a very small configuration (no timing is asserted)."""

from __future__ import annotations

import json
import math

import pytest

from polarlinalg.bench import schema
from polarlinalg.bench.cli import main

SMALL = [
    *("--sizes", "32", "--aspects", "1,4", "--repeats", "1", "--optimizer-layers", "0"),
    *("--min-time", "0", "--warmup-time", "0"),
]


def _run(tmp_path, *args):
    out = tmp_path / "run.json"
    plots = tmp_path / "plots"
    rc = main([*SMALL, *args, "--json", str(out), "--plot", str(plots)])
    assert rc == 0
    result = json.loads(out.read_text())
    schema.check(result)
    return result, plots


def _finite_positive(x):
    return isinstance(x, float | int) and math.isfinite(x) and x >= 0


def test_numpy_run_has_accuracy_floor_anchors_and_plots(tmp_path, capsys):
    result, plots = _run(
        tmp_path,
        "--backends",
        "numpy",
        "--methods",
        "polar_express,gram_newton_schulz,qdwh,svd",
        "--dtypes",
        "float32,float64,bfloat16",
    )
    rows = result["rows"]
    names = {r["candidate"] for r in rows}
    assert {"polar_express", "gram_newton_schulz", "qdwh", "svd"} <= names
    assert {"scipy.linalg.polar", "plain NS5 loop"} <= names
    assert {r["shape"] for r in rows} == {"32x32", "8x32", "8x32x32"}  # batched: the smallest size
    for r in rows:
        for key in ("orthogonality", "forward_error", "floor_s", "floor_flops", "gflops"):
            assert _finite_positive(r[key]), (key, r)
        assert r["floor_s"] > 0 and r["floor_flops"] > 0 and r["time_over_floor"] > 0
        assert r["floor_ops"]
    accurate = [r for r in rows if r["family"] == "accurate" and r["dtype"] == "float64"]
    assert accurate and max(r["forward_error"] for r in accurate) < 1e-10
    # bfloat16 is not a NumPy dtype: recorded as skipped, nothing crashed
    assert {r["dtype"] for r in rows if r["family"] == "polynomial"} == {"float32", "float64"}
    assert any(s["dtype"] == "bfloat16" for s in result["skipped"])
    meta = result["metadata"]
    assert meta["cpu"] and meta["versions"]["numpy"]
    assert meta["loadavg_start"] is None or len(meta["loadavg_start"]) == 3
    pngs = sorted(p.name for p in plots.iterdir())
    assert "time_vs_size_numpy_float32.png" in pngs
    assert "accuracy_vs_time_numpy_float64.png" in pngs
    assert all((plots / p).stat().st_size > 1000 for p in pngs)
    targets = {t["target"] for t in result["targets"]}
    assert any("gram_newton_schulz" in t for t in targets)
    assert any(t["met"] is None for t in result["targets"])  # GPU targets: not measured
    assert "targets" in capsys.readouterr().out


def test_torch_and_jax_anchors(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    result, _ = _run(
        tmp_path,
        "--backends",
        "torch,jax",
        "--methods",
        "polar_express,svd",
        "--dtypes",
        "float32",
    )
    names = {(r["backend"], r["candidate"]) for r in result["rows"]}
    assert ("torch", "torch SVD polar") in names
    assert ("torch", "plain NS5 loop") in names
    assert ("jax", "jax.scipy.linalg.polar (qdwh)") in names
    assert ("jax", "jax.scipy.linalg.polar (svd)") in names
    jitted = [r for r in result["rows"] if r["backend"] == "jax"]
    assert all(r["jitted"] and r["compile_s"] is not None for r in jitted)
    # jax.scipy.linalg.polar takes only m >= n: the wide case is recorded as skipped
    assert any(s["candidate"].startswith("jax.scipy") for s in result["skipped"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends", "nope"], "--backends"),
        (["--methods", "qdwh,fast"], "--methods"),
        (["--dtypes", "float16"], "--dtypes"),
        (["--sizes", "0"], "--sizes"),
        (["--sizes", "a,b"], "--sizes"),
        (["--repeats", "0"], "--repeats"),
        (["--aspects", "0"], "--aspects"),
        (["--cond", "0.5"], "--cond"),
        (["--min-time", "-1"], "--min-time"),
        (["--warmup-time", "soon"], "--warmup-time"),
        (["--device", "tpu"], "--device"),
        (["--backends", "numpy", "--device", "gpu"], "--backends"),
    ],
)
def test_bad_arguments_give_clear_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "polarlinalg bench" in err


def test_render_performance_page(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[2] / "benchmarks" / "render_performance.py"
    spec = importlib.util.spec_from_file_location("render_performance", script)
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    out = tmp_path / "run.json"
    assert main([*SMALL, "--backends", "numpy", "--methods", "qdwh", "--json", str(out)]) == 0
    page = tmp_path / "docs" / "performance.md"
    page.parent.mkdir()
    page.write_text(f"# Perf\n\npreface\n\n{render.BEGIN}\nold\n{render.END}\n\ntail\n")
    result = render.merge([json.loads(out.read_text())] * 2)
    assert len(result["runs"]) == 2 and len(result["rows"]) > 0
    body = render.render(result, page, tmp_path / "docs" / "img")
    assert "scipy.linalg.polar" in body and "### Targets" in body
    assert "](img/time_vs_size_numpy_float32.png)" in body
    bad = json.loads(out.read_text())
    del bad["rows"][0]["floor_s"]
    with pytest.raises(ValueError, match="floor_s"):
        render.merge([bad])


def test_inv_root_rows(tmp_path, capsys):
    result, plots = _run(
        tmp_path,
        "--backends",
        "numpy",
        "--methods",
        "inv_root,svd",
        "--dtypes",
        "float32,bfloat16",
    )
    roots = [r for r in result["rows"] if r["family"] == "inv_root"]
    names = {r["candidate"] for r in roots}
    assert names == {
        "inv_root (eigh)",
        "inv_root (newton)",
        "scipy.linalg.fractional_matrix_power",
    }
    for r in roots:
        assert r["shape"] == "32x32" and r["batch"] == 1 and r["dtype"] == "float32"
        assert r["orthogonality"] is None
        assert 0 <= r["forward_error"] < 1e-3  # κ = 1e3, float32
        assert _finite_positive(r["floor_s"]) and r["floor_flops"] > 0
        assert r["time_over_floor"] > 0
    ops = {r["candidate"]: r["floor_ops"] for r in roots}
    assert ops["inv_root (eigh)"] == "1 eigh, 1 matmul"
    count = int(ops["inv_root (newton)"].split()[0])
    assert ops["inv_root (newton)"].endswith(" matmul") and count % 4 == 0  # p = 4
    # the polar rows of the same run keep their orthogonality
    assert all(r["orthogonality"] is not None for r in result["rows"] if r["family"] != "inv_root")
    assert any(s["dtype"] == "bfloat16" for s in result["skipped"])  # NumPy has no bfloat16
    assert "time_vs_size_numpy_float32_inv_root.png" in {p.name for p in plots.iterdir()}
    assert "## numpy float32, inv_root" in capsys.readouterr().out


def test_inv_root_rows_torch_bfloat16_and_jax_jitted(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    args = ("--methods", "inv_root", "--dtypes")
    result, _ = _run(tmp_path, "--backends", "torch", *args, "float32,bfloat16")
    got = {(r["dtype"], r["candidate"]) for r in result["rows"]}
    for dtype in ("float32", "bfloat16"):  # eigh computes bfloat16 in float32
        assert {(dtype, "inv_root (newton)"), (dtype, "inv_root (eigh)")} <= got
    result, _ = _run(tmp_path, "--backends", "jax", *args, "float32")
    rows = result["rows"]
    assert {r["candidate"] for r in rows} == {"inv_root (eigh)", "inv_root (newton)"}
    assert all(r["jitted"] and r["compile_s"] is not None for r in rows)
    newton = next(r for r in rows if r["candidate"] == "inv_root (newton)")
    assert newton["floor_ops"] == f"{4 * 23} matmul"  # traced: the fixed 23 float32 steps
