import numpy as np
import pytest

from polarlinalg.testing import random_matrix, reference_polar


@pytest.mark.parametrize("shape", [(8, 5), (5, 8), (2, 3, 6, 6)])
@pytest.mark.parametrize("complex_", [False, True])
def test_prescribed_singular_values(shape, complex_):
    a = random_matrix(shape, cond=1e4, complex=complex_, seed=1)
    assert a.shape == shape and np.iscomplexobj(a) == complex_
    s = np.linalg.svd(a, compute_uv=False)
    k = min(shape[-2:])
    np.testing.assert_allclose(s, np.broadcast_to(np.geomspace(1, 1e-4, k), s.shape), rtol=1e-10)


def test_rank_and_seed():
    a = random_matrix((10, 7), cond=10.0, rank=3, seed=2)
    s = np.linalg.svd(a, compute_uv=False)
    assert np.all(s[3:] < 1e-14) and s[2] == pytest.approx(0.1)
    np.testing.assert_array_equal(a, random_matrix((10, 7), cond=10.0, rank=3, seed=2))
    assert not np.array_equal(a, random_matrix((10, 7), cond=10.0, rank=3, seed=3))


def test_reference_factors():
    a = random_matrix((9, 4), cond=5.0, complex=True, seed=4)
    ref = reference_polar(a)
    np.testing.assert_allclose(ref.u @ ref.h("right"), a, atol=1e-13)
    np.testing.assert_allclose(ref.h("left") @ ref.u, a, atol=1e-13)


@pytest.mark.parametrize(
    "kwargs", [{"shape": (3,)}, {"shape": (3, 3), "cond": 0.5}, {"shape": (3, 3), "rank": 4}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        random_matrix(**kwargs)
