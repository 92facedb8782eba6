"""Shampoo, SOAP and NorMuon through the three wrappers, and against the implementations users pick.

* pytorch-optimizer 4.1.0 configured alike: classic Shampoo over 5 steps, SOAP
  over 12 steps at precondition_frequency 1 and 5 (square full-rank
  gradients: ../shared/REFERENCE.md §7), NorMuon in both update scales;
* one configuration through torch, optax and optim: the same trajectory;
* one contract table (rule, signatures) for invalid hyper-parameters, the
  signatures against the rule's fields, state_dict, torch.compile, jax.jit
  and optax.inject_hyperparams.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

import numpy as np
import pytest
import support  # noqa: F401  (enables JAX float64)

from polarlinalg import optim
from polarlinalg._rules.normuon import NorMuonRule
from polarlinalg._rules.shampoo import ShampooRule
from polarlinalg._rules.soap import SOAPRule

torch = pytest.importorskip("torch")
optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")
jnp = jax.numpy

import polarlinalg.optax as pl_optax  # noqa: E402
import polarlinalg.torch as pl_torch  # noqa: E402

NAMES = ("shampoo", "soap", "normuon")
RULE_CLS = {"shampoo": ShampooRule, "soap": SOAPRule, "normuon": NorMuonRule}
TORCH = {"shampoo": pl_torch.Shampoo, "soap": pl_torch.SOAP, "normuon": pl_torch.NorMuon}
OPTIM = {"shampoo": optim.Shampoo, "soap": optim.SOAP, "normuon": optim.NorMuon}
OPTAX = {"shampoo": pl_optax.shampoo, "soap": pl_optax.soap, "normuon": pl_optax.normuon}


def _torch_step(opt, params, grads):
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.tensor(g)
    opt.step()


# -- against pytorch-optimizer -------------------------------------------------------------------

pto = pytest.importorskip("pytorch_optimizer")


def test_classic_shampoo_matches_pytorch_optimizer():
    rng = np.random.default_rng(0)
    shapes = [(6, 4), (5, 5)]
    x0 = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(5)]
    theirs = [torch.nn.Parameter(torch.tensor(x)) for x in x0]
    ours = [torch.nn.Parameter(torch.tensor(x)) for x in x0]
    eps = 1e-3
    a = pto.Shampoo(theirs, lr=0.1, momentum=0.0, matrix_eps=eps)
    b = pl_torch.Shampoo(ours, lr=0.1, betas=(0.0, 1.0), eps=eps, grafting="none")
    for g in grads:
        _torch_step(a, theirs, g)
        _torch_step(b, ours, g)
    for p, q in zip(theirs, ours, strict=True):
        torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-6 * p.abs().max().item())


@pytest.mark.parametrize("frequency", [1, 5])
def test_soap_matches_pytorch_optimizer(frequency):
    rng = np.random.default_rng(1)
    shapes = [(6, 6), (4, 4)]
    x0 = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(13)]
    theirs = [torch.nn.Parameter(torch.tensor(x)) for x in x0]
    ours = [torch.nn.Parameter(torch.tensor(x)) for x in x0]
    a = pto.SOAP(theirs, lr=0.01, weight_decay=0.05, precondition_frequency=frequency)
    b = pl_torch.SOAP(ours, lr=0.01, weight_decay=0.05, precondition_frequency=frequency)
    for g in grads:
        _torch_step(a, theirs, g)
        _torch_step(b, ours, g)
    # pytorch-optimizer refreshes in float32 QR: ~2e-7 apart (REFERENCE.md §7)
    for p, q in zip(theirs, ours, strict=True):
        err = (q - p).abs().max() / p.abs().max()
        assert err < 1e-6, err


@pytest.mark.parametrize("update_scale", ["preserve_norm", "match_rms"])
def test_normuon_matches_pytorch_optimizer(monkeypatch, update_scale):
    """Configured alike: its Newton–Schulz (bfloat16 by default) made float64, ours float64."""
    from pytorch_optimizer.optimizer.muon import normuon as module

    monkeypatch.setattr(
        module,
        "zero_power_via_newton_schulz_5",
        functools.partial(module.zero_power_via_newton_schulz_5, dtype=torch.float64),
    )
    rng = np.random.default_rng(2)
    shapes = [(8, 5), (4, 6)]
    x0 = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(6)]
    theirs = [torch.nn.Parameter(torch.tensor(x)) for x in x0]
    ours = [torch.nn.Parameter(torch.tensor(x)) for x in x0]
    a = module.NorMuon(
        [{"params": theirs, "use_muon": True}],
        lr=0.02,
        weight_decay=0.1,
        update_scale=update_scale,
        foreach=False,
    )
    b = pl_torch.NorMuon(
        ours, lr=0.02, weight_decay=0.1, update_scale=update_scale, compute_dtype=torch.float64
    )
    for g in grads:
        _torch_step(a, theirs, g)
        _torch_step(b, ours, g)
    for p, q in zip(theirs, ours, strict=True):
        torch.testing.assert_close(q, p, rtol=1e-10, atol=1e-10)


# -- one configuration, three wrappers ----------------------------------------------------------

SHAPES = {"w1": (6, 4), "w2": (5, 5), "b": (4,)}
CONFIGS = {
    # ε well above the rounding of the rank-1 statistics of the 1-row blocks
    "shampoo": {
        "weight_decay": 0.1,
        "precondition_every": 2,
        "max_preconditioner_dim": 4,
        "eps": 1e-6,
    },
    # the 6-row mode unrotated: a (6, 4) first gradient leaves L rank-deficient and its
    # eigenbasis arbitrary inside the null space (REFERENCE.md §7)
    "soap": {"precondition_frequency": 2, "weight_decay": 0.1, "max_precondition_dim": 5},
    "normuon": {"weight_decay": 0.1, "method": "svd", "layout": "out_in"},
}


def _problem():
    rng = np.random.default_rng(0)
    x0 = {k: rng.uniform(-1, 1, s) for k, s in SHAPES.items()}
    targets = {k: rng.standard_normal(s) for k, s in SHAPES.items()}

    def grad(params):
        return {k: 2 * p * (p * p - targets[k]) for k, p in params.items()}

    return x0, grad


def _optax_cfg(name, cfg):
    cfg = dict(cfg)
    if "betas" in cfg:
        cfg["b1"], cfg["b2"] = cfg.pop("betas")
    return cfg


@pytest.mark.parametrize("name", NAMES)
def test_three_wrappers_same_trajectory(name):
    x0, grad = _problem()
    cfg = CONFIGS[name]
    lr = 0.02
    steps = 5

    opt = OPTIM[name](lr=lr, adamw_lr=0.01, **cfg)
    params, state = dict(x0), opt.init(x0)
    for _ in range(steps):
        params, state = opt.step(params, grad(params), state)
    want = params

    tparams = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in x0.items()}
    topt = TORCH[name](list(tparams.values()), lr=lr, adamw_lr=0.01, **cfg)
    for _ in range(steps):
        g = grad({k: p.detach().numpy() for k, p in tparams.items()})
        _torch_step(topt, list(tparams.values()), [g[k] for k in tparams])

    tx = OPTAX[name](learning_rate=lr, adamw_lr=0.01, **_optax_cfg(name, cfg))
    jparams = {k: jnp.asarray(v) for k, v in x0.items()}
    jstate = tx.init(jparams)
    update = jax.jit(tx.update)
    for _ in range(steps):
        g = {
            k: jnp.asarray(v)
            for k, v in grad({k: np.asarray(p) for k, p in jparams.items()}).items()
        }
        u, jstate = update(g, jstate, jparams)
        jparams = optax.apply_updates(jparams, u)

    # SOAP's eigenbases move by rounding/gap (eigenvalue gaps of these 4x4 and 5x5
    # statistics are ~1e-2 of their norm): 1e-7; the others are rounding-limited
    rtol = 1e-7 if name == "soap" else 1e-9
    for k in x0:
        np.testing.assert_allclose(tparams[k].detach().numpy(), want[k], rtol=rtol, atol=1e-11)
        np.testing.assert_allclose(np.asarray(jparams[k]), want[k], rtol=rtol, atol=1e-11)
    assert not np.allclose(want["w1"], x0["w1"])


# -- the contract table ---------------------------------------------------------------------------

WRAPPER_ONLY = {
    "torch": {
        "params",
        "lr",
        "weight_decay",
        "rule",
        "adamw_lr",
        "adamw_betas",
        "adamw_eps",
        "adamw_weight_decay",
        "check_finite",
    },
    "optim": {
        "lr",
        "weight_decay",
        "rules",
        "adamw_lr",
        "adamw_betas",
        "adamw_eps",
        "adamw_weight_decay",
        "check_finite",
    },
    "optax": {
        "learning_rate",
        "weight_decay",
        "weight_decay_mask",
        "rules",
        "adamw_lr",
        "adamw_betas",
        "adamw_eps",
        "adamw_weight_decay",
        "check_finite",
    },
}


def _rule_names(name, wrapper):
    fields = {f.name for f in dataclasses.fields(RULE_CLS[name])}
    if wrapper == "optax" and "betas" in fields:
        fields = (fields - {"betas"}) | {"b1", "b2"}
    return fields


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("wrapper", ["torch", "optim", "optax"])
def test_signatures_are_the_rule_fields(name, wrapper):
    target = {"torch": TORCH, "optim": OPTIM, "optax": OPTAX}[wrapper][name]
    params = set(inspect.signature(target).parameters) - {"self"}
    assert params - WRAPPER_ONLY[wrapper] == _rule_names(name, wrapper)
    # defaults agree with the rule's
    rule_defaults = {f.name: f.default for f in dataclasses.fields(RULE_CLS[name])}
    for key, p in inspect.signature(target).parameters.items():
        if key in rule_defaults and rule_defaults[key] is not dataclasses.MISSING:
            if key == "layout" and wrapper == "optax":
                continue  # flax kernels are (in, out)
            assert p.default == rule_defaults[key], key


BAD = [
    ("shampoo", {"betas": (1.0, 0.9)}, ValueError, "betas\\[0\\]"),
    ("shampoo", {"betas": (0.9, 1.5)}, ValueError, "betas\\[1\\]"),
    ("shampoo", {"eps": -1.0}, ValueError, "eps"),
    ("shampoo", {"grafting": "adagrad"}, ValueError, "grafting"),
    ("shampoo", {"precondition_every": 0}, ValueError, "precondition_every"),
    ("shampoo", {"max_preconditioner_dim": 0}, ValueError, "max_preconditioner_dim"),
    ("shampoo", {"root_method": "svd"}, ValueError, "root_method"),
    ("shampoo", {"root_method": "newton", "inv_root_override": 2.5}, ValueError, "integer"),
    ("shampoo", {"weight_decay": -0.1}, ValueError, "weight_decay"),
    ("soap", {"betas": (0.9, 1.0)}, ValueError, "betas\\[1\\]"),
    ("soap", {"precondition_frequency": 0}, ValueError, "precondition_frequency"),
    ("soap", {"shampoo_beta": 1.5}, ValueError, "shampoo_beta"),
    ("soap", {"correct_bias": 1}, TypeError, "correct_bias"),
    ("normuon", {"momentum": 1.0}, ValueError, "momentum"),
    ("normuon", {"update_scale": "rms"}, ValueError, "update_scale"),
    ("normuon", {"method": "polar"}, ValueError, "method"),
    ("normuon", {"ns_steps": 0}, ValueError, "ns_steps"),
    ("normuon", {"adjust_lr_fn": "moonlight"}, ValueError, "adjust_lr_fn"),
]


def _with_lr(name, wrapper, kwargs):
    kwargs = dict(kwargs)
    if wrapper == "optax" and "betas" in kwargs:
        kwargs["b1"], kwargs["b2"] = kwargs.pop("betas")
    return kwargs


@pytest.mark.parametrize(("name", "kwargs", "error", "match"), BAD)
@pytest.mark.parametrize("wrapper", ["torch", "optim", "optax"])
def test_bad_hyperparameters_rejected_at_construction(wrapper, name, kwargs, error, match):
    kwargs = _with_lr(name, wrapper, kwargs)
    with pytest.raises(error, match=match):
        if wrapper == "torch":
            TORCH[name]([torch.nn.Parameter(torch.zeros(3, 3))], lr=0.1, **kwargs)
        elif wrapper == "optim":
            OPTIM[name](lr=0.1, **kwargs)
        else:
            OPTAX[name](learning_rate=0.1, **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_bad_parameters_and_groups(name):
    cls = TORCH[name]
    with pytest.raises(TypeError, match="complex"):
        cls([torch.nn.Parameter(torch.zeros(3, 3, dtype=torch.complex64))], lr=0.1)
    with pytest.raises(ValueError, match="at least 2"):
        cls([{"params": [torch.nn.Parameter(torch.zeros(3))], "rule": name}], lr=0.1)
    opt = cls([torch.nn.Parameter(torch.zeros(3, 3))], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2, 2))], "lr": -1.0})
    assert len(opt.param_groups) == 1
    with pytest.raises(ValueError, match="rule"):
        OPTIM[name](lr=0.1, rules="polargrad")


@pytest.mark.parametrize("name", NAMES)
def test_nan_gradient_raises_before_any_update(name):
    w = torch.nn.Parameter(torch.ones(4, 3) + torch.eye(4, 3))
    b = torch.nn.Parameter(torch.zeros(3))
    opt = TORCH[name]([w, b], lr=0.1)
    w.grad = torch.ones(4, 3)
    b.grad = torch.tensor([1.0, float("nan"), 0.0])
    before = w.detach().clone()
    with pytest.raises(ValueError, match="NaN"):
        opt.step()
    torch.testing.assert_close(w.detach(), before)
    assert not opt.state


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_identically(name):
    torch.manual_seed(0)
    make = lambda: [torch.nn.Parameter(torch.randn(6, 4)), torch.nn.Parameter(torch.randn(4))]  # noqa: E731
    grads = [[torch.randn(6, 4), torch.randn(4)] for _ in range(6)]
    a_params = make()
    b_params = [torch.nn.Parameter(p.detach().clone()) for p in a_params]
    kwargs = {"lr": 0.01} if name != "soap" else {"precondition_frequency": 2}
    a = TORCH[name](a_params, **kwargs)
    for g in grads[:3]:
        _torch_step(a, a_params, [x.numpy() for x in g])
    b = TORCH[name]([p for p in b_params], **kwargs)
    for p, q in zip(b_params, a_params, strict=True):
        p.data.copy_(q.data)
    b.load_state_dict(a.state_dict())
    for g in grads[3:]:
        _torch_step(a, a_params, [x.numpy() for x in g])
        _torch_step(b, b_params, [x.numpy() for x in g])
    for p, q in zip(a_params, b_params, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_parameters_keep_float32_state(name):
    w = torch.nn.Parameter(torch.randn(6, 4, dtype=torch.bfloat16))
    opt = TORCH[name]([w], lr=0.01)
    for _ in range(2):
        w.grad = torch.randn(6, 4, dtype=torch.bfloat16)
        opt.step()
    other = TORCH[name]([torch.nn.Parameter(w.detach().clone())], lr=0.01)
    other.load_state_dict(opt.state_dict())
    for state in (opt.state[w], next(iter(other.state.values()))):
        for key, value in state.items():
            values = value if isinstance(value, tuple | list) else [value]
            for v in values:
                if torch.is_tensor(v) and key != "step":
                    assert v.dtype == torch.float32, key


@pytest.mark.parametrize("name", NAMES)
def test_compiled_step_matches_eager(name):
    torch.manual_seed(0)
    data, target = torch.randn(16, 6), torch.randn(16, 6)

    def run(compiled):
        torch.manual_seed(1)
        # square layers: SOAP's first basis is arbitrary inside the null space of a
        # rank-deficient L (REFERENCE.md §7), and compiled eigh may pick another one
        model = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh(), torch.nn.Linear(6, 6))
        kwargs = {"lr": 0.01, "check_finite": False}
        if name == "normuon":
            kwargs["compute_dtype"] = torch.float32
        if name == "soap":
            kwargs["precondition_frequency"] = 2
        opt = TORCH[name](model.parameters(), **kwargs)

        def train_step():
            opt.zero_grad()
            loss = (model(data) - target).square().mean()
            loss.backward()
            opt.step()
            return loss.detach()

        step = torch.compile(train_step, backend="aot_eager") if compiled else train_step
        return torch.stack([step() for _ in range(4)])

    torch.testing.assert_close(run(True), run(False), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_optax_jit_and_inject_hyperparams(name):
    # everything that shapes the computation is static; the learning rate and decays are not
    static = tuple(_rule_names(name, "optax"))
    tx = optax.inject_hyperparams(OPTAX[name], static_args=static)(learning_rate=0.01)
    params = {"w": jnp.ones((5, 4)) + jnp.eye(5, 4), "b": jnp.zeros(4)}
    state = tx.init(params)
    step = jax.jit(tx.update)
    for i in range(3):
        grads = jax.tree.map(lambda p, i=i: p * (i + 1.0), params)
        updates, state = step(grads, state, params)
        params = optax.apply_updates(params, updates)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(params))
    state.hyperparams["learning_rate"] = jnp.asarray(0.0)
    updates, _ = step(params, state, params)
    assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in jax.tree.leaves(updates))


def test_optax_refuses_traced_static_hyperparameters():
    tx = optax.inject_hyperparams(pl_optax.shampoo)(learning_rate=0.01)
    with pytest.raises(TypeError, match="static_args"):
        tx.init({"w": jnp.ones((3, 3))})


def test_optax_weight_decay_mask():
    params = {"w": jnp.ones((4, 3)) + jnp.eye(4, 3), "v": jnp.ones((3, 3)) + jnp.eye(3)}
    tx = pl_optax.shampoo(0.0, weight_decay=0.5, weight_decay_mask={"w": False, "v": True})
    state = tx.init(params)
    updates, _ = tx.update(params, state, params)
    assert float(jnp.max(jnp.abs(updates["w"]))) == 0.0
    assert float(jnp.max(jnp.abs(updates["v"]))) == 0.0  # γ = 0: no decay either


def test_optax_scale_by_rule_runs_amortized_work_only_when_due():
    """Under jit the roots change only on the steps they are due (lax.cond)."""
    tx = pl_optax.scale_by_shampoo(b1=0.0, b2=0.9, precondition_every=3)
    params = {"w": jnp.eye(4, 3) + 0.1}
    state = tx.init(params)
    update = jax.jit(tx.update)
    roots = []
    for i in range(6):
        _, state = update(jax.tree.map(lambda p, i=i: p * (i + 1.0), params), state)
        roots.append(np.asarray(state.inner["w"].roots[0]))
    assert np.array_equal(roots[0], roots[1]) and not np.array_equal(roots[2], roots[1])
    assert np.array_equal(roots[3], roots[2]) and np.array_equal(roots[4], roots[3])
    assert not np.array_equal(roots[5], roots[4])


@pytest.mark.parametrize("name", ["shampoo", "soap"])
def test_optax_eager_equals_jitted(name):
    """Eagerly the amortized work branches in Python, under jit through lax.cond: same result."""
    kwargs = {"precondition_every": 2} if name == "shampoo" else {"precondition_frequency": 2}
    tx = OPTAX[name](learning_rate=0.01, **kwargs)
    params = {"w": jnp.eye(5, 4) + 0.3, "b": jnp.ones(4)}
    results = []
    for update in (tx.update, jax.jit(tx.update)):
        p, state = params, tx.init(params)
        for i in range(4):
            g = jax.tree.map(lambda x, i=i: jnp.sin(x * (i + 1.0)), p)
            u, state = update(g, state, p)
            p = optax.apply_updates(p, u)
        results.append(p)
    for k in params:
        np.testing.assert_allclose(results[0][k], results[1][k], rtol=1e-12, atol=1e-14)


def test_traced_integer_hyperparameters_name_static_args():
    tx = optax.inject_hyperparams(pl_optax.soap, static_args=("b1", "b2", "eps", "shampoo_beta"))(
        learning_rate=0.01
    )
    with pytest.raises(TypeError, match="static_args"):
        tx.init({"w": jnp.ones((3, 3))})
