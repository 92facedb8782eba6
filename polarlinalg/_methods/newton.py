"""Scaled Newton iteration for the polar factor, switching to Newton–Schulz near convergence.

For a square nonsingular ``X``, Newton's iteration ``X ← ½(γX + γ⁻¹X⁻ᴴ)``
converges quadratically to the polar factor; the scaling ``γ`` equalises the
extreme singular values in the first steps, so about nine iterations suffice
up to ``κ = 1e16``.  Here ``γ = (‖X⁻¹‖_F / ‖X‖_F)^{1/2}`` (Higham's Frobenius
scaling), computed per matrix on the device.  A tall ``A`` is first reduced
by ``A = QR`` (``U = Q·U_R``, and square ``A`` too, so the same code serves
both); diagonal entries of ``R`` below ``ε‖R‖_F`` are lifted to ``ε‖R‖_F``,
which keeps exactly singular input invertible without changing ``A`` by more
than rounding.  Once the iterate moved by less than ``10⁻²`` in a step, the
inverse is no longer needed: Newton–Schulz steps ``X ← 1.5X − 0.5X XᴴX``
(matrix products only, quadratic too) finish the job.

Eagerly the switch and the stop are decided from the data; traced, the
numbers of Newton and Newton–Schulz steps come from the scalar iteration on
``[ℓ, 1]`` (``lower=``, default ε) and are static.

References
----------
N. J. Higham. Computing the polar decomposition — with applications. SIAM J.
Sci. Stat. Comput. 7(4), 1986; *Functions of Matrices*, SIAM 2008, §8.6–8.9.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._compat import device, is_traced
from polarlinalg._dtypes import is_complex, real_dtype
from polarlinalg._linalg import conj_transpose, eye_like, frobenius_norm, safe_divisor
from polarlinalg._methods._base import Progress, check_positive_int
from polarlinalg._methods._rational import (
    change,
    convergence_tolerance,
    nonzero_mask,
    orthogonal_enough,
    polish,
    rational_method,
    scale_to_unit_norm,
)
from polarlinalg._methods.qdwh import check_lower

__all__ = ["NEWTON", "NewtonPlan", "static_counts"]

DEFAULT_MAX_STEPS = 16
SWITCH = 1e-2


class NewtonPlan(NamedTuple):
    """Host-side arguments: iteration cap and the caller's ``lower`` (or None)."""

    max_steps: int
    lower: float | None


def static_counts(lower: float, eps: float) -> tuple[int, int]:
    """Newton and Newton–Schulz steps for singular values in ``[ℓ, 1]`` (scalar model).

    Newton with optimal scaling takes the ratio ``κ`` of the extreme singular
    values to ``(√κ + 1/√κ)/2``; two steps are added for the Frobenius scaling
    being suboptimal.  Newton–Schulz then takes a deviation ``δ`` to ``1.5δ²``
    until ``δ ≤ √ε`` (the final polish does the rest).
    """
    kappa = 1.0 / max(lower, 1e-300)
    newton = 0
    while kappa - 1.0 > SWITCH:
        kappa = (math.sqrt(kappa) + 1.0 / math.sqrt(kappa)) / 2.0
        newton += 1
    delta, ns = kappa - 1.0, 0
    while delta > math.sqrt(eps):
        delta = 1.5 * delta * delta
        ns += 1
    return newton + 2, ns


def _configure(steps: int | None, coefficients: Any, options: Mapping[str, Any]) -> NewtonPlan:
    max_steps = DEFAULT_MAX_STEPS if steps is None else check_positive_int("steps", steps)
    return NewtonPlan(max_steps, check_lower(options["lower"]))


def _lift_diagonal(xp: ModuleType, r: Any) -> Any:
    """Return ``R/‖R‖_F`` with diagonal entries below ε lifted to ε (same phase)."""
    n = r.shape[-1]
    rdtype = real_dtype(xp, r.dtype)
    norm = frobenius_norm(xp, r)  # overflow- and underflow-safe
    if norm.dtype != rdtype:
        norm = xp.astype(norm, rdtype)
    r = r / xp.astype(safe_divisor(xp, norm), r.dtype)
    eps = float(xp.finfo(rdtype).eps)
    d = xp.linalg.diagonal(r)
    mag = xp.abs(d)
    phase = xp.where(mag == 0, xp.ones_like(d), d / xp.astype(safe_divisor(xp, mag), d.dtype))
    lifted = xp.where(mag < eps, phase * eps, d)
    return r + eye_like(xp, r, n) * xp.expand_dims(lifted - d, axis=-2)


def _newton_step(xp: ModuleType, x: Any) -> Any:
    inv = xp.linalg.inv(x)
    rdtype = real_dtype(xp, x.dtype)
    norm = xp.linalg.vector_norm(x, axis=(-2, -1), keepdims=True)
    norm_inv = xp.linalg.vector_norm(inv, axis=(-2, -1), keepdims=True)
    gamma = xp.sqrt(norm_inv / safe_divisor(xp, norm))
    if is_complex(xp, x.dtype) or gamma.dtype != rdtype:
        gamma = xp.astype(gamma, x.dtype)
    return 0.5 * (gamma * x + conj_transpose(xp, inv) / gamma)


def _ns_step(xp: ModuleType, x: Any) -> Any:
    return polish(xp, x)


def _run(xp: ModuleType, a: Any, plan: NewtonPlan) -> tuple[Any, Progress]:
    n = a.shape[-1]
    # Normalise before the QR (the polar factor does not change).  Unscaled, LAPACK
    # applies its reflectors to a subnormal matrix in subnormal arithmetic, with an
    # absolute rounding of 2^-1075 (a 20 × 12 matrix of 1e-310 lost three digits:
    # forward error 8.5e-13, 1.8e-15 scaled), and their inner products overflow
    # for entries near the largest float (NaN for 30 × 20 entries of 4e307).
    q, r = xp.linalg.qr(scale_to_unit_norm(xp, a))
    x = _lift_diagonal(xp, r)
    traced = is_traced(x)
    eps = float(xp.finfo(real_dtype(xp, x.dtype)).eps)
    tol = convergence_tolerance(xp, x.dtype)
    lower = plan.lower if plan.lower is not None else eps
    n_newton, n_ns = static_counts(lower, eps)
    done = xp.zeros(x.shape[:-2], dtype=xp.bool, device=device(x))
    taken, finished, use_ns = 0, 0, False
    while taken < plan.max_steps:
        if traced:
            if taken >= n_newton + n_ns:
                break
            use_ns = taken >= n_newton
        new = _ns_step(xp, x) if use_ns else _newton_step(xp, x)
        new = xp.where(done[..., None, None], x, new)
        moved = change(xp, new, x)
        done = done | (moved <= tol)
        x = new
        taken += 1
        finished += use_ns
        if not traced:
            if bool(xp.all(done)):
                break
            pending = xp.where(done, xp.zeros_like(moved), moved)
            use_ns = use_ns or float(xp.max(pending)) <= SWITCH * math.sqrt(n)
    done = done | orthogonal_enough(xp, x)
    u = q @ polish(xp, x)
    u = xp.where(nonzero_mask(xp, a), u, xp.zeros_like(u))
    return u, Progress(taken - finished, done, lower if traced else plan.lower, finished + 1)


NEWTON = rational_method(
    "newton",
    "scaled Newton iteration (after QR), Newton–Schulz near convergence (accurate)",
    max_steps=DEFAULT_MAX_STEPS,
    configure=_configure,
    run=_run,
    options={"lower": None},
)
