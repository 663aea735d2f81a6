"""The linkage models by hand, on tables small enough to work out (tests added for the mutation run,
tests/MUTATION.md).

Every adjustment term is the same for every customer in the model tests, so the adjustment drops out
(a constant column has no spread and is left out of the design) and each model has a closed form:

* the rate models (revenue, cost to serve, referrals): a Poisson GLM with the group only is fitted
  exactly by each group's rate, sum of outcome / sum of post-window years, and its HC1 (sandwich)
  variance of a group's log rate is ``sum_i (y_i - mu_i)^2 / (sum_i mu_i)^2`` (statsmodels' GLM adds no
  ``n / (n - k)``);
* the churn model with two follow-up intervals, where the detractors' events per year at risk are
  exactly twice the passives' in both intervals: the main-effects model fits every cell exactly
  (hazard ratio 2, baseline = the passives' rates) and the interaction adds nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxvalue import evalue, linkage
from cxvalue.exceptions import ModelError

YEAR = 365.25
Z95 = 1.959963984540054
GROUPS = ["detractor", "passive", "promoter"]


def _history(rows: list[dict]) -> pd.DataFrame:
    """A history table from ``rows`` (group and whatever each row sets); every adjustment term the same."""
    h = pd.DataFrame(rows)
    h["group"] = pd.Categorical(h["group"], categories=GROUPS, ordered=True)
    defaults = {"pre_revenue": 100.0, "pre_contact_cost": 10.0, "pre_exposure_years": 1.0, "prior_sales": 120.0,
                "prior_sales_transactions": 12, "tenure_years": 2.0, "post_revenue": 0.0, "post_contact_cost": 0.0,
                "post_contacts": 0, "post_referred": 0.0, "post_exposure_years": 1.0, "duration_days": 400.0,
                "churned": False}
    for col, v in defaults.items():
        if col not in h:
            h[col] = v
    return h


# --------------------------------------------------------------------------- rate models

#: (group, post_exposure_years, post_revenue). Passives: 30 in 3.5 years; detractors: 3 and -2 (a refund,
#: counted as 0 in the fit) in 2 years; promoters 12 in 1.5 years and one customer with no time after the
#: survey (left out: no exposure).
RATE_ROWS = [("passive", 1.0, 10.0), ("passive", 0.5, 0.0), ("passive", 2.0, 20.0),
             ("detractor", 1.0, 3.0), ("detractor", 1.0, -2.0),
             ("promoter", 0.5, 4.0), ("promoter", 1.0, 8.0), ("promoter", 0.0, 100.0)]
RATES = {"passive": 30 / 3.5, "detractor": 3 / 2, "promoter": 12 / 1.5}


def _rate_history(outcome: str = "post_revenue") -> pd.DataFrame:
    return _history([{"group": g, "post_exposure_years": e, outcome: y} for g, e, y in RATE_ROWS])


def _hc1_log_rate_var(group: str) -> float:
    """Sandwich variance of a group's log rate, mu_i = rate x exposure. statsmodels 0.15's GLM applies no
    n / (n - k) factor for cov_type="HC1" (its HC1 and HC0 are the same for a GLM), so neither does this."""
    rows = [(e, max(y, 0.0)) for g, e, y in RATE_ROWS if g == group and e > 0]
    mu = [RATES[group] * e for e, _ in rows]
    return sum((y - m) ** 2 for (_, y), m in zip(rows, mu)) / sum(mu) ** 2


@pytest.mark.parametrize("model, outcome", [(linkage.RevenueModel, "post_revenue"),
                                            (linkage.CostToServeModel, "post_contact_cost"),
                                            (linkage.ReferralModel, "post_referred")])
def test_rate_model_by_hand(model, outcome):
    m = model("passive", min_group_size=3).fit(_rate_history(outcome))
    assert m.fitted and m.skipped_ is None
    s = m.summary
    assert list(s.index) == GROUPS and s.index.name == "group"
    assert s["customers"].tolist() == [2, 3, 2]  # the promoter without exposure is not counted
    assert s["small_group"].tolist() == [True, False, True]
    # observed: the raw sums (the refund counts as -2 here: 1 / 2 years)
    assert s["observed"].tolist() == pytest.approx([1 / 2, 30 / 3.5, 12 / 1.5], rel=1e-12)
    # adjusted = each group's rate (the refund clipped to 0); ratio = rate / passives' rate
    assert s["adjusted"].tolist() == pytest.approx([RATES[g] for g in GROUPS], rel=1e-6)
    ratios = [RATES[g] / RATES["passive"] for g in GROUPS]
    assert s["ratio"].tolist() == pytest.approx(ratios, rel=1e-6)
    for g, ratio in zip(GROUPS, ratios):
        se = 0.0 if g == "passive" else np.sqrt(_hc1_log_rate_var(g) + _hc1_log_rate_var("passive"))
        assert s.loc[g, "ratio_lo"] == pytest.approx(ratio * np.exp(-Z95 * se), rel=1e-5), g
        assert s.loc[g, "ratio_hi"] == pytest.approx(ratio * np.exp(Z95 * se), rel=1e-5), g
    e = evalue.e_values_ratio_of_means(s["ratio"], s["ratio_lo"], s["ratio_hi"])
    assert s["e_value"].tolist() == pytest.approx(list(e.point)) and s["e_value_ci"].tolist() == pytest.approx(list(e.ci))
    assert s.loc["detractor", "e_value"] > 1 and m.e_value_conversion_ == e.conversion
    label = m.label
    assert m.warnings_ == [
        f"{label}: 1 customers had more refunds than sales after the survey; their net amount was counted as 0.",
        f"{label}: the detractor group has only 2 customers; its estimate is unreliable.",
        f"{label}: the promoter group has only 2 customers; its estimate is unreliable."]
    assert list(m.design_.columns) == ["const", "group[detractor]", "group[promoter]"]
    assert m.groups_ == GROUPS and m.present_ == GROUPS
    r = m.results()
    within = {} if model is linkage.ReferralModel else {  # everyone's level before is the same 100 (or 10) a year
        "within_customer_ratio": pytest.approx(0.175, rel=1e-6),
        "within_customer_ratio_ci": [pytest.approx(s.loc["detractor", "ratio_lo"], rel=1e-9),
                                     pytest.approx(s.loc["detractor", "ratio_hi"], rel=1e-9)]}
    if model is linkage.RevenueModel:  # its headline is the within-customer comparison, the other one beside it
        assert m.method_ == "within"
        within.update({"covariate_adjusted_ratio": pytest.approx(0.175, rel=1e-6),
                       "covariate_adjusted_ratio_ci": [pytest.approx(s.loc["detractor", "covariates_lo"], rel=1e-12),
                                                       pytest.approx(s.loc["detractor", "covariates_hi"], rel=1e-12)]})
    else:
        assert m.method_ == "covariates"
    assert r["detractor"] == {"observed": pytest.approx(0.5), "adjusted": pytest.approx(1.5, rel=1e-6),
                              "ratio": pytest.approx(0.175, rel=1e-6),
                              "ratio_ci": [s.loc["detractor", "ratio_lo"], s.loc["detractor", "ratio_hi"]],
                              "e_value": s.loc["detractor", "e_value"], "e_value_ci": s.loc["detractor", "e_value_ci"],
                              **within}
    assert r["passive"]["ratio"] == 1.0 and r["passive"]["ratio_ci"] == [1.0, 1.0]
    # predict: every fitted customer's rate x 1 year as the group asked for
    p = m.predict("promoter")
    assert p.name == outcome and list(p.index) == [0, 1, 2, 3, 4, 5, 6]
    assert p.to_numpy() == pytest.approx([8.0] * 7, rel=1e-6)
    q = m.predict("detractor", rows=pd.Index([6, 0]))
    assert list(q.index) == [6, 0] and q.to_numpy() == pytest.approx([1.5, 1.5], rel=1e-6)
    assert m.predict("passive", rows=pd.Index([3])).to_numpy() == pytest.approx([30 / 3.5], rel=1e-6)


def test_rate_model_with_constant_adjustment_needs_no_adjustment_columns():
    """A covariate that varies changes nothing when it is the same in every group (a ratio of 1 per
    level): the rates above, with promoters' plan 'b' and everyone else's 'a' would be confounded; here
    half of each group's exposure is in each plan (a customer split in two, the same outcome rate)."""
    rows = []
    for g, e, y in RATE_ROWS:
        for plan in ("a", "b"):
            rows.append({"group": g, "post_exposure_years": e / 2, "post_revenue": y / 2, "plan": plan})
    m = linkage.RevenueModel("passive", ["plan"], min_group_size=1).fit(_history(rows))
    assert "plan_b" in m.design_.columns
    assert m.summary["ratio"].tolist() == pytest.approx([RATES[g] / RATES["passive"] for g in GROUPS], rel=1e-6)
    assert m.summary["adjusted"].tolist() == pytest.approx([RATES[g] for g in GROUPS], rel=1e-6)


def test_rate_model_skips_and_warnings_word_for_word():
    h = _rate_history()
    # the reference group has nobody observed after the survey
    no_ref = h[h["group"] != "passive"]
    m = linkage.RevenueModel("passive", min_group_size=2).fit(no_ref)
    assert not m.fitted
    assert m.skipped_ == ("Revenue: no customer of the reference group 'passive' was observed after their survey, "
                          "so revenue cannot be compared.")
    assert m.warnings_ == [m.skipped_] and m.groups_ == GROUPS
    assert list(m.summary.index) == GROUPS and m.summary.index.name == "group"
    assert m.summary["customers"].tolist() == [2, 0, 3]  # skip counts every row, exposure or not
    assert m.summary["small_group"].tolist() == [False, True, False]
    assert m.summary["ratio"].isna().all() and m.summary["e_value_ci"].isna().all()
    assert (m.summary[list(linkage.RevenueModel.estimates)].dtypes == float).all()  # NaN, not None
    assert list(m.summary.columns) == ["customers", *linkage.RevenueModel.estimates, "small_group"]
    assert m.results()["promoter"] == {"observed": None, "adjusted": None, "ratio": None, "ratio_ci": [None, None],
                                       "e_value": None, "e_value_ci": None, "within_customer_ratio": None,
                                       "within_customer_ratio_ci": [None, None], "covariate_adjusted_ratio": None,
                                       "covariate_adjusted_ratio_ci": [None, None]}
    assert m.method_ is None
    with pytest.raises(ModelError, match=r"Revenue: the model was skipped \(Revenue: no customer"):
        m.predict("passive")
    # nobody has any revenue after the survey
    none = h.assign(post_revenue=0.0)
    m = linkage.RevenueModel("passive").fit(none)
    assert m.skipped_ == "Revenue: no customer has any revenue after their survey, so it cannot be compared between groups."
    # the reference group has none
    m = linkage.CostToServeModel("passive").fit(h.assign(post_contact_cost=np.where(h["group"] == "passive", 0.0, 5.0)))
    assert m.skipped_ == ("Cost to serve: none of the 3 customers of the reference group 'passive' had any cost to serve "
                          "(service contacts) after their survey, so the other groups have nothing to be compared with.")
    # a group without any outcome, another without customers after the survey
    h2 = h[h["group"] != "detractor"].copy()
    h2.loc[h2["group"] == "promoter", "post_referred"] = 0.0
    h2.loc[h2["group"] == "passive", "post_referred"] = [1.0, 0.0, 2.0]
    m = linkage.ReferralModel("passive", min_group_size=1).fit(h2)
    assert m.fitted and m.present_ == ["passive"]
    assert m.warnings_ == ["Referrals: no customer in the detractor group, so it has no estimate.",
                           "Referrals of the promoter group cannot be estimated: none of its 2 customers had any "
                           "referral after their survey."]
    s = m.summary
    assert s["customers"].tolist() == [0, 3, 2]
    assert np.isnan(s.loc["promoter", "ratio"]) and np.isnan(s.loc["promoter", "observed"])
    assert s.loc["passive", "adjusted"] == pytest.approx(3 / 3.5, rel=1e-6)
    assert m.results()["promoter"]["ratio"] is None
    # the promoters were left out of the fit and are predicted as passives
    assert m.predict("promoter", rows=pd.Index([5])).to_numpy() == pytest.approx([3 / 3.5], rel=1e-6)


def test_rate_model_flags_a_model_that_did_not_converge(monkeypatch):
    """One iteration of the fit (not 100) does not converge: the model says so."""
    import statsmodels.api as sm

    fit = sm.GLM.fit
    monkeypatch.setattr(sm.GLM, "fit", lambda self, *a, **k: fit(self, *a, **{**k, "maxiter": 1}))
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_rate_history())
    assert m.warnings_[-1] == "Revenue: the model did not converge; treat its figures with caution."


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("model", ["cost", "churn"])
@pytest.mark.parametrize("how", ["flag", "warning", "neither"])
def test_convergence_either_sign_is_enough(monkeypatch, how, model):
    """Either sign of trouble is reported on its own: the fit's converged flag down (no warning), or a
    warning mentioning convergence (the flag up); neither, no caveat."""
    import warnings

    import statsmodels.api as sm

    fit = sm.GLM.fit

    def patched(self, *a, **k):
        res = fit(self, *a, **k)
        if how == "flag":
            res.converged = False
        elif how == "warning":
            warnings.warn("Perfect fit: the IRLS Converged Only Barely", RuntimeWarning)
        return res

    monkeypatch.setattr(sm.GLM, "fit", patched)
    if model == "cost":
        m = linkage.CostToServeModel("passive", min_group_size=1).fit(_rate_history("post_contact_cost"))
        caveat = "Cost to serve: the model did not converge; treat its figures with caution."
    else:
        m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history())
        caveat = "Churn: the model did not converge; treat its figures with caution."
    assert (caveat in m.warnings_) == (how != "neither")


def test_rate_model_that_cannot_be_fitted_says_why(monkeypatch):
    import statsmodels.api as sm

    def broken(self, *a, **k):
        raise ValueError("the design is broken")

    monkeypatch.setattr(sm.GLM, "fit", broken)
    with pytest.raises(ModelError) as err:
        linkage.RevenueModel("passive").fit(_rate_history())
    assert str(err.value) == "Revenue: the model could not be fitted (the design is broken)"


def test_rate_model_with_small_amounts_and_a_group_of_one():
    """Referrals under one per customer (0.5, 0.25) count as an outcome; a group of one customer is a group.
    Passives: 0.5 + 0.25 in 2 years; detractors 0.5 in 1 year; the one promoter 1.0 in 0.5 years."""
    h = _history([{"group": g, "post_referred": y, "post_exposure_years": e}
                  for g, y, e in (("passive", 0.5, 1.0), ("passive", 0.25, 1.0), ("detractor", 0.5, 1.0),
                                  ("promoter", 1.0, 0.5))])
    m = linkage.ReferralModel("passive", min_group_size=1).fit(h)
    assert m.fitted and m.warnings_ == [] and m.present_ == GROUPS
    assert m.summary["customers"].tolist() == [1, 2, 1]
    assert m.summary["adjusted"].tolist() == pytest.approx([0.5, 0.375, 2.0], rel=1e-6)
    assert m.summary["ratio"].tolist() == pytest.approx([0.5 / 0.375, 1.0, 2.0 / 0.375], rel=1e-6)
    # the promoters' interval lies above 1 (their one customer is fitted exactly: only the passives' spread,
    # se 0.236, counts), so its E-value bound is the lower end's: finite and over 1
    s = m.summary
    e = evalue.e_values_ratio_of_means(s["ratio"], s["ratio_lo"], s["ratio_hi"])
    assert s.loc["promoter", "ratio_lo"] > 3 and 1 < s.loc["promoter", "e_value_ci"] < s.loc["promoter", "e_value"]
    assert s["e_value_ci"].tolist() == pytest.approx(list(e.ci)) and s["e_value"].tolist() == pytest.approx(list(e.point))


# --------------------------------------------------------------------------- observed comparison


def test_observed_summary_and_results_by_hand():
    """Churn: passives lose one of four on day 50 (S = 3/4) and one of two on day 200 (S = 3/8); detractors
    one of two on day 75 and the other on day 500 (S(1 year) = 1/2); nobody among promoters."""
    rows = [("passive", 50, True, 1.0, 10.0, 2.0, 1), ("passive", 100, False, 0.5, 0.0, 1.0, 2),
            ("passive", 200, True, 2.0, 20.0, 0.0, 0), ("passive", 800, False, 0.5, 5.0, 3.0, 4),
            ("detractor", 75, True, 1.0, 3.0, 8.0, 3), ("detractor", 500, True, 1.0, 1.0, 2.0, 1)]
    h = _history([{"group": g, "duration_days": d, "churned": c, "post_exposure_years": e, "post_revenue": r,
                   "post_contact_cost": k, "post_contacts": n} for g, d, c, e, r, k, n in rows])
    s = linkage.observed_summary(h, "passive", min_group_size=3)
    assert list(s.index) == GROUPS and s.index.name == "group"
    assert list(s.columns) == ["customers", "customer_years", "revenue_per_customer_year",
                               "cost_to_serve_per_customer_year", "contacts_per_customer_year", "churn_rate_12m",
                               "revenue_ratio", "cost_to_serve_ratio", "churn_rate_ratio", "small_group"]
    assert s["customers"].tolist() == [2, 4, 0]
    assert s["customer_years"].tolist() == [2.0, 4.0, 0.0]
    assert s.loc["detractor", "revenue_per_customer_year"] == 2.0 and s.loc["passive", "revenue_per_customer_year"] == 8.75
    assert s.loc["detractor", "cost_to_serve_per_customer_year"] == 5.0
    assert s.loc["passive", "cost_to_serve_per_customer_year"] == 1.5
    assert s.loc["detractor", "contacts_per_customer_year"] == 2.0 and s.loc["passive", "contacts_per_customer_year"] == 1.75
    assert s.loc["promoter"].drop(["customers", "customer_years", "small_group"]).isna().all()  # no years: NaN
    assert s.loc["passive", "churn_rate_12m"] == pytest.approx(1 - 3 / 8, rel=1e-12)
    assert s.loc["detractor", "churn_rate_12m"] == pytest.approx(1 / 2, rel=1e-12)
    assert s.loc["detractor", "revenue_ratio"] == pytest.approx(2 / 8.75)
    assert s.loc["detractor", "cost_to_serve_ratio"] == pytest.approx(5 / 1.5)
    assert s.loc["detractor", "churn_rate_ratio"] == pytest.approx(0.5 / 0.625)
    assert s["small_group"].tolist() == [True, False, True]
    assert linkage.observed_summary(h, "passive", min_group_size=4)["small_group"].tolist() == [True, False, True]
    assert not linkage.observed_summary(h, "passive")["small_group"].any()  # by default nothing is small
    # no years after the survey: no rate (not infinity), whatever was recorded; under a year: a rate
    odd = _history([{"group": "promoter", "post_exposure_years": 0.0, "post_revenue": 5.0},
                    {"group": "detractor", "post_exposure_years": 0.5, "post_revenue": 2.0}])
    o = linkage.observed_summary(odd, "detractor")
    assert np.isnan(o.loc["promoter", "revenue_per_customer_year"]) and o.loc["detractor", "revenue_per_customer_year"] == 4.0
    r = linkage.observed_results(s)
    assert r == {"revenue": {"detractor": {"observed": 2.0}, "passive": {"observed": 8.75}, "promoter": {"observed": None}},
                 "churn": {"detractor": {"observed_rate_12m": pytest.approx(0.5)},
                           "passive": {"observed_rate_12m": pytest.approx(0.625)},
                           "promoter": {"observed_rate_12m": None}},
                 "cost_to_serve": {"detractor": {"observed": 5.0}, "passive": {"observed": 1.5},
                                   "promoter": {"observed": None}}}
    # a reference group not in the table: every ratio NaN; a plain (not categorical) group column is sorted
    plain = h.assign(group=h["group"].astype(str))
    s = linkage.observed_summary(plain, "promoter")
    assert list(s.index) == ["detractor", "passive"] and s["revenue_ratio"].isna().all()
    assert not s["small_group"].any()
    assert np.isnan(linkage.km_churn_rate(pd.Series([], dtype=float), pd.Series([], dtype=bool)))
    # a loss on day 365 counts within the year, one on day 366 does not
    assert linkage.km_churn_rate(pd.Series([365.0, 366.0]), pd.Series([True, True])) == pytest.approx(0.5)
    assert linkage.km_churn_rate(pd.Series([365.0, 366.0]), pd.Series([True, True]), days=366) == pytest.approx(1.0)
    assert linkage.km_churn_rate(pd.Series([400.0]), pd.Series([True])) == 0.0  # nobody lost in the first year


# --------------------------------------------------------------------------- adjustment terms


def test_adjustment_frame_by_hand():
    """Row 10: 100 in half a year (rate 200), cost 10 (rate 20), 300 over 3 sales (typical bill 100),
    tenure 2. Row 11: 18 days of pre window (under 28: no pre-history, rates 0), no prior sale (bill 0),
    negative tenure (clipped to 0). Row 12: a net refund (rate clipped to 0) and cost 2 over exactly 28
    days (kept: 2 x 365.25 / 28 a year), 20 over 2 sales, tenure 5. Rows 13-14: other sizes, row 14 with
    two years of pre window and no sale."""
    h = pd.DataFrame({"pre_revenue": [100.0, 50.0, -10.0, 10.0, 0.0],
                      "pre_exposure_years": [0.5, 18 / YEAR, 28 / YEAR, 1.0, 2.0],
                      "pre_contact_cost": [10.0, 5.0, 2.0, 0.0, 4.0],
                      "prior_sales": [300.0, 50.0, 20.0, 30.0, 0.0],
                      "prior_sales_transactions": [3, 0, 2, 1, 0],
                      "tenure_years": [2.0, -1.0, 5.0, 0.5, 1.0],
                      "region": ["north", None, "south", "north", "east"],
                      "size": [5.0, 1.0, np.nan, 3.0, 2.0],
                      "vip": [True, False, True, False, False]}, index=[10, 11, 12, 13, 14])
    f = linkage.adjustment_frame(h, ["region", "size", "vip"])
    expected = pd.DataFrame({
        "log_pre_revenue_rate": np.log1p([200.0, 0.0, 0.0, 10.0, 0.0]),
        "log_pre_revenue_per_transaction": np.log1p([100.0, 0.0, 10.0, 30.0, 0.0]),
        "log_pre_contact_cost_rate": np.log1p([20.0, 0.0, 2 * YEAR / 28, 0.0, 2.0]),
        "log_tenure_years": np.log1p([2.0, 0.0, 5.0, 0.5, 1.0]),
        "no_pre_history": [0.0, 1.0, 0.0, 0.0, 0.0],
        # text: levels (missing), east, north, south; the first (sorted) dropped
        "region_east": [0.0, 0, 0, 0, 1], "region_north": [1.0, 0, 0, 1, 0], "region_south": [0.0, 0, 1, 0, 0],
        # numbers with at most five distinct values (5, 1, NaN, 3, 2) are categories; "(missing)" sorts
        # first and is the level dropped
        "size_1.0": [0.0, 1, 0, 0, 0], "size_2.0": [0.0, 0, 0, 0, 1], "size_3.0": [0.0, 0, 0, 1, 0],
        "size_5.0": [1.0, 0, 0, 0, 0],
        # booleans as text: False dropped
        "vip_True": [1.0, 0, 1, 0, 0]}, index=[10, 11, 12, 13, 14])
    pd.testing.assert_frame_equal(f, expected, rtol=1e-12)
    # binned: the continuous terms as bins; the no-pre-history customer's (row 11) pre-window terms are
    # "missing" (the dropped level), tenure is not. Rates 200, 0, 10, 0 (rows 10, 12-14) have three values:
    # ranks 4, 1, 3, 2 in three bins q2, q0, q1, q0; bills 100, 10, 30, 0 and costs 20, 26.1, 0, 2 four bins;
    # tenure 2, 0, 5, 0.5, 1 five: q3, q0, q4, q1, q2 (q0 dropped)
    b = linkage.adjustment_frame(h, [], binned=True)
    expected = pd.DataFrame({
        "log_pre_revenue_rate_q0": [0.0, 0, 1, 0, 1], "log_pre_revenue_rate_q1": [0.0, 0, 0, 1, 0],
        "log_pre_revenue_rate_q2": [1.0, 0, 0, 0, 0],
        "log_pre_revenue_per_transaction_q0": [0.0, 0, 0, 0, 1], "log_pre_revenue_per_transaction_q1": [0.0, 0, 1, 0, 0],
        "log_pre_revenue_per_transaction_q2": [0.0, 0, 0, 1, 0], "log_pre_revenue_per_transaction_q3": [1.0, 0, 0, 0, 0],
        "log_pre_contact_cost_rate_q0": [0.0, 0, 0, 1, 0], "log_pre_contact_cost_rate_q1": [0.0, 0, 0, 0, 1],
        "log_pre_contact_cost_rate_q2": [1.0, 0, 0, 0, 0], "log_pre_contact_cost_rate_q3": [0.0, 0, 1, 0, 0],
        "log_tenure_years_q1": [0.0, 0, 0, 1, 0], "log_tenure_years_q2": [0.0, 0, 0, 0, 1],
        "log_tenure_years_q3": [1.0, 0, 0, 0, 0], "log_tenure_years_q4": [0.0, 0, 1, 0, 0]}, index=[10, 11, 12, 13, 14])
    pd.testing.assert_frame_equal(b, expected)
    # no covariates given (None) is the same as []
    pd.testing.assert_frame_equal(linkage.adjustment_frame(h), f.iloc[:, :5])


def test_numeric_covariate_is_a_smooth_curve_of_its_normal_scores():
    """Six distinct values (more than FEW_VALUES) with a tie and a missing one: their mean ranks among
    the known values give normal scores Phi^-1((rank - 1/2) / known); the missing value scores 0 and
    is flagged. The spline (3 centred columns) is a function of the scores only: any increasing
    transform of the number gives the same columns, and it holds straight lines in the scores."""
    from scipy import stats

    x = [10.0, 20.0, 20.0, 30.0, 40.0, 1e6, 60.0, np.nan]  # 1e6: an outlier counts as the largest, no more
    h = pd.DataFrame({"pre_revenue": 0.0, "pre_exposure_years": 1.0, "pre_contact_cost": 0.0, "prior_sales": 0.0,
                      "prior_sales_transactions": 0, "tenure_years": 1.0, "n": x}, index=range(8))
    h = pd.concat([h] * 3, ignore_index=True)  # 24 rows: each value three times
    f = linkage.adjustment_frame(h, ["n"])
    spline = ["n_s1", "n_s2", "n_s3"]
    assert [c for c in f.columns if c.startswith("n_")] == spline + ["n_missing"]
    assert f["n_missing"].tolist() == ([0.0] * 7 + [1.0]) * 3
    # mean ranks of the 21 known values (each value three times, 20 six times): 10 -> 2 (ranks 1-3),
    # 20 -> 6.5 (4-9), 30 -> 11, 40 -> 14, 60 -> 17, 1e6 -> 20
    z = stats.norm.ppf((np.array([2, 6.5, 6.5, 11, 14, 20, 17, np.nan]) - 0.5) / 21)
    z = np.tile(np.nan_to_num(z, nan=0.0), 3)
    # a natural cubic spline holds straight lines: the scores are exactly a constant plus the columns
    A = np.column_stack([np.ones(24), f[spline].to_numpy()])
    coef, *_ = np.linalg.lstsq(A, z, rcond=None)
    assert A @ coef == pytest.approx(z, abs=1e-9)
    assert f[spline].mean().to_numpy() == pytest.approx([0, 0, 0], abs=1e-12)  # centred
    # an increasing transform (log) or a different outlier changes nothing
    h2 = h.assign(n=np.log(h["n"]).where(h["n"] != 1e6, 99.0))
    pd.testing.assert_frame_equal(linkage.adjustment_frame(h2, ["n"]), f)
    # five distinct values are categories, six a curve
    five = linkage.adjustment_frame(h.assign(n=h["n"].where(h["n"] != 60.0, 40.0)), ["n"])
    assert [c for c in five.columns if c.startswith("n_")] == ["n_10.0", "n_1000000.0", "n_20.0", "n_30.0", "n_40.0"]


def test_rare_text_levels_are_pooled_and_missing_is_a_level():
    """200 customers: 'a' 150, 'b' 45, 'c' 2 (1% of 200: kept), 'd' 1 (under 1%: pooled as "(other)"),
    two missing ("(missing)", kept, sorts first and is dropped)."""
    x = ["a"] * 150 + ["b"] * 45 + ["c"] * 2 + ["d"] + [None] * 2
    h = pd.DataFrame({"pre_revenue": 0.0, "pre_exposure_years": 1.0, "pre_contact_cost": 0.0, "prior_sales": 0.0,
                      "prior_sales_transactions": 0, "tenure_years": 1.0, "tier": x})
    f = linkage.adjustment_frame(h, ["tier"])
    tier = [c for c in f.columns if c.startswith("tier_")]
    assert tier == ["tier_(other)", "tier_a", "tier_b", "tier_c"]
    assert f["tier_(other)"].tolist() == [0.0] * 197 + [1.0, 0.0, 0.0]
    assert f["tier_c"].tolist() == [0.0] * 195 + [1.0, 1.0, 0.0, 0.0, 0.0]
    assert f.loc[[198, 199], tier].to_numpy().sum() == 0  # missing: the dropped level
    # with 100 customers the bar is one customer: 'd' is kept
    small = h.iloc[100:].reset_index(drop=True)
    assert [c for c in linkage.adjustment_frame(small, ["tier"]).columns if c.startswith("tier_")] == [
        "tier_a", "tier_b", "tier_c", "tier_d"]
    # only the 20 commonest levels are kept (MAX_LEVELS): L00 25 customers ... L24 one
    many = pd.DataFrame({"pre_revenue": 0.0, "pre_exposure_years": 1.0, "pre_contact_cost": 0.0, "prior_sales": 0.0,
                         "prior_sales_transactions": 0, "tenure_years": 1.0,
                         "k": [f"L{i:02d}" for i in range(25) for _ in range(25 - i)]})
    f = linkage.adjustment_frame(many, ["k"])
    k = [c for c in f.columns if c.startswith("k_")]
    assert k == [f"k_L{i:02d}" for i in range(20)]  # "(other)" sorts first and is dropped; L20-L24 pooled
    assert f.loc[many["k"] == "L21", k].to_numpy().sum() == 0


def test_bins_and_rates():
    x = pd.Series([3.0, 1.0, np.nan, 1.0, 7.0, 9.0, 2.0], index=list("abcdefg"))
    b = linkage._bins(x)
    # ranks (ties in order): 3 -> 4, 1 -> 1, 1 -> 2, 7 -> 5, 9 -> 6, 2 -> 3: six values in five bins
    assert b.tolist() == ["q2", "q0", "missing", "q0", "q3", "q4", "q1"]
    assert linkage._bins(x, q=2).tolist() == ["q1", "q0", "missing", "q0", "q1", "q1", "q0"]
    assert linkage._bins(pd.Series([4.0, 4.0, np.nan])).tolist() == ["all", "all", "all"]
    assert linkage._bins(pd.Series([1.0, 2.0])).tolist() == ["q0", "q1"]
    # binned, a numeric covariate of more than five values is quintile bins too (the closing-the-loop design)
    h = pd.DataFrame({"pre_revenue": 0.0, "pre_exposure_years": 1.0, "pre_contact_cost": 0.0, "prior_sales": 0.0,
                      "prior_sales_transactions": 0, "tenure_years": 1.0, "n": [3.0, 1, 4, 1, 5, 9, 2, 6, 5, 3]})
    f = linkage.adjustment_frame(h, ["n"], binned=True)
    assert [c for c in f.columns if c.startswith("n_")] == ["n_q1", "n_q2", "n_q3", "n_q4"]
    assert f[["n_q1", "n_q2", "n_q3", "n_q4"]].sum().tolist() == [2.0, 2.0, 2.0, 2.0]
    r = linkage._rate(pd.Series([10.0, 10.0, -5.0, 3.0]), pd.Series([0.5, 27 / YEAR, 1.0, 28 / YEAR]))
    assert r.iloc[0] == 20.0 and np.isnan(r.iloc[1]) and r.iloc[2] == 0.0 and r.iloc[3] == pytest.approx(3 * YEAR / 28)
    assert r.iloc[3] == pytest.approx(3 * YEAR / 28, rel=1e-12)
    d = linkage._group_dummies(pd.Series(["a", "b", "c", "b"], index=[5, 6, 7, 8]), ["a", "b", "c"], "b")
    assert list(d.columns) == ["group[a]", "group[c]"] and list(d.index) == [5, 6, 7, 8]
    assert d["group[a]"].tolist() == [1.0, 0, 0, 0] and d["group[c]"].tolist() == [0, 0, 1.0, 0]
    assert linkage._labels(pd.DataFrame({"group": ["z", "a", "m", "a"]})) == ["a", "m", "z"]
    assert linkage._labels(_history([{"group": "passive"}])) == GROUPS
    warnings: list[str] = []
    s = linkage._group_summary([{"group": "a", "customers": 5}, {"group": "b", "customers": 0},
                                {"group": "c", "customers": 6}, {"group": "d", "customers": 1}], "X", 6, warnings)
    assert s["small_group"].tolist() == [True, True, False, True] and s.index.name == "group"
    assert warnings == ["X: the a group has only 5 customers; its estimate is unreliable.",
                        "X: the d group has only 1 customers; its estimate is unreliable."]


def test_period_labels_and_person_periods():
    assert linkage.period_label(0, 91) == "0-91d" and linkage.period_label(730, np.inf) == "730d+"
    assert linkage.period_label(91.0, 182.0) == "91-182d"
    h = pd.DataFrame({"duration_days": [0.0, 100.0, 150.0, 40.0], "churned": [True, False, True, True]})
    pp = linkage.person_periods(h, (0, 100, np.inf))
    # customer 0 leaves on day 0 (half a day at risk), 1 censored on day 100 (end of 0-100d), 2 leaves on day
    # 150 in 100d+, 3 on day 40
    assert pp["row"].tolist() == [0, 1, 2, 3, 2]
    assert pp["period"].tolist() == ["0-100d"] * 4 + ["100d+"]
    assert pp["exposure_years"].to_numpy() * YEAR == pytest.approx([0.5, 100, 100, 40, 50])
    assert pp["event"].tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]
    # an interval nobody reached is left out; the first interval need not start at 0
    pp = linkage.person_periods(h, (10, 120, 500, np.inf))
    assert pp["period"].tolist() == ["10-120d"] * 3 + ["120-500d"]
    assert pp["row"].tolist() == [1, 2, 3, 2]
    assert pp["exposure_years"].to_numpy() * YEAR == pytest.approx([90, 110, 30, 30])
    assert pp["event"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert list(pp.index) == [0, 1, 2, 3]  # one clean index over the intervals
    # a first interval from day 1: the customer who left on day 0 is not at risk in it; day 1 is its start
    pp = linkage.person_periods(pd.DataFrame({"duration_days": [0.0, 1.0, 30.0], "churned": [True, True, True]}),
                                (1, 20, np.inf))
    assert pp["row"].tolist() == [2, 2] and pp["event"].tolist() == [0.0, 1.0]


# --------------------------------------------------------------------------- churn model

#: Follow-up intervals 0-100 days and after. Passives: A leaves on day 50, B censored on day 100, C leaves on
#: day 200, D censored on day 800: 0-100d has 350 days at risk and 1 loss, 100d+ has 100 + 700 = 800 days and
#: 1 loss. Detractors: leave on days 75 and 500: 0-100d has 75 + 100 = 175 days and 1 loss, 100d+ 400 days
#: and 1 loss: twice the passives' hazard in both. One promoter, censored on day 900: no loss, no estimate.
CHURN_ROWS = [("passive", 50, True), ("passive", 100, False), ("passive", 200, True), ("passive", 800, False),
              ("detractor", 75, True), ("detractor", 500, True), ("promoter", 900, False)]
INTERVALS = (0, 100, np.inf)


def _churn_history(rows=CHURN_ROWS) -> pd.DataFrame:
    return _history([{"group": g, "duration_days": d, "churned": c} for g, d, c in rows])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_churn_model_by_hand():
    h = _churn_history()
    m = linkage.ChurnModel("passive", min_group_size=3, intervals=INTERVALS).fit(h)
    assert m.fitted and m.intervals == INTERVALS and m.covariates == []
    s = m.summary
    assert list(s.index) == GROUPS
    assert s["customers"].tolist() == [2, 4, 1] and s["events"].tolist() == [2, 2, 0]
    # Kaplan-Meier within a year: passives S = 3/4 x 1/2 = 3/8; detractors 1/2; the promoter 1
    assert s["observed_rate_12m"].tolist() == pytest.approx([0.5, 0.625, 0.0], rel=1e-12)
    assert s.loc["passive", ["hazard_ratio", "hr_lo", "hr_hi"]].tolist() == [1.0, 1.0, 1.0]
    assert s.loc["detractor", "hazard_ratio"] == pytest.approx(2.0, rel=1e-6)
    # the information of the four cells (1 expected loss each; const, detractor, 100d+) is
    # [[4, 2, 2], [2, 2, 1], [2, 1, 2]]; its inverse's detractor entry is 1: se(log HR) = 1
    assert s.loc["detractor", "hr_lo"] == pytest.approx(2 * np.exp(-Z95), rel=1e-5)
    assert s.loc["detractor", "hr_hi"] == pytest.approx(2 * np.exp(Z95), rel=1e-5)
    assert np.isnan(s.loc["promoter", "hazard_ratio"])
    assert s["small_group"].tolist() == [True, False, True]
    assert m.warnings_ == ["Churn of the promoter group cannot be estimated: none of its 1 customers left in the "
                           "follow-up, so no hazard ratio is reported.",
                           "Churn: the detractor group has only 2 customers; its estimate is unreliable.",
                           "Churn: the promoter group has only 1 customers; its estimate is unreliable."]
    # the group x interval term adds nothing: score test statistic 0 on 1 degree of freedom
    assert m.ph_test_["df"] == 1 and m.ph_test_["statistic"] == pytest.approx(0.0, abs=1e-6)
    assert m.ph_test_["p_value"] == pytest.approx(1.0, abs=2e-3)
    # rows: one per customer and interval reached (the promoter, whose group has no loss, left out),
    # interval by interval in the history's order; summed by (group, period) they hold 1 loss each and
    # 175, 400, 350 and 800 days at risk
    r = m._rows(h[h["group"] != "promoter"])[0]
    assert r[["group", "period"]].values.tolist() == [["passive", "0-100d"]] * 4 + [["detractor", "0-100d"]] * 2 + [
        ["passive", "100d+"]] * 2 + [["detractor", "100d+"]]
    assert r["event"].tolist() == [1.0, 0, 0, 0, 1, 0, 1, 0, 1]
    assert r["exposure_years"].to_numpy() * YEAR == pytest.approx([50, 100, 100, 100, 75, 100, 100, 700, 400])
    # baseline: the passives' losses per year at risk
    b = m.baseline_
    assert b["from_day"].tolist() == [0, 100] and b["to_day"].tolist() == [100, np.inf]
    assert b["hazard_per_year"].tolist() == pytest.approx([YEAR / 350, YEAR / 800], rel=1e-6)
    assert m.relative_risk_.tolist() == pytest.approx([1.0] * 6) and m.relative_risk_.name == "relative_risk"
    # Greenwood: var(S) / S^2 = 1 / (4 x 3) + 1 / (2 x 1) = 7 / 12 at S = 3/8; se of log(-log S) = that / |log S|
    assert m.reference_curve_se_ == pytest.approx(np.sqrt(7 / 12) / abs(np.log(3 / 8)), rel=1e-12)
    # churn by the end of follow-up, all seven (day 900): S = 6/7 x 4/5 x 3/4 x 2/3... see below
    # day 50: 7 at risk, 1 lost; day 75: 6, 1; day 200: 4 (C, D, the detractor of day 500, the promoter), 1;
    # day 500: 3, 1: S = 6/7 x 5/6 x 3/4 x 2/3 = 5/14
    assert m.churn_by_end_of_follow_up_ == pytest.approx(1 - 5 / 14, rel=1e-12)
    e = evalue.e_values_hr(s["hazard_ratio"], s["hr_lo"], s["hr_hi"], rare=False)
    assert s["e_value"].tolist()[:2] == pytest.approx(list(e.point)[:2]) and np.isnan(s.loc["promoter", "e_value"])
    assert s["e_value_ci"].tolist()[:2] == pytest.approx(list(e.ci)[:2])
    assert m.e_value_conversion_ == e.conversion and "common outcome" in m.e_value_conversion_
    r = m.results()
    assert r["detractor"] == {"observed_rate_12m": 0.5, "hazard_ratio": s.loc["detractor", "hazard_ratio"],
                              "hazard_ratio_ci": [s.loc["detractor", "hr_lo"], s.loc["detractor", "hr_hi"]],
                              "e_value": s.loc["detractor", "e_value"], "e_value_ci": s.loc["detractor", "e_value_ci"]}
    assert r["promoter"] == {"observed_rate_12m": 0.0, "hazard_ratio": None, "hazard_ratio_ci": [None, None],
                             "e_value": None, "e_value_ci": None}
    assert r["passive"]["hazard_ratio"] == 1.0 and r["passive"]["e_value"] == 1.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_cumulative_hazard_by_hand():
    """L0(d) = (min(d, 100) x 365.25 / 350 + max(d - 100, 0) x 365.25 / 800) / 365.25 = min(d, 100) / 350 +
    max(d - 100, 0) / 800. A detractor (HR 2) followed 0 days, over half a year: 2 x (100 / 350 + 82.625 /
    800); followed 50 days: 2 x (L0(232.625) - L0(50)). The promoter (no HR) churns like the passives."""
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history())

    def L0(d):
        return min(d, 100) / 350 + max(d - 100, 0) / 800

    ch = m.cumulative_hazard(pd.Index([4, 0]), "detractor", [0.0, 50.0], [0.5, 1.0])
    assert ch.shape == (2, 2)
    for i, tau in enumerate((0.0, 50.0)):
        for j, t in enumerate((0.5, 1.0)):
            assert ch[i, j] == pytest.approx(2 * (L0(tau + t * YEAR) - L0(tau)), rel=1e-6), (i, j)
    assert m.cumulative_hazard(pd.Index([6]), "promoter", [10.0], [2.0])[0, 0] == pytest.approx(
        L0(10 + 2 * YEAR) - L0(10), rel=1e-6)
    assert m.cumulative_hazard(pd.Index([1]), "passive", [0.0], [0.0])[0, 0] == 0.0
    assert m._baseline_integral(np.array([0.0, 100.0, 900.0])) == pytest.approx(
        [0.0, 100 / 350, 100 / 350 + 800 / 800], rel=1e-6)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_cumulative_hazard_with_an_adjustment_term_and_a_customer_not_fitted():
    """With a plan as adjustment term: the customers of plan 'b' have the relative risk exp(b_plan), those
    of 'a' 1, and a customer the model was not fitted on (the promoter, no loss in its group) the median of
    the fitted ones; the baseline is exp(const) and exp(const + b_period)."""
    rows = []
    for g, d, c in CHURN_ROWS:
        # each customer twice: on plan a as above, and on plan b leaving in half the time (the fit is not
        # exact then; what is checked holds whatever the fitted terms are)
        rows.append({"group": g, "duration_days": d, "churned": c, "plan": "a"})
        rows.append({"group": g, "duration_days": d / 2 if g != "promoter" else d, "churned": c, "plan": "b"})
    h = _history(rows)
    m = linkage.ChurnModel("passive", ["plan"], min_group_size=1, intervals=INTERVALS).fit(h)
    b = m.result_.params["plan_b"]
    assert m.relative_risk_.loc[h.index[(h["plan"] == "b") & (h["group"] != "promoter")]].to_numpy() == pytest.approx(np.exp(b))
    assert m.relative_risk_.loc[h.index[(h["plan"] == "a") & (h["group"] != "promoter")]].to_numpy() == pytest.approx(1.0)
    assert list(m.relative_risk_.index) == list(h.index[h["group"] != "promoter"])
    median = float(np.median(m.relative_risk_))
    hr = m.summary.loc["detractor", "hazard_ratio"]
    L = m._baseline_integral(np.array([YEAR]))[0]
    got = m.cumulative_hazard(pd.Index([1, 12]), "detractor", [0.0, 0.0], [1.0])
    assert got[:, 0] == pytest.approx([hr * np.exp(b) * L, hr * median * L], rel=1e-9)
    assert m.baseline_["hazard_per_year"].iloc[0] == pytest.approx(np.exp(m.result_.params["const"]), rel=1e-12)
    assert m.baseline_["hazard_per_year"].iloc[1] == pytest.approx(
        np.exp(m.result_.params["const"] + m.result_.params["period_100d+"]), rel=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_interval_nobody_reached_carries_the_last_hazard_on():
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=(0, 100, 2000, 3000, np.inf)).fit(_churn_history())
    rates = m.baseline_["hazard_per_year"].tolist()
    assert rates[:2] == pytest.approx([YEAR / 350, YEAR / 800], rel=1e-6)
    assert rates[2] == rates[1] and rates[3] == rates[1]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_churn_km_curves_by_hand():
    h = _churn_history()
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(h)
    c = m.km_curves(h)
    assert list(c.columns) == ["group", "days", "retained"]
    assert c["group"].unique().tolist() == ["detractor", "passive"]  # the promoter lost nobody: no curve
    det = c[c["group"] == "detractor"]
    # every week to day 500, the end of the first year, and day 500 itself
    assert det["days"].tolist() == sorted(set(list(range(0, 501, 7)) + [YEAR, 500]))
    at = dict(zip(det["days"], det["retained"]))
    assert at[0] == 1.0 and at[70] == 1.0 and at[77] == 0.5 and at[YEAR] == 0.5 and at[497] == 0.5 and at[500] == 0.0
    pas = c[c["group"] == "passive"]
    assert pas["days"].max() == 800 and YEAR in set(pas["days"]) and 2 * YEAR in set(pas["days"])
    at = dict(zip(pas["days"], pas["retained"]))
    assert at[49] == 1.0 and at[56] == 0.75 and at[196] == 0.75 and at[203] == 0.375 and at[2 * YEAR] == 0.375
    assert list(c.index) == list(range(len(c)))  # one clean index over the groups
    short = m.km_curves(h, max_days=300)
    assert short.groupby("group")["days"].max().tolist() == [300, 300]
    assert YEAR not in set(short["days"])
    assert m.km_curves(h, max_days=1000).groupby("group")["days"].max().tolist() == [500, 800]
    skipped = linkage.ChurnModel("passive").fit(h.assign(churned=False))
    empty = skipped.km_curves(h)
    assert empty.empty and list(empty.columns) == ["group", "days", "retained"]


def test_churn_skips_word_for_word():
    h = _churn_history()
    m = linkage.ChurnModel("passive", min_group_size=2).fit(h.assign(churned=False))
    assert not m.fitted and m.skipped_.startswith("Churn: no customer in the data left after their survey (no end_date)")
    assert m.skipped_ == ("Churn: no customer in the data left after their survey (no end_date), so how fast each group "
                          "leaves cannot be measured. Add the day each former customer left as end_date in the customers "
                          "table; without it the case has no retention lever and lifetime values assume customers stay.")
    assert m.warnings_ == [m.skipped_] and m.groups_ == GROUPS
    assert m.summary["customers"].tolist() == [2, 4, 1] and m.summary["small_group"].tolist() == [False, False, True]
    assert list(m.summary.columns) == ["customers", *linkage.ChurnModel.estimates, "small_group"]
    assert m.summary["hazard_ratio"].isna().all() and m.results()["passive"]["hazard_ratio"] is None
    assert np.isnan(m.reference_curve_se_) and m.ph_test_["df"] == 0
    m = linkage.ChurnModel("passive").fit(h.assign(churned=h["churned"] & (h["group"] != "passive")))
    assert m.skipped_ == ("Churn: no customer of the reference group 'passive' left after their survey, so the other "
                          "groups' churn has nothing to be compared with; the case has no retention lever.")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_churn_group_without_customers_and_a_single_interval():
    """One interval: the hazard ratio is the ratio of losses per year at risk, 2 / 575 over 2 / 1150 (the
    intervals above pooled), and its variance 1 / 2 + 1 / 2 (two losses in each group); no PH test."""
    h = _churn_history([r for r in CHURN_ROWS if r[0] != "promoter"])
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=(0, np.inf)).fit(h)
    assert m.warnings_ == ["Churn: no customer in the promoter group, so it has no estimate."]
    s = m.summary
    assert s.loc["detractor", "hazard_ratio"] == pytest.approx((2 / 575) / (2 / 1150), rel=1e-6)
    assert s.loc["detractor", "hr_hi"] == pytest.approx(2 * np.exp(Z95 * np.sqrt(1.0)), rel=1e-5)
    assert s["customers"].tolist() == [2, 4, 0] and np.isnan(s.loc["promoter", "observed_rate_12m"])
    assert s["events"].tolist() == [2, 2, 0]  # a group without customers has no loss
    assert m.ph_test_["df"] == 0 and np.isnan(m.ph_test_["statistic"]) and np.isnan(m.ph_test_["p_value"])
    assert m.baseline_["hazard_per_year"].tolist() == pytest.approx([2 / 1150 * YEAR], rel=1e-6)
    assert m.baseline_["to_day"].tolist() == [np.inf]


def test_km_log_cumhaz_se_corners():
    h = _churn_history()
    assert np.isnan(linkage._km_log_cumhaz_se(h.iloc[:0]))
    assert np.isnan(linkage._km_log_cumhaz_se(h.assign(churned=False)))
    p = h[h["group"] == "passive"]
    assert np.isnan(linkage._km_log_cumhaz_se(p, days=10))  # before the first time on the curve
    # on day 50 exactly: S = 3/4, var / S^2 = 1 / 12
    assert linkage._km_log_cumhaz_se(p, days=50) == pytest.approx(np.sqrt(1 / 12) / abs(np.log(0.75)), rel=1e-12)
    assert linkage._km_log_cumhaz_se(p, days=199) == pytest.approx(np.sqrt(1 / 12) / abs(np.log(0.75)), rel=1e-12)
    d = h[h["group"] == "detractor"]
    assert np.isnan(linkage._km_log_cumhaz_se(d, days=600))  # S = 0


def _with_bse(monkeypatch, column: str, se: float) -> None:
    """Every GLM fitted from now on reports standard error ``se`` for ``column`` (the rest as fitted)."""
    import statsmodels.api as sm

    fit = sm.GLM.fit

    def patched(self, *a, **k):
        res = fit(self, *a, **k)
        if column in res.bse.index:
            bse = res.bse.copy()
            bse[column] = se
            res._cache["bse"] = bse
        return res

    monkeypatch.setattr(sm.GLM, "fit", patched)


@pytest.mark.parametrize("se, reported", [(5.0, True), (5.5, False), (np.inf, False), (np.nan, False)])
def test_rate_model_does_not_report_an_unstable_ratio(monkeypatch, se, reported):
    """A standard error of the log ratio over 5 (or not a number) means no estimate: the ratio is not
    reported, with a warning; 5 itself still is."""
    _with_bse(monkeypatch, "group[detractor]", se)
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_rate_history())
    s = m.summary
    assert s.loc["promoter", "ratio"] == pytest.approx(RATES["promoter"] / RATES["passive"], rel=1e-6)
    assert s.loc["detractor", "customers"] == 2 and s.loc["detractor", "observed"] == 0.5
    warning = "Revenue: the detractor estimate is unstable (too few customers or no spread in the outcome); it is not reported."
    if reported:
        assert s.loc["detractor", "ratio"] == pytest.approx(0.175, rel=1e-6) and warning not in m.warnings_
    else:
        assert s.loc["detractor", ["adjusted", "ratio", "ratio_lo", "ratio_hi", "e_value"]].isna().all()
        assert warning in m.warnings_ and m.results()["detractor"]["ratio"] is None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("se, reported", [(5.0, True), (5.5, False), (np.inf, False)])
def test_churn_model_does_not_report_an_unstable_hazard_ratio(monkeypatch, se, reported):
    _with_bse(monkeypatch, "group[detractor]", se)
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history())
    s = m.summary
    warning = "Churn: the detractor hazard ratio is unstable (too few customers or churn events); it is not reported."
    assert s.loc["detractor", "events"] == 2 and s.loc["detractor", "observed_rate_12m"] == pytest.approx(0.5)
    if reported:
        assert s.loc["detractor", "hazard_ratio"] == pytest.approx(2.0, rel=1e-6) and warning not in m.warnings_
    else:
        assert s.loc["detractor", ["hazard_ratio", "hr_lo", "hr_hi", "e_value"]].isna().all()
        assert warning in m.warnings_ and m.results()["detractor"]["hazard_ratio"] is None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_churn_proportional_hazards_test_by_hand():
    """The passives four times over (4 losses in 1,400 days at risk in 0-100d, 4 in 3,200 after). Detractors:
    20 leave on day 10 and 20 are followed to day 800, one of whom leaves then: 20 losses in 2,200 days in
    0-100d (about 3.2 times the passives' rate) but 1 in 14,000 after (0.06 times). The score test of the
    group x interval term at the main-effects fit (fitted here on the four cells): the score u = observed -
    expected losses of detractors after day 100, its variance the efficient information
    I_ee - I_eX I_XX^-1 I_Xe (I = Z' diag(expected) Z, Z = the cells' design with the extra column e), and
    the statistic u^2 / that, far beyond chi-square(1)'s 1% point."""
    import statsmodels.api as sm
    from scipy import stats

    rows = [r for r in CHURN_ROWS if r[0] == "passive"] * 4 + [("detractor", 10, True)] * 20 + \
        [("detractor", 800, False)] * 19 + [("detractor", 800, True)]
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history(rows))
    events = np.array([20.0, 1.0, 4.0, 4.0])  # detractor 0-100d, 100d+, passive 0-100d, 100d+
    days = np.array([2200.0, 14000.0, 1400.0, 3200.0])
    X = np.array([[1.0, 1, 0], [1, 1, 1], [1, 0, 0], [1, 0, 1]])
    main = sm.GLM(events, X, family=sm.families.Poisson(), offset=np.log(days / YEAR)).fit()
    mu = main.fittedvalues
    e = np.array([0.0, 1, 0, 0])  # detractor x 100d+
    u = float(e @ (events - mu))
    Z = np.column_stack([X, e])
    info = Z.T @ (mu[:, None] * Z)
    v = info[3, 3] - info[3, :3] @ np.linalg.solve(info[:3, :3], info[:3, 3])
    score = u ** 2 / v
    assert m.ph_test_["df"] == 1 and m.ph_test_["statistic"] == pytest.approx(score, rel=1e-6)
    assert m.ph_test_["p_value"] == pytest.approx(stats.chi2.sf(score, 1), rel=1e-4) and m.ph_test_["p_value"] < 0.01
    assert m.summary.loc["detractor", "hazard_ratio"] == pytest.approx(np.exp(main.params[1]), rel=1e-6)
    assert m.warnings_ == [
        "Churn: no customer in the promoter group, so it has no estimate.",
        "Churn: the gap between groups is not constant over time since the survey (proportional-hazards test "
        f"p = {m.ph_test_['p_value']:.3g}); the hazard ratio is an average over the follow-up."]


def test_models_in_jupyter():
    """The model's own class name heads its HTML; a skipped model shows its reason, a fitted one its table."""
    skipped = linkage.RevenueModel("passive").fit(_rate_history().assign(post_revenue=0.0))
    html = skipped._repr_html_()
    assert html == ("<h4>RevenueModel</h4><p>Skipped: Revenue: no customer has any revenue after their survey, so it "
                    "cannot be compared between groups.</p>")
    fitted = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history())
    html = fitted._repr_html_()
    assert html.startswith("<h4>ChurnModel</h4>") and "<table" in html and "hazard_ratio" in html


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_km_curves_grid_ends_on_the_last_day_followed():
    """Weekly points up to and including the last day (day 497 = 71 weeks is on the grid when the curve
    ends on day 497 or 498, not when it ends on day 496) and never past it."""
    h = _churn_history()
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(h)
    for end, last_week in ((496, 490), (497, 497), (498, 497)):
        det = m.km_curves(h, max_days=end)
        det = det[det["group"] == "detractor"]
        assert det["days"].tolist() == sorted(set(list(range(0, last_week + 1, 7)) + [YEAR, end])), end


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_km_curves_skip_a_group_in_which_nobody_left_and_go_on():
    """The detractors (first in band order) lost nobody: no curve for them, the passives' curve still."""
    rows = [r for r in CHURN_ROWS if r[0] == "passive"] + [("detractor", 300, False), ("detractor", 400, False)]
    h = _churn_history(rows)
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(h)
    c = m.km_curves(h)
    assert c["group"].unique().tolist() == ["passive"] and c["days"].max() == 800


def test_model_defaults():
    """By default a group is small under 100 customers (100 is not small), nothing is adjusted for beyond
    the built-in terms, and churn uses CHURN_INTERVALS."""
    h = _history([{"group": "passive"}] * 100 + [{"group": "promoter"}] * 99)  # nobody spent or left: skipped
    for model in (linkage.RevenueModel("passive"), linkage.CostToServeModel("passive"),
                  linkage.ReferralModel("passive"), linkage.ChurnModel("passive")):
        assert model.min_group_size == 100 and model.covariates == [] and model.reference_group == "passive"
        model.fit(h)
        assert not model.fitted and model.summary["small_group"].tolist() == [True, False, True]
    assert linkage.ChurnModel("passive").intervals == linkage.CHURN_INTERVALS == (0, 91, 182, 365, 730, np.inf)
    assert linkage.RevenueModel("passive", ("region",)).covariates == ["region"]
    assert linkage.ChurnModel("passive", ("region",)).covariates == ["region"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_no_proportional_hazards_test_for_a_group_that_never_reaches_a_later_interval():
    """Both detractors leave before day 100: their group x 100d+ term is zero for every cell, which says
    nothing and is dropped, so there is no test (df 0) rather than one on an empty term."""
    rows = [r for r in CHURN_ROWS if r[0] == "passive"] + [("detractor", 75, True), ("detractor", 90, True)]
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history(rows))
    assert m.ph_test_["df"] == 0 and np.isnan(m.ph_test_["statistic"]) and np.isnan(m.ph_test_["p_value"])
    # passives 1 loss in 350 days in 0-100d; detractors 2 in 165: the hazard ratio (2 / 165) / (1 / 350)
    assert m.summary.loc["detractor", "hazard_ratio"] == pytest.approx((2 / 165) / (1 / 350), rel=1e-6)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_churn_e_values_use_the_rare_outcome_conversion_when_few_left():
    """Forty promoters followed 900 days, none of whom left: the Kaplan-Meier curve of all 46 loses one
    customer each at 46, 45, 43 and 42 at risk (days 50, 75, 200, 500; one censored on day 100), so
    S = 45/46 x 44/45 x 42/43 x 41/42 = (44 x 41) / (46 x 43) and churn by the end 87/989 = 8.8%, under
    15%: the hazard ratios' E-values use the rare-outcome conversion (the hazard ratio as a risk ratio)."""
    h = _churn_history([r for r in CHURN_ROWS if r[0] != "promoter"] + [("promoter", 900, False)] * 40)
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(h)
    assert m.churn_by_end_of_follow_up_ == pytest.approx(87 / 989, rel=1e-12)
    s = m.summary
    e = evalue.e_values_hr(s["hazard_ratio"], s["hr_lo"], s["hr_hi"], rare=True)
    assert m.e_value_conversion_ == e.conversion != evalue.e_values_hr(2.0, 1.0, 3.0, rare=False).conversion
    assert s["e_value"].tolist()[:2] == pytest.approx(list(e.point)[:2])
    assert s.loc["detractor", "e_value"] == pytest.approx(evalue.e_value(s.loc["detractor", "hazard_ratio"]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_churn_rows_carry_continuous_adjustment_terms():
    """The churn model's rows carry each customer's adjustment terms as they are, not bins: with tenures
    1, 2, 3, ... years, row by row the log of 1 + the customer's tenure (issue 11: a confounder binned
    stays confounded inside each bin)."""
    h = _churn_history()
    h["tenure_years"] = np.arange(1.0, len(h) + 1)
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(h)
    rows = m._rows(h[h["group"] != "promoter"])[0]
    adj = [c for c in rows.columns if c not in ("group", "period", "event", "exposure_years")]
    assert adj == ["log_pre_revenue_rate", "log_pre_revenue_per_transaction", "log_pre_contact_cost_rate",
                   "log_tenure_years", "no_pre_history"]
    # customers 1-6 (the promoter, 7th, has no loss and is left out): the 0-100d rows of all six, then
    # the 100d+ rows of those followed beyond day 100 (customers 3, 4 and 6)
    assert rows["log_tenure_years"].to_numpy() == pytest.approx(np.log1p([1, 2, 3, 4, 5, 6, 3, 4, 6]), rel=1e-12)
    assert rows["event"].sum() == 4 and rows["exposure_years"].sum() * YEAR == pytest.approx(
        50 + 100 + 200 + 800 + 75 + 500)
    # the fit uses tenure as one continuous term: its coefficient is in the model
    assert "log_tenure_years" in m.result_.params.index


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_binned_churn_model_sums_rows_into_cells_and_fits_the_same():
    """binned=True: the terms are quintile bins and the person-period rows are summed per (group, interval,
    bins); with no adjustment terms that vary, the by-hand history gives the four cells of 175, 400, 350
    and 800 days (1 loss each), and the same hazard ratio (2) and proportional-hazards statistic as the
    row-by-row fit."""
    h = _churn_history()
    rows = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS, binned=True)._rows(
        h[h["group"] != "promoter"])[0]
    assert rows[["group", "period"]].values.tolist() == [["detractor", "0-100d"], ["detractor", "100d+"],
                                                         ["passive", "0-100d"], ["passive", "100d+"]]
    assert rows["event"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert rows["exposure_years"].to_numpy() * YEAR == pytest.approx([175, 400, 350, 800])
    cells = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS, binned=True).fit(h)
    each = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(h)
    assert cells.summary.loc["detractor", "hazard_ratio"] == pytest.approx(2.0, rel=1e-6)
    assert cells.summary.loc["detractor", ["hr_lo", "hr_hi"]].tolist() == pytest.approx(
        each.summary.loc["detractor", ["hr_lo", "hr_hi"]].tolist(), rel=1e-6)
    assert cells.ph_test_["statistic"] == pytest.approx(each.ph_test_["statistic"], abs=1e-6)
    # with tenures 1, 2, 3, ... the binned terms are tenure bins q1-q4, not a continuous tenure
    h["tenure_years"] = np.arange(1.0, len(h) + 1)
    rows = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS, binned=True)._rows(h)[0]
    assert [c for c in rows.columns if c.startswith("log_tenure")] == [
        "log_tenure_years_q1", "log_tenure_years_q2", "log_tenure_years_q3", "log_tenure_years_q4"]


# --------------------------------------------------------------------------- within-customer check


def _within_rows(detractor_scale: float):
    """Revenue after the survey is 10 x the square root of the level before it in every group (no effect);
    the detractors' levels before are the passives' (10 to 1,000 a year) times ``detractor_scale``."""
    pre = np.linspace(10.0, 1000.0, 200)
    return [("detractor", x * detractor_scale, 1.0, 10 * np.sqrt(x * detractor_scale)) for x in pre] + \
        [(g, x, 1.0, 10 * np.sqrt(x)) for g in ("passive", "promoter") for x in pre]


def _within_history(rows) -> pd.DataFrame:
    return _history([{"group": g, "pre_revenue": p, "post_exposure_years": e, "post_revenue": y}
                     for g, p, e, y in rows])


def _within_by_hand(rows, group):
    """A group's rate of after over before (sum of after / sum of before x years after) and the sandwich
    variance of its log, sum (y - mu)^2 / (sum mu)^2 with mu = rate x before x years after."""
    r = [(p * e, y) for g, p, e, y in rows if g == group and p > 0]
    rate = sum(y for _, y in r) / sum(x for x, _ in r)
    mu = [rate * x for x, _ in r]
    return rate, sum((y - m) ** 2 for (_, y), m in zip(r, mu)) / sum(mu) ** 2


def test_within_customer_check_below_the_main_ratio_warns_word_for_word():
    """Detractors four times the passives' size before the survey: the main model, adjusting for the log level,
    reads about 1; after over before reads exactly half the passives' (sqrt(4x) / 4x = 1/2 x sqrt(x) / x), the
    interval from the two groups' sandwich variances, well below the main interval: the warning, every word."""
    rows = _within_rows(4.0)
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_within_history(rows))
    s = m.summary
    (rd, vd), (rp, vp) = _within_by_hand(rows, "detractor"), _within_by_hand(rows, "passive")
    assert rd / rp == pytest.approx(0.5, rel=1e-12)
    se = np.sqrt(vd + vp)
    d = s.loc["detractor"]
    assert d["within_ratio"] == pytest.approx(0.5, rel=1e-6)
    assert d["within_lo"] == pytest.approx(0.5 * np.exp(-Z95 * se), rel=1e-6)
    assert d["within_hi"] == pytest.approx(0.5 * np.exp(Z95 * se), rel=1e-6)
    assert s.loc["promoter", "within_ratio"] == pytest.approx(1.0, rel=1e-9)
    assert s.loc["promoter", "within_hi"] == pytest.approx(np.exp(Z95 * np.sqrt(2 * vp)), rel=1e-6)
    assert s["within_customers"].tolist() == [200.0, 200.0, 200.0]
    assert d["covariates_ratio"] == pytest.approx(1.0, abs=0.01) and d["within_hi"] < d["covariates_lo"]
    assert m.method_ == "within" and (d["ratio"], d["ratio_lo"], d["ratio_hi"]) == (
        d["within_ratio"], d["within_lo"], d["within_hi"])
    assert m.warnings_ == [
        f"Revenue: compared with their own level before the survey, detractor customers read 0.500 (95% CI "
        f"{d['within_lo']:.3f} to {d['within_hi']:.3f}); against comparable customers (controls for what the data "
        f"records before the survey) they read {d['covariates_ratio']:.3f} ({d['covariates_lo']:.3f} to "
        f"{d['covariates_hi']:.3f}). The two do not agree: the controls measure account size only roughly, which "
        f"the first does not rely on, or the groups were already moving apart before the survey, which the first "
        f"assumes away. The first is the headline."]
    # the covariate-adjusted comparison as the headline (cost to serve's way) says it the other way round
    c = linkage.CostToServeModel("passive", min_group_size=1).fit(
        _within_history(rows).assign(pre_contact_cost=lambda x: x["pre_revenue"], post_contact_cost=lambda x: x["post_revenue"],
                                     pre_revenue=100.0))  # only the contact cost before measures the level
    dc = c.summary.loc["detractor"]
    assert c.method_ == "covariates" and dc["within_ratio"] == pytest.approx(0.5, rel=1e-6)
    assert [w for w in c.warnings_ if "do not agree" in w] == [
        f"Cost to serve: compared with their own level before the survey, detractor customers read 0.500 (95% CI "
        f"{dc['within_lo']:.3f} to {dc['within_hi']:.3f}) against {dc['ratio']:.3f} ({dc['ratio_lo']:.3f} to "
        f"{dc['ratio_hi']:.3f}) from the main comparison: the two do not agree, so part of the gap may come from what "
        f"the controls measure only roughly (or the groups already differed before the survey)."]
    assert f"{d['within_lo']:.3f} to {d['within_hi']:.3f}" == "0.477 to 0.524"
    r = m.results()["detractor"]
    assert r["within_customer_ratio"] == pytest.approx(0.5, rel=1e-6)
    assert r["within_customer_ratio_ci"] == [d["within_lo"], d["within_hi"]]
    assert type(r["within_customer_ratio"]) is float and all(type(x) is float for x in r["within_customer_ratio_ci"])


def test_within_customer_check_with_two_groups_a_refund_and_a_group_without_outcome():
    """Passives 90, 210 and 40 after levels of 100, 200 and 100 a year (the last for half a year): 340 over
    350 expected at their own level. Detractors 30 after 50, and a net refund (-10, counted as 0) over two
    years after 150: 30 over 350. The promoters' one customer with revenue after the survey had none before
    (not in the check) and the one with revenue before had none after: the promoters have no check, so it
    compares two groups (enough), and their main ratio still stands."""
    rows = [("passive", 100.0, 1.0, 90.0), ("passive", 200.0, 1.0, 210.0), ("passive", 100.0, 0.5, 40.0),
            ("detractor", 50.0, 1.0, 30.0), ("detractor", 150.0, 2.0, -10.0),
            ("promoter", 0.0, 1.0, 50.0), ("promoter", 100.0, 1.0, 0.0)]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_within_history(rows))
    s = m.summary
    assert s["ratio"].notna().all()
    assert s["within_customers"].tolist() == [2.0, 3.0, 1.0]
    assert s.loc["promoter", ["within_ratio", "within_lo", "within_hi"]].isna().all()
    clipped = [(g, p, e, max(y, 0.0)) for g, p, e, y in rows]
    (rd, vd), (rp, vp) = _within_by_hand(clipped, "detractor"), _within_by_hand(clipped, "passive")
    assert rd == 30 / 350 and rp == 340 / 350
    se = np.sqrt(vd + vp)
    assert s.loc["detractor", "within_ratio"] == pytest.approx(30 / 340, rel=1e-6)
    assert s.loc["detractor", "within_lo"] == pytest.approx(30 / 340 * np.exp(-Z95 * se), rel=1e-5)
    assert s.loc["detractor", "within_hi"] == pytest.approx(30 / 340 * np.exp(Z95 * se), rel=1e-5)
    assert m.results()["promoter"]["within_customer_ratio"] is None
    assert m.results()["promoter"]["within_customer_ratio_ci"] == [None, None]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_relative_risks_are_indexed_like_the_history():
    """The relative risks keep the history's own row labels (here 100-106, the promoter first and left out of
    the fit: no loss in its group), which cumulative_hazard looks customers up by."""
    rows = [r for r in CHURN_ROWS if r[0] == "promoter"] + [r for r in CHURN_ROWS if r[0] != "promoter"]
    h = _churn_history(rows)
    h.index = h.index + 100
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(h)
    assert list(m.relative_risk_.index) == [101, 102, 103, 104, 105, 106]
    assert m.relative_risk_.to_numpy() == pytest.approx([1.0] * 6)


def test_km_log_cumhaz_se_of_a_curve_at_zero_is_nan_without_a_warning():
    """Everybody lost by the day asked (S = 0): log(-log S) has no standard error, NaN, and no numpy warning
    (a log of 0 or a 0 x inf would print one in the report's notebook)."""
    import warnings

    d = _churn_history()
    d = d[d["group"] == "detractor"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(linkage._km_log_cumhaz_se(d, days=600))
        assert np.isnan(linkage._km_log_cumhaz_se(d, days=500))


def test_a_loss_on_an_intervals_last_day_is_in_that_interval():
    """Intervals are (lo, hi]: a customer who leaves on day 100 leaves in 0-100d (100 days at risk) and is
    not at risk after; one censored on day 100 likewise, without a loss."""
    h = pd.DataFrame({"duration_days": [100.0, 100.0, 250.0], "churned": [True, False, True]})
    pp = linkage.person_periods(h, (0, 100, 200, np.inf))
    assert pp["row"].tolist() == [0, 1, 2, 2, 2]
    assert pp["period"].tolist() == ["0-100d"] * 3 + ["100-200d", "200d+"]
    assert pp["event"].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert pp["exposure_years"].to_numpy() * YEAR == pytest.approx([100, 100, 100, 100, 50])
    # the same on a later interval's last day
    pp = linkage.person_periods(h.assign(duration_days=[200.0, 50.0, 10.0]), (0, 100, 200, np.inf))
    assert pp["event"].tolist() == [0.0, 0.0, 1.0, 1.0] and pp["period"].tolist()[-1] == "100-200d"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_churn_refit_that_fails_keeps_nothing_of_the_last_fit(monkeypatch):
    """Fitted once (a score test and a Greenwood standard error), then refitted on data the GLM cannot fit:
    the error comes through, and the model does not go on showing the first fit's checks: they read 'not
    run' (NaN, df 0)."""
    import statsmodels.api as sm

    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history())
    assert m.ph_test_["df"] == 1 and np.isfinite(m.reference_curve_se_)

    def broken(self, *a, **k):
        raise ValueError("the design is broken")

    monkeypatch.setattr(sm.GLM, "fit", broken)
    with pytest.raises(ValueError, match="the design is broken"):
        m.fit(_churn_history())
    assert m.skipped_ is None and m.warnings_ == [  # this fit's own warnings only, not the first fit's too
        "Churn of the promoter group cannot be estimated: none of its 1 customers left in the follow-up, so no "
        "hazard ratio is reported."]
    assert list(m.ph_test_) == ["statistic", "df", "p_value"] and m.ph_test_["df"] == 0
    assert type(m.ph_test_["df"]) is int
    assert np.isnan(m.ph_test_["statistic"]) and np.isnan(m.ph_test_["p_value"])
    assert type(m.reference_curve_se_) is float and np.isnan(m.reference_curve_se_)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_group_of_one_customer_with_one_loss_is_estimated():
    """The one promoter leaves on day 300 (100 days at risk in 0-100d without a loss, 200 in 100d+ with it):
    one customer and one loss are enough for a hazard ratio, the one a Poisson GLM of the six cells gives."""
    import statsmodels.api as sm

    rows = [r for r in CHURN_ROWS if r[0] != "promoter"] + [("promoter", 300, True)]
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history(rows))
    assert m.warnings_ == []
    # cells: detractor 0-100d, 100d+, passive 0-100d, 100d+, promoter 0-100d, 100d+
    events = np.array([1.0, 1, 1, 1, 0, 1])
    days = np.array([175.0, 400, 350, 800, 100, 200])
    X = np.array([[1.0, 1, 0, 0], [1, 1, 0, 1], [1, 0, 0, 0], [1, 0, 0, 1], [1, 0, 1, 0], [1, 0, 1, 1]])
    cells = sm.GLM(events, X, family=sm.families.Poisson(), offset=np.log(days / YEAR)).fit()
    s = m.summary
    assert s.loc["promoter", ["customers", "events"]].tolist() == [1, 1]
    assert s.loc["promoter", "hazard_ratio"] == pytest.approx(np.exp(cells.params[2]), rel=1e-6)
    assert s.loc["detractor", "hazard_ratio"] == pytest.approx(np.exp(cells.params[1]), rel=1e-6)
    assert s.loc["promoter", "hr_hi"] == pytest.approx(np.exp(cells.params[2] + Z95 * cells.bse[2]), rel=1e-5)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_churn_with_only_the_reference_group_losing_customers_and_one_interval():
    """Only the passives lose anyone and there is one interval: the design is the constant alone, and the
    baseline hazard is the passives' 2 losses per 1,150 days at risk."""
    rows = [r for r in CHURN_ROWS if r[0] == "passive"] + [("detractor", 300, False), ("promoter", 900, False)]
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=(0, np.inf)).fit(_churn_history(rows))
    assert list(m.result_.params.index) == ["const"]
    assert m.baseline_["hazard_per_year"].tolist() == pytest.approx([2 / 1150 * YEAR], rel=1e-9)
    assert m.summary["hazard_ratio"].tolist()[1] == 1.0 and m.summary["hazard_ratio"].isna().tolist() == [True, False, True]
    assert m.ph_test_["df"] == 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_proportional_hazards_test_leaves_out_only_the_empty_term():
    """Both detractors leave before day 100 (their group x 100d+ term is zero in every row: dropped); the
    promoters lose one of three in 0-100d (250 days at risk) and one in 100d+ (700 days): their term is
    tested, on 1 degree of freedom, with the score statistic of the five cells worked as in the test above."""
    import statsmodels.api as sm
    from scipy import stats

    rows = [r for r in CHURN_ROWS if r[0] == "passive"] + [("detractor", 75, True), ("detractor", 90, True),
                                                          ("promoter", 50, True), ("promoter", 300, True),
                                                          ("promoter", 600, False)]
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history(rows))
    # cells: detractor 0-100d, passive 0-100d, 100d+, promoter 0-100d, 100d+ (const, detractor, promoter, 100d+)
    events = np.array([2.0, 1, 1, 1, 1])
    days = np.array([165.0, 350, 800, 250, 700])
    X = np.array([[1.0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 1], [1, 0, 1, 0], [1, 0, 1, 1]])
    main = sm.GLM(events, X, family=sm.families.Poisson(), offset=np.log(days / YEAR)).fit()
    mu = main.fittedvalues
    e = np.array([0.0, 0, 0, 0, 1])  # promoter x 100d+
    Z = np.column_stack([X, e])
    info = Z.T @ (mu[:, None] * Z)
    v = info[4, 4] - info[4, :4] @ np.linalg.solve(info[:4, :4], info[:4, 4])
    score = float(e @ (events - mu)) ** 2 / v
    assert m.ph_test_["df"] == 1 and m.ph_test_["statistic"] == pytest.approx(score, rel=1e-6)
    assert m.ph_test_["p_value"] == pytest.approx(stats.chi2.sf(score, 1), rel=1e-6)
    assert m.summary.loc["promoter", "hazard_ratio"] == pytest.approx(np.exp(main.params[2]), rel=1e-6)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("error", [np.linalg.LinAlgError("Singular matrix"), ValueError("shapes do not align")])
def test_churn_fits_when_the_proportional_hazards_test_cannot_be_computed(monkeypatch, error):
    """A score test that fails (a singular information matrix: the data's shape) leaves no test (NaN, df 0,
    no warning about it); the hazard ratios stand."""
    from statsmodels.genmod.generalized_linear_model import GLMResults

    def broken(self, *a, **k):
        raise error

    monkeypatch.setattr(GLMResults, "score_test", broken)
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(_churn_history())
    assert m.ph_test_["df"] == 0 and np.isnan(m.ph_test_["statistic"]) and np.isnan(m.ph_test_["p_value"])
    assert m.summary.loc["detractor", "hazard_ratio"] == pytest.approx(2.0, rel=1e-6)
    assert not any("proportional" in w for w in m.warnings_)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_churn_e_value_of_a_hazard_ratio_under_one_reads_its_upper_bound():
    """With the detractors as the reference the passives' hazard ratio is 1/2 (se 1): its interval's bound
    nearer 1 is the upper one, 1/2 x exp(1.96) > 1, so the E-value of the interval is 1."""
    m = linkage.ChurnModel("detractor", min_group_size=1, intervals=INTERVALS).fit(_churn_history())
    s = m.summary
    assert s.loc["passive", "hazard_ratio"] == pytest.approx(0.5, rel=1e-6)
    assert s.loc["passive", "hr_hi"] == pytest.approx(0.5 * np.exp(Z95), rel=1e-5)
    assert s.loc["passive", "e_value_ci"] == 1.0 and s.loc["passive", "e_value"] > 1
    e = evalue.e_values_hr(s["hazard_ratio"], s["hr_lo"], s["hr_hi"], rare=False)
    assert s["e_value"].tolist()[:2] == pytest.approx(list(e.point)[:2])


@pytest.mark.parametrize("model, within", [(linkage.RevenueModel, True), (linkage.RevenueModel, False),
                                           (linkage.CostToServeModel, True), (linkage.ReferralModel, True)])
def test_rate_model_summary_has_the_within_columns_whether_or_not_the_check_ran(model, within):
    """The check's four columns are always there, in this order, after the main estimates (NaN where the
    check did not run: left out, or referrals, which have no level before the survey to compare with)."""
    outcome = {linkage.RevenueModel: "post_revenue", linkage.CostToServeModel: "post_contact_cost",
               linkage.ReferralModel: "post_referred"}[model]
    m = model("passive", min_group_size=1, within=within).fit(_rate_history(outcome))
    assert list(m.summary.columns) == ["customers", "observed", "adjusted", "ratio", "ratio_lo", "ratio_hi",
                                       "small_group", "e_value", "e_value_ci", "covariates_ratio", "covariates_lo",
                                       "covariates_hi", "within_ratio", "within_lo", "within_hi", "within_customers"]
    within_cols = ["within_ratio", "within_lo", "within_hi", "within_customers"]
    assert (m.summary[within_cols].dtypes == float).all()  # NaN, not None, where the check did not run
    ran = within and model is not linkage.ReferralModel
    assert m.summary["within_ratio"].notna().all() == ran and m.summary["within_hi"].notna().all() == ran
    assert m.summary["within_lo"].notna().all() == ran and m.summary["within_customers"].notna().all() == ran


def test_within_customer_check_keeps_a_level_under_one_a_year():
    """Any positive level before the survey is a level, however small: a passive who spent 0.5 in the year
    before (and 1 after) is in the check, and moves the passives' rate to 341 / 350.5."""
    rows = [("passive", 100.0, 1.0, 90.0), ("passive", 200.0, 1.0, 210.0), ("passive", 100.0, 0.5, 40.0),
            ("passive", 0.5, 1.0, 1.0), ("detractor", 50.0, 1.0, 30.0), ("detractor", 150.0, 2.0, 20.0)]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_within_history(rows))
    assert m.summary["within_customers"].tolist() == [2.0, 4.0, 0.0]
    assert m.summary.loc["detractor", "within_ratio"] == pytest.approx((50 / 350) / (341 / 350.5), rel=1e-6)


def test_within_customer_check_of_a_group_of_one():
    """One promoter, 120 after a level of 100: a group of one customer with a level before is checked,
    1.2 over the passives' 340 / 350."""
    rows = [("passive", 100.0, 1.0, 90.0), ("passive", 200.0, 1.0, 210.0), ("passive", 100.0, 0.5, 40.0),
            ("detractor", 50.0, 1.0, 30.0), ("detractor", 150.0, 2.0, 20.0), ("promoter", 100.0, 1.0, 120.0)]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_within_history(rows))
    assert m.summary["within_customers"].tolist() == [2.0, 3.0, 1.0]
    assert m.summary.loc["promoter", "within_ratio"] == pytest.approx(1.2 / (340 / 350), rel=1e-6)
    # an outcome under 1 after the survey is an outcome: 0.5 after 100 is checked too
    rows[-1] = ("promoter", 100.0, 1.0, 0.5)
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_within_history(rows))
    assert m.summary.loc["promoter", "within_ratio"] == pytest.approx(0.005 / (340 / 350), rel=1e-6)


@pytest.mark.parametrize("lo, hi, disagrees", [
    (0.5, 0.9, False),    # inside the main interval 0.8-1.2
    (1.2, 1.5, False),    # touches its upper end: they share 1.2, they overlap
    (0.6, 0.8, False),    # touches its lower end
    (1.2000001, 1.5, True),  # wholly above
    (0.5, 0.7999999, True),  # wholly below
    (np.nan, np.nan, False),  # the check did not run
])
def test_within_disagrees_only_when_the_intervals_do_not_touch(lo, hi, disagrees):
    """Two intervals that share an end point overlap; the warning and the report's sentence need a gap."""
    row = pd.Series({"ratio": 1.0, "ratio_lo": 0.8, "ratio_hi": 1.2, "within_ratio": (lo + hi) / 2,
                     "within_lo": lo, "within_hi": hi})
    assert linkage.within_disagrees(row) is disagrees


def test_churn_skip_called_directly_leaves_its_checks_not_run():
    """skip on a model never fitted sets the checks itself: no reference-curve standard error and a
    proportional-hazards test with every key there, no statistic, df 0, no p-value."""
    h = _churn_history()
    m = linkage.ChurnModel("passive", min_group_size=2).skip(h, "Churn: why.")
    assert isinstance(m, linkage.ChurnModel) and m.skipped_ == "Churn: why." and m.warnings_ == ["Churn: why."]
    assert isinstance(m.reference_curve_se_, float) and np.isnan(m.reference_curve_se_)
    assert sorted(m.ph_test_) == ["df", "p_value", "statistic"] and m.ph_test_["df"] == 0
    assert np.isnan(m.ph_test_["statistic"]) and np.isnan(m.ph_test_["p_value"])
    assert m.summary["customers"].tolist() == [2, 4, 1] and m.summary["small_group"].tolist() == [False, False, True]


def test_covariates_after_a_numeric_one_are_still_adjusted_for():
    """A numeric covariate of many values (a curve) listed first does not end the list: the text and the
    few-valued covariates after it get their columns too, in the order given; on rows labelled 100-118
    (a history filtered to the customers with time after the survey) every value lands on its own row."""
    h = pd.DataFrame({"pre_revenue": 0.0, "pre_exposure_years": 1.0, "pre_contact_cost": 0.0, "prior_sales": 0.0,
                      "prior_sales_transactions": 0, "tenure_years": 1.0,
                      "n": [3.0, 1, 4, 1, 5, 9, 2, 6, 5, 3], "region": ["north", "south"] * 5,
                      "m": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, np.nan, 10.5]}, index=range(100, 120, 2))
    f = linkage.adjustment_frame(h, ["n", "m", "region"])
    assert list(f.index) == list(h.index) and f.notna().all().all()  # the curve's columns keep the rows' labels
    assert list(f.columns)[5:] == ["n_s1", "n_s2", "n_s3", "m_s1", "m_s2", "m_s3", "m_missing", "region_south"]
    assert f["region_south"].tolist() == [0.0, 1.0] * 5 and f["m_missing"].tolist() == [0.0] * 8 + [1.0, 0.0]


@pytest.mark.parametrize("se, reported", [(5.0, True), (5.5, False), (np.inf, False), (np.nan, False)])
def test_within_customer_check_does_not_report_an_unstable_ratio(monkeypatch, se, reported):
    """As the main ratio: a standard error of the log within-customer ratio over 5 (or not a number) leaves
    the group's check empty; 5 itself is reported (the detractors' 30 / 340 of the two-group check)."""
    _with_bse(monkeypatch, "group[detractor]", se)
    rows = [("passive", 100.0, 1.0, 90.0), ("passive", 200.0, 1.0, 210.0), ("passive", 100.0, 0.5, 40.0),
            ("detractor", 50.0, 1.0, 30.0), ("detractor", 150.0, 2.0, 10.0)]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_within_history(rows))
    s = m.summary
    assert s.loc["passive", ["within_ratio", "within_lo", "within_hi"]].tolist() == [1.0, 1.0, 1.0]
    assert s["within_customers"].tolist() == [2.0, 3.0, 0.0]
    if reported:
        assert s.loc["detractor", "within_ratio"] == pytest.approx(40 / 340, rel=1e-6)
        assert s.loc["detractor", "within_lo"] < 40 / 340 < s.loc["detractor", "within_hi"]
    else:
        assert s.loc["detractor", ["within_ratio", "within_lo", "within_hi"]].isna().all()


def test_group_dummies_of_the_reference_group_alone_keep_every_row():
    """Only the reference group: no indicator, but still one row per customer, on the customers' labels (the
    models put it side by side with the adjustment terms)."""
    d = linkage._group_dummies(pd.Series(["b", "b", "b"], index=[5, 9, 2]), ["b"], "b")
    assert d.shape == (3, 0) and list(d.index) == [5, 9, 2]


def test_missing_is_a_level_named_missing():
    """A text level that sorts before "(missing)" ('#2' here) is the one dropped, so the missing values' own
    column shows its name: ``<covariate>_(missing)``."""
    h = pd.DataFrame({"pre_revenue": 0.0, "pre_exposure_years": 1.0, "pre_contact_cost": 0.0, "prior_sales": 0.0,
                      "prior_sales_transactions": 0, "tenure_years": 1.0, "tier": ["#2", "a", None, "a"]})
    f = linkage.adjustment_frame(h, ["tier"])
    assert [c for c in f.columns if c.startswith("tier_")] == ["tier_(missing)", "tier_a"]
    assert f["tier_(missing)"].tolist() == [0.0, 0.0, 1.0, 0.0]
# --------------------------------------------------------------------------- the within-customer headline


def test_within_headline_with_two_groups_and_the_caveat_for_one_group_left_without_a_ratio():
    """Two groups are enough for the within-customer headline: detractors 30 after 50 and 60 over two years
    after 150 (90 over 350 expected at their own level), passives 340 over 350: 90 / 340; ``adjusted``
    (each customer's level moved to the group) stands in that same ratio. With the promoters' only customer
    with a level before the survey spending nothing after it, the promoters have a covariate-adjusted ratio and
    no within-customer one: the covariate-adjusted comparison stays the headline, and the caveat names them."""
    rows = [("passive", 100.0, 1.0, 90.0), ("passive", 200.0, 1.0, 210.0), ("passive", 100.0, 0.5, 40.0),
            ("detractor", 50.0, 1.0, 30.0), ("detractor", 150.0, 2.0, 60.0)]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_within_history(rows))
    s = m.summary
    assert m.method_ == "within"
    assert s.loc["detractor", "ratio"] == pytest.approx(90 / 340, rel=1e-6)
    assert s.loc["detractor", "ratio"] != s.loc["detractor", "covariates_ratio"]
    assert s.loc["detractor", "adjusted"] / s.loc["passive", "adjusted"] == pytest.approx(90 / 340, rel=1e-9)
    assert s.loc["passive", "adjusted"] == pytest.approx(float(m.predict("passive").mean()), rel=1e-12)
    assert np.isnan(s.loc["promoter", "adjusted"])
    assert m.warnings_ == ["Revenue: no customer in the promoter group, so it has no estimate."]

    rows += [("promoter", 0.0, 1.0, 50.0), ("promoter", 100.0, 1.0, 0.0)]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_within_history(rows))
    s = m.summary
    assert m.method_ == "covariates" and m.within_result_ is not None
    assert s.loc["promoter", "within_ratio"] != s.loc["promoter", "within_ratio"]  # NaN
    for col, cov in (("ratio", "covariates_ratio"), ("ratio_lo", "covariates_lo"), ("ratio_hi", "covariates_hi")):
        pd.testing.assert_series_equal(s[col], s[cov], check_names=False)
    assert m.warnings_ == [
        "Revenue: too few customers had a level before the survey to compare the promoter group with themselves, "
        "so the gap is measured against comparable customers only (controls for what the data records before the "
        "survey)."]
    # without the check, no caveat at all
    off = linkage.RevenueModel("passive", min_group_size=1, within=False).fit(_within_history(rows))
    assert off.method_ == "covariates" and off.warnings_ == []


def test_within_disagrees_compares_with_the_covariate_adjusted_interval_and_touching_intervals_agree():
    """The within-customer interval against the covariate-adjusted one where the row has it (the headline's
    ``ratio_lo``/``ratio_hi`` otherwise); intervals that only touch overlap; a missing bound never disagrees."""
    row = pd.Series({"within_lo": 2.0, "within_hi": 3.0, "ratio_lo": 2.5, "ratio_hi": 4.0,
                     "covariates_lo": 1.0, "covariates_hi": 1.5})
    assert linkage.within_disagrees(row) is True  # 2 > 1.5, though it overlaps the headline's 2.5 to 4
    assert linkage.within_disagrees(row.drop(["covariates_lo", "covariates_hi"])) is False
    assert linkage.within_disagrees(row.drop(["covariates_lo", "covariates_hi"]).replace({2.5: 3.5})) is True
    assert linkage.within_disagrees(row.replace({1.5: 2.0})) is False  # within_lo = covariates_hi: touching
    below = pd.Series({"within_lo": 0.2, "within_hi": 0.5, "ratio_lo": 0.1, "ratio_hi": 0.9,
                       "covariates_lo": 0.6, "covariates_hi": 1.0})
    assert linkage.within_disagrees(below) is True  # 0.5 < 0.6
    assert linkage.within_disagrees(below.replace({0.6: 0.5})) is False  # within_hi = covariates_lo: touching
    assert linkage.within_disagrees(below.replace({0.2: np.nan, 0.5: np.nan})) is False


def test_disagreement_warnings_skip_the_reference_and_every_group_that_agrees_and_go_on():
    """Straight from a summary: the reference group (listed first) and a group whose intervals overlap get no
    caveat; the two that disagree after them each get one, in order, in the headline's wording."""
    m = linkage.RevenueModel("passive")
    cols = ["within_ratio", "within_lo", "within_hi", "covariates_ratio", "covariates_lo", "covariates_hi"]
    m.summary_ = pd.DataFrame([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [1.1, 0.9, 1.3, 1.0, 0.8, 1.2],
                               [0.5, 0.4, 0.6, 0.9, 0.8, 1.0], [2.0, 1.8, 2.2, 1.2, 1.1, 1.3]],
                              index=["passive", "agrees", "below", "above"], columns=cols)
    m.warnings_, m.method_ = [], "covariates"
    m._disagreement_warnings()
    assert m.warnings_ == [
        "Revenue: compared with their own level before the survey, below customers read 0.500 (95% CI 0.400 to "
        "0.600) against 0.900 (0.800 to 1.000) from the main comparison: the two do not agree, so part of the gap "
        "may come from what the controls measure only roughly (or the groups already differed before the survey).",
        "Revenue: compared with their own level before the survey, above customers read 2.000 (95% CI 1.800 to "
        "2.200) against 1.200 (1.100 to 1.300) from the main comparison: the two do not agree, so part of the gap "
        "may come from what the controls measure only roughly (or the groups already differed before the survey)."]
    m.warnings_, m.method_ = [], "within"
    m._disagreement_warnings()
    assert m.warnings_ == [
        f"Revenue: compared with their own level before the survey, {g} customers read {w}; against comparable "
        f"customers (controls for what the data records before the survey) they read {c}. The two do not agree: "
        "the controls measure account size only roughly, which the first does not rely on, or the groups were "
        "already moving apart before the survey, which the first assumes away. The first is the headline."
        for g, w, c in (("below", "0.500 (95% CI 0.400 to 0.600)", "0.900 (0.800 to 1.000)"),
                        ("above", "2.000 (95% CI 1.800 to 2.200)", "1.200 (1.100 to 1.300)"))]


def test_within_headline_predict_moves_a_group_without_a_within_ratio_by_its_fitted_coefficient(monkeypatch):
    """Promoters exactly the passives with twice the revenue after the survey (main coefficient log 2), their
    estimate unstable (standard error 5.5: no reported ratio in either fit); detractors four times the
    passives' size before, within-customer ratio 1/2 (main about 1). The within headline stands on the other
    two groups; each customer's fitted level (exposure 1 year) is divided by their own group's factor (passives
    1, detractors 1/2, promoters e^log 2 = 2) and multiplied by the asked group's."""
    _with_bse(monkeypatch, "group[promoter]", 5.5)
    rows = [(g, p, e, y * 2 if g == "promoter" else y) for g, p, e, y in _within_rows(4.0)]
    h = _within_history(rows)
    m = linkage.RevenueModel("passive", min_group_size=1).fit(h)
    assert m.method_ == "within" and np.isnan(m.summary.loc["promoter", "within_ratio"])
    assert m.result_.params["group[promoter]"] == pytest.approx(np.log(2), rel=1e-9)
    assert m.summary.loc["detractor", "within_ratio"] == pytest.approx(0.5, rel=1e-6)
    assert abs(m.result_.params["group[detractor]"]) < 0.01
    fitted, groups = np.exp(m.design_ @ m.result_.params[m.design_.columns]), h["group"].astype(str)  # per year
    assert (h["post_exposure_years"] == 1).all()  # (so the fitted rates are the fitted values)
    own = groups.map({"passive": 1.0, "promoter": 2.0, "detractor": 0.5}).astype(float)
    for g, to in (("passive", 1.0), ("promoter", 2.0), ("detractor", 0.5)):
        p = m.predict(g)
        assert p.name == "post_revenue" and list(p.index) == list(h.index)
        assert p.to_numpy() == pytest.approx((fitted * to / own).to_numpy(), rel=1e-6), g
    q = m.predict("promoter", rows=pd.Index([599, 0]))  # a promoter at their own level, a detractor moved
    assert list(q.index) == [599, 0]
    assert q.to_numpy() == pytest.approx([fitted[599], fitted[0] * 2 / 0.5], rel=1e-6)


def test_within_headline_caveat_names_every_group_left_without_a_ratio():
    """A fourth group (neutral) with no level before the survey, beside the promoters whose one customer with a
    level spent nothing after it: the check is fitted (passives and detractors) but leaves two groups that have a
    covariate-adjusted ratio without one, so the covariate-adjusted comparison stays the headline and the caveat
    names both, in the summary's order, "groups" in the plural."""
    rows = [("passive", 100.0, 1.0, 90.0), ("passive", 200.0, 1.0, 210.0), ("passive", 100.0, 0.5, 40.0),
            ("detractor", 50.0, 1.0, 30.0), ("detractor", 150.0, 2.0, 60.0),
            ("promoter", 0.0, 1.0, 50.0), ("promoter", 100.0, 1.0, 0.0),
            ("neutral", 0.0, 1.0, 70.0), ("neutral", 0.0, 1.0, 20.0)]
    h = _within_history(rows)
    h["group"] = pd.Categorical([r[0] for r in rows], categories=[*GROUPS, "neutral"], ordered=True)
    m = linkage.RevenueModel("passive", min_group_size=1).fit(h)
    assert m.method_ == "covariates" and m.within_result_ is not None
    assert m.summary.loc["detractor", "within_ratio"] == pytest.approx(90 / 340, rel=1e-6)
    assert m.summary.loc["detractor", "ratio"] == m.summary.loc["detractor", "covariates_ratio"]
    assert m.warnings_ == [
        "Revenue: too few customers had a level before the survey to compare the promoter, neutral groups with "
        "themselves, so the gap is measured against comparable customers only (controls for what the data records "
        "before the survey)."]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_churn_model_by_unit_is_the_same_fit_and_the_same_proportional_hazards_check():
    """by_unit=True (what the analysis uses): one unit per customer, the intervals profiled out
    (cxvalue.piecewise): the same hazard ratios, intervals, baseline and relative risks as on the rows,
    continuous terms included, and the same proportional-hazards score test (here rejecting)."""
    rows = [r for r in CHURN_ROWS if r[0] == "passive"] * 4 + [("detractor", 10, True)] * 20 + \
        [("detractor", 800, False)] * 19 + [("detractor", 800, True)] + [("promoter", 300, True)] * 3 + \
        [("promoter", 900, False)] * 5
    h = _churn_history(rows)
    h["tenure_years"] = np.arange(1.0, len(h) + 1) % 7
    on_rows = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS).fit(h)
    by_unit = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS, by_unit=True).fit(h)
    cols = ["hazard_ratio", "hr_lo", "hr_hi", "e_value", "e_value_ci"]
    np.testing.assert_allclose(by_unit.summary[cols].to_numpy(float), on_rows.summary[cols].to_numpy(float), rtol=1e-6)
    assert "log_tenure_years" in by_unit.result_.params.index
    np.testing.assert_allclose(by_unit.baseline_["hazard_per_year"], on_rows.baseline_["hazard_per_year"], rtol=1e-6)
    np.testing.assert_allclose(by_unit.relative_risk_, on_rows.relative_risk_, rtol=1e-6)
    assert on_rows.ph_test_["df"] == by_unit.ph_test_["df"] == 2
    assert by_unit.ph_test_["statistic"] == pytest.approx(on_rows.ph_test_["statistic"], rel=1e-6)
    assert by_unit.ph_test_["p_value"] == pytest.approx(on_rows.ph_test_["p_value"], rel=1e-5)
    assert by_unit.warnings_ == on_rows.warnings_ and any("proportional-hazards" in w for w in on_rows.warnings_)
    # nobody lost in the first interval: the baseline there is 0, the reference is the next interval
    late = _churn_history([("passive", 150, True), ("passive", 300, False), ("passive", 400, True),
                           ("detractor", 200, True), ("detractor", 120, True), ("detractor", 500, False)])
    m = linkage.ChurnModel("passive", min_group_size=1, intervals=INTERVALS, by_unit=True).fit(late)
    assert m.baseline_["hazard_per_year"].tolist() == pytest.approx([0.0, YEAR * 2 / (50 + 200 + 300)], rel=1e-6)
