"""What a polar method is: the contract between the public layer and a method.

The public functions (:func:`polarlinalg.polar`, :func:`polarlinalg.orthogonalize`)
do everything that is the same for all methods: namespace detection, input
checks, dtype promotion, orientation, the ``h`` factor and the cast back.  A
method only turns one oriented stack of matrices, already in its compute
dtype, into its polar factor.

Contract of ``run(xp, x, plan)``:

* ``x`` has shape ``(..., m, n)`` in the method's preferred orientation
  (``m ≤ n`` for "wide" methods, ``m ≥ n`` for "tall" ones), is finite, has no
  zero-size dimension (the public layer answers those itself), and is in the
  compute dtype;
* it returns ``(u, progress)``: ``u`` of the same shape and dtype, built from
  Array API calls only (plus the adapters in :mod:`polarlinalg._compat`), and
  a :class:`Progress` (iterations run, per-matrix convergence, the lower
  bound used) or None for a direct method;
* no Python branching on array values (so it traces under ``jax.jit`` and
  ``torch.compile``);
* an all-zero matrix gives an all-zero ``u``, never NaN.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any, Literal, NamedTuple

__all__ = ["Method", "Progress", "check_positive_int"]

Family = Literal["direct", "polynomial", "rational"]
Orientation = Literal["wide", "tall", "any"]


class Progress(NamedTuple):
    """What an iterative method reports about one call.

    Attributes
    ----------
    iterations : int
        Main iterations run (for the rational methods: the steps that factorize,
        QR, Cholesky or an inverse; for the polynomial methods: every step):
        eagerly, until every matrix converged (or the cap); traced, the static
        schedule's.
    converged : array of bool or None
        Per matrix of the stack, whether the convergence test passed (None for
        fixed-step methods, which have no test).
    lower : float or None
        The lower bound on the normalised smallest singular value that the
        schedule was designed for (rational methods).
    finishing_steps : int
        Newton–Schulz steps (matrix products only) that finished a rational
        method once it was close, the final polish included; 0 otherwise.
    """

    iterations: int
    converged: Any
    lower: float | None
    finishing_steps: int = 0


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise ValueError unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Method:
    """A polar-factor algorithm registered under ``name``.

    Attributes
    ----------
    name : str
        The ``method=`` string.
    summary : str
        One line for tables and error messages.
    family : {"direct", "polynomial", "rational"}
        "direct" (SVD), "polynomial" (matmul-only, approximate: singular values
        land in a band around 1) or "rational" (QR/Cholesky based, accurate).
    orientation : {"wide", "tall", "any"}
        The shape ``run`` wants; the public layer transposes to it.
    low_precision : bool
        Whether the method may compute in float16/bfloat16.
    default_steps : int or None
        Steps used when the caller passes ``steps=None`` (None: not iterative).
    takes_coefficients : bool
        Whether ``coefficients=`` means anything to this method.
    options : mapping
        Extra keyword options the method accepts, with their defaults.
    configure : callable
        ``configure(steps, coefficients, options) -> plan``: validates the
        arguments on the host and returns an immutable plan for ``run``.
    run : callable
        ``run(xp, x, plan) -> (u, progress)`` (see the module docstring).
    prescale : callable, optional
        ``prescale(xp, a, plan) -> (a', plan') or None``: before ``a`` is cast
        to a narrower compute dtype, the method's own first step done in
        ``a``'s precision (the normalisation of the polynomial methods) and
        the plan that skips it; None where it would not pay (then ``a`` is
        cast as it is).  ``orthogonalize`` uses it; ``polar`` does not (its
        ``H`` needs the input unscaled).
    """

    name: str
    summary: str
    family: Family
    orientation: Orientation
    low_precision: bool
    default_steps: int | None
    takes_coefficients: bool
    configure: Callable[[int | None, Any, Mapping[str, Any]], Any]
    run: Callable[[ModuleType, Any, Any], tuple[Any, Progress | None]]
    options: Mapping[str, Any] = field(default_factory=dict)
    prescale: Callable[[ModuleType, Any, Any], tuple[Any, Any] | None] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def plan(
        self,
        steps: int | None,
        coefficients: str | Sequence[Sequence[float]] | None,
        options: Mapping[str, Any],
    ) -> Any:
        """Validate the caller's arguments and return the method's plan."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(self.options) or "none"
            raise TypeError(
                f"method {self.name!r} got unexpected option(s) {', '.join(unknown)}; "
                f"it accepts: {accepted}"
            )
        if steps is not None and self.default_steps is None:
            raise ValueError(f"method {self.name!r} is not iterative and takes no steps")
        if coefficients is not None and not self.takes_coefficients:
            raise ValueError(f"method {self.name!r} takes no coefficient schedule")
        if steps is not None:
            steps = check_positive_int("steps", steps)
        merged = {**self.options, **options}
        return self.configure(steps, coefficients, merged)
