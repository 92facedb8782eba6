"""Dtype rules shared by every method.

* The result has the input's dtype; integer and boolean input is promoted to
  the namespace's default real floating dtype (as NumPy and SciPy do).
* Polynomial (matmul-only) methods compute in the input dtype, bfloat16 and
  float16 included; factorization methods (QR, Cholesky, SVD) compute
  bfloat16/float16 input in float32, because no framework factorizes in half
  precision.  ``compute_dtype`` overrides either choice.
* Norms that normalise an iteration are taken in at least float32.
* A method that cannot iterate in bfloat16 (Gram Newton–Schulz) widens a
  half-precision computation to :func:`fast_half_dtype`: float16 on devices
  with float16 matrix units (GPUs), float32 elsewhere (CPUs emulate float16
  products, 55–140× slower than bfloat16 in our measurements).
* PyTorch on a CPU without bfloat16 support (AVX2-only x86) emulates bfloat16
  products too, about 100× slower than float32: :func:`has_bfloat16_matmul`
  says where, and the PyTorch Muon-type optimizers' default compute dtype
  follows it (:func:`fast_bfloat16_dtype`).
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, NamedTuple

from polarlinalg._compat import _namespace_kind, dtype_from_name

__all__ = [
    "DtypePlan",
    "at_least_float32",
    "fast_half_dtype",
    "has_float16_matmul",
    "is_complex",
    "is_low_precision",
    "plan_dtypes",
    "real_dtype",
    "state_dtype",
]


class DtypePlan(NamedTuple):
    """The dtypes of one call: the result's and the computation's."""

    result: Any
    compute: Any


def is_complex(xp: ModuleType, dtype: Any) -> bool:
    """Return True for complex floating dtypes."""
    return bool(xp.isdtype(dtype, "complex floating"))


def is_low_precision(xp: ModuleType, dtype: Any) -> bool:
    """Return True for floating dtypes narrower than 32 bits (float16, bfloat16)."""
    return bool(xp.isdtype(dtype, "real floating")) and xp.finfo(dtype).bits < 32


def real_dtype(xp: ModuleType, dtype: Any) -> Any:
    """Return the real dtype of the same precision (complex64 → float32)."""
    if is_complex(xp, dtype):
        return xp.float64 if dtype == xp.complex128 else xp.float32
    return dtype


def at_least_float32(xp: ModuleType, dtype: Any) -> Any:
    """Return ``dtype`` widened to at least 32 bits (float16/bfloat16 → float32)."""
    return xp.float32 if is_low_precision(xp, dtype) else dtype


# Device kinds with float16 matrix units: torch's "cuda" (also ROCm), "mps" and
# "xpu" devices, JAX's "gpu"/"cuda"/"rocm" platforms.  CPUs and TPUs (bfloat16
# units) are not in it.
_FLOAT16_MATMUL_KINDS = frozenset({"cuda", "gpu", "rocm", "mps", "xpu"})


def _device_kind(dev: Any) -> str | None:
    """Return ``"cpu"``, ``"cuda"``, … for a device object or string (None if unknown)."""
    for attribute in ("type", "platform"):  # torch.device.type, jax Device.platform
        kind = getattr(dev, attribute, None)
        if isinstance(kind, str):
            return kind.lower()
    if isinstance(dev, str):  # NumPy's "cpu", "cuda:0"
        return dev.split(":")[0].lower()
    return None


def has_float16_matmul(xp: ModuleType, dev: Any) -> bool:
    """Return True where float16 matrix products run on matrix units (GPUs).

    ``dev`` is an array's device.  CuPy arrays always live on a GPU.  A traced
    JAX array has no device (None): the computation then runs where JAX puts it,
    a GPU whenever the namespace lists one.
    """
    if _namespace_kind(xp) == "cupy":
        return True
    if dev is None:
        try:
            devices = xp.__array_namespace_info__().devices()
        except AttributeError:
            return False
        return any(_device_kind(d) in _FLOAT16_MATMUL_KINDS for d in devices if d is not None)
    return _device_kind(dev) in _FLOAT16_MATMUL_KINDS


@functools.cache
def _torch_cpu_bfloat16_matmul() -> bool:
    """Whether PyTorch's CPU bfloat16 products run on bfloat16 hardware (oneDNN's check).

    Without AVX512-BF16, AMX or AVX-512 (an AVX2-only x86 CPU) PyTorch falls back
    to a scalar bfloat16 product about 100× slower than float32's (measured: 1.3
    against 143 GFLOP/s at 768 × 3072 on an AVX2 AMD EPYC).  Unknown → True, the
    behaviour of ``torch.optim.Muon``.
    """
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        pass
    cpu = getattr(torch, "cpu", None)
    names = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    checks = [getattr(cpu, n, None) for n in names]
    if all(callable(c) for c in checks):
        return any(bool(c()) for c in checks)
    return True


def has_bfloat16_matmul(xp: ModuleType, dev: Any) -> bool:
    """Return True where bfloat16 matrix products are fast (not emulated element by element).

    Only PyTorch on a CPU without bfloat16 support in oneDNN answers False (see
    :func:`_torch_cpu_bfloat16_matmul`): GPUs have bfloat16 units, and XLA's CPU
    backend computes bfloat16 products in float32 itself.
    """
    if _namespace_kind(xp) != "torch" or _device_kind(dev) not in ("cpu", None):
        return True
    return _torch_cpu_bfloat16_matmul()


def fast_bfloat16_dtype(xp: ModuleType, dev: Any) -> Any:
    """Return bfloat16 where :func:`has_bfloat16_matmul`, float32 elsewhere."""
    return dtype_from_name(xp, "bfloat16") if has_bfloat16_matmul(xp, dev) else xp.float32


def fast_half_dtype(xp: ModuleType, dev: Any) -> Any:
    """Return the dtype for a half-precision computation that needs float16's mantissa.

    float16 where :func:`has_float16_matmul` (as fast as bfloat16 on matrix
    units, three more mantissa bits); float32 elsewhere, where float16 products
    are emulated and float32 ones are the fast path.
    """
    if hasattr(xp, "float16") and has_float16_matmul(xp, dev):
        return xp.float16
    return xp.float32


def _floating_result_dtype(xp: ModuleType, dtype: Any, device: Any) -> Any:
    try:
        inexact = xp.isdtype(dtype, ("real floating", "complex floating"))
        integral = xp.isdtype(dtype, ("integral", "bool"))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"unsupported dtype {dtype}: polarlinalg works on the Array API's "
            "floating, complex, integer and boolean dtypes (and bfloat16 in torch and jax)"
        ) from exc
    if inexact:
        return dtype
    if integral:
        info = xp.__array_namespace_info__()
        return info.default_dtypes(device=device)["real floating"]
    raise TypeError(f"unsupported dtype {dtype}")


def _resolve_name(xp: ModuleType, compute_dtype: Any) -> Any:
    if isinstance(compute_dtype, str):
        return dtype_from_name(xp, compute_dtype)
    return compute_dtype


def plan_dtypes(
    xp: ModuleType,
    dtype: Any,
    device: Any,
    *,
    compute_dtype: Any,
    low_precision_ok: bool,
    method: str,
) -> DtypePlan:
    """Decide the result and compute dtypes of one call.

    Parameters
    ----------
    xp : module
        Array namespace.
    dtype : dtype
        The input's dtype.
    device : device
        The input's device (for the default floating dtype).
    compute_dtype : dtype, str or None
        The caller's override, a dtype of ``xp`` or its name.
    low_precision_ok : bool
        Whether the method may compute in float16/bfloat16.
    method : str
        Method name, for error messages.

    Returns
    -------
    DtypePlan
    """
    result = _floating_result_dtype(xp, dtype, device)
    if compute_dtype is None:
        compute = result if low_precision_ok else at_least_float32(xp, result)
        return DtypePlan(result, compute)
    compute = _resolve_name(xp, compute_dtype)
    try:
        ok = xp.isdtype(compute, ("real floating", "complex floating"))
    except (TypeError, ValueError, AttributeError):  # not a dtype of this namespace
        ok = False
    if not ok:
        raise ValueError(
            f"compute_dtype must be a floating dtype of {xp.__name__}; got {compute_dtype!r}"
        )
    if is_complex(xp, result) and not is_complex(xp, compute):
        raise ValueError(
            f"compute_dtype={compute_dtype!r} is real but the input is complex ({result}); "
            "use a complex compute dtype"
        )
    if not is_complex(xp, result) and is_complex(xp, compute):
        raise ValueError(
            f"compute_dtype={compute_dtype!r} is complex but the input is real ({result})"
        )
    if is_low_precision(xp, compute) and not low_precision_ok:
        raise ValueError(
            f"method {method!r} factorizes (QR/Cholesky/SVD) and cannot compute in "
            f"{compute_dtype!r}; use float32 or wider"
        )
    return DtypePlan(result, compute)


def state_dtype(xp: ModuleType, dtype: Any) -> Any:
    """Dtype of optimizer state for a parameter of ``dtype``.

    Float32 for half-precision parameters (bfloat16, float16), whose moments
    would lose the small updates; the parameter's own dtype otherwise.
    """
    return xp.float32 if is_low_precision(xp, dtype) else dtype
