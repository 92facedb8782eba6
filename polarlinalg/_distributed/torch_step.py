"""The matrix step of :mod:`polarlinalg.torch` across the ranks of a process group.

Two kinds of parameters:

* **replicated** (plain tensors under DistributedDataParallel, or DTensors
  placed ``Replicate()``): every rank holds the whole matrix and the same
  gradient.  The momentum (elementwise) is updated on every rank, so the
  optimizer state stays replicated; each matrix's polar factor is computed by
  one owner only and the results reach every rank in one ``all_gather``;
* **sharded** (DTensors placed ``Shard(0)`` on a 1-D mesh: FSDP2's
  ``fully_shard``): each rank holds rows of the matrix, of its gradient and of
  its momentum (a DTensor sharded like the parameter).  The momentum is
  updated on the local rows; one ``all_to_all`` assembles each matrix on its
  owner, which orthogonalises it whole (the nuclear-norm scale ``⟨M, U⟩`` is a
  sum over the whole matrix) and a second ``all_to_all`` sends the rows back.

Owners are assigned by :func:`~polarlinalg._distributed.ownership.assign_owners`
(balanced by cost; an owner orthogonalises its matrices of one shape in one
batched call when the group's ``batch`` option says so).  Every elementwise
operation is the one of the single-process step, in the same order, so the
result equals the single-process optimizer's up to the rounding of the
gradient reduction.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Replicate, Shard

from polarlinalg._compat import array_namespace
from polarlinalg._distributed.ownership import assign_owners
from polarlinalg._distributed.torch_comm import (
    all_gather_from_owners,
    gather_to_owners,
    row_bounds,
    scatter_from_owners,
)
from polarlinalg._distributed.torch_rule_state import register_checkpoint_hook, settle_owned_state
from polarlinalg._dtypes import state_dtype
from polarlinalg._rules import PolarGradRule, as_matrices
from polarlinalg._rules.polargrad import _momentum, direction_constant, direction_factor

__all__ = ["finite_flags", "local", "matrix_step", "rule_step"]

ApplyFn = Callable[[list[torch.Tensor], list[torch.Tensor], Any, Any, float], None]


def local(x: torch.Tensor) -> torch.Tensor:
    """Return this rank's part of ``x`` (a DTensor's local tensor; ``x`` itself otherwise)."""
    return x.to_local() if isinstance(x, DTensor) else x


@dataclasses.dataclass(frozen=True)
class _Layout:
    """How one parameter is spread over a process group."""

    group: dist.ProcessGroup | None
    sharded: bool


def _layout(p: torch.Tensor, distributed: bool) -> _Layout | None:
    """Return the layout of ``p``, or None when it is stepped locally, without collectives."""
    if not isinstance(p, DTensor):
        if not distributed or dist.get_world_size() == 1:
            return None
        return _Layout(None, False)
    mesh = p.device_mesh
    placements = tuple(p.placements)
    grad_placements = tuple(p.grad.placements) if isinstance(p.grad, DTensor) else None
    if mesh.ndim != 1 or (p.grad is not None and grad_placements != placements):
        raise NotImplementedError(
            f"a DTensor parameter of shape {tuple(p.shape)} on a {mesh.ndim}-D mesh with "
            f"placements {placements} (gradient: {grad_placements}); polarlinalg supports "
            "1-D meshes with parameter and gradient both Shard(0) (fully_shard) or Replicate()"
        )
    if placements[0] == Shard(0):
        return _Layout(mesh.get_group(), True)
    if isinstance(placements[0], Replicate):
        return _Layout(mesh.get_group(), False)
    raise NotImplementedError(
        f"a DTensor parameter of shape {tuple(p.shape)} placed {placements}; polarlinalg "
        "supports Shard(0) (fully_shard) and Replicate()"
    )


def finite_flags(grads: list[torch.Tensor]) -> torch.Tensor:
    """Return one bool per gradient (on the host): all finite, on every rank holding a shard.

    The local shards are reduced per device (:func:`finite_by_device`), the
    flags of sharded gradients combined over their process group on the
    device of their shards.
    """
    from polarlinalg.torch._base import finite_by_device

    flags = finite_by_device([local(g) for g in grads])
    by_group: dict[int, tuple[dist.ProcessGroup, list[int]]] = {}
    for i, g in enumerate(grads):
        if isinstance(g, DTensor) and any(isinstance(pl, Shard) for pl in g.placements):
            pg = g.device_mesh.get_group()
            by_group.setdefault(id(pg), (pg, []))[1].append(i)
    for pg, index in by_group.values():
        part = flags[index].to(device=local(grads[index[0]]).device, dtype=torch.int32)
        dist.all_reduce(part, op=dist.ReduceOp.MIN, group=pg)
        flags[index] = part.to("cpu").bool()
    return flags


def _check_replicated(opt: Any, shapes: list[tuple[Any, ...]]) -> None:
    """Check once per layout that every rank steps the same replicated matrices."""
    verified = opt.__dict__.setdefault("_polarlinalg_verified_layouts", set())
    key = tuple(shapes)
    if key in verified:
        return
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, key)
    if any(other != key for other in everyone):
        raise RuntimeError(
            "the ranks step different replicated matrix parameters (shapes, dtypes or which "
            "ones have gradients differ); polarlinalg spreads the orthogonalisation of "
            "replicated parameters over the ranks, which needs data-parallel replicas. Set "
            "'distributed': False in the param group to step every rank on its own"
        )
    verified.add(key)


def matrix_step(
    opt: Any,
    group: Mapping[str, Any],
    rule: PolarGradRule,
    params: list[torch.Tensor],
    apply: ApplyFn,
) -> list[torch.Tensor]:
    """Take the matrix step of ``params`` that live on a process group.

    Parameters
    ----------
    opt : torch.optim.Optimizer
        The optimizer; its ``state`` holds the momentum buffers.
    group : dict
        The param group (``lr``, ``weight_decay``, ``batch``, ``distributed``).
    rule : PolarGradRule
        The group's matrix rule.
    params : list of tensors
        Matrix parameters with gradients.
    apply : callable
        ``apply(params, updates, lr, weight_decay, scale)``, the in-place update.

    Returns
    -------
    list of tensors
        The parameters left to the single-process step (plain tensors when
        ``group["distributed"]`` is False or the world has one rank).
    """
    parts, leftover = _by_layout(
        params,
        group.get("distributed", True),
        lambda p: state_dtype(array_namespace(p), p.dtype) if rule.has_buffer else p.grad.dtype,
    )
    for layout, members in parts.values():
        _step_members(opt, group, rule, layout, members, apply)
    return leftover


def _by_layout(
    params: list[torch.Tensor], distributed: bool, dtype_of: Callable[[torch.Tensor], Any]
) -> tuple[dict[tuple[Any, ...], tuple[_Layout, list[torch.Tensor]]], list[torch.Tensor]]:
    """Group ``params`` by (process group, sharded, ``dtype_of(p)``, device).

    Returns the groups and the parameters stepped locally (no layout).  Complex
    parameters on a process group raise NotImplementedError.
    """
    leftover: list[torch.Tensor] = []
    parts: dict[tuple[Any, ...], tuple[_Layout, list[torch.Tensor]]] = {}
    for p in params:
        layout = _layout(p, distributed)
        if layout is None:
            leftover.append(p)
            continue
        if torch.is_complex(p):
            raise NotImplementedError(
                f"complex parameters (shape {tuple(p.shape)}) are not supported across ranks; "
                "set 'distributed': False in their param group"
            )
        key = (id(layout.group), layout.sharded, dtype_of(p), p.device)
        parts.setdefault(key, (layout, []))[1].append(p)
    return parts, leftover


def _buffers(state: MutableMapping[Any, Any], params: list[torch.Tensor]) -> list[torch.Tensor]:
    for p in params:
        if "momentum_buffer" not in state[p]:
            state[p]["momentum_buffer"] = torch.zeros_like(
                p,
                dtype=state_dtype(array_namespace(p), p.dtype),
                memory_format=torch.contiguous_format,
            )
    return [local(state[p]["momentum_buffer"]) for p in params]


def _step_members(
    opt: Any,
    group: Mapping[str, Any],
    rule: PolarGradRule,
    layout: _Layout,
    params: list[torch.Tensor],
    apply: ApplyFn,
) -> None:
    pg = layout.group
    if rule.polar_first and rule.blocked:
        raise NotImplementedError(
            "polar_first=True with split/heads is not supported across ranks (the per-block "
            "scales would have to travel with the polar factors); set 'distributed': False in "
            "the param group, or use polar_first=False"
        )
    rank, world = dist.get_rank(pg), dist.get_world_size(pg)
    shapes = [tuple(p.shape) for p in params]
    matrix_shapes = [_matrix_shape(s, rule.flatten) for s in shapes]
    if not layout.sharded and pg is None:
        _check_replicated(opt, [(s, p.dtype) for s, p in zip(shapes, params, strict=True)])
    owners = assign_owners(matrix_shapes, world)
    bufs = _buffers(opt.state, params) if rule.has_buffer else None

    grads = [local(p.grad) for p in params]
    if bufs is not None:
        grads = [
            g.to(b.dtype) if g.dtype != b.dtype else g for g, b in zip(grads, bufs, strict=True)
        ]
    inputs = grads
    if not rule.polar_first and bufs is not None:
        inputs = []
        for g, b in zip(grads, bufs, strict=True):
            look, new = _momentum(rule, b, g, None)
            b.copy_(new)
            inputs.append(look)

    # the polar factor of each matrix, on its owner
    if layout.sharded:
        full = gather_to_owners(inputs, shapes, owners, rank, world, pg)
    else:
        full = {i: inputs[i] for i in range(len(params)) if owners[i] == rank}
    results, scales = _orthogonalize_owned(group, rule, full, shapes, matrix_shapes)

    # back to every rank: the direction (momentum first) or U and ⟨G, U⟩ (polar first)
    send_scales = rule.polar_first and rule.scale == "nuclear"
    extra = [math.prod(m[:-2]) if send_scales else 0 for m in matrix_shapes]
    like = inputs[0]
    if layout.sharded:
        pieces, extras = scatter_from_owners(
            results, scales, shapes, extra, owners, rank, world, pg, like
        )
    elif world > 1:
        pieces, extras = all_gather_from_owners(
            results, scales, shapes, extra, owners, world, pg, like
        )
    else:
        pieces = [results[i] for i in range(len(params))]
        extras = [scales.get(i, like) for i in range(len(params))]

    by_constant: dict[Any, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    for i, p in enumerate(params):
        direction = pieces[i]
        if rule.polar_first:
            if bufs is not None:
                direction, new = _momentum(rule, bufs[i], direction, None)
                bufs[i].copy_(new)
            if send_scales:
                direction = direction * _local_scale(
                    extras[i],
                    shapes[i],
                    matrix_shapes[i],
                    rule.flatten,
                    rank,
                    world,
                    layout.sharded,
                )
        constant = direction_constant(rule, matrix_shapes[i])
        if not isinstance(constant, numbers.Real):
            direction, constant = direction * constant, 1.0
        target = local(p)
        bucket = by_constant.setdefault(float(constant), ([], []))
        bucket[0].append(target)
        bucket[1].append(direction.reshape(target.shape).to(p.dtype))
    for constant, (targets, updates) in by_constant.items():
        apply(targets, updates, group["lr"], group["weight_decay"], constant)


def _matrix_shape(shape: tuple[int, ...], flatten: bool) -> tuple[int, ...]:
    if flatten and len(shape) > 2:
        return (shape[0], math.prod(shape[1:]))
    return shape


def _local_scale(
    scale: torch.Tensor,
    shape: tuple[int, ...],
    matrix_shape: tuple[int, ...],
    flatten: bool,
    rank: int,
    world: int,
    sharded: bool,
) -> torch.Tensor:
    """Return the per-matrix scales that multiply this rank's rows of a parameter."""
    scale = scale.reshape((*matrix_shape[:-2], 1, 1))
    if sharded and len(shape) > 2 and not flatten:  # rows of dim 0 are matrices of the batch
        lo, hi = row_bounds(shape[0], world)[rank]
        scale = scale[lo:hi]
    return scale


def _orthogonalize_owned(
    group: Mapping[str, Any],
    rule: PolarGradRule,
    full: dict[int, torch.Tensor],
    shapes: list[tuple[int, ...]],
    matrix_shapes: list[tuple[int, ...]],
) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Orthogonalise the owned matrices; same-shape ones in one call when batching.

    Returns ``{i: result}`` (the direction ``⟨A, U⟩·U`` momentum first, ``U``
    polar first; full parameter shape) and ``{i: flat ⟨A, U⟩}`` (polar first
    with the nuclear scale only).
    """
    batch = group.get("batch")
    buckets: dict[tuple[Any, ...], list[int]] = {}
    for i, x in full.items():
        together = x.device.type != "cpu" if batch is None else batch
        buckets.setdefault((matrix_shapes[i], None if together else i), []).append(i)
    results: dict[int, torch.Tensor] = {}
    scales: dict[int, torch.Tensor] = {}
    for index in buckets.values():
        mats = [as_matrices(full[i], rule.flatten) for i in index]
        stacked = mats[0] if len(mats) == 1 else torch.stack(mats)
        u, s, _ = direction_factor(array_namespace(stacked), rule, stacked)
        out = u
        if s is not None:
            if rule.polar_first:
                parts = [s] if len(index) == 1 else list(s.unbind(0))
                scales.update({i: part.reshape(-1) for i, part in zip(index, parts, strict=True)})
            else:
                out = u * s
        outs = [out] if len(index) == 1 else list(out.unbind(0))
        for i, o in zip(index, outs, strict=True):
            results[i] = o.reshape(shapes[i])
    return results, scales


def rule_step(
    opt: Any, group: Mapping[str, Any], rule: Any, params: list[torch.Tensor]
) -> list[torch.Tensor]:
    """Step parameters that live on a process group with a generic rule (Shampoo, SOAP, …).

    The owner of a matrix holds its whole rule state and runs the rule on the
    whole gradient (assembled from the row shards for ``Shard(0)``
    parameters); the direction reaches every rank (all-gathered for
    replicated parameters, sent back as rows for sharded ones), where the
    rule's elementwise ``increment`` updates the local part.  So the state of
    a matrix lives on one rank only (``opt.state[p]`` elsewhere holds just the
    ``step`` count).  Returns the parameters left to the single-process step.
    ``opt`` provides ``_count(p)`` and ``_direction(rule, p, grad, count)``.
    """
    register_checkpoint_hook(opt)
    parts, leftover = rule_parts(opt, group, params)
    for layout, dtype, members, owners in parts:
        _rule_members(opt, group, rule, layout, members, dtype, owners)
    return leftover


def rule_parts(
    opt: Any, group: Mapping[str, Any], params: list[torch.Tensor]
) -> tuple[list[tuple[_Layout, torch.dtype, list[torch.Tensor], list[int]]], list[torch.Tensor]]:
    """Split a generic rule's ``params`` by layout and give each its owner rank.

    Owners are assigned over every matrix of the group (with a gradient now or
    not), so a matrix keeps its owner, and its state, whichever matrices step.
    Returns ``(layout, state dtype, members, owners)`` per part and the
    parameters stepped locally.
    """
    distributed = group.get("distributed", True)
    dtype_of = lambda p: state_dtype(array_namespace(p), p.dtype)  # noqa: E731
    parts, leftover = _by_layout(params, distributed, dtype_of)
    out = []
    if parts:
        matrices = [p for p in group["params"] if opt._choose(group, p) == "polargrad"]
        every, _ = _by_layout(matrices, distributed, dtype_of)
    for key, (layout, members) in parts.items():
        group_matrices = every[key][1]
        shapes = [tuple(p.shape) for p in group_matrices]
        owned = assign_owners(shapes, dist.get_world_size(layout.group))
        owner_of = {id(p): r for p, r in zip(group_matrices, owned, strict=True)}
        out.append((layout, key[2], members, [owner_of[id(p)] for p in members]))
    return out, leftover


def _rule_members(
    opt: Any,
    group: Mapping[str, Any],
    rule: Any,
    layout: _Layout,
    params: list[torch.Tensor],
    dtype: torch.dtype,
    owners: list[int],
) -> None:
    pg = layout.group
    rank, world = dist.get_rank(pg), dist.get_world_size(pg)
    shapes = [tuple(p.shape) for p in params]
    if not layout.sharded and pg is None:
        _check_replicated(opt, [(s, p.dtype) for s, p in zip(shapes, params, strict=True)])
    fields = rule.state_type._fields
    settle_owned_state(opt.state, fields, params, owners, rank, pg, local(params[0]).device)
    counts = [opt._count(p) for p in params]  # every rank counts every parameter's steps
    grads = [local(p.grad).to(dtype) for p in params]
    if layout.sharded:
        full = gather_to_owners(grads, shapes, owners, rank, world, pg)
    else:
        full = {i: grads[i] for i in range(len(params)) if owners[i] == rank}
    results = {i: opt._direction(rule, params[i], g, counts[i]).to(dtype) for i, g in full.items()}
    extra = [0] * len(params)
    like = grads[0]
    if layout.sharded:
        pieces, _ = scatter_from_owners(results, {}, shapes, extra, owners, rank, world, pg, like)
    else:
        pieces, _ = all_gather_from_owners(results, {}, shapes, extra, owners, world, pg, like)
    lr = group["lr"]
    if torch.is_tensor(lr) and lr.ndim:
        lr = lr.reshape(())
    xp = array_namespace(like)
    for p, piece, count in zip(params, pieces, counts, strict=True):
        target = local(p)
        target.add_(rule.increment(xp, target, piece, lr, group["weight_decay"], count))
