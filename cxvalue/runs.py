"""Dated runs kept side by side, their trend, and what moved between two of them.

``cxvalue run --runs-dir runs/`` writes each run to ``runs/<UTC time of the run>/`` (the
same files as ``--out``); the report's scorecard reads the earlier runs found there for
its trend. ``cxvalue compare RUN_A RUN_B`` prints what moved between two run folders.
Nothing here changes ``results.json``: the same data and parameters give the same file
whatever ran before.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxvalue.exceptions import InputError

__all__ = ["run_folder_name", "load_run", "earlier_runs", "compare", "headline_trend"]

HEADLINE = [("npv", "NPV"), ("npv_p10", "NPV, P10"), ("npv_p90", "NPV, P90"), ("roi", "ROI"),
            ("payback_months", "Payback, months"), ("p_npv_positive", "Chance NPV > 0")]


def run_folder_name(started: dt.datetime) -> str:
    """``2026-11-24T072233Z``: sorts in time order, safe on every file system."""
    return started.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")


def load_run(folder: str | Path) -> dict[str, Any]:
    """A run folder's ``results.json`` plus ``run``: id, start time, as-of date and a short label."""
    folder = Path(folder)
    res_file, man_file = folder / "results.json", folder / "manifest.json"
    if not res_file.is_file() or not man_file.is_file():
        raise InputError(f"{folder}: not a cxvalue run folder (needs results.json and manifest.json)")
    results = json.loads(res_file.read_text())
    manifest = json.loads(man_file.read_text())
    started = manifest.get("started_at", "")
    label = started[:16].replace("T", " ") if started else folder.name
    results["run"] = {"id": manifest.get("run_id"), "started_at": started, "as_of": manifest.get("as_of"),
                      "folder": str(folder), "label": f"{label} (data to {manifest.get('as_of')})"}
    return results


def earlier_runs(runs_dir: str | Path | None) -> list[dict[str, Any]]:
    """Every complete run in ``runs_dir`` (oldest first); hidden and failed folders are skipped."""
    if not runs_dir:
        return []
    folder = Path(runs_dir)
    if not folder.is_dir():
        return []
    runs = []
    for sub in sorted(folder.iterdir()):
        if sub.name.startswith(".") or sub.name.endswith(".failed") or not sub.is_dir():
            continue
        try:
            runs.append(load_run(sub))
        except (InputError, json.JSONDecodeError):
            continue
    return sorted(runs, key=lambda r: r["run"]["started_at"] or "")


def headline_trend(runs: list[dict[str, Any]], current: dict[str, Any] | None = None) -> pd.DataFrame:
    """NPV with its P10-P90, ROI and payback of each run: one row per run, oldest first;
    ``current`` (this run's ``business_case`` block) is added last as "this run"."""
    rows = []
    if current is not None:
        runs = [*runs, {"business_case": current, "run": {"label": "this run"}}]
    for r in runs:
        bc = r.get("business_case") or {}
        rows.append({"run": r.get("run", {}).get("label", ""), **{k: bc.get(k) for k, _ in HEADLINE}})
    return pd.DataFrame(rows, columns=["run", *[k for k, _ in HEADLINE]])


def _interval_reading(a: dict | None, b: dict | None, value: str, ci: str) -> tuple[float | None, str]:
    if not a or not b or a.get(value) is None or b.get(value) is None:
        return None, "not comparable"
    diff = float(b[value]) - float(a[value])
    lo_a, hi_a = a.get(ci) or [None, None]
    lo_b, hi_b = b.get(ci) or [None, None]
    if None in (lo_a, hi_a, lo_b, hi_b):
        return diff, "up" if diff > 0 else "down" if diff < 0 else "no change"
    if lo_a <= b[value] <= hi_a or lo_b <= a[value] <= hi_b:
        return diff, "within the intervals"
    return diff, "up" if diff > 0 else "down"


def compare(run_a: str | Path | dict, run_b: str | Path | dict) -> pd.DataFrame:
    """What moved from run A to run B: headline figures, KPIs (judged against their noise),
    the linkage effects (judged against their 95% intervals) and the CX maturity's overall level
    (judged against the spread of the teams' changes, :func:`cxvalue.maturity.change_between`).

    Each run is a folder or what :func:`load_run` returned for it. Returns one row per figure:
    ``section``, ``figure``, ``a``, ``b``, ``change``, ``reading``.
    """
    from cxvalue.scorecard import KPIS, kpi_change  # here: reading earlier runs needs no Ibis

    a, b = (r if isinstance(r, dict) else load_run(r) for r in (run_a, run_b))
    rows = []
    bc_a, bc_b = a.get("business_case") or {}, b.get("business_case") or {}
    for key, label in HEADLINE:
        va, vb = bc_a.get(key), bc_b.get(key)
        diff = None if va is None or vb is None else float(vb) - float(va)
        reading = "not comparable" if diff is None else ("no change" if np.isclose(diff, 0, atol=1e-9)
                                                         else "up" if diff > 0 else "down")
        rows.append(("Business case", label, va, vb, diff, reading))
    ka, kb = a.get("kpis") or {}, b.get("kpis") or {}
    for k in KPIS:
        if k.name not in ka and k.name not in kb:
            continue
        diff, reading = kpi_change(ka.get(k.name), kb.get(k.name))
        rows.append(("KPI", k.label, (ka.get(k.name) or {}).get("actual"), (kb.get(k.name) or {}).get("actual"),
                     diff, reading))
    la, lb = a.get("linkage") or {}, b.get("linkage") or {}
    for block, value, ci, label in (("revenue", "ratio", "ratio_ci", "Revenue ratio"),
                                    ("cost_to_serve", "ratio", "ratio_ci", "Cost-to-serve ratio"),
                                    ("churn", "hazard_ratio", "hazard_ratio_ci", "Churn hazard ratio")):
        for g in (lb.get(block) or {}):
            if g == b.get("reference_group"):
                continue
            ga, gb = (la.get(block) or {}).get(g), (lb.get(block) or {}).get(g)
            diff, reading = _interval_reading(ga, gb, value, ci)
            rows.append(("Linkage", f"{label}, {g}", (ga or {}).get(value), (gb or {}).get(value), diff, reading))
    ma, mb = a.get("maturity") or {}, b.get("maturity") or {}
    if ma.get("overall_level") is not None or mb.get("overall_level") is not None:
        from cxvalue.maturity import change_between

        diff, reading = change_between(ma, mb)
        rows.append(("CX maturity", "Overall level (1-5)", ma.get("overall_level"), mb.get("overall_level"), diff,
                     reading))
    return pd.DataFrame(rows, columns=["section", "figure", "a", "b", "change", "reading"])
