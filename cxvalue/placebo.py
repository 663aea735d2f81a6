"""A placebo check of the adjusted comparison: does it find a gap where the survey cannot have made one?

The linkage models compare what customers of each satisfaction group spend and cost *after* their
survey, holding equal what the data records *before* it. If those controls remove the differences
between the groups that were there anyway (bigger accounts being happier, say), the same
comparison made one window earlier must find no gap: as if every customer had answered
``window_months`` before they did (the group stays the one of their real answer), the "after"
window becomes the year before the real survey, which the answer cannot have changed, and the
controls come from the year before that (:func:`cxvalue.history.history` with ``shift_months``).
Only customers who were already customers on that earlier day take part.

Each adjusted ratio (revenue and cost to serve per customer-year, the linkage models themselves,
each with its headline comparison) should then read about 1. For revenue, whose headline compares
each customer with their own level before the survey, that tests its assumption: that the groups'
spend was not already moving apart in the year before the survey (against the year before that). The check **passes** for a ratio whose 95% interval includes 1 or that
lies within ``tolerance`` (2%) of 1. A ratio that fails means either that the controls leave a gap
that predates the survey (residual confounding, which then biases the real comparison by about as
much), or that dissatisfaction showed in behaviour before it was asked about (the survey came
late); either way the measured gaps should be read with it in mind. Churn has no placebo here:
every customer in the shifted comparison stayed until their real survey.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cxvalue import history as cxhistory
from cxvalue.linkage import CostToServeModel, RevenueModel
from cxvalue.skipping import require, skippable

__all__ = ["Placebo", "shifted_history", "TOLERANCE"]

#: A placebo ratio this close to 1 passes even when its interval excludes 1 (a gap too small to matter).
TOLERANCE = 0.02


def shifted_history(data, params: dict[str, Any]) -> pd.DataFrame:
    """The customer history as if every customer had answered ``window_months`` before they did
    (:func:`cxvalue.history.history` with ``shift_months``): what :class:`Placebo` compares."""
    return cxhistory.history(data, params, shift_months=int(params["window_months"]))


class Placebo:
    """The linkage comparison repeated ``shift_months`` earlier, where it should read 1;
    ``fit(data, params) -> self`` (module docstring).

    Parameters
    ----------
    reference_group : the linkage reference group; ``covariates``: the customer columns the
        linkage models adjust for; ``min_group_size``: as the run's parameter.
    tolerance : a ratio within this share of 1 passes whatever its interval.
    """

    label = "Placebo check"

    def __init__(self, reference_group: str, covariates: list[str] | None = None, min_group_size: int = 100,
                 tolerance: float = TOLERANCE):
        self.reference_group = reference_group
        self.covariates = list(covariates or [])
        self.min_group_size = min_group_size
        self.tolerance = tolerance

    @skippable
    def fit(self, data, params: dict[str, Any]) -> "Placebo":
        """``data``: checked data (:func:`cxvalue.data.check`); ``params``: the run's parameters
        (``window_months`` is the shift). Skipped when no customer was a customer a window before
        their survey, or the revenue comparison itself cannot be made on them."""
        return self._fit(shifted_history(data, params), params, "contacts" in data.tables)

    @skippable
    def fit_shifted(self, hist: pd.DataFrame, params: dict[str, Any], has_contacts: bool) -> "Placebo":
        """:meth:`fit` on :func:`shifted_history` already built (``cxvalue run`` builds it in its own process
        and fits the check in a second one, which has no database); ``has_contacts``: whether the data
        has a contacts table (else there is no cost-to-serve placebo)."""
        return self._fit(hist, params, has_contacts)

    def _fit(self, hist: pd.DataFrame, params: dict[str, Any], has_contacts: bool) -> "Placebo":
        self.shift_months = int(params["window_months"])
        require(len(hist) > 0, f"{self.label}: no customer was already a customer {self.shift_months} months before "
                               "their survey, so the comparison cannot be repeated a window earlier.")
        self.customers_ = hist["group"].astype(str).value_counts()
        # revenue's headline is the within-customer comparison: here it divides the year before the survey by the
        # year before that, so it tests that the groups' spend was not already moving apart (its assumption)
        models = {"revenue": RevenueModel(self.reference_group, self.covariates, self.min_group_size).fit(hist)}
        require(models["revenue"].fitted, f"{self.label}: {models['revenue'].skipped_}")
        if has_contacts:
            models["cost_to_serve"] = CostToServeModel(self.reference_group, self.covariates,
                                                       self.min_group_size, within=False).fit(hist)
        self.models_ = models
        rows = []
        for outcome, m in models.items():
            if not m.fitted:
                continue
            for g, r in m.summary.iterrows():
                if g == self.reference_group or pd.isna(r["ratio"]):
                    continue
                covers = bool(r["ratio_lo"] <= 1 <= r["ratio_hi"])
                close = bool(abs(r["ratio"] - 1) <= self.tolerance)
                rows.append({"outcome": outcome, "group": g, "customers": int(self.customers_.get(g, 0)),
                             "ratio": float(r["ratio"]), "ratio_lo": float(r["ratio_lo"]),
                             "ratio_hi": float(r["ratio_hi"]), "passed": covers or close})
        self.summary_ = pd.DataFrame(rows, columns=["outcome", "group", "customers", "ratio", "ratio_lo", "ratio_hi",
                                                    "passed"])
        for r in self.summary_[~self.summary_["passed"]].itertuples():
            what = "revenue" if r.outcome == "revenue" else "cost to serve"
            self.warnings_.append(
                f"{self.label}: compared a year before their survey, when their answer cannot yet have changed "
                f"anything, {r.group} customers' {what} reads {r.ratio:.3f} times the {self.reference_group} "
                f"group's (95% interval {r.ratio_lo:.3f} to {r.ratio_hi:.3f}) where it should read 1: a gap of "
                f"{abs(r.ratio - 1):.0%} was there before the survey (differences the data does not hold, or "
                f"dissatisfaction that showed before it was asked about), and the measured {what} gap may be off "
                f"by about as much.")
        return self

    def _empty(self) -> None:
        self.shift_months = None
        self.customers_ = pd.Series(dtype="int64")
        self.models_ = {}
        self.summary_ = pd.DataFrame(columns=["outcome", "group", "customers", "ratio", "ratio_lo", "ratio_hi",
                                              "passed"])

    @property
    def summary(self) -> pd.DataFrame:
        """One row per outcome and non-reference group: the placebo ratio, its 95% interval and
        whether it passed."""
        return self.summary_

    @property
    def passed(self) -> bool | None:
        """True when every placebo ratio passed; None when skipped or nothing could be compared."""
        if self.skipped_ or self.summary_.empty:
            return None
        return bool(self.summary_["passed"].all())

    def results(self) -> dict[str, Any]:
        """The ``placebo`` block of ``results.json``."""
        out: dict[str, Any] = {"skipped": self.skipped_, "shift_months": self.shift_months,
                               "tolerance": self.tolerance, "passed": self.passed,
                               "customers": {str(g): int(n) for g, n in self.customers_.items()}}
        for outcome in ("revenue", "cost_to_serve"):
            rows = self.summary_[self.summary_["outcome"] == outcome]
            out[outcome] = {r.group: {"ratio": r.ratio, "ratio_ci": [r.ratio_lo, r.ratio_hi], "passed": bool(r.passed)}
                            for r in rows.itertuples()}
            m = self.models_.get(outcome)
            if m is not None and not m.fitted:
                out[outcome] = {"skipped": m.skipped_}
        return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in out.items()}
