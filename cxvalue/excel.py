"""The business case as an Excel workbook for finance: live formulas over the assumptions.

:func:`write_workbook` writes ``business_case.xlsx`` from a :class:`~cxvalue.business_case.BusinessCase`:

* **Assumptions**: every input of the cash flows (money and programme parameters, each
  move's share, the ramp, the value of a referral by year, and per set of movers, as they are
  and as the group they move to, today's customers, revenue, cost to serve and referrals per
  customer-year and their survival from today), with unit and meaning, and a note on how to
  read the workbook.
* **Survival**: each set of movers' survival ``S_r(t)`` from today and customer-years
  ``A_r(t) = (S_r(t-1) + S_r(t)) / 2`` (:func:`cxvalue.business_case.customer_years`).
* **Cohorts**: customers moved per move and programme year, and each cohort's benefit per
  lever and year: a cohort moved at the start of programme year ``k`` behaves as the new group
  from ``e = k - 1 + lag`` years from today on, for those still customers then
  (``A'(t) = S_g(e) A_h(t) / S_h(e)``).
* **Cash flows**: levers, benefit, programme cost, net, discounting, cumulative net; NPV,
  ROI, payback (months) and IRR as formulas beside the values cxvalue reported; the
  simulation summary (P10/P50/P90, chance NPV > 0) as static values.

Every derived number is a formula replicating
:func:`cxvalue.business_case.scenario_cash_flows`, :func:`~cxvalue.business_case.npv`,
:func:`~cxvalue.business_case.roi`, :func:`~cxvalue.business_case.payback_months` and
:func:`~cxvalue.business_case.irr`, so finance can change an assumption and see the NPV
move. Only group-level inputs are written: no customer identifiers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName

from cxvalue.exceptions import InputError

if TYPE_CHECKING:  # imported where used: a notebook kernel importing this module skips scipy
    from cxvalue.business_case import BusinessCase

__all__ = ["write_workbook", "FILENAME"]

#: The workbook's file name when :func:`write_workbook` is given a folder.
FILENAME = "business_case.xlsx"

#: What payback and IRR show when Python reports ``None`` (and the formulas agree).
NOT_PAID_BACK = "not within horizon"
NO_IRR = "no IRR"
NOT_AVAILABLE = "n/a"

LEVER_LABELS = {"retention": "Retention (customers kept longer)", "spend": "Spend (higher revenue)",
                "cost_to_serve": "Cost to serve (lower)", "referrals": "Referrals (new customers referred)",
                "failure_demand": "Less failure demand (contacts removed)"}

_REQUIRED = ("movers", "mover_moves", "reference", "ramp", "referral_value", "gross_margin", "discount_rate",
             "horizon_years", "one_off_cost", "yearly_cost", "lag_years")
_MOVER_COLUMNS = ("customers", "as_group", "revenue", "cost_to_serve", "survival")

_TITLE = Font(bold=True, size=14)
_BOLD = Font(bold=True)
_NOTE = Font(italic=True, color="555555")
_INPUT_FONT = Font(color="0000FF")  # finance convention: blue = typed-in input, black = formula
_INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")
_STATIC_FILL = PatternFill("solid", fgColor="EDEDED")
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_TOTAL_BORDER = Border(top=Side(style="thin"))
_WRAP = Alignment(wrap_text=True, vertical="top")


def write_workbook(case: BusinessCase, path: str | Path) -> Path:
    """Write the business case as ``business_case.xlsx`` with live formulas; return the file's path.

    Parameters
    ----------
    case : an evaluated :class:`~cxvalue.business_case.BusinessCase` whose ``inputs`` hold
        everything the cash flows were priced from (as :func:`~cxvalue.business_case.evaluate`
        fills them): ``movers`` (one row per set of movers as they are or as the group they move
        to, :func:`cxvalue.movers.mover_rows`: ``customers``, ``as_group``, ``revenue``,
        ``cost_to_serve``, optionally ``referrals``, money per customer-year, and ``survival``
        from today, years 1..H), ``mover_moves`` (``{(row, row as the new group): share}``),
        ``reference``, ``ramp``, ``referral_value`` (a number or one per year),
        ``gross_margin``, ``discount_rate``, ``horizon_years``, ``one_off_cost``,
        ``yearly_cost``, ``lag_years`` and optionally ``currency``.
    path : a folder (the workbook is written as ``FILENAME`` inside it, the folder created if
        needed) or a file name ending in ``.xlsx``.

    Notes
    -----
    The layout (number of years, groups, moves) is fixed by the run; every number derived
    from the assumptions is an Excel formula. A missing estimate (NaN) is written as
    ``"n/a"``, so formulas depending on it show an error, as the Python cash flows show NaN.
    """
    inputs = _checked_inputs(case)
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        path.mkdir(parents=True, exist_ok=True)
        path = path / FILENAME
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    formats = _formats(str(inputs.get("currency") or ""))
    refs = _assumptions_sheet(wb, inputs, formats)
    _survival_sheet(wb, inputs, refs, formats)
    _cohorts_sheet(wb, inputs, refs, formats)
    _cash_flows_sheet(wb, case, inputs, refs, formats)
    wb.active = 0
    wb.save(path)
    return path


# --------------------------------------------------------------------------- inputs and formats


def _checked_inputs(case: BusinessCase) -> dict[str, Any]:
    """``case.inputs`` with the ramp and the referral value spread over every year; an
    InputError names what is missing."""
    from cxvalue.business_case import _per_year

    inputs = dict(case.inputs or {})
    missing = [k for k in _REQUIRED if k not in inputs]
    if missing:
        raise InputError(f"BusinessCase.inputs lacks {', '.join(missing)}: the workbook needs every input the "
                         "cash flows were priced from; build the case with business_case.evaluate")
    movers = inputs["movers"].copy()
    absent = [c for c in _MOVER_COLUMNS if c not in movers.columns]
    if absent:
        raise InputError(f"BusinessCase.inputs['movers'] lacks column(s) {', '.join(absent)}; it needs "
                         f"{', '.join(_MOVER_COLUMNS)} (and optionally referrals) per row")
    if "referrals" not in movers.columns:
        movers["referrals"] = 0.0
    H = int(inputs["horizon_years"])
    if H < 1:
        raise InputError(f"horizon_years is {H}; the workbook needs at least one year")
    short = [str(r) for r, s_r in movers["survival"].items() if len(np.ravel(s_r)) < H]
    if short:
        raise InputError(f"BusinessCase.inputs['movers'] survival of {', '.join(short)} has fewer than the "
                         f"horizon's {H} years")
    unknown = {r for move in inputs["mover_moves"] for r in move} - set(movers.index)
    if unknown:
        raise InputError(f"mover_moves name row(s) {sorted(unknown)} that are not in BusinessCase.inputs['movers']")
    ramp = list(inputs["ramp"])
    if not ramp:
        raise InputError("BusinessCase.inputs['ramp'] is empty; give the cumulative share moved by the start of "
                         "year 1, 2, ...")
    ref_value = np.ravel(np.asarray(inputs["referral_value"], float))
    if ref_value.size != 1 and ref_value.size < H:
        raise InputError(f"BusinessCase.inputs['referral_value'] has {ref_value.size} years; the horizon needs {H}")
    inputs.update(movers=movers, horizon_years=H,
                  referral_by_year=[float(x) for x in _per_year(ref_value if ref_value.size > 1 else ref_value[0], H)],
                  ramp_by_year=[float(ramp[min(k, len(ramp) - 1)]) for k in range(H)])
    return inputs


def _formats(currency: str) -> dict[str, str]:
    """Excel number formats; money carries the currency label."""
    label = currency.replace('"', "").strip()
    suffix = f' "{label}"' if label else ""
    return {"money": f"#,##0{suffix}", "money2": f"#,##0.00{suffix}", "share": "0.0%", "ratio": "0.000",
            "survival": "0.0000", "rate": "0.0000", "customers": "#,##0", "years": "0", "months": "0.0",
            "factor": "0.0000", "flag": "0", "currency": label}


def _value(x: Any) -> Any:
    """A number for a cell; NaN (an effect that could not be estimated) becomes ``"n/a"``."""
    if x is None:
        return NOT_AVAILABLE
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    return NOT_AVAILABLE if math.isnan(f) else f


def _col(index: int) -> str:
    return get_column_letter(index)


def _abs(sheet: str, col: int, row: int) -> str:
    """An absolute reference to a cell of another sheet, quoted when the name has a space."""
    name = f"'{sheet}'" if " " in sheet else sheet
    return f"{name}!${_col(col)}${row}"


def _put(ws, row: int, col: int, value: Any, fmt: str | None = None, font: Font | None = None,
         fill: PatternFill | None = None, alignment: Alignment | None = None):
    cell = ws.cell(row=row, column=col, value=value)
    if fmt:
        cell.number_format = fmt
    if font:
        cell.font = font
    if fill:
        cell.fill = fill
    if alignment:
        cell.alignment = alignment
    return cell


def _input(ws, row: int, col: int, value: Any, fmt: str):
    """A typed-in assumption: blue on yellow, so it stands out from the formulas."""
    return _put(ws, row, col, _value(value), fmt, _INPUT_FONT, _INPUT_FILL)


def _header(ws, row: int, labels: list, start: int = 1, wrap: bool = False):
    for i, label in enumerate(labels):
        _put(ws, row, start + i, label, font=_BOLD, fill=_HEADER_FILL, alignment=_WRAP if wrap else None)


def _widths(ws, widths: dict[str, float]):
    for letter, width in widths.items():
        ws.column_dimensions[letter].width = width


def _name(wb: Workbook, name: str, sheet: str, col: int, row: int) -> str:
    wb.defined_names[name] = DefinedName(name, attr_text=_abs(sheet, col, row))
    return name


# --------------------------------------------------------------------------- sheets

ASSUMPTIONS, SURVIVAL, COHORTS, CASH_FLOWS = "Assumptions", "Survival", "Cohorts", "Cash flows"


#: How to read the workbook when customers never cancel (``inputs["business_model"]``).
NON_CONTRACTUAL_NOTE = (
    "These customers never cancel, they stop buying: a mover's revenue is at today's expected rate of buying "
    "(spend per purchase x purchases a year, from cxvalue's purchase model), and their 'survival' is the share of "
    "that buying still going on after each year. Retention is then buying for longer, spend buying more often.")


def _how_to_read(currency: str, H: int) -> list[str]:
    amounts = f"Amounts are in {currency}" if currency else "Amounts are in the data's currency"
    return [
        "This workbook recomputes the cxvalue business case with live Excel formulas.",
        "Yellow cells with blue figures on this sheet are the assumptions: change one (the gross margin, a share "
        "moved, what the movers spend, ...) and every other sheet, the NPV included, updates. All other numbers "
        "are formulas, except those marked static.",
        "Each move is priced on the customers who would make it: today's customers of the group they leave, at "
        "their own predicted revenue, cost to serve, referrals and survival from today, as they are and as the "
        "group they move to (both from cxvalue's fitted models).",
        "Survival: each set of movers' survival from today S_r(t) and customer-years A_r(t) = (S_r(t-1) + S_r(t)) / 2.",
        "Cohorts: the share of a move made in programme year k moves at the start of that year and behaves as the "
        "new group from e = k - 1 + lag years from today on; only those still customers then move, so the cohort "
        "counts S_g(e) x A_h(t) / S_h(e) customer-years in year t > e instead of A_g(t).",
        "Cash flows: levers, benefit, programme cost and net by year; NPV, ROI, payback and IRR as formulas, "
        "beside the values cxvalue reported (static, for audit) and the simulation summary (static: it comes "
        "from cxvalue's draws of the fitted effects and is not recomputed here).",
        f"{amounts}; yearly flows fall at each year's end, the one-off cost at time 0. Groups of customers only: "
        "no customer-level data.",
        f"The layout is fixed by the run: {H} years and the moves. The horizon can be lowered here, not raised "
        "(the survival stops at the last year).",
    ]


def _assumptions_sheet(wb: Workbook, inputs: dict[str, Any], f: dict[str, str]) -> dict[str, Any]:
    """Write the Assumptions sheet; return the references the formulas on other sheets use."""
    ws = wb.active
    ws.title = ASSUMPTIONS
    H = inputs["horizon_years"]
    movers = inputs["movers"]
    cur = f["currency"] or "currency"
    _put(ws, 1, 1, "Business case: assumptions", font=_TITLE)
    _put(ws, 2, 1, "How to read this workbook", font=_BOLD)
    row = 3
    lines = _how_to_read(f["currency"], H)
    if inputs.get("business_model") == "non_contractual":
        lines.insert(3, NON_CONTRACTUAL_NOTE)
    for line in lines:
        _put(ws, row, 1, line)
        row += 1

    row += 1
    _put(ws, row, 1, "Money and programme", font=_BOLD)
    row += 1
    _header(ws, row, ["Assumption", "Value", "Unit", "Meaning"])
    row += 1
    refs: dict[str, Any] = {}
    scalars = [
        ("gross_margin", "GrossMargin", "Gross margin", inputs["gross_margin"], f["share"], "share of revenue",
         "Share of revenue kept as margin."),
        ("discount_rate", "DiscountRate", "Discount rate", inputs["discount_rate"], f["share"], "per year",
         "Yearly rate the cash flows are discounted at (NPV, ROI)."),
        ("horizon_years", "Horizon", "Horizon", H, f["years"], "years",
         f"Years of cash flows counted; at most {H} (the layout's years)."),
        ("one_off_cost", "OneOffCost", "One-off programme cost", inputs["one_off_cost"], f["money"], cur,
         "Spent once, at time 0."),
        ("yearly_cost", "YearlyCost", "Yearly programme cost", inputs["yearly_cost"], f["money"], f"{cur} per year",
         "Running cost of the programme, every year of the horizon."),
        ("lag_years", "LagYears", "Lag", inputs["lag_years"], f["years"], "whole years",
         "Years between a customer's move and its first benefit (those who leave meanwhile never move)."),
    ]
    fd = inputs.get("failure_demand")
    if fd:
        reasons = ", ".join(str(r) for r in fd.get("reasons", []))
        scalars.append(("failure_demand", "FailureDemandValue", "Failure demand removed: value once in place",
                        fd["value_per_year"], f["money"], f"{cur} per year",
                        f"Removing {fd.get('share_removed', 0):.0%} of the contacts about {reasons}: cost saved plus a "
                        "year of margin per customer kept (from the cxvalue run). It follows the ramp and the lag."))
    for key, name, label, value, fmt, unit, meaning in scalars:
        _put(ws, row, 1, label)
        _input(ws, row, 2, value, fmt)
        _put(ws, row, 3, unit)
        _put(ws, row, 4, meaning)
        refs[key] = _name(wb, name, ASSUMPTIONS, 2, row)
        row += 1
    for label, value, meaning in (("Currency", f["currency"] or NOT_AVAILABLE, "Currency of every amount (not converted)."),
                                  ("Reference group", str(inputs["reference"]),
                                   "Group the effects are measured against.")):
        _put(ws, row, 1, label)
        _put(ws, row, 2, value, font=_BOLD)
        _put(ws, row, 3, "text")
        _put(ws, row, 4, meaning)
        row += 1

    row += 1
    _put(ws, row, 1, "Moves (the scenario)", font=_BOLD)
    row += 1
    _header(ws, row, ["Move", "Share moved", "Unit", "Meaning"])
    row += 1
    refs["moves"] = []
    for (r_from, r_to), share in inputs["mover_moves"].items():
        g, h = str(movers.loc[r_from, "as_group"]), str(movers.loc[r_to, "as_group"])
        _put(ws, row, 1, f"{g} → {h}")
        _input(ws, row, 2, share, f["share"])
        _put(ws, row, 3, f"share of today's {g}")
        _put(ws, row, 4, f"Share of today's {g} customers the programme moves to {h} (made over the ramp below).")
        refs["moves"].append({"from": r_from, "to": r_to, "label": f"{g} → {h}", "share": _abs(ASSUMPTIONS, 2, row)})
        row += 1

    row += 1
    _put(ws, row, 1, "Movers: today's customers who would move, as they are and as the group they move to", font=_BOLD)
    row += 1
    columns = [("customers", "Customers in today's base", f["customers"], "customers",
                "Today's customers of the group they would leave."),
               ("revenue", "Revenue", f["money2"], f"{cur} per customer-year",
                "Mean predicted revenue of these customers, priced as the group named."),
               ("cost_to_serve", "Cost to serve", f["money2"], f"{cur} per customer-year",
                "Mean predicted cost to serve, priced as the group named."),
               ("referrals", "Referrals", f["rate"], "referred customers per customer-year",
                "New customers they would refer per customer-year, priced as the group named.")]
    _header(ws, row, ["Movers", "Priced as"] + [c[1] for c in columns], wrap=True)
    _put(ws, row + 1, 1, "Unit", font=_NOTE)
    _put(ws, row + 2, 1, "Meaning", font=_NOTE)
    _put(ws, row + 2, 2, "Group whose behaviour prices the row (the fitted models).", font=_NOTE, alignment=_WRAP)
    for i, (_, _, _, unit, meaning) in enumerate(columns):
        _put(ws, row + 1, 3 + i, unit, font=_NOTE, alignment=_WRAP)
        _put(ws, row + 2, 3 + i, meaning, font=_NOTE, alignment=_WRAP)
    row += 3
    refs["movers"] = {}
    for r, values in movers.iterrows():
        _put(ws, row, 1, str(r))
        _put(ws, row, 2, str(values["as_group"]))
        refs["movers"][r] = {}
        for i, (key, _, fmt, _, _) in enumerate(columns):
            _input(ws, row, 3 + i, values[key], fmt)
            refs["movers"][r][key] = _abs(ASSUMPTIONS, 3 + i, row)
        row += 1

    row += 1
    _put(ws, row, 1, "By year", font=_BOLD)
    row += 1
    _header(ws, row, ["Year", "Ramp", "Referral value"], wrap=True)
    _put(ws, row + 1, 1, "Unit", font=_NOTE)
    _put(ws, row + 1, 2, "cumulative share of each move", font=_NOTE, alignment=_WRAP)
    _put(ws, row + 1, 3, f"{cur} per referred customer", font=_NOTE, alignment=_WRAP)
    _put(ws, row + 2, 1, "Meaning", font=_NOTE)
    _put(ws, row + 2, 2, "Share of each move made by the start of year t.", font=_NOTE, alignment=_WRAP)
    _put(ws, row + 2, 3, "Value of a customer referred in year t: the base's mean lifetime value over the years "
                         "left of the horizon (from the run; not recomputed here).", font=_NOTE, alignment=_WRAP)
    row += 3
    refs["ramp"], refs["referral_value"] = [], []
    for t in range(1, H + 1):
        _put(ws, row, 1, t, f["years"])
        _input(ws, row, 2, inputs["ramp_by_year"][t - 1], f["share"])
        _input(ws, row, 3, inputs["referral_by_year"][t - 1], f["money"])
        refs["ramp"].append(_abs(ASSUMPTIONS, 2, row))
        refs["referral_value"].append(_abs(ASSUMPTIONS, 3, row))
        row += 1

    row += 1
    non_contractual = inputs.get("business_model") == "non_contractual"
    _put(ws, row, 1, "Survival of the movers from today, S_r(t): share of today's buying still going on at the end of "
                     "year t" if non_contractual else
         "Survival of the movers from today, S_r(t): share still a customer at the end of year t", font=_BOLD)
    row += 1
    _header(ws, row, ["Movers", "Priced as"] + [f"Year {t}" for t in range(1, H + 1)])
    _put(ws, row + 1, 1, "Meaning", font=_NOTE)
    _put(ws, row + 1, 3, "From cxvalue's purchase model (BG/NBD): each mover's expected rate of buying at the end of "
                         "the year as the group named, given their own purchases since the survey, as a share of "
                         "today's; averaged over the movers, weighted by what they spend." if non_contractual else
                         "From cxvalue's churn model: each mover's hazard as the group named, given the time they "
                         "have already been a customer since their survey; averaged over the movers. The data's "
                         "follow-up covers the first years; later years carry its last yearly hazard on.",
         font=_NOTE)
    row += 2
    refs["survival"] = {}
    for r, values in movers.iterrows():
        _put(ws, row, 1, str(r))
        _put(ws, row, 2, str(values["as_group"]))
        surv = np.ravel(values["survival"])
        refs["survival"][r] = [_abs(ASSUMPTIONS, 2 + t, row) for t in range(1, H + 1)]
        for t in range(1, H + 1):
            _input(ws, row, 2 + t, surv[t - 1], f["survival"])
        row += 1

    _widths(ws, {"A": 30, "B": 18, "C": 22, "D": 22, "E": 22, "F": 22})
    ws.freeze_panes = "A2"
    return refs


#: Survival sheet: year t in column SURV_YEAR0 + t (t = 0 .. H).
SURV_YEAR0 = 3


def _survival_sheet(wb: Workbook, inputs: dict[str, Any], refs: dict[str, Any], f: dict[str, str]):
    ws = wb.create_sheet(SURVIVAL)
    H = inputs["horizon_years"]
    movers = inputs["movers"]
    _put(ws, 1, 1, "Survival and customer-years of the movers, from today", font=_TITLE)
    _put(ws, 2, 1, "S_r(t): share of the movers still customers t years from today, priced as the group named "
                   "(Assumptions). A_r(t) = (S_r(t-1) + S_r(t)) / 2: expected customer-years in year t.", font=_NOTE)
    _header(ws, 4, ["Movers", "Priced as"] + [f"Year {t}" for t in range(0, H + 1)])
    _put(ws, 5, 1, "Survival S_r(t)", font=_BOLD)
    row = 6
    refs["survival_row"], refs["years_row"] = {}, {}
    for r, values in movers.iterrows():
        _put(ws, row, 1, str(r))
        _put(ws, row, 2, str(values["as_group"]))
        _put(ws, row, SURV_YEAR0, 1, f["survival"])
        for t in range(1, H + 1):
            _put(ws, row, SURV_YEAR0 + t, f"={refs['survival'][r][t - 1]}", f["survival"])
        refs["survival_row"][r] = row
        row += 1
    row += 1
    _put(ws, row, 1, "Customer-years A_r(t)", font=_BOLD)
    row += 1
    for r in movers.index:
        s = refs["survival_row"][r]
        _put(ws, row, 1, str(r))
        for t in range(1, H + 1):
            prev, cur = _col(SURV_YEAR0 + t - 1), _col(SURV_YEAR0 + t)
            _put(ws, row, SURV_YEAR0 + t, f"=({prev}{s}+{cur}{s})/2", f["survival"])
        refs["years_row"][r] = row
        row += 1
    _widths(ws, {"A": 24, "B": 14, **{_col(SURV_YEAR0 + t): 11 for t in range(0, H + 1)}})
    ws.freeze_panes = ws.cell(row=5, column=SURV_YEAR0)


#: Cohorts sheet: year t in column COH_YEAR0 + t (t = 1 .. H).
COH_YEAR0 = 6


def _cohorts_sheet(wb: Workbook, inputs: dict[str, Any], refs: dict[str, Any], f: dict[str, str]):
    from cxvalue.business_case import MOVE_LEVERS

    ws = wb.create_sheet(COHORTS)
    H = inputs["horizon_years"]
    moves = refs["moves"]
    s0, sH = _col(SURV_YEAR0), _col(SURV_YEAR0 + H)
    _put(ws, 1, 1, "Cohorts: who moves when, and what each cohort adds", font=_TITLE)
    _put(ws, 2, 1, "The share of a move made in programme year k moves at the start of that year; it behaves as the "
                   "new group from e = k - 1 + lag years from today on. Only the customers still there then move: in "
                   "year t > e the cohort counts S_g(e) / S_h(e) x A_h(t) customer-years as the new group instead of "
                   "A_g(t) as they were.", font=_NOTE)
    _header(ws, 4, ["Year →", None, None, None, None, None] + list(range(1, H + 1)))

    row = 6
    _put(ws, row, 1, "Moves", font=_BOLD)
    row += 1
    _header(ws, row, ["Move", "Movers", "As", "Share moved", "Customers moved in total",
                      "Margin per customer-year of the movers as they are"], wrap=True)
    row += 1
    for m in moves:
        src = refs["movers"][m["from"]]
        _put(ws, row, 1, m["label"])
        _put(ws, row, 2, str(m["from"]))
        _put(ws, row, 3, str(m["to"]))
        _put(ws, row, 4, f"={m['share']}", f["share"])
        _put(ws, row, 5, f"=IF(D{row}>0,{src['customers']}*D{row},0)", f["customers"])
        _put(ws, row, 6, f"={refs['gross_margin']}*{src['revenue']}-{src['cost_to_serve']}", f["money2"])
        m["row"] = row
        row += 1

    row += 1
    _put(ws, row, 1, "Customers moved at the start of each programme year k: customers moved in total × the ramp's "
                     "increase in year k", font=_BOLD)
    row += 1
    for m in moves:
        _put(ws, row, 1, m["label"])
        for k in range(1, H + 1):
            increase = f"{refs['ramp'][k - 1]}" + (f"-{refs['ramp'][k - 2]}" if k > 1 else "")
            _put(ws, row, COH_YEAR0 + k, f"=$E${m['row']}*({increase})", f["customers"])
        m["cohort_row"] = row
        row += 1

    row += 1
    _put(ws, row, 1, f"Benefit by cohort and year ({f['currency'] or 'currency'}): customers moved × value per "
                     "customer-year × customer-years, from year e + 1 on", font=_BOLD)
    row += 1
    _header(ws, row, ["Lever", "Move", "Programme year k", "Customers moved",
                      "e: years from today to the move's effect", "S_g(e) / S_h(e)"], wrap=True)
    row += 1
    gm = refs["gross_margin"]
    refs["lever_total_row"] = {}
    for lever in MOVE_LEVERS:
        top = row
        for m in moves:
            src, dst = refs["movers"][m["from"]], refs["movers"][m["to"]]
            s_g, s_h = refs["survival_row"][m["from"]], refs["survival_row"][m["to"]]
            for k in range(1, H + 1):
                _put(ws, row, 1, LEVER_LABELS[lever])
                _put(ws, row, 2, m["label"])
                _put(ws, row, 3, k, f["years"])
                _put(ws, row, 4, f"={_col(COH_YEAR0 + k)}${m['cohort_row']}", f["customers"])
                _put(ws, row, 5, f"=C{row}-1+{refs['lag_years']}", f["years"])
                at_g = f"INDEX({SURVIVAL}!${s0}${s_g}:${sH}${s_g},MIN(E{row},{H})+1)"
                at_h = f"INDEX({SURVIVAL}!${s0}${s_h}:${sH}${s_h},MIN(E{row},{H})+1)"
                _put(ws, row, 6, f"=IF({at_h}>0,{at_g}/{at_h},0)", f["factor"])
                for t in range(1, H + 1):
                    a_g = _abs(SURVIVAL, SURV_YEAR0 + t, refs["years_row"][m["from"]])
                    a_h = _abs(SURVIVAL, SURV_YEAR0 + t, refs["years_row"][m["to"]])
                    moved = f"$F{row}*{a_h}"
                    per_customer = {
                        "retention": f"$F${m['row']}*({moved}-{a_g})",
                        "spend": f"{gm}*({dst['revenue']}-{src['revenue']})*{moved}",
                        "cost_to_serve": f"({src['cost_to_serve']}-{dst['cost_to_serve']})*{moved}",
                        "referrals": f"{refs['referral_value'][t - 1]}*({dst['referrals']}*{moved}"
                                     f"-{src['referrals']}*{a_g})"}[lever]
                    _put(ws, row, COH_YEAR0 + t, f"=IF({t}>$E{row},$D{row}*{per_customer},0)", f["money"])
                row += 1
        _put(ws, row, 1, f"Total: {LEVER_LABELS[lever]}", font=_BOLD)
        for t in range(1, H + 1):
            c = _col(COH_YEAR0 + t)
            cell = _put(ws, row, COH_YEAR0 + t, f"=SUM({c}{top}:{c}{row - 1})", f["money"], font=_BOLD)
            cell.border = _TOTAL_BORDER
        refs["lever_total_row"][lever] = row
        row += 2
    _widths(ws, {"A": 34, "B": 26, "C": 12, "D": 14, "E": 16, "F": 14,
                 **{_col(COH_YEAR0 + t): 13 for t in range(1, H + 1)}})
    ws.freeze_panes = ws.cell(row=5, column=COH_YEAR0 + 1)


#: Cash flows sheet: year t in column CF_YEAR0 + t (t = 0 .. H).
CF_YEAR0 = 3


def _cash_flows_sheet(wb: Workbook, case: BusinessCase, inputs: dict[str, Any], refs: dict[str, Any],
                      f: dict[str, str]):
    from cxvalue.business_case import MOVE_LEVERS

    ws = wb.create_sheet(CASH_FLOWS)
    H = inputs["horizon_years"]
    cur = f["currency"] or "currency"
    y0, y1, yH = _col(CF_YEAR0), _col(CF_YEAR0 + 1), _col(CF_YEAR0 + H)
    _put(ws, 1, 1, "Cash flows, NPV, ROI, payback and IRR", font=_TITLE)
    _put(ws, 2, 1, "Live formulas over the Assumptions sheet. Year 0 holds the one-off cost; yearly flows fall at "
                   "each year's end. Grey cells are static values from the cxvalue run, for audit.", font=_NOTE)
    _header(ws, 4, ["", "Unit"] + [f"Year {t}" for t in range(0, H + 1)])

    rows: dict[str, int] = {}
    row = 5

    def line(key: str, label: str, unit: str, year0, year_t, fmt: str, font: Font | None = None):
        nonlocal row
        rows[key] = row
        _put(ws, row, 1, label, font=font)
        _put(ws, row, 2, unit, font=_NOTE)
        if year0 is not None:
            _put(ws, row, CF_YEAR0, year0, fmt, font=font)
        for t in range(1, H + 1):
            _put(ws, row, CF_YEAR0 + t, year_t(t, _col(CF_YEAR0 + t), _col(CF_YEAR0 + t - 1)), fmt, font=font)
        row += 1

    line("counted", "Counted in the horizon", "1 = yes", None,
         lambda t, c, p: f"=IF({t}<={refs['horizon_years']},1,0)", f["flag"])
    for lever in MOVE_LEVERS:
        total = refs["lever_total_row"][lever]
        line(lever, LEVER_LABELS[lever], cur, None,
             lambda t, c, p, total=total: f"={_abs(COHORTS, COH_YEAR0 + t, total)}*{c}{rows['counted']}", f["money"])
    if "failure_demand" in refs:  # the part in place in year t: the ramp at programme year t - lag
        ramp = f"{refs['ramp'][0]}:{refs['ramp'][-1].split('!')[1]}"
        lag = refs["lag_years"]
        line("failure_demand", LEVER_LABELS["failure_demand"], cur, None,
             lambda t, c, p: (f"=IF({t}-{lag}>=1,{refs['failure_demand']}*INDEX({ramp},{t}-{lag}),0)"
                              f"*{c}{rows['counted']}"), f["money"])
    lever_rows = [rows[lever] for lever in (*MOVE_LEVERS, "failure_demand") if lever in rows]
    line("benefit", "Benefit", cur, 0, lambda t, c, p: f"=SUM({c}{lever_rows[0]}:{c}{lever_rows[-1]})", f["money"],
         _BOLD)
    line("cost", "Programme cost", cur, f"={refs['one_off_cost']}",
         lambda t, c, p: f"={refs['yearly_cost']}*{c}{rows['counted']}", f["money"])
    line("net", "Net cash flow", cur, f"={y0}{rows['benefit']}-{y0}{rows['cost']}",
         lambda t, c, p: f"={c}{rows['benefit']}-{c}{rows['cost']}", f["money"], _BOLD)
    reported_net = [float(x) for x in case.cash_flows.loc[1:, "net"].to_numpy()[:H]]  # year 0: the one-off
    line("net_reported", "Net cash flow, as reported by cxvalue (static)", cur, -float(inputs["one_off_cost"]),
         lambda t, c, p: reported_net[t - 1], f["money"])
    for col in range(CF_YEAR0, CF_YEAR0 + H + 1):
        ws.cell(row=rows["net_reported"], column=col).fill = _STATIC_FILL
    line("discount", "Discount factor", "1 / (1 + rate)^t", 1,
         lambda t, c, p: f"=1/(1+{refs['discount_rate']})^{t}", f["factor"])
    line("discounted", "Discounted net", cur, f"={y0}{rows['net']}*{y0}{rows['discount']}",
         lambda t, c, p: f"={c}{rows['net']}*{c}{rows['discount']}", f["money"])
    line("cumulative", "Cumulative net (undiscounted)", cur, f"={y0}{rows['net']}",
         lambda t, c, p: f"={p}{rows['cumulative']}+{c}{rows['net']}", f["money"])
    cum = rows["cumulative"]
    line("pays_back", "Payback: cumulative net turns non-negative in this year", "1 = yes", None,
         lambda t, c, p: f"=IF(AND({p}{cum}<0,{c}{rows['net']}>0,{p}{cum}+{c}{rows['net']}>=0),1,0)", f["flag"])
    line("payback_months", "Payback: months, if in this year (year's net spread evenly)", "months", None,
         lambda t, c, p: f'=IF({c}{rows["pays_back"]}=1,12*({t}-1)+12*(-{p}{cum}/{c}{rows["net"]}),"")', f["months"])

    net = f"{y0}{rows['net']}:{yH}{rows['net']}"
    row += 1
    _put(ws, row, 1, "Headline", font=_BOLD)
    row += 1
    _header(ws, row, ["Measure", "Unit", "Live (formula)", "As reported by cxvalue (static)", "Difference",
                      "How it is computed"], wrap=True)
    row += 1
    pv_benefit, pv_cost = row, row + 1
    d = rows["discount"]
    u = case.uncertainty or {}
    headline = [
        ("PV of benefits", cur, f"=SUMPRODUCT({y1}{rows['benefit']}:{yH}{rows['benefit']},{y1}{d}:{yH}{d})", None,
         f["money"], "Sum of benefit × discount factor, years 1..H."),
        ("PV of costs", cur, f"={refs['one_off_cost']}+SUMPRODUCT({y1}{rows['cost']}:{yH}{rows['cost']},{y1}{d}:{yH}{d})",
         None, f["money"], "One-off cost + sum of yearly cost × discount factor."),
        ("NPV", cur, f"=SUM({y0}{rows['discounted']}:{yH}{rows['discounted']})", case.npv, f["money"],
         "Sum of discounted net, year 0 (one-off cost) included."),
        ("ROI", "share", f'=IF(C{pv_cost}<=0,"{NOT_AVAILABLE}",(C{pv_benefit}-C{pv_cost})/C{pv_cost})',
         case.roi, f["share"], "(PV of benefits − PV of costs) / PV of costs."),
        ("Payback", "months",
         f'=IF(AND({y0}{cum}>=0,{y1}{rows["net"]}>=0),0,IF(COUNT({y1}{rows["payback_months"]}:{yH}'
         f'{rows["payback_months"]})=0,"{NOT_PAID_BACK}",MIN({y1}{rows["payback_months"]}:{yH}{rows["payback_months"]})))',
         case.payback_months, f["months"],
         "Months until the cumulative net (after the one-off cost) turns non-negative, interpolated within the year."),
        ("IRR", "per year",
         f'=IF(AND(COUNTIF({net},"<0")>0,COUNTIF({net},">0")>0),IFERROR(IRR({net},0.1),"{NO_IRR}"),"{NO_IRR}")',
         case.irr, f["share"], "Rate at which the NPV is zero (Excel's IRR over years 0..H)."),
    ]
    missing = {"ROI": NOT_AVAILABLE, "Payback": NOT_PAID_BACK, "IRR": NO_IRR}
    for label, unit, formula, reported, fmt, how in headline:
        _put(ws, row, 1, label, font=_BOLD if label == "NPV" else None)
        _put(ws, row, 2, unit, font=_NOTE)
        _put(ws, row, 3, formula, fmt, font=_BOLD if label == "NPV" else None)
        if label in ("NPV", "ROI", "Payback", "IRR"):
            value = _value(reported)
            _put(ws, row, 4, missing.get(label, NOT_AVAILABLE) if value == NOT_AVAILABLE else value, fmt,
                 fill=_STATIC_FILL)
            _put(ws, row, 5, f'=IF(AND(ISNUMBER(C{row}),ISNUMBER(D{row})),C{row}-D{row},IF(C{row}=D{row},0,"differs"))',
                 fmt)
        _put(ws, row, 6, how, font=_NOTE)
        rows[label] = row
        row += 1

    row += 1
    n_draws = len(case.npv_draws) if case.npv_draws is not None else 0
    _put(ws, row, 1, f"Simulation summary (static: from cxvalue's {n_draws:,} joint draws of the fitted effects; "
                     "not recomputed in Excel)", font=_BOLD)
    row += 1
    _header(ws, row, ["Measure", "Unit", "Value (static)"])
    row += 1
    simulated = (("npv_p10", "NPV, P10", cur, f["money"]), ("npv_p50", "NPV, P50 (median)", cur, f["money"]),
                 ("npv_p90", "NPV, P90", cur, f["money"]), ("p_npv_positive", "Chance NPV > 0", "share", f["share"]))
    for key, label, unit, fmt in simulated:
        _put(ws, row, 1, label)
        _put(ws, row, 2, unit, font=_NOTE)
        _put(ws, row, 3, _value(u.get(key)), fmt, fill=_STATIC_FILL)
        rows[key] = row
        row += 1

    _widths(ws, {"A": 52, "B": 16, **{_col(CF_YEAR0 + t): 16 for t in range(0, H + 1)}})
    ws.column_dimensions["D"].width = 20
    ws.column_dimensions["F"].width = max(ws.column_dimensions["F"].width or 16, 16)
    ws.freeze_panes = ws.cell(row=5, column=CF_YEAR0)
    refs["cash_flow_rows"] = rows
