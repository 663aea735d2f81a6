"""The placebo check: the adjusted comparison repeated a window before the survey reads 1 where the
survey comes before any change, and reads the true effects where the survey came a year late."""

from __future__ import annotations

import pandas as pd
import pytest

from cxvalue import config, data, history, narrative
from cxvalue.linkage import RevenueModel
from cxvalue.placebo import Placebo
from cxvalue.synthetic import TRUE_EFFECTS, generate


def test_the_shifted_history_by_hand():
    """Dated 12 months earlier: the "after" window is the year before the real answer, the "before"
    window the year before that; a customer who joined in between is not in it."""
    customers = pd.DataFrame({"customer_id": ["a", "b"], "start_date": ["2022-01-01", "2024-03-01"],
                              "end_date": [None, None]})
    responses = pd.DataFrame({"customer_id": ["a", "b"], "response_date": ["2024-06-01", "2024-06-01"], "nps": [3, 9]})
    transactions = pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "b"],
        "date": ["2022-07-01", "2023-05-31", "2023-06-01", "2024-06-01", "2024-04-01"],
        "amount": [10.0, 20.0, 40.0, 80.0, 5.0]})
    p = config.load_params({"as_of": "2024-12-31"})
    checked = data.check({"customers": customers, "responses": responses, "transactions": transactions}, p)
    real = history.history(checked, p).set_index("customer_id")
    shifted = history.history(checked, p, shift_months=12).set_index("customer_id")
    assert list(shifted.index) == ["a"]  # b joined after 2023-06-01
    a = shifted.loc["a"]
    assert a["response_date"] == pd.Timestamp("2023-06-01") and a["group"] == "detractor"
    assert a["post_revenue"] == 40.0 and a["pre_revenue"] == 30.0  # [2023-06-01, 2024-06-01) and the year before
    assert a["prior_sales"] == 30.0 and a["post_exposure_years"] == pytest.approx(366 / 365.25)
    assert real.loc["a", "post_revenue"] == 80.0 and real.loc["a", "pre_revenue"] == 40.0


@pytest.fixture(scope="module")
def world():
    return generate(n_customers=20_000, seed=3)


def _fit(tables, as_of):
    p = config.load_params({"as_of": as_of})
    checked = data.check(tables, p)
    return Placebo("passive", list(checked.covariates)).fit(checked, p), checked, p


def test_a_survey_before_any_change_passes(world):
    """The world's effects start at the survey: a year earlier every ratio reads 1 (within its
    interval or 2%), while the real comparison finds the gaps."""
    placebo, checked, p = _fit(world.tables, world.truth["as_of"])
    assert placebo.skipped_ is None and placebo.passed is True and not placebo.warnings_
    s = placebo.summary.set_index(["outcome", "group"])
    assert set(s.index) == {(o, g) for o in ("revenue", "cost_to_serve") for g in ("detractor", "promoter")}
    for (outcome, g), r in s.iterrows():
        assert r["ratio_lo"] <= 1 <= r["ratio_hi"] or abs(r["ratio"] - 1) <= 0.02, (outcome, g)
        assert r["ratio_hi"] - r["ratio_lo"] < 0.15  # a real test, not an interval wide enough to hold anything
    real = RevenueModel("passive", list(checked.covariates)).fit(history.history(checked, p)).summary
    assert real.loc["detractor", "ratio_hi"] < 0.9  # the real gap is there
    r = placebo.results()
    assert r["passed"] is True and r["shift_months"] == 12 and r["revenue"]["detractor"]["passed"]
    assert r["customers"]["detractor"] == s.loc[("revenue", "detractor"), "customers"]
    words = narrative.placebo_sentences(placebo)
    assert "12 months earlier" in words[0] and words[1].startswith("It passes")
    assert list(narrative.placebo_table(placebo)["Passes"]) == ["yes"] * 4


def test_a_survey_a_year_late_fails_and_reads_the_true_effects(world):
    """Responses dated a year after the behaviour changed: the placebo window then holds the
    effects, so it reads the true ratios and warns."""
    tables = dict(world.tables)
    r = tables["responses"].copy()
    r["response_date"] = pd.to_datetime(r["response_date"]) + pd.Timedelta(days=365)
    tables["responses"] = r[r["response_date"] <= pd.Timestamp(world.truth["as_of"])]
    placebo, _, _ = _fit(tables, world.truth["as_of"])
    assert placebo.passed is False
    s = placebo.summary.set_index(["outcome", "group"])["ratio"]
    assert s[("revenue", "detractor")] == pytest.approx(TRUE_EFFECTS["revenue"]["detractor"], rel=0.03)
    assert s[("revenue", "promoter")] == pytest.approx(TRUE_EFFECTS["revenue"]["promoter"], rel=0.03)
    assert s[("cost_to_serve", "detractor")] == pytest.approx(TRUE_EFFECTS["contacts"]["detractor"], rel=0.1)
    assert len(placebo.warnings_) == 4 and "detractor customers' revenue reads 0.8" in placebo.warnings_[0]
    assert placebo.results()["revenue"]["detractor"]["passed"] is False
    words = narrative.placebo_sentences(placebo)
    assert words[1].startswith("It fails for detractor revenue 0.8")
    assert "no" in list(narrative.placebo_table(placebo)["Passes"])


def test_without_a_year_of_history_before_the_survey_it_is_skipped(world):
    """Everybody answered in their first months: no one was a customer a year before."""
    c = world.tables["customers"]
    first = pd.to_datetime(c.set_index("customer_id")["start_date"]) + pd.Timedelta(days=30)
    r = world.tables["responses"].copy()
    r["response_date"] = r["customer_id"].map(first)
    r = r[r["response_date"] <= pd.Timestamp(world.truth["as_of"])]
    placebo, _, _ = _fit({**world.tables, "responses": r}, world.truth["as_of"])
    assert placebo.skipped_ and "12 months before their survey" in placebo.skipped_
    assert placebo.passed is None and placebo.results()["skipped"] == placebo.skipped_
    assert narrative.placebo_sentences(placebo) == [narrative.skipped_sentence(placebo)]
    assert narrative.placebo_table(placebo).empty


@pytest.mark.parametrize("name", __import__("shapes").SHAPE_CASES)
def test_placebo_on_every_shape(name):
    """Every data shape gives a placebo check or a plain reason why not, never an error."""
    from shapes import shaped

    p, checked, _ = shaped(name)
    placebo = Placebo(config.reference_group(p), list(checked.covariates), p["min_group_size"]).fit(checked, p)
    r = placebo.results()
    if placebo.skipped_:
        assert len(placebo.skipped_) > 40 and placebo.passed is None
    else:
        assert r["revenue"] and all(0 < v["ratio"] < 10 for v in r["revenue"].values() if "ratio" in v)
    assert len(narrative.placebo_sentences(placebo)) >= 1


@pytest.mark.parametrize("shape", ["as-is csv", "no contacts table", "nobody left", "nps only, no contacts, no end_date",
                                   "csat only", "dates with time and zone"])
def test_the_history_and_the_placebo_history_built_in_one_pass_are_each_built_alone(shape):
    """``cxvalue run`` builds the history and the placebo check's in one query (one pass over the
    transactions and the contacts) and keeps the second for the check: on every shape of data, each
    is what it would be built alone; the kept one is handed out once, then built again."""
    from shapes import SHAPES, world_tables

    from cxvalue.placebo import shifted_history

    s = next(s for s in SHAPES if s.name == shape)
    p = config.load_params(overrides={"as_of": "2025-12-31", **config.parse_set(s.sets)})
    tables = s.reshape(world_tables(n=400))
    both = data.check(tables, p)
    real, shifted = history.histories(both, p, (0, 12), keep=(12,))
    alone = data.check(tables, p)
    pd.testing.assert_frame_equal(real, history.history(alone, p))
    pd.testing.assert_frame_equal(shifted, history.history(alone, p, shift_months=12))
    assert 50 < len(shifted) < len(real) and shifted["post_revenue"].sum() > 0
    assert shifted_history(both, p) is shifted  # the kept one, once
    assert not both.kept
    pd.testing.assert_frame_equal(shifted_history(both, p), shifted)
    # kept for these parameters only: another window is built for itself
    history.histories(both, p, (0, 12), keep=(12,))
    six = {**p, "window_months": 6}
    pd.testing.assert_frame_equal(history.history(both, six, shift_months=12), history.history(alone, six, shift_months=12))
    assert len(both.kept) == 1
