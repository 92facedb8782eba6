"""The record of one training run (framework-free).

:func:`polarlinalg.experiments.lm.train.train_run` fills it in;
:mod:`polarlinalg.experiments.lm.report` writes it out and reads it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["RunResult"]


@dataclass
class RunResult:
    """What one run produced.

    ``log`` has one dict per step: ``step`` (1-based), ``time`` (cumulative
    ``train_time``), ``lr_factor``, ``train_loss`` and, where measured,
    ``val_loss``, ``kappa_embed``, ``kappa_head``, ``nuc_embed``, ``nuc_head``,
    ``nuc_m_hidden``, ``nuc_m_ends`` (:func:`~polarlinalg.experiments.lm.train.momentum_norms`).
    """

    arm: str
    seed: int
    lrs: dict[str, float]
    log: list[dict[str, float]] = field(default_factory=list)
    final_val_loss: float = math.nan
    train_time: float = 0.0
    opt_time: float = 0.0
    tokens: int = 0
    diverged: bool = False

    @property
    def tokens_per_s(self) -> float:
        """Training tokens per second of ``train_time``."""
        return self.tokens / self.train_time if self.train_time > 0 else math.nan

    @property
    def opt_share(self) -> float:
        """The optimizer step's share of ``train_time``."""
        return self.opt_time / self.train_time if self.train_time > 0 else math.nan
