"""Tensor-mode helpers shared by Shampoo and SOAP: unfoldings, mode Gram matrices, blocks.

For a real tensor ``X`` of order ``k`` and a mode ``i`` with size ``dᵢ``, the
unfolding ``X₍ᵢ₎`` is the ``dᵢ × (∏ⱼ≠ᵢ dⱼ)`` matrix with mode ``i`` as rows.
The mode Gram matrix is ``X₍ᵢ₎ X₍ᵢ₎ᵀ`` (``G Gᵀ`` and ``Gᵀ G`` for a matrix)
and the mode product ``P ×ᵢ X`` multiplies every mode-``i`` fibre by ``P``
(``P G`` for ``i = 0`` and ``G Pᵀ`` for ``i = 1``).
"""

from __future__ import annotations

import itertools
import math
from types import ModuleType
from typing import Any

__all__ = ["assemble", "block_slices", "grid", "mode_gram", "mode_product"]


def mode_gram(xp: ModuleType, x: Any, mode: int) -> Any:
    """Return ``X₍ᵢ₎ X₍ᵢ₎ᵀ`` (real ``x``)."""
    if x.ndim == 2:
        return x @ x.mT if mode == 0 else x.mT @ x
    u = xp.reshape(xp.moveaxis(x, mode, 0), (x.shape[mode], -1))
    return u @ u.mT


def mode_product(xp: ModuleType, p: Any, x: Any, mode: int) -> Any:
    """Return ``P ×ᵢ X``: every mode-``mode`` fibre of ``x`` multiplied by ``p``."""
    if x.ndim == 2:
        return p @ x if mode == 0 else x @ p.mT
    moved = xp.moveaxis(x, mode, 0)
    shape = moved.shape
    out = p @ xp.reshape(moved, (shape[0], -1))
    return xp.moveaxis(xp.reshape(out, shape), 0, mode)


def block_slices(shape: tuple[int, ...], size: int | None) -> list[tuple[slice, ...]]:
    """Split every dimension into chunks of at most ``size`` (None: no split); row-major blocks."""
    if size is None:
        return [tuple(slice(0, d) for d in shape)]
    chunks = [
        [slice(lo, min(lo + size, d)) for lo in range(0, d, size)] or [slice(0, 0)] for d in shape
    ]
    return [tuple(block) for block in itertools.product(*chunks)]


def grid(shape: tuple[int, ...], size: int | None) -> tuple[int, ...]:
    """Return the number of blocks along each dimension for :func:`block_slices`."""
    if size is None:
        return tuple(1 for _ in shape)
    return tuple(max(1, math.ceil(d / size)) for d in shape)


def assemble(xp: ModuleType, blocks: list[Any], counts: tuple[int, ...]) -> Any:
    """Invert the split of :func:`block_slices`: concatenate row-major ``blocks`` back."""
    if len(blocks) == 1:
        return blocks[0]

    def join(items: list[Any], axis: int) -> Any:
        if axis == len(counts) - 1:
            return xp.concat(items, axis=axis) if len(items) > 1 else items[0]
        step = math.prod(counts[axis + 1 :])
        parts = [join(items[i : i + step], axis + 1) for i in range(0, len(items), step)]
        return xp.concat(parts, axis=axis) if len(parts) > 1 else parts[0]

    return join(blocks, 0)
