"""The optimizer arms: which rule trains which parameter group.

Every arm splits the GPT's parameters (:meth:`GPT.parameter_groups`: ``embed``,
``head``, ``hidden``, ``vectors``) between optimizers and returns them as a
list; the training loop steps them together under one learning-rate schedule
(linear warm-up, cosine decay), which differs only for ``adamw_no_warmup``.
Each arm reads its learning rates by *role* from a mapping (``adamw`` for the
AdamW part, ``muon`` for Muon's, ``polargrad_hidden`` and
``polargrad_embed_head`` for PolarGradM's on hidden matrices or on embedding
and head, ``shampoo``, ``soap`` and ``normuon`` for those optimizers on hidden
matrices), so a preset or the command line can set them; :data:`ARMS` lists the arms.

=============================  =====================================================
``adamw``                      AdamW on everything, with warm-up
``adamw_no_warmup``            the same without warm-up
``muon``                       :class:`polarlinalg.torch.Muon` on hidden matrices,
                               AdamW on embedding, head and vectors
``polargradm_qdwh``            PolarGradM (momentum first, QDWH) on hidden
                               matrices, AdamW on the rest
``polargradm_polar_express``   the same with Polar Express
``polargradm_embed_head``      PolarGradM (QDWH) on embedding and head, Muon on
                               hidden matrices, AdamW on vectors (the paper's arm)
``torch_muon``                 ``torch.optim.Muon`` on hidden matrices, AdamW on
                               the rest (the external anchor)
``shampoo``                    :class:`polarlinalg.torch.Shampoo` (Adam grafting)
                               on hidden matrices, AdamW on the rest
``soap``                       :class:`polarlinalg.torch.SOAP` on hidden matrices,
                               AdamW on the rest
``normuon``                    :class:`polarlinalg.torch.NorMuon` on hidden
                               matrices, AdamW on the rest
=============================  =====================================================

Shampoo, SOAP and NorMuon keep their own defaults (betas, ε, Newton–Schulz in
bfloat16 for NorMuon) except two: the weight decay is the preset's, as for every
arm (SOAP's own default is 0.01), and Shampoo takes new roots every
:data:`SHAMPOO_PRECONDITION_EVERY` steps (SOAP's default frequency; Adam's step
before the first) instead of every step, whose ``eigh`` of every factor would
otherwise cost more than the forward and backward passes.

Importing this module does not import PyTorch; building an arm's optimizers does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polarlinalg.experiments.lm._torch import require_torch

__all__ = ["ARMS", "ARM_NAMES", "Arm", "build_optimizers", "get_arm"]

Groups = Mapping[str, Sequence[Any]]
Builder = Callable[[Groups, Mapping[str, float], float], list[Any]]

ADAMW_BETAS = (0.9, 0.95)
MOMENTUM = 0.95
SHAMPOO_PRECONDITION_EVERY = 10  # SOAP's default frequency; every step is eigh-bound


@dataclass(frozen=True)
class Arm:
    """One optimizer arm.

    Attributes
    ----------
    name : str
        The flag value (``--arms NAME``).
    description : str
        One line for tables and plots.
    roles : tuple of str
        The learning-rate roles it reads (``adamw``, ``muon``,
        ``polargrad_hidden``, ``polargrad_embed_head``, ``shampoo``, ``soap``,
        ``normuon``).
    warmup : bool
        Whether the schedule's warm-up applies.
    build : callable
        ``build(groups, lrs, weight_decay)`` returns the optimizers.
    """

    name: str
    description: str
    roles: tuple[str, ...]
    warmup: bool
    build: Builder


def _adamw(params: Sequence[Any], lr: float, weight_decay: float) -> Any:
    torch = require_torch()
    return torch.optim.AdamW(list(params), lr=lr, betas=ADAMW_BETAS, weight_decay=weight_decay)


def _adamw_everything(groups: Groups, lrs: Mapping[str, float], weight_decay: float) -> list:
    return [_rest(groups, lrs, weight_decay, "embed", "head", "hidden")]


def _rest(groups: Groups, lrs: Mapping[str, float], weight_decay: float, *names: str) -> Any:
    """AdamW on the ``names`` groups (matrices decayed) and the vectors (not decayed)."""
    torch = require_torch()
    matrices = [p for name in names for p in groups[name]]
    return torch.optim.AdamW(
        [
            {"params": matrices, "weight_decay": weight_decay},
            {"params": list(groups["vectors"]), "weight_decay": 0.0},
        ],
        lr=lrs["adamw"],
        betas=ADAMW_BETAS,
    )


def _muon(groups: Groups, lrs: Mapping[str, float], weight_decay: float) -> list:
    from polarlinalg.torch import Muon

    hidden = Muon(list(groups["hidden"]), lr=lrs["muon"], weight_decay=weight_decay)
    return [hidden, _rest(groups, lrs, weight_decay, "embed", "head")]


def _polargradm(method: str) -> Builder:
    def build(groups: Groups, lrs: Mapping[str, float], weight_decay: float) -> list:
        from polarlinalg.torch import PolarGrad

        hidden = PolarGrad(
            list(groups["hidden"]),
            lr=lrs["polargrad_hidden"],
            momentum=MOMENTUM,
            method=method,
            weight_decay=weight_decay,
            rule="polargrad",
        )
        return [hidden, _rest(groups, lrs, weight_decay, "embed", "head")]

    return build


def _polargradm_embed_head(groups: Groups, lrs: Mapping[str, float], weight_decay: float) -> list:
    from polarlinalg.torch import Muon, PolarGrad

    hidden = Muon(list(groups["hidden"]), lr=lrs["muon"], weight_decay=weight_decay)
    ends = PolarGrad(
        [*groups["embed"], *groups["head"]],
        lr=lrs["polargrad_embed_head"],
        momentum=MOMENTUM,
        method="qdwh",
        weight_decay=weight_decay,
        rule="polargrad",
    )
    return [hidden, ends, _adamw(groups["vectors"], lrs["adamw"], 0.0)]


def _torch_muon(groups: Groups, lrs: Mapping[str, float], weight_decay: float) -> list:
    torch = require_torch()
    muon_cls = getattr(torch.optim, "Muon", None)
    if muon_cls is None:
        raise RuntimeError(
            "the torch_muon arm needs torch.optim.Muon (PyTorch >= 2.9); "
            f"this is {torch.__version__}"
        )
    hidden = muon_cls(list(groups["hidden"]), lr=lrs["muon"], weight_decay=weight_decay)
    return [hidden, _rest(groups, lrs, weight_decay, "embed", "head")]


def _hidden(cls_name: str, role: str, **options: Any) -> Builder:
    """``polarlinalg.torch.<cls_name>(**options)`` on hidden matrices, AdamW on the rest."""

    def build(groups: Groups, lrs: Mapping[str, float], weight_decay: float) -> list:
        import polarlinalg.torch

        cls = getattr(polarlinalg.torch, cls_name)
        hidden = cls(list(groups["hidden"]), lr=lrs[role], weight_decay=weight_decay, **options)
        return [hidden, _rest(groups, lrs, weight_decay, "embed", "head")]

    return build


ARMS: dict[str, Arm] = {
    arm.name: arm
    for arm in (
        Arm("adamw", "AdamW everywhere", ("adamw",), True, _adamw_everything),
        Arm(
            "adamw_no_warmup",
            "AdamW everywhere, no warm-up",
            ("adamw",),
            False,
            _adamw_everything,
        ),
        Arm("muon", "Muon hidden + AdamW", ("muon", "adamw"), True, _muon),
        Arm(
            "polargradm_qdwh",
            "PolarGradM (QDWH) hidden + AdamW",
            ("polargrad_hidden", "adamw"),
            True,
            _polargradm("qdwh"),
        ),
        Arm(
            "polargradm_polar_express",
            "PolarGradM (Polar Express) hidden + AdamW",
            ("polargrad_hidden", "adamw"),
            True,
            _polargradm("polar_express"),
        ),
        Arm(
            "polargradm_embed_head",
            "PolarGradM embed/head + Muon hidden + AdamW vectors",
            ("polargrad_embed_head", "muon", "adamw"),
            True,
            _polargradm_embed_head,
        ),
        Arm("torch_muon", "torch.optim.Muon hidden + AdamW", ("muon", "adamw"), True, _torch_muon),
        Arm(
            "shampoo",
            "Shampoo (Adam grafting) hidden + AdamW",
            ("shampoo", "adamw"),
            True,
            _hidden("Shampoo", "shampoo", precondition_every=SHAMPOO_PRECONDITION_EVERY),
        ),
        Arm("soap", "SOAP hidden + AdamW", ("soap", "adamw"), True, _hidden("SOAP", "soap")),
        Arm(
            "normuon",
            "NorMuon hidden + AdamW",
            ("normuon", "adamw"),
            True,
            _hidden("NorMuon", "normuon"),
        ),
    )
}
ARM_NAMES: tuple[str, ...] = tuple(ARMS)


def get_arm(name: str) -> Arm:
    """Return the arm called ``name``; ValueError naming the choices otherwise."""
    try:
        return ARMS[name]
    except KeyError:
        raise ValueError(f"unknown arm {name!r}; choose from {', '.join(ARM_NAMES)}") from None


def build_optimizers(
    arm: Arm, groups: Groups, lrs: Mapping[str, float], weight_decay: float = 0.0
) -> list[Any]:
    """Return ``arm``'s optimizers for ``groups`` after checking its learning rates."""
    missing = [role for role in arm.roles if role not in lrs]
    if missing:
        raise ValueError(f"arm {arm.name!r} needs learning rates for {', '.join(missing)}")
    for role in arm.roles:
        value = lrs[role]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(
                f"learning rate {arm.name}.{role} must be a positive number; got {value!r}"
            )
    require_torch()
    return arm.build(groups, lrs, weight_decay)
