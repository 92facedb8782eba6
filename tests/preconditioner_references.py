"""Float64 NumPy references of Shampoo, SOAP and NorMuon, written from the papers' formulas.

Plain loops over modes and blocks, eigh for every root, nothing shared with the
package: the rules and wrappers are tested against these.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def unfold(x, mode):
    return np.moveaxis(x, mode, 0).reshape(x.shape[mode], -1)


def times(p, x, mode):
    moved = np.moveaxis(x, mode, 0)
    out = (p @ moved.reshape(moved.shape[0], -1)).reshape(moved.shape)
    return np.moveaxis(out, 0, mode)


def inv_root(a, p, eps):
    w, v = np.linalg.eigh((a + a.T) / 2)
    w = np.maximum(w, 0.0) + eps
    return (v * w ** (-1.0 / p)) @ v.T


def blocks(shape, size):
    if size is None:
        return [tuple(slice(0, d) for d in shape)]
    per_dim = [[slice(lo, min(lo + size, d)) for lo in range(0, d, size)] for d in shape]
    return list(itertools.product(*per_dim))


def shampoo(
    x0,
    grads,
    *,
    lr,
    weight_decay=0.0,
    betas=(0.9, 0.999),
    eps=1e-12,
    grafting="adam",
    graft_beta2=0.999,
    graft_eps=1e-8,
    precondition_every=1,
    start=None,
    block=None,
    root=None,
    bias_correction=True,
):
    """Shampoo as in the package docstring, one parameter, float64."""
    b1, b2 = betas
    start = precondition_every if start is None else start
    x = np.array(x0, dtype=np.float64)
    k = x.ndim
    p = 2 * k if root is None else root
    bl = blocks(x.shape, block)
    stats = {
        (b, i): np.zeros((sl[i].stop - sl[i].start,) * 2)
        for b, sl in enumerate(bl)
        for i in range(k)
    }
    roots = {key: np.zeros_like(v) for key, v in stats.items()}
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for t, g in enumerate(grads, 1):
        g = np.asarray(g, dtype=np.float64)
        if b1 > 0:
            m = b1 * m + (1 - b1) * g
            m_hat = m / (1 - b1**t) if bias_correction else m
        else:
            m_hat = g
        if grafting == "adam":
            v = graft_beta2 * v + (1 - graft_beta2) * g * g
            v_hat = v / (1 - graft_beta2**t) if bias_correction else v
            graft = m_hat / (np.sqrt(v_hat) + graft_eps)
        else:
            graft = m_hat
        for b, sl in enumerate(bl):
            for i in range(k):
                u = unfold(g[sl], i)
                s = stats[b, i]
                stats[b, i] = s + u @ u.T if b2 == 1.0 else b2 * s + (1 - b2) * (u @ u.T)
        scale = 1.0 if (b2 == 1.0 or not bias_correction) else 1 / (1 - b2**t)
        if t >= start and (t - start) % precondition_every == 0:
            roots = {key: inv_root(s * scale, p, eps) for key, s in stats.items()}
        if t >= start:
            d = np.empty_like(x)
            for b, sl in enumerate(bl):
                s = m_hat[sl]
                for i in range(k):
                    s = times(roots[b, i], s, i)
                if grafting != "none":
                    ns = np.linalg.norm(s)
                    s = s * (np.linalg.norm(graft[sl]) / ns if ns > 0 else 0.0)
                d[sl] = s
        else:
            d = graft
        x = x - lr * (weight_decay * x + d)
    return x


def soap(
    x0,
    grads,
    *,
    lr=3e-3,
    betas=(0.95, 0.95),
    shampoo_beta=None,
    eps=1e-8,
    weight_decay=0.01,
    precondition_frequency=10,
    max_precondition_dim=10000,
    correct_bias=True,
):
    """SOAP as in arXiv:2409.11321's reference code, one parameter, float64."""
    b1, b2 = betas
    sb = b2 if shampoo_beta is None else shampoo_beta
    x = np.array(x0, dtype=np.float64)
    modes = [i for i, d in enumerate(x.shape) if d <= max_precondition_dim]
    stats = {i: np.zeros((x.shape[i],) * 2) for i in modes}
    bases = {}
    m = np.zeros_like(x)
    v = np.zeros_like(x)

    def rot(y, back=False):
        for i in modes:
            y = times(bases[i] if back else bases[i].T, y, i)
        return y

    for step, g in enumerate(grads, 1):
        g = np.asarray(g, dtype=np.float64)
        if step == 1:
            for i in modes:
                u = unfold(g, i)
                stats[i] = (1 - sb) * (u @ u.T)
                _, q = np.linalg.eigh(stats[i])
                bases[i] = q[:, ::-1]
            continue
        t = step - 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * rot(g) ** 2
        n = rot(rot(m) / (np.sqrt(v) + eps), back=True)
        c = math.sqrt(1 - b2**t) / (1 - b1**t) if correct_bias else 1.0
        x = x - lr * c * n
        x = x * (1 - lr * weight_decay)
        for i in modes:
            u = unfold(g, i)
            stats[i] = sb * stats[i] + (1 - sb) * (u @ u.T)
        if t % precondition_frequency == 0:
            for i in modes:
                q = bases[i]
                est = np.diag(q.T @ stats[i] @ q)
                order = np.argsort(-est, kind="stable")
                v = np.take(v, order, axis=i)
                bases[i] = np.linalg.qr((stats[i] @ q)[:, order])[0]
    return x


def newton_schulz(a, steps=5, coefficients=(3.4445, -4.775, 2.0315), floor=1e-7):
    x = a.T if a.shape[0] > a.shape[1] else a
    x = x / max(np.linalg.norm(x), floor)
    for _ in range(steps):
        ca, cb, cc = coefficients
        gram = x @ x.T
        x = ca * x + (cb * gram + cc * gram @ gram) @ x
    return x.T if a.shape[0] > a.shape[1] else x


def polar(a):
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    return u @ vt


def normuon(
    x0,
    grads,
    *,
    lr,
    momentum=0.95,
    beta2=0.95,
    weight_decay=0.0,
    nesterov=True,
    eps=1e-10,
    update_scale="match_rms",
    orthogonalize=newton_schulz,
    rows_are_neurons=True,
):
    """NorMuon (arXiv:2510.05491, Algorithm 1 and the official code's rescaling), float64."""
    x = np.array(x0, dtype=np.float64)
    m = np.zeros_like(x)
    axis = 1 if rows_are_neurons else 0
    v = np.zeros((x.shape[0], 1)) if rows_are_neurons else np.zeros((1, x.shape[1]))
    rows, cols = x.shape
    fan_out, fan_in = (rows, cols) if rows_are_neurons else (cols, rows)
    for g in grads:
        m = momentum * m + (1 - momentum) * g
        look = momentum * m + (1 - momentum) * g if nesterov else m
        o = orthogonalize(look)
        v = beta2 * v + (1 - beta2) * np.mean(o * o, axis=axis, keepdims=True)
        on = o / (np.sqrt(v) + eps)
        norm = np.linalg.norm(on) + eps
        if update_scale == "match_rms":
            d = on * 0.2 * math.sqrt(o.size) / norm
        else:
            d = on * np.linalg.norm(o) / norm * math.sqrt(max(1.0, fan_out / fan_in))
        x = x * (1 - lr * weight_decay) - lr * d
    return x
