"""polarlinalg: polar decomposition and PolarGrad-type optimizers for every array framework.

Written once against the Python Array API standard; runs unchanged on NumPy,
PyTorch, JAX, CuPy and array-api-strict.  The framework is detected from the
arrays you pass; importing polarlinalg imports none of them.

Main entry points
-----------------
polar
    Polar decomposition ``a = u h`` (or ``h u``), batched, real or complex.
orthogonalize
    The polar factor ``u`` alone (the Muon/PolarGrad "orthogonalisation").
inv_root
    Inverse p-th roots ``(a + εI)^{-1/p}`` of Hermitian PSD matrices (Shampoo's roots).
polar_express_coefficients
    Design Newton–Schulz schedules (Polar Express) for your own bounds.
diagnostics
    Orthogonality, backward error, polar gap, nuclear norm, condition number.

Optimizers (the PolarGrad family, Muon, NorMuon, Shampoo, SOAP: one set of rules)
--------------------------------------------------------------------------------
polarlinalg.torch
    ``PolarGrad``, ``Muon``, ``NorMuon``, ``Shampoo``, ``SOAP`` as ``torch.optim`` optimizers.
polarlinalg.optax
    ``polargrad``, ``muon``, ``normuon``, ``shampoo``, ``soap`` (and ``scale_by_*``).
polarlinalg.optim
    The same five for NumPy, CuPy or any Array API namespace.

These submodules are imported explicitly; ``import polarlinalg`` alone imports
no framework.
"""

from polarlinalg import diagnostics
from polarlinalg._coefficients import COEFFICIENTS
from polarlinalg._inv_root import inv_root
from polarlinalg._methods import METHODS
from polarlinalg._polar import PolarInfo, PolarResult, orthogonalize, polar
from polarlinalg._polar_express import polar_express_coefficients

__version__ = "0.1.0"

__all__ = [
    "COEFFICIENTS",
    "METHODS",
    "PolarInfo",
    "PolarResult",
    "__version__",
    "diagnostics",
    "inv_root",
    "orthogonalize",
    "polar",
    "polar_express_coefficients",
]
