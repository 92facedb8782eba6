"""polarlinalg.optim: the functional optimizer for any Array API namespace."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support import to_f64

from polarlinalg.optim import AdamWSlot, MatrixSlot, Muon, OptimizerState, PolarGrad


def _params(backend, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w": backend.asarray(rng.standard_normal((6, 4)), "float64"),
        "emb": backend.asarray(rng.standard_normal((10, 3)), "float64"),
        "b": backend.asarray(rng.standard_normal(4), "float64"),
    }


def test_state_layout_and_routing(backend):
    params = _params(backend)
    opt = PolarGrad(0.1, momentum=0.9, rules={"emb": "adamw"})
    state = opt.init(params)
    assert isinstance(state, OptimizerState) and state.count == 0
    assert isinstance(state.slots["w"], MatrixSlot)
    assert isinstance(state.slots["emb"], AdamWSlot)  # sent to AdamW by `rules`
    assert isinstance(state.slots["b"], AdamWSlot)  # a vector: AdamW automatically
    assert tuple(state.slots["w"].momentum.shape) == (6, 4)
    assert PolarGrad(0.1).init(params).slots["w"].momentum is None  # β = 0: no buffer


def test_lists_callables_and_none_gradients(backend):
    params = list(_params(backend).values())
    opt = PolarGrad(lambda count: 0.1 / (count + 1), rules=lambda key, x: "auto")
    state = opt.init(params)
    grads = [params[0], None, params[2]]
    new, state = opt.step(params, grads, state)
    assert isinstance(new, list) and len(new) == 3
    assert new[1] is params[1]  # no gradient: untouched
    assert not np.allclose(to_f64(backend, new[0]), to_f64(backend, params[0]))
    assert state.count == 1


def test_step_does_not_modify_its_inputs(backend):
    params = _params(backend)
    before = {k: to_f64(backend, v).copy() for k, v in params.items()}
    opt = PolarGrad(0.1, momentum=0.9)
    state = opt.init(params)
    opt.step(params, params, state)
    for k, v in params.items():
        assert np.array_equal(to_f64(backend, v), before[k])


def test_nan_gradient_raises_and_leaves_state(backend):
    params = _params(backend)
    opt = PolarGrad(0.1, momentum=0.9)
    state = opt.init(params)
    bad = dict(params)
    g = to_f64(backend, params["w"])
    g[0, 0] = np.nan
    bad["w"] = backend.asarray(g, "float64")
    with pytest.raises(ValueError, match=r"parameter 'w' \(shape \(6, 4\)\) contains NaN"):
        opt.step(params, bad, state)
    assert state.count == 0
    assert np.array_equal(to_f64(backend, state.slots["w"].momentum), np.zeros((6, 4)))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_adamw_gradient_raises_naming_it(backend, bad):
    """The check covers the AdamW parameters too; list parameters are named by index."""
    params = list(_params(backend).values())
    opt = PolarGrad(0.1, momentum=0.9)
    state = opt.init(params)
    g = to_f64(backend, params[2])
    g[1] = bad
    grads = [params[0], params[1], backend.asarray(g, "float64")]
    with pytest.raises(ValueError, match=r"parameter 2 \(shape \(4,\)\) contains NaN or inf"):
        opt.step(params, grads, state)
    assert state.count == 0
    assert np.array_equal(to_f64(backend, state.slots[2].mu), np.zeros(4))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("method", ["qdwh", "zolo", "newton", "svd"])
def test_non_finite_gradient_propagates_without_the_check(backend, method):
    params = _params(backend)
    opt = PolarGrad(0.1, momentum=0.9, method=method, check_finite=False)
    state = opt.init(params)
    g = to_f64(backend, params["w"])
    g[0, 0] = math.nan
    grads = {**params, "w": backend.asarray(g, "float64")}
    new, state = opt.step(params, grads, state)
    assert np.isnan(to_f64(backend, new["w"])).all()
    assert np.isfinite(to_f64(backend, new["emb"])).all()
    assert state.count == 1


def test_muon_matches_torch_formula_in_float64(backend):
    """Muon with torch.optim.Muon's semantics, computed in float64 and checked to 1e-10."""
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((8, 5))
    grads = [rng.standard_normal((8, 5)) for _ in range(4)]
    lr, wd, mu, (a, b, c) = 0.02, 0.1, 0.95, (3.4445, -4.775, 2.0315)

    def ns(g):
        x = g.T / max(np.linalg.norm(g), 1e-7)
        for _ in range(5):
            gram = x @ x.T
            x = a * x + (b * gram + c * gram @ gram) @ x
        return x.T

    x, buf = x0.copy(), np.zeros_like(x0)
    opt = Muon(lr=lr)
    params = [backend.asarray(x0, "float64")]
    state = opt.init(params)
    for g in grads:
        buf = buf + (1 - mu) * (g - buf)
        update = g + mu * (buf - g)
        x = x * (1 - lr * wd) - lr * math.sqrt(8 / 5) * ns(update)
        params, state = opt.step(params, [backend.asarray(g, "float64")], state)
        assert np.allclose(to_f64(backend, params[0]), x, rtol=0, atol=1e-10)


def test_match_rms_adamw_scale():
    x0 = np.zeros((3, 12))
    g = np.random.default_rng(2).standard_normal((3, 12))
    opt = Muon(
        lr=1.0,
        weight_decay=0.0,
        momentum=0.0,
        adjust_lr_fn="match_rms_adamw",
        ns_steps=30,
        coefficients="polar_express",
    )
    (x,), _ = opt.step([x0], [g], opt.init([x0]))
    p, _, qh = np.linalg.svd(g, full_matrices=False)
    assert np.allclose(x, -0.2 * math.sqrt(12) * (p @ qh), atol=1e-6)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: PolarGrad(-1.0), ValueError, "lr must be a finite number >= 0"),
        (lambda: PolarGrad(0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (lambda: PolarGrad(0.1, method="nope"), ValueError, "unknown polar method"),
        (lambda: PolarGrad(0.1, scale="frobenius"), ValueError, "unknown scale"),
        (lambda: PolarGrad(0.1, weight_decay=-1), ValueError, "weight_decay"),
        (lambda: PolarGrad(0.1, adamw_betas=(0.9,)), ValueError, "adamw_betas"),
        (lambda: PolarGrad(0.1, adamw_lr=-2), ValueError, "adamw_lr"),
        (lambda: PolarGrad(0.1, rules="sgd"), ValueError, "unknown rule 'sgd'"),
        (lambda: Muon(adjust_lr_fn="sqrt"), ValueError, "adjust_lr_fn 'sqrt' is not supported"),
        (lambda: Muon(ns_coefficients=(1.0, 2.0)), ValueError, "three numbers"),
        (lambda: Muon(ns_steps=0), ValueError, "ns_steps must be a positive integer"),
        (lambda: PolarGrad(0.1, compute_dtype="bf16"), ValueError, "compute_dtype must be None"),
        (lambda: PolarGrad(0.1, compute_dtype="float16"), ValueError, "'qdwh' factorizes"),
        (lambda: Muon(compute_dtype="bf16"), ValueError, "compute_dtype must be None"),
        (
            lambda: PolarGrad(np.array([0.01, 0.02])),
            ValueError,
            r"lr must be a number or a 0-d array; got an array of shape \(2,\)",
        ),
        (lambda: Muon(lr=np.ones(2)), ValueError, "lr must be a number or a 0-d array"),
        (lambda: PolarGrad(0.1, check_finite=None), TypeError, "check_finite must be True"),
    ],
)
def test_bad_hyperparameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_calls():
    params = {"w": np.ones((3, 2)), "b": np.ones(2)}
    opt = PolarGrad(0.1)
    state = opt.init(params)
    with pytest.raises(ValueError, match="same keys"):
        opt.step(params, {"w": np.ones((3, 2))}, state)
    with pytest.raises(ValueError, match=r"gradient 'w' has shape \(2, 3\)"):
        opt.step(params, {"w": np.ones((2, 3)), "b": np.ones(2)}, state)
    with pytest.raises(TypeError, match="OptimizerState"):
        opt.step(params, params, {"count": 0})
    with pytest.raises(ValueError, match="needs at least 2"):
        PolarGrad(0.1, rules={"b": "polargrad"}).init(params)
    with pytest.raises(TypeError, match="must be floating"):
        opt.init({"w": np.ones((2, 2), dtype=np.int64)})
    with pytest.raises(TypeError, match="dict or a list"):
        opt.init(np.ones((2, 2)))
    # a dtype the namespace lacks fails at init, not at the first step
    bf16 = PolarGrad(0.1, method="polar_express", compute_dtype="bfloat16")
    with pytest.raises(ValueError, match=r"compute_dtype='bfloat16'.*no dtype named 'bfloat16'"):
        bf16.init(params)
