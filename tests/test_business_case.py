"""NPV, ROI, payback and IRR against hand computations."""

import math

import pytest

from cxvalue import business_case as bc


def test_npv_by_hand():
    # -150 + 100 / 1.1 + 100 / 1.21 = -150 + 90.909 + 82.645
    assert bc.npv([100, 100], 0.10, initial=150) == pytest.approx(23.5537190)
    assert bc.npv([100, 100], 0.0) == 200


def test_roi_by_hand():
    # PV benefits 173.554, PV costs 150 (all up front): (173.554 - 150) / 150
    assert bc.roi([100, 100], [0, 0], 0.10, initial=150) == pytest.approx(23.5537190 / 150)
    assert math.isnan(bc.roi([100], [0], 0.1))


def test_payback_by_hand():
    # cumulative: -150, -50 after year 1; year 2 brings 100, half needed -> 12 + 6 months
    assert bc.payback_months([100, 100], initial=150) == pytest.approx(18.0)
    assert bc.payback_months([10, 10], initial=150) is None
    assert bc.payback_months([-50, 100, 100], initial=0) == pytest.approx(12 + 12 * 0.5)


def test_irr_by_hand():
    # 100 x + 100 x^2 = 150 with x = 1 / (1 + r): x = (-1 + sqrt(7)) / 2
    x = (-1 + math.sqrt(7)) / 2
    assert bc.irr([100, 100], initial=150) == pytest.approx(1 / x - 1)
    assert bc.npv([100, 100], bc.irr([100, 100], initial=150), initial=150) == pytest.approx(0, abs=1e-8)
    assert bc.irr([100, 100], initial=0) is None  # never negative: no IRR


def _groups():
    import numpy as np
    import pandas as pd

    return pd.DataFrame({
        "customers": [1000, 2000, 500],
        "revenue": [800.0, 1000.0, 1100.0],
        "cost_to_serve": [60.0, 40.0, 35.0],
        "survival": [np.array([0.6, 0.36]), np.array([0.8, 0.64]), np.array([0.9, 0.81])],
    }, index=["detractor", "passive", "promoter"])


def test_customer_years_by_hand():
    assert list(bc.customer_years([0.8, 0.64])) == pytest.approx([0.9, 0.72])


def test_scenario_cash_flows_by_hand():
    # 10% of 1,000 detractors become passives, all in year 1, no lag, margin 50%, two years
    cf = bc.scenario_cash_flows(_groups(), {("detractor", "passive"): 0.1}, ramp=[1.0], gross_margin=0.5,
                                horizon_years=2, yearly_cost=5_000)
    n = 100
    a_p, a_d = [0.9, 0.72], [0.8, 0.48]  # customer-years: (1 + .8)/2, (.8 + .64)/2; (1 + .6)/2, (.6 + .36)/2
    m_d = 0.5 * 800 - 60  # 340
    for year in (1, 2):
        j = year - 1
        assert cf.loc[year, "spend"] == pytest.approx(n * 0.5 * (1000 - 800) * a_p[j])
        assert cf.loc[year, "cost_to_serve"] == pytest.approx(n * (60 - 40) * a_p[j])
        assert cf.loc[year, "retention"] == pytest.approx(n * m_d * (a_p[j] - a_d[j]))
        m_p = 0.5 * 1000 - 40
        assert cf.loc[year, "benefit"] == pytest.approx(n * (m_p * a_p[j] - m_d * a_d[j]))  # levers add up
        assert cf.loc[year, "net"] == pytest.approx(cf.loc[year, "benefit"] - 5_000)
        # context: revenue the movers bring vs staying detractors, kept-longer effect included
        assert cf.loc[year, "revenue_change"] == pytest.approx(n * (1000 * a_p[j] - 800 * a_d[j]))
        assert cf.loc[year, "cost_to_serve_change"] == pytest.approx(n * (40 * a_p[j] - 60 * a_d[j]))


def test_referrals_lever_by_hand():
    # promoters refer 0.05 new customers a year, passives 0.02; a referred customer is worth 900
    g = _groups().assign(referrals=[0.01, 0.02, 0.05])
    cf = bc.scenario_cash_flows(g, {("passive", "promoter"): 0.1}, ramp=[1.0], gross_margin=0.5, horizon_years=2,
                                referral_value=900.0)
    n = 200
    a_pro, a_pas = [0.95, 0.855], [0.9, 0.72]  # (1 + .9)/2, (.9 + .81)/2; (1 + .8)/2, (.8 + .64)/2
    for year in (1, 2):
        j = year - 1
        assert cf.loc[year, "referrals"] == pytest.approx(n * 900 * (0.05 * a_pro[j] - 0.02 * a_pas[j]))
        levers = cf.loc[year, ["retention", "spend", "cost_to_serve", "referrals"]].sum()
        assert cf.loc[year, "benefit"] == pytest.approx(levers)
    without = bc.scenario_cash_flows(g.drop(columns="referrals"), {("passive", "promoter"): 0.1}, ramp=[1.0],
                                     gross_margin=0.5, horizon_years=2, referral_value=900.0)
    assert (without["referrals"] == 0).all()
    assert (cf["benefit"] - without["benefit"]).to_numpy() == pytest.approx(cf["referrals"].to_numpy())


def test_ramp_and_lag_delay_the_benefit():
    g = _groups()
    full = bc.scenario_cash_flows(g, {("passive", "promoter"): 0.2}, ramp=[1.0], gross_margin=0.5, horizon_years=2)
    lagged = bc.scenario_cash_flows(g, {("passive", "promoter"): 0.2}, ramp=[1.0], gross_margin=0.5,
                                    horizon_years=2, lag_years=1)
    assert lagged.loc[1, "benefit"] == 0 and lagged.loc[2, "benefit"] == pytest.approx(full.loc[1, "benefit"])
    half = bc.scenario_cash_flows(g, {("passive", "promoter"): 0.2}, ramp=[0.5, 1.0], gross_margin=0.5,
                                  horizon_years=2)
    # year 1: half the cohort in its first year; year 2: that half in its 2nd year + the other half in its 1st
    assert half.loc[1, "benefit"] == pytest.approx(full.loc[1, "benefit"] / 2)
    assert half.loc[2, "benefit"] == pytest.approx(full.loc[2, "benefit"] / 2 + full.loc[1, "benefit"] / 2)


def test_npv_distribution_matches_the_cash_flows_draw_by_draw():
    import numpy as np
    import pandas as pd

    g = _groups()
    s_ref = g.loc["passive", "survival"]
    rng = np.random.default_rng(0)
    draws = 5
    rev = pd.DataFrame({"detractor": rng.uniform(0.7, 0.9, draws), "passive": 1.0, "promoter": rng.uniform(1, 1.2, draws)})
    cost = pd.DataFrame({"detractor": rng.uniform(1.3, 1.7, draws), "passive": 1.0, "promoter": rng.uniform(0.8, 0.95, draws)})
    hr = pd.DataFrame({"detractor": rng.uniform(1.5, 2.5, draws), "passive": 1.0, "promoter": rng.uniform(0.5, 0.9, draws)})
    moves = {("detractor", "passive"): 0.2, ("passive", "promoter"): 0.1}
    refs = pd.DataFrame({"detractor": rng.uniform(0.1, 0.5, draws), "passive": 1.0, "promoter": rng.uniform(2, 3, draws)})
    # the reference group's own level is uncertain too: _level scales it in each draw
    for frame in (rev, cost, hr, refs):
        frame["_level"] = rng.uniform(0.9, 1.1, draws)
    g["referrals"] = [0.01, 0.02, 0.05]
    got = bc.npv_distribution(g, rev, cost, hr, "passive", s_ref, moves, [0.5, 1.0], 0.6, 0.08, 2,
                              one_off_cost=1_000, yearly_cost=500, lag_years=0, referral_ratio=refs,
                              referral_value=700.0)
    for i in range(draws):
        groups = pd.DataFrame({
            "customers": g["customers"],
            "revenue": g.loc["passive", "revenue"] * rev["_level"][i] * rev.iloc[i][g.index].to_numpy(),
            "cost_to_serve": g.loc["passive", "cost_to_serve"] * cost["_level"][i] * cost.iloc[i][g.index].to_numpy(),
            "referrals": g.loc["passive", "referrals"] * refs["_level"][i] * refs.iloc[i][g.index].to_numpy(),
            "survival": [s_ref ** (x * hr["_level"][i]) for x in hr.iloc[i][g.index].to_numpy()]}, index=g.index)
        cf = bc.scenario_cash_flows(groups, moves, [0.5, 1.0], 0.6, 2, yearly_cost=500, referral_value=700.0)
        assert got[i] == pytest.approx(bc.npv(cf["net"], 0.08, initial=1_000))


def test_summarise_npv():
    import numpy as np

    s = bc.summarise_npv(np.arange(-10, 91))  # -10 .. 90, 101 values
    assert s["npv_p50"] == 40 and s["npv_p10"] == 0 and s["npv_p90"] == 80
    assert s["p_npv_positive"] == pytest.approx(90 / 101)


def test_sensitivity_on_a_fitted_world():
    import numpy as np

    from cxvalue import data, history, linkage
    from cxvalue.config import load_params
    from cxvalue.synthetic import generate

    world = generate(n_customers=3_000, seed=21)
    # small programme costs for a small base: every year's net is positive, so NPV falls with the rate
    p = load_params({"as_of": world.truth["as_of"], "scenario.one_off_cost": 1_000, "scenario.yearly_cost": 500})
    checked = data.check(world.tables, p)
    h = history.history(checked, p)
    cov = list(checked.covariates)
    rev, cost, churn = (m("passive", cov).fit(h) for m in (linkage.RevenueModel, linkage.CostToServeModel, linkage.ChurnModel))
    base = history.active_customers_by_group(checked, h)
    case = bc.evaluate(rev, cost, churn, churn.km_curves(h), base, p)
    s = case.sensitivity
    assert list(s["swing"]) == sorted(s["swing"], reverse=True)
    margin = s.set_index("assumption").loc["Gross margin"]
    assert margin["npv_low"] < case.npv < margin["npv_high"]  # more margin, more value
    rate = s.set_index("assumption").loc["Discount rate"]
    assert rate["npv_low"] < case.npv < rate["npv_high"]  # "low" end = the higher rate
    assert (case.cash_flows["net"] > 0).all()
    assert np.isfinite(s[["npv_low", "npv_high"]].to_numpy()).all()
    assert case.results()["business_case"]["sensitivity"][0]["assumption"] == s.iloc[0]["assumption"]
    ctx = case.context
    base_revenue = (base.reindex(rev.summary.index) * rev.summary["adjusted"]).sum()
    assert ctx["revenue_uplift"] == pytest.approx(case.cash_flows.loc[3, "revenue_change"] / base_revenue)
    assert ctx["revenue_uplift"] > 0


def test_value_at_stake_by_hand():
    import pandas as pd

    g = _groups().drop(columns="survival").assign(referrals=[0.0, 0.0, 0.0], hazard_ratio=[2.0, 1.0, 0.5])
    # reference survival 0.8 after year 1: detractors 0.8^2 = 0.64, so year-1 customer-years 0.82 vs 0.9
    case = bc.BusinessCase(clv=pd.DataFrame(), cash_flows=pd.DataFrame(), npv=0.0, roi=0.0, payback_months=None,
                           irr=None, uncertainty={}, npv_draws=None, moved={},
                           inputs={"groups": g, "reference": "passive", "reference_survival": [0.8, 0.64],
                                   "gross_margin": 0.5, "referral_value": 0.0})
    m_d, m_p = 0.5 * 800 - 60, 0.5 * 1000 - 40
    assert bc.value_at_stake(case) == pytest.approx(1000 * (m_p * 0.9 - m_d * 0.82))


def test_target_score_scales_the_shares_by_hand():
    import pandas as pd

    from cxvalue.exceptions import ParameterError

    customers = pd.Series({"detractor": 1000.0, "passive": 2000.0, "promoter": 500.0})  # NPS = -14.29
    labels = ["detractor", "passive", "promoter"]
    sc = {"detractor_to_passive": 0.2, "passive_to_promoter": 0.1, "target_score": 0.0}
    d2p, p2p = bc.scenario_shares(sc, customers, labels, "passive")
    # gain 100 * 500 / 3500 = 14.29 points = 100 k (0.2 * 1000 + 0.1 * 2000) / 3500 -> k = 1.25
    assert (d2p, p2p) == pytest.approx((0.25, 0.125))
    after = customers + pd.Series({"detractor": -250.0, "passive": 250.0 - 250.0, "promoter": 250.0})
    assert 100 * (after["promoter"] - after["detractor"]) / after.sum() == pytest.approx(0.0)
    assert bc.scenario_shares({**sc, "target_score": None}, customers, labels, "passive") == (0.2, 0.1)
    with pytest.raises(ParameterError, match="already"):
        bc.scenario_shares({**sc, "target_score": -20.0}, customers, labels, "passive")
    with pytest.raises(ParameterError, match="cannot be reached"):
        bc.scenario_shares({**sc, "target_score": 90.0}, customers, labels, "passive")


def test_group_value_per_year_prices_a_one_year_move_like_the_scenario():
    import numpy as np
    import pandas as pd

    g = _groups().drop(columns="survival").assign(referrals=[0.01, 0.02, 0.05], hazard_ratio=[2.0, 1.0, 0.5])
    s_ref = [0.8, 0.64]
    case = bc.BusinessCase(clv=pd.DataFrame(), cash_flows=pd.DataFrame(), npv=0.0, roi=0.0, payback_months=None,
                           irr=None, uncertainty={}, npv_draws=None, moved={},
                           inputs={"groups": g, "reference": "passive", "reference_survival": s_ref,
                                   "gross_margin": 0.5, "referral_value": 900.0})
    v = bc.group_value_per_year(case)
    with_survival = g.assign(survival=[np.asarray(s_ref) ** hr for hr in g["hazard_ratio"]])
    for frm, to in (("detractor", "passive"), ("passive", "promoter"), ("detractor", "promoter")):
        flows = bc.scenario_cash_flows(with_survival, {(frm, to): 0.1}, [1.0], 0.5, 1, referral_value=900.0)
        moved = 0.1 * g.loc[frm, "customers"]
        assert flows.loc[1, "benefit"] == pytest.approx(moved * (v[to] - v[frm]))
