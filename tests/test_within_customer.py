"""The within-customer check of the revenue and cost-to-serve models (issue 11).

The main models compare groups adjusted for each customer's level before the survey; when that level
measures what drives both satisfaction and spend only noisily, part of the confounding stays (the
"regression to the mean" of a noisy baseline). The check compares each customer's level after the
survey with their own level before it (an offset with coefficient 1), which that noise does not bias.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxvalue import data, history, linkage, narrative
from cxvalue.config import load_params
from cxvalue.synthetic import TRUE_EFFECTS, generate

GROUPS = ["detractor", "passive", "promoter"]
Z95 = 1.959963984540054
NULL = {k: {g: 1.0 for g in v} for k, v in TRUE_EFFECTS.items()}

#: (group, pre_revenue in a 1-year pre window, post_exposure_years, post_revenue); the last passive had
#: no revenue before the survey, so the check leaves them out (the main model keeps them)
ROWS = [("detractor", 50.0, 1.0, 30.0), ("detractor", 150.0, 2.0, 150.0),
        ("passive", 100.0, 1.0, 90.0), ("passive", 200.0, 1.0, 210.0), ("passive", 100.0, 0.5, 40.0),
        ("passive", 0.0, 1.0, 10.0),
        ("promoter", 100.0, 1.0, 120.0), ("promoter", 100.0, 1.0, 100.0)]


def _history(rows) -> pd.DataFrame:
    h = pd.DataFrame(rows, columns=["group", "pre_revenue", "post_exposure_years", "post_revenue"])
    h["group"] = pd.Categorical(h["group"], categories=GROUPS, ordered=True)
    for col, v in {"pre_contact_cost": 10.0, "pre_exposure_years": 1.0, "prior_sales": 120.0,
                   "prior_sales_transactions": 12, "tenure_years": 2.0, "post_contact_cost": 5.0,
                   "post_referred": 0.0}.items():
        h[col] = v
    return h


def _hc1_log_rate_var(group: str, rate: float) -> float:
    """Sandwich variance of a group's log rate with mu_i = rate x pre_i x exposure_i (no n/(n-k) factor:
    statsmodels' GLM HC1 is its HC0)."""
    rows = [(pre * e, y) for g, pre, e, y in ROWS if g == group and pre > 0]
    mu = [rate * x for x, _ in rows]
    return sum((y - m) ** 2 for (_, y), m in zip(rows, mu)) / sum(mu) ** 2


def test_within_customer_ratio_by_hand():
    """No other term varies, so the check is a ratio of sums: after-survey revenue over the revenue the
    customers' own pre-window level predicts for the time observed, per group, over the passives'."""
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_history(ROWS))
    s = m.summary
    rates = {"detractor": 180 / 350, "passive": 340 / 350, "promoter": 220 / 200}
    assert s["within_customers"].tolist() == [2.0, 3.0, 2.0]  # the passive with no revenue before is left out
    assert s.loc["passive", ["within_ratio", "within_lo", "within_hi"]].tolist() == [1.0, 1.0, 1.0]
    for g in ("detractor", "promoter"):
        ratio = rates[g] / rates["passive"]
        se = np.sqrt(_hc1_log_rate_var(g, rates[g]) + _hc1_log_rate_var("passive", rates["passive"]))
        assert s.loc[g, "within_ratio"] == pytest.approx(ratio, rel=1e-6), g
        assert s.loc[g, "within_lo"] == pytest.approx(ratio * np.exp(-Z95 * se), rel=1e-5), g
        assert s.loc[g, "within_hi"] == pytest.approx(ratio * np.exp(Z95 * se), rel=1e-5), g
    # the main model is not the check: it adjusts for the level before instead of dividing by it
    assert s.loc["detractor", "ratio"] != pytest.approx(s.loc["detractor", "within_ratio"], rel=1e-3)
    r = m.results()
    assert r["detractor"]["within_customer_ratio"] == pytest.approx(180 / 340, rel=1e-6)
    assert r["detractor"]["within_customer_ratio_ci"] == [s.loc["detractor", "within_lo"], s.loc["detractor", "within_hi"]]
    assert r["passive"]["within_customer_ratio"] == 1.0
    # cost to serve: its own pre-window cost is the baseline, the same 10 for everyone, so the check is
    # its main model (same customers, same other terms, a constant offset); referrals have no check
    c = linkage.CostToServeModel("passive", min_group_size=1).fit(_history(ROWS))
    assert c.summary["within_customers"].tolist() == [2.0, 4.0, 2.0]
    for lo, hi in (("ratio", "within_ratio"), ("ratio_lo", "within_lo"), ("ratio_hi", "within_hi")):
        assert c.summary[hi].tolist() == pytest.approx(c.summary[lo].tolist(), rel=1e-9)
    ref = linkage.ReferralModel("passive", min_group_size=1).fit(
        _history(ROWS).assign(post_referred=[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]))
    assert ref.summary["within_ratio"].isna().all() and "within_customer_ratio" not in ref.results()["passive"]


def test_no_check_without_a_reference_level_before_the_survey():
    """Nobody of the reference group had revenue before the survey: the check is left out (NaN, None in
    results.json), the main model stands."""
    rows = [(g, 0.0 if g == "passive" else pre, e, y) for g, pre, e, y in ROWS]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_history(rows))
    assert m.fitted and m.summary["ratio"].notna().all()
    assert m.summary["within_ratio"].isna().all()
    assert m.summary["within_customers"].tolist() == [2.0, 0.0, 2.0]
    assert m.results()["detractor"]["within_customer_ratio"] is None
    assert m.results()["detractor"]["within_customer_ratio_ci"] == [None, None]


def test_check_that_disagrees_with_the_main_model_warns():
    """Revenue after the survey follows the square root of the level before it, the same in every group
    (no effect). The main model, adjusting for log level, reads about 1; dividing by the level reads the
    lower-spending detractors as growing: the two disagree, and the model says so."""
    pre = np.linspace(10.0, 1000.0, 200)
    rows = [("detractor", x / 4, 1.0, 10 * np.sqrt(x / 4)) for x in pre] + \
           [("passive", x, 1.0, 10 * np.sqrt(x)) for x in pre] + [("promoter", x, 1.0, 10 * np.sqrt(x)) for x in pre]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_history(rows))
    s = m.summary
    assert s.loc["detractor", "ratio"] == pytest.approx(1.0, abs=0.03)
    assert s.loc["detractor", "within_ratio"] > 1.5  # 2 if nothing else were adjusted for
    assert s.loc["promoter", "within_ratio"] == pytest.approx(1.0, abs=1e-6)
    disagree = [w for w in m.warnings_ if "do not agree" in w]
    assert len(disagree) == 1 and disagree[0].startswith("Revenue: compared with their own level before the survey, "
                                                          "detractor customers read ")


@pytest.fixture(scope="module")
def noisy_worlds():
    """Strong confounding (1.2) by an account size that pre-survey spend measures noisily (0.5): with
    known effects, and with none."""
    out = {}
    for name, eff, seed in (("true", None, 1), ("null", NULL, 2)):
        w = generate(n_customers=40_000, seed=seed, confounding=1.2, spend_noise=0.5, effects=eff)
        p = load_params(overrides={"as_of": w.truth["as_of"]})
        checked = data.check(w.tables, p)
        out[name] = (history.history(checked, p), list(checked.covariates))
    return out


@pytest.mark.parametrize("world", ["true", "null"])
def test_check_recovers_the_truth_where_a_noisy_baseline_leaves_the_main_model_confounded(noisy_worlds, world):
    """The main revenue ratios miss the truth (their intervals exclude it: about -2.5% / +2.5%, five
    standard errors at this size); the check's intervals cover it, and its estimates are within 4%
    (about two of its standard errors) of it."""
    h, cov = noisy_worlds[world]
    s = linkage.RevenueModel("passive", cov).fit(h).summary
    for g in ("detractor", "promoter"):
        truth = 1.0 if world == "null" else TRUE_EFFECTS["revenue"][g]
        r = s.loc[g]
        assert not r["ratio_lo"] <= truth <= r["ratio_hi"], (g, r["ratio"], truth)
        assert r["within_lo"] <= truth <= r["within_hi"], (g, r["within_ratio"], truth)
        assert r["within_ratio"] == pytest.approx(truth, rel=0.04), g
        assert r["within_customers"] > 0.9 * r["customers"]  # nearly everyone had revenue before the survey


def test_the_check_in_words():
    agree = linkage.RevenueModel("passive", min_group_size=1).fit(_history(ROWS))
    out = narrative.within_customer_sentences({"revenue": agree}, "passive")
    r = agree.summary.loc["detractor"]
    assert len(out) == 2 and out[0].startswith("A second check compares each customer with themselves")
    assert (f"revenue, detractor: {r['within_ratio']:.3f} ({r['within_lo']:.3f} to {r['within_hi']:.3f}) "
            f"against {r['ratio']:.3f}") in out[0]
    assert "revenue, promoter: " in out[0] and "passive:" not in out[0]  # the reference group is not compared with itself
    assert out[1].startswith("The two agree")
    pre = np.linspace(10.0, 1000.0, 200)
    rows = [("detractor", x / 4, 1.0, 10 * np.sqrt(x / 4)) for x in pre] + \
           [(g, x, 1.0, 10 * np.sqrt(x)) for g in ("passive", "promoter") for x in pre]
    apart = linkage.RevenueModel("passive", min_group_size=1).fit(_history(rows))
    out = narrative.within_customer_sentences({"revenue": apart, "cost to serve": None}, "passive")
    assert out[1].startswith("The two do not agree for the revenue of detractor customers: part of that gap")
    # small groups are not shown; a skipped model or none says nothing
    small = linkage.RevenueModel("passive", min_group_size=5).fit(_history(ROWS))
    assert narrative.within_customer_sentences({"revenue": small}, "passive") == []
    skipped = linkage.RevenueModel("nobody", min_group_size=1).fit(_history(ROWS))
    assert narrative.within_customer_sentences({"revenue": skipped, "cost to serve": None}, "passive") == []


def test_check_can_be_left_out():
    """within=False (the placebo's models): the same main figures, no check, no columns filled."""
    on = linkage.RevenueModel("passive", min_group_size=1).fit(_history(ROWS))
    off = linkage.RevenueModel("passive", min_group_size=1, within=False).fit(_history(ROWS))
    assert on.within and not off.within
    assert off.summary["within_ratio"].isna().all() and off.summary["within_customers"].isna().all()
    pd.testing.assert_series_equal(off.summary["ratio"], on.summary["ratio"])
    assert off.results()["detractor"]["within_customer_ratio"] is None


def test_no_check_when_only_the_reference_group_had_a_level_before():
    """Only the passives had revenue before the survey: there is nothing to compare them with, so the check
    is left out for every group (the reference's 1 included), not fitted on the passives alone."""
    rows = [(g, pre if g == "passive" else 0.0, e, y) for g, pre, e, y in ROWS]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_history(rows))
    assert m.fitted and m.summary["ratio"].notna().all()
    assert m.summary["within_ratio"].isna().all()
    assert m.summary["within_customers"].tolist() == [0.0, 3.0, 0.0]
