"""The whole chain in one call: check -> history -> linkage -> business case.

The report notebooks that need the fitted models (business case, scorecard, page one)
call :func:`analyse` instead of repeating the same dozen lines; each notebook still runs on
its own. Every step is a documented function of its module; this one only strings them
together with the run parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from cxvalue import business_case, config, history, linkage, value
from cxvalue import data as cxdata

__all__ = ["Analysis", "analyse"]


@dataclass
class Analysis:
    """Everything one run computes from the data, ready for notebooks and charts."""

    params: dict[str, Any]
    checked: cxdata.CheckedData
    history: pd.DataFrame
    reference: str
    revenue: linkage.RevenueModel
    cost_to_serve: linkage.CostToServeModel
    churn: linkage.ChurnModel
    referrals: linkage.ReferralModel | None
    curves: pd.DataFrame
    base: pd.Series
    case: business_case.BusinessCase
    #: Where ``params["gross_margin"]`` came from: "transaction cost" or "parameter".
    margin_source: str = "parameter"


def analyse(source: Any, params: dict[str, Any]) -> Analysis:
    """Check ``source``, build the history, fit the linkage models and price the scenario.

    The referrals model is fitted only when some customer was referred inside a post window
    (``history.post_referred``); without referrals the business case has no referrals lever.
    With ``margin_source = "auto"`` and transactions that carry a ``cost``, the margin on
    revenue is the data's own (:func:`cxvalue.value.measured_gross_margin`) and replaces
    ``gross_margin`` in ``Analysis.params``.
    """
    reference = config.reference_group(params)
    checked = cxdata.check(source, params)
    hist = history.history(checked, params)
    source_of_margin = "parameter"
    measured = value.measured_gross_margin(hist) if params["margin_source"] == "auto" else None
    if measured is not None:
        params = {**params, "gross_margin": measured}
        source_of_margin = "transaction cost"
    cov = list(checked.covariates)
    size = params["min_group_size"]
    revenue = linkage.RevenueModel(reference, cov, size).fit(hist)
    cost = linkage.CostToServeModel(reference, cov, size).fit(hist)
    churn = linkage.ChurnModel(reference, cov, size).fit(hist)
    referrals = linkage.ReferralModel(reference, cov, size).fit(hist) if hist["post_referred"].sum() > 0 else None
    curves = churn.km_curves(hist)
    base = history.active_customers_by_group(checked, hist)
    case = business_case.evaluate(revenue, cost, churn, curves, base, params, referrals)
    return Analysis(params, checked, hist, reference, revenue, cost, churn, referrals, curves, base, case,
                    source_of_margin)
