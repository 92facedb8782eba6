"""Framework-free update rules shared by every optimizer wrapper.

One module per rule: :mod:`.polargrad` (the matrix rule: PolarGrad, PolarGradM,
Muon), :mod:`.adamw` (parameters that are not matrices), and what the wrappers
share: :mod:`.hyperparams` (validation) and :mod:`.finite` (the check for NaN/inf
gradients and its error).  Every function here takes the array
namespace explicitly and returns new arrays; the wrappers in
:mod:`polarlinalg.torch`, :mod:`polarlinalg.optax` and :mod:`polarlinalg.optim`
own the state and apply the results.
"""

from polarlinalg._rules.adamw import AdamWRule, adamw_direction
from polarlinalg._rules.hyperparams import (
    RULES,
    SCALES,
    check_lr,
    check_weight_decay,
    choose_rule,
)
from polarlinalg._rules.polargrad import (
    PolarGradRule,
    apply_update,
    as_matrices,
    polargrad_direction,
    polargrad_direction_parts,
)

__all__ = [
    "RULES",
    "SCALES",
    "AdamWRule",
    "PolarGradRule",
    "adamw_direction",
    "apply_update",
    "as_matrices",
    "check_lr",
    "check_weight_decay",
    "choose_rule",
    "polargrad_direction",
    "polargrad_direction_parts",
]
