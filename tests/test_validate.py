import importlib.util
import json
import subprocess
import sys

import pytest

from polarlinalg import METHODS, validate
from polarlinalg._methods import get_method
from polarlinalg.backends import available_backends
from polarlinalg.cli import main


def test_every_method_passes_on_numpy():
    rows = validate.run(backends="numpy")
    assert {r.method for r in rows} == set(METHODS)
    assert {r.case for r in rows} == {c.name for c in validate.SUITE}
    assert {r.dtype for r in rows} == {"float32", "float64", "float16", "complex64", "complex128"}
    failed = [(r.method, r.dtype, r.case, r.reason) for r in rows if not r.passed]
    assert not failed
    for r in rows:
        if get_method(r.method).family == "polynomial":
            assert r.deviation is not None and r.band_low <= r.band_high
        else:
            assert r.deviation is None and r.band_low is None


def test_every_method_passes_on_strict():
    pytest.importorskip("array_api_strict")
    rows = validate.run(backends="array_api_strict", dtypes=["float32"])
    assert rows and all(r.passed for r in rows), [r.reason for r in rows if not r.passed]


def test_a_broken_tolerance_fails_the_row(monkeypatch):
    strict = validate.Tolerance(orthogonality=1e-30, backward=1e-30, forward=1e-30, deviation=1e-30)
    monkeypatch.setitem(validate.TOLERANCES, "float64", strict)
    rows = validate.run(backends="numpy", dtypes=["float64"], methods=["svd", "polar_express"])
    assert rows and not any(r.passed for r in rows)
    assert all(r.reason for r in rows)


def test_table_and_json(tmp_path):
    rows = validate.run(backends="numpy", methods=["svd", "gram_newton_schulz"], dtypes=["float32"])
    table = validate.format_table(rows)
    assert "orthog." in table and "gram_newton_schulz" in table and "pass" in table
    data = json.loads(validate.to_json(rows))
    assert len(data) == len(rows)
    keys = {
        "method",
        "backend",
        "device",
        "dtype",
        "case",
        "shape",
        "cond",
        "orthogonality",
        "backward",
        "forward",
        "deviation",
        "band_low",
        "band_high",
        "sigma_max",
        "seconds",
        "passed",
        "reason",
    }
    assert set(data[0]) == keys


def test_cli_exit_codes(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert (
        main(
            [
                "validate",
                "--backends",
                "numpy",
                "--methods",
                "svd,polar_express",
                "--dtypes",
                "float32",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "passed, 0 failed" in printed
    assert len(json.loads(out.read_text())) == 16
    assert main(["validate", "--methods", "nope"]) == 2
    assert "unknown polar method" in capsys.readouterr().err
    assert main(["validate", "--backends", "numpy", "--dtypes", "float128"]) == 2
    assert main(["validate", "--backends", "nonsense"]) == 2


def test_cli_exit_status_one_on_failure(monkeypatch, capsys):
    strict = validate.Tolerance(orthogonality=1e-30, backward=1e-30, forward=1e-30, deviation=1e-30)
    monkeypatch.setitem(validate.TOLERANCES, "float32", strict)
    assert main(["validate", "--backends", "numpy", "--methods", "svd", "--dtypes", "float32"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_python_dash_m(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "polarlinalg",
            "validate",
            "--backends",
            "numpy",
            "--methods",
            "svd",
            "--dtypes",
            "float64",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "8 rows on numpy: 8 passed, 0 failed" in proc.stdout


def test_cli_complex_dtype_is_explained_line_by_line(capsys):
    assert main(["validate", "--backends", "numpy", "--dtypes", "complex64"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines == [
        "polarlinalg validate: error: unknown dtype(s) complex64; choose from float32, "
        "float64, bfloat16, float16",
        "polarlinalg validate: error: complex64: the complex cases of the suite run in "
        "complex64 with float32",
    ]
    assert captured.out == ""


def test_cli_help_lists_every_dtype(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert "float32,float64,bfloat16,float16" in text
    assert set(validate.DTYPES) <= set(text.replace(",", " ").replace(";", " ").split())


def _without(monkeypatch, name, *, installed):
    """Make backend ``name`` unavailable here, its framework installed (no device) or not."""
    module = validate._NEEDS[name][0]
    real = importlib.util.find_spec
    spec = object() if installed else None
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda m, *a: spec if m == module else real(m, *a)
    )
    monkeypatch.setattr(
        validate,
        "available_backends",
        lambda names=None: [b for b in available_backends(names) if b.name != name],
    )


def test_cli_unavailable_backend_is_an_error(monkeypatch, capsys):
    _without(monkeypatch, "cupy", installed=False)
    assert main(["validate", "--backends", "numpy,cupy", "--methods", "svd"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no empty table, no "0 rows on : "
    assert captured.err.splitlines() == [
        "polarlinalg validate: error: backend cupy is not available here: cupy is not "
        'installed; install it with pip install "polarlinalg[cuda12]" (or '
        '"polarlinalg[cuda13]") on a machine with a CUDA GPU'
    ]
    with pytest.raises(ValueError, match="backend cupy is not available here"):
        validate.run(backends="cupy", methods=["svd"])


def test_cli_backend_without_a_device_is_an_error(monkeypatch, capsys):
    _without(monkeypatch, "cupy", installed=True)
    assert main(["validate", "--backends", "cupy"]) == 2
    assert "backend cupy is not available here: cupy finds no GPU" in capsys.readouterr().err


def test_cli_backends_from_the_environment(monkeypatch, capsys):
    """POLARLINALG_BACKENDS filters; if it leaves nothing, the error says why."""
    _without(monkeypatch, "cupy", installed=False)
    monkeypatch.setenv("POLARLINALG_BACKENDS", "cupy")
    assert main(["validate", "--methods", "svd"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "backend cupy is not available here: cupy is not installed" in captured.err


# --- the inv_root table (polarlinalg.validate_inv_root) -------------------------------------


def test_inv_root_rows_cover_every_method_and_dtype_and_pass():
    from polarlinalg import validate_inv_root

    numpy = available_backends("numpy")[0]
    rows = validate_inv_root.run([numpy])
    dtypes = {"float64", "float32", "complex128", "complex64", "float16"}
    want = {(m, d) for m in ("eigh", "newton") for d in dtypes}
    assert {(r.method, r.dtype) for r in rows} == want
    assert {r.case for r in rows} == {c.name for c in validate_inv_root.SUITE}
    failed = [r for r in rows if not r.passed]
    assert not failed, validate_inv_root.format_table(failed)
    for r in rows:
        assert r.error is not None and 0 <= r.error <= r.band
        assert r.band == validate_inv_root.band(r.dtype, 32, r.cond)
        if r.dtype == "float16":  # half precision: only the well-conditioned matrices
            assert r.cond <= validate_inv_root.HALF_MAX_COND


def test_inv_root_bands():
    from polarlinalg import validate_inv_root

    u32 = 2.0**-24
    assert validate_inv_root.band("float32", 64, 1e4) == pytest.approx(10 * u32 * (8 + 1e4))
    band = validate_inv_root.band
    assert band("complex64", 64, 1.0) == band("float32", 64, 1.0)
    assert validate_inv_root.band("bfloat16", 64, 1e2) == pytest.approx(5 * 2.0**-8 * 10)


def test_inv_root_half_precision_rows_on_torch():
    from polarlinalg import validate_inv_root

    found = available_backends("torch")
    if not found:
        pytest.skip("torch is not installed")
    rows = validate_inv_root.run(found, ["bfloat16"])
    assert rows and {r.dtype for r in rows} == {"bfloat16"}
    assert {r.method for r in rows} == {"eigh", "newton"}
    assert all(r.passed for r in rows), validate_inv_root.format_table(rows)


def test_inv_root_band_is_the_pass_criterion(monkeypatch):
    from polarlinalg import validate_inv_root

    monkeypatch.setattr(validate_inv_root, "band", lambda dtype, n, cond: 0.0)
    numpy = available_backends("numpy")[0]
    rows = validate_inv_root.run([numpy], ["float32"])
    assert {r.dtype for r in rows} == {"float32", "complex64"}
    assert not any(r.passed for r in rows if r.error)  # eigh of NumPy can be exact in float64
    table = validate_inv_root.format_table(rows)
    assert "FAIL error" in table and "> band 0.0e+00" in table
    assert validate_inv_root.run([numpy], ["bfloat16"]) == []  # NumPy has no bfloat16


def test_cli_prints_the_inv_root_table(capsys):
    assert main(["validate", "--backends", "numpy", "--dtypes", "float32"]) == 0
    out = capsys.readouterr().out
    assert "inv_root: (A + εI)^(-1/4) against float64 eigh" in out
    assert "newton  complex64" in out and "FAIL" not in out
