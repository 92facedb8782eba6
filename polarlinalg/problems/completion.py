r"""Low-rank matrix completion ``f(X, Y) = Σ(Ω ⊙ (XYᵀ − M))² / |Ω|``."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from polarlinalg.problems._data import Placement, check_positive_int

__all__ = ["MatrixCompletion"]


class MatrixCompletion:
    r"""Recover a rank-``r`` matrix from a random subset of its entries (the paper's third).

    ``M = U Vᵀ`` with ``U`` (``m × r``) and ``V`` (``n × r``) i.i.d. ``N(0, 1)``;
    each entry is observed with probability ``observed`` (the mask ``Ω``); the
    factors ``X`` (``m × r``) and ``Y`` (``n × r``) start ``U(−1, 1)``.  With
    ``R = Ω ⊙ (XYᵀ − M)``::

        f = Σ R² / |Ω|,   ∇_X f = 2 R Y / |Ω|,   ∇_Y f = 2 Rᵀ X / |Ω|.

    ``f* = 0`` (attained by ``X = U``, ``Y = V``).

    Parameters
    ----------
    m, n, rank : int, default 500, 250, 5
    observed : float, default 0.3
        Probability that an entry is observed, in ``(0, 1]``.
    seed : int, default 42
    xp, dtype, device
        As in :class:`~polarlinalg.problems.QuadraticRegression`.
    """

    name = "completion"
    parameter_names = ("X", "Y")
    f_star = 0.0

    def __init__(
        self,
        *,
        m: int = 500,
        n: int = 250,
        rank: int = 5,
        observed: float = 0.3,
        seed: int = 42,
        xp: ModuleType | None = None,
        dtype: Any = "float32",
        device: Any = None,
    ) -> None:
        m, n, rank = (
            check_positive_int(k, v) for k, v in zip(("m", "n", "rank"), (m, n, rank), strict=True)
        )
        if not 0.0 < float(observed) <= 1.0:
            raise ValueError(f"observed must be in (0, 1]; got {observed!r}")
        self.sizes = {"m": m, "n": n, "rank": rank}
        self.observed = float(observed)
        self.seed = seed
        self.placement = Placement(xp, dtype, device)
        rng = np.random.default_rng(seed)
        target = rng.standard_normal((m, rank)) @ rng.standard_normal((n, rank)).T
        mask = (rng.random((m, n)) < observed).astype(np.float64)
        if not mask.any():
            raise ValueError("no entry is observed; raise `observed` or the sizes")
        self._x0 = rng.uniform(-1.0, 1.0, (m, rank))
        self._y0 = rng.uniform(-1.0, 1.0, (n, rank))
        self.count = float(mask.sum())
        put = self.placement.put
        self.target, self.mask = put(target), put(mask)

    @property
    def xp(self) -> ModuleType:
        """The namespace of the problem's arrays."""
        return self.placement.xp

    def init_params(self) -> dict[str, Any]:
        """Return ``{"X": X₀, "Y": Y₀}``."""
        put = self.placement.put
        return {"X": put(self._x0), "Y": put(self._y0)}

    def sample_batch(self, rng: np.random.Generator) -> None:
        """Return None: full-batch problem."""
        return None

    def residual(self, params: dict[str, Any]) -> Any:
        """Return ``Ω ⊙ (XYᵀ − M)``."""
        x, y = params["X"], params["Y"]
        return self.mask * (x @ self.xp.matrix_transpose(y) - self.target)

    def loss(self, params: dict[str, Any], batch: Any = None) -> Any:
        """Return ``f(X, Y)``."""
        r = self.residual(params)
        return self.xp.sum(r * r) / self.count

    def grads(self, params: dict[str, Any], batch: Any = None) -> dict[str, Any]:
        """Return ``{"X": ∇_X f, "Y": ∇_Y f}``."""
        r = self.residual(params)
        scale = 2.0 / self.count
        return {
            "X": scale * (r @ params["Y"]),
            "Y": scale * (self.xp.matrix_transpose(r) @ params["X"]),
        }
