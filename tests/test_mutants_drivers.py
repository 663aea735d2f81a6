"""Key drivers and journeys vs touchpoints by hand (tests added for the mutation run, tests/MUTATION.md).

Tables small enough to work out on paper. Where a number comes from a statistical routine, the
expected value is derived another way in the test: R² of every subset from statsmodels OLS, Shapley
values by averaging the marginal gain over every order the drivers can enter in, a Poisson fit with
one or two groups from its closed form (the rate of a group is its events over its exposure), the
Poisson deviance from its formula. ``KeyDrivers.fit`` and ``JourneysVsTouchpoints.fit`` are decorated
(``@skippable``), so mutmut does not mutate them; they are run here for what they hand to the helpers.
"""

from __future__ import annotations

import itertools
import json
import math
from types import SimpleNamespace

import ibis
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cxvalue import drivers
from cxvalue.config import DEFAULT_BANDS
from cxvalue.exceptions import InputError
from cxvalue.skipping import Skip

NPS_BANDS = {"detractor": [0, 6], "passive": [7, 8], "promoter": [9, 10]}
NA = pd.NA


# --------------------------------------------------------------------------- inputs


def test_responses_frame_from_a_dataframe():
    raw = pd.DataFrame({"customer_id": [1, 2, 3], "response_date": ["2024-01-02", "2024-01-01", "2024-01-03"],
                        "nps": [9, 3, 7], "journey": [" billing ", "  ", None], "touchpoint": ["", " invoice", None]})
    out = drivers.responses_frame(raw)
    assert out["journey"].tolist()[0] == "billing" and out["journey"].isna().tolist() == [False, True, True]
    assert out["touchpoint"].isna().tolist() == [True, False, True] and out["touchpoint"][1] == "invoice"
    assert out["customer_id"].tolist() == ["1", "2", "3"]  # text, in the order given
    assert out["response_date"].tolist() == list(pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-03"]))
    assert str(out["journey"].dtype) == "string" and str(out["touchpoint"].dtype) == "string"
    # the caller's table is left as it was
    assert raw["customer_id"].tolist() == [1, 2, 3] and raw["journey"].tolist()[:2] == [" billing ", "  "]
    assert raw["response_date"].tolist()[0] == "2024-01-02"


def test_responses_frame_without_journey_columns():
    out = drivers.responses_frame(pd.DataFrame({"customer_id": ["a", "b"], "response_date": ["2024-01-01"] * 2,
                                                "nps": [1, 2]}))
    for col in ("journey", "touchpoint"):
        assert str(out[col].dtype) == "string" and out[col].isna().all() and len(out[col]) == 2
    assert list(out.columns) == ["customer_id", "response_date", "nps", "journey", "touchpoint"]


def test_responses_frame_from_checked_data_is_in_a_fixed_order():
    """Rows come ordered by customer, date, then every other column in the table's order."""
    df = pd.DataFrame({"customer_id": ["b", "a", "a", "a"],
                       "response_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-05", "2024-01-05"]),
                       "nps": [5.0, 1.0, 9.0, 3.0], "journey": ["x", "", " y ", None]})
    data = SimpleNamespace(tables={"responses": ibis.memtable(df)})
    out = drivers.responses_frame(data)
    assert out["customer_id"].tolist() == ["a", "a", "a", "b"]
    assert out["nps"].tolist() == [3.0, 9.0, 1.0, 5.0]
    assert out["response_date"].tolist() == list(pd.to_datetime(["2024-01-05", "2024-01-05", "2024-02-01",
                                                                 "2024-01-01"]))
    assert out["journey"].isna().tolist() == [True, False, True, False] and out["journey"][1] == "y"
    assert out["touchpoint"].isna().all()


def test_name():
    assert drivers._name(" Billing & Pay-Later ") == "billing___pay_later"
    assert drivers._name(12) == "12"
    assert drivers._name("Ab1") == "ab1"


def _jm_frame(**cols):
    n = len(next(iter(cols.values())))
    base = {"customer_id": [f"c{i}" for i in range(n)], "response_date": ["2024-01-01"] * n}
    return drivers.responses_frame(pd.DataFrame({**base, **cols}))


NO_JOURNEYS = ("Journeys vs touchpoints need journey surveys: add columns journey and touchpoint to the responses "
               "table (journey = the journey surveyed, such as billing; touchpoint = the step rated, empty for a "
               "rating of the whole journey).")
NO_SCORE = ("Journeys vs touchpoints need a score on the journey surveys: the responses with a journey carry "
            "no nps, csat, ces.")


def test_journey_metric_picks_the_most_rated_score():
    nan = np.nan
    j = ["a", "a", "a", "a", None]
    # on the journey rows: csat 2, ces 3, nps 1 (the relationship row's nps does not count)
    r = _jm_frame(journey=j, csat=[1, 2, nan, nan, nan], ces=[1, 2, 3, nan, nan], nps=[1, nan, nan, nan, 5])
    assert drivers.journey_metric(r) == "ces"
    r = _jm_frame(journey=j, csat=[1, 2, nan, nan, nan], ces=[1, 2, nan, nan, nan], nps=[1, 2, nan, nan, 5])
    assert drivers.journey_metric(r) == "csat"  # a three-way tie: csat
    r = _jm_frame(journey=j, csat=[1, nan, nan, nan, nan], ces=[1, 2, nan, nan, nan], nps=[1, 2, nan, nan, 5])
    assert drivers.journey_metric(r) == "ces"  # ces and nps tie: ces
    r = _jm_frame(journey=j, csat=[1, nan, nan, nan, 4], ces=[1, nan, nan, nan, 4], nps=[1, 2, nan, nan, 5])
    assert drivers.journey_metric(r) == "nps"
    r = _jm_frame(journey=j, nps=[1, nan, nan, nan, nan])
    assert drivers.journey_metric(r) == "nps"  # the only score column
    assert drivers.journey_metric(r, "nps") == "nps"


def test_journey_metric_when_asked_for_one():
    nan = np.nan
    r = _jm_frame(journey=["a", None], csat=[4, nan], nps=[nan, 9])
    assert drivers.journey_metric(r, "csat") == "csat"
    for metric in ("nps", "ces"):  # nps only on a relationship row; no ces column at all
        with pytest.raises(Skip) as e:
            drivers.journey_metric(r, metric)
        assert str(e.value) == (f"Journeys vs touchpoints need {metric.upper()} ratings on the journey surveys; the "
                                f"responses with a journey carry none.")


def test_journey_metric_skips():
    nan = np.nan
    for r in (_jm_frame(nps=[1, 2]), pd.DataFrame({"customer_id": ["a"], "nps": [1]})):  # no journey / no column
        with pytest.raises(Skip) as e:
            drivers.journey_metric(r)
        assert str(e.value) == NO_JOURNEYS
    for r in (_jm_frame(journey=["a", None], nps=[nan, 3], csat=[nan, 2]),  # scores on relationship rows only
              _jm_frame(journey=["a", "b"], other=[1, 2])):  # no score column at all
        with pytest.raises(Skip) as e:
            drivers.journey_metric(r)
        assert str(e.value) == NO_SCORE


def test_journey_ratings():
    r = _jm_frame(journey=["a", "a", None, "b"], touchpoint=["t", None, None, None], csat=[4, 5, 3, np.nan],
                  extra=[1, 2, 3, 4])
    out = drivers._journey_ratings(r, "csat")
    assert list(out.columns) == ["customer_id", "response_date", "journey", "touchpoint", "csat"]
    assert out["csat"].tolist() == [4.0, 5.0] and out["csat"].dtype == float
    assert out["customer_id"].tolist() == ["c0", "c1"]
    none = drivers._journey_ratings(r, "nps")
    assert none.empty and list(none.columns) == list(r.columns)


def test_in_lookback_keeps_the_months_up_to_the_anchor():
    rated = pd.DataFrame({"customer_id": ["A"] * 4 + ["B"],
                          "response_date": pd.to_datetime(["2024-03-30", "2024-03-31", "2024-06-30", "2024-07-01",
                                                           "2024-06-01"]),
                          "csat": [1.0, 2.0, 3.0, 4.0, 5.0]})
    anchors = pd.DataFrame({"customer_id": ["A", "C"], "anchor_date": pd.to_datetime(["2024-06-30", "2024-06-30"]),
                            "row": [7, 8]})
    out = drivers._in_lookback(rated, anchors, 3)
    # (30 March, 30 June]: not 30 March, not 1 July; B has no anchor
    assert out["csat"].tolist() == [2.0, 3.0] and out["row"].tolist() == [7, 7]
    assert drivers._in_lookback(rated, anchors, 4)["csat"].tolist() == [1.0, 2.0, 3.0]


# --------------------------------------------------------------------------- Shapley R²


def _ols_r2(X, y, cols):
    return sm.OLS(y, sm.add_constant(X[:, cols], has_constant="add")).fit().rsquared if cols else 0.0


def test_subset_r2_of_four_columns_against_statsmodels():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 4)) + 3.0
    X[:, 1] += X[:, 0]
    y = X @ [1.0, -0.5, 0.2, 0.0] + rng.normal(size=40) + 10.0
    r2 = drivers.subset_r2(X, y)
    assert r2.shape == (16,) and r2[0] == 0.0
    for mask in range(16):
        assert r2[mask] == pytest.approx(_ols_r2(X, y, [j for j in range(4) if mask >> j & 1]), rel=1e-10, abs=1e-14)


def test_subset_r2_of_a_score_with_little_variation():
    """R² does not depend on the score's units: a total sum of squares under 1 is no reason for 0."""
    X, y = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]]), np.array([0.0, 1.0, 2.0, 3.0])
    assert drivers.subset_r2(X, y / 100) == pytest.approx([0.0, 0.8, 0.6, 0.9])  # total sum of squares .0005


def test_subset_r2_of_a_constant_score_is_zero():
    r2 = drivers.subset_r2(np.array([[1.0, 2, 3], [2, 1, 0], [4, 4, 1], [0, 1, 2]]), np.array([2.0, 2, 2, 2]))
    assert r2.shape == (8,) and (r2 == 0).all()


def _shapley_by_orders(r2, p):
    """Mean marginal gain over all p! orders of entry."""
    phi = np.zeros(p)
    orders = list(itertools.permutations(range(p)))
    for order in orders:
        mask = 0
        for k in order:
            phi[k] += r2[mask | 1 << k] - r2[mask]
            mask |= 1 << k
    return phi / len(orders)


def test_shapley_values_by_hand_and_by_orders():
    r2 = np.array([0, 0.1, 0.2, 0.35, 0.3, 0.45, 0.5, 0.7])
    # phi_0 = (.1)/3 + (.35 - .2)/6 + (.45 - .3)/6 + (.7 - .5)/3 = .15; phi_1 = .225; phi_2 = .325
    assert drivers.shapley_values(r2) == pytest.approx([0.15, 0.225, 0.325], abs=1e-12)
    assert drivers.shapley_values(np.array([0.0, 0.4])) == pytest.approx([0.4])
    rng = np.random.default_rng(1)
    for p in (4, 5):
        game = np.concatenate([[0.0], rng.uniform(0, 1, 2**p - 1)])  # any game, not only R²
        phi = drivers.shapley_values(game)
        assert phi.shape == (p,) and phi == pytest.approx(_shapley_by_orders(game, p), abs=1e-12)


# --------------------------------------------------------------------------- bands and money


def test_cuts():
    assert drivers._cuts(NPS_BANDS).tolist() == [6.5, 8.5]
    assert drivers._cuts({"a": [1, 2], "b": [5, 5], "c": [6, 7]}).tolist() == [3.5, 5.5]  # gaps: the middle
    assert drivers._cuts({"a": [1, 2], "b": [3, 7]}).tolist() == [2.5]


def test_band_shares_with_a_shift_per_respondent():
    # 6.25 spans [5.75, 6.75): .75 detractor, .25 passive; 7.25 passive; 9 promoter; -3 spans [-3.5, -2.5),
    # below the lowest band's bottom: still detractor (open below)
    out = drivers.band_shares(np.array([6, 8, 9, 0]), np.array([0.25, -0.75, 0.0, -3.0]), NPS_BANDS)
    assert list(out.index) == ["detractor", "passive", "promoter"] and out.dtype == float
    assert out.tolist() == pytest.approx([1.75 / 4, 1.25 / 4, 1 / 4], abs=1e-15)
    three = {"low": [1, 2], "mid": [3, 3], "high": [4, 5]}
    # 2.75 spans [2.25, 3.25): .25 low, .75 mid; 3.5 spans [3, 4): .5 mid, .5 high; 5 high
    assert drivers.band_shares([2, 3, 5], [0.75, 0.5, 0.0], three).tolist() == pytest.approx(
        [0.25 / 3, 1.25 / 3, 1.5 / 3], abs=1e-15)
    assert drivers.band_shares([1, 1], 0.0, three).tolist() == [1.0, 0.0, 0.0]


def test_value_per_point_lines_up_the_groups_by_name():
    shifts = pd.DataFrame({"detractor": [-0.1, -0.2], "passive": [0.0, 0.1], "promoter": [0.1, 0.1]},
                          index=["attr_a", "attr_b"])
    value = pd.Series({"promoter": 1200, "extra": 9e9, "detractor": 500, "passive": 1000})
    out = drivers.value_per_point(shifts, value, 1_000)
    assert out.name == "value_per_year" and list(out.index) == ["attr_a", "attr_b"]
    # 1,000 x (-.1 x 500 + .1 x 1,200) = 70,000; 1,000 x (-.2 x 500 + .1 x 1,000 + .1 x 1,200) = 120,000
    assert out.tolist() == pytest.approx([70_000, 120_000])
    with pytest.raises(InputError) as e:
        drivers.value_per_point(shifts, value.drop(["passive", "promoter"]), 1_000)
    assert str(e.value) == ("value_per_point: no value per customer-year for group(s) passive, promoter; give one for "
                            "every group (detractor, passive, promoter).")


# --------------------------------------------------------------------------- key drivers: set-up


def test_key_drivers_defaults():
    kd = drivers.KeyDrivers()
    assert (kd.metric, kd.bands, kd.min_cell_size, kd.n_boot, kd.seed) == ("nps", DEFAULT_BANDS["nps"], 10, 200, 42)
    assert (kd.journey_drivers, kd.journey_metric, kd.lookback_months, kd.top_box, kd.attribute_scale) == (
        False, None, 12, 2, None)
    assert drivers.KeyDrivers("ces").bands == DEFAULT_BANDS["ces"]
    own = {"lo": [0, 5], "hi": [6, 10]}
    assert drivers.KeyDrivers(bands=own).bands == own


def test_key_drivers_from_params():
    params = {"metric": "csat", "bands": {"csat": {"high": [4, 5], "low": [1, 3]}}, "min_cell_size": 7, "seed": 9}
    kd = drivers.KeyDrivers.from_params(params, n_boot=3)
    assert (kd.metric, kd.min_cell_size, kd.seed, kd.n_boot) == ("csat", 7, 9, 3)
    assert list(kd.bands.items()) == [("low", [1, 3]), ("high", [4, 5])]  # lowest band first
    assert drivers.KeyDrivers.from_params(params, min_cell_size=2).min_cell_size == 2  # a keyword wins


# --------------------------------------------------------------------------- key drivers: the frame


def _frame_responses():
    nan = np.nan
    rows = [
        # relationship answers (journey empty)
        ("c1", "2024-06-30", None, None, 9, nan, 8, 5),
        ("c2", "2024-06-30", "", None, 3, nan, 2, nan),
        ("c3", "2024-05-01", None, None, nan, nan, 0, 10),  # no score: not in the frame, nor in the scale
        # whole-journey and touchpoint ratings
        ("c1", "2024-03-31", "billing", None, nan, 4, nan, nan),  # in: after 30 March
        ("c1", "2024-03-30", "billing", None, nan, 1, nan, nan),  # out: 3 months before to the day
        ("c1", "2024-06-30", "billing", None, nan, 2, nan, nan),  # in: on the day
        ("c1", "2024-07-01", "billing", None, nan, 5, nan, nan),  # out: after
        ("c1", "2024-05-01", "billing", "invoice", 0, 1, nan, nan),  # a touchpoint: not a journey score
        ("c2", "2024-06-01", "Pay & Go", None, nan, 5, nan, nan),
        ("c2", "2024-06-01", "billing", None, 7, nan, nan, nan),  # an NPS only
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "response_date", "journey", "touchpoint", "nps", "csat",
                                     "attr_a", "attr_b"])
    return drivers.responses_frame(df)


def _frame(kd, responses):
    kd.warnings_ = []
    return kd._frame(responses)


def test_frame_of_relationship_answers_and_journey_scores():
    r = _frame_responses()
    kd = drivers.KeyDrivers(journey_drivers=True, journey_metric="csat", lookback_months=3)
    frame, scales = _frame(kd, r)
    assert list(frame.columns) == ["customer_id", "score", "attr_a", "attr_b", "journey_pay___go", "journey_billing"]
    assert list(frame.index) == [0, 1] and frame["customer_id"].tolist() == ["c1", "c2"]
    assert frame["score"].tolist() == [9.0, 3.0]
    assert frame["attr_a"].tolist() == [8.0, 2.0] and frame["attr_b"].tolist()[0] == 5.0
    assert frame["journey_billing"].tolist()[0] == 3.0 and np.isnan(frame["journey_billing"][1])  # (4 + 2) / 2
    assert np.isnan(frame["journey_pay___go"][0]) and frame["journey_pay___go"][1] == 5.0
    assert scales == {"attr_a": (2.0, 8.0), "attr_b": (2.0, 8.0), "journey_pay___go": (1.0, 5.0),
                      "journey_billing": (1.0, 5.0)}
    assert kd.warnings_ == []
    # on NPS: only c2's billing 7 (the touchpoint's 0 is not a journey score); the 0-10 scale
    frame, scales = _frame(drivers.KeyDrivers(journey_drivers=True, journey_metric="nps", lookback_months=3), r)
    assert list(frame.columns)[4:] == ["journey_billing"] and frame["journey_billing"].tolist()[1] == 7.0
    assert np.isnan(frame["journey_billing"][0]) and scales["journey_billing"] == (0.0, 10.0)
    # the journey surveys' own score when none is named: csat (5 ratings against nps 2)
    frame, scales = _frame(drivers.KeyDrivers(journey_drivers=True, lookback_months=3), r)
    assert frame["journey_billing"].tolist()[0] == 3.0 and scales["journey_billing"] == (1.0, 5.0)
    # twelve months: 30 March counts too, (4 + 1 + 2) / 3
    frame, _ = _frame(drivers.KeyDrivers(journey_drivers=True, journey_metric="csat"), r)
    assert frame["journey_billing"].tolist()[0] == pytest.approx(7 / 3)


def test_frame_of_a_table_with_columns_named_index_and_level_0():
    """A DataFrame that went through reset_index() twice carries columns "level_0" and "index" (where
    pandas would put a third index): they are not in the way."""
    r = _frame_responses().reset_index().reset_index()
    frame, scales = _frame(drivers.KeyDrivers(), r)
    assert list(frame.columns) == ["customer_id", "score", "attr_a", "attr_b"] and list(frame.index) == [0, 1]
    kd = drivers.KeyDrivers(n_boot=0, min_cell_size=1)
    tiny = _tiny_responses().reset_index().reset_index()
    assert kd.fit(tiny).skipped_ is None and kd.r2_ == pytest.approx(0.9)


def test_frame_without_journey_drivers_and_with_a_given_scale():
    r = _frame_responses()
    frame, scales = _frame(drivers.KeyDrivers(attribute_scale=(0, 10)), r)
    assert list(frame.columns) == ["customer_id", "score", "attr_a", "attr_b"]
    assert scales == {"attr_a": (0.0, 10.0), "attr_b": (0.0, 10.0)}
    assert all(type(v) is float for s in scales.values() for v in s)
    # journey drivers asked for, but no journey surveys: nothing added, no warning
    rel = r[r["journey"].isna()].reset_index(drop=True)
    kd = drivers.KeyDrivers(journey_drivers=True)
    frame, scales = _frame(kd, rel)
    assert list(frame.columns) == ["customer_id", "score", "attr_a", "attr_b"] and kd.warnings_ == []
    # no attr_* columns: the score only
    frame, scales = _frame(drivers.KeyDrivers(), r.drop(columns=["attr_a", "attr_b"]))
    assert list(frame.columns) == ["customer_id", "score"] and scales == {}


def test_frame_warns_when_the_journey_surveys_carry_no_score():
    r = _frame_responses()
    r = r[r["journey"].isna() | r["nps"].isna()].drop(columns=["csat"])  # journeys without any score
    kd = drivers.KeyDrivers(journey_drivers=True)
    frame, scales = _frame(kd, r)
    assert list(frame.columns) == ["customer_id", "score", "attr_a", "attr_b"] and set(scales) == {"attr_a", "attr_b"}
    assert kd.warnings_ == ["Key drivers: journey scores are not used as drivers. " + NO_SCORE]


# --------------------------------------------------------------------------- key drivers: performance


def test_performance_by_hand():
    frame = pd.DataFrame({"a": [5, 4, 3, np.nan], "b": [1, np.nan, np.nan, np.nan], "c": [10, 9, 8, 7]}, dtype=float)
    counts = frame.notna().sum()
    scales = {"a": (1.0, 5.0), "b": (1.0, 5.0), "c": (0.0, 10.0)}
    out = drivers.KeyDrivers(min_cell_size=3)._performance(frame, counts, scales)
    assert list(out.columns) == ["n_ratings", "mean_rating", "top_box_share", "scale_max", "suppressed"]
    assert out.index.name == "driver" and list(out.index) == ["a", "b", "c"]
    assert out["n_ratings"].tolist() == [3, 1, 4] and out["suppressed"].tolist() == [False, True, False]
    assert out.loc["a", "mean_rating"] == 4.0 and out.loc["a", "top_box_share"] == pytest.approx(2 / 3)  # 4 and 5
    assert np.isnan(out.loc["b", "mean_rating"]) and np.isnan(out.loc["b", "top_box_share"])
    assert out.loc["c", "mean_rating"] == 8.5 and out.loc["c", "top_box_share"] == 0.5  # 9 and 10
    assert out["scale_max"].tolist() == [5.0, 5.0, 10.0]
    top1 = drivers.KeyDrivers(min_cell_size=1, top_box=1)._performance(frame, counts, scales)
    assert top1["top_box_share"].tolist() == [pytest.approx(1 / 3), 0.0, 0.25]
    assert top1["suppressed"].tolist() == [False, False, False] and top1.loc["b", "mean_rating"] == 1.0
    empty = drivers.KeyDrivers(min_cell_size=0)._performance(frame[["b"]].iloc[1:], pd.Series({"b": 0}), scales)
    assert np.isnan(empty.loc["b", "mean_rating"]) and not empty.loc["b", "suppressed"]


# --------------------------------------------------------------------------- key drivers: bootstrap


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")
def test_bootstrap_resamples_customers_with_all_their_answers():
    # customer "b" answered twice: its two answers always go together
    customer = pd.Series(["a", "b", "c", "b", "d"])
    X = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 3.0], [4.0, 1.0], [0.0, 2.0]])
    y = np.array([1.0, 3.0, 1.0, 2.0, 1.0])
    kd = drivers.KeyDrivers(n_boot=40, seed=3)
    out = kd._bootstrap(X, y, customer)
    assert out.shape == (40, 2)
    rows_of = {0: [0], 1: [1, 3], 2: [2], 3: [4]}  # customers in order of first answer
    rng = np.random.default_rng(3)
    expected = np.empty((40, 2))
    for b in range(40):
        rows = [i for c in rng.integers(0, 4, 4) for i in rows_of[c]]
        Xb, yb = X[rows], y[rows]
        if np.ptp(yb) == 0:
            expected[b] = np.nan
            continue
        full = _ols_r2(Xb, yb, [0, 1])
        r1, r2 = _ols_r2(Xb, yb, [0]), _ols_r2(Xb, yb, [1])
        expected[b] = [(r1 + full - r2) / 2 / full, (r2 + full - r1) / 2 / full]
    assert np.isnan(expected).any() and not np.isnan(expected).all()  # a draw of customers with one score
    np.testing.assert_allclose(out, expected, rtol=1e-8, atol=1e-10)
    assert drivers.KeyDrivers(n_boot=0)._bootstrap(X, y, customer).shape == (0, 2)


def test_bootstrap_of_one_customer_whose_first_driver_never_changes():
    """One customer: every resample is all of their answers. The first driver is the same in all of them
    and explains nothing (R² exactly 0 alone and as the last to enter): shares 0 and 1."""
    X = np.array([[1.0, 0.0], [1.0, 1.5], [1.0, 1.0], [1.0, 2.5]])
    y = np.array([1.0, 3.0, 2.0, 5.0])
    out = drivers.KeyDrivers(n_boot=3)._bootstrap(X, y, pd.Series(["a"] * 4))
    assert out == pytest.approx(np.array([[0.0, 1.0]] * 3), abs=1e-12)


# --------------------------------------------------------------------------- key drivers: a fit by hand

# Five copies of four answers (copies leave every R² unchanged), centred sums worked by hand in
# tests/test_drivers.py: R²(a) = .8, R²(b) = .6, R²(a, b) = .9, coefficients 1.5 and 1, shares .55/.9, .35/.9
TINY = pd.DataFrame({"x1": [0, 0, 1, 1], "x2": [0, 1, 1, 1], "y": [0, 1, 2, 3]})
THREE_BANDS = {"low": [0, 1], "mid": [2, 2], "high": [3, 3]}


def _tiny_responses():
    rows = pd.concat([TINY] * 5, ignore_index=True)
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(rows))], "response_date": "2024-01-01",
                         "nps": rows["y"], "attr_a": rows["x1"], "attr_b": rows["x2"]})


def test_results_of_a_fit_by_hand():
    kd = drivers.KeyDrivers(bands=THREE_BANDS, n_boot=0).fit(_tiny_responses())
    res = kd.results()
    rows = pd.concat([TINY] * 5, ignore_index=True)
    ols = sm.OLS(rows["y"].to_numpy(float), sm.add_constant(rows[["x1", "x2"]].to_numpy(float))).fit()
    ci = ols.conf_int()
    assert res["skipped"] is None and res["metric"] == "nps" and res["n_responses"] == 20 and res["warnings"] == []
    assert res["r2"] == pytest.approx(0.9)
    assert res["importance"] == pytest.approx({"attr_a": 0.55 / 0.9, "attr_b": 0.35 / 0.9})
    assert res["importance_ci"] == {"attr_a": [None, None], "attr_b": [None, None]}  # no bootstrap
    assert res["coefficients"] == pytest.approx({"attr_a": 1.5, "attr_b": 1.0})
    assert res["coefficient_ci"]["attr_a"] == pytest.approx(list(ci[1]))
    assert res["coefficient_ci"]["attr_b"] == pytest.approx(list(ci[2]))
    # scale 0-1 (lowest and highest rating seen): only a 0 can gain, by the whole point
    assert res["score_gain_per_point"] == pytest.approx({"attr_a": 1.5 * 0.5, "attr_b": 1.0 * 0.25})
    assert res["performance"] == {"attr_a": {"mean_rating": 0.5, "top_box_share": 1.0, "n_ratings": 20},
                                  "attr_b": {"mean_rating": 0.75, "top_box_share": 1.0, "n_ratings": 20}}
    assert res["group_shares"] == {"low": 0.5, "mid": 0.25, "high": 0.25}
    # attr_a: scores 0 and 1 rise by 1.5: [1, 2) is half low, half mid; [2, 3) half mid, half high:
    # low .125, mid .5, high .375 -> shifts -.375, +.25, +.125. attr_b: 0 rises by 1, [.5, 1.5) still low
    assert res["share_shift_per_point"]["attr_a"] == pytest.approx({"low": -0.375, "mid": 0.25, "high": 0.125})
    assert res["share_shift_per_point"]["attr_b"] == pytest.approx({"low": 0.0, "mid": 0.0, "high": 0.0}, abs=1e-15)
    assert "value_per_point" not in res
    value = pd.Series({"low": 100.0, "mid": 200.0, "high": 400.0})
    assert "value_per_point" not in kd.results(value) and "value_per_point" not in kd.results(None, 10)
    # 10 x (-.375 x 100 + .25 x 200 + .125 x 400) = 625
    assert kd.results(value, 10)["value_per_point"] == pytest.approx({"attr_a": 625.0, "attr_b": 0.0}, abs=1e-9)
    assert kd.value_per_point(value, 10).to_dict() == pytest.approx({"attr_a": 625.0, "attr_b": 0.0}, abs=1e-9)
    assert json.loads(json.dumps(kd.results(value, 10)))["importance"] == pytest.approx(res["importance"])
    assert kd._repr_html_().startswith("<h4>Key drivers</h4>") and "attr_a" in kd._repr_html_()


def test_results_give_the_bootstrap_interval():
    responses = _tiny_responses()
    responses["nps"] = responses["nps"] + np.tile([0.0, 0.5, -0.5, 0.25, 0.0], 4)  # not every copy alike
    kd = drivers.KeyDrivers(bands=THREE_BANDS, n_boot=30, seed=1).fit(responses)
    ci = kd.results()["importance_ci"]
    for j, d in enumerate(kd.drivers_):
        lo, hi = np.nanpercentile(kd.boot_shares_[:, j], [2.5, 97.5])
        assert ci[d] == pytest.approx([lo, hi]) and lo < hi


def test_fit_with_journey_scores_labels_and_warnings():
    """A journey score as a driver, a driver rated too rarely, one rated alike by all; the warnings name
    them in words (``_label``)."""
    base = _tiny_responses()
    base["attr_rare_one"] = [1.0] + [np.nan] * 19
    base["attr_all_same"] = 1.0
    kd = drivers.KeyDrivers(n_boot=0).fit(base)
    assert kd.warnings_ == ["Key drivers: rare one was rated by only 1 respondents (fewer than 10); it is left out.",
                            "Key drivers: every respondent gave all same the same rating; it is left out."]
    assert drivers._label("attr_ease_of_use") == "ease of use"
    assert drivers._label("journey_pay_later") == "the pay later journey"
    assert drivers._label("score") == "score"
    assert drivers._label("xattr_a") == "xattr_a"


def test_num():
    assert drivers._num(None) is None and drivers._num(np.nan) is None and drivers._num(pd.NA) is None
    assert drivers._num(np.int64(3)) == 3.0 and type(drivers._num(np.int64(3))) is float
    assert drivers._num(0) == 0.0


# --------------------------------------------------------------------------- key drivers: skipped


SUMMARY_COLUMNS = ["importance", "importance_lo", "importance_hi", "r2_contribution", "coefficient", "coefficient_lo",
                   "coefficient_hi", "score_gain_per_point", "n_ratings", "mean_rating", "top_box_share", "scale_max",
                   "suppressed", "rank"]


def test_a_skipped_fit_is_empty_but_keeps_what_was_counted():
    kd = drivers.KeyDrivers(metric="csat").fit(_tiny_responses())  # no csat column
    assert kd.skipped_ == "Key drivers need the CSAT score: the responses table has no column csat."
    assert kd.n_responses_ == 0 and kd.drivers_ == [] and kd.scales_ == {} and math.isnan(kd.r2_)
    assert kd.result_ is None and kd.boot_shares_.shape == (0, 0)
    assert list(kd.shares_.index) == ["dissatisfied", "neutral", "satisfied"] and kd.shares_.isna().all()
    assert kd.shares_.dtype == float
    assert list(kd.share_shifts_.columns) == ["dissatisfied", "neutral", "satisfied"] and kd.share_shifts_.empty
    assert (kd.share_shifts_.dtypes == float).all()
    assert list(kd.summary_.columns) == SUMMARY_COLUMNS and kd.summary.empty
    assert list(kd.performance_.columns) == SUMMARY_COLUMNS[8:13] and kd.performance_.empty
    res = kd.results()
    assert res["skipped"] == kd.skipped_ and res["r2"] is None and res["group_shares"] == {
        "dissatisfied": None, "neutral": None, "satisfied": None}
    assert res["share_shift_per_point"] == {} and res["performance"] == {}
    assert kd._repr_html_() == ("<h4>Key drivers</h4><p>Skipped: Key drivers need the CSAT score: the responses table "
                                "has no column csat.</p>")
    # too few answers: what was counted stays (the answers with every driver rated, the performance)
    few = drivers.KeyDrivers(n_boot=0).fit(_tiny_responses().iloc[:12])
    assert "only 12 have them" in few.skipped_ and few.n_responses_ == 12
    assert list(few.performance_.index) == ["attr_a", "attr_b"] and few.performance_["n_ratings"].tolist() == [12, 12]


def test_empty_on_an_object_never_fitted():
    kd = drivers.KeyDrivers()
    kd._empty()
    assert kd.n_responses_ == 0 and kd.performance_.empty and list(kd.shares_.index) == list(NPS_BANDS)
    jt = drivers.JourneysVsTouchpoints(metric="ces")
    jt._empty()
    assert jt.metric_ == "ces" and jt.n_customers_ == 0 and jt.features_ == {"journey": [], "touchpoint": []}
    assert list(jt.fold_scores_.columns) == ["outcome", "fold", "journey_explained", "touchpoint_explained",
                                             "difference"] and jt.fold_scores_.empty
    assert list(jt.summary_.columns) == ["customers", "journey_explained", "touchpoint_explained", "difference",
                                         "difference_lo", "difference_hi", "fold_difference_sd", "winner"]
    assert jt.summary_.index.name == "outcome" and jt.summary.empty
    jt.metric_, jt.n_customers_, jt.features_ = "csat", 7, {"journey": ["journey:a"], "touchpoint": []}
    jt._empty()  # what was counted before the skip stays
    assert (jt.metric_, jt.n_customers_, jt.features_["journey"]) == ("csat", 7, ["journey:a"])


# --------------------------------------------------------------------------- journeys vs touchpoints


def test_poisson_unit_deviance_by_formula():
    y, mu = np.array([0.0, 1.0, 3.0]), np.array([0.5, 1.0, 2.0])
    # 2 (y log(y / mu) - (y - mu)); y = 0: 2 mu
    expected = [1.0, 0.0, 2 * (3 * math.log(1.5) - 1)]
    assert drivers._poisson_unit_deviance(y, mu) == pytest.approx(expected, abs=1e-12)


def test_journey_features_on_two_surveys_of_one_customer_and_any_metric():
    responses = pd.DataFrame([
        {"customer_id": "7", "response_date": "2024-03-31", "ces": 2, "journey": "billing", "touchpoint": None},
        {"customer_id": "7", "response_date": "2024-03-30", "ces": 6, "journey": "billing", "touchpoint": None},
        {"customer_id": "7", "response_date": "2024-05-01", "ces": 4, "journey": "billing", "touchpoint": "web"},
        {"customer_id": "7", "response_date": "2024-06-15", "ces": 3, "journey": "billing", "touchpoint": "web"},
        {"customer_id": "8", "response_date": "2024-06-15", "ces": 7, "journey": "move", "touchpoint": "app"},
    ])
    # customer 7 twice (its index responses of June and of April), as a number; 8 once
    hist = pd.DataFrame({"customer_id": [7, 8, 7], "response_date": ["2024-06-30", "2024-06-30", "2024-04-30"]})
    journeys, touch = drivers.journey_features(responses, hist, lookback_months=3)  # the metric: ces
    assert journeys.to_dict("index") == {0: {"journey:billing": 2.0}, 2: {"journey:billing": 4.0}}  # (6 + 2) / 2
    assert sorted(touch.columns) == ["touchpoint:billing/web", "touchpoint:move/app"]
    assert touch.loc[0, "touchpoint:billing/web"] == 3.5 and touch.loc[1, "touchpoint:move/app"] == 7.0
    assert list(touch.index) == [0, 1]  # April's survey: both web ratings came after it


def test_journey_features_default_lookback_and_a_named_metric():
    responses = pd.DataFrame([
        {"customer_id": "a", "response_date": "2023-06-15", "csat": 1, "ces": 7, "journey": "billing", "touchpoint": None},
        {"customer_id": "a", "response_date": "2023-07-15", "csat": 3, "ces": 5, "journey": "billing", "touchpoint": None},
        {"customer_id": "a", "response_date": "2024-01-15", "csat": None, "ces": 6, "journey": "billing",
         "touchpoint": "web"},
        {"customer_id": "a", "response_date": "2024-01-15", "csat": 4, "ces": 2, "journey": "billing", "touchpoint": "app"},
    ])
    hist = pd.DataFrame({"customer_id": ["a"], "response_date": ["2024-07-01"]})
    # the default twelve months: from 1 July 2023 (15 June is out); csat, though ces rates more journeys
    journeys, touch = drivers.journey_features(responses, hist, "csat")
    assert journeys.to_dict("index") == {0: {"journey:billing": 3.0}}
    assert touch.to_dict("index") == {0: {"touchpoint:billing/app": 4.0}}
    journeys, touch = drivers.journey_features(responses, hist)  # none named: ces, 4 ratings against csat's 3
    assert journeys.to_dict("index") == {0: {"journey:billing": 5.0}}
    assert touch.to_dict("index") == {0: {"touchpoint:billing/app": 2.0, "touchpoint:billing/web": 6.0}}


def test_journeys_vs_touchpoints_defaults():
    jt = drivers.JourneysVsTouchpoints()
    assert (jt.metric, jt.folds, jt.n_boot, jt.seed, jt.lookback_months, jt.min_cell_size, jt.covariates,
            jt.adjust, jt.min_difference) == (None, 5, 1000, 42, 12, 10, [], False, 0.01)
    assert drivers.JourneysVsTouchpoints(covariates=("region",)).covariates == ["region"]
    assert drivers.JourneysVsTouchpoints.OUTCOMES == ("churn_12m", "revenue_per_customer_year")


def test_design_fills_missing_ratings_and_drops_rare_or_constant_columns():
    block = pd.DataFrame({"journey:a": [1, 2, np.nan, 3], "journey:b": [4, 4, 4, 4],
                          "journey:c": [1, np.nan, np.nan, 2], "journey:d": [1, 2, 1, 2]}, index=[10, 11, 12, 13],
                         dtype=float)
    X, dropped = drivers.JourneysVsTouchpoints(min_cell_size=3)._design(block)
    assert dropped == ["journey:b", "journey:c"]
    assert list(X.columns) == ["journey:a", "journey:a missing", "journey:d"] and list(X.index) == [10, 11, 12, 13]
    assert X["journey:a"].tolist() == [1.0, 2.0, 2.0, 3.0] and X["journey:a missing"].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert X["journey:a missing"].dtype == float and X["journey:d"].tolist() == [1.0, 2.0, 1.0, 2.0]
    X, dropped = drivers.JourneysVsTouchpoints(min_cell_size=2)._design(block)
    assert dropped == ["journey:b"] and "journey:c" in X.columns and X["journey:c"].tolist() == [1.0, 1.5, 1.5, 2.0]


def _outcome_history():
    return pd.DataFrame({
        "duration_days": [365, 366, 0.2, 100, 50, 400],
        "churned": [True, True, True, False, True, False],
        "post_revenue": [10.0, -5.0, 0.0, 20.0, 30.0, 7.0],
        "post_exposure_years": [1.0, 0.5, 0.0, 2.0, 1.0, 0.0],
    })


def _outcomes(fold, **kw):
    jt = drivers.JourneysVsTouchpoints(folds=2, **kw)
    jt.warnings_ = []
    return jt, jt._outcomes(_outcome_history(), np.array(fold))


def test_outcomes_by_hand():
    jt, out = _outcomes([0, 1, 0, 1, 1, 0], min_cell_size=3)
    assert list(out) == ["churn_12m", "revenue_per_customer_year"] and jt.warnings_ == []
    y, at_risk = out["churn_12m"]
    # left within 365 days: 365 (on the day), 0.2 and 50; not 366
    assert y.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert at_risk == pytest.approx(np.array([365, 365, 0.5, 100, 50, 365]) / 365.25, rel=1e-15)
    revenue, exposure = out["revenue_per_customer_year"]
    assert revenue.tolist() == [10.0, 0.0, 0.0, 20.0, 30.0, 7.0]  # a refund is no revenue
    assert exposure.tolist() == [1.0, 0.5, 0.0, 2.0, 1.0, 0.0]


def test_outcomes_too_rare_to_compare():
    jt, out = _outcomes([0, 1, 0, 1, 1, 0], min_cell_size=4)  # 3 of each: fewer than 4
    assert out == {}
    assert jt.warnings_ == [
        "Journeys vs touchpoints: only 3 of these customers left within 12 months of their survey (fewer than 4), "
        "so churn is not compared.",
        "Journeys vs touchpoints: only 3 of these customers spent after it (fewer than 4), so revenue is not compared."]
    # the three who left are all in fold 0: fold 0's training customers have none, churn cannot be fitted there
    jt, out = _outcomes([0, 1, 0, 1, 0, 1], min_cell_size=2)
    assert list(out) == ["revenue_per_customer_year"]
    assert jt.warnings_ == [  # not "only 3 ... (fewer than 2)"
        "Journeys vs touchpoints: only 3 of these customers left within 12 months of their survey (all in one of "
        "the 2 cross-validation folds, so the model fitted without it has none to learn from), so churn is not "
        "compared."]
    # nobody left at all (with no minimum): the count's reason, not the folds'
    h = _outcome_history().assign(churned=False)
    jt = drivers.JourneysVsTouchpoints(folds=2, min_cell_size=0)
    jt.warnings_ = []
    assert list(jt._outcomes(h, np.array([0, 1, 0, 1, 0, 1]))) == ["revenue_per_customer_year"]
    assert jt.warnings_ == ["Journeys vs touchpoints: only 0 of these customers left within 12 months of their "
                            "survey (fewer than 0), so churn is not compared."]
    # revenue of the customer with no exposure does not count (customers 0, 3, 4 spent; 3 in fold 1)
    jt, out = _outcomes([1, 0, 1, 0, 1, 1], min_cell_size=2)
    assert list(out) == ["revenue_per_customer_year"]


def test_outcomes_need_events_among_each_folds_training_customers_not_its_test_customers():
    """Three folds: those who left are in folds 0 and 1, none in fold 2; every fold's training
    customers (the other two folds) still include some, so churn is compared."""
    jt = drivers.JourneysVsTouchpoints(folds=3, min_cell_size=2)
    jt.warnings_ = []
    out = jt._outcomes(_outcome_history(), np.array([0, 2, 1, 2, 0, 2]))
    assert list(out) == ["churn_12m", "revenue_per_customer_year"] and jt.warnings_ == []


def test_fit_predict_is_the_poisson_rate_of_each_group():
    """With a constant and a group dummy, the Poisson fit's expected count is exposure x the group's
    events over its exposure in the training rows."""
    g = np.array([0, 0, 0, 1, 1, 1, 0, 1], float)
    y = np.array([1, 3, 0, 2, 5, 1, 9, 9], float)
    exposure = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 0.5, 2.0, 4.0])
    train = np.array([True] * 6 + [False] * 2)
    test = ~train
    X = np.column_stack([np.ones(8), g])
    jt = drivers.JourneysVsTouchpoints()
    jt.warnings_ = []
    mu, beta = jt._fit_predict(X, y, exposure, train, test)
    # group 0: 4 events over 3.5 years; group 1: 8 over 4.5
    assert mu == pytest.approx([2.0 * 4 / 3.5, 4.0 * 8 / 4.5], rel=1e-8)
    assert beta == pytest.approx([np.log(4 / 3.5), np.log(8 / 4.5) - np.log(4 / 3.5)], rel=1e-8)
    # from a start (another fold's estimates): the same fit; from one so far off that statsmodels' weights
    # overflow (exp(800)), the fit from statsmodels' own start
    for start in (beta, np.array([2.0, -3.0]), np.array([800.0, 0.0])):
        again, from_start = jt._fit_predict(X, y, exposure, train, test, start)
        assert again == pytest.approx(mu, rel=1e-8) and from_start == pytest.approx(beta, rel=1e-8)
    mu, beta = jt._fit_predict(X[:, :1], y, exposure, train, test)  # constant only: 12 over 8
    assert mu == pytest.approx([2.0 * 12 / 8, 4.0 * 12 / 8], rel=1e-8) and beta == pytest.approx([np.log(1.5)])
    assert jt.warnings_ == []


def test_a_fit_that_does_not_converge_from_the_start_given_is_fitted_from_statsmodels_own(monkeypatch):
    fit = sm.GLM.fit
    starts = []

    def stuck_from_a_start(self, *args, **kwargs):
        starts.append(kwargs.get("start_params"))
        res = fit(self, *args, **kwargs)
        if kwargs.get("start_params") is not None:
            res.converged = False
        return res

    monkeypatch.setattr(sm.GLM, "fit", stuck_from_a_start)
    X = np.column_stack([np.ones(8), np.array([0, 0, 0, 1, 1, 1, 0, 1], float)])
    y = np.array([1, 3, 0, 2, 5, 1, 9, 9], float)
    exposure = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 0.5, 2.0, 4.0])
    train = np.array([True] * 6 + [False] * 2)
    jt = drivers.JourneysVsTouchpoints()
    jt.warnings_ = []
    mu, beta = jt._fit_predict(X, y, exposure, train, ~train, np.array([0.1, 0.4]))
    assert len(starts) == 2 and starts[1] is None
    assert beta == pytest.approx([np.log(4 / 3.5), np.log(8 / 4.5) - np.log(4 / 3.5)], rel=1e-8)
    assert jt.warnings_ == []  # the second fit converged


def test_each_fold_starts_from_the_previous_folds_estimates(monkeypatch):
    """The cross-validation's fits of one design start where its previous fold's ended (the same optimum in
    fewer steps); the first fold of each design starts from statsmodels' own start."""
    starts = []
    fit_predict = drivers.JourneysVsTouchpoints._fit_predict

    def spy(self, X, y, exposure, train, test, start=None):
        starts.append((X.shape[1], None if start is None else start.copy()))
        mu, beta = fit_predict(self, X, y, exposure, train, test, start)
        starts.append(("end", beta))
        return mu, beta

    monkeypatch.setattr(drivers.JourneysVsTouchpoints, "_fit_predict", spy)
    responses, history = _jvt_world()
    jt = drivers.JourneysVsTouchpoints(n_boot=0, folds=2, seed=3).fit(responses, history)
    calls = [(s, e) for s, e in zip(starts[::2], starts[1::2])]
    assert jt.skipped_ is None and len(jt.summary_) == 2 and len(calls) == 2 * 2 * 3
    per_outcome = 2 * 3
    for o in range(len(jt.summary_)):
        block = calls[o * per_outcome:(o + 1) * per_outcome]
        for d in range(3):  # the designs null, journey, touchpoint in turn, fold by fold
            mine = block[d::3]
            assert mine[0][0][1] is None
            for before, now in zip(mine, mine[1:]):
                np.testing.assert_array_equal(now[0][1], before[1][1])


def test_fit_predict_warns_once_when_a_fit_does_not_converge(monkeypatch):
    class NotConverged:
        converged = False
        params = np.array([0.0, np.log(2.0)])

    class FakeGLM:
        def __init__(self, *args, **kwargs):
            pass

        def fit(self, **kwargs):
            return NotConverged()

    monkeypatch.setattr(drivers.sm, "GLM", FakeGLM)
    jt = drivers.JourneysVsTouchpoints()
    jt.warnings_ = ["earlier"]
    X = np.array([[1.0, 0.0], [1.0, 1.0]])
    for _ in range(2):
        mu, _ = jt._fit_predict(X, np.ones(2), np.array([1.0, 3.0]), np.array([True, True]), np.array([True, True]))
    assert mu == pytest.approx([1.0, 6.0])
    assert jt.warnings_ == ["earlier", "Journeys vs touchpoints: a cross-validation model did not converge; treat the "
                                      "comparison with caution."]


def _compare(dev, n_boot=0, min_difference=0.01, seed=1):
    jt = drivers.JourneysVsTouchpoints(n_boot=n_boot, min_difference=min_difference)
    dev = {k: np.asarray(v, float) for k, v in dev.items()}
    return jt._compare("churn_12m", dev, len(dev["null"]), np.random.default_rng(seed))


def test_compare_names_a_winner_at_the_edges():
    ones = [1.0] * 4
    # journeys explain .5, touchpoints .25: a difference of exactly .25, every resample too
    row = _compare({"null": ones, "journey": [0.5] * 4, "touchpoint": [0.75] * 4}, n_boot=5, min_difference=0.25)
    assert row == {"outcome": "churn_12m", "customers": 4, "journey_explained": 0.5, "touchpoint_explained": 0.25,
                   "difference": 0.25, "difference_lo": 0.25, "difference_hi": 0.25, "winner": "journeys"}
    assert type(row["difference_lo"]) is float and type(row["journey_explained"]) is float
    row = _compare({"null": ones, "journey": [0.5] * 4, "touchpoint": [0.75] * 4}, n_boot=5, min_difference=0.26)
    assert row["winner"] == "neither"
    row = _compare({"null": ones, "journey": [0.75] * 4, "touchpoint": [0.5] * 4}, n_boot=5, min_difference=0.25)
    assert (row["difference"], row["difference_lo"], row["difference_hi"], row["winner"]) == (
        -0.25, -0.25, -0.25, "touchpoints")
    row = _compare({"null": ones, "journey": [0.75] * 4, "touchpoint": [0.5] * 4}, n_boot=5, min_difference=0.26)
    assert row["winner"] == "neither"
    # no difference at all, even with no minimum: neither (the interval is [0, 0])
    row = _compare({"null": ones, "journey": [0.5] * 4, "touchpoint": [0.5] * 4}, n_boot=5, min_difference=0.0)
    assert (row["difference_lo"], row["difference_hi"], row["winner"]) == (0.0, 0.0, "neither")
    # no bootstrap: no interval, no winner
    row = _compare({"null": ones, "journey": [0.5] * 4, "touchpoint": [0.75] * 4}, n_boot=0, min_difference=0.0)
    assert math.isnan(row["difference_lo"]) and math.isnan(row["difference_hi"]) and row["winner"] == "neither"


def test_compare_bootstrap_interval_resamples_customers_in_pairs():
    rng = np.random.default_rng(5)
    null = rng.uniform(1, 2, 31)
    journey, touchpoint = null * rng.uniform(0.3, 0.9, 31), null * rng.uniform(0.3, 0.9, 31)
    row = _compare({"null": null, "journey": journey, "touchpoint": touchpoint}, n_boot=250, seed=8)
    assert row["journey_explained"] == pytest.approx(1 - journey.sum() / null.sum())
    assert row["touchpoint_explained"] == pytest.approx(1 - touchpoint.sum() / null.sum())
    assert row["difference"] == pytest.approx(row["journey_explained"] - row["touchpoint_explained"])
    # 250 resamples of the 31 customers, one stream (drawn 100 resamples at a time: the same numbers)
    idx = np.random.default_rng(8).integers(0, 31, (250, 31))
    diffs = (touchpoint[idx] - journey[idx]).sum(axis=1) / null[idx].sum(axis=1)
    assert [row["difference_lo"], row["difference_hi"]] == pytest.approx(list(np.percentile(diffs, [2.5, 97.5])))


def test_journeys_vs_touchpoints_results_and_html():
    jt = drivers.JourneysVsTouchpoints()
    jt.skipped_, jt.metric_, jt.n_customers_ = None, "csat", np.int64(50)
    jt.features_ = {"journey": ["journey:a"], "touchpoint": ["touchpoint:a/b"]}
    jt.warnings_ = ["w"]
    jt.summary_ = pd.DataFrame([{"outcome": "churn_12m", "customers": 50, "journey_explained": 0.25,
                                 "touchpoint_explained": 0.125, "difference": 0.125, "difference_lo": 0.0625,
                                 "difference_hi": 0.1875, "fold_difference_sd": 0.03125, "winner": "journeys"},
                                {"outcome": "revenue_per_customer_year", "customers": 40, "journey_explained": 0.0,
                                 "touchpoint_explained": np.nan, "difference": np.nan, "difference_lo": np.nan,
                                 "difference_hi": np.nan, "fold_difference_sd": np.nan, "winner": "neither"}]
                               ).set_index("outcome")
    res = jt.results()
    assert res == {"skipped": None, "metric": "csat", "customers": 50,
                   "features": {"journey": ["journey:a"], "touchpoint": ["touchpoint:a/b"]},
                   "outcomes": {"churn_12m": {"journey_explained": 0.25, "touchpoint_explained": 0.125,
                                              "difference": 0.125, "difference_ci": [0.0625, 0.1875],
                                              "fold_difference_sd": 0.03125, "winner": "journeys"},
                                "revenue_per_customer_year": {"journey_explained": 0.0, "touchpoint_explained": None,
                                                              "difference": None, "difference_ci": [None, None],
                                                              "fold_difference_sd": None, "winner": "neither"}},
                   "warnings": ["w"]}
    assert type(res["customers"]) is int and res["warnings"] is not jt.warnings_
    html = jt._repr_html_()
    assert html.startswith("<h4>Journeys vs touchpoints</h4>") and "churn_12m" in html
    jt.skipped_ = "why"
    assert jt._repr_html_() == "<h4>Journeys vs touchpoints</h4><p>Skipped: why</p>"


# --------------------------------------------------------------------------- journeys vs touchpoints: a fit by hand


def _jvt_world():
    """40 customers with both kinds of rating (a whole-journey and a touchpoint CSAT of 1 or 5), 5 with a
    whole-journey rating only, 2 with a touchpoint rating only, 1 whose ratings are older than a year."""
    n = 48
    ids = [f"c{i:02d}" for i in range(n)]
    rows = []
    for i, c in enumerate(ids):
        if i < 45 or i == 47:
            rows.append({"customer_id": c, "response_date": "2024-05-01" if i < 47 else "2023-05-01",
                         "csat": 5 if i % 2 == 0 else 1, "journey": "billing", "touchpoint": None})
        if i < 40 or i >= 45:
            rows.append({"customer_id": c, "response_date": "2024-05-01" if i < 47 else "2023-05-01",
                         "csat": 5 if i % 3 == 0 else 1, "journey": "billing", "touchpoint": "invoice"})
    churned = np.array([i % 4 in (0, 1) for i in range(n)])
    days = np.where(churned, 100.0 + 7 * np.arange(n), 400.0)
    days[5] = 366.0  # left, but after the twelve months
    revenue = np.where(np.arange(n) % 5 == 0, 0.0, 10.0 + 3 * np.arange(n))
    exposure = 1 + (np.arange(n) % 3) * 0.5
    exposure[[7, 13]] = 0.0
    history = pd.DataFrame({"customer_id": ids, "response_date": pd.Timestamp("2024-06-30"), "duration_days": days,
                            "churned": churned, "post_revenue": revenue, "post_exposure_years": exposure})
    return pd.DataFrame(rows), history


def _deviance(y, mu):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2 * (np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu))


def test_journeys_vs_touchpoints_fit_by_hand():
    """Each set is one rating of 1 or 5: a Poisson model of a constant and that rating gives each of the two
    groups its own rate, events over exposure among the fold's training customers (the null model: one rate
    for all). Deviance explained out of fold from those closed forms."""
    responses, history = _jvt_world()
    jt = drivers.JourneysVsTouchpoints(folds=2, n_boot=40, seed=3).fit(responses, history)
    assert jt.skipped_ is None and jt.warnings_ == [] and jt.metric_ == "csat" and jt.n_customers_ == 40
    assert jt.features_ == {"journey": ["journey:billing"], "touchpoint": ["touchpoint:billing/invoice"]}
    i = np.arange(40)
    xj, xt = np.where(i % 2 == 0, 5, 1), np.where(i % 3 == 0, 5, 1)
    fold = np.random.default_rng(3).permutation(i % 2)
    h = history.iloc[:40]
    days = h["duration_days"].to_numpy()
    outcomes = {"churn_12m": ((h["churned"] & (days <= 365)).to_numpy(float), np.clip(days, 0.5, 365) / 365.25),
                "revenue_per_customer_year": (h["post_revenue"].to_numpy(), h["post_exposure_years"].to_numpy())}
    assert list(jt.summary.index) == list(outcomes)
    assert list(jt.summary.columns) == ["customers", "journey_explained", "touchpoint_explained", "difference",
                                        "difference_lo", "difference_hi", "fold_difference_sd", "winner"]
    assert list(jt.fold_scores_.columns) == ["outcome", "fold", "journey_explained", "touchpoint_explained",
                                             "difference"]
    for name, (y, exposure) in outcomes.items():
        ok = exposure > 0
        dev = {key: np.zeros(40) for key in ("null", "journey", "touchpoint")}
        folds = []
        for k in range(2):
            train, test = ok & (fold != k), ok & (fold == k)
            dev["null"][test] = _deviance(y[test], exposure[test] * y[train].sum() / exposure[train].sum())
            for key, x in (("journey", xj), ("touchpoint", xt)):
                rate = {g: y[train & (x == g)].sum() / exposure[train & (x == g)].sum() for g in (1, 5)}
                dev[key][test] = _deviance(y[test], exposure[test] * np.array([rate[g] for g in x[test]]))
            fr = {key: dev[key][test].sum() for key in dev}
            folds.append((1 - fr["journey"] / fr["null"], 1 - fr["touchpoint"] / fr["null"]))
        row = jt.summary.loc[name]
        journey = 1 - dev["journey"][ok].sum() / dev["null"][ok].sum()
        touchpoint = 1 - dev["touchpoint"][ok].sum() / dev["null"][ok].sum()
        assert row["customers"] == ok.sum() == (40 if name == "churn_12m" else 38)
        assert row["journey_explained"] == pytest.approx(journey, rel=1e-6)
        assert row["touchpoint_explained"] == pytest.approx(touchpoint, rel=1e-6)
        assert row["difference"] == pytest.approx(journey - touchpoint, rel=1e-6, abs=1e-9)
        f = jt.fold_scores_[jt.fold_scores_["outcome"] == name]
        assert f["fold"].tolist() == [0, 1]
        assert f["journey_explained"].tolist() == pytest.approx([a for a, _ in folds], rel=1e-6)
        assert f["touchpoint_explained"].tolist() == pytest.approx([b for _, b in folds], rel=1e-6)
        assert f["difference"].tolist() == pytest.approx([a - b for a, b in folds], rel=1e-6, abs=1e-9)
        assert row["fold_difference_sd"] == pytest.approx(np.std([a - b for a, b in folds], ddof=1), rel=1e-6)
        assert row["difference_lo"] < row["difference"] < row["difference_hi"]
        assert row["winner"] == ("journeys" if row["difference_lo"] > 0 and row["difference"] >= 0.01 else
                                 "touchpoints" if row["difference_hi"] < 0 and row["difference"] <= -0.01 else
                                 "neither")


def test_journeys_vs_touchpoints_fit_skips_word_for_word():
    responses, history = _jvt_world()
    jt = drivers.JourneysVsTouchpoints(folds=5).fit(responses, history)  # 5 folds need 50 customers
    assert jt.skipped_ == ("Journeys vs touchpoints need at least 50 customers who rated both a whole journey and "
                           "a touchpoint (CSAT) in the 12 months before their survey; only 40 did, too few to compare.")
    assert jt.n_customers_ == 40 and jt.summary.empty and jt.metric_ == "csat"
    whole = responses[responses["touchpoint"].isna()]
    jt = drivers.JourneysVsTouchpoints(folds=2, lookback_months=6).fit(whole, history)
    assert jt.skipped_ == ("Journeys vs touchpoints need at least 20 customers who rated both a whole journey and "
                           "a touchpoint (CSAT) in the 6 months before their survey; only 0 did (there are no "
                           "touchpoint ratings), too few to compare.")
    jt = drivers.JourneysVsTouchpoints(folds=2, min_cell_size=41).fit(responses, history)
    assert "need at least 41 customers" in jt.skipped_
    # a rating everybody gives alike is no predictor
    same = responses.assign(csat=np.where(responses["touchpoint"].isna(), 3, responses["csat"]))
    jt = drivers.JourneysVsTouchpoints(folds=2).fit(same, history)
    assert jt.skipped_ == ("Journeys vs touchpoints need journeys and touchpoints each rated by at least 10 of these "
                           "customers, with different ratings; no journey is.")
    assert jt.warnings_[0] == ("Journeys vs touchpoints: billing has the same rating from every one of these "
                               "customers; it is left out.")  # not "fewer than 10 ratings": 40 rated it
    # a touchpoint rated by two customers: its count is the reason; the others are still compared
    portal = pd.DataFrame({"customer_id": ["c00", "c01"], "response_date": "2024-05-01", "csat": [2, 4],
                           "journey": "billing", "touchpoint": "portal"})
    jt = drivers.JourneysVsTouchpoints(folds=2, n_boot=5).fit(pd.concat([responses, portal]), history)
    assert jt.skipped_ is None and jt.features_["touchpoint"] == ["touchpoint:billing/invoice",
                                                                   "touchpoint:billing/portal"]
    assert jt.warnings_ == ["Journeys vs touchpoints: billing/portal has fewer than 10 ratings; it is left out."]
    nobody = history.assign(churned=False, post_revenue=0.0)
    jt = drivers.JourneysVsTouchpoints(folds=2).fit(responses, nobody)
    assert jt.skipped_ == ("Journeys vs touchpoints need something to predict: too few of the customers who rated "
                           "journeys and touchpoints left within 12 months of their survey or spent after it.")


def test_journeys_vs_touchpoints_fit_edges():
    responses, history = _jvt_world()
    plain = drivers.JourneysVsTouchpoints(folds=2, n_boot=10).fit(responses, history)
    # a named metric is used, though the journey surveys rate CES more often
    web = pd.DataFrame({"customer_id": [f"c{i:02d}" for i in range(10)], "response_date": "2024-05-01",
                        "csat": np.nan, "ces": 3.0, "journey": "billing", "touchpoint": "web"})
    with_ces = pd.concat([responses.assign(ces=np.arange(len(responses)) % 7 + 1.0), web])  # CES on 10 more rows
    assert drivers.JourneysVsTouchpoints(folds=2, n_boot=10).fit(with_ces, history).metric_ == "ces"
    named = drivers.JourneysVsTouchpoints(metric="csat", folds=2, n_boot=10).fit(with_ces, history)
    assert named.metric_ == "csat" and named.warnings_ == []
    pd.testing.assert_frame_equal(named.summary, plain.summary)
    # a lookback of one month: the ratings of 1 May are too old for a survey of 30 June
    jt = drivers.JourneysVsTouchpoints(folds=2, lookback_months=1).fit(responses, history)
    assert jt.skipped_ == ("Journeys vs touchpoints need at least 20 customers who rated both a whole journey and "
                           "a touchpoint (CSAT) in the 1 months before their survey; only 0 did (there are no "
                           "whole-journey ratings (a journey, no touchpoint) and no touchpoint ratings), too few to "
                           "compare.")
    # four folds need 40 customers: exactly the 40 there are
    assert drivers.JourneysVsTouchpoints(folds=4, n_boot=10).fit(responses, history).skipped_ is None
    # a journey every one of exactly min_cell_size customers rated alike: the sameness is the reason
    same = responses.assign(csat=np.where(responses["touchpoint"].isna(), 3, responses["csat"]))
    jt = drivers.JourneysVsTouchpoints(folds=2, min_cell_size=40).fit(same, history)
    assert jt.warnings_[0] == ("Journeys vs touchpoints: billing has the same rating from every one of these "
                               "customers; it is left out.")
    # touchpoints all alike: no touchpoint is
    flat = responses.assign(csat=np.where(responses["touchpoint"].isna(), responses["csat"], 2))
    jt = drivers.JourneysVsTouchpoints(folds=2).fit(flat, history)
    assert jt.skipped_ == ("Journeys vs touchpoints need journeys and touchpoints each rated by at least 10 of these "
                           "customers, with different ratings; no touchpoint is.")
    both = responses.assign(csat=3)
    jt = drivers.JourneysVsTouchpoints(folds=2).fit(both, history)
    assert jt.skipped_.endswith("with different ratings; no journey and no touchpoint is.")
    # a step whose name holds a colon keeps its whole name in the warning
    odd = pd.DataFrame({"customer_id": ["c00", "c01"], "response_date": "2024-05-01", "csat": [2, 4],
                        "journey": "billing", "touchpoint": "portal: v2"})
    jt = drivers.JourneysVsTouchpoints(folds=2, n_boot=5).fit(pd.concat([responses, odd]), history)
    assert jt.warnings_ == ["Journeys vs touchpoints: billing/portal: v2 has fewer than 10 ratings; it is left out."]


def test_journeys_vs_touchpoints_fit_leaves_out_an_outcome_whose_events_are_in_one_fold():
    responses, history = _jvt_world()
    fold = np.random.default_rng(42).permutation(np.arange(40) % 2)  # the default seed's folds
    h = history.copy()
    h["churned"] = False
    h.loc[np.flatnonzero(fold == 0)[:12], "churned"] = True  # 12 leave, all in fold 0
    h["duration_days"] = np.where(h["churned"], 100.0, 400.0)
    jt = drivers.JourneysVsTouchpoints(folds=2, n_boot=10).fit(responses, h)
    assert list(jt.summary.index) == ["revenue_per_customer_year"]
    assert jt.warnings_ == ["Journeys vs touchpoints: only 12 of these customers left within 12 months of their "
                            "survey (all in one of the 2 cross-validation folds, so the model fitted without it has "
                            "none to learn from), so churn is not compared."]


def test_journeys_vs_touchpoints_fit_adjusted(monkeypatch):
    """With ``adjust=True`` every model, the baseline too, holds the adjustment terms that vary. A stand-in
    adjustment frame whose one varying term is the journey rating (as 0 or 1) leaves journeys nothing to add."""
    import cxvalue.linkage

    responses, history = _jvt_world()
    seen = {}

    def adjustment_frame(h, covariates):
        seen["ids"], seen["covariates"] = list(h["customer_id"]), covariates
        rating = np.where(np.arange(len(h)) % 2 == 0, 1.0, 0.0)  # customer i's whole-journey rating 5 or 1
        return pd.DataFrame({"journey_again": rating, "flat": 1.0}, index=h.index)

    monkeypatch.setattr(cxvalue.linkage, "adjustment_frame", adjustment_frame)
    jt = drivers.JourneysVsTouchpoints(folds=2, n_boot=10, adjust=True, covariates=["region"]).fit(responses, history)
    assert seen == {"ids": [f"c{i:02d}" for i in range(40)], "covariates": ["region"]}
    plain = drivers.JourneysVsTouchpoints(folds=2, n_boot=10).fit(responses, history)
    for outcome in jt.summary.index:
        assert jt.summary.loc[outcome, "journey_explained"] == pytest.approx(0.0, abs=1e-6)
        assert jt.summary.loc[outcome, "difference"] == pytest.approx(
            -jt.summary.loc[outcome, "touchpoint_explained"], abs=1e-6)
        assert plain.summary.loc[outcome, "journey_explained"] != pytest.approx(0.0, abs=1e-3)


def test_key_drivers_skip_without_relationship_answers():
    """NPS only on journey surveys (and a relationship row without a score): nothing to explain."""
    r = pd.DataFrame({"customer_id": ["a", "b", "c"], "response_date": "2024-01-01", "nps": [9, 3, np.nan],
                      "journey": ["billing", "billing", None], "attr_a": [1, 2, 3]})
    kd = drivers.KeyDrivers(min_cell_size=1).fit(r)
    assert kd.skipped_ == ("Key drivers need relationship survey answers (journey empty) with an NPS score; the "
                           "responses have none.")
    assert kd.n_responses_ == 0 and kd.performance_.empty


def test_key_drivers_fit_at_its_edges():
    base = _tiny_responses()  # 20 answers, two drivers: 5 x (2 + 1) = 15 needed
    assert drivers.KeyDrivers(n_boot=0).fit(base.iloc[:15]).skipped_ is None  # exactly 15
    # a driver rated by exactly min_cell_size (20) of 40 respondents is kept; exactly half of the answers have
    # every driver rated: no warning; three drivers need max(20, 5 x 4) = 20 answers: exactly those
    forty = pd.concat([base, base.assign(customer_id=[f"d{i}" for i in range(20)])], ignore_index=True)
    forty["attr_c"] = [float(i % 3) for i in range(20)] + [np.nan] * 20
    kd = drivers.KeyDrivers(n_boot=0, min_cell_size=20).fit(forty)
    assert kd.skipped_ is None and kd.drivers_ == ["attr_a", "attr_b", "attr_c"]
    assert kd.n_responses_ == 20 and kd.warnings_ == []
    # nothing to rank: every driver rated alike, or none at all
    alike = base.assign(attr_a=1.0, attr_b=2.0)
    assert drivers.KeyDrivers(n_boot=0).fit(alike).skipped_ == (
        "Key drivers need attributes rated by at least 10 respondents, and not all alike; none of the 2 attr_* "
        "ratings is, so there is nothing to rank.")
    assert drivers.KeyDrivers(n_boot=0).fit(base.drop(columns=["attr_a", "attr_b"])).skipped_ == (
        "Key drivers need attribute ratings (the responses have no attr_* ratings): add columns named attr_<name> "
        "to the responses table (for example attr_support).")
    # a score everybody gave alike: R² 0, no shares, a warning
    flat = drivers.KeyDrivers(n_boot=0).fit(base.assign(nps=7))
    assert flat.skipped_ is None and flat.r2_ == 0.0 and flat.summary["importance"].isna().all()
    assert flat.summary["rank"].tolist() == [1, 1]  # it raised IntCastingNaNError before
    assert flat.warnings_ == ["Key drivers: the drivers explain only 0.0% of the variation in NPS; their ranking "
                              "says little."]


def test_key_drivers_rank_fourteen_drivers_at_most():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 11, size=(80, 15)).astype(float)
    r = pd.DataFrame({"customer_id": [f"c{i}" for i in range(80)], "response_date": "2024-01-01",
                      "nps": np.clip(np.round(x[:, :3].mean(axis=1)), 0, 10),
                      **{f"attr_{k:02d}": x[:, k] for k in range(15)}})
    kd = drivers.KeyDrivers(n_boot=0).fit(r.drop(columns=["attr_14"]))  # 14: 5 x 15 = 75 answers needed, 80 given
    assert kd.skipped_ is None and len(kd.drivers_) == 14
    assert kd.summary["importance"].sum() == pytest.approx(1.0)


# --------------------------------------------------------------------------- key drivers: _fit's last part

def _negative_world():
    """40 answers, three drivers rated 0-4: a clearly positive one (a), a clearly negative one (b: its
    whole 95% interval below 0) and a slightly negative one whose interval reaches above 0 but not 1 (c)."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, size=(40, 3)).astype(float)
    y = np.round(np.clip(2 + 1.0 * X[:, 0] - 0.8 * X[:, 1] + rng.normal(0, 1.0, 40), 0, 10))
    r = pd.DataFrame({"customer_id": [f"c{i}" for i in range(40)], "response_date": "2024-01-01", "nps": y,
                      "attr_a": X[:, 0], "attr_b": X[:, 1], "attr_c": X[:, 2]})
    return r, X, y


def test_key_drivers_negative_coefficients_gains_and_band_shifts():
    import warnings

    r, X, y = _negative_world()
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    coef, ci = ols.params[1:], ols.conf_int()[1:]
    assert coef[0] > 0 and ci[1, 1] < 0 and coef[2] < 0 and 0 < ci[2, 1] < 1  # the world is as described
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no bootstrap: no percentile of an empty array (a numpy warning)
        kd = drivers.KeyDrivers(n_boot=0).fit(r)
    # only b's interval is wholly below 0; c's negative estimate is not warned about
    assert kd.warnings_ == ["Key drivers: a better b rating goes with a lower NPS once the other drivers are held "
                            "fixed; its money per point is negative and worth a closer look."]
    assert kd.scales_ == {"attr_a": (0.0, 4.0), "attr_b": (0.0, 4.0), "attr_c": (0.0, 4.0)}
    # a one-point gain, capped at the scale's top (4): every rating under 4 gains a whole point, none more
    below_top = (X < 4).mean(axis=0)
    s = kd.summary.loc[["attr_a", "attr_b", "attr_c"]]
    assert s["score_gain_per_point"].to_numpy() == pytest.approx(coef * below_top, rel=1e-9)
    assert s["coefficient"].to_numpy() == pytest.approx(coef, rel=1e-9)
    assert s["importance_lo"].isna().all() and s["importance_hi"].isna().all()
    shifts = kd.share_shifts_
    assert shifts.index.name == "driver" and list(shifts.index) == ["attr_a", "attr_b", "attr_c"]
    assert list(shifts.columns) == ["detractor", "passive", "promoter"]
    for j, d in enumerate(["attr_a", "attr_b", "attr_c"]):
        gain = coef[j] * np.minimum(1.0, 4.0 - X[:, j])
        want = drivers.band_shares(y, gain, DEFAULT_BANDS["nps"]) - drivers.band_shares(y, 0.0, DEFAULT_BANDS["nps"])
        assert shifts.loc[d].to_numpy() == pytest.approx(want.to_numpy(), abs=1e-12)
    assert shifts.loc["attr_b", "detractor"] > 0.06  # b moves passives (scores of 7) down


def test_key_drivers_warn_under_two_percent_only(monkeypatch):
    """R² of exactly 2% is not 'only' (the warning is for under 2%)."""
    r, X, y = _negative_world()
    real = drivers.subset_r2

    def at(value):
        def fake(X, y):
            out = real(X, y)
            return out * (value / out[-1])  # every subset scaled: the same shares, R² = value
        return fake

    monkeypatch.setattr(drivers, "subset_r2", at(0.02))
    kd = drivers.KeyDrivers(n_boot=0).fit(r)
    assert kd.r2_ == 0.02 and not any("explain only" in w for w in kd.warnings_)
    monkeypatch.setattr(drivers, "subset_r2", at(0.0199))
    kd = drivers.KeyDrivers(n_boot=0).fit(r)
    assert "Key drivers: the drivers explain only 2.0% of the variation in NPS; their ranking says little." \
        in kd.warnings_


def test_key_drivers_flat_score_divides_by_no_zero_r2():
    """A score everybody gave alike: R² is exactly 0 and every Shapley value 0, so the shares are NaN; they are
    set so, not computed as 0 / 0, which would put numpy's 'invalid value encountered in divide' in front of the
    user (branch mA: the shares' `r2_ > 0` tested as `>= 0`, or the branch always taken), and they are NaN, not
    None (`np.full(len(kept), None)`)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flat = drivers.KeyDrivers(n_boot=0).fit(_tiny_responses().assign(nps=7))
    assert flat.skipped_ is None and flat.r2_ == 0.0
    assert flat.summary["importance"].isna().all() and (flat.summary["r2_contribution"] == 0.0).all()
    # NaN shares, not None: the importance column stays a float column (an object column of None would not be)
    assert flat.summary["importance"].dtype == float


def test_key_drivers_summary_is_indexed_by_driver_with_whole_number_ranks_ties_sharing_the_best():
    """The summary's index is named ``driver`` (as the performance table it is joined with), and ``rank`` is a
    whole number where tied drivers share the best rank of the tie (``method="min"``): with a score everybody
    gave alike every share is NaN and all three drivers tie, ranked 1st, not 2nd (the average of 1, 2 and 3)
    (branch mA)."""
    kd = drivers.KeyDrivers(n_boot=0).fit(_tiny_responses())
    assert kd.summary.index.name == "driver" and kd.summary["rank"].tolist() == [1, 2]
    three = _tiny_responses().assign(attr_c=[float(i % 3) for i in range(20)], nps=7)  # 5 x (3 + 1) = 20 answers
    flat = drivers.KeyDrivers(n_boot=0).fit(three)
    assert flat.skipped_ is None and flat.summary.index.name == "driver"
    assert flat.summary["rank"].tolist() == [1, 1, 1] and flat.summary["rank"].dtype.kind == "i"
