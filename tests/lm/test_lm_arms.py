"""Every optimizer arm builds, steps and lowers the loss; the schedule; the presets."""

from __future__ import annotations

import itertools
import math

import pytest

torch = pytest.importorskip("torch")

from polarlinalg.experiments.lm.arms import ARM_NAMES, ARMS, build_optimizers, get_arm  # noqa: E402
from polarlinalg.experiments.lm.model import GPT, GPTConfig  # noqa: E402
from polarlinalg.experiments.lm.presets import PRESETS, get_preset  # noqa: E402
from polarlinalg.experiments.lm.train import gradient_stats, lr_factor  # noqa: E402

CONFIG = GPTConfig(n_layer=2, n_head=2, d_model=32, seq_len=32)


def test_arm_list():
    assert set(ARM_NAMES) == {
        "adamw",
        "adamw_no_warmup",
        "muon",
        "polargradm_qdwh",
        "polargradm_polar_express",
        "polargradm_embed_head",
        "torch_muon",
        "shampoo",
        "soap",
        "normuon",
        "muon_qk_clip",
        "polargradm_one_sided",
    }
    assert [name for name in ARM_NAMES if not ARMS[name].warmup] == ["adamw_no_warmup"]
    with pytest.raises(ValueError, match="unknown arm 'sgd'"):
        get_arm("sgd")


@pytest.mark.parametrize("name", ARM_NAMES)
def test_every_arm_constructs_steps_and_lowers_the_loss(name):
    if name == "torch_muon" and not hasattr(torch.optim, "Muon"):
        pytest.skip("torch.optim.Muon needs PyTorch >= 2.9")
    torch.manual_seed(0)
    model = GPT(CONFIG)
    groups = model.parameter_groups()
    optimizers = build_optimizers(get_arm(name), groups, get_preset("tiny").lrs, model=model)
    managed = [id(p) for opt in optimizers for g in opt.param_groups for p in g["params"]]
    assert sorted(managed) == sorted(id(p) for p in model.parameters())  # each exactly once
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(256, (4, 32), generator=gen)
    y = torch.roll(x, -1, dims=1)
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for _ in range(6):
        loss = model.loss(x, y)
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        for opt in optimizers:
            opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    changed = [not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True)]
    assert all(changed)


@pytest.mark.parametrize(
    ("name", "cls_name", "role"),
    [
        ("shampoo", "Shampoo", "shampoo"),
        ("soap", "SOAP", "soap"),
        ("normuon", "NorMuon", "normuon"),
    ],
)
def test_shampoo_soap_normuon_arms_route_like_muon(name, cls_name, role):
    """Their optimizer on hidden matrices at their role's rate, AdamW on the other groups."""
    import polarlinalg.torch

    groups = GPT(CONFIG).parameter_groups()
    lrs = {"adamw": 1e-3, role: 2e-3}
    hidden, rest = build_optimizers(get_arm(name), groups, lrs, weight_decay=0.05)
    assert type(hidden) is getattr(polarlinalg.torch, cls_name)
    assert [id(p) for p in hidden.param_groups[0]["params"]] == [id(p) for p in groups["hidden"]]
    assert hidden.param_groups[0]["lr"] == 2e-3
    assert hidden.param_groups[0]["weight_decay"] == 0.05  # the preset's, not SOAP's 0.01
    assert isinstance(rest, torch.optim.AdamW) and rest.param_groups[0]["lr"] == 1e-3
    ends = [*groups["embed"], *groups["head"]]
    assert [id(p) for p in rest.param_groups[0]["params"]] == [id(p) for p in ends]
    assert [id(p) for p in rest.param_groups[1]["params"]] == [id(p) for p in groups["vectors"]]
    if name == "shampoo":
        assert hidden.param_groups[0]["precondition_every"] == 10
    with pytest.raises(ValueError, match=f"needs learning rates for {role}"):
        build_optimizers(get_arm(name), groups, {"adamw": 1e-3})


def test_build_optimizers_checks_learning_rates():
    groups = GPT(CONFIG).parameter_groups()
    with pytest.raises(ValueError, match="needs learning rates for muon"):
        build_optimizers(get_arm("muon"), groups, {"adamw": 1e-3})
    with pytest.raises(ValueError, match=r"muon\.adamw must be a positive number"):
        build_optimizers(get_arm("muon"), groups, {"adamw": -1.0, "muon": 0.02})


def test_schedule():
    assert lr_factor(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(99, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(0, 100, 0, 0.1) == pytest.approx(1.0)  # no warm-up
    values = [lr_factor(s, 100, 10, 0.1) for s in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_gradient_stats():
    g = torch.zeros(6, 3)
    g[1, 0], g[4, 1], g[5, 2] = 4.0, 2.0, 1.0
    kappa, nuclear = gradient_stats(g, active_rows=True)
    assert kappa == pytest.approx(4.0) and nuclear == pytest.approx(7.0)
    g[:, 2] = 0.0  # a zero column: rank 2 of min(m, n) = 3
    assert gradient_stats(g)[0] == math.inf


def test_presets():
    tiny = get_preset("tiny")
    half = tiny.replace(steps=tiny.steps // 2)
    assert half.warmup_steps == tiny.warmup_steps // 2 and half.eval_every == tiny.eval_every // 2
    with pytest.raises(ValueError, match="steps"):
        tiny.replace(steps=0)
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")
    for preset in PRESETS.values():
        assert set(preset.lrs) == {r for arm in ARMS.values() for r in arm.roles}
    gpu = get_preset("gpu")
    assert (gpu.n_layer, gpu.n_head, gpu.d_model, gpu.seq_len) == (12, 12, 768, 1024)
    assert gpu.autocast and not tiny.autocast


def test_one_sided_arm_routes_with_param_groups():
    """``param_groups`` finds the GPT's own four groups; one-sided rules on embedding and head."""
    from polarlinalg.experiments.lm.arms import ONE_SIDED
    from polarlinalg.torch import Muon, PolarGrad

    model = GPT(CONFIG)
    groups = model.parameter_groups()
    arm = get_arm("polargradm_one_sided")
    lrs = {"polargrad_embed_head": 3e-2, "muon": 0.1, "adamw": 1e-3}
    hidden, ends, vectors = build_optimizers(arm, groups, lrs, weight_decay=0.05, model=model)
    assert type(hidden) is Muon and type(ends) is PolarGrad
    assert isinstance(vectors, torch.optim.AdamW)

    def ids(opt):
        return [id(p) for g in opt.param_groups for p in g["params"]]

    assert ids(hidden) == [id(p) for p in groups["hidden"]]
    assert ids(ends) == [id(p) for p in (*groups["embed"], *groups["head"])]
    assert sorted(ids(vectors)) == sorted(id(p) for p in groups["vectors"])
    assert [g["rule"] for g in ends.param_groups] == [ONE_SIDED["embedding"], ONE_SIDED["head"]]
    assert ends.param_groups[0]["param_names"] == ["embed.weight"]
    assert [g["lr"] for g in ends.param_groups] == [3e-2, 3e-2]
    assert ends.param_groups[0]["weight_decay"] == 0.05 and hidden.param_groups[0]["lr"] == 0.1
    assert all(g["weight_decay"] == 0.0 and g["lr"] == 1e-3 for g in vectors.param_groups)
    with pytest.raises(ValueError, match="pass model="):
        build_optimizers(arm, groups, lrs)
