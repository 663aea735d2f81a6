"""Altair charts for the report: results in, ``alt.Chart`` out, no file I/O.

Every axis says its unit; tooltips carry the exact figures.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

__all__ = ["group_bars", "data_quality_bars"]

#: Group colours: lowest satisfaction red, middle grey, highest green (colour-blind safe hues).
GROUP_COLOURS = ["#c4463a", "#9e9e9e", "#2e7d5b"]


def group_bars(summary: pd.DataFrame, column: str, title: str, axis_title: str, fmt: str = ",.0f") -> alt.Chart:
    """One bar per satisfaction group for ``summary[column]`` (suppressed groups left out).

    Parameters
    ----------
    summary : per-group table indexed by group (e.g. :func:`cxvalue.linkage.observed_summary`).
    column : the value to plot.
    title, axis_title : chart title and y-axis title (with the unit, e.g. "USD per customer per year").
    fmt : d3 number format for tooltips.
    """
    df = summary.reset_index()[["group", column, "customers"]].dropna(subset=[column])
    order = [str(g) for g in summary.index]
    df["group"] = df["group"].astype(str)
    return (
        alt.Chart(df, title=title)
        .mark_bar()
        .encode(
            x=alt.X("group:N", sort=order, title="Satisfaction group at the survey"),
            y=alt.Y(f"{column}:Q", title=axis_title, axis=alt.Axis(format="~s" if "%" not in fmt else "%")),
            color=alt.Color("group:N", sort=order, scale=alt.Scale(domain=order, range=GROUP_COLOURS[: len(order)] if len(order) == 3 else alt.Undefined), legend=None),
            tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip(f"{column}:Q", title=axis_title, format=fmt),
                     alt.Tooltip("customers:Q", title="Customers", format=",")],
        )
        .properties(width=220, height=220)
    )


def data_quality_bars(quality: pd.DataFrame) -> alt.Chart:
    """Rows used and excluded per table (from :func:`cxvalue.data.quality_table`)."""
    df = quality[quality["what"].str.startswith("excluded")].copy()
    if df.empty:
        df = pd.DataFrame({"table": [], "what": [], "rows": []})
    return (
        alt.Chart(df, title="Rows excluded by the data checks")
        .mark_bar()
        .encode(
            y=alt.Y("what:N", title=None, sort="-x"),
            x=alt.X("rows:Q", title="Rows excluded"),
            color=alt.Color("table:N", title="Table"),
            tooltip=["table:N", "what:N", alt.Tooltip("rows:Q", format=",")],
        )
        .properties(width=420)
    )


def observed_vs_adjusted(summary: pd.DataFrame, title: str, axis_title: str) -> alt.Chart:
    """Raw and adjusted value per group side by side (``observed``, ``adjusted`` columns)."""
    df = summary.reset_index()[["group", "observed", "adjusted", "customers"]].dropna(subset=["adjusted"])
    df["group"] = df["group"].astype(str)
    long = df.melt(id_vars=["group", "customers"], value_vars=["observed", "adjusted"], var_name="measure")
    long["measure"] = long["measure"].map({"observed": "Raw (as observed)", "adjusted": "Adjusted (like with like)"})
    order = [str(g) for g in summary.index]
    return (
        alt.Chart(long, title=title)
        .mark_bar()
        .encode(
            x=alt.X("group:N", sort=order, title=None),
            xOffset=alt.XOffset("measure:N", sort=["Raw (as observed)", "Adjusted (like with like)"]),
            y=alt.Y("value:Q", title=axis_title),
            color=alt.Color("measure:N", title=None, sort=["Raw (as observed)", "Adjusted (like with like)"],
                            scale=alt.Scale(range=["#b0b7c3", "#1f4e79"]), legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip("measure:N", title="Measure"),
                     alt.Tooltip("value:Q", title=axis_title, format=",.0f"),
                     alt.Tooltip("customers:Q", title="Customers", format=",")],
        )
        .properties(width=300, height=220)
    )


def ratio_with_ci(summary: pd.DataFrame, ratio: str, lo: str, hi: str, title: str, axis_title: str) -> alt.Chart:
    """Each group's ratio to the reference group with its 95% interval; a rule at 1."""
    df = summary.reset_index()[["group", ratio, lo, hi, "customers"]].dropna(subset=[ratio])
    df["group"] = df["group"].astype(str)
    order = [str(g) for g in summary.index]
    base = alt.Chart(df, title=title)
    points = base.mark_point(filled=True, size=90, color="#1f4e79").encode(
        y=alt.Y("group:N", sort=order, title=None),
        x=alt.X(f"{ratio}:Q", title=axis_title, scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip(f"{ratio}:Q", title="Ratio", format=".2f"),
                 alt.Tooltip(f"{lo}:Q", title="95% interval from", format=".2f"),
                 alt.Tooltip(f"{hi}:Q", title="95% interval to", format=".2f"),
                 alt.Tooltip("customers:Q", title="Customers", format=",")],
    )
    bars = base.mark_rule(color="#1f4e79", strokeWidth=2).encode(y=alt.Y("group:N", sort=order), x=f"{lo}:Q", x2=f"{hi}:Q")
    one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(color="#888", strokeDash=[4, 3]).encode(x="x:Q")
    return (one + bars + points).properties(width=300, height=30 * len(df) + 40)


def survival_curves(curves: pd.DataFrame, order: list[str], title: str = "Share still a customer since the survey") -> alt.Chart:
    """Kaplan-Meier curves per group (``group``, ``days``, ``retained``)."""
    df = curves.copy()
    df["months"] = df["days"] / 30.44
    colours = GROUP_COLOURS if len(order) == 3 else alt.Undefined
    return (
        alt.Chart(df, title=title)
        .mark_line(interpolate="step-after", strokeWidth=2.5)
        .encode(
            x=alt.X("months:Q", title="Months since the survey"),
            y=alt.Y("retained:Q", title="Share still a customer", axis=alt.Axis(format="%"), scale=alt.Scale(zero=False)),
            color=alt.Color("group:N", sort=order, title=None, scale=alt.Scale(domain=order, range=colours),
                            legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip("months:Q", title="Months", format=".0f"),
                     alt.Tooltip("retained:Q", title="Still a customer", format=".1%")],
        )
        .properties(width=340, height=240)
    )


def value_waterfall(cash_flows: pd.DataFrame, discount_rate: float, one_off_cost: float, currency: str) -> alt.Chart:
    """Present value of each lever, less the programme's costs, adding up to the NPV."""
    import numpy as np

    years = np.asarray(cash_flows.index, float)
    disc = (1 + discount_rate) ** years
    if 0 in cash_flows.index:  # the one-off cost is the year-0 row
        one_off_cost = 0.0
    steps = [("Customers kept longer", float((cash_flows["retention"] / disc).sum())),
             ("Higher spend", float((cash_flows["spend"] / disc).sum())),
             ("Lower cost to serve", float((cash_flows["cost_to_serve"] / disc).sum())),
             *([("New customers referred", float((cash_flows["referrals"] / disc).sum()))]
               if "referrals" in cash_flows and cash_flows["referrals"].abs().sum() > 0 else []),
             *([("Less failure demand", float((cash_flows["failure_demand"] / disc).sum()))]
               if "failure_demand" in cash_flows and cash_flows["failure_demand"].abs().sum() > 0 else []),
             ("Programme cost", -float(one_off_cost + (cash_flows["cost"] / disc).sum()))]
    rows, running = [], 0.0
    for name, v in steps:
        rows.append({"step": name, "start": running, "end": running + v, "value": v,
                     "kind": "benefit" if v >= 0 else "cost"})
        running += v
    rows.append({"step": "Net present value", "start": 0.0, "end": running, "value": running, "kind": "total"})
    df = pd.DataFrame(rows)
    order = list(df["step"])
    return (
        alt.Chart(df, title="Where the value comes from (present value over the horizon)")
        .mark_bar()
        .encode(
            x=alt.X("step:N", sort=order, title=None, axis=alt.Axis(labelAngle=0, labelLimit=120)),
            y=alt.Y("start:Q", title=currency), y2="end:Q",
            color=alt.Color("kind:N", scale=alt.Scale(domain=["benefit", "cost", "total"],
                                                      range=["#2e7d5b", "#c4463a", "#1f4e79"]), legend=None),
            tooltip=[alt.Tooltip("step:N", title="Step"), alt.Tooltip("value:Q", title=currency, format=",.0f")],
        )
        .properties(width=620, height=260)
    )


def npv_distribution(draws, currency: str) -> alt.Chart:
    """Histogram of the simulated NPV (uncertainty of the linkage effects), a rule at zero."""
    import numpy as np

    counts, edges = np.histogram(np.asarray(draws, float), bins=40)
    df = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "share": counts / counts.sum()})
    bars = alt.Chart(df, title="How sure: NPV across 10,000 plausible versions of the effects").mark_bar(
        color="#1f4e79").encode(
        x=alt.X("from:Q", title=f"Net present value ({currency})", bin="binned"), x2="to:Q",
        y=alt.Y("share:Q", title="Share of simulations", axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("from:Q", title="From", format=",.0f"), alt.Tooltip("to:Q", title="To", format=",.0f"),
                 alt.Tooltip("share:Q", title="Share", format=".1%")])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#c4463a", strokeDash=[4, 3]).encode(x="x:Q")
    return (bars + zero).properties(width=620, height=200)


def tornado(sens: pd.DataFrame, base_npv: float, currency: str) -> alt.Chart:
    """NPV at each assumption's low and high setting (from :func:`cxvalue.business_case.sensitivity`)."""
    rows = []
    for _, r in sens.iterrows():
        rows.append({"assumption": r["assumption"], "setting": f"low: {r['low']}", "from": base_npv, "to": r["npv_low"],
                     "npv": r["npv_low"], "end": "low"})
        rows.append({"assumption": r["assumption"], "setting": f"high: {r['high']}", "from": base_npv, "to": r["npv_high"],
                     "npv": r["npv_high"], "end": "high"})
    df = pd.DataFrame(rows)
    order = list(sens["assumption"])
    bars = alt.Chart(df, title="What moves the NPV most (each assumption alone, at the ends of its range)").mark_bar().encode(
        y=alt.Y("assumption:N", sort=order, title=None, axis=alt.Axis(labelLimit=220)),
        x=alt.X("from:Q", title=f"Net present value ({currency})"), x2="to:Q",
        color=alt.Color("end:N", scale=alt.Scale(domain=["low", "high"], range=["#c4463a", "#2e7d5b"]),
                        title="Assumption at its", legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("assumption:N", title="Assumption"), alt.Tooltip("setting:N", title="Setting"),
                 alt.Tooltip("npv:Q", title=f"NPV ({currency})", format=",.0f")])
    base = alt.Chart(pd.DataFrame({"x": [base_npv]})).mark_rule(color="#1f4e79").encode(x="x:Q")
    return (bars + base).properties(width=520, height=22 * len(order) + 20)


def kpi_trend(trend: pd.DataFrame) -> alt.Chart:
    """Each KPI across runs, one small panel per KPI, with its margin of error as a band."""
    base = alt.Chart(trend).encode(
        x=alt.X("run:N", sort=alt.SortField("order"), title=None, axis=alt.Axis(labelAngle=-30)))
    line = base.mark_line(point=True).encode(
        y=alt.Y("actual:Q", title=None, scale=alt.Scale(zero=False, nice=True), axis=alt.Axis(format=",.4~g")),
        tooltip=[alt.Tooltip("run:N", title="Run"), alt.Tooltip("actual:Q", title="Actual", format=",.3~f")])
    band = base.mark_errorbar().encode(y="low:Q", y2="high:Q")
    return (alt.layer(band, line, data=trend).properties(width=190, height=130)
            .facet(facet=alt.Facet("kpi:N", title=None), columns=3)
            .resolve_scale(y="independent")
            .properties(title="KPIs across runs (shares in %, money per customer per year; bars: 95% margin of error)"))


def importance_performance(summary: pd.DataFrame, value_per_point: pd.Series, currency: str) -> alt.Chart:
    """Importance (share of what the ratings explain) against performance (average rating):
    top left = important and weakly rated, where a point of improvement pays most."""
    d = summary[~summary["suppressed"].astype(bool)].copy()
    d["driver"] = [str(x).removeprefix("attr_").removeprefix("journey_").replace("_", " ") for x in d.index]
    d["value"] = value_per_point.reindex(d.index).to_numpy()
    base = alt.Chart(d).encode(
        x=alt.X("mean_rating:Q", title="Average rating today (performance)",
                scale=alt.Scale(domain=[1, float(d["scale_max"].max()) if len(d) else 10])),  # the whole rating scale
        y=alt.Y("importance:Q", title="Share of what the ratings explain (importance)", axis=alt.Axis(format="%")),
    )
    points = base.mark_circle(opacity=0.8, color="#1f4e79").encode(
        size=alt.Size("value:Q", title=f"One point is worth ({currency} a year)", legend=alt.Legend(format=",.0f")),
        tooltip=[alt.Tooltip("driver:N", title="Driver"), alt.Tooltip("importance:Q", title="Importance", format=".0%"),
                 alt.Tooltip("mean_rating:Q", title="Average rating", format=".1f"),
                 alt.Tooltip("value:Q", title=f"One point is worth ({currency} a year)", format=",.0f")])
    labels = base.mark_text(align="left", dx=10, fontSize=12).encode(text="driver:N")
    return (points + labels).properties(width=520, height=300, title="Where a point of improvement pays most")


def goal_paths(trend: pd.DataFrame, currency: str) -> alt.Chart:
    """Each dated goal's path (line from the start to the goal) and every run's reading against
    it (points with their 95% margin of error), one panel per KPI, dates along the bottom.

    ``trend``: :meth:`cxvalue.goals.GoalPaths.trend` (shares already in %)."""
    d = trend.copy()
    units = {"points": "points", "share": "%", "money": f"{currency} per customer per year"}
    d["panel"] = [f"{lab} ({units.get(u, u)})" for lab, u in zip(d["label"], d["unit"])]
    d["date"] = pd.to_datetime(d["date"]).dt.strftime("%Y-%m-%d")
    x = alt.X("date:T", title=None, axis=alt.Axis(format="%b %Y", labelAngle=-30))
    y = alt.Y("value:Q", title=None, scale=alt.Scale(zero=False, nice=True), axis=alt.Axis(format=",.4~g"))
    path = alt.Chart().transform_filter(alt.datum.kind == "path").mark_line(color="#9e9e9e", strokeDash=[6, 3]).encode(
        x=x, y=y, tooltip=[alt.Tooltip("date:T", title="Date", format="%d %b %Y"),
                           alt.Tooltip("value:Q", title="Path", format=",.4~g")])
    runs = alt.Chart().transform_filter(alt.datum.kind == "run")
    bars = runs.mark_errorbar(color="#1f4e79").encode(x=x, y=alt.Y("low:Q", title=None), y2="high:Q")
    points = runs.mark_point(filled=True, size=60).encode(
        x=x, y=y,
        color=alt.Color("status:N", title="Reading", scale=alt.Scale(
            domain=["on the path", "on the path within the noise", "behind the path"],
            range=["#2e7d5b", "#1f4e79", "#c4463a"])),
        tooltip=[alt.Tooltip("run:N", title="Run"), alt.Tooltip("date:T", title="Data to", format="%d %b %Y"),
                 alt.Tooltip("value:Q", title="Actual", format=",.4~g"), alt.Tooltip("status:N", title="Reading")])
    return (alt.layer(path, bars, points, data=d).properties(width=260, height=150)
            .facet(facet=alt.Facet("panel:N", title=None), columns=2)
            .resolve_scale(y="independent", x="independent")
            .properties(title="Path to each goal (dashed) and each run's reading with its 95% margin of error"))


def failure_demand_value(ranked: pd.DataFrame, currency: str, share_removed: float) -> alt.Chart:
    """The yearly value of removing ``share_removed`` of each top contact reason, most valuable
    first: cost saved and customers kept (stacked), with the 95% interval of the total.

    ``ranked``: :meth:`cxvalue.failure_demand.FailureDemand.ranked`."""
    d = ranked.reset_index()
    d["reason"] = d["reason"].astype(str).str.replace("_", " ")
    order = list(d["reason"])
    long = pd.concat([
        pd.DataFrame({"reason": d["reason"], "part": "Cost to serve saved", "value": d["cost_saved_per_year"]}),
        pd.DataFrame({"reason": d["reason"], "part": "Customers kept (a year of margin)",
                      "value": d["retention_value_per_year"].fillna(0.0)}),
    ], ignore_index=True)
    y = alt.Y("reason:N", sort=order, title=None)
    bars = alt.Chart(long).mark_bar().encode(
        y=y, x=alt.X("sum(value):Q", title=f"{currency} a year"),
        color=alt.Color("part:N", title=None, scale=alt.Scale(range=["#1f4e79", "#2e7d5b"]),
                        legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("reason:N", title="Reason"), alt.Tooltip("part:N", title="Part"),
                 alt.Tooltip("value:Q", title=f"{currency} a year", format=",.0f")])
    interval = alt.Chart(d).mark_rule(color="#1f2933").encode(
        y=y, x="value_lo:Q", x2="value_hi:Q",
        tooltip=[alt.Tooltip("value_lo:Q", title="95% interval from", format=",.0f"),
                 alt.Tooltip("value_hi:Q", title="to", format=",.0f")])
    return (bars + interval).properties(
        width=520, height=30 * max(len(d), 1) + 20,
        title=f"What removing {share_removed:.0%} of each reason's contacts is worth a year (line: 95% interval)")


def maturity_levels(units: pd.DataFrame, elements: pd.DataFrame, unit_title: str = "Team") -> alt.Chart:
    """Each element's level (1-5) as every team (or respondent) sees it (dots) and on average
    (red mark): the spread along a row is how much they disagree.

    ``units``: unit x element levels; ``elements``: :attr:`cxvalue.maturity.Maturity.summary`."""
    long = units.rename_axis("unit").reset_index().melt(id_vars="unit", var_name="element", value_name="level")
    long = long.dropna(subset=["level"])
    names = elements["label"].to_dict()
    long["element"] = long["element"].map(names)
    mean = pd.DataFrame({"element": [names[e] for e in elements.index], "level": elements["level"].to_numpy()})
    order = list(mean["element"])
    x = alt.X("level:Q", title="Level (1 = initial, 3 = defined, 5 = leading)",
              scale=alt.Scale(domain=[1, 5], zero=False), axis=alt.Axis(values=[1, 2, 3, 4, 5], format="d"))
    y = alt.Y("element:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
    bars = alt.Chart(mean).mark_tick(color="#c4463a", thickness=3, size=22).encode(
        x=x, y=y, tooltip=[alt.Tooltip("element:N", title="Element"),
                           alt.Tooltip("level:Q", title="Average level", format=".1f")])
    dots = alt.Chart(long).mark_circle(size=70, opacity=0.85, color="#1f4e79").encode(
        x=x, y=y, tooltip=[alt.Tooltip("unit:N", title=unit_title), alt.Tooltip("element:N", title="Element"),
                           alt.Tooltip("level:Q", title="Level", format=".1f")])
    return (bars + dots).properties(width=520, height=28 * len(order) + 20,
                                    title=f"CX maturity by element: the average (red) and each {unit_title.lower()} (dots)")
