"""The business case end to end on a toy world worked by hand (tests added for the mutation run,
tests/MUTATION.md).

The toy: three groups whose fitted models are stand-ins with known answers. Every customer of a
group spends, costs and refers exactly the group's level whatever their covariates (so the movers'
g-computation returns the group's level), and leaves at a constant hazard ``0.2 x HR_g`` a year,
so survival is ``S_g(t) = exp(-0.2 HR_g t)`` and the expected customer-years of year ``t`` are
``A_g(t) = (S_g(t-1) + S_g(t)) / 2``. Constant hazards forget the past: a customer of ``g`` still
there after ``k`` years and moved to ``h`` then brings ``A_h(t - k)`` in year ``t``. Every figure
of the case (cash flows by lever, NPV, ROI, payback, IRR, CLV, context, the tornado) follows in a
few lines, written out below without calling the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxvalue import business_case as bc
from cxvalue import value

LABELS = ["detractor", "passive", "promoter"]
REV = {"detractor": 600.0, "passive": 800.0, "promoter": 1000.0}
REV_CI = {"detractor": (0.6, 0.9), "promoter": (1.1, 1.4)}  # ratios 0.75 and 1.25 to the passives
COST = {"detractor": 50.0, "passive": 40.0, "promoter": 30.0}
COST_CI = {"detractor": (1.1, 1.4), "promoter": (0.6, 0.9)}  # ratios 1.25 and 0.75
HR = {"detractor": 2.0, "passive": 1.0, "promoter": 0.5}
HR_CI = {"detractor": (1.5, 2.5), "promoter": (0.3, 0.8)}
LAMBDA = 0.2  # the passives' hazard a year
BASE = {"detractor": 1000.0, "passive": 2000.0, "promoter": 1000.0}  # today's customers
H, GM, RATE, ONE_OFF, YEARLY = 3, 0.6, 0.10, 10_000.0, 2_000.0
MOVES = [("detractor", "passive"), ("passive", "promoter")]


class _Rate:
    """A fitted revenue / cost model whose every customer is at the group's level."""

    skipped_ = None
    fitted = True
    reference_group = "passive"

    def __init__(self, levels, ci, rows):
        self.levels = levels
        ratio = {g: levels[g] / levels["passive"] if levels["passive"] else np.nan for g in LABELS}
        self.summary_ = pd.DataFrame({
            "customers": [2, 2, 2], "adjusted": [levels[g] for g in LABELS], "ratio": [ratio[g] for g in LABELS],
            "ratio_lo": [ci.get(g, (1.0, 1.0))[0] for g in LABELS], "ratio_hi": [ci.get(g, (1.0, 1.0))[1] for g in LABELS]},
            index=pd.Index(LABELS, name="group"))
        self.design_ = pd.DataFrame(index=rows)

    @property
    def summary(self):
        return self.summary_

    def predict(self, group, rows=None):
        return pd.Series(self.levels[group], index=self.design_.index if rows is None else rows)


class _Churn:
    """A fitted churn model with constant hazards ``LAMBDA x HR_g``."""

    skipped_ = None
    fitted = True
    reference_group = "passive"

    def __init__(self):
        self.summary_ = pd.DataFrame({"hazard_ratio": [HR[g] for g in LABELS],
                                      "hr_lo": [HR_CI.get(g, (1.0, 1.0))[0] for g in LABELS],
                                      "hr_hi": [HR_CI.get(g, (1.0, 1.0))[1] for g in LABELS]},
                                     index=pd.Index(LABELS, name="group"))

    @property
    def summary(self):
        return self.summary_

    def cumulative_hazard(self, rows, group, since_survey_days, years):
        return np.tile(LAMBDA * HR[group] * np.asarray(years, float), (len(rows), 1))


def S(hr: float, t: float) -> float:
    return math.exp(-LAMBDA * hr * t)


def A(hr: float, t: int) -> float:
    return (S(hr, t - 1) + S(hr, t)) / 2


def net_by_hand(gm=GM, shares=(0.2, 0.1), ramp=(1.0,), rev=None, cost=None, hr=None, lever=None):
    """Yearly benefit (or one lever of it) of the two moves, years 1..H: the cohort moved at the start
    of year k + 1 is the share of the ramp made that year, of the customers of g still there."""
    rev, cost, hr = {**REV, **(rev or {})}, {**COST, **(cost or {})}, {**HR, **(hr or {})}
    out = [0.0] * H
    cum = [ramp[min(k, len(ramp) - 1)] for k in range(H)]
    new = [cum[0]] + [cum[k] - cum[k - 1] for k in range(1, H)]
    for (g, h), share in zip(MOVES, shares):
        m_g, m_h = gm * rev[g] - cost[g], gm * rev[h] - cost[h]
        for k in range(H):
            n = BASE[g] * share * new[k]
            for t in range(k + 1, H + 1):
                moved, stay = S(hr[g], k) * A(hr[h], t - k), A(hr[g], t)
                out[t - 1] += n * {None: m_h * moved - m_g * stay,
                                   "spend": gm * (rev[h] - rev[g]) * moved,
                                   "cost_to_serve": (cost[g] - cost[h]) * moved,
                                   "retention": m_g * (moved - stay),
                                   "revenue_change": rev[h] * moved - rev[g] * stay,
                                   "cost_to_serve_change": cost[h] * moved - cost[g] * stay}[lever]
    return out


def npv_by_hand(benefit, rate=RATE):
    return -ONE_OFF + sum((b - YEARLY) / (1 + rate) ** t for t, b in enumerate(benefit, start=1))


def _world(cost_fitted=True, churn_fitted=True):
    rows = pd.RangeIndex(6)
    history = pd.DataFrame({"group": pd.Categorical(["detractor", "detractor", "passive", "passive", "promoter",
                                                     "promoter"], categories=LABELS),
                            "churned": False, "duration_days": 100.0}, index=rows)
    revenue = _Rate(REV, REV_CI, rows)
    cost = _Rate(COST, COST_CI, rows)
    churn = _Churn()
    if not cost_fitted:
        cost.fitted, cost.skipped_ = False, "Cost to serve: no contacts."
        cost.summary_[["adjusted", "ratio", "ratio_lo", "ratio_hi"]] = np.nan
    if not churn_fitted:
        churn.fitted, churn.skipped_ = False, "Churn: nobody left."
        churn.summary_[["hazard_ratio", "hr_lo", "hr_hi"]] = np.nan
    days = 365.25 * np.arange(0, H + 1)
    curves = pd.DataFrame({"group": "passive", "days": days, "retained": np.exp(-LAMBDA * days / 365.25)})
    base = pd.Series(BASE)
    return revenue, cost, churn, curves, base, history


PARAMS = {"gross_margin": GM, "discount_rate": RATE, "horizon_years": H, "seed": 1, "currency": "EUR",
          "scenario": {"detractor_to_passive": 0.2, "passive_to_promoter": 0.1, "ramp_years": 1, "lag_years": 0,
                       "draws": 50, "one_off_cost": ONE_OFF, "yearly_cost": YEARLY, "target_score": None}}


@pytest.fixture()
def pinned_draws(monkeypatch):
    """Effect draws at the point estimates: every simulated NPV is the point NPV."""
    def effect_draws(model, n, seed):
        s = model.summary_
        point = (s["hazard_ratio"] if "hazard_ratio" in s else s["ratio"]).fillna(1.0)
        return pd.DataFrame({**{g: np.full(n, point[g]) for g in s.index}, "_level": np.ones(n)})

    monkeypatch.setattr(value, "effect_draws", effect_draws)


@pytest.fixture()
def case(pinned_draws):
    revenue, cost, churn, curves, base, history = _world()
    return bc.evaluate(revenue, cost, churn, curves, base, PARAMS, history=history)


def test_cash_flows_by_lever_by_hand(case):
    flows = case.cash_flows
    assert list(flows.index) == [0, 1, 2, 3]
    assert flows.loc[0, "cost"] == ONE_OFF and flows.loc[0, "net"] == -ONE_OFF and flows.loc[0, "benefit"] == 0
    for lever in ("spend", "cost_to_serve", "retention", "revenue_change", "cost_to_serve_change"):
        assert flows.loc[1:, lever].to_numpy() == pytest.approx(net_by_hand(lever=lever), rel=1e-12)
    assert (flows.loc[1:, "referrals"] == 0).all()
    assert flows.loc[1:, "benefit"].to_numpy() == pytest.approx(net_by_hand(), rel=1e-12)
    assert (flows.loc[1:, "cost"] == YEARLY).all()
    assert flows.loc[1:, "net"].to_numpy() == pytest.approx(np.array(net_by_hand()) - YEARLY, rel=1e-12)


def test_headline_figures_by_hand(case):
    benefit = net_by_hand()
    # year 1: 200 detractors as passives, 440 x A_p(1) = 440 x 0.909365 against 310 x A_d(1) = 310 x 0.835160, and
    # 200 passives as promoters, 570 x A_pro(1) = 570 x 0.952419 against 440 x 0.909365: 28,244 + 28,552
    assert benefit[0] == pytest.approx(28_244.2 + 28_551.6, abs=0.5)
    assert case.npv == pytest.approx(npv_by_hand(benefit), rel=1e-12)
    pv_benefit = sum(b / (1 + RATE) ** t for t, b in enumerate(benefit, start=1))
    pv_cost = ONE_OFF + sum(YEARLY / (1 + RATE) ** t for t in range(1, H + 1))
    assert case.roi == pytest.approx((pv_benefit - pv_cost) / pv_cost, rel=1e-12)
    net = [b - YEARLY for b in benefit]
    assert case.payback_months == pytest.approx(12 * ONE_OFF / net[0], rel=1e-12)  # paid back within year 1
    assert bc.npv(net, case.irr, ONE_OFF) == pytest.approx(0, abs=1e-6) and case.irr > 1
    # draws pinned at the point estimates: the whole distribution is the point NPV
    assert case.npv_draws == pytest.approx(np.full(50, case.npv), rel=1e-12)
    assert case.uncertainty == pytest.approx({"npv_p10": case.npv, "npv_p50": case.npv, "npv_p90": case.npv,
                                              "p_npv_positive": 1.0})
    assert case.moved == {"detractor->passive": 200.0, "passive->promoter": 200.0}


def test_context_clv_and_inputs_by_hand(case):
    base_revenue = sum(BASE[g] * REV[g] for g in LABELS)  # 3.2 million
    base_cost = sum(BASE[g] * COST[g] for g in LABELS)  # 160,000
    assert case.context["year"] == 3
    assert case.context["revenue_uplift"] == pytest.approx(net_by_hand(lever="revenue_change")[2] / base_revenue)
    assert case.context["cost_to_serve_change"] == pytest.approx(
        net_by_hand(lever="cost_to_serve_change")[2] / base_cost)
    assert case.context["guide_revenue_growth"] == [0.05, 0.10] and case.context["guide_cost_reduction"] == [0.15, 0.25]
    for g in LABELS:
        margin = GM * REV[g] - COST[g]
        assert case.clv.loc[g, "margin_per_year"] == pytest.approx(margin)
        assert case.clv.loc[g, "clv"] == pytest.approx(sum(margin * A(HR[g], t) / (1 + RATE) ** t for t in (1, 2, 3)))
    assert list(case.left_out) == ["referrals"]
    i = case.inputs
    assert i["reference"] == "passive"
    assert i["reference_survival"] == pytest.approx([S(1, 1), S(1, 2), S(1, 3)])
    assert i["moves"] == {("detractor", "passive"): 0.2, ("passive", "promoter"): 0.1}
    assert i["mover_moves"] == {("detractor", "detractor as passive"): 0.2, ("passive", "passive as promoter"): 0.1}
    assert i["ramp"] == [1.0] and i["referral_value"] == [0.0, 0.0, 0.0]
    assert (i["gross_margin"], i["discount_rate"], i["horizon_years"], i["one_off_cost"], i["yearly_cost"],
            i["lag_years"], i["currency"], i["target_score"]) == (GM, RATE, H, ONE_OFF, YEARLY, 0, "EUR", None)
    groups = i["groups"]
    assert list(groups.index) == LABELS and "survival" not in groups
    assert groups["customers"].to_dict() == BASE and groups["revenue"].to_dict() == REV
    assert groups["cost_to_serve"].to_dict() == COST and groups["hazard_ratio"].to_dict() == HR
    assert (groups["referrals"] == 0).all()
    movers = i["movers"]
    assert list(movers.index) == ["detractor", "detractor as passive", "passive", "passive as promoter"]
    assert list(movers["as_group"]) == ["detractor", "passive", "passive", "promoter"]
    assert list(movers["revenue"]) == [600.0, 800.0, 800.0, 1000.0]


def test_results_and_assumptions_by_hand(case):
    r = case.results()
    assert r["value"]["clv"] == pytest.approx(case.clv["clv"].to_dict())
    assert r["value"]["margin_per_year"] == pytest.approx({"detractor": 310.0, "passive": 440.0, "promoter": 570.0})
    b = r["business_case"]
    assert (b["npv"], b["roi"], b["payback_months"], b["irr"]) == (case.npv, case.roi, case.payback_months, case.irr)
    assert b["npv_p50"] == pytest.approx(case.npv) and b["p_npv_positive"] == 1.0
    assert [row["year"] for row in b["cash_flows"]] == [0, 1, 2, 3]
    year2 = b["cash_flows"][2]
    assert year2["benefit"] == pytest.approx(net_by_hand()[1]) and year2["cost"] == YEARLY
    assert year2["net"] == pytest.approx(net_by_hand()[1] - YEARLY)
    assert year2["spend"] == pytest.approx(net_by_hand(lever="spend")[1])
    assert year2["retention"] == pytest.approx(net_by_hand(lever="retention")[1])
    assert year2["referrals"] == 0.0
    assert b["customers_moved"] == case.moved and b["context"] == case.context
    assert b["referral_value"] == 0.0 and b["referral_value_by_year"] == [0.0, 0.0, 0.0]
    assert list(b["left_out"]) == ["referrals"]
    assert [s["assumption"] for s in b["sensitivity"]] == list(case.sensitivity["assumption"])
    a = b["assumptions"]
    assert a == case.assumptions()
    assert {k: a[k] for k in ("gross_margin", "margin_source", "discount_rate", "horizon_years", "one_off_cost",
                              "yearly_cost", "lag_years", "target_score", "currency", "reference_group")} == {
        "gross_margin": GM, "margin_source": "parameter", "discount_rate": RATE, "horizon_years": H,
        "one_off_cost": ONE_OFF, "yearly_cost": YEARLY, "lag_years": 0, "target_score": None, "currency": "EUR",
        "reference_group": "passive"}
    assert a["shares_moved"] == {"detractor->passive": 0.2, "passive->promoter": 0.1}
    assert a["ramp"] == [1.0] and a["referral_value_by_year"] == [0.0, 0.0, 0.0]
    assert a["conventions"].startswith("A move made in programme year k starts at the start of that year")
    assert "response_weights" not in a


def test_assumptions_keep_what_was_measured_and_turn_numpy_numbers_into_floats():
    a = bc.BusinessCase(clv=pd.DataFrame(), cash_flows=pd.DataFrame(), npv=0.0, roi=0.0, payback_months=None,
                        irr=None, uncertainty={}, npv_draws=None, moved={},
                        inputs={"gross_margin": np.float64(0.42), "margin_source": "transactions",
                                "response_weights": "auto", "horizon_years": np.int64(4), "reference": "passive",
                                "moves": {("d", "p"): np.float32(0.25), ("p", "p"): 1.0}, "ramp": [0.5, 1],
                                "referral_value": np.array([3.0, 2.0])}).assumptions()
    assert a["gross_margin"] == 0.42 and type(a["gross_margin"]) is float
    assert a["horizon_years"] == 4.0 and type(a["horizon_years"]) is float
    assert a["margin_source"] == "transactions" and a["response_weights"] == "auto"
    assert a["shares_moved"] == {"d->p": 0.25}  # a group's move to itself is no move
    assert a["ramp"] == [0.5, 1.0] and a["referral_value_by_year"] == [3.0, 2.0]
    assert "discount_rate" not in a and "currency" not in a


def test_tornado_by_hand(case):
    s = case.sensitivity.set_index("assumption")
    expected = {
        "Gross margin": ("45%", "75%", net_by_hand(gm=0.45), net_by_hand(gm=0.75), RATE),
        "Discount rate": ("12.5%", "7.5%", net_by_hand(), net_by_hand(), None),
        "Share of detractor moved": ("10%", "30%", net_by_hand(shares=(0.1, 0.1)), net_by_hand(shares=(0.3, 0.1)), RATE),
        "Share of passive moved": ("5%", "15%", net_by_hand(shares=(0.2, 0.05)), net_by_hand(shares=(0.2, 0.15)), RATE),
        "Years to full effect": ("2", "1", net_by_hand(ramp=(0.5, 1.0)), net_by_hand(), RATE),
        "Revenue effect, detractor": ("0.60", "0.90", net_by_hand(rev={"detractor": 600 * 0.6 / 0.75}),
                                      net_by_hand(rev={"detractor": 600 * 0.9 / 0.75}), RATE),
        "Revenue effect, promoter": ("1.10", "1.40", net_by_hand(rev={"promoter": 1000 * 1.1 / 1.25}),
                                     net_by_hand(rev={"promoter": 1000 * 1.4 / 1.25}), RATE),
        "Cost-to-serve effect, detractor": ("1.10", "1.40", net_by_hand(cost={"detractor": 50 * 1.1 / 1.25}),
                                            net_by_hand(cost={"detractor": 50 * 1.4 / 1.25}), RATE),
        "Cost-to-serve effect, promoter": ("0.60", "0.90", net_by_hand(cost={"promoter": 30 * 0.6 / 0.75}),
                                           net_by_hand(cost={"promoter": 30 * 0.9 / 0.75}), RATE),
        "Churn effect, detractor": ("1.50", "2.50", net_by_hand(hr={"detractor": 1.5}), net_by_hand(hr={"detractor": 2.5}),
                                    RATE),
        "Churn effect, promoter": ("0.30", "0.80", net_by_hand(hr={"promoter": 0.3}), net_by_hand(hr={"promoter": 0.8}),
                                   RATE),
    }
    assert sorted(s.index) == sorted(expected)
    for name, (low, high, flows_low, flows_high, rate) in expected.items():
        assert (s.loc[name, "low"], s.loc[name, "high"]) == (low, high), name
        if rate is None:  # the discount rate's low end is the higher rate
            npv_low, npv_high = npv_by_hand(flows_low, 0.125), npv_by_hand(flows_high, 0.075)
        else:
            npv_low, npv_high = npv_by_hand(flows_low, rate), npv_by_hand(flows_high, rate)
        assert s.loc[name, "npv_low"] == pytest.approx(npv_low, rel=1e-9), name
        assert s.loc[name, "npv_high"] == pytest.approx(npv_high, rel=1e-9), name
        assert s.loc[name, "swing"] == pytest.approx(abs(npv_high - npv_low), rel=1e-9), name
    assert list(case.sensitivity["swing"]) == sorted(case.sensitivity["swing"], reverse=True)
    # the stand-alone tornado is the case's
    revenue, cost, churn, curves, base, history = _world()
    alone = bc.sensitivity(revenue, cost, churn, curves, base, PARAMS, history=history)
    pd.testing.assert_frame_equal(alone, case.sensitivity)


def test_tornado_caps_the_margin_and_shares_at_everything():
    revenue, cost, churn, curves, base, history = _world()
    params = {**PARAMS, "gross_margin": 0.9,
              "scenario": {**PARAMS["scenario"], "detractor_to_passive": 0.8, "passive_to_promoter": 0.9,
                           "ramp_years": 3}}
    s = bc.sensitivity(revenue, cost, churn, curves, base, params, history=history).set_index("assumption")
    assert (s.loc["Gross margin", "high"], s.loc["Share of detractor moved", "high"],
            s.loc["Share of passive moved", "high"]) == ("100%", "100%", "100%")
    assert s.loc["Gross margin", "npv_high"] == pytest.approx(
        npv_by_hand(net_by_hand(gm=1.0, shares=(0.8, 0.9), ramp=(1 / 3, 2 / 3, 1.0))))
    assert s.loc["Share of detractor moved", "npv_high"] == pytest.approx(
        npv_by_hand(net_by_hand(gm=0.9, shares=(1.0, 0.9), ramp=(1 / 3, 2 / 3, 1.0))))
    assert s.loc["Share of passive moved", "npv_high"] == pytest.approx(
        npv_by_hand(net_by_hand(gm=0.9, shares=(0.8, 1.0), ramp=(1 / 3, 2 / 3, 1.0))))
    # three years to full effect: four at the slow end, two at the fast end
    assert (s.loc["Years to full effect", "low"], s.loc["Years to full effect", "high"]) == ("4", "2")
    assert s.loc["Years to full effect", "npv_low"] == pytest.approx(
        npv_by_hand(net_by_hand(gm=0.9, shares=(0.8, 0.9), ramp=(0.25, 0.5, 0.75))))
    assert s.loc["Years to full effect", "npv_high"] == pytest.approx(
        npv_by_hand(net_by_hand(gm=0.9, shares=(0.8, 0.9), ramp=(0.5, 1.0))))


def test_lag_ramp_and_target_score_reach_the_cash_flows(pinned_draws):
    revenue, cost, churn, curves, base, history = _world()
    # target NPS: today 100 x (1000 - 1000) / 4000 = 0; +15 points = 600 customers moved one group up, in the
    # ratio of the shares: k (0.2 x 1000 + 0.1 x 2000) = 600 -> k = 1.5, shares 0.3 and 0.15
    params = {**PARAMS, "scenario": {**PARAMS["scenario"], "ramp_years": 2, "lag_years": 1, "target_score": 15.0}}
    case = bc.evaluate(revenue, cost, churn, curves, base, params, history=history)
    assert case.inputs["ramp"] == [0.5, 1.0] and case.inputs["target_score"] == 15.0
    assert case.moved == pytest.approx({"detractor->passive": 300.0, "passive->promoter": 300.0})
    assert case.inputs["lag_years"] == 1 and case.assumptions()["lag_years"] == 1
    # a lag of one year: the benefit of a cohort moved in year k + 1 starts in year k + 2
    lagged = [0.0] * H
    for (g, h), share in zip(MOVES, (0.3, 0.15)):
        m_g, m_h = GM * REV[g] - COST[g], GM * REV[h] - COST[h]
        for k, part in ((0, 0.5), (1, 0.5)):
            e = k + 1
            for t in range(e + 1, H + 1):
                lagged[t - 1] += BASE[g] * share * part * (m_h * S(HR[g], e) * A(HR[h], t - e) - m_g * A(HR[g], t))
    assert case.cash_flows.loc[1:, "benefit"].to_numpy() == pytest.approx(lagged, rel=1e-12)
    assert case.cash_flows.loc[1, "benefit"] == 0
    # the tornado prices the scaled shares, not the target again
    assert case.sensitivity.set_index("assumption").loc["Share of detractor moved", "low"] == "15%"
    lagged_npv = case.sensitivity.set_index("assumption").loc["Share of passive moved", "npv_high"]
    assert lagged_npv != pytest.approx(case.sensitivity.set_index("assumption").loc["Share of passive moved", "npv_low"])
    # the high end moves 1.5 x the scaled 0.15 of the passives (0.225), not 1.5 x the 0.1 asked before scaling
    assert case.sensitivity.set_index("assumption").loc["Share of passive moved", "high"] in ("22%", "23%")


def test_a_skipped_cost_model_and_churn_model_are_priced_as_no_difference(pinned_draws):
    revenue, cost, churn, curves, base, history = _world(cost_fitted=False, churn_fitted=False)
    case = bc.evaluate(revenue, cost, churn, curves, base, PARAMS, history=history)
    assert case.left_out["cost_to_serve"] == "Cost to serve: no contacts."
    assert case.left_out["retention"] == "Churn: nobody left."
    assert set(case.left_out) == {"cost_to_serve", "retention", "referrals"}
    assert case.inputs["reference_survival"] == [1.0, 1.0, 1.0]
    groups = case.inputs["groups"]
    assert (groups["cost_to_serve"] == 0).all() and (groups["hazard_ratio"] == 1).all()
    # everyone stays and costs nothing: the benefit is the margin on the revenue gap, every year
    gap = 0.2 * 1000 * GM * (REV["passive"] - REV["detractor"]) + 0.1 * 2000 * GM * (REV["promoter"] - REV["passive"])
    assert case.cash_flows.loc[1:, "benefit"].to_numpy() == pytest.approx([gap] * H)
    assert (case.cash_flows.loc[1:, "retention"] == 0).all() and (case.cash_flows.loc[1:, "cost_to_serve"] == 0).all()
    assert case.clv.loc["passive", "clv"] == pytest.approx(GM * 800 * sum(1 / 1.1 ** t for t in (1, 2, 3)))


def test_a_group_without_respondents_or_movers_is_left_out_and_said_so(pinned_draws):
    revenue, cost, churn, curves, base, history = _world()
    revenue.summary_.loc["promoter", ["adjusted", "ratio", "ratio_lo", "ratio_hi"]] = np.nan
    case = bc.evaluate(revenue, cost, churn, curves, base, PARAMS, history=history)
    assert case.left_out["move passive to promoter"].startswith(
        "Moving customers from passive to promoter is left out: no respondent was in the promoter group")
    assert case.moved == {"detractor->passive": 200.0}
    assert case.inputs["moves"] == {("detractor", "passive"): 0.2}
    only_detractors = [200 * ((GM * 800 - 40) * A(1, t) - (GM * 600 - 50) * A(2, t)) for t in (1, 2, 3)]
    assert case.cash_flows.loc[1:, "benefit"].to_numpy() == pytest.approx(only_detractors)
    # nobody of the detractors is a customer today: nobody to move
    revenue, cost, churn, curves, base, history = _world()
    history.loc[history["group"] == "detractor", "churned"] = True
    case = bc.evaluate(revenue, cost, churn, curves, base, PARAMS, history=history)
    assert case.left_out["move detractor to passive"].startswith(
        "Moving customers from detractor to passive is left out: no respondent of the detractor group is still")
    assert case.moved == {"passive->promoter": 200.0}
    only_passives = [200 * ((GM * 1000 - 30) * A(0.5, t) - (GM * 800 - 40) * A(1, t)) for t in (1, 2, 3)]
    assert case.cash_flows.loc[1:, "benefit"].to_numpy() == pytest.approx(only_passives)


def test_a_group_whose_churn_could_not_be_estimated_churns_like_the_reference(pinned_draws):
    revenue, cost, churn, curves, base, history = _world()
    churn.summary_.loc["detractor", ["hazard_ratio", "hr_lo", "hr_hi"]] = np.nan
    case = bc.evaluate(revenue, cost, churn, curves, base, PARAMS, history=history)
    assert case.left_out["retention of detractor"] == (
        "The detractor group's churn could not be estimated (too few customers of it left), so the case prices "
        "it at the passive group's churn.")
    assert case.inputs["groups"].loc["detractor", "hazard_ratio"] == 1.0
    assert "Churn effect, detractor" not in set(case.sensitivity["assumption"])


def test_referral_values_are_the_mean_clv_over_the_years_left():
    """With a referral model, a referred customer joining in year t is worth the base's customer-weighted mean
    CLV over the H - t + 1 years left."""
    revenue, cost, churn, curves, base, history = _world()
    refs = _Rate({"detractor": 0.01, "passive": 0.02, "promoter": 0.05}, {}, history.index)
    pricing = bc._pricing(revenue, cost, churn, curves, base, H, refs, history)
    got = bc._referral_values(pricing, GM, RATE, H)
    total = sum(BASE.values())
    for t in (1, 2, 3):
        left = H - t + 1
        clv = {g: sum((GM * REV[g] - COST[g]) * A(HR[g], y) / (1 + RATE) ** y for y in range(1, left + 1))
               for g in LABELS}
        assert got[t - 1] == pytest.approx(sum(BASE[g] * clv[g] for g in LABELS) / total, rel=1e-12)
    assert list(pricing.groups["referrals"]) == [0.01, 0.02, 0.05]
    assert "referrals" not in pricing.left_out


def test_referral_value_weights_by_customers_and_skips_unknown_clv():
    clv = pd.DataFrame({"clv": [100.0, np.nan, 400.0, 50.0]}, index=["a", "b", "c", "d"])
    customers = pd.Series({"a": 3.0, "b": 5.0, "c": 1.0, "d": 0.0})
    assert bc._referral_value(clv, customers) == pytest.approx((3 * 100 + 400) / 4)
    assert bc._referral_value(clv.iloc[[1]], customers) == 0.0


def test_small_helpers_by_hand():
    assert bc._linear_ramp(1) == [1.0] and bc._linear_ramp(0) == [1.0]
    assert bc._linear_ramp(4) == [0.25, 0.5, 0.75, 1.0]
    assert list(bc._ramp_shares([0.5, 1.0], 3)) == [0.5, 0.5, 0.0]
    assert list(bc._ramp_shares([0.2], 2)) == [0.2, 0.0]
    assert list(bc._per_year(7, 3)) == [7.0, 7.0, 7.0] and list(bc._per_year([1, 2, 3, 4], 2)) == [1.0, 2.0]
    assert bc._first([5.0, 4.0]) == 5.0 and bc._first(None) is None and bc._first([]) is None
    assert bc._moves(["low", "mid", "high"], "mid", 0.3, 0.1) == {("low", "mid"): 0.3, ("mid", "high"): 0.1}
    flows = pd.DataFrame({"benefit": [5.0], "cost": [1.0], "net": [4.0]}, index=pd.RangeIndex(1, 2, name="year"))
    with_zero = bc._with_year_zero(flows, 300)
    assert list(with_zero.index) == [0, 1] and with_zero.index.name == "year"
    assert with_zero.loc[0].to_dict() == {"benefit": 0.0, "cost": 300.0, "net": -300.0}
    assert list(bc.customer_years([0.5])) == [0.75]


def test_relative_draws_leave_unmeasured_groups_at_one():
    d = pd.DataFrame({"a": [2.0, 4.0], "b": [3.0, 3.0], "c": [5.0, 5.0], "_level": [1.5, 0.5]})
    r = bc.relative_draws(d, pd.Series({"a": 2.0, "b": float("nan"), "c": 0.0}))
    assert list(r["a"]) == [1.0, 2.0] and list(r["b"]) == [1.0, 1.0] and list(r["c"]) == [1.0, 1.0]
    assert list(r["_level"]) == [1.5, 0.5]
    assert list(d["a"]) == [2.0, 4.0]  # the draws themselves are left alone


def test_npv_roi_payback_and_irr_edge_cases_by_hand():
    assert bc.npv([], 0.1, initial=5) == -5
    assert bc.npv([110.0], 0.1) == pytest.approx(100.0)
    assert bc.roi([110.0], [55.0], 0.1) == pytest.approx(1.0)  # PV 100 against PV 50
    assert math.isnan(bc.roi([100.0], [-10.0], 0.0))
    # nothing to pay back: no cost and a first year that is not negative
    assert bc.payback_months([0.0, 5.0]) == 0.0 and bc.payback_months([]) == 0.0
    assert bc.payback_months([120.0], initial=120.0) == pytest.approx(12.0)  # exactly even at the year's end
    assert bc.payback_months([-10.0, 5.0]) is None
    # -150 -> -50 after year 1 -> -100 after a negative year 2 -> 0 exactly at the end of year 3
    assert bc.payback_months([100.0, -50.0, 100.0], initial=150.0) == pytest.approx(36.0)
    assert bc.irr([110.0], initial=100.0) == pytest.approx(0.10, abs=1e-9)
    assert bc.irr([50.0], initial=100.0) == pytest.approx(-0.5, abs=1e-9)
    assert bc.irr([-10.0], initial=-5.0) == pytest.approx(1.0, abs=1e-9)  # 5 now, -10 in a year: 5 = 10 / (1 + r)
    assert bc.irr([0.0, 0.0], initial=100.0) is None  # never positive
    assert bc.irr([1.0], initial=1000.0) is None  # would need a rate below -99%


def test_summarise_npv_percentiles_by_hand():
    s = bc.summarise_npv([-30.0, -10.0, 10.0, 30.0, 50.0])
    # numpy's linear percentiles: p10 at position 0.4 -> -30 + 0.4 x 20 = -22; p90 at 3.6 -> 30 + 0.6 x 20 = 42
    assert s == pytest.approx({"npv_p10": -22.0, "npv_p50": 10.0, "npv_p90": 42.0, "p_npv_positive": 0.6})
    assert bc.summarise_npv([0.0, 0.0])["p_npv_positive"] == 0.0  # zero is not positive


def _bare_case(**inputs):
    return bc.BusinessCase(clv=pd.DataFrame(), cash_flows=pd.DataFrame(), npv=0.0, roi=0.0, payback_months=None,
                           irr=None, uncertainty={}, npv_draws=None, moved={}, inputs=inputs)


def test_group_value_per_year_without_referrals_by_hand():
    g = pd.DataFrame({"customers": [10.0, 20.0], "revenue": [800.0, 1000.0], "cost_to_serve": [60.0, 40.0],
                      "hazard_ratio": [2.0, 1.0]}, index=["detractor", "passive"])
    v = bc.group_value_per_year(_bare_case(groups=g, reference_survival=[0.8, 0.64], gross_margin=0.5,
                                           referral_value=[900.0, 100.0]))
    # no referral rates: margin x first-year customer-years, (0.5 x 800 - 60) x (1 + 0.8^2) / 2 and 460 x 0.9
    assert v.name == "value_per_year" and list(v.index) == ["detractor", "passive"]
    assert list(v) == pytest.approx([340.0 * 0.82, 460.0 * 0.9])


def test_value_at_stake_is_nan_without_movers_to_price():
    g = pd.DataFrame(index=["detractor", "passive", "promoter"])
    rows = pd.DataFrame({"customers": [10.0, 10.0], "revenue": [1.0, 2.0], "cost_to_serve": [0.0, 0.0],
                         "survival": [np.array([0.5]), np.array([0.9])]}, index=["detractor", "detractor as passive"])
    common = {"groups": g, "gross_margin": 0.5, "referral_value": [0.0]}
    # 10 detractors as passives: 0.5 x (2 x 0.95 - 1 x 0.75) each
    assert bc.value_at_stake(_bare_case(reference="passive", movers=rows, **common)) == pytest.approx(10 * 0.5 * 1.15)
    assert math.isnan(bc.value_at_stake(_bare_case(reference="detractor", movers=rows, **common)))  # nobody lower
    assert math.isnan(bc.value_at_stake(_bare_case(reference="passive", movers=None, **common)))
    assert math.isnan(bc.value_at_stake(_bare_case(reference="passive", movers=rows.iloc[:1], **common)))


def test_bare_case_results_and_assumptions_say_none_for_what_is_missing():
    flows = pd.DataFrame({"retention": [0.0, 1.0], "spend": [0.0, 2.0], "cost_to_serve": [0.0, 3.0],
                          "referrals": [0.0, 4.0], "benefit": [0.0, 10.0], "cost": [5.0, 1.0], "net": [-5.0, 9.0]},
                         index=pd.RangeIndex(0, 2, name="year"))
    clv = pd.DataFrame({"clv": [100.0, np.nan], "margin_per_year": [np.nan, 20.0]}, index=["low", "high"])
    case = bc.BusinessCase(clv=clv, cash_flows=flows, npv=4.0, roi=0.5, payback_months=6.0, irr=0.8,
                           uncertainty={}, npv_draws=None, moved={})
    r = case.results()
    assert r["value"] == {"clv": {"low": 100.0, "high": None}, "margin_per_year": {"low": None, "high": 20.0}}
    b = r["business_case"]
    assert b["sensitivity"] == [] and b["left_out"] == {} and b["context"] == {}
    assert b["referral_value"] is None and b["referral_value_by_year"] == []
    assert b["cash_flows"][1] == {"year": 1, "benefit": 10.0, "cost": 1.0, "net": 9.0, "retention": 1.0, "spend": 2.0,
                                  "cost_to_serve": 3.0, "referrals": 4.0}
    a = case.assumptions()
    assert a["ramp"] == [] and a["referral_value_by_year"] == [] and a["shares_moved"] == {}
    assert a["reference_group"] is None and a["margin_source"] == "parameter"


def test_draws_are_seeded_and_one_where_no_estimate_was_drawn():
    """Relative draws of a model with one coefficient (group[low]): the same seed gives the same draws, and
    each group is its draw over its point estimate; a group without a coefficient (an estimate the model
    could not make, priced as no difference) or without an estimate is 1 in every draw."""
    from types import SimpleNamespace

    class _Result:
        params = pd.Series({"const": np.log(100.0), "group[low]": np.log(0.8)})

        def cov_params(self):
            return pd.DataFrame([[0.0, 0.0], [0.0, 0.04]], index=self.params.index, columns=self.params.index)

    model = SimpleNamespace(result_=_Result(), reference_group="mid", fitted=True, reference_curve_se_=float("nan"),
                            summary_=pd.DataFrame(index=["low", "mid", "high", "gone"]))
    point = pd.Series({"low": 0.8, "mid": 1.0, "high": 1.3, "gone": np.nan})
    d = bc._draws(model, 200, 5, point)
    pd.testing.assert_frame_equal(d, bc._draws(model, 200, 5, point))
    raw = value.effect_draws(model, 200, 5)
    assert d["low"].to_numpy() == pytest.approx(raw["low"].to_numpy() / 0.8)
    assert d["low"].std() > 0.1  # drawn: sd of the log ratio 0.2
    assert (d["mid"] == 1.0).all() and (d["high"] == 1.0).all() and (d["gone"] == 1.0).all()
    assert (d["_level"] == 1.0).all()


def test_referral_value_aligns_the_customers_with_the_groups():
    clv = pd.DataFrame({"clv": [100.0, np.nan, 400.0, 50.0]}, index=["a", "b", "c", "d"])
    # d is not in the base today (weight 0, not 1), z has no CLV
    assert bc._referral_value(clv, pd.Series({"c": 1.0, "a": 3.0, "z": 100.0})) == pytest.approx((300 + 400) / 4)
    assert bc._referral_value(clv, pd.Series({"a": 0.0, "c": 0.0})) == 0.0  # nobody in the base


def test_sensitivity_passes_on_referrals_and_weights(pinned_draws):
    """The stand-alone tornado prices what the case prices: with a referral model and response weights it is the
    case's tornado, and both matter (the tornado without them differs)."""
    revenue, cost, churn, curves, base, history = _world()

    class _Sized(_Rate):  # each respondent's own level: the group's times the respondent's size
        def predict(self, group, rows=None):
            rows = self.design_.index if rows is None else rows
            return pd.Series(self.levels[group] * (1.0 + np.asarray(rows, float)), index=rows)

    revenue = _Sized(REV, REV_CI, history.index)
    refs = _Rate({"detractor": 0.01, "passive": 0.02, "promoter": 0.05}, {}, history.index)
    weights = pd.Series([1.0, 5.0, 1.0, 5.0, 1.0, 5.0], index=history.index)
    case = bc.evaluate(revenue, cost, churn, curves, base, PARAMS, refs, history=history, weights=weights)
    alone = bc.sensitivity(revenue, cost, churn, curves, base, PARAMS, refs, history=history, weights=weights)
    pd.testing.assert_frame_equal(alone, case.sensitivity)
    unweighted = bc.sensitivity(revenue, cost, churn, curves, base, PARAMS, refs, history=history)
    no_referrals = bc.sensitivity(revenue, cost, churn, curves, base, PARAMS, history=history, weights=weights)
    for other in (unweighted, no_referrals):
        assert other.set_index("assumption")["npv_low"].sort_index().to_numpy() != pytest.approx(
            alone.set_index("assumption")["npv_low"].sort_index().to_numpy(), rel=1e-6)


def test_every_set_of_draws_and_the_referral_values_reach_the_simulation(monkeypatch):
    revenue, cost, churn, curves, base, history = _world()
    refs = _Rate({"detractor": 0.01, "passive": 0.02, "promoter": 0.05}, {}, history.index)

    def draws_scaled(kind, group, factor):
        def effect_draws(model, n, seed):
            s = model.summary_
            point = (s["hazard_ratio"] if "hazard_ratio" in s else s["ratio"]).fillna(1.0)
            scale = {g: (factor if g == group and model is kind else 1.0) for g in s.index}
            return pd.DataFrame({**{g: np.full(n, point[g] * scale[g]) for g in s.index}, "_level": np.ones(n)})
        return effect_draws

    # draws at the point estimates: with a referral model the simulated NPVs are still the case's NPV, so the
    # referral values reach both the cash flows and the simulation
    monkeypatch.setattr(value, "effect_draws", draws_scaled(None, None, 1.0))
    case = bc.evaluate(revenue, cost, churn, curves, base, PARAMS, refs, history=history)
    assert (case.cash_flows.loc[1:, "referrals"] > 0).all()
    ref_value = case.inputs["referral_value"]
    n = 200
    by_hand = [n * ref_value[t - 1] * (0.02 * A(1, t) - 0.01 * A(2, t)) + n * ref_value[t - 1] * (0.05 * A(0.5, t) - 0.02 * A(1, t))
               for t in (1, 2, 3)]
    assert case.cash_flows.loc[1:, "referrals"].to_numpy() == pytest.approx(by_hand, rel=1e-12)
    assert case.npv_draws == pytest.approx(np.full(50, case.npv), rel=1e-9)
    # churn draws 1.5 times the detractors' hazard ratio: every draw is the NPV with HR 3 for the detractors
    monkeypatch.setattr(value, "effect_draws", draws_scaled(churn, "detractor", 1.5))
    drawn = bc.evaluate(revenue, cost, churn, curves, base, PARAMS, history=history).npv_draws
    assert drawn == pytest.approx(np.full(50, npv_by_hand(net_by_hand(hr={"detractor": 3.0}))), rel=1e-9)
    # referral draws twice the promoters' rate: the simulation moves with them
    monkeypatch.setattr(value, "effect_draws", draws_scaled(refs, "promoter", 2.0))
    drawn = bc.evaluate(revenue, cost, churn, curves, base, PARAMS, refs, history=history).npv_draws
    assert drawn[0] > case.npv + 1.0


def test_no_revenue_in_the_base_leaves_the_revenue_uplift_undefined(pinned_draws):
    revenue, cost, churn, curves, base, history = _world()
    revenue = _Rate({g: 0.0 for g in LABELS}, {}, history.index)
    case = bc.evaluate(revenue, cost, churn, curves, base, PARAMS, history=history)
    assert math.isnan(case.context["revenue_uplift"])
    assert case.context["cost_to_serve_change"] == pytest.approx(
        net_by_hand(rev={g: 0.0 for g in LABELS}, lever="cost_to_serve_change")[2] / sum(BASE[g] * COST[g] for g in LABELS))


# --------------------------------------------------------------------------- second pass (2026-12-03)


def test_each_model_s_draws_have_their_own_seed_and_the_run_s_number(monkeypatch):
    """The four sets of effect draws are seeded apart, from the run's seed (revenue ``seed``, cost to serve
    ``seed + 1``, churn ``seed + 2``, referrals ``seed + 3``): a re-run gives the same percentiles, and no two
    models draw from the same stream (their effects would move in lockstep instead of independently)."""
    revenue, cost, churn, curves, base, history = _world()
    refs = _Rate({"detractor": 0.01, "passive": 0.02, "promoter": 0.05}, {}, history.index)
    seen = []

    def effect_draws(model, n, seed):
        seen.append((model, n, seed))
        s = model.summary_
        point = (s["hazard_ratio"] if "hazard_ratio" in s else s["ratio"]).fillna(1.0)
        return pd.DataFrame({**{g: np.full(n, point[g]) for g in s.index}, "_level": np.ones(n)})

    monkeypatch.setattr(value, "effect_draws", effect_draws)
    params = {**PARAMS, "seed": 11, "scenario": {**PARAMS["scenario"], "draws": 7}}
    case = bc.evaluate(revenue, cost, churn, curves, base, params, refs, history=history)
    assert [(m, n, s) for m, n, s in seen] == [(revenue, 7, 11), (cost, 7, 12), (churn, 7, 13), (refs, 7, 14)]
    assert all(type(s) is int for _, _, s in seen)
    assert len(case.npv_draws) == 7
    seen.clear()
    bc.evaluate(revenue, cost, churn, curves, base, params, history=history)
    assert [(m, s) for m, _, s in seen] == [(revenue, 11), (cost, 12), (churn, 13)]  # no referral model, no draws


def _lever_case(sensitivity=True, **inputs):
    """A bare case of three years (one-off 100, 5 a year, retention 10, 20, 30) and three NPV draws."""
    flows = pd.DataFrame({"retention": [0.0, 10.0, 20.0, 30.0], "spend": 0.0, "cost_to_serve": 0.0, "referrals": 0.0,
                          "failure_demand": 0.0}, index=pd.RangeIndex(0, 4, name="year"))
    flows["benefit"] = flows["retention"]
    flows["cost"] = [100.0, 5.0, 5.0, 5.0]
    flows["net"] = flows["benefit"] - flows["cost"]
    sens = pd.DataFrame({"assumption": ["Gross margin", "Discount rate"], "low": ["a", "b"], "high": ["c", "d"],
                         "npv_low": [-50.0, 0.0], "npv_high": [50.0, 1.0], "swing": [100.0, 1.0]})
    return bc.BusinessCase(clv=pd.DataFrame(), cash_flows=flows, npv=-99.0, roi=0.0, payback_months=None, irr=None,
                           uncertainty={}, npv_draws=np.array([1.0, 2.0, 3.0]), moved={},
                           sensitivity=sens if sensitivity else None,
                           context={"year": 2, "cost_to_serve_change": 0.5}, inputs=inputs)


LEVER_PARAMS = {"horizon_years": 3, "discount_rate": 0.1, "seed": 3,
                "scenario": {"ramp_years": 2, "lag_years": 1, "one_off_cost": 100.0}}


def test_a_yearly_lever_by_hand():
    """Ramp over two years and a one-year lag: the lever is in place 0, 1/2 and all of it in years 1-3, so 40 a
    year brings 0, 20, 40; every headline figure is recomputed from the new flows."""
    groups = pd.DataFrame({"customers": [10.0, 20.0], "cost_to_serve": [1.0, 2.0]}, index=["a", "b"])
    case = _lever_case(groups=groups, other="kept")
    out = bc.add_yearly_lever(case, "failure_demand", 40, np.full(5, 40.0), LEVER_PARAMS, {"reasons": ["x"]},
                              label="Lever", cost_saved_per_year=8.0)
    f = out.cash_flows
    assert f["failure_demand"].tolist() == [0.0, 0.0, 20.0, 40.0]
    assert f["benefit"].tolist() == [0.0, 10.0, 40.0, 70.0] and f["cost"].tolist() == [100.0, 5.0, 5.0, 5.0]
    assert f["net"].tolist() == [-100.0, 5.0, 35.0, 65.0]
    assert case.cash_flows["failure_demand"].tolist() == [0.0] * 4  # the case itself is left alone
    assert out.npv == pytest.approx(-100 + 5 / 1.1 + 35 / 1.21 + 65 / 1.331, rel=1e-12)
    pv_c = 100 + 5 / 1.1 + 5 / 1.21 + 5 / 1.331
    assert out.roi == pytest.approx((10 / 1.1 + 40 / 1.21 + 70 / 1.331 - pv_c) / pv_c, rel=1e-12)
    assert out.payback_months == pytest.approx(24 + 12 * 60 / 65, rel=1e-12)  # -100, -95, -60, +5
    assert bc.npv([5.0, 35.0, 65.0], out.irr, 100.0) == pytest.approx(0.0, abs=1e-6)
    pv = 40 * (0.5 / 1.21 + 1 / 1.331)
    assert out.npv_draws == pytest.approx([1 + pv, 2 + pv, 3 + pv], rel=1e-12)
    assert out.uncertainty == pytest.approx(bc.summarise_npv([1 + pv, 2 + pv, 3 + pv]))
    s = out.sensitivity
    assert list(s["assumption"]) == ["Gross margin", "Lever", "Discount rate"]  # by swing: 100, 40 x pv / 40, 1
    assert s.loc[0, ["npv_low", "npv_high", "swing"]].tolist() == pytest.approx([-50 + pv, 50 + pv, 100.0])
    assert s.loc[2, ["npv_low", "npv_high", "swing"]].tolist() == pytest.approx([pv, 1 + pv, 1.0])
    assert s.loc[1, ["low", "high"]].tolist() == ["half the value", "1.5 times the value"]
    assert s.loc[1, ["npv_low", "npv_high", "swing"]].tolist() == pytest.approx(
        [out.npv - pv / 2, out.npv + pv / 2, pv], rel=1e-12)
    assert list(s.index) == [0, 1, 2]
    assert list(case.sensitivity["npv_low"]) == [-50.0, 0.0]  # the case's tornado is left alone
    assert out.inputs["failure_demand"] == {"reasons": ["x"], "value_per_year": 40.0, "achieved_by_year": [0.0, 0.5, 1.0]}
    assert type(out.inputs["failure_demand"]["value_per_year"]) is float
    assert out.inputs["other"] == "kept" and "failure_demand" not in case.inputs
    # 8 of cost saved once in place, half in place in the context year (2), against a base cost of 10 + 40
    assert out.context == pytest.approx({"year": 2, "cost_to_serve_change": 0.5 - 8 * 0.5 / 50})
    assert case.context["cost_to_serve_change"] == 0.5


def test_a_yearly_lever_s_defaults_and_corners():
    case = _lever_case(sensitivity=False)
    out = bc.add_yearly_lever(case, "failure_demand", 40.0, [40.0], LEVER_PARAMS)
    assert out.sensitivity is None and out.context == case.context
    assert out.inputs == {"failure_demand": {"value_per_year": 40.0, "achieved_by_year": [0.0, 0.5, 1.0]}}
    named = bc.add_yearly_lever(_lever_case(), "failure_demand", 40.0, [40.0], LEVER_PARAMS).sensitivity
    assert "Value of the failure demand lever" in set(named["assumption"])
    # no groups, no context year, or a base that costs nothing: the cost saved changes no context
    groups = pd.DataFrame({"customers": [10.0], "cost_to_serve": [0.0]}, index=["a"])
    for c in (_lever_case(), _lever_case(groups=groups)):
        assert bc.add_yearly_lever(c, "failure_demand", 40.0, [40.0], LEVER_PARAMS,
                                   cost_saved_per_year=8.0).context["cost_to_serve_change"] == 0.5
    # cost saved only when given: a base with a cost and a context year, and no cost saved, keeps the context
    costly = _lever_case(groups=pd.DataFrame({"customers": [10.0], "cost_to_serve": [5.0]}, index=["a"]))
    assert bc.add_yearly_lever(costly, "failure_demand", 40.0, [40.0], LEVER_PARAMS).context == costly.context
    no_year = _lever_case(groups=pd.DataFrame({"customers": [10.0], "cost_to_serve": [5.0]}, index=["a"]))
    no_year.context = {"cost_to_serve_change": 0.5}
    assert bc.add_yearly_lever(no_year, "failure_demand", 40.0, [40.0], LEVER_PARAMS,
                               cost_saved_per_year=8.0).context == {"cost_to_serve_change": 0.5}


def test_a_yearly_lever_s_draws_are_resampled_with_the_run_s_seed():
    """Each NPV draw adds the present value of one of the lever's draws, picked with replacement (three NPV draws
    from two lever draws) by a generator seeded with the run's seed and 7."""
    pvf = 0.5 / 1.21 + 1 / 1.331
    values = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0])
    out = bc.add_yearly_lever(_lever_case(), "failure_demand", 40.0, values, LEVER_PARAMS)
    picked = np.random.default_rng([3, 7]).choice(values, size=3, replace=True)
    assert picked.tolist() == [40.0, 50.0, 70.0]  # three different picks: each draw has its own
    assert out.npv_draws == pytest.approx(np.array([1.0, 2.0, 3.0]) + picked * pvf, rel=1e-12)
    # more NPV draws than lever draws: picked with replacement
    two = bc.add_yearly_lever(_lever_case(), "failure_demand", 40.0, [10.0, 70.0], LEVER_PARAMS).npv_draws
    assert set(np.round((two - np.array([1.0, 2.0, 3.0])) / pvf, 9)) <= {10.0, 70.0}
    for p in ({**LEVER_PARAMS, "seed": 4},):
        other = np.random.default_rng([4, 7]).choice(values, size=3, replace=True)
        assert bc.add_yearly_lever(_lever_case(), "failure_demand", 40.0, values, p).npv_draws == pytest.approx(
            np.array([1.0, 2.0, 3.0]) + other * pvf, rel=1e-12)
    # a single lever draw: every NPV draw moves by the same present value (with replacement: 3 from 1)
    one = bc.add_yearly_lever(_lever_case(), "failure_demand", 40.0, [25.0], LEVER_PARAMS)
    assert one.npv_draws == pytest.approx([1 + 25 * pvf, 2 + 25 * pvf, 3 + 25 * pvf], rel=1e-12)


def test_achieved_by_year_and_the_ramp_edges_by_hand():
    assert bc.achieved_by_year([0.5, 1.0], 0, 3).tolist() == [0.5, 1.0, 1.0]
    assert bc.achieved_by_year([0.5, 1.0], 1, 3).tolist() == [0.0, 0.5, 1.0]
    assert bc.achieved_by_year([0.5, 1.0], 2, 3).tolist() == [0.0, 0.0, 0.5]
    assert bc.achieved_by_year([0.5, 1.0], 3, 3).tolist() == [0.0, 0.0, 0.0]
    assert bc.achieved_by_year([0.25, 0.5, 0.75, 1.0], 0, 2).tolist() == [0.25, 0.5]
    assert bc.achieved_by_year([1.0], 1.0, 2.0).tolist() == [0.0, 1.0]  # whole numbers given as floats
    assert bc._linear_ramp(2.0) == [0.5, 1.0] and bc._linear_ramp(-1) == [1.0] and bc._linear_ramp(3) == [1 / 3, 2 / 3, 1.0]
    assert bc._ramp_shares([0.5, 0.75], 4).tolist() == [0.5, 0.25, 0.0, 0.0]
    assert bc._ramp_shares([0.3, 0.6, 1.0], 2).tolist() == pytest.approx([0.3, 0.3])


def test_the_case_shows_itself_in_a_notebook(case):
    html = case._repr_html_()
    assert html.startswith("<h4>Business case</h4><p>NPV ") and "Not fitted" not in html


class _Purchases:
    """A fitted purchase model's stand-in: the toy's revenue ratios as purchase-rate ratios and its hazard ratios
    as dropout ratios, with their intervals."""

    reference_group = "passive"

    def __init__(self):
        self.summary_ = pd.DataFrame({
            "purchase_rate_ratio": [REV[g] / REV["passive"] for g in LABELS],
            "purchase_rate_ratio_lo": [REV_CI.get(g, (1.0, 1.0))[0] for g in LABELS],
            "purchase_rate_ratio_hi": [REV_CI.get(g, (1.0, 1.0))[1] for g in LABELS],
            "dropout_ratio": [HR[g] for g in LABELS],
            "dropout_ratio_lo": [HR_CI.get(g, (1.0, 1.0))[0] for g in LABELS],
            "dropout_ratio_hi": [HR_CI.get(g, (1.0, 1.0))[1] for g in LABELS]}, index=pd.Index(LABELS, name="group"))


@pytest.fixture()
def non_contractual(monkeypatch, pinned_draws):
    """cxvalue.purchases' pricing replaced by the toy world's answers: each group (and each mover row, as it is
    and as the group it moves to) at the group's revenue and cost, buying left ``S_g(t)``; every call recorded."""
    from cxvalue import purchases as pm

    calls = {"missing": set()}

    def survival(g):
        return np.array([S(HR[g], t) for t in range(1, H + 1)])

    def group_rows(model, cost_to_serve, base_customers, horizon_years):
        calls["group_rows"] = (model, cost_to_serve, base_customers, horizon_years)
        fitted = cost_to_serve is not None and cost_to_serve.fitted
        return pd.DataFrame({"customers": [BASE[g] for g in LABELS],
                             "revenue": [np.nan if g in calls["missing"] else REV[g] for g in LABELS],
                             "survival": [survival(g) for g in LABELS],
                             "cost_to_serve": [COST[g] if fitted else 0.0 for g in LABELS], "referrals": 0.0,
                             "hazard_ratio": [HR[g] for g in LABELS]}, index=LABELS)

    def pricing_rows(model, hist, cost_to_serve, moves, base_customers, horizon_years, weights=None):
        calls["pricing_rows"] = (model, hist, cost_to_serve, moves, base_customers, horizon_years, weights)
        fitted = cost_to_serve is not None and cost_to_serve.fitted
        out = {}
        for g, h in moves:
            for as_group in (g, h):
                out[g if as_group == g else f"{g} as {as_group}"] = {
                    "customers": BASE[g], "as_group": as_group, "revenue": REV[as_group],
                    "cost_to_serve": COST[as_group] if fitted else 0.0, "referrals": 0.0,
                    "hazard_ratio": HR[as_group], "survival": survival(as_group)}
        return pd.DataFrame.from_dict(out, orient="index")

    def effect_draws(model, n, seed):
        calls["effect_draws"] = (model, n, seed)
        ones = pd.DataFrame({**{g: np.ones(n) for g in LABELS}, "_level": np.ones(n)})
        return ones, ones.copy()

    monkeypatch.setattr(pm, "group_rows", group_rows)
    monkeypatch.setattr(pm, "pricing_rows", pricing_rows)
    monkeypatch.setattr(pm, "effect_draws", effect_draws)
    return calls


def test_non_contractual_case_by_hand(non_contractual):
    """Buying left after each year plays the part of survival: with the toy's curves the case is the toy's case,
    its tornado the toy's tornado under the purchase model's names."""
    revenue, cost, churn, curves, base, history = _world()
    purchases = _Purchases()
    weights = pd.Series(1.0, index=history.index)
    params = {**PARAMS, "seed": 11, "scenario": {**PARAMS["scenario"], "draws": 7}}
    case = bc.evaluate_non_contractual(purchases, cost, base, params, history=history, weights=weights)
    calls = non_contractual
    assert calls["group_rows"][0] is purchases and calls["group_rows"][1] is cost
    assert calls["group_rows"][2] is base and calls["group_rows"][3] == H
    model, hist, cost_model, moves, customers, horizon, w = calls["pricing_rows"]
    assert model is purchases and hist is history and cost_model is cost and w is weights and horizon == H
    assert moves == [("detractor", "passive"), ("passive", "promoter")]
    assert customers.to_dict() == BASE
    assert calls["effect_draws"] == (purchases, 7, 11)
    flows = case.cash_flows
    for lever in ("spend", "cost_to_serve", "retention", "revenue_change", "cost_to_serve_change"):
        assert flows.loc[1:, lever].to_numpy() == pytest.approx(net_by_hand(lever=lever), rel=1e-12)
    assert flows.loc[1:, "benefit"].to_numpy() == pytest.approx(net_by_hand(), rel=1e-12)
    assert case.npv == pytest.approx(npv_by_hand(net_by_hand()), rel=1e-12)
    assert case.npv_draws == pytest.approx(np.full(7, case.npv), rel=1e-12)
    assert case.moved == {"detractor->passive": 200.0, "passive->promoter": 200.0}
    assert case.left_out == {
        "referrals": "Referrals are not priced for customers who never cancel (non-contractual mode) yet."}
    assert case.inputs["business_model"] == "non_contractual" and case.inputs["reference"] == "passive"
    assert case.inputs["reference_survival"] == pytest.approx([S(1, t) for t in (1, 2, 3)], rel=1e-12)
    assert case.inputs["referral_value"] == [0.0, 0.0, 0.0]
    assert case.inputs["first_year"].to_dict() == pytest.approx({g: (1 + S(HR[g], 1)) / 2 for g in LABELS})
    assert bc.group_value_per_year(case).to_dict() == pytest.approx(
        {g: (GM * REV[g] - COST[g]) * (1 + S(HR[g], 1)) / 2 for g in LABELS}, rel=1e-12)
    for g in LABELS:
        margin = GM * REV[g] - COST[g]
        assert case.clv.loc[g].to_dict() == pytest.approx({
            "margin_per_year": margin, "retention_year_1": S(HR[g], 1),
            "clv": sum(margin * A(HR[g], t) / (1 + RATE) ** t for t in (1, 2, 3))}, rel=1e-12)
    assert list(case.clv.index) == LABELS and case.clv.index.name == "group"
    s = case.sensitivity.set_index("assumption")
    expected = {
        "Purchase-rate effect, detractor": ("0.60", "0.90", {"rev": {"detractor": 600 * 0.6 / 0.75}},
                                            {"rev": {"detractor": 600 * 0.9 / 0.75}}),
        "Purchase-rate effect, promoter": ("1.10", "1.40", {"rev": {"promoter": 1000 * 1.1 / 1.25}},
                                           {"rev": {"promoter": 1000 * 1.4 / 1.25}}),
        "Cost-to-serve effect, detractor": ("1.10", "1.40", {"cost": {"detractor": 50 * 1.1 / 1.25}},
                                            {"cost": {"detractor": 50 * 1.4 / 1.25}}),
        "Cost-to-serve effect, promoter": ("0.60", "0.90", {"cost": {"promoter": 30 * 0.6 / 0.75}},
                                           {"cost": {"promoter": 30 * 0.9 / 0.75}}),
        "Dropout effect, detractor": ("1.50", "2.50", {"hr": {"detractor": 1.5}}, {"hr": {"detractor": 2.5}}),
        "Dropout effect, promoter": ("0.30", "0.80", {"hr": {"promoter": 0.3}}, {"hr": {"promoter": 0.8}}),
    }
    assert sorted(s.index) == sorted(["Gross margin", "Discount rate", "Share of detractor moved",
                                      "Share of passive moved", "Years to full effect", *expected])
    for name, (low, high, at_low, at_high) in expected.items():
        assert (s.loc[name, "low"], s.loc[name, "high"]) == (low, high), name
        assert s.loc[name, "npv_low"] == pytest.approx(npv_by_hand(net_by_hand(**at_low)), rel=1e-9), name
        assert s.loc[name, "npv_high"] == pytest.approx(npv_by_hand(net_by_hand(**at_high)), rel=1e-9), name


def test_non_contractual_case_without_a_cost_model_or_a_group_s_revenue(non_contractual):
    revenue, cost, churn, curves, base, history = _world()
    purchases = _Purchases()
    non_contractual["missing"].add("promoter")
    case = bc.evaluate_non_contractual(purchases, None, base, PARAMS, history=history)
    assert non_contractual["pricing_rows"][3] == [("detractor", "passive")]
    assert non_contractual["pricing_rows"][6] is None  # no weights
    assert case.left_out == {
        "referrals": "Referrals are not priced for customers who never cancel (non-contractual mode) yet.",
        "cost_to_serve": "Cost to serve could not be measured.",
        "move passive to promoter": ("Moving customers from passive to promoter is left out: no respondent was in "
                                     "the promoter group, so what its customers are worth is unknown.")}
    assert case.clv.loc["promoter"].isna().all() and case.clv.loc["passive", "margin_per_year"] == GM * 800
    only_detractors = [200 * (GM * 800 * A(1, t) - GM * 600 * A(2, t)) for t in (1, 2, 3)]
    assert case.cash_flows.loc[1:, "benefit"].to_numpy() == pytest.approx(only_detractors, rel=1e-12)
    assert not any(a.startswith("Cost-to-serve effect") for a in case.sensitivity["assumption"])
    # a cost model that was skipped: its own reason, and no cost draws
    cost.fitted, cost.skipped_ = False, "Cost to serve: no contacts."
    case = bc.evaluate_non_contractual(purchases, cost, base, PARAMS, history=history)
    assert case.left_out["cost_to_serve"] == "Cost to serve: no contacts."
    cost.skipped_ = None
    case = bc.evaluate_non_contractual(purchases, cost, base, PARAMS, history=history)
    assert case.left_out["cost_to_serve"] == "Cost to serve could not be measured."


def test_target_score_edges_and_messages_word_for_word():
    """Today 1,000 of each end group and 2,000 passives: net score 0; each point of k (0.2 x 1,000 + 0.1 x 2,000
    customers one group up, of 4,000) adds 10 points."""
    from cxvalue.exceptions import ParameterError

    labels = ["detractor", "passive", "promoter"]
    customers = pd.Series({"passive": 2000.0, "promoter": 1000.0, "detractor": 1000.0, "other": 5000.0})
    sc = {"detractor_to_passive": 0.2, "passive_to_promoter": 0.1}
    assert bc.scenario_shares(sc, customers, labels, "passive") == (0.2, 0.1)  # no target_score key at all
    assert bc.scenario_shares({**sc, "target_score": 30.0}, customers, labels, "passive") == pytest.approx((0.6, 0.3))
    assert bc.scenario_shares({**sc, "target_score": 50.0}, customers, labels, "passive") == (1.0, 0.5)  # all of them
    # the reference group is the one the second share moves, whichever its place
    # (k adds 100 x (0.2 x 1000 + 0.1 x 1000) / 4000 = 7.5 points: 30 needs k = 4)
    assert bc.scenario_shares({**sc, "target_score": 30.0}, customers, labels, "promoter") == pytest.approx((0.8, 0.4))
    # a group missing from the base counts 0 customers: today 100 x (1000 - 0) / 3000 = 33.3, and k adds
    # 100 x 0.1 x 2000 / 3000 = 6.67 points: 50 needs k = 2.5
    d2p, p2p = bc.scenario_shares({**sc, "target_score": 50.0}, customers.drop("detractor"), labels, "passive")
    assert (d2p, p2p) == pytest.approx((0.5, 0.25))
    with pytest.raises(ParameterError) as e:
        bc.scenario_shares({**sc, "target_score": 0.0}, customers, labels, "passive")
    assert str(e.value) == ("scenario.target_score = 0: today's net score is already 0.0; set a higher target or "
                            "leave it empty")
    with pytest.raises(ParameterError) as e:
        bc.scenario_shares({**sc, "target_score": -2.5}, customers, labels, "passive")
    assert str(e.value) == ("scenario.target_score = -2.5: today's net score is already 0.0; set a higher target or "
                            "leave it empty")
    with pytest.raises(ParameterError) as e:
        bc.scenario_shares({"detractor_to_passive": 0.0, "passive_to_promoter": 0.0, "target_score": 10.0}, customers,
                           labels, "passive")
    assert str(e.value) == ("scenario.target_score: both shares are 0, so no customer moves; set "
                            "scenario.detractor_to_passive or scenario.passive_to_promoter above 0")
    with pytest.raises(ParameterError) as e:
        bc.scenario_shares({**sc, "target_score": 50.5}, customers, labels, "passive")
    assert str(e.value) == ("scenario.target_score = 50.5 cannot be reached from today's 0.0 by moving customers one "
                            "group up in the ratio of the two shares (it would need more than the whole group); lower "
                            "the target or change the shares' ratio")
    # the passives' share alone over the whole group
    with pytest.raises(ParameterError, match="cannot be reached"):
        bc.scenario_shares({"detractor_to_passive": 0.01, "passive_to_promoter": 0.5, "target_score": 95.0},
                           customers, labels, "passive")


def test_scenario_inputs_by_hand():
    """Only the reference group's curve prices the case; a group missing from the base has no customers; what a
    model could not measure is priced as no difference and said so, word for word."""
    revenue, cost, churn, curves, base, history = _world()
    other = pd.DataFrame({"group": "detractor", "days": curves["days"], "retained": 0.1})
    curves = pd.concat([other, curves], ignore_index=True)
    curves["group"] = pd.Categorical(curves["group"], categories=LABELS)
    cost.summary_.loc["promoter", "adjusted"] = np.nan
    refs = _Rate({"detractor": 0.01, "passive": 0.02, "promoter": 0.05}, {}, history.index)
    refs.summary_.loc["detractor", "adjusted"] = np.nan
    reference, labels, ref_curve, s_ref, groups, left_out = bc._scenario_inputs(
        revenue, cost, churn, curves, base.drop("promoter"), H, refs)
    assert reference == "passive" and labels == LABELS
    assert list(ref_curve["group"].astype(str)) == ["passive"] * (H + 1)
    assert s_ref == pytest.approx([S(1, t) for t in (1, 2, 3)], rel=1e-12)
    assert groups["customers"].tolist() == [1000.0, 2000.0, 0.0] and groups["customers"].dtype == float
    assert groups["revenue"].tolist() == [600.0, 800.0, 1000.0]
    assert groups["cost_to_serve"].tolist() == [50.0, 40.0, 0.0]
    assert groups["referrals"].tolist() == [0.0, 0.02, 0.05] and groups["hazard_ratio"].tolist() == [2.0, 1.0, 0.5]
    assert list(groups.columns) == ["customers", "revenue", "cost_to_serve", "referrals", "hazard_ratio"]
    assert left_out == {}
    # no referral model, and a fitted churn model without a curve for the reference group
    reference, labels, ref_curve, s_ref, groups, left_out = bc._scenario_inputs(
        revenue, cost, churn, other, base, H)
    assert len(ref_curve) == 0 and list(s_ref) == [1.0, 1.0, 1.0]
    assert (groups["referrals"] == 0.0).all()
    assert left_out == {"retention": "Churn could not be measured.",
                        "referrals": ("No customer was referred by a respondent after their survey (referred_by), so "
                                      "the case has no referrals lever.")}
    # a group whose churn could not be estimated is said so only when it is priced at all (has a revenue)
    revenue.summary_.loc["promoter", "adjusted"] = np.nan
    churn.summary_.loc[["detractor", "promoter"], "hazard_ratio"] = np.nan
    left_out = bc._scenario_inputs(revenue, cost, churn, curves, base, H, refs)[5]
    assert left_out == {"retention of detractor": (
        "The detractor group's churn could not be estimated (too few customers of it left), so the case prices it at "
        "the passive group's churn.")}
    # a skipped churn model: nothing said about each group, its own reason for the lever
    churn.fitted, churn.skipped_ = False, "Churn: nobody left."
    groups, left_out = bc._scenario_inputs(revenue, cost, churn, curves, base, H, refs)[4:]
    assert left_out == {"retention": "Churn: nobody left."} and groups["hazard_ratio"].tolist() == [1.0, 1.0, 1.0]


def test_npv_distribution_reads_missing_columns_as_no_difference():
    """Rows without ``as_group`` are their own group, without ``referrals`` refer nobody; a group missing from a set
    of draws, or draws without ``_level``, are at the point estimate. Two years, rate 0, margin 0.5: a (revenue 10,
    cost 2, survival 0.5, 0.25) worth 3 a year, b (20, 1; 0.8, 0.64) worth 9; 50 of a move to b."""
    groups = pd.DataFrame({"customers": [100.0, 50.0], "revenue": [10.0, 20.0], "cost_to_serve": [2.0, 1.0],
                           "survival": [np.array([0.5, 0.25]), np.array([0.8, 0.64])]}, index=["a", "b"])
    rev = pd.DataFrame({"a": [1.0, 2.0]})  # b missing; no _level
    ones = pd.DataFrame({"a": [1.0, 1.0], "b": [1.0, 1.0]})
    got = bc.npv_distribution(groups, rev, ones, ones, {("a", "b"): 0.5, ("b", "a"): 0.0}, [1.0], 0.5, 0.0, 2,
                              one_off_cost=10.0, yearly_cost=5.0, referral_value=100.0)
    # A_a = 0.75, 0.375; A_b = 0.9, 0.72. Draw 1: 50 (9 A_b - 3 A_a) = 292.5, 267.75; draw 2 (a's revenue doubled,
    # worth 8): 50 (9 A_b - 8 A_a) = 105, 174
    assert got == pytest.approx([-10 + 287.5 + 262.75, -10 + 100 + 169], rel=1e-12)
    flows = bc.scenario_cash_flows(groups, {("a", "b"): 0.5}, [1.0], 0.5, 2, yearly_cost=5.0, referral_value=100.0)
    assert flows["referrals"].tolist() == [0.0, 0.0]
    assert flows["benefit"].tolist() == pytest.approx([292.5, 267.75], rel=1e-12)
    # survival shares outside [0, 1] are read as 1 and 0
    clipped = groups.assign(survival=[np.array([0.5, 0.25]), np.array([1.5, 1.0])])
    at_one = groups.assign(survival=[np.array([0.5, 0.25]), np.array([1.0, 1.0])])
    for power in (1.0, 2.0):
        hr = pd.DataFrame({"a": [1.0], "b": [power]})
        assert bc.npv_distribution(clipped, ones.iloc[:1], ones.iloc[:1], hr, {("a", "b"): 0.5}, [1.0], 0.5, 0.0, 2)[0] == (
            pytest.approx(bc.npv_distribution(at_one, ones.iloc[:1], ones.iloc[:1], hr, {("a", "b"): 0.5}, [1.0], 0.5,
                                              0.0, 2)[0], rel=1e-12))
    gone = groups.assign(survival=[np.array([0.5, 0.25]), np.array([-0.5, -0.5])])
    assert bc.npv_distribution(gone, ones.iloc[:1], ones.iloc[:1], ones.iloc[:1], {("a", "b"): 0.5}, [1.0], 0.5, 0.0,
                               2, lag_years=1)[0] == 0.0


def test_group_value_per_year_with_each_group_s_own_first_year():
    """A case that carries each group's customer-years of year 1 (customers who never cancel) uses them, matched by
    group, instead of the reference survival to the power of the hazard ratio."""
    g = pd.DataFrame({"customers": [10.0, 20.0, 5.0], "revenue": [800.0, 1000.0, 1200.0],
                      "cost_to_serve": [60.0, 40.0, 30.0], "hazard_ratio": [2.0, 1.0, 0.5]}, index=["d", "p", "q"])
    first_year = pd.Series({"q": 0.95, "z": 0.1, "p": 0.9})  # another order, a group not priced, d missing
    v = bc.group_value_per_year(_bare_case(groups=g, reference_survival=[0.8, 0.64], gross_margin=0.5,
                                           referral_value=[0.0], first_year=first_year))
    assert list(v.index) == ["d", "p", "q"] and math.isnan(v["d"])
    assert v[["p", "q"]].tolist() == pytest.approx([460.0 * 0.9, 570.0 * 0.95], rel=1e-12)
    # first_year None: the reference survival as before
    v = bc.group_value_per_year(_bare_case(groups=g, reference_survival=[0.8, 0.64], gross_margin=0.5,
                                           referral_value=[0.0], first_year=None))
    assert v.tolist() == pytest.approx([340.0 * 0.82, 460.0 * 0.9, 570.0 * (1 + 0.8 ** 0.5) / 2], rel=1e-12)


def test_non_contractual_clv_of_a_group_without_revenue_is_missing_and_the_rest_priced(non_contractual):
    revenue, cost, churn, curves, base, history = _world()
    non_contractual["missing"].add("detractor")  # the first group: the others are still priced after it
    case = bc.evaluate_non_contractual(_Purchases(), cost, base, PARAMS, history=history)
    assert list(case.clv.columns) == ["margin_per_year", "retention_year_1", "clv"]
    assert list(case.clv.index) == LABELS and case.clv.loc["detractor"].isna().all()
    for g in ("passive", "promoter"):
        margin = GM * REV[g] - COST[g]
        assert case.clv.loc[g].tolist() == pytest.approx(
            [margin, S(HR[g], 1), sum(margin * A(HR[g], t) / (1 + RATE) ** t for t in (1, 2, 3))], rel=1e-12)
    assert non_contractual["pricing_rows"][3] == [("passive", "promoter")]
    assert case.moved == {"passive->promoter": 200.0}


def test_non_contractual_cost_draws_have_their_seed_and_reach_the_simulation(non_contractual, monkeypatch):
    """The cost-to-serve draws are seeded ``seed + 1`` (the purchase model's take ``seed``), as in the contractual
    case, and vary the simulated NPVs: drawn at 1.5 times the detractors' cost, every draw is that case's NPV."""
    revenue, cost, churn, curves, base, history = _world()
    seen = []

    def effect_draws(model, n, seed):
        seen.append((model, n, seed))
        s = model.summary_
        return pd.DataFrame({**{g: np.full(n, s.loc[g, "ratio"] * (1.5 if g == "detractor" else 1.0))
                                for g in s.index}, "_level": np.ones(n)})

    monkeypatch.setattr(value, "effect_draws", effect_draws)
    params = {**PARAMS, "seed": 11, "scenario": {**PARAMS["scenario"], "draws": 7}}
    case = bc.evaluate_non_contractual(_Purchases(), cost, base, params, history=history)
    assert seen == [(cost, 7, 12)] and non_contractual["effect_draws"][1:] == (7, 11)
    assert case.npv_draws == pytest.approx(np.full(7, npv_by_hand(net_by_hand(cost={"detractor": 75.0}))), rel=1e-9)
    assert case.npv == pytest.approx(npv_by_hand(net_by_hand()), rel=1e-12)


def test_scenario_inputs_match_the_models_groups_by_label():
    """A referral or churn summary that lists the groups in another order, or lacks one, is matched by label: a
    group without a referral rate refers nobody, one without a hazard ratio churns like the reference group."""
    revenue, cost, churn, curves, base, history = _world()
    refs = _Rate({"detractor": 0.01, "passive": 0.02, "promoter": 0.05}, {}, history.index)
    refs.summary_ = refs.summary_.loc[["promoter", "passive"]]
    churn.summary_ = churn.summary_.loc[["passive", "detractor"]]
    groups, left_out = bc._scenario_inputs(revenue, cost, churn, curves, base, H, refs)[4:]
    assert groups["referrals"].tolist() == [0.0, 0.02, 0.05]
    assert groups["hazard_ratio"].tolist() == [2.0, 1.0, 1.0]
    assert left_out == {"retention of promoter": (
        "The promoter group's churn could not be estimated (too few customers of it left), so the case prices it at "
        "the passive group's churn.")}


def test_non_contractual_inputs_keep_the_groups_without_their_curves(non_contractual):
    revenue, cost, churn, curves, base, history = _world()
    groups = bc.evaluate_non_contractual(_Purchases(), cost, base, PARAMS, history=history).inputs["groups"]
    assert list(groups.columns) == ["customers", "revenue", "cost_to_serve", "referrals", "hazard_ratio"]


def test_a_case_without_a_currency_says_none_as_empty_text(pinned_draws):
    revenue, cost, churn, curves, base, history = _world()
    params = {k: v for k, v in PARAMS.items() if k != "currency"}
    case = bc.evaluate(revenue, cost, churn, curves, base, params, history=history)
    assert case.inputs["currency"] == "" and case.assumptions()["currency"] == ""


def test_moves_of_no_share_or_onto_themselves_are_kept_quietly_and_the_rest_go_on():
    """_priced_moves keeps a move of share 0 (or a group's move to itself) as it is, without asking whether its
    groups were measured; a move left out does not stop the moves after it. _row_moves drops them quietly."""
    groups = pd.DataFrame({"revenue": [np.nan, 1.0, 2.0]}, index=["a", "b", "c"])
    moves = {("a", "b"): 0.2, ("b", "a"): 0.0, ("a", "a"): 0.5, ("b", "c"): 0.1}
    kept, left_out = bc._priced_moves(moves, groups)
    assert kept == {("b", "a"): 0.0, ("a", "a"): 0.5, ("b", "c"): 0.1}
    assert list(left_out) == ["move a to b"]
    rows = pd.DataFrame(index=["b", "b as c"])
    out, left_out = bc._row_moves({("a", "b"): 0.2, ("c", "b"): 0.0, ("b", "b"): 0.5, ("b", "c"): 0.1}, rows)
    assert out == {("b", "b as c"): 0.1} and list(left_out) == ["move a to b"]


def test_a_small_step_per_unit_of_k_is_not_no_step():
    """Shares so small that k adds under one point of net score per unit still reach the target."""
    customers = pd.Series({"detractor": 1000.0, "passive": 2000.0, "promoter": 1000.0})
    sc = {"detractor_to_passive": 0.02, "passive_to_promoter": 0.01, "target_score": 5.0}
    # k adds 100 x (0.02 x 1000 + 0.01 x 2000) / 4000 = 1 point: 5 points need k = 5
    assert bc.scenario_shares(sc, customers, ["detractor", "passive", "promoter"], "passive") == pytest.approx((0.1, 0.05))
    sc = {"detractor_to_passive": 0.01, "passive_to_promoter": 0.005, "target_score": 5.0}  # 0.5 a unit: k = 10
    assert bc.scenario_shares(sc, customers, ["detractor", "passive", "promoter"], "passive") == pytest.approx((0.1, 0.05))


# --------------------------------------------------------------------------- third pass (2026-12-03, branch mbc)


def test_roi_with_costs_worth_less_than_one_unit_of_currency():
    """ROI is undefined only when the costs' present value is not positive: 0.5 of costs is still a cost."""
    assert bc.roi([2.0], [0.5], 0.0) == pytest.approx(3.0)  # (2 - 0.5) / 0.5
    assert bc.roi([3.0], [0.0], 0.0, initial=0.75) == pytest.approx(3.0)  # (3 - 0.75) / 0.75
    assert bc.roi([1.1], [0.0], 0.1, initial=1.0) == pytest.approx(0.0)  # PV 1 of benefits against 1 up front


def test_the_tornado_s_rows_are_numbered_from_the_largest_swing(case):
    """The tornado's rows are numbered 0, 1, ... in the order of their swing: row 0 is the largest."""
    s = case.sensitivity
    assert list(s.index) == list(range(11))
    assert s.loc[0, "swing"] == s["swing"].max() and s.loc[10, "swing"] == s["swing"].min()


def test_payback_and_irr_are_the_same_at_any_scale_and_irr_has_no_cost_up_front_by_default():
    """Flows under one unit of currency pay back as large ones do; irr's initial cost defaults to none."""
    assert bc.payback_months([1.0], initial=0.5) == pytest.approx(6.0)  # half of year 1's 1.0
    assert bc.payback_months([0.25, 0.5], initial=0.5) == pytest.approx(18.0)  # -0.25 after year 1, half of year 2
    # -100 in year 1 and 110 in year 2: 100 / (1 + r) = 110 / (1 + r)^2 at r = 10%
    assert bc.irr([-100.0, 110.0]) == pytest.approx(0.10, abs=1e-9)


def test_irr_at_and_beyond_the_ends_of_its_bracket():
    """irr looks for the rate on [-99%, 1000%]: a rate of exactly 1000% is found, one above it or below -99% is
    None, at any scale of flows."""
    assert bc.irr([11.0], initial=1.0) == pytest.approx(10.0, abs=1e-9)  # 1 now, 11 in a year: r = 1000% exactly
    assert bc.irr([1150.0], initial=100.0) is None  # r = 1050%
    assert bc.irr([0.001], initial=1.0) is None  # r = -99.9%; NPV -0.9 at -99% and -0.9999 at 1000%
    assert bc.irr([0.55], initial=0.5) == pytest.approx(0.10, abs=1e-9)  # flows under 1 still have a rate


def _two_groups():
    """a and b keep every customer; b spends 12 a year against a's 10, both cost 2; b refers 1.5 a year, a 0.5."""
    return pd.DataFrame({"customers": [100.0, 0.0], "revenue": [10.0, 12.0], "cost_to_serve": [2.0, 2.0],
                         "survival": [[1.0, 1.0], [1.0, 1.0]], "referrals": [0.5, 1.5]}, index=["a", "b"])


def test_referrals_are_worth_nothing_unless_given_a_value():
    """With a referrals column but no referral_value, the referrals lever is 0: only the spend of the 50 movers
    counts, 50 x 0.5 x (12 - 10) = 50 a year."""
    cf = bc.scenario_cash_flows(_two_groups(), {("a", "b"): 0.5}, ramp=[1.0], gross_margin=0.5, horizon_years=2)
    assert list(cf["referrals"]) == [0.0, 0.0]
    assert list(cf["spend"]) == pytest.approx([50.0, 50.0]) and list(cf["benefit"]) == pytest.approx([50.0, 50.0])
    # valued at 4 each: 50 movers x 4 x (1.5 - 0.5) = 200 a year more
    valued = bc.scenario_cash_flows(_two_groups(), {("a", "b"): 0.5}, ramp=[1.0], gross_margin=0.5, horizon_years=2,
                                    referral_value=4.0)
    assert list(valued["referrals"]) == pytest.approx([200.0, 200.0])


def test_cash_flows_skip_a_move_of_no_share_and_price_the_moves_after_it():
    """A move of share 0 (here to a row the frame does not even have) moves no one and does not stop the moves
    after it; neither does a negative share."""
    moves = {("a", "nobody"): 0.0, ("b", "a"): -0.5, ("a", "b"): 0.5}
    cf = bc.scenario_cash_flows(_two_groups(), moves, ramp=[1.0], gross_margin=0.5, horizon_years=2)
    assert list(cf["spend"]) == pytest.approx([50.0, 50.0]) and list(cf["benefit"]) == pytest.approx([50.0, 50.0])
    assert list(cf["revenue_change"]) == pytest.approx([100.0, 100.0])  # 50 x (12 - 10)


def test_a_cohort_moved_into_an_empty_group_or_after_the_horizon_adds_zeros_not_gaps():
    """Every lever and context column is 0, not NaN, where a cohort is skipped: b has nobody left when the move
    would start (lag 1), or the lag runs past the horizon (lag 3 of 2 years). NaN levers would hide in the
    benefit, which pandas sums skipping NaN."""
    groups = pd.DataFrame({"customers": [100.0, 0.0], "revenue": [10.0, 20.0], "cost_to_serve": [1.0, 1.0],
                           "survival": [[0.5, 0.4], [0.0, 0.0]]}, index=["a", "b"])
    columns = ["retention", "spend", "cost_to_serve", "referrals", "benefit", "revenue_change", "cost_to_serve_change"]
    empty = bc.scenario_cash_flows(groups, {("a", "b"): 1.0}, [1.0], 1.0, 2, lag_years=1)
    assert empty[columns].to_numpy().tolist() == [[0.0] * 7, [0.0] * 7]
    late = bc.scenario_cash_flows(_two_groups(), {("a", "b"): 0.5}, [0.5, 1.0], 0.5, 2, yearly_cost=3.0,
                                  lag_years=3)
    assert late[columns].to_numpy().tolist() == [[0.0] * 7, [0.0] * 7]
    assert list(late["net"]) == [-3.0, -3.0]
    # lag 1 of 2 years: only the first half of the moves pays, in year 2: 25 x 0.5 x (12 - 10) = 25
    lag_1 = bc.scenario_cash_flows(_two_groups(), {("a", "b"): 0.5}, [0.5, 1.0], 0.5, 2, lag_years=1)
    assert list(lag_1["spend"]) == pytest.approx([0.0, 25.0])


def test_one_customer_moved_counts_and_a_ramp_may_start_at_nothing():
    """A cohort of exactly one customer is priced; a ramp that makes no move in year 1 ([0, 1]) still makes
    them all in year 2. The rows are numbered by year."""
    one = bc.scenario_cash_flows(_two_groups().assign(customers=[2.0, 0.0]), {("a", "b"): 0.5}, [1.0], 0.5, 2)
    assert list(one["spend"]) == pytest.approx([1.0, 1.0])  # 1 x 0.5 x (12 - 10)
    late = bc.scenario_cash_flows(_two_groups(), {("a", "b"): 0.5}, [0.0, 1.0], 0.5, 2)
    assert list(late["spend"]) == pytest.approx([0.0, 50.0])
    assert list(late.index) == [1, 2] and late.index.name == "year"
    assert list(late.reset_index()["year"]) == [1, 2]


def test_the_simulation_values_referrals_only_when_given_a_value():
    """npv_distribution with a referrals column and no referral_value: only the spend counts, 50 a year for two
    years at a 0% discount rate; at 4 a referral, 200 a year more (as the cash flows)."""
    ones = pd.DataFrame({"a": [1.0], "b": [1.0]})
    args = (_two_groups(), ones, ones, ones, {("a", "b"): 0.5}, [1.0], 0.5, 0.0, 2)
    assert bc.npv_distribution(*args)[0] == pytest.approx(100.0)
    assert bc.npv_distribution(*args, referral_value=4.0)[0] == pytest.approx(500.0)


def test_the_simulation_reads_a_survival_a_rounding_error_below_zero_as_zero():
    """A survival of -1e-12 (rounding) is 0 before it is raised to a draw's hazard ratio (0.5 here, a square
    root, which would make it NaN). a (survival 0.25, then 0) moves entirely to b (keeps everyone), same value
    10 a customer-year: a's customer-years with HR 0.5 are (1 + 0.5) / 2 = 0.75 and (0.5 + 0) / 2 = 0.25, so 100
    movers gain 100 x 10 x (1 - 0.75) = 250 and 100 x 10 x (1 - 0.25) = 750: NPV 1000 at 0%."""
    groups = pd.DataFrame({"customers": [100.0, 0.0], "revenue": [10.0, 10.0], "cost_to_serve": [0.0, 0.0],
                           "survival": [[0.25, -1e-12], [1.0, 1.0]]}, index=["a", "b"])
    ones = pd.DataFrame({"a": [1.0], "b": [1.0]})
    hr = pd.DataFrame({"a": [0.5], "b": [1.0]})
    assert bc.npv_distribution(groups, ones, ones, hr, {("a", "b"): 1.0}, [1.0], 1.0, 0.0, 2)[0] == pytest.approx(1000.0)


def test_the_simulation_skips_a_move_of_no_share_and_prices_the_moves_after_it():
    """As the cash flows: a move of share 0 (to a row the frame does not have) or below 0 moves no one and does
    not stop the moves after it; the spend of the 50 movers, 50 a year for two years at 0%."""
    ones = pd.DataFrame({"a": [1.0], "b": [1.0]})
    moves = {("a", "nobody"): 0.0, ("b", "a"): -0.5, ("a", "b"): 0.5}
    assert bc.npv_distribution(_two_groups(), ones, ones, ones, moves, [1.0], 0.5, 0.0, 2)[0] == pytest.approx(100.0)


def test_the_simulation_prices_a_cohort_of_one_and_a_ramp_starting_at_nothing():
    """As the cash flows: one customer moved (2 x 0.5) gains 1 x 0.5 x (12 - 10) = 1 a year; a ramp [0, 1] moves
    all 50 at the start of year 2, so only year 2's 50 counts."""
    ones = pd.DataFrame({"a": [1.0], "b": [1.0]})
    one = _two_groups().assign(customers=[2.0, 0.0])
    assert bc.npv_distribution(one, ones, ones, ones, {("a", "b"): 0.5}, [1.0], 0.5, 0.0, 2)[0] == pytest.approx(2.0)
    assert bc.npv_distribution(_two_groups(), ones, ones, ones, {("a", "b"): 0.5}, [0.0, 1.0], 0.5, 0.0,
                               2)[0] == pytest.approx(50.0)


def test_the_simulation_says_nothing_about_a_destination_nobody_is_left_in():
    """Moving into a group nobody is left in (0 / 0 customer-years) is skipped quietly: no RuntimeWarning."""
    import warnings

    groups = pd.DataFrame({"customers": [100.0, 0.0], "revenue": [10.0, 20.0], "cost_to_serve": [0.0, 0.0],
                           "survival": [[0.5, 0.4], [0.0, 0.0]]}, index=["a", "b"])
    ones = pd.DataFrame({"a": [1.0], "b": [1.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim = bc.npv_distribution(groups, ones, ones, ones, {("a", "b"): 1.0}, [1.0], 1.0, 0.0, 2, lag_years=1)
    assert sim[0] == 0.0


def test_the_assumptions_carry_the_failure_demand_lever_s_inputs():
    """A case with the failure-demand lever states its inputs among the assumptions (results.json), as added by
    add_yearly_lever; a case without it says None."""
    detail = {"share_removed": 0.25, "value_per_year": 1200.0, "achieved_by_year": [0.5, 1.0]}
    assert bc._assumptions({"failure_demand": detail})["failure_demand"] == detail
    assert bc._assumptions({})["failure_demand"] is None
    assert _bare_case(failure_demand=detail).assumptions()["failure_demand"] == detail


def test_referral_values_keep_everyone_when_churn_was_not_measured():
    """With the churn model skipped, everyone stays (survival 1) in the referred customer's CLV too, though the
    reference group's curve is there (it would lose 18% a year): a referral joining in year t is worth the
    customer-weighted mean margin over the H - t + 1 years left, every year a full customer-year."""
    revenue, cost, churn, curves, base, history = _world(churn_fitted=False)
    refs = _Rate({"detractor": 0.01, "passive": 0.02, "promoter": 0.05}, {}, history.index)
    pricing = bc._pricing(revenue, cost, churn, curves, base, H, refs, history)
    got = bc._referral_values(pricing, GM, RATE, H)
    mean_margin = sum(BASE[g] * (GM * REV[g] - COST[g]) for g in LABELS) / sum(BASE.values())  # 440
    for t in (1, 2, 3):
        annuity = sum(1 / (1 + RATE) ** y for y in range(1, H - t + 2))
        assert got[t - 1] == pytest.approx(mean_margin * annuity, rel=1e-12)
