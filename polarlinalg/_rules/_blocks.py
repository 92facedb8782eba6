r"""Blocks of a fused weight: ``split`` sizes and per-head matrices, framework-free.

A fused projection stores several matrices in one weight: the query, key and
value projections of attention (QKV), the gate and up projections of a SwiGLU
MLP, or ``H`` heads of ``d`` output units each.  The matrix rule treats each
block as a matrix of its own: its polar factor, its nuclear-norm scale and its
shape scale are those of the block, never of the whole weight.

Blocks are cut along the *output* axis of the weight: the rows (axis ``-2``)
of an ``(out, in)`` weight (``layout="out_in"``, ``torch.nn.Linear``), the
columns (axis ``-1``) of an ``(in, out)`` kernel (``layout="in_out"``, flax).
``split = (s₁, …, s_k)`` cuts the output axis into blocks of these sizes
(they must sum to its length); ``heads = H`` cuts each of them (or the whole
axis, without ``split``) into ``H`` equal blocks.  So ``split=(q, k, v)`` with
``heads=H`` gives ``3H`` blocks ``q/H, …, k/H, …, v/H`` in this order.

:func:`map_blocks` views the weight as a batch of equal blocks (a reshape, no
copy where the namespace allows) and calls a function that works on batches
of matrices; runs of blocks of equal size are handled one run at a time and
the results concatenated back.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["block_sizes", "check_heads", "check_split", "map_blocks", "runs"]


def check_split(split: Any) -> tuple[int, ...] | None:
    """Return ``split`` as a tuple of positive ints (None stays None), else raise ValueError."""
    if split is None:
        return None
    ok = isinstance(split, Sequence) and not isinstance(split, (str, bytes)) and len(split) > 0
    if ok:
        ok = all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in split)
    if not ok or any(int(s) < 1 for s in split):
        raise ValueError(
            f"split must be None or a non-empty sequence of positive ints (block sizes along "
            f"the output dimension, summing to it); got {split!r}"
        )
    return tuple(int(s) for s in split)


def check_heads(heads: Any) -> int | None:
    """Return ``heads`` as a positive int (None stays None), else raise ValueError."""
    if heads is None:
        return None
    if isinstance(heads, bool) or not isinstance(heads, numbers.Integral) or heads < 1:
        raise ValueError(f"heads must be None or a positive int; got {heads!r}")
    return int(heads)


def block_sizes(
    shape: tuple[int, ...], split: tuple[int, ...] | None, heads: int | None, axis: int
) -> tuple[int, ...] | None:
    """Return the block sizes along ``axis`` of a matrix of ``shape``; None without blocks.

    Raises ValueError naming the shape when ``split`` does not sum to the
    output dimension or a block is not divisible by ``heads``.
    """
    if split is None and heads is None:
        return None
    out = shape[axis]
    which = "rows" if axis in (-2, len(shape) - 2) else "columns"
    if split is not None and sum(split) != out:
        raise ValueError(
            f"split={split} sums to {sum(split)}, but the weight of shape {tuple(shape)} has "
            f"{out} output units ({which}); split must sum to the output dimension"
        )
    sizes = split if split is not None else (out,)
    if heads is not None:
        bad = [s for s in sizes if s % heads]
        if bad:
            part = f"the split blocks {bad} are" if split is not None else f"{out} is"
            raise ValueError(
                f"heads={heads} does not divide the output dimension of the weight of shape "
                f"{tuple(shape)} ({which}): {part} not divisible by {heads}"
            )
        sizes = tuple(s // heads for s in sizes for _ in range(heads))
    return sizes


def runs(sizes: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Return ``(start, size, count)`` for each run of consecutive equal sizes."""
    out: list[tuple[int, int, int]] = []
    start = 0
    for s in sizes:
        if out and out[-1][1] == s:
            begin, size, count = out[-1]
            out[-1] = (begin, size, count + 1)
        else:
            out.append((start, s, 1))
        start += s
    return out


def _to_blocks(xp: ModuleType, x: Any, count: int, size: int, rows: bool) -> Any:
    """``(..., count·size, n) → (..., count, size, n)`` (rows) or the column analogue."""
    lead = tuple(x.shape[:-2])
    if rows:
        return xp.reshape(x, (*lead, count, size, x.shape[-1]))
    y = xp.reshape(x, (*lead, x.shape[-2], count, size))  # (..., m, count, size)
    k = len(lead)
    return xp.permute_dims(y, (*range(k), k + 1, k, k + 2))  # (..., count, m, size)


def _from_blocks(xp: ModuleType, y: Any, full: tuple[int, int], rows: bool) -> Any:
    """Invert :func:`_to_blocks`; a per-block output of size 1 along an axis stays size 1."""
    lead = tuple(y.shape[:-3])
    count, a, b = y.shape[-3], y.shape[-2], y.shape[-1]
    if rows:
        if a == 1 and full[0] != count:  # one value per block: spread over its rows
            y = xp.broadcast_to(y, (*lead, count, full[0] // count, b))
            a = full[0] // count
        return xp.reshape(y, (*lead, count * a, b))
    if b == 1 and full[1] != count:
        y = xp.broadcast_to(y, (*lead, count, a, full[1] // count))
        b = full[1] // count
    k = len(lead)
    z = xp.permute_dims(y, (*range(k), k + 1, k, k + 2))  # (..., m, count, size)
    return xp.reshape(z, (*lead, a, count * b))


def map_blocks(
    xp: ModuleType,
    fn: Callable[..., tuple[Any, ...]],
    arrays: Sequence[Any],
    sizes: tuple[int, ...],
    rows: bool,
) -> tuple[Any, ...]:
    """Apply ``fn`` to every block of ``arrays`` (matrices of one shape) and put the results back.

    Parameters
    ----------
    xp : namespace
    fn : callable
        ``fn(*blocks) -> tuple of arrays``; gets batches of matrices (the
        blocks of one run stacked on a new axis before the last two) and
        returns, per output, either arrays of the blocks' shape or per-matrix
        values of shape ``(..., 1, 1)``.
    arrays : sequence of arrays, shape (..., m, n)
        Cut alike.
    sizes : tuple of int
        Block sizes along the rows (``rows=True``) or the columns.
    rows : bool

    Returns
    -------
    tuple of arrays
        Per output of ``fn``: shape ``(..., m, n)`` for block-shaped outputs;
        per-block values spread over their block's rows as ``(..., m, 1)``
        (``rows``) or columns as ``(..., 1, n)``.
    """
    shape = tuple(arrays[0].shape)
    full = (shape[-2], shape[-1])
    pieces: list[tuple[Any, ...]] = []
    spans = runs(sizes)
    for start, size, count in spans:
        if len(spans) == 1:
            parts = list(arrays)
        elif rows:
            parts = [a[..., start : start + size * count, :] for a in arrays]
        else:
            parts = [a[..., :, start : start + size * count] for a in arrays]
        span = (size * count, full[1]) if rows else (full[0], size * count)
        outs = fn(*(_to_blocks(xp, p, count, size, rows) for p in parts))
        pieces.append(tuple(_from_blocks(xp, o, span, rows) for o in outs))
    if len(pieces) == 1:
        return pieces[0]
    axis = -2 if rows else -1
    return tuple(xp.concat([p[i] for p in pieces], axis=axis) for i in range(len(pieces[0])))
