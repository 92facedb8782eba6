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
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Timing", "block", "measure", "measure_interleaved", "paired_ratio", "summarize"]


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
    samples : tuple of float
        The timed calls in the order they ran (not written to JSON).
    """

    median: float
    q1: float
    q3: float
    minimum: float
    first_call: float
    repeats: int
    samples: tuple[float, ...] = field(default=(), repr=False)

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
    return measure_interleaved(
        [(fn, inputs)], repeats=repeats, warmup=warmup, synchronize=synchronize
    )[0]


def measure_interleaved(
    calls: Sequence[tuple[Callable[[Any], Any], Sequence[Any]]],
    *,
    repeats: int,
    warmup: int = 1,
    synchronize: Callable[[], None] = lambda: None,
    min_warmup_s: float = 0.0,
    min_time_s: float = 0.0,
    max_repeats: int = 50,
) -> list[Timing]:
    """Time several callables in interleaved rounds, so they share the machine's state.

    After every callable's warm-up, each round calls every callable once
    (forward order in even rounds, reverse order in odd ones, so neither
    always runs first), rotating each through its own inputs as
    :func:`measure` does.  Sample ``i`` of one callable and sample ``i`` of
    another are neighbours in time: their ratio (:func:`paired_ratio`) is
    robust to load that drifts during the run.

    Parameters
    ----------
    calls : sequence of (callable, inputs)
        As ``fn`` and ``inputs`` of :func:`measure`.
    repeats, warmup, synchronize
        As in :func:`measure`: at least ``repeats`` rounds after at least
        ``warmup`` untimed rounds.
    min_warmup_s : float, default 0
        Go on with untimed rounds until they have taken this long.  Thread
        pools need it: after a BLAS call in another library (NumPy's
        OpenBLAS threads spin for a while after each call, on the same cores),
        the first tens of milliseconds of PyTorch or XLA calls run several
        times slower.
    min_time_s : float, default 0
        Go on with timed rounds until they have taken this long, up to
        ``max_repeats`` rounds: small cases get more samples at little cost.
    max_repeats : int, default 50
        Cap on the timed rounds that ``min_time_s`` adds.

    Returns
    -------
    list of Timing
        One per callable, in the order of ``calls``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    if warmup < 1:
        raise ValueError(f"warmup must be at least 1; got {warmup}")
    if not calls or any(not inputs for _, inputs in calls):
        raise ValueError("inputs must not be empty (every call needs at least one)")
    firsts = []
    for fn, inputs in calls:
        synchronize()
        start = time.perf_counter()
        block(fn(inputs[0]))
        synchronize()
        firsts.append(time.perf_counter() - start)
    start, rounds = time.perf_counter(), 1
    while rounds < warmup or time.perf_counter() - start < min_warmup_s:
        for fn, inputs in calls:
            block(fn(inputs[rounds % len(inputs)]))
        synchronize()
        rounds += 1
    samples: list[list[float]] = [[] for _ in calls]
    start, i = time.perf_counter(), 0
    while i < repeats or (i < max_repeats and time.perf_counter() - start < min_time_s):
        order = range(len(calls)) if i % 2 == 0 else range(len(calls) - 1, -1, -1)
        for j in order:
            fn, inputs = calls[j]
            x = inputs[(rounds + i) % len(inputs)]
            t0 = time.perf_counter()
            block(fn(x))
            synchronize()
            samples[j].append(time.perf_counter() - t0)
        i += 1
    return [summarize(s, first) for s, first in zip(samples, firsts, strict=True)]


def paired_ratio(numerator: Timing, denominator: Timing) -> float:
    """Return the median over rounds of ``numerator``'s sample over ``denominator``'s.

    Both must come from the same :func:`measure_interleaved` call.
    """
    pairs = zip(numerator.samples, denominator.samples, strict=True)
    ratios = [a / b for a, b in pairs if b > 0]
    if not ratios:
        raise ValueError("no paired samples with a positive denominator")
    return statistics.median(ratios)


def summarize(samples: Sequence[float], first_call: float) -> Timing:
    """Return the :class:`Timing` of timed ``samples`` (seconds) and the first call."""
    if not samples:
        raise ValueError("samples must not be empty")
    q1, q3 = _quartiles(samples)
    return Timing(
        statistics.median(samples), q1, q3, min(samples), first_call, len(samples), tuple(samples)
    )
