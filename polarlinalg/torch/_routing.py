"""Param groups for a whole model: embeddings, head, hidden matrices and vectors routed by rule.

:func:`param_groups` sorts the parameters of an ``nn.Module`` into the four
kinds that Muon-style training treats differently and returns param groups
for :class:`~polarlinalg.torch.PolarGrad`, :class:`~polarlinalg.torch.NorMuon`
and the other ``polarlinalg.torch`` optimizers, each group with its ``rule``
and the names of its parameters.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from polarlinalg._rules import hyperparams
from polarlinalg._rules._base import MatrixRule

__all__ = ["param_groups"]

KINDS: tuple[str, ...] = ("embedding", "head", "hidden", "vectors")
"""The kinds of parameters, in the order their groups are returned."""

_DEFAULTS = {"embedding": "adamw", "head": "adamw", "hidden": "auto", "vectors": "adamw"}
_RESERVED = ("params", "param_names")
_VECTOR_RULES = ("auto", "adamw")  # what a parameter with fewer than two dimensions can take

Spec = str | Mapping[str, Any]


def rule_names() -> tuple[str, ...]:
    """Return the rule names a group's ``rule`` may hold, as the optimizers know them now.

    :data:`polarlinalg._rules.hyperparams.RULES` (read at call time, so rules
    added there are found) and the names of the matrix rules of the
    rule-based optimizers (``"normuon"``, ``"shampoo"``, ``"soap"``).  Which
    of them a given optimizer accepts, it checks itself when the group is
    added.
    """
    names = dict.fromkeys(hyperparams.RULES)
    stack = list(MatrixRule.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.name:
            names.setdefault(cls.name)
    return tuple(names)


def _check_rule(rule: Any, where: str) -> str:
    known = rule_names()
    if not isinstance(rule, str) or rule not in known:
        raise ValueError(
            f"unknown rule {rule!r} for {where}; choose one of {', '.join(map(repr, known))}"
        )
    return rule


def _spec(value: Any, where: str, default: str | None) -> tuple[str, dict[str, Any]]:
    """Return ``(rule, group options)`` from a rule name or a dict of group options.

    A dict without ``"rule"`` takes ``default``; with ``default=None`` the
    rule is then ``""`` (an override that keeps the rule of the parameter's kind).
    """
    if isinstance(value, str):
        return _check_rule(value, where), {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{where} must be a rule name or a dict of group options; got {type(value).__name__}"
        )
    options = dict(value)
    if any(not isinstance(k, str) for k in options):
        raise TypeError(f"the keys of {where} must be strings; got {list(options)!r}")
    for key in _RESERVED:
        if key in options:
            raise ValueError(f"{where} may not set {key!r}: param_groups fills it")
    rule = options.pop("rule", default)
    return ("" if rule is None else _check_rule(rule, where)), options


def _kinds(model: nn.Module, params: dict[int, torch.Tensor]) -> tuple[set[int], int | None]:
    """Return the ids of the embedding weights and of the head weight (None if none is found)."""
    embeddings = [m for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    embedding_ids = {id(m.weight) for m in embeddings if id(m.weight) in params}
    vocabularies = {m.num_embeddings for m in embeddings}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    head = None
    if linears and id(linears[-1].weight) in params:
        last = linears[-1]
        if id(last.weight) in embedding_ids or last.out_features in vocabularies:
            head = id(last.weight)
    return embedding_ids, head


def _describe(names: list[str], p: torch.Tensor) -> str:
    also = f" (tied: also {', '.join(map(repr, names[1:]))})" if len(names) > 1 else ""
    return f"parameter {names[0]!r}{also} of shape {tuple(p.shape)}"


def param_groups(
    model: nn.Module,
    *,
    embedding: Spec = "adamw",
    head: Spec = "adamw",
    hidden: Spec = "auto",
    vectors: Spec = "adamw",
    overrides: Mapping[str, Spec] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    r"""Return param groups routing each trainable parameter of ``model`` to a rule.

    Four kinds of parameters, each sent to the rule its keyword names (the
    group key ``rule``, which the optimizer checks):

    ``embedding``
        The weights of ``nn.Embedding`` / ``nn.EmbeddingBag`` modules.
    ``head``
        The output head: the last ``nn.Linear`` of ``model.modules()``
        (registration order) when its weight is an embedding's weight (tied)
        or its output size equals an embedding's vocabulary size.  A model
        without an embedding has no head here (route one with ``overrides``).
    ``hidden``
        Every other parameter with at least two dimensions.
    ``vectors``
        Parameters with fewer than two dimensions (biases, norm weights,
        scalars), the head's bias included.

    Each parameter appears exactly once, named in ``param_names`` (a tied
    weight once, by its first name);
    frozen parameters (``requires_grad=False``) are left out.  The groups
    come in the order embedding, head, hidden, vectors, then one per
    override pattern (in the order given); empty groups are omitted.  Every
    group carries ``param_names`` (PyTorch ≥ 2.6 keeps them, and the
    optimizers name parameters by them in errors), so all parameters of the
    optimizer must come from such groups.

    Parameters
    ----------
    model : nn.Module
    embedding, head, hidden, vectors : str or dict
        A rule name — ``"adamw"``, ``"auto"`` (the matrix rule for ≥ 2-D, AdamW
        otherwise), ``"polargrad"`` (the matrix rule of ``PolarGrad``/``Muon``;
        for ``NorMuon`` its name is ``"normuon"``), a one-sided rule for
        embeddings and heads (``"rownorm"``, ``"polar_right"``,
        ``"polar_left"``; Lau & Su, arXiv:2605.18106), or another name of
        :func:`rule_names` — or a dict of group options with an optional
        ``"rule"`` (e.g. ``{"rule": "adamw", "adamw_weight_decay": 0.0}``).
        Defaults: AdamW for embeddings, head and vectors, ``"auto"`` for the
        hidden matrices.  Vectors accept only ``"adamw"`` or ``"auto"``.
    overrides : dict, optional
        ``fnmatch`` patterns (``"*.bias"``, ``"blocks.0.*"``; matched
        case-sensitively against every name of a parameter) mapping to a
        rule name or a dict of group options as above; without a
        ``"rule"`` a matched parameter keeps the rule of its kind.  A pattern
        that matches no parameter, or a parameter matched by two patterns, is
        a ValueError (a typo would otherwise change nothing silently).
    options : dict, optional
        Group options per rule name, applied to every group of that rule
        before the kind's or the override's own options, e.g.
        ``{"adamw": {"lr": 3e-4}}``.

    Returns
    -------
    list of dict
        Param groups: ``params``, ``param_names``, ``rule`` and the options.

    Raises
    ------
    TypeError
        ``model`` is not an ``nn.Module``, or a spec is neither a name nor a dict.
    ValueError
        No trainable parameters; an unknown rule name; a vector routed to a
        matrix rule; a pattern matching nothing; a parameter matched by two
        patterns; a tied embedding and head given different rules (override
        the tied weight by name to choose); a spec setting ``params`` or
        ``param_names``.

    Notes
    -----
    **Schedulers reach AdamW.**  The AdamW parameters sit in groups of their
    own whose ``lr`` is AdamW's learning rate (set it with
    ``options={"adamw": {"lr": ...}}``), so a learning-rate scheduler scales
    them like the matrices.  Without it such a group takes the optimizer's
    ``lr``; an ``adamw_lr`` given to the optimizer takes precedence (scaled
    by the group's schedule).

    Examples
    --------
    >>> import torch
    >>> from polarlinalg.torch import PolarGrad, param_groups
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Embedding(50, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 50)
    ... )
    >>> groups = param_groups(model, options={"adamw": {"lr": 1e-3}})
    >>> [(g["rule"], g["param_names"]) for g in groups]  # doctest: +NORMALIZE_WHITESPACE
    [('adamw', ['0.weight']), ('adamw', ['2.weight']), ('auto', ['1.weight']),
     ('adamw', ['1.bias', '2.bias'])]
    >>> opt = PolarGrad(groups, lr=0.02, momentum=0.95, scale="shape")
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    specs = {
        kind: _spec(value, f"{kind}=", _DEFAULTS[kind])
        for kind, value in zip(KINDS, (embedding, head, hidden, vectors), strict=True)
    }
    if specs["vectors"][0] not in _VECTOR_RULES:
        raise ValueError(
            f"vectors={specs['vectors'][0]!r}: parameters with fewer than two dimensions can "
            f"only take {' or '.join(map(repr, _VECTOR_RULES))}"
        )
    per_rule = {}
    for rule, opts in dict(options or {}).items():
        _check_rule(rule, "options")
        if isinstance(opts, Mapping) and "rule" in opts:
            raise ValueError(f"options[{rule!r}] may not set 'rule': its key is the rule")
        if isinstance(opts, str):
            raise TypeError(f"options[{rule!r}] must be a dict of group options; got {opts!r}")
        per_rule[rule] = _spec(opts, f"options[{rule!r}]", rule)[1]
    patterns = {}
    for pattern, value in dict(overrides or {}).items():
        if not isinstance(pattern, str) or not pattern:
            raise TypeError(f"override patterns must be non-empty strings; got {pattern!r}")
        patterns[pattern] = _spec(value, f"overrides[{pattern!r}]", None)

    names: dict[int, list[str]] = {}
    params: dict[int, torch.Tensor] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if p.requires_grad:
            params.setdefault(id(p), p)
            names.setdefault(id(p), []).append(name)
    if not params:
        raise ValueError(f"model ({type(model).__name__}) has no trainable parameters")
    embedding_ids, head_id = _kinds(model, params)

    matched: dict[int, str] = {}
    for pattern in patterns:
        hits = [i for i in params if any(fnmatch.fnmatchcase(n, pattern) for n in names[i])]
        if not hits:
            sample = ", ".join(repr(n[0]) for n in list(names.values())[:8])
            raise ValueError(
                f"overrides pattern {pattern!r} matches no trainable parameter of the model "
                f"(names look like {sample}{', ...' if len(names) > 8 else ''})"
            )
        for i in hits:
            if i in matched:
                raise ValueError(
                    f"{_describe(names[i], params[i])} is matched by two overrides, "
                    f"{matched[i]!r} and {pattern!r}; make the patterns disjoint"
                )
            matched[i] = pattern

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    order = [*KINDS, *patterns]  # groups in this order, then by rule
    for i, p in params.items():
        if p.ndim < 2:
            kind = "vectors"
        elif i in embedding_ids:
            kind = "embedding"
            if i == head_id and specs["embedding"] != specs["head"] and i not in matched:
                raise ValueError(
                    f"the head weight is tied to the embedding ({_describe(names[i], p)}) but "
                    f"embedding={specs['embedding'][0]!r} and head={specs['head'][0]!r} (or "
                    "their options) differ; pass the same, or route it with "
                    f"overrides={{{names[i][0]!r}: ...}}"
                )
        elif i == head_id:
            kind = "head"
        else:
            kind = "hidden"
        rule, opts = specs[kind]
        source = kind
        if i in matched:
            source = matched[i]
            own_rule, own = patterns[source]
            rule, opts = own_rule or rule, own
        if p.ndim < 2 and rule not in _VECTOR_RULES:
            raise ValueError(
                f"{_describe(names[i], p)} has fewer than two dimensions and cannot take "
                f"rule {rule!r} (from {source if source in KINDS else 'overrides'}: "
                f"{source!r}); use 'adamw' or 'auto'"
            )
        group = groups.get((source, rule))
        if group is None:
            group = {"params": [], "param_names": [], "rule": rule}
            group.update(per_rule.get(rule, {}))
            group.update(opts)
            groups[(source, rule)] = group
        group["params"].append(p)
        group["param_names"].append(names[i][0])
    keys = sorted(groups, key=lambda key: (order.index(key[0]), key[1]))
    return [groups[key] for key in keys]
