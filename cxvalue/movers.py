"""Who would move: the scenario's movers priced at their own levels (g-computation on the movers).

A scenario moves some of *today's* customers of a group ``g`` (e.g. detractors) to ``h``
(passives). What that is worth depends on who those customers are: today's detractors are
smaller accounts than the average respondent, and today's customers have already survived
some time since their survey, so they leave more slowly than a fresh cohort. So each move is
priced on the customers who would make it, from the same fitted models
(:mod:`cxvalue.linkage`):

* **who**: the respondents of ``g`` still a customer at ``as_of`` (they stand in for today's
  base of ``g``, as in :func:`cxvalue.history.active_customers_by_group`);
* **revenue, cost to serve, referrals** per customer-year: the mean of each mover's own
  prediction with the group set to ``g`` (staying) and to ``h`` (moved)
  (``RevenueModel.predict``);
* **survival** from today over the horizon: the mean over the movers of
  ``exp(-cumulative hazard)`` as ``g`` and as ``h``, each conditioned on the time the customer
  has already been followed since the survey (``ChurnModel.cumulative_hazard``): the
  piecewise baseline over the follow-up the data has, its last interval's hazard carried on
  beyond it.

Each move becomes two rows, the movers as they are (named ``g``) and the movers as ``h``
(named ``"g as h"``), in the shape :func:`cxvalue.business_case.scenario_cash_flows` prices.
The mean survival is the mean over movers (not weighted by what each one spends): a
simplification of second order. With response weights every mean is weighted, so that the
respondents stand for today's customers of the group, not for those who chose to answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["mover_rows", "row_name"]


def row_name(g: str, h: str) -> str:
    """The row of the movers from ``g`` as ``h`` (``g`` itself when ``h == g``)."""
    return g if g == h else f"{g} as {h}"


def _movers(history: pd.DataFrame, group: str, fitted: pd.Index) -> pd.DataFrame:
    """Today's customers of ``group`` among the respondents the models were fitted on."""
    h = history[(history["group"].astype(str) == group) & ~history["churned"].astype(bool)]
    return h[h.index.isin(fitted)]


def _mean_prediction(model, rows: pd.Index, group: str, weights: np.ndarray) -> float:
    if model is None or not model.fitted:
        return 0.0
    return float(np.average(model.predict(group, rows).to_numpy(), weights=weights))


def _survival(churn, movers: pd.DataFrame, group: str, horizon_years: int, weights: np.ndarray) -> np.ndarray:
    """Mean survival of ``movers`` as ``group`` at the end of years 1..H from today."""
    if churn is None or not churn.fitted or movers.empty:
        return np.ones(horizon_years)
    cum = churn.cumulative_hazard(movers.index, group, movers["duration_days"].to_numpy(float),
                                  np.arange(1, horizon_years + 1))
    return np.average(np.exp(-cum), axis=0, weights=weights)


def mover_rows(history: pd.DataFrame, revenue, cost_to_serve, churn, referrals, moves: list[tuple[str, str]],
               base_customers: pd.Series, horizon_years: int, weights: pd.Series | None = None) -> pd.DataFrame:
    """One row per (movers, group they are priced as) for every move ``(g, h)`` of ``moves``.

    Columns: ``customers`` (today's base of ``g``), ``movers`` (respondents standing in for
    them), ``as_group`` (the group whose effects price the row), ``revenue``, ``cost_to_serve``
    and ``referrals`` per customer-year, ``hazard_ratio`` (of ``as_group``, for the
    simulation) and ``survival`` (array: share still a customer at the end of years 1..H from
    today). Money in the data's currency. A move whose groups have no estimate, or whose
    source group has nobody today, is left out (the caller says why).

    ``weights`` (one per history row, e.g. :class:`cxvalue.loop.WhoAnswered` response weights)
    make the respondents stand for today's customers rather than for who answered: every mean
    above is weighted by them; ``movers_effective`` is then the weights' effective number.
    """
    H = int(horizon_years)
    fitted = revenue.design_.index if revenue.fitted else pd.Index([])
    hr = churn.summary_["hazard_ratio"] if churn is not None and churn.fitted else pd.Series(dtype=float)
    rows = {}
    for g, h in moves:
        movers = _movers(history, g, fitted)
        if movers.empty:
            continue
        w = (np.ones(len(movers)) if weights is None
             else weights.reindex(movers.index).fillna(1.0).to_numpy(float))
        for as_group in (g, h):
            name = row_name(g, as_group)
            if name in rows:
                continue
            rows[name] = {
                "customers": float(base_customers.get(g, 0.0)), "movers": len(movers),
                "movers_effective": float(w.sum() ** 2 / (w ** 2).sum()), "as_group": as_group,
                "revenue": _mean_prediction(revenue, movers.index, as_group, w),
                "cost_to_serve": _mean_prediction(cost_to_serve, movers.index, as_group, w),
                "referrals": _mean_prediction(referrals, movers.index, as_group, w),
                "hazard_ratio": float(hr.get(as_group, np.nan)) if len(hr) else 1.0,
                "survival": _survival(churn, movers, as_group, H, w)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    if out.empty:
        out = pd.DataFrame(columns=["customers", "movers", "movers_effective", "as_group", "revenue", "cost_to_serve",
                                    "referrals", "hazard_ratio", "survival"])
    out["hazard_ratio"] = out["hazard_ratio"].astype(float).fillna(1.0)
    out.index.name = "row"
    return out
