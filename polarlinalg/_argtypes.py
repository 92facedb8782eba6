"""Argument types shared by the command lines (``validate``, ``bench``, ``experiment``)."""

from __future__ import annotations

import argparse

__all__ = ["csv_list", "finite_float_at_least", "nonnegative_int", "positive_int", "seed_list"]


def csv_list(text: str) -> list[str]:
    """Split ``"a, b,c"`` into ``["a", "b", "c"]`` (blanks and empty items dropped)."""
    return [part for part in text.replace(" ", "").split(",") if part]


def _integer(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
    return value


def finite_float_at_least(text: str, minimum: float, what: str) -> float:
    """Parse a finite number ``>= minimum``; the error says ``expected {what}``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
    if not minimum <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
    return value


def positive_int(text: str) -> int:
    """Parse an integer ≥ 1 (argparse type)."""
    return _integer(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """Parse an integer ≥ 0 (argparse type)."""
    return _integer(text, 0, "an integer >= 0")


def seed_list(text: str) -> list[int]:
    """Parse ``"42,142"`` into non-negative integer seeds, at least one (argparse type)."""
    parts = csv_list(text)
    if not parts:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated seeds, e.g. 42,142; got {text!r}"
        )
    return [_integer(part, 0, "comma-separated non-negative integer seeds") for part in parts]
