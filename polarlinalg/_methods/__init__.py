"""The registry of polar methods: one module per algorithm."""

from __future__ import annotations

from polarlinalg._methods._base import Method
from polarlinalg._methods.gram_newton_schulz import GRAM_NEWTON_SCHULZ
from polarlinalg._methods.newton import NEWTON
from polarlinalg._methods.newton_schulz import NEWTON_SCHULZ, POLAR_EXPRESS
from polarlinalg._methods.qdwh import QDWH
from polarlinalg._methods.svd import SVD
from polarlinalg._methods.zolo import ZOLO

__all__ = ["METHODS", "Method", "get_method"]

_REGISTRY: dict[str, Method] = {
    m.name: m for m in (QDWH, ZOLO, NEWTON, SVD, NEWTON_SCHULZ, POLAR_EXPRESS, GRAM_NEWTON_SCHULZ)
}

METHODS: tuple[str, ...] = tuple(_REGISTRY)
"""Names accepted by ``method=``."""


def get_method(name: str) -> Method:
    """Return the registered method ``name``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(m) for m in METHODS)
        raise ValueError(f"unknown polar method {name!r}; choose one of {valid}") from None
