"""Moving host-generated float64 data onto a backend (shared by the problems)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from polarlinalg._compat import array_namespace, dtype_from_name

__all__ = ["Placement", "check_positive_int"]


class Placement:
    """Where a problem's arrays live: namespace, dtype and device.

    Parameters
    ----------
    xp : module, optional
        An Array API namespace or a framework module (``numpy``, ``torch``,
        ``jax.numpy``, ``cupy``, ``array_api_strict``).  Default NumPy.
    dtype : str or dtype, default "float32"
        A real floating dtype of that namespace.
    device : object, optional
        A device of that namespace (default: the namespace's default).
    """

    def __init__(self, xp: ModuleType | None = None, dtype: Any = "float32", device: Any = None):
        module = np if xp is None else xp
        if not hasattr(module, "asarray"):
            raise TypeError(f"xp must be an array namespace with asarray; got {module!r}")
        probe = module.asarray(0.0) if device is None else module.asarray(0.0, device=device)
        self.xp = array_namespace(probe)
        self.device = device
        self.dtype = dtype_from_name(self.xp, dtype) if isinstance(dtype, str) else dtype
        if not self.xp.isdtype(self.dtype, "real floating"):
            raise ValueError(f"dtype must be a real floating dtype; got {dtype!r}")

    def put(self, a: np.ndarray) -> Any:
        """Return host array ``a`` on this namespace/device, cast to this dtype."""
        host = np.ascontiguousarray(a)
        if self.device is None:
            x = self.xp.asarray(host)
        else:
            x = self.xp.asarray(host, device=self.device)
        return self.xp.astype(x, self.dtype) if x.dtype != self.dtype else x


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is a positive integer, else raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)
