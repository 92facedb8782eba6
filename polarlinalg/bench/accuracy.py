"""Accuracy of a row: orthogonality and forward error against a float64 SVD reference.

Both are computed in NumPy float64 with :mod:`polarlinalg.diagnostics`, on the
candidate's output for the first input of the case; for a stack, the worst
matrix is reported.  The reference polar factor ``P Qᴴ`` comes from the SVD of
the input *as the backend holds it* (after the cast to the row's dtype), so
the forward error measures the method, not the rounding of the input.

The :func:`polarlinalg.inv_root` rows (:func:`root_accuracy`) have no
orthogonality (None); their ``forward_error`` is ``‖X − X_ref‖_F/‖X_ref‖_F``
against the float64 eigh root of the input as the backend holds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polarlinalg import diagnostics
from polarlinalg.testing import reference_polar

__all__ = ["accuracy", "inv_root_reference", "polar_factor", "root_accuracy"]


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


def inv_root_reference(a: np.ndarray, p: float) -> np.ndarray:
    """Return the float64 ``V diag(max(λ, 0)^(−1/p)) Vᴴ`` of the Hermitian part of ``a``."""
    a = np.asarray(a, dtype=np.complex128 if np.iscomplexobj(a) else np.float64)
    w, v = np.linalg.eigh((a + np.swapaxes(a.conj(), -1, -2)) / 2)
    w = np.maximum(w, 0.0) ** (-1.0 / p)
    return (v * w[..., None, :]) @ np.swapaxes(v.conj(), -1, -2)


def root_accuracy(backend: Any, out: Any, reference: np.ndarray) -> dict:
    """Return ``{"orthogonality": None, "forward_error": …}`` for an inv_root output."""
    x = backend.to_numpy(out).astype(reference.dtype)
    if x.shape != reference.shape:
        raise ValueError(f"output shape {x.shape} differs from the input's {reference.shape}")
    num = np.linalg.norm(x - reference, axis=(-2, -1))
    fwd = num / np.linalg.norm(reference, axis=(-2, -1))
    return {"orthogonality": None, "forward_error": float(np.max(fwd))}
