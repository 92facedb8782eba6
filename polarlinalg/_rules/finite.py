"""The optimizers' eager check for NaN/inf gradients, and its error.

With ``check_finite`` every wrapper checks the gradient of every parameter
the step touches (matrix and AdamW alike) before it computes anything, so a
bad gradient raises with nothing updated; the wrappers differ only in how
they read the flags back (one synchronisation per step where they can).
Under tracing (``jax.jit``, ``torch.compile``) values cannot be read: the
check is skipped and NaN propagates into the parameters, as it does with
``check_finite=False``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from polarlinalg._compat import array_namespace, is_traced

__all__ = ["first_non_finite", "non_finite_error"]


def non_finite_error(what: str) -> ValueError:
    """Return the error for a NaN/inf gradient; ``what`` names the parameter."""
    return ValueError(
        f"the gradient of {what} contains NaN or infinity; no parameter was updated "
        "(pass check_finite=False to skip this check)"
    )


def first_non_finite(items: Iterable[tuple[Any, Any]]) -> Any | None:
    """Return the first key of ``(key, gradient)`` pairs whose gradient holds NaN/inf.

    None when all are finite; traced gradients (whose values cannot be read)
    and None gradients are skipped.  Any Array API namespace.
    """
    for key, g in items:
        if g is None or is_traced(g):
            continue
        xp = array_namespace(g)
        if not bool(xp.all(xp.isfinite(g))):
            return key
    return None
