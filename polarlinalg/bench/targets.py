"""The issue's performance targets, checked on the rows of one run.

Each check returns records ``{"target", "backend", "dtype", "shape", "value",
"threshold", "met", "judged", "detail"}``; ``met`` is None when the run has no
rows to decide it (a GPU target on a CPU-only machine, a backend not
installed), or when the run is ``--quick``: the matrix targets are stated for
the full run's sizes (the per-call overhead of eager execution dominates 256² and
below, Gram Newton–Schulz's saving grows with the size), so a quick run reports
their value with ``judged`` False, "not judged at quick sizes".  Nothing here is
asserted: the records go to the JSON and the docs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["GPU_BACKENDS", "NOT_JUDGED", "check_targets"]

GPU_BACKENDS = ("torch-cuda", "jax-gpu", "cupy")

NOT_JUDGED = "not judged at quick sizes"
"""What a quick run says of a target stated for the full run's sizes."""


def _record(
    target: str,
    threshold: float,
    value: float | None,
    met: bool | None,
    detail: str,
    backend: str = "",
    dtype: str = "",
    shape: str = "",
) -> dict:
    return {
        "target": target,
        "backend": backend,
        "dtype": dtype,
        "shape": shape,
        "value": value,
        "threshold": threshold,
        "met": met,
        "judged": True,
        "detail": detail,
    }


def _not_judged(record: dict) -> dict:
    """Return the record of a quick run: its value kept, its verdict withheld."""
    if record["value"] is None:  # not measured stays not measured
        return record
    verdict = {True: "would be met", False: "would be missed"}.get(record["met"], "measured")
    detail = f"{verdict} at these sizes; {record['detail']}".rstrip("; ")
    return {**record, "met": None, "judged": False, "detail": detail}


def _find(rows: Iterable[dict], **match: object) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _polynomial_floor(rows: Sequence[dict]) -> list[dict]:
    out = []
    groups = sorted(
        {
            (r["backend"], r["dtype"], r["candidate"])
            for r in rows
            if r["source"] == "polarlinalg" and r["family"] == "polynomial"
        }
    )
    for backend, dtype, method in groups:
        mine = _find(rows, backend=backend, dtype=dtype, candidate=method)
        worst = max(mine, key=lambda r: r["time_over_floor"])
        shapes = ", ".join(f"{r['shape']} {r['time_over_floor']:.2f}" for r in mine)
        out.append(
            _record(
                f"{method} ≤ 1.10× its matmul floor",
                1.10,
                worst["time_over_floor"],
                worst["time_over_floor"] <= 1.10,
                f"worst at {worst['shape']}; all: {shapes}",
                backend,
                dtype,
                worst["shape"],
            )
        )
    return out


def _gram(rows: Sequence[dict]) -> list[dict]:
    out = []
    grams = [
        r
        for r in rows
        if r["source"] == "polarlinalg" and r["candidate"].startswith("gram_newton_schulz")
    ]
    for g in grams:
        if max(g["m"], g["n"]) < 4 * min(g["m"], g["n"]):
            continue
        for base in ("polar_express", "newton_schulz"):
            other = _find(
                rows, candidate=base, backend=g["backend"], dtype=g["dtype"], shape=g["shape"]
            )
            if not other:
                continue
            o = other[0]
            speedup = o["median_s"] / g["median_s"]
            equal = g["forward_error"] <= 1.5 * o["forward_error"]
            out.append(
                _record(
                    f"{g['candidate']} ≥ 1.5× faster than {base} (aspect ≥ 4)",
                    1.5,
                    speedup,
                    speedup >= 1.5 and equal,
                    f"forward error {g['forward_error']:.2e} vs {o['forward_error']:.2e}"
                    + ("" if equal else " (not equal accuracy)"),
                    g["backend"],
                    g["dtype"],
                    g["shape"],
                )
            )
    return out


def _ratio(
    rows: Sequence[dict], ours: str, anchor: str, target: str, threshold: float, **match: object
) -> list[dict]:
    out = []
    for mine in _find(rows, candidate=ours, source="polarlinalg", **match):
        same = {k: mine[k] for k in ("backend", "dtype", "shape")}
        other = _find(rows, candidate=anchor, **same)
        if not other:
            continue
        ratio = mine["median_s"] / other[0]["median_s"]
        out.append(
            _record(
                target,
                threshold,
                ratio,
                ratio <= threshold,
                f"{1e3 * mine['median_s']:.1f} ms vs {1e3 * other[0]['median_s']:.1f} ms",
                mine["backend"],
                mine["dtype"],
                mine["shape"],
            )
        )
    return out


def _gpu(rows: Sequence[dict]) -> list[dict]:
    out = []
    big = "4096x4096"
    for backend in GPU_BACKENDS:
        where = (backend, "bfloat16", big)
        pe = _find(rows, backend=backend, candidate="polar_express", dtype="bfloat16", shape=big)
        target = "polar_express bf16 4096² within 1.15× of its bf16 matmul floor (GPU)"
        if pe:
            value = pe[0]["time_over_floor"]
            out.append(_record(target, 1.15, value, value <= 1.15, "", *where))
        else:
            out.append(_record(target, 1.15, None, None, "not measured", *where))
        where = (backend, "float32", big)
        target = "QDWH float32 4096² ≥ 3× faster than the SVD-based polar (GPU)"
        q = _find(rows, backend=backend, candidate="qdwh", dtype="float32", shape=big)
        s = _find(rows, backend=backend, candidate="svd", dtype="float32", shape=big)
        if q and s:
            speedup = s[0]["median_s"] / q[0]["median_s"]
            out.append(_record(target, 3.0, speedup, speedup >= 3.0, "", *where))
        else:
            out.append(_record(target, 3.0, None, None, "not measured", *where))
    return out


def check_targets(rows: Sequence[dict], *, quick: bool = False) -> list[dict]:
    """Return the target records for ``rows`` (see the module docstring).

    Parameters
    ----------
    rows : sequence of dict
        Matrix rows of one or more runs.
    quick : bool, default False
        The rows come from ``--quick`` (its small sizes): the targets stated for
        the full run are reported with their values but not judged (the GPU
        targets, at 4096², are simply not measured there).
    """
    out = _sized_targets(rows)
    if quick:
        out = [_not_judged(t) for t in out]
    return out + _gpu(rows)


def _sized_targets(rows: Sequence[dict]) -> list[dict]:
    """Return the targets stated for the full run's sizes (on any backend)."""
    out = _polynomial_floor(rows)
    out += _gram(rows)
    out += _ratio(
        rows,
        "qdwh",
        "jax.scipy.linalg.polar (qdwh)",
        "qdwh ≤ 1.0× jax.scipy.linalg.polar (qdwh)",
        1.0,
    )
    out += _ratio(
        rows,
        "qdwh",
        "scipy.linalg.polar",
        "qdwh ≤ 1.5× scipy.linalg.polar at 1024² float64",
        1.5,
        backend="numpy",
        dtype="float64",
        shape="1024x1024",
    )
    return out
