"""QK-Clip (Kimi K2's MuonClip): torch in place, JAX functional, the framework-free factors.

The reference is NumPy float64: per-head max causal logits ``⟨q_i, k_j⟩/√d``
(``j ≤ i``) of random projections on random inputs, recomputed after the
clip on the same inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from polarlinalg._rules.qk_clip import qk_clip_scales

D_IN, HEAD_DIM, BATCH, T = 12, 4, 2, 5


def max_logits(x, wq, wk, num_heads, bq=None, bk=None, layout="out_in"):
    """Per query head: max over the batch and the causal positions of ``⟨q_i, k_j⟩/√d``."""
    wq, wk = (np.asarray(w, np.float64) for w in (wq, wk))
    if layout == "in_out":
        wq, wk = wq.reshape(wq.shape[0], -1).T, wk.reshape(wk.shape[0], -1).T
    q = x @ wq.T + (0 if bq is None else np.asarray(bq, np.float64).reshape(-1))
    k = x @ wk.T + (0 if bk is None else np.asarray(bk, np.float64).reshape(-1))
    hd = wq.shape[0] // num_heads
    q = q.reshape(*q.shape[:-1], num_heads, hd)
    k = k.reshape(*k.shape[:-1], -1, hd)
    group = num_heads // k.shape[-2]
    allowed = np.tril(np.ones((x.shape[1], x.shape[1]), bool))
    out = []
    for h in range(num_heads):
        s = np.einsum("bid,bjd->bij", q[..., h, :], k[..., h // group, :]) / math.sqrt(hd)
        out.append(np.where(allowed, s, -np.inf).max())
    return np.array(out)


def problem(num_heads, num_kv_heads, seed=0):
    """Inputs and weights whose heads have clearly different max logits (about 4 to 300)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, T, D_IN))
    wq = rng.standard_normal((num_heads * HEAD_DIM, D_IN))
    wk = rng.standard_normal((num_kv_heads * HEAD_DIM, D_IN))
    wq *= np.repeat(np.geomspace(0.5, 4.0, num_heads), HEAD_DIM)[:, None]
    return x, wq, wk


def threshold_between(logits):
    """A threshold with heads on both sides of it, none close to it."""
    s = np.sort(logits)
    i = int(np.argmax(np.diff(s)))
    return float(np.sqrt(s[i] * s[i + 1]))


# -- the factors, on every backend ------------------------------------------------------------


@pytest.mark.parametrize("num_kv_heads", [4, 2, 1])
def test_factors_follow_the_formula(xp, backend, num_kv_heads):
    s = np.array([250.0, 100.0, 40.0, -3.0])
    scales = qk_clip_scales(xp, backend.asarray(s, "float64"), 100.0, num_kv_heads)
    gamma = np.minimum(1.0, 100.0 / np.maximum(s, 100.0))
    q, k = (backend.to_numpy(v) for v in scales)
    if num_kv_heads == 4:
        np.testing.assert_allclose(q, np.sqrt(gamma), rtol=1e-15)
        np.testing.assert_allclose(k, np.sqrt(gamma), rtol=1e-15)
    else:
        np.testing.assert_allclose(q, gamma, rtol=1e-15)
        np.testing.assert_array_equal(k, np.ones(num_kv_heads))
    assert q[1] == q[2] == q[3] == 1.0  # heads at or below τ: exactly 1


# -- PyTorch ----------------------------------------------------------------------------------

torch = pytest.importorskip("torch")

from polarlinalg.torch import QKClipScales, qk_clip_  # noqa: E402


@pytest.mark.parametrize(("num_heads", "num_kv_heads"), [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize("bias", [False, True])
def test_torch_clipped_heads_reach_the_threshold_others_unchanged(num_heads, num_kv_heads, bias):
    x, wq, wk = problem(num_heads, num_kv_heads)
    rng = np.random.default_rng(1)
    bq = rng.standard_normal(wq.shape[0]) if bias else None
    bk = rng.standard_normal(wk.shape[0]) if bias else None
    before = max_logits(x, wq, wk, num_heads, bq, bk)
    tau = threshold_between(before)
    clipped = before > tau
    assert clipped.any() and not clipped.all()
    q, k = torch.tensor(wq), torch.tensor(wk)
    tq = None if bq is None else torch.tensor(bq)
    tk = None if bk is None else torch.tensor(bk)
    scales = qk_clip_(
        q, k, torch.tensor(before), threshold=tau, num_heads=num_heads, q_bias=tq, k_bias=tk
    )
    assert isinstance(scales, QKClipScales)
    assert scales.query.shape == (num_heads,) and scales.key.shape == (num_kv_heads,)
    after = max_logits(x, q.numpy(), k.numpy(), num_heads, tq, tk)
    np.testing.assert_allclose(after[clipped], tau, rtol=1e-12)
    np.testing.assert_array_equal(after[~clipped], before[~clipped])
    rows = np.repeat(~clipped, HEAD_DIM)
    np.testing.assert_array_equal(q.numpy()[rows], wq[rows])  # untouched rows: bit for bit
    if num_kv_heads < num_heads:  # grouped-query attention: shared key rows stay
        np.testing.assert_array_equal(k.numpy(), wk)
        np.testing.assert_allclose(scales.query[clipped], tau / before[clipped], rtol=1e-6)
    else:
        np.testing.assert_allclose(scales.key, scales.query)
    gamma = (scales.query * scales.key.repeat_interleave(num_heads // num_kv_heads)).numpy()
    np.testing.assert_allclose(gamma, np.minimum(1.0, tau / before), rtol=1e-6)


def test_torch_views_of_a_fused_qkv_weight_and_bfloat16():
    x, wq, wk = problem(4, 4, seed=3)
    before = max_logits(x, wq, wk, 4)
    tau = threshold_between(before)
    fused = torch.nn.Parameter(torch.tensor(np.concatenate([wq, wk, wk]), dtype=torch.bfloat16))
    d = wq.shape[0]
    v_before = fused[2 * d :].detach().clone()
    qk_clip_(fused[:d], fused[d : 2 * d], torch.tensor(before), threshold=tau, num_heads=4)
    w = fused.detach().double().numpy()
    after = max_logits(x, w[:d], w[d : 2 * d], 4)
    rounded = max_logits(x, *(torch.tensor(a).bfloat16().double().numpy() for a in (wq, wk)), 4)
    clipped = before > tau
    np.testing.assert_allclose(after[clipped], tau, rtol=0.05)  # bfloat16 weights
    np.testing.assert_array_equal(after[~clipped], rounded[~clipped])
    assert torch.equal(fused[2 * d :].detach(), v_before)  # the value rows are untouched


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_heads": 5}, ValueError, "not a positive multiple of num_heads"),
        ({"num_heads": 0}, ValueError, "num_heads must be a positive int"),
        ({"num_heads": 2.0}, TypeError, "num_heads must be a positive int"),
        ({"threshold": 0.0}, ValueError, "threshold must be a finite number > 0"),
        ({"threshold": math.inf}, ValueError, "threshold"),
        ({"max_logits": [1.0, 2.0, 3.0]}, ValueError, r"max_logits must have shape \(num_heads,\)"),
        ({"max_logits": [1.0, math.nan, 3.0, 4.0]}, ValueError, r"head\(s\) \[1\] are not finite"),
        ({"max_logits": [1.0, 2.0, math.inf, 4.0]}, ValueError, "not finite"),
        ({"k_weight": torch.ones(6, 12)}, ValueError, "not a positive multiple of the head width"),
        ({"k_weight": torch.ones(12, 12)}, ValueError, "does not divide num_heads"),
        ({"k_weight": torch.ones(8, 10)}, ValueError, "same input width"),
        ({"q_weight": torch.ones(2, 8, 12)}, ValueError, "must be a 2-D"),
        ({"q_weight": torch.ones(16, 12, dtype=torch.int64)}, TypeError, "floating"),
        ({"q_bias": torch.ones(8)}, ValueError, r"q_bias must be a tensor of shape \(16,\)"),
    ],
)
def test_torch_bad_input_raises_and_changes_nothing(kwargs, error, match):
    q, k = torch.ones(16, 12), torch.ones(8, 12)  # 4 query heads, 2 key heads of width 4
    args = {"q_weight": q, "k_weight": k, "max_logits": [500.0, 1.0, 2.0, 3.0], "num_heads": 4}
    args.update(kwargs)
    args["max_logits"] = torch.tensor(args["max_logits"])
    q_ref, k_ref = args["q_weight"].clone(), args["k_weight"].clone()
    with pytest.raises(error, match=match):
        qk_clip_(**args)
    assert torch.equal(args["q_weight"], q_ref) and torch.equal(args["k_weight"], k_ref)


def test_torch_same_tensor_twice_is_refused():
    w = torch.ones(8, 8)
    with pytest.raises(ValueError, match="same tensor"):
        qk_clip_(w, w, torch.tensor([500.0, 1.0]), num_heads=2)


# -- JAX --------------------------------------------------------------------------------------


def _jax():
    jax = pytest.importorskip("jax")
    pytest.importorskip("optax")
    from polarlinalg.optax import qk_clip

    return jax, jax.numpy, qk_clip


@pytest.mark.parametrize("layout", ["in_out", "in_out_3d", "out_in"])
@pytest.mark.parametrize(("num_heads", "num_kv_heads"), [(4, 4), (4, 2)])
def test_jax_matches_the_reference_and_torch_under_jit(layout, num_heads, num_kv_heads):
    jax, jnp, qk_clip = _jax()
    x, wq, wk = problem(num_heads, num_kv_heads, seed=5)
    rng = np.random.default_rng(2)
    bq, bk = rng.standard_normal(wq.shape[0]), rng.standard_normal(wk.shape[0])
    before = max_logits(x, wq, wk, num_heads, bq, bk)
    tau = threshold_between(before)
    clipped = before > tau

    def to_layout(w, b):
        if layout == "out_in":
            return w, b
        if layout == "in_out":
            return w.T, b
        return w.T.reshape(D_IN, -1, HEAD_DIM), b.reshape(-1, HEAD_DIM)

    (q, qb), (k, kb) = to_layout(wq, bq), to_layout(wk, bk)
    kind = "out_in" if layout == "out_in" else "in_out"
    clip = jax.jit(
        lambda q, k, s, qb, kb: qk_clip(
            q, k, s, threshold=tau, num_heads=num_heads, layout=kind, q_bias=qb, k_bias=kb
        )
    )
    out = clip(*(jnp.asarray(a) for a in (q, k, before, qb, kb)))
    assert out.q_kernel.shape == q.shape and out.q_bias.shape == qb.shape
    after = max_logits(x, out.q_kernel, out.k_kernel, num_heads, out.q_bias, out.k_bias, kind)
    np.testing.assert_allclose(after[clipped], tau, rtol=1e-12)
    np.testing.assert_array_equal(after[~clipped], before[~clipped])
    # the same clip in PyTorch
    tq, tk, tqb, tkb = (torch.tensor(a) for a in (wq, wk, bq, bk))
    qk_clip_(
        tq, tk, torch.tensor(before), threshold=tau, num_heads=num_heads, q_bias=tqb, k_bias=tkb
    )
    back = to_layout(tq.numpy(), tqb.numpy())
    np.testing.assert_allclose(np.asarray(out.q_kernel), back[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(np.asarray(out.q_bias), back[1], rtol=1e-14, atol=0)
    np.testing.assert_allclose(np.asarray(out.k_kernel), to_layout(tk.numpy(), bk)[0], rtol=1e-14)


def test_jax_keeps_dtypes_and_omitted_biases():
    _, jnp, qk_clip = _jax()
    q = jnp.ones((8, 8), dtype=jnp.bfloat16)
    out = qk_clip(q, q, jnp.array([400.0, 50.0]), num_heads=2)
    assert out.q_kernel.dtype == jnp.bfloat16 and out.q_bias is None and out.k_bias is None
    np.testing.assert_array_equal(np.asarray(out.scales.query, np.float64), [0.5, 1.0])
    np.testing.assert_array_equal(np.asarray(out.q_kernel[:, :4], np.float64), 0.5)
    np.testing.assert_array_equal(np.asarray(out.q_kernel[:, 4:], np.float64), 1.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"layout": "rows"}, ValueError, "unknown layout 'rows'"),
        ({"num_heads": 3}, ValueError, "not a positive multiple of num_heads"),
        ({"threshold": -1.0}, ValueError, "threshold"),
        ({"max_logits": [1.0, 2.0]}, ValueError, "max_logits must have shape"),
        ({"max_logits": [1.0, 2.0, math.nan, 4.0]}, ValueError, r"head\(s\) \[2\] are not finite"),
        ({"k_kernel": np.ones((10, 8))}, ValueError, "same input width"),
        ({"q_kernel": np.ones((12, 2, 8))}, ValueError, "heads of width 8"),
        ({"q_kernel": np.ones((12,))}, ValueError, "must be"),
        ({"q_bias": np.ones(3)}, ValueError, r"q_bias must have shape \(16,\)"),
    ],
)
def test_jax_bad_input_raises(kwargs, error, match):
    _, jnp, qk_clip = _jax()
    args = {
        "q_kernel": np.ones((12, 16)),
        "k_kernel": np.ones((12, 8)),
        "max_logits": [500.0, 1.0, 2.0, 3.0],
        "num_heads": 4,
    }
    args.update(kwargs)
    args = {k: jnp.asarray(v) if isinstance(v, (np.ndarray, list)) else v for k, v in args.items()}
    with pytest.raises(error, match=match):
        qk_clip(**args)
