"""polarlinalg.optax against optax.contrib.muon, under jit and inject_hyperparams."""

from __future__ import annotations

import numpy as np
import pytest

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")
jnp = jax.numpy

from polarlinalg.optax import ScaleByPolarGradState, muon, polargrad, scale_by_polargrad  # noqa: E402


def _tree(seed=0, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    return {
        "a": jnp.asarray(rng.standard_normal((32, 48)), dtype),
        "b": jnp.asarray(rng.standard_normal((40, 16)), dtype),
        "bias": jnp.asarray(rng.standard_normal(16), dtype),
        "conv": jnp.asarray(rng.standard_normal((3, 4, 5)), dtype),
    }


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.maximum(jnp.linalg.norm(a), 1e-30))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"nesterov": False},
        {"adaptive": True},
        {"weight_decay": 0.1, "consistent_rms": 0.2},
        {
            "ns_coeffs": (
                (4.0848, -6.8946, 2.9270),
                (3.9505, -6.3029, 2.6377),
                (3.7418, -5.5913, 2.3037),
            )
        },
        {"beta": 0.9, "ns_steps": 4, "adam_weight_decay": 0.01},
    ],
    ids=["default", "no_nesterov", "adaptive", "decay_rms", "row_schedule", "beta_steps"],
)
def test_muon_matches_optax_contrib_muon(kwargs):
    """Relative difference per leaf ≤ 1e-5 over 5 steps (float32, same coefficients)."""
    params = _tree()
    ref, ours = optax.contrib.muon(0.02, **kwargs), muon(0.02, **kwargs)
    s_ref, s_ours = ref.init(params), ours.init(params)
    update = jax.jit(ours.update)
    rng = np.random.default_rng(1)
    for _ in range(5):
        grads = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)
        u_ref, s_ref = ref.update(grads, s_ref, params)
        u_ours, s_ours = update(grads, s_ours, params)
        for key in params:
            assert _rel(u_ref[key], u_ours[key]) <= 1e-5, key
        params = optax.apply_updates(params, u_ref)


def test_muon_with_an_accurate_polar_factor():
    """method='qdwh' gives an orthogonal update direction (times the shape factor)."""
    g = {"w": jnp.asarray(np.random.default_rng(2).standard_normal((12, 8)), jnp.float32)}
    tx = muon(1.0, method="qdwh", beta=0.0, nesterov=False)
    u, _ = tx.update(g, tx.init(g), g)
    d = -np.asarray(u["w"], np.float64)
    assert np.abs(d.T @ d - np.eye(8)).max() < 1e-5


def test_polargrad_state_and_jit():
    params = _tree()
    tx = polargrad(0.01, momentum=0.9, method="polar_express")
    state = tx.init(params)
    update = jax.jit(tx.update)
    u, state = update(params, state, params)
    assert set(u) == set(params)
    inner = state.inner_states["polargrad"].inner_state[0]
    assert isinstance(inner, ScaleByPolarGradState)
    assert int(inner.count) == 1
    adam = state.inner_states["adamw"].inner_state[0]
    assert adam.mu["bias"].shape == (16,)


def test_inject_hyperparams():
    params = _tree()
    tx = optax.inject_hyperparams(polargrad, static_args=("steps",))(
        learning_rate=0.1, momentum=0.9, steps=6, method="newton_schulz"
    )
    state = tx.init(params)
    update = jax.jit(tx.update)
    u1, state = update(params, state, params)
    state.hyperparams["learning_rate"] = jnp.asarray(0.05)
    u2, state = update(params, state, params)
    assert np.isfinite(np.asarray(u2["a"])).all()
    # the learning rate really is the injected one: same direction, half-ish size
    assert float(jnp.linalg.norm(u2["bias"])) < float(jnp.linalg.norm(u1["bias"]))


def test_traced_steps_get_a_clear_error():
    params = _tree()
    tx = optax.inject_hyperparams(polargrad)(learning_rate=0.1, steps=6, method="newton_schulz")
    state = tx.init(params)
    with pytest.raises(TypeError, match="static_args=\\('steps',\\)"):
        jax.jit(tx.update)(params, state, params)


def test_mu_dtype_for_bfloat16_params():
    params = {"w": jnp.ones((8, 4), jnp.bfloat16) + jnp.eye(8, 4, dtype=jnp.bfloat16)}
    tx = polargrad(0.01, momentum=0.9, mu_dtype=jnp.float32)
    state = tx.init(params)
    u, state = jax.jit(tx.update)(params, state, params)
    assert u["w"].dtype == jnp.bfloat16
    assert state.inner_states["polargrad"].inner_state[0].mu["w"].dtype == jnp.float32


def test_rules_send_leaves_to_either_rule():
    params = _tree()
    labels = {"a": "adamw", "b": "polargrad", "bias": "adamw", "conv": "polargrad"}
    tx = polargrad(0.01, rules=labels)
    state = tx.init(params)
    mu = state.inner_states["adamw"].inner_state[0].mu
    assert mu["a"].shape == (32, 48)
    u, _ = tx.update(params, state, params)
    assert u["conv"].shape == (3, 4, 5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradient_raises_naming_the_leaf(bad):
    """Eagerly every leaf is checked (AdamW ones too) and named; under jit NaN propagates."""
    params = _tree()
    tx = polargrad(0.01, momentum=0.9, method="qdwh")
    state = tx.init(params)
    grads = {**params, "bias": params["bias"].at[3].set(bad)}
    with pytest.raises(ValueError, match=r"parameter \['bias'\] \(shape \(16,\)\) contains NaN"):
        tx.update(grads, state, params)
    u, _ = jax.jit(tx.update)(grads, state, params)  # values cannot be checked: NaN propagates
    assert np.isnan(np.asarray(u["bias"][3]))
    assert np.isfinite(np.asarray(u["a"])).all()
    alone = scale_by_polargrad()
    matrices = {"w": params["a"].at[0, 0].set(bad)}
    with pytest.raises(ValueError, match=r"parameter \['w'\] \(shape \(32, 48\)\)"):
        alone.update(matrices, alone.init(matrices))


@pytest.mark.parametrize("method", ["qdwh", "zolo", "newton", "svd"])
def test_non_finite_gradient_propagates_without_the_check(method):
    params = _tree()
    tx = polargrad(0.01, momentum=0.9, method=method, check_finite=False)
    state = tx.init(params)
    grads = {**params, "a": params["a"].at[1, 2].set(np.inf)}
    u, _ = tx.update(grads, state, params)
    assert np.isnan(np.asarray(u["a"])).all()
    assert np.isfinite(np.asarray(u["b"])).all()


def test_scale_by_polargrad_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        scale_by_polargrad().init({"v": jnp.zeros(3)})


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: polargrad(-0.1), ValueError, "learning_rate must be a finite number >= 0"),
        (lambda: polargrad(0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (lambda: polargrad(0.1, method="nope"), ValueError, "unknown polar method"),
        (lambda: polargrad(0.1, scale="nope"), ValueError, "unknown scale"),
        (lambda: polargrad(0.1, weight_decay=-1.0), ValueError, "weight_decay"),
        (lambda: muon(0.1, ns_coeffs="nope"), ValueError, "unknown ns_coeffs preset"),
        (lambda: muon(0.1, ns_coeffs=(1.0, 2.0)), ValueError, "shape"),
        (lambda: muon(0.1, beta=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (lambda: muon(0.1, method="nope"), ValueError, "unknown polar method"),
        (lambda: polargrad(0.1, compute_dtype="bf16"), ValueError, "compute_dtype must be None"),
        (lambda: polargrad(0.1, compute_dtype=jnp.bfloat16), ValueError, "'qdwh' factorizes"),
        (lambda: scale_by_polargrad(compute_dtype="f32"), ValueError, "compute_dtype must be"),
        (lambda: muon(0.1, compute_dtype="bf16"), ValueError, "compute_dtype must be None"),
        (
            lambda: polargrad(jnp.asarray([0.01, 0.02])),
            ValueError,
            r"learning_rate must be a number or a 0-d array; got an array of shape \(2,\)",
        ),
        (lambda: muon(jnp.ones(2)), ValueError, "learning_rate must be a number or a 0-d"),
        (lambda: polargrad(0.1, check_finite=1), TypeError, "check_finite must be True or False"),
    ],
)
def test_bad_hyperparameters(make, error, match):
    with pytest.raises(error, match=match):
        make()
