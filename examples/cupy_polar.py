"""Polar factors and a PolarGrad step on the GPU with CuPy (skipped without a CUDA device).

Everything stays on the device in the arrays' dtype: ``polar`` by Polar
Express in float32, the diagnostics, and ``polarlinalg.optim.PolarGrad`` on a
least-squares problem.  Without CuPy or a CUDA device the script says so and
exits with status 0.

Run: ``python examples/cupy_polar.py``.
"""

from __future__ import annotations

import sys


def _device() -> str | None:
    """Return why CuPy cannot run here, or None when a CUDA device is available."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'polarlinalg[cuda12]')"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        return f"CuPy finds no CUDA device ({type(exc).__name__}: {exc})"
    return None if count > 0 else "CuPy finds no CUDA device"


def main() -> None:
    """Run the GPU example, or print why it is skipped."""
    why = _device()
    if why is not None:
        print(f"skipped: no CUDA device: {why}")
        return
    import cupy as cp

    import polarlinalg as pl
    from polarlinalg.optim import PolarGrad

    rng = cp.random.default_rng(0)
    a = rng.standard_normal((1024, 256), dtype=cp.float32)
    u, h = pl.polar(a, method="polar_express", steps=8)
    print("polar:", type(u).__module__, u.dtype, u.shape)
    print(f"orthogonality {float(pl.diagnostics.orthogonality_error(u)):.1e}")
    print(f"backward error {float(pl.diagnostics.backward_error(a, u, h)):.1e}")

    target = rng.standard_normal((1024, 64), dtype=cp.float32)
    x = {"X": cp.zeros((256, 64), dtype=cp.float32)}
    sigma_max = float(cp.linalg.svd(a, compute_uv=False)[0])
    lr = 1.0 / (sigma_max**2 * 64)  # γ = 1/(L·r), L = ‖A‖₂², r = 64
    opt = PolarGrad(lr=lr, method="qdwh")
    state = opt.init(x)
    for step in range(101):
        r = a @ x["X"] - target
        if step % 25 == 0:
            print(f"step {step:3d}  f {0.5 * float(cp.sum(r * r)):.4e}")
        x, state = opt.step(x, {"X": a.T @ r}, state)


if __name__ == "__main__":
    main()
    sys.exit(0)
