"""QK-Clip (MuonClip) for PyTorch attention weights, in place."""

from __future__ import annotations

import torch

from polarlinalg._compat import array_namespace
from polarlinalg._rules.qk_clip import QKClipScales, check_threshold, head_counts, qk_clip_scales

__all__ = ["QKClipScales", "qk_clip_"]


def _check_weight(name: str, w: torch.Tensor) -> None:
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(w).__name__}")
    if w.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (out_features, in_features) weight; got shape {tuple(w.shape)}"
        )
    if not w.is_floating_point():
        raise TypeError(f"{name} must be floating; got dtype {w.dtype}")


def _check_bias(name: str, b: torch.Tensor | None, rows: int) -> None:
    if b is None:
        return
    if not isinstance(b, torch.Tensor) or b.shape != (rows,):
        shape = tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
        raise ValueError(f"{name} must be a tensor of shape ({rows},); got {shape}")


@torch.no_grad()
def qk_clip_(
    q_weight: torch.Tensor,
    k_weight: torch.Tensor,
    max_logits: torch.Tensor,
    *,
    threshold: float = 100.0,
    num_heads: int,
    q_bias: torch.Tensor | None = None,
    k_bias: torch.Tensor | None = None,
) -> QKClipScales:
    r"""QK-Clip: shrink the query and key rows of every head whose max logit exceeds ``threshold``.

    MuonClip's second half (Kimi Team, "Kimi K2: Open Agentic Intelligence",
    2025), applied after the optimizer step.  The logit of head ``h``,
    ``c·⟨W_q^h x_i, W_k^h x_j⟩``, is bilinear in the head's query rows
    ``W_q^h`` and key rows ``W_k^h``; with ``γ_h = τ / max(S_h, τ)`` both are
    multiplied by ``√γ_h``, so a head whose measured maximum ``S_h`` exceeds
    ``τ`` has the maximum ``τ`` afterwards on the same inputs, and the other
    heads are left untouched (their factor is exactly 1).

    Grouped-query attention (``k_weight`` with fewer heads than
    ``q_weight``, each key head shared by ``num_heads / num_kv_heads`` query
    heads): only the query rows are scaled, by ``γ_h``, and the shared key
    rows are left alone, so clipping one head changes no other head of its
    group.

    Parameters
    ----------
    q_weight, k_weight : Tensor
        The query and key projection weights, ``(num_heads·head_dim, d)`` and
        ``(num_kv_heads·head_dim, d)`` as ``nn.Linear`` stores them (head
        ``h`` owns rows ``h·head_dim … (h+1)·head_dim − 1``).  Views work:
        for a fused ``qkv`` weight pass ``w[:D]`` and ``w[D:2D]``.
        Modified in place.
    max_logits : Tensor
        ``S_h``, shape ``(num_heads,)``: the largest logit each query head
        produced (after the softmax scale, over the allowed positions of the
        batch), measured on the forward pass.  Must be finite.
    threshold : float, default 100
        ``τ`` (the report's value), > 0.
    num_heads : int
        Query heads; the number of key heads follows from ``k_weight``.
    q_bias, k_bias : Tensor, optional
        Biases of the projections, scaled with their rows.

    Returns
    -------
    QKClipScales
        ``(query, key)``: factors (at least float32) per query head and per key head
        (``query[h]·key[g(h)] = min(1, τ/S_h)``).

    Raises
    ------
    ValueError, TypeError
        For shapes that do not fit ``num_heads``, a non-finite ``S_h``, a
        threshold ≤ 0, or ``q_weight is k_weight``; nothing is modified then.

    Examples
    --------
    >>> import torch
    >>> from polarlinalg.torch import qk_clip_
    >>> q, k = torch.nn.Linear(8, 8, bias=False), torch.nn.Linear(8, 8, bias=False)
    >>> scales = qk_clip_(q.weight, k.weight, torch.tensor([400.0, 50.0]), num_heads=2)
    >>> [round(float(s), 3) for s in scales.query]
    [0.5, 1.0]
    """
    _check_weight("q_weight", q_weight)
    _check_weight("k_weight", k_weight)
    if q_weight is k_weight:
        raise ValueError("q_weight and k_weight are the same tensor; pass the two projections")
    if q_weight.shape[1] != k_weight.shape[1]:
        raise ValueError(
            f"q_weight and k_weight must read the same input width; got {q_weight.shape[1]} "
            f"and {k_weight.shape[1]} input features"
        )
    heads, kv_heads, head_dim = head_counts(q_weight.shape[0], k_weight.shape[0], num_heads)
    _check_bias("q_bias", q_bias, q_weight.shape[0])
    _check_bias("k_bias", k_bias, k_weight.shape[0])
    tau = check_threshold(threshold)
    if not isinstance(max_logits, torch.Tensor):
        max_logits = torch.as_tensor(max_logits)
    if max_logits.shape != (heads,):
        raise ValueError(
            f"max_logits must have shape (num_heads,) = ({heads},); got {tuple(max_logits.shape)}"
        )
    if max_logits.is_complex() or max_logits.dtype == torch.bool:
        raise TypeError(f"max_logits must be real; got dtype {max_logits.dtype}")
    logits = max_logits.detach().to(torch.promote_types(max_logits.dtype, torch.float32))
    if not bool(torch.isfinite(logits).all()):
        bad = [int(i) for i in torch.nonzero(~torch.isfinite(logits)).flatten()]
        raise ValueError(f"max_logits of head(s) {bad} are not finite: {logits[bad].tolist()}")
    scales = qk_clip_scales(array_namespace(logits), logits, tau, kv_heads)
    pairs = [(q_weight, q_bias, scales.query)]
    if kv_heads == heads:  # grouped-query attention leaves the shared key rows alone
        pairs.append((k_weight, k_bias, scales.key))
    for w, b, s in pairs:
        rows = s.to(w.device).repeat_interleave(head_dim)
        w.mul_(rows[:, None])
        if b is not None:
            b.mul_(rows.to(b.device))
    return scales
