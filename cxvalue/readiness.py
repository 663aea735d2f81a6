"""Can this data be analysed? The check every run (and ``cxvalue validate``) makes before any notebook.

Two answers, from the checked tables and the customer history:

* :func:`require` raises :class:`~cxvalue.exceptions.InputError` (exit 2) where nothing can be
  analysed at all: no customer with an index response, no time observed after any survey,
  no revenue after any survey, an empty reference group, a target score that cannot be
  reached. ``run`` and ``validate`` call the same function, so they exit 2 on the same data.
* :func:`sections` lists the report's sections and levers with whether this data supports
  each and, where not, the plain reason the report will give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from cxvalue import config
from cxvalue.data import CheckedData
from cxvalue.exceptions import InputError
from cxvalue.history import DAYS_PER_YEAR

__all__ = ["Section", "require", "sections", "sections_table", "MIN_FOLLOW_UP_DAYS"]

#: Below this many days after the survey for every customer, nothing after it can be measured.
MIN_FOLLOW_UP_DAYS = 28
#: The section of customers who never cancel (non-contractual mode), in place of churn's.
PURCHASES_SECTION = "How long customers keep buying and the retention lever (customers who never cancel)"


@dataclass(frozen=True)
class Section:
    """One part of the report: its name, whether the data supports it, and why not."""

    name: str
    runs: bool
    reason: str = ""


def _index_rule(params: dict[str, Any]) -> str:
    kind = "relationship survey (empty journey)" if params["survey_type"] == "relationship" else "survey"
    window = ""
    if params.get("study_start") or params.get("study_end"):
        window = f" between {params.get('study_start') or 'the first response'} and {params.get('study_end') or 'as_of'}"
    return f"a {kind} answer with a {params['metric']} score{window}"


def require(checked: CheckedData, params: dict[str, Any], hist: pd.DataFrame) -> None:
    """Stop (exit 2, one plain message) where the data cannot be analysed at all.

    Raises
    ------
    InputError : naming what is missing and how to fix it.
    """
    for table in ("customers", "responses", "transactions"):
        q = checked.data_quality.get(table, {})
        if q and q.get("rows_used", 0) == 0:
            raise InputError(f"table '{table}': no usable rows ({q.get('rows_read', 0):,} read; excluded: "
                             f"{q.get('excluded') or 'none'}). Nothing can be analysed without it.")
    if hist.empty:
        r = checked.tables["responses"]
        hint = ""
        if params["survey_type"] == "relationship" and "journey" in r.columns:
            n_journey = int(r.filter(r.journey.notnull()).count().to_pandas())
            if n_journey:
                hint = (f" All {n_journey:,} answers with a score belong to journey surveys (journey not empty); "
                        f"to let them set the groups, run with --set survey_type=any.")
        raise InputError(f"table 'responses': no customer has an index response ({_index_rule(params)} on or before "
                         f"as_of {checked.as_of}), so no customer can be put in a satisfaction group.{hint}")
    if float(hist["post_exposure_years"].max()) * DAYS_PER_YEAR < MIN_FOLLOW_UP_DAYS:
        last = pd.Timestamp(hist["response_date"].max()).date()
        raise InputError(
            f"table 'responses': no time is observed after any survey: no customer is followed for {MIN_FOLLOW_UP_DAYS} "
            f"days after their index response (the latest is on {last}, as_of {checked.as_of}), so nothing can be "
            f"measured after it. This is what a one-off "
            f"CRM snapshot looks like; export the answers with the day each was given, or set as_of later than the "
            f"surveys once transactions after them are in the data.")
    reference = config.reference_group(params)
    counts = hist["group"].astype(str).value_counts()
    observed = hist[hist["post_exposure_years"] > 0]["group"].astype(str).value_counts()
    if observed.get(reference, 0) == 0:
        found = ", ".join(f"{g} ({int(n):,})" for g, n in counts.items() if n > 0)
        best = max((g for g in counts.index if observed.get(g, 0) > 0), key=lambda g: observed[g], default=None)
        raise InputError(
            f"table 'responses': the reference group '{reference}' (every ratio is relative to it) has no customer "
            f"observed after their survey. Groups with customers: {found}. Set a reference group that exists, e.g. "
            f"--set reference_group={best}.")
    if not (observed.sum() and (hist["post_revenue"] > 0).any()):
        raise InputError("table 'transactions': no customer has any revenue after their survey, so the value of "
                         "satisfaction cannot be measured. Check that transactions cover the period after the surveys "
                         "(their dates, and as_of).")
    if params["scenario"].get("target_score") is not None:
        from cxvalue.business_case import scenario_shares
        from cxvalue.history import active_customers_by_group

        scenario_shares(params["scenario"], active_customers_by_group(checked, hist), list(config.bands_for(params)),
                        reference)


def sections(checked: CheckedData, params: dict[str, Any], hist: pd.DataFrame) -> list[Section]:
    """The report's parts and whether this data supports each (the reasons the report gives)."""
    from cxvalue.pipeline import NO_CONTACTS

    r = checked.tables["responses"]
    out = [Section("Revenue by satisfaction group", True)]
    labels = list(config.bands_for(params))
    counts = hist["group"].astype(str).value_counts()
    for g in labels:
        n = int(counts.get(g, 0))
        if n == 0:
            out.append(Section(f"Group '{g}'", False, f"No respondent is in the {g} group: it has no estimates and "
                                                      f"the moves into or out of it are left out of the case."))
        elif n < params["min_cell_size"]:
            out.append(Section(f"Group '{g}'", False, f"Only {n} respondents are in the {g} group, under the minimum "
                                                      f"cell size of {params['min_cell_size']}: its figures are "
                                                      f"suppressed in the report."))
    if "contacts" not in checked.tables:
        out.append(Section("Cost to serve", False, NO_CONTACTS))
    elif not (hist["post_contact_cost"] > 0).any():
        out.append(Section("Cost to serve", False, "No customer has a priced service contact after their survey."))
    else:
        out.append(Section("Cost to serve", True))
    reference = config.reference_group(params)
    from cxvalue.purchases import business_model

    model, _ = business_model(params, checked)
    if model == "non_contractual":
        again = bool((hist["post_transactions"] > 1).any())
        out.append(Section(PURCHASES_SECTION, again, "" if again else
                           "No respondent bought again after their survey, so how often and how long each group buys "
                           "cannot be measured."))
    elif not hist["churned"].any():
        out.append(Section("Churn and the retention lever", False,
                           "No customer in the data left after their survey (no end_date), so churn cannot be measured."))
    elif not hist.loc[hist["group"].astype(str) == reference, "churned"].any():
        out.append(Section("Churn and the retention lever", False,
                           f"No customer of the reference group '{reference}' left after their survey."))
    else:
        out.append(Section("Churn and the retention lever", True))
    out.append(Section("Referrals lever", bool(hist["post_referred"].sum() > 0),
                       "" if hist["post_referred"].sum() > 0 else
                       "No customer was referred by a respondent after their survey (referred_by)."))
    attrs = checked.attributes
    out.append(Section("Key drivers", bool(attrs), "" if attrs else
                       "No attribute ratings: add columns named attr_<name> to the responses table."))
    has_jt = "journey" in r.columns and "touchpoint" in r.columns
    out.append(Section("Journeys vs touchpoints", has_jt, "" if has_jt else
                       "Needs journey and touchpoint columns in the responses table."))
    c = checked.tables.get("contacts")
    loop_ok = c is not None and "is_complaint" in c.columns and ("resolved" in c.columns or "resolved_date" in c.columns)
    out.append(Section("Closing the loop", loop_ok, "" if loop_ok else
                       "Needs a contacts table with is_complaint and resolved / resolved_date columns."))
    has_reason = c is not None and "reason" in c.columns
    out.append(Section("The cost of failure demand", has_reason, "" if has_reason else
                       "Needs a contacts table with a reason column (billing_error, how_to, ...)."))
    metrics = checked.metrics
    out.append(Section("Scorecard: " + ", ".join(m.upper() for m in metrics), True))
    dated = [k for k, g in (params.get("targets") or {}).items() if isinstance(g, dict)]
    out.append(Section("Goals over time", bool(dated), "" if dated else
                       "No KPI goal has a date: give one as targets.nps: {value: 10, by: 2027-12-31}."))
    q = checked.data_quality.get("maturity")
    mat_ok = bool(q and q["rows_used"])
    out.append(Section("CX maturity", mat_ok, "" if mat_ok else
                       "Needs a maturity table (assessed_by, date, element, level 1-5)" +
                       (f"; none of its {q['rows_read']:,} rows could be used." if q else ".")))
    return out


def sections_table(found: list[Section]) -> pd.DataFrame:
    """The sections as a table for ``cxvalue validate``: section, runs (yes/no), reason."""
    return pd.DataFrame([{"section": s.name, "runs": "yes" if s.runs else "no", "reason": s.reason} for s in found])
