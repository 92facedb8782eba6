"""``polarlinalg validate`` shows each row as soon as it is computed (on stderr)."""

import io
import re

import pytest

from polarlinalg import validate, validate_inv_root, validate_optimizers
from polarlinalg.backends import available_backends
from polarlinalg.cli import _Progress, main


def test_run_calls_on_row_once_per_row_in_order():
    seen = []
    rows = validate.run(
        backends="numpy",
        methods=["svd"],
        dtypes=["float64"],
        on_row=lambda row, done, total: seen.append((row, done, total)),
    )
    assert [row for row, _, _ in seen] == rows
    assert [done for _, done, _ in seen] == list(range(1, len(rows) + 1))
    assert {total for _, _, total in seen} == {len(rows)}


@pytest.mark.parametrize("module", [validate_inv_root, validate_optimizers])
def test_other_parts_call_on_row_once_per_row(module):
    seen = []
    rows = module.run(
        available_backends("numpy"),
        ["float32"],
        on_row=lambda row, done, total: seen.append((row, done, total)),
    )
    assert rows and [row for row, _, _ in seen] == rows
    assert [(done, total) for _, done, total in seen] == [
        (i, len(rows)) for i in range(1, len(rows) + 1)
    ]


def test_cli_streams_rows_before_the_run_ends(monkeypatch, capsys):
    """The k-th row is computed only after the k-1 rows before it were printed."""
    streamed: list[str] = []
    printed_before: list[int] = []
    run_one = validate._run_one

    def counting(*args):
        streamed.extend(capsys.readouterr().err.splitlines())
        printed_before.append(len(streamed))
        return run_one(*args)

    monkeypatch.setattr(validate, "_run_one", counting)
    assert main(["validate", "--backends", "numpy", "--methods", "svd", "--dtypes", "float64"]) == 0
    captured = capsys.readouterr()
    streamed.extend(captured.err.splitlines())
    assert printed_before == list(range(8))  # capsys's stderr is not a terminal: one line a row
    assert len(streamed) == 8
    assert streamed[0].startswith("polar 1/8  svd  numpy  float64  square")
    assert streamed[-1].endswith("rank-deficient: pass")
    # the table and the summary are still printed at the end, on stdout
    assert "8 rows on numpy: 8 passed, 0 failed" in captured.out
    assert "polar 1/8" not in captured.out


def test_failed_rows_are_streamed_with_their_reason(monkeypatch, capsys):
    strict = validate.Tolerance(orthogonality=1e-30, backward=1e-30, forward=1e-30, deviation=1e-30)
    monkeypatch.setitem(validate.TOLERANCES, "float64", strict)
    assert main(["validate", "--backends", "numpy", "--methods", "svd", "--dtypes", "float64"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 8 and all(": FAIL orthogonality" in line for line in err)


@pytest.mark.parametrize("strict", [False, True])
def test_progress_bar_on_a_terminal(monkeypatch, strict):
    pytest.importorskip("tqdm")
    if strict:
        tol = validate.Tolerance(orthogonality=1e-30, backward=1e-30, forward=1e-30, deviation=1)
        monkeypatch.setitem(validate.TOLERANCES, "float64", tol)
    stream = io.StringIO()
    progress = _Progress(stream, bar=True)
    on_row = progress.part("polar")
    rows = validate.run(backends="numpy", methods=["svd"], dtypes=["float64"], on_row=on_row)
    progress.close()
    text = stream.getvalue()
    assert f"{len(rows)}/{len(rows)}" in text and "polar" in text
    written = [s for s in re.split(r"[\r\n]", text) if s.startswith("polar: svd")]
    assert len(written) == (len(rows) if strict else 0)  # failures, above the bar
    assert all(": FAIL orthogonality" in line for line in written)
