"""Linkage models recover the synthetic world's known effects despite confounding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg

from cxvalue import data, history, linkage, value
from cxvalue.config import load_params
from cxvalue.synthetic import TRUE_EFFECTS, generate

NULL = {k: {g: 1.0 for g in v} for k, v in TRUE_EFFECTS.items()}


def _fit(world):
    p = load_params(overrides={"as_of": world.truth["as_of"]})
    checked = data.check(world.tables, p)
    h = history.history(checked, p)
    cov = list(checked.covariates)
    return (h, cov, linkage.RevenueModel("passive", cov).fit(h), linkage.CostToServeModel("passive", cov).fit(h),
            linkage.ChurnModel("passive", cov).fit(h))


@pytest.fixture(scope="module", params=[(101, 0.6), (202, 0.6), (303, 1.6)], ids=["seed101", "seed202", "strong-confounding"])
def fitted(request):
    seed, confounding = request.param
    world = generate(n_customers=20_000, seed=seed, confounding=confounding)
    return (world, *_fit(world))


#: A 95% interval is the estimate times exp(+-1.96 se) on the log scale: se = log(hi / lo) / 3.92.
Z95 = 1.959964
#: |z| allowed between an estimate and the truth, in the estimate's own standard errors: 3.5 is
#: exceeded by chance with probability 0.0005 per estimate (about 2% over the ~40 checked here).
Z_MAX = 3.5


def _log_se(lo: float, hi: float) -> float:
    return float((np.log(hi) - np.log(lo)) / (2 * Z95))


def _z(estimate: float, lo: float, hi: float, truth: float) -> float:
    return float((np.log(estimate) - np.log(truth)) / _log_se(lo, hi))


def _raw_log_se(h: pd.DataFrame, outcome: str) -> pd.Series:
    """Robust standard errors of the unadjusted group log-ratios (the same GLM with the group
    only): the yardstick an adjusted interval must beat, since the adjustment terms explain much
    of each customer's spend and contacts."""
    import statsmodels.api as sm

    h = h[h["post_exposure_years"] > 0]
    X = linkage._group_dummies(h["group"], ["detractor", "passive", "promoter"], "passive").assign(const=1.0)
    res = sm.GLM(h[outcome].clip(lower=0), X, family=sm.families.Poisson(),
                 offset=np.log(h["post_exposure_years"])).fit(cov_type="HC1")
    return res.bse.rename(lambda c: c[len("group["):-1] if c.startswith("group[") else c)


def _events_log_se(h: pd.DataFrame, g: str, reference: str = "passive") -> float:
    """sqrt(1/d_g + 1/d_ref): the standard error of an unadjusted log hazard ratio from d events in
    each group (the log-rank information). Adjustment widens it by sqrt(variance inflation)."""
    events = h.groupby(h["group"].astype(str))["churned"].sum()
    return float(np.sqrt(1 / events[g] + 1 / events[reference]))


def test_revenue_and_cost_ratios_recover_the_truth_within_their_sampling_error(fitted):
    """Each ratio is within 3.5 of its own standard errors of the truth (too narrow an interval, or
    a biased estimate, fails); each interval is narrower than the unadjusted comparison's (too wide
    an interval fails). The 5% band is the business requirement; the standard errors are under 2%."""
    world, h, cov, rev, cost, churn = fitted
    for model, outcome, truth in ((rev, "post_revenue", TRUE_EFFECTS["revenue"]),
                                  (cost, "post_contact_cost", TRUE_EFFECTS["contacts"])):
        raw = _raw_log_se(h, outcome)
        for g in ("detractor", "promoter"):
            s = model.summary.loc[g]
            assert s["ratio"] == pytest.approx(truth[g], rel=0.05)
            assert abs(_z(s["ratio"], s["ratio_lo"], s["ratio_hi"], truth[g])) < Z_MAX, (outcome, g)
            assert _log_se(s["ratio_lo"], s["ratio_hi"]) < raw[g], (outcome, g)
            assert np.log(s["ratio_hi"] / s["ratio"]) == pytest.approx(np.log(s["ratio"] / s["ratio_lo"]), rel=1e-9)
    assert rev.summary.loc["passive", "ratio"] == 1.0


def test_hazard_ratios_recover_the_truth_within_their_sampling_error(fitted):
    """Within 3.5 standard errors of the truth, and the standard error between 0.9 and 1.5 times
    the log-rank yardstick sqrt(1/d_g + 1/d_ref) (the adjustment inflates it by sqrt(VIF), about
    1.0-1.1 in these worlds; 1.5 allows a VIF up to 2.25)."""
    world, h, cov, rev, cost, churn = fitted
    for g in ("detractor", "promoter"):
        s = churn.summary.loc[g]
        assert s["hazard_ratio"] == pytest.approx(TRUE_EFFECTS["churn"][g], rel=0.12)
        assert abs(_z(s["hazard_ratio"], s["hr_lo"], s["hr_hi"], TRUE_EFFECTS["churn"][g])) < Z_MAX, g
        assert 0.9 < _log_se(s["hr_lo"], s["hr_hi"]) / _events_log_se(h, g) < 1.5, g


def test_strong_confounding_fools_the_raw_comparison_but_not_the_model(fitted):
    world, h, cov, rev, cost, churn = fitted
    if world.truth["confounding"] < 1:
        pytest.skip("only the strong-confounding world")
    naive = rev.summary.loc["detractor", "observed"] / rev.summary.loc["passive", "observed"]
    assert abs(naive / TRUE_EFFECTS["revenue"]["detractor"] - 1) > 0.15
    assert abs(rev.summary.loc["detractor", "ratio"] / TRUE_EFFECTS["revenue"]["detractor"] - 1) < 0.05


def test_adjusted_is_standardised_and_ratio_matches(fitted):
    world, h, cov, rev, cost, churn = fitted
    s = rev.summary
    assert s.loc["detractor", "adjusted"] / s.loc["passive", "adjusted"] == pytest.approx(s.loc["detractor", "ratio"], rel=1e-9)
    observed = h.groupby(h["group"].astype(str))["post_revenue"].sum() / h.groupby(h["group"].astype(str))["post_exposure_years"].sum()
    assert s.loc["promoter", "observed"] == pytest.approx(observed["promoter"])


def test_piecewise_exponential_matches_cox(fitted):
    """The scalable churn model gives the hazard ratios of a Cox model on the same adjustment."""
    world, h, cov, rev, cost, churn = fitted
    g = linkage._group_dummies(h["group"], ["detractor", "passive", "promoter"], "passive")
    design = pd.concat([g, linkage.adjustment_frame(h, cov)], axis=1)
    design = design.loc[:, design.std() > 0]
    cox = PHReg(np.maximum(h["duration_days"].to_numpy(float), 0.5), design.to_numpy(float),
                status=h["churned"].to_numpy(int), ties="efron").fit()
    for i, col in enumerate(g.columns):
        grp = col[len("group["):-1]
        assert churn.summary.loc[grp, "hazard_ratio"] == pytest.approx(np.exp(cox.params[i]), rel=0.03)


def test_null_worlds_intervals_include_one_and_are_not_too_wide():
    """No true effect: 95% intervals include 1 (each can miss 1 time in 20, so four worlds x three
    models x two groups are pooled), the estimates centre on 1, and the intervals are not too wide
    either: each is narrower than its yardstick (the unadjusted comparison's for rates, 1.5 x the
    log-rank one for churn), and the 24 z-scores log(estimate) / se, standard normal if the
    intervals are right, have a sum of squares inside the central 99.8% of a chi-square with 24
    degrees of freedom (below it: intervals about twice too wide; above: too narrow)."""
    from scipy import stats

    covered, log_ratios, z_scores = [], [], []
    for seed in (404, 405, 406, 407):
        world = generate(n_customers=10_000, seed=seed, confounding=1.0, effects=NULL)
        h, cov, rev, cost, churn = _fit(world)
        raw = {"revenue": _raw_log_se(h, "post_revenue"), "cost": _raw_log_se(h, "post_contact_cost")}
        for g in ("detractor", "promoter"):
            for lo, est, hi, yardstick in (
                    (*rev.summary.loc[g, ["ratio_lo", "ratio", "ratio_hi"]], raw["revenue"][g]),
                    (*cost.summary.loc[g, ["ratio_lo", "ratio", "ratio_hi"]], raw["cost"][g]),
                    (*churn.summary.loc[g, ["hr_lo", "hazard_ratio", "hr_hi"]], 1.5 * _events_log_se(h, g))):
                covered.append(lo <= 1 <= hi)
                log_ratios.append(np.log(est))
                z_scores.append(_z(est, lo, hi, 1.0))
                assert _log_se(lo, hi) < yardstick, (seed, g, lo, hi)
    assert sum(covered) >= 22, f"{sum(covered)} of {len(covered)} intervals include 1"
    assert abs(np.mean(log_ratios)) < 0.04  # the standard error of this mean is about 0.012
    assert np.max(np.abs(z_scores)) < Z_MAX  # no estimate far outside its own interval
    chi2 = float(np.sum(np.square(z_scores)))
    assert stats.chi2.ppf(0.001, len(z_scores)) < chi2 < stats.chi2.ppf(0.999, len(z_scores)), chi2


def test_small_and_empty_groups_are_flagged_not_absurd():
    world = generate(n_customers=4_000, seed=5)
    p = load_params(overrides={"as_of": world.truth["as_of"]})
    checked = data.check(world.tables, p)
    h = history.history(checked, p)
    # keep only 30 promoters and drop every detractor
    keep = h[(h["group"] == "passive") | (h["group"] == "promoter")]
    keep = pd.concat([keep[keep["group"] == "passive"], keep[keep["group"] == "promoter"].head(30)])
    rev = linkage.RevenueModel("passive", list(checked.covariates), min_group_size=100).fit(keep)
    assert rev.summary.loc["promoter", "small_group"]
    assert any("promoter group has only 30" in w for w in rev.warnings_)
    assert any("no customer in the detractor group" in w for w in rev.warnings_)
    assert rev.results()["detractor"]["ratio"] is None
    churn = linkage.ChurnModel("passive", list(checked.covariates)).fit(keep)
    assert churn.results()["detractor"]["hazard_ratio"] is None
    assert any("promoter group has only 30" in w for w in churn.warnings_)
    # tiny group: a finite estimate whose interval is as wide as its few events make it (log-rank
    # yardstick, see _events_log_se) and holds the truth within 3.5 standard errors; never 1e-5
    s = churn.summary.loc["promoter"]
    assert 0.9 < _log_se(s["hr_lo"], s["hr_hi"]) / _events_log_se(keep, "promoter") < 1.5
    assert abs(_z(s["hazard_ratio"], s["hr_lo"], s["hr_hi"], TRUE_EFFECTS["churn"]["promoter"])) < Z_MAX


def test_person_periods_by_hand():
    h = pd.DataFrame({"duration_days": [50, 200, 800, 91], "churned": [True, False, True, True]})
    pp = linkage.person_periods(h)
    # customer 0: churns at day 50 in 0-91; customer 1: censored at 200 (0-91, 91-182, 182-365)
    # customer 2: churns at 800 in 730+; customer 3: churns exactly on day 91, the end of 0-91
    by = pp.groupby("row").agg(n=("period", "size"), events=("event", "sum"), years=("exposure_years", "sum"))
    assert by["n"].tolist() == [1, 3, 5, 1]
    assert by["events"].tolist() == [1, 0, 1, 1]
    assert by["years"].to_numpy() * 365.25 == pytest.approx([50, 200, 800, 91])
    assert pp.loc[(pp.row == 2) & (pp.event == 1), "period"].item() == "730d+"


#: In the synthetic world a new customer's referrer is drawn among earlier customers with
#: weight 4 (promoter), 1 (passive), 0.3 (detractor): referrals per customer-year in that ratio.
TRUE_REFERRAL_RATIO = {"detractor": 0.3, "promoter": 4.0}


def test_referral_ratios_recover_the_referral_weights(fitted):
    world, h, cov, *_ = fitted
    model = linkage.ReferralModel("passive", cov).fit(h)
    s = model.summary
    assert s["adjusted"].gt(0).all() and model.results()["passive"]["ratio"] == 1.0
    for g, truth in TRUE_REFERRAL_RATIO.items():
        assert s.loc[g, "ratio_lo"] < truth < s.loc[g, "ratio_hi"], (g, s.loc[g, "ratio"])
    assert s.loc["promoter", "ratio_lo"] > 1.5 and s.loc["detractor", "ratio"] < 1  # few detractor referrals: wide CI


# --------------------------------------------------------------------------- all or nothing (separation)


@pytest.fixture(scope="module")
def small_world_history():
    world = generate(n_customers=3_000, seed=11)
    p = load_params(overrides={"as_of": world.truth["as_of"]})
    checked = data.check(world.tables, p)
    return history.history(checked, p), list(checked.covariates)


def test_churn_group_where_nobody_left_cannot_be_estimated(small_world_history):
    """Nobody of a group left: its hazard ratio would be 0 (the fit runs off to minus infinity), so
    it is not reported, with a plain warning; the other groups are estimated as usual, here one
    where everyone left (see the next test)."""
    h, cov = small_world_history
    h = h.copy()
    h.loc[h["group"] == "promoter", "churned"] = False
    h.loc[h["group"] == "detractor", "churned"] = True
    n = int((h["group"] == "promoter").sum())
    churn = linkage.ChurnModel("passive", cov).fit(h)
    assert churn.fitted and np.isnan(churn.summary.loc["promoter", "hazard_ratio"])
    assert churn.results()["promoter"] == {"observed_rate_12m": 0.0, "hazard_ratio": None,
                                           "hazard_ratio_ci": [None, None], "e_value": None, "e_value_ci": None}
    assert (f"Churn of the promoter group cannot be estimated: none of its {n} customers left in the follow-up"
            in " ".join(churn.warnings_))
    d = churn.results()["detractor"]
    assert 1 < d["hazard_ratio_ci"][0] < d["hazard_ratio"] < d["hazard_ratio_ci"][1] < 50 and d["e_value"] > 1
    assert len(churn.warnings_) == 1


def test_churn_group_where_everyone_left_is_still_a_hazard_ratio(small_world_history):
    """Everyone of a group left: unlike a yes/no outcome, a time-to-event model still estimates how
    fast they left (the events carry their timing), so the hazard ratio is finite and agrees with a
    Cox model on the same data; nothing to warn about."""
    h, cov = small_world_history
    h = h[h["group"].isin(["detractor", "passive"])].copy()
    h["group"] = h["group"].astype(str)
    h.loc[h["group"] == "detractor", "churned"] = True  # the censored ones "leave" the day the data ends
    churn = linkage.ChurnModel("passive", cov).fit(h)
    s = churn.summary.loc["detractor"]
    assert s["events"] == s["customers"]
    assert np.isfinite([s["hazard_ratio"], s["hr_lo"], s["hr_hi"]]).all() and s["hr_lo"] < s["hazard_ratio"] < s["hr_hi"]
    assert not any("cannot be estimated" in w or "converge" in w for w in churn.warnings_)
    X = linkage.adjustment_frame(h, cov)
    design = pd.concat([linkage._group_dummies(h["group"], ["detractor", "passive"], "passive"),
                        pd.get_dummies(X, drop_first=True, dtype=float)], axis=1)
    design = design.loc[:, design.std() > 0]
    cox = PHReg(np.maximum(h["duration_days"].to_numpy(float), 0.5), design.to_numpy(float),
                status=h["churned"].to_numpy(int), ties="efron").fit()
    assert s["hazard_ratio"] == pytest.approx(np.exp(cox.params[0]), rel=0.03)


@pytest.mark.parametrize("model, outcome", [(linkage.RevenueModel, "post_revenue"),
                                            (linkage.CostToServeModel, "post_contact_cost")])
def test_rate_model_group_with_no_outcome_cannot_be_estimated(small_world_history, model, outcome):
    """A group whose revenue (or cost) is zero for every customer would have a ratio of 0 that a
    log-link model cannot estimate: no ratio, a plain warning, the other groups as usual."""
    h, cov = small_world_history
    h = h.copy()
    h.loc[h["group"] == "promoter", outcome] = 0.0
    n = int(((h["group"] == "promoter") & (h["post_exposure_years"] > 0)).sum())
    m = model("passive", cov).fit(h)
    assert m.fitted and m.results()["promoter"]["ratio"] is None and m.results()["promoter"]["e_value"] is None
    assert f"{m.label} of the promoter group cannot be estimated: none of its {n} customers had any" in " ".join(m.warnings_)
    assert 0.5 < m.summary.loc["detractor", "ratio"] < 2 and np.isfinite(m.summary.loc["detractor", "ratio_hi"])
    # and with no outcome at all in the reference group there is nothing to compare with
    h.loc[h["group"] == "passive", outcome] = 0.0
    skipped = model("passive", cov).fit(h)
    assert not skipped.fitted and "reference group 'passive'" in skipped.skipped_
    assert skipped.results()["detractor"]["ratio"] is None


def test_e_values_sit_next_to_every_ratio(fitted):
    """results() carries the E-values of each ratio and of its interval bound nearer 1; churn in the
    test worlds is common by the end of follow-up, so the hazard ratios use the common-outcome
    conversion."""
    from cxvalue import evalue

    world, h, cov, rev, cost, churn = fitted
    for m, key, ci_key in ((rev, "ratio", "ratio_ci"), (cost, "ratio", "ratio_ci"),
                           (churn, "hazard_ratio", "hazard_ratio_ci")):
        r = m.results()
        assert r["passive"]["e_value"] == 1.0 and r["passive"]["e_value_ci"] == 1.0
        for g in ("detractor", "promoter"):
            assert r[g]["e_value"] >= r[g]["e_value_ci"] >= 1.0
    assert churn.churn_by_end_of_follow_up_ > evalue.RARE_OUTCOME_SHARE and "common outcome" in churn.e_value_conversion_
    d = churn.results()["detractor"]
    assert d["e_value"] == pytest.approx(evalue.e_values_hr(d["hazard_ratio"], *d["hazard_ratio_ci"], rare=False).point)
    p = rev.results()["promoter"]
    assert p["e_value"] == pytest.approx(evalue.e_value(p["ratio"]))
    assert p["e_value_ci"] == (1.0 if p["ratio_ci"][0] <= 1 else pytest.approx(evalue.e_value(p["ratio_ci"][0])))


# --------------------------------------------------------------------------- churn by hand


def _hand_history(rows: list[tuple[str, int, bool]]) -> pd.DataFrame:
    """A history of (group, duration_days, churned) rows; every adjustment term the same for all
    (so the churn model's adjustment drops out) and one customer-year of post window each."""
    h = pd.DataFrame(rows, columns=["group", "duration_days", "churned"])
    h["group"] = pd.Categorical(h["group"], categories=["detractor", "passive", "promoter"], ordered=True)
    for col in ("pre_revenue", "pre_contact_cost", "prior_sales", "post_revenue", "post_contact_cost"):
        h[col] = 100.0
    h["post_contacts"] = 1
    h["pre_exposure_years"] = h["post_exposure_years"] = 1.0
    h["prior_sales_transactions"], h["tenure_years"] = 12, 2.0
    return h


#: Passive: two losses in year 1 (S(1) = 8/10), three in year 2 (S(2) = 8/10 x 5/8 = 1/2: not
#: 0.8^2, the hazard rises), the last of them on day 730 (inside year 2, which ends at 730.5),
#: five followed to day 1000 (2.7 years): nobody censored before year 2 ends.
PASSIVE = [("passive", 100, True), ("passive", 300, True), ("passive", 400, True), ("passive", 700, True),
           ("passive", 730, True)] + [("passive", 1000, False)] * 5
#: Detractor: active customers censored early (day 20) and late, an early-heavy hazard, and losses
#: on days 365 (inside year 1, which ends at 365.25) and 366 (outside).
DETRACTOR = [("detractor", 20, False), ("detractor", 50, True), ("detractor", 200, True), ("detractor", 365, True),
             ("detractor", 366, True), ("detractor", 600, False), ("detractor", 900, True), ("detractor", 1000, False)]


#: eighteen customers: statsmodels warns about so small a fit, which is not what these tests check
TINY_FIT = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
            pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.PerfectSeparationWarning")]


@TINY_FIT[0]
@TINY_FIT[1]
def test_12_month_churn_is_kaplan_meier_by_hand():
    """Detractors: the one censored on day 20 leaves 7 at risk on day 50 (1 lost), 6 on day 200 (1),
    5 on day 365 (1): S(1 year) = 6/7 x 5/6 x 4/5 = 4/7, churn 3/7 = 0.4286. The plain share
    churned is 5/8 = 0.625 overall and 3/8 = 0.375 within the year: both wrong."""
    h = _hand_history(PASSIVE + DETRACTOR)
    det = h[h["group"] == "detractor"]
    assert linkage.km_churn_rate(det["duration_days"], det["churned"]) == pytest.approx(3 / 7, rel=1e-12)
    assert linkage.km_churn_rate(det["duration_days"], det["churned"], days=2 * 365.25) == pytest.approx(
        1 - 4 / 7 * 3 / 4, rel=1e-12)  # day 366: 4 at risk (1 lost); day 600 censored: S(2) = 4/7 x 3/4
    summary = linkage.observed_summary(h, "passive")
    assert summary.loc["detractor", "churn_rate_12m"] == pytest.approx(3 / 7, rel=1e-12)
    assert summary.loc["passive", "churn_rate_12m"] == pytest.approx(2 / 10, rel=1e-12)
    assert summary.loc["detractor", "churn_rate_ratio"] == pytest.approx((3 / 7) / (2 / 10), rel=1e-12)
    churn = linkage.ChurnModel("passive", [], min_group_size=1).fit(h)
    assert churn.summary.loc["detractor", "observed_rate_12m"] == pytest.approx(3 / 7, rel=1e-12)


@TINY_FIT[0]
@TINY_FIT[1]
def test_km_curves_read_every_year_of_follow_up_by_hand():
    """The reference curve fed to the value and the business case reads year 2 from the data
    (S(2) = 1/2, not year 1 squared 0.64), including a loss on day 730, and runs to the end of
    follow-up (day 1000). Year 3 is not covered: year 2's retention (0.5 / 0.8 = 0.625)
    continues, S(3) = 0.3125, S(4) = 0.1953."""
    h = _hand_history(PASSIVE + DETRACTOR)
    churn = linkage.ChurnModel("passive", [], min_group_size=1).fit(h)
    curves = churn.km_curves(h)
    ref = curves[curves["group"] == "passive"]
    assert ref["days"].max() == 1000 and ref["days"].is_monotonic_increasing
    at = dict(zip(ref["days"], ref["retained"]))
    assert at[365.25] == pytest.approx(0.8) and at[730.5] == pytest.approx(0.5) and at[0] == 1.0
    assert value.yearly_survival(ref["days"], ref["retained"], 4) == pytest.approx([0.8, 0.5, 0.5 * 0.625, 0.5 * 0.625**2])
    det = curves[curves["group"] == "detractor"]
    assert det["days"].max() == 1000
    assert dict(zip(det["days"], det["retained"]))[365.25] == pytest.approx(4 / 7)
    short = churn.km_curves(h, max_days=400)
    assert short.groupby("group")["days"].max().tolist() == [400, 400]


def _piecewise_history(seed: int, detractor_hazards: tuple[float, float], n: int = 3_000) -> pd.DataFrame:
    """Passive customers leave at 0.3 a year throughout, detractors at ``detractor_hazards`` per year
    in the first half-year after the survey and after it; followed 0 to 3 years (uniform)."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, (early, late) in (("passive", (0.3, 0.3)), ("detractor", detractor_hazards)):
        e = rng.exponential(1.0, n)  # unit-rate cumulative hazard at the event, inverted piecewise
        half = 182.625 / 365.25
        years = np.where(e < early * half, e / early, half + (e - early * half) / late)
        follow = rng.uniform(0, 3, n)
        d = np.minimum(years, follow) * 365.25
        rows += list(zip([group] * n, np.ceil(d).astype(int), years <= follow))
    return _hand_history(rows)


@TINY_FIT[0]  # no adjustment terms: the model with group x interval terms is saturated (a perfect fit)
@TINY_FIT[1]
def test_proportional_hazards_warning_fires_when_the_gap_fades_and_only_then():
    """Detractors leaving 4 times as fast for half a year, then like passives, violate
    proportional hazards: the test statistic (a score test) is large and the report warns. A world
    where they leave twice as fast throughout does not (its statistic is a chi-square draw)."""
    fading = linkage.ChurnModel("passive", []).fit(_piecewise_history(1, (1.2, 0.3)))
    assert fading.ph_test_["df"] == 4 and fading.ph_test_["statistic"] > 50 and fading.ph_test_["p_value"] < 1e-6
    assert any("not constant over time" in w for w in fading.warnings_)
    steady = linkage.ChurnModel("passive", []).fit(_piecewise_history(1, (0.6, 0.6)))
    assert steady.ph_test_["df"] == 4 and 0 <= steady.ph_test_["statistic"] < 13.28  # chi2(4) 99th percentile
    assert not any("not constant over time" in w for w in steady.warnings_)
    assert steady.summary.loc["detractor", "hr_lo"] < 2 < steady.summary.loc["detractor", "hr_hi"]


def test_confounding_through_a_covariate_only_needs_the_covariate():
    """Region drives satisfaction and churn and nothing else (no spend, no contacts, no size or
    plan confounding): pre-survey spend cannot stand in for it. With the customer covariates the
    hazard ratios recover the truth within 3 of their own standard errors; without them, or
    without region, they miss it by more than 3 (north is mostly detractors and leaves fastest)."""
    world = generate(n_customers=10_000, seed=31, confounding=0.0, region_confounding=2.0)
    p = load_params(overrides={"as_of": world.truth["as_of"]})
    checked = data.check(world.tables, p)
    h = history.history(checked, p)
    cov = list(checked.covariates)
    assert "region" in cov

    def z_from_truth(model, g):
        s = model.summary.loc[g]
        se = (np.log(s["hr_hi"]) - np.log(s["hr_lo"])) / (2 * 1.959964)
        return (np.log(s["hazard_ratio"]) - np.log(TRUE_EFFECTS["churn"][g])) / se

    adjusted = linkage.ChurnModel("passive", cov).fit(h)
    for g in ("detractor", "promoter"):
        assert abs(z_from_truth(adjusted, g)) < 3, g
    for dropped in ([], [c for c in cov if c != "region"]):
        biased = linkage.ChurnModel("passive", dropped).fit(h)
        assert z_from_truth(biased, "detractor") > 3 and z_from_truth(biased, "promoter") < -3, dropped


def test_rate_model_fits_when_an_adjustment_term_is_the_same_for_everyone():
    """A subscription business where every customer paid the same 120 a year before the survey: the
    term log(1 + 120) is constant, but its float standard deviation is about 1e-16, not 0, so a
    ``std() > 0`` filter kept it next to the constant and the design was singular (ModelError
    'Singular matrix'; seven customers give that noise). Constant terms are dropped; the ratio is
    the groups' rates: (12 / 4) / (30 / 3)."""
    h = _hand_history([("passive", 400, False)] * 3 + [("detractor", 400, False)] * 4)
    h["pre_revenue"], h["prior_sales"], h["prior_sales_transactions"] = 120.0, 120.0, 12
    h["post_revenue"] = [5.0, 10.0, 15.0, 4.0, 8.0, 0.0, 0.0]
    assert linkage.adjustment_frame(h)["log_pre_revenue_rate"].std() > 0  # the float noise
    m = linkage.RevenueModel("passive", min_group_size=1).fit(h)
    assert list(m.design_.columns) == ["const", "group[detractor]"]
    assert m.summary.loc["detractor", "ratio"] == pytest.approx((12 / 4) / (30 / 3), rel=1e-6)


def test_a_pre_window_of_exactly_28_days_counts_as_pre_history():
    """history() gives a 28-day pre window as 28 / 365.25 years; back in days that is 27.999999999999996,
    so ``years x 365.25 >= 28`` called it "no pre-history" (rate 0) although the rule is under 28 days,
    and who_answered (integer days) counted it. 27 days is still under the rule."""
    h = pd.DataFrame({"pre_revenue": [56.0, 56.0], "pre_exposure_years": [28 / 365.25, 27 / 365.25],
                      "pre_contact_cost": 0.0, "prior_sales": 0.0, "prior_sales_transactions": 0, "tenure_years": 1.0})
    f = linkage.adjustment_frame(h)
    assert f["no_pre_history"].tolist() == [0.0, 1.0]
    assert f["log_pre_revenue_rate"].tolist() == pytest.approx([np.log1p(56 * 365.25 / 28), 0.0], rel=1e-12)


@TINY_FIT[0]
@TINY_FIT[1]
def test_churn_fits_with_one_group_with_losses_or_one_follow_up_interval():
    """The proportional-hazards test has no group x interval term when only the reference group lost
    customers, or when every customer's follow-up ends within the first interval (a survey 91 days or
    less before the data ends): the fit stopped with pandas' "No objects to concatenate". Now it is fitted
    with no test (df 0)."""
    passive = [("passive", 50, True), ("passive", 100, False), ("passive", 200, True), ("passive", 800, False)]
    only_ref = linkage.ChurnModel("passive", [], min_group_size=1).fit(
        _hand_history(passive + [("promoter", 900, False)]))
    assert only_ref.fitted and only_ref.ph_test_["df"] == 0 and np.isnan(only_ref.summary.loc["promoter", "hazard_ratio"])
    short = _hand_history([(g, min(d, 80), c) for g, d, c in passive + [("detractor", 75, True), ("detractor", 500, True)]])
    m = linkage.ChurnModel("passive", [], min_group_size=1).fit(short)
    assert m.fitted and m.ph_test_["df"] == 0
    # passives: 50 + 80 + 80 + 80 = 290 days, 1 loss; detractors: 75 + 80 = 155 days, 1 loss
    assert m.summary.loc["detractor", "hazard_ratio"] == pytest.approx((1 / 155) / (1 / 290), rel=1e-6)
