import subprocess
import sys


def test_import_pulls_in_no_framework():
    code = (
        "import sys, polarlinalg, polarlinalg.diagnostics, polarlinalg.testing, "
        "polarlinalg.backends, polarlinalg.validate, polarlinalg.cli, polarlinalg.optim\n"
        "frameworks = ('torch', 'jax', 'cupy', 'array_api_strict', 'scipy')\n"
        "bad = [m for m in frameworks if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names():
    import numpy as np

    import polarlinalg as pl

    for name in (
        "polar",
        "orthogonalize",
        "PolarResult",
        "METHODS",
        "COEFFICIENTS",
        "polar_express_coefficients",
        "diagnostics",
        "__version__",
    ):
        assert hasattr(pl, name)
    assert set(pl.METHODS) >= {"svd", "newton_schulz", "polar_express", "gram_newton_schulz"}
    result = pl.polar(np.eye(2))
    assert isinstance(result, pl.PolarResult)
    u, h = result
    assert result.u is u and result.h is h
