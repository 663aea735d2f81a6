"""The cost of failure demand: cost by reason, concentration, the churn link and the value of removing
a share, by hand, on a world seeded with reasons that drive churn, and on every data shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxvalue import config, data, failure_demand as fdm, history, narrative
from cxvalue.synthetic import FAILURE_REASONS, generate, write_world
from shapes import SHAPE_CASES, shaped, value_by_group

AS_OF = "2025-12-31"


# --------------------------------------------------------------------------- by hand


def test_customers_kept_by_hand():
    # 1,000 customers contacted about it, 20% of them leave within a year; HR 2 means that
    # without it they would leave at half the hazard: 1 - 0.8^(1/2) = 10.56%; removing a
    # quarter spares 250 of them: 250 x (0.2 - 0.10557) = 23.6 customers kept
    kept = fdm.customers_kept(1000, 0.2, 2.0, 0.25)
    assert kept == pytest.approx(250 * (0.2 - (1 - np.sqrt(0.8))))
    assert fdm.customers_kept(1000, 0.2, 1.0, 0.25) == pytest.approx(0.0)
    assert fdm.customers_kept(1000, 0.2, 0.7, 0.25) == 0.0  # a reason whose customers stay is worth its cost only
    assert fdm._risk_ratio(30, 100, 10, 100)[0] == pytest.approx(3.0)
    rr, lo, hi = fdm._risk_ratio(30, 100, 10, 100)
    se = np.sqrt(1 / 30 - 1 / 100 + 1 / 10 - 1 / 100)
    assert (lo, hi) == pytest.approx((3 * np.exp(-1.959964 * se), 3 * np.exp(1.959964 * se)), rel=1e-5)


def test_value_by_hand():
    """Cost saved is the share times the cost; the retention part prices the kept customers at the
    base's mean margin; with no churn link the value is the cost saved alone."""
    costs = pd.DataFrame({"contacts": [400, 100], "customers": [300, 80], "cost_per_year": [4000.0, 1000.0]},
                         index=pd.Index(["billing_error", "how_to"], name="reason"))
    costs["share_of_cost"] = costs["cost_per_year"] / costs["cost_per_year"].sum()
    n = 400
    rng = np.random.default_rng(0)
    hist = pd.DataFrame({"customer_id": [str(i) for i in range(n)],
                         "group": pd.Categorical(rng.choice(["detractor", "passive", "promoter"], n),
                                                 categories=["detractor", "passive", "promoter"]),
                         "churned": False, "duration_days": 365.0})
    exposure = pd.DataFrame({"billing_error": rng.random(n) < 0.3, "how_to": rng.random(n) < 0.5}, index=hist.index)
    fd = fdm.FailureDemand(["detractor", "passive", "promoter"], "passive", share_removed=0.2).fit(
        costs, exposure, hist, pd.Series({"detractor": 100.0, "passive": 200.0, "promoter": 300.0}),
        pd.Series({"detractor": 1.0, "passive": 2.0, "promoter": 1.0}))
    assert fd.mean_margin_ == pytest.approx(200.0)
    r = fd.results()
    assert r["reasons"]["billing_error"]["cost_saved_per_year"] == pytest.approx(800.0)
    assert r["reasons"]["billing_error"]["value_per_year"] == pytest.approx(800.0)  # nobody left: cost only
    assert "Nobody in the data left" in r["churn_link_skipped"] and r["churn_link_skipped"] in fd.warnings_
    g = hist["group"].astype(str)
    a, n1 = exposure.loc[g == "detractor", "billing_error"].sum(), (g == "detractor").sum()
    c, n0 = exposure.loc[g == "passive", "billing_error"].sum(), (g == "passive").sum()
    assert r["reasons"]["billing_error"]["concentration"] == pytest.approx((a / n1) / (c / n0))
    assert r["ranking"] == ["billing_error", "how_to"]


# --------------------------------------------------------------------------- a world with failure demand


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    out = tmp_path_factory.mktemp("failure")
    world = generate(n_customers=10_000, seed=5, failure_reasons=FAILURE_REASONS)
    write_world(world, out)
    p = config.load_params({"as_of": AS_OF})
    checked = data.check(str(out), p)
    h = history.history(checked, p)
    margin = pd.Series({"detractor": 1000.0, "passive": 1200.0, "promoter": 1300.0})
    base = pd.Series({"detractor": 3000.0, "passive": 4000.0, "promoter": 2000.0})
    fd = fdm.FailureDemand.from_params(p, list(checked.covariates)).fit(
        fdm.reason_costs(checked, p), fdm.reason_exposure(checked, h, p), h, margin, base)
    return world, checked, h, fd


def test_a_fit_valued_afterwards_equals_one_fitted_with_the_margins(seeded):
    """``cxvalue run`` fits failure demand before the business case gives the margins and values it
    after: the same summary, draws and results as a fit with them; without margins only costs are valued."""
    _, checked, h, fd = seeded
    p = config.load_params({"as_of": AS_OF})
    later = fdm.FailureDemand.from_params(p, list(checked.covariates)).fit(fd.costs_, fdm.reason_exposure(checked, h, p), h)
    assert later.mean_margin_ is None and later.summary["retention_value_per_year"].isna().all()
    assert (later.summary["value_per_year"] == later.summary["cost_saved_per_year"]).all()
    margin = pd.Series({"detractor": 1000.0, "passive": 1200.0, "promoter": 1300.0})
    base = pd.Series({"detractor": 3000.0, "passive": 4000.0, "promoter": 2000.0})
    assert later.price(margin, base) is later
    pd.testing.assert_frame_equal(later.summary, fd.summary)
    assert later.yearly_value_draws().tolist() == fd.yearly_value_draws().tolist()
    assert later.results() == fd.results() and later.warnings_ == fd.warnings_
    assert later.price(margin * 2, base).summary["retention_value_per_year"].sum() == pytest.approx(
        2 * fd.summary["retention_value_per_year"].sum())
    assert not hasattr(fdm.FailureDemand(["detractor", "passive"], "passive").price(margin, base), "summary_")


def test_reason_costs_match_the_contacts(seeded):
    world, checked, _, fd = seeded
    c = world.contacts
    c = c[(c["date"] >= pd.Timestamp("2025-01-01")) & (c["date"] <= pd.Timestamp(AS_OF))]
    price = c["channel"].map({"phone": 12.0, "email": 6.0, "chat": 5.0, "web": 1.0})
    expected = price.groupby(c["reason"]).sum()
    got = fd.costs_["cost_per_year"]
    assert got.to_dict() == pytest.approx(expected.to_dict())
    assert fd.costs_["contacts"].to_dict() == c["reason"].value_counts().to_dict()
    assert fd.costs_["share_of_cost"].sum() == pytest.approx(1.0)
    assert list(fd.costs_.index) == list(got.sort_values(ascending=False).index)


def test_seeded_reasons_are_found_concentrated_and_driving_churn(seeded):
    """Recovery: each reason's adjusted hazard ratio lies within 2.6 standard errors of the truth
    (the standard error from the 95% interval's width; 2.6 leaves a 1% chance per reason of a false
    failure); the seeded reasons' intervals exclude 1; concentration follows the seeded tilt."""
    world, _, h, fd = seeded
    s = fd.summary
    truth = world.truth["failure_demand"]["reasons"]
    for reason, t in truth.items():
        hr, lo, hi = s.loc[reason, ["hazard_ratio", "hr_lo", "hr_hi"]]
        se = (np.log(hi) - np.log(lo)) / (2 * 1.959964)
        assert abs(np.log(hr) - np.log(t["churn_hr"])) < 2.6 * se, (reason, hr, t["churn_hr"])
        if t["churn_hr"] > 1:
            assert lo > 1, reason
        tilt = t["tilt"]
        if tilt > 0.4:
            assert s.loc[reason, "concentration_lo"] > 1, reason  # more among detractors
        elif tilt < 0:
            assert s.loc[reason, "concentration_hi"] < 1, reason
    draws = fd.yearly_value_draws(["billing_error", "how_to"])
    assert len(draws) == fd.draws
    assert np.percentile(fd.yearly_value_draws(["billing_error"]), [2.5, 97.5]) == pytest.approx(
        [s.loc["billing_error", "value_lo"], s.loc["billing_error", "value_hi"]])
    assert draws.mean() == pytest.approx(s.loc[["billing_error", "how_to"], "value_per_year"].sum(), rel=0.15)
    ranked = fd.ranked()
    assert ranked.index[0] == "billing_error"  # the strongest driver is worth most to remove
    assert (ranked["value_lo"] <= ranked["value_per_year"]).all() and (ranked["value_per_year"] <= ranked["value_hi"]).all()
    r = fd.results()
    assert r["ranking"][0] == "billing_error" and r["reasons"]["billing_error"]["valued"]
    sentences = narrative.failure_demand_sentences(fd, "USD")
    assert any("billing error 1." in x for x in sentences) and "Removing 25% of billing error" in sentences[-2]
    assert "does not include this value" in sentences[-1]  # the scenario leaves the lever out by default
    table = narrative.failure_demand_table(fd, "USD")
    assert table.columns.name == "Reason" and "billing error" in table.index
    short = narrative.failure_demand_table(fd, "USD", max_rows=3)
    assert list(short.index)[-1] == "2 more reasons" and len(short) == 4
    assert short.iloc[-1, 0] == f"{fd.summary['cost_per_year'].iloc[3:].sum():,.0f}"


def test_the_default_world_is_unchanged_by_the_new_stream():
    """failure_reasons draws from its own stream: without it the world is what it was; with it, the
    customers are the same people (only when they left changes) and more of them have left."""
    plain = generate(n_customers=800, seed=3)
    again = generate(n_customers=800, seed=3)
    pd.testing.assert_frame_equal(plain.contacts, again.contacts)
    seeded = generate(n_customers=800, seed=3, failure_reasons=FAILURE_REASONS)
    assert set(plain.contacts["reason"]) == {"billing", "technical", "account", "cancellation"}
    assert set(seeded.contacts["reason"]) <= set(FAILURE_REASONS)
    pd.testing.assert_frame_equal(plain.customers.drop(columns="end_date"), seeded.customers.drop(columns="end_date"))
    # failure demand brings ends forward; a complainer's lifetime is redrawn from the first complaint
    # (the loop's stream), so single customers may move either way
    assert seeded.customers["end_date"].notna().sum() > plain.customers["end_date"].notna().sum()


# --------------------------------------------------------------------------- every shape


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_failure_demand_on_every_shape(name):
    p, checked, h = shaped(name)
    fd = fdm.FailureDemand.from_params(p, list(checked.covariates)).fit(
        fdm.reason_costs(checked, p), fdm.reason_exposure(checked, h, p), h, value_by_group(p),
        pd.Series(1.0, index=value_by_group(p).index))
    r = fd.results()
    if "contacts" not in checked.tables or "reason" not in checked.tables["contacts"].columns:
        assert r["skipped"] and "contacts" in r["skipped"] and r["reasons"] == {}
        assert narrative.failure_demand_sentences(fd, "USD") == [narrative.skipped_sentence(fd)]
        assert narrative.failure_demand_table(fd, "USD").empty
        return
    assert r["skipped"] is None and r["reasons"]
    shown = fd.costs_
    assert (shown["customers"] >= p["min_cell_size"]).all()  # small reasons pooled, a small pool hidden
    if not h["churned"].any():
        assert r["churn_link_skipped"] and all(v["churn_hazard_ratio"] is None for v in r["reasons"].values())
    assert len(narrative.failure_demand_sentences(fd, "USD")) >= 2
