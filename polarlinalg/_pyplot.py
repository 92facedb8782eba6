"""matplotlib for the command lines' figures: headless, and a clear error without the extra."""

from __future__ import annotations

from types import ModuleType

__all__ = ["pyplot"]


def pyplot(what: str = "plots") -> ModuleType:
    """Return ``matplotlib.pyplot`` on the non-interactive Agg backend.

    Raises
    ------
    ImportError
        Naming the ``polarlinalg[experiments]`` extra, if matplotlib is not installed;
        ``what`` says what needed it (e.g. ``"--plot"``).
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            f"{what} need(s) matplotlib: pip install 'polarlinalg[experiments]'"
        ) from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt
