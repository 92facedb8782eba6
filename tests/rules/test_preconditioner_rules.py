"""Shampoo, SOAP and NorMuon against NumPy float64 formulas, on every backend.

Each case runs a few steps of one parameter through the functional wrapper
(:mod:`polarlinalg.optim`, which runs the rule as it is on any namespace) and
compares with :mod:`preconditioner_references`; every branch of each rule has
a case (summed and EMA statistics, each grafting, amortized roots, the
unpreconditioned start, blocking, order-3 tensors; SOAP's first step,
refreshes and unrotated modes; NorMuon's scales and layouts).
"""

from __future__ import annotations

import numpy as np
import preconditioner_references as ref
import pytest

from polarlinalg import optim

STEPS = 6


def _grads(shape, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, shape), [rng.standard_normal(shape) for _ in range(steps)]


def _run(backend, opt, x0, grads):
    params = {"w": backend.asarray(x0, "float64")}
    state = opt.init(params)
    for g in grads:
        params, state = opt.step(params, {"w": backend.asarray(g, "float64")}, state)
    return backend.to_numpy(params["w"])


def _close(got, want, rtol):
    scale = np.max(np.abs(want))
    assert np.max(np.abs(got - want)) <= rtol * scale, np.max(np.abs(got - want)) / scale


SHAMPOO_CASES = {
    "classic_summed": dict(betas=(0.0, 1.0), eps=1e-6, grafting="none"),
    "ema_adam_graft": dict(betas=(0.9, 0.99), eps=1e-10, weight_decay=0.1),
    "sgd_graft_every_2": dict(betas=(0.5, 0.95), eps=1e-8, grafting="sgd", precondition_every=2),
    "late_start_no_bias": dict(
        betas=(0.9, 0.95), eps=1e-8, start_preconditioning_step=3, bias_correction=False
    ),
    "blocked": dict(betas=(0.9, 0.99), eps=1e-8, max_preconditioner_dim=4),
    "root_override": dict(betas=(0.0, 1.0), eps=1e-6, grafting="none", inv_root_override=2),
}


@pytest.mark.parametrize("case", SHAMPOO_CASES)
def test_shampoo_matches_reference(backend, case):
    cfg = SHAMPOO_CASES[case]
    shape = (7, 5) if case != "blocked" else (9, 6)
    x0, grads = _grads(shape)
    opt = optim.Shampoo(
        lr=0.05,
        max_preconditioner_dim=cfg.get("max_preconditioner_dim"),
        **{k: v for k, v in cfg.items() if k != "max_preconditioner_dim"},
    )
    want = ref.shampoo(
        x0,
        grads,
        lr=0.05,
        weight_decay=cfg.get("weight_decay", 0.0),
        betas=cfg["betas"],
        eps=cfg["eps"],
        grafting=cfg.get("grafting", "adam"),
        precondition_every=cfg.get("precondition_every", 1),
        start=cfg.get("start_preconditioning_step"),
        block=cfg.get("max_preconditioner_dim"),
        root=cfg.get("inv_root_override"),
        bias_correction=cfg.get("bias_correction", True),
    )
    _close(_run(backend, opt, x0, grads), want, 1e-9)


def test_shampoo_order_three_tensor(backend):
    x0, grads = _grads((3, 4, 5), steps=3)
    opt = optim.Shampoo(lr=0.05, betas=(0.9, 0.99), eps=1e-8)
    want = ref.shampoo(x0, grads, lr=0.05, betas=(0.9, 0.99), eps=1e-8)
    _close(_run(backend, opt, x0, grads), want, 1e-9)


def test_shampoo_newton_roots_follow_eigh(backend):
    """The matmul-only roots give the eigh trajectory to the iteration's band."""
    x0, grads = _grads((6, 4), steps=3)
    opt = optim.Shampoo(lr=0.05, betas=(0.9, 0.99), eps=1e-3, root_method="newton")
    want = ref.shampoo(x0, grads, lr=0.05, betas=(0.9, 0.99), eps=1e-3)
    _close(_run(backend, opt, x0, grads), want, 1e-5)


def test_shampoo_without_accumulation_is_the_polar_factor(backend):
    """β₁ = β₂ = 0, no grafting, ε → 0: one step is −γ·U (Muon is Shampoo without memory)."""
    rng = np.random.default_rng(3)
    for shape in ((8, 5), (5, 8), (6, 6)):
        g = rng.standard_normal(shape)
        sigma_min = np.linalg.svd(g, compute_uv=False).min()
        opt = optim.Shampoo(lr=1.0, betas=(0.0, 0.0), eps=1e-12 * sigma_min**2, grafting="none")
        x = _run(backend, opt, np.zeros(shape), [g])
        # σ/√(σ² + ε) = 1 − O(ε/σ²): 1e-12 on the factor, plus eigh's rounding of (GGᵀ)^(−1/4)
        np.testing.assert_allclose(-x, ref.polar(g), atol=1e-9)


SOAP_CASES = {
    "freq_1": dict(precondition_frequency=1),
    "freq_3_wd": dict(precondition_frequency=3, weight_decay=0.1),
    "shampoo_beta_no_bias": dict(precondition_frequency=2, shampoo_beta=0.9, correct_bias=False),
    "unrotated_mode": dict(precondition_frequency=2, max_precondition_dim=5),
}


@pytest.mark.parametrize("case", SOAP_CASES)
def test_soap_matches_reference(backend, case):
    cfg = dict(SOAP_CASES[case])
    cfg.setdefault("weight_decay", 0.0)
    shape = (6, 6) if case != "unrotated_mode" else (6, 4)
    x0, grads = _grads(shape, steps=8)
    # a full-rank first step (square or not) fixes the bases up to signs, which cancel
    opt = optim.SOAP(lr=0.01, **cfg)
    want = ref.soap(x0, grads, lr=0.01, **cfg)
    _close(_run(backend, opt, x0, grads), want, 1e-8)


def test_soap_first_step_only_initialises(backend):
    x0, grads = _grads((5, 5), steps=1)
    opt = optim.SOAP(lr=0.1, weight_decay=0.5)
    np.testing.assert_array_equal(_run(backend, opt, x0, grads), x0)


def test_soap_order_three_tensor(backend):
    x0, grads = _grads((3, 4, 4), steps=5)
    opt = optim.SOAP(lr=0.01, precondition_frequency=2)
    want = ref.soap(x0, grads, lr=0.01, precondition_frequency=2)
    _close(_run(backend, opt, x0, grads), want, 1e-8)


NORMUON_CASES = {
    "match_rms": dict(update_scale="match_rms"),
    "preserve_norm_wd": dict(update_scale="preserve_norm", weight_decay=0.1),
    "no_nesterov_beta2_0": dict(nesterov=False, beta2=0.0),
    "columns_are_neurons": dict(layout="in_out"),
}


@pytest.mark.parametrize("case", NORMUON_CASES)
def test_normuon_matches_reference(backend, case):
    cfg = dict(NORMUON_CASES[case])
    x0, grads = _grads((7, 5))
    opt = optim.NorMuon(lr=0.02, **cfg)
    layout = cfg.pop("layout", "out_in")
    want = ref.normuon(x0, grads, lr=0.02, rows_are_neurons=layout == "out_in", **cfg)
    _close(_run(backend, opt, x0, grads), want, 1e-9)


def test_normuon_beta2_zero_rows_share_one_rms(backend):
    """With β₂ = 0 every neuron's row of the step has the same RMS (and the step RMS is 0.2)."""
    x0, grads = _grads((6, 9), steps=1)
    opt = optim.NorMuon(lr=1.0, beta2=0.0, eps=0.0, momentum=0.0, nesterov=False)
    step = _run(backend, opt, x0, grads) - x0
    rms = np.sqrt(np.mean(step**2, axis=1))
    np.testing.assert_allclose(rms, rms[0], rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.mean(step**2)), 0.2, rtol=1e-10)


def test_normuon_exact_polar_factor(backend):
    """Any polar method: method="svd" against the exact polar factor."""
    x0, grads = _grads((7, 5))
    opt = optim.NorMuon(lr=0.02, method="svd")
    want = ref.normuon(x0, grads, lr=0.02, orthogonalize=ref.polar)
    _close(_run(backend, opt, x0, grads), want, 1e-9)
