"""Who answered the surveys: respondents vs non-respondents, and response-propensity weights
that carry per-group figures over to the whole base.

:class:`WhoAnswered` (``drivers.who_answered`` in ``results.json``); input: :func:`response_base`.
Units: money per customer per year in the data's currency.
"""

from __future__ import annotations

import warnings as _warnings
from typing import Any

import ibis
import numpy as np
import pandas as pd
import statsmodels.api as sm

from cxvalue.data import CheckedData
from cxvalue.history import DAYS_PER_YEAR, study_bounds
from cxvalue.linkage import MIN_PRE_DAYS, keep_estimates
from cxvalue.skipping import require, skippable

__all__ = ["response_base", "WhoAnswered"]


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def response_base(data: CheckedData, hist: pd.DataFrame, params: dict[str, Any], current_only: bool = False) -> pd.DataFrame:
    """Every customer who could have answered, respondents and non-respondents, side by side.

    The base: customers who were customers at some point in the study window
    (``study_start``, default the earliest index response, to ``study_end``, default
    ``as_of``). Respondents (customers in ``hist``) are measured at their index response;
    non-respondents at a *reference date*: the middle of their time as a customer inside the
    window (where a response date falls on average when survey timing is unrelated to tenure).

    Returns
    -------
    DataFrame, one row per customer: ``customer_id``, ``responded``, ``reference_date``,
    ``group`` (respondents only), every customer covariate, ``tenure_years`` at the reference
    date, ``pre_revenue_per_year`` (revenue in the ``window_months`` before it per year; NaN
    under 28 days of history), ``churned_12m`` (left within a year of it: 1/0, NaN when less
    than a year was observed), and ``post_revenue`` / ``post_exposure_years`` from ``hist``
    (respondents only). ``current_only``: only today's customers (no ``end_date``).
    """
    months = int(params["window_months"])
    study_start, study_end = study_bounds(data, params)
    if study_start is None:
        study_start = pd.Timestamp(hist["response_date"].min()).date() if len(hist) else study_end
    cust = data.tables["customers"]
    s_lit, e_lit = ibis.literal(study_start, type="date"), ibis.literal(study_end, type="date")
    base = cust.filter(cust.start_date <= e_lit, cust.end_date.isnull() | (cust.end_date >= s_lit))
    if current_only:
        base = base.filter(base.end_date.isnull())
    idx = ibis.memtable(pd.DataFrame({"customer_id": hist["customer_id"].astype(str).to_numpy(),
                                      "index_date": pd.to_datetime(hist["response_date"]).dt.date.to_numpy()}))
    base = base.left_join(idx.cast({"index_date": "date"}), "customer_id").drop("customer_id_right")
    lo = ibis.greatest(base.start_date, s_lit)
    hi = ibis.least(base.end_date.fill_null(e_lit), e_lit)
    mid = (lo + (hi.delta(lo, unit="day") // 2).as_interval("D")).cast("date")
    base = base.mutate(reference_date=base.index_date.fill_null(mid))
    base = base.mutate(pre_start=ibis.greatest(base.start_date,
                                               (base.reference_date - ibis.interval(months=months)).cast("date")))
    win = base.select("customer_id", "pre_start", "reference_date")  # inside each customer's dates
    t = data.in_windows("transactions")
    tj = t.inner_join(win, "customer_id").filter(ibis._.amount.notnull())
    in_pre = (tj.date >= tj.pre_start) & (tj.date < tj.reference_date)
    tx = tj.group_by("customer_id").aggregate(pre_revenue=ibis.cases((in_pre, tj.amount), else_=ibis.literal(0.0)).sum())
    covariates = [c for c in data.covariates if c in base.columns]
    out = base.left_join(tx, "customer_id").select("customer_id", "start_date", "end_date", "reference_date",
                                                   "pre_start", "index_date", "pre_revenue", *covariates)
    df = out.order_by("customer_id").to_pyarrow().to_pandas(date_as_object=False)
    for col in ("start_date", "end_date", "reference_date", "pre_start", "index_date"):
        df[col] = pd.to_datetime(df[col])
    as_of = pd.Timestamp(data.as_of)
    df["responded"] = df.pop("index_date").notna()
    df["tenure_years"] = (df["reference_date"] - df["start_date"]).dt.days / DAYS_PER_YEAR
    pre_days = (df["reference_date"] - df.pop("pre_start")).dt.days
    df["pre_revenue_per_year"] = (df.pop("pre_revenue").fillna(0) / (pre_days / DAYS_PER_YEAR)).where(
        pre_days >= MIN_PRE_DAYS)
    follow = (df["end_date"].fillna(as_of).clip(upper=as_of) - df["reference_date"]).dt.days
    left = df["end_date"].notna() & (df["end_date"] <= as_of)
    df["churned_12m"] = np.where(left & (follow <= DAYS_PER_YEAR), 1.0, np.where(follow >= DAYS_PER_YEAR, 0.0, np.nan))
    # each customer's row of the history (-1: none, a non-respondent), looked up once for the three columns
    row = pd.Index(hist["customer_id"].astype(str)).get_indexer(df["customer_id"].astype(str))
    for col, values in (("group", hist["group"].astype(str)), ("post_revenue", hist["post_revenue"]),
                        ("post_exposure_years", hist["post_exposure_years"])):
        df[col] = values.reset_index(drop=True).reindex(row).set_axis(df.index)
    return df.drop(columns=["start_date", "end_date"])


def _weighted_mean_var(x: pd.Series, w: pd.Series | None = None) -> tuple[float, float]:
    ok = x.notna()
    x = x[ok].astype(float)
    w = pd.Series(1.0, index=x.index) if w is None else w[ok].astype(float)
    if w.sum() <= 0:
        return np.nan, np.nan
    m = float(np.average(x, weights=w))
    return m, float(np.average((x - m) ** 2, weights=w))


def _std_diff(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Standardised difference ``(mean_a - mean_b) / sqrt((var_a + var_b) / 2)`` (Austin 2009)."""
    pooled = np.sqrt((a[1] + b[1]) / 2)
    return float((a[0] - b[0]) / pooled) if pooled > 0 else 0.0


class WhoAnswered:
    """Respondents vs non-respondents, and weights that make respondents stand for the base.

    ``summary``: one row per characteristic (each level of a text covariate as a share, each
    numeric covariate, tenure, revenue per year before the reference date, churn within 12
    months): mean for respondents, non-respondents, all customers and weighted respondents;
    standardised differences respondents vs non-respondents (``std_diff``) and weighted
    respondents vs all customers (``std_diff_weighted``). Above 0.1 is the usual sign of
    imbalance.

    Response propensity: a logistic regression (statsmodels GLM, binomial) of answering on
    the customer covariates and tenure (text covariates as categories, rare levels pooled;
    numeric ones as quintile bins plus ``log(1 + x)``). Each respondent gets the stabilised
    inverse-propensity weight ``P(answer) / p(answer | x)`` (mean about 1), capped at the
    ``trim_quantile`` quantile of the respondents' weights to keep a few customers from
    dominating; ``effective_sample_size_`` = ``(sum w)^2 / sum w^2``.

    ``group_values_``: per satisfaction group, the share of respondents and post-window
    revenue per customer-year (sum of revenue / sum of exposure), without and with the
    weights: what the per-group figures look like once respondents are re-weighted to the
    whole base's mix. The weights correct for what the covariates show, not for reasons to
    answer the data does not hold. Churn after the reference date differs even after
    weighting, by construction: a respondent was still a customer on the day they answered,
    while non-respondents include customers who left before anyone could ask them.
    """

    label = "Who answered"

    def __init__(self, covariates: list[str] | None = None, trim_quantile: float = 0.99, groups: list[str] | None = None):
        self.covariates = list(covariates or [])
        self.trim_quantile = trim_quantile
        self.groups = groups

    def _design(self, base: pd.DataFrame) -> pd.DataFrame:
        cols = []
        for c in [c for c in self.covariates if c in base.columns] + ["tenure_years"]:
            x = base[c]
            if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
                x = x.astype(float)
                cols.append(np.log1p(x.clip(lower=0).fillna(x.median())).rename(f"log_{c}"))
                bins = pd.qcut(x.rank(method="first"), q=min(5, max(1, x.nunique())), labels=False)
                cols.append(pd.get_dummies(bins.fillna(-1).astype(int).astype(str), prefix=c, drop_first=True, dtype=float))
            else:
                x = x.astype("string").fillna("(missing)")
                keep = x.value_counts()
                keep = keep[keep >= max(1, 0.01 * len(x))].index
                cols.append(pd.get_dummies(x.where(x.isin(keep), "(other)").astype(str), prefix=c, drop_first=True,
                                           dtype=float))
        X = pd.concat(cols, axis=1)
        X = X.loc[:, X.std() > 0]
        X.insert(0, "const", 1.0)
        return X

    @skippable
    def fit(self, base: pd.DataFrame) -> "WhoAnswered":
        """Fit on :func:`response_base` output; returns ``self`` (skipped, ``skipped_``, when every
        customer of the base answered or none did)."""
        b = base.reset_index(drop=True)
        r = b["responded"].astype(bool)
        require(r.any(), "Who answered needs respondents: no customer in the base answered a survey in the study "
                         "window.")
        require(not r.all(), f"Who answered needs customers who did not answer: all {len(b):,} customers in the base "
                             f"answered a survey, so there is no one to compare the respondents with.")
        X = self._design(b)
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            res = sm.GLM(r.astype(float), X, family=sm.families.Binomial()).fit(maxiter=100)
        p = pd.Series(np.clip(res.fittedvalues.to_numpy(), 1e-6, 1 - 1e-6), index=b.index)
        keep_estimates(res)  # hundreds of MB of working copies at a million customers: the estimates stay
        self.propensity_result_ = res
        raw = r.mean() / p[r]
        cap = float(raw.quantile(self.trim_quantile))
        w = raw.clip(upper=cap)
        self.propensity_ = p
        self.weights_ = pd.Series(w.to_numpy(), index=b.loc[r, "customer_id"].to_numpy(), name="weight")
        self.effective_sample_size_ = float(w.sum() ** 2 / (w**2).sum())
        order = np.argsort(p.to_numpy())
        ranks = np.empty(len(p))
        ranks[order] = np.arange(1, len(p) + 1)
        n1, n0 = int(r.sum()), int((~r).sum())
        self.auc_ = float((ranks[r.to_numpy()].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
        self.propensity_summary_ = {
            "response_rate": float(r.mean()), "auc": self.auc_, "trimmed_at": cap,
            "trimmed_weights": int((raw > cap).sum()), "max_weight": float(w.max()),
            "effective_sample_size": self.effective_sample_size_, "respondents": n1,
        }
        if self.effective_sample_size_ < 0.5 * n1:
            self.warnings_.append(f"{self.label}: the weights leave an effective sample of "
                                  f"{self.effective_sample_size_:,.0f} of {n1:,} respondents; weighted figures are noisy.")

        # comparison table
        rows = []
        wr = pd.Series(0.0, index=b.index)
        wr[r] = w.to_numpy()
        feats: list[tuple[str, pd.Series]] = []
        for c in [c for c in self.covariates if c in b.columns]:
            x = b[c]
            if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
                feats.append((c, x.astype(float)))
            else:
                x = x.astype("string").fillna("(missing)")
                for level in sorted(x.unique()):
                    feats.append((f"{c}={level}", (x == level).astype(float)))
        feats += [("tenure_years", b["tenure_years"]), ("pre_revenue_per_year", b["pre_revenue_per_year"]),
                  ("churned_12m", b["churned_12m"])]
        for name, x in feats:
            resp, non, all_ = _weighted_mean_var(x[r]), _weighted_mean_var(x[~r]), _weighted_mean_var(x)
            weighted = _weighted_mean_var(x[r], wr[r])
            rows.append({"characteristic": name, "respondents": resp[0], "non_respondents": non[0],
                         "all_customers": all_[0], "respondents_weighted": weighted[0],
                         "std_diff": _std_diff(resp, non), "std_diff_weighted": _std_diff(weighted, all_)})
        self.summary_ = pd.DataFrame(rows).set_index("characteristic")
        big = self.summary_.index[self.summary_["std_diff"].abs() > 0.1].tolist()
        if big:
            self.warnings_.append(f"{self.label}: respondents differ from non-respondents in {', '.join(big)} "
                                  f"(standardised difference above 0.1); per-group figures are shown with and "
                                  f"without response weights.")

        # per group, with and without weights
        resp = b[r].assign(weight=w.to_numpy())
        groups = self.groups or sorted(resp["group"].dropna().unique())
        g = resp.groupby("group")
        grp = pd.DataFrame({
            "respondents": g.size(),
            "share": g.size() / len(resp),
            "share_weighted": g["weight"].sum() / resp["weight"].sum(),
            "revenue_per_customer_year": g["post_revenue"].sum() / g["post_exposure_years"].sum(),
            "revenue_per_customer_year_weighted": (resp["post_revenue"] * resp["weight"]).groupby(resp["group"]).sum()
            / (resp["post_exposure_years"] * resp["weight"]).groupby(resp["group"]).sum(),
        }).reindex(groups)
        grp["respondents"] = grp["respondents"].fillna(0).astype(int)  # a group nobody is in
        grp.index.name = "group"
        self.group_values_ = grp
        return self

    def _empty(self) -> None:
        """A skipped fit: no weights, no comparison."""
        self.propensity_result_ = None
        self.propensity_ = pd.Series(dtype=float)
        self.weights_ = pd.Series(dtype=float, name="weight")
        self.effective_sample_size_ = self.auc_ = float("nan")
        self.propensity_summary_ = {"response_rate": None, "auc": None, "trimmed_at": None, "trimmed_weights": 0,
                                    "max_weight": None, "effective_sample_size": None, "respondents": 0}
        self.summary_ = pd.DataFrame(columns=["respondents", "non_respondents", "all_customers", "respondents_weighted",
                                              "std_diff", "std_diff_weighted"],
                                     index=pd.Index([], name="characteristic"))
        self.group_values_ = pd.DataFrame(
            {"respondents": 0, **{c: np.nan for c in ("share", "share_weighted", "revenue_per_customer_year",
                                                       "revenue_per_customer_year_weighted")}},
            index=pd.Index([str(g) for g in self.groups or []], name="group"))

    @property
    def summary(self) -> pd.DataFrame:
        """Respondents vs non-respondents vs all customers, with standardised differences."""
        return self.summary_

    def results(self) -> dict[str, Any]:
        """The ``drivers.who_answered`` block of ``results.json`` (``skipped``: None or the reason)."""
        return {
            "skipped": self.skipped_,
            "respondents": int(self.propensity_summary_["respondents"]),
            "base_customers": int(len(self.propensity_)),
            "propensity": {k: (_num(v) if isinstance(v, float) else v) for k, v in self.propensity_summary_.items()},
            "comparison": {name: {k: _num(v) for k, v in row.items()} for name, row in self.summary_.iterrows()},
            "groups": {str(gname): {k: _num(v) for k, v in row.items()} for gname, row in self.group_values_.iterrows()},
        }

    def _repr_html_(self) -> str:
        """In Jupyter: the name, the skipped reason or the summary table, the caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, "Who answered")
