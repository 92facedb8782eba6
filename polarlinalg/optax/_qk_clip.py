"""QK-Clip (MuonClip) for JAX attention kernels: a pure function returning new arrays."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from polarlinalg._compat import is_traced
from polarlinalg._rules.hyperparams import check_choice
from polarlinalg._rules.qk_clip import QKClipScales, check_threshold, head_counts, qk_clip_scales

__all__ = ["QKClipResult", "QKClipScales", "qk_clip"]

_LAYOUTS = ("in_out", "out_in")


class QKClipResult(NamedTuple):
    """What :func:`qk_clip` returns: new kernels, new biases (None if not given), the factors."""

    q_kernel: jax.Array
    k_kernel: jax.Array
    q_bias: jax.Array | None
    k_bias: jax.Array | None
    scales: QKClipScales


def _out_shape(name: str, kernel: Any, layout: str) -> tuple[int, ...]:
    """Return the output axes of ``kernel`` (the axes the heads live on), checking its rank."""
    shape = tuple(jnp.shape(kernel))
    if layout == "out_in":
        if len(shape) != 2:
            raise ValueError(
                f"{name} with layout='out_in' must be 2-D (out_features, in_features); got "
                f"shape {shape}"
            )
        return shape[:1]
    if len(shape) not in (2, 3):
        raise ValueError(
            f"{name} with layout='in_out' must be (in_features, heads·head_dim) or (in_features, "
            f"heads, head_dim); got shape {shape}"
        )
    return shape[1:]


def _scaled(
    kernel: Any, bias: Any, factor: Any, head_dim: int, out: tuple[int, ...], layout: str
) -> tuple[Any, Any]:
    """Multiply the output features of ``kernel`` (and ``bias``) by ``factor`` per head."""
    rows = jnp.repeat(factor, head_dim).reshape(out)  # the output axes, head-major
    k = kernel * (rows[:, None] if layout == "out_in" else rows[None])
    b = None if bias is None else (bias * rows).astype(jnp.result_type(bias))
    return k.astype(jnp.result_type(kernel)), b


def qk_clip(
    q_kernel: Any,
    k_kernel: Any,
    max_logits: Any,
    *,
    threshold: float = 100.0,
    num_heads: int,
    layout: str = "in_out",
    q_bias: Any = None,
    k_bias: Any = None,
) -> QKClipResult:
    r"""QK-Clip on JAX kernels: :func:`polarlinalg.torch.qk_clip_` as a pure function.

    With ``γ_h = τ / max(S_h, τ)`` the query and key output features of head
    ``h`` are multiplied by ``√γ_h`` each (grouped-query attention: the
    query features by ``γ_h``, the shared key features by 1), so a head whose
    measured maximum logit ``S_h`` exceeds ``τ`` has the maximum ``τ`` on the
    same inputs and the others keep theirs exactly (Kimi Team, "Kimi K2",
    2025).  No Python branch on values: it runs under ``jax.jit`` (with
    ``threshold``, ``num_heads`` and ``layout`` static).

    Parameters
    ----------
    q_kernel, k_kernel : array
        The query and key projections.  ``layout="in_out"`` (flax): ``(d,
        H·head_dim)`` (``nn.Dense``) or ``(d, H, head_dim)``
        (``nn.DenseGeneral``, ``nn.MultiHeadDotProductAttention``);
        ``layout="out_in"`` (Equinox ``Linear``, PyTorch): ``(H·head_dim,
        d)``.  The output features are head-major.
    max_logits : array
        ``S_h``, shape ``(num_heads,)``: each query head's largest logit of
        the forward pass (after the softmax scale, allowed positions only).
        Outside ``jax.jit`` a non-finite value raises ValueError; under
        ``jax.jit`` it cannot be checked: NaN then gives NaN kernels and
        ``+inf`` zero rows.
    threshold : float, default 100
        ``τ``, > 0.
    num_heads : int
        Query heads; the key heads follow from ``k_kernel``.
    layout : {"in_out", "out_in"}, default "in_out"
    q_bias, k_bias : array, optional
        Biases (shaped like the output features), scaled with them.

    Returns
    -------
    QKClipResult
        ``(q_kernel, k_kernel, q_bias, k_bias, scales)``: new arrays in the
        input dtypes (biases None when not given) and the float32 (or wider)
        factors ``scales.query`` per query head, ``scales.key`` per key head.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from polarlinalg.optax import qk_clip
    >>> q = k = jnp.ones((8, 8))  # (d, heads·head_dim), two heads of width 4
    >>> out = qk_clip(q, k, jnp.array([400.0, 50.0]), num_heads=2)
    >>> out.scales.query.tolist()
    [0.5, 1.0]
    """
    check_choice("layout", layout, _LAYOUTS)
    tau = check_threshold(threshold)
    q_out = _out_shape("q_kernel", q_kernel, layout)
    k_out = _out_shape("k_kernel", k_kernel, layout)
    in_axis = 1 if layout == "out_in" else 0
    if jnp.shape(q_kernel)[in_axis] != jnp.shape(k_kernel)[in_axis]:
        raise ValueError(
            f"q_kernel and k_kernel must read the same input width; got "
            f"{jnp.shape(q_kernel)[in_axis]} and {jnp.shape(k_kernel)[in_axis]}"
        )
    heads, kv_heads, head_dim = head_counts(
        math.prod(q_out), math.prod(k_out), num_heads, q_name="q_kernel", k_name="k_kernel"
    )
    for name, out in (("q_kernel", q_out), ("k_kernel", k_out)):
        if len(out) == 2 and out[1] != head_dim:
            raise ValueError(
                f"{name} has heads of width {out[1]} (output axes {out}), but num_heads = "
                f"{heads} gives a head width of {head_dim}"
            )
    for name, bias, out in (("q_bias", q_bias, q_out), ("k_bias", k_bias, k_out)):
        if bias is not None and tuple(jnp.shape(bias)) != out:
            raise ValueError(f"{name} must have shape {out}; got {tuple(jnp.shape(bias))}")
    logits = jnp.asarray(max_logits)
    if logits.shape != (heads,):
        raise ValueError(
            f"max_logits must have shape (num_heads,) = ({heads},); got {tuple(logits.shape)}"
        )
    if not jnp.issubdtype(logits.dtype, jnp.floating) and not jnp.issubdtype(
        logits.dtype, jnp.integer
    ):
        raise TypeError(f"max_logits must be real; got dtype {logits.dtype}")
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    if not is_traced(logits):
        finite = jax.device_get(jnp.isfinite(logits))
        if not finite.all():
            bad = [i for i, ok in enumerate(finite) if not ok]
            raise ValueError(
                f"max_logits of head(s) {bad} are not finite: {jax.device_get(logits)[bad]}"
            )
    scales = qk_clip_scales(jnp, logits, tau, kv_heads)
    q_new, qb_new = _scaled(q_kernel, q_bias, scales.query, head_dim, q_out, layout)
    k_new, kb_new = _scaled(k_kernel, k_bias, scales.key, head_dim, k_out, layout)
    return QKClipResult(q_new, k_new, qb_new, kb_new, scales)
