"""NPV, ROI, payback and IRR against hand computations."""

import math

import numpy as np
import pandas as pd

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
    # _groups' survival is geometric (S(t) = s^t), so a customer still there after a year is, from then
    # on, like a new one: a cohort moved a year later brings S_g(1) x what a cohort moved today brings
    g = _groups()
    s_passive_1 = 0.8
    full = bc.scenario_cash_flows(g, {("passive", "promoter"): 0.2}, ramp=[1.0], gross_margin=0.5, horizon_years=2)
    lagged = bc.scenario_cash_flows(g, {("passive", "promoter"): 0.2}, ramp=[1.0], gross_margin=0.5,
                                    horizon_years=2, lag_years=1)
    assert lagged.loc[1, "benefit"] == 0
    assert lagged.loc[2, "benefit"] == pytest.approx(s_passive_1 * full.loc[1, "benefit"])
    half = bc.scenario_cash_flows(g, {("passive", "promoter"): 0.2}, ramp=[0.5, 1.0], gross_margin=0.5,
                                  horizon_years=2)
    # year 1: half the cohort in its first year; year 2: that half in its 2nd year + the other half, moved at
    # the start of year 2 from the passives still there (0.8 of them), in its 1st
    assert half.loc[1, "benefit"] == pytest.approx(full.loc[1, "benefit"] / 2)
    assert half.loc[2, "benefit"] == pytest.approx(full.loc[2, "benefit"] / 2 + s_passive_1 * full.loc[1, "benefit"] / 2)


def test_a_later_move_applies_to_the_customers_still_there_by_hand():
    # survival that is not geometric: a move a year from now is not a move today shifted by a year
    import numpy as np
    import pandas as pd

    g = pd.DataFrame({"customers": [1000.0, 1000.0], "revenue": [800.0, 1000.0], "cost_to_serve": [60.0, 40.0],
                      "referrals": [0.01, 0.03], "survival": [np.array([0.5, 0.4]), np.array([0.9, 0.6])]},
                     index=["detractor", "detractor as passive"])
    cf = bc.scenario_cash_flows(g, {("detractor", "detractor as passive"): 0.1}, ramp=[1.0], gross_margin=0.5,
                                horizon_years=2, lag_years=1, referral_value=[0.0, 300.0])
    n = 100
    # of the 100 moved today, 0.5 are still there after a year; from then on they follow the passive curve
    # from where it stands at year 1: (S_p(1) + S_p(2)) / 2 / S_p(1) = 0.75 / 0.9 customer-years each
    moved = 0.5 * (0.9 + 0.6) / 2 / 0.9
    stay = (0.5 + 0.4) / 2
    assert cf.loc[1, "benefit"] == 0
    assert cf.loc[2, "spend"] == pytest.approx(n * 0.5 * (1000 - 800) * moved)
    assert cf.loc[2, "cost_to_serve"] == pytest.approx(n * (60 - 40) * moved)
    assert cf.loc[2, "retention"] == pytest.approx(n * (0.5 * 800 - 60) * (moved - stay))
    assert cf.loc[2, "referrals"] == pytest.approx(n * 300 * (0.03 * moved - 0.01 * stay))


def _mover_rows():
    """Four rows as :func:`cxvalue.movers.mover_rows` makes them: two sets of movers, each as they are and as
    the group they move to (survival not geometric, levels unlike the groups' own)."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame({
        "customers": [1000.0, 1000.0, 2000.0, 2000.0],
        "as_group": ["detractor", "passive", "passive", "promoter"],
        "revenue": [700.0, 850.0, 1000.0, 1080.0],
        "cost_to_serve": [65.0, 45.0, 40.0, 36.0],
        "referrals": [0.01, 0.02, 0.02, 0.05],
        "survival": [np.array([0.7, 0.5, 0.4]), np.array([0.85, 0.7, 0.6]), np.array([0.85, 0.72, 0.62]),
                     np.array([0.9, 0.8, 0.72])]},
        index=["detractor", "detractor as passive", "passive", "passive as promoter"])


def test_npv_distribution_matches_the_cash_flows_draw_by_draw():
    import numpy as np
    import pandas as pd

    rows = _mover_rows()
    rng = np.random.default_rng(0)
    draws = 5
    # draws relative to the point estimates, one column per group; a row takes its as_group's
    rev = pd.DataFrame({"detractor": rng.uniform(0.7, 0.9, draws), "passive": 1.0, "promoter": rng.uniform(1, 1.2, draws)})
    cost = pd.DataFrame({"detractor": rng.uniform(1.3, 1.7, draws), "passive": 1.0, "promoter": rng.uniform(0.8, 0.95, draws)})
    hr = pd.DataFrame({"detractor": rng.uniform(1.5, 2.5, draws), "passive": 1.0, "promoter": rng.uniform(0.5, 0.9, draws)})
    refs = pd.DataFrame({"detractor": rng.uniform(0.1, 0.5, draws), "passive": 1.0, "promoter": rng.uniform(2, 3, draws)})
    moves = {("detractor", "detractor as passive"): 0.2, ("passive", "passive as promoter"): 0.1}
    # the reference group's own level is uncertain too: _level scales every row in that draw
    for frame in (rev, cost, hr, refs):
        frame["_level"] = rng.uniform(0.9, 1.1, draws)
    ref_value = [700.0, 500.0, 250.0]
    got = bc.npv_distribution(rows, rev, cost, hr, moves, [0.5, 1.0], 0.6, 0.08, 3, one_off_cost=1_000,
                              yearly_cost=500, lag_years=1, referral_ratio=refs, referral_value=ref_value)
    g = rows["as_group"]
    for i in range(draws):
        drawn = rows.assign(
            revenue=rows["revenue"] * rev["_level"][i] * rev.iloc[i][g].to_numpy(),
            cost_to_serve=rows["cost_to_serve"] * cost["_level"][i] * cost.iloc[i][g].to_numpy(),
            referrals=rows["referrals"] * refs["_level"][i] * refs.iloc[i][g].to_numpy(),
            survival=[s ** (x * hr["_level"][i]) for s, x in zip(rows["survival"], hr.iloc[i][g].to_numpy())])
        cf = bc.scenario_cash_flows(drawn, moves, [0.5, 1.0], 0.6, 3, yearly_cost=500, lag_years=1,
                                    referral_value=ref_value)
        assert got[i] == pytest.approx(bc.npv(cf["net"], 0.08, initial=1_000))
    # draws at the point estimates give the point NPV
    ones = pd.DataFrame([{"detractor": 1.0, "passive": 1.0, "promoter": 1.0}])
    point = bc.scenario_cash_flows(rows, moves, [0.5, 1.0], 0.6, 3, yearly_cost=500, lag_years=1, referral_value=ref_value)
    assert bc.npv_distribution(rows, ones, ones, ones, moves, [0.5, 1.0], 0.6, 0.08, 3, 1_000, 500, 1, ones,
                               ref_value)[0] == pytest.approx(bc.npv(point["net"], 0.08, initial=1_000))


def test_relative_draws():
    import pandas as pd

    d = pd.DataFrame({"detractor": [0.8, 0.9], "passive": [1.0, 1.0], "_level": [1.1, 0.9]})
    r = bc.relative_draws(d, pd.Series({"detractor": 0.85, "passive": 1.0, "promoter": float("nan")}))
    assert list(r["detractor"]) == pytest.approx([0.8 / 0.85, 0.9 / 0.85])
    assert list(r["_level"]) == [1.1, 0.9] and list(r["passive"]) == [1.0, 1.0]


def test_summarise_npv():
    import numpy as np

    s = bc.summarise_npv(np.arange(-10, 91))  # -10 .. 90, 101 values
    assert s["npv_p50"] == 40 and s["npv_p10"] == 0 and s["npv_p90"] == 80
    assert s["p_npv_positive"] == pytest.approx(90 / 101)


@pytest.fixture(scope="module")
def fitted():
    """A small seeded world, its fitted models and the evaluated case (every year's net positive)."""
    from cxvalue import data, history, linkage
    from cxvalue.config import load_params
    from cxvalue.synthetic import generate

    world = generate(n_customers=3_000, seed=21)
    # small programme costs for a small base: every year's net is positive, so NPV falls with the rate
    p = load_params({"as_of": world.truth["as_of"], "scenario.one_off_cost": 1_000, "scenario.yearly_cost": 500,
                     "scenario.draws": 200})
    checked = data.check(world.tables, p)
    h = history.history(checked, p)
    cov = list(checked.covariates)
    models = [m("passive", cov).fit(h) for m in (linkage.RevenueModel, linkage.CostToServeModel, linkage.ChurnModel)]
    base = history.active_customers_by_group(checked, h)
    args = (*models, models[2].km_curves(h), base)
    return {"params": p, "history": h, "args": args, "base": base,
            "case": bc.evaluate(*args, p, history=h)}


def test_sensitivity_on_a_fitted_world(fitted):
    import numpy as np

    case, base = fitted["case"], fitted["base"]
    rev = fitted["args"][0]
    s = case.sensitivity
    assert list(s["swing"]) == sorted(s["swing"], reverse=True)
    margin = s.set_index("assumption").loc["Gross margin"]
    assert margin["npv_low"] < case.npv < margin["npv_high"]  # more margin, more value
    rate = s.set_index("assumption").loc["Discount rate"]
    assert rate["npv_low"] < case.npv < rate["npv_high"]  # "low" end = the higher rate
    assert (case.cash_flows.loc[1:, "net"] > 0).all()
    assert np.isfinite(s[["npv_low", "npv_high"]].to_numpy()).all()
    assert case.results()["business_case"]["sensitivity"][0]["assumption"] == s.iloc[0]["assumption"]
    ctx = case.context
    base_revenue = (base.reindex(rev.summary.index) * rev.summary["adjusted"]).sum()
    assert ctx["revenue_uplift"] == pytest.approx(case.cash_flows.loc[3, "revenue_change"] / base_revenue)
    assert ctx["revenue_uplift"] > 0
    # the tornado's base case is the case itself: at the base settings its runs give the case's NPV
    again = bc.sensitivity(*fitted["args"], {**fitted["params"], "scenario": {**fitted["params"]["scenario"]}},
                           history=fitted["history"])
    assert list(again["npv_low"]) == pytest.approx(list(s["npv_low"]))


def test_cash_flows_discount_to_the_npv(fitted):
    # every cost is in the cash flows, the one-off included as year 0, for several scenarios
    import numpy as np

    p = fitted["params"]
    for scenario in ({}, {"one_off_cost": 2_000_000, "yearly_cost": 50_000}, {"lag_years": 1, "ramp_years": 3},
                     {"detractor_to_passive": 0.0}):
        params = {**p, "scenario": {**p["scenario"], **scenario}}
        case = bc.evaluate(*fitted["args"], params, history=fitted["history"])
        flows = case.cash_flows
        assert list(flows.index) == list(range(0, params["horizon_years"] + 1))
        assert flows.loc[0, "cost"] == params["scenario"]["one_off_cost"] and flows.loc[0, "benefit"] == 0
        discounted = (flows["net"] / (1 + params["discount_rate"]) ** flows.index.to_numpy()).sum()
        assert discounted == pytest.approx(case.npv, rel=1e-9, abs=1e-6)
        rows = case.results()["business_case"]["cash_flows"]
        assert sum(r["net"] / (1 + params["discount_rate"]) ** r["year"] for r in rows) == pytest.approx(case.npv)
        assert np.isfinite(case.npv)


def test_each_set_of_draws_moves_only_its_own_lever(fitted, monkeypatch):
    """Draws pinned at the point estimates give the point NPV every time; revenue draws 10% up move the NPV as
    10% more revenue for every mover row does (a revenue/cost swap, or a dropped set, would not)."""
    import numpy as np
    import pandas as pd

    from cxvalue import linkage, value

    def pinned(up):
        def effect_draws(model, n, seed):
            s = model.summary_
            point = (s["hazard_ratio"] if "hazard_ratio" in s else s["ratio"]).fillna(1.0)
            factor = 1.1 if isinstance(model, up) else 1.0
            return pd.DataFrame({**{g: np.full(n, point[g] * factor) for g in s.index}, "_level": np.ones(n)})
        return effect_draws

    p, h = fitted["params"], fitted["history"]
    monkeypatch.setattr(value, "effect_draws", pinned(()))
    case = bc.evaluate(*fitted["args"], p, history=h)
    assert case.npv_draws == pytest.approx(np.full(len(case.npv_draws), case.npv))
    assert case.uncertainty["npv_p50"] == pytest.approx(case.npv)
    rows, moves, sc = case.inputs["movers"], case.inputs["mover_moves"], p["scenario"]

    def npv_with(**scaled):
        r = rows.assign(**{k: rows[k] * f for k, f in scaled.items()})
        flows = bc.scenario_cash_flows(r, moves, case.inputs["ramp"], p["gross_margin"], p["horizon_years"],
                                       sc["yearly_cost"], sc["lag_years"], case.inputs["referral_value"])
        return bc.npv(flows["net"], p["discount_rate"], sc["one_off_cost"])

    for model, column in ((linkage.RevenueModel, "revenue"), (linkage.CostToServeModel, "cost_to_serve")):
        monkeypatch.setattr(value, "effect_draws", pinned(model))
        drawn = bc.evaluate(*fitted["args"], p, history=h).npv_draws
        assert npv_with(**{column: 1.1}) != pytest.approx(case.npv, rel=1e-3)
        assert drawn == pytest.approx(np.full(len(drawn), npv_with(**{column: 1.1})))


def test_value_at_stake_by_hand():
    import pandas as pd

    rows = _mover_rows()
    g = pd.DataFrame(index=["detractor", "passive", "promoter"])
    case = bc.BusinessCase(clv=pd.DataFrame(), cash_flows=pd.DataFrame(), npv=0.0, roi=0.0, payback_months=None,
                           irr=None, uncertainty={}, npv_draws=None, moved={},
                           inputs={"groups": g, "reference": "passive", "movers": rows, "gross_margin": 0.5,
                                   "referral_value": [100.0, 50.0]})
    # today's 1,000 detractors, each at their own levels as they are and as passives, over year 1
    a_as_passive, a_as_they_are = (1 + 0.85) / 2, (1 + 0.7) / 2
    v_passive = (0.5 * 850 - 45 + 100 * 0.02) * a_as_passive
    v_detractor = (0.5 * 700 - 65 + 100 * 0.01) * a_as_they_are
    assert bc.value_at_stake(case) == pytest.approx(1000 * (v_passive - v_detractor))


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


def test_a_destination_nobody_is_left_in_moves_no_one_in_both_calculations():
    """100 customers of a (survival 0.5, 0.4; revenue 10) moved to b (survival 0 from year 1; revenue
    20) with a one-year lag: when the move would start nobody of b is left, so the cohort is skipped
    (no benefit, no loss) by the cash flows and by the simulation alike (found by mutation review:
    the simulation used to subtract what the customers would have brought staying, NPV -450)."""
    groups = pd.DataFrame({"customers": [100.0, 0.0], "revenue": [10.0, 20.0], "cost_to_serve": [0.0, 0.0],
                           "survival": [np.array([0.5, 0.4]), np.array([0.0, 0.0])]}, index=["a", "b"])
    moves = {("a", "b"): 1.0}
    flows = bc.scenario_cash_flows(groups, moves, [1.0], 1.0, 2, lag_years=1)
    assert bc.npv(flows["net"], 0.0) == 0.0
    ones = pd.DataFrame({"a": [1.0], "b": [1.0]})
    sim = bc.npv_distribution(groups, ones, ones, ones, moves, [1.0], 1.0, 0.0, 2, lag_years=1)
    assert sim[0] == pytest.approx(0.0)
    # with b's survival above 0 the two still agree (the cohort moves)
    groups.at["b", "survival"] = np.array([0.2, 0.1])
    flows = bc.scenario_cash_flows(groups, moves, [1.0], 1.0, 2, lag_years=1)
    sim = bc.npv_distribution(groups, ones, ones, ones, moves, [1.0], 1.0, 0.0, 2, lag_years=1)
    assert sim[0] == pytest.approx(bc.npv(flows["net"], 0.0)) and sim[0] != 0
