r"""The optimizer arms of the matrix experiments, with the paper's learning rates.

An :class:`Arm` is one optimizer configuration: PolarGrad/PolarSGD (``β = 0``,
nuclear-norm scale), PolarGradM in either momentum order, Muon (the same
polar step without the nuclear-norm scale: ``β = 0.95``, Nesterov, as the
paper's ``Muon_polar``), Adam, each with or without PyTorch's ``StepLR``
decay ``γ_k = γ₀ · gamma^⌊k/step_size⌋``; plus the problem-specific baselines,
Newton's method on the quadratic (``X ← X − γ (AᵀA)⁻¹ ∇f (BBᵀ)⁻¹``) and
alternating gradient descent on completion (``X`` first, then ``Y`` at the new
``X``).  Beside them, two Kronecker-factored preconditioners of the same family
(Lau, Long, Su §2): Shampoo (``L^{-1/4} M R^{-1/4}`` with Adam grafting) and
SOAP (Adam in the eigenbasis of Shampoo's factors), each at its defaults but
without weight decay, as every arm here (and SOAP with ``ε = 1e-2`` on the
quadratic problem, whose float32 gradients swamp the reference's 1e-8).  The matrix arms are
:class:`polarlinalg.optim.PolarGrad`, :class:`~polarlinalg.optim.Shampoo` and
:class:`~polarlinalg.optim.SOAP`, so every arm runs on every Array API backend.

Learning rates are those of the official code (REFERENCE §4 of the project,
Lau, Long, Su, arXiv:2505.21799): the nuclear-norm scale makes PolarGrad's
step ``γ‖∇f‖_* U``, so its ``γ`` is many orders smaller than Muon's.  The paper
has no Shampoo or SOAP arm; their rates come from a pilot sweep at the
``--quick`` sizes, recorded beside their declarations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from polarlinalg.optim import SOAP, OptimizerState, PolarGrad, Shampoo

__all__ = ["ARMS", "Arm", "Stepper", "default_arms", "make_stepper"]

Params = dict[str, Any]

KINDS = ("polargrad", "adam", "shampoo", "soap", "newton", "altgd")


@dataclass(frozen=True)
class Arm:
    """One optimizer configuration of an experiment.

    Attributes
    ----------
    name : str
        Command-line name, e.g. ``"polargrad-qdwh"``.
    label : str
        Legend label, e.g. ``"PolarGrad (QDWH)"``.
    kind : {"polargrad", "adam", "shampoo", "soap", "newton", "altgd"}
        Which update: the PolarGrad family (options in ``options``), Adam,
        Shampoo, SOAP, or a problem-specific baseline.
    lr : float
        Initial learning rate ``γ₀``.
    decay : (int, float) or None
        ``StepLR(step_size, gamma)``, or None for a constant rate.
    options : mapping
        Keyword arguments of :class:`polarlinalg.optim.PolarGrad`
        (``kind="polargrad"``), :class:`~polarlinalg.optim.Shampoo`
        (``"shampoo"``) or :class:`~polarlinalg.optim.SOAP` (``"soap"``).
    """

    name: str
    label: str
    kind: str
    lr: float
    decay: tuple[int, float] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown arm kind {self.kind!r}")
        if not self.lr > 0:
            raise ValueError(f"arm {self.name!r}: lr must be positive; got {self.lr!r}")
        if self.decay is not None:
            size, gamma = self.decay
            if int(size) < 1 or not 0 < gamma <= 1:
                raise ValueError(
                    f"arm {self.name!r}: decay must be (step_size >= 1, 0 < gamma <= 1)"
                )
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def learning_rate(self, k: int) -> float:
        """Return ``γ_k`` for the step ``k = 0, 1, …``."""
        if self.decay is None:
            return self.lr
        size, gamma = self.decay
        return self.lr * gamma ** (k // size)

    def with_lr(self, lr: float) -> Arm:
        """Return this arm with initial learning rate ``lr``."""
        return Arm(self.name, self.label, self.kind, lr, self.decay, self.options)


class Stepper:
    """One arm bound to one problem: ``init(params)`` then ``step(params, batch, state)``.

    ``step`` computes the gradients it needs itself (alternating descent needs
    the gradient in ``Y`` at the new ``X``) and returns ``(params, state)``.
    """

    def __init__(
        self,
        init: Callable[[Params], Any],
        step: Callable[[Params, Any, Any], tuple[Params, Any]],
    ) -> None:
        self.init = init
        self.step = step


_MUON = {"momentum": 0.95, "nesterov": True, "scale": "none"}
_NS = {"method": "newton_schulz", "steps": 5, "coefficients": "muon"}
_STEPLR_QUAD = (25, 0.99)
_STEPLR = (25, 0.95)
_SOAP = {"weight_decay": 0.0}  # the reference's 0.01 off: no arm here decays its weights

# Shampoo and SOAP are not in the paper.  Their full-size rates are the interior optima of
# bracketed sweeps (grid factor √10, float32, seed 1042, which is not a result seed;
# ``polarlinalg experiment PROBLEM --sweep shampoo,soap``, 2026-12-06, results in
# benchmarks/results/experiments/sweep-*.json and docs/experiments.md):
#   quadratic (final gap): Shampoo 5e-3 → 0.27, 1.58e-2 → 1.1e-8, 5e-2 → 27.9,
#     0.158 → 5.6e-8 (not monotone); SOAP 1.58e-3 → 3.9e8, 5e-3 → 121, 1.58e-2 → 1.3e3.
#   logistic (last-tenth minibatch loss): Shampoo 3.16e-4 → 1.6e7, 1e-3 → 2.76e5,
#     3.16e-3 → 2.95e5, 1e-2 → 3.87e5; SOAP 5e-3 → 6.9e6, 1.58e-2 → 4.68e5, 5e-2 → 1.17e6.
#   completion (final gap): Shampoo 1e-2 → 7.6e-14, 3.16e-2 → 3.5e-14, 1e-1 → 5.1e-14;
#     SOAP 1.58e-2 → 0.68, 5e-2 → 1.3e-5, 0.158 → 1.2e-4.
# The --quick sizes keep the rates of an earlier pilot at those sizes (PROBLEMS in cli.py).
# SOAP's ε on the quadratic problem: the reference's ε = 1e-8 fails in float32 at any rate
# (3.6e6 at 1e-5 from 3.5e6): at the first step ``rot(G)`` is diagonal up to rounding, the
# rounding (float32 ε·‖G‖, here ~1e-3) swamps ε, and Adam's ratio of two roundings makes
# entries up to 4e4 where ``rot(M)/(√V + ε)`` should be below 1.  ε = 1e-4 suffices at the
# quick size but not at the full one (3.6e9 after 300 steps); 1e-2 … 1e2 match float64 with
# the reference ε (2.5e5 after 300 steps).
_SOAP_QUADRATIC = {**_SOAP, "eps": 1e-2}


def _preconditioners(
    shampoo_lr: float, soap_lr: float, soap: Mapping[str, Any] = _SOAP, soap_label: str = "SOAP"
) -> list[Arm]:
    """Shampoo at its defaults (Adam grafting, new roots every step) and SOAP with ``soap``."""
    return [
        Arm("shampoo", "Shampoo (Adam grafting)", "shampoo", shampoo_lr),
        Arm("soap", soap_label, "soap", soap_lr, None, soap),
    ]


# The official code caps QDWH at two iterations started from ℓ = ε (float32): an
# inexact polar factor whose small singular values stay below 1, which damps the
# step.  With an accurate factor the paper's γ = 4e-8 diverges on the quadratic
# problem, so the accurate arms use half of it; this arm reproduces the paper's.
_PAPER_QDWH = {"method": "qdwh", "steps": 2, "method_options": {"lower": 2.0**-23}}


def _quadratic() -> list[Arm]:
    return [
        Arm("polargrad-qdwh", "PolarGrad (QDWH)", "polargrad", 2e-8, None, {"method": "qdwh"}),
        Arm(
            "polargrad-qdwh-decay",
            "PolarGrad (QDWH; lr↓)",
            "polargrad",
            2.375e-8,
            _STEPLR_QUAD,
            {"method": "qdwh"},
        ),
        Arm("polargrad-zolo", "PolarGrad (ZOLO-PD)", "polargrad", 2e-8, None, {"method": "zolo"}),
        Arm(
            "polargrad-qdwh2",
            "PolarGrad (2 QDWH steps, paper's code)",
            "polargrad",
            4e-8,
            None,
            _PAPER_QDWH,
        ),
        Arm(
            "polargradm-momentum-first",
            "PolarGradM (momentum first, β=0.9)",
            "polargrad",
            2e-7,
            None,
            {"method": "qdwh", "momentum": 0.9},
        ),
        Arm(
            "polargradm-polar-first",
            "PolarGradM (polar first, β=0.95)",
            "polargrad",
            4e-7,
            None,
            {"method": "qdwh", "momentum": 0.95, "polar_first": True},
        ),
        Arm("muon-ns", "Muon (NS)", "polargrad", 0.1, None, {**_MUON, **_NS}),
        Arm("muon-qdwh", "Muon (QDWH)", "polargrad", 0.1, None, {**_MUON, "method": "qdwh"}),
        Arm(
            "muon-qdwh-decay",
            "Muon (QDWH; lr↓)",
            "polargrad",
            5e-2,
            _STEPLR_QUAD,
            {**_MUON, "method": "qdwh"},
        ),
        Arm("adam", "Adam", "adam", 5e-2),
        Arm("adam-decay", "Adam (lr↓)", "adam", 5e-2, _STEPLR_QUAD),
        *_preconditioners(0.05 / math.sqrt(10.0), 5e-3, _SOAP_QUADRATIC, "SOAP (ε=1e-2)"),
        Arm("newton", "Newton (inverse Hessian)", "newton", 0.25),
    ]


def _logistic() -> list[Arm]:
    return [
        Arm("polarsgd-qdwh", "PolarSGD (QDWH)", "polargrad", 1.5e-7, None, {"method": "qdwh"}),
        Arm(
            "polarsgd-qdwh-decay",
            "PolarSGD (QDWH; lr↓)",
            "polargrad",
            2.5e-7,
            _STEPLR,
            {"method": "qdwh"},
        ),
        Arm("polarsgd-zolo", "PolarSGD (ZOLO-PD)", "polargrad", 1.5e-7, None, {"method": "zolo"}),
        Arm(
            "polarsgdm-momentum-first",
            "PolarSGDM (momentum first, β=0.9)",
            "polargrad",
            2.5e-7,
            None,
            {"method": "qdwh", "momentum": 0.9},
        ),
        Arm(
            "polarsgdm-polar-first",
            "PolarSGDM (polar first, β=0.9)",
            "polargrad",
            2.5e-7,
            None,
            {"method": "qdwh", "momentum": 0.9, "polar_first": True},
        ),
        Arm("muon-ns", "Muon (NS)", "polargrad", 0.1, None, {**_MUON, **_NS}),
        Arm("muon-qdwh", "Muon (QDWH)", "polargrad", 0.1, None, {**_MUON, "method": "qdwh"}),
        Arm(
            "muon-qdwh-decay",
            "Muon (QDWH; lr↓)",
            "polargrad",
            0.2,
            _STEPLR,
            {**_MUON, "method": "qdwh"},
        ),
        Arm("adam", "Adam", "adam", 5e-3),
        Arm("adam-decay", "Adam (lr↓)", "adam", 1e-2, _STEPLR),
        *_preconditioners(1e-3, 0.05 / math.sqrt(10.0)),
    ]


def _completion() -> list[Arm]:
    # γ = 5e1 (REFERENCE §4) diverges within a few steps for β = 0 on this data; the
    # official code's current value, 1.5e1, converges.  With momentum 5e1 is stable.
    return [
        Arm("polargrad-qdwh", "PolarGrad (QDWH)", "polargrad", 1.5e1, None, {"method": "qdwh"}),
        Arm(
            "polargrad-qdwh-decay",
            "PolarGrad (QDWH; lr↓)",
            "polargrad",
            1.5e1,
            _STEPLR,
            {"method": "qdwh"},
        ),
        Arm("polargrad-zolo", "PolarGrad (ZOLO-PD)", "polargrad", 1.5e1, None, {"method": "zolo"}),
        Arm(
            "polargradm-momentum-first",
            "PolarGradM (momentum first, β=0.5)",
            "polargrad",
            5e1,
            None,
            {"method": "qdwh", "momentum": 0.5},
        ),
        Arm(
            "polargradm-polar-first",
            "PolarGradM (polar first, β=0.5)",
            "polargrad",
            5e1,
            None,
            {"method": "qdwh", "momentum": 0.5, "polar_first": True},
        ),
        Arm("muon-ns", "Muon (NS)", "polargrad", 0.25, None, {**_MUON, **_NS}),
        Arm("muon-qdwh", "Muon (QDWH)", "polargrad", 0.25, None, {**_MUON, "method": "qdwh"}),
        Arm(
            "muon-qdwh-decay",
            "Muon (QDWH; lr↓)",
            "polargrad",
            0.25,
            _STEPLR,
            {**_MUON, "method": "qdwh"},
        ),
        Arm("adam", "Adam", "adam", 5e-2),
        Arm("adam-decay", "Adam (lr↓)", "adam", 5e-2, _STEPLR),
        *_preconditioners(0.1 / math.sqrt(10.0), 5e-2),
        Arm("altgd", "Alternating GD", "altgd", 5e1),
    ]


ARMS: Mapping[str, tuple[Arm, ...]] = MappingProxyType(
    {
        "quadratic": tuple(_quadratic()),
        "logistic": tuple(_logistic()),
        "completion": tuple(_completion()),
    }
)
"""Every arm of each problem, in plotting order."""


def default_arms(problem: str, names: list[str] | None = None) -> list[Arm]:
    """Return the arms of ``problem`` (all, or those called ``names``, in that order).

    Raises
    ------
    ValueError
        For an unknown problem or arm name (the message lists the valid ones).
    """
    if problem not in ARMS:
        raise ValueError(f"unknown problem {problem!r}; choose from {', '.join(ARMS)}")
    arms = {arm.name: arm for arm in ARMS[problem]}
    if names is None:
        return list(arms.values())
    unknown = [n for n in names if n not in arms]
    if unknown:
        raise ValueError(
            f"unknown arm(s) {', '.join(unknown)} for {problem}; choose from {', '.join(arms)}"
        )
    return [arms[n] for n in names]


def _optimizer(arm: Arm) -> PolarGrad:
    if arm.kind == "adam":
        # Adam is AdamW without decay; the library's AdamW rule is torch.optim.Adam's update.
        return PolarGrad(arm.learning_rate, rules="adamw")
    # Divergence is an outcome here, not an error: the runner watches the iterates.
    cls = {"polargrad": PolarGrad, "shampoo": Shampoo, "soap": SOAP}[arm.kind]
    return cls(arm.learning_rate, check_finite=False, **arm.options)


def make_stepper(arm: Arm, problem: Any) -> Stepper:
    """Return the :class:`Stepper` of ``arm`` on ``problem``.

    Raises
    ------
    ValueError
        If the arm is a baseline of another problem (Newton needs the quadratic
        problem's inverse Gram factors; alternating descent needs two factors).
    """
    if arm.kind in ("polargrad", "adam", "shampoo", "soap"):
        opt = _optimizer(arm)

        def step(params: Params, batch: Any, state: OptimizerState) -> tuple[Params, Any]:
            return opt.step(params, problem.grads(params, batch), state)

        return Stepper(opt.init, step)
    if arm.kind == "newton":
        if not hasattr(problem, "inverse_gram"):
            raise ValueError(f"arm {arm.name!r} needs the quadratic problem; got {problem.name!r}")
        left, right = problem.inverse_gram()

        def newton(params: Params, batch: Any, count: int) -> tuple[Params, int]:
            g = problem.grads(params, batch)["X"]
            return {"X": params["X"] - arm.learning_rate(count) * (left @ g @ right)}, count + 1

        return Stepper(lambda params: 0, newton)
    if tuple(problem.parameter_names) != ("X", "Y"):
        raise ValueError(f"arm {arm.name!r} needs two factors X, Y; got {problem.name!r}")

    def alternating(params: Params, batch: Any, count: int) -> tuple[Params, int]:
        lr = arm.learning_rate(count)
        x = params["X"] - lr * problem.grads(params, batch)["X"]
        moved = {"X": x, "Y": params["Y"]}
        y = params["Y"] - lr * problem.grads(moved, batch)["Y"]
        return {"X": x, "Y": y}, count + 1

    return Stepper(lambda params: 0, alternating)
