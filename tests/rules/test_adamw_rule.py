"""The AdamW rule against its formula, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from support import to_f64

from polarlinalg._rules import AdamWRule
from polarlinalg.optim import PolarGrad


def reference_adamw(x0, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-8):
    x, m, v, out = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        x = x * (1 - lr * wd) - lr * step
        out.append(x)
    return out


def test_vectors_follow_adamw(backend):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(5)]
    want = reference_adamw(x0, grads, lr=0.01, wd=0.1, b1=0.8, b2=0.99, eps=1e-6)
    opt = PolarGrad(
        0.5, adamw_lr=0.01, adamw_betas=(0.8, 0.99), adamw_eps=1e-6, adamw_weight_decay=0.1
    )
    params = {"b": backend.asarray(x0, "float64")}
    state = opt.init(params)
    for g, w in zip(grads, want, strict=True):
        params, state = opt.step(params, {"b": backend.asarray(g, "float64")}, state)
        assert np.allclose(to_f64(backend, params["b"]), w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"b1": 1.0}, "beta1"), ({"b2": -0.5}, "beta2"), ({"eps": -1.0}, "eps")],
)
def test_bad_adamw_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdamWRule(**kwargs)
