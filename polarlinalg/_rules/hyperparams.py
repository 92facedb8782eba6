"""Validation of optimizer hyper-parameters, shared by every wrapper.

Each check raises ValueError (TypeError for a wrong type) naming the
hyper-parameter and the accepted range, so a bad configuration fails when the
optimizer is built, before any state exists.  Values that are arrays (an
``optax.inject_hyperparams`` tracer, a 0-d tensor) are checked only when they
are plain Python numbers.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

__all__ = [
    "LAYOUTS",
    "RULES",
    "SCALES",
    "check_beta",
    "check_choice",
    "check_lr",
    "check_nonnegative",
    "check_pair",
    "check_weight_decay",
    "choose_rule",
]

SCALES: tuple[str, ...] = ("nuclear", "none", "shape", "rms")
"""Step scalings of the matrix rule (see :class:`PolarGradRule`)."""

LAYOUTS: tuple[str, ...] = ("out_in", "in_out")
"""Axis order of a weight matrix: ``(fan_out, fan_in)`` as ``torch.nn.Linear``, or
``(fan_in, fan_out)`` as flax kernels."""

RULES: tuple[str, ...] = ("auto", "polargrad", "adamw")
"""Which rule updates a parameter: ``"auto"`` sends arrays with ≥ 2 dimensions
to the matrix rule and the rest (biases, norms, scalars) to AdamW."""


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_nonnegative(name: str, value: Any) -> None:
    """Raise unless ``value`` is a finite number ≥ 0 (arrays pass unchecked)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a non-negative number; got {value!r}")
    if _is_number(value) and not 0.0 <= float(value) < float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")


def check_lr(value: Any, name: str = "lr") -> None:
    """Raise for a negative or non-finite learning rate; callables (schedules) pass."""
    if callable(value):
        return
    check_nonnegative(name, value)


def check_weight_decay(value: Any, name: str = "weight_decay") -> None:
    """Raise for a negative or non-finite weight decay."""
    check_nonnegative(name, value)


def check_beta(name: str, value: Any) -> None:
    """Raise unless ``value`` is in ``[0, 1)`` (arrays pass unchecked)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number in [0, 1); got {value!r}")
    if _is_number(value) and not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")


def check_pair(name: str, value: Any) -> tuple[Any, Any]:
    """Return ``value`` as a 2-tuple, or raise ValueError unless it is a pair."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (beta1, beta2); got {value!r}")
    return value[0], value[1]


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; choose one of {valid}")
    return value


def choose_rule(rule: str, ndim: int, *, name: str = "parameter") -> str:
    """Resolve ``rule`` (one of :data:`RULES`) for an array with ``ndim`` dimensions.

    Returns ``"polargrad"`` or ``"adamw"``.  Asking for the matrix rule on an
    array with fewer than 2 dimensions raises ValueError: a vector has no
    polar decomposition.
    """
    check_choice("rule", rule, RULES)
    if rule == "auto":
        return "polargrad" if ndim >= 2 else "adamw"
    if rule == "polargrad" and ndim < 2:
        raise ValueError(
            f"{name} has {ndim} dimension(s); the matrix rule needs at least 2 "
            "(send it to rule='adamw' or leave rule='auto')"
        )
    return rule
