"""CX maturity, tracked: the self-assessment of the nine elements across teams and over time.

Input: the optional ``maturity`` table (CONTRACT section 1.4), checked by :func:`cxvalue.data.check`:
``assessed_by`` (a team or a respondent), ``date``, ``element`` (one of
:data:`cxvalue.data.MATURITY_ELEMENTS`), ``level`` (1-5, :data:`cxvalue.data.MATURITY_LEVELS`),
optionally ``team``.

* **Rounds.** Answers are grouped into assessment rounds by date: a gap of more than
  :data:`ROUND_GAP_DAYS` days between answers starts a new round. The latest round is today's
  state; the one before it, if any, is the comparison.
* **Units.** With a ``team`` column the unit is the team (its respondents' answers averaged),
  else each ``assessed_by``. Within a round a respondent's latest answer per element counts.
* **Levels.** An element's level is the mean over units of the unit's level; its spread is the
  highest unit's level minus the lowest's (teams that disagree by :data:`DISAGREEMENT` levels or
  more are a finding in themselves: they see the company differently). The overall level is
  the mean of the element levels (each element weighs the same); a unit's overall level is the
  mean of its elements.
* **Change.** Between the latest round and the previous one: each element's and the overall
  level's difference; the overall change has a 95% interval from the units assessed in both
  rounds (mean of their paired differences +- 1.96 x its standard error; none with fewer than
  two such units). The change since earlier *runs* is in the report only (``results.json`` never
  depends on earlier runs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cxvalue.data import MATURITY_ELEMENTS, MATURITY_LEVELS
from cxvalue.skipping import require, skippable

__all__ = ["Maturity", "ROUND_GAP_DAYS", "DISAGREEMENT", "NO_MATURITY", "level_name", "change_between"]

ROUND_GAP_DAYS = 45
DISAGREEMENT = 2.0
Z95 = 1.959963984540054
NO_MATURITY = ("CX maturity: the data has no maturity table, so the organisation's CX maturity is not tracked. Add "
               "maturity.csv (assessed_by, date, element, level 1-5; optionally team) with each team's "
               "self-assessment of the nine elements (docs/CONTRACT.md, section 1.4) to track it from run to run.")


def level_name(level: float) -> str:
    """The name of the level a mean level has fully reached: 3.2 and 3.8 -> "Defined" (4 is "Managed")."""
    return MATURITY_LEVELS[int(np.clip(np.floor(level + 1e-9), 1, 5))][0]


def rounds(dates: pd.Series, gap_days: int = ROUND_GAP_DAYS) -> pd.Series:
    """Round number (1 = oldest) of each date: a gap of more than ``gap_days`` starts a new one."""
    d = pd.to_datetime(dates)
    distinct = np.sort(d.unique())
    starts = np.r_[True, np.diff(distinct).astype("timedelta64[D]").astype(int) > gap_days]
    number = pd.Series(np.cumsum(starts), index=distinct)
    return d.map(number).astype(int)


def change_between(a: dict | None, b: dict | None) -> tuple[float | None, str]:
    """The overall level's change from run ``a`` to run ``b`` (their ``maturity`` blocks) and its
    reading: with two or more units in both, ``up``/``down`` only when the 95% interval of the
    mean paired difference of the units' overall levels excludes 0, else ``no clear change``."""
    if not a or not b or a.get("overall_level") is None or b.get("overall_level") is None:
        return None, "not comparable"
    diff = float(b["overall_level"]) - float(a["overall_level"])
    ua, ub = a.get("by_unit") or {}, b.get("by_unit") or {}
    paired = np.array([ub[u] - ua[u] for u in sorted(set(ua) & set(ub))], dtype=float)
    if len(paired) >= 2:
        half = Z95 * float(paired.std(ddof=1)) / np.sqrt(len(paired))
        if abs(paired.mean()) <= half:
            return diff, "no clear change"
    elif abs(diff) < 1e-9:
        return 0.0, "no change"
    return diff, "up" if diff > 0 else "down"


class Maturity:
    """Each element's level across teams, its spread, the overall level and its change;
    ``fit(data) -> self`` (module docstring).

    Fitted: ``elements_`` (per element: level, lowest, highest, spread, units, who is lowest and
    highest, change), ``units_`` (unit x element levels of the latest round), ``rounds_`` (per
    round: first and last day, respondents, units, overall level), ``overall_``, ``change_``,
    ``skipped_``, ``warnings_``.
    """

    label = "CX maturity"

    def __init__(self, earlier: list[dict] | None = None):
        self.earlier = list(earlier or [])

    @skippable
    def fit(self, data) -> "Maturity":
        require("maturity" in data.tables, NO_MATURITY)
        m = data.tables["maturity"].to_pandas()
        read = data.data_quality.get("maturity", {}).get("rows_read", len(m))
        require(len(m), f"CX maturity: none of the {read:,} rows of the maturity table could be used (the reasons are "
                        f"in the data-quality table), so the organisation's CX maturity is not shown.")
        m["date"] = pd.to_datetime(m["date"])
        has_team = "team" in m.columns and m["team"].notna().any()
        m["unit"] = (m["team"].fillna(m["assessed_by"]) if has_team else m["assessed_by"]).astype(str)
        self.unit_kind_ = "team" if has_team else "assessed_by"
        m["round"] = rounds(m["date"])
        # a respondent's latest answer per element within a round
        m = m.sort_values("date").drop_duplicates(["round", "assessed_by", "element"], keep="last")
        per_round = {k: self._round(g) for k, g in m.groupby("round")}
        last = max(per_round)
        self.units_, self.elements_ = per_round[last]
        self.rounds_ = pd.DataFrame([{
            "round": k, "first_day": g["date"].min().date().isoformat(), "last_day": g["date"].max().date().isoformat(),
            "respondents": g["assessed_by"].nunique(), "units": g["unit"].nunique(),
            "overall": float(per_round[k][1]["level"].mean())} for k, g in m.groupby("round")]).set_index("round")
        self.overall_ = float(self.elements_["level"].mean())
        missing = [e for e in MATURITY_ELEMENTS if e not in self.elements_.index]
        if missing:
            self.warnings_.append(f"CX maturity: the latest round has no answer for {', '.join(missing)}; the overall "
                                  f"level is over the {len(self.elements_)} elements answered.")
        self.change_ = None
        if last - 1 in per_round:
            units_before, before = per_round[last - 1]
            both = self.units_.index.intersection(units_before.index)
            diff = (self.units_.loc[both].mean(axis=1) - units_before.loc[both].mean(axis=1)).dropna()
            ci = [None, None]
            if len(diff) >= 2:
                half = Z95 * float(diff.std(ddof=1)) / np.sqrt(len(diff))
                ci = [float(diff.mean() - half), float(diff.mean() + half)]
            self.elements_["change"] = self.elements_["level"] - before["level"].reindex(self.elements_.index)
            self.change_ = {"overall": self.overall_ - float(before["level"].mean()), "overall_ci": ci,
                            "units_in_both": int(len(diff))}
        else:
            self.elements_["change"] = np.nan
        return self

    @staticmethod
    def _round(g: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(unit x element mean levels, per-element summary) of one round."""
        units = g.pivot_table(index="unit", columns="element", values="level", aggfunc="mean")
        order = [e for e in MATURITY_ELEMENTS if e in units.columns]
        units = units[order]
        el = pd.DataFrame({"level": units.mean(), "lowest": units.min(), "highest": units.max(),
                           "units": units.notna().sum(), "lowest_unit": units.idxmin(), "highest_unit": units.idxmax()})
        el["spread"] = el["highest"] - el["lowest"]
        el["disagreement"] = el["spread"] >= DISAGREEMENT
        el["label"] = [MATURITY_ELEMENTS[e][0] for e in el.index]
        el.index.name = "element"
        return units, el

    def _empty(self) -> None:
        self.units_ = pd.DataFrame()
        self.elements_ = pd.DataFrame(columns=["level", "lowest", "highest", "units", "spread", "change"])
        self.rounds_ = pd.DataFrame()
        self.overall_ = None
        self.change_ = None
        self.unit_kind_ = None

    @property
    def unit_title(self) -> str:
        """What a unit is, for a chart's legend: "Team" or "Respondent"."""
        return "Team" if self.unit_kind_ == "team" else "Respondent"

    @property
    def summary(self) -> pd.DataFrame:
        """Per element of the latest round: level, lowest, highest, spread, units, change since the
        previous round."""
        return self.elements_

    def trend(self) -> pd.DataFrame:
        """The overall level of each earlier run and this one (report only): ``run``, ``overall``."""
        rows = [{"run": (r.get("run") or {}).get("label", ""), "overall": (r.get("maturity") or {}).get("overall_level")}
                for r in self.earlier if (r.get("maturity") or {}).get("overall_level") is not None]
        if self.overall_ is not None:
            rows.append({"run": "this run", "overall": self.overall_})
        return pd.DataFrame(rows, columns=["run", "overall"])

    def since_last_run(self) -> float | None:
        """The overall level's change since the latest earlier run that had one (report only)."""
        before = [r["maturity"]["overall_level"] for r in self.earlier
                  if (r.get("maturity") or {}).get("overall_level") is not None]
        return None if not before or self.overall_ is None else self.overall_ - before[-1]

    def results(self) -> dict[str, Any]:
        """The ``maturity`` block of ``results.json``."""
        if self.skipped_:
            return {"skipped": self.skipped_}
        latest = self.rounds_.iloc[-1]
        prev = self.rounds_.iloc[-2] if len(self.rounds_) > 1 else None
        return {
            "skipped": None, "unit": self.unit_kind_, "overall_level": self.overall_,
            "overall_level_name": level_name(self.overall_),
            "round": {"first_day": latest["first_day"], "last_day": latest["last_day"],
                      "respondents": int(latest["respondents"]), "units": int(latest["units"])},
            "previous_round": None if prev is None else {"first_day": prev["first_day"], "last_day": prev["last_day"],
                                                         "overall_level": float(prev["overall"])},
            "change": self.change_,
            "rounds": self.rounds_.reset_index().to_dict(orient="records"),
            "elements": {e: {"label": r["label"], "level": r["level"], "lowest": r["lowest"], "highest": r["highest"],
                             "spread": r["spread"], "units": int(r["units"]), "lowest_unit": r["lowest_unit"],
                             "highest_unit": r["highest_unit"], "disagreement": bool(r["disagreement"]),
                             "change": None if pd.isna(r["change"]) else float(r["change"])}
                         for e, r in self.elements_.iterrows()},
            "by_unit": {u: float(v) for u, v in self.units_.mean(axis=1).items()},
        }

    def _repr_html_(self) -> str:
        """In Jupyter: the name, the skipped reason or the summary table, the caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, "CX maturity")
