import math

import numpy as np
import pytest

from polarlinalg._elliptic import complete_k, zolotarev_c


def test_complete_integral_against_scipy():
    special = pytest.importorskip("scipy.special")
    for kc in (1.0, 0.9, 0.5, 1e-3, 1e-8, 1e-16, 1e-30):
        # scipy's ellipkm1(p) = K(m = 1 − p), with p = kc²
        assert complete_k(kc) == pytest.approx(special.ellipkm1(kc * kc), rel=1e-14)
    assert complete_k(1.0) == pytest.approx(math.pi / 2, rel=1e-15)


def test_coefficients_against_scipy_where_scipy_is_accurate():
    # scipy.special.ellipj takes m = k'² = 1 − ℓ², accurate while ℓ is not tiny
    special = pytest.importorskip("scipy.special")
    for ell in (0.9, 0.5, 0.1, 1e-2):
        for r in (1, 3, 6):
            m = 1 - ell * ell
            kp = special.ellipk(m)
            ours = zolotarev_c(ell, r)
            for i, c in enumerate(ours, start=1):
                sn, cn, _, _ = special.ellipj(i * kp / (2 * r + 1), m)
                assert c == pytest.approx(ell * ell * (sn / cn) ** 2, rel=1e-10)


def test_coefficients_for_tiny_ell_are_ordered_and_finite():
    # ℓ = 1e-16: the modulus k' rounds to 1; the theta series must stay exact.  The
    # Zolotarev property (equioscillation) is checked through the rational in test_zolo.
    c = zolotarev_c(1e-16, 8)
    assert all(math.isfinite(v) and v > 0 for v in c)
    assert c == sorted(c)
    # the first coefficient behaves like ℓ²·sinh²(K'/(2r+1)) for k' → 1
    kp = complete_k(1e-16)
    assert c[0] == pytest.approx(1e-32 * math.sinh(kp / 17) ** 2, rel=1e-6)


def test_bad_arguments():
    for bad in (0.0, -1.0, 1.5):
        with pytest.raises(ValueError):
            complete_k(bad)
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError):
            zolotarev_c(bad, 2)
    assert np.isfinite(zolotarev_c(0.999, 1)).all()
