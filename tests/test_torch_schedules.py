"""Learning-rate schedules reach the AdamW-routed parameters of polarlinalg.torch optimizers.

``adamw_lr`` is AdamW's rate while the group's ``lr`` equals ``reference_lr``
(its ``lr`` when the group was added): the rate used at a step is
``adamw_lr · lr / reference_lr``, so a scheduler (or a manual change of
``lr``) scales the biases, norms and embeddings by the matrices' factor.  The
reference is ``torch.optim.AdamW`` stepped with that rate.
"""

from __future__ import annotations

import copy
import math

import pytest

torch = pytest.importorskip("torch")

from polarlinalg.torch import SOAP, NorMuon, PolarGrad, Shampoo  # noqa: E402

LR = 0.02
ADAMW_LR = 1e-3
STEPS = 6


def _schedulers():
    return {
        "zero": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.0),
        "halving": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5**s),
        "onecycle": lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=LR, total_steps=STEPS, cycle_momentum=False
        ),
        "cosine": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS - 1),
    }


def _grads(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(STEPS)
    ]


def _run(make, schedule, adamw_lr):
    """Step a (6, 5) weight and a (6,) bias; return both trajectories and the lrs used."""
    gen = torch.Generator().manual_seed(1)
    weight = torch.nn.Parameter(torch.randn(6, 5, generator=gen, dtype=torch.float64))
    bias = torch.nn.Parameter(torch.randn(6, generator=gen, dtype=torch.float64))
    opt = make([weight, bias], adamw_lr)
    scheduler = None if schedule is None else schedule(opt)
    lrs, weights, biases = [], [weight.detach().clone()], [bias.detach().clone()]
    for g_w, g_b in _grads([(6, 5), (6,)]):
        weight.grad, bias.grad = g_w.clone(), g_b.clone()
        lrs.append(float(opt.param_groups[0]["lr"]))
        opt.step()
        if scheduler is not None:
            scheduler.step()
        weights.append(weight.detach().clone())
        biases.append(bias.detach().clone())
    return lrs, weights, biases


def _adamw_reference(bias0, lrs, rate):
    """torch.optim.AdamW on the bias, its lr set to ``rate(lr)`` before each step."""
    bias = torch.nn.Parameter(bias0.clone())
    opt = torch.optim.AdamW([bias], lr=1.0, weight_decay=0.0)
    out = [bias.detach().clone()]
    for lr, (_, g_b) in zip(lrs, _grads([(6, 5), (6,)]), strict=True):
        opt.param_groups[0]["lr"] = rate(lr)
        bias.grad = g_b.clone()
        opt.step()
        out.append(bias.detach().clone())
    return out


def _polargrad(params, adamw_lr):
    return PolarGrad(params, lr=LR, momentum=0.9, method="svd", scale="shape", adamw_lr=adamw_lr)


OPTIMIZERS = {
    "PolarGrad": _polargrad,
    "NorMuon": lambda params, adamw_lr: NorMuon(params, lr=LR, adamw_lr=adamw_lr),
    "Shampoo": lambda params, adamw_lr: Shampoo(params, lr=LR, adamw_lr=adamw_lr),
    "SOAP": lambda params, adamw_lr: SOAP(
        params,
        lr=LR,
        adamw_lr=adamw_lr,
        adamw_betas=(0.9, 0.999),  # else SOAP's betas, eps and weight decay
        adamw_eps=1e-8,
        adamw_weight_decay=0.0,
    ),
}


@pytest.mark.parametrize("schedule", list(_schedulers()))
@pytest.mark.parametrize("adamw_lr", [ADAMW_LR, None])
def test_adamw_rate_follows_the_schedule(schedule, adamw_lr):
    """The bias steps as AdamW with ``adamw_lr · lr_t / lr₀`` (``lr_t`` when None)."""
    lrs, weights, biases = _run(_polargrad, _schedulers()[schedule], adamw_lr)
    if adamw_lr is None:
        want = _adamw_reference(biases[0], lrs, lambda lr: lr)
    else:
        want = _adamw_reference(biases[0], lrs, lambda lr: adamw_lr * lr / LR)
    for got, ref in zip(biases, want, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)
    if schedule == "zero":  # nothing moves after the first step (lr_0 = 0 already)
        assert lrs == [0.0] * STEPS
        assert all(torch.equal(w, weights[0]) for w in weights)
        assert all(torch.equal(b, biases[0]) for b in biases)
    if schedule == "onecycle":  # warm-up then decay reached the biases
        assert lrs[0] == pytest.approx(LR / 25) and max(lrs) > 0.9 * LR


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_scales_adamw_by_the_lr_factor(name):
    """Shared by every optimizer with AdamW-routed parameters (halving LambdaLR)."""
    lrs, _, biases = _run(OPTIMIZERS[name], _schedulers()["halving"], ADAMW_LR)
    assert lrs == pytest.approx([LR * 0.5**s for s in range(STEPS)])
    want = _adamw_reference(biases[0], lrs, lambda lr: ADAMW_LR * lr / LR)
    for got, ref in zip(biases, want, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)


def test_matrix_rate_follows_the_same_schedule():
    """The weight's step under the schedule is the constant-lr step times ``lr_t / lr₀``.

    With ``momentum=0`` and the SVD polar factor, each step of the matrix
    rule is ``lr · s · polar(G)``: the ratio of the two runs' steps is the
    schedule's factor, the same one AdamW's rate gets.
    """

    def make(params, adamw_lr):
        return PolarGrad(params, lr=LR, method="svd", scale="shape", adamw_lr=adamw_lr)

    lrs, sched_w, _ = _run(make, _schedulers()["cosine"], ADAMW_LR)
    _, const_w, _ = _run(make, None, ADAMW_LR)
    for t, lr in enumerate(lrs):
        step_sched = sched_w[t + 1] - sched_w[t]
        step_const = const_w[t + 1] - const_w[t]
        torch.testing.assert_close(step_sched, step_const * (lr / LR), rtol=1e-10, atol=1e-14)
    assert lrs[-1] < LR * 0.1  # the schedule did decay


def test_manual_lr_change_and_state_dict_keep_the_ratio():
    """A manual change of lr scales AdamW too; reference_lr survives state_dict."""
    bias = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = PolarGrad([bias], lr=LR, adamw_lr=ADAMW_LR)
    assert opt.param_groups[0]["reference_lr"] == LR
    opt.param_groups[0]["lr"] = LR / 4
    bias.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    # the first AdamW step is lr·m̂/(√v̂ + ε) = lr·1/(1 + 1e-8) for a gradient of ones
    want = torch.full((3,), -ADAMW_LR / 4 / (1 + 1e-8), dtype=torch.float64)
    torch.testing.assert_close(bias.detach(), want, rtol=1e-12, atol=0)
    saved = copy.deepcopy(opt.state_dict())
    other = torch.nn.Parameter(bias.detach().clone())
    fresh = PolarGrad([other], lr=0.5, adamw_lr=ADAMW_LR)  # another lr: the saved one wins
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["reference_lr"] == LR
    assert fresh.param_groups[0]["lr"] == LR / 4
    for p, o in ((bias, opt), (other, fresh)):
        p.grad = torch.ones(3, dtype=torch.float64)
        o.step()
    torch.testing.assert_close(other.detach(), bias.detach(), rtol=0, atol=0)


def test_reference_lr_without_a_ratio_and_a_bad_one():
    """A group added with lr=0 has no ratio: adamw_lr is used as it is."""
    bias = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = PolarGrad([bias], lr=0.0, adamw_lr=ADAMW_LR)
    bias.grad = torch.ones(2, dtype=torch.float64)
    opt.step()
    assert math.isclose(float(bias.detach()[0]), -ADAMW_LR / (1 + 1e-8), rel_tol=1e-12)
    with pytest.raises(ValueError, match="reference_lr must be a finite number >= 0"):
        PolarGrad([{"params": [bias], "reference_lr": -1.0}], lr=0.1)


def test_old_checkpoint_without_reference_lr_takes_initial_lr():
    """A group saved before reference_lr existed takes the scheduler's initial_lr."""
    bias = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = PolarGrad([bias], lr=LR, adamw_lr=ADAMW_LR)
    torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5)
    saved = copy.deepcopy(opt.state_dict())
    del saved["param_groups"][0]["reference_lr"]
    fresh = PolarGrad([torch.nn.Parameter(bias.detach().clone())], lr=1.0, adamw_lr=ADAMW_LR)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["reference_lr"] == LR  # initial_lr, not the current LR/2
