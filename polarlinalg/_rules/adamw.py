r"""The AdamW rule, for the parameters that are not matrices (biases, norms, scalars).

With gradient ``g``, step ``t``, ``m ← β₁ m + (1 − β₁) g``, ``v ← β₂ v + (1 − β₂)|g|²``,
``m̂ = m/(1 − β₁ᵗ)``, ``v̂ = v/(1 − β₂ᵗ)``, the direction is
``D = m̂ / (√(v̂ + ε_root) + ε)`` and the step ``x ← (1 − γλ) x − γ D``
(Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019; the
same update as ``torch.optim.AdamW`` and ``optax.adamw``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from polarlinalg._rules.hyperparams import check_beta, check_nonnegative

__all__ = ["AdamWRule", "adamw_direction"]


@dataclass(frozen=True)
class AdamWRule:
    """Hyper-parameters of the AdamW rule (the learning rate and decay are the wrapper's)."""

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-8
    eps_root: Any = 0.0

    def __post_init__(self) -> None:
        check_beta("adamw beta1", self.b1)
        check_beta("adamw beta2", self.b2)
        check_nonnegative("adamw eps", self.eps)
        check_nonnegative("adamw eps_root", self.eps_root)


def adamw_direction(
    xp: ModuleType, rule: AdamWRule, grad: Any, mu: Any, nu: Any, count: Any
) -> tuple[Any, Any, Any]:
    """Return ``(D, m, v)`` for one AdamW step ``t = count`` (≥ 1).

    ``mu`` and ``nu`` carry the state dtype (``nu`` is real for complex
    parameters); ``D`` comes out in ``mu``'s dtype.
    """
    if grad.dtype != mu.dtype:
        grad = xp.astype(grad, mu.dtype)
    if xp.isdtype(grad.dtype, "complex floating"):
        sq = xp.real(grad * xp.conj(grad))
    else:
        sq = grad * grad
    mu = mu + (1 - rule.b1) * (grad - mu)
    nu = nu + (1 - rule.b2) * (sq - nu)
    mu_hat = mu / (1 - rule.b1**count)
    nu_hat = nu / (1 - rule.b2**count)
    return mu_hat / (xp.sqrt(nu_hat + rule.eps_root) + rule.eps), mu, nu
