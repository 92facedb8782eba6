from __future__ import annotations

import pytest

from polarlinalg._distributed.ownership import assign_owners, polar_cost


def test_cost_is_the_gram_product_count():
    assert polar_cost((768, 3072)) == 768 * 3072 * 768
    assert polar_cost((4, 10, 6)) == 4 * 10 * 6 * 6


def test_balanced_and_same_shapes_dealt_out():
    shapes = [(64, 64)] * 8 + [(256, 64)] * 2 + [(8, 8)]
    owners = assign_owners(shapes, 4)
    loads = [0] * 4
    for s, o in zip(shapes, owners, strict=True):
        loads[o] += polar_cost(s)
    # the two large matrices cost four small ones each: a perfect balance exists and is found
    assert max(loads) - min(loads) <= polar_cost((8, 8))
    same = [owners[i] for i in range(8)]
    assert sorted(same.count(r) for r in range(4)) == [0, 0, 4, 4]  # batches of 4 equal shapes
    assert assign_owners(shapes, 4) == owners  # deterministic: every rank agrees


def test_one_rank_owns_everything_and_bad_input():
    assert assign_owners([(3, 2), (2, 3)], 1) == [0, 0]
    assert assign_owners([], 3) == []
    with pytest.raises(ValueError, match="world_size"):
        assign_owners([(3, 2)], 0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        polar_cost((3,))


def test_row_bounds_follow_torch_chunk():
    torch = pytest.importorskip("torch")
    from polarlinalg._distributed.torch_comm import row_bounds

    for rows in (0, 1, 3, 7, 8, 9):
        for world in (1, 2, 4):
            chunks = torch.arange(rows).chunk(world) if rows else ()
            sizes = [len(c) for c in chunks] + [0] * (world - len(chunks))
            assert [hi - lo for lo, hi in row_bounds(rows, world)] == sizes
