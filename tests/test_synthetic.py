"""The synthetic world carries what the issue asks for, and its truth is what it says."""

import numpy as np
import pandas as pd
import pytest

from cxvalue import data, history, linkage
from cxvalue.config import load_params
from cxvalue.synthetic import TRUE_EFFECTS, generate


def _observed(world):
    p = load_params(overrides={"as_of": world.truth["as_of"]})
    h = history.history(data.check(world.tables, p), p)
    return h, linkage.observed_summary(h, "passive")


@pytest.fixture(scope="module")
def world():
    return generate(n_customers=8_000, seed=11)


def test_seeded_and_reproducible():
    a, b = generate(n_customers=500, seed=3), generate(n_customers=500, seed=3)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    c = generate(n_customers=500, seed=4)
    assert not a.transactions["amount"].equals(c.transactions["amount"])


def test_world_has_the_required_features(world):
    c, r, t, k = world.customers, world.responses, world.transactions, world.contacts
    assert set(["customer_id", "start_date", "end_date", "referred_by"]) <= set(c.columns)
    churned = c["end_date"].notna().mean()
    assert 0.2 < churned < 0.8  # right-censoring: many still customers at as_of
    assert (c["end_date"].dropna() <= pd.Timestamp(world.truth["as_of"])).all()
    shares = world.truth["group_shares"]
    assert max(shares.values()) - min(shares.values()) > 0.08  # unequal group sizes
    rel = r[r["journey"].isna()]
    assert (rel.groupby("customer_id").size() > 1).sum() > 300  # several responses for some
    assert set(r["journey"].dropna()) == {"onboarding", "billing", "support"}
    assert r.loc[r["touchpoint"].notna(), "journey"].notna().all()  # a touchpoint belongs to a journey
    assert (r["journey"].notna() & r["touchpoint"].isna()).sum() > 500  # whole-journey ratings
    assert {f"attr_{k}" for k in world.truth["driver_weights"]} <= set(r.columns)
    assert (t["amount"] < 0).sum() > 100  # refunds
    assert k["is_complaint"].sum() > 100 and k["resolved"].fillna(False).sum() > 50
    assert c["referred_by"].notna().sum() > 200
    ids = set(c["customer_id"])
    assert set(c["referred_by"].dropna()) <= ids
    assert set(r["customer_id"]) <= ids and set(t["customer_id"]) <= ids
    assert world.truth["effects"] == TRUE_EFFECTS


def test_world_passes_its_own_contract_checks(world):
    p = load_params(overrides={"as_of": world.truth["as_of"]})
    dq = data.check(world.tables, p).data_quality
    assert all(q["excluded"] == {} for q in dq.values()), dq


def test_spend_noise_changes_only_pre_survey_invoices():
    """``spend_noise`` (default 0: the worlds as before) multiplies each customer's invoices before
    their survey date by one log-normal factor and leaves every other draw of the world alone."""
    a, b = generate(n_customers=3_000, seed=5), generate(n_customers=3_000, seed=5, spend_noise=0.5)
    for name in ("customers", "responses", "contacts"):
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    pd.testing.assert_frame_equal(a.hidden, b.hidden)
    ta, tb = a.transactions, b.transactions
    pd.testing.assert_frame_equal(ta[["customer_id", "date"]], tb[["customer_id", "date"]])
    survey = a.hidden.set_index("customer_id")["survey_date"]
    invoice = (ta["amount"] > 0).to_numpy()
    pre = invoice & (ta["date"] < ta["customer_id"].map(survey)).to_numpy()
    post = invoice & (ta["date"] >= ta["customer_id"].map(survey)).to_numpy()
    assert np.array_equal(ta["amount"].to_numpy()[post], tb["amount"].to_numpy()[post])
    log_ratio = pd.Series(np.log(tb["amount"].to_numpy()[pre] / ta["amount"].to_numpy()[pre]))
    per_customer = log_ratio.groupby(ta["customer_id"].to_numpy()[pre])
    assert float(per_customer.std().max()) < 0.01  # one factor per customer (up to rounding to cents)
    assert float(per_customer.first().std()) == pytest.approx(0.5, abs=0.03)
    assert b.truth["spend_noise"] == 0.5 and a.truth["spend_noise"] == 0.0


def test_drivers_explain_satisfaction_in_the_stated_order(world):
    r = world.responses[world.responses["nps"].notna()]
    x = r[[f"attr_{k}" for k in world.truth["driver_weights"]]].astype(float)
    beta = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x]), r["nps"].astype(float), rcond=None)[0][1:]
    assert list(np.argsort(-beta)) == [0, 1, 2, 3]  # product > support > price > ease


def test_without_confounding_the_raw_gap_is_the_true_effect():
    """Spend varies a lot between customers, so the raw ratio is averaged over three worlds."""
    summaries = [_observed(generate(n_customers=20_000, seed=seed, confounding=0.0))[1] for seed in (1, 2, 3)]
    for g in ("detractor", "promoter"):
        revenue = np.mean([s.loc[g, "revenue_ratio"] for s in summaries])
        assert revenue == pytest.approx(TRUE_EFFECTS["revenue"][g], rel=0.05)
        contacts = np.mean([s.loc[g, "contacts_per_customer_year"] / s.loc["passive", "contacts_per_customer_year"]
                            for s in summaries])
        assert contacts == pytest.approx(TRUE_EFFECTS["contacts"][g], rel=0.05)


def test_with_confounding_the_raw_gap_overstates_the_effect(world):
    _, s = _observed(world)
    assert s.loc["detractor", "revenue_ratio"] < TRUE_EFFECTS["revenue"]["detractor"] * 0.85
    assert s.loc["promoter", "revenue_ratio"] > TRUE_EFFECTS["revenue"]["promoter"] * 1.15


def test_null_world_has_no_gap_without_confounding():
    null = {k: {g: 1.0 for g in v} for k, v in TRUE_EFFECTS.items()}
    w = generate(n_customers=30_000, seed=8, confounding=0.0, effects=null)
    _, s = _observed(w)
    assert s.loc["detractor", "revenue_ratio"] == pytest.approx(1.0, abs=0.05)
    assert s.loc["promoter", "revenue_ratio"] == pytest.approx(1.0, abs=0.05)


def test_messy_world_rows_are_excluded_and_counted():
    w = generate(n_customers=2_000, seed=2, messy=True)
    p = load_params(overrides={"as_of": w.truth["as_of"]})
    dq = data.check(w.tables, p).data_quality
    assert dq["responses"]["excluded"]["nps outside 0-10 or not a whole number"] == 12
    assert dq["responses"]["excluded"]["customer_id not a known customer"] == 8
    assert dq["transactions"]["excluded"]["date after as_of"] == 15
    assert dq["contacts"]["excluded"]["customer_id not a known customer"] == 6
