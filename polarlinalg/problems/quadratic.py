r"""Matrix quadratic regression ``f(X) = ½‖AXB − C‖²_F``.

The Hessian is ``BBᵀ ⊗ AᵀA``, so ``κ_H = κ₂(A)² κ₂(B)²``: the problem is as
ill-conditioned as its data, which is where the paper shows that PolarGrad's
nuclear-norm scaling converges linearly while Muon's unscaled step stalls.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from polarlinalg.problems._data import Placement, check_positive_int

__all__ = ["QuadraticRegression"]


class QuadraticRegression:
    r"""``min_X ½‖AXB − C‖²_F`` with Gaussian data (the paper's first experiment).

    ``A`` is ``p × m``, ``X`` is ``m × n``, ``B`` is ``n × q`` and ``C`` is
    ``p × q``, all i.i.d. ``N(0, 1)``; ``X₀`` is ``U(−1, 1)``.  The gradient is
    ``∇f(X) = Aᵀ(AXB − C)Bᵀ``.

    Parameters
    ----------
    m, n, p, q : int, default 500, 100, 1000, 250
        Sizes (the paper's).
    seed : int, default 42
        Seed of the host generator; the same seed gives the same data (and
        ``X₀``) on every backend.
    xp : module, optional
        Namespace of the arrays (default NumPy): numpy, torch, jax.numpy, cupy,
        array_api_strict or an array-api-compat namespace.
    dtype : str or dtype, default "float32"
    device : object, optional

    Attributes
    ----------
    a, b, c : arrays
        The data, on ``xp``.
    f_star : float
        ``min f`` from a float64 least-squares solve on the host:
        ``X* = A⁺ C B⁺`` (``A`` has full column rank and ``B`` full row rank
        with probability one when ``p ≥ m`` and ``q ≥ n``).
    hessian_condition : float
        ``κ₂(A)² κ₂(B)²``.

    Examples
    --------
    >>> from polarlinalg.problems import QuadraticRegression
    >>> prob = QuadraticRegression(m=20, n=5, p=40, q=10, seed=0, dtype="float64")
    >>> params = prob.init_params()
    >>> bool(prob.loss(params) > prob.f_star)
    True
    """

    name = "quadratic"
    parameter_names = ("X",)

    def __init__(
        self,
        *,
        m: int = 500,
        n: int = 100,
        p: int = 1000,
        q: int = 250,
        seed: int = 42,
        xp: ModuleType | None = None,
        dtype: Any = "float32",
        device: Any = None,
    ) -> None:
        m, n, p, q = (check_positive_int(k, v) for k, v in zip("mnpq", (m, n, p, q), strict=True))
        if p < m or q < n:
            raise ValueError(
                f"need p >= m and q >= n for a unique minimizer; got m={m}, n={n}, p={p}, q={q}"
            )
        self.sizes = {"m": m, "n": n, "p": p, "q": q}
        self.seed = seed
        self.placement = Placement(xp, dtype, device)
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((p, m))
        b = rng.standard_normal((n, q))
        c = rng.standard_normal((p, q))
        self._x0 = rng.uniform(-1.0, 1.0, (m, n))
        self._host = (a, b, c)
        x_star = np.linalg.lstsq(b.T, np.linalg.lstsq(a, c, rcond=None)[0].T, rcond=None)[0].T
        self.f_star = float(0.5 * np.sum((a @ x_star @ b - c) ** 2))
        self.hessian_condition = float(np.linalg.cond(a) ** 2 * np.linalg.cond(b) ** 2)
        put = self.placement.put
        self.a, self.b, self.c = put(a), put(b), put(c)
        self._gram = None

    @property
    def xp(self) -> ModuleType:
        """The namespace of the problem's arrays."""
        return self.placement.xp

    def init_params(self) -> dict[str, Any]:
        """Return ``{"X": X₀}`` (a fresh array, the same for a given seed)."""
        return {"X": self.placement.put(self._x0)}

    def residual(self, params: dict[str, Any]) -> Any:
        """Return ``AXB − C``."""
        return self.a @ params["X"] @ self.b - self.c

    def loss(self, params: dict[str, Any], batch: Any = None) -> Any:
        """Return ``f(X)`` as a 0-d array (``batch`` is ignored: the problem is deterministic)."""
        r = self.residual(params)
        return 0.5 * self.xp.sum(r * r)

    def grads(self, params: dict[str, Any], batch: Any = None) -> dict[str, Any]:
        """Return ``{"X": Aᵀ(AXB − C)Bᵀ}``."""
        r = self.residual(params)
        return {"X": self.xp.matrix_transpose(self.a) @ r @ self.xp.matrix_transpose(self.b)}

    def sample_batch(self, rng: np.random.Generator) -> None:
        """Return None: full-batch problem (the runner's interface)."""
        return None

    def reference_loss(self, params: dict[str, np.ndarray]) -> float:
        """Return ``f(X)`` in float64 on the host, for host arrays ``params``."""
        a, b, c = self._host
        r = a @ np.asarray(params["X"], dtype=np.float64) @ b - c
        return float(0.5 * np.sum(r * r))

    def inverse_gram(self) -> tuple[Any, Any]:
        """Return ``((AᵀA)⁻¹, (BBᵀ)⁻¹)``, the factors of the inverse Hessian, on ``xp``.

        Computed once in float64 on the host; Newton's method steps
        ``X ← X − γ (AᵀA)⁻¹ ∇f(X) (BBᵀ)⁻¹``.
        """
        if self._gram is None:
            a, b, _ = self._host
            put = self.placement.put
            self._gram = (put(np.linalg.inv(a.T @ a)), put(np.linalg.inv(b @ b.T)))
        return self._gram
