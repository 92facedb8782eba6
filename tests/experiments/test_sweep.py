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


# -- the command lines ---------------------------------------------------------------------


def test_matrix_problem_sweep_command(tmp_path, capsys):
    import json

    from polarlinalg.experiments.cli import main

    out = tmp_path / "sweep"
    argv = ["completion", "--quick", "--steps", "100", "--sweep", "adam,muon-ns"]
    assert main([*argv, "--no-progress", "--no-plot", "--out", str(out)]) == 0
    record = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert record["seeds"] == [1042] and record["metric"] == "gap"
    for name in ("adam", "muon-ns"):
        arm = record["arms"][name]
        assert arm["interior"], arm["message"]
        losses = [p["loss"] for p in arm["points"]]
        k = [p["lr"] for p in arm["points"]].index(arm["best_lr"])
        assert 0 < k < len(losses) - 1 and losses[k - 1] > losses[k] < losses[k + 1]
        assert all(p["detail"]["final_per_seed"] == [p["loss"]] for p in arm["points"])
    table = (out / "sweep.md").read_text(encoding="utf-8")
    assert "| `adam` |" in table and "| yes |" in table
    assert "interior" in capsys.readouterr().out


def test_matrix_problem_sweep_that_cannot_bracket_says_so(tmp_path, capsys):
    import json

    from polarlinalg.experiments.cli import main

    # from 1e-7 Adam barely moves: the loss falls with every larger rate, so three
    # points cannot bracket the optimum
    argv = ["completion", "--quick", "--steps", "50", "--sweep", "adam", "--lr", "adam=1e-7"]
    argv += ["--sweep-max-points", "3", "--no-progress", "--no-plot", "--out", str(tmp_path)]
    assert main(argv) == 1
    assert "adam: not bracketed after 3 rates" in capsys.readouterr().err
    record = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))["arms"]["adam"]
    assert not record["interior"] and len(record["points"]) == 3
    assert record["best_lr"] == pytest.approx(1e-7 * 10**0.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sweep", "adamm"], "unknown arm(s) adamm"),
        (["--sweep", "adam", "--sweep-max-points", "2"], "at least 3"),
    ],
)
def test_matrix_problem_sweep_bad_arguments(tmp_path, capsys, argv, message):
    from polarlinalg.experiments.cli import main

    status = main(["completion", "--quick", *argv, "--out", str(tmp_path / "x"), "--no-plot"])
    assert status == 2
    assert message in capsys.readouterr().err


def _quick_adamw_rate() -> float:
    """AdamW's rate in ``experiment lm --quick`` (the tiny preset's, scaled down in size only)."""
    from polarlinalg.experiments.lm.presets import get_preset

    return get_preset("tiny").lrs["adamw"]


def test_lm_sweep_command_records_every_point(tmp_path, capsys):
    import json

    pytest.importorskip("torch")
    from polarlinalg.experiments.lm.cli import main

    out = tmp_path / "lm"
    argv = ["--quick", "--sweep", "adamw", "--sweep-max-points", "3", "--sweep-factor", "10"]
    argv += ["--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-plots"]
    status = main([*argv, "--no-progress", "--device", "cpu", "--threads", "1"])
    record = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    role = record["roles"]["adamw"]
    assert record["seeds"] == [1000] and role["arm"] == "adamw"
    start = _quick_adamw_rate()
    assert [p["lr"] for p in role["points"]] == pytest.approx([start / 10, start, start * 10])
    assert all(p["detail"]["seeds"] == [1000] for p in role["points"])
    captured = capsys.readouterr()
    assert captured.out.count("sweep adamw") == 3
    if role["interior"]:
        assert status == 0
    else:
        assert status == 1 and "not bracketed after 3 rates" in captured.err


def test_lm_sweep_bad_role(capsys):
    from polarlinalg.experiments.lm.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--sweep", "adamw,lion"])
    assert info.value.code == 2
    assert "--sweep takes roles from" in capsys.readouterr().err
