"""Plain sentences for the report, written from the numbers (no hand-typed figures)."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from cxvalue import skipping

__all__ = ["label", "money", "pct", "observed_sentences", "quality_sentence", "suppress", "observed_table",
           "group_warnings", "quality_display", "rate_model_sentences", "churn_sentences", "controls_sentence"]


def label(group: object) -> str:
    """A group label for a sentence: ``high_effort`` -> ``high effort``, HTML-escaped."""
    return html.escape(str(group).replace("_", " "))


def money(x: float, currency: str) -> str:
    """``1234.5, "USD"`` -> ``"USD 1,235"``."""
    if x is None or pd.isna(x):
        return "n/a"
    return f"{html.escape(currency)} {x:,.0f}"


def listed(items: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    items = list(items)
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def pct(x: float, digits: int = 0) -> str:
    if x is None or pd.isna(x):
        return "n/a"
    return f"{100 * x:.{digits}f}%"


def _rel(ratio: float) -> str:
    if pd.isna(ratio):
        return "n/a"
    d = ratio - 1
    return f"{abs(d) * 100:.0f}% {'more' if d > 0 else 'less'}" if abs(d) >= 0.005 else "about the same"


def _table(fn):
    """Mark a function that returns a table for display: pandas escapes every cell, index and
    header when it renders HTML, so the strings built here (escaped for sentences) are
    unescaped once, and shown as typed, never twice-escaped. The name of a one-level index
    moves to the columns' name, which pandas shows in the header row's first cell instead of
    a second header row of its own above the body."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        df = fn(*args, **kwargs)

        def plain(x):
            return html.unescape(x) if isinstance(x, str) else x

        df = df.map(plain).rename(index=plain, columns=plain)
        df.index.names = [plain(n) for n in df.index.names]
        if df.index.nlevels == 1 and df.index.name is not None:
            df.columns.name, df.index.name = df.index.name, None
        return df

    return wrapper


def suppress(summary: pd.DataFrame, min_cell_size: int) -> pd.DataFrame:
    """Blank every figure of a group with fewer than ``min_cell_size`` customers."""
    out = summary.copy()
    small = out["customers"] < min_cell_size
    value_cols = [c for c in out.columns if c not in ("customers", "small_group")]
    out[value_cols] = out[value_cols].astype(float)
    out.loc[small, value_cols] = float("nan")
    return out


def observed_sentences(summary: pd.DataFrame, reference: str, currency: str, window_months: int) -> list[str]:
    """One sentence per group on spend, cost to serve and 12-month churn vs the reference group."""
    ref = summary.loc[reference]
    out = [
        f"In the {window_months} months after their survey, {label(reference)} customers spent "
        f"{money(ref.revenue_per_customer_year, currency)} per customer per year, cost "
        f"{money(ref.cost_to_serve_per_customer_year, currency)} per customer per year to serve, and "
        f"{pct(ref.churn_rate_12m)} of them left within 12 months."
    ]
    for group, row in summary.iterrows():
        if group == reference:
            continue
        if pd.isna(row.revenue_per_customer_year):
            out.append(f"The {label(group)} group is too small to report (fewer customers than the minimum cell size).")
            continue
        out.append(
            f"{label(group).capitalize()} customers spent {money(row.revenue_per_customer_year, currency)} "
            f"({_rel(row.revenue_ratio)}), cost {money(row.cost_to_serve_per_customer_year, currency)} to serve "
            f"({_rel(row.cost_to_serve_ratio)}) and {pct(row.churn_rate_12m)} left within 12 months."
        )
    return out


def quality_sentence(data_quality: dict[str, dict[str, Any]]) -> str:
    """How many rows were read, used and set aside, in one sentence."""
    read = sum(q["rows_read"] for q in data_quality.values())
    used = sum(q["rows_used"] for q in data_quality.values())
    parts = [f"{n:,} {html.escape(t)}" for t, q in data_quality.items() for n in [q["rows_read"] - q["rows_used"]] if n]
    if not parts:
        return f"All {read:,} rows passed the data checks."
    return (f"{used:,} of {read:,} rows passed the data checks; set aside: {', '.join(parts)} rows "
            f"(reasons in the table below). They are counted, not silently dropped.")


@_table
def observed_table(summary: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The per-group observed figures as a readable table (units in the headers)."""
    c = html.escape(currency)
    out = pd.DataFrame(index=summary.index.astype(str))
    out["Customers"] = summary["customers"].map(lambda n: f"{int(n):,}").values
    out[f"Revenue ({c} per customer per year)"] = [money(x, currency).replace(f"{c} ", "") for x in summary["revenue_per_customer_year"]]
    out[f"Cost to serve ({c} per customer per year)"] = [money(x, currency).replace(f"{c} ", "") for x in summary["cost_to_serve_per_customer_year"]]
    out["Contacts per customer per year"] = [("n/a" if pd.isna(x) else f"{x:.1f}") for x in summary["contacts_per_customer_year"]]
    out["Left within 12 months"] = [pct(x, 1) for x in summary["churn_rate_12m"]]
    out.index.name = "Group"
    return out


def group_warnings(summary: pd.DataFrame, min_group_size: int, min_cell_size: int) -> list[str]:
    """Plain-language warnings for small or empty groups."""
    out = []
    for group, n in summary["customers"].items():
        if n == 0:
            out.append(f"No customer is in the {group} group; its figures cannot be estimated.")
        elif n < min_cell_size:
            out.append(f"The {group} group has only {int(n)} customers (fewer than {min_cell_size}); its figures are not shown.")
        elif n < min_group_size:
            out.append(f"The {group} group has only {int(n)} customers (fewer than {min_group_size}); treat its figures as unreliable.")
    return out


@_table
def quality_display(data_quality: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The data-quality table for people: one row per table and reason, counts with separators."""
    from cxvalue.data import quality_table

    table = quality_table(data_quality)
    table["rows"] = table["rows"].map("{:,}".format)
    table["table"] = table["table"].where(table["table"] != table["table"].shift(), "")  # each table named once
    return table.rename(columns={"table": "Table", "what": "What was counted", "rows": "Rows"}).set_index("Table")


def _pct_change(ratio: float) -> str:
    d = ratio - 1
    return f"{abs(d) * 100:.0f}% {'more' if d > 0 else 'less'}" if abs(d) >= 0.005 else "about the same"


def rate_model_sentences(summary: pd.DataFrame, reference: str, what: str, currency: str) -> list[str]:
    """Adjusted vs raw gap per group for a revenue or cost model summary, in plain words.

    ``what`` completes "spend ..." e.g. ``"revenue"`` or ``"cost to serve"``.
    """
    out = []
    ref = summary.loc[reference]
    for g, r in summary.iterrows():
        if g == reference or pd.isna(r.get("ratio", float("nan"))):
            continue
        raw = r["observed"] / ref["observed"] if ref["observed"] else float("nan")
        sure = ("a real difference, not chance" if (r["ratio_lo"] > 1 or r["ratio_hi"] < 1)
                else "this range includes no difference at all, so the gap may be chance")
        out.append(
            f"Compared like with like, {label(g)} customers have {_pct_change(r['ratio'])} {what} per "
            f"customer per year than {label(reference)} customers (95% interval "
            f"{(r['ratio_lo'] - 1) * 100:+.0f}% to {(r['ratio_hi'] - 1) * 100:+.0f}%: {sure}). "
            f"The raw gap was {_pct_change(raw)}: {money(r['observed'], currency)} vs "
            f"{money(ref['observed'], currency)}."
        )
    return out


def churn_sentences(summary: pd.DataFrame, reference: str, ph_test: dict[str, float]) -> list[str]:
    """Hazard ratios in plain words, plus the proportional-hazards check."""
    out = []
    for g, r in summary.iterrows():
        if g == reference or pd.isna(r.get("hazard_ratio", float("nan"))):
            continue
        hr = r["hazard_ratio"]
        speed = f"{hr:.1f} times as fast" if hr >= 1 else f"{(1 - hr) * 100:.0f}% more slowly"
        out.append(
            f"At any moment after the survey, {label(g)} customers leave {speed} as comparable "
            f"{label(reference)} customers (hazard ratio {hr:.2f}, 95% interval {r['hr_lo']:.2f} to "
            f"{r['hr_hi']:.2f}); {pct(r['observed_rate_12m'])} of them left within 12 months.")
    p = ph_test.get("p_value", float("nan"))
    if not pd.isna(p):
        out.append("The gap between groups is steady over the months after the survey (proportional-hazards check "
                   f"passed, p = {p:.2f})." if p >= 0.01 else
                   f"The gap between groups changes over the months after the survey (proportional-hazards check "
                   f"p = {p:.3f}), so the hazard ratio is an average over the follow-up.")
    return out


def business_model_sentence(analysis) -> str:
    """Which business model the run used and why (``Analysis.business_model_reason``), and what it changes."""
    why = html.escape(getattr(analysis, "business_model_reason", "") or "")
    if getattr(analysis, "business_model", "contractual") != "non_contractual":
        return f"Business model: {why}" if why else ""
    return (f"Business model: {why} How long customers keep buying comes from a buy-till-you-die model (BG/NBD: "
            "each customer buys at their own rate and may stop after any purchase), fitted on every respondent's "
            "purchases since their survey with their group and profile as covariates.")


def purchase_sentences(summary: pd.DataFrame, reference: str, currency: str) -> list[str]:
    """The purchase model's group effects and next-12-month expectations in plain words."""
    out = []
    if reference not in summary.index:
        return out
    ref = summary.loc[reference]
    for g, r in summary.iterrows():
        if g == reference or pd.isna(r.get("purchase_rate_ratio", float("nan"))):
            continue
        rate, drop = r["purchase_rate_ratio"], r["dropout_ratio"]
        often = (f"buy {abs(rate - 1) * 100:.0f}% {'more' if rate > 1 else 'less'} often"
                 if abs(rate - 1) >= 0.005 else "buy about as often")
        stop = (f"stop buying {drop:.1f} times as readily" if drop >= 1
                else f"stop buying {(1 - drop) * 100:.0f}% less readily")
        out.append(
            f"Compared like with like, while they still buy {label(g)} customers {often} than {label(reference)} "
            f"customers (purchase-rate ratio {rate:.2f}, 95% interval {r['purchase_rate_ratio_lo']:.2f} to "
            f"{r['purchase_rate_ratio_hi']:.2f}) and {stop} after each purchase (dropout ratio {drop:.2f}, "
            f"{r['dropout_ratio_lo']:.2f} to {r['dropout_ratio_hi']:.2f}).")
        if pd.notna(r.get("expected_revenue_12m")) and pd.notna(ref.get("expected_revenue_12m")):
            out.append(
                f"In the next 12 months a {label(g)} customer is expected to make {r['expected_purchases_12m']:.1f} "
                f"purchases worth {money(r['expected_revenue_12m'], currency)}, against "
                f"{ref['expected_purchases_12m']:.1f} worth {money(ref['expected_revenue_12m'], currency)} for a "
                f"{label(reference)} customer; {pct(r['p_alive'])} of {label(g)} customers are likely still buying "
                f"today, against {pct(ref['p_alive'])}.")
    return out


@_table
def purchases_table(summary: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Per group: the purchase model's ratios and each group's expected next 12 months."""
    c = html.escape(currency)

    def ci(x, lo, hi):
        return "n/a" if pd.isna(x) else f"{x:.2f} ({lo:.2f} to {hi:.2f})"

    out = pd.DataFrame(index=[label(g) for g in summary.index])
    out["Customers"] = [f"{int(n):,}" for n in summary["customers"]]
    out["Purchase-rate ratio (95% interval)"] = [ci(r["purchase_rate_ratio"], r["purchase_rate_ratio_lo"],
                                                    r["purchase_rate_ratio_hi"]) for _, r in summary.iterrows()]
    out["Dropout ratio (95% interval)"] = [ci(r["dropout_ratio"], r["dropout_ratio_lo"], r["dropout_ratio_hi"])
                                           for _, r in summary.iterrows()]
    out["Purchases expected in the next 12 months"] = [
        "n/a" if pd.isna(x) else f"{x:.2f}" for x in summary["expected_purchases_12m"]]
    out["Likely still buying today"] = [pct(x) for x in summary["p_alive"]]
    out[f"Spend per purchase ({c})"] = [money(x, currency).replace(f"{c} ", "") for x in summary["spend_per_purchase"]]
    out[f"Revenue expected in the next 12 months ({c} per customer)"] = [
        money(x, currency).replace(f"{c} ", "") for x in summary["expected_revenue_12m"]]
    out["Bought again within 12 months of the survey"] = [pct(x) for x in summary["repeat_rate_12m"]]
    out.index.name = "Group"
    return out


def controls_sentence(covariates: list[str]) -> str:
    """What the adjusted comparison holds equal, in plain words."""
    named = ", ".join(html.escape(c.replace("_", " ")) for c in covariates)
    extra = f" and the customer attributes in the data ({named})" if covariates else ""
    return ("The adjusted figures compare customers who looked alike before the survey: the same spend per year and "
            "typical bill before it, the same cost to serve before it, the same tenure" + extra + ". Each group is "
            "then priced as if it had the whole customer base's mix (standardisation), so the gap that remains is "
            "the part linked to satisfaction rather than to who the customers are.")


#: What the simulation of the NPV holds fixed, said wherever its P10-P90 or its chance of paying off appear.
HELD_FIXED = ("These figures vary only the measured effects of satisfaction; they hold the scenario's own assumptions "
              "fixed: the shares of customers moved, the ramp, the margin and the programme's costs.")


def business_case_sentences(case, currency: str, horizon_years: int, discount_rate: float) -> list[str]:
    """The headline of the business case in plain words (``case``: :class:`cxvalue.business_case.BusinessCase`)."""
    u = case.uncertainty
    moved = " and ".join(f"{n:,.0f} customers from {label(k.split('->')[0])} to {label(k.split('->')[1])}"
                         for k, n in case.moved.items() if n > 0)
    pay = (f"It pays back in {case.payback_months:.0f} months" if case.payback_months is not None
           else f"It does not pay back within {horizon_years} years")
    target = case.inputs.get("target_score") if case.inputs else None
    aim = f"To reach a net score of {target:g}, the scenario moves {moved}; that" if target is not None else f"Moving {moved}"
    fd = (case.inputs or {}).get("failure_demand")
    if fd:
        reasons = listed([reason_label(r) for r in fd["reasons"]])
        aim = (f"{aim}, together with removing {pct(fd['share_removed'])} of the contacts about {reasons} (worth "
               f"{money(fd['value_per_year'], currency)} a year once in place),")
    return [
        f"{aim} is worth a net present value of {money(case.npv, currency)} over {horizon_years} years "
        f"(discounted at {discount_rate:.0%} a year, after the programme's costs).",
        f"Allowing for the uncertainty of the measured effects, the NPV lies between {money(u['npv_p10'], currency)} "
        f"and {money(u['npv_p90'], currency)} in 8 cases out of 10; the chance that it is positive is "
        f"{pct(u['p_npv_positive'])}. {HELD_FIXED} The sensitivity chart shows how far each of them moves the NPV.",
        f"{pay}; return on investment {pct(case.roi)}" + (f", internal rate of return {pct(case.irr)}." if case.irr is not None else "."),
    ]


def left_out_sentences(case) -> list[str]:
    """What the business case leaves out because the data cannot support it, one sentence each."""
    return [html.escape(why) for why in case.left_out.values()]


@_table
def clv_table(clv, currency: str, non_contractual: bool = False) -> pd.DataFrame:
    """CLV per group for people: margin per year, first-year retention, lifetime value. For
    customers who never cancel (``non_contractual``) the margin is at a new customer's starting
    rate of buying, and the second column the share of that buying still going on after a year."""
    c = html.escape(currency)
    out = pd.DataFrame(index=[label(g) for g in clv.index])
    if non_contractual:
        out[f"Margin ({c} per customer per year, at the starting rate of buying)"] = [
            money(x, currency).replace(f"{c} ", "") for x in clv["margin_per_year"]]
        out["Buying still going on after 1 year"] = [pct(x) for x in clv["retention_year_1"]]
    else:
        out[f"Margin ({c} per customer per year)"] = [money(x, currency).replace(f"{c} ", "") for x in clv["margin_per_year"]]
        out["Still a customer after 1 year"] = [pct(x) for x in clv["retention_year_1"]]
    out[f"Lifetime value over the horizon ({c} per customer)"] = [money(x, currency).replace(f"{c} ", "") for x in clv["clv"]]
    out.index.name = "Group"
    return out


def tornado_sentence(sens: pd.DataFrame, currency: str) -> str:
    """Which assumption matters most, in one sentence."""
    top = sens.iloc[0]
    lo, hi = sorted([top["npv_low"], top["npv_high"]])
    return (f"The case depends most on the {html.escape(str(top['assumption']).lower())}: across its range "
            f"({html.escape(str(top['low']))} to {html.escape(str(top['high']))}) the NPV runs from {money(lo, currency)} "
            f"to {money(hi, currency)}.")


def context_sentence(context: dict[str, Any]) -> str:
    """Where the modelled gains sit beside the CX guides' ranges (5-10% revenue growth and
    15-25% lower cost to serve within 2-3 years, McKinsey's CEO guide to customer experience)."""
    rev, cost, year = context["revenue_uplift"], context["cost_to_serve_change"], context["year"]
    lo, hi = context["guide_revenue_growth"]
    where = "below" if rev < lo else ("within" if rev <= hi else "above")
    why = {"below": "the scenario moves only part of the customer base, and only the adjusted gaps are priced",
           "within": "the measured gaps and the shares moved are in line with what the guides report",
           "above": "the shares moved are ambitious or the measured gaps are wide; check both before relying on it"}[where]
    cost_words = (f"{abs(cost):.1%} {'lower' if cost < 0 else 'higher'}" if round(abs(cost), 3) > 0
                  else "about the same")
    return (f"By year {year} the scenario adds {rev:.1%} to the customer base's revenue and leaves its cost to serve "
            f"{cost_words}. The CX guides report 5-10% revenue growth and 15-25% lower cost to serve within 2-3 years "
            f"from whole-company programmes; this case is {where} their revenue range, because {why}.")


# --------------------------------------------------------------------------- page one and scorecard


def kpi_value(x: float | None, unit: str, currency: str, signed: bool = False) -> str:
    """A KPI figure in its unit: NPS points, a share as %, money with the currency."""
    if x is None or pd.isna(x):
        return "–"
    x = float(x)
    if round(x * (100 if unit == "share" else 1), 1 if unit != "money" else 0) == 0:
        x = 0.0  # no "-0.0"
    sign = "+" if signed and x > 0 else ""
    if unit == "points":
        return f"{sign}{x:.1f} pts"
    if unit == "share":
        return f"{sign}{100 * x:.1f}%" if not signed else f"{sign}{100 * x:.1f} pts"
    return f"{sign}{html.escape(currency)} {x:,.0f}"


def headline_tiles(case, stake: float, params: dict[str, Any]) -> str:
    """Page one's five figures as an HTML block (values escaped; no identifiers)."""
    cur = params["currency"]
    u = case.uncertainty
    horizon = params["horizon_years"]
    pay = f"{case.payback_months:.0f} months" if case.payback_months is not None else f"not within {horizon} years"
    tiles = [
        ("Value at stake", money(stake, cur), "margin a year that dissatisfaction costs today"),
        (f"NPV over {horizon} years", money(case.npv, cur),
         f"8 in 10 outcomes between {money(u['npv_p10'], cur)} and {money(u['npv_p90'], cur)}, varying the measured "
         f"effects only"),
        ("Return on investment", pct(case.roi), "discounted benefits over discounted costs"),
        ("Payback", pay, "from the start of the programme"),
        ("Chance it pays off", pct(u["p_npv_positive"]),
         "share of simulated outcomes with NPV above zero, if the shares moved, ramp, margin and costs hold"),
    ]
    cells = "".join(f'<div class="cxv-tile"><div class="cxv-tile-label">{html.escape(t)}</div>'
                    f'<div class="cxv-tile-value">{v}</div><div class="cxv-tile-note">{n}</div></div>'
                    for t, v, n in tiles)
    return f'<div class="cxv-tiles">{cells}</div>'


def _tracked(goal_paths, name: str) -> dict | None:
    """The dated goal of KPI ``name`` read against its path, if there is one (else None)."""
    g = (getattr(goal_paths, "goals_", None) or {}).get(name)
    return g if g and not g.get("skipped") else None


def _reading(name: str, k: dict, goal_paths=None) -> str:
    """A KPI's status: against its path when its goal has a date and is tracked, else against the goal."""
    g = _tracked(goal_paths, name)
    if g is None:
        return k["status"]
    return {"on the path within the noise": "within the noise", "behind the path": "behind target"}.get(
        g["status"], "on target" if g["status"] == "on the path" else g["status"])


def page_one_sentences(analysis, card, stake: float, goal_paths=None) -> list[str]:
    """Three to five plain sentences of what was found, for page one. A goal with a date
    (``goal_paths``: :class:`cxvalue.goals.GoalPaths`) counts as met when today is on its path."""
    p = analysis.params
    cur = p["currency"]
    ref = analysis.reference
    rev, cost, churn = analysis.revenue.summary, analysis.cost_to_serve.summary, analysis.churn.summary
    low = str(rev.index[0])
    out = []
    parts = []
    if rev.loc[low].get("customers", 0) < p["min_cell_size"]:
        pass  # too few customers to show: no group comparison on page one
    elif pd.notna(rev.loc[low].get("ratio", float("nan"))):
        parts.append(f"spend {_rel(rev.loc[low, 'ratio'])}")
    if parts and pd.notna(churn.loc[low].get("hazard_ratio", float("nan"))):
        parts.append(f"are {churn.loc[low, 'hazard_ratio']:.1f} times as likely to leave at any time")
    bought = getattr(analysis, "purchases", None)
    if parts and bought is not None and bought.skipped_ is None and low in bought.summary.index:
        b = bought.summary.loc[low]
        if pd.notna(b.get("purchase_rate_ratio", float("nan"))):
            parts.append(f"buy {_rel(b['purchase_rate_ratio'])} often while they still buy")
            d = b["dropout_ratio"]
            parts.append(f"stop buying {d:.1f} times as readily" if d >= 1 else
                         f"stop buying {(1 - d) * 100:.0f}% less readily")
    if parts and pd.notna(cost.loc[low].get("ratio", float("nan"))):
        parts.append(f"cost {_rel(cost.loc[low, 'ratio'])} to serve")
    if parts:
        out.append(f"Customers in the {label(low)} group {', '.join(parts[:-1])}"
                   f"{' and ' if len(parts) > 1 else ''}{parts[-1]} than {label(ref)} customers of the same profile "
                   f"(same plan, size, history and tenure).")
    if pd.notna(stake):
        out.append(f"Together that gap costs about {money(stake, cur)} of margin a year today.")
    out += business_case_sentences(analysis.case, cur, p["horizon_years"], p["discount_rate"])[:2]
    goals = [k for k in card.kpis_.values() if k["target"] is not None]
    if goals:
        behind = [k for n, k in card.kpis_.items() if k["target"] is not None
                  and _reading(n, k, goal_paths) == "behind target"]
        sentence = f"On the scorecard, {len(goals) - len(behind)} of the {len(goals)} KPIs with a goal are on target or within the noise"
        if behind:
            worth = [k for k in behind if k.get("value_of_gap")]
            names = [html.escape(k["label"]) for k in behind]
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            sentence += f"; {listed} {'is' if len(behind) == 1 else 'are'} behind"
            if worth:
                sentence += f" (closing {'that gap' if len(worth) == 1 else 'those gaps'} is worth about " \
                            f"{money(sum(k['value_of_gap'] for k in worth), cur)} a year)"
        out.append(sentence + ".")
    return out[:5]


@_table
def scorecard_table(card, currency: str, goal_paths=None) -> pd.DataFrame:
    """The scorecard for people: actual, goal, gap, status, noise, change since the last run, money.

    A goal with a date (``goal_paths``, :class:`cxvalue.goals.GoalPaths`) shows its date and the
    path's value today; its gap and status are against the path (the money: reaching the goal)."""
    rows = []
    for name, k in card.kpis_.items():
        unit = k["unit"]
        moe = k.get("margin_of_error")
        change = k.get("change")
        g = _tracked(goal_paths, name)
        goal = kpi_value(k["target"], unit, currency)
        gap = kpi_value(k["gap"], unit, currency, signed=True)
        if g is not None:
            goal = (f"{goal} by {_day(g['by'])} (path today: {kpi_value(g['expected_today'], unit, currency)})")
            gap = kpi_value(g["gap_to_path"], unit, currency, signed=True) + " to the path"
        rows.append({
            "KPI": html.escape(k["label"]),
            "Actual": kpi_value(k["actual"], unit, currency),
            "Goal": goal,
            "Gap to goal": gap,
            "Status": _reading(name, k, goal_paths),
            "Margin of error (95%)": ("none: every customer counted" if moe is None
                                      else "± " + kpi_value(moe, unit, currency, signed=True).lstrip("+")),
            "Since the last run": ("–" if change is None else
                                   f"{kpi_value(change, unit, currency, signed=True)} ({k['change_reading']})"),
            f"Closing the gap is worth ({html.escape(currency)} a year)":
                "goal met" if k["status"] == "on target" else
                "–" if k.get("value_of_gap") is None else f"{k['value_of_gap']:,.0f}",
        })
    return pd.DataFrame(rows).set_index("KPI")


def scorecard_sentences(card, currency: str) -> list[str]:
    """What the scorecard says, in plain words."""
    start, end = card.period_
    out = [f"Each KPI is measured over the 12 months to {end:%d %B %Y}, on the whole customer base. Survey KPIs "
           f"carry a margin of error: a gap or a change smaller than it is noise, not news."]
    goals = [k for k in card.kpis_.values() if k["target"] is not None]
    if not goals:
        out.append("No goals were set (parameters targets.*), so the scorecard shows where each KPI stands without "
                   "a status.")
    for k in goals:
        if k["status"] == "behind target" and k.get("value_of_gap"):
            out.append(f"Reaching the {html.escape(k['label'])} goal of {kpi_value(k['target'], k['unit'], currency)} "
                       f"is worth about {money(k['value_of_gap'], currency)} of margin a year.")
    return out


@_table
def cash_flow_table(cash_flows: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The business case's yearly cash flows by lever for people (whole currency units)."""
    names = {"retention": "Kept longer", "spend": "Higher spend", "cost_to_serve": "Lower cost to serve",
             "referrals": "Referrals", "failure_demand": "Less failure demand", "benefit": "Benefit",
             "cost": "Programme cost", "net": "Net"}
    shown = [c for c in names if c in cash_flows.columns and (c != "failure_demand" or cash_flows[c].abs().sum() > 0)]
    out = cash_flows[shown].rename(columns=names)
    out = out.round(0).astype(int).map("{:,}".format)
    out.index.name = f"Year ({html.escape(currency)})"
    return out


def _day(d: str) -> str:
    import datetime as dt

    x = dt.date.fromisoformat(str(d)[:10])
    return f"{x.day} {x:%B %Y}"


def goal_sentences(goal_paths, currency: str) -> list[str]:
    """Where each KPI stands on the path to its dated goal, one sentence each
    (:class:`cxvalue.goals.GoalPaths`; skipped: its reason; a goal that cannot be tracked: why)."""
    if skipped_sentence(goal_paths):
        return [skipped_sentence(goal_paths)]
    out = []
    for g in goal_paths.goals_.values():
        if g.get("skipped"):
            out.append(html.escape(g["skipped"]))
            continue
        u = g["unit"]
        v = lambda x, signed=False: kpi_value(x, u, currency, signed)  # noqa: E731
        given = "as given" if g["start_source"] == "given" else "as measured in the 12 months to that day"
        text = (f"{html.escape(g['label'])}: the goal is {v(g['value'])} by {_day(g['by'])}, on a straight path from "
                f"{v(g['start'])} on {_day(g['from'])} ({given}). ")
        moe = "" if g["margin_of_error"] is None else f" (± {v(g['margin_of_error'], True).lstrip('+')})"
        today = _day(goal_paths.as_of_)
        if g["status"] == "before the path starts":
            text += f"The path starts later; on {today}, the data's last day, the KPI stands at {v(g['actual'])}{moe}."
        else:
            when = (f"The goal's date has passed; on {today}" if g["due"] else
                    f"On {today}, the data's last day, the path is at {v(g['expected_today'])} and")
            text += (f"{when} the KPI stands at {v(g['actual'])}{moe}, {v(g['gap_to_path'], True)} against the path: "
                     f"{g['status']}.")
        if g.get("next_milestone"):
            m = g["next_milestone"]
            text += f" Next milestone: {v(m['value'])} by {_day(m['date'])}."
        out.append(text)
    return out


@_table
def goals_table(goal_paths, currency: str) -> pd.DataFrame:
    """The dated goals for people: goal and date, start, the path today, actual, gap, reading,
    next milestone (empty when skipped)."""
    rows = []
    for g in goal_paths.goals_.values():
        if g.get("skipped"):
            continue
        u = g["unit"]
        moe = g.get("margin_of_error")
        nxt = g.get("next_milestone")
        rows.append({
            "KPI": html.escape(g["label"]),
            "Goal": f"{kpi_value(g['value'], u, currency)} by {_day(g['by'])}",
            "Start of the path": f"{kpi_value(g['start'], u, currency)} on {_day(g['from'])}",
            "The path today": kpi_value(g["expected_today"], u, currency),
            "Actual": kpi_value(g["actual"], u, currency),
            "Margin of error (95%)": ("none: every customer counted" if moe is None
                                      else "± " + kpi_value(moe, u, currency, signed=True).lstrip("+")),
            "Gap to the path": kpi_value(g["gap_to_path"], u, currency, signed=True),
            "Reading": g["status"],
            "Next milestone": "–" if not nxt else f"{kpi_value(nxt['value'], u, currency)} by {_day(nxt['date'])}",
        })
    return pd.DataFrame(rows, columns=["KPI", "Goal", "Start of the path", "The path today", "Actual",
                                       "Margin of error (95%)", "Gap to the path", "Reading", "Next milestone"]
                        ).set_index("KPI")


@_table
def headline_trend_table(trend: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The business case's headline across runs, for people."""
    c = html.escape(currency)
    out = pd.DataFrame({
        "Run": [html.escape(str(r)) for r in trend["run"]],
        f"NPV ({c})": [money(x, currency).replace(f"{c} ", "") for x in trend["npv"]],
        f"NPV, 8 in 10 outcomes ({c})": [f"{money(a, currency).replace(f'{c} ', '')} to "
                                          f"{money(b, currency).replace(f'{c} ', '')}"
                                          for a, b in zip(trend["npv_p10"], trend["npv_p90"])],
        "ROI": [pct(x) for x in trend["roi"]],
        "Payback (months)": ["–" if x is None or pd.isna(x) else f"{x:.0f}" for x in trend["payback_months"]],
        "Chance it pays off": [pct(x) for x in trend["p_npv_positive"]],
    })
    return out.set_index("Run")


@_table
def assumptions_table(params: dict[str, Any]) -> pd.DataFrame:
    """Every parameter of the run with its value and meaning (user-supplied text escaped)."""
    from cxvalue.config import PARAMETERS

    rows = []
    for p in PARAMETERS:
        v: Any = params
        for part in p.name.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v in (None, "", {}):
            shown = "not set"
        elif isinstance(v, dict):
            shown = ", ".join(f"{k}: {x}" for k, x in v.items())
        else:
            shown = str(v)
        rows.append({"Parameter": p.name, "Value": html.escape(shown), "Meaning": html.escape(p.help)})
    return pd.DataFrame(rows).set_index("Parameter")


def margin_sentence(gross_margin: float, source: str) -> str:
    """Where the margin on revenue came from, in one sentence."""
    if source == "transaction cost":
        return (f"The margin on revenue, {pct(gross_margin, 1)}, is the data's own: revenue less the direct cost "
                f"recorded on each transaction after the survey (parameter margin_source).")
    return (f"The margin on revenue, {pct(gross_margin, 1)}, is the gross_margin parameter (the transactions carry no "
            f"cost, or margin_source is set to parameter).")


# --------------------------------------------------------------------------- what drives the value


def skipped_sentence(analysis: Any) -> str | None:
    """The one plain sentence a skipped analysis shows (its reason, escaped); None when it ran.

    ``analysis``: a fitted analysis, its ``results()`` block or an input table
    (:func:`cxvalue.skipping.reason`).
    """
    why = skipping.reason(analysis)
    return html.escape(why) if why else None


def driver_label(driver: str) -> str:
    """``attr_product`` -> ``product``, ``journey_billing`` -> ``billing journey`` (escaped)."""
    d = str(driver)
    if d.startswith("attr_"):
        d = d[len("attr_"):]
    elif d.startswith("journey_"):
        d = d[len("journey_"):] + " journey"
    return label(d)


@_table
def drivers_table(summary: pd.DataFrame, value_per_point: pd.Series, currency: str) -> pd.DataFrame:
    """Drivers for people, most important first: share of what the ratings explain (with its
    interval), how customers rate it today, and the money a one-point gain is worth a year."""
    c = html.escape(currency)
    rows = []
    columns = ["Driver", "Share of what the ratings explain", "Average rating today", "Top-two-box share",
               "Score gain from one rating point", f"One point is worth ({c} a year)"]
    for d, r in summary.iterrows():
        if r.get("suppressed"):
            continue
        rows.append({
            "Driver": driver_label(d),
            "Share of what the ratings explain": f"{pct(r['importance'])} ({pct(r['importance_lo'])}-{pct(r['importance_hi'])})",
            "Average rating today": f"{r['mean_rating']:.1f} of {r['scale_max']:.0f}",
            "Top-two-box share": pct(r["top_box_share"]),
            "Score gain from one rating point": f"{r['score_gain_per_point']:.2f}",
            f"One point is worth ({c} a year)": money(value_per_point.get(d), currency).replace(f"{c} ", "")
            + (" (effect not clearly above zero)" if not r["coefficient_lo"] > 0 else ""),
        })
    return pd.DataFrame(rows, columns=columns).set_index("Driver")


def drivers_sentences(kd, value_per_point: pd.Series, currency: str, metric: str) -> list[str]:
    """Where to invest, in plain words, from :class:`cxvalue.drivers.KeyDrivers` (a skipped
    analysis: its reason)."""
    if skipped_sentence(kd):
        return [skipped_sentence(kd)]
    s = kd.summary[~kd.summary["suppressed"].astype(bool)]
    top = s.index[0]
    out = [f"The ratings of {len(s)} attributes explain {pct(kd.r2_)} of the variation in the {metric.upper()} answers "
           f"of {kd.n_responses_:,} respondents."]
    out.append(f"The biggest driver is {driver_label(top)}: {pct(s.loc[top, 'importance'])} of what the ratings explain "
               f"(95% interval {pct(s.loc[top, 'importance_lo'])} to {pct(s.loc[top, 'importance_hi'])}).")
    vpp = value_per_point.reindex(s.index).dropna()
    if not vpp.empty:
        best = vpp.idxmax()
        out.append(f"Raising every customer's {driver_label(best)} rating by one point would move enough customers up a "
                   f"group to be worth about {money(vpp[best], currency)} a year; the table gives each driver's figure, "
                   f"to set against what the improvement would cost.")
    return out


def journeys_sentence(jt) -> str:
    """Which predicts churn and revenue better: journeys or touchpoints (a skipped analysis: its reason)."""
    if skipped_sentence(jt):
        return skipped_sentence(jt)
    s = jt.summary
    names = {"churn_12m": "churn within 12 months", "revenue_per_customer_year": "revenue per customer per year"}
    parts = []
    for outcome, r in s.iterrows():
        what = names.get(outcome, outcome)
        if r["winner"] == "neither":
            parts.append(f"for {what} neither predicts clearly better (difference {r['difference']:+.3f}, 95% interval "
                         f"{r['difference_lo']:+.3f} to {r['difference_hi']:+.3f})")
        else:
            parts.append(f"for {what} {r['winner']} win: they explain {pct(max(r['journey_explained'], r['touchpoint_explained']), 1)} "
                         f"of the variation out of sample against {pct(min(r['journey_explained'], r['touchpoint_explained']), 1)} "
                         f"(difference {r['difference']:+.3f}, 95% interval {r['difference_lo']:+.3f} to {r['difference_hi']:+.3f})")
    return (f"Comparing how well satisfaction with whole journeys and with single touchpoints predicts what "
            f"{jt.n_customers_:,} customers did next: " + "; ".join(parts) + ".")


def loop_sentences(r: dict[str, Any], currency: str) -> list[str]:
    """Closing the loop on complaints, from ``ClosingTheLoop.results()`` (skipped: its reason)."""
    if skipped_sentence(r):
        return [skipped_sentence(r)]
    lo, hi = r["hazard_ratio_ci"]
    arms = r["arms"]
    out = [f"{r['n_complainers']:,} customers complained; {pct(r['resolved_share'])} of first complaints were resolved.",
           f"While a complaint stays open, customers leave {r['hazard_ratio_open_vs_resolved']:.1f} times as fast as once "
           f"it is resolved (95% interval {lo:.2f} to {hi:.2f}), comparing like with like: within 12 months "
           f"{pct(arms['open']['adjusted_rate_12m'])} leave if it is never resolved against "
           f"{pct(arms['resolved']['adjusted_rate_12m'])} if it is resolved at once."]
    v = r.get("value_of_closing_a_loop") or {}
    if v.get("value_per_resolved_complaint") is not None:
        vlo, vhi = v.get("value_ci") or [None, None]
        out.append(f"Each additional complaint resolved keeps about {v['customer_years_kept']:.2f} customer-years and is "
                   f"worth about {money(v['value_per_resolved_complaint'], currency)} of margin over "
                   f"{v['horizon_years']:.0f} years (95% interval {money(vlo, currency)} to {money(vhi, currency)}).")
    return out


@_table
def transitions_table(tr) -> pd.DataFrame:
    """Movement between groups for people: rows = group at the first answer, share at the next
    (empty when the analysis was skipped)."""
    if skipped_sentence(tr):
        return pd.DataFrame()
    s = tr.summary
    shares = s.pivot(index="from_group", columns="to_group", values="row_share").reindex(index=tr.groups, columns=tr.groups)
    counts = s.pivot(index="from_group", columns="to_group", values="customers").reindex(index=tr.groups, columns=tr.groups)
    out = shares.copy().astype(object)
    for i in shares.index:
        for j in shares.columns:
            out.loc[i, j] = "suppressed" if pd.isna(shares.loc[i, j]) else f"{pct(shares.loc[i, j])} ({counts.loc[i, j]:,.0f})"
    out.index = [f"from {label(g)}" for g in out.index]
    out.columns = [f"to {label(g)}" for g in out.columns]
    return out


def transitions_sentence(r: dict[str, Any], currency: str) -> str:
    """Movement between groups in words, from ``Transitions.results()`` (skipped: its reason)."""
    if skipped_sentence(r):
        return skipped_sentence(r)
    text = f"{r['customers']:,} customers answered again, on average {12 * r['mean_gap_years']:.0f} months later"
    if r.get("moved_up") is None:  # withheld: a small cell would be a total on its own
        text += "; how many moved up or down is not shown, because it would reveal a group too small to report."
    else:
        text += (f": {r['moved_up']:,} moved up a group, {r['moved_down']:,} moved down and "
                 f"{r['stayed']:,} stayed.")
    if r.get("value_change_per_customer_year") is not None:
        v = r["value_change_per_customer_year"]
        text += (f" Valued at what a customer of each group brings in a year, the moves up and down together "
                 f"{'raise' if v >= 0 else 'lower'} the average customer's yearly value by {money(abs(v), currency)} for "
                 f"each year that passes. Part of any movement is the noise of a second reading, not a real change.")
    return text


def who_answered_sentences(wa, weighted: bool | None = None) -> list[str]:
    """Who answered the surveys, and what re-weighting them to the whole base changes (a skipped
    analysis: its reason). ``weighted``: whether the business case uses these weights
    (:attr:`cxvalue.pipeline.Analysis.who_answered` is fitted among today's customers; None: a
    base of any other kind, not tied to the case)."""
    if skipped_sentence(wa):
        return [skipped_sentence(wa)]
    s, r = wa.summary, wa.results()
    # churn is left out: respondents were customers on the day they answered, by construction
    worst = s["std_diff"].drop(index=[i for i in s.index if str(i).startswith("churned")]).abs().idxmax()
    whom = "" if weighted is None else "today's "
    out = [f"{r['respondents']:,} of {whom}{r['base_customers']:,} customers answered a survey. Respondents differ most from the "
           f"rest in {label(worst).replace('=', ': ')} (standardised difference {s.loc[worst, 'std_diff']:+.2f}; above 0.1 "
           f"matters)."]
    base = "the whole base" if weighted is None else "today's customers"
    use = ("The business case uses these weights (parameter response_weights), so that the customers it moves look "
           "like today's customers." if weighted else
           "The business case uses the respondents as they are; a large difference here is a reason to read it with care.")
    out.append(f"Weighting each respondent by the inverse of their chance to answer makes them stand for {base}; "
               f"the table shows what that changes in each group's share and revenue. {use}")
    return out


@_table
def who_answered_table(wa, currency: str, min_cell_size: int = 0) -> pd.DataFrame:
    """Each group's share and revenue, as answered and weighted to the whole base; groups with
    fewer than ``min_cell_size`` respondents are suppressed; empty when the analysis was skipped."""
    g = wa.group_values_.iloc[0:0] if skipped_sentence(wa) else wa.group_values_
    c = html.escape(currency)
    small = g["respondents"] < min_cell_size

    def show(values, fmt):
        return ["suppressed" if s else fmt(x) for x, s in zip(values, small)]

    out = pd.DataFrame({
        "Respondents": show(g["respondents"], lambda x: f"{x:,.0f}"),
        "Share": show(g["share"], lambda x: pct(x, 1)),
        "Share, weighted to the base": show(g["share_weighted"], lambda x: pct(x, 1)),
        f"Revenue ({c} per customer per year)": show(g["revenue_per_customer_year"], lambda x: f"{x:,.0f}"),
        f"Revenue, weighted ({c} per customer per year)": show(g["revenue_per_customer_year_weighted"],
                                                                lambda x: f"{x:,.0f}"),
    }, index=[label(x) for x in g.index])
    out.index.name = "Group"
    return out


def referrals_sentence(analysis, currency: str, referred: pd.DataFrame | None = None) -> str:
    """The referrals lever in words; with ``referred`` (:func:`cxvalue.referrals.referred_customers`)
    skipped, its reason."""
    if skipped_sentence(referred):
        return skipped_sentence(referred)
    if analysis.referrals is None:
        return ("The data names no referrer for customers who joined after a survey (column referred_by), so the "
                "referrals lever is left out.")
    s = analysis.referrals.summary
    parts = [f"{label(g)} {r['adjusted'] * 100:.1f}" for g, r in s.iterrows() if pd.notna(r.get("adjusted"))]
    by_year = np.ravel(np.asarray(analysis.case.inputs.get("referral_value", [0.0]), float))
    return (f"New customers referred per 100 customers a year, compared like with like: {', '.join(parts)}. Each referred "
            f"customer is valued at the base's average lifetime value over the years left in the case: "
            f"{money(by_year[0], currency)} for one referred in year 1, "
            f"{money(by_year[-1], currency)} for one referred in year {len(by_year)}, in the business case's "
            f"referrals lever.")


@_table
def referred_table(referred: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Customers referred by each group, and what they spend, for people."""
    c = html.escape(currency)
    out = pd.DataFrame({
        "Customers they referred": [f"{n:,}" for n in referred["referred"]],
        f"Referred customers' revenue ({c} per customer per year)": [
            "suppressed" if s else ("–" if pd.isna(v) else f"{v:,.0f}")
            for v, s in zip(referred["revenue_per_customer_year"], referred["suppressed"])],
        "Referred customers still customers": ["–" if pd.isna(v) else pct(v) for v in referred["still_customers"]],
    }, index=[f"referred by a {label(g)}" for g in referred.index])
    return out


# --------------------------------------------------------------------------- how strong a hidden factor would have to be

#: What a hidden factor would have to do to each outcome, by model (``{e}``: its strength).
E_VALUE_EFFECTS = {
    "churn": "{e} times as likely to leave",
    "revenue": "change what they spend {e}-fold",
    "cost to serve": "change what they cost to serve {e}-fold",
}


def _times(e: float) -> str:
    return f"{e:.2f}" if e < 1.1 else f"{e:.1f}"


def e_value_sentences(summary: pd.DataFrame, reference: str, outcome: str) -> list[str]:
    """How strong a factor the data cannot see would have to be to explain each group's gap away,
    one sentence per group compared with the reference (the model's E-values, :mod:`cxvalue.evalue`).

    ``summary``: a linkage model's ``summary`` (``e_value``, ``e_value_ci``), optionally through
    :func:`suppress`; groups without an E-value (the reference, skipped, not estimable or too small
    to show) get no sentence, and a skipped model none at all. ``outcome``: ``"churn"``,
    ``"revenue"`` or ``"cost to serve"`` (:data:`E_VALUE_EFFECTS`; another name reads "change
    their <outcome> E-fold").
    """
    effect = E_VALUE_EFFECTS.get(outcome, f"change their {html.escape(outcome)} {{e}}-fold")
    out = []
    for g, r in summary.iterrows():
        e, e_ci = r.get("e_value", float("nan")), r.get("e_value_ci", float("nan"))
        if g == reference or pd.isna(e) or pd.isna(e_ci):
            continue
        interval = ("the interval already includes no difference." if e_ci <= 1 else
                    f"to move the interval to include no difference, {_times(e_ci)} times.")
        out.append(
            f"To explain away the gap in {html.escape(outcome)} between {label(g)} and {label(reference)} customers, "
            f"a factor we cannot see would have to make customers {_times(e)} times as likely to be in the "
            f"{label(g)} group rather than the {label(reference)} one and {effect.format(e=_times(e))}, over and "
            f"above the controls; {interval}")
    return out


def e_value_method_sentence(churn: Any = None) -> str:
    """The method note on the E-values: what they measure and which conversion each ratio took.

    ``churn``: the fitted :class:`cxvalue.linkage.ChurnModel` (its ``e_value_conversion_`` and
    ``churn_by_end_of_follow_up_``); skipped or None: nothing is said about churn.
    """
    from cxvalue import evalue

    fitted = churn is not None and getattr(churn, "fitted", False)
    hazard_conversion = churn.e_value_conversion_ if fitted else None
    churn_share = churn.churn_by_end_of_follow_up_ if fitted else None

    text = ("The E-value (VanderWeele & Ding 2017) says how strong a factor the data cannot see would have to be "
            "to explain a gap away: the smallest association, on the risk-ratio scale, it would need with both the "
            "satisfaction group and the outcome, over and above the controls; it is given for the estimate and for "
            "the end of the 95% interval nearer no difference (1 when the interval already includes it). A small "
            "E-value (near 1) means a weak hidden factor would do; it is a yardstick, not a test. Revenue and "
            "cost-to-serve ratios compare means of amounts that cannot be negative and are used as they are "
            "(Ding & VanderWeele 2016).")
    if hazard_conversion == evalue.HR_COMMON:
        text += (f" Churn hazard ratios are converted to risk ratios first with the formula for a common outcome, "
                 f"RR = (1 − 0.5^√HR) / (1 − 0.5^√(1/HR)), because "
                 f"{pct(churn_share)} of customers had left by the end of follow-up (15% or more).")
    elif hazard_conversion == evalue.HR_RARE:
        text += (f" Churn hazard ratios are used as risk ratios, because only {pct(churn_share)} of customers had "
                 f"left by the end of follow-up (under 15%, a rare outcome).")
    return text


# --------------------------------------------------------------------------- the cost of failure demand


def reason_label(reason: str) -> str:
    """``billing_error`` -> ``billing error`` (escaped)."""
    return label(reason)


def _ratio_words(x: float) -> str:
    return f"{x:.1f} times as" if x >= 1.05 else (f"{(1 - x) * 100:.0f}% less" if x <= 0.95 else "about as")


def failure_demand_sentences(fd, currency: str, lever: dict[str, Any] | None = None) -> list[str]:
    """What contacts cost by reason, which come from dissatisfied customers and drive churn, and
    what removing a share of the top reasons is worth (:class:`cxvalue.failure_demand.FailureDemand`;
    skipped: its reason); ``lever``: the business case's failure-demand lever
    (``case.inputs["failure_demand"]``), None when the scenario leaves it out."""
    if skipped_sentence(fd):
        return [skipped_sentence(fd)]
    s = fd.summary
    r = fd.results()
    low, ref = label(r["lowest_group"]), label(r["reference_group"])
    top = s.index[0]
    out = [f"Over the last 12 months contacts cost {money(s['cost_per_year'].sum(), currency)} to serve; the costliest "
           f"reason is {reason_label(top)}: {money(s.loc[top, 'cost_per_year'], currency)} a year "
           f"({pct(s.loc[top, 'share_of_cost'])} of the cost, {s.loc[top, 'contacts']:,.0f} contacts)."]
    conc = s[s["concentration_lo"] > 1].sort_values("concentration", ascending=False)
    if len(conc):
        c = conc.iloc[0]
        out.append(f"{reason_label(conc.index[0]).capitalize()} comes most from dissatisfied customers: "
                   f"{pct(c['exposed_share_lowest'])} of {low} customers contacted about it in the year before their "
                   f"survey against {pct(c['exposed_share_reference'])} of {ref} customers ({c['concentration']:.1f} "
                   f"times as likely, 95% interval {c['concentration_lo']:.1f} to {c['concentration_hi']:.1f}).")
    if r["churn_link_skipped"]:
        out.append(html.escape(r["churn_link_skipped"]))
    else:
        linked = s[s["hr_lo"] > 1].sort_values("hazard_ratio", ascending=False)
        if len(linked):
            parts = [f"{reason_label(g)} {row['hazard_ratio']:.2f} ({row['hr_lo']:.2f} to {row['hr_hi']:.2f})"
                     for g, row in linked.iterrows()]
            out.append(f"Compared like with like (same plan, size, history and satisfaction, and the other top reasons), "
                       f"customers who contacted about these reasons before their survey left faster afterwards; "
                       f"hazard ratios with 95% intervals: {', '.join(parts)}.")
        else:
            out.append("No contact reason is clearly linked to faster churn once customers are compared like with like.")
    ranked = fd.ranked()
    if len(ranked):
        b = ranked.iloc[0]
        kept = b.get("customers_kept_per_year")
        kept_words = (f" and about {kept:,.0f} customers kept a year" if pd.notna(kept) and kept >= 0.5 else "")
        out.append(f"Removing {pct(r['share_removed'])} of {reason_label(ranked.index[0])} contacts would be worth about "
                   f"{money(b['value_per_year'], currency)} a year (95% interval {money(b['value_lo'], currency)} to "
                   f"{money(b['value_hi'], currency)}): {money(b['cost_saved_per_year'], currency)} of cost to serve "
                   f"saved{kept_words}. The table ranks the {len(ranked)} costliest reasons the same way, to set "
                   f"against what fixing each would cost.")
    if lever:
        out.append(f"The business case includes removing {pct(lever['share_removed'])} of the contacts about "
                   f"{listed([reason_label(x) for x in lever['reasons']])} as a lever: "
                   f"{money(lever['value_per_year'], currency)} a year once in place, following the programme's ramp.")
    elif len(ranked):
        out.append("The business case does not include this value; to add it as a lever, set the parameter "
                   "scenario.failure_demand_reasons to top (or to the reasons to remove).")
    return out


@_table
def failure_demand_table(fd, currency: str, max_rows: int = 12) -> pd.DataFrame:
    """Contact reasons for people, costliest first: cost, contacts, how much more the lowest group
    contacts about it, the adjusted churn hazard ratio, and the yearly value of removing a share
    (empty when skipped). Past ``max_rows`` reasons, the rest share one row of their cost."""
    if skipped_sentence(fd):
        return pd.DataFrame()
    c = html.escape(currency)
    r = fd.results()
    share = pct(r["share_removed"])
    low = label(r["lowest_group"])
    rows = []
    for reason, x in fd.summary.iterrows():
        def ci(v, lo, hi, fmt="{:.2f}"):
            return "–" if pd.isna(v) else f"{fmt.format(v)} ({fmt.format(lo)}-{fmt.format(hi)})"

        valued = reason in fd.top_
        rows.append({
            "Reason": reason_label(reason),
            f"Cost ({c} a year)": f"{x['cost_per_year']:,.0f}",
            "Share of the cost": pct(x["share_of_cost"]),
            "Contacts a year": f"{x['contacts']:,.0f}",
            f"{low.capitalize()} vs {label(r['reference_group'])} customers contacting (ratio, 95% interval)":
                ci(x["concentration"], x["concentration_lo"], x["concentration_hi"], "{:.1f}"),
            "Churn hazard ratio, adjusted (95% interval)": ci(x["hazard_ratio"], x["hr_lo"], x["hr_hi"]),
            f"Removing {share} is worth ({c} a year)": f"{x['value_per_year']:,.0f}" if valued else "–",
            "95% interval": (f"{x['value_lo']:,.0f} to {x['value_hi']:,.0f}" if valued else "–"),
        })
    out = pd.DataFrame(rows).set_index("Reason")
    if len(out) > max_rows:
        rest = fd.summary.iloc[max_rows:]
        more = pd.DataFrame([["–"] * len(out.columns)], columns=out.columns,
                            index=pd.Index([f"{len(rest)} more reasons"], name="Reason"))
        more.iloc[0, :3] = [f"{rest['cost_per_year'].sum():,.0f}", pct(rest["share_of_cost"].sum()),
                            f"{rest['contacts'].sum():,.0f}"]
        out = pd.concat([out.iloc[:max_rows], more])
    return out


# --------------------------------------------------------------------------- CX maturity


def maturity_sentences(mat) -> list[str]:
    """The CX maturity self-assessment in plain words (:class:`cxvalue.maturity.Maturity`;
    skipped: its reason)."""
    if skipped_sentence(mat):
        return [skipped_sentence(mat)]
    from cxvalue.maturity import level_name

    r = mat.results()
    rd = r["round"]
    el = mat.summary
    who = "teams" if r["unit"] == "team" else "respondents"
    out = [f"In the latest round ({_day(rd['first_day'])} to {_day(rd['last_day'])}) {rd['units']} {who} "
           f"({rd['respondents']} respondents) rated the {len(el)} elements of CX maturity: the overall level is "
           f"{r['overall_level']:.1f} of 5, \"{level_name(r['overall_level'])}\"."]
    hi, lo = el["level"].idxmax(), el["level"].idxmin()
    out.append(f"Strongest: {html.escape(el.loc[hi, 'label']).lower()} ({el.loc[hi, 'level']:.1f}); weakest: "
               f"{html.escape(el.loc[lo, 'label']).lower()} ({el.loc[lo, 'level']:.1f}).")
    split = el[el["disagreement"]].sort_values("spread", ascending=False)
    if len(split):
        e = split.iloc[0]
        out.append(f"The {who} disagree most on {html.escape(e['label']).lower()}: from {e['lowest']:.1f} "
                   f"({label(e['lowest_unit'])}) to {e['highest']:.1f} ({label(e['highest_unit'])}). Teams that see "
                   f"the same company this differently are a finding in themselves: worth a conversation before "
                   f"the next round.")
    elif r["units"] > 1:
        out.append(f"The {who} broadly agree: no element's levels are {2:.0f} or more apart.")
    ch = r["change"]
    if ch is not None:
        lo_ci, hi_ci = ch["overall_ci"]
        sure = ""
        if lo_ci is not None:
            sure = (f" (95% interval {lo_ci:+.1f} to {hi_ci:+.1f}, from the {ch['units_in_both']} {who} who took part "
                    f"both times" + ("; a real change)" if lo_ci > 0 or hi_ci < 0 else "; within the noise)"))
        prev = r["previous_round"]
        out.append(f"Since the previous round ({_day(prev['first_day'])}) the overall level moved {ch['overall']:+.1f}"
                   f"{sure}.")
    since = mat.since_last_run()
    if since is not None:
        out.append(f"Since the last run the overall level moved {since:+.1f}." if abs(since) >= 0.05 else
                   "Since the last run the overall level has not changed.")
    return out


@_table
def maturity_table(mat) -> pd.DataFrame:
    """Each element's level for people: level (1-5), its name, lowest and highest unit, spread,
    change since the previous round (empty when skipped)."""
    if skipped_sentence(mat):
        return pd.DataFrame()
    from cxvalue.maturity import level_name

    who = "team" if mat.unit_kind_ == "team" else "respondent"
    rows = []
    for e, r in mat.summary.iterrows():
        rows.append({
            "Element": html.escape(r["label"]),
            "Level (1-5)": f"{r['level']:.1f} ({level_name(r['level'])})",
            f"Lowest {who}": f"{r['lowest']:.1f} ({label(r['lowest_unit']) if r['spread'] > 0 else 'all alike'})",
            f"Highest {who}": f"{r['highest']:.1f} ({label(r['highest_unit']) if r['spread'] > 0 else 'all alike'})",
            "Spread (levels)": f"{r['spread']:.1f}" + (" – they disagree" if r["disagreement"] else ""),
            "Since the previous round": "–" if pd.isna(r["change"]) else f"{r['change']:+.1f}",
        })
    return pd.DataFrame(rows).set_index("Element")


# --------------------------------------------------------------------------- the within-customer check


def revenue_method_sentence(model: Any, window_months: int) -> str:
    """How the revenue gaps were measured, in plain words (``model``: a fitted rate model; its
    ``method_`` says which comparison is the headline). Empty when the model was skipped."""
    if model is None or not getattr(model, "fitted", False):
        return ""
    what = getattr(model, "what", "revenue")
    if getattr(model, "method_", None) == "within":
        n = model.summary["within_customers"].sum()
        return (f"The {what} gaps compare each customer with themselves: what they spent per year after the survey "
                f"against their own level in the {window_months} months before it ({n:,.0f} customers who had one), "
                "adjusted for the other controls and set to the whole base's mix. Chance swings in a customer's spend "
                "before the survey (a lumpy year, a one-off order) do not bias this comparison, which they would if "
                "spend before the survey were only held equal; it assumes instead that the groups would have moved "
                "alike without the gap the survey reveals (the placebo check below tests that on the year before it).")
    return (f"The {what} gaps compare each group with customers who looked alike before the survey (held equal: "
            "spend, typical bill and cost to serve before it, tenure and the customer attributes).")


def within_customer_sentences(models: dict[str, Any], reference: str) -> list[str]:
    """The two comparisons side by side: each customer against their own level before the survey
    (within-customer) and against comparable customers (covariate-adjusted), for every group, and
    whether the two agree (their 95% intervals overlap). The one that is not a model's headline
    (``method_``) is shown as its check. ``models``: ``{"revenue": RevenueModel, "cost to serve":
    CostToServeModel}``, fitted (a skipped model, or one without the check, says nothing)."""
    from cxvalue.comparisons import within_disagrees

    checks = {"within": [], "covariates": []}  # the check shown, by the headline it checks
    disagree = []
    for outcome, m in models.items():
        if m is None or not getattr(m, "fitted", False) or "within_ratio" not in m.summary:
            continue
        headline = getattr(m, "method_", None) or "covariates"
        check = "covariates" if headline == "within" else "within"
        for g, r in m.summary.iterrows():
            if g == reference or pd.isna(r.get("within_ratio")) or pd.isna(r.get("ratio")) or r.get("small_group"):
                continue
            c = r.get(f"{check}_ratio"), r.get(f"{check}_lo"), r.get(f"{check}_hi")
            if pd.isna(c[0]):
                continue
            checks[headline].append(f"{outcome}, {label(g)}: {c[0]:.3f} ({c[1]:.3f} to {c[2]:.3f}) against "
                                    f"{r['ratio']:.3f}")
            if within_disagrees(r):
                disagree.append(f"{outcome} of {label(g)} customers")
    out = []
    if checks["covariates"]:
        out.append("A second check compares each customer with themselves: what they spent and cost after the survey "
                   "against their own level in the months before it, among the customers who had one. It does not "
                   "depend on how well those months measure a customer's size (a lumpy stretch makes the main "
                   "comparison's controls partly blind), but it assumes the groups would have moved alike without the "
                   "gap the survey reveals. Ratios (95% interval) against the main comparison's: "
                   f"{'; '.join(checks['covariates'])}.")
    if checks["within"]:
        out.append("A second check compares each group with customers who looked alike before the survey instead of "
                   "with themselves (holding equal their spend, typical bill and cost to serve before it, tenure and "
                   "the customer attributes). It needs no assumption about how the groups would have moved, but "
                   "chance swings in spend before the survey leave its controls partly blind to account size. Ratios "
                   f"(95% interval) against the headline's: {'; '.join(checks['within'])}.")
    if not out:
        return []
    if disagree:
        out.append(f"The two do not agree for the {' and the '.join(disagree)}: part of that gap may come from "
                   "differences between customers that the controls measure only roughly, or the groups were already "
                   "moving apart before the survey. Read the figure with that caution.")
    else:
        out.append("The two agree (their intervals overlap), so the gaps do not hang on how the controls measure "
                   "account size.")
    return out


# --------------------------------------------------------------------------- the placebo check


#: The placebo check's outcomes in words.
_PLACEBO_OUTCOMES = {"revenue": "revenue", "cost_to_serve": "cost to serve"}


def placebo_sentences(placebo) -> list[str]:
    """The placebo check in words (:class:`cxvalue.placebo.Placebo`; skipped: its reason): what it
    does, and whether the comparison found no gap where it should find none."""
    if skipped_sentence(placebo):
        return [skipped_sentence(placebo)]
    s = placebo.summary
    months = placebo.shift_months
    out = [f"As a check, the same adjusted comparison was made as if every customer had answered {months} months "
           f"earlier, with the group of their real answer: over the year before the survey, which their answer cannot "
           f"have changed, it should find no gap (ratios of about 1)."]
    if s.empty:
        out.append("No group could be compared that way.")
    elif placebo.passed:
        worst = s.iloc[(s["ratio"] - 1).abs().argmax()]
        out.append(f"It passes: every ratio's 95% interval includes 1 or lies within {pct(placebo.tolerance)} of it "
                   f"(largest: {label(worst['group'])} {_PLACEBO_OUTCOMES[worst['outcome']]}"
                   f" {worst['ratio']:.3f}). The controls leave no sign of a gap that predates the survey.")
    else:
        failed = s[~s["passed"]]
        parts = [f"{label(r.group)} {_PLACEBO_OUTCOMES[r.outcome]} {r.ratio:.3f} "
                 f"({r.ratio_lo:.3f} to {r.ratio_hi:.3f})" for r in failed.itertuples()]
        out.append(f"It fails for {', '.join(parts)}: gaps of that size were there before the survey, either because "
                   f"the groups differ in ways the data does not hold or because dissatisfaction showed before it was "
                   f"asked about. The measured gaps above may be off by about as much.")
    return out


@_table
def placebo_table(placebo) -> pd.DataFrame:
    """The placebo ratios for people: outcome and group, customers, ratio with its 95% interval,
    and whether it passed (empty when skipped)."""
    if skipped_sentence(placebo) or placebo.summary.empty:
        return pd.DataFrame()
    rows = [{"Compared": f"{_PLACEBO_OUTCOMES[r.outcome].capitalize()}, {label(r.group)}",
             "Customers": f"{r.customers:,}", "Ratio a year before the survey (should be about 1)": f"{r.ratio:.3f}",
             "95% interval": f"{r.ratio_lo:.3f} to {r.ratio_hi:.3f}", "Passes": "yes" if r.passed else "no"}
            for r in placebo.summary.itertuples()]
    out = pd.DataFrame(rows).set_index("Compared")
    out.index.name = "Compared"
    return out
