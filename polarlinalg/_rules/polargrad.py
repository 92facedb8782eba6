r"""The matrix rule of the PolarGrad family (PolarGrad, PolarSGD, PolarGradM, Muon).

For a weight ``X`` (``m × n``, or a stack of them) with gradient ``G``,
learning rate ``γ``, momentum ``β`` and decoupled weight decay ``λ``, one step is
``X ← (1 − γλ) X − γ D`` with the *direction* ``D`` below.  Write
``U = polar(·)`` for the polar factor (any method of :data:`polarlinalg.METHODS`)
and ``⟨A, B⟩ = Re tr(Aᴴ B)``.

Momentum first (``polar_first=False``, the paper's default PolarGradM, and Muon)::

    M ← β M + (1 − β) G          M̃ = M   (Nesterov: M̃ = β M + (1 − β) G)
    U = polar(M̃)                 D = s(M̃, U) · U

Polar first (``polar_first=True``)::

    U = polar(G)
    M ← β M + (1 − β) U          M̃ = M   (Nesterov: M̃ = β M + (1 − β) U)
    D = s(G, U) · M̃

``β = 0`` is plain PolarGrad (PolarSGD with stochastic gradients): ``D = s(G, U) U``.
The scale ``s`` is, times ``scale_factor``:

* ``"nuclear"``: ``⟨A, U⟩ = tr(H) = ‖A‖_*`` for the polar decomposition
  ``A = U H`` (computed from the approximate ``U``), so the step vanishes
  with the gradient ("null-gradient consistency");
* ``"none"``: 1 (Muon without its shape adjustment);
* ``"shape"``: ``√max(1, fan_out/fan_in)`` (Jordan's Muon, ``torch.optim.Muon``);
* ``"rms"``: ``0.2 √max(m, n)`` (Moonlight: the update RMS matches AdamW's).

With ``bias_correction`` the momentum is divided by ``1 − βᵗ`` (and, with
Nesterov, ``M̃ = β M/(1 − βᵗ⁺¹) + (1 − β) X/(1 − βᵗ)``) as in ``optax.contrib.muon``.

References
----------
Lau, Long, Su, "PolarGrad: A Class of Matrix-Gradient Optimizers from a Unifying
Preconditioning Perspective", arXiv:2505.21799 (2025); Jordan et al., "Muon" (2024);
Liu et al., "Muon is Scalable for LLM Training", arXiv:2502.16982 (2025).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any

from polarlinalg._compat import array_namespace, lerp
from polarlinalg._methods import get_method
from polarlinalg._polar import orthogonalize
from polarlinalg._rules.hyperparams import (
    LAYOUTS,
    SCALES,
    check_beta,
    check_choice,
    check_compute_dtype,
)

__all__ = [
    "PolarGradRule",
    "apply_update",
    "as_matrices",
    "polargrad_direction",
    "polargrad_direction_parts",
]


@dataclass(frozen=True)
class PolarGradRule:
    """Hyper-parameters of the matrix rule (everything but ``γ`` and ``λ``).

    Building one validates it: an unknown method, scale, schedule or
    ``compute_dtype`` name, bad ``steps``, ``β ∉ [0, 1)`` or an option the
    method does not accept raise ValueError or TypeError here, before any
    state exists.

    Attributes
    ----------
    momentum : float
        ``β`` in ``[0, 1)``; 0 disables the momentum buffer.
    polar_first : bool
        Polar factor of the gradient first, momentum on ``U`` after.
    nesterov : bool
        Nesterov look-ahead on the momentum.
    bias_correction : bool
        Divide the momentum by ``1 − βᵗ`` (optax convention).
    method, steps, coefficients, compute_dtype, method_options
        Passed to :func:`polarlinalg.orthogonalize`.
    scale : {"nuclear", "none", "shape", "rms"}
        See the module docstring.
    scale_factor : float
        Constant multiplying the scale.
    layout : {"out_in", "in_out"}
        How a weight's axes map to the layer, for ``scale="shape"``:
        ``"out_in"`` for ``torch.nn.Linear`` weights (``out × in``: fan-out
        ``m``, fan-in ``n``), ``"in_out"`` for flax/optax kernels.
    flatten : bool
        Treat a parameter with more than 2 dimensions as one matrix
        ``(shape[0], -1)`` (conv weights) instead of a batch of matrices over
        its leading dimensions.
    check_finite : bool
        Let :func:`polarlinalg.orthogonalize` reject NaN/inf (eager only).
        Otherwise a matrix holding NaN/inf gets a NaN polar factor, whatever
        the method (see :func:`polarlinalg.orthogonalize`).  The wrappers check the
        gradients themselves, before the step, and build their rules with
        False.
    """

    momentum: Any = 0.0
    polar_first: bool = False
    nesterov: bool = False
    bias_correction: bool = False
    method: str = "qdwh"
    steps: int | None = None
    coefficients: Any = None
    scale: str = "nuclear"
    scale_factor: Any = 1.0
    layout: str = "out_in"
    flatten: bool = False
    compute_dtype: Any = None
    check_finite: bool = True
    method_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_beta("momentum", self.momentum)
        check_choice("scale", self.scale, SCALES)
        for name in ("polar_first", "nesterov", "bias_correction", "flatten", "check_finite"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False; got {getattr(self, name)!r}")
        check_choice("layout", self.layout, LAYOUTS)
        factor = self.scale_factor
        if isinstance(factor, bool) or (
            isinstance(factor, numbers.Real) and not math.isfinite(factor)
        ):
            raise ValueError(f"scale_factor must be a finite number; got {factor!r}")
        options = dict(self.method_options or {})
        object.__setattr__(self, "method_options", MappingProxyType(options))
        # resolves the schedule and checks steps and options now, not at the first step
        get_method(self.method).plan(self.steps, self.coefficients, options)
        check_compute_dtype(self.compute_dtype, self.method)

    @property
    def has_buffer(self) -> bool:
        """Whether the rule keeps a momentum buffer (β is an array or nonzero)."""
        beta = self.momentum
        return not (isinstance(beta, numbers.Real) and float(beta) == 0.0)


def as_matrices(x: Any, flatten: bool) -> Any:
    """Return the matrix view of a parameter or gradient with ≥ 2 dimensions.

    A 2-D array is returned as is.  With more dimensions the leading ones are
    a batch of matrices, or with ``flatten`` the array becomes one matrix
    ``(shape[0], prod(shape[1:]))`` (a conv weight ``out × in × kh × kw``).
    """
    if x.ndim < 2:
        raise ValueError(
            f"the matrix rule needs an array with at least 2 dimensions; got shape {tuple(x.shape)}"
        )
    if flatten and x.ndim > 2:
        return array_namespace(x).reshape(x, (x.shape[0], math.prod(x.shape[1:])))
    return x


def _inner(xp: ModuleType, a: Any, b: Any) -> Any:
    """``Re tr(aᴴ b)`` per matrix, shape ``(..., 1, 1)``."""
    prod = xp.conj(a) * b if xp.isdtype(a.dtype, "complex floating") else a * b
    total = xp.sum(prod, axis=(-2, -1), keepdims=True)
    return xp.real(total) if xp.isdtype(total.dtype, "complex floating") else total


def _shape_scale(rule: PolarGradRule, shape: tuple[int, ...]) -> float:
    m, n = shape[-2], shape[-1]
    if rule.scale == "shape":
        fan_in, fan_out = (n, m) if rule.layout == "out_in" else (m, n)
        return math.sqrt(max(1.0, fan_out / fan_in))
    if rule.scale == "rms":
        return 0.2 * math.sqrt(max(m, n))
    return 1.0


def _momentum(rule: PolarGradRule, buf: Any, x: Any, count: Any) -> tuple[Any, Any]:
    """Return ``(M̃, new buffer)`` for the new term ``x``."""
    beta = rule.momentum
    xp = array_namespace(buf)
    new = lerp(xp, buf, x, 1 - beta)
    if not rule.bias_correction:
        return (lerp(xp, x, new, beta) if rule.nesterov else new), new
    if count is None:
        raise ValueError("bias_correction needs the step count")
    if rule.nesterov:
        look = beta * (new / (1 - beta ** (count + 1))) + (1 - beta) * (x / (1 - beta**count))
        return look, new
    return new / (1 - beta**count), new


def _orthogonalize(rule: PolarGradRule, x: Any) -> Any:
    return orthogonalize(
        x,
        method=rule.method,
        steps=rule.steps,
        coefficients=rule.coefficients,
        compute_dtype=rule.compute_dtype,
        check_finite=rule.check_finite,
        **rule.method_options,
    )


def polargrad_direction(
    xp: ModuleType,
    rule: PolarGradRule,
    grad: Any,
    buf: Any | None,
    count: Any = None,
) -> tuple[Any, Any | None]:
    """One step of the matrix rule: return ``(D, new momentum buffer)``.

    Parameters
    ----------
    xp : namespace
        Array namespace of ``grad``.
    rule : PolarGradRule
        The hyper-parameters.
    grad : array, shape (..., m, n)
        Gradient, already in matrix view (:func:`as_matrices`); leading axes
        are a batch of independent matrices, each with its own scale.
    buf : array or None
        Momentum buffer, same shape as ``grad`` (its dtype is the state dtype,
        e.g. float32 for a bfloat16 parameter); None when ``rule`` has no
        momentum.
    count : int or array, optional
        Step number ``t ≥ 1`` (after this step), needed for ``bias_correction``.

    Returns
    -------
    direction : array, shape (..., m, n)
        ``D`` in ``X ← (1 − γλ) X − γ D``, in the buffer's dtype (the
        gradient's without momentum).
    buf : array or None
        The new momentum buffer (None without momentum).
    """
    direction, constant, buf = polargrad_direction_parts(xp, rule, grad, buf, count)
    if isinstance(constant, numbers.Real) and float(constant) == 1.0:
        return direction, buf
    return direction * constant, buf


def polargrad_direction_parts(
    xp: ModuleType,
    rule: PolarGradRule,
    grad: Any,
    buf: Any | None,
    count: Any = None,
) -> tuple[Any, Any, Any | None]:
    """:func:`polargrad_direction` as ``(D / c, c, buffer)`` with ``c`` a per-step constant.

    ``c`` collects the scale that does not depend on the data (the shape or
    RMS factor times ``scale_factor``; the nuclear-norm factor, one per matrix,
    is already applied), so a wrapper can fold it into its learning rate
    instead of spending a pass over the direction on it.
    """
    if buf is not None and grad.dtype != buf.dtype:
        grad = xp.astype(grad, buf.dtype)
    factor = _shape_scale(rule, tuple(grad.shape)) * rule.scale_factor
    if rule.polar_first:
        u = _orthogonalize(rule, grad)
        if buf is not None:
            look, buf = _momentum(rule, buf, u, count)
        else:
            look = u
        if rule.scale == "nuclear":  # ⟨G, U⟩ of this step's gradient scales the average
            look = look * _inner(xp, grad, u)
        return look, factor, buf
    look = grad
    if buf is not None:
        look, buf = _momentum(rule, buf, grad, count)
    u = _orthogonalize(rule, look)
    if rule.scale == "nuclear":
        u = u * _inner(xp, look, u)
    return u, factor, buf


def apply_update(param: Any, direction: Any, lr: Any, weight_decay: Any) -> Any:
    """Return ``(1 − γλ) X − γ D`` (decoupled weight decay with the unscaled ``γ``)."""
    xp = array_namespace(param)
    if direction.dtype != param.dtype:
        direction = xp.astype(direction, param.dtype)
    if isinstance(weight_decay, numbers.Real) and float(weight_decay) == 0.0:
        return param - lr * direction
    return param * (1 - lr * weight_decay) - lr * direction
