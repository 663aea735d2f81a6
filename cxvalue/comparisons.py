"""Reading the linkage comparisons' tables, without the modelling libraries.

A report notebook that loads the run's stored analysis (:mod:`cxvalue.store`) reads the models'
summary tables; these helpers are all it needs of :mod:`cxvalue.linkage`, which imports
statsmodels, scipy and patsy (about 1.7 s of a kernel's CPU). :mod:`cxvalue.linkage` uses and
re-exports them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["observed_results", "within_disagrees"]


def observed_results(summary: pd.DataFrame) -> dict[str, Any]:
    """The observed part of ``results.json``'s ``linkage`` block, from
    :func:`cxvalue.linkage.observed_summary`'s table."""
    def num(x):
        return None if pd.isna(x) else float(x)

    return {
        "revenue": {g: {"observed": num(r.revenue_per_customer_year)} for g, r in summary.iterrows()},
        "churn": {g: {"observed_rate_12m": num(r.churn_rate_12m)} for g, r in summary.iterrows()},
        "cost_to_serve": {g: {"observed": num(r.cost_to_serve_per_customer_year)} for g, r in summary.iterrows()},
    }


def within_disagrees(row) -> bool:
    """A rate model's summary row whose within-customer 95% interval and the covariate-adjusted
    comparison's 95% interval do not overlap (False where either is missing)."""
    lo, hi = ("covariates_lo", "covariates_hi") if "covariates_lo" in row else ("ratio_lo", "ratio_hi")
    return bool(row["within_lo"] > row[hi] or row["within_hi"] < row[lo])
