"""Import PyTorch with an error that says how to install it."""

from __future__ import annotations

from types import ModuleType

__all__ = ["require_torch"]


def require_torch() -> ModuleType:
    """Return the ``torch`` module, or raise ImportError naming the extra to install."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "polarlinalg experiment lm needs PyTorch: pip install polarlinalg[torch]"
        ) from exc
    return torch
