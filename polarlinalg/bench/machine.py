"""The metadata of a benchmark run: machine, library versions, date and load."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from typing import Any

__all__ = ["cpu_model", "load_average", "machine_info", "threading_info", "versions"]

_PACKAGES = (
    "polarlinalg",
    "numpy",
    "scipy",
    "array-api-compat",
    "torch",
    "jax",
    "jaxlib",
    "optax",
    "cupy-cuda12x",
    "cupy-cuda13x",
    "matplotlib",
)


def cpu_model() -> str:
    """Return the CPU model from ``/proc/cpuinfo`` (or :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """Return ``os.getloadavg()`` (1, 5, 15 minutes), or None where it does not exist."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def versions() -> dict[str, str]:
    """Return the installed versions of polarlinalg and the frameworks it is timed with."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _git_commit() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _gpus() -> list[str]:
    """Names of the CUDA devices, from an already imported torch or CuPy (none imported here)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "XLA_FLAGS",
    "CUDA_VISIBLE_DEVICES",
)


def threading_info() -> dict[str, Any]:
    """Return the thread settings that shape CPU timings (environment, torch's pool)."""
    import sys

    out: dict[str, Any] = {k: os.environ[k] for k in _THREAD_VARIABLES if k in os.environ}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_threads"] = torch.get_num_threads()
    return out


def machine_info() -> dict[str, Any]:
    """Return the machine part of a run's metadata (taken when the run starts)."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "gpus": _gpus(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "versions": versions(),
        "loadavg_start": load_average(),
        "threads": threading_info(),
    }
