"""The frameworks polarlinalg runs on, for validation, benchmarks and tests.

A :class:`Backend` is one framework on one device: its Array API namespace,
and conversions from and to NumPy.  :func:`available_backends` lists those
installed here (CUDA ones only when a device is present).  The core never
uses this module: it detects the namespace from the arrays it is given.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "available_backends",
    "enable_jax_x64",
]

BACKEND_NAMES: tuple[str, ...] = (
    "numpy",
    "array_api_strict",
    "torch",
    "torch-cuda",
    "jax",
    "jax-gpu",
    "cupy",
)
"""Every backend name :func:`available_backends` knows."""

_ENV = "POLARLINALG_BACKENDS"


@dataclass(frozen=True)
class Backend:
    """One framework on one device.

    Attributes
    ----------
    name : str
        One of :data:`BACKEND_NAMES`.
    xp : module
        The Array API namespace (the array-api-compat wrapper where one exists).
    device : object
        The device arrays are placed on.
    """

    name: str
    xp: ModuleType
    device: Any
    _to_device: Callable[[Any, Any], Any] = field(repr=False)
    _to_numpy: Callable[[Any], np.ndarray] = field(repr=False)
    _sync: Callable[[], None] = field(repr=False, default=lambda: None)

    @property
    def device_name(self) -> str:
        """A short device label for tables ("cpu", "cuda:0", ...)."""
        if self.name == "array_api_strict":
            return "cpu"
        return str(self.device).lower()

    def dtype(self, name: str) -> Any | None:
        """Return the dtype ``name`` of this backend, or None if it has none (or it is disabled)."""
        if name == "bfloat16":
            if self.name.startswith("torch"):
                import torch

                return torch.bfloat16
            if self.name.startswith("jax"):
                return self.xp.bfloat16
            return None
        if name in ("float64", "complex128") and self.name.startswith("jax"):
            import jax

            if not jax.config.jax_enable_x64:
                return None
        return getattr(self.xp, name, None)

    def asarray(self, a: np.ndarray, dtype: str | None = None) -> Any:
        """Return NumPy array ``a`` as an array of this backend, optionally cast to ``dtype``."""
        x = self._to_device(np.asarray(a, order="C"), self.device)
        if dtype is not None:
            target = self.dtype(dtype)
            if target is None:
                raise ValueError(f"backend {self.name!r} has no dtype {dtype!r}")
            x = self.xp.astype(x, target)
        return x

    def to_numpy(self, x: Any) -> np.ndarray:
        """Return ``x`` as a NumPy array (half precision widened to float32)."""
        return self._to_numpy(x)

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU)."""
        self._sync()


def enable_jax_x64() -> None:
    """Turn on JAX's float64 support (process-wide; JAX keeps float32 otherwise)."""
    import jax

    jax.config.update("jax_enable_x64", True)


def _widen_half(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind not in "fc" or a.dtype.itemsize < 4:
        return a.astype(np.float32)
    return a


def _numpy() -> list[Backend]:
    import array_api_compat.numpy as xp

    return [Backend("numpy", xp, "cpu", lambda a, d: a.copy(), np.asarray)]


def _strict() -> list[Backend]:
    xp = importlib.import_module("array_api_strict")
    device = xp.__array_namespace_info__().default_device()
    return [
        Backend("array_api_strict", xp, device, lambda a, d: xp.asarray(a, device=d), np.asarray)
    ]


def _torch() -> list[Backend]:
    torch = importlib.import_module("torch")
    import array_api_compat.torch as xp

    def to_numpy(x: Any) -> np.ndarray:
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.numpy()

    out = [
        Backend("torch", xp, torch.device("cpu"), lambda a, d: torch.asarray(a, device=d), to_numpy)
    ]
    if torch.cuda.is_available():
        out.append(
            Backend(
                "torch-cuda",
                xp,
                torch.device("cuda"),
                lambda a, d: torch.asarray(a, device=d),
                to_numpy,
                torch.cuda.synchronize,
            )
        )
    return out


def _jax() -> list[Backend]:
    jax = importlib.import_module("jax")
    jnp = importlib.import_module("jax.numpy")

    def to_numpy(x: Any) -> np.ndarray:
        return _widen_half(np.asarray(jax.device_get(x)))

    def put(a: np.ndarray, d: Any) -> Any:
        return jax.device_put(a, d)

    def sync() -> None:
        (jax.device_put(0.0) + 0).block_until_ready()

    out = [Backend("jax", jnp, jax.devices("cpu")[0], put, to_numpy, sync)]
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if gpus:
        out.append(Backend("jax-gpu", jnp, gpus[0], put, to_numpy, sync))
    return out


def _cupy() -> list[Backend]:
    cp = importlib.import_module("cupy")
    if cp.cuda.runtime.getDeviceCount() < 1:
        return []
    import array_api_compat.cupy as xp

    def sync() -> None:
        cp.cuda.runtime.deviceSynchronize()

    return [
        Backend(
            "cupy",
            xp,
            cp.cuda.Device(0),
            lambda a, d: cp.asarray(a),
            lambda x: _widen_half(cp.asnumpy(x)),
            sync,
        )
    ]


_LOADERS: dict[str, Callable[[], list[Backend]]] = {
    "numpy": _numpy,
    "array_api_strict": _strict,
    "torch": _torch,
    "jax": _jax,
    "cupy": _cupy,
}


def _parse(names: Iterable[str] | str | None) -> list[str] | None:
    if names is None:
        names = os.environ.get(_ENV) or None
    if names is None:
        return None
    if isinstance(names, str):
        names = [n for n in names.replace(" ", "").split(",") if n]
    names = list(names)
    unknown = sorted(set(names) - set(BACKEND_NAMES))
    if unknown:
        raise ValueError(
            f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKEND_NAMES)}"
        )
    return names


def available_backends(names: Iterable[str] | str | None = None) -> list[Backend]:
    """Return the backends that are installed and have a device here.

    Parameters
    ----------
    names : iterable of str or str, optional
        Restrict to these names (a comma-separated string is accepted).  The
        default is the environment variable ``POLARLINALG_BACKENDS`` if set,
        otherwise every backend in :data:`BACKEND_NAMES`.  A named backend that
        is not installed is left out, not an error.

    Returns
    -------
    list of Backend
        In the order of :data:`BACKEND_NAMES`.
    """
    wanted = _parse(names)
    found: list[Backend] = []
    for framework, loader in _LOADERS.items():
        if wanted is not None and not any(w.split("-")[0] == framework for w in wanted):
            continue
        try:
            backends = loader()
        except (ImportError, RuntimeError, OSError):  # not installed, or no runtime here
            continue
        found.extend(backends)
    if wanted is not None:
        found = [b for b in found if b.name in wanted]
    return sorted(found, key=lambda b: BACKEND_NAMES.index(b.name))
