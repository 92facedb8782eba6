"""PolarGrad's learning-rate scale on the matrix problems, from the logged nuclear norms.

PolarGrad's step on a matrix is ``γ‖∇f‖_*·U`` (β = 0; with momentum the scale is
``⟨M, U⟩ = ‖M‖_*``, close to the gradient's once the momentum has settled), Muon's is
``η·U`` (the paper's Muon: no shape factor).  From the result JSON of
``polarlinalg experiment PROBLEM`` this prints, per PolarGrad arm, the gradient's
nuclear norm at the first logged step and its median over the run (all seeds and
parameters), the step sizes ``γ·‖∇f‖_*`` they give, and their ratio to Muon's
``η``::

    python benchmarks/matrix_lr_scale.py results/quadratic.json results/completion.json
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from polarlinalg.experiments.report import read_json


def rows(path: str) -> list[dict]:
    traces, meta = read_json(path)
    arms = meta["arms"]
    muon = [n for n, a in arms.items() if n == "muon-ns"]
    if not muon:
        raise SystemExit(f"{path}: no muon-ns arm to compare with")
    eta = arms[muon[0]]["lr"]
    out = []
    for name, arm in arms.items():
        if arm["kind"] != "polargrad" or arm["options"].get("scale") == "none" or arm["decay"]:
            continue
        runs = [t for t in traces if t.arm == name and not t.diverged]
        if not runs:
            continue
        keys = [k for k in runs[0].columns if k.startswith("grad_nuc_")]
        first = [float(t.columns[k][0]) for t in runs for k in keys]
        every = np.concatenate([t.columns[k] for t in runs for k in keys])
        every = every[np.isfinite(every)]
        gamma = arm["lr"]
        out.append(
            {
                "problem": meta["problem"],
                "arm": name,
                "gamma": gamma,
                "nuc_first": float(np.median(first)),
                "nuc_median": float(np.median(every)),
                "eta_muon": eta,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", help="result JSONs of polarlinalg experiment")
    args = parser.parse_args()
    print(
        "| problem | arm | γ | ‖∇f‖_* first step | median ‖∇f‖_* | γ‖∇f‖_* first / η_muon "
        "| γ‖∇f‖_* median / η_muon | γ giving Muon's step at the first step |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for path in args.json:
        for r in rows(path):
            g, e = r["gamma"], r["eta_muon"]
            print(
                f"| {r['problem']} | `{r['arm']}` | {g:.3g} | {r['nuc_first']:.3g} | "
                f"{r['nuc_median']:.3g} | {g * r['nuc_first'] / e:.3g} | "
                f"{g * r['nuc_median'] / e:.3g} | "
                f"{(e / r['nuc_first']) if r['nuc_first'] > 0 else math.nan:.3g} |"
            )


if __name__ == "__main__":
    main()
