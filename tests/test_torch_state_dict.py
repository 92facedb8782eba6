"""State dicts of the anchors (torch.optim.Muon) and of older versions load and continue."""

from __future__ import annotations

import copy
import pickle

import pytest

torch = pytest.importorskip("torch")

from polarlinalg.torch import Muon, PolarGrad  # noqa: E402

SHAPES = [(24, 16), (16, 32), (24, 16)]
CONFIG = {  # not the defaults, so that the loaded hyper-parameters are the ones used
    "lr": 0.03,
    "weight_decay": 0.05,
    "momentum": 0.9,
    "nesterov": False,
    "ns_steps": 4,
    "adjust_lr_fn": "match_rms_adamw",
}


def _grads(count, seed):
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(count)]


def _set(params, grads):
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()


def test_torch_muon_state_dict_continues_in_our_muon():
    """Three steps of torch.optim.Muon, then three more in each optimizer, from its state.

    The hyper-parameters come from the state dict (ours is built with its
    defaults) and the momentum buffers are kept: the buffers, which only see
    the gradients, agree to float32 rounding; each update agrees within the
    bfloat16 rounding of the two Newton–Schulz runs, the bound of
    tests/test_torch_optimizers.py::test_muon_matches_torch_optim_muon (4 %).
    """
    gen = torch.Generator().manual_seed(0)
    ref = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in SHAPES]
    anchor = torch.optim.Muon(ref, **CONFIG)
    for grads in _grads(3, seed=1):
        _set(ref, grads)
        anchor.step()
    saved = copy.deepcopy(anchor.state_dict())

    ours = [torch.nn.Parameter(p.detach().clone()) for p in ref]
    opt = Muon(ours)
    opt.load_state_dict(saved)
    group = opt.param_groups[0]
    assert {k: group[k] for k in CONFIG} == CONFIG
    assert group["method"] == "newton_schulz" and group["flatten"] is False
    for p, q in zip(ref, ours, strict=True):
        torch.testing.assert_close(
            opt.state[q]["momentum_buffer"], anchor.state[p]["momentum_buffer"]
        )

    for grads in _grads(3, seed=2):
        before = [p.detach().clone() for p in ref]
        _set(ref, grads)
        _set(ours, grads)
        anchor.step()
        opt.step()
        for b, p, q in zip(before, ref, ours, strict=True):
            step_ref, step_ours = p.detach() - b, q.detach() - b
            assert (step_ref - step_ours).norm() / step_ref.norm() < 0.04
        for p, q in zip(ref, ours, strict=True):
            torch.testing.assert_close(
                opt.state[q]["momentum_buffer"], anchor.state[p]["momentum_buffer"]
            )
            q.data.copy_(p.data)  # keep the trajectories together


def test_state_dict_without_our_keys_fills_the_defaults():
    """A group saved without polarlinalg's newer keys takes this optimizer's defaults."""
    w = torch.nn.Parameter(torch.randn(6, 4))
    opt = PolarGrad([w], lr=0.1, momentum=0.9, method="svd")
    w.grad = torch.randn(6, 4)
    opt.step()
    saved = copy.deepcopy(opt.state_dict())
    for key in ("method", "scale", "adamw_lr", "check_finite", "batch", "reference_lr"):
        del saved["param_groups"][0][key]
    saved["param_groups"][0]["_polarlinalg_rule"] = ("stale", None)  # an old rule cache
    fresh = PolarGrad([torch.nn.Parameter(w.detach().clone())], lr=0.1, method="svd")
    fresh.load_state_dict(saved)
    group = fresh.param_groups[0]
    assert group["method"] == "svd" and group["scale"] == "nuclear"
    assert group["reference_lr"] == 0.1 and "_polarlinalg_rule" not in group
    fresh.param_groups[0]["params"][0].grad = torch.randn(6, 4)
    fresh.step()


def test_optimizer_pickles_and_deep_copies_after_a_step():
    """The rule cache lives on the optimizer, not in the groups, and is rebuilt after a copy."""
    w = torch.nn.Parameter(torch.randn(5, 3))
    opt = PolarGrad([w], lr=0.1, momentum=0.9, method="svd")
    w.grad = torch.randn(5, 3)
    opt.step()
    assert "_polarlinalg_rule" not in opt.param_groups[0]
    for again in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        (q,) = again.param_groups[0]["params"]
        q.grad = w.grad.clone()
        again.step()
        assert torch.isfinite(q).all()
