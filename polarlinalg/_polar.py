"""The public entry points: :func:`polar` and :func:`orthogonalize`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

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
) -> tuple[Any, Array, Any]:
    """Validate ``a`` and return ``(xp, a in the compute dtype, result dtype)``."""
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
    if check and not bool(xp.all(xp.isfinite(a))):
        raise ValueError(
            "the input contains NaN or infinity; the polar decomposition is undefined "
            "(pass check_finite=False to skip this check)"
        )
    x = a if a.dtype == dtypes.compute else xp.astype(a, dtypes.compute)
    narrower = x is not a and float(xp.finfo(x.dtype).max) < _max_of(xp, a.dtype)
    if check and narrower and not bool(xp.all(xp.isfinite(x))):
        raise ValueError(
            f"the input's values overflow the compute dtype {dtypes.compute}; "
            "choose a wider compute_dtype"
        )
    return xp, x, dtypes.result


def _max_of(xp: Any, dtype: Any) -> float:
    """Largest finite value of a floating dtype (infinite for integer and boolean ones)."""
    if xp.isdtype(dtype, ("real floating", "complex floating")):
        return float(xp.finfo(dtype).max)
    return float("inf")


def _factor(xp: Any, x: Array, method: Method, plan: Any) -> tuple[Array, Progress | None]:
    """Run ``method`` on ``x`` in the method's preferred orientation."""
    m, n = x.shape[-2], x.shape[-1]
    if m == 0 or n == 0:
        return xp.zeros_like(x), None
    flip = (method.orientation == "wide" and m > n) or (method.orientation == "tall" and m < n)
    if flip:
        u, progress = method.run(xp, conj_transpose(xp, x), plan)
        return conj_transpose(xp, u), progress
    return method.run(xp, x, plan)


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
        propagates to the output.  Pass False to save the check's pass over
        the data and its device synchronisation.
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
        input).  An all-zero matrix gives zeros.
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
    xp, x, result_dtype = _prepare(a, spec, compute_dtype, check_finite)
    u, progress = _factor(xp, x, spec, plan)
    u = _cast(xp, u, result_dtype)
    return (u, _info(spec, progress)) if return_info else u


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
    xp, x, result_dtype = _prepare(a, spec, compute_dtype, check_finite)
    u, progress = _factor(xp, x, spec, plan)
    if side == "right":
        h = symmetrize(xp, conj_transpose(xp, u) @ x)
    else:
        h = symmetrize(xp, x @ conj_transpose(xp, u))
    result = PolarResult(_cast(xp, u, result_dtype), _cast(xp, h, result_dtype))
    return (result, _info(spec, progress)) if return_info else result
