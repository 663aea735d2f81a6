"""The run's ``results.json``: parts written by each notebook, merged deterministically.

Each notebook saves its part with :func:`save_part`; :func:`merge_parts` combines them
(later parts deep-merge into earlier ones) and :func:`dumps` writes stable JSON: sorted
keys, floats rounded to 12 significant digits so that the last-bit noise of parallel sums
cannot change the bytes of a re-run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SCHEMA_VERSION", "save_part", "merge_parts", "dumps", "clean"]

SCHEMA_VERSION = 1


def clean(obj: Any) -> Any:
    """JSON-ready copy: numpy scalars to Python, NaN/inf to None, floats to 12 significant digits."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        if not math.isfinite(x):
            return None
        return float(f"{x:.12g}")
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def save_part(results_dir: str | Path, name: str, part: dict[str, Any]) -> Path | None:
    """Write one notebook's part of the results as ``<results_dir>/<name>.json``.

    With an empty ``results_dir`` (a notebook run on its own) nothing is written.
    """
    if not results_dir:
        return None
    path = Path(results_dir)
    path.mkdir(parents=True, exist_ok=True)
    out = path / f"{name}.json"
    out.write_text(dumps(part))
    return out


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if k in out and isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = _deep_merge(out[k], v)
        elif k == "warnings" and isinstance(out.get(k), list):
            out[k] = out[k] + [w for w in v if w not in out[k]]
        else:
            out[k] = v
    return out


def merge_parts(results_dir: str | Path) -> dict[str, Any]:
    """Merge every ``*.json`` part in ``results_dir`` in name order."""
    merged: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "warnings": []}
    for part in sorted(Path(results_dir).glob("*.json")):
        merged = _deep_merge(merged, json.loads(part.read_text()))
    return merged


def dumps(obj: Any) -> str:
    return json.dumps(clean(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
