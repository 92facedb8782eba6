"""Thin per-framework adapters for the core.

This is the only core module that knows framework names.  Everything else is
written against the Python Array API standard and receives its namespace from
:func:`array_namespace`.  No framework is imported here: a framework's module
is looked up in ``sys.modules`` only once an array of that framework has been
seen, so ``import polarlinalg`` never imports torch, jax or cupy.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat

__all__ = [
    "addmm",
    "array_namespace",
    "cholesky_solve",
    "device",
    "dtype_from_name",
    "fori_loop",
    "host_frobenius_norms",
    "is_traced",
    "lerp",
    "lerp_",
    "qr_r",
    "solve_triangular",
]


def _torch_module() -> ModuleType | None:
    return sys.modules.get("torch")


def array_namespace(*arrays: Any) -> ModuleType:
    """Return the Array API namespace of ``arrays``.

    PyTorch tensors take a direct path to ``array_api_compat.torch``: the
    generic look-up goes through ``functools.lru_cache`` wrappers that
    TorchDynamo can only trace with warnings, and this path keeps
    ``torch.compile(..., fullgraph=True)`` of the public functions clean.

    Raises
    ------
    TypeError
        If the arguments are not arrays of one supported framework.
    """
    torch = _torch_module()
    if torch is not None and arrays and all(isinstance(a, torch.Tensor) for a in arrays):
        import array_api_compat.torch as torch_namespace

        return torch_namespace
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as exc:
        kinds = ", ".join(sorted({type(a).__module__ + "." + type(a).__qualname__ for a in arrays}))
        raise TypeError(
            f"expected arrays of one Array API framework (numpy, torch, jax, cupy, "
            f"array_api_strict); got {kinds}"
        ) from exc


def device(x: Any) -> Any:
    """Return the device of array ``x`` (as ``array_api_compat.device``).

    PyTorch tensors answer directly, for the same TorchDynamo reason as in
    :func:`array_namespace`.
    """
    torch = _torch_module()
    if torch is not None and isinstance(x, torch.Tensor):
        return x.device
    return array_api_compat.device(x)


def is_traced(x: Any) -> bool:
    """Return True when the values of ``x`` cannot be read on the host.

    That is the case for JAX tracers (inside ``jax.jit``, ``vmap``, ``grad``),
    for PyTorch tensors while TorchDynamo traces a function (``torch.compile``)
    or batched by ``torch.func.vmap``, and for lazy arrays such as Dask's.  The
    core uses it to skip value-dependent work that only makes sense eagerly,
    such as the check for non-finite input.
    """
    torch = _torch_module()
    if torch is not None and isinstance(x, torch.Tensor):
        # functorch wrappers: vmap's batched tensors cannot be read either
        return bool(torch.compiler.is_compiling()) or bool(torch._C._functorch.is_batchedtensor(x))
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.Array):
        # Concrete JAX arrays can be read (eager mode); tracers cannot.
        return isinstance(x, jax.core.Tracer)
    return bool(array_api_compat.is_lazy_array(x))


def host_frobenius_norms(x: Any) -> list[float] | None:
    """Return ``‖x‖_F`` of each matrix of an eager PyTorch CPU tensor, else None.

    One pass over ``x``, accumulated in at least float32 by
    ``torch.linalg.vector_norm``, and read on the host (free on a CPU: no
    device synchronisation).  None for anything else: other frameworks, other
    devices (where reading would synchronise), traced or compiled tensors,
    complex or empty input.  The caller checks the values' range before using
    them (an overflowing or underflowing sum of squares reads as ``inf`` or as
    a number far below the entries' scale).
    """
    torch = _torch_module()
    if torch is None or not isinstance(x, torch.Tensor) or x.device.type != "cpu":
        return None
    if not x.is_floating_point() or x.numel() == 0 or x.ndim < 2 or is_traced(x):
        return None
    dtype = torch.float32 if x.element_size() < 4 else None  # half: accumulate in float32
    norms = torch.linalg.vector_norm(x, dim=(-2, -1), dtype=dtype)
    return [float(v) for v in norms.reshape(-1).tolist()]


def fori_loop(like: Any, count: int, body: Callable[[Any], Any], state: Any) -> Any:
    """Return ``body`` applied ``count`` times to ``state`` (a tuple of arrays).

    When ``like`` is a JAX tracer (inside ``jax.jit``, ``vmap``, ``grad``) this
    is one ``jax.lax.fori_loop``: the body is traced and compiled once instead
    of ``count`` times (a 46-step float64 iteration compiles in a fraction of
    the unrolled loop's 4 s).  ``body`` must then keep the dtypes and shapes of
    ``state``.  Everything else (eager arrays, ``torch.compile``, which unrolls
    Python loops itself) gets a plain Python loop.
    """
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(like, jax.core.Tracer):
        return jax.lax.fori_loop(0, count, lambda _, s: body(s), state)
    for _ in range(count):
        state = body(state)
    return state


def dtype_from_name(xp: ModuleType, name: str) -> Any:
    """Return the dtype called ``name`` in namespace ``xp``.

    Besides the standard names this knows ``"bfloat16"``, which is not an
    Array API dtype but exists in PyTorch and JAX.

    Raises
    ------
    ValueError
        If the namespace has no dtype of that name.
    """
    dtype = getattr(xp, name, None)
    if dtype is None and name == "bfloat16":
        if _namespace_kind(xp) == "torch":
            torch = _torch_module()
            dtype = None if torch is None else torch.bfloat16
    if dtype is None or (callable(dtype) and not _is_dtype_object(xp, dtype)):
        raise ValueError(f"the {xp.__name__} namespace has no dtype named {name!r}")
    return dtype


def _is_dtype_object(xp: ModuleType, dtype: Any) -> bool:
    # numpy and jax dtypes are classes (callable); make sure it is one.
    try:
        xp.isdtype(dtype, "numeric")
    except (TypeError, ValueError):
        return False
    return True


_KINDS = {
    "array_api_compat.torch": "torch",
    "torch": "torch",
    "jax.numpy": "jax",
    "array_api_compat.cupy": "cupy",
    "cupy": "cupy",
    "array_api_compat.numpy": "numpy",
    "numpy": "numpy",
}


def addmm(xp: ModuleType, beta: float, c: Any, alpha: float, a: Any, b: Any) -> Any:
    """Return ``beta·c + alpha·(a @ b)`` for stacks of matrices.

    PyTorch fuses it (``addmm``/``baddbmm``): one rounding of the sum, with
    the product accumulated in float32 for half-precision input, which is what
    keeps bfloat16 Newton–Schulz accurate.  Other namespaces evaluate the
    expression.
    """
    torch = _torch_module()
    if torch is not None and isinstance(a, torch.Tensor):
        if a.ndim == 2 and b.ndim == 2 and c.ndim == 2:
            return torch.addmm(c, a, b, beta=beta, alpha=alpha)
        batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2], c.shape[:-2])
        m, n = a.shape[-2], b.shape[-1]
        a3 = a.expand(*batch, *a.shape[-2:]).reshape(-1, *a.shape[-2:])
        b3 = b.expand(*batch, *b.shape[-2:]).reshape(-1, *b.shape[-2:])
        c3 = c.expand(*batch, m, n).reshape(-1, m, n)
        return torch.baddbmm(c3, a3, b3, beta=beta, alpha=alpha).reshape(*batch, m, n)
    return beta * c + alpha * (a @ b)


def lerp(xp: ModuleType, start: Any, end: Any, weight: Any) -> Any:
    """Return ``start + weight·(end − start)`` (one fused kernel on PyTorch)."""
    torch = _torch_module()
    if torch is not None and isinstance(start, torch.Tensor) and isinstance(end, torch.Tensor):
        if start.dtype == end.dtype and (not torch.is_tensor(weight) or weight.ndim == 0):
            return torch.lerp(start, end, weight)
    return start + weight * (end - start)


def lerp_(xp: ModuleType, start: Any, end: Any, weight: Any) -> Any:
    """``start + weight·(end − start)``, written into ``start`` where the framework can.

    PyTorch: ``start.lerp_(end, weight)`` (one pass, no new tensor), and
    ``start`` is returned.  Elsewhere (immutable JAX arrays, NumPy, CuPy) the
    result of :func:`lerp`, a new array, and ``start`` is left as it was.
    """
    torch = _torch_module()
    if torch is not None and isinstance(start, torch.Tensor) and isinstance(end, torch.Tensor):
        same = start.dtype == end.dtype and start.shape == end.shape
        if same and (not torch.is_tensor(weight) or weight.ndim == 0):
            return start.lerp_(end, weight)
    return lerp(xp, start, end, weight)


def _namespace_kind(xp: ModuleType) -> str:
    # By module name: array_api_compat.is_*_namespace go through lru_cache
    # wrappers, which TorchDynamo traces only with warnings.
    return _KINDS.get(getattr(xp, "__name__", ""), "other")


def solve_triangular(xp: ModuleType, a: Any, b: Any, *, lower: bool) -> Any:
    """Solve ``a x = b`` for triangular ``a`` (stacks of matrices, ``b`` of shape (..., n, k)).

    Uses the framework's own triangular solver (``torch.linalg.solve_triangular``,
    ``jax.scipy.linalg.solve_triangular``, ``scipy.linalg.solve_triangular`` for
    NumPy when SciPy is installed, ``cupyx.scipy.linalg.solve_triangular`` for
    single CuPy matrices) and falls back to the standard's general
    ``xp.linalg.solve``, which is correct for any namespace (array-api-strict
    included) but does an LU factorization: three times the work.
    """
    kind = _namespace_kind(xp)
    if kind == "torch":
        torch = _torch_module()
        return torch.linalg.solve_triangular(a, b, upper=not lower)
    if kind == "jax":
        import jax.scipy.linalg

        return jax.scipy.linalg.solve_triangular(a, b, lower=lower)
    if kind == "numpy":
        try:
            import scipy.linalg
        except ImportError:
            pass
        else:
            return scipy.linalg.solve_triangular(a, b, lower=lower, check_finite=False)
    if kind == "cupy" and a.ndim == 2:
        import cupyx.scipy.linalg

        return cupyx.scipy.linalg.solve_triangular(a, b, lower=lower)
    return xp.linalg.solve(a, b)


def qr_q(xp: ModuleType, a: Any) -> Any:
    """Return the ``Q`` factor of the reduced QR factorization of each matrix of ``a``.

    For NumPy, SciPy's ``qr(mode="economic")`` (when installed) is about 1.4× faster
    than ``numpy.linalg.qr`` on this project's machines (1.6× with a
    Fortran-ordered copy it may overwrite); elsewhere the standard's
    ``xp.linalg.qr``.
    """
    if _namespace_kind(xp) == "numpy":
        try:
            import scipy.linalg
        except ImportError:
            pass
        else:
            return _scipy_qr(scipy.linalg, a, "economic")[0]
    return xp.linalg.qr(a).Q


def _scipy_qr(linalg: ModuleType, a: Any, mode: str) -> tuple[Any, Any]:
    """SciPy's ``(Q, R)`` on a Fortran-ordered copy it may overwrite (never the caller's array)."""
    import numpy as np

    if a.ndim == 2:
        f = np.asfortranarray(a)
        return linalg.qr(f, mode=mode, check_finite=False, overwrite_a=f is not a)
    return linalg.qr(a, mode=mode, check_finite=False)


def qr_r(xp: ModuleType, a: Any) -> Any:
    """Return the ``R`` factor of the reduced QR factorization of each matrix of ``a``.

    NumPy, PyTorch, JAX and CuPy compute ``R`` alone (``mode="r"``), about half
    the work of the standard's ``xp.linalg.qr``, which the fallback uses.
    """
    kind = _namespace_kind(xp)
    if kind == "torch":
        torch = _torch_module()
        return torch.linalg.qr(a, mode="r")[1]
    if kind in ("numpy", "jax", "cupy"):
        module = {"numpy": "numpy", "jax": "jax.numpy", "cupy": "cupy"}[kind]
        import importlib

        return importlib.import_module(module).linalg.qr(a, mode="r")
    return xp.linalg.qr(a).R


def cholesky_solve(xp: ModuleType, w: Any, b: Any) -> Any:
    """Solve ``w x = b`` for Hermitian positive definite ``w`` by a Cholesky factorization.

    One LAPACK-style call where the framework has it (SciPy ``cho_factor`` /
    ``cho_solve`` for NumPy, ``torch.cholesky_solve``, ``jax.scipy.linalg``), which
    avoids the copies of two separate triangular solves; otherwise
    ``xp.linalg.cholesky`` and two :func:`solve_triangular` calls.
    """
    kind = _namespace_kind(xp)
    if kind == "torch":
        torch = _torch_module()
        return torch.cholesky_solve(b, torch.linalg.cholesky(w))
    if kind == "jax":
        import jax.scipy.linalg

        return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(w, lower=True), b)
    if kind == "numpy":
        try:
            import scipy.linalg
        except ImportError:
            pass
        else:
            factor = scipy.linalg.cho_factor(w, lower=True, check_finite=False)
            return scipy.linalg.cho_solve(factor, b, check_finite=False)
    chol = xp.linalg.cholesky(w)
    y = solve_triangular(xp, chol, b, lower=True)
    return solve_triangular(xp, xp.conj(xp.matrix_transpose(chol)), y, lower=False)
