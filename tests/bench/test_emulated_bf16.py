"""The bench on a CPU where PyTorch emulates bfloat16 products.

There the always-bfloat16 ``torch.optim.Muon`` anchor is timed only up to a
small amount of work, with the reason recorded for the larger shapes, and the
optimizer step against ``torch.optim.Muon`` is left out with a message (it
would take minutes per step).  The hardware check is forced either way, so
this runs on any CPU.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from polarlinalg import _dtypes
from polarlinalg.backends import available_backends
from polarlinalg.bench import cli
from polarlinalg.bench.candidates import EMULATED_BF16_WORK, anchors_for
from polarlinalg.bench.cases import Case

pytest.importorskip("torch")


def _muon_anchor(monkeypatch: pytest.MonkeyPatch, fast: bool):
    monkeypatch.setattr(_dtypes, "_torch_cpu_bfloat16_matmul", lambda: fast)
    (backend,) = available_backends(["torch"])
    (anchor,) = [a for a in anchors_for(backend, "polynomial") if a.name == "torch.optim.Muon NS"]
    return anchor


def test_muon_anchor_sizes_on_an_emulating_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch.optim._muon")
    slow = _muon_anchor(monkeypatch, fast=False)
    assert slow.supports(Case(256, 1024, 1, "float32"))  # k²N at the limit
    assert slow.supports(Case(1024, 256, 1, "float32"))  # either orientation
    assert 256 * 256 * 1024 == EMULATED_BF16_WORK
    assert not slow.supports(Case(512, 512, 1, "float32"))
    assert not slow.supports(Case(64, 64, 8, "float32"))  # stacks, as before
    assert "bfloat16 products are emulated on this CPU" in slow.unsupported
    fast = _muon_anchor(monkeypatch, fast=True)
    assert fast.supports(Case(2048, 2048, 1, "float32"))
    assert fast.unsupported == "single matrices only"


def test_optimizer_step_left_out_on_an_emulating_cpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_dtypes, "_torch_cpu_bfloat16_matmul", lambda: False)
    backends = available_backends(["torch"])
    config = SimpleNamespace(  # the fields _optimizer_part reads
        optimizer_layers=1, optimizer_repeats=1, optimizer_families=("muon",), optimizer_shapes=()
    )
    assert cli._optimizer_part(backends, config) == []
    err = capsys.readouterr().err
    assert "skip the muon optimizer step on torch: bfloat16 products are emulated" in err
    gpt2_layer = [(768, 2304), (768, 768), (768, 3072), (3072, 768)]
    assert cli._muon_step_too_slow(backends[0], gpt2_layer)
    assert not cli._muon_step_too_slow(backends[0], [(64, 128), (128, 64)])  # small: timed
    monkeypatch.setattr(_dtypes, "_torch_cpu_bfloat16_matmul", lambda: True)
    assert not cli._muon_step_too_slow(backends[0], gpt2_layer)
