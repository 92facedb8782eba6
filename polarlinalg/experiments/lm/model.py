"""A compact GPT: pre-norm decoder blocks, causal attention, rotary positions.

Byte-level (vocabulary 256), untied token embedding and output head, RMSNorm
before attention and MLP and before the head, no biases, rotary position
embeddings (no position parameters), GELU MLP of width ``4·d_model``.  The
parameters fall into four groups that the optimizer arms treat differently
(:meth:`GPT.parameter_groups`): ``embed`` (the ``(256, d_model)`` embedding),
``head`` (the ``(256, d_model)`` output matrix), ``hidden`` (the attention and
MLP matrices) and ``vectors`` (the norm weights).

On request (:meth:`GPT.record_max_logits`) every attention layer records the
largest logit of each head over the allowed (causal) positions of the batch,
which :meth:`GPT.qk_clip_` feeds to QK-Clip (:func:`polarlinalg.torch.qk_clip_`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from polarlinalg.experiments.lm._torch import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = ["GPT", "GPTConfig", "max_causal_logits"]


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the model."""

    n_layer: int
    n_head: int
    d_model: int
    seq_len: int
    vocab_size: int = 256

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "d_model", "seq_len", "vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        if self.d_model % self.n_head or (self.d_model // self.n_head) % 2:
            raise ValueError(
                f"d_model ({self.d_model}) must be a multiple of n_head ({self.n_head}) "
                "with an even head width (rotary embeddings rotate pairs)"
            )


def _rotary_tables(seq_len: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive halves of the head dimension of ``x`` (B, H, T, D)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


# Elements of one chunk of the logit tensor (B·H·T·T) when measuring its maxima:
# 2**26 float32 numbers are 256 MiB, whatever the batch.
_LOGIT_CHUNK = 2**26


@torch.no_grad()
def max_causal_logits(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Return each head's largest attention logit ``⟨q_i, k_j⟩/√d``, ``j ≤ i``, over the batch.

    ``q``, ``k``: ``(B, H, T, D)`` after the rotary embedding (what
    ``scaled_dot_product_attention`` sees, with its default scale ``1/√D``).
    Computed in float32, a chunk of the batch at a time; returns ``(H,)``.
    """
    b, h, t, d = q.shape
    allowed = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    step = max(1, _LOGIT_CHUNK // max(1, h * t * t))
    best = torch.full((h,), -torch.inf, dtype=torch.float32, device=q.device)
    for start in range(0, b, step):
        qc, kc = q[start : start + step].float(), k[start : start + step].float()
        logits = (qc @ kc.transpose(-1, -2)) * (1.0 / math.sqrt(d))
        logits = logits.masked_fill(~allowed, -torch.inf)
        best = torch.maximum(best, logits.amax(dim=(0, 2, 3)))
    return best


class _Attention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.record_max_logits = False
        self.max_logits: torch.Tensor | None = None  # (n_head,), since the last reset

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, d // self.n_head).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        q, k = _rotate(q, cos[:t], sin[:t]), _rotate(k, cos[:t], sin[:t])
        if self.record_max_logits and self.training:
            new = max_causal_logits(q.detach(), k.detach())
            old = self.max_logits
            self.max_logits = new if old is None else torch.maximum(old, new)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class _Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(config.d_model)
        self.attn = _Attention(config)
        self.norm2 = nn.RMSNorm(config.d_model)
        self.fc = nn.Linear(config.d_model, 4 * config.d_model, bias=False)
        self.out = nn.Linear(4 * config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.out(F.gelu(self.fc(self.norm2(x))))


class GPT(nn.Module):
    """The decoder; ``forward(tokens)`` returns logits of shape ``(B, T, vocab)``.

    Initialisation: normal with standard deviation 0.02, the residual output
    projections scaled by ``1/√(2·n_layer)`` (GPT-2).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layer))
        self.norm = nn.RMSNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        cos, sin = _rotary_tables(config.seq_len, config.d_model // config.n_head)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if p.ndim < 2:
                continue
            std = residual_std if name.endswith(("attn.proj.weight", "out.weight")) else 0.02
            nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Return next-token logits for ``tokens`` (int64, ``(B, T)``, ``T ≤ seq_len``)."""
        if tokens.shape[-1] > self.config.seq_len:
            raise ValueError(
                f"tokens has length {tokens.shape[-1]}, more than seq_len = {self.config.seq_len}"
            )
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, self.rope_cos, self.rope_sin)
        return self.head(self.norm(x))

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return the mean next-byte cross-entropy (nats)."""
        logits = self(tokens)
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())

    def record_max_logits(self, enabled: bool = True) -> None:
        """Measure each head's max attention logit on every training-mode forward pass (or stop).

        The measurement (:func:`max_causal_logits`, an extra ``q·kᵀ`` per
        layer without gradient) is off by default and skipped in eval mode
        (validation does not feed the clip); the maxima accumulate over
        forward passes until :meth:`qk_clip_` or :meth:`max_attention_logits`
        with ``reset=True`` consumes them.
        """
        for block in self.blocks:
            block.attn.record_max_logits = bool(enabled)
            block.attn.max_logits = None

    def max_attention_logits(self, *, reset: bool = False) -> torch.Tensor | None:
        """Return the recorded maxima, ``(n_layer, n_head)``; None when nothing was recorded."""
        values = [block.attn.max_logits for block in self.blocks]
        if reset:
            for block in self.blocks:
                block.attn.max_logits = None
        if any(v is None for v in values):
            return None
        return torch.stack(values)

    def qk_clip_(self, threshold: float) -> torch.Tensor | None:
        """QK-Clip every layer with the recorded maxima (:func:`polarlinalg.torch.qk_clip_`).

        The query and key rows of the fused ``qkv`` weight of every head
        whose recorded max logit exceeds ``threshold`` are scaled by
        ``√(threshold/S_h)`` in place.  Returns the recorded maxima
        ``(n_layer, n_head)`` (and resets them), or None (changing nothing)
        when none were recorded since the last call.
        """
        from polarlinalg.torch import qk_clip_

        logits = self.max_attention_logits(reset=True)
        if logits is None:
            return None
        d = self.config.d_model
        for block, layer in zip(self.blocks, logits, strict=True):
            w = block.attn.qkv.weight
            qk_clip_(w[:d], w[d : 2 * d], layer, threshold=threshold, num_heads=self.config.n_head)
        return logits

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Return the parameters as ``embed``, ``head``, ``hidden`` and ``vectors``."""
        hidden = [p for p in self.blocks.parameters() if p.ndim >= 2]
        vectors = [p for p in self.parameters() if p.ndim < 2]
        return {
            "embed": [self.embed.weight],
            "head": [self.head.weight],
            "hidden": hidden,
            "vectors": vectors,
        }
