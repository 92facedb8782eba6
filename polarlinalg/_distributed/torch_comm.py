"""Shard bounds and the collectives that move whole matrices to and from their owners.

A parameter sharded on dimension 0 over ``W`` ranks (FSDP2's ``Shard(0)``,
``torch.chunk`` semantics) holds rows ``[lo_r, hi_r)`` on rank ``r``.  The
functions here exchange, in one ``all_to_all_single`` (or one ``all_gather``)
per call, every matrix of a list at once: all arguments are lists indexed by
matrix, identical on every rank except the local pieces, and one call moves
tensors of a single dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist

__all__ = ["all_gather_from_owners", "gather_to_owners", "row_bounds", "scatter_from_owners"]


def row_bounds(rows: int, world_size: int) -> list[tuple[int, int]]:
    """Return ``[lo_r, hi_r)`` of each rank for ``rows`` rows split as ``torch.chunk`` does."""
    chunk = -(-rows // world_size) if rows else 0
    out = []
    for rank in range(world_size):
        lo = min(rank * chunk, rows)
        out.append((lo, min(lo + chunk, rows)))
    return out


def _row_size(shape: Sequence[int]) -> int:
    return math.prod(shape[1:])


def _exchange(
    send: list[torch.Tensor],
    in_splits: list[int],
    out_splits: list[int],
    group: dist.ProcessGroup | None,
    like: torch.Tensor,
) -> list[torch.Tensor]:
    """All-to-all of flat pieces; return the received buffer split by source rank."""
    inp = torch.cat(send) if send else like.new_empty(0)
    out = like.new_empty(sum(out_splits))
    dist.all_to_all_single(out, inp, out_splits, in_splits, group=group)
    return list(out.split(out_splits))


def gather_to_owners(
    pieces: Sequence[torch.Tensor],
    shapes: Sequence[Sequence[int]],
    owners: Sequence[int],
    rank: int,
    world_size: int,
    group: dist.ProcessGroup | None,
) -> dict[int, torch.Tensor]:
    """Assemble each matrix on its owner from the row shards of every rank.

    Parameters
    ----------
    pieces : list of tensors
        This rank's rows of each tensor (``pieces[i]`` has shape
        ``(hi - lo, *shapes[i][1:])``), one dtype and device.
    shapes : list of shapes
        Full shapes.
    owners : list of int
        Owner of each tensor (:func:`~polarlinalg._distributed.ownership.assign_owners`).
    rank, world_size, group
        This rank within ``group`` and the group's size.

    Returns
    -------
    dict
        ``{i: full tensor}`` for the tensors this rank owns.
    """
    bounds = [row_bounds(s[0], world_size) for s in shapes]
    send, in_splits = [], []
    for dest in range(world_size):
        mine = [pieces[i].reshape(-1) for i in range(len(shapes)) if owners[i] == dest]
        send.extend(mine)
        in_splits.append(sum(p.numel() for p in mine))
    owned = [i for i in range(len(shapes)) if owners[i] == rank]
    out_splits = [
        sum((bounds[i][src][1] - bounds[i][src][0]) * _row_size(shapes[i]) for i in owned)
        for src in range(world_size)
    ]
    received = _exchange(send, in_splits, out_splits, group, pieces[0])
    full = {i: pieces[0].new_empty(tuple(shapes[i])) for i in owned}
    for src, buffer in enumerate(received):
        offset = 0
        for i in owned:
            lo, hi = bounds[i][src]
            size = (hi - lo) * _row_size(shapes[i])
            full[i][lo:hi] = buffer[offset : offset + size].view((hi - lo, *shapes[i][1:]))
            offset += size
    return full


def scatter_from_owners(
    full: dict[int, torch.Tensor],
    extras: dict[int, torch.Tensor],
    shapes: Sequence[Sequence[int]],
    extra_sizes: Sequence[int],
    owners: Sequence[int],
    rank: int,
    world_size: int,
    group: dist.ProcessGroup | None,
    like: torch.Tensor,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Send each owner's results back as row shards (the inverse of :func:`gather_to_owners`).

    ``full`` and ``extras`` hold, for each tensor this rank owns, the result
    (full shape) and a flat vector of ``extra_sizes[i]`` elements that every
    rank receives whole (the per-matrix scales).  Returns this rank's rows of
    every tensor and every extra vector, in the order of ``shapes``.
    """
    bounds = [row_bounds(s[0], world_size) for s in shapes]
    owned = sorted(full)
    send, in_splits = [], []
    for dest in range(world_size):
        size = 0
        for i in owned:
            lo, hi = bounds[i][dest]
            send.append(full[i][lo:hi].reshape(-1))
            size += (hi - lo) * _row_size(shapes[i])
            if extra_sizes[i]:
                send.append(extras[i].reshape(-1))
                size += extra_sizes[i]
        in_splits.append(size)
    by_source = [[i for i in range(len(shapes)) if owners[i] == src] for src in range(world_size)]
    out_splits = []
    for src in range(world_size):
        out_splits.append(
            sum(
                (bounds[i][rank][1] - bounds[i][rank][0]) * _row_size(shapes[i]) + extra_sizes[i]
                for i in by_source[src]
            )
        )
    received = _exchange(send, in_splits, out_splits, group, like)
    pieces: list[torch.Tensor] = [like] * len(shapes)
    extra_out: list[torch.Tensor] = [like] * len(shapes)
    for src, buffer in enumerate(received):
        offset = 0
        for i in by_source[src]:
            lo, hi = bounds[i][rank]
            size = (hi - lo) * _row_size(shapes[i])
            pieces[i] = buffer[offset : offset + size].view((hi - lo, *shapes[i][1:]))
            offset += size
            extra_out[i] = buffer[offset : offset + extra_sizes[i]]
            offset += extra_sizes[i]
    return pieces, extra_out


def all_gather_from_owners(
    full: dict[int, torch.Tensor],
    extras: dict[int, torch.Tensor],
    shapes: Sequence[Sequence[int]],
    extra_sizes: Sequence[int],
    owners: Sequence[int],
    world_size: int,
    group: dist.ProcessGroup | None,
    like: torch.Tensor,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Give every rank every owner's results (replicated parameters): one ``all_gather``.

    Each rank contributes the concatenation of its results and extra vectors,
    padded to the longest contribution.  Returns every tensor (full shape) and
    every extra vector, in the order of ``shapes``.
    """
    by_source = [[i for i in range(len(shapes)) if owners[i] == src] for src in range(world_size)]
    sizes = [
        sum(math.prod(shapes[i]) + extra_sizes[i] for i in by_source[src])
        for src in range(world_size)
    ]
    longest = max(sizes)
    send = []
    for i in sorted(full):
        send.append(full[i].reshape(-1))
        if extra_sizes[i]:
            send.append(extras[i].reshape(-1))
    flat = torch.cat(send) if send else like.new_empty(0)
    if flat.numel() < longest:
        flat = torch.cat([flat, like.new_zeros(longest - flat.numel())])
    received = [like.new_empty(longest) for _ in range(world_size)]
    dist.all_gather(received, flat, group=group)
    results: list[torch.Tensor] = [like] * len(shapes)
    extra_out: list[torch.Tensor] = [like] * len(shapes)
    for src, buffer in enumerate(received):
        offset = 0
        for i in by_source[src]:
            size = math.prod(shapes[i])
            results[i] = buffer[offset : offset + size].view(tuple(shapes[i]))
            offset += size
            extra_out[i] = buffer[offset : offset + extra_sizes[i]]
            offset += extra_sizes[i]
    return results, extra_out
