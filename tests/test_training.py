"""A small MLP on synthetic data trains with every wrapper: the loss goes down."""

from __future__ import annotations

import numpy as np
import pytest

from polarlinalg import optim

STEPS = 40


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((128, 8))
    teacher = rng.standard_normal((8, 16)) / np.sqrt(8), rng.standard_normal((16, 2)) / 4
    y = np.tanh(x @ teacher[0]) @ teacher[1]
    init = {
        "w1": rng.standard_normal((8, 16)) / np.sqrt(8),
        "b1": np.zeros(16),
        "w2": rng.standard_normal((16, 2)) / 4,
        "b2": np.zeros(2),
    }
    return x, y, init


def _numpy_loss_and_grads(p, x, y):
    h = np.tanh(x @ p["w1"] + p["b1"])
    out = h @ p["w2"] + p["b2"]
    r = out - y
    loss = float(np.mean(r**2))
    d_out = 2 * r / r.size
    d_h = (d_out @ p["w2"].T) * (1 - h**2)
    grads = {"w1": x.T @ d_h, "b1": d_h.sum(0), "w2": h.T @ d_out, "b2": d_out.sum(0)}
    return loss, grads


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.PolarGrad(0.5, momentum=0.9, adamw_lr=0.01),
        lambda: optim.Muon(lr=0.05, weight_decay=0.0),
    ],
    ids=["PolarGrad", "Muon"],
)
def test_numpy_optim_trains(make):
    x, y, params = _data()
    opt = make()
    state = opt.init(params)
    first, _ = _numpy_loss_and_grads(params, x, y)
    for _ in range(STEPS):
        loss, grads = _numpy_loss_and_grads(params, x, y)
        params, state = opt.step(params, grads, state)
    assert loss < 0.3 * first


@pytest.mark.parametrize("which", ["PolarGrad", "PolarGrad_polar_first", "Muon"])
def test_torch_trains(which):
    torch = pytest.importorskip("torch")
    import polarlinalg.torch as pl_torch

    x, y, init = _data()
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(init["w1"].T))
        model[2].weight.copy_(torch.tensor(init["w2"].T))
    model = model.double()
    if which == "Muon":
        matrices = [model[0].weight, model[2].weight]
        vectors = [model[0].bias, model[2].bias]
        opts = [
            pl_torch.Muon(matrices, lr=0.05, weight_decay=0.0),
            torch.optim.AdamW(vectors, 0.01),
        ]
    else:
        first = which == "PolarGrad_polar_first"
        opts = [
            pl_torch.PolarGrad(
                model.parameters(), lr=0.5, momentum=0.9, polar_first=first, adamw_lr=0.01
            )
        ]
    xt, yt = torch.tensor(x), torch.tensor(y)
    losses = []
    for _ in range(STEPS):
        loss = (model(xt) - yt).square().mean()
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]


@pytest.mark.parametrize("which", ["polargrad", "muon"])
def test_optax_trains(which):
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    import polarlinalg.optax as pl_optax

    jnp = jax.numpy
    x, y, init = _data()
    params = {k: jnp.asarray(v, jnp.float32) for k, v in init.items()}
    xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

    def loss_fn(p):
        return jnp.mean((jnp.tanh(xj @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"] - yj) ** 2)

    if which == "muon":
        tx = pl_optax.muon(0.05, adam_learning_rate=0.01)
    else:
        tx = pl_optax.polargrad(0.5, momentum=0.9, adamw_lr=0.01)
    state = tx.init(params)

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(loss_fn)(p)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    losses = []
    for _ in range(STEPS):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]
