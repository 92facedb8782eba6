"""Validation of optimizer hyper-parameters, shared by every wrapper.

Each check raises ValueError (TypeError for a wrong type) naming the
hyper-parameter and the accepted range, so a bad configuration fails when the
optimizer is built, before any state exists.  Values that are arrays (a 0-d
tensor, an ``optax.inject_hyperparams`` array) must be 0-d; their value is
checked unless they are traced (``jax.jit``), when it cannot be read.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from polarlinalg._compat import dtype_from_name, is_traced
from polarlinalg._dtypes import is_low_precision
from polarlinalg._methods import get_method

__all__ = [
    "DTYPE_NAMES",
    "FORMS",
    "LAYOUTS",
    "RULES",
    "SCALES",
    "check_beta",
    "check_choice",
    "check_compute_dtype",
    "check_flag",
    "check_lr",
    "check_nonnegative",
    "check_pair",
    "check_weight_decay",
    "choose_rule",
    "form_of_rule",
]

SCALES: tuple[str, ...] = ("nuclear", "none", "shape", "rms")
"""Step scalings of the matrix rule (see :class:`PolarGradRule`)."""

LAYOUTS: tuple[str, ...] = ("out_in", "in_out")
"""Axis order of a weight matrix: ``(fan_out, fan_in)`` as ``torch.nn.Linear``, or
``(fan_in, fan_out)`` as flax kernels."""

FORMS: tuple[str, ...] = ("polar", "rownorm", "polar_right", "polar_left")
"""Maps ``W(A)`` of the matrix rule: the polar factor, and the row-normalised and
one-sided polar updates for embeddings and LM heads (Lau & Su, arXiv:2605.18106;
see :mod:`polarlinalg._rules.polargrad`)."""

ONE_SIDED_RULES: tuple[str, ...] = ("rownorm", "polar_right", "polar_left")
"""The rule names that select a :data:`FORMS` other than ``"polar"`` (same names)."""

RULES: tuple[str, ...] = ("auto", "polargrad", "adamw", *ONE_SIDED_RULES)
"""Which rule updates a parameter: ``"auto"`` sends arrays with ≥ 2 dimensions
to the matrix rule and the rest (biases, norms, scalars) to AdamW;
``"rownorm"``, ``"polar_right"`` and ``"polar_left"`` are the matrix rule with
that form (embeddings, LM heads)."""


DTYPE_NAMES: tuple[str, ...] = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)
"""The names ``compute_dtype`` accepts (as well as dtype objects of the arrays' namespace)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(name: str, value: Any, kind: str) -> float | None:
    """Return ``value`` as a float; None for a traced 0-d array, whose value cannot be read.

    ``kind`` says what is accepted, for the TypeError.
    """
    if _is_number(value):
        return float(value)
    shape = getattr(value, "shape", None)
    if isinstance(value, (bool, str, bytes)) or value is None or shape is None:
        raise TypeError(f"{name} must be {kind}; got {value!r}")
    if tuple(shape) != ():
        raise ValueError(
            f"{name} must be a number or a 0-d array; got an array of shape {tuple(shape)}"
        )
    if is_traced(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {kind}; got an array of dtype {value.dtype}") from None


def check_nonnegative(name: str, value: Any) -> None:
    """Raise unless ``value`` is a finite number ≥ 0 or a 0-d array holding one."""
    number = _number(name, value, "a non-negative number")
    if number is not None and not 0.0 <= number < float("inf"):
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
    """Raise unless ``value`` is in ``[0, 1)`` (a number or a 0-d array)."""
    number = _number(name, value, "a number in [0, 1)")
    if number is not None and not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")


def check_compute_dtype(value: Any, method: str, xp: ModuleType | None = None) -> None:
    """Raise unless ``value`` can be the ``compute_dtype`` of ``method``.

    None, a name of :data:`DTYPE_NAMES` or (given the namespace ``xp``) a
    floating dtype of ``xp``; half precision only for the polynomial methods
    (the others factorize).  Without ``xp`` a dtype object is left to the
    check of :func:`polarlinalg.orthogonalize`, which knows the namespace.
    """
    if value is None:
        return
    if isinstance(value, str) and value not in DTYPE_NAMES:
        names = ", ".join(repr(n) for n in DTYPE_NAMES)
        raise ValueError(
            f"compute_dtype must be None, a floating dtype or one of {names}; got {value!r}"
        )
    if xp is not None:
        try:
            dtype = dtype_from_name(xp, value) if isinstance(value, str) else value
        except ValueError as exc:  # bfloat16 outside torch and jax
            raise ValueError(f"compute_dtype={value!r}: {exc}") from None
        try:
            ok = bool(xp.isdtype(dtype, ("real floating", "complex floating")))
        except (TypeError, ValueError, AttributeError):  # not a dtype of this namespace
            ok = False
        if not ok:
            raise ValueError(
                f"compute_dtype must be None or a floating dtype of {xp.__name__} (or its "
                f"name); got {value!r}"
            )
        low = is_low_precision(xp, dtype)
    elif isinstance(value, str):
        low = value in ("float16", "bfloat16")
    else:  # a dtype object: orthogonalize checks it against the arrays' namespace
        return
    if low and not get_method(method).low_precision:
        raise ValueError(
            f"method {method!r} factorizes (QR/Cholesky/SVD) and cannot compute in "
            f"{value!r}; use float32 or wider, or a polynomial method"
        )


def check_flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is True or False, else raise TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return value


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

    Returns ``"polargrad"`` or ``"adamw"``: the one-sided rules
    (``"rownorm"``, ``"polar_right"``, ``"polar_left"``) are the matrix rule
    with another form (:func:`form_of_rule`).  Asking for a matrix rule on an
    array with fewer than 2 dimensions raises ValueError: a vector has no
    polar decomposition.
    """
    check_choice("rule", rule, RULES)
    if rule == "auto":
        return "polargrad" if ndim >= 2 else "adamw"
    if rule == "adamw":
        return rule
    if ndim < 2:
        raise ValueError(
            f"{name} has {ndim} dimension(s); the matrix rule needs at least 2 "
            f"(rule={rule!r}; send it to rule='adamw' or leave rule='auto')"
        )
    return "polargrad"


def form_of_rule(rule: str) -> str:
    """Return the :data:`FORMS` entry of the matrix rule that ``rule`` names.

    ``"auto"`` and ``"polargrad"`` (and ``"adamw"``, which has no matrix form)
    give ``"polar"``; the one-sided rules give their own name.
    """
    check_choice("rule", rule, RULES)
    return rule if rule in ONE_SIDED_RULES else "polar"
