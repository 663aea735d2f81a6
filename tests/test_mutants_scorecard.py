"""The KPI scorecard by hand, at the edges of its rules (tests added for the mutation run, tests/MUTATION.md).

Small CSV sources, ``as_of`` 31 December 2025, so the period is [1 January 2025, 1 January 2026), 365 days.
Each source puts something on each edge of a rule: a customer who starts on the period's first day or
leaves on its last, an answer or a sale on the first day and on ``as_of``, two answers on one day, a survey
of a journey, a refund, a zero-amount row, a metric with no answers in the period or no column at all.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cxvalue import data, scorecard
from cxvalue.config import load_params

try:
    from tests.fixtures.sources import write_csv
except ImportError:  # run from inside tests/
    from fixtures.sources import write_csv

AS_OF = "2025-12-31"
Z = 1.959963984540054


def _checked(folder, tables, **params):
    p = load_params({"as_of": AS_OF, "min_group_size": 1, **params})
    return data.check(write_csv(folder, tables), p), p


# --------------------------------------------------------------------------- contractual: every KPI at its edges

EDGES = {
    "customers": [
        {"customer_id": "p", "start_date": "2025-01-01", "end_date": ""},  # starts on the first day: at start, kept, 365 d
        {"customer_id": "q", "start_date": "2020-01-01", "end_date": "2025-12-31"},  # leaves on as_of: not kept, 365 d
        {"customer_id": "r", "start_date": "2020-01-01", "end_date": "2025-12-30"},  # not kept, 364 d
        {"customer_id": "s", "start_date": "2025-01-02", "end_date": ""},  # not at start, 364 d
        {"customer_id": "t", "start_date": "2020-01-01", "end_date": ""},  # at start, kept, 365 d
    ],
    "responses": [
        {"customer_id": "p", "response_date": "2025-01-01", "nps": "9", "csat": "5", "ces": "7", "journey": ""},
        {"customer_id": "q", "response_date": "2025-12-31", "nps": "3", "csat": "2", "ces": "1", "journey": ""},
        # two answers on one day: the lower score of each metric counts (nps 4, csat 2); no CES
        {"customer_id": "r", "response_date": "2025-06-01", "nps": "9", "csat": "2", "ces": "", "journey": ""},
        {"customer_id": "r", "response_date": "2025-06-01", "nps": "4", "csat": "5", "ces": "", "journey": ""},
        {"customer_id": "s", "response_date": "2025-03-01", "nps": "8", "csat": "4", "ces": "5", "journey": ""},
        {"customer_id": "t", "response_date": "2025-02-02", "nps": "7", "csat": "3", "ces": "4", "journey": ""},
        {"customer_id": "t", "response_date": "2025-05-05", "nps": "10", "csat": "5", "ces": "7",
         "journey": "onboarding"},  # a journey survey: not counted
        {"customer_id": "t", "response_date": "2024-12-31", "nps": "0", "csat": "1", "ces": "1", "journey": ""},  # before
    ],
    "transactions": [
        {"customer_id": "p", "date": "2025-01-01", "amount": "100"},  # first day: in
        {"customer_id": "q", "date": "2025-12-31", "amount": "50"},  # as_of: in
        {"customer_id": "s", "date": "2025-06-01", "amount": "-30"},  # a refund
        {"customer_id": "t", "date": "2024-12-31", "amount": "1000"},  # the day before: out
    ],
    "contacts": [
        {"customer_id": "p", "date": "2025-01-01", "channel": "phone"},  # 12
        {"customer_id": "q", "date": "2025-12-31", "channel": "email"},  # 6
        {"customer_id": "t", "date": "2024-12-31", "channel": "phone"},  # the day before: out
    ],
}
EDGE_YEARS = (365 + 365 + 364 + 364 + 365) / 365.25


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    return _checked(tmp_path_factory.mktemp("edges"), EDGES)


def test_every_kpi_at_the_edges_by_hand(edges):
    d, p = edges
    k = scorecard.Scorecard(p).fit(d).kpis_
    assert list(k) == ["nps", "csat", "ces", "retention_12m", "revenue_per_customer", "cost_to_serve_per_customer"]
    # NPS: p 9, q 3, r 4 (the lower of the day), s 8, t 7 (not the journey's 10): 1 promoter, 2 detractors of 5
    assert k["nps"]["n"] == 5 and k["nps"]["actual"] == pytest.approx(-20.0)
    se = 100 * math.sqrt((0.2 + 0.4 - (0.2 - 0.4) ** 2) / 5)
    assert k["nps"]["se"] == pytest.approx(se) and k["nps"]["margin_of_error"] == pytest.approx(Z * se)
    # CSAT 4-5: p 5, q 2, r 2, s 4, t 3 -> 2/5; CES 5-7: p 7, q 1, s 5, t 4 (r has none) -> 2/4
    assert (k["csat"]["actual"], k["csat"]["n"]) == (pytest.approx(0.4), 5)
    assert k["csat"]["se"] == pytest.approx(math.sqrt(0.4 * 0.6 / 5))
    assert (k["ces"]["actual"], k["ces"]["n"]) == (pytest.approx(0.5), 4)
    assert k["ces"]["margin_of_error"] == pytest.approx(Z * math.sqrt(0.25 / 4))
    # retention: p, q, r, t active on 1 January; p and t still customers on 31 December (q left that day)
    assert (k["retention_12m"]["actual"], k["retention_12m"]["n"]) == (pytest.approx(0.5), 4)
    assert k["retention_12m"]["se"] == pytest.approx(math.sqrt(0.25 / 4))
    # customer-years: 365 + 365 + 364 + 364 + 365 days; revenue 100 + 50 - 30; contacts 12 + 6
    assert k["revenue_per_customer"]["actual"] == pytest.approx(120 / EDGE_YEARS, rel=1e-12)
    assert k["cost_to_serve_per_customer"]["actual"] == pytest.approx(18 / EDGE_YEARS, rel=1e-12)
    assert k["revenue_per_customer"]["n"] == 4 and k["cost_to_serve_per_customer"]["n"] == 4  # customers at start
    for name in ("revenue_per_customer", "cost_to_serve_per_customer"):
        assert k[name]["se"] is None and k[name]["margin_of_error"] is None


def test_what_fit_keeps_per_kpi(edges):
    d, p = edges
    card = scorecard.Scorecard({**p, "targets": {"nps": -20.0, "ces": {"value": 0.6, "by": "2027-01-01"}}}).fit(d)
    nps = card.kpis_["nps"]
    assert nps == {"label": "NPS", "unit": "points", "actual": pytest.approx(-20.0), "target": -20.0,
                   "gap": pytest.approx(0.0), "status": "on target", "margin_of_error": pytest.approx(Z * nps["se"]),
                   "se": nps["se"], "n": 5, "change": None, "change_reading": "not comparable"}
    assert card.kpis_["ces"]["target"] == 0.6 and card.kpis_["ces"]["status"] == "within the noise"  # goal with a date
    assert card.kpis_["csat"]["target"] is None and card.kpis_["csat"]["status"] == "no target set"
    assert card.period_ == (pd.Timestamp("2025-01-01").date(), d.as_of)
    r = card.results()
    assert r["kpi_period"] == ["2025-01-01", "2025-12-31"]
    assert set(r["kpis"]["nps"]) == {"label", "unit", "actual", "target", "gap", "status", "margin_of_error", "se", "n"}
    assert card._repr_html_().startswith("<h4>KPI scorecard</h4><table") and "NPS" in card._repr_html_()
    assert scorecard.Scorecard(p).earlier == [] and scorecard.Scorecard(p).business_model == "contractual"
    assert scorecard.Scorecard(p, ({"kpis": {}},)).earlier == [{"kpis": {}}]
    assert scorecard.Scorecard({**p, "targets": None}).fit(d).kpis_["nps"]["target"] is None


def test_the_warning_under_min_group_size(edges):
    d, p = edges
    card = scorecard.Scorecard({**p, "min_group_size": 5}).fit(d)
    # NPS and CSAT have 5 answers (not fewer than 5); CES 4 answers, retention 4 customers; money is a census
    assert card.warnings_ == [
        "Scorecard: CES (share low effort) is based on only 4 answers in the last 12 months; its margin of error is wide.",
        "Scorecard: Retention over 12 months is based on only 4 answers in the last 12 months; its margin of error "
        "is wide."]
    without = {k: v for k, v in p.items() if k != "min_group_size"}  # the default: 100
    assert len(scorecard.Scorecard(without).fit(d).warnings_) == 4


def test_min_group_size_defaults_to_100(tmp_path):
    # 100 answers are enough; the default is 100, so no warning
    tables = {"customers": [{"customer_id": f"c{i}", "start_date": "2020-01-01", "end_date": ""} for i in range(100)],
              "responses": [{"customer_id": f"c{i}", "response_date": "2025-06-01", "nps": str(i % 11)}
                            for i in range(100)],
              "transactions": [{"customer_id": "c0", "date": "2025-06-01", "amount": "1"}]}
    d, p = _checked(tmp_path, tables)
    without = {k: v for k, v in p.items() if k != "min_group_size"}
    card = scorecard.Scorecard(without).fit(d)
    assert card.kpis_["nps"]["n"] == 100 and card.kpis_["retention_12m"]["n"] == 100 and card.warnings_ == []
    assert len(scorecard.Scorecard({**p, "min_group_size": 101}).fit(d).warnings_) == 2


def test_no_one_in_the_period(tmp_path):
    # the only customer left before the period: no answer, no one at start, no customer-days -> no KPI at all
    d, p = _checked(tmp_path, {
        "customers": [{"customer_id": "u", "start_date": "2020-01-01", "end_date": "2024-06-30"}],
        "responses": [{"customer_id": "u", "response_date": "2024-05-01", "nps": "5"}],
        "transactions": [{"customer_id": "u", "date": "2024-05-01", "amount": "10"}]})
    card = scorecard.Scorecard(p).fit(d)
    assert card.kpis_ == {} and card.warnings_ == [] and card.summary.empty
    assert card.results() == {"kpis": {}, "kpi_period": ["2025-01-01", "2025-12-31"]}


def test_a_card_without_kpis_has_an_empty_trend_with_its_columns():
    card = scorecard.Scorecard({}, earlier=[{"kpis": {"nps": {"actual": 1.0}}}])
    card.kpis_ = {}  # nothing measured: an earlier run's KPIs are not shown either
    t = card.trend()
    assert t.empty and list(t.columns) == ["order", "run", "kpi", "unit", "actual", "low", "high"]


def test_a_quiet_period(tmp_path):
    # no NPS column; CSAT answers only before the period; CES in it. No sale and no contact in the period.
    d, p = _checked(tmp_path, {
        "customers": [{"customer_id": "v", "start_date": "2020-01-01", "end_date": ""},
                      {"customer_id": "w", "start_date": "2025-07-02", "end_date": ""}],  # 183 days
        "responses": [{"customer_id": "v", "response_date": "2024-03-03", "csat": "5", "ces": ""},
                      {"customer_id": "v", "response_date": "2025-03-03", "csat": "", "ces": "6"},
                      {"customer_id": "w", "response_date": "2025-08-08", "csat": "", "ces": "2"}],
        "transactions": [{"customer_id": "v", "date": "2024-06-01", "amount": "10"}],
        "contacts": [{"customer_id": "v", "date": "2024-06-01", "channel": "phone"}]}, metric="ces")
    k = scorecard.Scorecard(p).fit(d).kpis_
    assert list(k) == ["ces", "retention_12m", "revenue_per_customer", "cost_to_serve_per_customer"]
    assert (k["ces"]["actual"], k["ces"]["n"]) == (0.5, 2)
    assert (k["retention_12m"]["actual"], k["retention_12m"]["se"], k["retention_12m"]["n"]) == (1.0, 0.0, 1)
    assert k["revenue_per_customer"]["actual"] == 0.0 and k["cost_to_serve_per_customer"]["actual"] == 0.0


def test_the_nps_bands_are_the_runs_own_when_nps_is_the_metric(tmp_path):
    # bands.nps: detractors 0-4, passives 5-8. 5 and 6 are then passives; under the contract's bands they
    # would be detractors. CSAT's bands stay the contract's: 3 is neutral, 4 satisfied.
    tables = {"customers": [{"customer_id": c, "start_date": "2020-01-01", "end_date": ""} for c in "abcd"],
              "responses": [{"customer_id": c, "response_date": "2025-06-01", "nps": n, "csat": s}
                            for c, n, s in zip("abcd", ["5", "6", "10", "2"], ["3", "4", "4", "2"])],
              "transactions": [{"customer_id": "a", "date": "2025-06-01", "amount": "1"}]}
    d, p = _checked(tmp_path, tables, **{"bands.nps.detractor": [0, 4], "bands.nps.passive": [5, 8]})
    k = scorecard.Scorecard(p).fit(d).kpis_
    assert k["nps"]["actual"] == pytest.approx(0.0)  # 1 promoter (10), 1 detractor (2) of 4
    assert k["csat"]["actual"] == pytest.approx(0.5)
    assert scorecard._bands("nps", p) == [[0, 4], [5, 8], [9, 10]]
    assert scorecard._bands("csat", p) == [[1, 2], [3, 3], [4, 5]]
    assert scorecard._bands("nps", {**p, "metric": "csat"}) == [[0, 6], [7, 8], [9, 10]]


# --------------------------------------------------------------------------- non-contractual: buyers


BUYERS = {
    "customers": [{"customer_id": c, "start_date": s} for c, s in
                  [("A", "2020-01-01"), ("B", "2020-01-01"), ("C", "2025-03-01"), ("D", "2020-01-01"),
                   ("E", "2020-01-01")]],
    "responses": [{"customer_id": "A", "response_date": "2025-06-01", "nps": "9"}],
    "transactions": [
        {"customer_id": "A", "date": "2024-01-01", "amount": "10"},  # the first day of the year before
        {"customer_id": "A", "date": "2025-01-01", "amount": "20"},  # the period's first day
        {"customer_id": "B", "date": "2024-12-31", "amount": "5"},  # the year before's last day
        {"customer_id": "B", "date": "2025-02-01", "amount": "-5"},  # a refund is not a purchase
        {"customer_id": "C", "date": "2025-12-31", "amount": "40"},  # as_of
        {"customer_id": "D", "date": "2023-12-31", "amount": "7"},  # before the year before
        {"customer_id": "D", "date": "2025-06-01", "amount": "0"},  # nothing bought
        {"customer_id": "E", "date": "2024-06-01", "amount": "8"},
        {"customer_id": "E", "date": "2025-06-01", "amount": "8"},
    ],
    "contacts": [{"customer_id": "A", "date": "2025-01-01", "channel": "phone"},  # 12
                 {"customer_id": "B", "date": "2025-12-31", "channel": "web"},  # 1, from a customer who did not buy
                 {"customer_id": "E", "date": "2024-12-31", "channel": "phone"}],  # before the period
}


def test_repeat_purchase_and_money_per_buyer_by_hand(tmp_path):
    d, p = _checked(tmp_path, BUYERS, business_model="non_contractual")
    card = scorecard.Scorecard(p, business_model="non_contractual").fit(d)
    k = card.kpis_
    assert list(k) == ["nps", "repeat_purchase_12m", "revenue_per_customer", "cost_to_serve_per_customer"]
    # bought in [1 Jan 2024, 1 Jan 2025): A, B, E; again in the period: A and E
    rep = k["repeat_purchase_12m"]
    assert (rep["actual"], rep["n"]) == (pytest.approx(2 / 3), 3)
    assert rep["se"] == pytest.approx(math.sqrt(2 / 3 * 1 / 3 / 3))
    # buyers in the period: A (365 days), C (from 1 March: 306 days), E (365); every row of the period counts
    years = (365 + 306 + 365) / 365.25
    assert k["revenue_per_customer"]["actual"] == pytest.approx((20 - 5 + 40 + 0 + 8) / years, rel=1e-12)
    assert k["cost_to_serve_per_customer"]["actual"] == pytest.approx((12 + 1) / years, rel=1e-12)
    assert k["revenue_per_customer"]["n"] == 3 and k["cost_to_serve_per_customer"]["n"] == 3
    assert k["revenue_per_customer"]["se"] is None
    assert card.warnings_ == []  # min_group_size 1
    assert "retention_12m" not in k


def test_buyers_without_a_year_before_or_a_purchase_in_the_period(tmp_path):
    tables = {"customers": [{"customer_id": "A", "start_date": "2025-01-01"}],
              "responses": [{"customer_id": "A", "response_date": "2025-06-01", "nps": "9"}],
              "transactions": [{"customer_id": "A", "date": "2025-06-01", "amount": "30"}]}
    d, p = _checked(tmp_path / "new", tables, business_model="non_contractual")
    k = scorecard.Scorecard(p, business_model="non_contractual").fit(d).kpis_
    assert "repeat_purchase_12m" not in k  # nobody bought the year before
    assert k["revenue_per_customer"]["actual"] == pytest.approx(30 / (365 / 365.25)) and "cost_to_serve_per_customer" not in k
    tables["transactions"] = [{"customer_id": "A", "date": "2024-06-01", "amount": "30"}]
    tables["customers"] = [{"customer_id": "A", "start_date": "2020-01-01"}]
    d, p = _checked(tmp_path / "gone", tables, business_model="non_contractual")
    k = scorecard.Scorecard(p, business_model="non_contractual").fit(d).kpis_
    assert list(k) == ["nps", "repeat_purchase_12m"] and k["repeat_purchase_12m"]["actual"] == 0.0  # no buyer: no money


# --------------------------------------------------------------------------- status, change, money


def test_status_at_its_edges():
    up, down = scorecard._BY_NAME["nps"], scorecard._BY_NAME["cost_to_serve_per_customer"]
    assert scorecard._status(up, 10.0, 10.0, None) == (0.0, "on target")
    assert scorecard._status(up, 8.0, 10.0, 2.0) == (-2.0, "within the noise")  # misses by exactly the margin
    assert scorecard._status(up, 7.5, 10.0, 2.0) == (-2.5, "behind target")
    assert scorecard._status(up, 9.5, 10.0, None) == (-0.5, "behind target")
    assert scorecard._status(up, 12.0, 10.0, 0.0) == (2.0, "on target")
    assert scorecard._status(down, 6.0, 5.0, None) == (1.0, "behind target")  # the gap is actual - target either way
    assert scorecard._status(down, 4.0, 5.0, None) == (-1.0, "on target")
    assert scorecard._status(down, 5.5, 5.0, 0.5) == (0.5, "within the noise")
    assert scorecard._status(up, None, 10.0, 1.0) == (None, "no target set")
    assert scorecard._status(up, float("nan"), 10.0, 1.0) == (None, "no target set")
    assert scorecard._status(up, 10.0, None, 1.0) == (None, "no target set")
    gap, _ = scorecard._status(up, 9, 10, None)
    assert type(gap) is float


def test_change_at_its_edges():
    # 1.96 x sqrt(3^2 + 4^2) = 9.8
    assert scorecard.kpi_change({"actual": 0.0, "se": 3.0}, {"actual": 9.7, "se": 4.0}) == (9.7, "no clear change")
    assert scorecard.kpi_change({"actual": 0.0, "se": 3.0}, {"actual": 9.9, "se": 4.0}) == (9.9, "up")
    assert scorecard.kpi_change({"actual": 0.0, "se": 4.0}, {"actual": -9.9, "se": 3.0}) == (-9.9, "down")
    assert scorecard.kpi_change({"actual": 1.0, "se": 0.0}, {"actual": 1.0, "se": 0.0}) == (0.0, "no clear change")
    # a census (no se) moves when it moves by more than rounding: 1e-9 of the value, or of 1 below 1
    assert scorecard.kpi_change({"actual": 1e6, "se": None}, {"actual": 1e6 + 1e-4, "se": None}) == (0.0, "no change")
    assert scorecard.kpi_change({"actual": -1e6, "se": None}, {"actual": -1e6 + 1e-4, "se": None}) == (0.0, "no change")
    assert scorecard.kpi_change({"actual": 0.5, "se": None}, {"actual": 0.5 + 1.5e-9, "se": None})[1] == "up"
    assert scorecard.kpi_change({"actual": 0.5, "se": None}, {"actual": 0.5 + 0.5e-9, "se": None}) == (0.0, "no change")
    assert scorecard.kpi_change({"actual": 0.0, "se": None}, {"actual": 1e-9, "se": None}) == (0.0, "no change")  # exactly
    assert scorecard.kpi_change({"actual": 2.0, "se": None}, {"actual": 1.0, "se": None}) == (-1.0, "down")
    # one side with a standard error and the other without: compared as a census
    assert scorecard.kpi_change({"actual": 1.0, "se": 5.0}, {"actual": 2.0}) == (1.0, "up")
    assert scorecard.kpi_change({"actual": 1.0}, {"actual": 2.0, "se": 5.0}) == (1.0, "up")
    for a, b in [(None, {"actual": 1.0}), ({"actual": 1.0}, None), ({}, {"actual": 1.0}), ({"actual": 1.0}, {}),
                 ({"actual": None}, {"actual": 1.0}), ({"actual": 1.0}, {"actual": None})]:
        assert scorecard.kpi_change(a, b) == (None, "not comparable")
    diff, _ = scorecard.kpi_change({"actual": 1, "se": None}, {"actual": 3, "se": None})
    assert type(diff) is float and diff == 2.0


def test_value_of_gaps_for_each_metric():
    margin = pd.Series({"dissatisfied": 100.0, "neutral": 250.0, "satisfied": 400.0})
    customers = pd.Series({"satisfied": 300, "dissatisfied": 200, "neutral": 500})  # another order: 1,000
    p = load_params({"metric": "csat", "gross_margin": 0.4})
    kpis = {"nps": {"target": 10.0, "gap": -5.0},  # not the run's metric
            "csat": {"target": 0.8, "gap": -0.1},  # 100 neutral -> satisfied, 150 each
            "ces": {"target": 0.8, "gap": -0.1},
            "repeat_purchase_12m": {"target": 0.5, "gap": -0.1, "n": 50},
            "revenue_per_customer": {"target": 100.0, "gap": 20.0},  # met
            "cost_to_serve_per_customer": {"target": 30.0, "gap": -4.0}}  # met (lower is better)
    v = scorecard.value_of_gaps(kpis, p, margin, customers)
    assert v["nps"] is None and v["ces"] is None
    assert v["csat"] == pytest.approx(0.1 * 1000 * (400 - 250))
    mean_margin = (100 * 200 + 250 * 500 + 400 * 300) / 1000  # 265
    assert v["repeat_purchase_12m"] == pytest.approx(0.1 * 50 * mean_margin)
    assert v["revenue_per_customer"] == 0.0 and v["cost_to_serve_per_customer"] == 0.0
    # CES as the metric, its reference group set: from the reference to the top group
    p = load_params({"metric": "ces", "reference_group": "high_effort"})
    m = pd.Series({"high_effort": 50.0, "neutral": 80.0, "low_effort": 90.0})
    n = pd.Series({"high_effort": 10, "neutral": 10, "low_effort": 20})
    v = scorecard.value_of_gaps({"ces": {"target": 0.6, "gap": -0.25}, "revenue_per_customer": {"target": 5.0, "gap": -2.0},
                                 "cost_to_serve_per_customer": {"target": 30.0, "gap": 4.0}}, p, m, n)
    assert v["ces"] == pytest.approx(0.25 * 40 * (90 - 50))
    assert v["revenue_per_customer"] == pytest.approx(2 * 40 * 0.6)  # gross_margin's default
    assert v["cost_to_serve_per_customer"] == pytest.approx(4 * 40)


def test_value_of_gaps_when_it_cannot_be_priced():
    p = load_params({})
    margin = pd.Series({"detractor": 100.0, "passive": float("nan"), "promoter": 400.0})
    customers = pd.Series({"detractor": 10, "passive": 10, "promoter": 10})
    kpis = {"nps": {"target": 20.0, "gap": -5.0}, "retention_12m": {"target": 0.9, "gap": -0.1, "n": 30},
            "csat": {"target": None, "gap": None}, "revenue_per_customer": {"target": 5.0, "gap": None},
            "cost_to_serve_per_customer": {"gap": 1.0}}
    v = scorecard.value_of_gaps(kpis, p, margin, customers)
    assert v == {"nps": None, "retention_12m": None, "csat": None, "revenue_per_customer": None,
                 "cost_to_serve_per_customer": None}  # a group's margin unknown: the mean is unknown too
    margin = pd.Series({"detractor": 100.0, "passive": 300.0, "promoter": float("nan")})
    v = scorecard.value_of_gaps({"nps": {"target": 20.0, "gap": -5.0}}, p, margin, customers)
    assert v["nps"] == pytest.approx(0.05 * 30 * 200)  # the promoters' margin is not needed
    v = scorecard.value_of_gaps({"nps": {"target": 20.0, "gap": -5.0}}, p, pd.Series({"detractor": 1.0, "passive": float("nan"), "promoter": 1.0}), customers)
    assert v["nps"] is None
    # a group without customers needs no margin: 10 detractors at 100, 30 passives at 300, no promoter
    v = scorecard.value_of_gaps({"retention_12m": {"target": 0.9, "gap": -0.1, "n": 40}}, p, margin,
                                pd.Series({"detractor": 10, "passive": 30}))
    assert v["retention_12m"] == pytest.approx(0.1 * 40 * (100 * 10 + 300 * 30) / 40)
    none = pd.Series({"detractor": 0, "passive": 0, "promoter": 0})
    v = scorecard.value_of_gaps({"nps": {"target": 20.0, "gap": -5.0}, "retention_12m": {"target": 0.9, "gap": -0.1, "n": 1},
                                 "cost_to_serve_per_customer": {"target": 1.0, "gap": -1.0}}, p, margin, none)
    assert v == {"nps": None, "retention_12m": None, "cost_to_serve_per_customer": None}  # nobody to move


def test_fit_prices_the_gaps_and_reads_the_change_from_the_last_run_with_kpis(edges):
    d, p = edges
    p = {**p, "targets": {"nps": 0.0, "retention_12m": 0.75, "cost_to_serve_per_customer": 1.0}, "gross_margin": 0.5}
    margin = pd.Series({"detractor": 100.0, "passive": 300.0, "promoter": 400.0})
    customers = pd.Series({"detractor": 200, "passive": 500, "promoter": 300})
    earlier = [{"kpis": {"nps": {"actual": 50.0, "se": 1.0}}},
               {"kpis": {"nps": {"actual": -40.0, "se": 1.0}, "csat": {"actual": 0.4, "se": 0.0}}},
               {"run": {"label": "no kpis"}}, {"kpis": {}}]
    card = scorecard.Scorecard(p, earlier).fit(d, margin, customers)
    k = card.kpis_
    assert k["nps"]["value_of_gap"] == pytest.approx(0.2 * 1000 * (300 - 100))  # -20 vs 0: 200 detractors move
    mean_margin = (100 * 200 + 300 * 500 + 400 * 300) / 1000
    assert k["retention_12m"]["value_of_gap"] == pytest.approx(0.25 * 4 * mean_margin)  # 0.5 vs 0.75, 4 at start
    assert k["cost_to_serve_per_customer"]["value_of_gap"] == pytest.approx((18 / EDGE_YEARS - 1.0) * 1000)
    assert k["csat"]["value_of_gap"] is None
    # the last earlier run with KPIs: NPS from -40 to -20, within 1.96 x sqrt(1 + 14.97^2) = 29.4: no clear change
    assert k["nps"]["change"] == pytest.approx(20.0) and k["nps"]["change_reading"] == "no clear change"
    assert k["csat"]["change"] == pytest.approx(0.0) and k["csat"]["change_reading"] == "no clear change"
    assert k["ces"]["change"] is None and k["ces"]["change_reading"] == "not comparable"
    assert "value_of_gap" not in scorecard.Scorecard(p).fit(d).kpis_["nps"]
    assert "value_of_gap" not in scorecard.Scorecard(p).fit(d, margin).kpis_["nps"]
    assert "value_of_gap" not in scorecard.Scorecard(p).fit(d, customers=customers).kpis_["nps"]
    assert scorecard.Scorecard(p).fit(d).summary.loc["NPS", "value_of_gap"] is None
    assert card.summary.loc["NPS", "value_of_gap"] == pytest.approx(40_000.0)
    assert list(card.summary.columns) == ["actual", "target", "gap", "status", "margin_of_error", "change",
                                          "change_reading", "value_of_gap", "n"]


def test_trend_by_hand(edges):
    d, p = edges
    earlier = [
        {"kpis": {"loyalty": {"actual": 3.0},  # not a KPI of this card: left out, and the next ones read
                  "nps": {"actual": -10.0, "margin_of_error": 5.0}, "csat": {"actual": 0.5, "margin_of_error": None}},
         "run": {"started_at": "2025-06-30T10:00"}},
        {"kpis": {"nps": {"actual": None}}, "run": {"label": "Q3"}},  # no value: left out
        {"kpis": {"retention_12m": {"actual": 0.123456789, "margin_of_error": 0.01}}},
    ]
    card = scorecard.Scorecard(p, earlier).fit(d)
    t = card.trend()
    assert list(t.columns) == ["order", "run", "kpi", "unit", "actual", "low", "high"]
    first = t[t["order"] == 0]
    assert first.values.tolist() == [[0, "2025-06-30T10:00", "NPS", "points", -10.0, -15.0, -5.0],
                                     [0, "2025-06-30T10:00", "CSAT (share satisfied)", "share", 50.0, 50.0, 50.0]]
    assert t[t["order"] == 1].empty
    assert t[t["order"] == 2].values.tolist() == [[2, "run 3", "Retention over 12 months", "share", 12.3457, 11.3457,
                                                   13.3457]]
    now = t[t["order"] == 3].set_index("kpi")
    assert list(now.index) == ["NPS", "CSAT (share satisfied)", "CES (share low effort)", "Retention over 12 months",
                               "Revenue per customer per year", "Cost to serve per customer per year"]
    assert (now["run"] == "this run").all()
    moe = card.kpis_["nps"]["margin_of_error"]
    assert now.loc["NPS", "actual"] == -20.0 and now.loc["NPS", "low"] == pytest.approx(-20.0 - moe, abs=1e-4)
    assert now.loc["Retention over 12 months", "actual"] == 50.0 and now.loc["CES (share low effort)", "high"] == pytest.approx(
        100 * (0.5 + Z * 0.25), abs=1e-3)
    assert now.loc["Revenue per customer per year", "low"] == now.loc["Revenue per customer per year", "high"] == pytest.approx(
        120 / EDGE_YEARS, abs=1e-3)
    assert scorecard.Scorecard(p, [{"kpis": {"nps": {"actual": 1.0}}, "run": {"label": "June", "started_at": "x"}}]).fit(
        d).trend()["run"].tolist()[0] == "June"


def test_small_purchases_and_a_contacts_own_cost(tmp_path):
    # a purchase of 0.50 is a purchase; a contact with its own cost is priced at it, one without at its channel's
    d, p = _checked(tmp_path, {
        "customers": [{"customer_id": "X", "start_date": "2020-01-01"}, {"customer_id": "Y", "start_date": "2020-01-01"}],
        "responses": [{"customer_id": "X", "response_date": "2025-06-01", "nps": "9"}],
        "transactions": [{"customer_id": "X", "date": "2024-05-01", "amount": "0.5"},
                         {"customer_id": "X", "date": "2025-05-01", "amount": "0.5"},
                         {"customer_id": "Y", "date": "2025-05-01", "amount": "2"}],
        "contacts": [{"customer_id": "X", "date": "2025-05-01", "channel": "phone", "cost": "3"},
                     {"customer_id": "Y", "date": "2025-05-02", "channel": "phone", "cost": ""}]},
        business_model="non_contractual")
    k = scorecard.Scorecard(p, business_model="non_contractual").fit(d).kpis_
    assert (k["repeat_purchase_12m"]["actual"], k["repeat_purchase_12m"]["n"]) == (1.0, 1)
    years = 2 * 365 / 365.25
    assert k["revenue_per_customer"]["actual"] == pytest.approx(2.5 / years) and k["revenue_per_customer"]["n"] == 2
    assert k["cost_to_serve_per_customer"]["actual"] == pytest.approx((3 + 12) / years)


def test_value_of_gaps_reads_the_groups_by_label():
    p = load_params({})
    customers = pd.Series({"detractor": 1, "passive": 30, "promoter": 9})  # 40; a group of one customer counts
    margin = pd.Series({"promoter": 400.0, "passive": 300.0, "detractor": 100.0})
    v = scorecard.value_of_gaps({"nps": {"target": 20.0, "gap": -5.0}, "retention_12m": {"target": 0.9, "gap": -0.1, "n": 40}},
                                p, margin, customers)
    assert v["nps"] == pytest.approx(0.05 * 40 * (300 - 100))
    assert v["retention_12m"] == pytest.approx(0.1 * 40 * (100 * 1 + 300 * 30 + 400 * 9) / 40)
    # a group missing from the margins: not priced (not an error)
    v = scorecard.value_of_gaps({"nps": {"target": 20.0, "gap": -5.0}}, p, margin.drop("passive"), customers)
    assert v["nps"] is None


def test_money_per_customer_under_one_customer_year(tmp_path):
    # one customer since 3 October 2025: 90 days in the period, 90 / 365.25 of a customer-year
    d, p = _checked(tmp_path, {
        "customers": [{"customer_id": "n", "start_date": "2025-10-03", "end_date": ""}],
        "responses": [{"customer_id": "n", "response_date": "2025-11-01", "nps": "10"}],
        "transactions": [{"customer_id": "n", "date": "2025-11-01", "amount": "30"}]})
    k = scorecard.Scorecard(p).fit(d).kpis_
    assert k["revenue_per_customer"]["actual"] == pytest.approx(30 / (90 / 365.25))
    assert "retention_12m" not in k  # nobody was a customer on 1 January


# null_strict_least_greatest (tests/conftest.py): LEAST and GREATEST NULL when any argument is NULL, as in
# BigQuery and Snowflake; the scorecard's day counts must not lean on DuckDB's skipping of NULLs


def test_day_counts_do_not_rely_on_least_and_greatest_skipping_nulls(edges, tmp_path, null_strict_least_greatest):
    d, p = edges
    k = scorecard.Scorecard(p).fit(d).kpis_  # still-customers (no end_date) count to as_of, as in the test above
    assert k["retention_12m"]["actual"] == pytest.approx(0.5)
    assert k["revenue_per_customer"]["actual"] == pytest.approx(120 / EDGE_YEARS, rel=1e-12)
    d, p = _checked(tmp_path, BUYERS, business_model="non_contractual")
    k = scorecard.Scorecard(p, business_model="non_contractual").fit(d).kpis_
    assert k["revenue_per_customer"]["actual"] == pytest.approx(63 / ((365 + 306 + 365) / 365.25), rel=1e-12)
