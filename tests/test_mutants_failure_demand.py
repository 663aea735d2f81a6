"""The cost of failure demand by hand, at the edges of its rules (tests added for the mutation run,
tests/MUTATION.md).

No synthetic world: a contacts table of a few rows for the pre-window flags, and for the analysis
itself a history of twelve customers (four detractors, five passives, three promoters), exposure
flags set by hand and a stand-in churn model that records what it was fitted on and answers from a
table, so that every concentration, churn rate, customers-kept figure and simulated interval can be
worked out in the test.
"""

from __future__ import annotations

import datetime as dt
import math
from types import SimpleNamespace

import ibis
import numpy as np
import pandas as pd
import pytest

from cxvalue import config, failure_demand as fdm
from cxvalue.skipping import Skip

Z = 1.959963984540054
D = dt.date


def _contacts(rows, reason=True):
    df = pd.DataFrame(rows, columns=["customer_id", "date", "channel", "reason"])
    schema = {"customer_id": "string", "date": "date", "channel": "string", "reason": "string"}
    if not reason:
        df = df.drop(columns="reason")
        schema.pop("reason")
    return ibis.memtable(df, schema=schema)


# --------------------------------------------------------------------------- what the analysis needs


NEED_CONTACTS = ("The cost of failure demand needs a contacts table with a reason for each contact: add contacts "
                 "(customer_id, date, channel, reason) to see which reasons cost most and which drive churn.")
NEED_REASON = ("The cost of failure demand needs the reason of each contact: add a column reason to the contacts "
               "table (for example billing_error, service_outage, how_to) to see which reasons cost most and which "
               "drive churn.")


def test_what_the_analysis_needs_word_for_word():
    with pytest.raises(Skip) as no_table:
        fdm._need_reasons(SimpleNamespace(tables={"customers": _contacts([])}))
    assert str(no_table.value) == NEED_CONTACTS
    with pytest.raises(Skip) as no_column:
        fdm._need_reasons(SimpleNamespace(tables={"contacts": _contacts([], reason=False)}))
    assert str(no_column.value) == NEED_REASON
    assert fdm._need_reasons(SimpleNamespace(tables={"contacts": _contacts([])})) is None
    # the same sentences skip the cost table (empty, its usual columns)
    costs = fdm.reason_costs(SimpleNamespace(tables={}), {})
    assert costs.attrs["skipped"] == NEED_CONTACTS and list(costs.columns) == fdm.COST_COLUMNS and costs.empty


# --------------------------------------------------------------------------- reason_exposure


def _checked(tables: dict, **more) -> SimpleNamespace:
    """Checked data of ``tables`` alone (no rows for the rules to exclude: windows read the tables as they are)."""
    return SimpleNamespace(tables=tables, in_windows=tables.__getitem__, **more)


CONTACT_ROWS = [
    # a: survey 15 June 2025, customer since 2020: pre window [15 June 2024, 15 June 2025)
    ("a", D(2024, 6, 15), "phone", "billing"),  # the window's first day: in
    ("a", D(2025, 6, 14), "phone", " billing "),  # the day before the survey, padded: billing again
    ("a", D(2025, 6, 15), "phone", "outage"),  # the survey's day: out
    ("a", D(2024, 6, 14), "email", "how_to"),  # the day before the window: out
    ("a", D(2025, 3, 20), "email", "fax"),  # in a 12-month window and in a 3-month one (from 15 March)
    ("a", D(2025, 3, 14), "email", "refund"),  # in a 12-month window, out of a 3-month one (15 March)
    # b: customer since 1 March 2025, survey 15 June 2025: the window starts on the start date
    ("b", D(2025, 2, 28), "chat", "outage"),  # before they were a customer: out
    ("b", D(2025, 3, 1), "chat", "how_to"),  # the start date: in
    ("b", D(2025, 4, 1), "chat", None),  # no reason
    ("b", D(2025, 4, 2), "chat", ""),  # an empty reason
    ("b", D(2025, 4, 3), "chat", "   "),  # blanks only: stripped to empty
    # d: contacts only after the survey
    ("d", D(2025, 7, 1), "web", "billing"),
    # zz: not in the history
    ("zz", D(2025, 5, 1), "web", "lost_card"),
]


def _exposure_history():
    return pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
                         "response_date": pd.to_datetime(["2025-06-15", "2025-06-15", "2025-06-15", "2025-06-15"]),
                         "start_date": pd.to_datetime(["2020-01-01", "2025-03-01", "2020-01-01", "2020-01-01"]),
                         "group": ["passive"] * 4}, index=pd.Index([10, 11, 12, 13], name="row"))


def test_reason_exposure_flags_the_pre_window_by_hand():
    data = _checked({"contacts": _contacts(CONTACT_ROWS)})
    h = _exposure_history()
    got = fdm.reason_exposure(data, h, {"window_months": 12})
    expected = pd.DataFrame({fdm.NO_REASON: [False, True, False, False],
                             "billing": [True, False, False, False],
                             "fax": [True, False, False, False],
                             "how_to": [False, True, False, False],
                             "refund": [True, False, False, False]}, index=h.index)
    pd.testing.assert_frame_equal(got, expected)
    assert got.columns.name is None and (got.dtypes == bool).all()
    # three months: a's window starts on 15 March 2025, so the refund of the 14th is out; so does b's
    # (later than their start date), so their how_to of 1 March is out: nobody has one
    short = fdm.reason_exposure(data, h, {"window_months": 3})
    pd.testing.assert_frame_equal(short, expected.drop(columns=["refund", "how_to"]))


def test_reason_exposure_without_reasons_or_customers():
    h = _exposure_history()
    for data in (_checked({}), _checked({"contacts": _contacts(CONTACT_ROWS, reason=False)})):
        out = fdm.reason_exposure(data, h, {"window_months": 12})
        assert out.shape == (4, 0) and list(out.index) == [10, 11, 12, 13]
    data = _checked({"contacts": _contacts(CONTACT_ROWS)})
    out = fdm.reason_exposure(data, h.iloc[:0], {})  # nobody to flag: no window needed
    assert out.shape == (0, 0) and out.index.name == "row"
    # someone in the history but no contact in any window: no columns, everyone's row
    late = _checked({"contacts": _contacts([("d", D(2025, 7, 1), "web", "billing")])})
    out = fdm.reason_exposure(late, h, {"window_months": 12})
    assert out.shape == (4, 0) and list(out.index) == [10, 11, 12, 13]


# --------------------------------------------------------------------------- the small formulas


def test_risk_ratio_by_hand():
    rr, lo, hi = fdm._risk_ratio(3, 4, 2, 5)
    se = math.sqrt(1 / 3 - 1 / 4 + 1 / 2 - 1 / 5)
    assert rr == pytest.approx(1.875, rel=1e-12)
    assert lo == pytest.approx(1.875 * math.exp(-Z * se), rel=1e-12)
    assert hi == pytest.approx(1.875 * math.exp(Z * se), rel=1e-12)
    assert all(type(v) is float for v in (rr, lo, hi))
    # one event on each side and a group of one still give a ratio
    rr, lo, hi = fdm._risk_ratio(1, 1, 1, 2)
    assert rr == pytest.approx(2.0) and hi == pytest.approx(2 * math.exp(Z * math.sqrt(0.5)), rel=1e-12)
    assert lo == pytest.approx(2 * math.exp(-Z * math.sqrt(0.5)), rel=1e-12)
    rr, lo, hi = fdm._risk_ratio(2, 2, 1, 1)
    assert rr == pytest.approx(1.0) and lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    for args in [(0, 4, 2, 5), (3, 4, 0, 5), (1, 0, 2, 5), (3, 4, 1, 0), (0, 0, 0, 0)]:
        out = fdm._risk_ratio(*args)
        assert len(out) == 3 and all(type(v) is float and math.isnan(v) for v in out), args


def test_customers_kept_by_hand():
    # 200 customers, 30% leave within a year; HR 1.5: spared the contact they would leave at 1/1.5 of
    # the hazard, 1 - 0.7^(2/3); removing 40% of the reason spares 80 of them
    assert fdm.customers_kept(200, 0.3, 1.5, 0.4) == pytest.approx(80 * (0.3 - (1 - 0.7 ** (1 / 1.5))), rel=1e-12)
    assert fdm.customers_kept(200, 0.3, 1.0, 0.4) == pytest.approx(0.0, abs=1e-12)
    assert fdm.customers_kept(200, 0.3, 0.5, 0.4) == 0.0  # a reason whose customers stay longer: none kept
    got = fdm.customers_kept(50, 0.1, [0.5, 1, 2, 4.0], 1.0)
    assert got == pytest.approx([0.0, 0.0, 50 * (0.1 - (1 - 0.9 ** 0.5)), 50 * (0.1 - (1 - 0.9 ** 0.25))], rel=1e-12)
    assert got.shape == (4,)


# --------------------------------------------------------------------------- the analysis's settings


def test_defaults_and_settings():
    fd = fdm.FailureDemand(["low", 2, "high"], "high")
    assert fd.groups == ["low", "2", "high"] and fd.reference_group == "high" and fd.covariates == []
    assert (fd.share_removed, fd.top, fd.min_group_size, fd.min_cell_size, fd.draws, fd.seed) == (
        0.25, 5, 100, 10, 2000, 42)
    cov = ("age", "plan")
    fd = fdm.FailureDemand(["a"], "a", cov, 0.1, 3, 20, 4, 50, 7)
    assert fd.covariates == ["age", "plan"] and isinstance(fd.covariates, list)
    assert (fd.share_removed, fd.top, fd.min_group_size, fd.min_cell_size, fd.draws, fd.seed) == (0.1, 3, 20, 4, 50, 7)
    assert fd.label == "The cost of failure demand"


def test_from_params():
    p = config.load_params({"as_of": "2025-12-31", "failure_demand.share_removed": 0.4,
                            "failure_demand.top_reasons": 3, "min_group_size": 50, "min_cell_size": 7, "seed": 9,
                            "reference_group": "promoter"})
    fd = fdm.FailureDemand.from_params(p, ["age"])
    assert fd.groups == ["detractor", "passive", "promoter"] and fd.reference_group == "promoter"
    assert fd.covariates == ["age"]
    assert (fd.share_removed, fd.top, fd.min_group_size, fd.min_cell_size, fd.draws, fd.seed) == (0.4, 3, 50, 7, 2000, 9)
    fd = fdm.FailureDemand.from_params(config.load_params({"as_of": "2025-12-31", "metric": "csat"}))
    assert fd.groups == list(config.bands_for(config.load_params({"metric": "csat"})))
    assert fd.reference_group == config.reference_group(config.load_params({"metric": "csat"}))
    assert fd.covariates == [] and fd.share_removed == 0.25 and fd.top == 5 and fd.seed == 42


# --------------------------------------------------------------------------- the value of removing a share


def _interval(hr, se):
    return hr * math.exp(-Z * se), hr * math.exp(Z * se)


def test_value_by_hand():
    fd = fdm.FailureDemand(["d", "p"], "p", share_removed=0.25, draws=1000)
    fd.mean_margin_ = 240.0
    fd.value_draws_ = {}
    lo, hi = _interval(2.0, 0.3)  # se 0.3: 1% of the draws under HR 1, so both percentiles are above the floor
    row = {"reason": "billing", "contacts": 400, "customers": 300, "cost_per_year": 1000.0,
           "churn_12m_exposed": 0.2, "hazard_ratio": 2.0, "hr_lo": lo, "hr_hi": hi}
    out = fd._value(row, np.random.default_rng(7))
    kept = 0.25 * 300 * (0.2 - (1 - 0.8 ** 0.5))
    draws = np.exp(np.random.default_rng(7).normal(math.log(2.0), 0.3, 1000))
    kept_draws = np.maximum(0.25 * 300 * (0.2 - (1 - 0.8 ** (1 / draws))), 0.0)
    value_draws = 250.0 + 240.0 * kept_draws
    assert set(out) == {"cost_saved_per_year", "customers_kept_per_year", "retention_value_per_year",
                        "value_per_year", "value_lo", "value_hi"}
    assert out["cost_saved_per_year"] == 250.0
    assert out["customers_kept_per_year"] == pytest.approx(kept, rel=1e-12)
    assert out["retention_value_per_year"] == pytest.approx(240 * kept, rel=1e-12)
    assert out["value_per_year"] == pytest.approx(250 + 240 * kept, rel=1e-12)
    assert out["value_lo"] == pytest.approx(np.percentile(value_draws, 2.5), rel=1e-9)
    assert out["value_hi"] == pytest.approx(np.percentile(value_draws, 97.5), rel=1e-9)
    assert all(type(v) is float for v in out.values())
    assert list(fd.value_draws_) == ["billing"]
    assert fd.value_draws_["billing"] == pytest.approx(value_draws, rel=1e-9)
    # the interval is not the point: the 2.5th percentile sits well below, the 97.5th above
    assert out["value_lo"] < out["value_per_year"] < out["value_hi"]
    assert out["value_lo"] < np.percentile(value_draws, 3.5) and out["value_hi"] > np.percentile(value_draws, 96.5)


def test_value_is_the_cost_saved_alone_without_a_churn_link():
    fd = fdm.FailureDemand(["d", "p"], "p", share_removed=0.4, draws=10)
    fd.value_draws_ = {}
    lo, hi = _interval(2.0, 0.5)
    base = {"reason": 7, "contacts": 4, "customers": 3, "cost_per_year": 50, "churn_12m_exposed": 0.2,
            "hazard_ratio": 2.0, "hr_lo": lo, "hr_hi": hi}
    only_cost = {"cost_saved_per_year": 20.0, "value_per_year": 20.0, "value_lo": 20.0, "value_hi": 20.0}
    fd.mean_margin_ = None  # no margin
    assert fd._value(dict(base), np.random.default_rng(0)) == only_cost
    fd.mean_margin_ = 100.0
    for change in [{"hazard_ratio": None}, {"hazard_ratio": np.nan}, {"churn_12m_exposed": np.nan},
                   {"churn_12m_exposed": None}]:
        got = fd._value({**base, **change}, np.random.default_rng(0))
        assert got == only_cost and all(type(v) is float for v in got.values()), change
    for key in ("hazard_ratio", "churn_12m_exposed"):
        assert fd._value({k: v for k, v in base.items() if k != key}, np.random.default_rng(0)) == only_cost
    assert fd.value_draws_ == {}
    got = fd._value(base, np.random.default_rng(0))  # now everything is there
    assert list(fd.value_draws_) == ["7"] and len(fd.value_draws_["7"]) == 10
    assert got["value_per_year"] == pytest.approx(20 + 100 * 0.4 * 3 * (0.2 - (1 - 0.8 ** 0.5)), rel=1e-12)


# --------------------------------------------------------------------------- the whole analysis on a stand-in churn model


class StandInChurn:
    """Records how it was made and what it was fitted on; answers the hazard ratio of ``with``
    from ``ANSWERS``, keyed by the other top reasons among its terms (so by the reason linked)."""

    ANSWERS: dict = {}
    made: list = []

    def __init__(self, reference_group, covariates=None, min_group_size="unset", by_unit="unset"):
        self.args = (reference_group, covariates, min_group_size, by_unit)
        StandInChurn.made.append(self)

    def fit(self, frame):
        self.frame = frame.copy()
        key = tuple(c for c in frame.columns if c.startswith("also_"))
        answer = self.ANSWERS[key]
        self.fitted = answer.get("fitted", True)
        self.skipped_ = answer.get("skipped")
        hr = answer.get("hr", np.nan)
        lo, hi = _interval(hr, answer.get("se", 0.5)) if not pd.isna(hr) else (np.nan, np.nan)
        self.summary = pd.DataFrame({"hazard_ratio": [1.0, hr], "hr_lo": [1.0, lo], "hr_hi": [1.0, hi]},
                                    index=["without", "with"])
        return self


@pytest.fixture
def churn(monkeypatch):
    StandInChurn.made = []
    StandInChurn.ANSWERS = {("also_billing",): {"hr": 0.8, "se": 0.4},  # outage linked (billing a control)
                            ("also_outage",): {"hr": 2.0, "se": 0.5}}  # billing linked
    monkeypatch.setattr(fdm, "ChurnModel", StandInChurn)
    return StandInChurn


GROUPS = ["detractor", "passive", "promoter"]
IDS = ["d1", "d2", "d3", "d4", "p1", "p2", "p3", "p4", "p5", "q1", "q2", "q3"]


def _history():
    """Four detractors, five passives, three promoters. Left within a year: d1 (day 100) and p3 (day
    200); q2 left on day 500; everyone else followed 400 days."""
    duration = {"d1": 100.0, "p3": 200.0, "q2": 500.0}
    return pd.DataFrame({"customer_id": IDS,
                         "group": pd.Categorical([i[0] for i in IDS], categories=list("dpq")).rename_categories(GROUPS),
                         "churned": [i in duration for i in IDS],
                         "duration_days": [duration.get(i, 400.0) for i in IDS],
                         "age": [30 + k for k in range(12)]},
                        index=pd.Index(range(100, 112), name="row"))


def _exposure(history):
    who = {"billing": {"d1", "d2", "d3", "p1", "p2", "q1"},  # a = 3 of 4 detractors, c = 2 of 5 passives
           "outage": {"d1", "d2", "p1", "p2", "p3", "q1", "q2", "q3"},  # a = 2, c = 3; 4 not exposed
           "how_to": {"d1", "p1", "p2", "p3", "p4"},  # a = 1: too few detractors
           fdm.NO_REASON: {"d4", "p5", "q3"},
           "lost_card": {"q1"}}  # in the window but not among the costs
    return pd.DataFrame({r: history["customer_id"].isin(s).to_numpy() for r, s in who.items()}, index=history.index)


def _costs(attrs=True):
    """Costliest first as reason_costs gives them (outage before billing); fax has no exposure flag."""
    costs = pd.DataFrame({"contacts": [900, 500, 300, 80, 60, 40], "customers": [500, 300, 200, 50, 40, 20],
                          "cost_per_year": [1000.0, 600.0, 300.0, 100.0, 80.0, 50.0]},
                         index=pd.Index(["outage", "billing", fdm.OTHER, "how_to", fdm.NO_REASON, "fax"], name="reason"))
    costs["share_of_cost"] = costs["cost_per_year"] / costs["cost_per_year"].sum()
    if attrs:
        costs.attrs.update(pooled=["a_reason", "b_reason"], hidden=True)
    return costs


MARGIN = pd.Series({"promoter": 300.0, "detractor": 100.0, "passive": 200.0})
BASE = pd.Series({"detractor": 1.0, "passive": 1.0, "promoter": 3.0})  # mean margin (100 + 200 + 900) / 5 = 240


def _fit(churn_model, **kw):
    h = _history()
    settings = dict(covariates=["age"], share_removed=0.25, top=2, min_group_size=2, min_cell_size=2, draws=500,
                    seed=11)
    settings.update(kw)
    fd = fdm.FailureDemand(GROUPS, "passive", **settings)
    return fd.fit(_costs(), _exposure(h), h, MARGIN, BASE), h


def _same(got, expected, path="results"):
    """Equal, numbers to 1e-9 relative, None where None, recursively."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), (path, list(got), list(expected))
        for k in expected:
            _same(got[k], expected[k], f"{path}[{k!r}]")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), (path, got, expected)
        for k, (g, e) in enumerate(zip(got, expected)):
            _same(g, e, f"{path}[{k}]")
    elif expected is None or isinstance(expected, (bool, str)):
        assert got is expected or got == expected and type(got) is type(expected), (path, got, expected)
    else:
        assert got is not None and not isinstance(got, (bool, str)) and got == pytest.approx(expected, rel=1e-9), (
            path, got, expected)


def test_the_whole_analysis_by_hand(churn):
    fd, h = _fit(churn)
    before = _history()
    pd.testing.assert_frame_equal(h, before)  # the history is not changed
    assert fd.skipped_ is None and fd.warnings_ == [] and fd.churn_skipped_ is None
    assert fd.mean_margin_ == pytest.approx(240.0)
    assert fd.top_ == ["outage", "billing"]  # the costliest reasons with a flag, not "other" or "no reason"

    # two churn fits, outage's then billing's, each against the other top reason
    assert [m.args for m in churn.made] == [("without", ["age", "satisfaction", "also_billing"], 2, True),
                                            ("without", ["age", "satisfaction", "also_outage"], 2, True)]
    ex = _exposure(h)
    for model, reason, other in [(churn.made[0], "outage", "billing"), (churn.made[1], "billing", "outage")]:
        f = model.frame
        assert list(f.index) == list(h.index)
        assert list(f.columns) == [*h.columns, "satisfaction", f"also_{other}"]
        assert f["satisfaction"].tolist() == [str(g) for g in h["group"]]
        assert f[f"also_{other}"].tolist() == ["yes" if e else "no" for e in ex[other]]
        assert isinstance(f["group"].dtype, pd.CategoricalDtype)
        assert list(f["group"].cat.categories) == ["without", "with"]
        assert f["group"].tolist() == ["with" if e else "without" for e in ex[reason]]
        assert f["churned"].tolist() == h["churned"].tolist() and f["age"].tolist() == h["age"].tolist()

    # Kaplan-Meier 12-month churn of the exposed: billing's six lose d1 on day 100 (1/6); outage's eight
    # lose d1 on day 100 and p3 on day 200: 1 - 7/8 x 6/7 = 1/4 (q2's day 500 is after the year)
    p_billing, p_outage = 1 / 6, 1 / 4
    s_outage, s_billing = 0.4, 0.5
    rng = np.random.default_rng(11)
    d_outage = np.exp(rng.normal(math.log(0.8), s_outage, 500))
    d_billing = np.exp(rng.normal(math.log(2.0), s_billing, 500))

    def kept(customers, p, hr):
        return np.maximum(0.25 * customers * (p - (1 - (1 - p) ** (1 / np.asarray(hr, float)))), 0.0)

    v_outage = 250.0 + 240.0 * kept(500, p_outage, d_outage)
    v_billing = 150.0 + 240.0 * kept(300, p_billing, d_billing)
    k_billing = float(kept(300, p_billing, 2.0))
    assert float(kept(500, p_outage, 0.8)) == 0.0
    assert fd.value_draws_.keys() == {"outage", "billing"}
    assert fd.value_draws_["outage"] == pytest.approx(v_outage, rel=1e-9)
    assert fd.value_draws_["billing"] == pytest.approx(v_billing, rel=1e-9)

    rr_b = (3 / 4) / (2 / 5)
    se_b = math.sqrt(1 / 3 - 1 / 4 + 1 / 2 - 1 / 5)
    rr_o = (2 / 4) / (3 / 5)
    se_o = math.sqrt(1 / 2 - 1 / 4 + 1 / 3 - 1 / 5)
    lo_o, hi_o = _interval(0.8, s_outage)
    lo_b, hi_b = _interval(2.0, s_billing)
    costs = _costs()
    cost = {r: {"contacts_per_year": costs.loc[r, "contacts"], "customers_per_year": costs.loc[r, "customers"],
                "cost_per_year": costs.loc[r, "cost_per_year"], "share_of_cost": costs.loc[r, "share_of_cost"]}
            for r in costs.index}
    none2 = [None, None]
    expected_reasons = {
        "outage": {**cost["outage"], "exposed_share_lowest": 0.5, "exposed_share_reference": 0.6,
                   "concentration": rr_o, "concentration_ci": [rr_o * math.exp(-Z * se_o), rr_o * math.exp(Z * se_o)],
                   "churn_hazard_ratio": 0.8, "churn_hazard_ratio_ci": [lo_o, hi_o], "churn_12m_exposed": p_outage,
                   "churn_note": None, "cost_saved_per_year": 250.0, "customers_kept_per_year": 0.0,
                   "retention_value_per_year": 0.0, "value_per_year": 250.0,
                   "value_ci": [np.percentile(v_outage, 2.5), np.percentile(v_outage, 97.5)], "valued": True},
        "billing": {**cost["billing"], "exposed_share_lowest": 0.75, "exposed_share_reference": 0.4,
                    "concentration": rr_b, "concentration_ci": [rr_b * math.exp(-Z * se_b), rr_b * math.exp(Z * se_b)],
                    "churn_hazard_ratio": 2.0, "churn_hazard_ratio_ci": [lo_b, hi_b], "churn_12m_exposed": p_billing,
                    "churn_note": None, "cost_saved_per_year": 150.0, "customers_kept_per_year": k_billing,
                    "retention_value_per_year": 240 * k_billing, "value_per_year": 150 + 240 * k_billing,
                    "value_ci": [np.percentile(v_billing, 2.5), np.percentile(v_billing, 97.5)], "valued": True},
        fdm.OTHER: {**cost[fdm.OTHER], "exposed_share_lowest": None, "exposed_share_reference": None,
                    "concentration": None, "concentration_ci": none2, "churn_hazard_ratio": None,
                    "churn_hazard_ratio_ci": none2, "churn_12m_exposed": None, "churn_note": None,
                    "cost_saved_per_year": 75.0, "customers_kept_per_year": None, "retention_value_per_year": None,
                    "value_per_year": 75.0, "value_ci": [75.0, 75.0], "valued": False},
        # how_to: one detractor, under min_cell_size 2: no concentration; not among the top two
        "how_to": {**cost["how_to"], "exposed_share_lowest": None, "exposed_share_reference": None,
                   "concentration": None, "concentration_ci": none2, "churn_hazard_ratio": None,
                   "churn_hazard_ratio_ci": none2, "churn_12m_exposed": None, "churn_note": None,
                   "cost_saved_per_year": 25.0, "customers_kept_per_year": None, "retention_value_per_year": None,
                   "value_per_year": 25.0, "value_ci": [25.0, 25.0], "valued": False},
        # no reason given: one detractor and one passive (min_cell_size 2): too few for a concentration
        fdm.NO_REASON: {**cost[fdm.NO_REASON], "exposed_share_lowest": None, "exposed_share_reference": None,
                        "concentration": None, "concentration_ci": none2, "churn_hazard_ratio": None,
                        "churn_hazard_ratio_ci": none2, "churn_12m_exposed": None, "churn_note": None,
                        "cost_saved_per_year": 20.0, "customers_kept_per_year": None,
                        "retention_value_per_year": None, "value_per_year": 20.0, "value_ci": [20.0, 20.0],
                        "valued": False},
        "fax": {**cost["fax"], "exposed_share_lowest": None, "exposed_share_reference": None,
                "concentration": None, "concentration_ci": none2, "churn_hazard_ratio": None,
                "churn_hazard_ratio_ci": none2, "churn_12m_exposed": None, "churn_note": None,
                "cost_saved_per_year": 12.5, "customers_kept_per_year": None, "retention_value_per_year": None,
                "value_per_year": 12.5, "value_ci": [12.5, 12.5], "valued": False},
    }
    r = fd.results()
    _same(r, {"skipped": None, "share_removed": 0.25, "lowest_group": "detractor", "reference_group": "passive",
              "pooled_reasons": ["a_reason", "b_reason"], "small_pool_hidden": True, "churn_link_skipped": None,
              "mean_margin_per_customer_year": 240.0, "ranking": ["billing", "outage"], "reasons": expected_reasons})
    assert fd.summary.loc["how_to", "exposed_respondents"] == 5 and fd.summary.loc["outage", "exposed_respondents"] == 8
    assert fd.summary.loc["billing", "exposed_respondents"] == 6
    # the summary's rank: by value, most valuable first
    assert fd.summary["rank"].to_dict() == {"outage": 2, "billing": 1, fdm.OTHER: 3, "how_to": 4, fdm.NO_REASON: 5,
                                            "fax": 6}

    # ranked: the valued reasons, most valuable first (billing is worth more though outage costs more)
    ranked = fd.ranked()
    assert list(ranked.index) == ["billing", "outage"]
    assert ranked["value_per_year"].tolist() == pytest.approx([150 + 240 * k_billing, 250.0], rel=1e-9)
    pd.testing.assert_frame_equal(ranked, fd.summary_.loc[["billing", "outage"]])

    # the yearly value draws of several reasons together: their sum; a reason without a churn link
    # contributes its value in every draw; no reason at all, nothing
    assert fd.yearly_value_draws() == pytest.approx(v_outage + v_billing, rel=1e-9)
    assert fd.yearly_value_draws(["billing"]) == pytest.approx(v_billing, rel=1e-9)
    assert fd.yearly_value_draws(["how_to", "fax", "billing"]) == pytest.approx(37.5 + v_billing, rel=1e-9)
    empty = fd.yearly_value_draws([])
    assert isinstance(empty, np.ndarray) and empty.shape == (500,) and (empty == 0).all()
    only_cost = fd.yearly_value_draws(["how_to"])
    assert isinstance(only_cost, np.ndarray) and only_cost.shape == (500,) and (only_cost == 25.0).all()
    with pytest.raises(KeyError) as missing:
        fd.yearly_value_draws(["billing", "nope"])
    assert missing.value.args[0] == ("The cost of failure demand: no contact reason 'nope' (reasons: outage, billing, "
                                     "other reasons, how_to, (no reason given), fax)")


def test_the_churn_link_at_its_edges(churn):
    # min_group_size 4: outage's four customers not exposed are just enough
    fd, _ = _fit(churn, min_group_size=4)
    assert len(churn.made) == 2 and [m.args[2] for m in churn.made] == [4, 4]
    assert fd.summary.loc["outage", "hazard_ratio"] == pytest.approx(0.8)
    # 5: too few for outage; billing (six and six) is still linked, its controls still name outage
    churn.made.clear()
    fd, _ = _fit(churn, min_group_size=5)
    assert [m.args for m in churn.made] == [("without", ["age", "satisfaction", "also_outage"], 5, True)]
    assert fd.results()["reasons"]["outage"]["churn_note"] == (
        "Fewer than 5 customers contacted about outage before their survey (or all did), too few to link it to churn.")
    assert fd.results()["reasons"]["outage"]["churn_hazard_ratio"] is None
    assert fd.results()["reasons"]["outage"]["value_per_year"] == 250.0
    assert fd.summary.loc["billing", "hazard_ratio"] == pytest.approx(2.0)
    # 7: too few for both (billing: six of twelve)
    churn.made.clear()
    fd, _ = _fit(churn, min_group_size=7)
    assert churn.made == []
    assert fd.summary.loc["billing", "churn_note"] == (
        "Fewer than 7 customers contacted about billing before their survey (or all did), too few to link it to churn.")
    # everyone exposed: none without the contact
    churn.made.clear()
    h = _history()
    ex = _exposure(h).assign(billing=True)
    fd = fdm.FailureDemand(GROUPS, "passive", top=2, min_group_size=1, min_cell_size=2, draws=50).fit(
        _costs(), ex, h, MARGIN, BASE)
    assert fd.summary.loc["billing", "churn_note"].startswith("Fewer than 1 customers contacted about billing")
    assert [m.args[1] for m in churn.made] == [["satisfaction", "also_billing"]]


def test_a_churn_model_that_gives_no_estimate(churn):
    # not fitted, with its reason; not fitted without one (the numbers it holds are not read); fitted
    # but without a hazard ratio for "with"
    churn.ANSWERS = {("also_billing",): {"fitted": False, "skipped": "Churn: too few events.", "hr": 1.7},
                     ("also_outage",): {"fitted": False, "hr": 1.7}}
    fd, _ = _fit(churn)
    r = fd.results()["reasons"]
    assert r["outage"]["churn_note"] == "Churn: too few events."
    assert r["billing"]["churn_note"] == "the churn model gave no estimate"
    for reason, p in [("outage", 1 / 4), ("billing", 1 / 6)]:
        assert r[reason]["churn_12m_exposed"] == pytest.approx(p)
        assert r[reason]["churn_hazard_ratio"] is None and r[reason]["churn_hazard_ratio_ci"] == [None, None]
        assert r[reason]["value_per_year"] == r[reason]["cost_saved_per_year"]
    assert fd.value_draws_ == {}
    churn.ANSWERS = {("also_billing",): {"hr": np.nan}, ("also_outage",): {"hr": 2.0}}
    churn.made.clear()
    fd, _ = _fit(churn)
    r = fd.results()["reasons"]
    assert r["outage"]["churn_note"] == "the churn model gave no estimate" and r["outage"]["churn_hazard_ratio"] is None
    assert r["billing"]["churn_note"] is None and r["billing"]["churn_hazard_ratio"] == pytest.approx(2.0)
    assert list(fd.value_draws_) == ["billing"]


def test_nobody_left(churn):
    h = _history().assign(churned=False)
    fd = fdm.FailureDemand(GROUPS, "passive", top=2, min_group_size=2, min_cell_size=2, draws=50).fit(
        _costs(), _exposure(h), h, MARGIN, BASE)
    note = ("Nobody in the data left after their survey (no end_date), so no reason can be linked to churn; only "
            "the cost of each reason is valued.")
    assert churn.made == [] and fd.churn_skipped_ == note and fd.warnings_ == [note] and fd.skipped_ is None
    r = fd.results()
    assert r["churn_link_skipped"] == note
    assert r["reasons"]["outage"]["churn_note"] == note and r["reasons"]["billing"]["churn_note"] == note
    assert r["reasons"]["how_to"]["churn_note"] is None  # not a top reason: not linked
    assert r["reasons"]["outage"]["churn_12m_exposed"] is None
    assert r["ranking"] == ["outage", "billing"] and fd.value_draws_ == {}
    assert fd.yearly_value_draws() == pytest.approx(np.full(50, 400.0))
    # equal values rank in the summary's order (fax costs as much as "no reason given" here)
    costs = _costs()
    costs.loc["fax", "cost_per_year"] = 80.0
    fd = fdm.FailureDemand(GROUPS, "passive", top=2, min_group_size=2, min_cell_size=2, draws=50).fit(
        costs, _exposure(h), h, MARGIN, BASE)
    assert fd.summary["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    # as many top reasons as there are: every reason with a flag, never "other reasons" or "no reason given",
    # nor one without a flag (fax)
    fd = fdm.FailureDemand(GROUPS, "passive", top=10, min_group_size=2, min_cell_size=2, draws=50).fit(
        _costs(), _exposure(h), h, MARGIN, BASE)
    assert fd.top_ == ["outage", "billing", "how_to"] and fd.results()["ranking"] == ["outage", "billing", "how_to"]


def test_without_a_margin_or_attrs(churn):
    h = _history()
    # no margin: the value is the cost saved; the customers kept are not counted either
    fd = fdm.FailureDemand(GROUPS, "passive", top=2, min_group_size=2, min_cell_size=2, draws=50).fit(
        _costs(attrs=False), _exposure(h), h)
    r = fd.results()
    assert r["mean_margin_per_customer_year"] is None and r["pooled_reasons"] == [] and r["small_pool_hidden"] is False
    assert r["reasons"]["billing"]["churn_hazard_ratio"] == pytest.approx(2.0)
    assert r["reasons"]["billing"]["value_per_year"] == 150.0 and r["reasons"]["billing"]["customers_kept_per_year"] is None
    assert r["ranking"] == ["outage", "billing"]
    # the base given as shares (they add up to 1): the same mean margin
    fd.fit(_costs(), _exposure(h), h, MARGIN, BASE / 5)
    assert fd.mean_margin_ == pytest.approx(240.0)
    # a group without a margin, or no customers: no mean margin
    fd.fit(_costs(), _exposure(h), h, MARGIN.drop("promoter"), BASE)
    assert fd.mean_margin_ is None
    fd.fit(_costs(), _exposure(h), h, MARGIN, BASE * 0)
    assert fd.mean_margin_ is None


def test_a_skipped_analysis(churn):
    h = _history()
    skipped = pd.DataFrame(columns=fdm.COST_COLUMNS)
    skipped.attrs["skipped"] = "no contacts"
    fd = fdm.FailureDemand(GROUPS, "passive", draws=30)
    fd.fit(skipped, _exposure(h), h, MARGIN, BASE)
    assert fd.skipped_ == "no contacts" and fd.warnings_ == ["no contacts"]
    assert list(fd.costs_.columns) == fdm.COST_COLUMNS and fd.costs_.empty
    assert isinstance(fd.summary_, pd.DataFrame) and fd.summary_.empty and fd.summary is fd.summary_
    assert fd.top_ == [] and fd.value_draws_ == {} and fd.mean_margin_ is None and fd.churn_skipped_ is None
    assert fd.ranked() is fd.summary_
    zeros = fd.yearly_value_draws()
    assert isinstance(zeros, np.ndarray) and zeros.shape == (30,) and (zeros == 0).all()
    r = fd.results()
    _same(r, {"skipped": "no contacts", "share_removed": 0.25, "lowest_group": "detractor",
              "reference_group": "passive", "pooled_reasons": [], "small_pool_hidden": False,
              "churn_link_skipped": None, "mean_margin_per_customer_year": None, "ranking": [], "reasons": {}})
    # no reason to report
    fd.fit(pd.DataFrame(columns=fdm.COST_COLUMNS), _exposure(h), h)
    assert fd.skipped_ == "The cost of failure demand: no contact reason to report."
    assert fd.results()["reasons"] == {} and fd.results()["ranking"] == []


def test_ranked_keeps_the_valued_reasons_in_the_summary():
    fd = fdm.FailureDemand(GROUPS, "passive")
    fd.summary_ = pd.DataFrame({"value_per_year": [1.0, 3.0, 2.0]}, index=["a", "b", "c"])
    fd.top_ = ["a", "gone", "c"]
    assert list(fd.ranked().index) == ["c", "a"]
    fd.top_ = []
    assert fd.ranked().empty


def test_results_reads_missing_numbers_as_none(churn):
    fd, _ = _fit(churn)
    s = fd.summary_.copy()
    s["contacts"] = s["contacts"].astype(object)
    s.loc["outage", "contacts"] = None
    s.loc["billing", "contacts"] = pd.NA
    s.loc["fax", "contacts"] = np.float64("nan")
    s.loc["how_to", "contacts"] = 0
    s["churn_note"] = s["churn_note"].astype(object)
    s.loc["how_to", "churn_note"] = "a note"
    fd.summary_ = s
    r = fd.results()["reasons"]
    assert [r[k]["contacts_per_year"] for k in ("outage", "billing", "fax")] == [None, None, None]
    assert r["how_to"]["contacts_per_year"] == 0 and r["how_to"]["churn_note"] == "a note"
    assert r[fdm.OTHER]["contacts_per_year"] == 300


def test_reason_exposure_reads_survey_and_start_days_in_their_own_time_zone():
    # a history whose times carry a time zone (+14:00): the survey of 15 June at 00:30 is on 15 June, so a
    # contact on 14 June is before it; a customer since 1 March at 00:30 was not one on 28 February (in
    # UTC both are the day before)
    tz = "Pacific/Kiritimati"
    h = pd.DataFrame({"customer_id": ["a", "b"],
                      "response_date": pd.to_datetime(["2025-06-15 00:30", "2025-06-15 00:30"]).tz_localize(tz),
                      "start_date": pd.to_datetime(["2020-01-01 00:30", "2025-03-01 00:30"]).tz_localize(tz)})
    data = _checked({"contacts": _contacts([("a", D(2025, 6, 14), "phone", "billing"),
                                                          ("b", D(2025, 2, 28), "phone", "outage"),
                                                          ("b", D(2025, 3, 1), "phone", "how_to")])})
    got = fdm.reason_exposure(data, h, {"window_months": 12})
    pd.testing.assert_frame_equal(got, pd.DataFrame({"billing": [True, False], "how_to": [False, True]}, index=h.index))


# --------------------------------------------------------------------------- reason_costs from a CSV source


def _source(folder, contacts):
    from cxvalue import data as cxdata

    try:
        from tests.fixtures.sources import write_csv
    except ImportError:  # run from inside tests/
        from fixtures.sources import write_csv
    ids = "abcdef"
    tables = {"customers": [{"customer_id": c, "start_date": "2020-01-01"} for c in ids],
              "responses": [{"customer_id": c, "response_date": "2025-02-01", "nps": "8"} for c in ids],
              "transactions": [{"customer_id": "a", "date": "2025-02-01", "amount": "10"}],
              "contacts": contacts}
    p = config.load_params({"as_of": "2025-12-31"})
    return cxdata.check(write_csv(folder, tables), p), p


COST_ROWS = [  # the 12 months to 31 December 2025: [1 January 2025, 1 January 2026); phone 12, email 6, chat 5, web 1
    {"customer_id": "a", "date": "2024-12-31", "channel": "phone", "reason": "billing", "cost": ""},  # the day before
    {"customer_id": "a", "date": "2025-01-01", "channel": "phone", "reason": "billing", "cost": ""},  # 12
    {"customer_id": "b", "date": "2025-12-31", "channel": "email", "reason": "billing", "cost": ""},  # 6, on as_of
    {"customer_id": "c", "date": "2025-05-01", "channel": "chat", "reason": "billing", "cost": "7.5"},  # its own cost
    {"customer_id": "a", "date": "2025-03-01", "channel": "phone", "reason": "outage", "cost": ""},  # 12
    {"customer_id": "b", "date": "2025-03-02", "channel": "chat", "reason": "outage", "cost": ""},  # 5
    {"customer_id": "b", "date": "2025-03-03", "channel": "web", "reason": "outage", "cost": ""},  # 1
    {"customer_id": "f", "date": "2025-07-01", "channel": "email", "reason": " outage ", "cost": ""},  # 6, padded
    {"customer_id": "c", "date": "2025-04-01", "channel": "phone", "reason": "", "cost": ""},  # 12, no reason
    {"customer_id": "d", "date": "2025-04-02", "channel": "phone", "reason": "  ", "cost": ""},  # 12, blanks
    {"customer_id": "e", "date": "2025-06-01", "channel": "email", "reason": "fax", "cost": ""},  # 6
    {"customer_id": "e", "date": "2025-06-02", "channel": "phone", "reason": "refund", "cost": ""},  # 12
]


def test_reason_costs_by_hand(tmp_path):
    d, p = _source(tmp_path / "costs", COST_ROWS)
    # min_cell_size 2: fax and refund (one customer each) are pooled, and the pool is one customer (e): hidden.
    # outage and "no reason" cost 24 each: the one with more contacts first
    out = fdm.reason_costs(d, {**p, "min_cell_size": 2})
    assert out.index.name == "reason" and list(out.index) == ["billing", "outage", fdm.NO_REASON]
    assert list(out.columns) == fdm.COST_COLUMNS
    assert out["contacts"].tolist() == [3, 4, 2] and out["customers"].tolist() == [3, 3, 2]
    assert out["cost_per_year"].tolist() == [25.5, 24.0, 24.0]
    assert out["share_of_cost"].tolist() == pytest.approx([25.5 / 73.5, 24 / 73.5, 24 / 73.5], rel=1e-12)
    assert (out["contacts"].dtype, out["customers"].dtype, out["cost_per_year"].dtype) == ("int64", "int64", float)
    assert out.attrs == {"pooled": ["fax", "refund"], "hidden": True}
    # 3: "no reason", fax and refund are pooled; their customers c, d and e are 3: shown as other reasons
    out = fdm.reason_costs(d, {**p, "min_cell_size": 3})
    assert list(out.index) == [fdm.OTHER, "billing", "outage"]
    assert out.loc[fdm.OTHER].tolist() == pytest.approx([4, 3, 42.0, 42 / 91.5], rel=1e-12)
    assert out["contacts"].dtype == "int64" and out["customers"].dtype == "int64"
    assert out.attrs == {"pooled": [fdm.NO_REASON, "fax", "refund"], "hidden": False}
    # 1: nothing pooled
    out = fdm.reason_costs(d, {**p, "min_cell_size": 1})
    assert list(out.index) == ["billing", "outage", fdm.NO_REASON, "refund", "fax"]
    assert out.attrs == {"pooled": [], "hidden": False} and out["share_of_cost"].sum() == pytest.approx(1.0)


def test_reason_costs_without_contacts_in_the_period(tmp_path):
    d, p = _source(tmp_path / "old", COST_ROWS[:1])
    out = fdm.reason_costs(d, {**p, "min_cell_size": 1})
    assert out.empty and list(out.columns) == fdm.COST_COLUMNS
    assert out.attrs["skipped"] == ("The cost of failure demand needs contacts in the 12 months to 2025-12-31; the "
                                    "data has none.")


def test_an_empty_lowest_or_reference_group(churn):
    # min_cell_size 0 (only by hand: the run's parameter is at least 1): no detractor, or no passive, at all;
    # their shares and the concentration are unknown, not a division by zero
    base = _history().assign(churned=False)
    for empty, key in (("detractor", "exposed_share_lowest"), ("passive", "exposed_share_reference")):
        h = base.assign(group=base["group"].astype(str).replace(empty, "promoter"))
        fd = fdm.FailureDemand(GROUPS, "passive", top=2, min_group_size=2, min_cell_size=0, draws=10).fit(
            _costs(), _exposure(h), h, MARGIN, BASE)
        r = fd.results()["reasons"]["billing"]
        assert r[key] is None and r["concentration"] is None and r["concentration_ci"] == [None, None]
        other = "exposed_share_reference" if key == "exposed_share_lowest" else "exposed_share_lowest"
        assert r[other] == pytest.approx(0.4 if other == "exposed_share_reference" else 0.75)


def test_reason_costs_window_ends_the_day_after_as_of_and_blank_reasons_are_no_reason():
    # straight from a contacts table (no data check in between, which drops contacts after as_of and empties
    # blank text): the period is the half-open [1 January 2025, 1 January 2026) for as_of 31 December 2025, so a
    # contact on 1 January 2026 is out; a reason of blanks only (stripped to empty), an empty one and a missing one
    # are all "no reason given". Phone contacts cost 12 each.
    rows = [("a", D(2026, 1, 1), "phone", "billing"),  # the day after as_of: out
            ("a", D(2025, 12, 31), "phone", "billing"),  # as_of itself: in
            ("b", D(2025, 6, 1), "phone", "   "),
            ("c", D(2025, 6, 2), "phone", ""),
            ("d", D(2025, 6, 3), "phone", None)]
    data = _checked({"contacts": _contacts(rows)}, as_of=D(2025, 12, 31), has_contact_cost=False)
    out = fdm.reason_costs(data, {"min_cell_size": 1, "contact_cost": {"phone": 12.0, "other": 1.0}})
    # no reason: 3 contacts, 3 customers, 36; billing: 1 contact (a's on as_of), 12; shares 36 / 48 and 12 / 48
    assert list(out.index) == [fdm.NO_REASON, "billing"]
    assert out["contacts"].tolist() == [3, 1] and out["customers"].tolist() == [3, 1]
    assert out["cost_per_year"].tolist() == [36.0, 12.0]
    assert out["share_of_cost"].tolist() == [0.75, 0.25]
    assert out.attrs == {"pooled": [], "hidden": False}
    # one contact in the period is enough for the table (not "no contacts")
    one = _checked({"contacts": _contacts(rows[:2])}, as_of=D(2025, 12, 31), has_contact_cost=False)
    out = fdm.reason_costs(one, {"min_cell_size": 1, "contact_cost": {"phone": 12.0}})
    assert "skipped" not in out.attrs and list(out.index) == ["billing"]
    assert out.loc["billing"].tolist() == [1, 1, 12.0, 1.0]
