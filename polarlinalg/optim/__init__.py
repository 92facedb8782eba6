"""PolarGrad and Muon for any Array API namespace (NumPy, CuPy, array-api-strict, …).

A functional optimizer over a dict or a list of arrays, in the style of optax
but with no framework dependency::

    opt = PolarGrad(lr=1e-2, momentum=0.9)
    state = opt.init(params)
    params, state = opt.step(params, grads, state)

``step`` returns new arrays and a new state; its inputs are never modified, so
a step that raises (a NaN gradient, a shape mismatch) leaves nothing half
updated.  Arrays with at least two dimensions follow the matrix rule (see
:mod:`polarlinalg._rules.polargrad`); the others follow AdamW.  The update
formulas are those of :class:`polarlinalg.torch.PolarGrad` and
:func:`polarlinalg.optax.polargrad`, so the three give the same trajectory.
"""

from polarlinalg.optim._adapter import RuleOptimizer, RuleSlot
from polarlinalg.optim._normuon import NorMuon
from polarlinalg.optim._polar import AdamWSlot, MatrixSlot, Muon, OptimizerState, PolarGrad
from polarlinalg.optim._shampoo import SOAP, Shampoo

__all__ = [
    "SOAP",
    "AdamWSlot",
    "MatrixSlot",
    "Muon",
    "NorMuon",
    "OptimizerState",
    "PolarGrad",
    "RuleOptimizer",
    "RuleSlot",
    "Shampoo",
]
