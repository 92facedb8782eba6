"""Where the state of a generic rule (Shampoo, SOAP, NorMuon) lives across ranks.

Under a process group the owner of a matrix
(:func:`~polarlinalg._distributed.ownership.assign_owners`) holds the rule's
whole state for it; on the other ranks ``opt.state[p]`` holds only the step
count.  Owners depend on the world size, so a checkpoint must not record who
owned what:

* :func:`shard_rule_state`, a state-dict post-hook, presents the state of
  ``Shard(0)`` (FSDP2) matrices as DTensors sharded like the parameter, which
  ``torch.distributed.checkpoint`` reshards to any world size and a full state
  dict gathers whole;
* :func:`settle_owned_state`, before every step, sends loaded DTensor state
  whole to the matrices' owners, drops copies held for matrices of other
  owners (they would go stale, and a later checkpoint could save a stale one)
  and raises on every rank when an owner lacks the state of a matrix that has
  taken steps (a state dict that lacked it: the rule would otherwise restart
  that matrix from zero statistics, silently).

The rule maths stays in :mod:`polarlinalg._rules`; this module moves tensors.
See ``docs/distributed.md``, "Checkpoints across world sizes".
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Shard

from polarlinalg._distributed.torch_comm import gather_to_owners, scatter_from_owners

__all__ = ["register_checkpoint_hook", "settle_owned_state", "shard_rule_state"]

# One state tensor of a matrix: (matrix position, key, position in a tuple field or None).
_Slot = tuple[int, str, int | None]


def register_checkpoint_hook(opt: Any) -> None:
    """Register :func:`shard_rule_state` as ``opt``'s state-dict post-hook, once."""
    if not opt.__dict__.get("_polarlinalg_sharded_state_hook"):
        opt.register_state_dict_post_hook(shard_rule_state)
        opt.__dict__["_polarlinalg_sharded_state_hook"] = True


def _slots(state: MutableMapping[Any, Any], fields: Sequence[str], p: Any, i: int) -> list:
    """Return ``(slot, tensor)`` for each tensor of the rule state of ``p`` held here."""
    out = []
    for key in fields:
        value = state.get(p, {}).get(key)
        if isinstance(value, (tuple, list)):
            out.extend(((i, key, j), v) for j, v in enumerate(value))
        elif torch.is_tensor(value):
            out.append(((i, key, None), value))
    return out


def _structure(state: MutableMapping[Any, Any], fields: Sequence[str], p: Any) -> dict:
    """Describe the rule state of ``p``: per key None, a tensor, or a tuple of tensors."""
    out: dict[str, Any] = {}
    for key in fields:
        value = state.get(p, {}).get(key)
        if isinstance(value, (tuple, list)):
            out[key] = [(tuple(v.shape), v.dtype) for v in value]
        elif torch.is_tensor(value):
            out[key] = (tuple(value.shape), value.dtype)
        elif key in state.get(p, {}):
            out[key] = None
    return out


def shard_rule_state(opt: Any, state_dict: dict[str, Any]) -> dict[str, Any]:
    """State-dict post-hook: a generic rule's state of ``Shard(0)`` matrices as DTensors.

    Under a process group the owner of an FSDP2 (``Shard(0)``) matrix holds
    its whole rule state.  In the returned state dict every tensor of that
    state (of at least one dimension) is a DTensor placed ``Shard(0)`` on the
    parameter's mesh, its rows sent from the owner to every rank (one
    all-to-all per state dtype), and tuple fields become lists (DCP saves the
    elements of a list, not of a tuple).  ``torch.distributed.checkpoint``
    then saves each rank's rows and reshards them on load at any world size,
    and a full state dict (``full_state_dict=True``) gathers the whole state
    on rank 0.  After a load, the next step sends the rows back to the
    owners (:func:`settle_owned_state`).  ``opt.state`` itself is unchanged.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return state_dict
    from polarlinalg._distributed.torch_step import rule_parts

    index: dict[int, int] = {}
    for group in opt.param_groups:
        for p in group["params"]:
            index.setdefault(id(p), len(index))
    packed = state_dict["state"]
    for group in opt.param_groups:
        if not group.get("distributed", True):
            continue
        fields = opt.rule_cls.state_type._fields
        stateful = [p for p in group["params"] if p in opt.state and "step" in opt.state[p]]
        matrices = [p for p in stateful if opt._choose(group, p) == "polargrad"]
        parts, _ = rule_parts(opt, group, [p for p in matrices if isinstance(p, DTensor)])
        for layout, _, members, owners in parts:
            if layout.sharded:
                updates = _shard_part(opt.state, fields, members, owners, layout.group)
                for p, entry in updates.items():
                    packed[index[id(p)]] = {**packed.get(index[id(p)], {}), **entry}
    # in parameter order: the ranks created their state in different orders (owners
    # first), and a full state dict gathers the DTensors one by one in this order
    state_dict["state"] = dict(sorted(packed.items(), key=lambda kv: (str(type(kv[0])), kv[0])))
    return state_dict


def _shard_part(
    state: MutableMapping[Any, Any],
    fields: Sequence[str],
    params: list[Any],
    owners: list[int],
    pg: dist.ProcessGroup,
) -> dict[Any, dict[str, Any]]:
    """Return the rule state of ``params`` as ``Shard(0)`` DTensors, per parameter."""
    rank, world = dist.get_rank(pg), dist.get_world_size(pg)
    # state loaded as DTensors and not yet stepped is sharded already: it stays as it is
    mine = {
        i: _structure(state, fields, p)
        for i, p in enumerate(params)
        if owners[i] == rank
        and fields[0] in state[p]
        and not any(isinstance(v, DTensor) for _, v in _slots(state, fields, p, i))
    }
    everyone: list[dict[int, Any]] = [{} for _ in range(world)]
    dist.all_gather_object(everyone, mine, group=pg)
    structure: dict[int, dict[str, Any]] = {}
    for held in everyone:
        structure.update(held)
    slots: list[tuple[_Slot, tuple[int, ...], torch.dtype]] = []
    for i in sorted(structure):
        for key, desc in structure[i].items():
            if isinstance(desc, list):
                slots.extend(((i, key, j), shape, dtype) for j, (shape, dtype) in enumerate(desc))
            elif desc is not None:
                slots.append(((i, key, None), *desc))
    if any(len(shape) == 0 for _, shape, _ in slots):
        raise NotImplementedError(
            "a 0-d tensor in a generic rule's state cannot be sharded like its parameter"
        )
    held_here = {slot: t for i in mine for slot, t in _slots(state, fields, params[i], i)}
    pieces: dict[_Slot, torch.Tensor] = {}
    for dtype in sorted({d for *_, d in slots}, key=str):
        chosen = [(slot, shape) for slot, shape, d in slots if d == dtype]
        device = DTensor.to_local(params[0]).device
        full = {k: held_here[slot] for k, (slot, _) in enumerate(chosen) if slot in held_here}
        rows, _ = scatter_from_owners(
            full,
            {},
            [shape for _, shape in chosen],
            [0] * len(chosen),
            [owners[slot[0]] for slot, _ in chosen],
            rank,
            world,
            pg,
            torch.empty(0, dtype=dtype, device=device),
        )
        for (slot, shape), piece in zip(chosen, rows, strict=True):
            mesh = params[slot[0]].device_mesh
            stride = tuple(math.prod(shape[k + 1 :]) for k in range(len(shape)))
            pieces[slot] = DTensor.from_local(
                piece.clone(), mesh, [Shard(0)], run_check=False, shape=shape, stride=stride
            )
    out: dict[Any, dict[str, Any]] = {}
    for i, desc in structure.items():
        entry: dict[str, Any] = {}
        for key, kind in desc.items():
            if isinstance(kind, list):
                entry[key] = [pieces[(i, key, j)] for j in range(len(kind))]
            elif kind is None:
                entry[key] = None
            else:
                entry[key] = pieces[(i, key, None)]
        out[params[i]] = entry
    return out


def _gather_loaded(
    state: MutableMapping[Any, Any],
    fields: Sequence[str],
    params: Sequence[torch.Tensor],
    owners: Sequence[int],
    rank: int,
    world: int,
    group: dist.ProcessGroup | None,
) -> None:
    """Bring loaded ``Shard(0)`` DTensor rule state back whole to each matrix's owner."""
    slots = [
        (slot, v)
        for i, p in enumerate(params)
        for slot, v in _slots(state, fields, p, i)
        if isinstance(v, DTensor)
    ]
    by_dtype: dict[torch.dtype, list[tuple[_Slot, DTensor]]] = {}
    for slot, v in slots:
        by_dtype.setdefault(v.dtype, []).append((slot, v))
    whole: dict[_Slot, torch.Tensor] = {}
    for items in by_dtype.values():
        full = gather_to_owners(
            [v.to_local().contiguous() for _, v in items],
            [tuple(v.shape) for _, v in items],
            [owners[slot[0]] for slot, _ in items],
            rank,
            world,
            group,
        )
        whole.update({items[k][0]: t for k, t in full.items()})
    for i, p in enumerate(params):
        if owners[i] != rank:
            continue
        for key in fields:
            value = state.get(p, {}).get(key)
            if isinstance(value, (tuple, list)):
                state[p][key] = tuple(whole.get((i, key, j), v) for j, v in enumerate(value))
            elif isinstance(value, DTensor):
                state[p][key] = whole[(i, key, None)]


def _has_stepped(state: MutableMapping[str, Any]) -> bool:
    step = state.get("step")
    return step is not None and float(step) >= 1


def settle_owned_state(
    state: MutableMapping[Any, Any],
    fields: Sequence[str],
    params: Sequence[torch.Tensor],
    owners: Sequence[int],
    rank: int,
    group: dist.ProcessGroup | None,
    device: torch.device,
) -> None:
    """Put the rule state of ``params`` on their owners, whole, before a step.

    Loaded ``Shard(0)`` DTensor state (:func:`shard_rule_state`) is gathered
    whole on each matrix's owner; rule state held for matrices of other owners
    is dropped.  One all-reduce of two integers decides, on every rank alike,
    whether to gather and whether to raise.

    Parameters
    ----------
    state : mapping
        The optimizer's ``state`` (parameter to dict).
    fields : sequence of str
        The rule's state keys (``rule.state_type._fields``).
    params, owners : sequences
        The matrices stepped together and the owner rank of each.
    rank, group
        This rank within ``group`` (None: the default group).
    device : torch.device
        Where the collective's flags live (the parameters' device).

    Raises
    ------
    RuntimeError
        On every rank, before any state changes, when the owner of a matrix
        that has taken steps has no state for it.
    """
    lost = [
        i
        for i, p in enumerate(params)
        if owners[i] == rank
        and fields[0] not in state.get(p, {})
        and _has_stepped(state.get(p, {}))
    ]
    sharded = any(
        isinstance(v, DTensor) for i, p in enumerate(params) for _, v in _slots(state, fields, p, i)
    )
    flags = torch.tensor([lost[0] + 1 if lost else 0, int(sharded)], device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=group)
    missing = int(flags[0]) - 1
    if missing >= 0:
        p = params[missing]
        steps = int(float(state[p]["step"])) if "step" in state[p] else "some"
        raise RuntimeError(
            f"the matrix parameter of shape {tuple(p.shape)} (position {missing} among the "
            f"matrices stepped together) has taken {steps} steps, but its owner rank "
            f"{owners[missing]} holds no optimizer state for it: the loaded state dict lacks "
            "it. Under a process group each rank's optimizer state holds the Shampoo/SOAP/"
            "NorMuon state of the matrices that rank owns only; save with "
            "torch.distributed.checkpoint.state_dict.get_state_dict (sharded or "
            "full_state_dict=True), not one rank's opt.state_dict() (see "
            "docs/distributed.md, 'Checkpoints across world sizes')"
        )
    if int(flags[1]):
        world = dist.get_world_size(group)
        _gather_loaded(state, fields, params, owners, rank, world, group)
    for p, owner in zip(params, owners, strict=True):
        if owner != rank:
            for key in fields:
                state[p].pop(key, None)
