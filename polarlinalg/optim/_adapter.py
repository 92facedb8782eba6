"""One functional optimizer that runs any :class:`~polarlinalg._rules._base.MatrixRule`.

:class:`RuleOptimizer` keeps, per matrix parameter, a :class:`RuleSlot`: the
parameter's own step count and the rule's state NamedTuple.  The named
optimizers (:class:`~polarlinalg.optim.Shampoo`, ``SOAP``, ``NorMuon``) are
thin constructors that build the rule.  ``step`` returns new arrays and never
modifies its inputs, as :class:`~polarlinalg.optim.PolarGrad` does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from polarlinalg._compat import array_namespace
from polarlinalg._rules.hyperparams import check_choice, check_flag
from polarlinalg.optim._polar import Array, LearningRate, PolarGrad, Rules

__all__ = ["RuleOptimizer", "RuleSlot"]


class RuleSlot(NamedTuple):
    """State of a parameter under a rule: its step count and the rule's state."""

    count: int
    state: Any


class RuleOptimizer(PolarGrad):
    """Matrix parameters follow ``rule``, the others AdamW; any Array API namespace.

    Parameters
    ----------
    rule : MatrixRule
        A built rule (``ShampooRule``, ``SOAPRule``, ``NorMuonRule``, …).
    lr : float or callable
        ``γ``; a callable gets the number of steps taken so far.
    weight_decay : float, default 0
        ``λ``, applied by the rule's ``increment``.
    rules : str, dict, list or callable, optional
        Per parameter ``"auto"``, ``rule.name`` or ``"adamw"`` (as
        :class:`~polarlinalg.optim.PolarGrad`'s ``rules``).
    adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay, check_finite
        As in :class:`~polarlinalg.optim.PolarGrad`.
    """

    _slot_type = RuleSlot

    def __init__(
        self,
        rule: Any,
        lr: LearningRate,
        *,
        weight_decay: float = 0.0,
        rules: Rules = None,
        adamw_lr: LearningRate | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
        check_finite: bool = True,
    ) -> None:
        labels = ("auto", rule.name, "adamw")
        if isinstance(rules, str):
            check_choice("rule", rules, labels)
        self._setup(
            lr, weight_decay, rule, None, adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay
        )
        self.rules = rules
        self.check_finite = check_flag("check_finite", check_finite)

    def _rule_of(self, key: Any, x: Array) -> str:
        name = self.rule.name
        choice = self._choice(key, x)
        check_choice(f"rule of parameter {key!r}", choice, ("auto", name, "adamw"))
        if choice == "adamw" or (choice == "auto" and x.ndim < 2):
            return "adamw"
        return name

    def _matrix_slot(self, key: Any, x: Array) -> RuleSlot:
        xp = array_namespace(x)
        try:
            self.rule.check_param(tuple(x.shape), x.dtype, xp)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"parameter {key!r}: {exc}") from None
        return RuleSlot(0, self.rule.init(xp, x))

    def _matrix_step(
        self, x: Array, g: Array, slot: RuleSlot, lr: Any, count: int
    ) -> tuple[Array, RuleSlot]:
        del count  # each parameter counts its own steps
        xp = array_namespace(x, g)
        t = slot.count + 1
        direction, state = self.rule.update(xp, g, slot.state, t)
        return x + self.rule.increment(xp, x, direction, lr, self.weight_decay, t), RuleSlot(
            t, state
        )
