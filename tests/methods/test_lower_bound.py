"""The eager estimates of ‖X₀‖₂ and σ_min used by QDWH and ZOLO-PD."""

import numpy as np
from support import need_dtype, to_f64

from polarlinalg._methods._lower_bound import estimate_bounds
from polarlinalg._methods._rational import scale_to_unit_norm
from polarlinalg.testing import random_matrix


def test_estimates_bracket_the_truth(backend):
    dtype = "float64" if backend.dtype("float64") is not None else "float32"
    for shape, cond in [((60, 60), 1.0), ((60, 60), 1e3), ((90, 30), 1e6), ((2, 40, 40), 10.0)]:
        x0 = scale_to_unit_norm(
            backend.xp, backend.asarray(random_matrix(shape, cond=cond, seed=1), dtype)
        )
        bounds = estimate_bounds(backend.xp, x0)
        assert bounds is not None
        s = np.linalg.svd(to_f64(backend, x0) / to_f64(backend, bounds.beta), compute_uv=False)
        assert s[..., 0].max() <= 1.0 + 1e-12  # rescaled to at most 1 ...
        assert s[..., 0].min() >= 0.8  # ... and close to it
        assert bounds.lower <= s[..., -1].min()  # a lower bound ...
        assert bounds.lower >= s[..., -1].min() / 3  # ... within a small factor


def test_singular_input_gives_no_estimate(backend):
    need_dtype(backend, "float64")
    a = np.zeros((6, 4))
    a[:, 0] = 1.0
    assert estimate_bounds(backend.xp, backend.asarray(a, "float64")) is None
