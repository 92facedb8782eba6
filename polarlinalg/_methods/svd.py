"""Polar factor from the singular value decomposition (the reference method).

With the thin SVD ``A = P Σ Qᴴ`` the polar factor is ``U = P Qᴴ`` and the
Hermitian factor ``H = Q Σ Qᴴ`` (right) or ``P Σ Pᴴ`` (left).  It is backward
stable and accurate to working precision, and it is what
``scipy.linalg.polar`` does.  Cost: one SVD, about ``4mn² + 8n³`` flops for
``m ≥ n`` (LAPACK ``gesdd``), plus one product; SVD is the slowest
factorization on GPUs, which is why the iterative methods exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from polarlinalg._methods._base import Method

__all__ = ["SVD"]


def _configure(steps: int | None, coefficients: Any, options: Mapping[str, Any]) -> None:
    return None


def _run(xp: ModuleType, x: Any, plan: None) -> tuple[Any, None]:
    p, _, qh = xp.linalg.svd(x, full_matrices=False)
    u = p @ qh
    # The SVD of a zero matrix returns arbitrary orthonormal vectors; the
    # polar factor of 0 is taken to be 0 (as for every other method).
    nonzero = xp.any(x != 0, axis=(-2, -1), keepdims=True)
    return xp.where(nonzero, u, xp.zeros_like(u)), None


SVD = Method(
    name="svd",
    summary="U = P Qᴴ from the thin SVD A = P Σ Qᴴ (reference, working precision)",
    family="direct",
    orientation="any",
    low_precision=False,
    default_steps=None,
    takes_coefficients=False,
    configure=_configure,
    run=_run,
)
