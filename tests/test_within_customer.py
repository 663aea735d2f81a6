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
    # the within-customer comparison is revenue's headline; the covariate-adjusted one adjusts for the level
    # before instead of dividing by it, and is kept beside it
    assert m.method_ == "within"
    assert s["ratio"].tolist() == s["within_ratio"].tolist() and s["ratio_lo"].tolist() == s["within_lo"].tolist()
    assert s.loc["detractor", "covariates_ratio"] != pytest.approx(s.loc["detractor", "within_ratio"], rel=1e-3)
    r = m.results()
    assert r["detractor"]["ratio"] == pytest.approx(180 / 340, rel=1e-6)
    assert r["detractor"]["covariate_adjusted_ratio"] == s.loc["detractor", "covariates_ratio"]
    assert r["detractor"]["covariate_adjusted_ratio_ci"] == [s.loc["detractor", "covariates_lo"],
                                                             s.loc["detractor", "covariates_hi"]]
    assert r["detractor"]["within_customer_ratio"] == pytest.approx(180 / 340, rel=1e-6)
    assert r["detractor"]["within_customer_ratio_ci"] == [s.loc["detractor", "within_lo"], s.loc["detractor", "within_hi"]]
    assert r["passive"]["within_customer_ratio"] == 1.0
    # cost to serve: its own pre-window cost is the baseline, the same 10 for everyone, so the check is
    # its main model (same customers, same other terms, a constant offset); referrals have no check
    c = linkage.CostToServeModel("passive", min_group_size=1).fit(_history(ROWS))
    assert c.method_ == "covariates" and "covariate_adjusted_ratio" not in c.results()["detractor"]
    assert c.summary["within_customers"].tolist() == [2.0, 4.0, 2.0]
    for lo, hi in (("ratio", "within_ratio"), ("ratio_lo", "within_lo"), ("ratio_hi", "within_hi")):
        assert c.summary[hi].tolist() == pytest.approx(c.summary[lo].tolist(), rel=1e-9)
    ref = linkage.ReferralModel("passive", min_group_size=1).fit(
        _history(ROWS).assign(post_referred=[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]))
    assert ref.summary["within_ratio"].isna().all() and "within_customer_ratio" not in ref.results()["passive"]


def test_no_check_without_a_reference_level_before_the_survey():
    """Nobody of the reference group had revenue before the survey: the check is left out (NaN, None in
    results.json), the covariate-adjusted comparison is the headline and a caveat says why."""
    rows = [(g, 0.0 if g == "passive" else pre, e, y) for g, pre, e, y in ROWS]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_history(rows))
    assert m.fitted and m.summary["ratio"].notna().all() and m.method_ == "covariates"
    assert m.summary["ratio"].tolist() == m.summary["covariates_ratio"].tolist()
    assert [w for w in m.warnings_ if "too few customers had a level before the survey" in w] == [
        "Revenue: too few customers had a level before the survey to compare the groups with themselves, so the gap "
        "is measured against comparable customers only (controls for what the data records before the survey)."]
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
    assert s.loc["detractor", "covariates_ratio"] == pytest.approx(1.0, abs=0.03)
    assert s.loc["detractor", "within_ratio"] > 1.5  # 2 if nothing else were adjusted for
    assert s.loc["promoter", "within_ratio"] == pytest.approx(1.0, abs=1e-6)
    disagree = [w for w in m.warnings_ if "do not agree" in w]
    assert len(disagree) == 1 and disagree[0].startswith("Revenue: compared with their own level before the survey, "
                                                          "detractor customers read ")
    assert disagree[0].endswith("The first is the headline.")  # the within-customer comparison is revenue's


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
    """The covariate-adjusted revenue ratios miss the truth (their intervals exclude it: about -2.5% /
    +2.5%, five standard errors at this size); the within-customer ones, revenue's headline, cover it,
    and are within 4% (about two of their standard errors) of it."""
    h, cov = noisy_worlds[world]
    m = linkage.RevenueModel("passive", cov).fit(h)
    s = m.summary
    assert m.method_ == "within"
    for g in ("detractor", "promoter"):
        truth = 1.0 if world == "null" else TRUE_EFFECTS["revenue"][g]
        r = s.loc[g]
        assert not r["covariates_lo"] <= truth <= r["covariates_hi"], (g, r["covariates_ratio"], truth)
        assert r["ratio_lo"] <= truth <= r["ratio_hi"], (g, r["ratio"], truth)
        assert r["within_lo"] <= truth <= r["within_hi"], (g, r["within_ratio"], truth)
        assert r["within_ratio"] == pytest.approx(truth, rel=0.04), g
        assert r["within_customers"] > 0.9 * r["customers"]  # nearly everyone had revenue before the survey


def test_the_check_in_words():
    """Revenue's headline is the within-customer comparison, so its check is the covariate-adjusted one;
    cost to serve the other way round. Each is said with its own figures against the headline's."""
    agree = linkage.RevenueModel("passive", min_group_size=1).fit(_history(ROWS))
    cost = linkage.CostToServeModel("passive", min_group_size=1).fit(
        _history(ROWS).assign(pre_contact_cost=[10.0, 20.0, 10.0, 30.0, 10.0, 5.0, 10.0, 20.0],
                              post_contact_cost=[12.0, 30.0, 8.0, 25.0, 4.0, 6.0, 7.0, 10.0]))
    out = narrative.within_customer_sentences({"revenue": agree, "cost to serve": cost}, "passive")
    r, c = agree.summary.loc["detractor"], cost.summary.loc["detractor"]
    assert len(out) == 3
    assert out[0].startswith("A second check compares each customer with themselves")
    assert (f"cost to serve, detractor: {c['within_ratio']:.3f} ({c['within_lo']:.3f} to {c['within_hi']:.3f}) "
            f"against {c['ratio']:.3f}") in out[0] and "revenue" not in out[0].split("Ratios")[1]
    assert out[1].startswith("A second check compares each group with customers who looked alike")
    assert (f"revenue, detractor: {r['covariates_ratio']:.3f} ({r['covariates_lo']:.3f} to {r['covariates_hi']:.3f}) "
            f"against {r['ratio']:.3f}") in out[1] and r["ratio"] == r["within_ratio"]
    assert "revenue, promoter: " in out[1] and "passive:" not in out[1]  # the reference group is not compared with itself
    assert out[2].startswith("The two agree")
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


def test_how_revenue_was_measured_in_words():
    within = linkage.RevenueModel("passive", min_group_size=1).fit(_history(ROWS))
    said = narrative.revenue_method_sentence(within, 12)
    assert said.startswith("The revenue gaps compare each customer with themselves: what they spent per year after "
                           "the survey against their own level in the 12 months before it (7 customers who had one)")
    rows = [(g, 0.0 if g == "passive" else pre, e, y) for g, pre, e, y in ROWS]
    covariates = linkage.RevenueModel("passive", min_group_size=1).fit(_history(rows))
    assert narrative.revenue_method_sentence(covariates, 12).startswith(
        "The revenue gaps compare each group with customers who looked alike before the survey")
    assert narrative.revenue_method_sentence(linkage.RevenueModel("nobody").fit(_history(ROWS)), 12) == ""


def test_within_headline_prices_each_customer_from_their_own_level():
    """The g-computation under the within-customer headline: each customer's fitted level (the main model's,
    their own group's) moved by the ratio of the two groups' within-customer ratios; ``adjusted`` is its mean
    over everyone, so adjusted / the reference's adjusted is the headline ratio."""
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_history(ROWS))
    # each customer's fitted rate per customer-year (the model keeps its design and estimates, not statsmodels' rows)
    s, fitted = m.summary, np.exp(m.design_ @ m.result_.params[m.design_.columns])
    groups = _history(ROWS)["group"].astype(str)
    w = s["within_ratio"]
    for g in GROUPS:
        expect = fitted * w[g] / groups.map(w).astype(float)
        assert m.predict(g).to_numpy() == pytest.approx(expect.to_numpy(), rel=1e-9), g
        assert s.loc[g, "adjusted"] == pytest.approx(expect.mean(), rel=1e-9), g
    # staying put is the customer's own fitted level
    own = pd.Series([m.predict(g)[i] for i, g in groups.items()], index=groups.index)
    assert own.to_numpy() == pytest.approx(fitted.to_numpy(), rel=1e-9)
    for g in ("detractor", "promoter"):
        assert s.loc[g, "adjusted"] / s.loc["passive", "adjusted"] == pytest.approx(s.loc[g, "ratio"], rel=1e-9)


def test_within_headline_draws_come_from_its_own_fit():
    """The business case's simulation draws revenue ratios from the within-customer fit's covariance: their
    spread on the log scale is that fit's standard error, not the covariate-adjusted one's."""
    from cxvalue.value import effect_draws

    pre = np.linspace(10.0, 1000.0, 60)
    rng = np.random.default_rng(3)
    # spend after the survey grows with the square root of the level before: the two fits disagree (the check
    # reads the smaller detractors as growing) and their standard errors differ
    rows = [(g, x * f, 1.0, 30 * np.sqrt(x * f) * eff * rng.lognormal(0, 0.3)) for g, f, eff in
            (("detractor", 0.5, 0.85), ("passive", 1.0, 1.0), ("promoter", 1.5, 1.08)) for x in pre]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_history(rows))
    d = effect_draws(m, 20_000, seed=5)
    se_within = m.within_result_.bse["group[detractor]"]
    se_cov = m.result_.bse["group[detractor]"]
    assert abs(se_within / se_cov - 1) > 0.2  # the two fits differ enough to tell them apart
    assert np.log(d["detractor"]).std() == pytest.approx(se_within, rel=0.03)
    assert np.exp(np.log(d["detractor"]).mean()) == pytest.approx(m.summary.loc["detractor", "ratio"], rel=0.01)
    assert (d["passive"] == 1.0).all()
    # the reference level by the delta method on the main fit, weighted by each customer's level moved to the
    # reference group, drawn apart from the ratios
    x_ref = m.design_.to_numpy(copy=True)
    x_ref[:, [i for i, c in enumerate(m.design_.columns) if c.startswith("group[")]] = 0.0
    w = m.predict("passive").to_numpy()
    a = (w[:, None] * x_ref).sum(axis=0) / w.sum()
    sd_level = np.sqrt(a @ m.result_.cov_params().to_numpy() @ a)
    assert np.log(d["_level"]).std() == pytest.approx(sd_level, rel=0.03)
    assert abs(np.corrcoef(np.log(d["detractor"]), np.log(d["_level"]))[0, 1]) < 0.03


def test_check_can_be_left_out():
    """within=False: the covariate-adjusted comparison alone (the headline, without a caveat), no check."""
    on = linkage.RevenueModel("passive", min_group_size=1).fit(_history(ROWS))
    off = linkage.RevenueModel("passive", min_group_size=1, within=False).fit(_history(ROWS))
    assert on.within and not off.within and off.method_ == "covariates" and on.method_ == "within"
    assert off.summary["within_ratio"].isna().all() and off.summary["within_customers"].isna().all()
    pd.testing.assert_series_equal(off.summary["ratio"], on.summary["covariates_ratio"], check_names=False)
    assert not [w for w in off.warnings_ if "level before the survey" in w]
    assert off.results()["detractor"]["within_customer_ratio"] is None


def test_no_check_when_only_the_reference_group_had_a_level_before():
    """Only the passives had revenue before the survey: there is nothing to compare them with, so the check
    is left out for every group (the reference's 1 included), not fitted on the passives alone."""
    rows = [(g, pre if g == "passive" else 0.0, e, y) for g, pre, e, y in ROWS]
    m = linkage.RevenueModel("passive", min_group_size=1).fit(_history(rows))
    assert m.fitted and m.summary["ratio"].notna().all()
    assert m.summary["within_ratio"].isna().all()
    assert m.summary["within_customers"].tolist() == [0.0, 3.0, 0.0]
