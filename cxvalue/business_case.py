"""Business-case arithmetic: scenario cash flows by lever; NPV, ROI, payback and IRR.

Pure functions (no fitting, no I/O). Conventions, stated once:

* ``cash_flows`` are yearly net amounts for years 1..H, received at each year's end;
  ``initial`` is spent at time 0 (a one-off programme cost, as a positive number).
* ``NPV = -initial + sum_t cash_flows[t] / (1 + d)^t``.
* ``ROI = (discounted benefits - discounted costs) / discounted costs``.
* payback: months until the cumulative undiscounted net reaches zero, the year's cash
  spread evenly over its 12 months (linear interpolation); ``None`` if never within H.
* IRR: the rate that makes NPV zero (Brent's method on [-99%, 1000%]); ``None`` when the
  flows never change sign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

__all__ = ["npv", "roi", "payback_months", "irr", "customer_years", "scenario_cash_flows", "npv_distribution",
           "summarise_npv", "BusinessCase", "evaluate", "sensitivity", "scenario_shares", "group_value_per_year", "value_at_stake", "LEVERS"]


#: The levers a scenario's benefit is split into, in the order charts and tables show them.
LEVERS = ("retention", "spend", "cost_to_serve", "referrals")


def npv(cash_flows, discount_rate: float, initial: float = 0.0) -> float:
    """Net present value of yearly flows at year ends, less an up-front ``initial`` cost."""
    cf = np.asarray(cash_flows, float)
    years = np.arange(1, cf.size + 1)
    return float(-initial + np.sum(cf / (1 + discount_rate) ** years))


def roi(benefits, costs, discount_rate: float, initial: float = 0.0) -> float:
    """(PV benefits - PV costs) / PV costs, costs including the up-front ``initial``."""
    pv_b = npv(benefits, discount_rate)
    pv_c = npv(costs, discount_rate) + initial
    if pv_c <= 0:
        return float("nan")
    return float((pv_b - pv_c) / pv_c)


def payback_months(cash_flows, initial: float = 0.0) -> float | None:
    """Months until cumulative net cash (undiscounted) first reaches zero; None if never."""
    cum = -float(initial)
    flows = np.asarray(cash_flows, float)
    if cum >= 0 and (flows.size == 0 or flows[0] >= 0):
        return 0.0  # nothing to pay back
    for year, flow in enumerate(flows):
        if cum < 0 and flow > 0 and cum + flow >= 0:
            return float(12 * year + 12 * (-cum / flow))
        cum += flow
    return None


def irr(cash_flows, initial: float = 0.0) -> float | None:
    """Internal rate of return of ``-initial`` at time 0 and ``cash_flows`` at years 1..H."""
    cf = np.asarray(cash_flows, float)
    flows = np.concatenate([[-initial], cf])
    if not (np.any(flows < 0) and np.any(flows > 0)):
        return None

    def f(rate):
        return npv(cf, rate, initial)

    lo, hi = -0.99, 10.0
    if f(lo) * f(hi) > 0:
        return None
    return float(brentq(f, lo, hi, xtol=1e-10))


# --------------------------------------------------------------------------- scenario cash flows


def customer_years(survival) -> np.ndarray:
    """Expected customer-years in each year after a start: ``(S(j-1) + S(j)) / 2``, S(0) = 1."""
    s = np.asarray(survival, float)
    return (np.concatenate([[1.0], s[:-1]]) + s) / 2


def scenario_cash_flows(groups: pd.DataFrame, moves: dict[tuple[str, str], float], ramp: list[float],
                        gross_margin: float, horizon_years: int, yearly_cost: float = 0.0,
                        lag_years: int = 0, referral_value: float = 0.0) -> pd.DataFrame:
    """Yearly benefit of moving customers between groups, split by lever, and programme cost.

    Parameters
    ----------
    groups : one row per group: ``customers`` (in the base today), ``revenue`` and
        ``cost_to_serve`` (adjusted, per customer-year) and ``survival`` (array: share still a
        customer at the end of years 1..H after a start); optionally ``referrals`` (new
        customers referred per customer-year).
    moves : ``{(from_group, to_group): share of from_group moved}``.
    ramp : cumulative share of each move achieved by the end of programme year 1, 2, ...
        (e.g. ``[0.5, 1.0]``; the last value holds afterwards).
    gross_margin : share of revenue kept as margin.
    horizon_years : years of cash flows.
    yearly_cost : running programme cost per year (one-off costs are the NPV's ``initial``).
    lag_years : years between a customer's move and its first benefit.
    referral_value : value of one referred customer when they join (e.g. a new customer's
        CLV), in currency; with ``groups["referrals"]`` it prices the referrals lever.

    Returns
    -------
    One row per year 1..H: ``retention``, ``spend``, ``cost_to_serve``, ``referrals`` (the levers), ``benefit``
    (their sum), ``cost`` and ``net``, in currency; and, for context, ``revenue_change`` and
    ``cost_to_serve_change``: how much revenue and cost to serve the moved customers bring
    compared with staying where they were (customers kept longer included).

    Notes
    -----
    A cohort moved in year ``k`` from ``g`` to ``h`` counts from year ``k + lag`` on, as
    fresh customers of ``h`` instead of ``g`` (survival restarts at the move). With margin
    ``m = gross_margin * revenue - cost_to_serve`` and customer-years ``A`` (see
    :func:`customer_years`), the cohort adds ``m_h A_h - m_g A_g`` a year, split exactly into
    spend ``gross_margin (rev_h - rev_g) A_h``, cost to serve ``(cost_g - cost_h) A_h`` and
    retention ``m_g (A_h - A_g)``; referrals add ``referral_value (ref_h A_h - ref_g A_g)``.
    """
    H = int(horizon_years)
    levers = {name: np.zeros(H) for name in LEVERS}
    refs = groups["referrals"] if "referrals" in groups else pd.Series(0.0, index=groups.index)
    changes = {name: np.zeros(H) for name in ("revenue_change", "cost_to_serve_change")}
    cum_ramp = np.array([ramp[min(k, len(ramp) - 1)] for k in range(H)], float)
    new_share = np.diff(np.concatenate([[0.0], cum_ramp]))  # share of each move made in year k
    for (g, h), share in moves.items():
        if share <= 0:
            continue
        src, dst = groups.loc[g], groups.loc[h]
        a_g, a_h = customer_years(src["survival"]), customer_years(dst["survival"])
        m_g = gross_margin * src["revenue"] - src["cost_to_serve"]
        moved_total = src["customers"] * share
        for k in range(H):  # cohort moved during year k + 1
            n = moved_total * new_share[k]
            if n == 0:
                continue
            for t in range(k + lag_years, H):  # benefit years
                j = t - (k + lag_years)  # years since the benefit started
                if j >= len(a_h):
                    break
                levers["spend"][t] += n * gross_margin * (dst["revenue"] - src["revenue"]) * a_h[j]
                levers["cost_to_serve"][t] += n * (src["cost_to_serve"] - dst["cost_to_serve"]) * a_h[j]
                levers["retention"][t] += n * m_g * (a_h[j] - a_g[j])
                levers["referrals"][t] += n * referral_value * (refs[h] * a_h[j] - refs[g] * a_g[j])
                changes["revenue_change"][t] += n * (dst["revenue"] * a_h[j] - src["revenue"] * a_g[j])
                changes["cost_to_serve_change"][t] += n * (dst["cost_to_serve"] * a_h[j] - src["cost_to_serve"] * a_g[j])
    out = pd.DataFrame(levers, index=pd.RangeIndex(1, H + 1, name="year"))
    out["benefit"] = out[list(LEVERS)].sum(axis=1)
    out["cost"] = float(yearly_cost)
    out["net"] = out["benefit"] - out["cost"]
    for name, values in changes.items():  # context, not cash: total revenue and cost-to-serve moved
        out[name] = values
    return out


def npv_distribution(groups: pd.DataFrame, revenue_ratio: pd.DataFrame, cost_ratio: pd.DataFrame,
                     hazard_ratio: pd.DataFrame, reference: str, reference_survival, moves: dict, ramp: list[float],
                     gross_margin: float, discount_rate: float, horizon_years: int, one_off_cost: float = 0.0,
                     yearly_cost: float = 0.0, lag_years: int = 0, referral_ratio: pd.DataFrame | None = None,
                     referral_value: float = 0.0) -> np.ndarray:
    """NPV of the scenario under each joint draw of the linkage effects (one NPV per row).

    ``groups`` gives ``customers`` per group; ``revenue_ratio``, ``cost_ratio``,
    ``hazard_ratio`` (and optionally ``referral_ratio``) hold one draw per row and one column
    per group (see :func:`cxvalue.value.effect_draws`); an optional ``_level`` column scales
    the reference group's level in that draw (its adjusted revenue, cost or referral rate,
    and for churn the reference curve's cumulative hazard), so the uncertainty of where the
    reference group stands is carried too. The reference group's adjusted revenue and cost per
    customer-year are ``groups.loc[reference, "revenue"/"cost_to_serve"]`` (and
    ``"referrals"`` when present) and its yearly survival ``reference_survival``. The same
    arithmetic as :func:`scenario_cash_flows`, vectorised over draws (10,000 draws take well
    under a second). Summaries: :func:`summarise_npv`.
    """
    H = int(horizon_years)
    s_ref = np.asarray(reference_survival, float)[:H]
    n_draws = len(revenue_ratio)

    def level(draws):
        return draws["_level"].to_numpy() if draws is not None and "_level" in draws else np.ones(n_draws)

    ref_rev = groups.loc[reference, "revenue"] * level(revenue_ratio)
    ref_cost = groups.loc[reference, "cost_to_serve"] * level(cost_ratio)
    ref_refs = (groups.loc[reference, "referrals"] if "referrals" in groups else 0.0) * level(referral_ratio)
    hazard_scale = level(hazard_ratio)
    cum_ramp = np.array([ramp[min(k, len(ramp) - 1)] for k in range(H)], float)
    new_share = np.diff(np.concatenate([[0.0], cum_ramp]))

    def value_and_years(group):
        rev = ref_rev * revenue_ratio[group].to_numpy()
        cost = ref_cost * cost_ratio[group].to_numpy()
        if referral_ratio is not None:
            refs = ref_refs * referral_ratio[group].to_numpy()
        else:  # referral rates at their point estimates
            refs = np.full(n_draws, groups.loc[group, "referrals"] if "referrals" in groups else 0.0)
        surv = s_ref[None, :] ** (hazard_ratio[group].to_numpy() * hazard_scale)[:, None]
        years = (np.concatenate([np.ones((n_draws, 1)), surv[:, :-1]], axis=1) + surv) / 2
        return gross_margin * rev - cost + referral_value * refs, years

    benefit = np.zeros((n_draws, H))
    for (g, h), share in moves.items():
        if share <= 0:
            continue
        v_g, a_g = value_and_years(g)
        v_h, a_h = value_and_years(h)
        moved_total = groups.loc[g, "customers"] * share
        for k in range(H):
            n = moved_total * new_share[k]
            if n == 0:
                continue
            for t in range(k + lag_years, H):
                j = t - (k + lag_years)
                benefit[:, t] += n * (v_h[:, None] * a_h[:, j:j + 1] - v_g[:, None] * a_g[:, j:j + 1])[:, 0]
    discount = (1 + discount_rate) ** np.arange(1, H + 1)
    return -one_off_cost + ((benefit - yearly_cost) / discount).sum(axis=1)


def summarise_npv(draws: np.ndarray) -> dict[str, float]:
    """``npv_p10``, ``npv_p50``, ``npv_p90`` and ``p_npv_positive`` of simulated NPVs."""
    d = np.asarray(draws, float)
    p10, p50, p90 = np.percentile(d, [10, 50, 90])
    return {"npv_p10": float(p10), "npv_p50": float(p50), "npv_p90": float(p90),
            "p_npv_positive": float(np.mean(d > 0))}


@dataclass
class BusinessCase:
    """The evaluated scenario: cash flows by lever, CLV per group and the headline figures."""

    clv: pd.DataFrame
    cash_flows: pd.DataFrame
    npv: float
    roi: float
    payback_months: float | None
    irr: float | None
    uncertainty: dict[str, float]
    npv_draws: np.ndarray
    moved: dict[str, float]
    sensitivity: pd.DataFrame | None = None
    context: dict[str, float] = field(default_factory=dict)
    #: What the case leaves out because the data cannot support it: lever, group or move ->
    #: one plain sentence (e.g. ``{"retention": "Churn: no customer ... left ..."}``).
    left_out: dict[str, str] = field(default_factory=dict)
    #: Everything the cash flows were priced from (for the Excel workbook and audits):
    #: ``groups`` (customers, revenue, cost_to_serve, referrals, hazard_ratio per group),
    #: ``reference``, ``reference_survival``, ``moves``, ``ramp``, ``referral_value`` and the
    #: money parameters (``gross_margin``, ``discount_rate``, ``horizon_years``,
    #: ``one_off_cost``, ``yearly_cost``, ``lag_years``, ``currency``).
    inputs: dict[str, Any] = field(default_factory=dict)

    def results(self) -> dict[str, Any]:
        """The ``value`` and ``business_case`` blocks of ``results.json``."""
        flows = [{"year": int(y), "benefit": r.benefit, "cost": r.cost, "net": r.net,
                  **{lever: r[lever] for lever in LEVERS}}
                 for y, r in self.cash_flows.iterrows()]
        return {
            "value": {"clv": {g: (None if pd.isna(v) else float(v)) for g, v in self.clv["clv"].items()},
                      "margin_per_year": {g: (None if pd.isna(v) else float(v))
                                          for g, v in self.clv["margin_per_year"].items()}},
            "business_case": {"npv": self.npv, "roi": self.roi, "payback_months": self.payback_months,
                              "irr": self.irr, **self.uncertainty, "cash_flows": flows,
                              "customers_moved": self.moved, "context": self.context,
                              "referral_value": self.inputs.get("referral_value"),
                              "left_out": dict(self.left_out),
                              "sensitivity": [] if self.sensitivity is None else
                              self.sensitivity.to_dict(orient="records")},
        }


def _linear_ramp(years: int) -> list[float]:
    """Cumulative share of the shifts achieved by the end of each year: linear over ``years``."""
    years = max(1, int(years))
    return [min(1.0, (k + 1) / years) for k in range(years)]


def scenario_shares(scenario: dict[str, Any], customers: pd.Series, labels: list[str], reference: str) -> tuple[float, float]:
    """The shares moved (lowest -> reference, reference -> highest) of a scenario.

    Without ``target_score`` they are ``detractor_to_passive`` and ``passive_to_promoter``.
    With it, both are scaled by one factor ``k`` (keeping their ratio) so that the net score
    of today's base, ``100 * (share of the highest group - share of the lowest)``, reaches
    the target: each customer moved one group up adds ``100 / N`` points, so
    ``k = (target - current) / (100 * (d2p * n_lowest + p2p * n_reference) / N)``.

    Raises :class:`ParameterError` when the target is already met or needs more than everyone.
    """
    d2p, p2p = float(scenario["detractor_to_passive"]), float(scenario["passive_to_promoter"])
    target = scenario.get("target_score")
    if target is None:
        return d2p, p2p
    from cxvalue.exceptions import ParameterError

    n = customers.reindex(labels).fillna(0.0).astype(float)
    total = float(n.sum())
    current = 100 * (n[labels[-1]] - n[labels[0]]) / total
    if target <= current:
        raise ParameterError(f"scenario.target_score = {target:g}: today's net score is already {current:.1f}; "
                             f"set a higher target or leave it empty")
    per_k = 100 * (d2p * n[labels[0]] + p2p * n[reference]) / total
    if per_k <= 0:
        raise ParameterError("scenario.target_score: both shares are 0, so no customer moves; set "
                             "scenario.detractor_to_passive or scenario.passive_to_promoter above 0")
    k = (target - current) / per_k
    if max(d2p * k, p2p * k) > 1:
        raise ParameterError(f"scenario.target_score = {target:g} cannot be reached from today's {current:.1f} by "
                             f"moving customers one group up in the ratio of the two shares (it would need more than "
                             f"the whole group); lower the target or change the shares' ratio")
    return d2p * k, p2p * k


def _moves(labels: list[str], reference: str, lowest_up: float, reference_up: float) -> dict[tuple[str, str], float]:
    """The scenario's shifts: lowest group -> reference, reference -> highest group."""
    return {(labels[0], reference): lowest_up, (reference, labels[-1]): reference_up}


def _scenario_inputs(revenue, cost_to_serve, churn, curves: pd.DataFrame, base_customers: pd.Series,
                     horizon_years: int, referrals=None):
    """What every pricing of the scenario shares: group labels, the reference group's curve and
    yearly survival, and per group today's customers, adjusted revenue, cost to serve,
    referrals per customer-year (0 without a referral model) and hazard ratio.

    What the data cannot support is priced as "no difference" and named in ``left_out``
    (lever or group -> plain reason): a skipped cost-to-serve model costs every group 0, a
    skipped churn model keeps everyone (survival 1, every hazard ratio 1), a group whose hazard
    ratio could not be estimated churns like the reference group.
    """
    from cxvalue.value import yearly_survival

    H = int(horizon_years)
    reference = revenue.reference_group
    labels = list(revenue.summary.index)
    left_out: dict[str, str] = {}
    ref_curve = curves[curves["group"].astype(str) == reference]
    if churn.fitted and len(ref_curve):
        s_ref = yearly_survival(ref_curve["days"].to_numpy(), ref_curve["retained"].to_numpy(), H)
    else:
        s_ref = np.ones(H)
        left_out["retention"] = churn.skipped_ or "Churn could not be measured."
    cost = cost_to_serve.summary["adjusted"].reindex(labels).astype(float)
    if not cost_to_serve.fitted:
        left_out["cost_to_serve"] = cost_to_serve.skipped_
    groups = pd.DataFrame({"customers": base_customers.reindex(labels).fillna(0).astype(float),
                           "revenue": revenue.summary["adjusted"].reindex(labels).astype(float),
                           "cost_to_serve": cost.fillna(0.0)}, index=labels)
    groups["referrals"] = (referrals.summary["adjusted"].reindex(labels).fillna(0.0).astype(float)
                           if referrals is not None else 0.0)
    if referrals is None:
        left_out["referrals"] = ("No customer was referred by a respondent after their survey (referred_by), so "
                                 "the case has no referrals lever.")
    hr = churn.summary["hazard_ratio"].reindex(labels).astype(float)
    for g in labels:
        if churn.fitted and pd.isna(hr[g]) and pd.notna(groups.loc[g, "revenue"]):
            left_out[f"retention of {g}"] = (f"The {g} group's churn could not be estimated (too few customers of "
                                             f"it left), so the case prices it at the {reference} group's churn.")
    groups["hazard_ratio"] = hr.fillna(1.0)
    return reference, labels, ref_curve, s_ref, groups, left_out


def _point(summary: pd.DataFrame, column: str) -> pd.DataFrame:
    """One 'draw' holding the point estimates (a row), for :func:`npv_distribution`; an effect
    that was not measured is 1 (no difference)."""
    return pd.DataFrame([summary[column].astype(float).fillna(1.0).to_dict()])


def _draws(model, n: int, seed: int, point: pd.Series) -> pd.DataFrame:
    """Joint draws of a model's effects (:func:`cxvalue.value.effect_draws`), with 1 for every
    group whose point estimate is missing (priced as no difference, so not varied either)."""
    from cxvalue.value import effect_draws

    d = effect_draws(model, n, seed)
    for g in point.index:
        if pd.isna(point[g]) or g not in d:
            d[g] = 1.0
    return d


def _priced_moves(moves: dict[tuple[str, str], float], groups: pd.DataFrame) -> tuple[dict, dict[str, str]]:
    """The moves the data can price: both groups measured and customers to move."""
    kept, left_out = {}, {}
    for (g, h), share in moves.items():
        if g == h or share <= 0:
            kept[(g, h)] = share
            continue
        missing = [x for x in (g, h) if pd.isna(groups.loc[x, "revenue"])]
        if missing:
            left_out[f"move {g} to {h}"] = (f"Moving customers from {g} to {h} is left out: no respondent was in the "
                                            f"{missing[0]} group, so what its customers are worth is unknown.")
            continue
        kept[(g, h)] = share
    return kept, left_out


def _referral_value(clv: pd.DataFrame, customers: pd.Series) -> float:
    """A referred customer's value when they join: the base's customer-weighted mean CLV."""
    c = clv["clv"].astype(float)
    w = customers.reindex(c.index).fillna(0.0)
    ok = c.notna() & (w > 0)
    return float((c[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else 0.0


def evaluate(revenue, cost_to_serve, churn, curves: pd.DataFrame, base_customers: pd.Series,
             params: dict[str, Any], referrals=None) -> BusinessCase:
    """Price the scenario of ``params["scenario"]`` with the fitted linkage models.

    Parameters
    ----------
    revenue, cost_to_serve, churn : fitted :mod:`cxvalue.linkage` models.
    referrals : optional fitted :class:`cxvalue.linkage.ReferralModel` (referrals per
        customer-year by group): adds the referrals lever, each referred customer valued at
        the base's mean CLV.
    curves : Kaplan-Meier curves (``ChurnModel.km_curves``); the reference group's is used.
    base_customers : customers per group in today's base (e.g. active customers by group).
    params : run parameters (``gross_margin``, ``discount_rate``, ``horizon_years``, ``seed``,
        ``scenario.*``).

    The lowest group moves to the reference group (``scenario.detractor_to_passive``) and
    the reference group to the highest (``scenario.passive_to_promoter``), ramped linearly
    over ``scenario.ramp_years``. One-off cost at time 0, yearly cost every year.
    """
    from cxvalue.value import group_clv

    sc = params["scenario"]
    H = int(params["horizon_years"])
    reference, labels, ref_curve, s_ref, groups, left_out = _scenario_inputs(revenue, cost_to_serve, churn, curves,
                                                                             base_customers, H, referrals)
    hazard = groups[["hazard_ratio"]]
    clv = group_clv(revenue.summary, groups[["cost_to_serve"]].rename(columns={"cost_to_serve": "adjusted"}), hazard,
                    ref_curve, params["gross_margin"], params["discount_rate"], H, reference_survival=s_ref)
    ref_value = _referral_value(clv, groups["customers"]) if referrals is not None else 0.0
    groups["survival"] = [s_ref ** groups.loc[g, "hazard_ratio"] for g in labels]
    d2p, p2p = scenario_shares(sc, groups["customers"], labels, reference)
    moves, moves_left_out = _priced_moves(_moves(labels, reference, d2p, p2p), groups)
    left_out.update(moves_left_out)
    ramp = _linear_ramp(sc["ramp_years"])
    flows = scenario_cash_flows(groups, moves, ramp, params["gross_margin"], H, sc["yearly_cost"], sc["lag_years"],
                                ref_value)
    costs = pd.Series(sc["yearly_cost"], index=flows.index)
    seed = int(params["seed"])
    n = int(sc["draws"])
    draws = npv_distribution(groups, _draws(revenue, n, seed, revenue.summary["ratio"]),
                             _draws(cost_to_serve, n, seed + 1, cost_to_serve.summary["ratio"]),
                             _draws(churn, n, seed + 2, churn.summary["hazard_ratio"]), reference, s_ref, moves, ramp,
                             params["gross_margin"], params["discount_rate"], H, sc["one_off_cost"],
                             sc["yearly_cost"], sc["lag_years"],
                             _draws(referrals, n, seed + 3, referrals.summary["ratio"]) if referrals is not None else None,
                             ref_value)
    year = min(3, H)  # the CX guides quote gains "within 2-3 years"
    base_revenue = float((groups["customers"] * groups["revenue"]).sum())
    base_cost = float((groups["customers"] * groups["cost_to_serve"]).sum())
    context = {"year": year,
               "revenue_uplift": float(flows.loc[year, "revenue_change"] / base_revenue) if base_revenue else float("nan"),
               "cost_to_serve_change": float(flows.loc[year, "cost_to_serve_change"] / base_cost) if base_cost else float("nan"),
               "guide_revenue_growth": [0.05, 0.10], "guide_cost_reduction": [0.15, 0.25]}
    return BusinessCase(
        context=context,
        sensitivity=sensitivity(revenue, cost_to_serve, churn, curves, base_customers,
                                {**params, "scenario": {**sc, "detractor_to_passive": d2p, "passive_to_promoter": p2p,
                                                        "target_score": None}}, referrals),
        clv=clv, cash_flows=flows,
        npv=npv(flows["net"], params["discount_rate"], sc["one_off_cost"]),
        roi=roi(flows["benefit"], costs, params["discount_rate"], sc["one_off_cost"]),
        payback_months=payback_months(flows["net"], sc["one_off_cost"]),
        irr=irr(flows["net"], sc["one_off_cost"]),
        uncertainty=summarise_npv(draws), npv_draws=draws,
        moved={f"{g}->{h}": float(groups.loc[g, "customers"] * s) for (g, h), s in moves.items() if g != h},
        left_out=left_out,
        inputs={"groups": groups.drop(columns="survival"),
                "reference": reference, "reference_survival": [float(x) for x in s_ref], "moves": moves,
                "ramp": ramp, "referral_value": ref_value, "gross_margin": params["gross_margin"],
                "discount_rate": params["discount_rate"], "horizon_years": H, "one_off_cost": sc["one_off_cost"],
                "yearly_cost": sc["yearly_cost"], "lag_years": sc["lag_years"], "currency": params.get("currency", ""),
                "target_score": sc.get("target_score")},
    )


def group_value_per_year(case: BusinessCase) -> pd.Series:
    """What one customer of each group brings in their first year: margin (gross margin x
    revenue - cost to serve) times the customer-years of that year, plus the referrals they
    bring, valued at ``referral_value``. Moving a customer from ``g`` to ``h`` is worth
    ``v_h - v_g`` in its first year (the scenario's arithmetic with one cohort, no lag)."""
    i = case.inputs
    g = i["groups"]
    s1 = float(np.asarray(i["reference_survival"], float)[0])
    years_1 = (1 + s1 ** g["hazard_ratio"].astype(float)) / 2
    refs = g["referrals"] if "referrals" in g else 0.0
    value = (i["gross_margin"] * g["revenue"] - g["cost_to_serve"] + i["referral_value"] * refs) * years_1
    return value.astype(float).rename("value_per_year")


def value_at_stake(case: BusinessCase) -> float:
    """Margin a year that dissatisfaction costs today: the first-year benefit if every customer
    of the lowest group spent, stayed, cost and referred like the reference group,
    ``customers_lowest x (v_reference - v_lowest)`` with ``v`` from :func:`group_value_per_year`."""
    v = group_value_per_year(case)
    low, ref = v.index[0], case.inputs["reference"]
    if low == ref or pd.isna(v[low]) or pd.isna(v[ref]):
        return float("nan")
    return float(case.inputs["groups"].loc[low, "customers"] * (v[ref] - v[low]))


def sensitivity(revenue, cost_to_serve, churn, curves: pd.DataFrame, base_customers: pd.Series,
                params: dict[str, Any], referrals=None) -> pd.DataFrame:
    """Tornado: the NPV when each assumption moves to the low and high end of a plausible range.

    Ranges: gross margin and discount rate ±25% of their value; each shift share ±50%; the
    ramp one year faster or slower; each measured effect (revenue ratio, cost-to-serve ratio,
    hazard ratio, for every non-reference group) at its 95% interval bounds. Everything else
    stays at the base case. Returns one row per assumption, sorted by swing (largest first):
    ``assumption``, ``low``, ``high`` (the settings), ``npv_low``, ``npv_high``, ``swing``.
    """
    sc = params["scenario"]
    from cxvalue.value import group_clv

    reference, labels, ref_curve, s_ref, groups, _ = _scenario_inputs(revenue, cost_to_serve, churn, curves,
                                                                      base_customers, params["horizon_years"], referrals)
    low_g = labels[0]

    def referral_value(p):
        if referrals is None:
            return 0.0
        clv = group_clv(revenue.summary, groups[["cost_to_serve"]].rename(columns={"cost_to_serve": "adjusted"}),
                        groups[["hazard_ratio"]], ref_curve, p["gross_margin"], p["discount_rate"],
                        int(params["horizon_years"]), reference_survival=s_ref)
        return _referral_value(clv, groups["customers"])

    def moves(d2p, p2p):
        return _priced_moves(_moves(labels, reference, d2p, p2p), groups)[0]

    def run(p=None, rev=None, cost=None, hr=None, shares=None, ramp_years=None):
        p = p or params
        d2p, p2p = shares or (sc["detractor_to_passive"], sc["passive_to_promoter"])
        return float(npv_distribution(
            groups, rev if rev is not None else _point(revenue.summary, "ratio"),
            cost if cost is not None else _point(cost_to_serve.summary, "ratio"),
            hr if hr is not None else _point(groups, "hazard_ratio"), reference, s_ref,
            moves(d2p, p2p), _linear_ramp(ramp_years or sc["ramp_years"]),
            p["gross_margin"], p["discount_rate"], int(params["horizon_years"]),
            sc["one_off_cost"], sc["yearly_cost"], sc["lag_years"], None, referral_value(p))[0])

    def with_param(key, value):
        return {**params, key: value}

    rows = []
    gm, dr = params["gross_margin"], params["discount_rate"]
    rows.append(("Gross margin", f"{gm * 0.75:.0%}", f"{min(gm * 1.25, 1):.0%}",
                 run(with_param("gross_margin", gm * 0.75)), run(with_param("gross_margin", min(gm * 1.25, 1.0)))))
    rows.append(("Discount rate", f"{dr * 1.25:.1%}", f"{dr * 0.75:.1%}",
                 run(with_param("discount_rate", dr * 1.25)), run(with_param("discount_rate", dr * 0.75))))
    d2p, p2p = sc["detractor_to_passive"], sc["passive_to_promoter"]
    rows.append((f"Share of {low_g} moved", f"{d2p * 0.5:.0%}", f"{min(d2p * 1.5, 1):.0%}",
                 run(shares=(d2p * 0.5, p2p)), run(shares=(min(d2p * 1.5, 1.0), p2p))))
    rows.append((f"Share of {reference} moved", f"{p2p * 0.5:.0%}", f"{min(p2p * 1.5, 1):.0%}",
                 run(shares=(d2p, p2p * 0.5)), run(shares=(d2p, min(p2p * 1.5, 1.0)))))
    ry = int(sc["ramp_years"])
    rows.append(("Years to full effect", str(ry + 1), str(max(1, ry - 1)),
                 run(ramp_years=ry + 1), run(ramp_years=max(1, ry - 1))))
    for name, model, col, lo, hi, arg in (("Revenue effect", revenue, "ratio", "ratio_lo", "ratio_hi", "rev"),
                                          ("Cost-to-serve effect", cost_to_serve, "ratio", "ratio_lo", "ratio_hi", "cost"),
                                          ("Churn effect", churn, "hazard_ratio", "hr_lo", "hr_hi", "hr")):
        for g in labels:
            if g == reference or pd.isna(model.summary.loc[g, col]):
                continue
            at = {}
            for bound in (lo, hi):
                point = _point(groups if col == "hazard_ratio" else model.summary, col)
                point[g] = float(model.summary.loc[g, bound])
                at[bound] = run(**{arg: point})
            rows.append((f"{name}, {g}", f"{model.summary.loc[g, lo]:.2f}", f"{model.summary.loc[g, hi]:.2f}",
                         at[lo], at[hi]))
    out = pd.DataFrame(rows, columns=["assumption", "low", "high", "npv_low", "npv_high"])
    out["swing"] = (out["npv_high"] - out["npv_low"]).abs()
    return out.sort_values("swing", ascending=False, ignore_index=True)
