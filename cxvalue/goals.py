"""Goals with dates: each KPI's path to its goal, and whether today's value is on it.

A goal in ``targets.<kpi>`` is a plain number (the scorecard's status is against it, no path)
or a goal with a date (:func:`cxvalue.config.goal_value` reads both)::

    targets:
      nps: {value: 10, by: 2027-12-31}                              # from a year before as_of
      csat: {value: 0.60, by: 2027-12-31, from: 2025-01-01, start: 0.52}

The **path** runs in a straight line from ``start`` on day ``from`` to ``value`` on day ``by``:
``path(t) = start + (value - start) * (t - from) / (by - from)`` for ``from <= t <= by``, ``start``
before and ``value`` after. ``from`` defaults to the first day of the scorecard's period
(``as_of`` + 1 day - 12 months); ``start`` defaults to the KPI as the scorecard measures it on
``from`` (the 12 months to that day, from the same data), so a re-run on the same data gives the
same path. The **milestones** are the path's values at every quarter end from ``from`` to ``by``
(and on ``by``): the quarterly and yearly goals the multi-year goal breaks into.

Today's reading (``as_of``), like the scorecard's status: *on the path* when the KPI meets the
path's value today (for cost to serve: at or below), *on the path within the noise* when it
misses by less than its margin of error (95%), else *behind the path*; *before the path starts*
when ``as_of`` is before ``from``; after ``by`` the path's value is the goal itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pandas as pd

from cxvalue.scorecard import KPIS, Scorecard
from cxvalue.skipping import require, skippable

__all__ = ["path_value", "milestones", "path_status", "GoalPaths"]

_KPI = {k.name: k for k in KPIS}
NO_DATED_GOAL = ("Goals over time: no KPI goal has a date, so there is no path to show. Give one as "
                 "targets.nps: {value: 10, by: 2027-12-31} (optionally from: and start:) to track progress towards it.")


def _date(x: Any) -> dt.date:
    return x if isinstance(x, dt.date) else dt.date.fromisoformat(str(x)[:10])


def path_value(start: float, value: float, start_date: Any, by: Any, on: Any) -> float:
    """The path's value on day ``on``: a straight line from ``start`` on ``start_date`` to
    ``value`` on ``by`` (days counted exactly), flat before and after."""
    a, b, t = _date(start_date), _date(by), _date(on)
    share = min(max((t - a).days / (b - a).days, 0.0), 1.0)
    return float(start + (value - start) * share)


def milestones(start: float, value: float, start_date: Any, by: Any) -> list[dict[str, Any]]:
    """The path's value at every quarter end after ``start_date`` up to ``by``, and on ``by``:
    ``[{"date": "YYYY-MM-DD", "value": v, "year_end": bool}]``."""
    a, b = _date(start_date), _date(by)
    ends = pd.date_range(a, b, freq="QE").date
    days = [d for d in ends if d > a] + ([b] if b not in ends else [])
    return [{"date": d.isoformat(), "value": path_value(start, value, a, b, d), "year_end": d.month == 12 and d.day == 31}
            for d in days]


def path_status(actual: float, expected: float, margin_of_error: float | None, higher_is_better: bool = True) -> str:
    """Today's reading against the path's value today (module docstring)."""
    short = (expected - actual) if higher_is_better else (actual - expected)  # > 0: short of the path
    if short <= 1e-12:
        return "on the path"
    if margin_of_error is not None and short <= margin_of_error:
        return "on the path within the noise"
    return "behind the path"


class GoalPaths:
    """The path to each dated goal and today's place on it; ``fit(data, card) -> self``.

    Parameters
    ----------
    params : run parameters (``targets.*`` as checked by :mod:`cxvalue.config`).
    earlier : ``results.json`` dicts of earlier runs, oldest first (:func:`cxvalue.runs.earlier_runs`),
        for the trend against the path (the report only; ``results()`` never depends on them).

    Fitted: ``goals_`` (KPI name -> the goal, its path and today's reading), ``as_of_`` (the
    day the path is read), ``skipped_``, ``warnings_``.
    """

    label = "Goals over time"

    def __init__(self, params: dict[str, Any], earlier: list[dict] | None = None):
        self.params = params
        self.earlier = list(earlier or [])

    @skippable
    def fit(self, data, card: Scorecard) -> "GoalPaths":
        """Measure each dated goal's start where it is not given and read today against the path.

        ``data``: the checked data (:func:`cxvalue.data.check`); ``card``: the run's fitted
        :class:`~cxvalue.scorecard.Scorecard` (today's values and margins of error)."""
        return self._fit(data, card)

    def _fit(self, data, card: Scorecard) -> "GoalPaths":
        """The body of :meth:`fit` (undecorated, so that mutmut mutates it)."""
        targets = self.params.get("targets") or {}
        dated = {n: g for n, g in targets.items() if isinstance(g, dict) and n in _KPI}
        require(dated, NO_DATED_GOAL)
        as_of = data.as_of
        self.as_of_ = as_of.isoformat()
        default_from = (pd.Timestamp(as_of + dt.timedelta(days=1)) - pd.DateOffset(months=12)).date()
        measured_on: dict[dt.date, dict] = {}
        self.goals_ = {}
        for name, goal in dated.items():
            kpi, today = _KPI[name], card.kpis_.get(name)
            frm = _date(goal.get("from") or default_from)
            by = _date(goal["by"])
            entry: dict[str, Any] = {"label": kpi.label, "unit": kpi.unit, "value": goal["value"], "by": by.isoformat(),
                                     "from": frm.isoformat(), "start": goal.get("start"),
                                     "start_source": "given" if goal.get("start") is not None else "measured",
                                     "skipped": None}
            if frm >= by:
                entry["skipped"] = (f"{kpi.label}: the path would start ({frm}) on or after the goal's date ({by}); "
                                    f"give targets.{name}.from before it.")
            elif today is None:
                entry["skipped"] = (f"{kpi.label}: the data cannot measure this KPI today, so there is nothing to set "
                                    f"against the path.")
            if entry["start"] is None and entry["skipped"] is None:
                if frm not in measured_on:
                    measured_on[frm] = Scorecard({**self.params, "targets": {}}, business_model=getattr(card, "business_model", "contractual")).fit(
                        dataclasses.replace(data, as_of=min(frm, as_of))).kpis_
                before = measured_on[frm].get(name)
                if before is None or before.get("actual") is None:
                    entry["skipped"] = (f"{kpi.label}: the data has no value for the 12 months to {frm}, where the path "
                                        f"starts; give targets.{name}.start (the value on that day).")
                else:
                    entry["start"] = float(before["actual"])
            if entry["skipped"] is None:
                expected = path_value(entry["start"], goal["value"], frm, by, as_of)
                moe = today.get("margin_of_error")
                entry.update({
                    "milestones": milestones(entry["start"], goal["value"], frm, by),
                    "expected_today": expected,
                    "actual": today["actual"],
                    "margin_of_error": moe,
                    "gap_to_path": float(today["actual"] - expected),
                    "status": ("before the path starts" if as_of < frm else
                               path_status(today["actual"], expected, moe, kpi.higher_is_better)),
                    "due": as_of >= by,
                })
                nxt = [m for m in entry["milestones"] if _date(m["date"]) > as_of]
                entry["next_milestone"] = nxt[0] if nxt else None
            else:
                self.warnings_.append(entry["skipped"])
            self.goals_[name] = entry
        return self

    def _empty(self) -> None:
        self.goals_ = {}
        self.as_of_ = None

    @property
    def summary(self) -> pd.DataFrame:
        """One row per dated goal: goal, date, start, path today, actual, gap to the path, status."""
        cols = ["label", "unit", "value", "by", "from", "start", "expected_today", "actual", "margin_of_error",
                "gap_to_path", "status", "skipped"]
        return pd.DataFrame([{c: g.get(c) for c in cols} for g in self.goals_.values()], columns=cols,
                            index=pd.Index(list(self.goals_), name="kpi"))

    def trend(self) -> pd.DataFrame:
        """The paths and every run's reading, for the chart: ``kpi``, ``label``, ``unit``, ``kind``
        ("path" or "run"), ``date``, ``value``, ``low``, ``high``, ``run``, ``status``; shares in %."""
        rows = []
        this = {"kpis": {n: {"actual": g.get("actual"), "margin_of_error": g.get("margin_of_error")}
                         for n, g in self.goals_.items()}, "run": {"label": "this run", "as_of": None}}
        for name, g in self.goals_.items():
            if g.get("skipped"):
                continue
            scale = 100.0 if g["unit"] == "share" else 1.0
            for d, v in ((g["from"], g["start"]), *((m["date"], m["value"]) for m in g["milestones"])):
                rows.append({"kpi": name, "label": g["label"], "unit": g["unit"], "kind": "path", "date": d,
                             "value": v * scale, "low": None, "high": None, "run": "path to the goal", "status": None})
            for r in [*self.earlier, this]:
                k = (r.get("kpis") or {}).get(name) or {}
                on = (r.get("run") or {}).get("as_of") or (self.as_of_ if r is this else None)
                if k.get("actual") is None or on is None:
                    continue
                moe = k.get("margin_of_error") or 0.0
                expected = path_value(g["start"], g["value"], g["from"], g["by"], on)
                status = path_status(k["actual"], expected, k.get("margin_of_error"), _KPI[name].higher_is_better)
                rows.append({"kpi": name, "label": g["label"], "unit": g["unit"], "kind": "run", "date": str(on)[:10],
                             "value": k["actual"] * scale, "low": (k["actual"] - moe) * scale,
                             "high": (k["actual"] + moe) * scale, "run": (r.get("run") or {}).get("label") or "",
                             "status": status})
        out = pd.DataFrame(rows, columns=["kpi", "label", "unit", "kind", "date", "value", "low", "high", "run", "status"])
        out["date"] = pd.to_datetime(out["date"])
        return out

    def results(self) -> dict[str, Any]:
        """The ``goals`` block of ``results.json``: ``skipped`` and one entry per dated goal."""
        return {"skipped": self.skipped_, **{n: dict(g) for n, g in self.goals_.items()}}

    def _repr_html_(self) -> str:
        """In Jupyter: the name, the skipped reason or the summary table, the caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, "Goals with a date")
