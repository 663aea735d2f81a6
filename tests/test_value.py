"""CLV per group: closed forms and hand computations."""

import numpy as np
import pandas as pd
import pytest

from cxvalue import value


def test_constant_retention_matches_the_closed_form():
    m, r, d = 100.0, 0.8, 0.10
    survival = r ** np.arange(1, 400)  # effectively an infinite horizon
    assert value.clv(m, survival, d, timing="end") == pytest.approx(m * r / (1 + d - r))  # 266.67


def test_mid_year_timing_by_hand():
    # year 1: (1 + 0.8) / 2 = 0.9 customer-years -> 90 / 1.1 = 81.818
    # year 2: (0.8 + 0.64) / 2 = 0.72           -> 72 / 1.21 = 59.504
    assert value.clv(100.0, [0.8, 0.64], 0.10) == pytest.approx(81.8181818 + 59.5041322)


def test_yearly_survival_reads_the_curve_and_extrapolates():
    days, kept = [0.0, 365.25, 730.5], [1.0, 0.8, 0.64]
    # two observed years (retention 0.8 a year), the third continues the same hazard
    assert value.yearly_survival(days, kept, 3) == pytest.approx([0.8, 0.64, 0.512])
    # a group leaving twice as fast: S ** 2
    assert value.yearly_survival(days, kept, 2, hazard_ratio=2.0) == pytest.approx([0.64, 0.4096])


def test_yearly_survival_reads_each_year_and_continues_the_last_one():
    """A curve that loses 10% in year 1, then 30% of those left in year 2, followed to day 900:
    years 1 and 2 are read, year 3 continues year 2's retention 0.7 (not year 1's 0.9, nor the
    two years' average sqrt(0.63) = 0.794); a step between year ends is read as it stands."""
    days = [0.0, 100.0, 365.25, 500.0, 730.5, 900.0]
    kept = [1.0, 0.95, 0.9, 0.8, 0.63, 0.6]
    assert value.yearly_survival(days, kept, 4) == pytest.approx([0.9, 0.63, 0.63 * 0.7, 0.63 * 0.7**2])
    assert value.yearly_survival(days, kept, 3, hazard_ratio=0.5) == pytest.approx(
        np.sqrt([0.9, 0.63, 0.63 * 0.7]))
    # less than a year followed: S(t) = S_last ** (t / last_day), the observed hazard stretched
    assert value.yearly_survival([0.0, 200.0], [1.0, 0.9], 2) == pytest.approx(
        [0.9 ** (365.25 / 200), 0.9 ** (730.5 / 200)])


def test_group_clv_discounts_by_hand():
    """Three years at 8%: margin 0.5 x 1000 - 60 = 440; reference survival 0.8, 0.6, 0.5 (read,
    not extrapolated), this group leaving 1.5 times as fast: S = 0.8^1.5, 0.6^1.5, 0.5^1.5 =
    0.71554, 0.46476, 0.35355. Customer-years (S(t-1) + S(t)) / 2 = 0.85777, 0.59015, 0.40916,
    each year's cash discounted by 1.08^t."""
    revenue = pd.DataFrame({"adjusted": [1000.0]}, index=["low"])
    cost = pd.DataFrame({"adjusted": [60.0]}, index=["low"])
    churn = pd.DataFrame({"hazard_ratio": [1.5]}, index=["low"])
    curve = pd.DataFrame({"days": [0.0, 365.25, 730.5, 1095.75], "retained": [1.0, 0.8, 0.6, 0.5]})
    out = value.group_clv(revenue, cost, churn, curve, gross_margin=0.5, discount_rate=0.08, horizon_years=3)
    s = [1.0, 0.8**1.5, 0.6**1.5, 0.5**1.5]
    by_hand = sum(440.0 * (s[t - 1] + s[t]) / 2 / 1.08**t for t in (1, 2, 3))  # 349.46 + 222.63 + 142.92
    assert out.loc["low", "clv"] == pytest.approx(by_hand, rel=1e-12)
    assert out.loc["low", "clv"] == pytest.approx(349.462 + 222.622 + 142.912, abs=2e-3)  # the sum written out
    assert out.loc["low", "retention_year_1"] == pytest.approx(0.8**1.5)


def test_group_clv_by_hand():
    revenue = pd.DataFrame({"adjusted": [1000.0, 1200.0]}, index=["low", "high"])
    cost = pd.DataFrame({"adjusted": [60.0, 40.0]}, index=["low", "high"])
    churn = pd.DataFrame({"hazard_ratio": [2.0, 1.0]}, index=["low", "high"])
    curve = pd.DataFrame({"days": [0.0, 365.25], "retained": [1.0, 0.8]})
    out = value.group_clv(revenue, cost, churn, curve, gross_margin=0.5, discount_rate=0.0, horizon_years=1)
    # low: margin 0.5 * 1000 - 60 = 440; S(1) = 0.8 ** 2 = 0.64; customer-years (1 + 0.64) / 2 = 0.82
    assert out.loc["low", "margin_per_year"] == pytest.approx(440.0)
    assert out.loc["low", "clv"] == pytest.approx(440.0 * 0.82)
    # high: margin 560; S(1) = 0.8; customer-years 0.9
    assert out.loc["high", "clv"] == pytest.approx(560.0 * 0.9)
    assert out.loc["high", "retention_year_1"] == pytest.approx(0.8)


@pytest.mark.parametrize("within", [False, True])
def test_effect_draws_follow_the_fitted_sampling_distribution(within):
    """Drawn from the headline's own fit: the covariate-adjusted GLM, or (revenue's headline) the
    within-customer one, whose standard errors are about 1.3 times as large on this world."""
    from cxvalue import data, history, linkage
    from cxvalue.config import load_params
    from cxvalue.synthetic import generate

    world = generate(n_customers=3_000, seed=12)
    p = load_params({"as_of": world.truth["as_of"]})
    checked = data.check(world.tables, p)
    model = linkage.RevenueModel("passive", list(checked.covariates), within=within).fit(history.history(checked, p))
    assert model.method_ == ("within" if within else "covariates")
    res = model.within_result_ if within else model.result_
    n = 20_000
    draws = value.effect_draws(model, n, seed=1)
    assert (draws["passive"] == 1.0).all()
    # tolerances: 4 standard errors of a mean (se / sqrt(n)) and of a standard deviation of n normal
    # draws (relative se 1 / sqrt(2 (n - 1)) = 0.005)
    for g in ("detractor", "promoter"):
        logs = np.log(draws[g])
        se = res.bse[f"group[{g}]"]
        assert logs.mean() == pytest.approx(res.params[f"group[{g}]"], abs=4 * se / np.sqrt(n))
        assert logs.std() == pytest.approx(se, rel=4 / np.sqrt(2 * (n - 1)))
    again = value.effect_draws(model, 20_000, seed=1)
    pd.testing.assert_frame_equal(draws, again)  # seeded


@pytest.fixture(scope="module")
def fitted_world():
    from cxvalue import data, history, linkage
    from cxvalue.config import load_params
    from cxvalue.synthetic import generate

    world = generate(n_customers=3_000, seed=12)
    p = load_params({"as_of": world.truth["as_of"]})
    checked = data.check(world.tables, p)
    h = history.history(checked, p)
    cov = list(checked.covariates)
    # the covariate-adjusted headline: its ratios and reference level are drawn jointly from one fit (the
    # within-customer headline draws them from two: test_within_customer.py)
    return h, linkage.RevenueModel("passive", cov, within=False).fit(h), linkage.ChurnModel("passive", cov).fit(h)


def test_reference_level_draws_match_a_numerical_delta_method(fitted_world):
    """The reference group's adjusted revenue is uncertain too: the spread of the drawn level
    matches a delta method computed independently, by re-running the g-computation at nudged
    coefficients (central differences) instead of the analytic gradient."""
    _, model, _ = fitted_world
    res, X = model.result_, model.design_
    x_ref = X.copy()
    x_ref[[c for c in X.columns if c.startswith("group[")]] = 0.0

    def log_level(beta):
        return np.log(np.mean(np.exp(x_ref.to_numpy() @ beta)))

    beta = res.params[X.columns].to_numpy()
    step = 1e-5
    grad = np.array([(log_level(beta + step * e) - log_level(beta - step * e)) / (2 * step) for e in np.eye(beta.size)])
    sd = float(np.sqrt(grad @ res.cov_params().loc[X.columns, X.columns].to_numpy() @ grad))
    n = 20_000
    draws = value.effect_draws(model, n, seed=3)
    # 4 standard errors of a standard deviation (relative 1 / sqrt(2 (n - 1))) and of a mean (sd / sqrt(n))
    assert np.log(draws["_level"]).std() == pytest.approx(sd, rel=4 / np.sqrt(2 * (n - 1)))
    assert np.log(draws["_level"]).mean() == pytest.approx(0.0, abs=4 * sd / np.sqrt(n))
    assert 0.005 < sd < 0.2  # a real, not negligible, uncertainty on a world of 3,000


def test_level_and_ratio_draws_are_joint(fitted_world):
    """The level moves with the ratios as the coefficients do: the covariance of a drawn log ratio
    and the drawn log level is the delta method's cross term cov(b_g, grad . b)."""
    _, model, _ = fitted_world
    res, X = model.result_, model.design_
    x_ref = X.to_numpy(copy=True)
    pos = [i for i, c in enumerate(X.columns) if c.startswith("group[")]
    x_ref[:, pos] = 0.0
    beta = res.params[X.columns].to_numpy()
    w = np.exp(x_ref @ beta)
    grad = (w[:, None] * x_ref).sum(axis=0) / w.sum()
    cov = res.cov_params().loc[X.columns, X.columns].to_numpy()
    n = 40_000
    draws = value.effect_draws(model, n, seed=5)
    for g in ("detractor", "promoter"):
        i = list(X.columns).index(f"group[{g}]")
        cross = float(cov[i] @ grad)
        sd_g, sd_l = np.sqrt(cov[i, i]), np.sqrt(grad @ cov @ grad)
        got = np.cov(np.log(draws[g]), np.log(draws["_level"]))[0, 1]
        # 4 standard errors of a sample covariance of n normal pairs: sqrt((sd_g^2 sd_l^2 + cross^2) / n)
        assert got == pytest.approx(cross, abs=4 * np.sqrt((sd_g**2 * sd_l**2 + cross**2) / n))
        assert abs(cross) > 4 * np.sqrt((sd_g**2 * sd_l**2 + cross**2) / n)  # a correlation there is to find


def test_level_draws_stay_finite_near_separation():
    """A small world with a customer tier whose 30 customers referred nobody (separation: its
    coefficient runs off to about -15): drawing every coefficient of the referral model puts the
    reference level beyond 1e6 in some draws, yet the drawn level keeps the delta method's spread
    (as drawing only the group coefficients and the log level does)."""
    from cxvalue import data, history, linkage
    from cxvalue.config import load_params
    from cxvalue.synthetic import generate

    world = generate(n_customers=2_000, seed=11, messy=True)
    p = load_params({"as_of": world.truth["as_of"]})
    checked = data.check(world.tables, p)
    h = history.history(checked, p)
    nobody = h.index[(h["post_referred"] == 0) & (h["post_exposure_years"] > 0)][:30]
    h["tier"] = np.where(h.index.isin(nobody), "rare", "main")
    model = linkage.ReferralModel("passive", list(checked.covariates) + ["tier"]).fit(h)
    res = model.result_
    assert res.params["tier_rare"] < -10  # separated
    cov = np.nan_to_num(res.cov_params().to_numpy())
    x_ref = model.design_[res.params.index].to_numpy(copy=True)
    x_ref[:, [i for i, c in enumerate(res.params.index) if c.startswith("group[")]] = 0.0
    every = np.random.default_rng(3).multivariate_normal(res.params.to_numpy(), cov, 4_000, method="eigh")
    naive = np.exp(x_ref @ every.T).mean(axis=0) / np.exp(x_ref @ res.params.to_numpy()).mean()
    assert naive.max() > 1e6  # the ill-determined fit this is about
    draws = value.effect_draws(model, 4_000, seed=3)
    w = np.exp(x_ref @ res.params.to_numpy())
    grad = (w[:, None] * x_ref).sum(axis=0) / w.sum()
    sd = float(np.sqrt(grad @ cov @ grad))
    assert np.isfinite(draws.to_numpy()).all() and draws["_level"].max() < 20
    assert np.log(draws["_level"]).std() == pytest.approx(sd, rel=0.1)


def test_reference_curve_draws_use_the_greenwood_error(fitted_world):
    """Churn draws scale the reference Kaplan-Meier curve's cumulative hazard by a factor whose
    log has the Greenwood standard error of log(-log S) at one year, computed here by hand."""
    h, _, churn = fitted_world
    ref = h[h["group"].astype(str) == "passive"]
    d, t = ref["duration_days"].to_numpy(float), ref["churned"].to_numpy(bool)
    s, green = 1.0, 0.0
    for u in np.unique(d[t & (d <= 365.25)]):
        at_risk, deaths = (d >= u).sum(), ((d == u) & t).sum()
        s *= 1 - deaths / at_risk
        green += deaths / (at_risk * (at_risk - deaths))
    expected = np.sqrt(green) / abs(np.log(s))  # se(S) / (S |log S|), se(S) = S sqrt(sum d / n(n - d))
    assert churn.reference_curve_se_ == pytest.approx(expected, rel=1e-6)
    n = 20_000
    draws = value.effect_draws(churn, n, seed=4)
    assert np.log(draws["_level"]).std() == pytest.approx(expected, rel=4 / np.sqrt(2 * (n - 1)))  # 4 se of an sd


def test_margin_comes_from_transaction_cost_when_present(fitted_world):
    """The synthetic world's transactions cost 35% of their amount: its margin is 65%."""
    h, _, _ = fitted_world
    assert "post_cogs" in h
    assert value.measured_gross_margin(h) == pytest.approx(0.65, abs=1e-3)
    assert value.measured_gross_margin(h.drop(columns=["pre_cogs", "post_cogs"])) is None


def test_pipeline_uses_the_measured_margin_unless_told_otherwise():
    from cxvalue import pipeline
    from cxvalue.config import load_params
    from cxvalue.synthetic import generate

    world = generate(n_customers=2_000, seed=5)
    p = load_params({"as_of": world.truth["as_of"], "scenario.draws": 200})
    auto = pipeline.analyse(world.tables, p)
    assert auto.margin_source == "transaction cost" and auto.params["gross_margin"] == pytest.approx(0.65, abs=1e-3)
    fixed = pipeline.analyse(world.tables, {**p, "margin_source": "parameter"})
    assert fixed.margin_source == "parameter" and fixed.params["gross_margin"] == 0.6
    m = auto.case.clv["margin_per_year"] - fixed.case.clv["margin_per_year"]
    extra = auto.params["gross_margin"] - 0.6  # about 5 more points of margin on every unit of revenue
    assert (m - extra * auto.revenue.summary["adjusted"]).abs().max() < 1e-6
    no_cost = {**world.tables, "transactions": world.transactions.drop(columns="cost")}
    assert pipeline.analyse(no_cost, p).params["gross_margin"] == 0.6
