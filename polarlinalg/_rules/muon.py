"""Muon's hyper-parameters (``torch.optim.Muon``'s names) as a :class:`PolarGradRule`.

Muon is the momentum-first matrix rule with Nesterov momentum, Newton–Schulz
polar factors and no nuclear-norm scaling.  ``torch.optim.Muon`` scales the
step by ``√max(1, A/B)`` for an ``A × B`` weight (``adjust_lr_fn="original"``,
the default) or by ``0.2·√max(A, B)`` (``"match_rms_adamw"``, Moonlight): the
``"shape"`` and ``"rms"`` scales of the matrix rule.  Its weight decay uses the
unadjusted learning rate, as :func:`polarlinalg._rules.apply_update` does.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from polarlinalg._methods import get_method
from polarlinalg._methods._base import check_positive_int
from polarlinalg._rules.polargrad import PolarGradRule

__all__ = ["ADJUST_LR_FNS", "MUON_COEFFICIENTS", "muon_polar_settings", "muon_rule"]

MUON_COEFFICIENTS = (3.4445, -4.775, 2.0315)
"""``torch.optim.Muon``'s default ``ns_coefficients`` (Jordan's quintic)."""

ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def _check_row(ns_coefficients: Any) -> tuple[float, float, float]:
    ok = isinstance(ns_coefficients, Sequence) and len(ns_coefficients) == 3
    if not ok or not all(
        isinstance(c, numbers.Real) and not isinstance(c, bool) for c in ns_coefficients
    ):
        raise ValueError(
            f"ns_coefficients must be a tuple of three numbers (a, b, c); got {ns_coefficients!r}"
        )
    return (float(ns_coefficients[0]), float(ns_coefficients[1]), float(ns_coefficients[2]))


def muon_polar_settings(
    method: str, coefficients: Any, rows: Any, steps: int | None, eps: float | None
) -> tuple[int | None, Any, dict[str, Any]]:
    """Return ``(steps, coefficients, method options)`` of Muon's polar step.

    Muon's Newton–Schulz rows ``rows`` drive ``method="newton_schulz"`` unless
    ``coefficients`` replaces them; other polynomial methods keep their own
    default schedule.  ``eps`` (None: none) becomes the floor of the
    normalising norm for methods that accept one.  The rational methods and
    ``"svd"`` take neither steps nor coefficients.
    """
    spec = get_method(method)
    if not spec.takes_coefficients:
        return None, None, {}
    if coefficients is None and method == "newton_schulz":
        coefficients = rows
    options = {"eps": eps} if eps is not None and "eps" in spec.options else {}
    return steps, coefficients, options


def muon_rule(
    *,
    momentum: float,
    nesterov: bool,
    ns_coefficients: Sequence[float],
    ns_steps: int,
    eps: float,
    adjust_lr_fn: str | None,
    method: str,
    coefficients: Any,
    compute_dtype: Any,
    check_finite: bool = False,
    split: Any = None,
    heads: Any = None,
    form: str = "polar",
    form_eps: float = 1e-8,
) -> PolarGradRule:
    """Return the :class:`PolarGradRule` that is Muon with these hyper-parameters.

    ``ns_coefficients`` (one row, repeated) and ``ns_steps`` drive
    ``method="newton_schulz"``; ``coefficients`` (a schedule name or rows)
    replaces ``ns_coefficients``.  Other polynomial methods use ``ns_steps``
    and their own default schedule; the rational methods and ``"svd"``
    ignore both.  ``eps`` floors the normalising Frobenius norm of the
    polynomial methods, as ``torch.optim.Muon``'s clamp does.  ``split``,
    ``heads``, ``form`` and ``form_eps`` are those of :class:`PolarGradRule`
    (fused weights, one-sided forms); the shape scale is then per block.
    """
    if adjust_lr_fn not in ADJUST_LR_FNS:
        raise ValueError(
            f"adjust_lr_fn {adjust_lr_fn!r} is not supported; use None, 'original' "
            "or 'match_rms_adamw'"
        )
    row = _check_row(ns_coefficients)
    steps, coefficients, options = muon_polar_settings(
        method, coefficients, (row,), check_positive_int("ns_steps", ns_steps), eps
    )
    return PolarGradRule(
        momentum=momentum,
        nesterov=nesterov,
        method=method,
        steps=steps,
        coefficients=coefficients,
        scale="rms" if adjust_lr_fn == "match_rms_adamw" else "shape",
        compute_dtype=compute_dtype,
        check_finite=check_finite,
        method_options=options,
        split=split,
        heads=heads,
        form=form,
        form_eps=form_eps,
    )
