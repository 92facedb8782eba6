r"""Matrix logistic regression ``f(X) = Σ softplus(−C ⊙ (A X B))``, sampled by row minibatches."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from polarlinalg.problems._data import Placement, check_positive_int

__all__ = ["LogisticRegression"]


class LogisticRegression:
    r"""Bilinear logistic regression with ±1 labels (the paper's second experiment).

    ``A`` is ``N × m`` (one row per sample), ``X`` is ``m × n``, ``B`` is ``n × q``
    and the labels ``C ∈ {−1, +1}^{N × q}`` are ``+1`` where an independent
    standard Gaussian exceeds ``0.5`` (as in the official code).  With
    ``Z = A_S X B`` on a minibatch ``S`` of rows (drawn with replacement)::

        f_S(X) = Σ softplus(−C_S ⊙ Z),   ∇f_S(X) = A_Sᵀ (−C_S ⊙ σ(−C_S ⊙ Z)) Bᵀ,

    with ``σ`` the logistic function.  The loss is a sum, not a mean, as in the
    paper, which is what its learning rates are for.

    Parameters
    ----------
    m, n, samples, q : int, default 1000, 100, 10000, 400
    batch_size : int, default 1000
    seed : int, default 42
        Seed of the data; minibatches come from the generator given to
        :meth:`sample_batch`.
    xp, dtype, device
        As in :class:`~polarlinalg.problems.QuadraticRegression`.

    Attributes
    ----------
    f_star : None
        Not known in closed form.
    """

    name = "logistic"
    parameter_names = ("X",)
    f_star = None

    def __init__(
        self,
        *,
        m: int = 1000,
        n: int = 100,
        samples: int = 10000,
        q: int = 400,
        batch_size: int = 1000,
        seed: int = 42,
        xp: ModuleType | None = None,
        dtype: Any = "float32",
        device: Any = None,
    ) -> None:
        names = ("m", "n", "samples", "q", "batch_size")
        m, n, samples, q, batch_size = (
            check_positive_int(k, v)
            for k, v in zip(names, (m, n, samples, q, batch_size), strict=True)
        )
        self.sizes = {"m": m, "n": n, "samples": samples, "q": q, "batch_size": batch_size}
        self.batch_size = batch_size
        self.seed = seed
        self.placement = Placement(xp, dtype, device)
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((samples, m))
        b = rng.standard_normal((n, q))
        c = np.where(rng.standard_normal((samples, q)) > 0.5, 1.0, -1.0)
        self._x0 = rng.uniform(-1.0, 1.0, (m, n))
        put = self.placement.put
        self.a, self.b, self.c = put(a), put(b), put(c)

    @property
    def xp(self) -> ModuleType:
        """The namespace of the problem's arrays."""
        return self.placement.xp

    def init_params(self) -> dict[str, Any]:
        """Return ``{"X": X₀}``."""
        return {"X": self.placement.put(self._x0)}

    def sample_batch(self, rng: np.random.Generator) -> Any:
        """Return the row indices of one minibatch (with replacement), on ``xp``."""
        idx = rng.integers(0, self.sizes["samples"], size=self.batch_size)
        xp, device = self.xp, self.placement.device
        host = idx.astype(np.int64)
        return xp.asarray(host) if device is None else xp.asarray(host, device=device)

    def _rows(self, batch: Any) -> tuple[Any, Any]:
        if batch is None:
            return self.a, self.c
        return self.xp.take(self.a, batch, axis=0), self.xp.take(self.c, batch, axis=0)

    def loss(self, params: dict[str, Any], batch: Any = None) -> Any:
        """Return ``f_S(X)`` on minibatch ``batch`` (all rows when None)."""
        xp = self.xp
        a, c = self._rows(batch)
        margin = -c * (a @ params["X"] @ self.b)
        return xp.sum(xp.logaddexp(xp.zeros_like(margin), margin))

    def grads(self, params: dict[str, Any], batch: Any = None) -> dict[str, Any]:
        """Return ``{"X": ∇f_S(X)}`` on minibatch ``batch`` (all rows when None)."""
        xp = self.xp
        a, c = self._rows(batch)
        margin = -c * (a @ params["X"] @ self.b)
        # σ(t) = exp(−softplus(−t)): no overflow for either sign of t.  Below the log of
        # the smallest normal number σ(t) ≈ eᵗ would be subnormal, which is negligible
        # next to the other terms but makes the matrix products many times slower on
        # x86 CPUs: those margins are clipped to it.
        floor = math.log(float(xp.finfo(margin.dtype).smallest_normal)) + 1.0
        margin = xp.clip(margin, min=floor)
        sigma = xp.exp(-xp.logaddexp(xp.zeros_like(margin), -margin))
        dz = -c * sigma
        return {"X": xp.matrix_transpose(a) @ dz @ xp.matrix_transpose(self.b)}
