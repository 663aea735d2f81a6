"""Key drivers and journeys vs touchpoints: hand-computed numbers and recovery of the synthetic truth."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cxvalue import data, drivers, history
from cxvalue.config import load_params
from cxvalue.exceptions import InputError
from cxvalue.synthetic import generate

NPS_BANDS = {"detractor": [0, 6], "passive": [7, 8], "promoter": [9, 10]}

# Two correlated predictors, worked by hand (centred sums of squares and products):
# x1c = [-.5, -.5, .5, .5], x2c = [-.75, .25, .25, .25], yc = [-1.5, -.5, .5, 1.5]
# S11 = 1, S22 = .75, S12 = .5, S1y = 2, S2y = 1.5, Syy = 5
# R²(x1) = 2² / (1 * 5) = .8;  R²(x2) = 1.5² / (.75 * 5) = .6
# both: b = [[1, .5], [.5, .75]]^-1 [2, 1.5] = [1.5, 1]; R² = (1.5 * 2 + 1 * 1.5) / 5 = .9
# Shapley: x1 = (.8 + (.9 - .6)) / 2 = .55, x2 = (.6 + (.9 - .8)) / 2 = .35; shares .55/.9, .35/.9
TINY = pd.DataFrame({"x1": [0, 0, 1, 1], "x2": [0, 1, 1, 1], "y": [0, 1, 2, 3]})


def test_subset_r2_and_shapley_by_hand():
    r2 = drivers.subset_r2(TINY[["x1", "x2"]].to_numpy(), TINY["y"].to_numpy())
    assert r2 == pytest.approx([0.0, 0.8, 0.6, 0.9])
    assert drivers.shapley_values(r2) == pytest.approx([0.55, 0.35])


def test_subset_r2_matches_statsmodels_ols():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]])
    y = X @ [0.5, -0.2, 0.1] + rng.normal(size=300)
    r2 = drivers.subset_r2(X, y)
    for mask in range(1, 8):
        cols = [j for j in range(3) if mask >> j & 1]
        assert r2[mask] == pytest.approx(sm.OLS(y, sm.add_constant(X[:, cols])).fit().rsquared, rel=1e-10)
    assert drivers.shapley_values(r2).sum() == pytest.approx(r2[-1])


def test_key_drivers_on_the_hand_worked_data():
    """Five copies of the tiny data (copies leave every R² unchanged): shares .55/.9 and .35/.9."""
    rows = pd.concat([TINY] * 5, ignore_index=True)
    responses = pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(rows))], "response_date": "2024-01-01",
                              "nps": rows["y"], "attr_a": rows["x1"], "attr_b": rows["x2"]})
    kd = drivers.KeyDrivers(min_cell_size=1, n_boot=20).fit(responses)
    s = kd.summary
    assert s.loc["attr_a", "importance"] == pytest.approx(0.55 / 0.9)
    assert s.loc["attr_b", "importance"] == pytest.approx(0.35 / 0.9)
    assert s["importance"].sum() == pytest.approx(1.0)
    assert kd.r2_ == pytest.approx(0.9)
    assert s.loc["attr_a", "coefficient"] == pytest.approx(1.5) and s.loc["attr_b", "coefficient"] == pytest.approx(1.0)
    assert list(s.index) == ["attr_a", "attr_b"] and list(s["rank"]) == [1, 2]
    # scale (0, 1): only the ratings of 0 can gain, so the mean score gain is coefficient x share at 0
    assert s.loc["attr_a", "score_gain_per_point"] == pytest.approx(1.5 * 0.5)
    assert s.loc["attr_b", "score_gain_per_point"] == pytest.approx(1.0 * 0.25)
    assert s.loc["attr_b", "top_box_share"] == pytest.approx(1.0)  # top-two box of a 0-1 scale: everyone


def test_band_shares_and_value_per_point_by_hand():
    # scores 6, 8, 9 shifted by .3 span [5.8, 6.8), [7.8, 8.8), [8.8, 9.8); cuts at 6.5 and 8.5:
    # detractor .7, passive .3 + .7, promoter .3 + 1 -> divided by 3 respondents
    shifted = drivers.band_shares(np.array([6, 8, 9]), 0.3, NPS_BANDS)
    assert shifted.to_dict() == pytest.approx({"detractor": 0.7 / 3, "passive": 1.0 / 3, "promoter": 1.3 / 3})
    assert drivers.band_shares(np.array([6, 8, 9]), 0.0, NPS_BANDS).to_dict() == pytest.approx(
        {"detractor": 1 / 3, "passive": 1 / 3, "promoter": 1 / 3})
    assert drivers.band_shares(np.array([10]), 2.5, NPS_BANDS)["promoter"] == 1.0  # the top band is open above
    shifts = pd.DataFrame({"detractor": [-0.1], "passive": [0.0], "promoter": [0.1]}, index=["attr_a"])
    value = pd.Series({"detractor": 500.0, "passive": 1000.0, "promoter": 1200.0})
    # 1,000 customers x (-.1 x 500 + .1 x 1,200) = 70,000 a year
    assert drivers.value_per_point(shifts, value, 1_000)["attr_a"] == pytest.approx(70_000)
    with pytest.raises(InputError, match="promoter"):
        drivers.value_per_point(shifts, value.drop("promoter"), 1_000)


def test_money_per_point_is_zero_without_a_coefficient_and_largest_for_the_top_driver():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 11, size=(2_000, 3))
    score = 0.6 * x[:, 0] + 0.3 * x[:, 1]  # attr_c plays no part: its OLS coefficient is 0
    responses = pd.DataFrame({"customer_id": np.arange(2_000).astype(str), "response_date": "2024-01-01",
                              "nps": score, "attr_a": x[:, 0], "attr_b": x[:, 1], "attr_c": x[:, 2]})
    kd = drivers.KeyDrivers(n_boot=0).fit(responses)
    assert kd.summary.loc["attr_c", "coefficient"] == pytest.approx(0.0, abs=1e-9)
    money = kd.value_per_point(pd.Series({"detractor": 600.0, "passive": 1000.0, "promoter": 1150.0}), 10_000)
    assert money["attr_c"] == pytest.approx(0.0, abs=1e-6)
    assert money["attr_a"] > money["attr_b"] > 0
    assert kd.share_shifts_.sum(axis=1).to_numpy() == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def world20k():
    w = generate(n_customers=20_000, seed=5)
    p = load_params(overrides={"as_of": w.truth["as_of"]})
    return w, p, data.check(w.tables, p)


def test_key_drivers_recover_the_synthetic_importance(world20k):
    """With independent drivers the Shapley share is the squared standardised weight over their
    sum: truth ``driver_importance`` = product .533, support .300, price .133, ease .033 (a
    2-million-draw simulation of the world's rounding and clipping gives .532/.301/.134/.033)."""
    w, p, checked = world20k
    kd = drivers.KeyDrivers.from_params(p).fit(checked)
    s = kd.summary
    truth = {f"attr_{k}": v for k, v in w.truth["driver_importance"].items()}
    assert list(s.index) == sorted(truth, key=truth.get, reverse=True)  # product > support > price > ease
    for d, share in truth.items():
        assert s.loc[d, "importance"] == pytest.approx(share, abs=0.04)
        assert s.loc[d, "importance_lo"] < s.loc[d, "importance"] < s.loc[d, "importance_hi"]
        assert s.loc[d, "importance_hi"] - s.loc[d, "importance_lo"] < 0.08
    assert s["importance"].sum() == pytest.approx(1.0)
    # attribute ratings are 6.5 + 1.5 z: mean 6.5, top-two box (9-10) P(z > 1.67 - noise) about 11%
    assert s["mean_rating"].to_numpy() == pytest.approx(6.5, abs=0.1)
    assert s["top_box_share"].to_numpy() == pytest.approx(0.11, abs=0.02)
    value = pd.Series({"detractor": 800.0, "passive": 1000.0, "promoter": 1100.0})
    res = kd.results(value, 10_000)
    money = res["value_per_point"]
    assert money["attr_product"] > money["attr_support"] > money["attr_price"] > money["attr_ease"] > 0
    assert set(res["importance"]) == set(truth) and kd.warnings_ == []


def test_journey_scores_as_drivers_get_their_true_share_of_zero(world20k):
    """In the synthetic world journey experience is independent of the NPS latent: share 0."""
    w, p, checked = world20k
    kd = drivers.KeyDrivers.from_params(p, journey_drivers=True, n_boot=100).fit(checked)
    s = kd.summary
    journeys = [d for d in s.index if d.startswith("journey_")]
    assert sorted(journeys) == ["journey_billing", "journey_onboarding", "journey_support"]
    assert (s.loc[journeys, "importance"] < 0.03).all()
    assert list(s.index[:4]) == ["attr_product", "attr_support", "attr_price", "attr_ease"]
    assert s.loc["journey_billing", "scale_max"] == 5.0
    assert any("have every driver rated" in m for m in kd.warnings_)


def test_bootstrap_spread_matches_the_spread_between_samples():
    """The bootstrap standard error of a share is close to its true sampling spread."""
    rng = np.random.default_rng(11)
    shares, ses = [], []
    for _ in range(25):
        x = rng.normal(size=(800, 3))
        y = x @ [0.6, 0.4, 0.2] + rng.normal(size=800)
        responses = pd.DataFrame({"customer_id": np.arange(800).astype(str), "response_date": "2024-01-01",
                                  "nps": y, "attr_a": x[:, 0], "attr_b": x[:, 1], "attr_c": x[:, 2]})
        kd = drivers.KeyDrivers(n_boot=60, seed=int(rng.integers(1 << 30))).fit(responses)
        shares.append(kd.summary.loc["attr_a", "importance"])
        ses.append(kd.boot_shares_[:, 0].std())
    assert np.mean(shares) == pytest.approx(0.36 / 0.56, abs=0.02)  # squared weights .36 / (.36 + .16 + .04)
    assert 0.7 < np.mean(ses) / np.std(shares) < 1.4


def test_bootstrap_resample_equals_the_resampled_rows():
    """Each resample's shares, computed from per-customer sums, are those of the resampled rows
    themselves (every response of a drawn customer, as often as the customer was drawn): the same
    draws, rebuilt as rows and decomposed with :func:`subset_r2`. Customers answer 1 to 3 times."""
    rng = np.random.default_rng(5)
    customer = pd.Series(np.repeat(np.arange(60), rng.integers(1, 4, 60)).astype(str))
    X = rng.integers(0, 6, (len(customer), 3)).astype(float)
    y = X @ [0.7, 0.2, 0.1] + rng.normal(0, 1, len(customer))
    kd = drivers.KeyDrivers(n_boot=4, seed=9)
    boot = kd._bootstrap(X, y, customer)
    draws = np.random.default_rng(9)
    codes = pd.factorize(customer)[0]
    for b in range(4):
        times = np.bincount(draws.integers(0, 60, 60), minlength=60)[codes]
        idx = np.repeat(np.arange(len(y)), times)
        r2 = drivers.subset_r2(X[idx], y[idx])
        assert boot[b] == pytest.approx(drivers.shapley_values(r2) / r2[-1], rel=1e-9)


def test_a_resample_with_a_constant_rating_still_decomposes():
    """Resample counts that keep only customers who gave driver a the same rating: a has no
    variance, so its share is 0 and b's is 1 (no linear-algebra error from a singular matrix)."""
    z = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 2.0, 2.5], [3.0, 5.0, 1.0]])
    table = drivers._customer_cross_products(z, np.arange(4), 4)
    r2 = drivers._subset_r2(drivers._resample_root(table, np.array([2.0, 1.0, 1.0, 0.0]), z, z))
    # rows drawn: (1, 0, 0) twice, (1, 1, 1), (1, 2, 2.5): b and y centred [-.75, -.75, .25, 1.25] and
    # [-.875, -.875, .125, 1.625]; r2(b) = Sby^2 / (Sbb Syy) = 3.375^2 / (2.75 * 4.1875)
    assert r2 == pytest.approx([0.0, 0.0, 3.375**2 / (2.75 * 4.1875), 3.375**2 / (2.75 * 4.1875)], abs=1e-12)
    assert drivers.shapley_values(r2) / r2[-1] == pytest.approx([0.0, 1.0], abs=1e-12)


def test_bootstrap_of_ratings_far_from_zero_centres_them_first():
    """Ratings and scores shifted by 10^8 (a scale that starts far from 0) give the same shares: the
    bootstrap centres the columns before it sums their cross-products. Without centring (or centred on
    one mean for all columns) the sums of squares of numbers near 10^8 lose the ratings' spread to rounding."""
    rng = np.random.default_rng(8)
    customer = pd.Series(np.repeat(np.arange(80), 2).astype(str))
    X = rng.integers(0, 11, (160, 3)).astype(float)
    y = X @ [0.5, 0.3, 0.2] + rng.normal(0, 1, 160)
    near = drivers.KeyDrivers(n_boot=5, seed=2)._bootstrap(X, y, customer)
    far = drivers.KeyDrivers(n_boot=5, seed=2)._bootstrap(X + [1e8, 2e8, 3e8], y + 1e8, customer)
    assert far == pytest.approx(near, abs=1e-6)


def test_bootstrap_with_every_driver_constant_has_no_shares_and_no_warning():
    """A resample in which no driver varies (one customer, who always gave the same ratings) explains
    nothing: every R² is exactly 0 and the shares are NaN, not 0 / 0 with numpy's warning."""
    X = np.array([[3.0, 7.0]] * 4)
    y = np.array([1.0, 4.0, 2.0, 5.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = drivers.KeyDrivers(n_boot=3)._bootstrap(X, y, pd.Series(["a"] * 4))
    assert np.isnan(out).all() and out.shape == (3, 2)


def _shares_of_the_rows(X, y, customer, n_boot, seed):
    """Each resample's shares from its rows themselves (NaN where the rows explain nothing)."""
    draws = np.random.default_rng(seed)
    codes, n = pd.factorize(customer)[0], customer.nunique()
    out = []
    for _ in range(n_boot):
        idx = np.repeat(np.arange(len(y)), np.bincount(draws.integers(0, n, n), minlength=n)[codes])
        r2 = drivers.subset_r2(X[idx], y[idx])
        out.append(drivers.shapley_values(r2) / r2[-1] if r2[-1] > 0 else np.full(X.shape[1], np.nan))
    return np.array(out)


def test_bootstrap_resamples_that_hold_drivers_constant():
    """Two customers. A always gave ratings (3, 7, 4) and scores 1 and 4; B's first two ratings vary. A
    resample of A twice holds every driver constant (at values away from their means): no shares (NaN),
    as from its rows. Any resample holds the third driver constant at 4: it gets no share and the other two
    split the R² as on the rows (its rounding-level cross-products left in would shift them)."""
    X = np.array([[3.0, 7.0, 4.0], [3.0, 7.0, 4.0], [1.0, 2.0, 4.0], [5.0, 0.0, 4.0], [2.0, 6.0, 4.0]])
    y = np.array([1.0, 4.0, 2.0, 6.0, 5.0])
    customer = pd.Series(["a", "a", "b", "b", "b"])
    boot = drivers.KeyDrivers(n_boot=12, seed=1)._bootstrap(X, y, customer)
    rows = _shares_of_the_rows(X, y, customer, 12, 1)
    assert np.isnan(rows).all(axis=1).any() and not np.isnan(rows).all()  # some resamples drew only A
    np.testing.assert_allclose(boot, rows, rtol=1e-9, atol=1e-12)


def test_small_drivers_are_left_out_and_warned_about(world20k):
    w, p, _ = world20k
    r = w.responses.copy()
    rated = r.index[r["attr_ease"].notna()]
    r.loc[rated[5:], "attr_ease"] = pd.NA
    kd = drivers.KeyDrivers(min_cell_size=10, n_boot=0).fit(r)
    assert "attr_ease" not in kd.summary.index and len(kd.summary) == 3
    assert kd.performance_.loc["attr_ease", "suppressed"] and pd.isna(kd.performance_.loc["attr_ease", "mean_rating"])
    assert any("ease was rated by only 5 respondents" in m for m in kd.warnings_)
    none = drivers.KeyDrivers().fit(r.drop(columns=[c for c in r.columns if c.startswith("attr_")]))
    assert none.results()["importance"] == {} and "no attr_* ratings" in none.warnings_[0]


# --------------------------------------------------------------------------- journeys vs touchpoints


def test_journey_features_read_the_rows_as_documented():
    responses = pd.DataFrame([
        {"customer_id": "A", "response_date": "2024-06-01", "nps": 9, "csat": 5, "journey": "", "touchpoint": ""},
        {"customer_id": "A", "response_date": "2024-03-01", "csat": 4, "journey": "billing", "touchpoint": None},
        {"customer_id": "A", "response_date": "2024-05-01", "csat": 2, "journey": "billing", "touchpoint": None},
        {"customer_id": "A", "response_date": "2024-05-01", "csat": 5, "journey": "billing", "touchpoint": "invoice"},
        {"customer_id": "A", "response_date": "2024-05-01", "csat": 3, "journey": "billing", "touchpoint": "invoice"},
        {"customer_id": "A", "response_date": "2023-05-01", "csat": 1, "journey": "billing", "touchpoint": "portal"},
        {"customer_id": "A", "response_date": "2024-07-01", "csat": 1, "journey": "support", "touchpoint": None},
        {"customer_id": "B", "response_date": "2024-02-01", "csat": 3, "journey": "support", "touchpoint": "chat"},
    ])
    hist = pd.DataFrame({"customer_id": ["A", "B"], "response_date": pd.to_datetime(["2024-06-01", "2024-03-01"])})
    journeys, touch = drivers.journey_features(responses, hist, "csat", lookback_months=12)
    # A: billing whole-journey ratings 4 and 2 -> 3; the support rating after the survey and the
    # portal rating 13 months before it are outside the window; B has only a touchpoint rating
    assert journeys.to_dict("index") == {0: {"journey:billing": 3.0}}
    assert touch.loc[0, "touchpoint:billing/invoice"] == 4.0
    assert touch.loc[1, "touchpoint:support/chat"] == 3.0
    assert "touchpoint:billing/portal" not in touch.columns


@pytest.fixture(scope="module", params=[(0.8, 11), (0.1, 12)], ids=["journeys-world", "touchpoints-world"])
def compared(request):
    signal, seed = request.param
    w = generate(n_customers=8_000, seed=seed, journey_signal=signal)
    p = load_params(overrides={"as_of": w.truth["as_of"]})
    checked = data.check(w.tables, p)
    h = history.history(checked, p)
    return w, drivers.JourneysVsTouchpoints(seed=p["seed"]).fit(checked, h)


def test_the_comparison_finds_the_side_that_carries_the_churn_signal(compared):
    w, jt = compared
    truth = w.truth["journeys_vs_touchpoints"]
    churn = jt.summary.loc["churn_12m"]
    assert churn["winner"] == ("journeys" if truth["journeys_win"] else "touchpoints")
    assert (churn["difference_lo"] > 0) if truth["journeys_win"] else (churn["difference_hi"] < 0)
    assert abs(churn["difference"]) > 0.15  # the winner explains at least 15 points more deviance
    assert churn["difference_lo"] < churn["difference"] < churn["difference_hi"]
    assert 0 < churn["fold_difference_sd"] < abs(churn["difference"])
    assert churn["customers"] > 1_500 and jt.warnings_ == []
    assert len(jt.features_["journey"]) == 3 and len(jt.features_["touchpoint"]) == 7


def test_revenue_is_not_driven_by_either_in_the_synthetic_world(compared):
    """The world's journey experience drives churn only (truth ``drives``); revenue per
    customer-year after the survey is not predicted better by either side."""
    w, jt = compared
    assert w.truth["journeys_vs_touchpoints"]["drives"] == ["churn"]
    revenue = jt.summary.loc["revenue_per_customer_year"]
    assert revenue["winner"] == "neither"
    assert revenue["difference_lo"] < 0 < revenue["difference_hi"]
    assert abs(revenue["journey_explained"]) < 0.05 and abs(revenue["touchpoint_explained"]) < 0.05


def test_journeys_vs_touchpoints_results_are_json_ready(compared):
    import json

    w, jt = compared
    res = json.loads(json.dumps(jt.results()))
    assert set(res["outcomes"]) == {"churn_12m", "revenue_per_customer_year"}
    assert res["outcomes"]["churn_12m"]["winner"] in ("journeys", "touchpoints")
    assert len(res["outcomes"]["churn_12m"]["difference_ci"]) == 2


def test_too_few_journey_ratings_is_a_warning_not_a_crash():
    w = generate(n_customers=600, seed=3)
    p = load_params(overrides={"as_of": w.truth["as_of"]})
    checked = data.check(w.tables, p)
    h = history.history(checked, p)
    jt = drivers.JourneysVsTouchpoints(min_cell_size=1_000).fit(w.responses[w.responses["touchpoint"].isna()], h)
    assert jt.summary.empty and "too few to compare" in jt.warnings_[0]
    assert jt.results()["outcomes"] == {}


def test_a_tiny_but_significant_difference_names_no_winner():
    """With very many customers a 0.002 gap is outside its interval yet does not matter."""
    rng = np.random.default_rng(0)
    n = 200_000
    null = rng.uniform(1.0, 2.0, n)
    journey = null * 0.600  # explains 40.0%
    touchpoint = null * 0.602  # explains 39.8%
    jt = drivers.JourneysVsTouchpoints(n_boot=200)
    row = jt._compare("churn_12m", {"null": null, "journey": journey, "touchpoint": touchpoint}, n,
                      np.random.default_rng(1))
    assert row["difference_lo"] > 0 and row["difference"] == pytest.approx(0.002)
    assert row["winner"] == "neither"
    strict = drivers.JourneysVsTouchpoints(n_boot=200, min_difference=0.0)
    assert strict._compare("churn_12m", {"null": null, "journey": journey, "touchpoint": touchpoint}, n,
                           np.random.default_rng(1))["winner"] == "journeys"


# --------------------------------------------------------------------------- data shapes
# Each analysis on every shape a real export comes in (tests/shapes.py), on 300 customers:
# its result, or the expected skipped reason (a plain sentence), never an exception.

from shapes import SHAPE_CASES, shaped, value_by_group as _value  # noqa: E402

from cxvalue import narrative  # noqa: E402



def _expect(obj, fragment: str | None) -> None:
    """``obj`` was skipped with a reason holding ``fragment`` (None: it ran), and says so in its
    JSON-ready results and its warnings."""
    import json

    res = json.loads(json.dumps(obj.results()))
    if fragment is None:
        assert obj.skipped_ is None and res["skipped"] is None, obj.skipped_
    else:
        assert fragment in obj.skipped_ and res["skipped"] == obj.skipped_
        assert obj.skipped_ in obj.warnings_


KEY_DRIVERS_SKIPPED = {"no attr_*": "add columns named attr_<name> to the responses table"}


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_key_drivers_on_every_shape(name):
    p, checked, h = shaped(name)
    kd = drivers.KeyDrivers.from_params(p, n_boot=5).fit(checked)
    _expect(kd, KEY_DRIVERS_SKIPPED.get(name))
    res = kd.results(_value(p), 1_000)
    sentences = narrative.drivers_sentences(kd, kd.value_per_point(_value(p), 1_000), "USD", p["metric"])
    if kd.skipped_:
        assert res["importance"] == {} and res["value_per_point"] == {}  # contract keys stay, empty
        assert sentences == [narrative.skipped_sentence(kd)]
        assert narrative.drivers_table(kd.summary, pd.Series(dtype=float), "USD").empty
    else:
        assert res["metric"] == p["metric"] and sum(res["importance"].values()) == pytest.approx(1.0)
        assert set(res["value_per_point"]) == set(res["importance"]) == {f"attr_{a}" for a in
                                                                          ("product", "support", "price", "ease")}
        assert len(sentences) == 3


#: the journey surveys carry CSAT and CES, no NPS: keeping only rows with an NPS answer (or with
#: an NPS outside 9-10, for "no promoters") drops them
JOURNEYS_SKIPPED = {"nps only": "need journey surveys", "no journey/touchpoint": "need journey surveys",
                    "nps only, no contacts, no end_date": "need journey surveys", "no promoters": "need journey surveys"}


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_journeys_vs_touchpoints_on_every_shape(name):
    p, checked, h = shaped(name)
    jt = drivers.JourneysVsTouchpoints(n_boot=50, min_cell_size=p["min_cell_size"]).fit(checked, h)
    _expect(jt, JOURNEYS_SKIPPED.get(name))
    sentence = narrative.journeys_sentence(jt)
    if jt.skipped_:
        assert sentence == narrative.skipped_sentence(jt) and jt.summary.empty
        return
    # the journey surveys carry CSAT and CES: whichever exists is compared, whatever the metric
    assert jt.metric_ == ("ces" if name == "ces only" else "csat")
    if name in ("no end_date column", "nobody left"):  # nobody left: churn cannot be predicted
        assert list(jt.summary.index) == ["revenue_per_customer_year"]
        assert any("so churn is not compared" in w for w in jt.warnings_)
    else:
        assert list(jt.summary.index) == ["churn_12m", "revenue_per_customer_year"]
    assert sentence.startswith("Comparing how well")


def test_key_drivers_skip_what_the_data_cannot_support():
    rng = np.random.default_rng(0)
    ratings = rng.integers(0, 10, size=(40, 15))
    responses = pd.DataFrame({"customer_id": [f"c{i}" for i in range(40)], "response_date": "2024-01-01",
                              "nps": ratings[:, :3].sum(axis=1) // 3, **{f"attr_{k}": ratings[:, k] for k in range(15)}})
    two = ["customer_id", "response_date", "nps", "attr_0", "attr_1"]
    kd = drivers.KeyDrivers(min_cell_size=1, n_boot=0).fit(responses)
    assert "at most 14 attributes" in kd.skipped_ and kd.summary.empty and kd.results()["importance"] == {}
    assert kd.fit(responses[two]).skipped_ is None and len(kd.summary) == 2  # a refit forgets the skip
    tiny = drivers.KeyDrivers(n_boot=0).fit(responses.iloc[:12][two])  # 2 drivers need 15 responses
    assert "only 12 have them" in tiny.skipped_ and tiny.n_responses_ == 12
    no_metric = drivers.KeyDrivers(metric="csat").fit(responses)
    assert no_metric.skipped_ == "Key drivers need the CSAT score: the responses table has no column csat."


def test_journeys_vs_touchpoints_skip_without_the_chosen_metric():
    _, checked, h = shaped("as-is csv")
    jt = drivers.JourneysVsTouchpoints(metric="nps", n_boot=10).fit(checked, h)
    assert jt.skipped_ == "Journeys vs touchpoints need NPS ratings on the journey surveys; the responses with a journey carry none."
    assert jt.results()["outcomes"] == {} and jt.results()["metric"] == "nps"
