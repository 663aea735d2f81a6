"""Value linkage: what each satisfaction group spends, costs and how fast it leaves.

The raw (observed) comparison first; then the adjusted models (:class:`RevenueModel`,
:class:`CostToServeModel`, :class:`ChurnModel`), each ``fit(history) -> self``.

Units: money per customer per year in the data's currency; churn as a share.
"""

from __future__ import annotations

import warnings as _warnings
from typing import Any

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight

from cxvalue import evalue, piecewise
from cxvalue.comparisons import observed_results, within_disagrees
from cxvalue.exceptions import ModelError
from cxvalue.history import DAYS_PER_YEAR

__all__ = ["observed_summary", "observed_results", "km_churn_rate", "adjustment_frame", "period_label", "person_periods",
           "RevenueModel", "CostToServeModel", "ReferralModel", "ChurnModel"]


def km_churn_rate(duration_days: pd.Series, churned: pd.Series, days: float = DAYS_PER_YEAR) -> float:
    """Kaplan-Meier share of customers lost within ``days`` of their index response.

    Censored customers (still active at ``as_of``) count for as long as they were observed,
    which is why this is not the plain share churned. Returns NaN when nobody is observed.
    """
    if len(duration_days) == 0:
        return float("nan")
    sf = SurvfuncRight(np.asarray(duration_days, float), np.asarray(churned, int))
    times, surv = sf.surv_times, sf.surv_prob
    before = surv[times <= days]
    return float(1.0 - (before[-1] if before.size else 1.0))


def observed_summary(history: pd.DataFrame, reference_group: str, min_group_size: int = 0) -> pd.DataFrame:
    """Raw per-group outcomes in the post window, one row per group (in band order).

    Parameters
    ----------
    history : :func:`cxvalue.history.history` output (``group``, ``post_revenue``,
        ``post_contact_cost``, ``post_contacts``, ``post_exposure_years``, ``churned``,
        ``duration_days``).
    reference_group : the group the ratios divide by.
    min_group_size : groups smaller than this are flagged ``small_group``.

    Returns
    -------
    DataFrame indexed by group: ``customers``, ``customer_years``,
    ``revenue_per_customer_year`` (sum of post-window revenue / sum of post-window
    exposure), ``cost_to_serve_per_customer_year`` (same with contact cost),
    ``contacts_per_customer_year``, ``churn_rate_12m`` (Kaplan-Meier), the ratios of each
    to the reference group and ``small_group``.
    """
    groups = history["group"].cat.categories if hasattr(history["group"], "cat") else sorted(history["group"].unique())
    g = history.groupby("group", observed=False)
    out = pd.DataFrame({
        "customers": g.size(),
        "customer_years": g["post_exposure_years"].sum(),
        "revenue": g["post_revenue"].sum(),
        "contact_cost": g["post_contact_cost"].sum(),
        "contacts": g["post_contacts"].sum(),
    }).reindex(groups)
    years = out["customer_years"].where(out["customer_years"] > 0)
    out["revenue_per_customer_year"] = out.pop("revenue") / years
    out["cost_to_serve_per_customer_year"] = out.pop("contact_cost") / years
    out["contacts_per_customer_year"] = out.pop("contacts") / years
    out["churn_rate_12m"] = [km_churn_rate(h["duration_days"], h["churned"]) for _, h in
                             ((grp, history[history["group"] == grp]) for grp in groups)]
    for col in ("revenue_per_customer_year", "cost_to_serve_per_customer_year", "churn_rate_12m"):
        ref = out.loc[reference_group, col] if reference_group in out.index else np.nan
        out[col.replace("_per_customer_year", "").replace("_12m", "") + "_ratio"] = out[col] / ref
    out["small_group"] = out["customers"] < min_group_size
    out.index.name = "group"
    return out


# --------------------------------------------------------------------------- adjusted models

#: Follow-up intervals (days after the survey) of the piecewise-exponential churn model.
CHURN_INTERVALS = (0, 91, 182, 365, 730, np.inf)
MIN_PRE_DAYS = 28  # shorter pre windows count as "no pre-history"
MAX_LEVELS = 20
#: numbers with this many distinct values or fewer are categories (a 1-5 rating, a 0/1 flag)
FEW_VALUES = 5
#: degrees of freedom of the spline of a numeric covariate (:func:`_smooth`)
SPLINE_DF = 3


def _rate(total: pd.Series, years: pd.Series) -> pd.Series:
    # years against 28 / 365.25, as history computes them (28 / 365.25 * 365.25 is 27.999999999999996)
    return (total / years.where(years >= MIN_PRE_DAYS / DAYS_PER_YEAR)).clip(lower=0)


def adjustment_frame(history: pd.DataFrame, covariates: list[str] | None = None, binned: bool = False) -> pd.DataFrame:
    """What the models adjust for, one row per customer (no group, no outcome).

    * ``pre_revenue_rate`` and ``pre_contact_cost_rate``: money per year in the pre window,
      entered as ``log(1 + rate)``; customers with under 28 days of pre-history get rate 0
      and ``no_pre_history`` = 1, so they are kept (handled through exposure, not dropped);
    * ``log(1 + typical bill)``: mean positive amount before the survey over the whole
      history (``prior_sales / prior_sales_transactions``), which measures an account's size
      even when a short pre window holds a lumpy number of invoices or a refund;
    * ``log(1 + tenure_years)`` at the survey;
    * every customer covariate: text columns (and numbers with at most
      :data:`FEW_VALUES` distinct values) as categories, rare levels pooled as "other" and missing
      its own level; other numeric columns as a smooth curve (:func:`_smooth`), with
      ``<name>_missing`` = 1 where the value is missing.

    Every size proxy enters as a continuous term, not as bins: with a strong confounder
    measured by them, what is left inside a bin stays confounded (issue 11).

    With ``binned=True`` the continuous terms and the numeric covariates are quintile bins
    (:func:`_bins`; an all-categorical design whose customers aggregate into cells without
    changing the fit). No analysis uses it any more (closing the loop and failure demand's churn
    links did until 2026-12-03; they now fit continuous terms on one unit per customer).
    """
    pre_rev = _rate(history["pre_revenue"], history["pre_exposure_years"])
    pre_cost = _rate(history["pre_contact_cost"], history["pre_exposure_years"])
    no_pre = pre_rev.isna()
    per_tx = history["prior_sales"] / history["prior_sales_transactions"].where(history["prior_sales_transactions"] > 0)
    cont = {
        "log_pre_revenue_rate": np.log1p(pre_rev.fillna(0)),
        "log_pre_revenue_per_transaction": np.log1p(per_tx.fillna(0)),
        "log_pre_contact_cost_rate": np.log1p(pre_cost.fillna(0)),
        "log_tenure_years": np.log1p(history["tenure_years"].clip(lower=0)),
    }
    cols: dict[str, pd.Series] = {}
    cats: dict[str, pd.Series] = {}
    if binned:
        for name, x in cont.items():
            cats[name] = _bins(x.where(~no_pre) if name != "log_tenure_years" else x)
    else:
        cols.update(cont)
        cols["no_pre_history"] = no_pre.astype(float)
    for c in covariates or []:
        x = history[c]
        numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
        if numeric and x.nunique() > FEW_VALUES:
            if binned:
                cats[c] = _bins(x.astype(float))
            else:
                cols.update(_smooth(x.astype(float), c))
            continue
        x = x.astype("string").fillna("(missing)")
        keep = x.value_counts()
        keep = keep[keep >= max(1, 0.01 * len(x))].index[:MAX_LEVELS]
        cats[c] = x.where(x.isin(keep), "(other)")
    frame = pd.DataFrame(cols, index=history.index)
    for name, x in cats.items():
        frame = frame.join(pd.get_dummies(x.astype(str), prefix=name, drop_first=True, dtype=float))
    return frame


def _bins(x: pd.Series, q: int = 5) -> pd.Series:
    """Quantile bins as text labels; missing values get their own level."""
    valid = x.dropna()
    if valid.nunique() <= 1:
        return pd.Series("all", index=x.index)
    codes = pd.qcut(valid.rank(method="first"), q=min(q, valid.nunique()), labels=False)
    out = pd.Series("missing", index=x.index, dtype=object)
    out.loc[valid.index] = "q" + codes.astype(int).astype(str)
    return out


def _smooth(x: pd.Series, name: str) -> dict[str, pd.Series]:
    """A numeric covariate as a smooth curve that skew and outliers cannot pull: its normal scores
    (``Phi^-1((rank - 1/2) / n)``, tied values sharing their mean rank; a log-normal number becomes
    its standardised log) in a natural cubic regression spline with :data:`SPLINE_DF` degrees of
    freedom, centred (patsy's ``cr``, as statsmodels' formulas use it). Missing values score 0 (the
    median) and get ``<name>_missing`` = 1."""
    valid = x.notna()
    z = pd.Series(0.0, index=x.index)
    z[valid] = stats.norm.ppf((x[valid].rank(method="average") - 0.5) / valid.sum())
    basis = np.asarray(patsy.dmatrix(f"cr(z, df={SPLINE_DF}, constraints='center') - 1", {"z": z.to_numpy()}))
    out = {f"{name}_s{i + 1}": pd.Series(basis[:, i], index=x.index) for i in range(basis.shape[1])}
    if not valid.all():
        out[f"{name}_missing"] = (~valid).astype(float)
    return out


def _group_dummies(groups: pd.Series, labels: list[str], reference: str) -> pd.DataFrame:
    return pd.DataFrame({f"group[{g}]": (groups.astype(str) == g).astype(float) for g in labels if g != reference},
                        index=groups.index)


def _group_summary(rows: list[dict], label: str, min_group_size: int, warnings: list[str]) -> pd.DataFrame:
    """Per-group rows as a summary indexed by group, small groups flagged and warned about."""
    summary = pd.DataFrame(rows).set_index("group")
    summary["small_group"] = summary["customers"] < min_group_size
    for g, n in summary["customers"].items():
        if 0 < n < min_group_size:
            warnings.append(f"{label}: the {g} group has only {int(n)} customers; its estimate is unreliable.")
    return summary


def _labels(history: pd.DataFrame) -> list[str]:
    """The group labels of a history, in band order."""
    g = history["group"]
    return [str(x) for x in (g.cat.categories if hasattr(g, "cat") else sorted(g.unique()))]


class _Skippable:
    """What every linkage model shares when the data cannot support it.

    :meth:`skip` leaves a fitted-looking model: ``skipped_`` holds the plain reason, ``summary_``
    one row per group with its customers and no estimate, ``warnings_`` the reason, and no
    ``result_`` (so nothing downstream can draw from it).
    """

    label: str = ""
    skipped_: str | None = None
    #: how the ratios were put on the risk-ratio scale for their E-values (None until fitted)
    e_value_conversion_: str | None = None
    #: the estimate columns of ``summary_`` (NaN when skipped)
    estimates: tuple[str, ...] = ()

    def skip(self, history: pd.DataFrame, reason: str) -> "_Skippable":
        counts = history["group"].astype(str).value_counts()
        self.skipped_ = reason
        self.warnings_ = [reason]
        self.groups_ = _labels(history)
        self.summary_ = pd.DataFrame({"customers": [int(counts.get(g, 0)) for g in self.groups_]},
                                     index=pd.Index(self.groups_, name="group"))
        for col in self.estimates:
            self.summary_[col] = np.nan
        self.summary_["small_group"] = self.summary_["customers"] < self.min_group_size
        return self

    @property
    def fitted(self) -> bool:
        """True when the model was estimated (not skipped)."""
        return self.skipped_ is None

    def _repr_html_(self) -> str:
        """The model in Jupyter: its name, the skipped reason or the summary table, its caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, type(self).__name__)


def keep_estimates(*results: Any) -> None:
    """What a fitted model keeps of a statsmodels result is its estimates and their covariance (what
    predictions and draws use), not its rows: statsmodels' working copies of the design are several
    times its size (a gigabyte per model at a million customers). ``remove_data`` drops them; the
    estimates, standard errors and covariance are named (wrapped) first, as it keeps what is cached."""
    for res in results:
        if res is not None:
            _ = res.params, res.bse, res.cov_params()
            res.remove_data()


class _RateModel(_Skippable):
    """Shared machinery of the revenue and cost-to-serve models (log-link GLM with exposure)."""

    outcome: str = ""
    estimates = ("observed", "adjusted", "ratio", "ratio_lo", "ratio_hi", "e_value", "e_value_ci",
                 "covariates_ratio", "covariates_lo", "covariates_hi",
                 "within_ratio", "within_lo", "within_hi", "within_customers")
    #: what the outcome is, for the sentence saying it cannot be measured
    what: str = ""
    #: the same outcome in the pre window (history column), for the within-customer check; None: no check
    baseline: str | None = None
    #: the :func:`adjustment_frame` terms measured from that same pre-window outcome (left out of the check)
    baseline_terms: tuple[str, ...] = ()
    #: the headline comparison: "covariates" (the covariate-adjusted model) or "within" (the within-customer
    #: comparison wherever it gives every estimated group a ratio, the covariate-adjusted one otherwise)
    headline: str = "covariates"
    #: how the headline was estimated once fitted: "covariates" or "within" (None when skipped)
    method_: str | None = None

    def __init__(self, reference_group: str, covariates: list[str] | None = None, min_group_size: int = 100,
                 within: bool = True):
        self.reference_group = reference_group
        self.covariates = list(covariates or [])
        self.min_group_size = min_group_size
        self.within = within  # False: no within-customer check (its columns stay NaN)

    def fit(self, history: pd.DataFrame) -> "_RateModel":
        """Fit on a :func:`cxvalue.history.history` table; returns ``self``.

        Skipped (see :meth:`skip`) when nobody has time observed after the survey or the
        outcome is zero for everyone after it, or for everyone of the reference group (nothing
        to compare). Another group whose outcome is zero for every customer (a ratio of 0, which
        a log-link model cannot estimate) gets no estimate and a warning saying so.
        """
        self.warnings_: list[str] = []
        self.skipped_ = None
        self.method_ = self.within_result_ = None
        h = history[history["post_exposure_years"] > 0]
        labels = _labels(history)
        counts = h["group"].astype(str).value_counts()
        present = [g for g in labels if counts.get(g, 0) > 0]
        if self.reference_group not in present:
            return self.skip(history, f"{self.label}: no customer of the reference group '{self.reference_group}' "
                                      f"was observed after their survey, so {self.what} cannot be compared.")
        if not (h[self.outcome].astype(float) > 0).any():
            return self.skip(history, f"{self.label}: no customer has any {self.what} after their survey, so it "
                                      f"cannot be compared between groups.")
        for g in labels:
            if g not in present:
                self.warnings_.append(f"{self.label}: no customer in the {g} group, so it has no estimate.")
        # all or nothing: a group with no outcome at all has a ratio of 0, which the model cannot estimate
        has_outcome = (h[self.outcome].astype(float) > 0).groupby(h["group"].astype(str)).any()
        if not has_outcome.get(self.reference_group, False):
            return self.skip(history, f"{self.label}: none of the {int(counts[self.reference_group])} customers of "
                                      f"the reference group '{self.reference_group}' had any {self.what} after "
                                      f"their survey, so the other groups have nothing to be compared with.")
        for g in [g for g in present if not has_outcome.get(g, False)]:
            present.remove(g)
            self.warnings_.append(f"{self.label} of the {g} group cannot be estimated: none of its "
                                  f"{int(counts[g])} customers had any {self.what} after their survey.")
        # the design over every customer observed after the survey (bins and pooled levels from all of
        # them), so that a customer of a group left out of the fit can still be predicted as another group
        everyone = pd.concat([_group_dummies(h["group"], present, self.reference_group),
                              adjustment_frame(h, self.covariates)], axis=1)
        h = h[h["group"].astype(str).isin(present)]
        y = h[self.outcome].astype(float)
        if (y < 0).any():
            n_neg = int((y < 0).sum())
            self.warnings_.append(f"{self.label}: {n_neg} customers had more refunds than sales after the survey; "
                                  f"their net amount was counted as 0.")
            y = y.clip(lower=0)
        X = everyone.loc[h.index]
        X = X.loc[:, X.nunique() > 1]  # not std() > 0: a constant float column can have a std of 1e-16
        X.insert(0, "const", 1.0)
        self.everyone_ = everyone.assign(const=1.0)[X.columns]
        with _warnings.catch_warnings(record=True) as caught:
            _warnings.simplefilter("always")
            try:
                res = sm.GLM(y, X, family=sm.families.Poisson(), offset=np.log(h["post_exposure_years"])).fit(
                    cov_type="HC1", maxiter=100)
            except Exception as exc:  # noqa: BLE001
                raise ModelError(f"{self.label}: the model could not be fitted ({exc})") from None
        if not res.converged or any("converge" in str(w.message).lower() for w in caught):
            self.warnings_.append(f"{self.label}: the model did not converge; treat its figures with caution.")
        self.result_ = res
        self.design_ = X
        self.groups_ = labels
        self.present_ = present
        observed = (h.groupby(h["group"].astype(str))[self.outcome].sum()
                    / h.groupby(h["group"].astype(str))["post_exposure_years"].sum())
        # g-computation: everyone's covariates, group set to g, rate per customer-year
        adjusted = {}
        for g in present:
            Xg = X.copy()
            for col in [c for c in X.columns if c.startswith("group[")]:
                Xg[col] = 1.0 if col == f"group[{g}]" else 0.0
            adjusted[g] = float(np.mean(np.exp(Xg.to_numpy() @ res.params.to_numpy())))
        ci = res.conf_int()
        rows = []
        for g in labels:
            n = int(counts.get(g, 0))
            if g not in present:
                rows.append({"group": g, "customers": n})
                continue
            if g == self.reference_group:
                ratio, lo, hi = 1.0, 1.0, 1.0
            else:
                b = f"group[{g}]"
                ratio, lo, hi = float(np.exp(res.params[b])), float(np.exp(ci.loc[b, 0])), float(np.exp(ci.loc[b, 1]))
                if not np.isfinite(res.bse[b]) or res.bse[b] > 5:
                    self.warnings_.append(f"{self.label}: the {g} estimate is unstable (too few customers or no "
                                          f"spread in the outcome); it is not reported.")
                    rows.append({"group": g, "customers": n, "observed": float(observed.get(g, np.nan))})
                    continue
            rows.append({"group": g, "customers": n, "observed": float(observed.get(g, np.nan)),
                         "adjusted": adjusted[g], "ratio": ratio, "ratio_lo": lo, "ratio_hi": hi})
        self.summary_ = _group_summary(rows, self.label, self.min_group_size, self.warnings_)
        for to, col in (("covariates_ratio", "ratio"), ("covariates_lo", "ratio_lo"), ("covariates_hi", "ratio_hi")):
            self.summary_[to] = self.summary_.get(col, np.nan)
        self.method_ = "covariates"
        self._within_customer(h, everyone, present)
        if self.headline == "within":
            self._within_headline()
        self._disagreement_warnings()
        e = evalue.e_values_ratio_of_means(self.summary_["ratio"], self.summary_["ratio_lo"], self.summary_["ratio_hi"])
        self.summary_["e_value"], self.summary_["e_value_ci"] = e.point, e.ci
        self.e_value_conversion_ = e.conversion
        both = [c for c in self.summary_.columns if c.startswith(("covariates_", "within_"))]  # after the headline's
        self.summary_ = self.summary_[[c for c in self.summary_.columns if c not in both] + both]
        keep_estimates(self.result_, self.within_result_)
        return self

    def _disagreement_warnings(self) -> None:
        """A caveat per group whose within-customer and covariate-adjusted intervals do not overlap."""
        for g, r in self.summary_.iterrows():
            if g == self.reference_group or not within_disagrees(r):
                continue
            within = f"{r['within_ratio']:.3f} (95% CI {r['within_lo']:.3f} to {r['within_hi']:.3f})"
            cov = f"{r['covariates_ratio']:.3f} ({r['covariates_lo']:.3f} to {r['covariates_hi']:.3f})"
            if self.method_ == "within":
                self.warnings_.append(
                    f"{self.label}: compared with their own level before the survey, {g} customers read {within}; "
                    f"against comparable customers (controls for what the data records before the survey) they read "
                    f"{cov}. The two do not agree: the controls measure account size only roughly, which the first "
                    f"does not rely on, or the groups were already moving apart before the survey, which the first "
                    f"assumes away. The first is the headline.")
            else:
                self.warnings_.append(
                    f"{self.label}: compared with their own level before the survey, {g} customers read {within} "
                    f"against {cov} from the main comparison: the two do not agree, so part of the gap may come from "
                    f"what the controls measure only roughly (or the groups already differed before the survey).")

    def _within_headline(self) -> None:
        """Make the within-customer comparison the headline (``method_ = "within"``) when it gives a ratio to
        every group that has a covariate-adjusted one: ``ratio``/``ratio_lo``/``ratio_hi`` become the
        within-customer ones and ``adjusted`` the g-computation of :meth:`predict` (each customer's fitted
        level moved by the ratio of the two groups' within-customer ratios). Otherwise the covariate-adjusted
        comparison stays the headline and a caveat says why."""
        s = self.summary_
        needed = s.index[s["covariates_ratio"].notna()]
        missing = [g for g in needed if pd.isna(s.loc[g, "within_ratio"])]
        if self.within_result_ is None or missing or len(needed) < 2:
            if self.within:
                which = ("the groups" if self.within_result_ is None or not missing else
                         f"the {', '.join(missing)} group" + ("s" if len(missing) > 1 else ""))
                self.warnings_.append(
                    f"{self.label}: too few customers had a level before the survey to compare {which} with "
                    f"themselves, so the gap is measured against comparable customers only (controls for what the "
                    f"data records before the survey).")
            return
        self.method_ = "within"
        s["ratio"], s["ratio_lo"], s["ratio_hi"] = s["within_ratio"], s["within_lo"], s["within_hi"]
        for g in needed:
            s.loc[g, "adjusted"] = float(self.predict(g).mean())

    def _within_customer(self, h: pd.DataFrame, everyone: pd.DataFrame, present: list[str]) -> None:
        """The within-customer check: the same comparison of each customer's outcome after the survey
        against their own level before it (``baseline`` per pre-window year as an offset, coefficient 1:
        a ratio of after to before), among the customers with a positive level before it, adjusted for
        the other terms (not those measured from that same pre-window outcome).

        It does not depend on how well the pre window measures what drives both satisfaction and the
        outcome: chance noise in a customer's level before the survey (a lumpy year, a one-off order)
        leaves the main model partly confounded and this one not. It assumes instead that the groups'
        outcomes would have moved alike without the survey's gap (no gap before the survey). Columns
        ``within_ratio``, ``within_lo``, ``within_hi`` (95%, HC1) and ``within_customers``; a warning when
        the two intervals do not overlap."""
        for col in ("within_ratio", "within_lo", "within_hi", "within_customers"):
            self.summary_[col] = np.nan
        if self.baseline is None or not self.within:
            return
        rate = _rate(h[self.baseline].astype(float), h["pre_exposure_years"])
        keep = rate > 0
        groups = h["group"].astype(str)
        counts = groups[keep].value_counts()
        self.summary_["within_customers"] = [float(counts.get(g, 0)) for g in self.summary_.index]
        usable = [g for g in present if counts.get(g, 0) > 0
                  and (h.loc[keep & (groups == g), self.outcome].astype(float) > 0).any()]
        if self.reference_group not in usable or len(usable) < 2:
            return
        hk = h[keep & groups.isin(usable)]
        X = pd.concat([_group_dummies(hk["group"], usable, self.reference_group),
                       everyone.loc[hk.index].drop(columns=[c for c in everyone.columns if c.startswith("group[")])],
                      axis=1)
        X = X.drop(columns=[c for c in X.columns if c.startswith(self.baseline_terms)])
        X = X.loc[:, X.nunique() > 1]
        X.insert(0, "const", 1.0)
        offset = np.log(hk["post_exposure_years"]) + np.log(rate[hk.index])
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            try:
                res = sm.GLM(hk[self.outcome].astype(float).clip(lower=0), X, family=sm.families.Poisson(),
                             offset=offset).fit(cov_type="HC1", maxiter=100)
            except Exception:  # noqa: BLE001  (a check: the main estimate stands without it)
                return
        self.within_result_ = res
        ci = res.conf_int()
        for g in usable:
            b = f"group[{g}]"
            if g == self.reference_group:
                self.summary_.loc[g, ["within_ratio", "within_lo", "within_hi"]] = 1.0
            elif np.isfinite(res.bse[b]) and res.bse[b] <= 5:
                self.summary_.loc[g, ["within_ratio", "within_lo", "within_hi"]] = [
                    float(np.exp(res.params[b])), float(np.exp(ci.loc[b, 0])), float(np.exp(ci.loc[b, 1]))]

    @property
    def summary(self) -> pd.DataFrame:
        """Per group: customers, observed and adjusted per customer-year, ratio and 95% CI, and the
        E-values of the ratio and of its interval bound nearer 1 (:mod:`cxvalue.evalue`)."""
        return self.summary_

    def predict(self, group: str, rows: pd.Index | None = None) -> pd.Series:
        """Each fitted customer's predicted outcome per customer-year with the group set to ``group``
        (indexed like the history rows the model was fitted on: those with time after the survey;
        ``rows``: those of any customer with time after the survey, including a group left out of
        the fit because none of its customers had the outcome).

        The mean over any set of customers is the g-computation for that set: over everyone it is
        ``summary["adjusted"]``; over today's detractors, what they would spend as passives. A group
        without an estimate predicts like the reference group (no difference).

        With the within-customer headline (``method_ == "within"``) each customer's fitted level (their
        own group's) is multiplied by ``within_ratio[group] / within_ratio[their group]``.
        """
        if not self.fitted:
            raise ModelError(f"{self.label}: the model was skipped ({self.skipped_}); nothing to predict")
        X = (self.design_ if rows is None else self.everyone_.loc[rows]).copy()
        dummies = [c for c in X.columns if c.startswith("group[")]
        if self.method_ == "within":
            # each customer's own fitted level, moved from their group's within-customer ratio to ``group``'s;
            # a group the headline leaves without a ratio (an unstable estimate) moves by its fitted coefficient
            ratio = (self.summary_["within_ratio"].reindex([c[len("group["):-1] for c in dummies]).set_axis(dummies)
                     .fillna(np.exp(self.result_.params[dummies])))
            fitted = np.exp(X.to_numpy() @ self.result_.params[X.columns].to_numpy())
            own = np.exp(X[dummies].to_numpy() @ np.log(ratio.to_numpy()))  # 1 for the reference group
            return pd.Series(fitted * ratio.get(f"group[{group}]", 1.0) / own, index=X.index, name=self.outcome)
        for col in dummies:
            X[col] = 1.0 if col == f"group[{group}]" else 0.0
        return pd.Series(np.exp(X.to_numpy() @ self.result_.params[X.columns].to_numpy()), index=X.index,
                         name=self.outcome)

    def results(self) -> dict[str, Any]:
        """The ``results.json`` block: ``{group: {observed, adjusted, ratio, ratio_ci, e_value,
        e_value_ci}}`` (all None when skipped, the reason in ``skipped_``, or when the group's ratio
        cannot be estimated, the reason in ``warnings_``)."""
        out = {}
        for g, r in self.summary_.iterrows():
            if pd.isna(r.get("ratio", np.nan)):
                out[g] = {"observed": None, "adjusted": None, "ratio": None, "ratio_ci": [None, None],
                          "e_value": None, "e_value_ci": None}
            else:
                out[g] = {"observed": r["observed"], "adjusted": r["adjusted"], "ratio": r["ratio"],
                          "ratio_ci": [r["ratio_lo"], r["ratio_hi"]], "e_value": r["e_value"],
                          "e_value_ci": r["e_value_ci"]}
            if self.baseline is not None:
                w = r.get("within_ratio", np.nan)
                out[g]["within_customer_ratio"] = None if pd.isna(w) else float(w)
                out[g]["within_customer_ratio_ci"] = [None, None] if pd.isna(w) else [float(r["within_lo"]),
                                                                                       float(r["within_hi"])]
            if self.headline == "within":
                c = r.get("covariates_ratio", np.nan)
                out[g]["covariate_adjusted_ratio"] = None if pd.isna(c) else float(c)
                out[g]["covariate_adjusted_ratio_ci"] = [None, None] if pd.isna(c) else [float(r["covariates_lo"]),
                                                                                          float(r["covariates_hi"])]
        return out


class RevenueModel(_RateModel):
    """Post-window revenue per customer-year by group, adjusted for who is in each group.

    A Poisson-family GLM with log link (a multiplicative model for a non-negative amount;
    Wooldridge's quasi-Poisson, consistent without assuming a Poisson distribution) of
    ``post_revenue`` with offset ``log(post_exposure_years)``, group indicators and
    :func:`adjustment_frame`, with heteroskedasticity-robust (HC1) standard errors.
    ``adjusted`` is the mean predicted revenue per customer-year over the whole population
    with every customer set to the group (standardisation / g-computation); ``ratio`` is
    ``exp(coefficient)``, equal to adjusted / reference adjusted in this model.

    **The headline is the within-customer comparison** (``headline = "within"``, ``method_``):
    the same model with each customer's own pre-window revenue per year as an offset
    (:meth:`_within_customer`), wherever it gives every group with a covariate-adjusted ratio one of
    its own; ``ratio``/``ratio_lo``/``ratio_hi`` are then its ratios, the covariate-adjusted ones stay
    in ``covariates_ratio``/``covariates_lo``/``covariates_hi``, and :meth:`predict` (with
    ``adjusted``, its mean over everyone) moves each customer's fitted level by the ratio of the two
    groups' within-customer ratios. Holding a noisy pre-window level equal leaves part of the
    confounding; dividing by it does not (``bench/COVERAGE.md``). Where the comparison cannot be made
    (too few customers with revenue before the survey) the covariate-adjusted one is the headline and a
    caveat says so.
    """

    outcome = "post_revenue"
    label = "Revenue"
    what = "revenue"
    baseline = "pre_revenue"
    baseline_terms = ("log_pre_revenue_rate", "log_pre_revenue_per_transaction")
    headline = "within"


class CostToServeModel(_RateModel):
    """Post-window contact cost per customer-year by group; same method as :class:`RevenueModel`."""

    outcome = "post_contact_cost"
    label = "Cost to serve"
    what = "cost to serve (service contacts)"
    baseline = "pre_contact_cost"
    baseline_terms = ("log_pre_contact_cost_rate",)


class ReferralModel(_RateModel):
    """New customers referred per customer-year after the survey (``post_referred``) by group;
    same method as :class:`RevenueModel` (a Poisson GLM: here the outcome is a count)."""

    outcome = "post_referred"
    label = "Referrals"
    what = "referral"


def period_label(lo: float, hi: float) -> str:
    """The name of a follow-up interval in days since the survey: ``"91-182d"``, ``"730d+"``."""
    return f"{int(lo)}-{int(hi)}d" if np.isfinite(hi) else f"{int(lo)}d+"


def person_periods(history: pd.DataFrame, intervals: tuple = CHURN_INTERVALS) -> pd.DataFrame:
    """Split each customer's follow-up after the survey into the churn-model intervals.

    Returns one row per customer and interval reached: ``period`` (label), ``exposure_years``
    (time at risk inside the interval) and ``event`` (1 if the customer left in it).
    Vectorised: at most ``len(intervals) - 1`` rows per customer.
    """
    d = history["duration_days"].to_numpy(float)
    ev = history["churned"].to_numpy(bool)
    frames = []
    for lo, hi in zip(intervals[:-1], intervals[1:]):
        at_risk = d > lo if lo > 0 else np.ones_like(d, bool)
        if not at_risk.any():
            continue
        idx = np.flatnonzero(at_risk)
        exp_days = np.minimum(d[idx], hi) - lo
        event = ev[idx] & (d[idx] <= hi) & (d[idx] > lo if lo > 0 else True)
        label = period_label(lo, hi)
        frames.append(pd.DataFrame({"row": idx, "period": label,
                                    "exposure_years": np.maximum(exp_days, 0.5) / DAYS_PER_YEAR,
                                    "event": event.astype(float)}))
    return pd.concat(frames, ignore_index=True)


def _km_log_cumhaz_se(history: pd.DataFrame, days: float = DAYS_PER_YEAR) -> float:
    """Greenwood standard error of ``log(-log S(days))`` for a Kaplan-Meier curve (NaN if undefined)."""
    if history.empty or not history["churned"].any():
        return float("nan")
    sf = SurvfuncRight(history["duration_days"].to_numpy(float), history["churned"].to_numpy(int))
    i = np.searchsorted(sf.surv_times, days, side="right") - 1
    if i < 0:
        return float("nan")
    s, se = sf.surv_prob[i], sf.surv_prob_se[i]
    return float(se / (s * abs(np.log(s)))) if 0 < s < 1 else float("nan")


class ChurnModel(_Skippable):
    """Churn after the survey by group: Kaplan-Meier, and hazard ratios adjusted for mix.

    A piecewise-exponential model (Poisson GLM of churn events with log time-at-risk offset
    over follow-up intervals :data:`CHURN_INTERVALS`) with group indicators and the
    :func:`adjustment_frame` terms, continuous as they are (not bins, which leave a strong
    confounder confounded inside each bin). It is fitted on one row per customer and interval
    reached (at most five per customer) and estimates the same proportional-hazards ratios as
    a Cox model. Proportional hazards is checked with a score test of group x interval
    interactions. ``by_unit=True`` fits the same model on one row per customer with the intervals
    profiled out (:func:`cxvalue.piecewise.fit`: the same estimates, and the same score test from
    each customer's losses and expected losses by interval, on a fifth of the rows): what the
    analysis uses (the linkage and failure demand's links by contact reason). ``binned=True`` puts the terms in
    quintile bins and fits on cells (small, but a strong confounder stays confounded inside each
    bin; no analysis uses it any more).
    """

    label = "Churn"
    estimates = ("events", "observed_rate_12m", "hazard_ratio", "hr_lo", "hr_hi", "e_value", "e_value_ci")

    def __init__(self, reference_group: str, covariates: list[str] | None = None, min_group_size: int = 100,
                 intervals: tuple = CHURN_INTERVALS, binned: bool = False, by_unit: bool = False):
        self.reference_group = reference_group
        self.covariates = list(covariates or [])
        self.min_group_size = min_group_size
        self.intervals = intervals
        self.binned = binned
        self.by_unit = by_unit

    def _rows(self, history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One row per customer and follow-up interval reached (:func:`person_periods`) with the
        group, events, time at risk and the customer's adjustment terms; and each customer's
        adjustment terms (for :meth:`cumulative_hazard`). With ``binned`` the terms are quintile bins
        (:func:`adjustment_frame`) and the rows are summed into cells, one per (group, interval,
        pattern of bins): the same fit, on far fewer rows."""
        adj = adjustment_frame(history, self.covariates, binned=self.binned)
        pp = person_periods(history, self.intervals)
        pp["group"] = history["group"].astype(str).to_numpy()[pp["row"]]
        rows = pd.concat([pp.drop(columns="row"), adj.iloc[pp["row"].to_numpy()].reset_index(drop=True)], axis=1)
        if self.binned:
            keys = ["group", "period", *adj.columns]
            rows = rows.groupby(keys, observed=True, sort=True)[["event", "exposure_years"]].sum().reset_index()
        return rows, adj

    def skip(self, history: pd.DataFrame, reason: str) -> "ChurnModel":
        """Leave the model unfitted with ``reason`` (as :class:`_Skippable`), its checks read 'not run'."""
        self.reference_curve_se_ = float("nan")
        self.ph_test_ = {"statistic": float("nan"), "df": 0, "p_value": float("nan")}
        return super().skip(history, reason)

    def fit(self, history: pd.DataFrame) -> "ChurnModel":
        """Fit on a :func:`cxvalue.history.history` table; returns ``self``.

        Skipped (see :meth:`skip`) when nobody left after their survey, or nobody of the
        reference group did (no baseline to compare with). Another group in which nobody left has
        a hazard ratio of 0, which the model cannot estimate: it gets none, and a warning saying
        so. A group in which everybody left still has one (when they left is informative), and
        it is reported as usual. The E-values use the common-outcome conversion of the hazard
        ratio unless under 15% of customers had left by the end of follow-up
        (``churn_by_end_of_follow_up_``, Kaplan-Meier).
        """
        self.warnings_: list[str] = []
        self.skipped_ = None
        self.reference_curve_se_ = float("nan")
        self.ph_test_ = {"statistic": float("nan"), "df": 0, "p_value": float("nan")}
        labels = _labels(history)
        counts = history["group"].astype(str).value_counts()
        events = history.groupby(history["group"].astype(str))["churned"].sum()
        present = [g for g in labels if counts.get(g, 0) > 0 and events.get(g, 0) > 0]
        if not history["churned"].any():
            return self.skip(history, "Churn: no customer in the data left after their survey (no end_date), so how "
                                      "fast each group leaves cannot be measured. Add the day each former customer "
                                      "left as end_date in the customers table; without it the case has no "
                                      "retention lever and lifetime values assume customers stay.")
        if self.reference_group not in present:
            return self.skip(history, f"Churn: no customer of the reference group '{self.reference_group}' left after "
                                      f"their survey, so the other groups' churn has nothing to be compared with; "
                                      f"the case has no retention lever.")
        for g in labels:
            if counts.get(g, 0) == 0:
                self.warnings_.append(f"{self.label}: no customer in the {g} group, so it has no estimate.")
            elif g not in present:  # all or nothing: a hazard ratio of 0, which the model cannot estimate
                self.warnings_.append(f"Churn of the {g} group cannot be estimated: none of its {int(counts[g])} "
                                      f"customers left in the follow-up, so no hazard ratio is reported.")
        h = history[history["group"].astype(str).isin(present)]
        if self.by_unit:
            res, adj = self._fit_by_unit(h, present)
        else:
            res, adj = self._fit_rows(h, present)
        self.result_ = res
        self.reference_curve_se_ = _km_log_cumhaz_se(history[history["group"].astype(str) == self.reference_group])
        self._keep_hazards(res, adj)
        ci = res.conf_int()
        rows = []
        for g in labels:
            sub = history[history["group"].astype(str) == g]
            row = {"group": g, "customers": int(counts.get(g, 0)), "events": int(events.get(g, 0)),
                   "observed_rate_12m": km_churn_rate(sub["duration_days"], sub["churned"]) if len(sub) else np.nan}
            if g == self.reference_group:
                row.update(hazard_ratio=1.0, hr_lo=1.0, hr_hi=1.0)
            elif g in present:
                b = f"group[{g}]"
                if not np.isfinite(res.bse[b]) or res.bse[b] > 5:
                    self.warnings_.append(f"{self.label}: the {g} hazard ratio is unstable (too few customers or "
                                          f"churn events); it is not reported.")
                else:
                    row.update(hazard_ratio=float(np.exp(res.params[b])), hr_lo=float(np.exp(ci.loc[b, 0])),
                               hr_hi=float(np.exp(ci.loc[b, 1])))
            rows.append(row)
        self.summary_ = _group_summary(rows, self.label, self.min_group_size, self.warnings_)
        # E-values: churn by the end of follow-up decides between the rare- and common-outcome conversion
        self.churn_by_end_of_follow_up_ = km_churn_rate(history["duration_days"], history["churned"],
                                                        days=float(history["duration_days"].max()))
        rare = bool(self.churn_by_end_of_follow_up_ < evalue.RARE_OUTCOME_SHARE)
        e = evalue.e_values_hr(self.summary_["hazard_ratio"], self.summary_["hr_lo"], self.summary_["hr_hi"], rare=rare)
        self.summary_["e_value"], self.summary_["e_value_ci"] = e.point, e.ci
        self.e_value_conversion_ = e.conversion
        return self

    def _fit_rows(self, h: pd.DataFrame, present: list[str]):
        """The model on the person-period rows (or cells) with its proportional-hazards check."""
        rows, adj = self._rows(h)
        period_d = pd.get_dummies(rows["period"], prefix="period", drop_first=True, dtype=float)
        adj_cols = [c for c in rows.columns if c not in ("group", "period", "event", "exposure_years")]
        group_d = _group_dummies(rows["group"], present, self.reference_group)
        X = pd.concat([group_d, period_d, rows[adj_cols].astype(float)], axis=1)
        X = X.loc[:, X.max() > X.min()]  # no constant column (a float's std can be 1e-16)
        X.insert(0, "const", 1.0)
        offset = np.log(rows["exposure_years"])
        with _warnings.catch_warnings(record=True) as caught:
            _warnings.simplefilter("always")
            res = sm.GLM(rows["event"], X, family=sm.families.Poisson(), offset=offset).fit(maxiter=100)
        if not res.converged or any("converge" in str(w.message).lower() for w in caught):
            self.warnings_.append(f"{self.label}: the model did not converge; treat its figures with caution.")
        # proportional hazards: does the group gap change across follow-up intervals? A score test of
        # the group x interval terms at this fit (Rao's; the likelihood-ratio test's large-sample twin),
        # which needs no second, larger fit: at a million customers that fit alone held 4.5 GB
        inter = pd.DataFrame({f"{g}:{p}": group_d[g] * period_d[p] for g in group_d for p in period_d},
                             index=rows.index)  # not pd.concat, which fails on no terms (one group or one interval)
        inter = inter.loc[:, inter.std() > 0]
        try:
            test = res.score_test(exog_extra=inter.to_numpy(float), return_object=True) if inter.shape[1] else None
        except (np.linalg.LinAlgError, ValueError):  # a singular information matrix: the data's shape
            test = None
        self._proportional_hazards(float(np.ravel(test.statistic)[0]) if test is not None else float("nan"),
                                   int(inter.shape[1]))
        keep_estimates(res)  # statsmodels' working copies of the rows: gigabytes at a million customers
        del rows, X, inter
        return res, adj

    def _proportional_hazards(self, statistic: float, df: int) -> None:
        """Keep the proportional-hazards score test (``statistic`` on ``df`` degrees of freedom; not run
        when it is not finite) and warn when it rejects at 1%."""
        if not np.isfinite(statistic) or df == 0:
            self.ph_test_ = {"statistic": float("nan"), "df": 0, "p_value": float("nan")}
            return
        stat = max(statistic, 0.0)
        self.ph_test_ = {"statistic": stat, "df": df, "p_value": float(stats.chi2.sf(stat, df))}
        if self.ph_test_["p_value"] < 0.01:
            self.warnings_.append(
                "Churn: the gap between groups is not constant over time since the survey (proportional-"
                f"hazards test p = {self.ph_test_['p_value']:.3g}); the hazard ratio is an average over "
                "the follow-up.")

    def _fit_by_unit(self, h: pd.DataFrame, present: list[str]):
        """The model on one unit per customer (:func:`cxvalue.piecewise.fit`) and its proportional-hazards check."""
        adj = adjustment_frame(h, self.covariates)
        pp = person_periods(h, self.intervals)
        labels = [period_label(lo, hi) for lo, hi in zip(self.intervals[:-1], self.intervals[1:])]
        X = pd.concat([_group_dummies(h["group"].astype(str), present, self.reference_group).reset_index(drop=True),
                       adj.reset_index(drop=True).astype(float)], axis=1)
        X = X.loc[:, X.max() > X.min()]  # no constant column (a float's std can be 1e-16)
        X.insert(0, "const", 1.0)
        res = piecewise.fit(X, pp["row"].to_numpy(), pd.Categorical(pp["period"], categories=labels).codes, labels,
                            pp["event"].to_numpy(), pp["exposure_years"].to_numpy())
        groups = [c for c in X.columns if c.startswith("group[")]
        try:  # the rows' check: does the group gap change between intervals?
            stat, df = res.score_test(X[groups].to_numpy(float)) if groups else (float("nan"), 0)
        except (np.linalg.LinAlgError, ValueError):  # a singular information matrix: the data's shape
            stat, df = float("nan"), 0
        self._proportional_hazards(stat, df)
        res.remove_data()  # a million rows of design and losses: not kept in the fitted model
        names = {f"period[{lbl}]": f"period_{lbl}" for lbl in labels}  # as the rows' model names them
        res.params = res.params.rename(index=names)
        res.cov = res.cov.rename(index=names, columns=names)
        res.reference = f"period_{res.reference}"
        if not res.converged:
            self.warnings_.append(f"{self.label}: the model did not converge; treat its figures with caution.")
        return res, adj

    @property
    def summary(self) -> pd.DataFrame:
        """Per group: customers, events, Kaplan-Meier 12-month churn, hazard ratio and 95% CI, and the
        E-values of the hazard ratio and of its interval bound nearer 1 (:mod:`cxvalue.evalue`; the
        conversion used is in ``e_value_conversion_``)."""
        return self.summary_

    def _keep_hazards(self, res, adj: pd.DataFrame) -> None:
        """What :meth:`cumulative_hazard` needs: the baseline hazard per year in each follow-up
        interval (reference group, every adjustment term at its base level) and each fitted
        customer's relative risk from the adjustment terms, ``exp(x_i b)`` (group not included)."""
        params = res.params
        rates = []
        last = np.nan
        first = f"period_{period_label(self.intervals[0], self.intervals[1])}"
        reference = getattr(res, "reference", first)  # the unit fit's: the first interval with a loss
        for lo, hi in zip(self.intervals[:-1], self.intervals[1:]):
            name = f"period_{period_label(lo, hi)}"
            if name == reference:
                rate = float(np.exp(params["const"]))
            elif name in params.index:
                rate = float(np.exp(params["const"] + params[name]))
            else:  # nobody followed this far: the last interval's hazard carries on
                rate = last
            rates.append(rate)
            last = rate
        self.baseline_ = pd.DataFrame({"from_day": self.intervals[:-1], "to_day": self.intervals[1:],
                                       "hazard_per_year": rates})
        cols = [c for c in adj.columns if c in params.index]
        lp = adj[cols].astype(float).to_numpy() @ params[cols].to_numpy() if cols else np.zeros(len(adj))
        self.relative_risk_ = pd.Series(np.exp(lp), index=adj.index, name="relative_risk")

    def cumulative_hazard(self, rows: pd.Index, group: str, since_survey_days, years) -> np.ndarray:
        """Expected hazard accumulated from now to each of ``years`` (years from now) by the fitted
        customers ``rows`` if they were in ``group``: ``HR_group x exp(x_i b) x (L0(tau_i + t) -
        L0(tau_i))``, with ``L0`` the piecewise-constant baseline (:attr:`baseline_`; the last
        interval's hazard carries on beyond the follow-up) and ``tau_i`` = ``since_survey_days``,
        how long each customer has already been followed since their survey. Conditioning on
        ``tau_i`` prices today's customers, who have already survived that long, at their own
        hazard. Survival is ``exp(-cumulative_hazard)``. Returns ``len(rows) x len(years)``.
        A group without a hazard ratio churns like the reference group; a customer the model was not
        fitted on (their group had no churn event) has the median relative risk.
        """
        hr = self.summary_["hazard_ratio"].get(group, np.nan)
        hr = 1.0 if pd.isna(hr) else float(hr)
        tau = np.asarray(since_survey_days, float)[:, None]
        t = tau + np.asarray(years, float)[None, :] * DAYS_PER_YEAR
        risk = self.relative_risk_.reindex(rows).fillna(float(self.relative_risk_.median()))
        return hr * risk.to_numpy(float)[:, None] * (
            self._baseline_integral(t) - self._baseline_integral(np.broadcast_to(tau, t.shape)))

    def _baseline_integral(self, days: np.ndarray) -> np.ndarray:
        """``L0(days)``: the baseline cumulative hazard from the survey to ``days`` after it."""
        out = np.zeros_like(days, dtype=float)
        for lo, hi, rate in self.baseline_.itertuples(index=False):
            out += rate * (np.clip(days, lo, hi) - lo) / DAYS_PER_YEAR
        return out

    def results(self) -> dict[str, Any]:
        """The ``results.json`` block: ``{group: {observed_rate_12m, hazard_ratio, hazard_ratio_ci,
        e_value, e_value_ci}}``."""
        out = {}
        for g, r in self.summary_.iterrows():
            hr = r.get("hazard_ratio", np.nan)
            out[g] = {"observed_rate_12m": r.get("observed_rate_12m"),
                      "hazard_ratio": None if pd.isna(hr) else hr,
                      "hazard_ratio_ci": [None, None] if pd.isna(hr) else [r["hr_lo"], r["hr_hi"]],
                      "e_value": None if pd.isna(hr) else r["e_value"],
                      "e_value_ci": None if pd.isna(hr) else r["e_value_ci"]}
        return out

    def km_curves(self, history: pd.DataFrame, max_days: float | None = None) -> pd.DataFrame:
        """Kaplan-Meier share still a customer by days since the survey, per group: the charts' curves
        and the reference group's yearly survival (:func:`cxvalue.value.yearly_survival`).

        Each group's curve runs to the end of its follow-up (its longest ``duration_days``; or
        ``max_days`` if shorter): every week, every end of a follow-up year (``k x 365.25`` days,
        so each year is read exactly) and the last day followed. ``retained`` is the step curve's
        value on that day (events on that day counted).
        """
        rows = []
        for g in (self.summary_.index if self.fitted else []):
            sub = history[history["group"].astype(str) == g]
            if sub.empty or not sub["churned"].any():
                continue
            d = sub["duration_days"].to_numpy(float)
            sf = SurvfuncRight(d, sub["churned"].to_numpy(int))
            t = np.concatenate([[0.0], sf.surv_times])
            s = np.concatenate([[1.0], sf.surv_prob])
            end = float(d.max()) if max_days is None else min(float(d.max()), float(max_days))
            years = DAYS_PER_YEAR * np.arange(1, int(end // DAYS_PER_YEAR) + 1)
            grid = np.unique(np.concatenate([np.arange(0, end + 1, 7), years, [end]]))
            rows.append(pd.DataFrame({"group": g, "days": grid,
                                      "retained": s[np.searchsorted(t, grid, side="right") - 1]}))
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["group", "days", "retained"])
