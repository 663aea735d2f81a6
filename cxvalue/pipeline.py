"""The whole chain in one call: check -> history -> linkage -> business case.

The report notebooks that need the fitted models (business case, scorecard, page one)
call :func:`analyse` instead of repeating the same dozen lines; each notebook still runs on
its own. Every step is a documented function of its module; this one only strings them
together with the run parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from cxvalue import business_case, config, history, linkage, value
from cxvalue import data as cxdata

__all__ = ["Analysis", "analyse", "failure_demand_lever", "NO_CONTACTS"]

NO_CONTACTS = ("Cost to serve: the data has no contacts table, so what each group costs to serve cannot be "
               "measured and the case has no cost-to-serve lever. Add contacts.csv (customer_id, date, channel; "
               "cost if known) to include it.")


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
    #: Who answered and the response weights that make respondents stand for today's customers
    #: in the business case (:class:`cxvalue.loop.WhoAnswered`); None with ``response_weights = none``.
    who_answered: Any = None
    #: The weights used, one per history row (None: every respondent counts once).
    response_weights: pd.Series | None = None
    #: The cost of failure demand (:class:`cxvalue.failure_demand.FailureDemand`) when the scenario
    #: includes its lever (``scenario.failure_demand_reasons``); else None.
    failure_demand: Any = None

    def skipped(self) -> dict[str, str]:
        """What the data could not support, for ``results.json["skipped"]``: a block's dotted path
        (``linkage.churn``, ``business_case.retention``, ...) -> the plain reason the report gives."""
        out = {f"linkage.{name}": m.skipped_ for name, m in
               (("revenue", self.revenue), ("cost_to_serve", self.cost_to_serve), ("churn", self.churn))
               if not m.fitted}
        out.update({f"business_case.{what.replace(' ', '_')}": why for what, why in self.case.left_out.items()})
        return out

    def cost_to_serve_per_customer_year(self) -> float:
        """Today's base's mean cost to serve per customer-year: each group's adjusted cost to serve
        weighted by its customers today (0 when the data has no contacts)."""
        if not self.cost_to_serve.fitted:
            return 0.0
        cost = self.cost_to_serve.summary["adjusted"].astype(float)
        n = self.base.reindex(cost.index).fillna(0.0).astype(float)
        ok = cost.notna() & (n > 0)
        return float((cost[ok] * n[ok]).sum() / n[ok].sum()) if ok.any() else 0.0

    def warnings(self) -> list[str]:
        """The models' caveats and every reason a part was left out, each once."""
        seen = [*self.revenue.warnings_, *self.cost_to_serve.warnings_, *self.churn.warnings_,
                *self.case.left_out.values()]
        return list(dict.fromkeys(seen))


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
    cost = linkage.CostToServeModel(reference, cov, size)
    if "contacts" in checked.tables:
        cost.fit(hist)
    else:
        cost.skip(hist, NO_CONTACTS)
    churn = linkage.ChurnModel(reference, cov, size).fit(hist)
    referrals = linkage.ReferralModel(reference, cov, size).fit(hist) if hist["post_referred"].sum() > 0 else None
    curves = churn.km_curves(hist)
    who, weights = _response_weights(checked, hist, params, cov)
    base = history.active_customers_by_group(checked, hist, weights)
    case = business_case.evaluate(revenue, cost, churn, curves, base, params, referrals, history=hist, weights=weights)
    case.inputs["margin_source"] = source_of_margin
    case.inputs["response_weights"] = "respondents weighted to today's base" if weights is not None else \
        "each respondent counts once"
    failure = None
    if params["scenario"]["failure_demand_reasons"]:
        case, failure = failure_demand_lever(checked, hist, params, cov, case, base)
    return Analysis(params, checked, hist, reference, revenue, cost, churn, referrals, curves, base, case,
                    source_of_margin, who, weights, failure)


def failure_demand_lever(checked, hist: pd.DataFrame, params: dict[str, Any], cov: list[str],
                         case: business_case.BusinessCase, base: pd.Series):
    """The case with the failure-demand lever of ``scenario.failure_demand_reasons`` ("top" or
    reasons separated by commas), and the fitted :class:`cxvalue.failure_demand.FailureDemand`.

    The lever is worth the yearly value of removing ``failure_demand.share_removed`` of the
    chosen reasons' contacts (cost saved plus a year of margin per customer kept), following the
    scenario's ramp and lag (:func:`cxvalue.business_case.add_yearly_lever`). What the data
    cannot support (no reasons; a reason the data does not have, or too rare to show) goes into
    ``case.left_out`` and the rest of the case stands."""
    from cxvalue import failure_demand as fdm

    fd = fdm.FailureDemand.from_params(params, cov).fit(
        fdm.reason_costs(checked, params), fdm.reason_exposure(checked, hist, params), hist,
        case.clv["margin_per_year"], base)
    left_out = dict(case.left_out)
    if fd.skipped_:
        left_out["failure_demand"] = fd.skipped_
        return replace(case, left_out=left_out), fd
    wanted = params["scenario"]["failure_demand_reasons"].strip()
    names = list(fd.top_) if wanted.lower() == "top" else [x.strip() for x in wanted.split(",") if x.strip()]
    shown = [str(r) for r in fd.summary_.index]
    chosen = [r for r in dict.fromkeys(names) if r in shown and r != fdm.OTHER]
    pooled = set(fd.costs_.attrs.get("pooled", []))
    for r in dict.fromkeys(names):
        if r in chosen:
            continue
        why = (f"fewer than {params['min_cell_size']} customers contacted about it in the last 12 months"
               if r in pooled else f"the data has no contact about it in the last 12 months (reasons: {', '.join(shown)})")
        left_out[f"failure demand: {r}"] = (f"The scenario names the contact reason '{r}' for its failure-demand lever, "
                                            f"but {why}, so it is left out of the lever.")
    if not chosen:
        left_out.setdefault("failure_demand", "The scenario's failure-demand lever has no contact reason to remove.")
        return replace(case, left_out=left_out), fd
    s = fd.summary_.loc[chosen]
    detail = {"reasons": chosen, "share_removed": float(fd.share_removed),
              "cost_saved_per_year": float(s["cost_saved_per_year"].sum()),
              "retention_value_per_year": float(s["retention_value_per_year"].fillna(0.0).sum()),
              "value_by_reason": {r: float(v) for r, v in s["value_per_year"].items()},
              "convention": ("Removing a share of a reason's contacts saves that share of its cost and keeps the customers "
                             "it would have driven away, each valued at one year of the base's mean margin; the part "
                             "made at the start of programme year k pays from lag years later. Additive to the moves: "
                             "where the reasons are what the dissatisfied contact about, the moves' cost-to-serve lever "
                             "already prices part of it.")}
    case = business_case.add_yearly_lever(replace(case, left_out=left_out), "failure_demand",
                                          float(s["value_per_year"].sum()), fd.yearly_value_draws(chosen), params,
                                          detail, label=f"Failure demand removed ({fd.share_removed:.0%} of "
                                                        f"{len(chosen)} reason{'s' if len(chosen) > 1 else ''})",
                                          cost_saved_per_year=detail["cost_saved_per_year"])
    return case, fd


def _response_weights(checked, hist: pd.DataFrame, params: dict[str, Any], cov: list[str]):
    """Who answered among today's customers (:class:`cxvalue.loop.WhoAnswered`) and its weights per
    history row, or
    ``(None, None)`` when ``response_weights`` is ``none``; weights are None too when the fit is
    skipped (e.g. every customer answered: nothing to correct)."""
    from cxvalue import loop

    if params.get("response_weights", "auto") == "none":
        return None, None
    labels = list(config.bands_for(params))
    # today's customers only: the case prices today's base, and among everyone ever in the study window
    # the non-respondents include customers who left before anyone could ask them (small accounts, on
    # most data), which would make the weights favour the respondents who look like them
    c = checked.tables["customers"]
    today = c.filter(c.end_date.isnull()).select("customer_id").to_pandas()["customer_id"].astype(str)
    base = loop.response_base(checked, hist, params)
    base = base[base["customer_id"].astype(str).isin(set(today))]
    who = loop.WhoAnswered(cov, groups=labels).fit(base)
    if who.skipped_ or who.weights_.empty:
        return who, None
    w = hist["customer_id"].astype(str).map(who.weights_.rename(index=str)).fillna(1.0)
    return who, w.astype(float)
