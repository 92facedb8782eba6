"""Split and per-head matrices: the matrix rule per block, against NumPy float64 SVDs.

The reference cuts the matrix along its output axis (rows for ``"out_in"``,
columns for ``"in_out"``) by hand, takes each block's polar factor and
nuclear norm by SVD, and puts the blocks back; the library must agree on every
backend to 1e-10 (the rule runs in float64 with ``method="svd"``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support import to_f64

from polarlinalg._rules import PolarGradRule, polargrad_direction
from polarlinalg._rules._blocks import block_sizes, check_heads, check_split, map_blocks, runs

TOL = 1e-10


def ref_sizes(out: int, split, heads) -> list[int]:
    sizes = list(split) if split is not None else [out]
    if heads is not None:
        sizes = [s // heads for s in sizes for _ in range(heads)]
    return sizes


def ref_scale(scale: str, block: np.ndarray, layout: str) -> float:
    m, n = block.shape[-2:]
    fan_in, fan_out = (n, m) if layout == "out_in" else (m, n)
    return {
        "nuclear": 1.0,
        "none": 1.0,
        "shape": math.sqrt(max(1.0, fan_out / fan_in)),
        "rms": 0.2 * math.sqrt(max(m, n)),
    }[scale]


def ref_blockwise(a: np.ndarray, split, heads, layout: str, scale: str, factor: float = 1.0):
    """``s_b·c_b·polar(A_b)`` per block ``b``, each by its own SVD; a batch over leading axes."""
    rows = layout == "out_in"
    moved = a if rows else np.swapaxes(a, -1, -2)  # blocks along the rows of `moved`
    out = np.empty_like(moved)
    start = 0
    for size in ref_sizes(moved.shape[-2], split, heads):
        block = moved[..., start : start + size, :]
        real = block if rows else np.swapaxes(block, -1, -2)
        p, sv, qh = np.linalg.svd(real, full_matrices=False)
        u = p @ qh
        s = sv.sum(axis=-1)[..., None, None] if scale == "nuclear" else 1.0
        d = s * ref_scale(scale, real, layout) * factor * u
        out[..., start : start + size, :] = d if rows else np.swapaxes(d, -1, -2)
        start += size
    return out if rows else np.swapaxes(out, -1, -2)


# (shape of the weight as stored, split, heads, layout)
CASES = {
    "qkv_equal": ((12, 5), (4, 4, 4), None, "out_in"),
    "gate_up": ((10, 3), (5, 5), None, "out_in"),
    "unequal_split": ((9, 4), (2, 4, 3), None, "out_in"),
    "heads": ((12, 5), None, 4, "out_in"),
    "split_and_heads": ((16, 3), (8, 4, 4), 2, "out_in"),
    "in_out_qkv": ((5, 12), (4, 4, 4), None, "in_out"),
    "in_out_unequal_heads": ((3, 10), (6, 4), 2, "in_out"),
    "batched_heads": ((2, 6, 4), None, 3, "out_in"),
}


SCALED = [(case, "nuclear") for case in sorted(CASES)] + [
    ("unequal_split", "shape"),
    ("in_out_unequal_heads", "shape"),
    ("split_and_heads", "rms"),
    ("qkv_equal", "shape"),
]


@pytest.mark.parametrize(("case", "scale"), SCALED)
def test_direction_is_blockwise_polar(backend, case, scale):
    shape, split, heads, layout = CASES[case]
    g = np.random.default_rng(1).standard_normal(shape)
    rule = PolarGradRule(method="svd", split=split, heads=heads, layout=layout, scale=scale)
    got, _ = polargrad_direction(backend.xp, rule, backend.asarray(g), None)
    want = ref_blockwise(g, split, heads, layout, scale)
    np.testing.assert_allclose(to_f64(backend, got), want, rtol=0, atol=TOL * np.abs(want).max())


@pytest.mark.parametrize("polar_first", [False, True])
def test_momentum_stays_per_parameter(backend, polar_first):
    """Momentum is elementwise on the whole weight; only the map and its scales are per block."""
    split, heads, layout, beta = (6, 3), 3, "out_in", 0.9
    rng = np.random.default_rng(2)
    g1, g2 = rng.standard_normal((2, 9, 4))
    rule = PolarGradRule(
        method="svd", momentum=beta, polar_first=polar_first, split=split, heads=heads
    )
    xp = backend.xp
    buf = backend.asarray(np.zeros((9, 4)))
    _, buf = polargrad_direction(xp, rule, backend.asarray(g1), buf)
    got, buf = polargrad_direction(xp, rule, backend.asarray(g2), buf)
    if polar_first:
        u1 = ref_blockwise(g1, split, heads, layout, "none")
        u2 = ref_blockwise(g2, split, heads, layout, "none")
        m = (1 - beta) * (beta * u1 + u2)
        scaled = ref_blockwise(g2, split, heads, layout, "nuclear")  # s_b(G₂)·U_b(G₂)
        s = np.sum(scaled * u2, axis=-1, keepdims=True) / np.sum(u2 * u2, axis=-1, keepdims=True)
        want = s * m  # per-block ⟨G₂, U₂⟩ (constant over each block's rows) times the average
    else:
        m = (1 - beta) * (beta * g1 + g2)
        want = ref_blockwise(m, split, heads, layout, "nuclear")
    np.testing.assert_allclose(to_f64(backend, buf), m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(to_f64(backend, got), want, rtol=0, atol=TOL * np.abs(want).max())


def test_blocks_change_the_direction():
    """The blocked update is not the whole-matrix one (a test that can fail)."""
    g = np.random.default_rng(3).standard_normal((12, 5))
    whole, _ = polargrad_direction(np, PolarGradRule(method="svd"), g, None)
    blocked, _ = polargrad_direction(np, PolarGradRule(method="svd", split=(4, 4, 4)), g, None)
    assert np.abs(whole - blocked).max() > 0.1


@pytest.mark.parametrize("rows", [True, False])
@pytest.mark.parametrize("sizes", [(3, 3, 3), (2, 4, 3), (1, 1, 7)])
def test_map_blocks_round_trip_and_spread(backend, rows, sizes):
    shape = (2, 9, 5) if rows else (2, 5, 9)
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    xp = backend.xp

    def fn(block):
        total = xp.sum(block, axis=(-2, -1), keepdims=True)
        return block, total

    same, spread = map_blocks(xp, fn, [backend.asarray(x)], sizes, rows)
    np.testing.assert_array_equal(to_f64(backend, same), x)
    want = np.empty((2, 9, 1) if rows else (2, 1, 9))
    start = 0
    for s in sizes:
        if rows:
            want[:, start : start + s, :] = x[:, start : start + s, :].sum(axis=(-2, -1))[
                :, None, None
            ]
        else:
            want[:, :, start : start + s] = x[:, :, start : start + s].sum(axis=(-2, -1))[
                :, None, None
            ]
        start += s
    np.testing.assert_array_equal(to_f64(backend, spread), want)


def test_runs():
    assert runs((4, 4, 4)) == [(0, 4, 3)]
    assert runs((2, 4, 4, 3)) == [(0, 2, 1), (2, 4, 2), (10, 3, 1)]


def test_block_sizes():
    assert block_sizes((12, 5), None, None, -2) is None
    assert block_sizes((12, 5), (4, 8), None, -2) == (4, 8)
    assert block_sizes((12, 5), (4, 8), 2, -2) == (2, 2, 4, 4)
    assert block_sizes((5, 12), None, 3, -1) == (4, 4, 4)


@pytest.mark.parametrize(
    ("shape", "split", "heads", "axis", "match"),
    [
        ((12, 5), (4, 4, 5), None, -2, r"split=\(4, 4, 5\) sums to 13.*\(12, 5\)"),
        ((12, 5), None, 5, -2, r"heads=5.*\(12, 5\).*12 is not divisible"),
        ((12, 5), (6, 6), 4, -2, r"heads=4.*split blocks \[6, 6\]"),
        ((5, 12), (4, 4, 4), None, -2, r"sums to 12.*\(5, 12\) has 5"),
    ],
)
def test_bad_blocks_name_the_shape(shape, split, heads, axis, match):
    with pytest.raises(ValueError, match=match):
        block_sizes(shape, split, heads, axis)


def test_step_time_error_names_the_shape():
    rule = PolarGradRule(split=(4, 4, 4))
    with pytest.raises(ValueError, match=r"\(10, 5\)"):
        polargrad_direction(np, rule, np.ones((10, 5)), None)


@pytest.mark.parametrize("bad", [(), (3, 0), (2.0, 2), "qkv", 4, (True, 2)])
def test_bad_split(bad):
    with pytest.raises(ValueError, match="split"):
        check_split(bad)
    with pytest.raises(ValueError, match="split"):
        PolarGradRule(split=bad)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, (2,)])
def test_bad_heads(bad):
    with pytest.raises(ValueError, match="heads"):
        check_heads(bad)
    with pytest.raises(ValueError, match="heads"):
        PolarGradRule(heads=bad)
