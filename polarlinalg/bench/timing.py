"""Timing a callable properly: warm-up, synchronisation, rotated inputs, robust statistics.

The first call is timed on its own (it includes ``jax.jit`` compilation and
one-off allocations) and reported apart; the timed calls rotate through several
pre-generated inputs so that no cache holds the answer, and each sample ends
with a device synchronisation (``block_until_ready`` on every JAX output,
then the backend's own: ``torch.cuda.synchronize``, a CuPy device sync).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Timing", "block", "measure", "summarize"]


@dataclass(frozen=True)
class Timing:
    """Statistics of the timed calls, in seconds.

    Attributes
    ----------
    median, q1, q3, minimum : float
        Median, quartiles and minimum of the timed calls.
    first_call : float
        The first (untimed-for-the-median) call: compilation under ``jit``,
        allocations and caches otherwise.
    repeats : int
        Number of timed calls.
    """

    median: float
    q1: float
    q3: float
    minimum: float
    first_call: float
    repeats: int

    @property
    def iqr(self) -> float:
        """Interquartile range ``q3 − q1``."""
        return self.q3 - self.q1

    def as_dict(self) -> dict[str, float]:
        """Return the fields under the JSON names."""
        return {
            "median_s": self.median,
            "q1_s": self.q1,
            "q3_s": self.q3,
            "min_s": self.minimum,
            "first_call_s": self.first_call,
            "repeats": self.repeats,
        }


def block(out: Any) -> Any:
    """Wait for every JAX array in ``out`` (a tuple, list or single array); return ``out``."""
    leaves = out if isinstance(out, tuple | list) else (out,)
    for leaf in leaves:
        if isinstance(leaf, tuple | list):
            block(leaf)
        elif hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return out


def _quartiles(samples: Sequence[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], samples[0]
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return q[0], q[2]


def measure(
    fn: Callable[[Any], Any],
    inputs: Sequence[Any],
    *,
    repeats: int,
    warmup: int = 1,
    synchronize: Callable[[], None] = lambda: None,
) -> Timing:
    """Time ``fn`` on ``inputs``, rotating through them.

    Parameters
    ----------
    fn : callable
        Called with one input; its result is waited for (:func:`block`).
    inputs : sequence
        Pre-generated inputs; call ``i`` uses ``inputs[i % len(inputs)]``.
    repeats : int
        Timed calls (at least 1).
    warmup : int, default 1
        Untimed calls before them (at least 1: the first is reported as
        ``first_call``).
    synchronize : callable, optional
        The backend's device synchronisation, called after every call.

    Returns
    -------
    Timing
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    if warmup < 1:
        raise ValueError(f"warmup must be at least 1; got {warmup}")
    if not inputs:
        raise ValueError("inputs must not be empty")
    synchronize()
    start = time.perf_counter()
    block(fn(inputs[0]))
    synchronize()
    first = time.perf_counter() - start
    for i in range(1, warmup):
        block(fn(inputs[i % len(inputs)]))
    synchronize()
    samples = []
    for i in range(repeats):
        x = inputs[(warmup + i) % len(inputs)]
        start = time.perf_counter()
        block(fn(x))
        synchronize()
        samples.append(time.perf_counter() - start)
    return summarize(samples, first)


def summarize(samples: Sequence[float], first_call: float) -> Timing:
    """Return the :class:`Timing` of timed ``samples`` (seconds) and the first call."""
    if not samples:
        raise ValueError("samples must not be empty")
    q1, q3 = _quartiles(samples)
    return Timing(statistics.median(samples), q1, q3, min(samples), first_call, len(samples))
