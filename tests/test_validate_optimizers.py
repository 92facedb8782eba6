"""The optimizer part of ``polarlinalg validate``: every rule agrees with its NumPy float64 run."""

from __future__ import annotations

import pytest
import support

from polarlinalg import validate_optimizers


@pytest.mark.parametrize("name", ["numpy", "array_api_strict", "torch"])
def test_every_optimizer_passes(name):
    backend = support.get_backend(name)
    rows = validate_optimizers.run([backend])
    assert {r.optimizer for r in rows} == set(validate_optimizers.OPTIMIZERS)
    assert {r.dtype for r in rows} == {"float32", "float64"}
    failed = [r for r in rows if not r.passed]
    assert not failed, validate_optimizers.format_table(failed)
    table = validate_optimizers.format_table(rows)
    assert "shampoo" in table and "FAIL" not in table


def test_unsupported_dtypes_are_skipped_and_failures_reported(monkeypatch):
    backend = support.get_backend("numpy")
    assert validate_optimizers.run([backend], ["bfloat16"]) == []
    monkeypatch.setitem(validate_optimizers.TOLERANCES, "float32", 0.0)
    rows = validate_optimizers.run([backend], ["float32"])
    assert rows and not any(r.passed for r in rows if r.error)
    assert "FAIL" in validate_optimizers.format_table(rows)


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_inv_root_rows_pass(name):
    from polarlinalg import validate_inv_root

    backend = support.get_backend(name)
    rows = validate_inv_root.run([backend])
    assert {r.method for r in rows} == {"eigh", "newton"}
    failed = [r for r in rows if not r.passed]
    assert not failed, validate_inv_root.format_table(failed)
    assert {r.dtype for r in validate_inv_root.run([backend], ["float16"])} == {"float16"}
