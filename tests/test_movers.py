"""The movers priced at their own levels (``cxvalue.movers``), against each customer's true levels.

A synthetic world knows every customer's own spend, contact rate and churn hazard and the true
group effects (:data:`cxvalue.synthetic.TRUE_EFFECTS`), so what today's detractors would spend,
cost and how long they would stay, as detractors and as passives, is known: the mean over the
active customers surveyed in each group. The world here answers its survey at random
(``response_bias=0``: respondents stand for the base; weighting them is separate work) and a
resolved complaint does not change churn (``resolution_effect=1``: the hazard stays
exponential, so survival from today is ``exp(-lambda t)`` for each customer).

Tolerances: a group's mean revenue over ~1,700 movers has a sampling error near 2.5% (spend's
coefficient of variation is about 1); the ratio's own error adds about 2%: 7% allows both at
two standard errors. Survival: the hazard ratios' 95% intervals are about +-12% (detractor)
and the reference baseline's about +-8% at these sizes, moving survival at years 1-2 by up to
about 0.04. Year 3 is read from the baseline's last interval (730 days on, about 100 losses here:
its log hazard has a standard error near 0.12), which on its own moves year-3 survival (about 0.55,
with a yearly hazard near 0.25) by up to 0.55 x 0.25 x 2 x 0.12 = 0.03 more: 0.06 there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxvalue import config, movers, pipeline
from cxvalue.synthetic import CHANNEL_COST, CHANNEL_SHARE, CHANNELS, TRUE_EFFECTS, generate

pytestmark = pytest.mark.filterwarnings("ignore")

UNIT_COST = float(sum(CHANNEL_COST[c] * s for c, s in zip(CHANNELS, CHANNEL_SHARE)))
MOVES = [("detractor", "passive"), ("passive", "promoter")]


@pytest.fixture(scope="module")
def world_and_rows():
    world = generate(n_customers=20_000, seed=5, resolution_effect=1.0, response_bias=0.0)
    params = config.load_params(overrides={"as_of": "2025-12-31", "scenario": {"draws": 200}})
    a = pipeline.analyse(dict(world.tables), params)
    rows = movers.mover_rows(a.history, a.revenue, a.cost_to_serve, a.churn, a.referrals, MOVES, a.base, 5)
    return world, a, rows


def _truth(world, g: str, as_group: str) -> dict:
    hid = world.hidden
    c = hid[hid["active"] & hid["survey_date"].notna() & (hid["group"] == g)]
    lam = c["hazard_per_year"].to_numpy() * TRUE_EFFECTS["churn"][as_group]
    return {"revenue": float((c["revenue_per_year"] * TRUE_EFFECTS["revenue"][as_group]).mean()),
            "cost_to_serve": float((c["contacts_per_year"] * TRUE_EFFECTS["contacts"][as_group] * UNIT_COST).mean()),
            "survival": np.exp(-lam[:, None] * np.arange(1, 6)[None, :]).mean(axis=0)}


@pytest.mark.parametrize("g, as_group", [("detractor", "detractor"), ("detractor", "passive"),
                                         ("passive", "passive"), ("passive", "promoter")])
def test_movers_levels_are_their_own_true_levels(world_and_rows, g, as_group):
    world, _, rows = world_and_rows
    row = rows.loc[movers.row_name(g, as_group)]
    truth = _truth(world, g, as_group)
    assert row["revenue"] == pytest.approx(truth["revenue"], rel=0.07)
    assert row["cost_to_serve"] == pytest.approx(truth["cost_to_serve"], rel=0.07)
    assert (np.abs(np.asarray(row["survival"])[:3] - truth["survival"][:3]) < [0.04, 0.04, 0.06]).all()
    assert row["as_group"] == as_group and row["customers"] > 0 and row["movers"] > 500


def test_todays_detractors_are_not_priced_at_the_average_respondents_levels(world_and_rows):
    """The flaw the movers fix: the standardised level of passives (over all respondents) is far
    above what today's detractors would spend as passives, which is the truth the case needs."""
    world, a, rows = world_and_rows
    truth = _truth(world, "detractor", "passive")["revenue"]
    standardised = float(a.revenue.summary.loc["passive", "adjusted"])
    mover_level = float(rows.loc["detractor as passive", "revenue"])
    assert abs(mover_level / truth - 1) < 0.07
    assert standardised / truth - 1 > 0.2  # the old pricing: more than 20% too high on this world


def test_survival_is_conditioned_on_time_already_survived(world_and_rows):
    """Today's customers have already survived since their survey: with a baseline hazard that
    changes over follow-up, their survival from today differs from a fresh cohort's, and the
    cumulative hazard from ``tau`` to ``tau + t`` is ``L0(tau + t) - L0(tau)`` exactly."""
    _, a, _ = world_and_rows
    churn = a.churn
    rows = a.history.index[:5]
    tau = np.array([0.0, 100.0, 400.0, 800.0, 1000.0])
    got = churn.cumulative_hazard(rows, "passive", tau, [1.0])[:, 0]
    risk = churn.relative_risk_.reindex(rows).to_numpy()
    b = churn.baseline_

    def L0(d):  # by hand: sum over intervals of rate x days inside it
        return sum(r * (min(max(d, lo), hi) - lo) / 365.25 for lo, hi, r in b.itertuples(index=False))

    want = risk * np.array([L0(t + 365.25) - L0(t) for t in tau])
    assert got == pytest.approx(want, rel=1e-12)
    det = churn.cumulative_hazard(rows, "detractor", tau, [1.0])[:, 0]
    assert det == pytest.approx(got * churn.summary.loc["detractor", "hazard_ratio"], rel=1e-12)


def test_rate_model_predictions_average_to_the_standardised_level(world_and_rows):
    _, a, _ = world_and_rows
    for g in ("detractor", "passive", "promoter"):
        assert a.revenue.predict(g).mean() == pytest.approx(a.revenue.summary.loc[g, "adjusted"], rel=1e-10)


def test_closing_the_loop_is_charged_the_base_mean_cost_to_serve(world_and_rows):
    _, a, _ = world_and_rows
    cost = a.cost_to_serve.summary["adjusted"]
    n = a.base.reindex(cost.index)
    by_hand = sum(cost[g] * n[g] for g in cost.index) / n.sum()
    assert a.cost_to_serve_per_customer_year() == pytest.approx(by_hand)
    assert 0 < by_hand < cost.max()


def test_response_weights_weight_every_mean_and_the_base_shares(world_and_rows):
    """With weights, a mover row is the weighted mean of its movers' own predictions and survival, and
    today's base is split by the weighted shares of the respondents still customers."""
    from cxvalue import history

    _, a, _ = world_and_rows
    h = a.history
    w = pd.Series(np.where(np.arange(len(h)) % 3 == 0, 3.0, 1.0), index=h.index)
    rows = movers.mover_rows(h, a.revenue, a.cost_to_serve, a.churn, a.referrals, MOVES, a.base, 5, weights=w)
    who = h[(h["group"].astype(str) == "detractor") & ~h["churned"].astype(bool)]
    who = who[who.index.isin(a.revenue.design_.index)]
    ww = w[who.index].to_numpy()
    row = rows.loc["detractor as passive"]
    assert row["revenue"] == pytest.approx(np.average(a.revenue.predict("passive", who.index), weights=ww))
    surv = np.exp(-a.churn.cumulative_hazard(who.index, "passive", who["duration_days"].to_numpy(float), [1, 2]))
    assert np.asarray(row["survival"])[:2] == pytest.approx(np.average(surv, axis=0, weights=ww))
    assert row["movers_effective"] == pytest.approx(ww.sum() ** 2 / (ww ** 2).sum())
    assert row["revenue"] != pytest.approx(rows_unweighted := movers.mover_rows(
        h, a.revenue, a.cost_to_serve, a.churn, a.referrals, MOVES, a.base, 5).loc["detractor as passive", "revenue"],
        rel=1e-6) and rows_unweighted > 0

    base = history.active_customers_by_group(a.checked, h, w)
    active = h[~h["churned"].astype(bool)]
    shares = w[active.index].groupby(active["group"].astype(str)).sum() / w[active.index].sum()
    assert base.sum() == pytest.approx(history.active_customers_by_group(a.checked, h).sum())
    for g in shares.index:
        assert base[g] == pytest.approx(shares[g] * base.sum())


def test_the_analysis_weights_respondents_to_todays_customers(world_and_rows):
    _, a, _ = world_and_rows
    assert a.response_weights is not None and a.case.inputs["response_weights"].startswith("respondents weighted")
    assert a.response_weights.index.equals(a.history.index) and (a.response_weights > 0).all()
    assert a.response_weights.mean() == pytest.approx(1.0, abs=0.15)  # stabilised weights
