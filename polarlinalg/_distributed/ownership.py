"""Assign whole matrices to ranks, balanced by the cost of their polar factor.

Framework-free: it sees shapes only.  Every rank runs the same deterministic
assignment on the same list of shapes, so all ranks agree on the owners
without communicating.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

__all__ = ["assign_owners", "polar_cost"]


def polar_cost(shape: Sequence[int]) -> int:
    """Return the flop count, up to a constant, of one polar factor of a matrix batch.

    Every method of :data:`polarlinalg.METHODS` costs a fixed number of
    products of an ``m × n`` matrix with its ``min(m, n)``-sized Gram matrix,
    ``m·n·min(m, n)`` flops each; the leading axes of ``shape`` are a batch.
    """
    if len(shape) < 2:
        raise ValueError(f"a matrix shape needs at least 2 dimensions; got {tuple(shape)}")
    m, n = shape[-2], shape[-1]
    return math.prod(shape[:-2]) * m * n * min(m, n)


def assign_owners(shapes: Sequence[Sequence[int]], world_size: int) -> list[int]:
    """Return the owning rank of each matrix (batch): longest processing time first.

    Matrices are taken by decreasing cost (ties by position) and each goes to
    the rank with the least work so far (ties to the lower rank), which is
    within 4/3 of the best balance.  Matrices of one shape have one cost, so
    they are dealt out in turn and each rank receives a run of same-shape
    matrices it can orthogonalise in one batched call.

    Parameters
    ----------
    shapes : sequence of shapes
        Matrix-view shapes (``(..., m, n)``), in the same order on every rank.
    world_size : int
        Number of ranks, at least 1.

    Returns
    -------
    list of int
        ``owners[i]`` is the rank that orthogonalises ``shapes[i]``.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int; got {world_size!r}")
    costs = [polar_cost(s) for s in shapes]
    order = sorted(range(len(costs)), key=lambda i: (-costs[i], i))
    loads = [(0, rank) for rank in range(world_size)]  # a heap of (work, rank)
    owners = [0] * len(costs)
    for i in order:
        load, rank = heapq.heappop(loads)
        owners[i] = rank
        heapq.heappush(loads, (load + costs[i], rank))
    return owners
