"""Machinery shared by the rational (factorization-based) polar iterations.

QDWH, ZOLO-PD and scaled Newton all work on the tall form ``X`` (``m ≥ n``),
start from ``X₀ = A/α`` with ``α ≥ ‖A‖₂``, test convergence by the change of
the iterate, and end with one Newton–Schulz polish.  QDWH and ZOLO-PD are
built from one primitive, ``X (XᴴX + sI)⁻¹`` for a few positive shifts ``s``:

* QR form (stable for any shift): the QR factorization
  ``[X; √s·I] = [Q₁; Q₂] R`` gives ``RᴴR = XᴴX + sI``, ``Q₁ = X R⁻¹`` and
  ``Q₂ = √s·R⁻¹``, so ``X (XᴴX + sI)⁻¹ = Q₁Q₂ᴴ / √s``;
* Cholesky form (cheaper; stable when ``XᴴX + sI`` is well conditioned, i.e.
  ``s ≥ 1/100`` for ``‖X‖₂ ≤ 1``): ``XᴴX + sI = LLᴴ`` and two triangular solves.

Several shifts are stacked on a new leading axis and factorized in one
batched call (ZOLO-PD's ``r`` independent solves).

References
----------
Nakatsukasa, Bai, Gygi, SIMAX 31 (2010); Nakatsukasa, Higham, SIMAX 33
(2012), on backward stability of the QR and Cholesky forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._compat import cholesky_solve, device, is_traced, qr_q
from polarlinalg._dtypes import real_dtype
from polarlinalg._linalg import conj_transpose, eye_like, normal_divisor, safe_divisor, symmetrize
from polarlinalg._methods._base import Method, Progress
from polarlinalg._methods._lower_bound import (
    estimate_bounds,
    normalised,
    power_norm,
    start_vector,
)

__all__ = [
    "CHOLESKY_MIN_SHIFT",
    "NORM_MARGIN",
    "Start",
    "change",
    "convergence_tolerance",
    "iterate",
    "nonzero_mask",
    "orthogonal_enough",
    "polish",
    "prepare",
    "rational_method",
    "scale_to_unit_norm",
    "shifted_products",
    "stacked_scalars",
]

CHOLESKY_MIN_SHIFT = 1e-2
"""Shifts at least this large use the Cholesky form (κ(XᴴX + sI) ≤ 101); smaller ones QR."""


def scale_to_unit_norm(xp: ModuleType, x: Any) -> Any:
    """Return ``x / α`` with ``α = min(‖x‖_F, √(‖x‖₁‖x‖_∞)) ≥ ‖x‖₂``, per matrix.

    Both are cheap upper bounds of the spectral norm; the smaller one keeps the
    normalised singular values as large as possible.  The matrix is first
    divided by its largest magnitude (an element, so representable; clamped
    into the normal range by :func:`polarlinalg._linalg.normal_divisor`, so
    that subnormal input is scaled exactly and XLA's ``x · (1/peak)`` neither
    flushes nor overflows), after which every quantity lies in about
    ``[1, mn]``: nothing overflows or underflows, and a zero matrix stays zero.
    """
    rdtype = real_dtype(xp, x.dtype)
    peak = xp.max(xp.abs(x), axis=(-2, -1), keepdims=True)
    x = x / xp.astype(normal_divisor(xp, peak), rdtype)
    mag = xp.abs(x)
    one = xp.max(xp.sum(mag, axis=-2, keepdims=True), axis=-1, keepdims=True)
    inf = xp.max(xp.sum(mag, axis=-1, keepdims=True), axis=-2, keepdims=True)
    fro = xp.linalg.vector_norm(mag, axis=(-2, -1), keepdims=True)
    alpha = xp.minimum(fro, xp.sqrt(one * inf))
    return x / xp.astype(safe_divisor(xp, alpha), rdtype)


def nonzero_mask(xp: ModuleType, x: Any) -> Any:
    """Return a ``(..., 1, 1)`` boolean array: which matrices of the stack are nonzero."""
    return xp.any(x != 0, axis=(-2, -1), keepdims=True)


def convergence_tolerance(xp: ModuleType, dtype: Any) -> float:
    """Return ``(5ε)^{1/3}``: a change below it means the next error is about ``5ε``.

    The iterations converge (at least) cubically: once ``‖X_{k+1} − X_k‖_F``
    is below this, ``X_{k+1}`` is accurate to working precision.
    """
    return (5.0 * float(xp.finfo(real_dtype(xp, dtype)).eps)) ** (1.0 / 3.0)


def change(xp: ModuleType, new: Any, old: Any) -> Any:
    """Return ``‖new − old‖_F`` per matrix, shape ``(...)``."""
    return xp.linalg.vector_norm(new - old, axis=(-2, -1))


def polish(xp: ModuleType, x: Any, gram: Any = None) -> Any:
    """One Newton–Schulz step ``X ← X(1.5I − 0.5XᴴX)`` (tall ``x``): ``δ → 1.5δ²``.

    The polynomial is formed on the small ``n × n`` side, so the step is two
    matrix products and no full-size elementwise pass; ``gram``, when given,
    is ``XᴴX`` already formed (one product).
    """
    n = x.shape[-1]
    if gram is None:
        gram = conj_transpose(xp, x) @ x
    return x @ (1.5 * eye_like(xp, x, n) - 0.5 * gram)


def stacked_scalars(xp: ModuleType, values: Sequence[float], like: Any) -> Any:
    """Values as an array of shape ``(g, 1, …, 1)`` broadcasting against a stacked ``like``."""
    arr = xp.asarray(list(values), dtype=real_dtype(xp, like.dtype), device=device(like))
    return xp.reshape(arr, (len(values),) + (1,) * like.ndim)


def _qr_form(xp: ModuleType, x: Any, shifts: Sequence[float]) -> Any:
    m, n = x.shape[-2], x.shape[-1]
    g = len(shifts)
    eye = eye_like(xp, x, n)
    if g == 1:  # no stacking axis: fewer copies
        root = math.sqrt(shifts[0])
        # Stacked as the transpose of [Xᵀ, √s·I]: column-major (LAPACK's order), so the
        # factorization copies it straight instead of transposing it (NumPy, PyTorch).
        side = xp.broadcast_to(root * eye, (*x.shape[:-2], n, n))
        stacked = xp.matrix_transpose(xp.concat([xp.matrix_transpose(x), side], axis=-1))
        q = qr_q(xp, stacked)
        out = (q[..., :m, :] @ conj_transpose(xp, q[..., m:, :])) * (1.0 / root)
        return xp.expand_dims(out, axis=0)
    stacked_x = xp.broadcast_to(x, (g, *x.shape))
    roots = stacked_scalars(xp, [math.sqrt(s) for s in shifts], x)
    eyes = xp.broadcast_to(eye, (g, *x.shape[:-2], n, n))
    q = qr_q(xp, xp.concat([stacked_x, roots * eyes], axis=-2))
    return (q[..., :m, :] @ conj_transpose(xp, q[..., m:, :])) * (1.0 / roots)


def _cholesky_form(xp: ModuleType, x: Any, gram: Any, shifts: Sequence[float]) -> Any:
    n = x.shape[-1]
    g = len(shifts)
    eye = eye_like(xp, x, n)
    xh = conj_transpose(xp, x)
    if g == 1:  # no stacking axis: fewer copies
        w = gram + shifts[0] * eye
        return xp.expand_dims(conj_transpose(xp, cholesky_solve(xp, w, xh)), axis=0)
    w = gram + stacked_scalars(xp, shifts, x) * eye  # (g, ..., n, n)
    xh = xp.broadcast_to(xh, (g, *x.shape[:-2], n, x.shape[-2]))
    return conj_transpose(xp, cholesky_solve(xp, w, xh))  # X W⁻¹ = (W⁻¹ Xᴴ)ᴴ


def shifted_products(xp: ModuleType, x: Any, shifts: Sequence[float]) -> Any:
    """Return ``X (XᴴX + sI)⁻¹`` for each shift, stacked: shape ``(len(shifts), ..., m, n)``.

    Shifts below :data:`CHOLESKY_MIN_SHIFT` use the QR form, the others the
    Cholesky form (``XᴴX`` formed once); each group is one batched
    factorization.  The shifts are Python floats fixed on the host.
    """
    qr_idx = [i for i, s in enumerate(shifts) if s < CHOLESKY_MIN_SHIFT]
    ch_idx = [i for i, s in enumerate(shifts) if s >= CHOLESKY_MIN_SHIFT]
    if not ch_idx:
        return _qr_form(xp, x, shifts)
    if not qr_idx:
        return _cholesky_form(xp, x, symmetrize(xp, conj_transpose(xp, x) @ x), shifts)
    parts: dict[int, Any] = {}
    if qr_idx:
        out = _qr_form(xp, x, [shifts[i] for i in qr_idx])
        parts.update({i: out[j, ...] for j, i in enumerate(qr_idx)})
    if ch_idx:
        gram = symmetrize(xp, conj_transpose(xp, x) @ x)
        out = _cholesky_form(xp, x, gram, [shifts[i] for i in ch_idx])
        parts.update({i: out[j, ...] for j, i in enumerate(ch_idx)})
    return xp.stack([parts[i] for i in range(len(shifts))], axis=0)


class Start(NamedTuple):
    """The normalised iterate, the lower bound its schedule uses, and whether it is traced."""

    x: Any
    lower: float
    traced: bool


NORM_MARGIN = 1.1
"""``X₀`` is scaled by ``1/(1.1·ν)``, ``ν`` a power-iteration estimate of ``‖A‖₂`` from below."""


def prepare(xp: ModuleType, x: Any, lower: float | None) -> Start:
    """Normalise ``x`` to ``‖X₀‖₂ ≈ 1`` and fix the schedule's ``ℓ ≤ σ_min(X₀)``.

    ``X₀ = A/α`` (:func:`scale_to_unit_norm`, ``α ≥ ‖A‖₂`` but up to ``√n`` too
    large), then divided by ``min(1, 1.1·ν)`` with ``ν ≤ ‖X₀‖₂`` from eight power
    iterations on the device (matrix–vector products; static, so it traces).
    Then ``σ_min(X₀) ≥ σ_min(A)/(1.1‖A‖₂)``, so a caller's bound
    ``lower ≤ σ_min(A)/σ_max(A) = 1/κ₂(A)`` becomes ``ℓ = lower/1.1``.  Without
    one, eager arrays get :func:`estimate_bounds` (one QR or LU factorization) and
    traced arrays the dtype's ε.
    """
    x = scale_to_unit_norm(xp, x)
    nu = power_norm(xp, x, 8)
    scale = xp.minimum(NORM_MARGIN * nu, xp.ones_like(nu))
    x = x / xp.astype(xp.reshape(safe_divisor(xp, scale), (*scale.shape, 1, 1)), x.dtype)
    traced = is_traced(x)
    if lower is not None:
        lower = lower / NORM_MARGIN
    elif not traced:
        bounds = estimate_bounds(xp, x)
        if bounds is not None:
            x = x / xp.astype(bounds.beta, x.dtype)
            lower = bounds.lower
    if lower is None:
        lower = float(xp.finfo(x.dtype).eps)
    return Start(x, lower, traced)


def orthogonal_enough(xp: ModuleType, x: Any, gram: Any = None) -> Any:
    """Per matrix: ``‖XᴴX − I‖₂ ≤ 10√ε``, so the final polish takes ``U`` to a few ε.

    One Newton–Schulz step takes a singular value ``1 + δ`` to ``1 − 3δ²/2 + O(δ³)``.
    The spectral norm (not the Frobenius norm, which grows like ``√n`` with the
    rounding noise of ``XᴴX`` and with many small deviations) is estimated by
    six power iterations on the Hermitian ``XᴴX − I``: a direction still far
    from 1 dominates it.  Used after a schedule, to catch an overestimated ℓ,
    and to report convergence.  ``gram``, when given, is ``XᴴX`` already formed.
    """
    n = x.shape[-1]
    eps = float(xp.finfo(real_dtype(xp, x.dtype)).eps)
    if gram is None:
        gram = conj_transpose(xp, x) @ x
    deviation = gram - eye_like(xp, x, n)
    v = start_vector(xp, deviation)
    size = None
    for _ in range(6):
        w = deviation @ v
        size = xp.linalg.vector_norm(w, axis=(-2, -1))
        v = normalised(xp, w)
    return size <= 10.0 * math.sqrt(eps)


def iterate(
    xp: ModuleType,
    start: Start,
    design: Callable[[float], Sequence[Any]],
    apply: Callable[[Any, Any], Any],
    fallback: Any,
    max_steps: int,
    testable: Callable[[Any], bool] = lambda step: True,
    finishing: Callable[[Any], bool] = lambda step: False,
) -> tuple[Any, Progress]:
    """Run the schedule ``design(ℓ)`` (host-side steps) with convergence tests, then polish.

    After a step for which ``testable(step)`` holds, a matrix whose iterate
    changed by at most :func:`convergence_tolerance` is converged and frozen
    (``xp.where``).  The change test is only meaningful once a step is close to
    the cubically convergent Halley map: a QDWH step for a tiny ``ℓ`` moves
    every singular value above 1e-3 by less than that, long before
    convergence, so such steps are not tested.

    Eagerly the loop stops once every matrix is converged.  If the schedule
    runs out first, matrices that are :func:`orthogonal_enough` count as
    converged; for the others ``ℓ`` was overestimated, so the bounds are
    estimated again on the current iterate and a new schedule follows (then
    ``fallback`` steps), up to ``max_steps`` in all.  Traced, exactly
    ``min(len(schedule), max_steps)`` steps run.  ``converged`` in the result
    also counts matrices that are orthogonal enough at the end (a test skipped
    eagerly when every matrix has already converged).  Steps for
    which ``finishing(step)`` holds (Newton–Schulz) are reported apart from
    the main iterations, together with the final polish.
    """
    x, traced = start.x, start.traced
    tol = convergence_tolerance(xp, x.dtype)
    schedule = list(design(start.lower))
    done = xp.zeros(x.shape[:-2], dtype=xp.bool, device=device(x))
    taken, finished, replanned = 0, 0, False
    while taken < max_steps:
        if taken < len(schedule):
            step = schedule[taken]
        elif traced:
            break
        else:
            done = done | orthogonal_enough(xp, x)
            if bool(xp.all(done)):
                break
            if not replanned:
                replanned = True
                bounds = estimate_bounds(xp, x)
                if bounds is not None:
                    scaled = x / xp.astype(bounds.beta, x.dtype)
                    x = xp.where(done[..., None, None], x, scaled)
                lower = bounds.lower if bounds is not None else float(xp.finfo(x.dtype).eps)
                schedule = schedule + list(design(lower))
                continue
            step = fallback
        new = apply(x, step)
        if traced or bool(xp.any(done)):  # eagerly, nothing to freeze until something converged
            new = xp.where(done[..., None, None], x, new)
        if testable(step):
            done = done | (change(xp, new, x) <= tol)
        x = new
        taken += 1
        finished += bool(finishing(step))
        if not traced and bool(xp.all(done)):
            break
    gram = conj_transpose(xp, x) @ x  # shared by the final test and the polish
    if traced or not bool(xp.all(done)):  # eagerly, skipped when all have converged
        done = done | orthogonal_enough(xp, x, gram)
    return polish(xp, x, gram), Progress(taken - finished, done, start.lower, finished + 1)


def rational_method(
    name: str,
    summary: str,
    max_steps: int,
    configure: Callable[..., Any],
    run: Callable[..., Any],
    options: dict[str, Any],
) -> Method:
    """Register an accurate, factorization-based method working on the tall form.

    They compute half precision in float32 and take no coefficient schedule;
    ``steps`` is the cap on iterations.
    """
    return Method(
        name=name,
        summary=summary,
        family="rational",
        orientation="tall",
        low_precision=False,
        default_steps=max_steps,
        takes_coefficients=False,
        configure=configure,
        run=run,
        options=options,
    )
