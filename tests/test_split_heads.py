"""Fused weights (split, heads) and one-sided rules through the three wrappers.

torch (param groups), optax (``matrix_blocks`` and ``rules`` labels, under
``jax.jit``) and the functional optimizer (per-parameter ``split``/``heads``
and ``rules``) must follow the same trajectory; and a fused weight with
``split`` must move exactly as its blocks would as separate weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import support  # noqa: F401  (enables JAX float64)

from polarlinalg import optim

torch = pytest.importorskip("torch")
optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")
jnp = jax.numpy

import polarlinalg.optax as pl_optax  # noqa: E402
import polarlinalg.torch as pl_torch  # noqa: E402
from polarlinalg.optax import MatrixBlocks  # noqa: E402

# name: (shape (out, in), split, heads, rule)
PARAMS = {
    "qkv": ((12, 4), (4, 4, 4), None, "polargrad"),
    "gate_up": ((10, 3), (5, 5), None, "polargrad"),
    "uneven": ((9, 4), (2, 4, 3), None, "polargrad"),
    "attn": ((12, 5), None, 4, "polargrad"),
    "fused": ((16, 3), (8, 4, 4), 2, "polargrad"),
    "emb": ((9, 4), None, None, "rownorm"),
    "head": ((9, 4), None, None, "polar_right"),
    "router": ((5, 4), None, None, "polar_left"),
    "bias": ((4,), None, None, "adamw"),
}
CONFIGS = {
    "nuclear_momentum": {"momentum": 0.9, "method": "svd"},
    "shape_polar_first": {"momentum": 0.8, "polar_first": True, "scale": "shape", "method": "svd"},
    "rms_nesterov": {"momentum": 0.9, "nesterov": True, "scale": "rms", "method": "qdwh"},
}
STEPS = 4
LR, ADAMW_LR, EPS = 0.02, 0.01, 1e-4


def _problem():
    rng = np.random.default_rng(0)
    x0 = {k: rng.uniform(-1, 1, v[0]) for k, v in PARAMS.items()}
    targets = {k: rng.standard_normal(v[0]) for k, v in PARAMS.items()}

    def grad(params):
        return {k: 2 * p * (p * p - targets[k]) for k, p in params.items()}

    return x0, grad


def _run_optim(cfg, x0, grad):
    opt = optim.PolarGrad(
        LR,
        adamw_lr=ADAMW_LR,
        form_eps=EPS,
        rules={k: v[3] for k, v in PARAMS.items()},
        split={k: v[1] for k, v in PARAMS.items()},
        heads={k: v[2] for k, v in PARAMS.items()},
        **cfg,
    )
    params, state = dict(x0), opt.init(x0)
    for _ in range(STEPS):
        params, state = opt.step(params, grad(params), state)
    return params


def _run_torch(cfg, x0, grad):
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in x0.items()}
    groups = [
        {"params": [params[k]], "split": v[1], "heads": v[2], "rule": v[3]}
        for k, v in PARAMS.items()
    ]
    opt = pl_torch.PolarGrad(groups, lr=LR, adamw_lr=ADAMW_LR, form_eps=EPS, **cfg)
    for _ in range(STEPS):
        g = grad({k: p.detach().numpy() for k, p in params.items()})
        for k, p in params.items():
            p.grad = torch.tensor(g[k])
        opt.step()
    return {k: p.detach().numpy() for k, p in params.items()}


def _run_optax(cfg, x0, grad):
    blocks = {
        k: None if v[1] is None and v[2] is None else MatrixBlocks(v[1], v[2])
        for k, v in PARAMS.items()
    }
    tx = pl_optax.polargrad(
        LR,
        adamw_lr=ADAMW_LR,
        layout="out_in",
        form_eps=EPS,
        rules={k: v[3] for k, v in PARAMS.items()},
        matrix_blocks=blocks,
        **cfg,
    )
    params = {k: jnp.asarray(v) for k, v in x0.items()}
    state = tx.init(params)
    update = jax.jit(tx.update)
    for _ in range(STEPS):
        g = grad({k: np.asarray(p) for k, p in params.items()})
        updates, state = update({k: jnp.asarray(v) for k, v in g.items()}, state, params)
        params = optax.apply_updates(params, updates)
    return {k: np.asarray(p) for k, p in params.items()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_three_wrappers_agree(name):
    x0, grad = _problem()
    want = _run_optim(CONFIGS[name], x0, grad)
    for run in (_run_torch, _run_optax):
        got = run(CONFIGS[name], x0, grad)
        for k in PARAMS:
            assert np.abs(got[k] - x0[k]).max() > 1e-3, k  # every parameter moved
            np.testing.assert_allclose(
                got[k], want[k], rtol=0, atol=1e-8, err_msg=f"{run.__name__} {k}"
            )


def test_fused_weight_moves_as_its_blocks():
    """``split=(4, 4, 4)`` and ``heads`` equal three (six) separate weights, in torch."""
    rng = np.random.default_rng(1)
    fused0 = rng.standard_normal((12, 5))
    grads = [rng.standard_normal((12, 5)) for _ in range(3)]
    fused = torch.nn.Parameter(torch.tensor(fused0))
    parts = [torch.nn.Parameter(torch.tensor(fused0[i : i + 2])) for i in range(0, 12, 2)]
    kw = {"lr": 0.05, "momentum": 0.9, "scale": "shape", "method": "svd"}
    a = pl_torch.PolarGrad([{"params": [fused], "split": (4, 4, 4), "heads": 2}], **kw)
    b = pl_torch.PolarGrad(parts, **kw)
    for g in grads:
        fused.grad = torch.tensor(g)
        for i, p in enumerate(parts):
            p.grad = torch.tensor(g[2 * i : 2 * i + 2])
        a.step()
        b.step()
    joined = torch.cat([p.detach() for p in parts]).numpy()
    np.testing.assert_allclose(fused.detach().numpy(), joined, rtol=0, atol=1e-12)


def test_optax_muon_blocks_move_as_separate_kernels():
    """``muon(matrix_blocks=...)`` on a ``(d, 3k)`` kernel equals three ``(d, k)`` kernels."""
    rng = np.random.default_rng(2)
    k0 = rng.standard_normal((4, 9))
    grads = [rng.standard_normal((4, 9)) for _ in range(3)]
    fused_tx = pl_optax.muon(0.05, method="svd", matrix_blocks=MatrixBlocks(split=(3, 3, 3)))
    split_tx = pl_optax.muon(0.05, method="svd")
    fused = {"w": jnp.asarray(k0)}
    parts = {f"w{i}": jnp.asarray(k0[:, 3 * i : 3 * i + 3]) for i in range(3)}
    fs, ss = fused_tx.init(fused), split_tx.init(parts)
    fu, su = jax.jit(fused_tx.update), jax.jit(split_tx.update)
    for g in grads:
        upd, fs = fu({"w": jnp.asarray(g)}, fs, fused)
        fused = optax.apply_updates(fused, upd)
        gp = {f"w{i}": jnp.asarray(g[:, 3 * i : 3 * i + 3]) for i in range(3)}
        upd, ss = su(gp, ss, parts)
        parts = optax.apply_updates(parts, upd)
    joined = np.concatenate([np.asarray(parts[f"w{i}"]) for i in range(3)], axis=1)
    np.testing.assert_allclose(np.asarray(fused["w"]), joined, rtol=0, atol=1e-12)


def test_muon_wrappers_agree_on_blocks_and_rules():
    """torch and functional Muon with a fused group and a one-sided embedding."""
    rng = np.random.default_rng(3)
    x0 = {"qkv": rng.standard_normal((12, 4)), "emb": rng.standard_normal((9, 4))}
    grads = [{k: rng.standard_normal(v.shape) for k, v in x0.items()} for _ in range(3)]
    kw = {"lr": 0.05, "method": "svd", "form_eps": EPS}
    tp = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in x0.items()}
    topt = pl_torch.Muon(
        [{"params": [tp["qkv"]], "heads": 3}, {"params": [tp["emb"]], "rule": "rownorm"}], **kw
    )
    fopt = optim.Muon(heads={"qkv": 3}, rules={"emb": "rownorm"}, **kw)
    params, state = dict(x0), fopt.init(x0)
    for g in grads:
        for k, p in tp.items():
            p.grad = torch.tensor(g[k])
        topt.step()
        params, state = fopt.step(params, g, state)
    for k in x0:
        np.testing.assert_allclose(tp[k].detach().numpy(), params[k], rtol=0, atol=1e-10)


def test_bad_blocks_raise_in_every_wrapper():
    w = torch.nn.Parameter(torch.zeros(12, 4))
    with pytest.raises(ValueError, match=r"split=\(4, 4, 5\).*\(12, 4\)"):
        pl_torch.PolarGrad([{"params": [w], "split": (4, 4, 5)}], lr=0.1)
    with pytest.raises(ValueError, match=r"heads=5.*\(12, 4\)"):
        pl_torch.Muon([{"params": [w], "heads": 5}], lr=0.1)
    with pytest.raises(ValueError, match="split must be"):
        pl_torch.PolarGrad([w], lr=0.1, split=(4, 0, 8))
    with pytest.raises(ValueError, match=r"parameter 'w'.*heads=5.*\(12, 4\)"):
        optim.PolarGrad(0.1, heads={"w": 5}).init({"w": np.zeros((12, 4))})
    with pytest.raises(ValueError, match="split must be"):
        optim.Muon(split=(3, -1))
    tx = pl_optax.polargrad(0.1, matrix_blocks={"w": MatrixBlocks(split=(4, 4, 5))})
    with pytest.raises(ValueError, match=r"\['w'\].*split=\(4, 4, 5\).*\(12, 4\)"):
        tx.init({"w": jnp.zeros((12, 4))})
    with pytest.raises(ValueError, match="heads must be"):
        pl_optax.scale_by_polargrad(matrix_blocks=MatrixBlocks(heads=0))
    with pytest.raises(ValueError, match="adaptive=True"):
        tx = pl_optax.muon(0.1, adaptive=True, matrix_blocks=MatrixBlocks(split=(2, 3)))
        tx.update({"w": jnp.ones((4, 5))}, tx.init({"w": jnp.ones((4, 5))}))


def test_rule_key_on_a_vector_is_refused():
    b = torch.nn.Parameter(torch.zeros(4))
    with pytest.raises(ValueError, match="at least 2"):
        pl_torch.PolarGrad([{"params": [b], "rule": "rownorm"}], lr=0.1)
