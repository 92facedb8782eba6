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
``muon_qk_clip``               ``muon`` plus QK-Clip after every step
                               (threshold :data:`QK_CLIP_THRESHOLD`)
``polargradm_one_sided``       PolarGradM with the row-normalised rule
                               (:data:`ONE_SIDED`) on embedding and head, Muon
                               on hidden matrices, AdamW on vectors, routed by
                               :func:`polarlinalg.torch.param_groups`
=============================  =====================================================

Shampoo, SOAP and NorMuon keep their own defaults (betas, ε, Newton–Schulz in
bfloat16 for NorMuon) except two: the weight decay is the preset's, as for every
arm (SOAP's own default is 0.01), and Shampoo takes new roots every
:data:`SHAMPOO_PRECONDITION_EVERY` steps (SOAP's default frequency; Adam's step
before the first) instead of every step, whose ``eigh`` of every factor would
otherwise cost more than the forward and backward passes.

**QK-Clip** (``muon_qk_clip``; Kimi K2 technical report): an arm with
``qk_clip`` set makes the training loop record every head's max attention logit
on the forward pass and, after the optimizer steps, scale the query and key rows
of each head above the threshold by ``√(τ/S_h)`` (:meth:`GPT.qk_clip_
<polarlinalg.experiments.lm.model.GPT.qk_clip_>`).  The threshold is the
report's τ = 100: on ``tiny`` with the ``muon`` arm at its preset rate (seed 0,
no clip) the first layer's largest logit passed 100 at step 60 and reached about
360 by step 200 (the other layers 90 to 190), so the clip acts on this preset.
It uses the ``muon`` and ``adamw`` rates, so it needs no role of its own.

**One-sided rules** (``polargradm_one_sided``; Lau & Su, arXiv:2605.18106):
the arm is ``polargradm_embed_head`` with the polar factor on the ``(256, d)``
embedding and head replaced by the row-normalised map ``rownorm``
(``diag(1/(‖aᵢ‖ + ε)) A``: every token's row normalised, RowNormM), with
PolarGradM's momentum and nuclear-type scale ``⟨A, W(A)⟩``.  Rows are tokens in
both matrices (``nn.Embedding`` and the head ``nn.Linear`` store one row per
byte).  The right one-sided polar update (``polar_right``) was the first choice
for the head, but on ``tiny`` in float32 its ``(AᵀA + εI)^{−1/2}`` (``eigh``,
``ε = 1e-8`` below float32 rounding of the Gram) turned the head into NaN at the
fifth step; it can replace ``rownorm`` in :data:`ONE_SIDED` once that form is
robust in float32.  The arm reads the ``polargrad_embed_head`` rate (swept for the
QDWH polar factor, not re-tuned for this map), ``muon`` and ``adamw``.  It is the
one arm that routes with :func:`polarlinalg.torch.param_groups` (``needs_model``),
from the model itself.

Importing this module does not import PyTorch; building an arm's optimizers does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polarlinalg.experiments.lm._torch import require_torch

__all__ = [
    "ARMS",
    "ARM_NAMES",
    "ONE_SIDED",
    "QK_CLIP_THRESHOLD",
    "Arm",
    "build_optimizers",
    "get_arm",
]

Groups = Mapping[str, Sequence[Any]]
Builder = Callable[..., list[Any]]  # (groups, lrs, weight_decay[, model]) -> optimizers

ADAMW_BETAS = (0.9, 0.95)
MOMENTUM = 0.95
SHAMPOO_PRECONDITION_EVERY = 10  # SOAP's default frequency; every step is eigh-bound
QK_CLIP_THRESHOLD = 100.0  # the Kimi K2 report's τ; triggers on `tiny` (module docstring)
ONE_SIDED = {"embedding": "rownorm", "head": "rownorm"}  # polargradm_one_sided's rules


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
        ``build(groups, lrs, weight_decay)`` returns the optimizers
        (``build(groups, lrs, weight_decay, model)`` with ``needs_model``).
    qk_clip : float, optional
        QK-Clip's threshold ``τ``: the training loop records the per-head max
        attention logits and clips after every step.  None: no clip.
    needs_model : bool
        The arm routes the model's parameters itself (with
        :func:`polarlinalg.torch.param_groups`): :func:`build_optimizers`
        needs ``model``.
    """

    name: str
    description: str
    roles: tuple[str, ...]
    warmup: bool
    build: Builder
    qk_clip: float | None = None
    needs_model: bool = False


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


def _polargradm_one_sided(
    groups: Groups, lrs: Mapping[str, float], weight_decay: float, model: Any
) -> list:
    """:data:`ONE_SIDED` rules on embedding and head, Muon hidden, AdamW vectors, by rule."""
    torch = require_torch()
    from polarlinalg.torch import Muon, PolarGrad, param_groups

    routed = param_groups(model, **ONE_SIDED)
    ends = [g for g in routed if g["rule"] in ONE_SIDED.values()]
    hidden = [g for g in routed if g["rule"] == "auto"]
    vectors = [g for g in routed if g["rule"] == "adamw"]
    return [
        Muon(hidden, lr=lrs["muon"], weight_decay=weight_decay),
        PolarGrad(
            ends, lr=lrs["polargrad_embed_head"], momentum=MOMENTUM, weight_decay=weight_decay
        ),
        torch.optim.AdamW(vectors, lr=lrs["adamw"], betas=ADAMW_BETAS, weight_decay=0.0),
    ]


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
        Arm(
            "muon_qk_clip",
            "Muon hidden + AdamW, QK-Clip",
            ("muon", "adamw"),
            True,
            _muon,
            qk_clip=QK_CLIP_THRESHOLD,
        ),
        Arm(
            "polargradm_one_sided",
            "PolarGradM one-sided embed/head + Muon hidden + AdamW vectors",
            ("polargrad_embed_head", "muon", "adamw"),
            True,
            _polargradm_one_sided,
            needs_model=True,
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
    arm: Arm,
    groups: Groups,
    lrs: Mapping[str, float],
    weight_decay: float = 0.0,
    *,
    model: Any = None,
) -> list[Any]:
    """Return ``arm``'s optimizers for ``groups`` after checking its learning rates.

    ``model`` (the GPT whose ``parameter_groups()`` are ``groups``) is needed
    by the arms with ``needs_model`` and ignored by the others.
    """
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
    if arm.needs_model:
        if model is None:
            raise ValueError(f"arm {arm.name!r} routes the model's parameters itself: pass model=")
        return arm.build(groups, lrs, weight_decay, model)
    return arm.build(groups, lrs, weight_decay)
