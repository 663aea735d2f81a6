"""Value linkage: what each satisfaction group spends, costs and how fast it leaves.

This module holds the raw (observed) comparison; the adjusted models come on top of it.

Units: money per customer per year in the data's currency; churn as a share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from statsmodels.duration.survfunc import SurvfuncRight

from cxvalue.history import DAYS_PER_YEAR

__all__ = ["observed_summary", "observed_results", "km_churn_rate"]


def km_churn_rate(duration_days: pd.Series, churned: pd.Series, days: float = DAYS_PER_YEAR) -> float:
    """Kaplan-Meier share of customers lost within ``days`` of their index response.

    Censored customers (still active at ``as_of``) count for as long as they were observed,
    which is why this is not the plain share churned. Returns NaN when nobody is observed.
    """
    if len(duration_days) == 0:
        return float("nan")
    sf = SurvfuncRight(np.asarray(duration_days, float), np.asarray(churned, int))
    times, surv = sf.surv_times, sf.surv_prob
    before = surv[times <= days]
    return float(1.0 - (before[-1] if before.size else 1.0))


def observed_summary(history: pd.DataFrame, reference_group: str, min_group_size: int = 0) -> pd.DataFrame:
    """Raw per-group outcomes in the post window, one row per group (in band order).

    Parameters
    ----------
    history : :func:`cxvalue.history.history` output (``group``, ``post_revenue``,
        ``post_contact_cost``, ``post_contacts``, ``post_exposure_years``, ``churned``,
        ``duration_days``).
    reference_group : the group the ratios divide by.
    min_group_size : groups smaller than this are flagged ``small_group``.

    Returns
    -------
    DataFrame indexed by group: ``customers``, ``customer_years``,
    ``revenue_per_customer_year`` (sum of post-window revenue / sum of post-window
    exposure), ``cost_to_serve_per_customer_year`` (same with contact cost),
    ``contacts_per_customer_year``, ``churn_rate_12m`` (Kaplan-Meier), the ratios of each
    to the reference group and ``small_group``.
    """
    groups = history["group"].cat.categories if hasattr(history["group"], "cat") else sorted(history["group"].unique())
    g = history.groupby("group", observed=False)
    out = pd.DataFrame({
        "customers": g.size(),
        "customer_years": g["post_exposure_years"].sum(),
        "revenue": g["post_revenue"].sum(),
        "contact_cost": g["post_contact_cost"].sum(),
        "contacts": g["post_contacts"].sum(),
    }).reindex(groups)
    years = out["customer_years"].where(out["customer_years"] > 0)
    out["revenue_per_customer_year"] = out.pop("revenue") / years
    out["cost_to_serve_per_customer_year"] = out.pop("contact_cost") / years
    out["contacts_per_customer_year"] = out.pop("contacts") / years
    out["churn_rate_12m"] = [km_churn_rate(h["duration_days"], h["churned"]) for _, h in
                             ((grp, history[history["group"] == grp]) for grp in groups)]
    for col in ("revenue_per_customer_year", "cost_to_serve_per_customer_year", "churn_rate_12m"):
        ref = out.loc[reference_group, col] if reference_group in out.index else np.nan
        out[col.replace("_per_customer_year", "").replace("_12m", "") + "_ratio"] = out[col] / ref
    out["small_group"] = out["customers"] < min_group_size
    out.index.name = "group"
    return out


def observed_results(summary: pd.DataFrame) -> dict[str, Any]:
    """The observed part of ``results.json``'s ``linkage`` block."""
    def num(x):
        return None if pd.isna(x) else float(x)

    return {
        "revenue": {g: {"observed": num(r.revenue_per_customer_year)} for g, r in summary.iterrows()},
        "churn": {g: {"observed_rate_12m": num(r.churn_rate_12m)} for g, r in summary.iterrows()},
        "cost_to_serve": {g: {"observed": num(r.cost_to_serve_per_customer_year)} for g, r in summary.iterrows()},
    }
