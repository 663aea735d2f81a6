"""KPI scorecard: every KPI, its margin of error, status, change and money, by hand."""

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
# Scorecard period, half-open like the histories' windows: [2025-01-01, 2026-01-01), 365 days;
# a customer is active on [start_date, end_date + 1 day). 2024-12-31, the day before the
# period, is what a 366-day period with both ends counted would wrongly take in.

CUSTOMERS = [
    # active all period (start before it): 365 days each
    {"customer_id": "a", "start_date": "2020-01-01", "end_date": ""},
    {"customer_id": "b", "start_date": "2020-01-01", "end_date": ""},
    {"customer_id": "c", "start_date": "2020-01-01", "end_date": ""},
    # left mid-period: active [2025-01-01, 2025-07-02) = 31+28+31+30+31+30+1 = 182 days; at start, not kept
    {"customer_id": "d", "start_date": "2021-06-01", "end_date": "2025-07-01"},
    # joined mid-period: [2025-07-03, 2026-01-01) = 29+31+30+31+30+31 = 182 days; not at start
    {"customer_id": "e", "start_date": "2025-07-03", "end_date": ""},
    # left before the period: no days, not at start
    {"customer_id": "f", "start_date": "2019-01-01", "end_date": "2024-06-30"},
    # left on the day before the period: no days, not at start
    {"customer_id": "g", "start_date": "2019-01-01", "end_date": "2024-12-31"},
    # left on the period's first day: at start (active that day), 1 day, not kept
    {"customer_id": "h", "start_date": "2019-01-01", "end_date": "2025-01-01"},
]
RESPONSES = [
    # latest relationship answer per customer in the period counts
    {"customer_id": "a", "response_date": "2025-01-10", "nps": "3", "csat": "2", "ces": "2", "journey": ""},
    {"customer_id": "a", "response_date": "2025-06-10", "nps": "10", "csat": "5", "ces": "7", "journey": ""},  # a: 10
    {"customer_id": "b", "response_date": "2025-03-01", "nps": "8", "csat": "4", "ces": "4", "journey": ""},   # b: 8
    {"customer_id": "c", "response_date": "2025-04-01", "nps": "2", "csat": "1", "ces": "6", "journey": ""},   # c: 2
    {"customer_id": "c", "response_date": "2025-05-01", "nps": "", "csat": "5", "ces": "", "journey": "billing"},  # journey: ignored
    {"customer_id": "d", "response_date": "2025-02-01", "nps": "9", "csat": "3", "ces": "5", "journey": ""},   # d: 9
    {"customer_id": "e", "response_date": "2025-08-01", "nps": "7", "csat": "4", "ces": "3", "journey": ""},   # e: 7
    {"customer_id": "b", "response_date": "2024-11-01", "nps": "0", "csat": "1", "ces": "1", "journey": ""},   # before the period
    {"customer_id": "g", "response_date": "2024-12-31", "nps": "0", "csat": "1", "ces": "1", "journey": ""},   # the day before
]
TRANSACTIONS = [
    {"customer_id": "a", "date": "2025-01-15", "amount": "100"},
    {"customer_id": "b", "date": "2025-12-31", "amount": "250"},   # on as_of: in
    {"customer_id": "b", "date": "2025-03-01", "amount": "-50"},   # refund
    {"customer_id": "d", "date": "2025-05-05", "amount": "80"},
    {"customer_id": "e", "date": "2025-09-09", "amount": "120"},
    {"customer_id": "a", "date": "2024-12-31", "amount": "999"},   # the day before the period
]
CONTACTS = [
    {"customer_id": "a", "date": "2025-02-02", "channel": "phone", "cost": ""},  # 12
    {"customer_id": "c", "date": "2025-03-03", "channel": "email", "cost": "2.5"},  # own cost
    {"customer_id": "e", "date": "2025-10-10", "channel": "pigeon", "cost": ""},  # other: 8
    {"customer_id": "a", "date": "2024-12-31", "channel": "phone", "cost": ""},  # the day before the period
]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    src = write_csv(tmp_path_factory.mktemp("scorecard"), {
        "customers": CUSTOMERS, "responses": RESPONSES, "transactions": TRANSACTIONS, "contacts": CONTACTS})
    p = load_params({"as_of": AS_OF, "min_group_size": 1})
    return data.check(src, p), p


def test_every_kpi_by_hand(checked):
    d, p = checked
    card = scorecard.Scorecard(p).fit(d)
    k = card.kpis_
    assert card.results()["kpi_period"] == ["2025-01-01", "2025-12-31"]  # first and last day
    # NPS: a 10, b 8, c 2, d 9, e 7 (g's answer is from the day before) -> promoters a, d (2/5),
    # detractors c (1/5): 100 * (0.4 - 0.2) = 20. Unequal shares, so every term of the margin
    # of error counts: se = 100 sqrt((p_pro + p_det - (p_pro - p_det)^2) / n)
    assert k["nps"]["n"] == 5 and k["nps"]["actual"] == pytest.approx(20.0)
    se = 100 * math.sqrt((0.4 + 0.2 - 0.2**2) / 5)  # 33.47; without the squared term 34.64
    assert k["nps"]["margin_of_error"] == pytest.approx(1.959964 * se, rel=1e-6)
    # CSAT satisfied (4-5): a 5, b 4, c 1, d 3, e 4 -> 3/5; CES low effort (5-7): a 7, b 4, c 6, d 5, e 3 -> 3/5
    assert k["csat"]["actual"] == pytest.approx(0.6) and k["ces"]["actual"] == pytest.approx(0.6)
    assert k["csat"]["margin_of_error"] == pytest.approx(1.959964 * math.sqrt(0.6 * 0.4 / 5), rel=1e-6)
    # retention: a, b, c, d, h active on 2025-01-01; d and h left -> 3/5
    assert k["retention_12m"]["n"] == 5 and k["retention_12m"]["actual"] == pytest.approx(0.6)
    assert k["retention_12m"]["margin_of_error"] == pytest.approx(1.959964 * math.sqrt(0.6 * 0.4 / 5), rel=1e-6)
    # customer-years: 3 x 365 + 182 + 182 + 0 (g) + 1 (h) = 1460 days
    years = 1460 / 365.25
    assert k["revenue_per_customer"]["actual"] == pytest.approx((100 + 250 - 50 + 80 + 120) / years)
    assert k["cost_to_serve_per_customer"]["actual"] == pytest.approx((12 + 2.5 + 8) / years)
    assert k["revenue_per_customer"]["margin_of_error"] is None  # a census, not a sample


def test_status_against_targets(checked):
    d, p = checked
    p = {**p, "targets": {**p["targets"], "nps": 30.0, "csat": 0.55, "retention_12m": 0.95,
                          "cost_to_serve_per_customer": 5.0, "revenue_per_customer": 100.0}}
    k = scorecard.Scorecard(p).fit(d).kpis_
    assert k["nps"]["status"] == "within the noise"  # 20 vs 30, margin of error about 66 points
    assert k["nps"]["gap"] == pytest.approx(-10.0)
    assert k["csat"]["status"] == "on target"
    assert k["ces"]["status"] == "no target set" and k["ces"]["gap"] is None
    assert k["cost_to_serve_per_customer"]["status"] == "behind target"  # lower is better; 5.63 > 5
    assert k["revenue_per_customer"]["status"] == "on target"
    assert k["retention_12m"]["status"] == "within the noise"  # 0.6 vs 0.95, margin of error 0.43 (n = 5)


def test_change_between_runs_respects_the_noise():
    a = {"actual": 20.0, "se": 2.0}
    assert scorecard.kpi_change(a, {"actual": 24.0, "se": 2.0}) == (4.0, "no clear change")  # 4 < 1.96 * 2.83
    assert scorecard.kpi_change(a, {"actual": 26.0, "se": 2.0}) == (6.0, "up")
    assert scorecard.kpi_change(a, {"actual": 13.0, "se": 2.0}) == (-7.0, "down")
    assert scorecard.kpi_change({"actual": 10.0, "se": None}, {"actual": 10.5, "se": None}) == (0.5, "up")
    assert scorecard.kpi_change(None, a) == (None, "not comparable")


def test_value_of_gaps_by_hand():
    p = load_params({"gross_margin": 0.5})
    margin = pd.Series({"detractor": 100.0, "passive": 300.0, "promoter": 400.0})
    customers = pd.Series({"detractor": 200, "passive": 500, "promoter": 300})  # 1,000
    kpis = {"nps": {"target": 20.0, "gap": -5.0}, "csat": {"target": 0.8, "gap": -0.1},
            "retention_12m": {"target": 0.9, "gap": -0.02, "n": 800},
            "revenue_per_customer": {"target": 1000.0, "gap": -40.0},
            "cost_to_serve_per_customer": {"target": 30.0, "gap": 4.0}}
    v = scorecard.value_of_gaps(kpis, p, margin, customers)
    assert v["nps"] == pytest.approx(0.05 * 1000 * (300 - 100))  # 50 detractors -> passive
    assert v["csat"] is None  # the run's groups are NPS groups: CSAT cannot be priced
    mean_margin = (100 * 200 + 300 * 500 + 400 * 300) / 1000
    assert v["retention_12m"] == pytest.approx(0.02 * 800 * mean_margin)
    assert v["revenue_per_customer"] == pytest.approx(40 * 1000 * 0.5)
    assert v["cost_to_serve_per_customer"] == pytest.approx(4 * 1000)
    met = scorecard.value_of_gaps({"nps": {"target": 20.0, "gap": 3.0}}, p, margin, customers)
    assert met["nps"] == 0.0


def test_results_do_not_depend_on_earlier_runs(checked):
    d, p = checked
    first = scorecard.Scorecard(p).fit(d)
    second = scorecard.Scorecard(p, earlier=[{"kpis": first.results()["kpis"]}]).fit(d)
    assert second.results() == first.results()
    assert second.kpis_["nps"]["change_reading"] == "no clear change"
    trend = second.trend()
    assert list(trend.groupby("kpi").size().unique()) == [2]  # every KPI in both runs


def test_scorecard_period_is_the_histories_12_month_window(tmp_path):
    """One period convention: a customer surveyed on the scorecard period's first day has a
    12-month post window of exactly the scorecard's days, half-open. In a leap year both are 366
    days ([2024-01-01, 2025-01-01)); the day before the period is in neither, as_of in both."""
    from cxvalue import history

    src = write_csv(tmp_path, {
        "customers": [{"customer_id": "a", "start_date": "2020-01-01", "end_date": ""},
                      {"customer_id": "b", "start_date": "2020-01-01", "end_date": ""}],
        "responses": [{"customer_id": "a", "response_date": "2024-01-01", "nps": "9"},
                      {"customer_id": "b", "response_date": "2024-01-01", "nps": "3"}],
        "transactions": [{"customer_id": "a", "date": "2023-12-31", "amount": "1000"},  # the day before
                         {"customer_id": "a", "date": "2024-01-01", "amount": "100"},   # first day
                         {"customer_id": "a", "date": "2024-02-29", "amount": "10"},
                         {"customer_id": "b", "date": "2024-12-31", "amount": "40"}],  # as_of: last day
    })
    p = load_params({"as_of": "2024-12-31", "min_group_size": 1, "window_months": 12})
    d = data.check(src, p)
    card = scorecard.Scorecard(p).fit(d)
    assert card.results()["kpi_period"] == ["2024-01-01", "2024-12-31"]
    h = history.history(d, p)
    assert (h["post_exposure_years"] * 365.25).round(9).tolist() == [366.0, 366.0]
    per_year = h["post_revenue"].sum() / h["post_exposure_years"].sum()
    assert per_year == pytest.approx(150 / (2 * 366 / 365.25))
    assert card.kpis_["revenue_per_customer"]["actual"] == pytest.approx(per_year, rel=1e-12)
