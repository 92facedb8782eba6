"""Accuracy of a row: orthogonality and forward error against a float64 SVD reference.

Both are computed in NumPy float64 with :mod:`polarlinalg.diagnostics`, on the
candidate's output for the first input of the case; for a stack, the worst
matrix is reported.  The reference polar factor ``P Qᴴ`` comes from the SVD of
the input *as the backend holds it* (after the cast to the row's dtype), so
the forward error measures the method, not the rounding of the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polarlinalg import diagnostics
from polarlinalg.testing import reference_polar

__all__ = ["accuracy", "polar_factor"]


def polar_factor(out: Any) -> Any:
    """Return ``u`` from a candidate's output (``u`` or ``(u, h)``)."""
    return out[0] if isinstance(out, tuple | list) else out


def accuracy(backend: Any, a: Any, out: Any, reference_u: np.ndarray | None = None) -> dict:
    """Return ``{"orthogonality": …, "forward_error": …}`` (worst matrix of a stack).

    Parameters
    ----------
    backend : polarlinalg.backends.Backend
    a : array
        The input, on the backend.
    out : array or tuple
        The candidate's output.
    reference_u : numpy.ndarray, optional
        The float64 polar factor of ``a`` (computed here if not given).
    """
    u = backend.to_numpy(polar_factor(out)).astype(np.float64)
    if reference_u is None:
        reference_u = reference_polar(backend.to_numpy(a)).u
    if u.shape != reference_u.shape:
        raise ValueError(f"output shape {u.shape} differs from the input's {reference_u.shape}")
    orth = np.asarray(diagnostics.orthogonality_error(u))
    fwd = np.asarray(diagnostics.forward_error(u, reference_u))
    return {"orthogonality": float(np.max(orth)), "forward_error": float(np.max(fwd))}
