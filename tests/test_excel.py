"""The business-case workbook, recalculated independently of Excel (``formulas``), against Python.

Every derived number in ``business_case.xlsx`` is a formula; these tests recompute the
workbook with the ``formulas`` package and compare its levers, net, NPV, ROI, payback and
IRR with :mod:`cxvalue.business_case`, also after an assumption changes.
"""

from __future__ import annotations

import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pytest
from conftest import world_with_prefixed_ids

import formulas  # noqa: E402  (a dev dependency: the workbook tests must run, not skip)

from cxvalue import business_case as bc  # noqa: E402
from cxvalue import excel  # noqa: E402
from cxvalue.exceptions import InputError  # noqa: E402

FIGURES = ("NPV", "ROI", "Payback", "IRR")


def python_figures(inputs: dict, **changes) -> dict:
    """Cash flows and headline figures from a case's inputs, some changed, with business_case."""
    x = {**inputs, **changes}
    H = int(x["horizon_years"])
    flows = bc.scenario_cash_flows(x["movers"], x["mover_moves"], x["ramp"], x["gross_margin"], H, x["yearly_cost"],
                                   x["lag_years"], x["referral_value"])
    lever = x.get("failure_demand")
    if lever:  # the failure-demand lever: its yearly value as the ramp and lag put it in place
        flows["failure_demand"] = lever["value_per_year"] * bc.achieved_by_year(x["ramp"], x["lag_years"], H)
        flows["benefit"] = flows[list(bc.LEVERS)].sum(axis=1)
        flows["net"] = flows["benefit"] - flows["cost"]
    flows = bc._with_year_zero(flows, x["one_off_cost"])
    yearly = flows.loc[1:]
    return {"cash_flows": flows,
            "NPV": bc.npv(yearly["net"], x["discount_rate"], x["one_off_cost"]),
            "ROI": bc.roi(yearly["benefit"], yearly["cost"], x["discount_rate"], x["one_off_cost"]),
            "Payback": bc.payback_months(yearly["net"], x["one_off_cost"]),
            "IRR": bc.irr(yearly["net"], x["one_off_cost"])}


class Recalculated:
    """A written workbook loaded into ``formulas``; figures read by the labels in column A."""

    def __init__(self, path):
        self.path = path
        self.book = openpyxl.load_workbook(path)  # formulas as text, to find the cells
        self.model = formulas.ExcelModel().loads(str(path)).finish()
        cf = self.book[excel.CASH_FLOWS]
        self.row = {}
        for r in range(1, cf.max_row + 1):
            self.row.setdefault(cf.cell(r, 1).value, r)
        self.years = [c for c in range(excel.CF_YEAR0 + 1, cf.max_column + 1)
                      if str(cf.cell(4, c).value).startswith("Year ")]

    def key(self, sheet: str, ref: str) -> str:
        return f"'[{self.path.name}]{sheet.upper()}'!{ref}"

    def named(self, name: str) -> str:
        """The ``formulas`` key of the cell a defined name points to."""
        sheet, ref = next(self.book.defined_names[name].destinations)
        return self.key(sheet, ref.replace("$", ""))

    def assumption(self, sheet: str, label: str, column: int, occurrence: int = 0) -> str:
        """The key of the cell in ``column`` on the (``occurrence``-th) row labelled ``label`` in column A of
        ``sheet``."""
        ws = self.book[sheet]
        row = [r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == label][occurrence]
        return self.key(sheet, f"{openpyxl.utils.get_column_letter(column)}{row}")

    def figures(self, inputs: dict | None = None) -> dict:
        sol = self.model.calculate(inputs=inputs or {})

        def value(ref):
            v = sol[self.key(excel.CASH_FLOWS, ref)].value[0, 0]
            return v if isinstance(v, str) else float(v)

        def row(label):
            r = self.row[label]
            return np.array([value(f"{openpyxl.utils.get_column_letter(c)}{r}") for c in self.years])

        out = {name: value(f"C{self.row[name]}") for name in FIGURES}
        for lever in bc.LEVERS:  # a lever the case does not have has no row
            label = excel.LEVER_LABELS[lever]
            out[lever] = row(label) if label in self.row else np.zeros(len(self.years))
        out.update(benefit=row("Benefit"), cost=row("Programme cost"), net=row("Net cash flow"))
        return out


def assert_matches(got: dict, want: dict, flows: pd.DataFrame, horizon: int | None = None):
    """The workbook's figures equal Python's (levers and net by year too), to ~1e-6."""
    yearly = flows.loc[1:]
    H = horizon or len(yearly)
    for column in (*bc.LEVERS, "benefit", "cost", "net"):
        assert got[column][:H] == pytest.approx(yearly[column].to_numpy()[:H], rel=1e-6, abs=1e-6), column
        assert (got[column][H:] == 0).all(), column  # years after a lowered horizon count nothing
    assert got["NPV"] == pytest.approx(want["NPV"], rel=1e-6)
    assert got["ROI"] == pytest.approx(want["ROI"], rel=1e-6)
    if want["Payback"] is None:
        assert got["Payback"] == excel.NOT_PAID_BACK
    else:
        assert got["Payback"] == pytest.approx(want["Payback"], rel=1e-6, abs=1e-9)
    if want["IRR"] is None:
        assert got["IRR"] == excel.NO_IRR
    else:
        assert got["IRR"] == pytest.approx(want["IRR"], rel=1e-6)


# --------------------------------------------------------------------------- a fitted world


@pytest.fixture(scope="module")
def fitted_case():
    """A small seeded world priced with every lever, referrals included; ids start with ZQX."""
    from cxvalue import data, history, linkage
    from cxvalue.config import load_params

    world = world_with_prefixed_ids(3_000, seed=21)
    p = load_params({"as_of": world.truth["as_of"], "scenario.one_off_cost": 20_000, "scenario.yearly_cost": 5_000,
                     "scenario.draws": 500, "currency": "EUR"})
    checked = data.check(world.tables, p)
    h = history.history(checked, p)
    cov = list(checked.covariates)
    rev, cost, churn, refs = (m("passive", cov).fit(h) for m in (linkage.RevenueModel, linkage.CostToServeModel,
                                                                   linkage.ChurnModel, linkage.ReferralModel))
    base = history.active_customers_by_group(checked, h)
    case = bc.evaluate(rev, cost, churn, churn.km_curves(h), base, p, refs, history=h)
    assert (case.cash_flows.loc[1:, "referrals"] != 0).all()  # the referrals lever is in play
    return world, case


@pytest.fixture(scope="module")
def fitted_book(fitted_case, tmp_path_factory):
    _, case = fitted_case
    path = excel.write_workbook(case, tmp_path_factory.mktemp("excel"))
    return Recalculated(path)


def test_workbook_recalculates_to_the_reported_case(fitted_case, fitted_book):
    _, case = fitted_case
    assert fitted_book.path.name == "business_case.xlsx"
    want = {"NPV": case.npv, "ROI": case.roi, "Payback": case.payback_months, "IRR": case.irr}
    assert case.payback_months is not None and case.irr is not None
    # the inputs reproduce the run's cash flows: the workbook has everything they were priced from
    python = python_figures(case.inputs)
    pd.testing.assert_frame_equal(python["cash_flows"], case.cash_flows)
    assert_matches(fitted_book.figures(), want, case.cash_flows)

    cf = fitted_book.book[excel.CASH_FLOWS]
    for name in FIGURES:  # the run's own figures stand beside the formulas, for audit
        live, reported = (cf.cell(fitted_book.row[name], col).value for col in (3, 4))
        assert reported == pytest.approx(want[name])
        assert str(live).startswith("=")
    for key, label in (("npv_p10", "NPV, P10"), ("npv_p50", "NPV, P50 (median)"), ("npv_p90", "NPV, P90"),
                       ("p_npv_positive", "Chance NPV > 0")):
        assert cf.cell(fitted_book.row[label], 3).value == pytest.approx(case.uncertainty[key])
    reported_net = [cf.cell(fitted_book.row["Net cash flow, as reported by cxvalue (static)"], c).value
                    for c in fitted_book.years]
    assert reported_net == pytest.approx(case.cash_flows.loc[1:, "net"].to_list())


def test_changing_an_assumption_moves_the_npv_as_python_does(fitted_case, fitted_book):
    _, case = fitted_case
    inputs = case.inputs
    assert inputs["gross_margin"] == 0.6
    lower = python_figures(inputs, gross_margin=0.5)
    assert lower["NPV"] < case.npv - 1  # a real change, so a formula that ignores the margin fails
    got = fitted_book.figures({fitted_book.named("GrossMargin"): 0.5})
    assert_matches(got, lower, lower["cash_flows"])

    # what the detractors would spend as passives, their survival as passives in year 2, and a share moved
    movers = inputs["movers"].copy()
    movers.loc["detractor as passive", "revenue"] *= 1.2
    survival = movers.loc["detractor as passive", "survival"].copy()
    survival[1] = survival[1] * 0.9
    movers.at["detractor as passive", "survival"] = survival
    moves = dict(inputs["mover_moves"])
    moves[("detractor", "detractor as passive")] = 0.35
    changed = python_figures(inputs, movers=movers, mover_moves=moves)
    book = fitted_book
    got = book.figures({book.assumption(excel.ASSUMPTIONS, "detractor as passive", 4):
                        float(movers.loc["detractor as passive", "revenue"]),
                        book.assumption(excel.ASSUMPTIONS, "detractor as passive", 4, occurrence=1): float(survival[1]),
                        book.assumption(excel.ASSUMPTIONS, "detractor → passive", 2): 0.35})
    assert got["NPV"] != pytest.approx(case.npv, rel=1e-3)
    assert_matches(got, changed, changed["cash_flows"])

    # a shorter horizon: later years count nothing
    shorter = python_figures(inputs, horizon_years=3)
    got = fitted_book.figures({fitted_book.named("Horizon"): 3})
    assert_matches(got, shorter, shorter["cash_flows"], horizon=3)


def test_the_failure_demand_lever_follows_the_ramp_and_lag_in_the_workbook(fitted_case, tmp_path):
    """A case with the failure-demand lever: the workbook's lever row is value x the ramp at programme
    year t - lag, live from its input, and the totals follow when the value or the lag changes."""
    from cxvalue.config import load_params

    world, case = fitted_case
    p = load_params({"as_of": world.truth["as_of"], "scenario.one_off_cost": 20_000, "scenario.yearly_cost": 5_000,
                     "scenario.draws": 500, "currency": "EUR"})
    with_lever = bc.add_yearly_lever(case, "failure_demand", 40_000.0, np.full(50, 40_000.0), p,
                                     {"reasons": ["billing_error"], "share_removed": 0.25})
    assert with_lever.cash_flows.loc[1:, "failure_demand"].to_list() == pytest.approx([20_000, 40_000, 40_000, 40_000, 40_000])
    book = Recalculated(excel.write_workbook(with_lever, tmp_path))
    want = {"NPV": with_lever.npv, "ROI": with_lever.roi, "Payback": with_lever.payback_months, "IRR": with_lever.irr}
    assert_matches(book.figures(), want, with_lever.cash_flows)
    pd.testing.assert_frame_equal(python_figures(with_lever.inputs)["cash_flows"], with_lever.cash_flows)

    lever = {**with_lever.inputs["failure_demand"], "value_per_year": 10_000.0}
    changed = python_figures(with_lever.inputs, failure_demand=lever, lag_years=1)
    assert changed["cash_flows"].loc[1:, "failure_demand"].to_list() == pytest.approx([0, 5_000, 10_000, 10_000, 10_000])
    got = book.figures({book.named("FailureDemandValue"): 10_000.0, book.named("LagYears"): 1})
    assert_matches(got, changed, changed["cash_flows"])


def test_a_margin_typed_into_the_workbook_flows_through(fitted_case, fitted_book, tmp_path):
    """As finance would do it: open the file, type a new gross margin, save, recalculate."""
    _, case = fitted_case
    book = openpyxl.load_workbook(fitted_book.path)
    sheet, ref = next(book.defined_names["GrossMargin"].destinations)
    assert sheet == excel.ASSUMPTIONS and book[sheet][ref].value == 0.6
    book[sheet][ref] = 0.5
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    got = Recalculated(edited).figures()
    want = python_figures(case.inputs, gross_margin=0.5)
    assert got["NPV"] == pytest.approx(want["NPV"], rel=1e-6)
    assert got["NPV"] != pytest.approx(case.npv, rel=1e-3)


def test_no_customer_identifiers_in_the_workbook(fitted_case, fitted_book):
    world, _ = fitted_case
    ids = set(world.customers["customer_id"].astype(str))
    assert all(i.startswith("ZQX") for i in ids)
    with zipfile.ZipFile(fitted_book.path) as z:
        text = "".join(z.read(name).decode("utf-8", "replace") for name in z.namelist())
    assert "ZQX" not in text
    cells = {str(c.value) for ws in fitted_book.book for row in ws.iter_rows() for c in row if c.value is not None}
    assert not cells & ids


# --------------------------------------------------------------------------- hand-built cases


def hand_built_case(horizon: int, ramp: list[float], lag_years: int, one_off_cost: float, yearly_cost: float,
                    hazard_ratio=(1.8, 1.0, 0.7)) -> bc.BusinessCase:
    """A BusinessCase from stated inputs (two moves, each priced on its movers as they are and as the group
    they move to; survival not geometric), priced with business_case."""
    t = np.arange(1, horizon + 1)
    base = 0.85 ** t * (1 - 0.02 * t)  # hazard rising with time: a move a year later is not the same move
    rows = pd.DataFrame({"customers": [1_000.0, 1_000.0, 2_000.0, 2_000.0],
                         "as_group": ["detractor", "passive", "passive", "promoter"],
                         "revenue": [750.0, 900.0, 1_000.0, 1_080.0], "cost_to_serve": [62.0, 45.0, 40.0, 36.0],
                         "referrals": [0.01, 0.02, 0.02, 0.05],
                         "survival": [base ** hazard_ratio[0], base ** hazard_ratio[1], base ** hazard_ratio[1],
                                      base ** hazard_ratio[2]]},
                        index=["detractor", "detractor as passive", "passive", "passive as promoter"])
    inputs = {"movers": rows, "reference": "passive",
              "mover_moves": {("detractor", "detractor as passive"): 0.2, ("passive", "passive as promoter"): 0.1},
              "ramp": ramp, "referral_value": list(900.0 * (horizon - t + 1) / horizon), "gross_margin": 0.6,
              "discount_rate": 0.08, "horizon_years": horizon, "one_off_cost": one_off_cost,
              "yearly_cost": yearly_cost, "lag_years": lag_years, "currency": "EUR"}
    f = python_figures(inputs)
    draws = np.linspace(-1, 1, 11) * 1_000 + f["NPV"]
    return bc.BusinessCase(clv=pd.DataFrame(), cash_flows=f["cash_flows"], npv=f["NPV"], roi=f["ROI"],
                           payback_months=f["Payback"], irr=f["IRR"], uncertainty=bc.summarise_npv(draws),
                           npv_draws=draws, moved={}, inputs=inputs)


def test_lag_and_a_two_year_ramp(tmp_path):
    case = hand_built_case(horizon=5, ramp=[0.5, 1.0], lag_years=1, one_off_cost=150_000, yearly_cost=10_000)
    flows = case.cash_flows
    assert flows.loc[1, "benefit"] == 0 and flows.loc[2, "benefit"] > 0  # the lag holds year 1 back
    book = Recalculated(excel.write_workbook(case, tmp_path / "lagged.xlsx"))
    assert book.path.name == "lagged.xlsx"
    want = {"NPV": case.npv, "ROI": case.roi, "Payback": case.payback_months, "IRR": case.irr}
    assert_matches(book.figures(), want, flows)
    # the lag and the ramp are live too: no lag, everything moved in year 1
    now = python_figures(case.inputs, lag_years=0, ramp=[1.0])
    ramp_cell = book.assumption(excel.ASSUMPTIONS, 1, 2)  # row of year 1 in the "By year" table
    got = book.figures({book.named("LagYears"): 0, ramp_cell: 1.0})
    assert_matches(got, now, now["cash_flows"])
    # nothing to pay back: no one-off cost and a positive first year
    free = python_figures(case.inputs, lag_years=0, ramp=[1.0], one_off_cost=0.0)
    assert free["Payback"] == 0.0
    got = book.figures({book.named("LagYears"): 0, ramp_cell: 1.0, book.named("OneOffCost"): 0.0})
    assert_matches(got, free, free["cash_flows"])


def test_a_case_that_never_pays_back(tmp_path):
    # detractors who churn less than promoters and a costly programme: never back within 8 years
    case = hand_built_case(horizon=8, ramp=[1.0], lag_years=0, one_off_cost=5_000_000, yearly_cost=200_000,
                           hazard_ratio=(1.0, 1.0, 1.0))
    assert case.payback_months is None and case.npv < 0
    book = Recalculated(excel.write_workbook(case, tmp_path))
    got = book.figures()
    want = {"NPV": case.npv, "ROI": case.roi, "Payback": None, "IRR": case.irr}
    assert_matches(got, want, case.cash_flows)
    cf = book.book[excel.CASH_FLOWS]
    assert cf.cell(book.row["Payback"], 4).value == excel.NOT_PAID_BACK


def test_inputs_are_checked():
    case = hand_built_case(horizon=2, ramp=[1.0], lag_years=0, one_off_cost=0.0, yearly_cost=0.0)
    case.inputs.pop("mover_moves")
    with pytest.raises(InputError, match="mover_moves"):
        excel.write_workbook(case, "unused.xlsx")
