"""The presets: model shape, batch, steps, schedule and learning rates.

``tiny``
    A 4-layer, 128-wide GPT on 128-byte windows; every arm for one seed runs
    in under five minutes on two CPU cores (float32).  Its learning rates are
    the interior optima of a bracketed sweep on this preset (below; docs/lm.md).
``gpu``
    GPT-2-small-shaped (12 layers, 12 heads, width 768, 1024-byte windows,
    byte vocabulary) with bfloat16 autocast, sized for about five minutes per
    arm on one H100/H200.  Its learning rates are ``tiny``'s, not re-tuned: no
    GPU was available to sweep them.

This module imports no framework.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["PRESETS", "Preset", "get_preset"]

# Learning rates per role, the same for every arm that uses the role: the interior optima of
# `polarlinalg experiment lm --preset tiny --sweep adamw --sweep muon,polargrad_hidden,shampoo,
# soap,normuon --sweep polargrad_embed_head --jobs 2 --threads 1` (grid factor √10, seed 1000,
# which no result uses; 200 steps), run on 2026-12-04 and recorded in docs/img/lm/sweep.md:
#   adamw                 3.16e-4 → 2.522, 1e-3 → 2.190, 3.16e-3 → 2.036, 1e-2 → 2.441
#   muon                  1e-2 → 2.088, 3.16e-2 → 1.851, 1e-1 → 1.968, 3.16e-1 → 2.413
#   polargrad_hidden      9.49e-2 → 2.115, 3e-1 → 2.027, 9.49e-1 → 2.196
#   shampoo               3e-3 → 1.973, 9.49e-3 → 1.957, 3e-2 → 2.359
#   soap                  3.16e-3 → 2.134, 1e-2 → 2.080, 3.16e-2 → 2.414
#   normuon               3e-3 → 2.053, 9.49e-3 → 1.818, 3e-2 → 1.891
#   polargrad_embed_head  3e-2 → 1.901, 9.49e-2 → 1.895, 3e-1 → 1.955
# (stage 2 ran with adamw at its optimum, stage 3 with muon at its optimum too).
_SQRT10 = 10**0.5
_TINY_LRS = {
    "adamw": 1e-3 * _SQRT10,
    "muon": 1e-2 * _SQRT10,
    "polargrad_hidden": 0.3,
    "polargrad_embed_head": 3e-2 * _SQRT10,
    "shampoo": 3e-3 * _SQRT10,
    "soap": 1e-2,
    "normuon": 3e-3 * _SQRT10,
}


@dataclass(frozen=True)
class Preset:
    """Everything a run needs besides the arm and the seed.

    Attributes
    ----------
    name : str
    n_layer, n_head, d_model, seq_len : int
        The model (:class:`~polarlinalg.experiments.lm.model.GPTConfig`).
    batch_size : int
        Windows per step (``batch_size · seq_len`` tokens).
    steps : int
        Optimizer steps.
    warmup_steps : int
        Linear warm-up (every arm but ``adamw_no_warmup``).
    final_lr_fraction : float
        Cosine decay ends at this fraction of the peak learning rate.
    eval_every, eval_batches : int
        Validation loss every ``eval_every`` steps (and at the end) on
        ``eval_batches`` fixed batches.
    diag_every : int
        κ₂ and nuclear norm of the embedding and head gradients every
        ``diag_every`` steps (and at the first and last step).
    autocast : bool
        bfloat16 autocast of the forward pass (accelerators).
    device : str
        Default device.
    weight_decay : float
        Decoupled weight decay of the matrices, every arm.
    lrs : dict
        Learning rate per role (``adamw``, ``muon``, ``polargrad_hidden``,
        ``polargrad_embed_head``, ``shampoo``, ``soap``, ``normuon``).
    """

    name: str
    n_layer: int
    n_head: int
    d_model: int
    seq_len: int
    batch_size: int
    steps: int
    warmup_steps: int
    final_lr_fraction: float
    eval_every: int
    eval_batches: int
    diag_every: int
    autocast: bool
    device: str
    weight_decay: float = 0.0
    lrs: dict[str, float] = field(default_factory=dict)

    def replace(self, **changes: object) -> Preset:
        """Return a copy with ``changes``.

        A new ``steps`` rescales warm-up, evaluation and diagnostic intervals
        unless those are given too.
        """
        if "steps" in changes:
            steps = changes["steps"]
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
                raise ValueError(f"steps must be a positive int; got {steps!r}")
            ratio = steps / self.steps
            changes.setdefault("warmup_steps", round(self.warmup_steps * ratio))
            changes.setdefault("eval_every", max(1, round(self.eval_every * ratio)))
            changes.setdefault("diag_every", max(1, round(self.diag_every * ratio)))
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        n_layer=4,
        n_head=4,
        d_model=128,
        seq_len=128,
        batch_size=16,
        steps=200,
        warmup_steps=20,
        final_lr_fraction=0.1,
        eval_every=50,
        eval_batches=8,
        diag_every=10,
        autocast=False,
        device="cpu",
        lrs=dict(_TINY_LRS),
    ),
    "gpu": Preset(
        name="gpu",
        n_layer=12,
        n_head=12,
        d_model=768,
        seq_len=1024,
        batch_size=64,
        steps=1000,
        warmup_steps=100,
        final_lr_fraction=0.1,
        eval_every=100,
        eval_batches=16,
        diag_every=50,
        autocast=True,
        device="cuda",
        lrs=dict(_TINY_LRS),
    ),
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``; ValueError naming the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
