"""Elliptic functions for the Zolotarev coefficients, on the host in float64.

ZOLO-PD needs ``ℓ²·sc²(u; k')`` for the modulus ``k' = √(1 − ℓ²)`` with ``ℓ`` as
small as 1e-16 or below, where ``k'`` rounds to 1: routines parametrised by
``m = k'²`` (``scipy.special.ellipj``) and even the AGM/Landen scheme lose all
accuracy there (``cn`` is the cosine of an angle within 1e-16 of π/2).  Here
everything is written in terms of ``ℓ`` itself:

* ``K(k) = π / (2·AGM(1, √(1 − k²)))`` gives both complete integrals,
  ``K' = K(k')`` from ``AGM(1, ℓ)`` exactly;
* Jacobi's imaginary transformation ``sc(u; k') = −i·sn(iu; ℓ)`` and the theta
  series of ``sn`` with the nome ``q = exp(−πK'/K)`` of the *small* modulus
  ``ℓ`` (``q < 0.25`` for every ``ℓ < 0.99``, ``q ≈ 1e-33`` at ``ℓ = 1e-16``), so
  a handful of terms reach double precision without cancellation.

References
----------
Abramowitz & Stegun, *Handbook of Mathematical Functions*, 16.21 and 16.27;
DLMF §22.2 and §22.6 (imaginary transformation).
"""

from __future__ import annotations

import math

__all__ = ["complete_k", "zolotarev_c"]


def _agm(a: float, b: float) -> float:
    for _ in range(64):
        if abs(a - b) <= 4e-16 * a:
            break
        a, b = (a + b) / 2.0, math.sqrt(a * b)
    return (a + b) / 2.0


def complete_k(kc: float) -> float:
    """Return ``K(k)``, the complete elliptic integral of the first kind, given ``√(1 − k²)``."""
    if not 0.0 < kc <= 1.0:
        raise ValueError(f"complementary modulus must lie in (0, 1]; got {kc!r}")
    return math.pi / (2.0 * _agm(1.0, kc))


def zolotarev_c(ell: float, r: int) -> list[float]:
    """Return ``c_i = ℓ²·sn²(u_i; k')/cn²(u_i; k')``, ``u_i = i·K'/(2r+1)``, ``i = 1 … 2r``.

    These are the coefficients of Zolotarev's best rational approximation of
    type ``(2r+1, 2r)`` to ``sign(x)`` on ``[−1, −ℓ] ∪ [ℓ, 1]`` (Nakatsukasa &
    Freund 2016); they increase with ``i``.

    With ``sn(iu; ℓ) = θ₁(iy)/(√ℓ·θ₄(iy))``, ``y = πu/(2K)``, the imaginary
    transformation gives ``ℓ²·sc²(u; k') = 4ℓ·(S/T)²`` with
    ``S = Σ (−1)ⁿ qⁿ⁽ⁿ⁺¹⁾⁺¹ᐟ⁴ sinh((2n+1)y)`` and
    ``T = 1 + 2 Σ_{n≥1} (−1)ⁿ q^{n²} cosh(2ny)``.
    """
    if not 0.0 < ell < 1.0:
        raise ValueError(f"ell must lie in (0, 1); got {ell!r}")
    k_small = complete_k(math.sqrt((1.0 - ell) * (1.0 + ell)))  # K(ℓ)
    k_big = complete_k(ell)  # K' = K(k')
    t = math.pi * k_big / k_small  # q = exp(−t)
    out = []
    for i in range(1, 2 * r + 1):
        y = t * i / (2.0 * (2 * r + 1))
        s = 0.0
        tt = 1.0
        for n in range(12):
            e = -t * (n + 0.5) ** 2
            term = (math.exp(e + (2 * n + 1) * y) - math.exp(e - (2 * n + 1) * y)) / 2.0
            s += -term if n % 2 else term
            if n >= 1:
                big = math.exp(-t * n * n + 2 * n * y) + math.exp(-t * n * n - 2 * n * y)
                tt += -big if n % 2 else big
            if abs(term) <= 1e-18 * abs(s) and n >= 2:
                break
        out.append(4.0 * ell * (s / tt) ** 2)
    return out
