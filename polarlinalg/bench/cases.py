"""The grid of a run: shapes, batches, dtypes, and the quick and full configurations.

A *case* is one input class: ``batch`` stacked ``m × n`` matrices of one dtype.
The aspect ratio of a case is ``n/m`` with the long side equal to the size:
aspect 4 at size 2048 is ``512 × 2048`` (wide), aspect 1/4 is ``2048 × 512``.
Polynomial methods (the Newton–Schulz family) and the accurate, factorization
based ones get their own size and dtype lists, so that a CPU run can reach
large matrix products without spending its budget on float64 QR.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["FULL", "QUICK", "Case", "Config", "cases_for", "parse_aspect"]

POLYNOMIAL_DTYPES = ("float32", "float64", "bfloat16")
ACCURATE_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Case:
    """``batch`` matrices of shape ``m × n`` (``batch = 1``: a single matrix)."""

    m: int
    n: int
    batch: int
    dtype: str

    @property
    def shape(self) -> tuple[int, ...]:
        """The array shape (no batch axis for ``batch = 1``)."""
        return (self.m, self.n) if self.batch == 1 else (self.batch, self.m, self.n)

    @property
    def label(self) -> str:
        """``"512x2048"`` or ``"8x256x256"``."""
        return "x".join(str(s) for s in self.shape)

    @property
    def aspect(self) -> float:
        """``max(m, n)/min(m, n)``."""
        return max(self.m, self.n) / min(self.m, self.n)


@dataclass(frozen=True)
class Config:
    """What one run measures (the CLI's filters narrow it down).

    Attributes
    ----------
    polynomial_sizes, accurate_sizes : tuple of int
        Long sides for the Newton–Schulz family and for the accurate methods.
    aspects, accurate_aspects : tuple of Fraction
        Ratios ``n/m`` for the Newton–Schulz family (1, 4 and 1/4 in the full
        run) and for the accurate methods (1 and 1/4: tall, the orientation
        they work in and the only one ``jax.scipy.linalg.polar`` takes).  The
        full run adds aspect 8 for the Newton–Schulz family, where Gram
        Newton–Schulz's saving is larger.
    batch : int
        Stack depth of the batched cases (square, at the batched sizes).
    batched_sizes : tuple of int
        Sizes that also get a batched case.
    polynomial_dtypes, accurate_dtypes : tuple of str
    repeats, warmup, inputs : int
        Timed calls (at least), warm-up calls (at least) and rotated inputs
        per candidate.
    min_warmup_s, min_time_s : float
        Warm-up rounds go on until they have taken ``min_warmup_s`` seconds,
        timed rounds until ``min_time_s`` (at most 50 rounds): small cases
        get settled thread pools and more samples (see
        :func:`polarlinalg.bench.timing.measure_interleaved`).
    cond : float
        Condition number of the test matrices.
    optimizer_layers, optimizer_repeats : int
        GPT-2-small layers of the optimizer-step benchmark (0: skip it) and
        its timed steps.
    inv_root_sizes, inv_root_dtypes : tuple
        Sizes ``n`` and dtypes of the :func:`polarlinalg.inv_root` rows
        (single ``n × n`` PSD matrices of condition ``cond``).
    inv_root_p : int
        The root ``p`` of those rows (4: Shampoo's root of a matrix factor).
    optimizer_families : tuple of str
        Families of the optimizer-step benchmark (``muon``, ``shampoo``,
        ``soap``; the last two on PyTorch only).
    optimizer_shapes : tuple of (int, int)
        Matrix shapes of the optimizer step instead of GPT-2-small layers
        (empty: ``optimizer_layers`` layers).
    """

    polynomial_sizes: tuple[int, ...]
    accurate_sizes: tuple[int, ...]
    aspects: tuple[Fraction, ...]
    accurate_aspects: tuple[Fraction, ...]
    batch: int
    batched_sizes: tuple[int, ...]
    polynomial_dtypes: tuple[str, ...]
    accurate_dtypes: tuple[str, ...]
    repeats: int
    warmup: int
    inputs: int
    cond: float
    min_warmup_s: float
    min_time_s: float
    optimizer_layers: int
    optimizer_repeats: int
    inv_root_sizes: tuple[int, ...] = ()
    inv_root_dtypes: tuple[str, ...] = ("float32",)
    inv_root_p: int = 4
    optimizer_families: tuple[str, ...] = ("muon", "shampoo", "soap")
    optimizer_shapes: tuple[tuple[int, int], ...] = ()

    def replace(self, **changes: object) -> Config:
        """Return a copy with ``changes``."""
        return dataclasses.replace(self, **changes)


QUICK = Config(
    polynomial_sizes=(256,),
    accurate_sizes=(128,),
    aspects=(Fraction(1), Fraction(4)),
    accurate_aspects=(Fraction(1), Fraction(1, 4)),
    batch=4,
    batched_sizes=(),
    polynomial_dtypes=("float32",),
    accurate_dtypes=("float32",),
    repeats=3,
    warmup=1,
    inputs=2,
    cond=1e3,
    min_warmup_s=0.2,
    min_time_s=0.1,
    optimizer_layers=1,
    optimizer_repeats=2,
    inv_root_sizes=(128,),
)
"""``--quick``: small sizes, float32, 3 repeats, a one-layer optimizer step (2 timed)."""

FULL = Config(
    polynomial_sizes=(256, 512, 1024, 2048),
    accurate_sizes=(512, 1024),
    aspects=(Fraction(1), Fraction(4), Fraction(8)),
    accurate_aspects=(Fraction(1),),
    batch=8,
    batched_sizes=(256,),
    polynomial_dtypes=("float32",),
    accurate_dtypes=("float32", "float64"),
    repeats=3,
    warmup=1,
    inputs=3,
    cond=1e3,
    min_warmup_s=0.3,
    min_time_s=0.5,
    optimizer_layers=12,
    optimizer_repeats=3,
    inv_root_sizes=(256, 768),
)
"""The default run, sized for a shared 2-core CPU (float32 matrix products up to 2048²; the
accurate methods square, to 1024², in float32 and float64; bfloat16 is timed in the
optimizer step; inv_root at 256 and 768, float32, p = 4); widen it with ``--sizes``,
``--aspects``, ``--dtypes``."""


def parse_aspect(text: str) -> Fraction:
    """Parse ``"4"``, ``"1/4"`` or ``"0.25"`` into a positive fraction; ValueError otherwise."""
    try:
        value = Fraction(text.strip()).limit_denominator(64)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"aspect ratio must be a number such as 4 or 1/4; got {text!r}") from None
    if value <= 0:
        raise ValueError(f"aspect ratio must be positive; got {text!r}")
    return value


def _shape(size: int, aspect: Fraction) -> tuple[int, int]:
    if aspect >= 1:
        return max(1, round(size / aspect)), size
    return size, max(1, round(size * aspect))


def cases_for(
    sizes: Sequence[int],
    aspects: Sequence[Fraction],
    dtypes: Sequence[str],
    batch: int,
    batched_sizes: Sequence[int],
) -> list[Case]:
    """Return the cases of a grid, smallest first."""
    out = []
    for dtype in dtypes:
        for size in sorted(sizes):
            for aspect in aspects:
                m, n = _shape(size, aspect)
                out.append(Case(m, n, 1, dtype))
            if batch > 1 and size in batched_sizes:
                out.append(Case(size, size, batch, dtype))
    return out
