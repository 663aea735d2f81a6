"""The cost of failure demand: contacts by reason, who they come from, and what removing them is worth.

Customers contact a company for value (a question, a change) or because something failed (a
billing error, an outage): failure demand, the contacts a better experience removes. With a
``reason`` on the contacts table:

* :func:`reason_costs` — cost to serve by reason over the scorecard's 12 months to ``as_of`` on
  the whole base: contacts, customers who made them, cost (each contact priced as in the
  history: its own ``cost``, else ``contact_cost`` by channel) and share of the cost. Reasons
  with fewer than ``min_cell_size`` customers are pooled as "other reasons"; a pool that is
  itself that small is not shown, and the shares are then of the reasons shown.
* :func:`reason_exposure` — for each customer in the history, whether they contacted about each
  reason in the pre window (the ``window_months`` before their survey, as the history's).
* :class:`FailureDemand` — per reason: how concentrated it is among dissatisfied customers (the
  share of the lowest group who contacted about it in the pre window over the reference
  group's, a risk ratio with its 95% interval); how it is linked to churn after the survey, by
  the linkage churn model (:class:`cxvalue.linkage.ChurnModel`: piecewise-exponential, the
  same continuous adjustment terms, fitted on one unit per customer so that one fit per reason
  stays small at a million customers, plus the satisfaction group and the other top reasons), comparing
  customers who contacted about it before their survey with those who did not; and the yearly
  value of removing a share ``s`` of its contacts:

  - cost saved = ``s`` x the reason's cost over the last 12 months;
  - customers kept = ``s`` x the customers who contacted about it in the last 12 months x
    ``(p1 - (1 - (1 - p1)^(1/HR)))``, where ``p1`` is the Kaplan-Meier 12-month churn of the
    customers who contacted about it and ``HR`` its adjusted hazard ratio: each customer spared
    the contact churns as if at ``1/HR`` of the hazard; valued at the base's mean margin per
    customer-year (the scorecard's rule for retention: one year of margin per customer kept);
    none where ``HR <= 1`` (sparing a customer a contact does not make them leave sooner);
  - the 95% interval draws ``log HR`` from its normal sampling distribution (``draws`` draws,
    seeded); the cost is a count of every contact and carries no sampling error.

  Removing a contact is assumed to spare the customer the failure behind it; a customer with
  several contacts about the reason is counted once (a lower bound on the contacts removed).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import numpy as np
import pandas as pd

from cxvalue.history import contact_unit_cost
from cxvalue.linkage import ChurnModel, km_churn_rate
from cxvalue.skipping import require, skippable, skippable_frame

__all__ = ["reason_costs", "reason_exposure", "FailureDemand", "NO_REASON", "OTHER"]

Z95 = 1.959963984540054
NO_REASON = "(no reason given)"
OTHER = "other reasons"
COST_COLUMNS = ["contacts", "customers", "cost_per_year", "share_of_cost"]


def _need_reasons(data) -> None:
    require("contacts" in data.tables,
            "The cost of failure demand needs a contacts table with a reason for each contact: add contacts "
            "(customer_id, date, channel, reason) to see which reasons cost most and which drive churn.")
    require("reason" in data.tables["contacts"].columns,
            "The cost of failure demand needs the reason of each contact: add a column reason to the contacts "
            "table (for example billing_error, service_outage, how_to) to see which reasons cost most and which "
            "drive churn.")


@skippable_frame(COST_COLUMNS, index="reason")
def reason_costs(data, params: dict[str, Any]) -> pd.DataFrame:
    """Cost to serve by reason over the 12 months to ``as_of`` (the scorecard's period, half-open
    days ``[as_of + 1 day - 12 months, as_of + 1 day)``), most costly first.

    Columns: ``contacts``, ``customers`` (distinct), ``cost_per_year`` (currency: the 12 months'
    cost), ``share_of_cost``. ``attrs["pooled"]``: the reasons pooled as :data:`OTHER`;
    ``attrs["hidden"]``: True when a small pool was left out (shares are then of the rows shown).
    Skipped without contacts or without a ``reason`` column, or with no contact in the period.
    """
    return _reason_costs(data, params)


def _reason_costs(data, params: dict[str, Any]) -> pd.DataFrame:
    """The body of :func:`reason_costs` (undecorated, so that mutmut mutates it)."""
    _need_reasons(data)
    end = data.as_of + dt.timedelta(days=1)
    start = (pd.Timestamp(end) - pd.DateOffset(months=12)).date()
    c = data.tables["contacts"]
    c = c.filter((c.date >= start) & (c.date < end))
    reason = c.reason.cast("string").strip()
    c = c.mutate(_reason=ibis.ifelse(reason.isnull() | (reason == ""), NO_REASON, reason),
                 _cost=contact_unit_cost(c, params, data.has_contact_cost))
    by = c.group_by("_reason").aggregate(contacts=c.count(), customers=c.customer_id.nunique(),
                                         cost_per_year=c._cost.sum()).to_pandas()
    require(len(by) and by["contacts"].sum() > 0,
            f"The cost of failure demand needs contacts in the 12 months to {data.as_of}; the data has none.")
    by = by.rename(columns={"_reason": "reason"}).set_index("reason")
    small = by["customers"] < params["min_cell_size"]
    pooled = sorted(by.index[small].astype(str))
    out = by[~small].copy()
    hidden = False
    if small.any():
        pool = by[small].sum(numeric_only=True)
        # the pool's customers: a customer may have contacted about several pooled reasons
        who = c.filter(c._reason.isin(pooled)).customer_id.nunique().to_pandas()
        if int(who) >= params["min_cell_size"]:
            out.loc[OTHER] = [pool["contacts"], int(who), pool["cost_per_year"]]
        else:
            hidden = True
    out["share_of_cost"] = out["cost_per_year"] / out["cost_per_year"].sum()
    out = out.sort_values(["cost_per_year", "contacts"], ascending=False)
    out = out.astype({"contacts": "int64", "customers": "int64", "cost_per_year": float})
    out.attrs.update(pooled=pooled, hidden=hidden)
    return out


def reason_exposure(data, history: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """For each customer of ``history`` (same index), one boolean column per reason: a contact
    about it in their pre window ``[max(start_date, survey - window_months), survey)``.

    Empty (no columns) without contacts or without a ``reason`` column."""
    if "contacts" not in data.tables or "reason" not in data.tables["contacts"].columns or history.empty:
        return pd.DataFrame(index=history.index)
    months = int(params["window_months"])
    win = ibis.memtable(history[["customer_id", "response_date", "start_date"]].assign(
        response_date=lambda d: pd.to_datetime(d["response_date"]).dt.date,
        start_date=lambda d: pd.to_datetime(d["start_date"]).dt.date))
    win = win.mutate(response_date=win.response_date.cast("date"), start_date=win.start_date.cast("date"))
    win = win.mutate(pre_start=ibis.greatest(win.start_date,
                                             (win.response_date - ibis.interval(months=months)).cast("date")))
    c = data.in_windows("contacts")  # the pre windows lie inside each customer's dates
    reason = c.reason.cast("string").strip()
    c = c.mutate(_reason=ibis.ifelse(reason.isnull() | (reason == ""), NO_REASON, reason))
    j = c.inner_join(win, "customer_id")
    j = j.filter((j.date >= j.pre_start) & (j.date < j.response_date))
    pairs = j.select("customer_id", "_reason").distinct().to_pandas()
    # one row per (customer, reason) pair: a pivot of the pairs (a crosstab counts each group in Python)
    flags = pd.DataFrame({"customer_id": pairs["customer_id"].astype(str), "reason": pairs["_reason"].astype(str),
                          "hit": True}).pivot(index="customer_id", columns="reason", values="hit").notna()
    ids = history["customer_id"].astype(str)
    out = flags.reindex(ids.to_numpy(), fill_value=False)
    out.index = history.index
    out.columns.name = None
    return out.astype(bool)


def _risk_ratio(a: int, n1: int, c: int, n0: int) -> tuple[float, float, float]:
    """Risk ratio (a/n1) / (c/n0) with the 95% interval of its log (Katz)."""
    if min(a, c) == 0 or min(n1, n0) == 0:
        return float("nan"), float("nan"), float("nan")
    rr = (a / n1) / (c / n0)
    se = np.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0)
    return float(rr), float(rr * np.exp(-Z95 * se)), float(rr * np.exp(Z95 * se))


def customers_kept(exposed_per_year: float, churn_12m: float, hazard_ratio, share_removed: float):
    """Customers kept a year by removing ``share_removed`` of a reason (module docstring):
    ``s x E x (p1 - (1 - (1 - p1)^(1/HR)))``, 0 where ``HR <= 1``; ``hazard_ratio`` may be an
    array of draws."""
    hr = np.asarray(hazard_ratio, float)
    p_without = 1 - (1 - churn_12m) ** (1 / hr)
    return np.maximum(share_removed * exposed_per_year * (churn_12m - p_without), 0.0)


class FailureDemand:
    """Which contact reasons cost most, come from dissatisfied customers and drive churn, and
    what removing a share of each is worth a year; ``fit(...) -> self`` (module docstring).

    Parameters
    ----------
    groups : the satisfaction groups, lowest first; ``reference_group``: the linkage reference.
    covariates : customer attributes the churn model adjusts for (as the linkage models).
    share_removed : share of each reason's contacts the valuation removes (0-1).
    top : how many of the costliest reasons are linked to churn and valued.
    min_group_size, min_cell_size : as the run's parameters; a reason needs ``min_group_size``
        customers who contacted about it before their survey to be linked to churn.
    draws, seed : simulation of the value's interval.
    """

    label = "The cost of failure demand"

    def __init__(self, groups: list[str], reference_group: str, covariates: list[str] | None = None,
                 share_removed: float = 0.25, top: int = 5, min_group_size: int = 100, min_cell_size: int = 10,
                 draws: int = 2000, seed: int = 42):
        self.groups = [str(g) for g in groups]
        self.reference_group = reference_group
        self.covariates = list(covariates or [])
        self.share_removed = share_removed
        self.top = top
        self.min_group_size = min_group_size
        self.min_cell_size = min_cell_size
        self.draws = draws
        self.seed = seed

    @classmethod
    def from_params(cls, params: dict[str, Any], covariates: list[str] | None = None) -> "FailureDemand":
        """The analysis as the run's parameters set it (``failure_demand.*``, groups, sizes, seed)."""
        from cxvalue.config import bands_for, reference_group

        fd = params["failure_demand"]
        return cls(list(bands_for(params)), reference_group(params), covariates, share_removed=fd["share_removed"],
                   top=fd["top_reasons"], min_group_size=params["min_group_size"],
                   min_cell_size=params["min_cell_size"], seed=params["seed"])

    @skippable
    def fit(self, costs: pd.DataFrame, exposure: pd.DataFrame, history: pd.DataFrame,
            margin_per_year: pd.Series | None = None, customers: pd.Series | None = None) -> "FailureDemand":
        """``costs``: :func:`reason_costs`; ``exposure``: :func:`reason_exposure` of ``history``;
        ``margin_per_year`` and ``customers`` per group (the business case's margin per
        customer-year and today's base): their weighted mean values a customer kept a year
        (without them, no customer kept is valued until :meth:`price` is called)."""
        return self._fit(costs, exposure, history, margin_per_year, customers)

    def price(self, margin_per_year: pd.Series | None, customers: pd.Series | None) -> "FailureDemand":
        """Value the fitted reasons at these margins and base (as :meth:`fit`'s): the costs and the churn
        links do not depend on them, so a model fitted before the business case (``cxvalue run`` fits it
        beside the linkage models) is valued afterwards, with the same draws. Returns ``self``."""
        if hasattr(self, "rows_"):  # fitted, not skipped (a refit or skip deletes it)
            self._price(margin_per_year, customers)
        return self

    def _fit(self, costs: pd.DataFrame, exposure: pd.DataFrame, history: pd.DataFrame,
             margin_per_year: pd.Series | None, customers: pd.Series | None) -> "FailureDemand":
        """The body of :meth:`fit` (undecorated, so that mutmut mutates it)."""
        require(len(costs), "The cost of failure demand: no contact reason to report.")
        self.costs_ = costs
        lowest = self.groups[0]
        group = history["group"].astype(str)
        ranked = [r for r in costs.index if r not in (OTHER, NO_REASON) and r in exposure.columns]
        top = ranked[: self.top]
        self.churn_skipped_ = None
        if not history["churned"].any():
            self.churn_skipped_ = ("Nobody in the data left after their survey (no end_date), so no reason can be "
                                   "linked to churn; only the cost of each reason is valued.")
        rows = []
        for reason in costs.index:
            row: dict[str, Any] = {"reason": reason, **costs.loc[reason, COST_COLUMNS].to_dict()}
            if reason in exposure.columns:
                ex = exposure[reason]
                a, n1 = int(ex[group == lowest].sum()), int((group == lowest).sum())
                c, n0 = int(ex[group == self.reference_group].sum()), int((group == self.reference_group).sum())
                small = min(a, c) < self.min_cell_size
                rr = (np.nan,) * 3 if small else _risk_ratio(a, n1, c, n0)
                row.update(exposed_respondents=int(ex.sum()),
                           exposed_share_lowest=np.nan if small else a / n1 if n1 else np.nan,
                           exposed_share_reference=np.nan if small else c / n0 if n0 else np.nan,
                           concentration=rr[0], concentration_lo=rr[1], concentration_hi=rr[2])
            row.update(self._churn_link(reason, top, exposure, history) if reason in top else {})
            rows.append(row)
        self.rows_ = rows  # each reason's cost and churn link, to be valued
        self.top_ = top
        self._price(margin_per_year, customers)
        if self.churn_skipped_:
            self.warnings_.append(self.churn_skipped_)
        return self

    def _price(self, margin_per_year: pd.Series | None, customers: pd.Series | None) -> None:
        """``mean_margin_``, each reason's value and its draws (``value_draws_``), ``summary_``."""
        mean_margin = None
        if margin_per_year is not None and customers is not None and float(customers.sum()) > 0:
            m = margin_per_year.reindex(customers.index)
            mean_margin = float((m * customers).sum() / customers.sum()) if m.notna().all() else None
        self.mean_margin_ = mean_margin
        self.value_draws_: dict[str, np.ndarray] = {}
        rng = np.random.default_rng(self.seed)
        rows = [{**row, **self._value(row, rng)} for row in self.rows_]
        cols = ["reason", *COST_COLUMNS, "exposed_respondents", "exposed_share_lowest", "exposed_share_reference",
                "concentration", "concentration_lo", "concentration_hi", "churn_12m_exposed", "hazard_ratio", "hr_lo",
                "hr_hi", "churn_note", "cost_saved_per_year", "customers_kept_per_year", "retention_value_per_year",
                "value_per_year", "value_lo", "value_hi"]
        summary = pd.DataFrame(rows).reindex(columns=cols).set_index("reason")
        summary["rank"] = summary["value_per_year"].rank(ascending=False, method="first")
        self.summary_ = summary

    def _churn_link(self, reason: str, top: list[str], exposure: pd.DataFrame, history: pd.DataFrame) -> dict:
        """The adjusted churn hazard ratio of customers who contacted about ``reason`` before their
        survey against those who did not (the linkage churn model, satisfaction group and the
        other top reasons among the controls)."""
        if self.churn_skipped_:
            return {"churn_note": self.churn_skipped_}
        ex = exposure[reason]
        if min(int(ex.sum()), int((~ex).sum())) < self.min_group_size:
            return {"churn_note": f"Fewer than {self.min_group_size} customers contacted about {reason} before "
                                  f"their survey (or all did), too few to link it to churn."}
        frame = history.copy()
        frame["satisfaction"] = history["group"].astype(str)
        others = [r for r in top if r != reason]
        for r in others:
            frame[f"also_{r}"] = np.where(exposure[r], "yes", "no")
        frame["group"] = pd.Categorical(np.where(ex, "with", "without"), categories=["without", "with"])
        # one unit per customer (the person-period rows of four fits held 8.5 GB at 1M customers, quintile bins
        # left a strong size confounded inside each bin)
        model = ChurnModel("without", [*self.covariates, "satisfaction", *[f"also_{r}" for r in others]],
                           self.min_group_size, by_unit=True).fit(frame)
        p1 = km_churn_rate(frame.loc[ex, "duration_days"], frame.loc[ex, "churned"])
        if not model.fitted or pd.isna(model.summary.loc["with", "hazard_ratio"]):
            return {"churn_12m_exposed": p1, "churn_note": model.skipped_ or "the churn model gave no estimate"}
        s = model.summary.loc["with"]
        return {"churn_12m_exposed": p1, "hazard_ratio": s["hazard_ratio"], "hr_lo": s["hr_lo"], "hr_hi": s["hr_hi"]}

    def _value(self, row: dict, rng: np.random.Generator) -> dict:
        s = self.share_removed
        saved = s * float(row["cost_per_year"])
        out = {"cost_saved_per_year": saved, "value_per_year": saved, "value_lo": saved, "value_hi": saved}
        hr = row.get("hazard_ratio")
        if hr is None or pd.isna(hr) or self.mean_margin_ is None or pd.isna(row.get("churn_12m_exposed", np.nan)):
            return out
        se = (np.log(row["hr_hi"]) - np.log(row["hr_lo"])) / (2 * Z95)
        draws = np.exp(rng.normal(np.log(hr), se, self.draws))
        kept = customers_kept(row["customers"], row["churn_12m_exposed"], hr, s)
        kept_draws = customers_kept(row["customers"], row["churn_12m_exposed"], draws, s)
        value_draws = saved + kept_draws * self.mean_margin_
        self.value_draws_[str(row["reason"])] = value_draws
        out.update(customers_kept_per_year=float(kept), retention_value_per_year=float(kept * self.mean_margin_),
                   value_per_year=float(saved + kept * self.mean_margin_),
                   value_lo=float(np.percentile(value_draws, 2.5)), value_hi=float(np.percentile(value_draws, 97.5)))
        return out

    def yearly_value_draws(self, reasons: list[str] | None = None) -> np.ndarray:
        """Simulated yearly value of removing ``share_removed`` of ``reasons`` (default: the valued
        top reasons) together: the sum of their draws (``draws`` values; a reason without a churn
        link contributes its cost saved in every draw). What a scenario lever needs to carry the
        uncertainty into an NPV; its mean is near the sum of ``value_per_year``."""
        chosen = list(self.top_ if reasons is None else reasons)
        total = np.zeros(self.draws)
        for r in chosen:
            if r not in self.summary_.index:
                raise KeyError(f"{self.label}: no contact reason '{r}' (reasons: {', '.join(map(str, self.summary_.index))})")
            total += self.value_draws_.get(r, np.full(self.draws, float(self.summary_.loc[r, "value_per_year"])))
        return total

    def _empty(self) -> None:
        self.value_draws_ = {}
        self.costs_ = pd.DataFrame(columns=COST_COLUMNS)
        self.summary_ = pd.DataFrame()
        self.top_ = []
        self.mean_margin_ = None
        self.churn_skipped_ = None

    @property
    def summary(self) -> pd.DataFrame:
        """Per reason, costliest first: cost, concentration among the lowest group, adjusted churn
        hazard ratio, and the yearly value of removing ``share_removed`` of it with its interval."""
        return self.summary_

    def ranked(self) -> pd.DataFrame:
        """The valued reasons (the top reasons by cost), most valuable first."""
        if self.summary_.empty:
            return self.summary_
        return self.summary_.loc[[r for r in self.top_ if r in self.summary_.index]].sort_values(
            "value_per_year", ascending=False)

    def results(self) -> dict[str, Any]:
        """The ``failure_demand`` block of ``results.json``."""
        def num(x):
            return None if x is None or (isinstance(x, float) and np.isnan(x)) or pd.isna(x) else x

        reasons = {}
        for reason, r in self.summary_.iterrows():
            reasons[str(reason)] = {
                "contacts_per_year": num(r["contacts"]), "customers_per_year": num(r["customers"]),
                "cost_per_year": num(r["cost_per_year"]), "share_of_cost": num(r["share_of_cost"]),
                "exposed_share_lowest": num(r["exposed_share_lowest"]),
                "exposed_share_reference": num(r["exposed_share_reference"]),
                "concentration": num(r["concentration"]),
                "concentration_ci": [num(r["concentration_lo"]), num(r["concentration_hi"])],
                "churn_hazard_ratio": num(r["hazard_ratio"]), "churn_hazard_ratio_ci": [num(r["hr_lo"]), num(r["hr_hi"])],
                "churn_12m_exposed": num(r["churn_12m_exposed"]), "churn_note": num(r["churn_note"]),
                "cost_saved_per_year": num(r["cost_saved_per_year"]),
                "customers_kept_per_year": num(r["customers_kept_per_year"]),
                "retention_value_per_year": num(r["retention_value_per_year"]),
                "value_per_year": num(r["value_per_year"]), "value_ci": [num(r["value_lo"]), num(r["value_hi"])],
                "valued": reason in self.top_,
            }
        ranking = list(self.ranked().index) if not self.summary_.empty else []
        return {"skipped": self.skipped_, "share_removed": self.share_removed,
                "lowest_group": self.groups[0], "reference_group": self.reference_group,
                "pooled_reasons": list(self.costs_.attrs.get("pooled", [])),
                "small_pool_hidden": bool(self.costs_.attrs.get("hidden", False)),
                "churn_link_skipped": self.churn_skipped_, "mean_margin_per_customer_year": self.mean_margin_,
                "ranking": ranking, "reasons": reasons}
