"""Closing the loop on complaints: churn and revenue after a complaint, resolved vs left open.

:class:`ClosingTheLoop` (``drivers.closing_the_loop`` in ``results.json``) compares complainers
whose complaint was resolved with those whose complaint stayed open, adjusted for who
complains, and values closing one more loop. Input: :func:`complaint_history`. Like every
analysis: ``fit(...) -> self``, fitted attributes ending in ``_``, a ``summary`` DataFrame,
``warnings_``, ``skipped_`` (:mod:`cxvalue.skipping`) and ``results()``.

Units: money per customer per year in the data's currency; churn as a share.
"""

from __future__ import annotations

import warnings as _warnings
from typing import Any

import ibis
import numpy as np
import pandas as pd
import statsmodels.api as sm

from cxvalue.data import CheckedData
from cxvalue.exceptions import ModelError
from cxvalue.history import DAYS_PER_YEAR, contact_unit_cost, study_bounds
from cxvalue import piecewise
from cxvalue.linkage import adjustment_frame, keep_estimates, km_churn_rate, period_label
from cxvalue.skipping import Skip, require, skippable, skippable_frame

__all__ = ["complaint_history", "loop_person_periods", "ClosingTheLoop", "LOOP_INTERVALS", "SATISFACTION", "COMPLAINT_COLUMNS"]

#: Follow-up intervals (days after the complaint) of the piecewise-exponential churn model.
LOOP_INTERVALS = (0, 30, 91, 182, 365, 730, np.inf)
#: Column holding the satisfaction group known at the complaint (a covariate of the loop models).
SATISFACTION = "satisfaction_at_complaint"


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


#: Columns of :func:`complaint_history` (every customer covariate follows them).
COMPLAINT_COLUMNS = ["customer_id", "complaint_date", "resolved_date", "start_date", "end_date", "prior_sales",
                     "prior_sales_transactions", "pre_revenue", "post_revenue", "pre_contact_cost", "churned",
                     "duration_days", "tenure_years", "pre_exposure_years", "post_exposure_years", "resolved",
                     "resolution_days", SATISFACTION]


@skippable_frame(COMPLAINT_COLUMNS)
def complaint_history(data: CheckedData, params: dict[str, Any], hist: pd.DataFrame | None = None,
                      landmark_days: int = 30) -> pd.DataFrame:
    """One row per customer who complained: their first complaint in the study period and after.

    Of complaints made on the same first day, the one left open counts, else the one resolved
    last (the customer's complaint is closed when all of them are), so the same data always
    gives the same answer.

    Parameters
    ----------
    data : checked tables; ``contacts`` must have ``is_complaint`` and ``resolved_date`` (when
        it was resolved; ``resolved`` says whether, else a ``resolved_date`` means resolved).
    params : run parameters; uses ``study_start`` / ``study_end`` (default: the whole history
        up to ``as_of``), ``window_months`` and ``contact_cost``.
    hist : :func:`cxvalue.history.history` output; gives the satisfaction group known at the
        complaint (``satisfaction_at_complaint``: the index response's group when it came on
        or before the complaint, else "(unknown)"). A survey after the complaint is not used:
        only customers who stayed until then could answer it (conditioning on the future).
    landmark_days : the revenue window starts this many days after the complaint (the
        :class:`ClosingTheLoop` landmark; the two must agree).

    Returns
    -------
    DataFrame with ``customer_id``, ``complaint_date``, ``resolved`` (resolved, with a date, on or
    before ``as_of`` and the customer's last day), ``resolution_days`` (days from complaint to
    resolution; NaN when open), ``churned``, ``duration_days`` (complaint to ``end_date`` or
    ``as_of``), ``tenure_years``, the pre-window columns :func:`cxvalue.linkage.adjustment_frame`
    uses (window of ``window_months`` before the complaint: ``pre_revenue``,
    ``pre_contact_cost``, ``pre_exposure_years``, ``prior_sales``,
    ``prior_sales_transactions``), the revenue window used by the landmark revenue model
    (``post_revenue`` and ``post_exposure_years`` over ``window_months`` from ``landmark_days``
    after the complaint), ``satisfaction_at_complaint`` and every customer covariate.
    Attribute ``attrs["excluded"]``: complaints left out, by reason. Without a contacts table,
    its ``is_complaint`` or ``resolved_date`` column, or any complaint in the study period: an
    empty table whose ``attrs["skipped"]`` says what to add (:mod:`cxvalue.skipping`).
    """
    return _complaint_history(data, params, hist, landmark_days)


def _complaint_history(data: CheckedData, params: dict[str, Any], hist: pd.DataFrame | None,
                       landmark_days: int) -> pd.DataFrame:
    """The body of :func:`complaint_history` (undecorated, so that mutmut mutates it)."""
    require("contacts" in data.tables,
            "Closing the loop needs a contacts table with the complaints: add contacts (customer_id, date, channel) "
            "with is_complaint (true for a complaint), resolved and resolved_date.")
    cols = data.tables["contacts"].columns
    require("is_complaint" in cols,
            "Closing the loop needs to know which contacts were complaints: add a column is_complaint (true for a "
            "complaint) to the contacts table, with resolved and resolved_date for when each was resolved.")
    require("resolved_date" in cols,
            "Closing the loop needs to know when each complaint was resolved: add resolved (true or false) and "
            "resolved_date to the contacts table.")
    months = int(params["window_months"])
    landmark = int(landmark_days)
    study_start, study_end = study_bounds(data, params)
    as_of = ibis.literal(data.as_of, type="date")
    c = data.in_windows("contacts")
    cond = [c.is_complaint.fill_null(False), c.date <= ibis.literal(study_end)]
    if study_start:
        cond.append(c.date >= ibis.literal(study_start))
    comp = data.checked_rows("contacts", c.filter(*cond))  # the contract's rules on the complaints alone
    # same-day complaints: the one left open, else the one resolved last (the customer waits for both)
    resolved = comp.resolved.fill_null(False) if "resolved" in cols else comp.resolved_date.notnull()
    order = [comp.date, resolved, comp.resolved_date.isnull().desc(), comp.resolved_date.desc()]
    ranked = comp.mutate(_rn=ibis.row_number().over(group_by=comp.customer_id, order_by=order))
    first = ranked.filter(ranked._rn == 0)
    first = first.select(
        customer_id=first.customer_id, complaint_date=first.date,
        resolved_flag=first.resolved.fill_null(False) if "resolved" in cols else first.resolved_date.notnull(),
        resolved_date=first.resolved_date)
    customers = data.tables["customers"]
    base = first.inner_join(customers, "customer_id")
    end_or_as_of = ibis.least(base.end_date.fill_null(as_of), as_of)
    base = base.mutate(
        pre_start=ibis.greatest(base.start_date, (base.complaint_date - ibis.interval(months=months)).cast("date")),
        landmark_date=(base.complaint_date + ibis.interval(days=landmark)).cast("date"),
        stop_date=end_or_as_of)
    base = base.mutate(post_end=ibis.greatest(base.landmark_date, ibis.least(
        (base.landmark_date + ibis.interval(months=months)).cast("date"),
        (base.stop_date + ibis.interval(days=1)).cast("date"))))
    win = base.select("customer_id", "start_date", "pre_start", "complaint_date", "landmark_date", "post_end")

    # the windows lie inside each customer's checked dates: the events need not be joined to customers again
    t = data.in_windows("transactions")
    tj = t.inner_join(win, "customer_id").filter(ibis._.amount.notnull())
    zero = ibis.literal(0.0)
    prior = (tj.date >= tj.start_date) & (tj.date < tj.complaint_date) & (tj.amount > 0)
    in_pre = (tj.date >= tj.pre_start) & (tj.date < tj.complaint_date)
    in_post = (tj.date >= tj.landmark_date) & (tj.date < tj.post_end)
    tx = tj.group_by("customer_id").aggregate(
        prior_sales=ibis.cases((prior, tj.amount), else_=zero).sum(),
        prior_sales_transactions=prior.cast("int64").sum(),
        pre_revenue=ibis.cases((in_pre, tj.amount), else_=zero).sum(),
        post_revenue=ibis.cases((in_post, tj.amount), else_=zero).sum())
    cj = c.inner_join(win, "customer_id")
    cj = cj.mutate(_unit_cost=contact_unit_cost(cj, params, data.has_contact_cost))
    c_pre = (cj.date >= cj.pre_start) & (cj.date < cj.complaint_date)
    ct = cj.group_by("customer_id").aggregate(pre_contact_cost=ibis.cases((c_pre, cj._unit_cost), else_=zero).sum())
    h = base.left_join(tx, "customer_id").drop("customer_id_right").left_join(ct, "customer_id").drop("customer_id_right")
    covariates = [col for col in data.covariates if col in h.columns]
    h = h.select("customer_id", "complaint_date", "resolved_flag", "resolved_date", "start_date", "end_date",
                 "pre_start", "landmark_date", "post_end", "stop_date", "prior_sales", "prior_sales_transactions",
                 "pre_revenue", "post_revenue", "pre_contact_cost", *covariates)
    df = h.order_by("customer_id").to_pyarrow().to_pandas(date_as_object=False)
    require(len(df), "Closing the loop needs complaints: no contact in the study period is marked is_complaint.")
    for col in ("complaint_date", "resolved_date", "start_date", "end_date", "pre_start", "landmark_date", "post_end",
                "stop_date"):
        df[col] = pd.to_datetime(df[col])
    for col in ("prior_sales", "prior_sales_transactions", "pre_revenue", "post_revenue", "pre_contact_cost"):
        df[col] = df[col].fillna(0)

    days = lambda a, b: (df[a] - df[b]).dt.days  # noqa: E731
    df["churned"] = df["end_date"].notna() & (df["end_date"] <= pd.Timestamp(data.as_of))
    df["duration_days"] = days("stop_date", "complaint_date")
    df["tenure_years"] = days("complaint_date", "start_date") / DAYS_PER_YEAR
    df["pre_exposure_years"] = days("complaint_date", "pre_start") / DAYS_PER_YEAR
    df["post_exposure_years"] = days("post_end", "landmark_date").clip(lower=0) / DAYS_PER_YEAR
    res_days = days("resolved_date", "complaint_date")
    flag = df.pop("resolved_flag").astype(bool)
    excluded = {
        "resolved but no resolved_date": int((flag & df["resolved_date"].isna()).sum()),
        "resolved_date before the complaint": int((flag & (res_days < 0)).sum()),
    }
    bad = flag & (df["resolved_date"].isna() | (res_days < 0))
    # a resolution after as_of or after the customer left was not (yet) one during follow-up
    df["resolved"] = flag & ~bad & (res_days <= df["duration_days"])
    df["resolution_days"] = res_days.where(df["resolved"])
    df = df[~bad].reset_index(drop=True)

    if hist is not None and len(hist):
        idx = hist.set_index(hist["customer_id"].astype(str))
        g = df["customer_id"].astype(str).map(idx["group"].astype(str))
        when = df["customer_id"].astype(str).map(idx["response_date"])
        # only what was known at the complaint: a later survey requires surviving until it
        df[SATISFACTION] = np.where(g.notna() & (when <= df["complaint_date"]), g, "(unknown)")
    else:
        df[SATISFACTION] = "(unknown)"
    df = df.drop(columns=["pre_start", "landmark_date", "post_end", "stop_date"])
    df.attrs["excluded"] = {k: v for k, v in excluded.items() if v}
    df.attrs["landmark_days"] = landmark
    return df


def _period_labels(intervals: tuple) -> list[str]:
    return [period_label(lo, hi) for lo, hi in zip(intervals[:-1], intervals[1:])]


def loop_person_periods(duration_days, resolution_days, churned, intervals: tuple = LOOP_INTERVALS) -> pd.DataFrame:
    """Split follow-up after a complaint into intervals and into open / resolved time.

    Resolution is a *time-varying* state: a customer's time counts as ``open`` from the
    complaint until the day it was resolved and ``resolved`` after, so nobody is credited
    with resolved time they had to survive to reach (no immortal-time bias).

    Parameters
    ----------
    duration_days : days from the complaint to leaving or ``as_of``.
    resolution_days : days from the complaint to its resolution; NaN = never resolved.
    churned : whether the customer left at ``duration_days``.

    Returns
    -------
    One row per customer, interval and state reached: ``row`` (position in the inputs),
    ``period``, ``state`` (open / resolved), ``exposure_years`` and ``event`` (1 if the
    customer left in it). Leaving on the very day of the resolution counts as leaving open.
    Zero-length stays with an event count half a day (as :func:`cxvalue.linkage.person_periods`).
    """
    d = np.asarray(duration_days, float)
    s = np.asarray(resolution_days, float)
    s = np.where(np.isnan(s), np.inf, s)
    ev = np.asarray(churned, bool)
    event_open = ev & (d <= s)
    frames = []
    # period and state as categories (codes, not millions of strings: the churn fit reads their codes)
    periods, states = _period_labels(intervals), ["open", "resolved"]
    for k, (lo, hi) in enumerate(zip(intervals[:-1], intervals[1:])):
        in_interval = ev & ((d > lo) | (lo == 0)) & (d <= hi)
        for j, a, b, event in ((0, np.full_like(d, lo), np.minimum(np.minimum(hi, s), d), event_open),
                               (1, np.maximum(lo, s), np.minimum(hi, d), ev & ~event_open)):
            length = b - a
            hit = in_interval & event
            keep = (length > 0) | hit
            if not keep.any():
                continue
            idx = np.flatnonzero(keep)
            exposure = np.where(hit[idx], np.maximum(length[idx], 0.5), length[idx])
            frames.append(pd.DataFrame({"row": idx,
                                        "period": pd.Categorical.from_codes(np.full(len(idx), k), categories=periods),
                                        "state": pd.Categorical.from_codes(np.full(len(idx), j), categories=states),
                                        "exposure_years": exposure / DAYS_PER_YEAR,
                                        "event": hit[idx].astype(float)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["row", "period", "state", "exposure_years", "event"])


def _censor(complaints: pd.DataFrame, max_days: float | None) -> pd.DataFrame:
    """Follow-up cut at ``max_days`` after the complaint (later churn and resolutions unseen)."""
    if max_days is None or not np.isfinite(max_days):
        return complaints
    c = complaints.copy()
    c["churned"] = c["churned"] & (c["duration_days"] <= max_days)
    c["duration_days"] = c["duration_days"].clip(upper=max_days)
    c["resolved"] = c["resolved"] & (c["resolution_days"] <= c["duration_days"])
    c["resolution_days"] = c["resolution_days"].where(c["resolved"])
    return c


def _discounted_years(log_hazard: np.ndarray, intervals: tuple, horizon_years: float, discount_rate: float) -> np.ndarray:
    """Expected discounted customer-years within the horizon under piecewise-constant hazards.

    ``log_hazard`` has the per-year log hazard of each interval in its last axis; the last
    interval's hazard continues to the horizon. Continuous discounting at ``log(1 + rate)``:
    each piece adds ``S(a) e^{-delta a} (1 - e^{-(lambda + delta)(b - a)}) / (lambda + delta)``.
    """
    delta = np.log1p(discount_rate)
    edges = np.minimum(np.asarray(intervals, float) / DAYS_PER_YEAR, horizon_years)
    lam = np.exp(log_hazard)
    total = np.zeros(lam.shape[:-1])
    log_s = np.zeros(lam.shape[:-1])  # log S(a) - delta a
    for k in range(lam.shape[-1]):
        a, b = edges[k], edges[k + 1]
        if b <= a:
            continue
        rate = lam[..., k] + delta
        total += np.exp(log_s) * -np.expm1(-rate * (b - a)) / rate
        log_s -= rate * (b - a)
    return total


class ClosingTheLoop:
    """Churn and revenue after a complaint: resolved vs left open, adjusted for who complains.

    **Index**: each customer's first complaint in the study period (:func:`complaint_history`).

    **Churn** (time-varying resolution, no immortal time): a piecewise-exponential model
    (Poisson GLM of churn events, log time-at-risk offset, intervals :data:`LOOP_INTERVALS`
    since the complaint, follow-up cut at ``max_followup_days``), in which each customer's time is *open* until the complaint was
    resolved and *resolved* after (:func:`loop_person_periods`). Adjusted for the
    :func:`cxvalue.linkage.adjustment_frame` terms measured before the complaint (revenue and
    contact cost in the window before it, typical bill, tenure, every covariate; continuous as
    they are, logs and splines, not bins, whose insides stay confounded by a strong size) and the
    satisfaction group known at the complaint. Fitted on one unit per complainer and state with
    the intervals profiled out (:func:`cxvalue.piecewise.fit`: the same fit as a Poisson GLM on
    the person-period rows, on a fraction of the memory). A state in which nobody left (all or
    nothing) is not compared: its hazard ratio would be infinite. ``hazard_ratio`` = hazard while open / hazard
    once resolved, with a model-based 95% CI. Why a year of follow-up by default: customers
    differ in ways no data shows, and the ones who stay for years after a complaint are the
    loyal kind whichever way it went, so hazard ratios over long follow-up drift toward 1
    (frailty; on the synthetic world 1.52 over all follow-up vs 1.60 over a year, truth 1.6).
    Beyond ``max_followup_days`` the last interval's hazards are carried forward (value
    below). A second model splits resolved time by speed
    (resolved within ``fast_days`` or later) and gives the hazard ratio of later vs fast.

    **Churn within 12 months per arm**: ``observed_rate_12m`` is a landmark Kaplan-Meier
    estimate (customers still there ``landmark_days`` after the complaint; arm = resolved by
    then or not); ``adjusted_rate_12m`` is g-computation from the churn model: every complainer
    with their own covariates, the complaint resolved at once vs never.

    **Revenue** (landmark): customers still there ``landmark_days`` after the complaint,
    arm = resolved by then; quasi-Poisson GLM of revenue in the ``window_months`` after the
    landmark with log exposure offset and HC1 errors, same adjustment; ``revenue_ratio`` =
    open / resolved; adjusted revenue per arm by g-computation.

    **Value of closing one more loop**: the discounted customer-years kept within
    ``horizon_years`` when a complaint is resolved instead of left open (from the churn model,
    averaged over complainers), times the margin per customer-year (``gross_margin`` x the
    resolved arm's adjusted revenue minus ``cost_to_serve_per_customer_year``, unless
    ``margin_per_customer_year`` is given). Retention only: the revenue gap is reported but not
    added. 95% interval from ``draws`` draws of the churn model's coefficients; with more than
    ``value_sample`` complainers the draws are averaged over a random ``value_sample`` of them
    and shifted by that sample's difference from the estimate over all (draws x complainers x
    intervals would not fit in memory at a million customers).

    Resolution is not randomised: a company may resolve easy complaints first. The models
    adjust for what the data shows about the customer, not for how hard the complaint was.
    """

    label = "Closing the loop"

    def __init__(self, covariates: list[str] | None = None, landmark_days: int = 30, fast_days: int = 7,
                 gross_margin: float = 0.6, horizon_years: float = 5, discount_rate: float = 0.08,
                 margin_per_customer_year: float | None = None, cost_to_serve_per_customer_year: float = 0.0,
                 min_group_size: int = 100, intervals: tuple = LOOP_INTERVALS, max_followup_days: float = 365,
                 draws: int = 500, seed: int = 42, value_sample: int = 20_000):
        self.covariates = list(covariates or [])
        self.landmark_days = landmark_days
        self.fast_days = fast_days
        self.gross_margin = gross_margin
        self.horizon_years = horizon_years
        self.discount_rate = discount_rate
        self.margin_per_customer_year = margin_per_customer_year
        self.cost_to_serve_per_customer_year = cost_to_serve_per_customer_year
        self.min_group_size = min_group_size
        self.intervals = intervals
        self.max_followup_days = max_followup_days
        self.draws = draws
        self.seed = seed
        self.value_sample = value_sample

    # ------------------------------------------------------------------ churn
    def _adjustment(self, complaints: pd.DataFrame, binned: bool) -> pd.DataFrame:
        cov = [c for c in self.covariates if c in complaints.columns] + [SATISFACTION]
        return adjustment_frame(complaints, cov, binned=binned)

    def _fit_churn(self, complaints: pd.DataFrame, speed: bool, adj: pd.DataFrame | None = None):
        """The piecewise-exponential churn model (:func:`cxvalue.piecewise.fit`: one unit per complainer
        and state, the intervals profiled out) with the state, every adjustment term as it is
        (continuous, not bins) and the intervals; returns the fit, its coefficient names, the
        adjustment frame (``adj``, when given: the same complaints' one, not built again) and the
        interval labels."""
        if adj is None:
            adj = self._adjustment(complaints, binned=False).reset_index(drop=True)
        pp = loop_person_periods(complaints["duration_days"], complaints["resolution_days"], complaints["churned"],
                                 self.intervals)
        open_ = (pp["state"] == "open").to_numpy()
        # a state nobody spent time in is not estimable (its column would be the constant's twin)
        wording = {"open": "with the complaint open", "resolved": "after the complaint was resolved",
                   "resolved_fast": f"after a complaint resolved within {self.fast_days} days",
                   "resolved_later": f"after a complaint resolved later than {self.fast_days} days"}
        needed = ["open", "resolved_fast", "resolved_later"] if speed else ["open", "resolved"]
        if speed:  # codes of needed
            fast = (complaints["resolution_days"] <= self.fast_days).to_numpy()[pp["row"]]
            state = np.where(open_, 0, np.where(fast, 1, 2)).astype(np.int64)
        else:
            state = np.where(open_, 0, 1).astype(np.int64)
        lacking = [wording[st] for i, st in enumerate(needed) if not (state == i).any()]
        require(not lacking, f"Closing the loop could not be measured: within the follow-up (max_followup_days after "
                             f"the complaint) no complainer spent any time {' or '.join(lacking)}, so there is nothing "
                             f"to compare it with.")
        # all or nothing: a state in which nobody left has a hazard of 0, and no ratio can be measured against it
        events = np.bincount(state, weights=pp["event"].to_numpy(float), minlength=len(needed))
        require(events.all(), "Closing the loop needs customers leaving both while a complaint is open and after it "
                              "is resolved: too few left in one of the two, so the difference cannot be measured."
                if not speed else f"Closing the loop could not compare resolution speeds: nobody left "
                                  f"{' or '.join(wording[st] for i, st in enumerate(needed) if not events[i])}.")
        # a unit is a complainer's time in one state: its terms do not change between intervals
        units, unit = np.unique(pp["row"].to_numpy(np.int64) * len(needed) + state, return_inverse=True)
        who, in_state = units // len(needed), units % len(needed)
        states = ["open", "resolved_later"] if speed else ["open"]
        X = pd.concat([pd.DataFrame({f"state[{s}]": (in_state == needed.index(s)).astype(float) for s in states}),
                       adj.iloc[who].reset_index(drop=True).astype(float)], axis=1)
        X = X.loc[:, X.max() > X.min()]  # every state varies (checked above); a constant adjustment term goes
        X.insert(0, "const", 1.0)
        periods = _period_labels(self.intervals)
        try:
            res = piecewise.fit(X, unit, pd.Categorical(pp["period"], categories=periods).codes, periods,
                                pp["event"].to_numpy(), pp["exposure_years"].to_numpy())
        except (ValueError, np.linalg.LinAlgError):  # no churn at all, or a degenerate design: the data's shape
            raise Skip(f"Closing the loop could not be measured: its churn model does not fit these "
                       f"{len(complaints):,} complaints (too few of them, or too alike).") from None
        if not res.converged:
            self.warnings_.append(f"{self.label}: the churn model did not converge; treat its figures with caution.")
        self.reference_period_ = res.reference
        res.remove_data()  # the complainers' design and losses: not kept in the fitted model
        return res, list(res.params.index), adj, periods

    def _log_hazards(self, params: np.ndarray, columns: list[str], adj: pd.DataFrame, periods: list[str],
                     open_: float) -> np.ndarray:
        """Per-year log hazard by interval for every complainer (draws x customers x intervals)."""
        params = np.atleast_2d(params)
        col = {c: i for i, c in enumerate(columns)}
        adj_cols = [c for c in columns if c in adj.columns]
        base = params[:, [col[c] for c in adj_cols]] @ adj[adj_cols].to_numpy(float).T  # draws x customers
        base = base + params[:, [col["const"]]] + open_ * params[:, [col["state[open]"]]]
        per, last = [], np.zeros(len(params))
        reference = getattr(self, "reference_period_", periods[0])  # the fit's (the first with a churn event)
        for p in periods:  # an interval nobody reached carries the one before
            last = (params[:, col[f"period[{p}]"]] if f"period[{p}]" in col
                    else np.zeros(len(params)) if p == reference else last)
            per.append(last)
        per = np.stack(per, axis=-1)  # draws x intervals
        return base[:, :, None] + per[:, None, :]

    # ------------------------------------------------------------------ fit
    @skippable
    def fit(self, complaints: pd.DataFrame) -> "ClosingTheLoop":
        """Fit on a :func:`complaint_history` table; returns ``self`` (with ``skipped_`` set when
        the data cannot support it: no complaints, no complainer who left, every complaint open
        or every one resolved, too few churn events in one state)."""
        return self._fit(complaints)

    def _fit(self, complaints: pd.DataFrame) -> "ClosingTheLoop":
        """The body of :meth:`fit` (undecorated, so that mutmut mutates it)."""
        if complaints.attrs.get("landmark_days", self.landmark_days) != self.landmark_days:
            raise ModelError(f"{self.label}: the complaint history was built with a {complaints.attrs['landmark_days']}"
                             f"-day landmark but the model uses {self.landmark_days} days; pass the same "
                             f"landmark_days to complaint_history and ClosingTheLoop.")
        for reason, n in complaints.attrs.get("excluded", {}).items():
            self.warnings_.append(f"{self.label}: {n} complaints were left out ({reason}).")
        c = complaints.reset_index(drop=True)
        self.n_complainers_ = len(c)
        require(len(c), "Closing the loop needs complaints: the complaint history is empty.")
        n_res, n_open = int(c["resolved"].sum()), int((~c["resolved"].astype(bool)).sum())
        require(c["churned"].any(),
                f"Closing the loop needs complainers who left: none of the {len(c):,} customers who complained has "
                f"an end_date, so churn after a complaint cannot be compared (add end_date to the customers table "
                f"for the customers who left).")
        require(n_res and n_open,
                f"Closing the loop needs both resolved and open complaints: all {len(c):,} first complaints are "
                f"{'open' if n_res == 0 else 'resolved'} (check the resolved and resolved_date columns of contacts).")
        for arm, n in (("resolved", n_res), ("open", n_open)):
            if n < self.min_group_size:
                self.warnings_.append(f"{self.label}: only {n} complaints are {arm}; the comparison is unreliable.")

        cap = _censor(c, self.max_followup_days)
        res, columns, adj, periods = self._fit_churn(cap, speed=False)
        self.churn_result_ = res
        self.periods_ = periods
        b, se = res.params["state[open]"], res.bse["state[open]"]
        lo, hi = res.conf_int().loc["state[open]"]
        require(np.isfinite(se) and se <= 5,
                "Closing the loop needs customers leaving both while a complaint is open and after it is resolved: "
                "too few left in one of the two, so the difference cannot be measured.")
        self.hazard_ratio_ = {"estimate": float(np.exp(b)), "lo": float(np.exp(lo)), "hi": float(np.exp(hi)),
                              "p_value": float(res.pvalues["state[open]"])}

        # by speed: resolved within fast_days vs later
        later = cap["resolved"] & (cap["resolution_days"] > self.fast_days)
        self.speed_ = {"fast_days": self.fast_days, "resolved_fast": int((cap["resolved"] & ~later).sum()),
                       "resolved_later": int(later.sum()), "hazard_ratio_later_vs_fast": None, "ci": [None, None]}
        later_events = int((later & cap["churned"] & (cap["duration_days"] > cap["resolution_days"])).sum())
        res_s, why = None, None
        try:
            res_s = self._fit_churn(cap, speed=True, adj=adj)[0] if later_events >= 10 else None
        except Skip as skip:
            why = str(skip)
        if res_s is not None:
            b = "state[resolved_later]"
            ci = res_s.conf_int().loc[b]
            self.speed_.update(hazard_ratio_later_vs_fast=float(np.exp(res_s.params[b])),
                               ci=[float(np.exp(ci[0])), float(np.exp(ci[1]))])
        elif why:
            self.warnings_.append(f"{why} The speed comparison is not reported.")
        else:
            self.warnings_.append(f"{self.label}: only {later_events} customers left after a complaint resolved "
                                  f"later than {self.fast_days} days; the speed comparison is not reported.")

        # g-computation: 12-month churn if every complaint were resolved at once vs never
        h_res = self._log_hazards(res.params.to_numpy(), columns, adj, periods, 0.0)[0]
        h_open = self._log_hazards(res.params.to_numpy(), columns, adj, periods, 1.0)[0]
        edges = np.minimum(np.asarray(self.intervals, float), DAYS_PER_YEAR) / DAYS_PER_YEAR
        widths = np.diff(edges)
        adjusted_12m = {arm: float(np.mean(1 - np.exp(-(np.exp(h) * widths).sum(axis=1))))
                        for arm, h in (("resolved", h_res), ("open", h_open))}

        # landmark Kaplan-Meier: still there landmark_days after the complaint
        L = self.landmark_days
        at_l = c[c["duration_days"] > L]
        by_l = at_l["resolved"] & (at_l["resolution_days"] <= L)
        observed_12m = {"resolved": km_churn_rate(at_l.loc[by_l, "duration_days"] - L, at_l.loc[by_l, "churned"]),
                        "open": km_churn_rate(at_l.loc[~by_l, "duration_days"] - L, at_l.loc[~by_l, "churned"])}

        self._fit_revenue(c)
        self._value(res, columns, adj, periods)

        state_time = loop_person_periods(cap["duration_days"], cap["resolution_days"], cap["churned"], self.intervals)
        by_state = state_time.groupby("state")[["exposure_years", "event"]].sum()
        rows = []
        for arm in ("resolved", "open"):
            rows.append({
                "arm": arm,
                "complainers": n_res if arm == "resolved" else n_open,
                "landmark_customers": int(by_l.sum() if arm == "resolved" else (~by_l).sum()),
                "customer_years": float(by_state["exposure_years"].get(arm, 0.0)),
                "churn_events": int(by_state["event"].get(arm, 0.0)),
                "observed_rate_12m": observed_12m[arm],
                "adjusted_rate_12m": adjusted_12m[arm],
                "hazard_ratio": 1.0 if arm == "resolved" else self.hazard_ratio_["estimate"],
                "hr_lo": 1.0 if arm == "resolved" else self.hazard_ratio_["lo"],
                "hr_hi": 1.0 if arm == "resolved" else self.hazard_ratio_["hi"],
                **self.revenue_[arm],
            })
        self.summary_ = pd.DataFrame(rows).set_index("arm")
        return self

    def _empty(self) -> None:
        """A skipped fit: no arms, no ratios; the number of complainers stays when it was counted."""
        self.n_complainers_ = getattr(self, "n_complainers_", 0)
        self.hazard_ratio_ = {"estimate": None, "lo": None, "hi": None, "p_value": None}
        self.speed_ = {"fast_days": self.fast_days, "resolved_fast": None, "resolved_later": None,
                       "hazard_ratio_later_vs_fast": None, "ci": [None, None]}
        self.value_ = {}
        self.summary_ = pd.DataFrame(columns=["complainers", "landmark_customers", "customer_years", "churn_events",
                                              "observed_rate_12m", "adjusted_rate_12m", "hazard_ratio", "hr_lo",
                                              "hr_hi", "revenue_observed", "revenue_adjusted", "revenue_ratio",
                                              "revenue_ratio_lo", "revenue_ratio_hi"],
                                     index=pd.Index([], name="arm"))

    def _fit_revenue(self, c: pd.DataFrame) -> None:
        L = self.landmark_days
        h = c[(c["duration_days"] > L) & (c["post_exposure_years"] > 0)]
        open_ = ~(h["resolved"] & (h["resolution_days"] <= L))
        self.revenue_ = {arm: {"revenue_observed": np.nan, "revenue_adjusted": np.nan, "revenue_ratio": np.nan,
                               "revenue_ratio_lo": np.nan, "revenue_ratio_hi": np.nan} for arm in ("resolved", "open")}
        if open_.sum() < 10 or (~open_).sum() < 10:
            self.warnings_.append(f"{self.label}: too few complainers in one arm {L} days after the complaint to "
                                  f"compare revenue.")
            return
        y = h["post_revenue"].clip(lower=0).astype(float)
        X = pd.concat([open_.astype(float).rename("open"), self._adjustment(h, binned=False)], axis=1)
        X = X.loc[:, X.nunique() > 1]  # not std() > 0: a constant float column can have a std of 1e-16
        X.insert(0, "const", 1.0)
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            res = sm.GLM(y, X, family=sm.families.Poisson(), offset=np.log(h["post_exposure_years"])).fit(
                cov_type="HC1", maxiter=100)
        self.revenue_result_ = res
        ci = res.conf_int().loc["open"]
        ratio = float(np.exp(res.params["open"]))
        for arm, flag in (("resolved", 0.0), ("open", 1.0)):
            Xa = X.assign(open=flag)
            obs = h[open_ == bool(flag)]
            self.revenue_[arm] = {
                "revenue_observed": float(obs["post_revenue"].sum() / obs["post_exposure_years"].sum()),
                "revenue_adjusted": float(np.mean(np.exp(Xa.to_numpy() @ res.params.to_numpy()))),
                "revenue_ratio": 1.0 if not flag else ratio,
                "revenue_ratio_lo": 1.0 if not flag else float(np.exp(ci[0])),
                "revenue_ratio_hi": 1.0 if not flag else float(np.exp(ci[1])),
            }
        keep_estimates(res)  # not its rows: the fitted model comes back from a second process whole

    def _value(self, res, columns: list[str], adj: pd.DataFrame, periods: list[str]) -> None:
        adj_u, weight = adj, np.full(len(adj), 1.0 / len(adj))  # continuous terms: each complainer their own

        def kept(params, rows=None):
            a, w = (adj_u, weight) if rows is None else (adj_u.iloc[rows], np.full(len(rows), 1.0 / len(rows)))
            years = [(_discounted_years(self._log_hazards(params, columns, a, periods, o), self.intervals,
                                        self.horizon_years, self.discount_rate) * w).sum(axis=-1)
                     for o in (0.0, 1.0)]
            return years[0] - years[1], years[0], years[1]

        self.years_ = dict(zip(("kept", "if_resolved", "if_open"), (float(x[0]) for x in kept(res.params.to_numpy()))))
        rng = np.random.default_rng(self.seed)
        draws = rng.multivariate_normal(res.params.to_numpy(), res.cov_params().to_numpy(), size=self.draws,
                                        method="eigh")
        # the draws' spread, on at most value_sample complainers (draws x complainers x intervals would
        # not fit in memory at a million customers), shifted to the estimate over all of them
        rows = None
        if len(adj_u) > self.value_sample:
            rows = np.sort(rng.choice(len(adj_u), self.value_sample, replace=False))
        years_kept = self.years_["kept"]
        shift = years_kept - (kept(res.params.to_numpy(), rows)[0][0] if rows is not None else years_kept)
        kept_draws = np.concatenate([kept(draws[i:i + 50], rows)[0] for i in range(0, len(draws), 50)])
        self.years_kept_draws_ = kept_draws + shift
        self._price()

    def price(self, gross_margin: float | None = None,
              cost_to_serve_per_customer_year: float | None = None) -> "ClosingTheLoop":
        """Value the fitted model at this margin (``gross_margin`` on revenue, less
        ``cost_to_serve_per_customer_year``; either left as it is when None): the fit does not
        depend on them, so a model fitted before the margin was known (``cxvalue run`` fits it
        beside the linkage models that give the cost to serve) is priced afterwards. Returns ``self``."""
        if gross_margin is not None:
            self.gross_margin = gross_margin
        if cost_to_serve_per_customer_year is not None:
            self.cost_to_serve_per_customer_year = cost_to_serve_per_customer_year
        if hasattr(self, "years_kept_draws_"):  # fitted, not skipped (a refit or skip deletes it)
            self._price()
        return self

    def _price(self) -> None:
        """``value_``: the discounted customer-years kept (``years_``, ``years_kept_draws_``) at the margin."""
        if self.margin_per_customer_year is not None:
            margin = float(self.margin_per_customer_year)
        else:
            revenue = self.revenue_["resolved"]["revenue_adjusted"]
            margin = self.gross_margin * revenue - self.cost_to_serve_per_customer_year
        lo, hi = np.percentile(self.years_kept_draws_ * margin, [2.5, 97.5])
        self.value_ = {
            "value_per_resolved_complaint": self.years_["kept"] * margin,
            "value_ci": [float(lo), float(hi)],
            "customer_years_kept": self.years_["kept"],
            "customer_years_if_resolved": self.years_["if_resolved"],
            "customer_years_if_open": self.years_["if_open"],
            "margin_per_customer_year": margin,
            "horizon_years": self.horizon_years,
            "discount_rate": self.discount_rate,
        }
        note = f"{self.label}: no margin per customer-year, so the value of closing a loop is not reported."
        if note in self.warnings_:  # priced again
            self.warnings_.remove(note)
        if not np.isfinite(margin):
            self.warnings_.append(note)

    @property
    def summary(self) -> pd.DataFrame:
        """Per arm (resolved, open): complainers, time at risk and churn events in each state,
        observed (landmark Kaplan-Meier) and adjusted 12-month churn, hazard ratio with 95% CI,
        observed and adjusted revenue per customer-year after the landmark, revenue ratio."""
        return self.summary_

    def results(self) -> dict[str, Any]:
        """The ``drivers.closing_the_loop`` block of ``results.json`` (``skipped``: None or the reason)."""
        s = self.summary_
        arms = {arm: {"complainers": int(r["complainers"]), "observed_rate_12m": _num(r["observed_rate_12m"]),
                      "adjusted_rate_12m": _num(r["adjusted_rate_12m"]),
                      "revenue_observed": _num(r["revenue_observed"]), "revenue_adjusted": _num(r["revenue_adjusted"])}
                for arm, r in s.iterrows()}
        rev = s.loc["open"] if "open" in s.index else pd.Series(dtype=float)
        return {
            "skipped": self.skipped_,
            "n_complainers": int(self.n_complainers_),
            "resolved_share": (float(s.loc["resolved", "complainers"] / self.n_complainers_)
                               if "resolved" in s.index else None),
            "landmark_days": self.landmark_days,
            "hazard_ratio_open_vs_resolved": self.hazard_ratio_["estimate"],
            "hazard_ratio_ci": [self.hazard_ratio_["lo"], self.hazard_ratio_["hi"]],
            "revenue_ratio_open_vs_resolved": _num(rev.get("revenue_ratio")),
            "revenue_ratio_ci": [_num(rev.get("revenue_ratio_lo")), _num(rev.get("revenue_ratio_hi"))],
            "arms": arms,
            "by_speed": dict(self.speed_),
            "value_of_closing_a_loop": {k: (_num(v) if not isinstance(v, list) else [_num(x) for x in v])
                                        for k, v in self.value_.items()},
        }

    def _repr_html_(self) -> str:
        """In Jupyter: the name, the skipped reason or the summary table, the caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, "Closing the loop on complaints")
