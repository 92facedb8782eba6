"""The bracketing learning-rate sweep (polarlinalg.experiments.sweep) on cheap objectives."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest

from polarlinalg.experiments.sweep import Bracket, combine, immediate, run_brackets


def _bowl(best: float):
    """A loss with its minimum at ``best``, quadratic in log10(lr)."""
    return lambda lr: (math.log10(lr) - math.log10(best)) ** 2 + 1.0


def _run(bracket: Bracket, loss) -> Bracket:
    run_brackets({"x": bracket}, lambda name, lr: immediate(loss, lr))
    return bracket


@pytest.mark.parametrize("best", [1e-3, 3e-2, 1.0, 30.0, 1e4])
def test_extends_until_interior(best):
    bracket = _run(Bracket(1.0, max_points=20), _bowl(best))
    assert bracket.interior, bracket.message
    points = bracket.points
    k = [p.lr for p in points].index(bracket.best.lr)
    assert 0 < k < len(points) - 1
    assert points[k - 1].loss > points[k].loss < points[k + 1].loss
    # the optimum is the grid point nearest the true one, within half a grid step
    assert abs(math.log10(bracket.best.lr / best)) <= 0.25 + 1e-9
    # every point recorded, on the grid, with no gaps
    ks = [round(math.log10(p.lr) / 0.5) for p in points]
    assert ks == list(range(ks[0], ks[0] + len(ks)))


def test_starts_with_three_and_grows_one_per_side():
    bracket = Bracket(1.0, factor=10.0)
    assert sorted(bracket.proposals()) == [0.1, 1.0, 10.0]
    for lr, loss in ((0.1, 3.0), (1.0, 2.0), (10.0, 1.0)):
        bracket.record(lr, loss)
    assert bracket.proposals() == [100.0]  # best at the upper edge: extend upwards
    bracket.record(100.0, 5.0)
    assert bracket.interior and bracket.best.lr == 10.0
    assert bracket.proposals() == [] and bracket.done


def test_interior_already_needs_three_points():
    bracket = _run(Bracket(1.0), _bowl(1.0))
    assert bracket.interior and len(bracket.points) == 3


def test_stops_at_max_points_with_message():
    bracket = _run(Bracket(1.0, factor=10.0, max_points=5), lambda lr: -math.log10(lr))
    assert not bracket.interior and bracket.done
    assert len(bracket.points) == 5
    assert "not bracketed after 5 rates" in bracket.message
    assert "highest rate tried" in bracket.message
    assert bracket.best.lr == pytest.approx(1e3)


def test_diverged_points_are_worse_and_all_diverged_goes_down():
    def loss(lr):
        return math.nan if lr > 0.05 else _bowl(1e-3)(lr)

    bracket = _run(Bracket(1.0, max_points=12), loss)
    assert bracket.interior
    assert bracket.best.lr == pytest.approx(10**-3)
    assert [p for p in bracket.points if not math.isfinite(p.loss)]  # recorded, not dropped


def test_tie_with_a_neighbour_stops_with_message():
    bracket = _run(Bracket(1.0, factor=2.0), lambda lr: 1.0 if 0.4 < lr < 2.5 else 2.0)
    assert not bracket.interior and bracket.done
    assert "ties" in bracket.message
    assert [p.lr for p in bracket.points] == [0.25, 0.5, 1.0, 2.0]


def test_plateau_at_an_edge_keeps_extending():
    bracket = _run(Bracket(1.0, factor=10.0, max_points=4), lambda lr: 1.0 if lr <= 1 else 2.0)
    assert not bracket.interior and "lowest rate tried" in bracket.message


def test_several_brackets_share_a_pool():
    brackets = {"a": Bracket(1.0), "b": Bracket(1e-2)}
    losses = {"a": _bowl(10.0), "b": _bowl(1e-4)}
    with ThreadPoolExecutor(2) as pool:
        run_brackets(brackets, lambda name, lr: pool.submit(losses[name], lr))
    assert all(b.interior for b in brackets.values())
    assert brackets["a"].best.lr == pytest.approx(10.0)
    assert brackets["b"].best.lr == pytest.approx(1e-4)


def test_detail_and_summary():
    bracket = Bracket(2.0, factor=2.0)
    run_brackets({"x": bracket}, lambda n, lr: immediate(lambda: (_bowl(2.0)(lr), {"lr": lr})))
    record = bracket.summary()
    assert record["interior"] and record["best_lr"] == 2.0
    assert [p["detail"]["lr"] for p in record["points"]] == [1.0, 2.0, 4.0]


def test_combine_and_errors():
    assert combine([immediate(lambda: 1), immediate(lambda: 2)], sum).result() == 3
    assert combine([], len).result() == 0
    failing = immediate(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        combine([failing], sum).result()
    bracket = Bracket(1.0)
    with pytest.raises(ZeroDivisionError):
        run_brackets({"x": bracket}, lambda n, lr: immediate(lambda: 1 / 0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start": 0.0}, "start"),
        ({"start": math.inf}, "start"),
        ({"start": 1.0, "factor": 1.0}, "factor"),
        ({"start": 1.0, "max_points": 2}, "max_points"),
        ({"start": 1.0, "max_points": True}, "max_points"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Bracket(**kwargs)


def test_off_grid_and_repeated_rates():
    bracket = Bracket(1.0, factor=10.0)
    with pytest.raises(ValueError, match="grid"):
        bracket.record(2.0, 1.0)
    bracket.record(1.0, 1.0)
    with pytest.raises(ValueError, match="already recorded"):
        bracket.record(1.0, 1.0)
    with pytest.raises(ValueError, match="already taken"):
        bracket.take(1.0)
