"""BG/NBD and Gamma-Gamma: the published CDNOW numbers and recovery of known effects.

CDNOW data: tests/data/cdnow (from the lifetimes wheel, MIT; see the README there).
Published values: Fader, Hardie & Lee (2005a), "Counting your customers the easy way", table /
text of section 4 (r, alpha, a, b, log-likelihood, the E[X(39)] example) and (2005b), "RFM and
CLV" (Gamma-Gamma p, q, gamma).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxvalue.btyd import BGNBD, GammaGamma, aggregate_patterns, customer_summary, group_outputs
from cxvalue.exceptions import InputError, ModelError
from cxvalue.synthetic_noncontractual import TRUE_EFFECTS, generate

CDNOW = Path(__file__).parent / "data" / "cdnow"
LOG_10PCT = np.log(1.10)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv").rename(
        columns={"zbar": "mean_spend"})


@pytest.fixture(scope="module")
def cdnow_fit(cdnow) -> BGNBD:
    return BGNBD().fit(cdnow)


# --------------------------------------------------------------------------- CDNOW, published numbers

def test_bgnbd_cdnow_reproduces_published_parameters(cdnow_fit):
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert round(cdnow_fit.params_[name], 3) == value, name
    assert round(cdnow_fit.log_likelihood_, 1) == -9582.4


def test_bgnbd_cdnow_conditional_expectation_example(cdnow_fit):
    # the paper's customer: 2 repeat purchases, last at week 30.43, observed 38.86 weeks
    one = pd.DataFrame({"x": [2], "t_x": [30.43], "T": [38.86]})
    assert round(float(cdnow_fit.expected_purchases(39, one)[0]), 3) == 1.226
    # P(alive) by hand from note 021: 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
    r, alpha, a, b = cdnow_fit.params_[["r", "alpha", "a", "b"]]
    by_hand = 1 / (1 + a / (b + 1) * ((alpha + 38.86) / (alpha + 30.43)) ** (r + 2))
    assert cdnow_fit.probability_alive(one)[0] == pytest.approx(by_hand, rel=1e-12)
    # nobody who never bought again is thought dead
    assert cdnow_fit.probability_alive(pd.DataFrame({"x": [0], "t_x": [0.0], "T": [38.86]}))[0] == 1.0


def test_gamma_gamma_cdnow_reproduces_published_parameters(cdnow):
    gg = GammaGamma().fit(cdnow)
    assert gg.buyers_ == 946
    # published to 2 decimals: p = 6.25, q = 3.74, gamma = 15.44. Our optimum gives gamma =
    # 15.448 (lifetimes gets 15.447 too); the paper's value is within 0.01 of it, so we test
    # every parameter to within one unit of the published last digit.
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert abs(gg.params_[name] - value) < 0.01, name
    # conditional expected spend, eq. (5), for a customer with 2 purchases averaging 20 dollars
    p, q, gamma = gg.params_
    one = pd.DataFrame({"x": [2], "mean_spend": [20.0]})
    assert gg.expected_spend(one)[0] == pytest.approx((gamma + 40) * p / (2 * p + q - 1))
    assert gg.population_mean_spend == pytest.approx(p * gamma / (q - 1))


def test_customer_summary_cdnow_rebuilds_the_published_summary(cdnow):
    tx = pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
                     names=["master_id", "customer_id", "date", "cds", "amount"], dtype={"date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    summary = customer_summary(tx, as_of="1997-09-30", unit="W", amount_col="amount")
    ref = cdnow.set_index("ID")
    assert len(summary) == len(ref) == 2357
    np.testing.assert_array_equal(summary["x"].to_numpy(), ref["x"].to_numpy())
    # the published file rounds to 2 decimals
    np.testing.assert_allclose(summary["t_x"], ref["t_x"], atol=0.005)
    np.testing.assert_allclose(summary["T"], ref["T"], atol=0.005)
    np.testing.assert_allclose(summary["mean_spend"], ref["mean_spend"], atol=0.005)
    # in days, with a start date: every purchase after it counts
    days = customer_summary(tx, as_of="1997-09-30", start="1997-03-31", unit="D")
    one = tx[tx["customer_id"] == 1]  # purchases 1997-01-01, 01-18, 08-02, 12-12
    assert days.loc[1, "x"] == 1 and days.loc[1, "t_x"] == 124 and days.loc[1, "T"] == 183
    assert len(one) == 4


def test_bgnbd_cdnow_pattern_aggregation_gives_the_same_fit(cdnow):
    # CDNOW rounds t_x and T to 2 decimals, so many customers share a pattern
    patterns = aggregate_patterns(cdnow, ["x", "t_x", "T"])
    assert len(patterns) < len(cdnow) / 2 and patterns["customers"].sum() == len(cdnow)
    rows = BGNBD().fit(cdnow, aggregate=False)
    weighted = BGNBD().fit(patterns, weights="customers", aggregate=False)
    np.testing.assert_allclose(weighted.params_, rows.params_, rtol=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(rows.log_likelihood_, rel=1e-10)
    np.testing.assert_allclose(weighted.covariance_, rows.covariance_, rtol=1e-3)


def test_bgnbd_cdnow_pattern_aggregation_with_covariates():
    world = generate(3_000, seed=3)
    c = world.customers.assign(t_x=lambda d: d["t_x"].round(0), T=lambda d: d["T"].round(0))
    kw = dict(covariates=["log_pre_purchases"])
    rows = BGNBD("group", "passive").fit(c, aggregate=False, **kw)
    agg = BGNBD("group", "passive").fit(c, aggregate=True, **kw)
    assert agg.patterns_ < len(c)
    np.testing.assert_allclose(agg.params_, rows.params_, rtol=1e-5, atol=1e-7)
    assert agg.log_likelihood_ == pytest.approx(rows.log_likelihood_, rel=1e-10)


# --------------------------------------------------------------------------- the synthetic world

@pytest.fixture(scope="module")
def world():
    # 30,000 customers: the standard error of the log dropout ratio is then about 0.04, so the
    # 10% tolerance (0.095 on the log scale) is about 2.4 standard errors; for the purchase-rate
    # ratio (se about 0.01) it is about 9 (see test_cdnow_synthetic_tolerance_is_meaningful).
    return generate(30_000, seed=11)


@pytest.fixture(scope="module")
def adjusted(world):
    return BGNBD("group", "passive").fit(world.customers, covariates=["log_pre_purchases"])


#: Tolerance on the log scale per ratio. 10% is the issue's criterion; for the purchase-rate ratio
#: (se about 0.006 at 30,000 customers) 10% would be 15 standard errors, too loose to catch a
#: bug, so there it is 5%: the residual confounding of the noisy control (about 3%, measured at
#: 300,000 customers: 0.728 for 0.75, 1.219 for 1.2) plus 3 standard errors.
TOLERANCE = {"purchase_rate_ratio": np.log(1.05), "dropout_ratio": LOG_10PCT}


def test_cdnow_synthetic_tolerance_is_meaningful(adjusted):
    # each tolerance must exceed twice the sampling error (else the test is a coin toss) and be
    # within 12 standard errors (else a real bug could pass)
    for g in ("detractor", "promoter"):
        for process, col in (("purchase", "purchase_rate_ratio"), ("dropout", "dropout_ratio")):
            se = adjusted.summary.loc[f"{process}:group[{g}]", "se"]
            assert 2 * se < TOLERANCE[col] < 12 * se, (g, process, se)


def test_cdnow_synthetic_recovers_purchase_rate_and_dropout_ratios(adjusted):
    eff = adjusted.group_effects_
    for g in ("detractor", "promoter"):
        for col, key in (("purchase_rate_ratio", "purchase_rate"), ("dropout_ratio", "dropout")):
            truth = TRUE_EFFECTS[key][g]
            assert abs(np.log(eff.loc[g, col] / truth)) < TOLERANCE[col], (g, col, eff.loc[g, col], truth)
    assert eff.loc["passive", "purchase_rate_ratio"] == 1.0
    assert (eff["customers"].sum()) == 30_000


def test_cdnow_synthetic_predicts_the_hidden_next_year(world, adjusted):
    # model-free check: the next 52 weeks were simulated and kept hidden. The model's expected
    # purchases and revenue per group, and the revenue ratios to passive, match within 10%.
    c, hidden = world.customers, world.hidden
    spend = GammaGamma().fit(c)
    out = group_outputs(adjusted, spend, c, 52)
    actual = hidden.groupby(c["group"].astype(str).to_numpy())[["future_purchases", "future_revenue"]].mean()
    for g in ("detractor", "passive", "promoter"):
        assert abs(np.log(out.loc[g, "expected_purchases"] / actual.loc[g, "future_purchases"])) < LOG_10PCT, g
        assert abs(np.log(out.loc[g, "expected_revenue"] / actual.loc[g, "future_revenue"])) < LOG_10PCT, g
    for g in ("detractor", "promoter"):
        model_ratio = out.loc[g, "expected_revenue"] / out.loc["passive", "expected_revenue"]
        true_ratio = actual.loc[g, "future_revenue"] / actual.loc["passive", "future_revenue"]
        assert abs(np.log(model_ratio / true_ratio)) < LOG_10PCT, g
    # P(alive) per group against the hidden state
    alive = hidden.groupby(c["group"].astype(str).to_numpy())["alive_at_T"].mean()
    np.testing.assert_allclose(out["p_alive"], alive.reindex(out.index), atol=0.05)


def test_cdnow_synthetic_null_world_intervals_include_one():
    null = {k: {g: 1.0 for g in v} for k, v in TRUE_EFFECTS.items()}
    world = generate(5_000, seed=5, effects=null)
    fit = BGNBD("group", "passive").fit(world.customers, covariates=["log_pre_purchases"])
    eff = fit.group_effects_
    for col in ("purchase_rate_ratio", "dropout_ratio"):
        assert ((eff[f"{col}_lower"] <= 1) & (eff[f"{col}_upper"] >= 1)).all(), eff


def test_cdnow_synthetic_dropping_the_control_is_caught(world, adjusted):
    # without the pre-window count the account-size confounding shows: detractors look far less
    # active than they are (about 0.5 instead of 0.75); the recovery assertion must fail then
    naive = BGNBD("group", "passive").fit(world.customers)
    ratio = naive.group_effects_.loc["detractor", "purchase_rate_ratio"]
    assert abs(np.log(ratio / TRUE_EFFECTS["purchase_rate"]["detractor"])) > 3 * LOG_10PCT


def test_cdnow_synthetic_swapping_a_and_b_is_caught(adjusted, world):
    # a plausible bug: the beta parameters swapped in the prediction. The hidden next year's
    # purchases then miss by far more than the 10% the correct model achieves.
    c = world.customers
    swapped = copy.copy(adjusted)
    th = swapped._theta.copy()
    th[2], th[3] = th[3], th[2]
    swapped._theta = th
    actual = world.hidden["future_purchases"].mean()
    good = adjusted.expected_purchases(52, c).mean()
    bad = swapped.expected_purchases(52, c).mean()
    assert abs(np.log(good / actual)) < LOG_10PCT
    assert abs(np.log(bad / actual)) > 2 * LOG_10PCT


# --------------------------------------------------------------------------- errors in plain words

def test_bgnbd_without_repeat_buyers_is_a_model_error():
    frame = pd.DataFrame({"x": [0, 0, 0], "t_x": [0.0, 0.0, 0.0], "T": [10.0, 12.0, 9.0]})
    with pytest.raises(ModelError, match="nobody bought again"):
        BGNBD().fit(frame)


def test_gamma_gamma_without_repeat_buyers_is_a_model_error():
    with pytest.raises(ModelError, match="repeat buyers"):
        GammaGamma().fit(pd.DataFrame({"x": [0, 0], "mean_spend": [0.0, 0.0]}))


def test_bgnbd_bad_summary_is_an_input_error():
    frame = pd.DataFrame({"x": [1, 2], "t_x": [5.0, 20.0], "T": [10.0, 12.0]})
    with pytest.raises(InputError, match="t_x outside"):
        BGNBD().fit(frame)
    with pytest.raises(InputError, match="no column"):
        BGNBD().fit(frame.drop(columns="T"))
    with pytest.raises(InputError, match="reference group"):
        BGNBD("group", "neutral").fit(frame.assign(group=["a", "b"]))


def test_bgnbd_summary_and_html(cdnow_fit):
    assert list(cdnow_fit.summary.index) == ["r", "alpha", "a", "b"]
    assert (cdnow_fit.summary["lower_95"] < cdnow_fit.summary["estimate"]).all()
    assert "<table" in cdnow_fit._repr_html_()
    with pytest.raises(ModelError, match="fit"):
        BGNBD().summary
