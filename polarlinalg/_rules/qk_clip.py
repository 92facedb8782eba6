"""QK-Clip (MuonClip): the per-head factors, framework-free.

Kimi Team, "Kimi K2: Open Agentic Intelligence" (technical report, Moonshot AI,
2025), §2.1.  The attention logit of query head ``h`` between positions ``i``
and ``j`` is ``s_ij = c·⟨q_i, k_j⟩`` with ``q_i = W_q^h x_i`` (the rows of the
query projection that belong to head ``h``) and ``k_j = W_k^{g(h)} x_j`` (the
rows of key head ``g(h)``).  It is bilinear in the two blocks of rows: scaling
``W_q^h`` by ``α`` and ``W_k^{g(h)}`` by ``β`` scales every logit of the head
(its maximum ``S_h`` included) by ``αβ``; a rotary embedding, being linear,
does not change that.  With the threshold ``τ`` and

    γ_h = τ / max(S_h, τ)            (≤ 1, and exactly 1 when S_h ≤ τ)

QK-Clip sets ``αβ = γ_h``, so a head whose measured maximum exceeds ``τ`` has
the maximum ``τ`` afterwards (on the same inputs) and the others are left
alone:

* one key head per query head (multi-head attention): ``α = β = √γ_h``, the
  report's split;
* grouped-query attention (``num_kv_heads < num_heads``, each key head shared
  by ``num_heads / num_kv_heads`` query heads): ``α = γ_h`` on the query rows
  and ``β = 1`` on the shared key rows, so that clipping one query head leaves
  the other heads of its group untouched (the report treats the key head
  shared by all heads of multi-head latent attention the same way).

The factors come from ``γ_h`` with no branch on the values, so they are
``jax.jit``-safe; the wrappers check the shapes and, where the values can be
read, that every ``S_h`` is finite.
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._compat import device

__all__ = ["QKClipScales", "check_threshold", "head_counts", "qk_clip_scales"]


class QKClipScales(NamedTuple):
    """The factors QK-Clip applied: ``query`` per query head, ``key`` per key head.

    Head ``h``'s maximum logit was multiplied by
    ``query[h] · key[h // (num_heads // num_kv_heads)]``, which is
    ``min(1, τ / S_h)``.
    """

    query: Any
    key: Any


def check_threshold(threshold: Any) -> float:
    """Return ``threshold`` as a float; ValueError unless it is a finite number > 0."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a positive number; got {threshold!r}")
    value = float(threshold)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"threshold must be a finite number > 0; got {threshold!r}")
    return value


def head_counts(
    q_rows: int, k_rows: int, num_heads: Any, *, q_name: str = "q_weight", k_name: str = "k_weight"
) -> tuple[int, int, int]:
    """Return ``(num_heads, num_kv_heads, head_dim)`` from the output sizes of the projections.

    ``q_rows = num_heads · head_dim`` and ``k_rows = num_kv_heads · head_dim``
    (queries and keys have the same head width, as their dot product needs);
    ``num_kv_heads`` must divide ``num_heads``.  ValueError naming the
    argument otherwise.
    """
    if isinstance(num_heads, bool) or not isinstance(num_heads, numbers.Integral):
        raise TypeError(f"num_heads must be a positive int; got {num_heads!r}")
    num_heads = int(num_heads)
    if num_heads < 1:
        raise ValueError(f"num_heads must be a positive int; got {num_heads}")
    if q_rows % num_heads or q_rows == 0:
        raise ValueError(
            f"{q_name} has {q_rows} output features, not a positive multiple of num_heads = "
            f"{num_heads}"
        )
    head_dim = q_rows // num_heads
    if k_rows % head_dim or k_rows == 0:
        raise ValueError(
            f"{k_name} has {k_rows} output features, not a positive multiple of the head width "
            f"{head_dim} (= {q_name}'s {q_rows} / num_heads {num_heads})"
        )
    num_kv_heads = k_rows // head_dim
    if num_heads % num_kv_heads:
        raise ValueError(
            f"{k_name} has {num_kv_heads} heads of width {head_dim}, which does not divide "
            f"num_heads = {num_heads} (grouped-query attention shares each key head among "
            "an equal number of query heads)"
        )
    return num_heads, num_kv_heads, head_dim


def qk_clip_scales(
    xp: ModuleType, max_logits: Any, threshold: float, num_kv_heads: int
) -> QKClipScales:
    """Return the row factors for measured per-head maxima ``max_logits`` (shape ``(H,)``).

    ``γ = τ / max(S, τ)``; with ``num_kv_heads == H`` both factors are
    ``√γ``, otherwise the query factor is ``γ`` and the key factor 1 (see
    the module docstring).  Computed in the dtype of ``max_logits`` (at
    least float32 is advisable); NaN in ``S`` gives NaN factors.
    """
    dtype, where = max_logits.dtype, device(max_logits)
    gamma = threshold / xp.maximum(max_logits, xp.asarray(threshold, dtype=dtype, device=where))
    num_heads = max_logits.shape[0]
    if num_kv_heads == num_heads:
        root = xp.sqrt(gamma)
        return QKClipScales(root, root)
    return QKClipScales(gamma, xp.ones((num_kv_heads,), dtype=dtype, device=where))
