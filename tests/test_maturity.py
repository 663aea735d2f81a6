"""CX maturity, tracked: the contract's rules, levels and spread by hand, rounds and their change,
a round trip through two runs, the synthetic world's known improvement, and plain skips."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cxvalue import charts, config, data, maturity, narrative
from cxvalue.results import dumps
from cxvalue.synthetic import MATURITY_TRUTH, generate

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def base_tables():
    w = generate(n_customers=300, seed=2)
    return {k: v.copy() for k, v in w.tables.items()}


def _check(base_tables, rows, **params):
    tables = {**{k: v.copy() for k, v in base_tables.items()}, "maturity": pd.DataFrame(rows)}
    return data.check(tables, config.load_params({"as_of": AS_OF, **params}))


def _answers(who, team, day, levels):
    return [{"assessed_by": who, "team": team, "date": day, "element": e, "level": x} for e, x in levels.items()]


# round 1 (2024-12): two teams; round 2 (2025-11/12): the same two teams
R1 = (_answers("ann", "service", "2024-12-02", {"strategy": 2, "journey design": 1})
      + _answers("bob", "service", "2024-12-03", {"strategy": 3, "journey design": 2})
      + _answers("cy", "sales", "2024-12-05", {"strategy": 2, "journey design": 4}))
R2 = (_answers("ann", "service", "2025-11-28", {"strategy": 3, "journey design": 1})
      + _answers("bob", "service", "2025-12-01", {"strategy": 4, "journey design": 2})
      + _answers("cy", "sales", "2025-12-04", {"strategy": 3, "journey design": 5}))


def test_levels_spread_and_change_by_hand(base_tables):
    checked = _check(base_tables, R1 + R2)
    m = maturity.Maturity().fit(checked)
    el = m.summary
    # round 2, units = teams: service strategy (3+4)/2 = 3.5, sales 3 -> element 3.25; journey design 1.5 and 5
    assert el.loc["strategy", "level"] == pytest.approx(3.25) and el.loc["strategy", "spread"] == pytest.approx(0.5)
    assert el.loc["journey_design", "level"] == pytest.approx(3.25)
    assert el.loc["journey_design", "spread"] == pytest.approx(3.5) and el.loc["journey_design", "disagreement"]
    assert (el.loc["journey_design", "lowest_unit"], el.loc["journey_design", "highest_unit"]) == ("service", "sales")
    assert m.overall_ == pytest.approx(3.25)
    # round 1: strategy (2.5 + 2) / 2 = 2.25, journey design (1.5 + 4) / 2 = 2.75: overall 2.5
    assert list(m.rounds_["overall"]) == pytest.approx([2.5, 3.25])
    assert el.loc["strategy", "change"] == pytest.approx(1.0) and el.loc["journey_design", "change"] == pytest.approx(0.5)
    # paired over teams: service (3.5 + 1.5)/2 - (2.5 + 1.5)/2 = 0.5; sales (3 + 5)/2 - (2 + 4)/2 = 1.0
    diffs = np.array([0.5, 1.0])
    half = 1.959964 * diffs.std(ddof=1) / np.sqrt(2)
    assert m.change_["overall"] == pytest.approx(0.75)
    assert m.change_["overall_ci"] == pytest.approx([0.75 - half, 0.75 + half], rel=1e-5)
    r = json.loads(dumps(m.results()))
    assert r["unit"] == "team" and r["round"] == {"first_day": "2025-11-28", "last_day": "2025-12-04",
                                                  "respondents": 3, "units": 2}
    assert r["previous_round"]["overall_level"] == pytest.approx(2.5) and r["overall_level_name"] == "Defined"
    assert r["elements"]["journey_design"]["disagreement"] and r["by_unit"] == {"sales": 4.0, "service": 2.5}
    assert "The teams disagree most on journey design: from 1.5 (service) to 5.0 (sales)" in \
        " ".join(narrative.maturity_sentences(m))
    assert narrative.maturity_table(m).columns.name == "Element"
    assert charts.maturity_levels(m.units_, m.summary, m.unit_title).to_dict()["layer"]
    # without a team column every respondent is a unit
    m2 = maturity.Maturity().fit(_check(base_tables, [{k: v for k, v in r.items() if k != "team"} for r in R2]))
    assert m2.unit_kind_ == "assessed_by" and m2.summary.loc["strategy", "units"] == 3


def test_the_contract_rules_for_the_maturity_table(base_tables):
    rows = R2 + [
        {"assessed_by": "dee", "team": "x", "date": "2025-12-01", "element": "Customer-Insight", "level": 4},  # kept
        {"assessed_by": "dee", "team": "x", "date": "2025-12-01", "element": "vibes", "level": 4},
        {"assessed_by": "dee", "team": "x", "date": "2025-12-01", "element": "culture", "level": 6},
        {"assessed_by": "dee", "team": "x", "date": "2025-12-01", "element": "culture", "level": 2.5},
        {"assessed_by": "dee", "team": "x", "date": "2026-03-01", "element": "culture", "level": 3},
        {"assessed_by": "", "team": "x", "date": "2025-12-01", "element": "culture", "level": 3},
    ]
    checked = _check(base_tables, rows)
    q = checked.data_quality["maturity"]
    assert q["rows_read"] == len(rows) and q["rows_used"] == len(R2) + 1
    assert q["excluded"] == {"assessed_by empty": 1, "date after as_of": 1,
                             "element not one of the nine (CONTRACT section 1.4)": 1,
                             "level outside 1-5 or not a whole number": 2}
    assert "customer_insight" in maturity.Maturity().fit(checked).summary.index
    # the assessment's dates do not move the data's as_of
    late = _check(base_tables, R2 + [{**R2[0], "date": "2026-06-30"}], as_of="")
    assert late.as_of < pd.Timestamp("2026-01-01").date()


def test_a_maturity_table_round_trips_through_two_runs(base_tables):
    """Run 1 sees round 1; run 2 both rounds. Run 2 reads run 1's results.json as an earlier run:
    the change since the last run is the difference of the two runs' overall levels."""
    first = maturity.Maturity().fit(_check(base_tables, R1))
    saved = json.loads(dumps({"maturity": first.results()}))
    earlier = {**saved, "run": {"label": "2025-01-05 06:00 (data to 2024-12-31)", "as_of": "2024-12-31"}}
    second = maturity.Maturity([earlier]).fit(_check(base_tables, R1 + R2))
    assert first.overall_ == pytest.approx(2.5) and first.change_ is None
    assert second.since_last_run() == pytest.approx(0.75)
    assert list(second.trend()["overall"]) == pytest.approx([2.5, 3.25])
    text = " ".join(narrative.maturity_sentences(second))
    assert "Since the last run the overall level moved +0.8." in text
    assert "Since the previous round (2 December 2024) the overall level moved +0.8" in text
    assert second.results() == maturity.Maturity().fit(_check(base_tables, R1 + R2)).results()  # never the runs


def test_the_synthetic_assessment_recovers_its_truth(base_tables):
    w = generate(n_customers=300, seed=2, maturity=True)
    m = maturity.Maturity().fit(_check(base_tables, w.maturity.to_dict(orient="records")))
    lo, hi = m.change_["overall_ci"]
    assert lo < MATURITY_TRUTH["improvement"] < hi
    assert m.summary["spread"].idxmax() == MATURITY_TRUTH["disagreement"]
    assert len(m.summary) == 9 and m.change_["units_in_both"] == len(MATURITY_TRUTH["teams"])


def test_maturity_skips_plainly(base_tables):
    none = maturity.Maturity().fit(data.check(base_tables, config.load_params({"as_of": AS_OF})))
    assert none.skipped_ == maturity.NO_MATURITY and none.results() == {"skipped": maturity.NO_MATURITY}
    assert narrative.maturity_sentences(none) == [narrative.skipped_sentence(none)] and narrative.maturity_table(none).empty
    bad = maturity.Maturity().fit(_check(base_tables, [{**R1[0], "level": 9}, {**R1[1], "element": "x"}]))
    assert bad.skipped_.startswith("CX maturity: none of the 2 rows of the maturity table could be used")
    assert bad.skipped_ in bad.warnings_
