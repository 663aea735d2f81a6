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
