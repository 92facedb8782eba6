"""polarlinalg experiment: arms, runner, report and the command line."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from support import to_f64

from polarlinalg.cli import main as top_main
from polarlinalg.experiments import cli, report
from polarlinalg.experiments.arms import ARMS, Arm, default_arms, make_stepper
from polarlinalg.experiments.runner import run_arm
from polarlinalg.problems import LogisticRegression, MatrixCompletion, QuadraticRegression

QUICK = cli.PROBLEMS["quadratic"]


def _quick_quadratic(**kw):
    return QuadraticRegression(**QUICK.quick_sizes, **kw)


def test_paper_mechanism_polargrad_beats_muon_on_the_quick_quadratic():
    """Nuclear-norm scaling: PolarGrad keeps converging where Muon's unscaled step stalls."""
    prob = _quick_quadratic(dtype="float64")
    arms = {a.name: a for a in default_arms("quadratic")}
    steps = QUICK.quick_steps
    polargrad = run_arm(
        prob, arms["polargrad-qdwh"].with_lr(QUICK.quick_lr["polargrad-qdwh"]), steps=steps
    )
    momentum = run_arm(
        prob,
        arms["polargradm-momentum-first"].with_lr(QUICK.quick_lr["polargradm-momentum-first"]),
        steps=steps,
    )
    muon = run_arm(prob, arms["muon-qdwh"], steps=steps)
    gap = {t.arm: t.columns["gap"][-1] for t in (polargrad, momentum, muon)}
    assert not any(t.diverged for t in (polargrad, momentum, muon))
    assert gap["polargrad-qdwh"] < gap["muon-qdwh"]
    assert gap["polargradm-momentum-first"] < 1e-3 * gap["muon-qdwh"]
    # Muon's step has a fixed size: its gap stalls; PolarGrad's keeps shrinking.
    tail = muon.columns["gap"][-100:]
    assert tail.min() > 0.5 * tail.max()
    assert polargrad.columns["gap"][-1] < 0.5 * polargrad.columns["gap"][-100]


def test_every_arm_steps_on_its_problem():
    problems = {
        "quadratic": QuadraticRegression(m=12, n=4, p=20, q=7, dtype="float64"),
        "logistic": LogisticRegression(m=10, n=4, samples=40, q=6, batch_size=8, dtype="float64"),
        "completion": MatrixCompletion(m=14, n=9, rank=2, observed=0.5, dtype="float64"),
    }
    for name, arms in ARMS.items():
        for arm in arms:
            trace = run_arm(problems[name], arm.with_lr(arm.lr * 1e-3), steps=2)
            assert trace.columns["step"].tolist() == [0, 1, 2], (name, arm.name)
            assert np.all(np.isfinite(trace.columns["loss"])), (name, arm.name)
            assert trace.columns["time"][0] == 0 and trace.columns["time"][-1] > 0


def test_trajectory_agrees_across_backends(backend):
    """Three steps of PolarGrad, PolarGradM, Muon (NS), Adam and Newton on every backend."""
    if backend.dtype("float64") is None:
        pytest.skip("no float64")
    kw = {"m": 12, "n": 4, "p": 20, "q": 7, "seed": 5, "dtype": "float64"}
    prob = QuadraticRegression(xp=backend.xp, device=backend.device, **kw)
    ref = QuadraticRegression(**kw)
    names = ["polargrad-qdwh", "polargradm-polar-first", "muon-ns", "adam", "newton"]
    for arm in default_arms("quadratic", names):
        arm = arm.with_lr(arm.lr * (1e2 if arm.name.startswith("polargrad") else 1))
        ours = run_arm(prob, arm, steps=3)
        theirs = run_arm(ref, arm, steps=3)
        np.testing.assert_allclose(ours.columns["gap"], theirs.columns["gap"], rtol=1e-9)
        np.testing.assert_allclose(
            ours.columns["grad_cond_X"], theirs.columns["grad_cond_X"], rtol=1e-7
        )
        stepper = make_stepper(arm, prob)
        params = prob.init_params()
        params, _ = stepper.step(params, None, stepper.init(params))
        ref_stepper = make_stepper(arm, ref)
        ref_params = ref.init_params()
        ref_params, _ = ref_stepper.step(ref_params, None, ref_stepper.init(ref_params))
        np.testing.assert_allclose(to_f64(backend, params["X"]), ref_params["X"], rtol=1e-10)


def test_alternating_descent_updates_y_at_the_new_x():
    prob = MatrixCompletion(m=14, n=9, rank=2, observed=0.5, dtype="float64")
    arm = default_arms("completion", ["altgd"])[0]
    stepper = make_stepper(arm, prob)
    params = prob.init_params()
    new, _ = stepper.step(params, None, stepper.init(params))
    x = params["X"] - arm.lr * prob.grads(params)["X"]
    y = params["Y"] - arm.lr * prob.grads({"X": x, "Y": params["Y"]})["Y"]
    np.testing.assert_allclose(new["X"], x)
    np.testing.assert_allclose(new["Y"], y)


def test_step_decay_schedule():
    arm = Arm("a", "A", "adam", 1.0, (25, 0.5))
    assert [arm.learning_rate(k) for k in (0, 24, 25, 50, 74)] == [1.0, 1.0, 0.5, 0.25, 0.25]
    assert Arm("b", "B", "adam", 1.0).learning_rate(10**6) == 1.0
    with pytest.raises(ValueError, match="decay"):
        Arm("c", "C", "adam", 1.0, (0, 0.5))
    with pytest.raises(ValueError, match="lr must be positive"):
        Arm("d", "D", "adam", 0.0)
    with pytest.raises(ValueError, match="kind"):
        Arm("e", "E", "sgd", 1.0)


def test_divergence_is_recorded_not_raised():
    prob = QuadraticRegression(m=12, n=4, p=20, q=7, dtype="float64")
    arm = default_arms("quadratic", ["polargrad-qdwh"])[0].with_lr(1.0)
    trace = run_arm(prob, arm, steps=200)
    assert trace.diverged and trace.steps < 200
    rows = report.summarize([trace], 1e-3)
    assert rows[0].diverged == 1 and math.isinf(rows[0].final)
    assert "diverged" in report.format_table(rows, 1e-3)


def test_wrong_baseline_for_problem():
    prob = MatrixCompletion(m=14, n=9, rank=2, dtype="float64")
    with pytest.raises(ValueError, match="quadratic"):
        make_stepper(default_arms("quadratic", ["newton"])[0], prob)
    quad = QuadraticRegression(m=12, n=4, p=20, q=7, dtype="float64")
    with pytest.raises(ValueError, match="two factors"):
        make_stepper(default_arms("completion", ["altgd"])[0], quad)
    with pytest.raises(ValueError, match="unknown arm"):
        default_arms("quadratic", ["altgd"])
    with pytest.raises(ValueError, match="unknown problem"):
        default_arms("sudoku")


@pytest.mark.parametrize(
    ("problem", "arms", "metric"),
    [
        ("quadratic", "polargrad-qdwh,muon-ns,newton", "gap"),
        ("logistic", "polarsgd-qdwh-decay,adam", "loss"),
        ("completion", "polargradm-polar-first,altgd", "gap"),
    ],
)
def test_quick_command_writes_its_files(tmp_path, capsys, problem, arms, metric):
    out = tmp_path / problem
    args = ["experiment", problem, "--quick", "--steps", "12", "--arms", arms, "--seeds", "1,2"]
    status = top_main([*args, "--log-every", "5", "--out", str(out), "--no-progress"])
    assert status == 0
    printed = capsys.readouterr().out
    for name in arms.split(","):
        label = next(a.label for a in ARMS[problem] if a.name == name)
        assert label in printed
    assert (out / f"{problem}.png").stat().st_size > 10_000
    document = json.loads((out / f"{problem}.json").read_text())
    assert document["meta"]["problem"] == problem and document["meta"]["quick"] is True
    assert document["meta"]["steps"] == 12 and document["meta"]["seeds"] == [1, 2]
    assert len(document["runs"]) == 2 * len(arms.split(","))
    assert {r["metric"] for r in document["summary"]} == {metric}
    assert document["runs"][0]["columns"]["step"] == [0, 5, 10, 12]
    with (out / f"{problem}.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 * len(document["runs"])
    assert {"grad_cond_X", "grad_nuc_X", "gap", "loss", "time"} <= set(rows[0])
    assert "|" in (out / "summary.md").read_text()
    traces, meta = report.read_json(out / f"{problem}.json")
    assert meta == document["meta"] and len(traces) == len(document["runs"])
    np.testing.assert_array_equal(traces[0].columns["step"], [0, 5, 10, 12])
    assert report.plot(traces, tmp_path / "again.png").stat().st_size > 10_000


@pytest.mark.parametrize("backend_name", ["torch", "jax"])
def test_command_on_other_backends(tmp_path, backend_name):
    pytest.importorskip(backend_name)
    out = tmp_path / backend_name
    status = cli.main(
        [
            "quadratic",
            "--quick",
            "--backend",
            backend_name,
            "--steps",
            "4",
            "--arms",
            "polargrad-qdwh,muon-ns,adam",
            "--no-plot",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    document = json.loads((out / "quadratic.json").read_text())
    assert document["meta"]["backend"] == backend_name
    assert all(np.isfinite(r["columns"]["gap"]).all() for r in document["runs"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["quadratic", "--arms", "nope"], "unknown arm"),
        (["quadratic", "--steps", "0"], "--steps must be positive"),
        (["quadratic", "--lr", "adam=0.1", "--arms", "newton"], "not being run"),
        (["quadratic", "--size", "zz=3", "--steps", "1"], "bad --size"),
        (["quadratic", "--backend", "cupy"], "GPU only"),
        (["quadratic", "--backend", "numpy", "--device", "cuda"], "CPU only"),
    ],
)
def test_bad_command_lines(tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--out", str(tmp_path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_list_arms(capsys):
    assert cli.main(["completion", "--list-arms"]) == 0
    assert "altgd" in capsys.readouterr().out


def test_bad_argument_syntax():
    with pytest.raises(SystemExit):
        cli.main(["quadratic", "--lr", "adam"])
    with pytest.raises(SystemExit):
        cli.main(["sudoku"])


PRECONDITIONERS = ("shampoo", "soap")

# Final metric over initial metric at the quick size and rate, with a margin of about 100
# over the pilot of arms.py (quadratic 3e-17 and 2e-6, completion 2e-14 and 8e-6 of the
# initial gap; logistic 0.05 and 0.07 of the initial minibatch loss).
QUICK_REDUCTION = {
    ("quadratic", "shampoo"): 1e-6,
    ("quadratic", "soap"): 1e-4,
    ("logistic", "shampoo"): 0.2,
    ("logistic", "soap"): 0.2,
    ("completion", "shampoo"): 1e-6,
    ("completion", "soap"): 1e-3,
}


def _quick_problem(problem, **kw):
    cls = {
        "quadratic": QuadraticRegression,
        "logistic": LogisticRegression,
        "completion": MatrixCompletion,
    }[problem]
    return cls(**cli.PROBLEMS[problem].quick_sizes, **kw)


@pytest.mark.parametrize("problem", list(ARMS))
def test_shampoo_and_soap_arms_are_declared_and_listed(problem, capsys):
    arms = {a.name: a for a in ARMS[problem]}
    assert arms["shampoo"].kind == "shampoo" and arms["soap"].kind == "soap"
    assert arms["soap"].options["weight_decay"] == 0.0  # no arm decays its weights
    assert cli.main([problem, "--list-arms"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(arms)  # every arm, in plotting order
    assert {"shampoo", "soap"} <= set(listed)


@pytest.mark.parametrize(("problem", "name"), list(QUICK_REDUCTION))
def test_shampoo_and_soap_lower_the_quick_loss(problem, name):
    """The quick configuration end to end (float32, the quick steps and rates)."""
    config = cli.PROBLEMS[problem]
    arm = default_arms(problem, [name])[0]
    arm = arm.with_lr(config.quick_lr.get(name, arm.lr))
    trace = run_arm(_quick_problem(problem), arm, steps=config.quick_steps, log_every=20)
    row = report.summarize([trace], config.threshold)[0]
    metric = trace.columns[row.metric]
    assert not trace.diverged and np.isfinite(row.final)
    assert row.final < QUICK_REDUCTION[problem, name] * metric[0], (problem, name, row.final)


def test_soap_first_step_only_initialises():
    prob = QuadraticRegression(m=12, n=4, p=20, q=7, dtype="float64")
    stepper = make_stepper(default_arms("quadratic", ["soap"])[0], prob)
    params = prob.init_params()
    once, state = stepper.step(params, None, stepper.init(params))
    np.testing.assert_array_equal(once["X"], params["X"])
    twice, _ = stepper.step(once, None, state)
    assert prob.loss(twice) < prob.loss(once)


def test_shampoo_and_soap_agree_across_backends(backend):
    """Three steps of Shampoo and SOAP (its first step initialises) on every backend.

    X is square: a rectangular gradient leaves ``GGᵀ`` or ``GᵀG`` singular, whose
    null-space eigenvectors are each LAPACK's own choice, and SOAP's step depends on them.
    """
    if backend.dtype("float64") is None:
        pytest.skip("no float64")
    kw = {"m": 6, "n": 6, "p": 20, "q": 9, "seed": 5, "dtype": "float64"}
    prob = QuadraticRegression(xp=backend.xp, device=backend.device, **kw)
    ref = QuadraticRegression(**kw)
    for arm in default_arms("quadratic", list(PRECONDITIONERS)):
        ours = run_arm(prob, arm, steps=3)
        theirs = run_arm(ref, arm, steps=3)
        assert theirs.columns["gap"][-1] < theirs.columns["gap"][0], arm.name
        np.testing.assert_allclose(ours.columns["gap"], theirs.columns["gap"], rtol=1e-9)
        xs = []
        for p in (prob, ref):
            stepper = make_stepper(arm, p)
            params = p.init_params()
            state = stepper.init(params)
            for _ in range(2):
                params, state = stepper.step(params, None, state)
            xs.append(params["X"])
        np.testing.assert_allclose(to_f64(backend, xs[0]), xs[1], rtol=1e-10)


def test_quick_command_runs_shampoo_and_soap(tmp_path, capsys):
    out = tmp_path / "quadratic"
    argv = ["quadratic", "--quick", "--steps", "12", "--arms", "shampoo,soap", "--log-every", "4"]
    assert cli.main([*argv, "--no-plot", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Shampoo (Adam grafting)" in printed and "SOAP (ε=1e-2)" in printed
    document = json.loads((out / "quadratic.json").read_text())
    arms = document["meta"]["arms"]
    assert arms["shampoo"]["kind"] == "shampoo" and arms["soap"]["kind"] == "soap"
    assert arms["soap"]["lr"] == cli.PROBLEMS["quadratic"].quick_lr["soap"]  # quick override
    assert arms["soap"]["options"] == {"weight_decay": 0.0, "eps": 1e-2}
    assert [r["arm"] for r in document["runs"]] == ["shampoo", "soap"]
    assert all(r["columns"]["gap"][-1] < r["columns"]["gap"][0] for r in document["runs"])


def test_misspelt_arm_names_the_new_arms(tmp_path, capsys):
    assert cli.main(["logistic", "--arms", "shampo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown arm(s) shampo for logistic" in err and "shampoo, soap" in err


def _quick_json(tmp_path, name, *extra):
    out = tmp_path / name
    argv = ["completion", "--quick", "--steps", "6", "--log-every", "3", *extra]
    assert cli.main([*argv, "--no-plot", "--no-progress", "--out", str(out)]) == 0
    return out / "completion.json"


def test_merge_combines_separate_runs_into_one_report(tmp_path, capsys):
    # seeds and arms run in separate processes make the same table as one run of them all
    a = _quick_json(tmp_path, "a", "--arms", "adam,altgd", "--seeds", "1")
    b = _quick_json(tmp_path, "b", "--arms", "adam,altgd", "--seeds", "2")
    c = _quick_json(tmp_path, "c", "--arms", "muon-ns", "--seeds", "1,2")
    whole = _quick_json(tmp_path, "whole", "--arms", "adam,altgd,muon-ns", "--seeds", "1,2")
    capsys.readouterr()
    out = tmp_path / "merged"
    argv = ["completion", "--merge", str(a), str(b), str(c), "--out", str(out), "--no-plot"]
    assert cli.main(argv) == 0
    assert "seeds 1,2" in capsys.readouterr().out
    merged, meta = report.read_json(out / "completion.json")
    reference, _ = report.read_json(whole)
    assert meta["seeds"] == [1, 2] and set(meta["arms"]) == {"adam", "altgd", "muon-ns"}
    assert [p["path"] for p in meta["merged_from"]] == [str(a), str(b), str(c)]
    key = lambda t: (t.arm, t.seed)  # noqa: E731
    assert sorted(map(key, merged)) == sorted(map(key, reference))
    by_key = {key(t): t for t in reference}
    for t in merged:  # the same problem and arm: the same trajectory
        np.testing.assert_allclose(t.columns["gap"], by_key[key(t)].columns["gap"], rtol=1e-12)
    summary = json.loads((out / "completion.json").read_text())["summary"]
    whole_summary = json.loads(whole.read_text())["summary"]
    assert [(r["arm"], r["seeds"]) for r in summary] == [
        (r["arm"], r["seeds"]) for r in whole_summary
    ]
    assert (out / "summary.md").is_file() and (out / "completion.csv").is_file()


def test_merge_refuses_what_does_not_belong_together(tmp_path, capsys):
    a = _quick_json(tmp_path, "a", "--arms", "adam", "--seeds", "1")
    again = _quick_json(tmp_path, "again", "--arms", "adam", "--seeds", "1")
    longer = _quick_json(tmp_path, "longer", "--arms", "adam", "--seeds", "2", "--steps", "9")
    rate = _quick_json(tmp_path, "rate", "--arms", "adam", "--seeds", "2", "--lr", "adam=0.5")
    (tmp_path / "junk.json").write_text("[1, 2]")
    capsys.readouterr()
    cases = [
        ([a, again], "arm 'adam' seed 1 is in both"),
        ([a, longer], "has steps 9, the first file 6"),
        ([a, rate], "arm 'adam' differs between files"),
        ([a, tmp_path / "missing.json"], "cannot read"),
        ([a, tmp_path / "junk.json"], "cannot read"),
    ]
    for files, message in cases:
        argv = ["completion", "--merge", *map(str, files), "--out", str(tmp_path / "m")]
        assert cli.main([*argv, "--no-plot"]) == 2
        assert message in capsys.readouterr().err
    assert cli.main(["quadratic", "--merge", str(a), "--out", str(tmp_path / "m")]) == 2
    assert "holds the 'completion' problem, not 'quadratic'" in capsys.readouterr().err
    argv = ["completion", "--merge", str(a), "--sweep", "adam", "--out", str(tmp_path / "m")]
    assert cli.main(argv) == 2
    assert "--merge excludes --sweep" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # nothing written by a refused merge
