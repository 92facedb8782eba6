"""The optimizer-step benchmark on small matrices (PyTorch and optax); no timing is asserted."""

from __future__ import annotations

import pytest

from polarlinalg.backends import available_backends
from polarlinalg.bench.optimizers import gpt2_shapes, run_optimizers

SHAPES = [(32, 96), (96, 32), (32, 32)]


def _check(record, reference):
    assert record["reference"] == reference
    rows = record["rows"]
    assert rows[0]["candidate"] == reference and rows[0]["update_difference"] is None
    for r in rows:
        assert r["median_s"] > 0 and r["floor_s"] > 0 and r["floor_flops"] > 0
        assert r["time_over_floor"] > 0 and r["ratio_to_reference"] > 0
    return {r["candidate"]: r for r in rows}


def test_torch_step():
    pytest.importorskip("torch")
    (backend,) = available_backends("torch")
    record = run_optimizers(backend, 1, repeats=1, warmup=1, shapes=SHAPES)
    rows = _check(record, "torch.optim.Muon")
    # same update as torch.optim.Muon up to bfloat16 rounding
    assert rows["polarlinalg.torch.Muon"]["update_difference"] < 5e-2
    assert record["matrices"] == 3 and record["parameters"] == 32 * 96 * 2 + 32 * 32


def test_optax_step():
    pytest.importorskip("optax")
    (backend,) = available_backends("jax")
    record = run_optimizers(backend, 1, repeats=1, warmup=1, shapes=SHAPES)
    rows = _check(record, "optax.contrib.muon")
    assert rows["polarlinalg.optax.muon"]["update_difference"] < 1e-3  # float32, same update


def test_bad_arguments():
    (backend,) = available_backends("numpy")
    with pytest.raises(ValueError, match="backend"):
        run_optimizers(backend, 1, repeats=1, shapes=SHAPES)
    with pytest.raises(ValueError, match="repeats"):
        run_optimizers(backend, 1, repeats=0, shapes=SHAPES)
    with pytest.raises(ValueError, match="layers"):
        gpt2_shapes(0)
    assert len(gpt2_shapes(12)) == 48


@pytest.mark.parametrize(
    ("family", "reference", "ours"),
    [
        ("shampoo", "pytorch_optimizer.Shampoo", "polarlinalg.torch.Shampoo (classic)"),
        ("soap", "pytorch_optimizer.SOAP", "polarlinalg.torch.SOAP"),
    ],
)
def test_kronecker_families(family, reference, ours):
    pytest.importorskip("torch")
    pytest.importorskip("pytorch_optimizer")
    if family == "soap":
        pytest.importorskip("heavyball")
    (backend,) = available_backends("torch")
    record = run_optimizers(
        backend, 1, repeats=2, warmup=1, shapes=[(24, 24), (16, 16)], family=family
    )
    rows = _check(record, reference)
    assert record["family"] == family
    assert rows[ours]["mean_s"] > 0 and rows[ours]["mean_ratio_to_reference"] > 0


def test_kronecker_family_needs_torch():
    (backend,) = available_backends("numpy")
    with pytest.raises(ValueError, match="PyTorch only"):
        run_optimizers(backend, 1, repeats=1, shapes=SHAPES, family="soap")
    with pytest.raises(ValueError, match="family"):
        run_optimizers(backend, 1, repeats=1, shapes=SHAPES, family="adam")
