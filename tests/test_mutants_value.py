"""CLV per group and effect draws: the corners the first tests left open, by hand (tests added for the
mutation run, tests/MUTATION.md)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cxvalue import value


def test_clv_timing_and_a_margin_per_year_by_hand():
    # end of year: 100 x 0.8 / 1.1 + 50 x 0.5 / 1.21 = 72.727 + 20.661
    assert value.clv([100.0, 50.0], [0.8, 0.5], 0.10, timing="end") == pytest.approx(72.7272727 + 20.6611570)
    # mid-year: 100 x 0.9 / 1.1 + 50 x 0.65 / 1.21 = 81.818 + 26.860
    assert value.clv([100.0, 50.0], [0.8, 0.5], 0.10) == pytest.approx(81.8181818 + 26.8595041)
    assert value.clv(10.0, [1.0, 1.0, 1.0], 0.0, timing="mid") == pytest.approx(30.0)
    with pytest.raises(ValueError, match="^timing must be 'mid' or 'end'$"):
        value.clv(100.0, [0.8], 0.1, timing="start")


def test_yearly_survival_corners_by_hand():
    with pytest.raises(ValueError, match="^need a survival curve: days and retained of the same, non-zero length$"):
        value.yearly_survival([], [], 2)
    with pytest.raises(ValueError, match="^need a survival curve: days and retained of the same, non-zero length$"):
        value.yearly_survival([0.0, 365.25], [1.0], 2)
    # everybody gone by the end of year 1: year 2 cannot continue a retention from nothing, it stays at 0
    assert list(value.yearly_survival([0.0, 365.25, 730.5], [1.0, 0.0, 0.0], 3)) == [0.0, 0.0, 0.0]
    # S(0) = 1 by definition (everyone is a customer at the start), whatever the curve holds on day 0: year 2
    # continues year 1's retention 0.81 / 1
    assert value.yearly_survival([0.0, 365.25], [0.9, 0.81], 2) == pytest.approx([0.81, 0.81 * 0.81])
    # a curve whose last point is day 0 (nobody followed): its only value, every year
    assert value.yearly_survival([0.0], [0.95], 2) == pytest.approx([0.95, 0.95])
    # the point just before a year end, not the one just after: day 365 holds 0.8, day 366 0.5
    assert value.yearly_survival([0.0, 365.0, 366.0, 731.0], [1.0, 0.8, 0.5, 0.4], 2) == pytest.approx([0.8, 0.5])
    # a hazard ratio cannot push survival above 1 or below 0
    assert value.yearly_survival([0.0, 365.25], [1.0, 0.5], 1, hazard_ratio=-1.0) == pytest.approx([1.0])


def test_yearly_survival_continues_the_last_full_year_from_a_curve_with_more_days():
    # 1.5 years followed: year 1 read (0.8), year 2 continues year 1's retention 0.8 / 1.0 = 0.8 (not the 0.7 of day 500)
    assert value.yearly_survival([0.0, 365.25, 500.0, 547.0], [1.0, 0.8, 0.7, 0.7], 3) == pytest.approx(
        [0.8, 0.64, 0.512])
    # 2.5 years: year 3 continues year 2's retention 0.6 / 0.8 = 0.75
    assert value.yearly_survival([0.0, 365.25, 730.5, 900.0], [1.0, 0.8, 0.6, 0.55], 3) == pytest.approx(
        [0.8, 0.6, 0.45])


def test_group_clv_missing_pieces_by_hand():
    revenue = pd.DataFrame({"adjusted": [1000.0, 800.0, np.nan, 900.0]}, index=["a", "b", "c", "d"])
    cost = pd.DataFrame({"adjusted": [100.0, np.nan, 10.0]}, index=["a", "b", "c"])  # d: no cost row
    churn = pd.DataFrame({"hazard_ratio": [1.0, 2.0, 1.0]}, index=["a", "b", "c"])  # d: no churn row
    curve = pd.DataFrame({"days": [0.0, 365.25], "retained": [1.0, 0.5]})
    out = value.group_clv(revenue, cost, churn, curve, gross_margin=0.5, discount_rate=0.0, horizon_years=1)
    assert list(out.index) == ["a", "b", "c", "d"]
    # a: margin 500 - 100 = 400, (1 + 0.5) / 2 customer-years
    assert out.loc["a"].to_dict() == pytest.approx({"margin_per_year": 400.0, "retention_year_1": 0.5, "clv": 300.0})
    # b: cost unknown counts 0; S(1) = 0.5 ** 2
    assert out.loc["b"].to_dict() == pytest.approx({"margin_per_year": 400.0, "retention_year_1": 0.25,
                                                    "clv": 400.0 * 0.625})
    assert out.loc["c"].isna().all() and out.loc["d"].isna().all()  # no revenue; no hazard ratio
    # the reference group's yearly survival given: read from it, not the curve; cut to the horizon
    given = value.group_clv(revenue.loc[["a", "b"]], cost, churn, curve, 0.5, 0.0, 1, reference_survival=[0.8, 0.1])
    assert given.loc["a", "clv"] == pytest.approx(400.0 * 0.9)
    assert given.loc["b", "retention_year_1"] == pytest.approx(0.64)
    assert given.loc["b", "clv"] == pytest.approx(400.0 * (1 + 0.64) / 2)


def test_measured_gross_margin_by_hand():
    h = pd.DataFrame({"post_revenue": [100.0, 300.0], "post_cogs": [30.0, 90.0]})
    assert value.measured_gross_margin(h) == pytest.approx(1 - 120 / 400)
    assert value.measured_gross_margin(h.assign(post_revenue=0.0)) is None  # nothing sold: no margin to read
    assert value.measured_gross_margin(h.assign(post_revenue=[-5.0, 5.0])) is None
    assert value.measured_gross_margin(h.drop(columns="post_cogs")) is None


class _Result:
    """The two things effect_draws reads from a statsmodels result."""

    def __init__(self, params: dict[str, float], cov: np.ndarray):
        self.params = pd.Series(params)
        self._cov = pd.DataFrame(cov, index=self.params.index, columns=self.params.index)

    def cov_params(self):
        return self._cov


def test_effect_draws_of_a_skipped_model_are_all_one():
    summary = pd.DataFrame(index=["low", "mid", "high"])
    skipped = SimpleNamespace(result_=None, summary_=summary, fitted=False)
    d = value.effect_draws(skipped, 4, seed=1)
    assert list(d.columns) == ["low", "mid", "high", "_level"] and list(d.index) == [0, 1, 2, 3]
    assert (d.to_numpy() == 1.0).all()
    # a model object that is not fitted is not drawn from, whatever result it still holds
    stale = SimpleNamespace(result_=_Result({"const": 0.0, "group[low]": 0.5}, np.eye(2)), summary_=summary,
                            fitted=False)
    assert (value.effect_draws(stale, 3, seed=1).to_numpy() == 1.0).all()


def test_level_draws_follow_the_delta_method_exactly():
    """Coefficients const, group[low], x with a rank-one covariance: x's draw is always 4 x low's deviation, const
    never moves. Two customers set to the reference group, x = 0 and 1, exp(x b_x) = 1 and 3: the gradient of the
    log level in x is their exp-weighted mean x, 3/4, so log _level = 0.75 x 4 x (b_low - beta_low) exactly."""
    beta = {"const": np.log(200.0), "group[low]": np.log(0.8), "x": np.log(3.0)}
    cov = np.array([[0.0, 0.0, 0.0], [0.0, 0.01, 0.04], [0.0, 0.04, 0.16]])
    design = pd.DataFrame({"const": [1.0, 1.0], "group[low]": [1.0, 0.0], "x": [0.0, 1.0]})
    model = SimpleNamespace(result_=_Result(beta, cov), design_=design, reference_group="mid", fitted=True,
                            summary_=pd.DataFrame(index=["low", "mid"]))
    d = value.effect_draws(model, 2_000, seed=7)
    assert list(d.columns) == ["low", "mid", "_level"]
    assert (d["mid"] == 1.0).all()
    dev = np.log(d["low"]) - np.log(0.8)
    assert np.log(d["_level"]).to_numpy() == pytest.approx(3.0 * dev.to_numpy(), abs=1e-7)
    assert dev.std() == pytest.approx(0.1, rel=4 / np.sqrt(2 * 1_999))  # sd of group[low], 4 standard errors
    again = value.effect_draws(model, 2_000, seed=7)
    pd.testing.assert_frame_equal(d, again)


def test_level_draws_of_a_churn_model_and_of_a_model_with_neither():
    res = _Result({"group[low]": np.log(2.0)}, np.array([[0.04]]))
    churn = SimpleNamespace(result_=res, reference_group="mid", reference_curve_se_=0.3,
                            summary_=pd.DataFrame(index=["low", "mid"]))
    n = 20_000
    d = value.effect_draws(churn, n, seed=2)
    # 4 standard errors of a standard deviation (relative 1 / sqrt(2 (n - 1))) and of a mean (sd / sqrt(n))
    assert np.log(d["_level"]).std() == pytest.approx(0.3, rel=4 / np.sqrt(2 * (n - 1)))
    assert np.log(d["_level"]).mean() == pytest.approx(0.0, abs=4 * 0.3 / np.sqrt(n))
    assert np.log(d["low"]).mean() == pytest.approx(np.log(2.0), abs=4 * 0.2 / np.sqrt(n))
    assert np.log(d["low"]).std() == pytest.approx(0.2, rel=4 / np.sqrt(2 * (n - 1)))
    churn.reference_curve_se_ = float("nan")
    assert (value.effect_draws(churn, 5, seed=2)["_level"] == 1.0).all()


def test_a_skipped_model_without_any_result_and_a_model_without_a_level_error():
    # a skipped linkage model never gets a result_ attribute at all
    skipped = SimpleNamespace(summary_=pd.DataFrame(index=["low", "mid"]), fitted=False)
    assert (value.effect_draws(skipped, 2, seed=1).to_numpy() == 1.0).all()
    # a fitted model with neither a design (rate models) nor a reference curve error (churn): level 1
    bare = SimpleNamespace(result_=_Result({"group[low]": 0.0}, np.array([[0.01]])), reference_group="mid",
                           summary_=pd.DataFrame(index=["low", "mid"]))
    d = value.effect_draws(bare, 3, seed=1)
    assert (d["_level"] == 1.0).all() and (d["mid"] == 1.0).all() and d["low"].nunique() == 3


def test_measured_gross_margin_of_a_small_revenue():
    # under one unit of revenue in all is still revenue: 1 - 0.2 / 0.5
    h = pd.DataFrame({"post_revenue": [0.25, 0.25], "post_cogs": [0.1, 0.1]})
    assert value.measured_gross_margin(h) == pytest.approx(0.6)


def test_group_clv_of_a_group_without_a_cost_row_costs_nothing():
    revenue = pd.DataFrame({"adjusted": [1000.0]}, index=["a"])
    churn = pd.DataFrame({"hazard_ratio": [1.0]}, index=["a"])
    no_cost = pd.DataFrame({"adjusted": []}, index=pd.Index([], dtype=object))
    out = value.group_clv(revenue, no_cost, churn, None, 0.5, 0.0, 1, reference_survival=[1.0])
    assert out.loc["a", "margin_per_year"] == 500.0 and out.loc["a", "clv"] == 500.0


def test_a_curve_followed_for_one_day_stretches_its_hazard():
    # followed one day, 1% gone: S(t) = 0.99 ** (t / 1 day)
    assert value.yearly_survival([0.0, 1.0], [1.0, 0.99], 1) == pytest.approx([0.99 ** 365.25])


def test_draws_from_a_covariance_that_is_not_positive_semi_definite_use_its_nearest_one():
    """Variances 1 and covariance 2 (eigenvalues 3 along (1, 1) and -1 along (1, -1)): the -1 is set to 0, so
    both log ratios are drawn as one, variance 3 x 1/2 = 1.5 each; every draw is a number."""
    res = _Result({"group[low]": np.log(2.0), "group[high]": np.log(3.0)}, np.array([[1.0, 2.0], [2.0, 1.0]]))
    m = SimpleNamespace(result_=res, reference_group="mid", reference_curve_se_=float("nan"),
                        summary_=pd.DataFrame(index=["low", "mid", "high"]))
    n = 20_000
    d = value.effect_draws(m, n, seed=4)
    assert np.isfinite(d.to_numpy()).all()
    lo, hi = np.log(d["low"]) - np.log(2.0), np.log(d["high"]) - np.log(3.0)
    assert lo.to_numpy() == pytest.approx(hi.to_numpy(), abs=1e-9)
    assert lo.std() == pytest.approx(np.sqrt(1.5), rel=4 / np.sqrt(2 * (n - 1)))


def test_draws_under_the_within_headline_take_the_ratios_from_the_within_fit_and_the_level_from_the_main_one():
    """method_ "within": the group ratios are drawn from the within-customer fit (log 0.8 and log 1.5, variances
    0.01 and 0.04, covariance 0.01: correlation 0.5), not the main fit's (log 0.5 and log 2); the level from the
    main fit by the delta method, with each customer's weight the model's own prediction for the reference group
    (2, 1, 1), not exp(x b) (100 for all three): x's gradient is (2 x 0 + 1 + 1) / 4 = 1/2, so log _level has
    variance 0.25 x 0.04 = 0.01 (sd 0.1; with equal weights it would be 2/3 x 0.2), drawn apart from the ratios.
    The main fit's group coefficients are uncorrelated with x, so no part of the level's row but its variance
    is non-zero."""
    main = _Result({"const": np.log(100.0), "group[low]": np.log(0.5), "group[high]": np.log(2.0), "x": 0.0},
                   np.diag([0.0, 0.09, 0.16, 0.04]))
    within = _Result({"const": 0.3, "group[low]": np.log(0.8), "group[high]": np.log(1.5)},
                     np.array([[1.0, 0.0, 0.0], [0.0, 0.01, 0.01], [0.0, 0.01, 0.04]]))
    design = pd.DataFrame({"const": [1.0, 1.0, 1.0], "group[low]": [1.0, 0.0, 0.0], "group[high]": [0.0, 1.0, 0.0],
                           "x": [0.0, 1.0, 1.0]})
    asked = []

    def predict(group):
        asked.append(group)
        return pd.Series([2.0, 1.0, 1.0])

    model = SimpleNamespace(result_=main, within_result_=within, design_=design, method_="within", fitted=True,
                            reference_group="mid", predict=predict, summary_=pd.DataFrame(index=["low", "mid", "high"]))
    n = 20_000
    d = value.effect_draws(model, n, seed=3)
    assert asked == ["mid"]
    assert list(d.columns) == ["low", "high", "mid", "_level"] and (d["mid"] == 1.0).all()
    lo, hi, lev = np.log(d["low"]), np.log(d["high"]), np.log(d["_level"])
    se = 4 / np.sqrt(2 * (n - 1))  # 4 standard errors of a standard deviation, relative
    assert lo.mean() == pytest.approx(np.log(0.8), abs=4 * 0.1 / np.sqrt(n))
    assert hi.mean() == pytest.approx(np.log(1.5), abs=4 * 0.2 / np.sqrt(n))
    assert lo.std() == pytest.approx(0.1, rel=se) and hi.std() == pytest.approx(0.2, rel=se)
    assert np.corrcoef(lo, hi)[0, 1] == pytest.approx(0.5, abs=4 * 0.75 / np.sqrt(n))
    assert lev.std() == pytest.approx(0.1, rel=se) and lev.mean() == pytest.approx(0.0, abs=4 * 0.1 / np.sqrt(n))
    assert abs(np.corrcoef(lo, lev)[0, 1]) < 4 / np.sqrt(n) and abs(np.corrcoef(hi, lev)[0, 1]) < 4 / np.sqrt(n)
