"""Customers who never cancel: how often each satisfaction group buys, how soon it stops, and its worth.

In a non-contractual business (retail, e-commerce, hospitality, marketplaces) nobody is seen
leaving: buyers simply stop coming back, so the data has no ``end_date``. :class:`PurchaseModel`
fits the BG/NBD model (:class:`cxvalue.btyd.BGNBD`) on each respondent's purchases from their
survey on, with the satisfaction group and the linkage models' controls
(:func:`cxvalue.linkage.adjustment_frame`, plus the pre-window purchase rate) as time-invariant
covariates of both processes, and the Gamma-Gamma model of spend per purchase
(:class:`cxvalue.btyd.GammaGamma`) on the repeat buyers.

Clock and units: the survey is each respondent's "birth". Purchase days after the survey day,
up to ``as_of``, are the repeat purchases ``x`` (several transactions on one day are one
purchase; a day whose amounts add up to zero or less is not a purchase); ``t_x`` is the last one
and ``T = as_of - survey day``, in weeks. The business case works in years of
:data:`WEEKS_PER_YEAR` weeks.

The money (:func:`purchase_rate_at`, :func:`pricing_rows`): alive, a customer buys at rate
``lambda`` and drops out after each purchase with probability ``p``, so ``s`` weeks on they are
still alive with probability ``exp(-lambda p s)`` and buy at expected rate
``lambda exp(-lambda p s)``. Given their history (``x``, ``t_x``, ``T``) a customer is alive with
``P(alive)``, and then ``lambda ~ Gamma(r + x, alpha_i + T)`` and ``p ~ Beta(a_i, b + x)``,
independently, so their expected purchase rate ``s`` weeks after ``as_of`` is

    rate_i(s) = P(alive_i) (r + x) / (alpha_i + T) 2F1(r + x + 1, a_i; a_i + b + x; -s / (alpha_i + T))

(Euler's integral of the Beta mean of ``(1 + p s / beta)^-(k + 1)``). Its integral over ``(0, t)``
is BG/NBD's conditional expectation ``E[X(T, T + t] | x, t_x, T]`` (Fader, Hardie & Lee 2005a,
eq. 10), which the tests check. Moving a customer from group ``g`` to ``h`` multiplies their
``lambda`` by the purchase-rate ratio ``h / g`` and their dropout ``a_i`` by the dropout ratio
``h / g``; their history and whether they are still alive stay theirs.

A row of the business case (:func:`cxvalue.business_case.scenario_cash_flows`) then has
``revenue`` = spend per purchase x the purchase rate today x weeks per year (money per
customer-year at today's rate) and ``survival`` = the rate at the end of each year as a share of
today's (the share of today's buying still going on), so that revenue x the trapezoid of that
curve is the expected revenue of each year.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from cxvalue.btyd import BGNBD, GammaGamma
from cxvalue.exceptions import InputError, ModelError
from cxvalue.history import DAYS_PER_YEAR
from cxvalue.linkage import _group_summary, _labels, _rate, _Skippable, adjustment_frame

__all__ = ["WEEKS_PER_YEAR", "PurchaseModel", "purchase_summary", "purchase_rate_at", "expected_purchases",
           "pricing_rows",
           "business_model", "NON_CONTRACTUAL_CHURN"]

WEEKS_PER_YEAR = DAYS_PER_YEAR / 7
#: The CLV per group is standardised over at most this many respondents' profiles (a seeded sample above it).
STANDARDISE_ROWS = 100_000
#: Why the churn model is not fitted in non-contractual mode (``results.json["skipped"]["linkage.churn"]``).
NON_CONTRACTUAL_CHURN = ("Churn: these customers never cancel (non-contractual business), so nobody is seen leaving. "
                         "How soon each group stops buying is measured by the purchase model instead (dropout ratio).")


def business_model(params: dict[str, Any], data) -> tuple[str, str]:
    """The business model a run uses, and why, in a sentence the report shows.

    ``params["business_model"]``: ``contractual`` or ``non_contractual`` as given; ``auto`` is
    non-contractual when no customer of the checked customers table has an ``end_date`` (the
    column is absent or empty), contractual otherwise.
    """
    chosen = params.get("business_model", "auto")
    if chosen == "contractual":
        return chosen, "Contractual (customers cancel), as the run's business_model parameter says."
    if chosen == "non_contractual":
        return chosen, ("Non-contractual (customers never cancel; they stop buying), as the run's business_model "
                        "parameter says.")
    c = data.tables["customers"]
    ended = int(c.filter(c.end_date.notnull()).count().to_pandas())
    if ended:
        return "contractual", (f"Contractual (customers cancel): {ended:,} customers have an end_date "
                               f"(business_model = auto).")
    return "non_contractual", ("Non-contractual (customers never cancel; they stop buying): no customer has an "
                               "end_date, so how long customers stay is read from when they buy "
                               "(business_model = auto).")


def purchase_summary(data, hist: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Each respondent's purchases after their survey: ``x``, ``t_x``, ``T`` (weeks) and
    ``mean_spend`` (currency per purchase day, 0 without one) and ``first_weeks`` (weeks to the
    first purchase after the survey, NaN without one), indexed like ``hist``.

    One Ibis query over the checked transactions (it runs where the data is: DuckDB, Spark, ...):
    the days with a positive total after the survey day, up to ``as_of``.
    """
    import datetime as dt

    import ibis

    from cxvalue.history import _index_responses

    t = data.tables["transactions"]
    idx = _index_responses(data, params).select("customer_id", "response_date")
    as_of = ibis.literal(data.as_of, type="date")
    j = t.inner_join(idx, "customer_id")
    j = j.filter(j.amount.notnull(), j.date > j.response_date, j.date <= as_of)
    days = j.group_by(["customer_id", "date"]).aggregate(spend=j.amount.sum())
    days = days.filter(days.spend > 0)
    per = days.group_by("customer_id").aggregate(x=days.date.count(), first=days.date.min(), last=days.date.max(),
                                                  spend=days.spend.mean())
    got = per.to_pyarrow().to_pandas(date_as_object=False)
    got = got.set_index("customer_id")
    ids = hist["customer_id"]
    x = got["x"].reindex(ids).fillna(0).to_numpy(np.int64)
    last = pd.to_datetime(got["last"].reindex(ids)).to_numpy()
    first = pd.to_datetime(got["first"].reindex(ids)).to_numpy()
    survey = pd.to_datetime(hist["response_date"]).to_numpy()
    end = np.datetime64(dt.date.fromisoformat(str(data.as_of)), "ns")
    week = np.timedelta64(7, "D")
    out = pd.DataFrame({
        "x": x,
        "t_x": np.where(x > 0, (last - survey) / week, 0.0),
        "T": (end - survey) / week,
        "mean_spend": got["spend"].reindex(ids).fillna(0.0).to_numpy(float),
        "first_weeks": (first - survey) / week,
    }, index=hist.index)
    out["t_x"] = out["t_x"].fillna(0.0)
    return out


def _controls(hist: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """What the purchase model adjusts for: the linkage models' controls plus the pre-window
    purchase rate (``log(1 + transactions per year)``), constant columns dropped."""
    frame = adjustment_frame(hist, covariates)
    frame["log_pre_purchase_rate"] = np.log1p(_rate(hist["pre_transactions"], hist["pre_exposure_years"]).fillna(0.0))
    keep = [c for c in frame.columns if frame[c].nunique(dropna=False) > 1]
    return frame[keep].astype(float)


class PurchaseModel(_Skippable):
    """BG/NBD with the satisfaction group and controls, and Gamma-Gamma spend, on the respondents.

    ``fit(data, hist, params)`` fits both; ``summary`` has one row per group: ``customers``,
    ``purchase_rate_ratio`` and ``dropout_ratio`` (vs the reference group, other covariates equal)
    with 95% intervals (``*_lo``, ``*_hi``), and the means over the group's respondents of
    ``expected_purchases_12m`` (in the next 12 months, given their history), ``p_alive`` (still a
    buyer at ``as_of``), ``spend_per_purchase`` (Gamma-Gamma, currency) and
    ``expected_revenue_12m`` (currency per customer); ``repeat_rate_12m``, the observed share who
    bought again within 12 months of the survey (among those followed that long). Skipped with
    a plain reason when the data cannot support the fit (nobody bought again, a group without a
    repeat buyer).
    """

    label = "Purchases"
    estimates = ("purchase_rate_ratio", "purchase_rate_ratio_lo", "purchase_rate_ratio_hi", "dropout_ratio",
                 "dropout_ratio_lo", "dropout_ratio_hi", "expected_purchases_12m", "p_alive", "spend_per_purchase",
                 "expected_revenue_12m", "repeat_rate_12m")

    def __init__(self, reference_group: str, covariates: list[str] | None = None, min_group_size: int = 100):
        self.reference_group = reference_group
        self.covariates = list(covariates or [])
        self.min_group_size = min_group_size
        self.warnings_: list[str] = []

    def fit(self, data, hist: pd.DataFrame, params: dict[str, Any], frame: pd.DataFrame | None = None) -> PurchaseModel:
        """Fit on the history's respondents (``frame``: their :func:`purchase_summary`, when known)."""
        frame = purchase_summary(data, hist, params) if frame is None else frame
        return self.fit_frame(hist, frame)

    def fit_frame(self, hist: pd.DataFrame, frame: pd.DataFrame) -> PurchaseModel:
        """Fit on ``frame`` (``x``, ``t_x``, ``T`` in weeks, ``mean_spend``), one row per ``hist`` row."""
        self.skipped_ = None
        self.warnings_ = []
        self.groups_ = _labels(hist)
        observed = frame["T"] > 0  # answered on as_of: no time observed yet
        if not observed.any():
            return self.skip(hist, "Purchases: no respondent has any time observed after their survey, so how often "
                                   "and how long each group buys cannot be measured.")
        controls = _controls(hist, self.covariates)
        work = pd.concat([frame, controls], axis=1)
        work["group"] = hist["group"].astype(str)
        labels = [g for g in self.groups_ if (work.loc[observed, "group"] == g).any()]
        # a group nobody of which was observed is missing (pandas 4 will refuse values outside the categories)
        work = work.assign(group=pd.Categorical(work["group"].where(work["group"].isin(labels)), categories=labels))
        fit_rows = work[observed & work["group"].notna()]
        try:
            self.bgnbd_ = BGNBD("group", self.reference_group).fit(fit_rows, list(controls.columns))
        except (ModelError, InputError) as exc:
            return self.skip(hist, f"Purchases: the buy-till-you-die model could not be fitted: {exc}")
        try:
            self.spend_ = GammaGamma().fit(fit_rows[fit_rows["mean_spend"] > 0])
            if not np.isfinite(self.spend_.population_mean_spend):
                raise ModelError("spend per purchase has no finite mean (q <= 1)")
        except (ModelError, InputError) as exc:
            self.spend_ = None
            self.warnings_.append(f"Purchases: spend per purchase is each customer's own mean (the Gamma-Gamma model "
                                  f"could not be fitted: {exc}).")
        self.frame_ = work
        self.controls_ = list(controls.columns)
        self.fitted_rows_ = fit_rows.index
        self.summary_ = self._summary(hist, work, fit_rows)
        return self

    @property
    def summary(self) -> pd.DataFrame:
        """Per group: the ratios with their 95% intervals and the customers' expected next year (see the class)."""
        return self.summary_

    # ------------------------------------------------------------------ per customer

    def spend(self, rows: pd.DataFrame) -> np.ndarray:
        """Expected spend per purchase of each row (Gamma-Gamma; each one's own mean without it)."""
        if self.spend_ is not None:
            return self.spend_.expected_spend(rows)
        own = rows["mean_spend"].to_numpy(float)
        typical = float(self.frame_.loc[self.frame_["x"] > 0, "mean_spend"].mean())
        return np.where(rows["x"].to_numpy() > 0, own, typical)

    def population_spend(self) -> float:
        """Spend per purchase of a new customer: the Gamma-Gamma mean (the repeat buyers' mean without it)."""
        if self.spend_ is not None:
            return self.spend_.population_mean_spend
        f = self.frame_
        return float(f.loc[f["x"] > 0, "mean_spend"].mean())

    def _summary(self, hist: pd.DataFrame, work: pd.DataFrame, fit_rows: pd.DataFrame) -> pd.DataFrame:
        eff = self.bgnbd_.group_effects_
        weeks = WEEKS_PER_YEAR
        per = pd.DataFrame({"group": fit_rows["group"].astype(str).to_numpy(),
                            "expected_purchases_12m": expected_purchases(self.bgnbd_, fit_rows, weeks),
                            "p_alive": self.bgnbd_.probability_alive(fit_rows),
                            "spend_per_purchase": self.spend(fit_rows)})
        per["expected_revenue_12m"] = per["expected_purchases_12m"] * per["spend_per_purchase"]
        year = work["T"] >= weeks  # followed a full year: did they buy again within it?
        again = work["first_weeks"] <= weeks if "first_weeks" in work else pd.Series(np.nan, index=work.index)
        rows = []
        for g in self.groups_:
            row: dict[str, Any] = {"group": g, "customers": int((hist["group"].astype(str) == g).sum())}
            if g in eff.index:
                e = eff.loc[g]
                row.update({"purchase_rate_ratio": e["purchase_rate_ratio"],
                            "purchase_rate_ratio_lo": e["purchase_rate_ratio_lower"],
                            "purchase_rate_ratio_hi": e["purchase_rate_ratio_upper"],
                            "dropout_ratio": e["dropout_ratio"], "dropout_ratio_lo": e["dropout_ratio_lower"],
                            "dropout_ratio_hi": e["dropout_ratio_upper"]})
                means = per[per["group"] == g].drop(columns="group").mean()
                row.update(means.to_dict())
            followed = year & (work["group"].astype(str) == g)
            row["repeat_rate_12m"] = float(again[followed].mean()) if followed.any() else np.nan
            rows.append(row)
        out = _group_summary(rows, self.label, self.min_group_size, self.warnings_)
        return out.reindex(columns=["customers", *self.estimates, "small_group"])

    # ------------------------------------------------------------------ results

    def results(self) -> dict[str, Any]:
        """The ``linkage.purchases`` block of ``results.json``."""
        def num(v):
            return None if pd.isna(v) else float(v)

        out: dict[str, Any] = {}
        for g, r in self.summary_.iterrows():
            out[str(g)] = {k: num(r[k]) for k in self.estimates if k in r} | {
                "customers": int(r["customers"]), "small_group": bool(r["small_group"])}
            for k in ("purchase_rate_ratio", "dropout_ratio"):
                out[str(g)][f"{k}_ci"] = [num(r[f"{k}_lo"]), num(r[f"{k}_hi"])]
                out[str(g)].pop(f"{k}_lo", None)
                out[str(g)].pop(f"{k}_hi", None)
        if self.skipped_ is None:
            out["_model"] = {"parameters": {k: float(v) for k, v in self.bgnbd_.params_.items()},
                             "log_likelihood": self.bgnbd_.log_likelihood_,
                             "spend": (None if self.spend_ is None else
                                       {k: float(v) for k, v in self.spend_.params_.items()}),
                             "controls": list(self.controls_), "time_unit": "weeks",
                             "customers_fitted": int(len(self.fitted_rows_))}
        return out


# --------------------------------------------------------------------------- the money


def _hyp2f1_negative(a, b, c, s_over_beta):
    """``2F1(a, b; c; -y)`` for ``y >= 0`` through Pfaff's transformation, which maps the argument
    into ``[0, 1)`` where scipy's series is reliable: ``(1 + y)^-b 2F1(b, c - a; c; y / (1 + y))``."""
    y = np.asarray(s_over_beta, float)
    return (1 + y) ** (-b) * special.hyp2f1(b, c - a, c, y / (1 + y))


def purchase_rate_at(model: BGNBD, rows: pd.DataFrame, weeks, as_group: str | None = None,
                     fresh: bool = False) -> np.ndarray:
    """Expected purchases per week of each row ``weeks`` after the end of its data (rows x weeks).

    ``as_group``: as if the customers were of that group from now on (their rate and dropout
    scaled by the group effects; history and P(alive) their own). ``fresh``: a new customer at
    birth with the row's covariates (``x = 0``, ``T = 0``, alive for sure). See the module's
    formula.
    """
    weeks = np.atleast_1d(np.asarray(weeks, float))
    if fresh:
        rows = rows.assign(x=0, t_x=0.0, T=0.0)
    r, alpha, a, b, x, _t_x, T = model._individual(rows)
    alive = model.probability_alive(rows)
    if as_group is not None and model.group is not None:
        moved = rows.assign(**{model.group: pd.Categorical([as_group] * len(rows), categories=model.group_labels_)})
        _, alpha_h, a_h, *_ = model._individual(moved)
        scale = alpha / alpha_h  # lambda_i = exp(g1'z) Gamma(r, alpha): the move multiplies it by this
    else:
        a_h, scale = a, np.ones(len(rows))
    beta = (alpha + T) / scale
    shape = r + x
    y = weeks[None, :] / beta[:, None]
    big = shape > 1e4  # a near-degenerate gamma (no spread of rates left): its limit, 1F1(a; a + b + x; -rate s)
    with np.errstate(all="ignore"):
        hyp = np.where(big[:, None], special.hyp1f1(a_h[:, None], (a_h + b + x)[:, None], -(shape / beta)[:, None] * weeks),
                       _hyp2f1_negative((shape + 1)[:, None], a_h[:, None], (a_h + b + x)[:, None], y))
    if not np.isfinite(hyp).all():
        raise ModelError("Purchases: the expected rate of buying could not be evaluated for "
                         f"{int((~np.isfinite(hyp)).any(axis=1).sum())} customers (the fit's parameters are extreme).")
    return (alive * shape / beta)[:, None] * hyp


def expected_purchases(model: BGNBD, rows: pd.DataFrame, weeks: float) -> np.ndarray:
    """E[X(T, T + weeks] | history] per row: BG/NBD's closed form (eq. 10), or, where that is not
    finite (a near-degenerate fit), the integral of :func:`purchase_rate_at` (Simpson, 1 node a week)."""
    out = np.asarray(model.expected_purchases(weeks, rows), float)
    bad = ~np.isfinite(out)
    if bad.any():
        from scipy import integrate

        grid = np.linspace(0.0, weeks, 2 * int(np.ceil(weeks / 2)) + 1)
        out[bad] = integrate.simpson(purchase_rate_at(model, rows[bad], grid), x=grid, axis=1)
    return out


def _row(model: PurchaseModel, rows: pd.DataFrame, as_group: str | None, w: np.ndarray, horizon_years: int,
         fresh: bool = False) -> tuple[float, np.ndarray]:
    """(revenue per customer-year at today's rate, share of today's buying left at the end of years 1..H)."""
    weeks = WEEKS_PER_YEAR * np.arange(0, horizon_years + 1)
    rate = purchase_rate_at(model.bgnbd_, rows, weeks, as_group, fresh)
    spend = np.full(len(rows), model.population_spend()) if fresh else model.spend(rows)
    money = np.average(spend[:, None] * rate, axis=0, weights=w)  # currency per week at each year end
    if money[0] <= 0:
        return 0.0, np.zeros(horizon_years)
    return float(money[0] * WEEKS_PER_YEAR), np.clip(money[1:] / money[0], 0.0, 1.0)


def group_rows(model: PurchaseModel, cost_to_serve, base_customers: pd.Series, horizon_years: int) -> pd.DataFrame:
    """One row per group, standardised over every fitted respondent as a new customer of it:
    ``customers`` (today's base), ``revenue`` (currency per customer-year at the start),
    ``cost_to_serve``, ``referrals`` (0), ``hazard_ratio`` (the dropout ratio, which the
    simulation varies) and ``survival`` (share of the starting rate of buying left after each
    year). What a customer of each group is worth: the CLV per group."""
    rows = model.frame_.loc[model.fitted_rows_]
    if len(rows) > STANDARDISE_ROWS:  # a mean over the base's profiles: a seeded sample of them is enough
        rows = rows.sample(STANDARDISE_ROWS, random_state=0)
    w = np.ones(len(rows))
    out = {}
    cost = (cost_to_serve.summary["adjusted"] if cost_to_serve is not None and cost_to_serve.fitted
            else pd.Series(0.0, index=model.summary_.index))
    for g in model.summary_.index:
        if g not in model.bgnbd_.group_labels_:
            out[g] = {"revenue": np.nan, "survival": np.full(horizon_years, np.nan)}
            continue
        revenue, survival = _row(model, rows, g, w, horizon_years, fresh=True)
        out[g] = {"revenue": revenue, "survival": survival}
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.insert(0, "customers", base_customers.reindex(frame.index).fillna(0.0).astype(float))
    frame["cost_to_serve"] = cost.reindex(frame.index).astype(float).fillna(0.0)
    frame["referrals"] = 0.0
    frame["hazard_ratio"] = model.summary_["dropout_ratio"].reindex(frame.index).astype(float).fillna(1.0)
    return frame


def pricing_rows(model: PurchaseModel, hist: pd.DataFrame, cost_to_serve, moves: list[tuple[str, str]],
                 base_customers: pd.Series, horizon_years: int, weights: pd.Series | None = None) -> pd.DataFrame:
    """The scenario's movers priced on their own purchase histories, in the shape of
    :func:`cxvalue.movers.mover_rows`: for every move ``(g, h)`` the respondents of ``g`` as they
    are (row ``g``) and as ``h`` (row ``"g as h"``), with ``customers``, ``movers``,
    ``movers_effective``, ``as_group``, ``revenue``, ``cost_to_serve`` (the cost model's
    prediction per customer-year, assumed to shrink as their buying does), ``referrals`` (0),
    ``hazard_ratio`` (dropout ratio of ``as_group``) and ``survival``. Everybody who answered
    is a mover (nobody is seen leaving); whether they still buy is in P(alive).
    """
    from cxvalue.movers import _mean_prediction, row_name

    H = int(horizon_years)
    frame = model.frame_.loc[model.fitted_rows_]
    dropout = model.summary_["dropout_ratio"]
    out = {}
    for g, h in moves:
        movers = frame[frame["group"].astype(str) == g]
        if movers.empty:
            continue
        w = (np.ones(len(movers)) if weights is None
             else weights.reindex(movers.index).fillna(1.0).to_numpy(float))
        for as_group in (g, h):
            name = row_name(g, as_group)
            if name in out:
                continue
            revenue, survival = _row(model, movers, as_group if as_group != g else None, w, H)
            cost = _mean_prediction(cost_to_serve, movers.index, as_group, w)
            out[name] = {"customers": float(base_customers.get(g, 0.0)), "movers": len(movers),
                         "movers_effective": float(w.sum() ** 2 / (w ** 2).sum()), "as_group": as_group,
                         "revenue": revenue, "cost_to_serve": cost, "referrals": 0.0,
                         "hazard_ratio": float(dropout.get(as_group, 1.0)), "survival": survival}
    rows = pd.DataFrame.from_dict(out, orient="index")
    if rows.empty:
        rows = pd.DataFrame(columns=["customers", "movers", "movers_effective", "as_group", "revenue", "cost_to_serve",
                                     "referrals", "hazard_ratio", "survival"])
    rows["hazard_ratio"] = rows["hazard_ratio"].astype(float).fillna(1.0)
    rows.index.name = "row"
    return rows


def effect_draws(model: PurchaseModel, n_draws: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Joint draws of every group's purchase-rate and dropout ratios (from the BG/NBD estimates'
    covariance), each relative to its point estimate, with ``_level`` 1: the
    (revenue, hazard) draws :func:`cxvalue.business_case.npv_distribution` takes. The revenue
    of a row scales with its purchase-rate draw; its curve of buying left is raised to the
    power of its dropout draw (exact when dropout per purchase is small)."""
    fit = model.bgnbd_
    labels = [g for g in fit.group_labels_ if g != fit.reference_group]
    names = [f"{proc}:group[{g}]" for proc in ("purchase", "dropout") for g in labels]
    cov = fit.covariance_.loc[names, names].to_numpy()
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_draws, len(vals))) @ (vecs * np.sqrt(np.clip(vals, 0.0, None))).T
    k = len(labels)
    rate = pd.DataFrame(np.exp(z[:, :k]), columns=labels)
    drop = pd.DataFrame(np.exp(z[:, k:]), columns=labels)
    for d in (rate, drop):
        d[fit.reference_group] = 1.0
        d["_level"] = 1.0
    return rate, drop
