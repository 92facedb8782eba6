r"""NorMuon: Muon's orthogonalised momentum with a per-neuron second moment.

For a weight ``X`` (``m × n``, rows the output neurons with ``layout="out_in"``;
columns with ``"in_out"``) with gradient ``G``::

    M ← β₁ M + (1 − β₁) G            M̃ = β₁ M + (1 − β₁) G (Nesterov) or M
    O = polar(M̃)                      (Muon's Newton–Schulz by default; any method)
    v ← β₂ v + (1 − β₂) mean_j O²ᵢⱼ    (one number per neuron i)
    Ô = O / (√v + ε)                  (v broadcast over the neuron's weights)

and the direction ``D`` of ``X ← (1 − γλ) X − γ D`` is ``Ô`` rescaled:
``update_scale="match_rms"`` (Algorithm 1 of the paper) gives it the Frobenius
norm ``0.2 √(mn)``, an RMS of 0.2 like AdamW's step, so AdamW's learning rates
carry over; ``"preserve_norm"`` (the official code and pytorch-optimizer's
default) gives it the norm of ``O`` times Muon's shape factor
(``adjust_lr_fn``: ``√max(1, fan_out/fan_in)``, or ``0.2√max(m, n)`` with
``"match_rms_adamw"``), so Muon's learning rates carry over.  Both norms are
``‖Ô‖_F + ε``.  With ``β₂ = 0`` every neuron's row of ``Ô`` has the same RMS.
Parameters with more than two dimensions are one matrix ``(shape[0], −1)``
(``"out_in"``) or ``(−1, shape[−1])`` (``"in_out"``).

References
----------
Li, Liu, Liang, Chen, Zhao, "NorMuon: Making Muon more efficient and scalable",
arXiv:2510.05491 (2025); Jordan et al., "Muon" (2024).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any, NamedTuple

from polarlinalg._compat import device, lerp
from polarlinalg._dtypes import state_dtype
from polarlinalg._methods import get_method
from polarlinalg._polar import orthogonalize
from polarlinalg._rules._base import Cond, MatrixRule, eager_cond, static_int, static_number
from polarlinalg._rules.hyperparams import (
    LAYOUTS,
    check_beta,
    check_choice,
    check_compute_dtype,
)
from polarlinalg._rules.muon import (
    ADJUST_LR_FNS,
    MUON_COEFFICIENTS,
    _check_row,
    muon_polar_settings,
)

__all__ = ["UPDATE_SCALES", "NorMuonRule", "NorMuonState"]

UPDATE_SCALES: tuple[str, ...] = ("match_rms", "preserve_norm")
"""How NorMuon rescales the normalised update."""


class NorMuonState(NamedTuple):
    """NorMuon's state (pytorch-optimizer's keys): the momentum and the per-neuron moment.

    ``momentum_buffer`` has the matrix view's shape ``(m, n)``;
    ``second_momentum_buffer`` is ``(m, 1)`` (``"out_in"``) or ``(1, n)``.
    """

    momentum_buffer: Any
    second_momentum_buffer: Any


@dataclass(frozen=True)
class NorMuonRule(MatrixRule):
    """NorMuon's hyper-parameters (see the module docstring).

    Attributes
    ----------
    momentum : float
        ``β₁`` in ``[0, 1)``.
    beta2 : float
        ``β₂`` in ``[0, 1)`` of the per-neuron second moment.
    nesterov : bool
    eps : float
        ``ε`` of the normalisation and of the rescaling norm.
    update_scale : {"match_rms", "preserve_norm"}
    adjust_lr_fn : {None, "original", "match_rms_adamw"}
        Muon's shape factor, with ``"preserve_norm"`` only.
    method : str
        Polar method (:data:`polarlinalg.METHODS`), Newton–Schulz by default.
    ns_coefficients, ns_steps
        Muon's Newton–Schulz row and step count (``method="newton_schulz"``).
    coefficients : str or rows, optional
        A schedule replacing ``ns_coefficients``.
    ns_eps : float
        Floor of the normalising Frobenius norm (``torch.optim.Muon``'s eps).
    compute_dtype : dtype or str, optional
        Dtype of the polar iteration.
    layout : {"out_in", "in_out"}
        Which axis is the neuron: rows (``torch.nn.Linear``) or columns (flax).
    method_options : dict
        Extra options of the polar method.
    """

    name = "normuon"
    state_type = NorMuonState

    momentum: float = 0.95
    beta2: float = 0.95
    nesterov: bool = True
    eps: float = 1e-10
    update_scale: str = "match_rms"
    adjust_lr_fn: str | None = None
    method: str = "newton_schulz"
    ns_coefficients: tuple[float, float, float] = MUON_COEFFICIENTS
    ns_steps: int = 5
    coefficients: Any = None
    ns_eps: float = 1e-7
    compute_dtype: Any = None
    layout: str = "out_in"
    method_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_beta("momentum", static_number("momentum", self.momentum))
        check_beta("beta2", static_number("beta2", self.beta2))
        if not isinstance(self.nesterov, bool):
            raise TypeError(f"nesterov must be True or False; got {self.nesterov!r}")
        eps = static_number("eps", self.eps)
        if not 0.0 <= eps < math.inf:
            raise ValueError(f"eps must be a finite number >= 0; got {self.eps!r}")
        check_choice("update_scale", self.update_scale, UPDATE_SCALES)
        if self.adjust_lr_fn not in ADJUST_LR_FNS:
            raise ValueError(
                f"adjust_lr_fn {self.adjust_lr_fn!r} is not supported; use None, 'original' "
                "or 'match_rms_adamw'"
            )
        check_choice("layout", self.layout, LAYOUTS)
        static_int("ns_steps", self.ns_steps)
        static_number("ns_eps", self.ns_eps)
        options = dict(self.method_options or {})
        object.__setattr__(self, "method_options", MappingProxyType(options))
        steps, coefficients, extra = self._polar_settings()
        get_method(self.method).plan(steps, coefficients, {**extra, **options})
        check_compute_dtype(self.compute_dtype, self.method)

    def _polar_settings(self) -> tuple[int | None, Any, dict[str, Any]]:
        row = _check_row(self.ns_coefficients)
        return muon_polar_settings(
            self.method, self.coefficients, (row,), self.ns_steps, float(self.ns_eps)
        )

    def matrix_shape(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """Return the matrix view of a parameter of ``shape``."""
        if self.layout == "out_in":
            return shape[0], math.prod(shape[1:])
        return math.prod(shape[:-1]), shape[-1]

    def init(self, xp: ModuleType, param: Any) -> NorMuonState:
        """Zero momentum (matrix view) and per-neuron second moment."""
        dtype = state_dtype(xp, param.dtype)
        dev = device(param)
        m, n = self.matrix_shape(tuple(param.shape))
        moment = (m, 1) if self.layout == "out_in" else (1, n)
        return NorMuonState(
            xp.zeros((m, n), dtype=dtype, device=dev), xp.zeros(moment, dtype=dtype, device=dev)
        )

    def update(
        self, xp: ModuleType, grad: Any, state: NorMuonState, count: Any, cond: Cond = eager_cond
    ) -> tuple[Any, NorMuonState]:
        """One NorMuon step: return ``(D, new state)`` (``D`` shaped like ``grad``)."""
        del count, cond
        buf, second = state
        g = xp.reshape(grad, tuple(buf.shape))
        if g.dtype != buf.dtype:
            g = xp.astype(g, buf.dtype)
        beta = self.momentum
        buf = lerp(xp, buf, g, 1 - beta)
        look = lerp(xp, g, buf, beta) if self.nesterov else buf
        steps, coefficients, extra = self._polar_settings()
        o = orthogonalize(
            look,
            method=self.method,
            steps=steps,
            coefficients=coefficients,
            compute_dtype=self.compute_dtype,
            check_finite=False,
            **{**extra, **self.method_options},
        )
        if o.dtype != buf.dtype:
            o = xp.astype(o, buf.dtype)
        axis = -1 if self.layout == "out_in" else -2
        second = lerp(xp, second, xp.mean(o * o, axis=axis, keepdims=True), 1 - self.beta2)
        normed = o / (xp.sqrt(second) + self.eps)
        norm = xp.sqrt(xp.sum(normed * normed)) + self.eps
        m, n = buf.shape
        if self.update_scale == "match_rms":
            direction = normed * (0.2 * math.sqrt(m * n) / norm)
        else:
            direction = normed * (xp.sqrt(xp.sum(o * o)) / norm * self._shape_factor(m, n))
        return xp.reshape(direction, tuple(grad.shape)), NorMuonState(buf, second)

    def _shape_factor(self, m: int, n: int) -> float:
        fan_out, fan_in = (m, n) if self.layout == "out_in" else (n, m)
        if self.adjust_lr_fn == "match_rms_adamw":
            return 0.2 * math.sqrt(max(m, n))
        return math.sqrt(max(1.0, fan_out / fan_in))
