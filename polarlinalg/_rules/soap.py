r"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner.

For a weight ``X`` of order ``k`` with gradient ``G``, every mode ``i`` with
``dᵢ ≤ max_precondition_dim`` keeps an EMA ``Sᵢ`` of the mode Gram matrix
``G₍ᵢ₎G₍ᵢ₎ᵀ`` (``L`` and ``R`` for a matrix) and an orthogonal basis ``Qᵢ``;
write ``rot(Y) = Q₁ᵀ ×₁ ⋯ Qₖᵀ ×ₖ Y`` (``Q_Lᵀ Y Q_R``) and ``rot⁻¹`` for the
way back (modes above the limit are not rotated).  The first step only
initialises: ``Sᵢ = (1 − β_s) G₍ᵢ₎G₍ᵢ₎ᵀ`` and ``Qᵢ`` its eigenvectors by
descending eigenvalue, with no change of ``X``.  Each later step ``t`` (counted
from the second step, ``t = 1, 2, …``)::

    M ← β₁ M + (1 − β₁) G                  (original basis)
    V ← β₂ V + (1 − β₂) rot(G)²            (rotated basis)
    D = c · rot⁻¹( rot(M) / (√V + ε) ),    c = √(1 − β₂ᵗ) / (1 − β₁ᵗ)  (correct_bias)
    X ← (X − γ D)(1 − γλ)                  (weight decay after the step)
    Sᵢ ← β_s Sᵢ + (1 − β_s) G₍ᵢ₎G₍ᵢ₎ᵀ

and every ``precondition_frequency`` steps the bases are refreshed by one step
of power iteration: the columns of ``Qᵢ`` are sorted by ``diag(Qᵢᵀ Sᵢ Qᵢ)``
(descending, ``V`` permuted with them along mode ``i``) and
``Qᵢ ← qr(Sᵢ Qᵢ)``.  ``β_s`` is ``shampoo_beta`` (None: ``β₂``).  This is the
reference algorithm (nikhilvyas/SOAP, pytorch-optimizer's ``SOAP``) with its
argument names.

References
----------
Vyas, Morwani, Zhao, Shapira, Brandfonbrener, Janson, Kakade, "SOAP: Improving
and Stabilizing Shampoo using Adam", arXiv:2409.11321 (2024).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._compat import device, lerp, qr_q
from polarlinalg._dtypes import state_dtype
from polarlinalg._linalg import eye_like
from polarlinalg._rules._base import Cond, MatrixRule, eager_cond, static_int, static_number
from polarlinalg._rules._modes import mode_gram, mode_product
from polarlinalg._rules.hyperparams import check_pair

__all__ = ["SOAPRule", "SOAPState"]


class SOAPState(NamedTuple):
    """SOAP's state (the reference's keys): moments, statistics ``GG`` and bases ``Q``.

    ``GG`` and ``Q`` hold one matrix per rotated mode, in mode order.
    """

    exp_avg: Any
    exp_avg_sq: Any
    GG: tuple[Any, ...]
    Q: tuple[Any, ...]


@dataclass(frozen=True)
class SOAPRule(MatrixRule):
    """SOAP's hyper-parameters, with the reference's names and defaults.

    Attributes
    ----------
    betas : (float, float)
        Adam's ``β₁, β₂`` in ``[0, 1)``.
    shampoo_beta : float or None
        ``β_s`` of the statistics (None: ``β₂``).
    eps : float
        Adam's ``ε``.
    precondition_frequency : int
        Steps between basis refreshes.
    max_precondition_dim : int
        Modes larger than this are not rotated.
    correct_bias : bool
        Adam's bias correction in the step size.
    """

    name = "soap"
    state_type = SOAPState

    betas: tuple[float, float] = (0.95, 0.95)
    shampoo_beta: float | None = None
    eps: float = 1e-8
    precondition_frequency: int = 10
    max_precondition_dim: int = 10000
    correct_bias: bool = True

    def __post_init__(self) -> None:
        b1, b2 = check_pair("betas", self.betas)
        b1, b2 = static_number("betas[0]", b1), static_number("betas[1]", b2)
        for label, value in (("betas[0]", b1), ("betas[1]", b2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{label} must be in [0, 1); got {value!r}")
        object.__setattr__(self, "betas", (b1, b2))
        if self.shampoo_beta is not None:
            sb = static_number("shampoo_beta", self.shampoo_beta)
            if not 0.0 <= sb < 1.0:
                raise ValueError(f"shampoo_beta must be None or in [0, 1); got {sb!r}")
        eps = static_number("eps", self.eps)
        if not 0.0 <= eps < math.inf:
            raise ValueError(f"eps must be a finite number >= 0; got {self.eps!r}")
        static_int("precondition_frequency", self.precondition_frequency)
        static_int("max_precondition_dim", self.max_precondition_dim)
        if not isinstance(self.correct_bias, bool):
            raise TypeError(f"correct_bias must be True or False; got {self.correct_bias!r}")

    def modes(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Return the rotated modes of a parameter of ``shape``."""
        return tuple(i for i, d in enumerate(shape) if d <= self.max_precondition_dim)

    def init(self, xp: ModuleType, param: Any) -> SOAPState:
        """Zero moments and statistics; bases are set by the first step."""
        dtype = state_dtype(xp, param.dtype)
        dev = device(param)
        shape = tuple(param.shape)
        mats = tuple(
            xp.zeros((shape[i], shape[i]), dtype=dtype, device=dev) for i in self.modes(shape)
        )
        return SOAPState(
            exp_avg=xp.zeros(shape, dtype=dtype, device=dev),
            exp_avg_sq=xp.zeros(shape, dtype=dtype, device=dev),
            GG=mats,
            Q=tuple(xp.zeros_like(m) for m in mats),
        )

    def update(
        self, xp: ModuleType, grad: Any, state: SOAPState, count: Any, cond: Cond = eager_cond
    ) -> tuple[Any, SOAPState]:
        """One SOAP step: return ``(D, new state)`` (``D = 0`` at the first step)."""
        b1, b2 = self.betas
        sb = b2 if self.shampoo_beta is None else float(self.shampoo_beta)
        dtype = state.exp_avg.dtype
        g = grad if grad.dtype == dtype else xp.astype(grad, dtype)
        modes = self.modes(tuple(g.shape))
        stats = tuple(
            lerp(xp, s, mode_gram(xp, g, i), 1 - sb) for s, i in zip(state.GG, modes, strict=True)
        )

        def first(st: SOAPState) -> tuple[Any, SOAPState]:
            bases = []
            for s in stats:
                _, q = xp.linalg.eigh(s + 1e-30 * eye_like(xp, s, s.shape[-1]))
                bases.append(xp.flip(q, axis=-1))  # descending eigenvalues
            return xp.zeros_like(g), SOAPState(st.exp_avg, st.exp_avg_sq, stats, tuple(bases))

        def later(st: SOAPState) -> tuple[Any, SOAPState]:
            t = count - 1
            rotated = _rotate(xp, g, st.Q, modes, back=False)
            exp_avg = lerp(xp, st.exp_avg, g, 1 - b1)
            exp_avg_sq = lerp(xp, st.exp_avg_sq, rotated * rotated, 1 - b2)
            step = _rotate(xp, exp_avg, st.Q, modes, back=False) / (xp.sqrt(exp_avg_sq) + self.eps)
            direction = _rotate(xp, step, st.Q, modes, back=True)
            if self.correct_bias:
                direction = direction * (_sqrt(1 - b2**t) / (1 - b1**t))

            def refresh(ops: tuple[Any, Any]) -> tuple[Any, Any]:
                bases, sq = ops
                new = []
                for s, q, i in zip(stats, bases, modes, strict=True):
                    product = s @ q
                    order = xp.argsort(xp.sum(q * product, axis=0), descending=True)
                    sq = xp.take(sq, order, axis=i)
                    new.append(qr_q(xp, xp.take(product, order, axis=1)))
                return tuple(new), sq

            due = t % self.precondition_frequency == 0
            bases, exp_avg_sq = cond(due, refresh, lambda ops: ops, (st.Q, exp_avg_sq))
            return direction, SOAPState(exp_avg, exp_avg_sq, stats, bases)

        return cond(count == 1, first, later, state)

    def increment(
        self, xp: ModuleType, param: Any, direction: Any, lr: Any, weight_decay: Any, count: Any
    ) -> Any:
        """``Δ`` of ``X ← (X − γD)(1 − γλ)``; nothing at the first step (the reference's order)."""
        if direction.dtype != param.dtype:
            direction = xp.astype(direction, param.dtype)
        step = -lr * direction
        if isinstance(weight_decay, numbers.Real) and float(weight_decay) == 0.0:
            return step
        if isinstance(count, numbers.Integral):
            active: Any = 1.0 if count > 1 else 0.0
        else:
            active = xp.astype(count > 1, param.dtype)
        return step - (lr * weight_decay * active) * (param + step)


def _sqrt(x: Any) -> Any:
    return math.sqrt(x) if isinstance(x, numbers.Real) else x**0.5


def _rotate(
    xp: ModuleType, x: Any, bases: tuple[Any, ...], modes: tuple[int, ...], *, back: bool
) -> Any:
    """``rot(x)`` (``Qᵢᵀ`` along each rotated mode) or, with ``back``, ``rot⁻¹(x)``."""
    for q, i in zip(bases, modes, strict=True):
        x = mode_product(xp, q if back else q.mT, x, i)
    return x
