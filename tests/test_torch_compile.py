"""torch.compile of a polarlinalg.torch optimizer's step compiles once, whatever the model size.

TorchDynamo runs ``_init_group`` eagerly while it traces a step (the protocol
of ``torch.optim``'s optimizers), so the traced step holds no guard per
parameter.  The tests run under ``recompile_limit=1`` with
``fail_on_recompile_limit_hit``: one recompilation of the step fails them.
They compile with the ``eager`` backend (TorchDynamo's capture and guards,
which is what recompiles; AOTAutograd and Inductor only change the code run
for each graph and take long on 2 cores);
``tests/test_torch_optimizers.py::test_compiled_step_matches_eager`` runs Inductor
on a whole training step.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch._dynamo.utils import counters  # noqa: E402

from polarlinalg.torch import SOAP, Muon, NorMuon, PolarGrad, Shampoo  # noqa: E402

LAYERS = 10
WIDTH = 8
BACKEND = "eager"


def _mlp(layers: int, bias: bool) -> torch.nn.Sequential:
    torch.manual_seed(0)
    modules: list[torch.nn.Module] = []
    for _ in range(layers):
        modules += [torch.nn.Linear(WIDTH, WIDTH, bias=bias), torch.nn.Tanh()]
    return torch.nn.Sequential(*modules)


def _run(
    make, compiled, *, steps=3, fullgraph=False, bias=True, layers=LAYERS, limit=1, after=None
):
    """Train ``steps`` steps; return the parameters and the number of graphs compiled.

    ``after(opt, t)`` runs after step ``t`` (a change of hyper-parameters).
    """
    model = _mlp(layers, bias)
    opt = make(model.parameters())
    step = opt.step
    if compiled:
        step = torch.compile(opt.step, fullgraph=fullgraph, backend=BACKEND)
    data = torch.randn(16, WIDTH, generator=torch.Generator().manual_seed(1))
    torch._dynamo.reset()
    counters.clear()
    with torch._dynamo.config.patch(recompile_limit=limit, fail_on_recompile_limit_hit=True):
        for t in range(steps):
            opt.zero_grad()
            model(data).square().mean().backward()
            step()
            if after is not None:
                after(opt, t)
    return [p.detach().clone() for p in model.parameters()], counters["stats"]["unique_graphs"]


def _assert_close(compiled, eager, rtol=1e-5, atol=1e-6):
    for a, b in zip(compiled, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def _polargrad(params, **kw):
    kw = {"lr": 0.02, "momentum": 0.9, "method": "polar_express", "check_finite": False, **kw}
    return PolarGrad(params, **kw)


def _muon(params, **kw):
    return Muon(params, **{"lr": 0.02, "compute_dtype": torch.float32, **kw})


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)` before")
def test_fullgraph_polargrad_step_compiles_once():
    """PolarGrad on a 10-layer MLP, one matrix at a time, under LambdaLR: one graph.

    The learning rate is a tensor, which the scheduler fills in place (a
    float would be a new constant, and a recompilation, at every step, as
    for ``torch.optim``'s optimizers); the AdamW rate of the biases follows
    it.  Equal to the eager step to float32 rounding.
    """

    def make(params):
        return _polargrad(params, lr=torch.tensor(0.02), adamw_lr=1e-3, batch=False)

    def after(opt, t):
        if t == 0:  # made after torch.compile(opt.step), which it would wrap
            opt.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5**s)
        opt.scheduler.step()

    compiled, graphs = _run(make, True, fullgraph=True, after=after)
    assert graphs == 1
    eager, _ = _run(make, False, after=after)
    _assert_close(compiled, eager)


def test_fullgraph_muon_step_compiles_once():
    """Muon (Newton–Schulz) on a 10-layer MLP, batched: one graph, eager's results."""
    make = lambda p: _muon(p, batch=True)  # noqa: E731
    compiled, graphs = _run(make, True, fullgraph=True, bias=False)
    assert graphs == 1
    eager, _ = _run(make, False, bias=False)
    _assert_close(compiled, eager)


def test_check_finite_is_one_graph_break_and_still_raises():
    """check_finite (PolarGrad's default) runs eagerly: a graph break, no recompilation."""
    model = _mlp(2, True)
    opt = PolarGrad(model.parameters(), lr=0.02, momentum=0.9, method="polar_express", batch=True)
    step = torch.compile(opt.step, backend=BACKEND)
    data = torch.randn(16, WIDTH)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(recompile_limit=1, fail_on_recompile_limit_hit=True):
        for _ in range(2):
            opt.zero_grad()
            model(data).square().mean().backward()
            step()
        before = [p.detach().clone() for p in model.parameters()]
        model[2].bias.grad[1] = float("nan")
        with pytest.raises(ValueError, match=r"parameter 3 of param group 0 \(shape \(8,\)\)"):
            step()
    _assert_close(list(model.parameters()), before, rtol=0, atol=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: NorMuon(p, lr=1e-2, compute_dtype=torch.float32),
        lambda p: Shampoo(p, lr=1e-2, precondition_every=2),
        lambda p: SOAP(p, lr=1e-2, precondition_frequency=2),
    ],
    ids=["NorMuon", "Shampoo", "SOAP"],
)
def test_rule_optimizer_step_compiles_once(make):
    """The rule step runs eagerly (one graph break), the AdamW step compiled, no recompilation."""
    compiled, graphs = _run(make, True, steps=4, layers=4)
    assert graphs == 1
    eager, _ = _run(make, False, steps=4, layers=4)
    _assert_close(compiled, eager)


def test_changed_hyperparameter_recompiles_and_is_used():
    """A new momentum (a scheduler cycling it) retraces with the new rule: eager's results."""

    def after(opt, t):
        opt.param_groups[0]["momentum"] = 0.5

    make = lambda p: _polargrad(p, batch=True)  # noqa: E731
    compiled, graphs = _run(make, True, fullgraph=True, layers=2, limit=2, after=after)
    assert graphs == 2
    eager, _ = _run(make, False, layers=2, after=after)
    _assert_close(compiled, eager)
