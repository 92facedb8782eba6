"""The public entry points: :func:`polar` and :func:`orthogonalize`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, overload

from polarlinalg._compat import array_namespace, device, is_traced
from polarlinalg._dtypes import plan_dtypes
from polarlinalg._linalg import conj_transpose, symmetrize
from polarlinalg._methods import Method, get_method
from polarlinalg._methods._base import Progress

__all__ = ["DEFAULT_METHOD", "PolarInfo", "PolarResult", "orthogonalize", "polar"]

DEFAULT_METHOD = "qdwh"
"""Method of :func:`polar` when none is given."""

Array = Any
Coefficients = str | Sequence[Sequence[float]] | None


class PolarResult(NamedTuple):
    """Result of :func:`polar`: the polar factor ``u`` and the Hermitian factor ``h``."""

    u: Array
    h: Array


class PolarInfo(NamedTuple):
    """How a call went, returned with ``return_info=True``.

    Attributes
    ----------
    method : str
        The method that ran.
    iterations : int or None
        Main iterations run (None for ``"svd"``): the factorizing steps of a
        rational method, every step of a polynomial one.  Eagerly, methods with
        a convergence test stop as soon as every matrix converged; traced
        (``jax.jit``, ``torch.compile``) they run their static schedule.
    converged : array of bool or None
        Per matrix of the stack, whether the method's convergence test passed
        (None for methods without one).
    lower : float or None
        The bound ``ℓ`` on the smallest singular value of the normalised
        iterate (``‖X₀‖₂ ≈ 1``) that a rational method's schedule was designed
        for: the eager estimate, the caller's ``lower=`` (divided by 1.1), or
        the dtype's ε under tracing.
    finishing_steps : int or None
        Newton–Schulz steps (matrix products only) that finished a rational
        method, its final polish included; 0 for the polynomial methods.

    Notes
    -----
    Zero-size input (an empty batch ``(0, m, n)``, or matrices with no rows or
    no columns) runs no method: its factors are exact without any work.  The
    info then has ``iterations=0`` and ``finishing_steps=0`` for every
    iterative method, ``lower=None`` (no schedule was designed), and
    ``converged`` an all-True bool array of the batch shape for the methods
    with a convergence test (the rational ones; of shape ``(0,)`` for an empty
    batch, ``()`` for a single matrix) and None for the others.  ``"svd"``
    reports all None, as always.  This is the same eagerly and traced.
    """

    method: str
    iterations: int | None
    converged: Array | None
    lower: float | None
    finishing_steps: int | None


def _prepare(
    a: Array,
    method: Method,
    compute_dtype: Any,
    check_finite: bool,
    plan: Any = None,
) -> tuple[Any, Array, Any, bool, Any]:
    """Validate ``a``; return ``(xp, x, result dtype, values checked, plan)``.

    ``x`` is ``a`` in the compute dtype.  With ``plan`` given, before a cast to
    a narrower floating dtype ``method.prescale(xp, a, plan)`` may return
    ``(a normalised in its own precision, the plan for such input)``; ``x`` is
    then that, cast, and the plan returned is the new one (else ``plan``).
    """
    xp = array_namespace(a)
    if a.ndim < 2:
        raise ValueError(
            f"polar decomposition needs an array of shape (..., m, n) with at least 2 "
            f"dimensions; got shape {tuple(a.shape)}"
        )
    dtypes = plan_dtypes(
        xp,
        a.dtype,
        device(a),
        compute_dtype=compute_dtype,
        low_precision_ok=method.low_precision,
        method=method.name,
    )
    check = check_finite and not is_traced(a)
    if check and not _all_finite(xp, a):
        raise ValueError(
            "the input contains NaN or infinity; the polar decomposition is undefined "
            "(pass check_finite=False to skip this check)"
        )
    source, prescaled = a, None
    if plan is not None and method.prescale is not None:
        if _narrowing(xp, a.dtype, dtypes.compute):
            prescaled = method.prescale(xp, a, plan)
            if prescaled is not None:
                source, plan = prescaled
    x = source if source.dtype == dtypes.compute else xp.astype(source, dtypes.compute)
    narrower = x is not a and float(xp.finfo(x.dtype).max) < _max_of(xp, a.dtype)
    if check and narrower and prescaled is None and not _all_finite(xp, x):
        raise ValueError(
            f"the input's values overflow the compute dtype {dtypes.compute}; "
            "choose a wider compute_dtype"
        )
    return xp, x, dtypes.result, check, plan


def _narrowing(xp: Any, source: Any, target: Any) -> bool:
    """Whether ``source`` → ``target`` is a cast between real floating dtypes that loses bits."""
    real = xp.isdtype(source, "real floating") and xp.isdtype(target, "real floating")
    return real and xp.finfo(target).bits < xp.finfo(source).bits


def _all_finite(xp: Any, a: Array) -> bool:
    """Whether every entry of ``a`` is finite, mostly from one sum.

    An infinite or NaN entry makes the sum infinite or NaN, so a finite sum
    proves every entry finite with one pass (the elementwise test is two to
    four).  Only a sum that overflowed from finite entries needs the
    elementwise test.
    """
    with warnings.catch_warnings():  # NumPy warns when the sum of finite entries overflows
        warnings.simplefilter("ignore", RuntimeWarning)
        total = xp.sum(a)
    if bool(xp.isfinite(total)):
        return True
    return bool(xp.all(xp.isfinite(a)))


def _max_of(xp: Any, dtype: Any) -> float:
    """Largest finite value of a floating dtype (infinite for integer and boolean ones)."""
    if xp.isdtype(dtype, ("real floating", "complex floating")):
        return float(xp.finfo(dtype).max)
    return float("inf")


def _factor(
    xp: Any, x: Array, method: Method, plan: Any, checked: bool
) -> tuple[Array, Progress | None]:
    """Run ``method`` on ``x`` in the method's preferred orientation.

    Zero-size input (an empty batch, or matrices with no rows or no columns)
    never reaches a method: its polar factor is the empty array of the same
    shape, exactly, and several factorizations (NumPy's ``qr`` on an empty
    batch, PyTorch's inf-norm over an empty axis) reject it.  Shapes are
    static, so this branch is the same eagerly and under ``jax.jit`` or
    ``torch.compile``.
    """
    m, n = x.shape[-2], x.shape[-1]
    if 0 in x.shape:
        return xp.zeros_like(x), _empty_progress(xp, x, method)
    if not checked and method.family != "polynomial":
        # Factorizations assume finite input (the contract of ``run``); unchecked
        # (check_finite=False, or traced) NaN/inf would raise inside a backend's
        # Cholesky or SVD (PyTorch, NumPy) or give NaN (JAX).  So a matrix holding
        # them is factorized as zeros and its factor made NaN: NaN propagates
        # everywhere, with no device synchronisation.  Products propagate NaN anyway.
        finite = xp.all(xp.isfinite(x), axis=(-2, -1), keepdims=True)
        u, progress = _factor(xp, xp.where(finite, x, xp.zeros_like(x)), method, plan, True)
        if progress is not None and progress.converged is not None:
            progress = progress._replace(converged=progress.converged & finite[..., 0, 0])
        return xp.where(finite, u, xp.full_like(u, math.nan)), progress
    flip = (method.orientation == "wide" and m > n) or (method.orientation == "tall" and m < n)
    if flip:
        u, progress = method.run(xp, conj_transpose(xp, x), plan)
        return conj_transpose(xp, u), progress
    return method.run(xp, x, plan)


def _empty_progress(xp: Any, x: Array, method: Method) -> Progress | None:
    """Return the progress of zero-size input: no iterations, every matrix converged."""
    if method.family == "direct":
        return None
    converged = None
    if method.family == "rational":  # the methods with a convergence test
        converged = xp.ones(x.shape[:-2], dtype=xp.bool, device=device(x))
    return Progress(0, converged, None, 0)


def _info(method: Method, progress: Progress | None) -> PolarInfo:
    if progress is None:
        return PolarInfo(method.name, None, None, None, None)
    return PolarInfo(
        method.name,
        progress.iterations,
        progress.converged,
        progress.lower,
        progress.finishing_steps,
    )


def _cast(xp: Any, x: Array, dtype: Any) -> Array:
    return x if x.dtype == dtype else xp.astype(x, dtype)


# The overloads tell type checkers what ``return_info`` changes in the result.
@overload
def orthogonalize(
    a: Array,
    *,
    method: str = ...,
    steps: int | None = ...,
    coefficients: Coefficients = ...,
    compute_dtype: Any = ...,
    check_finite: bool = ...,
    return_info: Literal[False] = ...,
    **options: Any,
) -> Array: ...
@overload
def orthogonalize(
    a: Array,
    *,
    method: str = ...,
    steps: int | None = ...,
    coefficients: Coefficients = ...,
    compute_dtype: Any = ...,
    check_finite: bool = ...,
    return_info: Literal[True],
    **options: Any,
) -> tuple[Array, PolarInfo]: ...
@overload
def orthogonalize(
    a: Array,
    *,
    method: str = ...,
    steps: int | None = ...,
    coefficients: Coefficients = ...,
    compute_dtype: Any = ...,
    check_finite: bool = ...,
    return_info: bool,
    **options: Any,
) -> Array | tuple[Array, PolarInfo]: ...
def orthogonalize(
    a: Array,
    *,
    method: str = "polar_express",
    steps: int | None = None,
    coefficients: Coefficients = None,
    compute_dtype: Any = None,
    check_finite: bool = True,
    return_info: bool = False,
    **options: Any,
) -> Array | tuple[Array, PolarInfo]:
    """Return the polar factor ``U`` of ``a`` (``a = U H``), without forming ``H``.

    This is the "orthogonalisation" of Muon-type optimizers: for the thin SVD
    ``a = P Σ Qᴴ`` it approximates ``U = P Qᴴ``, the nearest matrix with
    orthonormal columns (``m ≥ n``) or rows (``m < n``).  The default is a few
    cheap Polar Express steps; use ``method="svd"`` (or an accurate method)
    when ``U`` must be orthogonal to working precision.

    Parameters
    ----------
    a : array, shape (..., m, n)
        Any Array API array (NumPy, PyTorch, JAX, CuPy, array-api-strict), real
        or complex; leading axes are a batch.  Integer input is promoted to
        the default floating dtype.
    method : str, default "polar_express"
        One of :data:`polarlinalg.METHODS`.
    steps : int, optional
        Iterations of an iterative method (default: the method's own, 5 for
        the Newton–Schulz family).
    coefficients : str or sequence of (a, b, c), optional
        Schedule of a Newton–Schulz-type method: a key of
        :data:`polarlinalg.COEFFICIENTS` or rows; the last row repeats.
    compute_dtype : dtype or str, optional
        Dtype to compute in.  Polynomial methods default to the input dtype
        (bfloat16 included); factorization methods compute float16/bfloat16
        input in float32.
    check_finite : bool, default True
        Raise ValueError for NaN/inf input on eager backends.  Under
        ``jax.jit`` or ``torch.compile`` values cannot be inspected: NaN then
        propagates to the output.  Pass False to save the check's device
        synchronisation; then, as under tracing, a matrix holding NaN or
        infinity gets an all-NaN factor (every method and backend: the
        factorizing methods mask it, with no synchronisation, instead of
        letting the backend's Cholesky or SVD raise), and the other matrices
        of the batch are unaffected.
    return_info : bool, default False
        Also return a :class:`PolarInfo` (iterations run, per-matrix
        convergence, the lower bound used).  Its Python fields cannot leave
        a ``jax.jit``-compiled function: call eagerly to inspect it.
    **options
        Method-specific options, e.g. ``safety`` and ``eps`` (a floor on the
        normalising norm, as in ``torch.optim.Muon``) for the Newton–Schulz family,
        ``restart`` for ``"gram_newton_schulz"``; for the rational methods
        (``"qdwh"``, ``"zolo"``, ``"newton"``) ``lower``, a lower bound on
        ``σ_min(a)/σ_max(a) = 1/κ₂(a)`` that the iteration schedule is designed
        for (default: estimated from the data on eager arrays, the compute
        dtype's ε under ``jax.jit``/``torch.compile``), and ``degree`` for
        ``"zolo"``.

    Returns
    -------
    u : array, shape (..., m, n)
        Same namespace, device, dtype and shape as ``a`` (floating for integer
        input).  An all-zero matrix gives zeros; zero-size input (an empty
        batch, ``m = 0`` or ``n = 0``) gives an empty array of that shape and
        dtype (see :class:`PolarInfo` for its info).
    info : PolarInfo
        Only with ``return_info=True``.

    Raises
    ------
    ValueError
        For ``a.ndim < 2``, an unknown method or schedule, bad ``steps`` or
        non-finite input.
    TypeError
        For options the method does not accept, or non-array input.

    See Also
    --------
    polar : both factors.

    Examples
    --------
    >>> import numpy as np
    >>> import polarlinalg as pl
    >>> g = np.random.default_rng(0).standard_normal((64, 32))
    >>> u = pl.orthogonalize(g, steps=8)
    >>> bool(np.allclose(u.T @ u, np.eye(32), atol=1e-2))
    True
    """
    spec = get_method(method)
    plan = spec.plan(steps, coefficients, options)
    xp, x, result_dtype, checked, plan = _prepare(a, spec, compute_dtype, check_finite, plan)
    u, progress = _factor(xp, x, spec, plan, checked)
    u = _cast(xp, u, result_dtype)
    return (u, _info(spec, progress)) if return_info else u


@overload
def polar(
    a: Array,
    side: Literal["right", "left"] = ...,
    *,
    method: str = ...,
    steps: int | None = ...,
    coefficients: Coefficients = ...,
    compute_dtype: Any = ...,
    check_finite: bool = ...,
    return_info: Literal[False] = ...,
    **options: Any,
) -> PolarResult: ...
@overload
def polar(
    a: Array,
    side: Literal["right", "left"] = ...,
    *,
    method: str = ...,
    steps: int | None = ...,
    coefficients: Coefficients = ...,
    compute_dtype: Any = ...,
    check_finite: bool = ...,
    return_info: Literal[True],
    **options: Any,
) -> tuple[PolarResult, PolarInfo]: ...
@overload
def polar(
    a: Array,
    side: Literal["right", "left"] = ...,
    *,
    method: str = ...,
    steps: int | None = ...,
    coefficients: Coefficients = ...,
    compute_dtype: Any = ...,
    check_finite: bool = ...,
    return_info: bool,
    **options: Any,
) -> PolarResult | tuple[PolarResult, PolarInfo]: ...
def polar(
    a: Array,
    side: Literal["right", "left"] = "right",
    *,
    method: str = DEFAULT_METHOD,
    steps: int | None = None,
    coefficients: Coefficients = None,
    compute_dtype: Any = None,
    check_finite: bool = True,
    return_info: bool = False,
    **options: Any,
) -> PolarResult | tuple[PolarResult, PolarInfo]:
    """Polar decomposition ``a = u h`` (right) or ``a = h u`` (left).

    For the thin SVD ``a = P Σ Qᴴ``: ``u = P Qᴴ`` has orthonormal columns
    (``m ≥ n``) or rows (``m < n``); ``h = Q Σ Qᴴ = (aᴴa)^{1/2}`` (right, ``n × n``)
    or ``h = P Σ Pᴴ = (aaᴴ)^{1/2}`` (left, ``m × m``) is Hermitian positive
    semidefinite.  All four combinations of tall/wide and right/left are
    supported.  ``h`` is formed as the Hermitian part of ``uᴴa`` (right) or
    ``auᴴ`` (left), which equals the above when ``u`` is exact.

    Parameters
    ----------
    a : array, shape (..., m, n)
        Any Array API array, real or complex, batched over leading axes.
    side : {"right", "left"}, default "right"
        Which decomposition (as in ``scipy.linalg.polar``).
    method : str, default "qdwh"
        One of :data:`polarlinalg.METHODS`.  ``"qdwh"``, ``"zolo"``, ``"newton"``
        and ``"svd"`` are accurate to working precision; polynomial methods give
        an approximate ``u`` (see docs/algorithms.md for their bands).
    steps, coefficients, compute_dtype, check_finite, return_info, **options
        As in :func:`orthogonalize`.

    Returns
    -------
    PolarResult
        Named tuple ``(u, h)`` in the namespace, device and dtype of ``a``.
        For zero-size input ``u`` is empty like ``a`` and ``h`` is the zero
        matrix of its shape: ``(..., n, n)`` (right) or ``(..., m, m)`` (left),
        so ``a`` of shape ``(m, 0)`` has ``h = 0`` of shape ``(m, m)`` on the left,
        the square root of ``aaᴴ = 0``.
    info : PolarInfo
        Only with ``return_info=True``: ``(result, info)``.

    Raises
    ------
    ValueError
        For an unknown ``side`` and the errors of :func:`orthogonalize`.

    Examples
    --------
    >>> import numpy as np
    >>> import polarlinalg as pl
    >>> a = np.array([[1.0, -1.0], [2.0, 4.0]])
    >>> u, h = pl.polar(a)
    >>> bool(np.allclose(u @ h, a))
    True
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left'; got {side!r}")
    spec = get_method(method)
    plan = spec.plan(steps, coefficients, options)
    xp, x, result_dtype, checked, _ = _prepare(a, spec, compute_dtype, check_finite)
    u, progress = _factor(xp, x, spec, plan, checked)
    if side == "right":
        h = symmetrize(xp, conj_transpose(xp, u) @ x)
    else:
        h = symmetrize(xp, x @ conj_transpose(xp, u))
    result = PolarResult(_cast(xp, u, result_dtype), _cast(xp, h, result_dtype))
    return (result, _info(spec, progress)) if return_info else result
