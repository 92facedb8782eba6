"""The JSON layout of a run, and its check.

Top level::

    {"schema": "polarlinalg-bench/1",
     "metadata": {...machine, versions, date, loadavg_start, loadavg_end, config...},
     "rows": [...],               # the matrix benchmark, one per (case, candidate)
     "skipped": [...],            # candidates that could not run a case, with the reason
     "optimizer_steps": [...],    # one record per framework (PyTorch, JAX)
     "targets": [...]}            # the issue's targets checked on these rows

A target record's ``met`` is None when the run could not decide it; its
``judged`` (absent in files written before it existed: True) is False when a
``--quick`` run withheld the verdict of a target stated for the full run.

:func:`check` raises ValueError naming the first key that is missing or of the
wrong type.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

__all__ = ["ROW_KEYS", "SCHEMA", "check"]

SCHEMA = "polarlinalg-bench/1"

_NUM = (numbers.Real,)
_OPT_NUM = (numbers.Real, type(None))

ROW_KEYS: dict[str, tuple[type, ...]] = {
    "backend": (str,),
    "device": (str,),
    "dtype": (str,),
    "shape": (str,),
    "m": (int,),
    "n": (int,),
    "batch": (int,),
    "candidate": (str,),
    "source": (str,),
    "family": (str,),
    "jitted": (bool,),
    "median_s": _NUM,
    "q1_s": _NUM,
    "q3_s": _NUM,
    "min_s": _NUM,
    "first_call_s": _NUM,
    "compile_s": _OPT_NUM,
    "repeats": (int,),
    "orthogonality": _OPT_NUM,
    "forward_error": _NUM,
    "floor_s": _NUM,
    "floor_flops": _NUM,
    "floor_ops": (str,),
    "time_over_floor": _NUM,
    "time_over_floor_min": _NUM,
    "gflops": _NUM,
}
"""Every matrix row has these keys, with values of these types (``orthogonality`` is None for
the ``inv_root`` rows, whose ``forward_error`` is the relative error of the root)."""

_STEP_ROW_KEYS: dict[str, tuple[type, ...]] = {
    "candidate": (str,),
    "median_s": _NUM,
    "q1_s": _NUM,
    "q3_s": _NUM,
    "min_s": _NUM,
    "ratio_to_reference": _NUM,
    "floor_s": _NUM,
    "floor_flops": _NUM,
    "time_over_floor": _NUM,
    "gflops": _NUM,
    "update_difference": _OPT_NUM,
}

_METADATA_KEYS: dict[str, tuple[type, ...]] = {
    "cpu": (str,),
    "cores": (int, type(None)),
    "date": (str,),
    "versions": (dict,),
    "loadavg_start": (list, type(None)),
    "loadavg_end": (list, type(None)),
    "config": (dict,),
}

_TARGET_KEYS: dict[str, tuple[type, ...]] = {
    "target": (str,),
    "threshold": _NUM,
    "value": _OPT_NUM,
    "met": (bool, type(None)),
    "detail": (str,),
}


def _check_keys(record: Any, keys: Mapping[str, tuple[type, ...]], where: str) -> None:
    if not isinstance(record, Mapping):
        raise ValueError(f"{where} must be an object; got {type(record).__name__}")
    for key, types in keys.items():
        if key not in record:
            raise ValueError(f"{where} lacks the key {key!r}")
        value = record[key]
        if isinstance(value, bool) and bool not in types:
            raise ValueError(f"{where}[{key!r}] must not be a boolean")
        if not isinstance(value, types):
            names = "/".join(t.__name__ for t in types)
            raise ValueError(f"{where}[{key!r}] must be {names}; got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}[{key!r}] is not finite: {value!r}")


def check(result: Any) -> None:
    """Raise ValueError unless ``result`` follows the layout above."""
    _check_keys(
        result,
        {
            "schema": (str,),
            "metadata": (dict,),
            "rows": (list,),
            "skipped": (list,),
            "optimizer_steps": (list,),
            "targets": (list,),
        },
        "result",
    )
    if result["schema"] != SCHEMA:
        raise ValueError(f"result['schema'] must be {SCHEMA!r}; got {result['schema']!r}")
    _check_keys(result["metadata"], _METADATA_KEYS, "metadata")
    for i, row in enumerate(result["rows"]):
        _check_keys(row, ROW_KEYS, f"rows[{i}]")
    for i, record in enumerate(result["optimizer_steps"]):
        _check_keys(record, {"backend": (str,), "layers": (int,), "rows": (list,)}, "step")
        for j, row in enumerate(record["rows"]):
            _check_keys(row, _STEP_ROW_KEYS, f"optimizer_steps[{i}].rows[{j}]")
    for i, target in enumerate(result["targets"]):
        _check_keys(target, _TARGET_KEYS, f"targets[{i}]")
        if not isinstance(target.get("judged", True), bool):  # absent before quick runs had it
            raise ValueError(f"targets[{i}]['judged'] must be bool; got {target['judged']!r}")
