"""Customers who never cancel (issue 13): the purchase model, its money and a full run.

Oracles:
* the purchase rate's integral is BG/NBD's own closed forms: the conditional expectation (Fader,
  Hardie & Lee 2005a, eq. 10, :meth:`BGNBD.expected_purchases`) and, for a new customer, the
  unconditional one (eq. 7), written out here by hand;
* the seeded non-contractual world (:mod:`cxvalue.synthetic_noncontractual`), written as the
  contract's tables, with known purchase-rate and dropout ratios, confounded by account size, and
  its hidden next year of purchases and revenue.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from cxvalue import business_case, config, pipeline, purchases
from cxvalue import synthetic_noncontractual as snc
from cxvalue.btyd import BGNBD

LOG_10PCT = np.log(1.10)


@pytest.fixture(scope="module")
def world():
    # observed 1 to 2 years after the survey, so that the repeat-purchase rate has customers followed a full year
    return snc.generate(6000, seed=11, weeks=104, min_weeks=52)


@pytest.fixture(scope="module")
def tables(world):
    return snc.tables(world)


@pytest.fixture(scope="module")
def analysis(tables):
    params = config.load_params(overrides={"scenario.draws": 2000})
    return pipeline.analyse(tables, params)


@pytest.fixture(scope="module")
def fitted():
    w = snc.generate(3000, seed=3)
    return BGNBD("group", "passive").fit(w.customers, ["log_pre_purchases"]), w.customers


# --------------------------------------------------------------------------- the rate, by hand


def test_purchase_rate_integrates_to_the_conditional_expectation(fitted):
    model, c = fitted
    rows = c.sample(40, random_state=2)
    grid = np.linspace(0.0, 52.0, 1601)
    rate = purchases.purchase_rate_at(model, rows, grid)
    assert rate.shape == (40, grid.size)
    area = integrate.simpson(rate, x=grid, axis=1)
    np.testing.assert_allclose(area, model.expected_purchases(52.0, rows), rtol=1e-6, atol=1e-9)


def test_new_customers_rate_integrates_to_the_unconditional_expectation(fitted):
    model, c = fitted
    rows = c.head(5)
    r, alpha, a, b, *_ = model._individual(rows.assign(x=0, t_x=0.0, T=0.0))
    t = 40.0
    # Fader, Hardie & Lee (2005a), eq. 7: E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]
    by_hand = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    grid = np.linspace(0.0, t, 1601)
    area = integrate.simpson(purchases.purchase_rate_at(model, rows, grid, fresh=True), x=grid, axis=1)
    np.testing.assert_allclose(area, by_hand, rtol=1e-6)


def test_a_move_scales_todays_rate_by_the_purchase_rate_ratio_and_no_move_changes_nothing(fitted):
    model, c = fitted
    rows = c[c["group"] == "detractor"].head(30)
    weeks = [0.0, 26.0, 104.0]
    stay = purchases.purchase_rate_at(model, rows, weeks)
    np.testing.assert_allclose(purchases.purchase_rate_at(model, rows, weeks, as_group="detractor"), stay, rtol=1e-12)
    moved = purchases.purchase_rate_at(model, rows, weeks, as_group="passive")
    ratio = np.exp(-model.params_["purchase:group[detractor]"])  # passive / detractor
    np.testing.assert_allclose(moved[:, 0] / stay[:, 0], ratio, rtol=1e-10)
    # later on, the passive's lower dropout keeps more of the buying going than the rate alone would
    assert np.all(moved[:, 2] / stay[:, 2] > ratio)


# --------------------------------------------------------------------------- which business model


def test_business_model_auto_reads_the_end_dates():
    w = snc.generate(300, seed=1)
    none = snc.tables(w)
    empty = snc.tables(w, with_end_date_column=True)
    some = snc.tables(w, with_end_date_column=True)
    some["customers"]["end_date"] = some["customers"]["end_date"].astype(object)
    some["customers"].loc[0, "end_date"] = some["customers"].loc[0, "start_date"]
    p = config.load_params()
    from cxvalue import data as cxdata

    assert purchases.business_model(p, cxdata.check(none, p))[0] == "non_contractual"
    assert purchases.business_model(p, cxdata.check(empty, p))[0] == "non_contractual"
    used, why = purchases.business_model(p, cxdata.check(some, p))
    assert used == "contractual" and "1 customers have an end_date" in why
    forced = config.load_params(overrides={"business_model": "contractual"})
    assert purchases.business_model(forced, cxdata.check(none, forced))[0] == "contractual"


# --------------------------------------------------------------------------- the world's truth


def test_non_contractual_world_effects_are_recovered_from_the_tables(analysis, world):
    s = analysis.purchases.summary
    assert analysis.business_model == "non_contractual"
    assert analysis.churn.skipped_ == purchases.NON_CONTRACTUAL_CHURN
    for g in ("detractor", "promoter"):
        for key, truth in (("purchase_rate_ratio", "purchase_rate"), ("dropout_ratio", "dropout")):
            true = snc.TRUE_EFFECTS[truth][g]
            assert abs(np.log(s.loc[g, key] / true)) < LOG_10PCT, (g, key, s.loc[g, key], true)
    # the raw comparison is confounded (bigger accounts are happier and buy more): without the
    # controls the detractors' purchase rate reads well below the truth, so the controls matter here
    raw = BGNBD("group", "passive").fit(world.customers)
    assert raw.group_effects_.loc["detractor", "purchase_rate_ratio"] < 0.9 * snc.TRUE_EFFECTS["purchase_rate"]["detractor"]


def test_non_contractual_world_next_year_is_predicted(analysis, world):
    # the hidden 52 weeks after as_of, per group: purchases and revenue within 10%, and the
    # model-free revenue ratios to passive within 10%
    s = analysis.purchases.summary
    hidden = world.hidden.groupby(world.customers["group"].astype(str).to_numpy())[
        ["future_purchases", "future_revenue"]].mean()
    for g in ("detractor", "passive", "promoter"):
        assert abs(np.log(s.loc[g, "expected_purchases_12m"] / hidden.loc[g, "future_purchases"])) < LOG_10PCT, g
        assert abs(np.log(s.loc[g, "expected_revenue_12m"] / hidden.loc[g, "future_revenue"])) < LOG_10PCT, g
    for g in ("detractor", "promoter"):
        model = s.loc[g, "expected_revenue_12m"] / s.loc["passive", "expected_revenue_12m"]
        true = hidden.loc[g, "future_revenue"] / hidden.loc["passive", "future_revenue"]
        assert abs(np.log(model / true)) < LOG_10PCT, g


@pytest.mark.parametrize("confounding, within", [(0.0, None), (1.0, 0.20)])
def test_null_non_contractual_world_reads_null(confounding, within):
    # Without confounding every interval includes 1 (or the ratio is within 2% of it). With strong
    # confounding seen only through the pre-survey purchase count (a Poisson-noisy measure of account
    # size), what is left of it is not removed: on this world (seed 21) the detractors' dropout ratio
    # reads 1.15 (1.01 to 1.31) and their purchase rate 0.96 (0.93 to 1.00) where both are 1. The
    # residual confounding of issue 11, stated in the method notes; bounded here so that it cannot grow
    # unnoticed
    ones = {"purchase_rate": {g: 1.0 for g in snc.GROUPS}, "dropout": {g: 1.0 for g in snc.GROUPS}}
    w = snc.generate(6000, seed=21, effects=ones, weeks=104, min_weeks=52, confounding=confounding)
    s = pipeline.analyse(snc.tables(w), config.load_params(overrides={"scenario.draws": 200})).purchases.summary
    for g in ("detractor", "promoter"):
        for key in ("purchase_rate_ratio", "dropout_ratio"):
            lo, hi, est = s.loc[g, f"{key}_lo"], s.loc[g, f"{key}_hi"], s.loc[g, key]
            if within is None:
                assert lo <= 1 <= hi or abs(est - 1) < 0.02, (g, key, est, lo, hi)
            else:
                assert abs(np.log(est)) < np.log(1 + within), (g, key, est, lo, hi)
            assert hi / lo < 1.6, (g, key, lo, hi)  # and not so wide that it could not miss


# --------------------------------------------------------------------------- the money


def test_rows_price_the_next_year_as_the_model_expects(analysis):
    # a row's revenue x the first year's customer-years (trapezoid) is the movers' expected revenue
    # of the next year: spend x E[X(52.18 weeks) | history] (eq. 10), to the trapezoid's error
    m = analysis.purchases
    rows = analysis.case.inputs["movers"]
    movers = m.frame_.loc[m.fitted_rows_]
    movers = movers[movers["group"].astype(str) == "detractor"]
    expected = np.mean(m.spend(movers) * m.bgnbd_.expected_purchases(purchases.WEEKS_PER_YEAR, movers))
    r = rows.loc["detractor"]
    priced = r["revenue"] * (1 + r["survival"][0]) / 2
    assert priced == pytest.approx(expected, rel=0.06)
    # moving them up adds revenue in every year, and more of it is kept later on
    up = rows.loc["detractor as passive"]
    assert up["revenue"] > r["revenue"]
    assert np.all(np.asarray(up["survival"]) > np.asarray(r["survival"]))


def test_non_contractual_case_adds_up(analysis):
    case, p = analysis.case, analysis.params
    flows = case.cash_flows
    discounted = (flows["net"] / (1 + p["discount_rate"]) ** flows.index.to_numpy()).sum()
    assert discounted == pytest.approx(case.npv, rel=1e-12)
    assert flows.loc[1:, "retention"].sum() > 0 and flows.loc[1:, "spend"].sum() > 0
    assert flows["referrals"].abs().sum() == 0 and "referrals" in case.left_out
    # the value per year the drivers price a point with: margin x the first year's share of buying
    g = case.inputs["groups"]
    first = case.inputs["first_year"]
    expected = (p["gross_margin"] * g["revenue"] - g["cost_to_serve"]) * first
    pd.testing.assert_series_equal(business_case.group_value_per_year(case), expected.rename("value_per_year"),
                                   check_names=True)
    # the simulation varies the effects: its spread is not zero, and its middle is near the point NPV
    u = case.uncertainty
    assert u["npv_p10"] < case.npv < u["npv_p90"]


def _true_yearly_purchases(rate, dropout, years):
    """Expected purchases in each year 1..H of a customer alive now, buying at ``rate`` a week and
    stopping after each purchase with probability ``dropout``: ``(1 - exp(-rate p t)) / p`` up to t."""
    t = purchases.WEEKS_PER_YEAR * np.arange(0, years + 1)
    return np.diff((1 - np.exp(-np.outer(rate * dropout, t))) / dropout[:, None], axis=1)


def test_moving_detractors_up_is_worth_what_the_world_says():
    # An unconfounded world where satisfaction moves only the purchase rate (dropout ratios 1), so that
    # a move has one meaning for each customer: their rate times passive / detractor (0.75 -> 1). The
    # truth: every detractor still alive at as_of (hidden), with their own true rate, dropout and
    # spend, bought for 5 years as they are and with the passive rate. The case moves all detractors
    # at once (ramp 1 year, no lag, no discounting, margin 100%, no costs), so its benefit is that
    # difference in revenue. Seen on seed 31: year 1 -2%, five years -7% (the model's rates are gamma,
    # the world's gamma x lognormal in account size, so its extrapolation drifts with the horizon).
    effects = {"purchase_rate": snc.TRUE_EFFECTS["purchase_rate"], "dropout": {g: 1.0 for g in snc.GROUPS}}
    w = snc.generate(20000, seed=31, weeks=104, min_weeks=52, confounding=0.0, effects=effects)
    H = 5
    params = config.load_params(overrides={
        "scenario.draws": 200, "scenario.detractor_to_passive": 1.0, "scenario.passive_to_promoter": 0.0,
        "scenario.ramp_years": 1, "scenario.one_off_cost": 0.0, "scenario.yearly_cost": 0.0, "gross_margin": 1.0,
        "horizon_years": H, "discount_rate": 0.0, "response_weights": "none"})
    case = pipeline.analyse(snc.tables(w), params).case
    h = w.hidden[(w.customers["group"] == "detractor").to_numpy()]
    alive, spend = h["alive_at_T"].to_numpy(), h["spend_per_purchase"].to_numpy()
    lam, p = h["purchase_rate"].to_numpy(), h["dropout"].to_numpy()
    moved = lam / effects["purchase_rate"]["detractor"]
    gain = ((alive * spend)[:, None] * (_true_yearly_purchases(moved, p, H) - _true_yearly_purchases(lam, p, H))).sum(axis=0)
    priced = case.cash_flows.loc[1:, "benefit"].to_numpy()
    assert priced[0] == pytest.approx(gain[0], rel=0.05)
    assert priced.sum() == pytest.approx(gain.sum(), rel=0.12)
    assert case.cash_flows.loc[1:, "spend"].sum() > 0


def test_repeat_purchase_rate_on_the_scorecard(analysis, tables):
    card = analysis.scorecard
    assert "retention_12m" not in card.kpis_
    k = card.kpis_["repeat_purchase_12m"]
    # by hand: of the customers who bought in the 12 months before the period, the share who bought
    # in the period (the 12 months to as_of, both half-open windows of days)
    t = tables["transactions"].assign(date=lambda d: pd.to_datetime(d["date"]))
    end = pd.Timestamp("2025-12-31") + pd.Timedelta(days=1)
    start, before = end - pd.DateOffset(months=12), end - pd.DateOffset(months=24)
    earlier = set(t.loc[(t["date"] >= before) & (t["date"] < start), "customer_id"])
    now = set(t.loc[(t["date"] >= start) & (t["date"] < end), "customer_id"])
    assert k["n"] == len(earlier)
    assert k["actual"] == pytest.approx(len(earlier & now) / len(earlier), rel=1e-12)
    assert k["se"] == pytest.approx(np.sqrt(k["actual"] * (1 - k["actual"]) / k["n"]))
    # revenue per customer: per buyer-year of the customers who bought in the period
    rev = t.loc[(t["date"] >= start) & (t["date"] < end), "amount"].sum()
    c = tables["customers"].assign(start_date=lambda d: pd.to_datetime(d["start_date"]))
    c = c[c["customer_id"].isin(now)]
    years = ((end - c["start_date"].clip(lower=start)).dt.days.clip(lower=0)).sum() / 365.25
    assert card.kpis_["revenue_per_customer"]["actual"] == pytest.approx(rev / years, rel=1e-9)


# --------------------------------------------------------------------------- a full run


def test_world_without_end_date_runs_to_a_full_report(tmp_path):
    w = snc.generate(1500, seed=4, weeks=104, min_weeks=52)
    data = tmp_path / "shop"
    data.mkdir()
    for name, frame in snc.tables(w).items():
        frame.to_csv(data / f"{name}.csv", index=False)
    out = tmp_path / "report"
    res = subprocess.run([sys.executable, "-m", "cxvalue.cli", "run", "--data", str(data), "--out", str(out), "-q",
                          "--set", "scenario.draws=500"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    r = json.loads((out / "results.json").read_text())
    assert r["business_model"]["used"] == "non_contractual"
    assert "end_date" in r["business_model"]["why"]
    assert set(r["linkage"]["purchases"]) >= {"detractor", "passive", "promoter"}
    assert r["skipped"]["linkage.churn"] == purchases.NON_CONTRACTUAL_CHURN
    assert "repeat_purchase_12m" in r["kpis"] and "retention_12m" not in r["kpis"]
    page = (out / "report.html").read_text()
    assert "How often and how long customers buy" in page and "Business model: Non-contractual" in page
    import openpyxl

    sheet = openpyxl.load_workbook(out / "business_case.xlsx")["Assumptions"]
    assert any(c.value and "never cancel" in str(c.value) for c in sheet["A"])
