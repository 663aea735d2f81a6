"""Goals with dates: the path, its milestones, today's reading, and the config that feeds them."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from cxvalue import charts, cli, config, data, goals, narrative, scorecard
from cxvalue.exceptions import ParameterError
from cxvalue.synthetic import generate, write_world

AS_OF = "2025-12-31"


# --------------------------------------------------------------------------- the path, by hand


def test_goal_path_by_hand():
    # -20 on 1 Jan 2025 to 0 on 1 Jan 2027: 730 days; 1 Jan 2026 is 365 days in, half way
    assert goals.path_value(-20, 0, "2025-01-01", "2027-01-01", "2026-01-01") == pytest.approx(-10.0)
    assert goals.path_value(-20, 0, "2025-01-01", "2027-01-01", "2025-07-01") == pytest.approx(-20 + 20 * 181 / 730)
    assert goals.path_value(-20, 0, "2025-01-01", "2027-01-01", "2024-06-30") == -20  # before: the start
    assert goals.path_value(-20, 0, "2025-01-01", "2027-01-01", "2028-06-30") == 0  # after: the goal
    # a falling goal (cost to serve): 50 -> 40 over 1 Jan - 15 Jul 2025 (195 days)
    ms = goals.milestones(50, 40, "2025-01-01", "2025-07-15")
    assert [m["date"] for m in ms] == ["2025-03-31", "2025-06-30", "2025-07-15"]
    assert [m["value"] for m in ms] == pytest.approx([50 - 10 * 89 / 195, 50 - 10 * 180 / 195, 40])
    assert not any(m["year_end"] for m in ms)
    assert [m["year_end"] for m in goals.milestones(0, 1, "2025-10-01", "2026-03-31")] == [True, False]


def test_reading_against_the_path():
    assert goals.path_status(-9.0, -10.0, 2.0) == "on the path"
    assert goals.path_status(-11.5, -10.0, 2.0) == "on the path within the noise"
    assert goals.path_status(-12.5, -10.0, 2.0) == "behind the path"
    assert goals.path_status(-10.5, -10.0, None) == "behind the path"  # a census has no noise
    assert goals.path_status(44.0, 45.0, None, higher_is_better=False) == "on the path"
    assert goals.path_status(46.0, 45.0, None, higher_is_better=False) == "behind the path"


# --------------------------------------------------------------------------- on a world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("goals")
    write_world(generate(n_customers=1_500, seed=11), out)
    checked = data.check(str(out), config.load_params({"as_of": AS_OF}))
    return checked


def _fit(checked, targets, earlier=None):
    p = config.load_params({"as_of": AS_OF, "targets": targets})
    card = scorecard.Scorecard(p).fit(checked)
    return card, goals.GoalPaths(p, earlier).fit(checked, card)


def test_dated_goals_on_a_world(world):
    card, gp = _fit(world, {"nps": {"value": 10, "by": "2027-01-01", "from": "2025-01-01", "start": -20},
                            "cost_to_serve_per_customer": {"value": 30, "by": "2026-12-31"},
                            "csat": 0.9})
    assert card.kpis_["nps"]["target"] == 10 and card.kpis_["csat"]["target"] == 0.9  # plain goals keep working
    nps = gp.results()["nps"]
    assert nps["expected_today"] == pytest.approx(-20 + 30 * 364 / 730)  # 31 Dec 2025: day 364 of 730
    assert nps["actual"] == card.kpis_["nps"]["actual"] and nps["start_source"] == "given"
    assert nps["gap_to_path"] == pytest.approx(nps["actual"] - nps["expected_today"])
    assert nps["status"] == goals.path_status(nps["actual"], nps["expected_today"], nps["margin_of_error"])
    assert nps["next_milestone"]["date"] == "2026-03-31" and not nps["due"]
    assert "csat" not in gp.goals_  # a plain goal has no path
    # no start given: measured as the scorecard measures it on 'from' (default: a year before as_of)
    cost = gp.goals_["cost_to_serve_per_customer"]
    assert cost["from"] == "2025-01-01" and cost["start_source"] == "measured"
    then = scorecard.Scorecard(config.load_params({"as_of": "2025-01-01"})).fit(
        dataclasses.replace(world, as_of=__import__("datetime").date(2025, 1, 1)))
    assert cost["start"] == pytest.approx(then.kpis_["cost_to_serve_per_customer"]["actual"])
    # the trend: the path and this run; an earlier run is read against the path on its own date
    earlier = [{"kpis": {"nps": {"actual": -18.0, "margin_of_error": 3.0}},
                "run": {"label": "June", "as_of": "2025-06-30"}}]
    only_nps = {"nps": {"value": 10, "by": "2027-01-01", "from": "2025-01-01", "start": -20}}
    _, gp2 = _fit(world, only_nps, earlier)
    t = gp2.trend()
    runs = t[t["kind"] == "run"]
    assert list(runs["run"]) == ["June", "this run"]
    # the path on 30 June 2025 is -20 + 30 * 180 / 730 = -12.6; -18 +- 3 falls short by more than the noise
    assert runs.iloc[0]["status"] == "behind the path"
    assert gp2.results() == _fit(world, only_nps)[1].results()  # results never depend on earlier runs
    chart = charts.goal_paths(t, "USD").to_dict()
    assert chart["facet"]["field"] == "panel"
    sentences = narrative.goal_sentences(gp, "USD")
    assert sentences[0].startswith("NPS: the goal is 10.0 pts by 1 January 2027")
    assert narrative.goals_table(gp, "USD").columns.name == "KPI"
    # the scorecard reads a dated goal against its path, a plain one against the goal
    table = narrative.scorecard_table(card, "USD", gp)
    assert table.loc["NPS", "Goal"].startswith("10.0 pts by 1 January 2027 (path today: ")
    assert table.loc["NPS", "Gap to goal"].endswith(" to the path")
    assert table.loc["NPS", "Status"] == {"on the path": "on target", "behind the path": "behind target",
                                          "on the path within the noise": "within the noise"}[nps["status"]]
    assert table.loc["CSAT (share satisfied)", "Goal"] == "90.0%"
    assert narrative.scorecard_table(card, "USD").loc["NPS", "Goal"] == "10.0 pts"


def test_goals_skip_plainly(world):
    _, gp = _fit(world, {"nps": 10})
    assert gp.skipped_ == goals.NO_DATED_GOAL and gp.results() == {"skipped": goals.NO_DATED_GOAL}
    assert narrative.goal_sentences(gp, "USD") == [goals.NO_DATED_GOAL]
    # no data a year before the path starts, and no start given: that goal alone says why
    _, gp = _fit(world, {"nps": {"value": 10, "by": "2027-01-01", "from": "2010-01-01"},
                         "csat": {"value": 0.6, "by": "2027-01-01"}})
    assert gp.skipped_ is None and "give targets.nps.start" in gp.goals_["nps"]["skipped"]
    assert gp.goals_["csat"]["skipped"] is None and gp.goals_["nps"]["skipped"] in gp.warnings_


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("goal, fragment", [
    ({"value": 10}, "needs 'by'"),
    ({"by": "2027-12-31"}, "needs 'value'"),
    ({"value": "ten", "by": "2027-12-31"}, "'targets.nps.value': expected a number"),
    ({"value": 10, "by": "31/12/2027"}, "'targets.nps.by': expected a date"),
    ({"value": 10, "by": "2027-12-31", "when": "soon"}, "'targets.nps.when': unknown key"),
    ({"value": 130, "by": "2027-12-31"}, "must be between -100 and 100"),
    ({"value": 10, "by": "2027-12-31", "start": -101}, "start must be between -100 and 100"),
    ({"value": 10, "by": "2027-12-31", "from": "2028-01-01"}, "'from' must come before 'by'"),
    ("ten", "expected a number, or a goal with a date"),
])
def test_malformed_goals_name_the_key(goal, fragment):
    with pytest.raises(ParameterError, match=fragment.replace("(", r"\(")):
        config.load_params({"targets.nps": goal})


def test_goals_from_yaml_and_set(tmp_path):
    cfg = tmp_path / "goals.yaml"
    cfg.write_text("targets:\n  nps: {value: 10, by: 2027-12-31}\n  csat: 0.6\n")
    p = config.load_params(cfg, ["targets.ces={value: 0.7, by: 2026-12-31, from: 2025-06-30, start: 0.6}"])
    assert p["targets"]["nps"] == {"value": 10.0, "by": "2027-12-31"} and p["targets"]["csat"] == 0.6
    assert p["targets"]["ces"] == {"value": 0.7, "start": 0.6, "by": "2026-12-31", "from": "2025-06-30"}
    assert config.goal_value(p["targets"]["nps"]) == 10.0 and config.goal_value(0.6) == 0.6
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  csat: {value: 0.6, by: next year}\n")
    res = CliRunner().invoke(cli.app, ["validate", "--data", str(tmp_path), "--config", str(bad)])
    assert res.exit_code == 2 and "targets.csat.by" in res.output


# --------------------------------------------------------------------------- every shape


@pytest.mark.parametrize("name", ["as-is csv", "csat only", "nobody left", "no contacts table", "300 customers"])
def test_dated_goals_on_shapes(name):
    """A goal for a KPI the data cannot measure says so in one sentence; the others still track."""
    from shapes import shaped

    p, checked, _ = shaped(name)
    p = config.load_params({"as_of": AS_OF, "metric": p["metric"],
                            "targets": {"nps": {"value": 10, "by": "2027-01-01"},
                                        "cost_to_serve_per_customer": {"value": 1, "by": "2027-01-01"},
                                        "retention_12m": {"value": 0.95, "by": "2027-01-01"}}})
    card = scorecard.Scorecard(p).fit(checked)
    gp = goals.GoalPaths(p).fit(checked, card)
    assert gp.skipped_ is None
    for kpi, g in gp.goals_.items():
        if kpi in card.kpis_:
            assert g["skipped"] is None or "no value for the 12 months" in g["skipped"], (kpi, g["skipped"])
        else:
            assert "cannot measure this KPI" in g["skipped"] and g["skipped"] in gp.warnings_
    assert len(narrative.goal_sentences(gp, "USD")) == len(gp.goals_)
