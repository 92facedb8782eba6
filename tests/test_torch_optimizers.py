"""polarlinalg.torch: PolarGrad and Muon as torch.optim.Optimizer subclasses."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from polarlinalg.torch import Muon, PolarGrad  # noqa: E402

SHAPES = [(64, 32), (32, 96), (64, 32), (48, 48)]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def _pair(shapes, dtype=torch.float32, device="cpu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    first = [
        torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype).to(device)) for s in shapes
    ]
    second = [torch.nn.Parameter(p.detach().clone()) for p in first]
    return first, second


def _set_grads(params, grads):
    for p, g in zip(params, grads, strict=True):
        p.grad = None if g is None else g.clone()


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("adjust_lr_fn", [None, "match_rms_adamw"])
def test_muon_matches_torch_optim_muon(nesterov, adjust_lr_fn):
    """Same updates as torch.optim.Muon within bfloat16 rounding.

    Both compute Newton–Schulz in bfloat16; after 5 steps each is about 1-2 %
    (RMS) from the exact-arithmetic iterate, so the two may differ by that
    much per update, never more than 4 %.
    """
    ref, ours = _pair(SHAPES)
    kw = {"lr": 0.02, "nesterov": nesterov, "adjust_lr_fn": adjust_lr_fn}
    o_ref, o_ours = torch.optim.Muon(ref, **kw), Muon(ours, **kw)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        before = [p.detach().clone() for p in ref]
        grads = [torch.randn(s, generator=gen) for s in SHAPES]
        _set_grads(ref, grads)
        _set_grads(ours, grads)
        o_ref.step()
        o_ours.step()
        for b, p, q in zip(before, ref, ours, strict=True):
            step_ref, step_ours = p - b, q - b
            rel = (step_ref - step_ours).norm() / step_ref.norm()
            assert rel < 0.04
        for p, q in zip(ref, ours, strict=True):  # keep the trajectories together
            q.data.copy_(p.data)


def test_muon_float64_is_exact_formula():
    """With compute_dtype=float64 the update is torch.optim.Muon's formula to 1e-12."""
    (p,), _ = _pair([(16, 8)], dtype=torch.float64)
    x0 = p.detach().clone()
    opt = Muon([p], lr=0.1, compute_dtype=torch.float64)
    g = torch.randn(16, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    p.grad = g.clone()
    opt.step()
    a, b, c = 3.4445, -4.775, 2.0315
    update = g + 0.95 * (0.05 * g - g)  # lerp of the fresh buffer (0.05 g) and g
    x = update.T / update.norm()
    for _ in range(5):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    want = x0 * (1 - 0.1 * 0.1) - 0.1 * 2**0.5 * x.T
    torch.testing.assert_close(p.detach(), want, rtol=0, atol=1e-12)


def test_muon_loads_torch_optim_muon_state():
    ref, ours = _pair(SHAPES[:2])
    o_ref = torch.optim.Muon(ref, lr=0.02)
    _set_grads(ref, [torch.ones(s) for s in SHAPES[:2]])
    o_ref.step()
    o_ours = Muon(ours, lr=0.02)
    o_ours.load_state_dict(o_ref.state_dict())
    for p, q in zip(ref, ours, strict=True):
        torch.testing.assert_close(
            o_ours.state[q]["momentum_buffer"], o_ref.state[p]["momentum_buffer"]
        )


def test_polargrad_routes_and_closure():
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    opt = PolarGrad(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(20, 6), torch.randn(20, 2)

    def closure():
        opt.zero_grad()
        loss = (model(x) - y).square().mean()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert torch.is_tensor(loss)
    weight, bias = model[0].weight, model[0].bias
    assert set(opt.state[weight]) == {"momentum_buffer"}
    assert set(opt.state[bias]) == {"step", "exp_avg", "exp_avg_sq"}
    opt.zero_grad()
    assert weight.grad is None


def test_none_gradients_are_skipped():
    a, b = torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(4, 3))
    opt = PolarGrad([a, b], lr=0.1, momentum=0.5)
    b0 = b.detach().clone()
    a.grad = torch.randn(4, 3)
    opt.step()
    assert torch.equal(b.detach(), b0)
    assert b not in opt.state


def test_param_group_rule_sends_embeddings_to_adamw():
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10)
    opt = PolarGrad(
        [{"params": emb.parameters(), "rule": "adamw"}, {"params": head.parameters()}],
        lr=0.01,
        adamw_lr=1e-3,
    )
    head(emb(torch.arange(5))).sum().backward()
    opt.step()
    assert "exp_avg" in opt.state[emb.weight]
    assert "momentum_buffer" not in opt.state[head.weight]  # β = 0: no buffer, still PolarGrad
    assert head.weight not in opt.state or "exp_avg" not in opt.state[head.weight]


def test_sparse_gradients_are_rejected():
    emb = torch.nn.Embedding(10, 4, sparse=True)
    opt = PolarGrad(emb.parameters(), lr=0.1)
    emb(torch.arange(3)).sum().backward()
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        opt.step()


def test_nan_gradient_raises_before_any_update():
    ps, _ = _pair([(5, 4), (6, 3)])
    opt = PolarGrad(ps, lr=0.1, momentum=0.9)
    before = [p.detach().clone() for p in ps]
    ps[0].grad = torch.randn(5, 4)
    ps[1].grad = torch.full((6, 3), float("nan"))
    with pytest.raises(ValueError, match=r"parameter 1 of param group 0 \(shape \(6, 3\)\)"):
        opt.step()
    for p, b in zip(ps, before, strict=True):
        assert torch.equal(p.detach(), b)
    assert len(opt.state) == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_adamw_gradient_raises_before_any_update(bad):
    """The check covers the AdamW parameters too, and names the parameter."""
    model = torch.nn.Linear(4, 3)
    opt = PolarGrad(model.named_parameters(), lr=0.1, momentum=0.9)
    before = [p.detach().clone() for p in model.parameters()]
    model.weight.grad = torch.randn(3, 4)
    model.bias.grad = torch.tensor([0.0, bad, 1.0])
    with pytest.raises(ValueError, match=r"parameter 'bias' \(shape \(3,\)\) contains NaN"):
        opt.step()
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.detach(), b)
    assert len(opt.state) == 0
    model.bias.grad = torch.ones(3)
    opt.step()  # the same optimizer goes on once the gradients are finite
    assert set(opt.state[model.bias]) == {"step", "exp_avg", "exp_avg_sq"}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("polar_first", [False, True])
@pytest.mark.parametrize("method", ["qdwh", "zolo", "newton", "svd", "polar_express"])
def test_non_finite_gradient_propagates_without_the_check(method, polar_first, batch):
    """check_finite=False: NaN reaches the parameter, no error from the factorization.

    torch.linalg.cholesky (QDWH, ZOLO-PD) and torch.linalg.svd raise on
    non-finite input eagerly; under jit NaN propagates, and so it does here.
    """
    ps, _ = _pair([(6, 4), (6, 4)])
    bias = torch.nn.Parameter(torch.zeros(3))
    opt = PolarGrad(
        [*ps, bias],
        lr=0.1,
        momentum=0.9,
        method=method,
        polar_first=polar_first,
        batch=batch,
        check_finite=False,
    )
    bad = torch.randn(6, 4)
    bad[2, 1] = float("inf")
    _set_grads([*ps, bias], [bad, torch.randn(6, 4), torch.tensor([0.0, float("nan"), 1.0])])
    opt.step()
    assert torch.isnan(ps[0]).all()
    assert torch.isfinite(ps[1]).all()
    assert torch.isnan(bias).tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: PolarGrad(p, lr=-0.1), ValueError, "lr must be a finite number >= 0"),
        (lambda p: PolarGrad(p, lr=0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (
            lambda p: PolarGrad(p, lr=0.1, momentum=-0.5),
            ValueError,
            r"momentum must be in \[0, 1\)",
        ),
        (lambda p: PolarGrad(p, lr=0.1, method="cholesky"), ValueError, "unknown polar method"),
        (lambda p: PolarGrad(p, lr=0.1, scale="max"), ValueError, "unknown scale"),
        (lambda p: PolarGrad(p, lr=0.1, rule="sgd"), ValueError, "unknown rule"),
        (lambda p: PolarGrad(p, lr=0.1, steps=-1), ValueError, "steps must be a positive integer"),
        (lambda p: PolarGrad(p, lr=0.1, adamw_betas=(0.9, 1.0)), ValueError, "adamw beta2"),
        (lambda p: Muon(p, lr=-1.0), ValueError, "lr must be a finite number >= 0"),
        (lambda p: Muon(p, momentum=1.5), ValueError, r"momentum must be in \[0, 1\)"),
        (lambda p: Muon(p, adjust_lr_fn="none"), ValueError, "not supported"),
        (lambda p: Muon(p, method="nope"), ValueError, "unknown polar method"),
        (lambda p: Muon(p, ns_steps=0), ValueError, "ns_steps must be a positive integer"),
        (
            lambda p: PolarGrad(p, lr=0.1, compute_dtype="bf16"),
            ValueError,
            "compute_dtype must be None, a floating dtype or one of 'float16', 'bfloat16'",
        ),
        (
            lambda p: PolarGrad(p, lr=0.1, compute_dtype=torch.bfloat16),
            ValueError,
            "'qdwh' factorizes",
        ),
        (
            lambda p: PolarGrad(p, lr=0.1, compute_dtype=np.float64),
            ValueError,
            "compute_dtype must be None or a floating dtype of array_api_compat.torch",
        ),
        (lambda p: Muon(p, compute_dtype="bf16"), ValueError, "compute_dtype must be None"),
        (
            lambda p: PolarGrad(p, lr=torch.tensor([0.01, 0.02])),
            ValueError,
            r"lr must be a number or a 1-element tensor; got a tensor of shape \(2,\)",
        ),
        (lambda p: Muon(p, lr=torch.tensor([0.01, 0.02])), ValueError, "1-element tensor"),
        (
            lambda p: PolarGrad(p, lr=0.1, adamw_lr=torch.ones(2)),
            ValueError,
            "adamw_lr must be a number or a 1-element tensor",
        ),
        (lambda p: PolarGrad(p, lr=torch.tensor(-0.1)), ValueError, "lr must be a finite number"),
        (lambda p: PolarGrad(p, lr=0.1, check_finite="yes"), TypeError, "check_finite must be"),
    ],
)
def test_bad_hyperparameters_at_construction(make, error, match):
    p = torch.nn.Parameter(torch.randn(3, 3))
    with pytest.raises(error, match=match):
        make([p])


def test_bad_parameters_at_construction():
    vec = torch.nn.Parameter(torch.randn(3))
    with pytest.raises(ValueError, match="Muon only supports parameters with at least 2"):
        Muon([vec])
    with pytest.raises(ValueError, match="the matrix rule needs at least 2"):
        PolarGrad([vec], lr=0.1, rule="polargrad")
    opt = PolarGrad([torch.nn.Parameter(torch.randn(3, 3))], lr=0.1)
    with pytest.raises(ValueError, match="unknown scale"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.randn(2, 2))], "scale": "x"})
    assert len(opt.param_groups) == 1  # the bad group was not kept


@pytest.mark.parametrize(
    ("cls", "group", "match"),
    [
        (PolarGrad, {"compute_dtype": "bf16"}, "compute_dtype must be None"),
        (PolarGrad, {"lr": torch.tensor([0.01, 0.02])}, "1-element tensor"),
        (PolarGrad, {"method": "zolo", "compute_dtype": "float16"}, "'zolo' factorizes"),
        (Muon, {"compute_dtype": "bf16"}, "compute_dtype must be None"),
        (Muon, {"lr": torch.ones(2, 2)}, "1-element tensor"),
    ],
)
def test_add_param_group_checks_like_the_constructor(cls, group, match):
    kw = {"lr": 0.1} if cls is PolarGrad else {}
    opt = cls([torch.nn.Parameter(torch.randn(3, 3))], **kw)
    with pytest.raises(ValueError, match=match):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.randn(2, 2))], **group})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("cls", [PolarGrad, Muon])
def test_bfloat16_model_state_dict_round_trip(cls):
    """bf16 parameters keep float32 state, also through state_dict/load_state_dict."""
    kw = {"lr": 0.01, "momentum": 0.9} if cls is PolarGrad else {"lr": 0.01}
    ps, _ = _pair([(8, 6), (6, 4)], dtype=torch.bfloat16)
    opt = cls(ps, **kw)
    gen = torch.Generator().manual_seed(5)
    grads = [[torch.randn(p.shape, generator=gen).bfloat16() for p in ps] for _ in range(4)]
    for g in grads[:2]:
        _set_grads(ps, g)
        opt.step()
    assert all(opt.state[p]["momentum_buffer"].dtype == torch.float32 for p in ps)
    saved = copy.deepcopy(opt.state_dict())
    params_saved = [p.detach().clone() for p in ps]
    # continue uninterrupted ...
    for g in grads[2:]:
        _set_grads(ps, g)
        opt.step()
    straight = [p.detach().clone() for p in ps]
    # ... and again from the saved state, in a new optimizer
    qs = [torch.nn.Parameter(p.clone()) for p in params_saved]
    fresh = cls(qs, **kw)
    fresh.load_state_dict(saved)
    assert all(fresh.state[q]["momentum_buffer"].dtype == torch.float32 for q in qs)
    for g in grads[2:]:
        _set_grads(qs, g)
        fresh.step()
    for a, b in zip(straight, qs, strict=True):
        assert a.dtype == torch.bfloat16
        assert torch.equal(a, b.detach())


def test_adamw_state_dict_round_trip():
    model = torch.nn.Linear(4, 3)
    opt = PolarGrad(model.parameters(), lr=0.01)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    fresh = PolarGrad(torch.nn.Linear(4, 3).parameters(), lr=0.01)
    fresh.load_state_dict(opt.state_dict())
    (b_old, b_new) = (opt.state[model.bias], fresh.state[fresh.param_groups[0]["params"][1]])
    assert float(b_new["step"]) == 1.0
    torch.testing.assert_close(b_new["exp_avg"], b_old["exp_avg"])


def test_conv_weights_batch_or_flatten():
    # float64 and a fixed seed: the step is recovered as (w0 − w)/lr, which in
    # float32 cancels to about 1e-6 absolute and made the check flaky
    gen = torch.Generator().manual_seed(7)
    conv = torch.nn.Conv2d(3, 4, 3).double()
    for flatten in (False, True):
        opt = PolarGrad(conv.parameters(), lr=0.01, momentum=0.9, flatten=flatten, method="svd")
        out = conv(torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64))
        weights = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        (out * weights).sum().backward()  # a full-rank gradient
        w0 = conv.weight.detach().clone()
        opt.step()
        step = (w0 - conv.weight.detach()) / 0.01
        g = conv.weight.grad
        if flatten:
            m = (0.1 * g).reshape(4, -1)  # the momentum after one step is 0.1 g
            p, s, qh = torch.linalg.svd(m, full_matrices=False)
            want = (s.sum() * p @ qh).reshape(g.shape)
        else:
            m = 0.1 * g
            p, s, qh = torch.linalg.svd(m, full_matrices=False)
            want = s.sum(-1)[..., None, None] * (p @ qh)
        torch.testing.assert_close(step, want, rtol=1e-4, atol=1e-6)
        conv.zero_grad()


def test_tensor_learning_rate():
    """A 0-d or 1-element tensor lr (as torch.optim accepts) gives the float lr's step."""
    p = torch.nn.Parameter(torch.randn(4, 3))
    g = torch.randn(4, 3)
    results = []
    for lr in (0.05, torch.tensor(0.05), torch.tensor([0.05])):
        param = torch.nn.Parameter(p.detach().clone())
        opt = PolarGrad([param], lr=lr, method="svd", weight_decay=0.1)
        param.grad = g.clone()
        opt.step()
        results.append(param.detach())
    for other in results[1:]:
        torch.testing.assert_close(other, results[0])


def test_compiled_step_matches_eager():
    """torch.compile of a whole training step (forward, backward, optimizer step)."""
    torch.manual_seed(0)
    data, target = torch.randn(32, 8), torch.randn(32, 4)

    def run(compiled: bool):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))
        opt = PolarGrad(
            model.parameters(), lr=0.02, momentum=0.9, method="polar_express", check_finite=False
        )

        def train_step():
            opt.zero_grad()
            loss = (model(data) - target).square().mean()
            loss.backward()
            opt.step()
            return loss.detach()

        step = torch.compile(train_step) if compiled else train_step
        return torch.stack([step() for _ in range(4)]), [p.detach() for p in model.parameters()]

    eager_losses, eager_params = run(False)
    compiled_losses, compiled_params = run(True)
    torch.testing.assert_close(compiled_losses, eager_losses, rtol=1e-4, atol=1e-5)
    for a, b in zip(compiled_params, eager_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@CUDA
def test_cuda_parameters_match_cpu():
    cpu, _ = _pair([(32, 16), (16, 24)])
    gpu = [torch.nn.Parameter(p.detach().cuda()) for p in cpu]
    grads = [torch.randn(p.shape) for p in cpu]
    for params, device in ((cpu, "cpu"), (gpu, "cuda")):
        opt = PolarGrad(params, lr=0.01, momentum=0.9)
        _set_grads(params, [g.to(device) for g in grads])
        opt.step()
        assert all(opt.state[p]["momentum_buffer"].device.type == device for p in params)
    for a, b in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(
            a.detach().numpy(), b.detach().cpu().numpy(), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("method", ["qdwh", "polar_express"])
def test_batched_and_per_matrix_paths_agree(method):
    """batch=True stacks same-shape matrices into one call; the result is the same."""
    shapes = [(12, 8), (12, 8), (8, 12), (12, 8)]
    first, second = _pair(shapes, dtype=torch.float64)
    grads = [torch.randn(s, dtype=torch.float64) for s in shapes]
    for params, batch in ((first, True), (second, False)):
        opt = PolarGrad(params, lr=0.01, momentum=0.9, method=method, batch=batch)
        for _ in range(2):
            _set_grads(params, grads)
            opt.step()
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="batch must be None, True or False"):
        PolarGrad(first, lr=0.1, batch="yes")
