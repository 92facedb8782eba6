"""Param-group keys of polarlinalg.torch optimizers, Muon's parameter shapes, mixed devices."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from polarlinalg.torch import SOAP, Muon, NorMuon, PolarGrad, Shampoo  # noqa: E402
from polarlinalg.torch._base import finite_by_device  # noqa: E402
from polarlinalg.torch._group_keys import TORCH_WRITTEN, class_keys  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")

MAKERS = {
    PolarGrad: lambda params: PolarGrad(params, lr=0.1),
    Muon: lambda params: Muon(params),
    NorMuon: lambda params: NorMuon(params, lr=0.1),
    Shampoo: lambda params: Shampoo(params, lr=0.1),
    SOAP: lambda params: SOAP(params),
}


def _matrix(*shape):
    return torch.nn.Parameter(torch.randn(*shape))


# -- unknown keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "key", "match"),
    [
        (PolarGrad, "momentun", r"unknown param-group key 'momentun' for PolarGrad; did you "),
        (Muon, "ns_step", r"did you mean 'ns_steps'\?"),
        (Shampoo, "split", r"'split' is a hyper-parameter of polarlinalg.torch.Muon, PolarGrad,"),
        (SOAP, "momentum", r"'momentum' is a hyper-parameter of .*PolarGrad, not of SOAP"),
        (PolarGrad, "betas", r"'betas' is a hyper-parameter of .*SOAP, Shampoo, not of PolarGrad"),
        (PolarGrad, "ns_steps", r"'ns_steps' is a hyper-parameter of .*Muon"),
        (Muon, "check_finite", r"'check_finite' is a hyper-parameter of .*PolarGrad"),
        (NorMuon, "weight_decy", r"did you mean 'weight_decay'\?"),
    ],
)
def test_unknown_group_key_raises_naming_it(cls, key, match):
    opt = MAKERS[cls]([_matrix(8, 8)])
    with pytest.raises(ValueError, match=match):
        opt.add_param_group({"params": [_matrix(96, 8)], key: 0.9})
    assert len(opt.param_groups) == 1  # the bad group was not kept
    with pytest.raises(ValueError, match=match):
        MAKERS[cls]([{"params": [_matrix(96, 8)], key: 0.9}])


@pytest.mark.parametrize("cls", list(MAKERS))
def test_every_key_of_another_optimizer_is_refused(cls):
    """The registry is every optimizer's signature and rule fields, derived, not listed."""
    own = MAKERS[cls]([_matrix(4, 4)])
    assert class_keys(cls) <= set(own.defaults) | set(own._rule_keys) | {"distributed"}
    foreign = set().union(*(class_keys(other) for other in MAKERS)) - own._own_keys()
    assert foreign  # every optimizer lacks some other optimizer's key
    for key in sorted(foreign - TORCH_WRITTEN):
        with pytest.raises(ValueError, match=f"'{key}'"):
            own.add_param_group({"params": [_matrix(4, 4)], key: None})
    assert len(own.param_groups) == 1


def test_torch_keys_and_metadata_are_allowed():
    """torch's own keys, what schedulers write, and the user's metadata stay allowed."""
    group = {
        "params": [_matrix(4, 4)],
        "name": "blocks.0.attn",
        "layer_id": 3,
        "lr_scale": 0.5,
        "foreach": None,
        "maximize": False,
        "differentiable": False,
        "capturable": False,
        "fused": None,
        "initial_lr": 0.1,
        "max_lr": 0.1,
        "min_lr": 0.0,
        "max_momentum": 0.95,
        "base_momentum": 0.85,
        "swa_lr": 0.05,
        "distributed": False,
    }
    for make in MAKERS.values():
        make([dict(group, params=[_matrix(4, 4)])])
    opt = PolarGrad([_matrix(4, 4)], lr=0.1, momentum=0.9)
    torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)  # cycles momentum
    opt.add_param_group(dict(opt.param_groups[0], params=[_matrix(3, 3)]))  # its keys copied


def test_named_parameters_groups_still_work():
    model = torch.nn.Linear(4, 3)
    opt = PolarGrad(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]


# -- Muon and parameters that are not matrices -------------------------------------------------


def test_muon_refuses_conv_weights_unless_flattened():
    conv = torch.nn.Conv2d(3, 4, 3, bias=False)
    with pytest.raises(ValueError, match=r"shape \(4, 3, 3, 3\).*'flatten': True.*\(4, 27\)"):
        Muon(conv.parameters())
    with pytest.raises(ValueError, match="Muon only supports parameters with at least 2"):
        Muon([torch.nn.Parameter(torch.randn(3))])
    with pytest.raises(TypeError, match="flatten must be True or False"):
        Muon([{"params": [_matrix(3, 3)], "flatten": "yes"}])
    opt = Muon([_matrix(4, 4)])
    with pytest.raises(ValueError, match="'flatten': True"):
        opt.add_param_group({"params": conv.parameters()})
    opt.add_param_group({"params": conv.parameters(), "flatten": True})


def test_muon_flatten_is_muon_on_the_reshaped_matrix():
    """``flatten=True``: the (out, in·kh·kw) matrix's Muon step (float64: exactly; and
    torch.optim.Muon on that matrix within bfloat16 rounding, 4 % per update)."""
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64)
    grads = [torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64) for _ in range(3)]
    conv = torch.nn.Parameter(w0.clone())
    flat = torch.nn.Parameter(w0.reshape(4, 27).clone())
    kw = {"lr": 0.02, "compute_dtype": torch.float64}
    opts = [Muon([{"params": [conv], "flatten": True}], **kw), Muon([flat], **kw)]
    anchor_w = torch.nn.Parameter(w0.reshape(4, 27).float())
    ours_w = torch.nn.Parameter(w0.float().clone())
    anchor = torch.optim.Muon([anchor_w], lr=0.02)
    ours = Muon([{"params": [ours_w], "flatten": True}], lr=0.02)
    for g in grads:
        conv.grad, flat.grad = g.clone(), g.reshape(4, 27).clone()
        for opt in opts:
            opt.step()
        torch.testing.assert_close(conv.detach().reshape(4, 27), flat.detach(), rtol=0, atol=1e-12)
        before = anchor_w.detach().clone()
        anchor_w.grad, ours_w.grad = g.reshape(4, 27).float(), g.float()
        anchor.step()
        ours.step()
        step_ref = anchor_w.detach() - before
        step_ours = ours_w.detach().reshape(4, 27) - before
        assert (step_ref - step_ours).norm() / step_ref.norm() < 0.04
        ours_w.data.copy_(anchor_w.data.reshape(ours_w.shape))


# -- check_finite across devices ---------------------------------------------------------------


def test_finite_flags_are_reduced_per_device_and_combined_on_the_host():
    grads = [
        torch.ones(3),
        torch.empty(2, device="meta"),  # no values: counts as finite
        torch.tensor([1.0, float("nan")]),
        torch.full((2, 2), float("inf")),
        torch.ones(2, device="meta"),
    ]
    flags = finite_by_device(grads)
    assert flags.device.type == "cpu"
    assert flags.tolist() == [True, True, False, False, True]


def test_check_finite_with_parameters_on_two_devices():
    """A CPU and two meta parameters (matrix and AdamW): the step runs, NaN still raises."""
    w = _matrix(4, 3)
    w_meta = torch.nn.Parameter(torch.empty(5, 3, device="meta"))
    b_meta = torch.nn.Parameter(torch.empty(3, device="meta"))
    opt = PolarGrad([w, w_meta, b_meta], lr=0.1, momentum=0.9, method="polar_express")
    for p in (w, w_meta, b_meta):
        p.grad = torch.ones_like(p)
    before = w.detach().clone()
    opt.step()
    assert not torch.equal(w.detach(), before)
    assert opt.state[w_meta]["momentum_buffer"].device.type == "meta"
    w.grad[1, 2] = float("nan")
    before = w.detach().clone()
    with pytest.raises(ValueError, match=r"parameter 0 of param group 0 \(shape \(4, 3\)\)"):
        opt.step()
    assert torch.equal(w.detach(), before)


@CUDA
def test_check_finite_with_cpu_and_cuda_parameters():
    w, v = _matrix(4, 3), torch.nn.Parameter(torch.randn(5, 3, device="cuda"))
    opt = PolarGrad([w, v], lr=0.1, momentum=0.9)
    w.grad, v.grad = torch.randn(4, 3), torch.randn(5, 3, device="cuda")
    opt.step()
    v.grad[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"parameter 1 of param group 0"):
        opt.step()
