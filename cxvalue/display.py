"""How an analysis shows itself in Jupyter (``_repr_html_``, as lifelines' fitters do).

Each fitted part (a linkage model, the business case, the scorecard, key drivers, ...) shows
its name, its skipped reason or its ``summary`` table, and its caveats; the whole analysis
shows the source, the groups and the headline of the business case, with the parts listed by
attribute name. Text is escaped; no customer identifier is shown.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

__all__ = ["fitted_html", "record_html", "analysis_html"]

#: Attribute or record kind -> the name shown.
TITLES = {
    "revenue": "Revenue per customer per year, by group (RevenueModel)",
    "cost_to_serve": "Cost to serve per customer per year, by group (CostToServeModel)",
    "churn": "Churn, by group (ChurnModel)",
    "referrals": "Referrals per customer per year, by group (ReferralModel)",
    "case": "Business case",
    "scorecard": "KPI scorecard",
    "goal_paths": "Goals with a date",
    "maturity": "CX maturity",
    "key_drivers": "Key drivers",
    "journeys": "Journeys vs touchpoints",
    "closing_the_loop": "Closing the loop on complaints",
    "failure_demand": "The cost of failure demand",
    "transitions": "Movement between groups",
    "who_answered": "Who answered",
    "checked": "Checked data",
}
MAX_ROWS = 20


def _table(frame: Any) -> str:
    if not isinstance(frame, pd.DataFrame):
        return ""
    return frame.head(MAX_ROWS).to_html(float_format=lambda x: f"{x:,.4g}", na_rep="–", border=0)


def _warnings(items: Any) -> str:
    items = [w for w in (items or []) if w]
    if not items:
        return ""
    return "<ul>" + "".join(f"<li>{html.escape(str(w))}</li>" for w in items) + "</ul>"


def _case_html(case: Any) -> str:
    u = case.uncertainty
    pay = "not within the horizon" if case.payback_months is None else f"{case.payback_months:.0f} months"
    return (f"<p>NPV {case.npv:,.0f} (8 in 10 outcomes between {u['npv_p10']:,.0f} and {u['npv_p90']:,.0f}); "
            f"ROI {case.roi:.0%}; payback {pay}; chance it pays off {u['p_npv_positive']:.0%}.</p>"
            + case.cash_flows.round(0).to_html(border=0) + _warnings(list(case.left_out.values())))


def fitted_html(obj: Any, title: str) -> str:
    """A fitted part for Jupyter: title, skipped reason or summary table, caveats."""
    head = f"<h4>{html.escape(title)}</h4>"
    if not hasattr(obj, "skipped_") and not hasattr(obj, "summary") and not hasattr(obj, "npv"):
        return head + "<p>Not fitted yet.</p>"
    if hasattr(obj, "npv"):
        return head + _case_html(obj)
    why = getattr(obj, "skipped_", None)
    if why:
        return head + f"<p>Skipped: {html.escape(str(why))}</p>"
    summary = obj.summary
    return head + _table(summary) + _warnings(getattr(obj, "warnings_", None))


def record_html(record: Any) -> str:
    """A stored part (:class:`cxvalue.store.Record`) for Jupyter."""
    kind = record._kind
    if kind == "checked":
        return f"<h4>{TITLES[kind]}</h4><p>{html.escape(record.description)}, as of {record.as_of}</p>"
    return fitted_html(record, TITLES.get(kind, kind))


def analysis_html(analysis: Any) -> str:
    """The whole analysis for Jupyter: source, groups, headline, and where each part is."""
    checked = analysis.checked
    where = checked.description if hasattr(checked, "description") else checked.source.description
    observed = analysis.observed
    n = observed["customers"] if "customers" in observed else pd.Series(dtype=float)
    groups = ", ".join(f"{html.escape(str(g))} {int(c):,}" for g, c in n.items())
    parts = ", ".join(f"<code>.{name}</code>" for name in ("revenue", "cost_to_serve", "churn", "who_answered", "case",
                                                          "scorecard", "goal_paths", "maturity", "key_drivers",
                                                          "journeys", "closing_the_loop", "failure_demand",
                                                          "transitions", "referred", "history"))
    return (f"<h4>cxvalue analysis</h4><p>{html.escape(str(where))}, data as of {checked.as_of}; "
            f"customers compared by group: {groups}.</p>" + _case_html(analysis.case)
            + f"<p>Parts: {parts}.</p>")
