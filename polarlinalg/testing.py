"""Test matrices and float64 references, in NumPy.

References are built here, in NumPy float64/complex128 from the SVD, and never
with the backend under test.  ``polarlinalg validate``, the benchmarks and the
test suite all draw their matrices from :func:`random_matrix`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np

from polarlinalg._coefficients import Schedule, schedule_response

__all__ = [
    "Reference",
    "exact_iterate",
    "random_matrix",
    "reference_polar",
]


def _haar(rng: np.random.Generator, n: int, k: int, complex_: bool) -> np.ndarray:
    """Return an ``n × k`` matrix with orthonormal columns, Haar distributed."""
    z = rng.standard_normal((n, k))
    if complex_:
        z = z + 1j * rng.standard_normal((n, k))
    q, r = np.linalg.qr(z)
    d = np.diagonal(r)
    return q * (d / np.abs(d))


def random_matrix(
    shape: Sequence[int],
    *,
    cond: float = 1.0,
    rank: int | None = None,
    complex: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Return matrices with prescribed singular values and random singular vectors.

    Each matrix of the stack is ``P diag(σ) Qᴴ`` with Haar-random ``P``, ``Q`` and
    singular values geometrically spaced from 1 down to ``1/cond``; with
    ``rank`` the trailing ``min(m, n) − rank`` singular values are exactly 0.

    Parameters
    ----------
    shape : sequence of int
        ``(..., m, n)``.
    cond : float, default 1.0
        Condition number ``σ_max/σ_min`` of the nonzero singular values.
    rank : int, optional
        Number of nonzero singular values (default ``min(m, n)``).
    complex : bool, default False
        Complex128 instead of float64.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray
        float64 or complex128 array of ``shape``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"shape must have at least 2 entries; got {shape}")
    if cond < 1:
        raise ValueError(f"cond must be >= 1; got {cond}")
    *batch, m, n = shape
    k = min(m, n)
    r = k if rank is None else int(rank)
    if not 0 <= r <= k:
        raise ValueError(f"rank must lie in [0, {k}]; got {rank}")
    rng = np.random.default_rng(seed)
    sigma = np.zeros(k)
    if r:
        sigma[:r] = np.geomspace(1.0, 1.0 / cond, r) if r > 1 else 1.0
    out = np.empty(shape, dtype=np.complex128 if complex else np.float64)
    for idx in np.ndindex(*batch):
        p = _haar(rng, m, k, complex)
        q = _haar(rng, n, k, complex)
        out[idx] = (p * sigma) @ q.conj().T
    return out


class Reference(NamedTuple):
    """Float64 SVD of a matrix stack: ``a = p diag(s) qh``, and its polar factors."""

    p: np.ndarray
    s: np.ndarray
    qh: np.ndarray

    @property
    def u(self) -> np.ndarray:
        """The polar factor ``P Qᴴ``."""
        return self.p @ self.qh

    def h(self, side: Literal["right", "left"] = "right") -> np.ndarray:
        """Return the Hermitian factor ``Q Σ Qᴴ`` (right) or ``P Σ Pᴴ`` (left)."""
        if side == "right":
            return (self.qh.conj().swapaxes(-1, -2) * self.s[..., None, :]) @ self.qh
        return (self.p * self.s[..., None, :]) @ self.p.conj().swapaxes(-1, -2)


def reference_polar(a: np.ndarray) -> Reference:
    """Return the float64 (complex128) thin SVD of ``a`` as a :class:`Reference`."""
    a = np.asarray(a)
    a = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)
    p, s, qh = np.linalg.svd(a, full_matrices=False)
    return Reference(p, s, qh)


def exact_iterate(
    ref: Reference, rows: Schedule, safety: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return what a Newton–Schulz schedule gives in exact arithmetic.

    ``A = P Σ Qᴴ`` is normalised by ``safety·‖A‖_F`` and each singular value goes
    through the composed quintics ``φ``.

    Returns
    -------
    u : numpy.ndarray
        ``P φ(Σ/(s‖A‖_F)) Qᴴ``.
    sigma : numpy.ndarray
        Its singular values ``φ(σᵢ/(s‖A‖_F))`` (in the order of ``ref.s``).
    """
    fro = np.sqrt(np.sum(ref.s**2, axis=-1, keepdims=True))
    phi = schedule_response(rows, ref.s / np.where(fro == 0, 1.0, safety * fro))
    return (ref.p * phi[..., None, :]) @ ref.qh, phi
