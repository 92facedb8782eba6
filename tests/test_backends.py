import numpy as np
import pytest

from polarlinalg.backends import BACKEND_NAMES, available_backends


def test_round_trip(backend):
    a = np.arange(6.0).reshape(2, 3)
    for dtype in ("float32", "float64", "bfloat16"):
        if backend.dtype(dtype) is None:
            continue
        x = backend.asarray(a, dtype)
        assert x.dtype == backend.dtype(dtype)
        back = backend.to_numpy(x)
        assert back.dtype in (np.float32, np.float64)
        np.testing.assert_array_equal(back, a)
    x = backend.asarray(np.ones(()), "float32")
    assert x.shape == ()
    backend.synchronize()
    assert backend.device_name


def test_selection_by_name_and_environment(monkeypatch):
    assert [b.name for b in available_backends("numpy")] == ["numpy"]
    assert [b.name for b in available_backends(["numpy"])] == ["numpy"]
    monkeypatch.setenv("POLARLINALG_BACKENDS", "numpy")
    assert [b.name for b in available_backends()] == ["numpy"]
    monkeypatch.delenv("POLARLINALG_BACKENDS")
    names = [b.name for b in available_backends()]
    assert names[0] == "numpy" and names == sorted(names, key=BACKEND_NAMES.index)


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match=r"unknown backend.*tensorflow.*choose from"):
        available_backends("numpy,tensorflow")


def test_missing_dtype_is_an_error():
    (b,) = available_backends("numpy")
    assert b.dtype("bfloat16") is None
    with pytest.raises(ValueError, match="no dtype 'bfloat16'"):
        b.asarray(np.ones(2), "bfloat16")
