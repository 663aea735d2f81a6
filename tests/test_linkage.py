"""Linkage models recover the synthetic world's known effects despite confounding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg

from cxvalue import data, history, linkage
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


def test_revenue_and_cost_ratios_within_5_percent_of_truth(fitted):
    world, h, cov, rev, cost, churn = fitted
    for g in ("detractor", "promoter"):
        assert rev.summary.loc[g, "ratio"] == pytest.approx(TRUE_EFFECTS["revenue"][g], rel=0.05)
        assert cost.summary.loc[g, "ratio"] == pytest.approx(TRUE_EFFECTS["contacts"][g], rel=0.05)
        assert rev.summary.loc[g, "ratio_lo"] < rev.summary.loc[g, "ratio"] < rev.summary.loc[g, "ratio_hi"]
    assert rev.summary.loc["passive", "ratio"] == 1.0


def test_hazard_ratios_within_12_percent_of_truth(fitted):
    world, h, cov, rev, cost, churn = fitted
    for g in ("detractor", "promoter"):
        assert churn.summary.loc[g, "hazard_ratio"] == pytest.approx(TRUE_EFFECTS["churn"][g], rel=0.12)


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
    X = linkage.adjustment_frame(h, cov, binned=True)
    adj = pd.get_dummies(X, drop_first=True, dtype=float) if X.dtypes.eq(object).any() else X
    g = linkage._group_dummies(h["group"], ["detractor", "passive", "promoter"], "passive")
    design = pd.concat([g, adj], axis=1)
    design = design.loc[:, design.std() > 0]
    cox = PHReg(np.maximum(h["duration_days"].to_numpy(float), 0.5), design.to_numpy(float),
                status=h["churned"].to_numpy(int), ties="efron").fit()
    for i, col in enumerate(g.columns):
        grp = col[len("group["):-1]
        assert churn.summary.loc[grp, "hazard_ratio"] == pytest.approx(np.exp(cox.params[i]), rel=0.03)


def test_null_worlds_intervals_include_one():
    """No true effect: 95% intervals include 1 (each can miss 1 time in 20, so four worlds
    x three models x two groups are pooled) and the estimates centre on 1."""
    covered, log_ratios, z_scores = [], [], []
    for seed in (404, 405, 406, 407):
        world = generate(n_customers=10_000, seed=seed, confounding=1.0, effects=NULL)
        h, cov, rev, cost, churn = _fit(world)
        for g in ("detractor", "promoter"):
            for lo, est, hi in ((rev.summary.loc[g, "ratio_lo"], rev.summary.loc[g, "ratio"], rev.summary.loc[g, "ratio_hi"]),
                                (cost.summary.loc[g, "ratio_lo"], cost.summary.loc[g, "ratio"], cost.summary.loc[g, "ratio_hi"]),
                                (churn.summary.loc[g, "hr_lo"], churn.summary.loc[g, "hazard_ratio"], churn.summary.loc[g, "hr_hi"])):
                covered.append(lo <= 1 <= hi)
                log_ratios.append(np.log(est))
                z_scores.append(np.log(est) / ((np.log(hi) - np.log(lo)) / 3.92))
    assert sum(covered) >= 22, f"{sum(covered)} of {len(covered)} intervals include 1"
    assert abs(np.mean(log_ratios)) < 0.04  # the standard error of this mean is about 0.012
    assert np.max(np.abs(z_scores)) < 3.5  # no estimate far outside its own interval


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
    hr = churn.results()["promoter"]["hazard_ratio"]
    # tiny group: either a finite, sane estimate or none at all with a warning, never 1e-5
    assert hr is None and any("unstable" in w for w in churn.warnings_) or 0.05 < hr < 20


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
