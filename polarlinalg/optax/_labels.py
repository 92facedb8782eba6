"""Labels for ``optax.partition`` by pytree path: embeddings, head, hidden matrices, vectors."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

import jax

__all__ = ["labels", "path_name"]

_HEAD = re.compile(r"^(lm_?head|head|output_?head|unembed|unembedding)(_\d+)?$", re.IGNORECASE)
_EMBEDDING = re.compile(r"embed|^wte$|^wpe$", re.IGNORECASE)


def _component(key: Any) -> str:
    """One path entry as text: a dict key, an attribute name or a sequence index."""
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_name(path: tuple[Any, ...]) -> str:
    """Return a pytree path as a dotted name: ``params.Dense_0.kernel``, ``layers.0.weight``."""
    return ".".join(_component(k) for k in path)


def _kind(parts: list[str], ndim: int) -> str:
    if ndim < 2:
        return "vectors"
    if any(_HEAD.match(p) for p in parts):
        return "head"
    if any(_EMBEDDING.search(p) and not _HEAD.match(p) for p in parts):
        return "embedding"
    return "hidden"


def _label(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty label string; got {value!r}")
    return value


def labels(
    params: Any,
    *,
    embedding: str = "adamw",
    head: str = "adamw",
    hidden: str = "polargrad",
    vectors: str = "adamw",
    overrides: Mapping[str, str] | None = None,
) -> Any:
    r"""Return a pytree of labels like ``params`` for ``optax.partition``, chosen by path.

    Each leaf is named by its path joined with dots (dict keys, attribute
    names, sequence indices: ``params.Embed_0.embedding`` in Flax linen,
    ``embed.embedding`` in an NNX state, ``layers.0.weight`` in Equinox) and
    labelled by its kind:

    ``vectors``
        Leaves with fewer than two dimensions (biases, norm scales, scalars),
        wherever they sit.
    ``head``
        Leaves with a path component ``head``, ``lm_head``, ``output_head``,
        ``unembed`` or ``unembedding`` (any case, with an optional ``_N``
        suffix as Flax numbers modules).
    ``embedding``
        Leaves with a path component containing ``embed`` (``Embed_0``,
        ``embedding``, ``embed_tokens``, ``tok_embeddings``) or equal to
        ``wte``/``wpe`` (GPT-2), unless it is a head component.
    ``hidden``
        Every other leaf.

    A head tied to the embedding (Flax's ``Embed.attend``) has no leaf of
    its own: the embedding's label applies.

    Parameters
    ----------
    params : pytree
        The parameters (only their paths and ``ndim`` are read).
    embedding, head, hidden, vectors : str
        The label of each kind: keys of the ``transforms`` of
        ``optax.partition`` — ``"polargrad"``/``"adamw"`` for
        :func:`polargrad`'s ``rules``, ``"normuon"``/``"adamw"`` for
        :func:`normuon`'s, or your own.
    overrides : dict, optional
        ``fnmatch`` patterns on the dotted names (``"*.bias"``,
        ``"params.Dense_0.*"``; case-sensitive) mapping to labels; they win
        over the kinds.  A pattern that matches no leaf, or a leaf matched by
        two patterns, is a ValueError.

    Returns
    -------
    pytree
        Labels (strings) with the structure of ``params``.

    Raises
    ------
    ValueError
        ``params`` has no leaves, a pattern matches nothing, a leaf is matched
        by two patterns.
    TypeError
        A label that is not a non-empty string.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from polarlinalg.optax import labels
    >>> params = {"Embed_0": {"embedding": jnp.zeros((50, 8))},
    ...           "Dense_0": {"kernel": jnp.zeros((8, 8)), "bias": jnp.zeros(8)},
    ...           "lm_head": {"kernel": jnp.zeros((8, 50))}}
    >>> labels(params)  # doctest: +NORMALIZE_WHITESPACE
    {'Dense_0': {'bias': 'adamw', 'kernel': 'polargrad'}, 'Embed_0': {'embedding': 'adamw'},
     'lm_head': {'kernel': 'adamw'}}
    """
    kinds = {
        "embedding": _label("embedding", embedding),
        "head": _label("head", head),
        "hidden": _label("hidden", hidden),
        "vectors": _label("vectors", vectors),
    }
    patterns = {}
    for pattern, label in dict(overrides or {}).items():
        if not isinstance(pattern, str) or not pattern:
            raise TypeError(f"override patterns must be non-empty strings; got {pattern!r}")
        patterns[pattern] = _label(f"overrides[{pattern!r}]", label)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    if not leaves:
        raise ValueError("params has no leaves to label")
    names = [path_name(path) for path, _ in leaves]
    chosen = [
        kinds[_kind([_component(k) for k in path], len(getattr(leaf, "shape", ())))]
        for path, leaf in leaves
    ]
    matched: dict[int, str] = {}
    for pattern, label in patterns.items():
        hits = [i for i, name in enumerate(names) if fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            sample = ", ".join(repr(n) for n in names[:8])
            raise ValueError(
                f"overrides pattern {pattern!r} matches no leaf of params (names look like "
                f"{sample}{', ...' if len(names) > 8 else ''})"
            )
        for i in hits:
            if i in matched:
                raise ValueError(
                    f"leaf {names[i]!r} is matched by two overrides, {matched[i]!r} and "
                    f"{pattern!r}; make the patterns disjoint"
                )
            matched[i] = pattern
            chosen[i] = label
    return jax.tree_util.tree_unflatten(treedef, chosen)
