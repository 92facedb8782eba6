"""Row-normalised and one-sided polar rules (Lau & Su, arXiv:2605.18106), in NumPy float64.

The formulas of the authors' RowNormM, RightPolarGradM and LeftPolarGradM
(timlautk/equivariant_optimizers), written out here with eigh: momentum
``M ← βM + (1 − β)G``, then ``W(M)`` and the scale ``⟨M, W⟩`` (``α = 1``) or 1
(``α = 0``), ``X ← (1 − γλ)X − γ·s·W``.  :class:`polarlinalg.optim.PolarGrad`
with ``rules=`` the rule's name must follow them on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import to_f64

from polarlinalg._rules import PolarGradRule, choose_rule, polargrad_direction
from polarlinalg._rules.hyperparams import RULES, form_of_rule
from polarlinalg.optim import PolarGrad

STEPS = 4


def inv_sqrt(c: np.ndarray, eps: float) -> np.ndarray:
    lam, v = np.linalg.eigh(c)
    return (v / np.sqrt(np.maximum(lam, 0.0) + eps)) @ v.T


def ref_w(form: str, m: np.ndarray, eps: float) -> np.ndarray:
    if form == "rownorm":
        return m / (np.linalg.norm(m, axis=1, keepdims=True) + eps)
    if form == "polar_right":
        return m @ inv_sqrt(m.T @ m, eps)
    return inv_sqrt(m @ m.T, eps) @ m


def ref_trajectory(form, scale, x0, grad, lr, wd, beta, eps):
    x, buf, out = x0.copy(), np.zeros_like(x0), []
    for _ in range(STEPS):
        buf = beta * buf + (1 - beta) * grad(x)
        w = ref_w(form, buf, eps)
        s = np.sum(buf * w) if scale == "nuclear" else 1.0
        x = (1 - lr * wd) * x - lr * s * w
        out.append(x.copy())
    return out


FORMS = ["rownorm", "polar_right", "polar_left"]


@pytest.mark.parametrize("scale", ["nuclear", "none"])
@pytest.mark.parametrize("form", FORMS)
def test_trajectory_matches_the_papers_formulas(backend, form, scale):
    rng = np.random.default_rng(0)
    shape = (9, 4)  # (vocab, d): the left Gram is singular, ε keeps it invertible
    x0 = rng.uniform(-1, 1, shape)
    target = rng.standard_normal(shape)

    def grad(x):
        return x * x * x - target

    lr, wd, beta, eps = 0.05, 0.1, 0.9, 1e-3
    want = ref_trajectory(form, scale, x0, grad, lr, wd, beta, eps)
    opt = PolarGrad(
        lr, momentum=beta, weight_decay=wd, scale=scale, rules=form, form_eps=eps, method="svd"
    )
    params = {"emb": backend.asarray(x0)}
    state = opt.init(params)
    for t in range(STEPS):
        g = {"emb": backend.asarray(grad(to_f64(backend, params["emb"])))}
        params, state = opt.step(params, g, state)
        got = to_f64(backend, params["emb"])
        np.testing.assert_allclose(got, want[t], rtol=0, atol=1e-10, err_msg=f"step {t + 1}")


def test_one_sided_is_the_damped_polar_factor():
    """``W = U diag(σ/√(σ² + ε)) Vᵀ`` for both sides, ≠ ``polar(M)`` when ε is not small."""
    m = np.random.default_rng(1).standard_normal((7, 3))
    u, sv, vt = np.linalg.svd(m, full_matrices=False)
    eps = 0.5
    want = u @ np.diag(sv / np.sqrt(sv**2 + eps)) @ vt
    for form in ("polar_right", "polar_left"):
        rule = PolarGradRule(form=form, form_eps=eps, scale="none")
        got, _ = polargrad_direction(np, rule, m, None)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.abs(want - u @ vt).max() > 0.01


def test_rownorm_rows_have_unit_norm_and_ignore_right_rotations():
    m = np.random.default_rng(2).standard_normal((6, 4))
    rule = PolarGradRule(form="rownorm", form_eps=1e-300, scale="none")
    w, _ = polargrad_direction(np, rule, m, None)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, rtol=0, atol=1e-14)
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((4, 4)))
    wq, _ = polargrad_direction(np, rule, m @ q, None)  # right-orthogonal equivariance
    np.testing.assert_allclose(wq, w @ q, rtol=0, atol=1e-13)
    perm = np.random.default_rng(4).permutation(6)  # left-permutation equivariance
    wp, _ = polargrad_direction(np, rule, m[perm], None)
    np.testing.assert_allclose(wp, w[perm], rtol=0, atol=1e-14)


@pytest.mark.parametrize("form", FORMS)
def test_rule_names_route_to_the_matrix_path(form):
    assert form in RULES
    assert choose_rule(form, 2) == "polargrad"
    assert form_of_rule(form) == form
    with pytest.raises(ValueError, match="at least 2"):
        choose_rule(form, 1, name="bias")
    assert form_of_rule("auto") == form_of_rule("polargrad") == "polar"


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "1e-8", True])
def test_bad_form_eps(bad):
    with pytest.raises((ValueError, TypeError), match="form_eps"):
        PolarGradRule(form="rownorm", form_eps=bad)


def test_bad_form():
    with pytest.raises(ValueError, match="form"):
        PolarGradRule(form="rowwise")


@pytest.mark.parametrize("form", ["polar_right", "polar_left"])
def test_rank_deficient_gram_stays_finite_in_float32(backend, form):
    """The Gram matrix of the long side is singular; rounding makes its zero eigenvalues
    slightly negative, far beyond ε = 1e-8 in float32: ε goes after clamping them at 0."""
    rng = np.random.default_rng(1)
    shape = (8, 40) if form == "polar_right" else (40, 8)
    a = rng.standard_normal(shape)
    rule = PolarGradRule(form=form, scale="none")
    x = backend.asarray(a.astype(np.float32))
    w, _ = polargrad_direction(backend.xp, rule, x, None)
    w = to_f64(backend, w)
    assert np.all(np.isfinite(w))
    # on the range of A the map is A's polar factor; what the ε-regularised null space adds
    # is float32 rounding amplified by up to 1/√ε, which the BLAS decides: compare on the range
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    on_range = w @ (vt.T @ vt) if form == "polar_right" else (u @ u.T) @ w
    np.testing.assert_allclose(on_range, u @ vt, atol=1e-2)  # measured ≤ 1.5e-3 on a Xeon
    # with ε = 1e-4 the amplification is 1e2 and the whole map agrees with float64
    w4, _ = polargrad_direction(
        backend.xp, PolarGradRule(form=form, form_eps=1e-4, scale="none"), x, None
    )
    np.testing.assert_allclose(to_f64(backend, w4), ref_w(form, a, 1e-4), atol=1e-3)


@pytest.mark.parametrize("form", ["polar_right", "rownorm"])
def test_traced_form_eps_under_inject_hyperparams_stays_finite(form):
    """``optax.inject_hyperparams`` traces ``form_eps``: the clamp must still come first."""
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    from polarlinalg.optax import polargrad

    rng = np.random.default_rng(5)
    grad = np.zeros((50, 16), np.float32)
    grad[:3] = rng.standard_normal((3, 16))  # a batch that saw three tokens
    params = {"emb": jnp.asarray(rng.standard_normal((50, 16)), jnp.float32)}
    grads = {"emb": jnp.asarray(grad)}
    tx = optax.inject_hyperparams(polargrad)(learning_rate=0.1, rules={"emb": form})
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    eager = polargrad(learning_rate=0.1, rules={"emb": form})
    want, _ = eager.update(grads, eager.init(params), params)
    got, want = np.asarray(updates["emb"]), np.asarray(want["emb"])
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(want))
    # rank 3: compare on the gradient's row space (the null space carries amplified rounding)
    _, _, vt = np.linalg.svd(grad.astype(np.float64), full_matrices=False)
    project = vt[:3].T @ vt[:3] if form == "polar_right" else np.eye(16)
    np.testing.assert_allclose(got @ project, want @ project, atol=1e-2 * np.abs(want).max())
