"""The cross-backend test harness.

``xp`` is parametrised over every backend polarlinalg knows (numpy,
array_api_strict, torch, torch-cuda, jax, jax-gpu, cupy); one that is not
installed or has no device here is skipped, never failed.  Set
``POLARLINALG_BACKENDS=numpy,torch`` to run a subset.  ``backend`` is the same
parameter as a :class:`polarlinalg.backends.Backend` (conversions from and to
NumPy, dtype look-up).  JAX runs with float64 enabled.
"""

from __future__ import annotations

import pytest
from support import AVAILABLE, backend_params

from polarlinalg.backends import Backend


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> Backend:
    return AVAILABLE[request.param]


@pytest.fixture
def xp(backend: Backend):
    return backend.xp
