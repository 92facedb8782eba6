"""polarlinalg.problems: analytic gradients, seeded data, optimum, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from support import to_f64

from polarlinalg.problems import LogisticRegression, MatrixCompletion, QuadraticRegression

SMALL = {
    "quadratic": (QuadraticRegression, {"m": 12, "n": 4, "p": 20, "q": 7}),
    "logistic": (LogisticRegression, {"m": 10, "n": 4, "samples": 40, "q": 6, "batch_size": 8}),
    "completion": (MatrixCompletion, {"m": 14, "n": 9, "rank": 2, "observed": 0.5}),
}


def _make(name, backend, seed=3, dtype="float64"):
    if backend.dtype(dtype) is None:
        pytest.skip(f"{backend.name} has no {dtype} here")
    cls, sizes = SMALL[name]
    return cls(**sizes, seed=seed, xp=backend.xp, dtype=dtype, device=backend.device)


@pytest.mark.parametrize("name", list(SMALL))
def test_gradient_matches_finite_differences(backend, name):
    """Central differences of the loss along random directions, in float64."""
    prob = _make(name, backend)
    params = prob.init_params()
    batch = prob.sample_batch(np.random.default_rng(0))
    grads = prob.grads(params, batch)
    rng = np.random.default_rng(1)
    eps = 1e-6
    for key in prob.parameter_names:
        direction = rng.standard_normal(tuple(params[key].shape))
        v = backend.asarray(direction, "float64")
        plus = dict(params, **{key: params[key] + eps * v})
        minus = dict(params, **{key: params[key] - eps * v})
        numeric = (float(prob.loss(plus, batch)) - float(prob.loss(minus, batch))) / (2 * eps)
        analytic = float(np.sum(to_f64(backend, grads[key]) * direction))
        assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-8), key


@pytest.mark.parametrize("name", list(SMALL))
def test_same_seed_same_data_on_every_backend(backend, name):
    prob = _make(name, backend, seed=11)
    ref_cls, sizes = SMALL[name]
    ref = ref_cls(**sizes, seed=11, dtype="float64")
    for key in prob.parameter_names:
        np.testing.assert_array_equal(
            to_f64(backend, prob.init_params()[key]), ref.init_params()[key]
        )
    batch = prob.sample_batch(np.random.default_rng(5))
    ref_batch = ref.sample_batch(np.random.default_rng(5))
    assert float(prob.loss(prob.init_params(), batch)) == pytest.approx(
        float(ref.loss(ref.init_params(), ref_batch)), rel=1e-12
    )
    other = ref_cls(**sizes, seed=12, dtype="float64")
    assert float(other.loss(other.init_params())) != float(ref.loss(ref.init_params()))


def test_quadratic_optimum_is_a_stationary_point():
    prob = QuadraticRegression(m=12, n=4, p=20, q=7, seed=2, dtype="float64")
    a, b, c = (np.asarray(t) for t in (prob.a, prob.b, prob.c))
    x_star = np.linalg.pinv(a) @ c @ np.linalg.pinv(b)
    assert np.abs(prob.grads({"X": x_star})["X"]).max() < 1e-9
    assert float(prob.loss({"X": x_star})) == pytest.approx(prob.f_star, rel=1e-12)
    assert prob.reference_loss({"X": x_star}) == pytest.approx(prob.f_star, rel=1e-12)
    # The inverse Hessian step with γ = 1 lands on the optimum (Newton on a quadratic).
    left, right = prob.inverse_gram()
    x0 = prob.init_params()["X"]
    x1 = x0 - left @ prob.grads({"X": x0})["X"] @ right
    np.testing.assert_allclose(x1, x_star, atol=1e-9)
    assert prob.hessian_condition == pytest.approx(np.linalg.cond(a) ** 2 * np.linalg.cond(b) ** 2)


def test_completion_optimum_is_zero():
    prob = MatrixCompletion(m=14, n=9, rank=2, seed=4, dtype="float64")
    rng = np.random.default_rng(4)
    u = rng.standard_normal((14, 2))
    v = rng.standard_normal((9, 2))
    assert float(prob.loss({"X": u, "Y": v})) == pytest.approx(0.0, abs=1e-24)
    assert prob.f_star == 0.0


def test_logistic_batches_are_rows_with_replacement():
    prob = LogisticRegression(m=10, n=4, samples=40, q=6, batch_size=100, seed=0, dtype="float64")
    idx = np.asarray(prob.sample_batch(np.random.default_rng(0)))
    assert idx.shape == (100,) and idx.min() >= 0 and idx.max() < 40
    assert len(np.unique(idx)) < 100  # 100 draws from 40 rows repeat
    labels = np.asarray(prob.c)
    assert set(np.unique(labels)) == {-1.0, 1.0}
    # The full-data loss is the sum of the per-row losses.
    x = prob.init_params()
    total = sum(float(prob.loss(x, np.asarray([i]))) for i in range(40))
    assert float(prob.loss(x)) == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (QuadraticRegression, {"m": 0}, "m must be a positive integer"),
        (QuadraticRegression, {"m": 30, "n": 4, "p": 20, "q": 7}, "p >= m"),
        (QuadraticRegression, {"dtype": "int32"}, "real floating"),
        (LogisticRegression, {"batch_size": 2.5}, "batch_size"),
        (MatrixCompletion, {"observed": 0.0}, "observed"),
        (MatrixCompletion, {"rank": -1}, "rank"),
    ],
)
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_float32_placement():
    prob = QuadraticRegression(m=12, n=4, p=20, q=7, dtype="float32")
    assert prob.a.dtype == np.float32 and prob.init_params()["X"].dtype == np.float32
    assert prob.loss(prob.init_params()).dtype == np.float32
