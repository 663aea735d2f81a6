"""The movers' rows by hand, on stand-in models with known predictions (tests added for the mutation run,
tests/MUTATION.md).

Six respondents: two detractors still customers (rows 0 and 1), one detractor who left (row 2), a detractor
the models were not fitted on (row 3), and two passives (rows 4 and 5). Each fitted customer's prediction
is a group level times the customer's own size, so the movers' means and their weighting can be written
out; their hazard depends on how long they have been followed (``duration_days``), so conditioning on it
shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxvalue import movers

LEVEL = {"detractor": 100.0, "passive": 150.0, "promoter": 200.0}
SIZE = pd.Series([1.0, 3.0, 5.0, 7.0, 2.0, 4.0])
HR = {"detractor": 2.0, "passive": 1.0, "promoter": 0.5}


class _Rate:
    def __init__(self, levels, fitted=True):
        self.levels, self.fitted = levels, fitted
        self.design_ = pd.DataFrame(index=pd.Index([0, 1, 2, 4, 5]))  # row 3 was not fitted

    def predict(self, group, rows):
        return pd.Series(self.levels[group] * SIZE.loc[rows].to_numpy(), index=rows)


class _Churn:
    fitted = True

    def __init__(self):
        self.summary_ = pd.DataFrame({"hazard_ratio": [2.0, 1.0, np.nan]}, index=["detractor", "passive", "promoter"])

    def cumulative_hazard(self, rows, group, since_survey_days, years):
        # 0.1 a year for the passives, times the group's hazard ratio, times 1 + days already followed / 1000
        since = np.asarray(since_survey_days, float)[:, None]
        return 0.1 * HR[group] * (1 + since / 1000) * np.asarray(years, float)[None, :]


def _history():
    return pd.DataFrame({"group": ["detractor", "detractor", "detractor", "detractor", "passive", "passive"],
                         "churned": [False, False, True, False, False, False],
                         "duration_days": [0.0, 1000.0, 50.0, 10.0, 500.0, 500.0]})


def test_mover_rows_by_hand():
    base = pd.Series({"detractor": 900.0, "passive": 1800.0})
    rows = movers.mover_rows(_history(), _Rate(LEVEL), _Rate({g: v / 10 for g, v in LEVEL.items()}), _Churn(),
                             _Rate({g: v / 1000 for g, v in LEVEL.items()}),
                             [("detractor", "passive"), ("passive", "promoter")], base, 2)
    assert list(rows.index) == ["detractor", "detractor as passive", "passive", "passive as promoter"]
    assert rows.index.name == "row"
    assert list(rows["as_group"]) == ["detractor", "passive", "passive", "promoter"]
    assert list(rows["customers"]) == [900.0, 900.0, 1800.0, 1800.0]
    assert list(rows["movers"]) == [2, 2, 2, 2]  # detractors 0 and 1: not the one who left, nor the unfitted
    assert list(rows["movers_effective"]) == [2.0, 2.0, 2.0, 2.0]
    # detractors' sizes 1 and 3: mean size 2; passives' 2 and 4: mean 3
    assert list(rows["revenue"]) == pytest.approx([200.0, 300.0, 450.0, 600.0])
    assert list(rows["cost_to_serve"]) == pytest.approx([20.0, 30.0, 45.0, 60.0])
    assert list(rows["referrals"]) == pytest.approx([0.2, 0.3, 0.45, 0.6])
    # no hazard ratio for the promoters: 1 in the simulation
    assert list(rows["hazard_ratio"]) == [2.0, 1.0, 1.0, 1.0]
    # survival: mean over the movers of exp(-0.1 HR (1 + days / 1000) t); detractors followed 0 and 1,000 days
    for name, hr, days in (("detractor", 2.0, (0.0, 1000.0)), ("detractor as passive", 1.0, (0.0, 1000.0)),
                           ("passive as promoter", 0.5, (500.0, 500.0))):
        expected = [np.mean([np.exp(-0.1 * hr * (1 + d / 1000) * t) for d in days]) for t in (1, 2)]
        assert list(rows.loc[name, "survival"]) == pytest.approx(expected, rel=1e-12), name


def test_weights_weight_every_mean_and_give_the_effective_number():
    # detractor 0 weighs 3, detractor 1 weighs 1 (passives: no weight given -> 1 each)
    weights = pd.Series({0: 3.0, 1: 1.0, 2: 10.0})
    rows = movers.mover_rows(_history(), _Rate(LEVEL), None, _Churn(), None, [("detractor", "passive")],
                             pd.Series({"detractor": 900.0}), 1, weights)
    assert rows.loc["detractor", "revenue"] == pytest.approx(100 * (3 * 1 + 1 * 3) / 4)
    assert rows.loc["detractor as passive", "revenue"] == pytest.approx(150 * 6 / 4)
    assert rows.loc["detractor", "movers_effective"] == pytest.approx(16 / 10)  # (3 + 1)^2 / (9 + 1)
    assert rows.loc["detractor", "movers"] == 2
    s = (3 * np.exp(-0.2 * 1.0) + 1 * np.exp(-0.2 * 2.0)) / 4  # followed 0 and 1,000 days
    assert rows.loc["detractor", "survival"] == pytest.approx([s], rel=1e-12)
    # no cost model, no referral model: nothing to charge, nobody referred
    assert rows.loc["detractor", "cost_to_serve"] == 0.0 and rows.loc["detractor", "referrals"] == 0.0


def test_no_churn_model_keeps_everyone_and_a_skipped_model_predicts_nothing():
    history = _history()
    skipped = _Rate(LEVEL, fitted=False)
    rows = movers.mover_rows(history, _Rate(LEVEL), skipped, None, None, [("detractor", "passive")],
                             pd.Series({"detractor": 900.0}), 3)
    assert list(rows.loc["detractor", "survival"]) == [1.0, 1.0, 1.0]
    assert list(rows["hazard_ratio"]) == [1.0, 1.0]
    assert list(rows["cost_to_serve"]) == [0.0, 0.0]
    unfitted_churn = _Churn()
    unfitted_churn.fitted = False
    rows = movers.mover_rows(history, _Rate(LEVEL), None, unfitted_churn, None, [("detractor", "passive")],
                             pd.Series({"detractor": 900.0}), 2)
    assert list(rows.loc["detractor as passive", "survival"]) == [1.0, 1.0]
    assert list(rows["hazard_ratio"]) == [1.0, 1.0]
    # a source group nobody of which is a customer today, and a base without the group
    rows = movers.mover_rows(history, _Rate(LEVEL), None, None, None, [("promoter", "passive"), ("passive", "promoter")],
                             pd.Series(dtype=float), 1)
    assert list(rows.index) == ["passive", "passive as promoter"] and list(rows["customers"]) == [0.0, 0.0]


def test_no_movers_at_all_is_an_empty_table_of_the_usual_columns():
    history = _history()
    revenue = _Rate(LEVEL, fitted=False)  # nothing fitted: nobody to stand in for today's customers
    rows = movers.mover_rows(history, revenue, None, None, None, [("detractor", "passive")], pd.Series({"detractor": 9.0}), 2)
    assert rows.empty and rows.index.name == "row"
    assert list(rows.columns) == ["customers", "movers", "movers_effective", "as_group", "revenue", "cost_to_serve",
                                  "referrals", "hazard_ratio", "survival"]


def test_row_names():
    assert movers.row_name("detractor", "detractor") == "detractor"
    assert movers.row_name("detractor", "passive") == "detractor as passive"


def test_every_mean_is_weighted_and_a_mover_without_a_weight_weighs_one():
    # detractor 0 has no weight (1), detractor 1 weighs 3: sizes 1 and 3 -> (1 + 9) / 4
    weights = pd.Series({1: 3.0})
    rows = movers.mover_rows(_history(), _Rate(LEVEL), _Rate({g: v / 10 for g, v in LEVEL.items()}), None,
                             _Rate({g: v / 1000 for g, v in LEVEL.items()}), [("detractor", "passive")],
                             pd.Series({"detractor": 900.0}), 1, weights)
    assert rows.loc["detractor", "revenue"] == pytest.approx(100 * 10 / 4)
    assert rows.loc["detractor", "cost_to_serve"] == pytest.approx(10 * 10 / 4)
    assert rows.loc["detractor as passive", "referrals"] == pytest.approx(0.15 * 10 / 4)
    assert rows.loc["detractor", "movers_effective"] == pytest.approx(16 / 10)


def test_two_moves_from_one_group_share_its_row():
    rows = movers.mover_rows(_history(), _Rate(LEVEL), None, None, None,
                             [("detractor", "passive"), ("detractor", "promoter")], pd.Series({"detractor": 900.0}), 1)
    assert list(rows.index) == ["detractor", "detractor as passive", "detractor as promoter"]
    assert list(rows["revenue"]) == pytest.approx([200.0, 300.0, 400.0])


def test_a_group_missing_from_the_churn_summary_has_hazard_ratio_one():
    churn = _Churn()
    churn.summary_ = churn.summary_.drop(index="promoter")
    rows = movers.mover_rows(_history(), _Rate(LEVEL), None, churn, None, [("passive", "promoter")],
                             pd.Series({"passive": 10.0}), 1)
    assert list(rows["hazard_ratio"]) == [1.0, 1.0]
