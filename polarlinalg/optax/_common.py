"""What the optax transformations share: static arguments, the finite check, labels."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from polarlinalg._rules.finite import non_finite_error

__all__ = ["Labels", "check_finite_leaves", "finite_checked", "labels", "static_int"]

Labels = Any | Callable[[Any], Any] | None


def static_int(name: str, value: Any) -> int | None:
    """Return ``value`` as a Python int (None stays None); tracers are refused."""
    if value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        return value
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{name} must be a Python int, not a traced array: it fixes the number of "
            f"iterations. Under optax.inject_hyperparams pass static_args=({name!r},)"
        )
    if hasattr(value, "shape") and value.shape == () and jnp.issubdtype(value.dtype, jnp.integer):
        return int(value)
    raise TypeError(f"{name} must be an int; got {value!r}")


def check_finite_leaves(grads: Any) -> None:
    """Raise ValueError naming the first leaf of ``grads`` holding NaN/inf; one device read.

    Traced leaves (under ``jax.jit``) cannot be read: then nothing is checked.
    """
    leaves = jax.tree_util.tree_flatten_with_path(grads)[0]
    if not leaves or any(isinstance(g, jax.core.Tracer) for _, g in leaves):
        return
    flags = jax.device_get([jnp.all(jnp.isfinite(g)) for _, g in leaves])
    for (path, g), ok in zip(leaves, flags, strict=True):
        if not ok:
            name = jax.tree_util.keystr(path)
            raise non_finite_error(f"parameter {name} (shape {tuple(jnp.shape(g))})")


def finite_checked(
    tx: optax.GradientTransformation, check_finite: bool
) -> optax.GradientTransformation:
    """Return ``tx`` whose ``update`` first checks every gradient leaf (eagerly); same state."""
    if not check_finite:
        return tx
    tx = optax.with_extra_args_support(tx)

    def update_fn(updates: Any, state: Any, params: Any = None, **extra: Any) -> Any:
        check_finite_leaves(updates)
        return tx.update(updates, state, params, **extra)

    return optax.GradientTransformationExtraArgs(tx.init, update_fn)


def labels(rules: Labels, matrix_label: str, other: str, two_d_only: bool = False) -> Any:
    if rules is not None:
        return rules

    def label(params: Any) -> Any:
        if two_d_only:
            return jax.tree.map(lambda x: matrix_label if x.ndim == 2 else other, params)
        return jax.tree.map(lambda x: matrix_label if getattr(x, "ndim", 0) >= 2 else other, params)

    return label
