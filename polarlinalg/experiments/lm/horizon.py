r"""Whether the ranking of the arms at a short horizon holds at a long one.

Two result sets of the same preset (same model shape and batch) that differ
only in the number of steps, e.g. ``tiny`` at 200 and at 2,000 steps, are
compared on the arms both hold.  :func:`compare_horizons` computes

- per arm and horizon: steps done, seeds, mean ± sample standard deviation of
  the final validation loss over seeds, and the arm's rank by that mean
  (1 = lowest loss), plus the rank change ``rank_long − rank_short`` (positive:
  the arm fell back);
- the agreement of the two rankings, Kendall's :math:`\tau_b` over the means
  (below), and every pair of arms whose order *flips* (strictly opposite at
  the two horizons), each flagged by whether the pair's seed-paired
  difference is *clear* at the short and at the long horizon;
- every arm's seed-paired gap to ``adamw`` and to ``muon``
  (:data:`~polarlinalg.experiments.lm.report.BASELINES`) at both horizons,
  and whether its sign or its clearness changed.

*Clear* is :func:`polarlinalg.experiments.lm.report.paired`'s test: on the
seeds both arms ran, the differences :math:`d_s = L_a(s) - L_b(s)` of final
validation loss have mean :math:`\bar d` and standard error
:math:`\mathrm{SE} = \mathrm{sd}(d)/\sqrt n`, and the difference is clear when
:math:`|\bar d| > 2\,\mathrm{SE}` (needs :math:`n \ge 2`; a diverged run
leaves the gap undefined and never clear).

Ranking and ties.  An arm's score at a horizon is the mean of its final
validation losses over its seeds, a diverged (or non-finite) run counting as
:math:`+\infty`, so such an arm ranks after every finite one.  Arms with
exactly equal scores are tied and share the lowest rank of their group
(competition ranking "1, 2, 2, 4").  With :math:`n` arms,
:math:`n_0 = n(n-1)/2` pairs, :math:`C` concordant and :math:`D` discordant
pairs (a pair tied at either horizon is neither), and :math:`n_1`, :math:`n_2`
the pairs tied at the short and at the long horizon,

.. math::

    \tau_b = \frac{C - D}{\sqrt{(n_0 - n_1)(n_0 - n_2)}},

which is 1 for identical orders, −1 for reversed ones and, without ties,
equals Kendall's :math:`\tau = (C - D)/n_0`.  It is undefined (NaN) when a
horizon ties every pair or fewer than two arms are shared.  A pair tied at
one horizon and ordered at the other is counted in :math:`n_1` or
:math:`n_2` but is not a flip.

:func:`horizon_markdown` renders tables and a one-line verdict built from
these numbers, :func:`horizon_json` a JSON-ready dict, and
:func:`write_horizon` writes ``horizon.md``, ``horizon.json`` and (with
matplotlib) ``horizon.png``: the final validation loss per arm at both
horizons, min–max over seeds as error bars, arms in short-horizon rank order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polarlinalg.experiments.lm.report import BASELINES, _arm_order, paired, read_results
from polarlinalg.experiments.lm.results import RunResult

__all__ = [
    "SHAPE_FIELDS",
    "ArmHorizon",
    "BaselineGap",
    "Flip",
    "HorizonComparison",
    "compare_directories",
    "compare_horizons",
    "horizon_json",
    "horizon_markdown",
    "kendall_tau_b",
    "write_horizon",
]

SHAPE_FIELDS = ("name", "n_layer", "n_head", "d_model", "seq_len", "batch_size")
"""Preset fields that must agree between the two horizons."""

# not reported as preset differences: the fields a new step count rescales
# (Preset.replace), and the preset's rates, which a run's --lr overrides; the rates the runs
# used are compared per arm instead (ArmHorizon.lrs_differ)
_UNREPORTED_FIELDS = ("steps", "warmup_steps", "eval_every", "diag_every", "lrs")


@dataclass(frozen=True)
class ArmHorizon:
    """One arm at both horizons.

    ``*_loss_mean`` is ``inf`` when a run diverged; ``*_loss_std`` is NaN for
    one seed or a diverged run; ``*_steps`` lists the distinct step counts the
    runs logged (the preset's steps when the runs carry no log); ``lrs_differ``
    says whether the runs' learning rates differ between the horizons.
    """

    arm: str
    short_steps: list[int]
    long_steps: list[int]
    short_seeds: list[int]
    long_seeds: list[int]
    short_loss_mean: float
    short_loss_std: float
    short_loss_min: float
    short_loss_max: float
    long_loss_mean: float
    long_loss_std: float
    long_loss_min: float
    long_loss_max: float
    short_diverged: int
    long_diverged: int
    short_rank: int
    long_rank: int
    lrs_differ: bool

    @property
    def rank_change(self) -> int:
        """``long_rank − short_rank``: positive when the arm fell back."""
        return self.long_rank - self.short_rank


@dataclass(frozen=True)
class Flip:
    """A pair of arms ordered one way at the short horizon and the other way at the long one.

    ``first`` is ahead (lower mean loss) at the short horizon; the gaps are
    ``first − second``, the seed-paired mean over the seeds both ran (NaN
    when a run diverged), with ``*_clear`` as in
    :func:`~polarlinalg.experiments.lm.report.paired`.
    """

    first: str
    second: str
    short_gap: float
    long_gap: float
    short_clear: bool
    long_clear: bool


@dataclass(frozen=True)
class BaselineGap:
    """An arm's seed-paired gap (arm − baseline) at both horizons."""

    arm: str
    baseline: str
    short_gap: float
    short_se: float
    short_clear: bool
    long_gap: float
    long_se: float
    long_clear: bool

    @property
    def sign_changed(self) -> bool:
        """Both gaps finite and nonzero, and of opposite sign."""
        return (
            math.isfinite(self.short_gap)
            and math.isfinite(self.long_gap)
            and self.short_gap * self.long_gap < 0
        )

    @property
    def clear_changed(self) -> bool:
        """Clear at exactly one horizon."""
        return self.short_clear != self.long_clear


@dataclass(frozen=True)
class HorizonComparison:
    """The result of :func:`compare_horizons` (see the module docstring)."""

    preset: str
    short_steps: int
    long_steps: int
    arms: list[ArmHorizon]
    tau: float
    flips: list[Flip]
    baseline_gaps: list[BaselineGap]
    only_short: list[str] = field(default_factory=list)
    only_long: list[str] = field(default_factory=list)
    preset_differences: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """One line summarizing :attr:`tau` and :attr:`flips`, built from the numbers.

        "ranking holds": no flip; "holds up to noise": flips, none clear at
        either horizon; "weakens": some flip clear at the short horizon, none at
        the long one; "changes": some flip clear at the long horizon.
        """
        n = len(self.arms)
        tau = f"tau = {self.tau:.2f}" if math.isfinite(self.tau) else "tau undefined"
        head = f"{tau} over {n} arm{'s' if n != 1 else ''}"
        if not self.flips:
            return f"ranking holds: {head}, no flips"
        k = len(self.flips)
        flips = f"{k} flip{'s' if k != 1 else ''}"
        short = sum(f.short_clear for f in self.flips)
        long = sum(f.long_clear for f in self.flips)
        both = sum(f.short_clear and f.long_clear for f in self.flips)
        if short == long == 0:
            return f"ranking holds up to noise: {head}, {flips}, not clear at either horizon"
        detail = f"{short} clear at the short horizon, {long} at the long one"
        if both:
            detail += f", {both} at both"
        # a clear reversal at the long horizon changes the ranking; clear only at the short
        # one, an order the short horizon resolved is lost (reversed within the noise)
        kind = "ranking changes" if long else "ranking weakens"
        return f"{kind}: {head}, {flips}, {detail}"


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    r"""Kendall's :math:`\tau_b` between two score sequences (see the module docstring).

    Parameters
    ----------
    x, y : sequence of float
        Scores of the same items; equal scores (including two ``inf``) are
        ties.  NaN is not allowed.

    Returns
    -------
    float
        In [−1, 1]; NaN when either sequence ties every pair or has fewer than
        two items.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}")
    if any(math.isnan(v) for v in (*x, *y)):
        raise ValueError("x and y must not contain NaN")
    concordant = discordant = tied_x = tied_y = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            sx = (x[i] > x[j]) - (x[i] < x[j])
            sy = (y[i] > y[j]) - (y[i] < y[j])
            tied_x += sx == 0
            tied_y += sy == 0
            if sx * sy > 0:
                concordant += 1
            elif sx * sy < 0:
                discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - tied_x) * (pairs - tied_y))
    return (concordant - discordant) / denominator if denominator > 0 else math.nan


def _preset_dict(preset: Any) -> dict[str, Any]:
    if isinstance(preset, Mapping):
        return dict(preset)
    if dataclasses.is_dataclass(preset) and not isinstance(preset, type):
        return dataclasses.asdict(preset)
    raise ValueError(f"preset must be a Preset or a dict; got {type(preset).__name__}")


def _check_presets(short: dict[str, Any], long: dict[str, Any]) -> list[str]:
    """Raise unless the shapes agree and the steps grow; return the other differing fields."""
    for name in ("steps", *SHAPE_FIELDS):
        if name not in short or name not in long:
            raise ValueError(f"both presets need the field {name!r}")
    for name in SHAPE_FIELDS:
        if short[name] != long[name]:
            raise ValueError(
                f"the horizons must share the preset's {name}: short has {short[name]!r}, "
                f"long has {long[name]!r}"
            )
    if short["steps"] == long["steps"]:
        raise ValueError(f"the horizons must differ in steps; both ran {short['steps']}")
    if short["steps"] > long["steps"]:
        raise ValueError(
            f"the short horizon ran more steps ({short['steps']}) than the long one "
            f"({long['steps']}); swap them"
        )
    skip = set(SHAPE_FIELDS) | set(_UNREPORTED_FIELDS)
    return sorted(
        k for k in set(short) | set(long) if k not in skip and short.get(k) != long.get(k)
    )


def _score(run: RunResult) -> float:
    loss = run.final_val_loss
    return math.inf if run.diverged or not math.isfinite(loss) else loss


def _ranks(scores: dict[str, float]) -> dict[str, int]:
    """Competition ranks (1 = lowest score; equal scores share the lowest rank)."""
    return {arm: 1 + sum(other < s for other in scores.values()) for arm, s in scores.items()}


def _by_arm(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    out: dict[str, list[RunResult]] = {}
    for r in sorted(results, key=lambda r: (_arm_order(r.arm), r.arm, r.seed)):
        out.setdefault(r.arm, []).append(r)
    return out


def _stats(runs: list[RunResult]) -> tuple[float, float, float, float]:
    scores = [_score(r) for r in runs]
    mean = statistics.fmean(scores) if all(math.isfinite(s) for s in scores) else math.inf
    std = statistics.stdev(scores) if math.isfinite(mean) and len(scores) > 1 else math.nan
    return mean, std, min(scores), max(scores)


def _steps(runs: list[RunResult], preset_steps: int) -> list[int]:
    done = sorted({len(r.log) for r in runs if r.log})
    return done or [preset_steps]


def _rates(runs: list[RunResult]) -> set[tuple[tuple[str, float], ...]]:
    # to 12 significant digits: a rate written as 0.01 and one computed as
    # 0.010000000000000002 (a sweep's grid) are the same rate
    return {tuple(sorted((k, float(f"{v:.12g}")) for k, v in r.lrs.items())) for r in runs}


def _pair(results: dict[str, list[RunResult]], arm: str, other: str) -> dict[str, Any]:
    """``paired`` of ``arm`` against ``other`` (``arm − other``)."""
    (row,) = paired([*results[arm], *results[other]], other)
    return row


def compare_horizons(
    short: Sequence[RunResult],
    long: Sequence[RunResult],
    *,
    short_preset: Any,
    long_preset: Any,
) -> HorizonComparison:
    """Compare the arms' final validation losses at two horizons.

    Parameters
    ----------
    short, long : sequence of RunResult
        The runs at the shorter and at the longer horizon.
    short_preset, long_preset : Preset or dict
        Their presets (``runs.json``'s ``"preset"``): the fields in
        :data:`SHAPE_FIELDS` must agree and ``steps`` must grow from short to
        long.

    Returns
    -------
    HorizonComparison
        On the arms both hold (the others are listed in ``only_short`` and
        ``only_long``), ordered by short-horizon rank.

    Raises
    ------
    ValueError
        When the presets differ in shape, the step counts are equal or
        reversed, or no arm ran at both horizons.
    """
    short_p, long_p = _preset_dict(short_preset), _preset_dict(long_preset)
    differences = _check_presets(short_p, long_p)
    by_short, by_long = _by_arm(short), _by_arm(long)
    common = [a for a in by_short if a in by_long]
    if not common:
        raise ValueError(
            f"no arm ran at both horizons: short has {', '.join(by_short) or 'none'}, "
            f"long has {', '.join(by_long) or 'none'}"
        )
    short_stats = {a: _stats(by_short[a]) for a in common}
    long_stats = {a: _stats(by_long[a]) for a in common}
    short_rank = _ranks({a: s[0] for a, s in short_stats.items()})
    long_rank = _ranks({a: s[0] for a, s in long_stats.items()})
    order = sorted(common, key=lambda a: (short_rank[a], long_rank[a], _arm_order(a), a))
    arms = [
        ArmHorizon(
            arm=a,
            short_steps=_steps(by_short[a], short_p["steps"]),
            long_steps=_steps(by_long[a], long_p["steps"]),
            short_seeds=[r.seed for r in by_short[a]],
            long_seeds=[r.seed for r in by_long[a]],
            short_loss_mean=short_stats[a][0],
            short_loss_std=short_stats[a][1],
            short_loss_min=short_stats[a][2],
            short_loss_max=short_stats[a][3],
            long_loss_mean=long_stats[a][0],
            long_loss_std=long_stats[a][1],
            long_loss_min=long_stats[a][2],
            long_loss_max=long_stats[a][3],
            short_diverged=sum(r.diverged for r in by_short[a]),
            long_diverged=sum(r.diverged for r in by_long[a]),
            short_rank=short_rank[a],
            long_rank=long_rank[a],
            lrs_differ=_rates(by_short[a]) != _rates(by_long[a]),
        )
        for a in order
    ]
    tau = kendall_tau_b([short_stats[a][0] for a in order], [long_stats[a][0] for a in order])
    flips = []
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            s_sign = (short_stats[a][0] > short_stats[b][0]) - (
                short_stats[a][0] < short_stats[b][0]
            )
            l_sign = (long_stats[a][0] > long_stats[b][0]) - (long_stats[a][0] < long_stats[b][0])
            if s_sign * l_sign >= 0:
                continue
            first, second = (a, b) if s_sign < 0 else (b, a)
            s_row = _pair(by_short, first, second)
            l_row = _pair(by_long, first, second)
            flips.append(
                Flip(
                    first=first,
                    second=second,
                    short_gap=s_row["gap_mean"],
                    long_gap=l_row["gap_mean"],
                    short_clear=s_row["clear"],
                    long_clear=l_row["clear"],
                )
            )
    gaps = []
    for baseline in BASELINES:
        if baseline not in common:
            continue
        for a in order:
            if a == baseline:
                continue
            s_row, l_row = _pair(by_short, a, baseline), _pair(by_long, a, baseline)
            gaps.append(
                BaselineGap(
                    arm=a,
                    baseline=baseline,
                    short_gap=s_row["gap_mean"],
                    short_se=s_row["gap_se"],
                    short_clear=s_row["clear"],
                    long_gap=l_row["gap_mean"],
                    long_se=l_row["gap_se"],
                    long_clear=l_row["clear"],
                )
            )
    return HorizonComparison(
        preset=str(short_p["name"]),
        short_steps=int(short_p["steps"]),
        long_steps=int(long_p["steps"]),
        arms=arms,
        tau=tau,
        flips=flips,
        baseline_gaps=gaps,
        only_short=[a for a in by_short if a not in by_long],
        only_long=[a for a in by_long if a not in by_short],
        preset_differences=differences,
    )


def compare_directories(short_dir: str | Path, long_dir: str | Path) -> HorizonComparison:
    """:func:`compare_horizons` on two directories written by ``write_results``.

    Only ``runs.json`` is needed in each (final losses, rates, preset); ``log.csv`` is
    read where present.
    """
    short_info, short = read_results(short_dir, require_log=False)
    long_info, long = read_results(long_dir, require_log=False)
    return compare_horizons(
        short, long, short_preset=short_info["preset"], long_preset=long_info["preset"]
    )


def _loss(mean: float, std: float, diverged: int) -> str:
    if not math.isfinite(mean):
        return f"diverged ({diverged})" if diverged else "—"
    text = f"{mean:.4f}"
    if math.isfinite(std):
        text += f" ± {std:.4f}"
    return text


def _gap(value: float, se: float | None = None) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:+.4f}" + (f" ± {se:.4f}" if se is not None and math.isfinite(se) else "")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def horizon_markdown(comparison: HorizonComparison) -> str:
    """Render ``comparison`` as markdown: the verdict, then the tables."""
    c = comparison
    lines = [
        f"## Horizon: `{c.preset}` at {c.short_steps} vs {c.long_steps} steps",
        "",
        f"**Verdict:** {c.verdict}.",
        "",
    ]
    notes = []
    if c.preset_differences:
        notes.append(
            "the presets also differ in " + ", ".join(f"`{k}`" for k in c.preset_differences)
        )
    changed = [a.arm for a in c.arms if a.lrs_differ]
    if changed:
        notes.append(
            "learning rates differ between the horizons for "
            + ", ".join(f"`{a}`" for a in changed)
            + " (the comparison mixes horizon and rate for them)"
        )
    if c.only_short:
        notes.append("only at the short horizon: " + ", ".join(f"`{a}`" for a in c.only_short))
    if c.only_long:
        notes.append("only at the long horizon: " + ", ".join(f"`{a}`" for a in c.only_long))
    lines += [f"- Note: {n}." for n in notes] + ([""] if notes else [])
    lines += [
        "Final validation loss (nats/byte), mean ± sd over seeds; rank 1 = lowest mean; "
        "Δrank = long − short (positive: fell back).",
        "",
        f"| arm | steps | seeds | {c.short_steps} steps | rank | {c.long_steps} steps | rank "
        "| Δrank |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in c.arms:
        steps = f"{'/'.join(map(str, a.short_steps))} → {'/'.join(map(str, a.long_steps))}"
        seeds = f"{len(a.short_seeds)} → {len(a.long_seeds)}"
        lines.append(
            f"| `{a.arm}` | {steps} | {seeds} "
            f"| {_loss(a.short_loss_mean, a.short_loss_std, a.short_diverged)} | {a.short_rank} "
            f"| {_loss(a.long_loss_mean, a.long_loss_std, a.long_diverged)} | {a.long_rank} "
            f"| {a.rank_change:+d} |"
        )
    tau = f"{c.tau:.3f}" if math.isfinite(c.tau) else "undefined"
    lines += ["", f"Kendall's tau-b between the two rankings: {tau}.", ""]
    if c.flips:
        lines += [
            "Pairs whose order flips (gap = first − second, seed-paired mean of final "
            "validation loss; *clear* when |gap| > 2 standard errors):",
            "",
            f"| first at {c.short_steps} | second | gap at {c.short_steps} | clear? "
            f"| gap at {c.long_steps} | clear? |",
            "|---|---|---|---|---|---|",
        ]
        for f in c.flips:
            lines.append(
                f"| `{f.first}` | `{f.second}` | {_gap(f.short_gap)} | {_yes(f.short_clear)} "
                f"| {_gap(f.long_gap)} | {_yes(f.long_clear)} |"
            )
    else:
        lines.append("No pair of arms changes order.")
    for baseline in BASELINES:
        rows = [g for g in c.baseline_gaps if g.baseline == baseline]
        if not rows:
            continue
        lines += [
            "",
            f"Paired against `{baseline}` (gap = arm − {baseline} ± standard error; "
            "*clear* when |gap| > 2 standard errors):",
            "",
            f"| arm | gap at {c.short_steps} | clear? | gap at {c.long_steps} | clear? "
            "| sign changed? | clearness changed? |",
            "|---|---|---|---|---|---|---|",
        ]
        for g in rows:
            lines.append(
                f"| `{g.arm}` | {_gap(g.short_gap, g.short_se)} | {_yes(g.short_clear)} "
                f"| {_gap(g.long_gap, g.long_se)} | {_yes(g.long_clear)} "
                f"| {_yes(g.sign_changed)} | {_yes(g.clear_changed)} |"
            )
    return "\n".join(lines) + "\n"


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def horizon_json(comparison: HorizonComparison) -> dict[str, Any]:
    """Return ``comparison`` as a JSON-ready dict (non-finite numbers become ``None``).

    A diverged arm's mean loss (``inf``) therefore reads ``None``; its
    ``*_diverged`` count says why.
    """
    c = comparison
    out = {
        "preset": c.preset,
        "short_steps": c.short_steps,
        "long_steps": c.long_steps,
        "verdict": c.verdict,
        "kendall_tau_b": c.tau,
        "arms": [{**dataclasses.asdict(a), "rank_change": a.rank_change} for a in c.arms],
        "flips": [dataclasses.asdict(f) for f in c.flips],
        "baseline_gaps": [
            {
                **dataclasses.asdict(g),
                "sign_changed": g.sign_changed,
                "clear_changed": g.clear_changed,
            }
            for g in c.baseline_gaps
        ],
        "only_short": c.only_short,
        "only_long": c.only_long,
        "preset_differences": c.preset_differences,
    }
    return _finite_or_none(out)


def _plot(path: Path, c: HorizonComparison) -> Path:
    from polarlinalg._pyplot import pyplot

    plt = pyplot("horizon.png (or pass --no-plots)")
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(c.arms) + 2), 4.5), constrained_layout=True)
    xs = list(range(len(c.arms)))
    for offset, steps, prefix, marker in (
        (-0.12, c.short_steps, "short", "o"),
        (0.12, c.long_steps, "long", "s"),
    ):
        px, py, low, high = [], [], [], []
        for x, a in zip(xs, c.arms, strict=True):
            mean = getattr(a, f"{prefix}_loss_mean")
            if not math.isfinite(mean):
                continue  # a diverged arm has no point
            px.append(x + offset)
            py.append(mean)
            low.append(mean - getattr(a, f"{prefix}_loss_min"))
            high.append(getattr(a, f"{prefix}_loss_max") - mean)
        ax.errorbar(px, py, yerr=[low, high], fmt=marker, capsize=3, ms=5, label=f"{steps} steps")
    ax.set_xticks(xs)
    ax.set_xticklabels([a.arm for a in c.arms], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("final validation loss (nats/byte)")
    ax.set_title(
        f"{c.preset}: mean over seeds, bars min–max; arms in {c.short_steps}-step rank order",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_horizon(
    out: str | Path, comparison: HorizonComparison, *, plots: bool = True
) -> list[Path]:
    """Write ``horizon.md``, ``horizon.json`` and (``plots``) ``horizon.png`` into ``out``.

    Returns the paths written.  The figure needs matplotlib.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "horizon.md"
    md.write_text(horizon_markdown(comparison), encoding="utf-8")
    js = out / "horizon.json"
    js.write_text(
        json.dumps(horizon_json(comparison), indent=1, allow_nan=False) + "\n", encoding="utf-8"
    )
    written = [md, js]
    if plots:
        written.append(_plot(out / "horizon.png", comparison))
    return written
