r"""Learning-rate sweeps that extend their grid until the optimum is interior.

A comparison of optimizers holds only when every arm runs at the best rate
it has, and a rate is known to be best only when the rates on both sides of
it were tried and did worse.  :class:`Bracket` keeps one such sweep: a
log-spaced grid ``γ_k = start · factor^k`` (``factor = √10`` by default),
first ``k = -1, 0, 1``, then one more point beyond whichever end holds the
lowest loss, until the lowest loss is *strictly* lower than both of its
neighbours (the optimum is interior) or ``max_points`` rates have been tried
(the sweep stops and says so).  A non-finite loss (a diverged run) counts as
worse than any finite one.

The bracket only proposes rates and records results; :func:`run_brackets`
drives several brackets at once through any ``submit(name, lr) → Future``
(a process pool, or a function run on the spot), so independent sweeps keep
every worker busy.  Nothing here imports a framework.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polarlinalg._argtypes import finite_float_at_least, positive_int

__all__ = [
    "Bracket",
    "SweepPoint",
    "add_grid_options",
    "combine",
    "format_points",
    "immediate",
    "plot_brackets",
    "run_brackets",
]

SQRT10 = math.sqrt(10.0)


@dataclass(frozen=True)
class SweepPoint:
    """One tried rate: ``lr``, the objective ``loss`` (lower is better) and any ``detail``."""

    lr: float
    loss: float
    detail: Mapping[str, Any] | None = None


def _key(loss: float) -> float:
    return loss if math.isfinite(loss) else math.inf


class Bracket:
    """A learning-rate sweep over ``start · factor^k`` that ends once the optimum is interior.

    Parameters
    ----------
    start : float
        The rate of ``k = 0`` (a preset's value, or a guess).
    factor : float, default √10
        The grid's ratio, > 1.
    max_points : int, default 10
        Stop after this many rates (at least 3) whether or not the optimum is
        interior; :attr:`message` then says why.

    Examples
    --------
    >>> b = Bracket(1.0, factor=2.0)
    >>> while b.proposals():
    ...     for lr in b.proposals():
    ...         _ = b.record(lr, (math.log2(lr) - 3.0) ** 2)   # best at 8
    >>> b.interior, b.best.lr, [p.lr for p in b.points]
    (True, 8.0, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
    """

    def __init__(self, start: float, *, factor: float = SQRT10, max_points: int = 10) -> None:
        if not (isinstance(start, (int, float)) and math.isfinite(start) and start > 0):
            raise ValueError(f"start must be a positive finite rate; got {start!r}")
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 1):
            raise ValueError(f"factor must be a finite number > 1; got {factor!r}")
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 3:
            raise ValueError(f"max_points must be an int >= 3; got {max_points!r}")
        self.start = float(start)
        self.factor = float(factor)
        self.max_points = max_points
        self._done: dict[int, SweepPoint] = {}
        self._in_flight: set[int] = set()
        self.message = ""

    def rate(self, k: int) -> float:
        """Return ``start · factor^k``."""
        return self.start * self.factor**k

    def _index(self, lr: float) -> int:
        k = round(math.log(lr / self.start) / math.log(self.factor))
        if not math.isclose(self.rate(k), lr, rel_tol=1e-9):
            raise ValueError(
                f"{lr!r} is not on this bracket's grid {self.start:g}·{self.factor:g}^k"
            )
        return k

    @property
    def points(self) -> list[SweepPoint]:
        """Every recorded point, by increasing rate."""
        return [self._done[k] for k in sorted(self._done)]

    @property
    def best(self) -> SweepPoint | None:
        """The recorded point of lowest loss (the lower rate on a tie), or None."""
        if not self._done:
            return None
        k = min(sorted(self._done), key=lambda k: _key(self._done[k].loss))
        return self._done[k]

    @property
    def interior(self) -> bool:
        """True when the best rate's two grid neighbours were tried and both did worse."""
        best = self.best
        if best is None or not math.isfinite(best.loss):
            return False
        k = self._index(best.lr)
        below, above = self._done.get(k - 1), self._done.get(k + 1)
        return (
            below is not None
            and above is not None
            and _key(below.loss) > best.loss
            and _key(above.loss) > best.loss
        )

    @property
    def done(self) -> bool:
        """True when the sweep proposes nothing more (interior, or stopped with a message)."""
        return not self._in_flight and not self.proposals()

    def proposals(self) -> list[float]:
        """Return the rates to try next (none in flight or recorded); empty when finished."""
        wanted = self._wanted()
        return [self.rate(k) for k in wanted if k not in self._in_flight]

    def _wanted(self) -> list[int]:
        initial = [k for k in (-1, 0, 1) if k not in self._done]
        if initial:
            return initial
        if self._in_flight or self.interior:
            return []
        ks = sorted(self._done)
        best = self._index(self.best.lr)  # type: ignore[union-attr]
        if not math.isfinite(self.best.loss):  # type: ignore[union-attr]
            step = ks[0] - 1  # everything diverged: go down
        elif best == ks[0]:
            step = best - 1
        elif best == ks[-1]:
            step = best + 1
        else:
            worst_tie = [
                self.rate(j) for j in (best - 1, best + 1) if self._done[j].loss == self.best.loss
            ]
            self.message = (
                f"the best rate {self.rate(best):g} ties with its neighbour "
                f"{', '.join(f'{r:g}' for r in worst_tie)} (loss {self.best.loss:g}): "
                "the objective cannot separate them"
            )
            return []
        if len(self._done) >= self.max_points:
            side = "lowest" if step < best else "highest"
            self.message = (
                f"not bracketed after {len(self._done)} rates "
                f"({self.rate(ks[0]):g} … {self.rate(ks[-1]):g}): the best, "
                f"{self.rate(best):g}, is the {side} rate tried; raise max_points or move start"
            )
            return []
        return [step]

    def take(self, lr: float) -> None:
        """Mark ``lr`` (one of :meth:`proposals`) as being evaluated."""
        k = self._index(lr)
        if k in self._done or k in self._in_flight:
            raise ValueError(f"rate {lr:g} was already taken")
        self._in_flight.add(k)

    def record(self, lr: float, loss: float, detail: Mapping[str, Any] | None = None) -> SweepPoint:
        """Record the objective ``loss`` at ``lr`` (NaN or inf for a diverged run)."""
        k = self._index(lr)
        if k in self._done:
            raise ValueError(f"rate {lr:g} was already recorded")
        self._in_flight.discard(k)
        point = SweepPoint(self.rate(k), float(loss), detail)
        self._done[k] = point
        return point

    def summary(self) -> dict[str, Any]:
        """Return a JSON-ready record: grid, every point, the best and whether it is interior."""
        best = self.best
        return {
            "start": self.start,
            "factor": self.factor,
            "max_points": self.max_points,
            "points": [
                {"lr": p.lr, "loss": p.loss, **({"detail": dict(p.detail)} if p.detail else {})}
                for p in self.points
            ],
            "best_lr": None if best is None else best.lr,
            "best_loss": None if best is None else best.loss,
            "interior": self.interior,
            "message": self.message,
        }


def add_grid_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """Add ``--sweep-factor`` and ``--sweep-max-points`` (a :class:`Bracket`'s grid) to ``parser``.

    ``unit`` names what is swept in the help text (``"an arm"``, ``"a role"``).
    """
    parser.add_argument(
        "--sweep-factor",
        type=lambda t: finite_float_at_least(t, 1.0 + 1e-9, "a ratio > 1"),
        default=SQRT10,
        help="the sweep grid's ratio (default √10)",
    )
    parser.add_argument(
        "--sweep-max-points",
        type=positive_int,
        default=10,
        help=f"stop {unit}'s sweep after this many rates (default 10, at least 3)",
    )


def immediate(fn: Callable[..., Any], *args: Any) -> Future:
    """Run ``fn(*args)`` now and return a finished :class:`~concurrent.futures.Future`."""
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except BaseException as exc:
        future.set_exception(exc)
    return future


def combine(futures: list[Future], reduce: Callable[[list[Any]], Any]) -> Future:
    """Return a Future of ``reduce([f.result() for f in futures])``, set when all are done."""
    out: Future = Future()
    remaining = [len(futures)]

    def finished(_: Future) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            try:
                out.set_result(reduce([f.result() for f in futures]))
            except BaseException as exc:
                out.set_exception(exc)

    if not futures:
        out.set_result(reduce([]))
    for f in futures:
        f.add_done_callback(finished)
    return out


def run_brackets(
    brackets: Mapping[str, Bracket],
    submit: Callable[[str, float], Future],
    *,
    on_point: Callable[[str, SweepPoint], None] | None = None,
) -> None:
    """Run every bracket to its end, evaluating through ``submit``.

    ``submit(name, lr)`` returns a Future whose result is the loss, or a pair
    ``(loss, detail)``; all brackets' proposals are submitted as soon as they
    exist, so a pool of workers stays full.  ``on_point(name, point)`` is
    called after each recorded point.  An exception from an evaluation is
    raised here (the brackets keep what was recorded).
    """
    pending: dict[Future, tuple[str, float]] = {}
    while True:
        for name, bracket in brackets.items():
            for lr in bracket.proposals():
                bracket.take(lr)
                pending[submit(name, lr)] = (name, lr)
        if not pending:
            return
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in finished:
            name, lr = pending.pop(future)
            value = future.result()
            loss, detail = value if isinstance(value, tuple) else (value, None)
            point = brackets[name].record(lr, loss, detail)
            if on_point is not None:
                on_point(name, point)


def format_points(bracket: Bracket, fmt: Callable[[float], str]) -> str:
    """``"lr → loss, …"`` for every point, the best in bold (a markdown table cell)."""
    best = bracket.best
    cells = []
    for p in bracket.points:
        text = f"{p.lr:.3g} → {fmt(p.loss)}"
        cells.append(f"**{text}**" if best is not None and p.lr == best.lr else text)
    return ", ".join(cells)


def plot_brackets(
    brackets: Mapping[str, Bracket],
    path: Path,
    title: str = "",
    ylabel: str = "objective",
    *,
    logy: bool = False,
) -> Path:
    """Loss against learning rate, one panel per role; diverged points as ✕ on the top edge.

    ``logy`` puts the objective on a log scale (for a loss gap spanning decades).
    """
    from polarlinalg._pyplot import pyplot

    plt = pyplot("the sweep plot (or pass --no-plots)")
    n = len(brackets)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 2.9 * rows), squeeze=False, constrained_layout=True
    )
    for ax, (role, bracket) in zip(axes.flat, brackets.items(), strict=False):
        points = bracket.points
        finite = [p for p in points if math.isfinite(p.loss)]
        ax.plot([p.lr for p in finite], [p.loss for p in finite], "o-", ms=4)
        if finite:
            top = max(p.loss for p in finite)
            bad = [p.lr for p in points if not math.isfinite(p.loss)]
            ax.plot(bad, [top] * len(bad), "x", color="tab:red", ms=7, label="diverged")
        best = bracket.best
        if best is not None and math.isfinite(best.loss):
            ax.plot([best.lr], [best.loss], "*", color="tab:orange", ms=12)
        ax.set_xscale("log")
        if logy and finite and min(p.loss for p in finite) > 0:
            ax.set_yscale("log")
        ax.set_title(f"{role}" + ("" if bracket.interior else " (not bracketed)"), fontsize=9)
        ax.set_xlabel("learning rate", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
