"""The layout of :mod:`polarlinalg.optax`'s matrix rule under a device mesh.

Left to itself, XLA's sharding propagation keeps a parameter sharded by rows
while it is orthogonalised: every Gram product ``X Xᵀ`` of a Newton–Schulz
step then ends in an all-reduce, and QDWH adds all-gathers and permutes for
its factorisations (one per iteration, every step).  Under a mesh, the
transformation here instead stacks the matrices of one shape into a batch
``(K, m, n)``, pads ``K`` to a multiple of the mesh size with copies of the
first matrix, and constrains the batch to be sharded over its leading axis:
each device receives whole matrices (one all-to-all in, one out) and
orthogonalises them without any collective inside the iteration.

It is active inside ``jax.set_mesh(mesh)`` (the abstract mesh has more than one
device); without a mesh, :mod:`polarlinalg.optax` runs its single-device code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from polarlinalg._rules import PolarGradRule, as_matrices, polargrad_direction
from polarlinalg._rules.polargrad import _momentum

__all__ = ["active_mesh", "layout_update"]


def active_mesh() -> Any:
    """Return the abstract mesh of ``jax.set_mesh`` when it has several devices, else None."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return None
    return mesh


def _explicit(mesh: Any) -> bool:
    return any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types)


def _constrain(x: Any, mesh: Any, spec: PartitionSpec) -> Any:
    return jax.lax.with_sharding_constraint(x, spec)


def _batch_spec(mesh: Any) -> PartitionSpec:
    return PartitionSpec(tuple(mesh.axis_names), None, None)


def _stack(mats: list[Any], mesh: Any) -> tuple[Any, int]:
    """Stack ``(..., m, n)`` arrays into ``(K, m, n)`` sharded by matrix; return it and K."""
    flat = [jnp.reshape(x, (-1, *x.shape[-2:])) for x in mats]
    total = sum(x.shape[0] for x in flat)
    pad = -total % mesh.size
    if pad:  # copies of a real matrix: padding that orthogonalises like the data
        flat.append(jnp.broadcast_to(flat[0][:1], (pad, *flat[0].shape[1:])))
    return _constrain(jnp.concatenate(flat), mesh, _batch_spec(mesh)), total


def _unstack(stacked: Any, shapes: list[tuple[int, ...]]) -> list[Any]:
    out, start = [], 0
    for shape in shapes:
        count = 1
        for d in shape[:-2]:
            count *= d
        out.append(jnp.reshape(stacked[start : start + count], shape))
        start += count
    return out


def layout_update(
    rule_of: Callable[[Any], PolarGradRule],
    grads: list[Any],
    bufs: list[Any] | None,
    count: Any,
    mesh: Any,
) -> tuple[list[Any], list[Any] | None]:
    """Return the directions (leaf dtypes) and new buffers of ``grads`` under ``mesh``.

    Leaves are grouped by matrix shape; each group is one batched, batch-sharded
    call of the rule.  Momentum first, the momentum is updated where the leaf
    lives (elementwise) and only ``M̃`` travels; polar first, the rule runs on
    the batch with its buffer, so the buffer travels too.  On a mesh with
    explicit axes the computation runs in ``jax.sharding.auto_axes`` and its
    results take the shardings of the gradients and buffers.
    """
    if _explicit(mesh):
        specs = [jax.typeof(g).sharding.spec for g in grads]
        buf_specs = None if bufs is None else [jax.typeof(b).sharding.spec for b in bufs]
        inner = jax.sharding.auto_axes(
            lambda g, b, c: _layout_update(rule_of, g, b, c, mesh),
            out_sharding=(specs, buf_specs),
        )
        return inner(grads, bufs, count)
    return _layout_update(rule_of, grads, bufs, count, mesh)


def _layout_update(
    rule_of: Callable[[Any], PolarGradRule],
    grads: list[Any],
    bufs: list[Any] | None,
    count: Any,
    mesh: Any,
) -> tuple[list[Any], list[Any] | None]:
    rules = [rule_of(g) for g in grads]
    views = [as_matrices(g, r.flatten) for g, r in zip(grads, rules, strict=True)]
    if bufs is not None:
        bufs = [jnp.reshape(b, v.shape) for b, v in zip(bufs, views, strict=True)]
        views = [
            v.astype(b.dtype) if v.dtype != b.dtype else v for v, b in zip(views, bufs, strict=True)
        ]
    directions: list[Any] = [None] * len(grads)
    new_bufs: list[Any] | None = None if bufs is None else [None] * len(grads)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, v in enumerate(views):  # rules hold a mapping proxy: grouped by their repr
        groups.setdefault((v.shape[-2:], v.dtype, repr(rules[i])), []).append(i)
    for index in groups.values():
        rule = rules[index[0]]
        shapes = [views[i].shape for i in index]
        if bufs is not None and not rule.polar_first:
            looks = []
            for i in index:
                look, new_bufs[i] = _momentum(rule, bufs[i], views[i], count)
                looks.append(look)
            stacked, _ = _stack(looks, mesh)
            plain = dataclasses.replace(rule, momentum=0.0)
            out, _ = polargrad_direction(jnp, plain, stacked, None, count)
        else:
            stacked, _ = _stack([views[i] for i in index], mesh)
            stacked_buf = None
            if bufs is not None:
                stacked_buf, _ = _stack([bufs[i] for i in index], mesh)
            out, stacked_buf = polargrad_direction(jnp, rule, stacked, stacked_buf, count)
            if stacked_buf is not None:
                for i, b in zip(index, _unstack(stacked_buf, shapes), strict=True):
                    new_bufs[i] = b
        for i, d in zip(index, _unstack(out, shapes), strict=True):
            directions[i] = jnp.reshape(d, grads[i].shape).astype(grads[i].dtype)
    if new_bufs is not None:
        new_bufs = [jnp.reshape(b, g.shape) for b, g in zip(new_bufs, grads, strict=True)]
    return directions, new_bufs
