"""Units of the harness: timing, floors, schema, targets, the import guard."""

from __future__ import annotations

import copy
import subprocess
import sys
from fractions import Fraction

import pytest

from polarlinalg.bench import schema
from polarlinalg.bench.cases import Case, cases_for, parse_aspect
from polarlinalg.bench.floors import (
    FloorProgram,
    Op,
    accurate_ops,
    flops,
    gram_newton_schulz_ops,
    newton_schulz_ops,
)
from polarlinalg.bench.targets import check_targets
from polarlinalg.bench.timing import (
    block,
    measure,
    measure_interleaved,
    paired_ratio,
    summarize,
)


def test_measure_rotates_inputs_and_counts_calls():
    seen = []
    synced = []
    timing = measure(
        seen.append, ["a", "b", "c"], repeats=4, warmup=2, synchronize=lambda: synced.append(1)
    )
    assert seen == ["a", "b", "c", "a", "b", "c"]
    assert timing.repeats == 4 and timing.minimum <= timing.median <= timing.q3
    assert timing.q1 <= timing.median and timing.iqr >= 0
    assert len(synced) >= 4
    with pytest.raises(ValueError, match="repeats"):
        measure(seen.append, ["a"], repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        measure(seen.append, ["a"], repeats=1, warmup=0)
    with pytest.raises(ValueError, match="inputs"):
        measure(seen.append, [], repeats=1)


def test_measure_interleaved_alternates_rounds_and_pairs_samples():
    seen = []
    a = (lambda x: seen.append(("a", x)), ["a0", "a1"])
    b = (lambda x: seen.append(("b", x)), ["b0"])
    ta, tb = measure_interleaved([a, b], repeats=3, warmup=1)
    # first calls, then rounds: forward, reverse, forward
    assert [name for name, _ in seen] == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert [x for name, x in seen if name == "a"] == ["a0", "a1", "a0", "a1"]
    assert ta.repeats == tb.repeats == 3 and len(ta.samples) == 3
    assert paired_ratio(ta, ta) == 1.0
    with pytest.raises(ValueError, match="inputs"):
        measure_interleaved([a, (print, [])], repeats=1)


def test_measure_interleaved_min_time_adds_rounds_up_to_the_cap():
    t = measure_interleaved([(lambda x: None, [0])], repeats=2, min_time_s=60.0, max_repeats=7)
    assert t[0].repeats == 7
    t = measure_interleaved([(lambda x: None, [0])], repeats=2, min_warmup_s=0.01)
    assert t[0].repeats == 2


def test_paired_ratio_is_the_median_of_per_round_ratios():
    num = summarize([2.0, 30.0, 4.0], 0.0)
    den = summarize([1.0, 10.0, 1.0], 0.0)
    assert paired_ratio(num, den) == 3.0  # ratios 2, 3, 4
    with pytest.raises(ValueError):
        paired_ratio(num, summarize([1.0, 1.0], 0.0))


def test_floor_program_runs_every_operation_in_order():
    import numpy as np

    from polarlinalg.backends import available_backends

    (backend,) = available_backends("numpy")
    floors = FloorProgram(backend, "float64")
    ops = [
        Op("matmul", 1, (4, 6, 4)),
        Op("qr", 2, (6, 4)),
        Op("qr_r", 1, (6, 4)),
        Op("matmul", 1, (4, 6, 4)),
    ]
    out = floors.program(ops)(None)
    a, b = floors.operands(ops[0])
    np.testing.assert_allclose(out, a @ b)
    assert floors.flops(ops) == sum(flops(op) for op in ops)
    assert flops(Op("qr_r", 1, (6, 4))) == pytest.approx(flops(Op("qr", 1, (6, 4))) / 2)
    assert floors.program(ops) is floors.program(list(ops))  # built once per list
    with pytest.raises(ValueError, match="at least one"):
        floors.program([])


def test_jax_floor_program_keeps_repeated_products_apart():
    jax = pytest.importorskip("jax")
    from polarlinalg.backends import available_backends
    from polarlinalg.bench.floors import _function, _jax_body

    backend = available_backends("jax")[0]
    floors = FloorProgram(backend, "float32")
    op = Op("matmul", 1, (16, 32, 16))
    body = _jax_body([_function(backend.xp, "matmul")], [0] * 5)
    hlo = jax.jit(body).lower((floors.operands(op),)).compile().as_text()
    assert hlo.count(" dot(") == 5  # common-subexpression elimination would leave one
    out = floors.program([op] * 5)(None)
    a, b = floors.operands(op)
    assert float(abs(out - a @ b).max()) < 1e-5


def test_summarize_and_block():
    t = summarize([3.0, 1.0, 2.0, 4.0], 9.0)
    assert (t.median, t.minimum, t.first_call) == (2.5, 1.0, 9.0)
    assert t.as_dict()["median_s"] == 2.5

    class Lazy:
        waited = 0

        def block_until_ready(self):
            Lazy.waited += 1

    block((Lazy(), [Lazy(), 3]))
    assert Lazy.waited == 2


def test_newton_schulz_floor_counts():
    ops = newton_schulz_ops(1, 512, 2048, [(3.4, -4.7, 2.0)] * 5)
    assert len(ops) == 15
    total = sum(flops(op) for op in ops)
    assert total == 5 * (4 * 512**2 * 2048 + 2 * 512**3)
    # tall input is counted in its wide orientation; cubic rows skip G²
    assert newton_schulz_ops(1, 2048, 512, [(1.5, -0.5, 0.0)]) == [
        Op("matmul", 1, (512, 2048, 512)),
        Op("matmul", 1, (512, 512, 2048)),
    ]


def test_gram_floor_counts():
    ops = gram_newton_schulz_ops(2, 64, 512, [[(1, 1, 1)] * 3, [(1, 1, 1)] * 2])
    big = [op for op in ops if 512 in op.dims]
    small = [op for op in ops if 512 not in op.dims]
    assert len(big) == 4 and len(small) == 14
    assert all(op.batch == 2 for op in ops)


def test_accurate_floor_ops():
    ops = accurate_ops(1, 100, 40, estimate=True, steps=[("qr", 1), ("cholesky", 2)], finishing=2)
    kinds = [op.kind for op in ops]
    assert kinds.count("qr_r") == 1  # the bound estimate needs R alone
    assert kinds.count("qr") == 1 and kinds.count("cholesky") == 2 and kinds.count("trsm") == 4
    assert Op("qr", 1, (140, 40)) in ops
    assert kinds.count("matmul") == 1 + 1 + 4 + 1
    with pytest.raises(ValueError, match="form"):
        accurate_ops(1, 4, 4, estimate=False, steps=[("lu", 1)], finishing=0)
    with pytest.raises(ValueError, match="kind"):
        flops(Op("eig", 1, (4,)))


def test_cases_and_aspects():
    assert parse_aspect("1/4") == Fraction(1, 4) and parse_aspect("4") == 4
    for bad in ("0", "-1", "x", "1/0"):
        with pytest.raises(ValueError, match="aspect"):
            parse_aspect(bad)
    cases = cases_for([256, 64], [Fraction(1), Fraction(4), Fraction(1, 4)], ["float32"], 8, [64])
    assert [c.label for c in cases] == [
        "64x64",
        "16x64",
        "64x16",
        "8x64x64",
        "256x256",
        "64x256",
        "256x64",
    ]
    assert Case(16, 64, 1, "float32").aspect == 4


def _row(**changes):
    row = {
        "backend": "numpy", "device": "cpu", "dtype": "float32", "shape": "64x256", "m": 64,
        "n": 256, "batch": 1, "candidate": "polar_express", "source": "polarlinalg",
        "family": "polynomial", "jitted": False, "median_s": 2.0, "q1_s": 1.9, "q3_s": 2.1,
        "min_s": 1.8, "first_call_s": 2.5, "compile_s": None, "repeats": 3,
        "orthogonality": 0.3, "forward_error": 0.2, "floor_s": 1.0, "floor_flops": 1e9,
        "floor_ops": "15 matmul", "time_over_floor": 2.0, "time_over_floor_min": 2.0, "gflops": 0.5,
    }  # fmt: skip
    row.update(changes)
    return row


def test_targets_from_rows():
    rows = [
        _row(),
        _row(candidate="gram_newton_schulz", median_s=1.0, time_over_floor=1.05),
        _row(
            candidate="qdwh",
            family="accurate",
            shape="1024x1024",
            m=1024,
            n=1024,
            dtype="float64",
            median_s=1.4,
        ),
        _row(
            candidate="scipy.linalg.polar",
            source="anchor",
            family="accurate",
            shape="1024x1024",
            m=1024,
            n=1024,
            dtype="float64",
            median_s=1.0,
        ),
    ]
    targets = check_targets(rows)
    by = {(t["target"].split(" ")[0], t["detail"][:5]): t for t in targets}
    floor = [t for t in targets if "matmul floor" in t["target"] and t["backend"] == "numpy"]
    assert {t["met"] for t in floor} == {False, True}
    gram = [t for t in targets if t["target"].startswith("gram_newton_schulz ≥")]
    assert gram[0]["value"] == pytest.approx(2.0) and gram[0]["met"] is True
    scipy_target = [t for t in targets if "scipy" in t["target"]]
    assert scipy_target[0]["value"] == pytest.approx(1.4) and scipy_target[0]["met"] is True
    gpu = [t for t in targets if "GPU" in t["target"]]
    assert gpu and all(t["met"] is None and t["value"] is None for t in gpu)
    assert by  # every record is well-formed
    for t in targets:
        schema._check_keys(t, schema._TARGET_KEYS, "target")


def test_schema_check_names_the_problem():
    good = {
        "schema": schema.SCHEMA,
        "metadata": {
            "cpu": "x", "cores": 2, "date": "2026-11-21", "versions": {}, "loadavg_start": None,
            "loadavg_end": [0.1, 0.2, 0.3], "config": {},
        },
        "rows": [_row()], "skipped": [], "optimizer_steps": [], "targets": [],
    }  # fmt: skip
    schema.check(good)
    bad = copy.deepcopy(good)
    del bad["rows"][0]["forward_error"]
    with pytest.raises(ValueError, match=r"rows\[0\] lacks the key 'forward_error'"):
        schema.check(bad)
    bad = copy.deepcopy(good)
    bad["rows"][0]["floor_s"] = "fast"
    with pytest.raises(ValueError, match="floor_s"):
        schema.check(bad)
    bad = copy.deepcopy(good)
    bad["rows"][0]["time_over_floor"] = float("nan")
    with pytest.raises(ValueError, match="not finite"):
        schema.check(bad)
    with pytest.raises(ValueError, match="schema"):
        schema.check({**good, "schema": "other/9"})


def test_importing_the_harness_imports_no_framework():
    code = (
        "import sys, polarlinalg.bench, polarlinalg.bench.cli, polarlinalg.bench.runner, "
        "polarlinalg.bench.optimizers, polarlinalg.bench.plots, polarlinalg.bench.targets\n"
        "names = ('torch', 'jax', 'matplotlib', 'tqdm', 'cupy', 'scipy')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(heavy)\n"
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_accuracy_of_exact_factor_is_tiny():
    from polarlinalg.backends import available_backends
    from polarlinalg.bench.accuracy import accuracy
    from polarlinalg.testing import random_matrix, reference_polar

    (backend,) = available_backends("numpy")
    a = random_matrix((3, 20, 8), cond=10.0)
    u = reference_polar(a).u
    acc = accuracy(backend, a, (u, None))
    assert acc["orthogonality"] < 1e-13 and acc["forward_error"] < 1e-13
    acc = accuracy(backend, a, 0.5 * u)
    assert acc["forward_error"] == pytest.approx(0.5) and acc["orthogonality"] > 0.5
    with pytest.raises(ValueError, match="shape"):
        accuracy(backend, a, u[0])


def test_inv_root_floor_ops_and_flops():
    import numpy as np

    from polarlinalg.backends import available_backends
    from polarlinalg.bench.floors import inv_root_ops

    square = Op("matmul", 2, (8, 8, 8))
    assert inv_root_ops(2, 8, "eigh", 4, 0) == [Op("eigh", 2, (8,)), square]
    assert inv_root_ops(2, 8, "newton", 4, 3) == [square] * 12  # X T, T², T⁴, T⁴ M
    assert len(inv_root_ops(1, 8, "newton", 1, 5)) == 10  # X T, T M
    assert len(inv_root_ops(1, 8, "newton", 3, 1)) == 4  # X T, T², T³, T³ M
    assert flops(Op("eigh", 1, (10,))) == 9000.0
    (backend,) = available_backends("numpy")
    floors = FloorProgram(backend, "float64")
    w, v = floors.program([Op("eigh", 1, (6,))])(None)
    (a,) = floors.operands(Op("eigh", 1, (6,)))
    np.testing.assert_allclose((v * w) @ v.T, a, atol=1e-12)


def test_root_accuracy_and_schema_without_orthogonality():
    import numpy as np

    from polarlinalg.backends import available_backends
    from polarlinalg.bench.accuracy import inv_root_reference, root_accuracy

    (backend,) = available_backends("numpy")
    a = np.diag([4.0, 16.0])
    ref = inv_root_reference(a, 2)
    np.testing.assert_allclose(ref, np.diag([0.5, 0.25]))
    assert root_accuracy(backend, ref, ref) == {"orthogonality": None, "forward_error": 0.0}
    assert root_accuracy(backend, 2 * ref, ref)["forward_error"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        root_accuracy(backend, ref[0], ref)
    result = {
        "schema": schema.SCHEMA,
        "metadata": {
            "cpu": "x", "cores": 2, "date": "2026-12-02", "versions": {}, "loadavg_start": None,
            "loadavg_end": None, "config": {},
        },
        "rows": [{**_row(), "family": "inv_root", "orthogonality": None}],
        "skipped": [], "optimizer_steps": [], "targets": [],
    }  # fmt: skip
    schema.check(result)
