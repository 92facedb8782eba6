"""The matrix rule against formulas written out here in NumPy float64.

Every variant runs 5 steps of a random quadratic problem
``f(X) = ½‖A X B − C‖²_F`` through :class:`polarlinalg.optim.PolarGrad` with
``method="svd"`` on each backend, and must follow the reference trajectory to
1e-10 (relative to the size of the iterate).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support import to_f64

from polarlinalg._rules import PolarGradRule, apply_update, as_matrices, polargrad_direction
from polarlinalg.optim import PolarGrad

STEPS = 5


def polar_u(a: np.ndarray) -> np.ndarray:
    """Polar factor of each matrix in a stack, by SVD in float64."""
    p, _, qh = np.linalg.svd(a, full_matrices=False)
    return p @ qh


def inner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.real(np.sum(np.conj(a) * b, axis=(-2, -1), keepdims=True))


def reference_direction(cfg: dict, g: np.ndarray, buf: np.ndarray | None, t: int):
    """The formulas of the PolarGrad family, written out independently of the library."""
    beta = cfg.get("momentum", 0.0)
    nesterov = cfg.get("nesterov", False)
    m, n = g.shape[-2:]
    scale = cfg.get("scale", "nuclear")
    const = (
        cfg.get("scale_factor", 1.0)
        * {
            "nuclear": 1.0,
            "none": 1.0,
            "shape": math.sqrt(max(1.0, m / n)),
            "rms": 0.2 * math.sqrt(max(m, n)),
        }[scale]
    )

    def average(buf, x):
        new = beta * buf + (1 - beta) * x
        if cfg.get("bias_correction"):
            if nesterov:
                return beta * new / (1 - beta ** (t + 1)) + (1 - beta) * x / (1 - beta**t), new
            return new / (1 - beta**t), new
        return (beta * new + (1 - beta) * x if nesterov else new), new

    if cfg.get("polar_first"):
        u = polar_u(g)
        s = inner(g, u) if scale == "nuclear" else 1.0
        if beta == 0:
            return s * const * u, None
        look, buf = average(buf, u)
        return s * const * look, buf
    look = g
    if beta:
        look, buf = average(buf, g)
    u = polar_u(look)
    s = inner(look, u) if scale == "nuclear" else 1.0
    return s * const * u, buf


def quadratic(seed: int, shape: tuple[int, ...]):
    """``f(X) = ½‖A X B − C‖²`` for a stack of ``m × n`` matrices ``X``."""
    rng = np.random.default_rng(seed)
    m, n = shape[-2:]
    a = rng.standard_normal((m + 3, m)) / math.sqrt(m)
    b = rng.standard_normal((n, n + 2)) / math.sqrt(n)
    c = rng.standard_normal((*shape[:-2], m + 3, n + 2))
    x0 = rng.uniform(-1, 1, shape)

    def grad(x):
        return a.T @ (a @ x @ b - c) @ b.T

    return x0, grad


def reference_trajectory(cfg: dict, lr: float, wd: float, x0, grad, flatten=False):
    x, buf, out = x0.copy(), None, []
    if cfg.get("momentum", 0.0):
        buf = np.zeros_like(x0.reshape(x0.shape[0], -1) if flatten else x0)
    for t in range(1, STEPS + 1):
        g = grad(x)
        gm = g.reshape(g.shape[0], -1) if flatten else g
        d, buf = reference_direction(cfg, gm, buf, t)
        x = (1 - lr * wd) * x - lr * d.reshape(x.shape)
        out.append(x.copy())
    return out


VARIANTS = {
    "polargrad": {},
    "momentum_first": {"momentum": 0.9},
    "momentum_first_nesterov": {"momentum": 0.9, "nesterov": True},
    "polar_first": {"momentum": 0.9, "polar_first": True},
    "polar_first_nesterov": {"momentum": 0.8, "polar_first": True, "nesterov": True},
    "polar_first_no_momentum": {"polar_first": True},
    "scale_none": {"momentum": 0.5, "scale": "none"},
    "scale_shape": {"momentum": 0.5, "scale": "shape"},
    "scale_rms": {"scale": "rms", "scale_factor": 2.0},
    "nuclear_times_constant": {"momentum": 0.5, "scale_factor": 0.5},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("shape", [(7, 4), (4, 7)], ids=["tall", "wide"])
def test_trajectory_matches_formula(backend, variant, shape):
    cfg = VARIANTS[variant]
    lr, wd = 0.05, 0.1
    x0, grad = quadratic(0, shape)
    want = reference_trajectory(cfg, lr, wd, x0, grad)
    opt = PolarGrad(lr, weight_decay=wd, method="svd", **cfg)
    params = {"w": backend.asarray(x0, "float64")}
    state = opt.init(params)
    for t in range(STEPS):
        g = grad(to_f64(backend, params["w"]))
        params, state = opt.step(params, {"w": backend.asarray(g, "float64")}, state)
        got = to_f64(backend, params["w"])
        assert np.linalg.norm(got - want[t]) <= 1e-10 * np.linalg.norm(want[t]), (variant, t)
    assert state.count == STEPS


@pytest.mark.parametrize("flatten", [False, True], ids=["batch", "flatten"])
def test_higher_dimensional_parameters(backend, flatten):
    """A 4-D weight: a batch of matrices (each its own scale) or one (out, -1) matrix."""
    cfg = {"momentum": 0.9}
    x0, grad = quadratic(1, (3, 2, 5, 4))
    want = reference_trajectory(cfg, 0.05, 0.0, x0, grad, flatten=flatten)
    opt = PolarGrad(0.05, method="svd", flatten=flatten, **cfg)
    params = [backend.asarray(x0, "float64")]
    state = opt.init(params)
    for t in range(STEPS):
        g = grad(to_f64(backend, params[0]))
        params, state = opt.step(params, [backend.asarray(g, "float64")], state)
        assert np.allclose(to_f64(backend, params[0]), want[t], rtol=0, atol=1e-10)


@pytest.mark.parametrize("nesterov", [False, True])
def test_bias_correction(nesterov):
    """The optax convention: momentum divided by 1 − βᵗ."""
    import numpy as xp

    cfg = {"momentum": 0.9, "nesterov": nesterov, "bias_correction": True}
    rule = PolarGradRule(method="svd", **cfg)
    x0, grad = quadratic(2, (6, 4))
    want = reference_trajectory(cfg, 0.1, 0.0, x0, grad)
    x, buf = x0.copy(), np.zeros_like(x0)
    for t in range(1, STEPS + 1):
        d, buf = polargrad_direction(xp, rule, grad(x), buf, t)
        x = apply_update(x, d, 0.1, 0.0)
        assert np.allclose(x, want[t - 1], rtol=0, atol=1e-12)


def test_complex_parameters():
    """Complex weights: the nuclear scale is Re⟨M, U⟩ = tr(H), real."""
    rng = np.random.default_rng(3)
    g = rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))
    rule = PolarGradRule(method="svd")
    d, _ = polargrad_direction(np, rule, g, None)
    want = np.sum(np.linalg.svd(g, compute_uv=False)) * polar_u(g)
    assert np.allclose(d, want, rtol=0, atol=1e-12)


def test_nuclear_scale_is_the_nuclear_norm(backend):
    """With an accurate polar factor (QDWH), ⟨G, U⟩ equals ‖G‖_* (the paper's tr(H))."""
    rng = np.random.default_rng(4)
    g = rng.standard_normal((2, 9, 6))
    rule = PolarGradRule(method="qdwh")
    d, _ = polargrad_direction(backend.xp, rule, backend.asarray(g, "float64"), None)
    d = to_f64(backend, d)
    nuc = np.linalg.svd(g, compute_uv=False).sum(axis=-1)
    assert np.allclose(d, nuc[:, None, None] * polar_u(g), rtol=0, atol=1e-10 * nuc.max())


def test_null_gradient_consistency():
    """A zero gradient gives a zero PolarGrad step (Muon's unscaled U would not be zero)."""
    rule = PolarGradRule(method="qdwh")
    d, _ = polargrad_direction(np, rule, np.zeros((4, 3)), None)
    assert np.array_equal(d, np.zeros((4, 3)))


def test_as_matrices_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        as_matrices(np.zeros(3), flatten=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\)"),
        ({"momentum": -0.1}, ValueError, r"momentum must be in \[0, 1\)"),
        ({"momentum": "0.9"}, TypeError, "momentum must be a number"),
        ({"method": "qr"}, ValueError, "unknown polar method 'qr'"),
        ({"scale": "spectral"}, ValueError, "unknown scale 'spectral'"),
        ({"layout": "rows"}, ValueError, "unknown layout 'rows'"),
        ({"steps": 0}, ValueError, "steps must be a positive integer"),
        ({"coefficients": "nope", "method": "newton_schulz"}, ValueError, "nope"),
        ({"nesterov": 1}, TypeError, "nesterov must be True or False"),
        ({"scale_factor": float("nan")}, ValueError, "scale_factor must be a finite"),
        ({"method_options": {"restart": 2}}, TypeError, "restart"),
        ({"compute_dtype": "bf16"}, ValueError, "compute_dtype must be None, a floating dtype"),
        ({"compute_dtype": "bfloat16"}, ValueError, "'qdwh' factorizes"),
        ({"momentum": np.array([0.9, 0.5])}, ValueError, "momentum must be a number or a 0-d"),
        ({"momentum": np.array(1.5)}, ValueError, r"momentum must be in \[0, 1\)"),
    ],
)
def test_rule_rejects_bad_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        PolarGradRule(**kwargs)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("method", ["qdwh", "zolo", "newton", "svd", "polar_express"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_matrix_gives_nan_without_the_check(backend, method, bad):
    """check_finite=False: a matrix holding NaN/inf gets a NaN direction, on every backend.

    The backend's factorization may raise on it (torch.linalg.cholesky and
    torch.linalg.svd, NumPy's SVD); the rule factorizes zeros instead.  The
    other matrices of the stack are unaffected.
    """
    g = np.random.default_rng(3).standard_normal((2, 6, 4))
    g[0, 2, 1] = bad
    rule = PolarGradRule(method=method, check_finite=False)
    d, _ = polargrad_direction(backend.xp, rule, backend.asarray(g, "float64"), None)
    d = to_f64(backend, d)
    assert np.isnan(d[0]).all()
    alone, _ = polargrad_direction(backend.xp, rule, backend.asarray(g[1], "float64"), None)
    assert np.allclose(d[1], to_f64(backend, alone), rtol=0, atol=1e-10)
