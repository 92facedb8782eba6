"""The functional optimizer on NumPy: multi-output least squares with PolarGrad and Muon.

``f(X, b) = ½‖A X + 1 bᵀ − B‖²_F``.  PolarGrad with the nuclear scale takes the
step ``γ ‖G‖_* U`` with ``U`` the exact polar factor of the gradient (QDWH);
with ``γ = 1/(L·r)``, ``L = ‖A‖₂²`` and ``r`` the rank of ``X``, it converges
like gradient descent on this smooth convex problem.  Muon's step ``γ U`` has
a fixed size, so with a constant rate it stalls at a level set by the rate.
The bias ``b`` (1-D) goes to AdamW in both.  ``step`` never modifies its
inputs: parameters and state are new arrays each step.

Run: ``python examples/numpy_optim.py`` (about a second).
"""

from __future__ import annotations

import numpy as np

from polarlinalg.optim import Muon, PolarGrad

M, N, K = 200, 40, 16


def main() -> None:
    """Run both optimizers and print ``f − f*`` every 100 steps."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, N))
    b = rng.standard_normal((M, K)) + 3.0

    def loss_and_grads(p: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        r = a @ p["X"] + p["b"] - b
        return 0.5 * float(np.sum(r**2)), {"X": a.T @ r, "b": r.sum(axis=0)}

    ab = np.hstack([a, np.ones((M, 1))])
    f_star = 0.5 * float(np.sum((ab @ np.linalg.lstsq(ab, b, rcond=None)[0] - b) ** 2))
    lr = 1.0 / (np.linalg.norm(a, 2) ** 2 * K)
    optimizers = {
        "PolarGrad (nuclear scale)": PolarGrad(lr=lr, method="qdwh", adamw_lr=0.1),
        "Muon (lr=0.03)": Muon(lr=0.03, weight_decay=0.0, adamw_lr=0.1),
    }
    gaps = {}
    for name, opt in optimizers.items():
        params = {"X": np.zeros((N, K)), "b": np.zeros(K)}
        state = opt.init(params)
        history = []
        for _ in range(401):
            f, grads = loss_and_grads(params)
            history.append(f - f_star)
            params, state = opt.step(params, grads, state)
        gaps[name] = history
        print(f"{name:26s}", "  ".join(f"{history[t]:.1e}" for t in range(0, 401, 100)))
    polargrad = gaps["PolarGrad (nuclear scale)"]
    if not polargrad[-1] < 1e-3 * polargrad[0]:
        raise SystemExit("PolarGrad did not converge: something is wrong")


if __name__ == "__main__":
    main()
