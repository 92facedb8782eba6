"""The public API as a user types it: checked with mypy (tests/test_typing.py), and runnable.

Not a test module (pytest collects ``test_*.py`` only); ``python
tests/typecheck/typed_usage.py`` runs it.  Every annotation below is one a
user would write, so mypy fails when a public signature stops accepting or
returning what the docs promise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

import polarlinalg as pl
from polarlinalg import diagnostics
from polarlinalg.optax import labels, muon, polargrad, scale_by_polargrad
from polarlinalg.optim import Muon as NumpyMuon
from polarlinalg.optim import OptimizerState
from polarlinalg.optim import PolarGrad as NumpyPolarGrad
from polarlinalg.torch import Muon, NorMuon, PolarGrad, param_groups


def factors() -> None:
    """``polar``, ``orthogonalize``, ``inv_root`` and the diagnostics on NumPy arrays."""
    a = np.random.default_rng(0).standard_normal((64, 32))
    result: pl.PolarResult = pl.polar(a)
    u, h = result
    assert result.u is u and result.h is h
    (u2, h2), info = pl.polar(a, "left", method="zolo", return_info=True)
    iterations: int | None = info.iterations  # None for method="svd"
    converged = info.converged  # one bool per matrix of the stack
    u3 = pl.orthogonalize(a, method="newton_schulz", coefficients="muon", steps=5)
    u4, info4 = pl.orthogonalize(a, return_info=True)
    rows: tuple[tuple[float, float, float], ...] = pl.polar_express_coefficients(
        lower=1e-3, steps=6
    )
    u5 = pl.orthogonalize(a, coefficients=rows, steps=6)
    root = pl.inv_root(a.T @ a, 4, eps=1e-6, method="newton")
    errors = [float(diagnostics.orthogonality_error(x)) for x in (u, u2, u3, u4, u5)]
    scale = float(diagnostics.nuclear_norm(a, u3))
    gap = float(diagnostics.polar_gap(a, u3))
    kappa = float(diagnostics.condition_number(a))
    backward = float(diagnostics.backward_error(a, u, h))
    methods: tuple[str, ...] = tuple(pl.METHODS)
    print(
        f"polar: {max(errors):.1e}, {iterations} iterations (converged {converged}), "
        f"‖A‖_* {scale:.2f}, gap {gap:.1e}, κ {kappa:.1f}, backward {backward:.1e}, "
        f"root {root.shape}, h {h2.shape}, {info4.method}, {len(methods)} methods"
    )


def torch_optimizers() -> None:
    """``param_groups`` and the ``torch.optim`` optimizers."""
    model = torch.nn.Sequential(
        torch.nn.Embedding(32, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 32)
    )
    groups: list[dict[str, object]] = param_groups(model, options={"adamw": {"lr": 1e-3}})
    opt: torch.optim.Optimizer = PolarGrad(groups, lr=0.02, momentum=0.95, scale="shape")
    matrices = [p for p in model.parameters() if p.ndim == 2]
    drop_in: torch.optim.Optimizer = Muon(matrices, lr=0.02, weight_decay=0.1)
    normuon: torch.optim.Optimizer = NorMuon(matrices, lr=0.02)
    loss = model(torch.randint(32, (8,))).square().mean()
    loss.backward()
    for o in (opt, drop_in, normuon):
        o.step()
        o.zero_grad()
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))
    schedule.step()
    print(f"torch: {len(groups)} groups, {len(opt.state)} states")


def optax_optimizers() -> None:
    """``labels`` and the optax transformations."""
    params = {"embed": jnp.ones((32, 8)), "w": jnp.ones((8, 4)) + jnp.eye(8, 4), "b": jnp.zeros(4)}
    tx: optax.GradientTransformation = polargrad(0.02, momentum=0.9, scale="shape")
    drop_in: optax.GradientTransformation = muon(0.02)
    chained = optax.partition(
        {
            "polargrad": optax.chain(scale_by_polargrad(momentum=0.9), optax.scale(-0.02)),
            "adamw": optax.adamw(1e-3),
        },
        labels(params),
    )
    for t in (tx, drop_in, chained):
        state = t.init(params)
        updates, state = t.update(params, state, params)
        params = optax.apply_updates(params, updates)
    leaves: list[jax.Array] = jax.tree.leaves(params)
    print(f"optax: {len(leaves)} leaves")


def functional_optimizers() -> None:
    """``polarlinalg.optim`` on NumPy."""
    params: dict[str, np.ndarray] = {"w": np.eye(8, 4), "b": np.zeros(4)}
    for opt in (NumpyPolarGrad(lr=0.01, momentum=0.9), NumpyMuon(lr=0.02)):
        state: OptimizerState = opt.init(params)
        grads = {k: np.ones_like(v) for k, v in params.items()}
        params, state = opt.step(params, grads, state)
    print(f"optim: {sorted(params)}")


if __name__ == "__main__":
    factors()
    torch_optimizers()
    optax_optimizers()
    functional_optimizers()
