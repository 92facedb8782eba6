r"""PolarGrad's learning-rate scale against Muon's, measured from the runs' logs.

PolarGradM's step on a hidden matrix is ``γ‖M‖_*·U`` and Muon's is
``η·s·U`` with the shape factor ``s = √max(1, fan_out/fan_in)`` (both with the
same ``U`` up to the polar method, both times the same schedule factor), so the
two take steps of equal size when ``γ‖M‖_* = η·s``.  Since ``‖M‖_*`` is set by
the gradients, not by the user, a PolarGrad rate has no natural scale of its
own; this module reports, per arm, the measured ``γ·median‖M‖_*`` (the median
over the logged steps of ``nuc_m_hidden``, itself the median over the hidden
matrices of the momentum's nuclear norm after the step) beside Muon's
``η·median(s)`` from the same results, and the rate ``η·median(s)/median‖M‖_*``
that would make the two steps equal.  It is a measurement on these runs, not
a law: ``‖M‖_*`` drifts during training (the table gives its 10th and 90th
percentiles over the steps).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["hidden_shape_scales", "lr_scale_markdown", "lr_scale_rows"]

POLARGRAD_HIDDEN_ARMS = ("polargradm_qdwh", "polargradm_polar_express")
MUON_ARM = "muon"


def hidden_shape_scales(preset: Any) -> list[float]:
    """Return Muon's shape factor ``√max(1, out/in)`` of every hidden matrix of ``preset``'s model.

    The hidden matrices of the model are ``(3d, d)`` (fused QKV), ``(d, d)``,
    ``(4d, d)`` and ``(d, 4d)`` per layer, ``out × in``.
    """
    d = preset["d_model"] if isinstance(preset, dict) else preset.d_model
    layers = preset["n_layer"] if isinstance(preset, dict) else preset.n_layer
    shapes = [(3 * d, d), (d, d), (4 * d, d), (d, 4 * d)] * layers
    return [math.sqrt(max(1.0, out / fan_in)) for out, fan_in in shapes]


def _nuclear_norms(run: Any) -> list[float]:
    return [
        row["nuc_m_hidden"]
        for row in run.log
        if "nuc_m_hidden" in row and math.isfinite(row["nuc_m_hidden"])
    ]


def lr_scale_rows(results: Sequence[Any], shape_scales: Sequence[float]) -> list[dict[str, Any]]:
    """One row per PolarGradM-hidden arm present in ``results`` (runs of Muon needed too).

    Each row holds ``gamma`` (the arm's rate), the median over its seeds of the
    median, 10th and 90th percentile over logged steps of ``‖M‖_*``, the
    effective step ``gamma·median‖M‖_*``, Muon's ``eta·median(s)``, their
    ratio, and ``gamma_equal = eta·median(s)/median‖M‖_*``.  Empty when no
    Muon run or no such arm ran.
    """
    muon = [r for r in results if r.arm == MUON_ARM and not r.diverged]
    if not muon:
        return []
    eta = muon[0].lrs["muon"]
    muon_step = eta * statistics.median(shape_scales)
    rows = []
    for arm in POLARGRAD_HIDDEN_ARMS:
        runs = [r for r in results if r.arm == arm and not r.diverged and _nuclear_norms(r)]
        if not runs:
            continue
        per_run = [np.asarray(_nuclear_norms(r)) for r in runs]
        median = float(np.median([np.median(v) for v in per_run]))
        gamma = runs[0].lrs["polargrad_hidden"]
        rows.append(
            {
                "arm": arm,
                "seeds": len(runs),
                "gamma": gamma,
                "nuc_median": median,
                "nuc_p10": float(np.median([np.percentile(v, 10) for v in per_run])),
                "nuc_p90": float(np.median([np.percentile(v, 90) for v in per_run])),
                "polargrad_step": gamma * median,
                "muon_lr": eta,
                "muon_step": muon_step,
                "ratio": gamma * median / muon_step,
                "gamma_equal": muon_step / median,
            }
        )
    return rows


def lr_scale_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Return the rows of :func:`lr_scale_rows` as a markdown table (empty for none)."""
    if not rows:
        return ""
    lines = [
        "",
        "PolarGrad's rate against Muon's (median over steps and seeds of the hidden matrices' "
        "momentum nuclear norm ‖M‖_*; Muon's step η·median √max(1, out/in)):",
        "",
        "| arm | γ | ‖M‖_* median (p10–p90) | γ·‖M‖_* | Muon η·s | ratio | γ giving Muon's step |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['arm']}` | {row['gamma']:.3g} | {row['nuc_median']:.3g} "
            f"({row['nuc_p10']:.3g}–{row['nuc_p90']:.3g}) | {row['polargrad_step']:.3g} | "
            f"{row['muon_step']:.3g} | {row['ratio']:.3g} | {row['gamma_equal']:.3g} |"
        )
    return "\n".join(lines) + "\n"
