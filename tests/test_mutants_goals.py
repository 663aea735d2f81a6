"""Goals with dates by hand, on stand-ins for the data and the scorecard (tests added for the mutation run,
tests/MUTATION.md).

``GoalPaths.fit`` reads only ``data.as_of`` and the card's ``kpis_`` when every start is given; where a start
is measured it fits a :class:`~cxvalue.scorecard.Scorecard` on the data as of the path's first day, which
the tests replace by a stand-in that records what it was asked for and answers from a table. Every path
runs over days that divide evenly: from 1 January 2025, 20 January is day 20 (a fifth of a 100-day path),
20 February day 50 (half way), 31 March day 89 and 11 April day 100.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from types import SimpleNamespace

import pandas as pd
import pytest

from cxvalue import goals

D = dt.date
START, HALF, Q1_END, BY = "2025-01-01", D(2025, 2, 20), "2025-03-31", "2025-04-11"  # days 0, 50, 89, 100


@dataclasses.dataclass
class _Data:
    """The checked data as far as goals use it: the day the run reads (and a field the copy keeps)."""

    as_of: dt.date
    tables: str = "the tables"


class _Measured:
    """Stand-in for the Scorecard measured on the path's first day: ``MEASURED[as_of]`` as its ``kpis_``."""

    calls: list = []
    measured: dict = {}

    def __init__(self, params, business_model="the stand-in's default"):
        self.params, self.business_model = params, business_model

    def fit(self, data):
        _Measured.calls.append((self.params, self.business_model, data.as_of, data.tables))
        self.kpis_ = _Measured.measured.get(data.as_of, {})
        return self


@pytest.fixture
def measured(monkeypatch):
    monkeypatch.setattr(goals, "Scorecard", _Measured)
    monkeypatch.setattr(_Measured, "calls", [])
    monkeypatch.setattr(_Measured, "measured", {})
    return _Measured


def _card(**today):
    return SimpleNamespace(kpis_={n: {"actual": a, "margin_of_error": m} for n, (a, m) in today.items()})


def _fit(targets, as_of, card, earlier=None, **params):
    return goals.GoalPaths({"targets": targets, **params}, earlier).fit(_Data(as_of), card)


# --------------------------------------------------------------------------- the helpers


def test_dates_are_read_from_the_first_ten_characters():
    day = D(2025, 3, 4)
    assert goals._date(day) is day
    stamp = dt.datetime(2025, 3, 4, 10, 30)
    assert goals._date(stamp) is stamp  # a datetime is a date already
    assert goals._date("2025-03-04") == day
    assert goals._date("2025-03-04 10:30:00") == day and goals._date("2025-03-04T10:30:00") == day


def test_path_value_by_hand():
    # 2 -> 6 over 10 days: day 2 is a fifth of the way, 2 + 4 / 5
    assert goals.path_value(2, 6, D(2025, 1, 1), D(2025, 1, 11), D(2025, 1, 3)) == pytest.approx(2.8)
    assert goals.path_value(-20, 10, START, BY, HALF) == -5.0
    assert goals.path_value(-20, 10, START, BY, "2025-01-21") == pytest.approx(-14.0)
    assert goals.path_value(-20, 10, START, BY, START) == -20.0 and goals.path_value(-20, 10, START, BY, BY) == 10.0
    assert goals.path_value(50, 40, START, BY, "2024-12-31") == 50.0  # before: the start
    assert goals.path_value(50, 40, START, BY, "2025-04-12") == 40.0  # after: the goal
    out = goals.path_value(1, 3, START, BY, BY)
    assert type(out) is float and out == 3.0


def test_milestones_by_hand():
    # a path starting on a quarter end: that day is the start, not a milestone; the goal's date is a
    # quarter end, so it is not listed twice. 31 Mar -> 31 Dec 2025 is 275 days; 30 Jun is day 91, 30 Sep 183
    ms = goals.milestones(0, 10, "2025-03-31", D(2025, 12, 31))
    assert [m["date"] for m in ms] == ["2025-06-30", "2025-09-30", "2025-12-31"]
    assert [m["value"] for m in ms] == pytest.approx([10 * 91 / 275, 10 * 183 / 275, 10.0])
    assert [m["year_end"] for m in ms] == [False, False, True]
    assert all(set(m) == {"date", "value", "year_end"} for m in ms)
    # not on a quarter end: the goal's own date closes the list
    ms = goals.milestones(-20, 10, START, BY)
    assert ms == [{"date": Q1_END, "value": pytest.approx(-20 + 30 * 0.89), "year_end": False},
                  {"date": BY, "value": 10.0, "year_end": False}]
    # a path shorter than a quarter: the goal's date only
    assert goals.milestones(1, 2, "2025-04-01", "2025-05-01") == [{"date": "2025-05-01", "value": 2.0, "year_end": False}]
    # 31 December is a year end; 30 June and 31 March (day 31) are not
    ms = goals.milestones(0, 1, "2024-12-31", "2026-01-15")
    assert [(m["date"], m["year_end"]) for m in ms] == [("2025-03-31", False), ("2025-06-30", False),
                                                        ("2025-09-30", False), ("2025-12-31", True),
                                                        ("2026-01-15", False)]


def test_path_status_at_its_edges():
    assert goals.path_status(10.0, 10.0, None) == "on the path"
    assert goals.path_status(0.0, 1e-12, None) == "on the path"  # short by 1e-12: rounding, on the path
    assert goals.path_status(0.0, 2e-12, None) == "behind the path"
    assert goals.path_status(9.5, 10.0, None) == "behind the path"
    assert goals.path_status(8.0, 10.0, 2.0) == "on the path within the noise"  # short by exactly the margin
    assert goals.path_status(7.75, 10.0, 2.0) == "behind the path"
    assert goals.path_status(8.0, 10.0, 0.0) == "behind the path"
    # lower is better (cost to serve): above the path is short of it
    assert goals.path_status(44.0, 45.0, None, higher_is_better=False) == "on the path"
    assert goals.path_status(46.0, 45.0, 1.0, higher_is_better=False) == "on the path within the noise"
    assert goals.path_status(46.0, 45.0, 0.5, False) == "behind the path"
    assert goals.path_status(44.0, 45.0, None) == "behind the path"  # higher is better by default


# --------------------------------------------------------------------------- fit, every start given


def _given(earlier=None):
    card = _card(nps=(-9.0, 2.0), cost_to_serve_per_customer=(46.0, None), csat=(0.59, 0.05), ces=(0.4, 0.0),
                 retention_12m=(0.8, 0.01))
    targets = {"nps": {"value": 10, "by": BY, "from": START, "start": -20},
               "cost_to_serve_per_customer": {"value": 40, "by": BY, "from": START, "start": 50},
               "csat": {"value": 0.7, "by": BY, "from": START, "start": 0.5},
               "ces": {"value": 0.8, "by": BY, "from": START, "start": 0.0},  # 0 is a start given
               "retention_12m": 0.9}  # a plain goal: no path
    return _fit(targets, HALF, card, earlier)


def test_fit_with_given_starts_by_hand(measured):
    gp = _given()
    assert measured.calls == []  # nothing to measure
    assert gp.skipped_ is None and gp.warnings_ == [] and gp.as_of_ == "2025-02-20"
    assert list(gp.goals_) == ["nps", "cost_to_serve_per_customer", "csat", "ces"]
    nps = gp.goals_["nps"]
    # day 50 of 100: -20 + 30 / 2 = -5; -9 is 4 short, more than the margin of 2
    assert nps == {"label": "NPS", "unit": "points", "value": 10, "by": BY, "from": START, "start": -20,
                   "start_source": "given", "skipped": None,
                   "milestones": [{"date": Q1_END, "value": pytest.approx(6.7), "year_end": False},
                                  {"date": BY, "value": 10.0, "year_end": False}],
                   "expected_today": -5.0, "actual": -9.0, "margin_of_error": 2.0, "gap_to_path": -4.0,
                   "status": "behind the path", "due": False,
                   "next_milestone": {"date": Q1_END, "value": pytest.approx(6.7), "year_end": False}}
    cost = gp.goals_["cost_to_serve_per_customer"]  # lower is better: 50 -> 40, 45 today; 46 is 1 above it
    assert (cost["label"], cost["unit"]) == ("Cost to serve per customer per year", "money")
    assert cost["expected_today"] == 45.0 and cost["gap_to_path"] == 1.0 and cost["status"] == "behind the path"
    assert cost["margin_of_error"] is None
    csat = gp.goals_["csat"]  # 0.5 -> 0.7: 0.6 today; 0.59 is 0.01 short, within the margin of 0.05
    assert csat["expected_today"] == pytest.approx(0.6) and csat["gap_to_path"] == pytest.approx(-0.01)
    assert csat["status"] == "on the path within the noise" and csat["unit"] == "share"
    ces = gp.goals_["ces"]  # 0 -> 0.8: 0.4 today, met exactly
    assert ces["start"] == 0.0 and ces["start_source"] == "given" and ces["status"] == "on the path"


def test_fit_on_the_goals_date_and_on_the_paths_first_day(measured):
    card = _card(nps=(10.0, None), csat=(0.45, 0.1))
    gp = _fit({"nps": {"value": 10, "by": HALF, "from": START, "start": -20},
               "csat": {"value": 0.7, "by": "2025-12-31", "from": HALF, "start": 0.5}}, HALF, card)
    nps = gp.goals_["nps"]  # due today: the path's value is the goal; no milestone left
    assert nps["due"] is True and nps["expected_today"] == 10.0 and nps["status"] == "on the path"
    assert nps["milestones"] == [{"date": "2025-02-20", "value": 10.0, "year_end": False}]
    assert nps["next_milestone"] is None
    csat = gp.goals_["csat"]  # the path starts today: read against its start, not "before the path starts"
    assert csat["expected_today"] == 0.5 and csat["status"] == "on the path within the noise" and csat["due"] is False
    assert csat["next_milestone"] == {"date": Q1_END, "value": pytest.approx(0.5 + 0.2 * 39 / 314), "year_end": False}


def test_a_path_that_starts_later_reads_before_the_path(measured):
    card = _card(nps=(-30.0, 1.0))
    gp = _fit({"nps": {"value": 10, "by": "2026-04-11", "from": "2026-01-01", "start": -20}}, D(2025, 12, 31), card)
    nps = gp.goals_["nps"]
    assert nps["status"] == "before the path starts" and nps["expected_today"] == -20.0
    assert nps["gap_to_path"] == -10.0 and nps["due"] is False
    assert nps["next_milestone"]["date"] == "2026-03-31"


# --------------------------------------------------------------------------- fit, starts measured


def test_starts_are_measured_once_per_first_day(measured):
    as_of = D(2025, 12, 31)
    measured.measured.update({
        D(2025, 1, 1): {"nps": {"actual": -14}, "csat": {"actual": 0.5}},
        as_of: {"ces": {"actual": 0.25}},
        D(2024, 6, 30): {"retention_12m": {"actual": None}},
    })
    card = _card(nps=(-6.0, 3.0), csat=(0.6, 0.05), ces=(0.3, 0.05), cost_to_serve_per_customer=(30.0, None),
                 retention_12m=(0.9, 0.02))
    card.business_model = "non_contractual"
    targets = {"nps": {"value": 10, "by": "2027-01-01"},  # from: a year before as_of
               "csat": {"value": 0.7, "by": "2027-01-01"},
               "ces": {"value": 0.8, "by": "2027-01-01", "from": "2026-03-31"},  # starts later: measured today
               "cost_to_serve_per_customer": {"value": 20, "by": "2027-01-01", "from": "2024-06-30"},
               "retention_12m": {"value": 0.95, "by": "2027-01-01", "from": "2024-06-30"}}
    gp = _fit(targets, as_of, card, metric="nps")
    # one Scorecard per first day, fitted without goals on the data as of that day (today at the latest)
    assert [c[2] for c in measured.calls] == [D(2025, 1, 1), as_of, D(2024, 6, 30)]
    assert all(c[0] == {"metric": "nps", "targets": {}} for c in measured.calls)
    assert all(c[1] == "non_contractual" and c[3] == "the tables" for c in measured.calls)
    nps, csat, ces = gp.goals_["nps"], gp.goals_["csat"], gp.goals_["ces"]
    assert nps["from"] == "2025-01-01" and nps["start"] == -14.0 and type(nps["start"]) is float
    assert nps["start_source"] == "measured" and csat["start"] == 0.5
    # 1 Jan 2025 -> 1 Jan 2027 is 730 days; 31 Dec 2025 is day 364
    assert nps["expected_today"] == pytest.approx(-14 + 24 * 364 / 730) and nps["status"] == "behind the path"
    assert ces["start"] == 0.25 and ces["status"] == "before the path starts" and ces["expected_today"] == 0.25
    assert ces["next_milestone"]["date"] == "2026-06-30"
    cost, ret = gp.goals_["cost_to_serve_per_customer"], gp.goals_["retention_12m"]
    assert cost["skipped"] == ("Cost to serve per customer per year: the data has no value for the 12 months to "
                               "2024-06-30, where the path starts; give targets.cost_to_serve_per_customer.start "
                               "(the value on that day).")
    assert ret["skipped"] == ("Retention over 12 months: the data has no value for the 12 months to 2024-06-30, "
                              "where the path starts; give targets.retention_12m.start (the value on that day).")
    assert cost["start"] is None and cost["start_source"] == "measured" and "status" not in cost
    assert gp.warnings_ == [cost["skipped"], ret["skipped"]] and gp.skipped_ is None


def test_a_card_without_a_business_model_measures_as_contractual(measured):
    measured.measured[D(2025, 1, 1)] = {"nps": {"actual": 0.0}}
    gp = _fit({"nps": {"value": 10, "by": "2027-01-01"}}, D(2025, 12, 31), _card(nps=(1.0, 1.0)))
    assert [c[1] for c in measured.calls] == ["contractual"]
    assert gp.goals_["nps"]["start"] == 0.0 and gp.goals_["nps"]["skipped"] is None


def test_the_default_first_day_is_a_year_before_the_day_after_as_of(measured):
    gp = _fit({"nps": {"value": 10, "by": "2027-01-01", "start": 0}}, D(2024, 2, 28), _card(nps=(0.0, 1.0)))
    assert gp.goals_["nps"]["from"] == "2023-02-28"  # 29 Feb 2024 less 12 months
    gp = _fit({"nps": {"value": 10, "by": "2027-01-01", "start": 0}}, D(2025, 6, 15), _card(nps=(0.0, 1.0)))
    assert gp.goals_["nps"]["from"] == "2024-06-16"


# --------------------------------------------------------------------------- fit, skipped


def test_goals_that_cannot_be_tracked_say_why(measured):
    card = _card(nps=(0.0, 1.0))
    gp = _fit({"nps": {"value": 10, "by": "2025-06-30", "from": "2025-06-30"},
               "csat": {"value": 0.7, "by": "2027-01-01"}}, D(2025, 12, 31), card)
    nps, csat = gp.goals_["nps"], gp.goals_["csat"]
    assert nps["skipped"] == ("NPS: the path would start (2025-06-30) on or after the goal's date (2025-06-30); "
                              "give targets.nps.from before it.")
    assert csat["skipped"] == ("CSAT (share satisfied): the data cannot measure this KPI today, so there is "
                               "nothing to set against the path.")
    assert measured.calls == []  # neither start is measured
    assert gp.warnings_ == [nps["skipped"], csat["skipped"]] and gp.skipped_ is None
    assert nps["start"] is None and "milestones" not in nps and "milestones" not in csat
    assert gp.trend().empty and list(gp.trend().columns) == ["kpi", "label", "unit", "kind", "date", "value", "low",
                                                             "high", "run", "status"]


@pytest.mark.parametrize("targets", [None, {}, {"nps": 10, "csat": 0.6}, {"loyalty": {"value": 1, "by": "2027-01-01"}}])
def test_no_dated_goal_skips_the_whole_analysis(measured, targets):
    gp = _fit(targets, D(2025, 12, 31), _card(nps=(0.0, 1.0)))
    assert gp.skipped_ == goals.NO_DATED_GOAL and gp.warnings_ == [goals.NO_DATED_GOAL]
    assert gp.goals_ == {} and gp.as_of_ is None
    assert gp.results() == {"skipped": goals.NO_DATED_GOAL}
    assert gp.summary.empty and gp.summary.index.name == "kpi"
    assert gp._repr_html_() == f"<h4>Goals with a date</h4><p>Skipped: {html.escape(goals.NO_DATED_GOAL)}</p>"
    no_targets = goals.GoalPaths({}).fit(_Data(D(2025, 12, 31)), _card())
    assert no_targets.skipped_ == goals.NO_DATED_GOAL


# --------------------------------------------------------------------------- what it shows


def test_summary_results_and_init(measured):
    gp = _given()
    s = gp.summary
    assert list(s.columns) == ["label", "unit", "value", "by", "from", "start", "expected_today", "actual",
                               "margin_of_error", "gap_to_path", "status", "skipped"]
    assert s.index.name == "kpi" and list(s.index) == ["nps", "cost_to_serve_per_customer", "csat", "ces"]
    assert s.loc["nps", "expected_today"] == -5.0 and s.loc["nps", "status"] == "behind the path"
    assert s.loc["cost_to_serve_per_customer", "gap_to_path"] == 1.0
    r = gp.results()
    assert list(r) == ["skipped", "nps", "cost_to_serve_per_customer", "csat", "ces"] and r["skipped"] is None
    assert r["nps"] == gp.goals_["nps"] and r["nps"] is not gp.goals_["nps"]
    assert "<h4>Goals with a date</h4>" in gp._repr_html_() and "behind the path" in gp._repr_html_()
    assert goals.GoalPaths({}).earlier == [] and goals.GoalPaths({}, None).earlier == []
    assert goals.GoalPaths({}, ({"a": 1},)).earlier == [{"a": 1}]


def test_trend_by_hand(measured):
    earlier = [
        # day 20: NPS path -14, -15 within its margin of 3; CSAT path 0.54, 0.55 on it
        {"kpis": {"nps": {"actual": -15.0, "margin_of_error": 3.0}, "csat": {"actual": 0.55, "margin_of_error": None}},
         "run": {"label": "January", "as_of": "2025-01-21"}},
        # day 30: NPS path -11; -30 behind; no label, a timestamp for a date
        {"kpis": {"nps": {"actual": -30.0, "margin_of_error": None}}, "run": {"as_of": "2025-01-31T09:00:00"}},
        {"kpis": {"nps": {"actual": -1.0}}},  # no date: left out
        {"kpis": {"nps": {"actual": None}}, "run": {"label": "x", "as_of": "2025-02-01"}},  # no value: left out
        {"run": {"label": "y", "as_of": "2025-02-01"}},  # no KPIs: left out
    ]
    card = _card(nps=(-9.0, 2.0), csat=(0.59, 0.05))
    targets = {"nps": {"value": 10, "by": BY, "from": START, "start": -20},
               "csat": {"value": 0.7, "by": BY, "from": START, "start": 0.5},
               "ces": {"value": 0.8, "by": START, "from": START, "start": 0.0}}  # skipped: not shown
    gp = _fit(targets, HALF, card, earlier)
    t = gp.trend()
    assert list(t.columns) == ["kpi", "label", "unit", "kind", "date", "value", "low", "high", "run", "status"]
    assert pd.api.types.is_datetime64_any_dtype(t["date"])
    got = [(r.kpi, r.label, r.unit, r.kind, r.date.strftime("%Y-%m-%d"), r.value, r.low, r.high, r.run, r.status)
           for r in t.itertuples()]
    path = ("path", "path to the goal")
    want = [
        ("nps", "NPS", "points", path[0], "2025-01-01", -20.0, None, None, path[1], None),
        ("nps", "NPS", "points", path[0], Q1_END, pytest.approx(6.7), None, None, path[1], None),
        ("nps", "NPS", "points", path[0], BY, 10.0, None, None, path[1], None),
        ("nps", "NPS", "points", "run", "2025-01-21", -15.0, -18.0, -12.0, "January", "on the path within the noise"),
        ("nps", "NPS", "points", "run", "2025-01-31", -30.0, -30.0, -30.0, "", "behind the path"),
        ("nps", "NPS", "points", "run", "2025-02-20", -9.0, -11.0, -7.0, "this run", "behind the path"),
        ("csat", "CSAT (share satisfied)", "share", path[0], "2025-01-01", 50.0, None, None, path[1], None),
        ("csat", "CSAT (share satisfied)", "share", path[0], Q1_END, pytest.approx(67.8), None, None, path[1], None),
        ("csat", "CSAT (share satisfied)", "share", path[0], BY, pytest.approx(70.0), None, None, path[1], None),
        ("csat", "CSAT (share satisfied)", "share", "run", "2025-01-21", 55.0, 55.0, 55.0, "January", "on the path"),
        ("csat", "CSAT (share satisfied)", "share", "run", "2025-02-20", 59.0, pytest.approx(54.0), 64.0, "this run",
         "on the path within the noise"),
    ]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[:5] == w[:5] and g[8] == w[8]
        assert (pd.isna(g[9]) if w[9] is None else g[9] == w[9])
        for x, y in zip(g[5:8], w[5:8]):
            assert pd.isna(x) if y is None else x == pytest.approx(y)
    # a lower-is-better KPI is read the other way round in the trend too: 50 -> 40, 48 on day 20 (49 is
    # above it: behind), 45 on day 50 (44 is below it: on the path)
    card = _card(cost_to_serve_per_customer=(44.0, None))
    gp = _fit({"cost_to_serve_per_customer": {"value": 40, "by": BY, "from": START, "start": 50}}, HALF, card,
              [{"kpis": {"cost_to_serve_per_customer": {"actual": 49.0}}, "run": {"label": "Jan", "as_of": "2025-01-21"}}])
    runs = gp.trend().query("kind == 'run'")
    assert list(runs["status"]) == ["behind the path", "on the path"]
    assert list(runs["value"]) == [49.0, 44.0] and list(runs["low"]) == [49.0, 44.0]  # money: not scaled


def test_trend_passes_over_a_skipped_goal_to_the_next(measured):
    card = _card(nps=(-9.0, 2.0))
    gp = _fit({"ces": {"value": 0.8, "by": START, "from": START, "start": 0.0},  # skipped, and first
               "nps": {"value": 10, "by": BY, "from": START, "start": -20}}, HALF, card)
    t = gp.trend()
    assert list(t["kpi"]) == ["nps"] * 4 and list(t["kind"]) == ["path", "path", "path", "run"]
