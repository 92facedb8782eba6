"""One configuration, three wrappers: torch, optax and optim follow the same trajectory."""

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

SHAPES = {"w1": (6, 4), "w2": (3, 5), "b": (4,)}
CONFIGS = {
    "polargrad_qdwh": {"method": "qdwh"},
    "momentum_first": {"momentum": 0.9, "method": "svd", "weight_decay": 0.1},
    "polar_first_nesterov": {
        "momentum": 0.9,
        "polar_first": True,
        "nesterov": True,
        "method": "svd",
    },
    "muon_like": {"momentum": 0.95, "nesterov": True, "scale": "shape", "method": "newton_schulz"},
    "rms_zolo": {"momentum": 0.5, "scale": "rms", "scale_factor": 0.5, "method": "zolo"},
}


def _problem():
    rng = np.random.default_rng(0)
    x0 = {k: rng.uniform(-1, 1, s) for k, s in SHAPES.items()}
    targets = {k: rng.standard_normal(s) for k, s in SHAPES.items()}

    def grad(params):  # ∇ of Σ ½‖x ∘ x − t‖² … a smooth non-quadratic problem
        return {k: 2 * p * (p * p - targets[k]) for k, p in params.items()}

    return x0, grad


def _run_optim(cfg, x0, grad, steps=5):
    opt = optim.PolarGrad(0.02, adamw_lr=0.01, **cfg)
    params, state = dict(x0), opt.init(x0)
    for _ in range(steps):
        params, state = opt.step(params, grad(params), state)
    return params


def _run_torch(cfg, x0, grad, steps=5):
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in x0.items()}
    opt = pl_torch.PolarGrad(list(params.values()), lr=0.02, adamw_lr=0.01, **cfg)
    for _ in range(steps):
        g = grad({k: p.detach().numpy() for k, p in params.items()})
        for k, p in params.items():
            p.grad = torch.tensor(g[k])
        opt.step()
    return {k: p.detach().numpy() for k, p in params.items()}


def _run_optax(cfg, x0, grad, steps=5):
    tx = pl_optax.polargrad(0.02, adamw_lr=0.01, layout="out_in", **cfg)
    params = {k: jnp.asarray(v) for k, v in x0.items()}
    state = tx.init(params)
    for _ in range(steps):
        g = {
            k: jnp.asarray(v)
            for k, v in grad({k: np.asarray(p) for k, p in params.items()}).items()
        }
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
    return {k: np.asarray(p) for k, p in params.items()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_trajectory_in_every_wrapper(name):
    x0, grad = _problem()
    want = _run_optim(CONFIGS[name], x0, grad)
    for run in (_run_torch, _run_optax):
        got = run(CONFIGS[name], x0, grad)
        for k in SHAPES:
            assert got[k].dtype == np.float64
            np.testing.assert_allclose(
                got[k], want[k], rtol=0, atol=1e-8, err_msg=f"{run.__name__} {k}"
            )
