r"""Shampoo: one Kronecker-factored preconditioner per tensor mode.

For a weight ``X`` of order ``k`` (a matrix: ``k = 2``) with gradient ``G`` at
step ``t``, every mode ``i`` keeps a statistic ``Sᵢ`` of the mode Gram matrices
``G₍ᵢ₎G₍ᵢ₎ᵀ`` (for a matrix ``L`` from ``G Gᵀ`` and ``R`` from ``Gᵀ G``)::

    Sᵢ ← Sᵢ + G₍ᵢ₎G₍ᵢ₎ᵀ                      (β₂ = 1: summed, the classic form)
    Sᵢ ← β₂ Sᵢ + (1 − β₂) G₍ᵢ₎G₍ᵢ₎ᵀ          (β₂ < 1: an EMA, divided by 1 − β₂ᵗ)
    Pᵢ = (Sᵢ + ε I)^(−1/(2k))                every ``precondition_every`` steps
    M ← β₁ M + (1 − β₁) G,  M̂ = M / (1 − β₁ᵗ)  (β₁ = 0: M̂ = G)
    S = P₁ ×₁ ⋯ Pₖ ×ₖ M̂                     (a matrix: L^(−1/4) M̂ R^(−1/4))

and the direction ``D`` of ``X ← (1 − γλ) X − γ D`` is ``S`` with the norm of a
*grafted* simpler method, per block: ``D = S ‖A‖_F / ‖S‖_F`` with ``A`` the
Adam direction ``M̂ / (√(V/(1 − β_gᵗ)) + ε_g)``, ``V ← β_g V + (1 − β_g) G²``
(``grafting="adam"``), ``A = M̂`` (``"sgd"``), or ``D = S`` (``"none"``).
Before ``start_preconditioning_step`` the step is ``A`` itself (``M̂`` without
grafting).  Dimensions larger than ``max_preconditioner_dim`` are split into
blocks, each block its own Shampoo (Anil et al.'s blocking); the roots are
:func:`polarlinalg.inv_root` with ``root_method``.

The framework's identity (Lau, Long, Su): with ``β₁ = 0``, ``β₂ = 0``, no
grafting and ``ε → 0`` one step on a full-rank matrix ``G = P Σ Qᵀ`` is
``(GGᵀ)^(−1/4) G (GᵀG)^(−1/4) = P Qᵀ``, the polar factor: Muon is Shampoo
without accumulation.

References
----------
Gupta, Koren, Singer, "Shampoo: Preconditioned Stochastic Tensor Optimization",
ICML 2018; Anil, Gupta, Koren, Regan, Singer, "Scalable Second Order
Optimization for Deep Learning", arXiv:2002.09018 (2020); Shi et al., "A
Distributed Data-Parallel PyTorch Implementation of the Distributed Shampoo
Optimizer", arXiv:2309.06497 (2023); Lau, Long, Su, arXiv:2505.21799 (2025).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._compat import device, lerp
from polarlinalg._dtypes import state_dtype
from polarlinalg._inv_root import INV_ROOT_METHODS, inv_root
from polarlinalg._rules._base import Cond, MatrixRule, eager_cond, static_int, static_number
from polarlinalg._rules._modes import assemble, block_slices, grid, mode_gram, mode_product
from polarlinalg._rules.hyperparams import check_choice, check_pair

__all__ = ["GRAFTINGS", "ROOT_METHODS", "ShampooRule", "ShampooState"]

ROOT_METHODS = INV_ROOT_METHODS
"""Methods of :func:`polarlinalg.inv_root` for the roots."""

GRAFTINGS: tuple[str, ...] = ("adam", "sgd", "none")
"""Grafting choices: the norm of Adam's or SGD's step per block, or none."""


class ShampooState(NamedTuple):
    """Shampoo's state: momentum, the grafting second moment, statistics and roots.

    ``stats`` and ``roots`` hold one ``dᵢ × dᵢ`` matrix per block and mode,
    block-major; ``momentum`` (β₁ > 0) and ``graft_sq`` (Adam grafting) are
    shaped like the parameter, or None.
    """

    momentum: Any
    graft_sq: Any
    stats: tuple[Any, ...]
    roots: tuple[Any, ...]


@dataclass(frozen=True)
class ShampooRule(MatrixRule):
    """Shampoo's hyper-parameters (see the module docstring for the update).

    Attributes
    ----------
    betas : (float, float)
        ``β₁ ∈ [0, 1)`` (gradient EMA; 0: none) and ``β₂ ∈ [0, 1]`` (1: summed
        statistics, the classic Shampoo).
    eps : float
        ``ε ≥ 0`` added as ``S + εI`` when a root is taken (for summed
        statistics that is the classic ``ε I`` start).
    grafting : {"adam", "sgd", "none"}
    graft_beta2, graft_eps : float
        Adam grafting's ``β_g`` and ``ε_g``.
    precondition_every : int
        Steps between new roots.
    start_preconditioning_step : int or None
        First preconditioned step (None: ``precondition_every``); the steps
        before it take the grafted method's step.
    max_preconditioner_dim : int or None
        Block size for larger dimensions (None: never block).
    inv_root_override : float or None
        Root order ``p`` of every factor (``Pᵢ = (Sᵢ + εI)^(−1/p)``); None is
        ``2k`` for order ``k``.
    root_method : {"eigh", "newton"}
        Method of :func:`polarlinalg.inv_root`.
    root_steps : int or None
        Iterations of ``"newton"`` (None: its default).
    bias_correction : bool
        Divide the EMAs by ``1 − βᵗ``.
    """

    name = "shampoo"
    state_type = ShampooState

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-12
    grafting: str = "adam"
    graft_beta2: float = 0.999
    graft_eps: float = 1e-8
    precondition_every: int = 1
    start_preconditioning_step: int | None = None
    max_preconditioner_dim: int | None = 1024
    inv_root_override: float | None = None
    root_method: str = "eigh"
    root_steps: int | None = None
    bias_correction: bool = True

    def __post_init__(self) -> None:
        b1, b2 = check_pair("betas", self.betas)
        b1, b2 = static_number("betas[0]", b1), static_number("betas[1]", b2)
        if not 0.0 <= b1 < 1.0:
            raise ValueError(f"betas[0] (β₁) must be in [0, 1); got {b1!r}")
        if not 0.0 <= b2 <= 1.0:
            raise ValueError(f"betas[1] (β₂) must be in [0, 1] (1: summed statistics); got {b2!r}")
        object.__setattr__(self, "betas", (b1, b2))
        eps = static_number("eps", self.eps)
        if not 0.0 <= eps < math.inf:
            raise ValueError(f"eps must be a finite number >= 0; got {self.eps!r}")
        check_choice("grafting", self.grafting, GRAFTINGS)
        gb2 = static_number("graft_beta2", self.graft_beta2)
        if not 0.0 <= gb2 < 1.0:
            raise ValueError(f"graft_beta2 must be in [0, 1); got {gb2!r}")
        geps = static_number("graft_eps", self.graft_eps)
        if not 0.0 <= geps < math.inf:
            raise ValueError(f"graft_eps must be a finite number >= 0; got {self.graft_eps!r}")
        static_int("precondition_every", self.precondition_every)
        static_int("start_preconditioning_step", self.start_preconditioning_step, optional=True)
        static_int("max_preconditioner_dim", self.max_preconditioner_dim, optional=True)
        if self.inv_root_override is not None:
            root = static_number("inv_root_override", self.inv_root_override)
            if not 0.0 < root < math.inf:
                raise ValueError(f"inv_root_override must be > 0; got {self.inv_root_override!r}")
        check_choice("root_method", self.root_method, ROOT_METHODS)
        if self.root_method == "newton" and self.inv_root_override is not None:
            if float(self.inv_root_override) != int(self.inv_root_override):
                raise ValueError(
                    "root_method='newton' needs an integer inv_root_override; got "
                    f"{self.inv_root_override!r} (use root_method='eigh')"
                )
        static_int("root_steps", self.root_steps, optional=True)
        if not isinstance(self.bias_correction, bool):
            raise TypeError(f"bias_correction must be True or False; got {self.bias_correction!r}")

    @property
    def start(self) -> int:
        """The first preconditioned step."""
        if self.start_preconditioning_step is None:
            return self.precondition_every
        return self.start_preconditioning_step

    def root_order(self, ndim: int) -> float:
        """Return the root ``p`` of every factor of an order-``ndim`` parameter."""
        if self.inv_root_override is not None:
            return self.inv_root_override
        return 2 * ndim

    def init(self, xp: ModuleType, param: Any) -> ShampooState:
        """Zero statistics and roots for every block and mode; zero moments."""
        dtype = state_dtype(xp, param.dtype)
        dev = device(param)
        shape = tuple(param.shape)
        mats = []
        for block in block_slices(shape, self.max_preconditioner_dim):
            for sl in block:
                d = sl.stop - sl.start
                mats.append(xp.zeros((d, d), dtype=dtype, device=dev))
        zeros = xp.zeros(shape, dtype=dtype, device=dev)
        return ShampooState(
            momentum=zeros if self.betas[0] > 0 else None,
            graft_sq=xp.zeros(shape, dtype=dtype, device=dev) if self.grafting == "adam" else None,
            stats=tuple(mats),
            roots=tuple(xp.zeros_like(s) for s in mats),
        )

    def update(
        self, xp: ModuleType, grad: Any, state: ShampooState, count: Any, cond: Cond = eager_cond
    ) -> tuple[Any, ShampooState]:
        """One Shampoo step: return ``(D, new state)``."""
        b1, b2 = self.betas
        dtype = state.stats[0].dtype if state.stats else state_dtype(xp, grad.dtype)
        g = grad if grad.dtype == dtype else xp.astype(grad, dtype)
        shape = tuple(g.shape)
        blocks = block_slices(shape, self.max_preconditioner_dim)
        counts = grid(shape, self.max_preconditioner_dim)
        order = len(shape)

        momentum = state.momentum
        if momentum is not None:
            momentum = lerp(xp, momentum, g, 1 - b1)
            m_hat = momentum / (1 - b1**count) if self.bias_correction else momentum
        else:
            m_hat = g

        graft_sq = state.graft_sq
        if self.grafting == "adam":
            graft_sq = lerp(xp, graft_sq, g * g, 1 - self.graft_beta2)
            v_hat = graft_sq / (1 - self.graft_beta2**count) if self.bias_correction else graft_sq
            graft = m_hat / (xp.sqrt(v_hat) + self.graft_eps)
        else:
            graft = m_hat

        stats = []
        for b, block in enumerate(blocks):
            part = g[block]
            for i in range(order):
                s = state.stats[b * order + i]
                gram = mode_gram(xp, part, i)
                stats.append(s + gram if b2 == 1.0 else lerp(xp, s, gram, 1 - b2))
        stats = tuple(stats)
        scale = 1.0 if b2 == 1.0 or not self.bias_correction else 1 / (1 - b2**count)
        root = self.root_order(order)

        def new_roots(st: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(
                inv_root(
                    s * scale,
                    root,
                    method=self.root_method,
                    eps=self.eps,
                    steps=self.root_steps,
                    check_finite=False,
                )
                for s in st
            )

        start, every = self.start, self.precondition_every
        due = (count >= start) & ((count - start) % every == 0)
        roots = cond(due, new_roots, lambda _: state.roots, stats)

        def preconditioned(operands: tuple[Any, Any]) -> Any:
            m, a = operands
            parts = []
            for b, block in enumerate(blocks):
                s = m[block]
                for i in range(order):
                    s = mode_product(xp, roots[b * order + i], s, i)
                if self.grafting != "none":
                    s = s * _norm_ratio(xp, a[block], s)
                parts.append(s)
            return assemble(xp, parts, counts)

        direction = cond(count >= start, preconditioned, lambda ops: ops[1], (m_hat, graft))
        return direction, ShampooState(momentum, graft_sq, stats, roots)


def _norm_ratio(xp: ModuleType, a: Any, s: Any) -> Any:
    """``‖a‖_F / ‖s‖_F`` (0 where ``s`` is zero) as a 0-d array."""
    ns = xp.sqrt(xp.sum(s * s))
    na = xp.sqrt(xp.sum(a * a))
    positive = ns > 0
    return xp.where(positive, na / xp.where(positive, ns, xp.ones_like(ns)), xp.zeros_like(ns))
