"""Business-case arithmetic: scenario cash flows by lever; NPV, ROI, payback and IRR.

Pure functions (no fitting, no I/O). Conventions, stated once:

* ``cash_flows`` are yearly net amounts for years 1..H, received at each year's end;
  ``initial`` is spent at time 0 (a one-off programme cost, as a positive number). A
  :class:`BusinessCase`'s ``cash_flows`` carry it as the year-0 row, so that discounting every
  row gives the NPV.
* ``NPV = -initial + sum_t cash_flows[t] / (1 + d)^t``.
* ``ROI = (discounted benefits - discounted costs) / discounted costs``.
* payback: months until the cumulative undiscounted net reaches zero, the year's cash
  spread evenly over its 12 months (linear interpolation); ``None`` if never within H.
* IRR: the rate that makes NPV zero (Brent's method on [-99%, 1000%]); ``None`` when the
  flows never change sign.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

__all__ = ["npv", "roi", "payback_months", "irr", "customer_years", "scenario_cash_flows", "npv_distribution",
           "relative_draws", "summarise_npv", "BusinessCase", "evaluate", "sensitivity", "scenario_shares",
           "group_value_per_year", "value_at_stake", "evaluate_non_contractual", "achieved_by_year", "add_yearly_lever",
           "LEVERS", "MOVE_LEVERS"]


#: The levers moving customers between groups is split into.
MOVE_LEVERS = ("retention", "spend", "cost_to_serve", "referrals")
#: Every lever of a scenario's benefit, in the order charts and tables show them: the moves' levers
#: and removing failure demand (:func:`add_yearly_lever`; 0 unless the scenario includes it).
LEVERS = (*MOVE_LEVERS, "failure_demand")


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


def _per_year(value, H: int) -> np.ndarray:
    """A number, or one number per year 1..H, as an array of H numbers."""
    v = np.asarray(value, float)
    return np.full(H, float(v)) if v.ndim == 0 else v[:H]


def _ramp_shares(ramp: list[float], H: int) -> np.ndarray:
    """Share of each move made at the start of programme year 1..H (the ramp is cumulative)."""
    cum_ramp = np.array([ramp[min(k, len(ramp) - 1)] for k in range(H)], float)
    return np.diff(np.concatenate([[0.0], cum_ramp]))


def scenario_cash_flows(groups: pd.DataFrame, moves: dict[tuple[str, str], float], ramp: list[float],
                        gross_margin: float, horizon_years: int, yearly_cost: float = 0.0,
                        lag_years: int = 0, referral_value=0.0) -> pd.DataFrame:
    """Yearly benefit of moving customers between groups, split by lever, and programme cost.

    Parameters
    ----------
    groups : one row per group (or per set of movers priced as a group, see
        :func:`cxvalue.movers.mover_rows`): ``customers`` (in the base today), ``revenue`` and
        ``cost_to_serve`` (per customer-year) and ``survival`` (array: share of today's
        customers still a customer at the end of years 1..H from today); optionally
        ``referrals`` (new customers referred per customer-year).
    moves : ``{(from_row, to_row): share of from_row moved}``; ``to_row`` prices the same
        customers after the move.
    ramp : cumulative share of each move made by the start of programme year 1, 2, ...
        (e.g. ``[0.5, 1.0]``; the last value holds afterwards).
    gross_margin : share of revenue kept as margin.
    horizon_years : years of cash flows.
    yearly_cost : running programme cost per year (one-off costs are the NPV's ``initial``).
    lag_years : whole years between a customer's move and its first benefit.
    referral_value : value of one referred customer when they join, in currency: a number, or
        one per year 1..H (a referral in year ``t`` brings value only over the years left of
        the horizon); with ``groups["referrals"]`` it prices the referrals lever.

    Returns
    -------
    One row per year 1..H: ``retention``, ``spend``, ``cost_to_serve``, ``referrals`` (the levers;
    ``failure_demand`` is 0 here, see :func:`add_yearly_lever`), ``benefit``
    (their sum), ``cost`` and ``net``, in currency; and, for context, ``revenue_change`` and
    ``cost_to_serve_change``: how much revenue and cost to serve the moved customers bring
    compared with staying where they were (customers kept longer included).

    Notes
    -----
    Convention: the share of a move made in programme year ``k`` (``ramp``) moves at the start
    of that year; its customers behave as ``to_row`` from ``e = k - 1 + lag`` years from today
    on. Only those still customers then move: the cohort's expected customer-years in year
    ``t > e`` are ``A'(t) = S_g(e) (S_h(t-1) + S_h(t)) / 2 / S_h(e)`` (the destination's
    survival from ``e`` on, for the customers of ``g`` still there at ``e``) against
    ``A_g(t) = (S_g(t-1) + S_g(t)) / 2`` had they stayed. With margin
    ``m = gross_margin * revenue - cost_to_serve`` the cohort adds ``m_h A' - m_g A_g`` a year,
    split exactly into spend ``gross_margin (rev_h - rev_g) A'``, cost to serve
    ``(cost_g - cost_h) A'`` and retention ``m_g (A' - A_g)``; referrals add
    ``referral_value_t (ref_h A' - ref_g A_g)``.
    """
    H = int(horizon_years)
    levers = {name: np.zeros(H) for name in LEVERS}
    refs = groups["referrals"] if "referrals" in groups else pd.Series(0.0, index=groups.index)
    ref_value = _per_year(referral_value, H)
    changes = {name: np.zeros(H) for name in ("revenue_change", "cost_to_serve_change")}
    new_share = _ramp_shares(ramp, H)
    for (g, h), share in moves.items():
        if share <= 0:
            continue
        src, dst = groups.loc[g], groups.loc[h]
        s_g = np.concatenate([[1.0], np.asarray(src["survival"], float)[:H]])
        s_h = np.concatenate([[1.0], np.asarray(dst["survival"], float)[:H]])
        a_g, a_h = (s_g[:-1] + s_g[1:]) / 2, (s_h[:-1] + s_h[1:]) / 2
        m_g = gross_margin * src["revenue"] - src["cost_to_serve"]
        moved_total = src["customers"] * share
        for k in range(H):  # cohort moved at the start of programme year k + 1
            n = moved_total * new_share[k]
            e = k + lag_years
            if n == 0 or e >= H or s_h[e] <= 0:
                continue
            a_moved = s_g[e] * a_h[e:] / s_h[e]
            a_stay = a_g[e:]
            levers["spend"][e:] += n * gross_margin * (dst["revenue"] - src["revenue"]) * a_moved
            levers["cost_to_serve"][e:] += n * (src["cost_to_serve"] - dst["cost_to_serve"]) * a_moved
            levers["retention"][e:] += n * m_g * (a_moved - a_stay)
            levers["referrals"][e:] += n * ref_value[e:] * (refs[h] * a_moved - refs[g] * a_stay)
            changes["revenue_change"][e:] += n * (dst["revenue"] * a_moved - src["revenue"] * a_stay)
            changes["cost_to_serve_change"][e:] += n * (dst["cost_to_serve"] * a_moved - src["cost_to_serve"] * a_stay)
    out = pd.DataFrame(levers, index=pd.RangeIndex(1, H + 1, name="year"))
    out["benefit"] = out[list(LEVERS)].sum(axis=1)
    out["cost"] = float(yearly_cost)
    out["net"] = out["benefit"] - out["cost"]
    for name, values in changes.items():  # context, not cash: total revenue and cost-to-serve moved
        out[name] = values
    return out


def npv_distribution(groups: pd.DataFrame, revenue_ratio: pd.DataFrame, cost_ratio: pd.DataFrame,
                     hazard_ratio: pd.DataFrame, moves: dict, ramp: list[float], gross_margin: float,
                     discount_rate: float, horizon_years: int, one_off_cost: float = 0.0, yearly_cost: float = 0.0,
                     lag_years: int = 0, referral_ratio: pd.DataFrame | None = None,
                     referral_value=0.0) -> np.ndarray:
    """NPV of the scenario under each joint draw of the linkage effects (one NPV per row).

    ``groups`` holds the rows :func:`scenario_cash_flows` prices, each with ``as_group`` (the
    group whose effects price it; the row's own name when absent). ``revenue_ratio``,
    ``cost_ratio``, ``hazard_ratio`` (and optionally ``referral_ratio``) hold one draw per row
    and one column per group: each draw's effect *relative to the point estimate* (1 = the
    point estimate; see :func:`relative_draws`), and an optional ``_level`` column scaling
    every row's level in that draw (revenue, cost or referral rate; for churn the cumulative
    hazard), so that the uncertainty of where the reference group stands is carried too. In a
    draw a row's revenue is ``revenue x ratio[as_group] x _level`` and its survival
    ``survival ** (hazard_ratio[as_group] x _level)``. The same arithmetic as
    :func:`scenario_cash_flows`, vectorised over draws. Summaries: :func:`summarise_npv`.
    """
    H = int(horizon_years)
    n_draws = len(revenue_ratio)
    as_group = groups["as_group"] if "as_group" in groups else pd.Series(groups.index, index=groups.index)
    ref_value = _per_year(referral_value, H)

    def level(draws):
        return draws["_level"].to_numpy() if draws is not None and "_level" in draws else np.ones(n_draws)

    def effect(draws, row):
        if draws is None:
            return np.ones(n_draws)
        g = as_group[row]
        return draws[g].to_numpy() if g in draws else np.ones(n_draws)

    new_share = _ramp_shares(ramp, H)

    def value_and_survival(row):
        r = groups.loc[row]
        rev = r["revenue"] * effect(revenue_ratio, row) * level(revenue_ratio)
        cost = r["cost_to_serve"] * effect(cost_ratio, row) * level(cost_ratio)
        refs = (r["referrals"] if "referrals" in groups else 0.0) * effect(referral_ratio, row) * level(referral_ratio)
        power = effect(hazard_ratio, row) * level(hazard_ratio)
        surv = np.clip(np.asarray(r["survival"], float)[:H][None, :], 0.0, 1.0) ** power[:, None]
        return rev, cost, refs, np.concatenate([np.ones((n_draws, 1)), surv], axis=1)

    benefit = np.zeros((n_draws, H))
    for (g, h), share in moves.items():
        if share <= 0:
            continue
        rev_g, cost_g, refs_g, s_g = value_and_survival(g)
        rev_h, cost_h, refs_h, s_h = value_and_survival(h)
        a_g, a_h = (s_g[:, :-1] + s_g[:, 1:]) / 2, (s_h[:, :-1] + s_h[:, 1:]) / 2
        v_g = (gross_margin * rev_g - cost_g)[:, None] + refs_g[:, None] * ref_value[None, :]
        v_h = (gross_margin * rev_h - cost_h)[:, None] + refs_h[:, None] * ref_value[None, :]
        moved_total = groups.loc[g, "customers"] * share
        for k in range(H):
            n = moved_total * new_share[k]
            e = k + lag_years
            if n == 0 or e >= H:
                continue
            there = s_h[:, e:e + 1] > 0  # as scenario_cash_flows: a destination nobody is left in moves no one
            with np.errstate(divide="ignore", invalid="ignore"):
                a_moved = np.where(there, s_g[:, e:e + 1] * a_h[:, e:] / s_h[:, e:e + 1], 0.0)
            benefit[:, e:] += n * np.where(there, v_h[:, e:] * a_moved - v_g[:, e:] * a_g[:, e:], 0.0)
    discount = (1 + discount_rate) ** np.arange(1, H + 1)
    return -one_off_cost + ((benefit - yearly_cost) / discount).sum(axis=1)


def relative_draws(draws: pd.DataFrame, point: pd.Series) -> pd.DataFrame:
    """Draws of each group's effect divided by its point estimate (1 where none was measured),
    ``_level`` kept: what :func:`npv_distribution` takes."""
    out = draws.copy()
    for g in out.columns:
        if g != "_level":
            p = point.get(g, np.nan)
            out[g] = out[g] / p if pd.notna(p) and p > 0 else 1.0
    return out


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

    def assumptions(self) -> dict[str, Any]:
        """Every value the case was priced with, as used (``business_case.assumptions`` of
        ``results.json``, also in ``manifest.json`` as ``used``)."""
        return _assumptions(self.inputs or {})

    def results(self) -> dict[str, Any]:
        """The ``value`` and ``business_case`` blocks of ``results.json``."""
        flows = [{"year": int(y), "benefit": r.benefit, "cost": r.cost, "net": r.net,
                  **{lever: r[lever] for lever in LEVERS if lever in self.cash_flows}}
                 for y, r in self.cash_flows.iterrows()]
        return {
            "value": {"clv": {g: (None if pd.isna(v) else float(v)) for g, v in self.clv["clv"].items()},
                      "margin_per_year": {g: (None if pd.isna(v) else float(v))
                                          for g, v in self.clv["margin_per_year"].items()}},
            "business_case": {"npv": self.npv, "roi": self.roi, "payback_months": self.payback_months,
                              "irr": self.irr, **self.uncertainty, "cash_flows": flows,
                              "customers_moved": self.moved, "context": self.context,
                              "referral_value": _first(self.inputs.get("referral_value")),
                              "referral_value_by_year": [float(x) for x in
                                                         np.ravel(self.inputs.get("referral_value", []))],
                              "left_out": dict(self.left_out),
                              "assumptions": self.assumptions(),
                              "sensitivity": [] if self.sensitivity is None else
                              self.sensitivity.to_dict(orient="records")},
        }

    def _repr_html_(self) -> str:
        """In Jupyter: the name, the skipped reason or the summary table, the caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, "Business case")


def _assumptions(inputs: dict[str, Any]) -> dict[str, Any]:
    """Every value the case was priced with, as used (the measured margin, the shares moved after
    a target score scaled them): re-running with these gives the same case."""
    keys = ("gross_margin", "margin_source", "response_weights", "discount_rate", "horizon_years", "one_off_cost",
            "yearly_cost", "lag_years", "target_score", "currency")
    out: dict[str, Any] = {k: inputs.get(k) for k in keys if k in inputs}
    out.setdefault("margin_source", "parameter")
    out["reference_group"] = inputs.get("reference")
    out["shares_moved"] = {f"{g}->{h}": float(s) for (g, h), s in (inputs.get("moves") or {}).items() if g != h}
    out["ramp"] = [float(x) for x in inputs.get("ramp", [])]
    out["referral_value_by_year"] = [float(x) for x in np.ravel(inputs.get("referral_value", []))]
    out["failure_demand"] = inputs.get("failure_demand")
    out["conventions"] = ("A move made in programme year k starts at the start of that year and pays from lag years "
                          "later, for the customers still there then; movers are priced at their own predicted levels "
                          "and survival from today, the churn model's yearly hazards carried on beyond the follow-up "
                          "the data has.")
    return {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in out.items()}


def _first(values) -> float | None:
    """The first of one number per year (a referral's value in year 1), or None."""
    v = np.ravel(np.asarray(values if values is not None else [], float))
    return float(v[0]) if v.size else None


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


def _draws(model, n: int, seed: int, point: pd.Series) -> pd.DataFrame:
    """Joint draws of a model's effects (:func:`cxvalue.value.effect_draws`) relative to the point
    estimates (:func:`relative_draws`): 1 for every group whose estimate is missing (priced as
    no difference, so not varied either)."""
    from cxvalue.value import effect_draws

    d = effect_draws(model, n, seed)
    for g in point.index:
        if pd.isna(point[g]) or g not in d:
            d[g] = point[g] if pd.notna(point[g]) else 1.0
    return relative_draws(d, point)


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


@dataclass
class _Pricing:
    """What every pricing of the scenario shares (the case, the tornado, value at stake)."""

    reference: str
    labels: list[str]
    ref_curve: pd.DataFrame
    s_ref: np.ndarray
    groups: pd.DataFrame
    left_out: dict[str, str]
    #: the movers of each standard move as they are and as the group they move to
    #: (:func:`cxvalue.movers.mover_rows`)
    rows: pd.DataFrame
    models: dict[str, Any]
    #: the measured effects the tornado moves to the ends of their 95% intervals: (name, summary,
    #: point column, lower column, upper column, which draws it scales: "rev", "cost" or "hr")
    effects: list[tuple[str, pd.DataFrame, str, str, str, str]] = field(default_factory=list)


def _pricing(revenue, cost_to_serve, churn, curves, base_customers, horizon_years, referrals, history,
             weights=None) -> _Pricing:
    from cxvalue.movers import mover_rows

    reference, labels, ref_curve, s_ref, groups, left_out = _scenario_inputs(revenue, cost_to_serve, churn, curves,
                                                                             base_customers, horizon_years, referrals)
    standard = [m for m in _moves(labels, reference, 1.0, 1.0) if m[0] != m[1]]
    measured = [(g, h) for g, h in standard if not groups.loc[[g, h], "revenue"].isna().any()]
    rows = mover_rows(history, revenue, cost_to_serve, churn if churn.fitted else None, referrals, measured,
                      groups["customers"], horizon_years, weights)
    return _Pricing(reference, labels, ref_curve, s_ref, groups, left_out, rows,
                    {"revenue": revenue, "cost_to_serve": cost_to_serve, "churn": churn, "referrals": referrals},
                    [("Revenue effect", revenue.summary, "ratio", "ratio_lo", "ratio_hi", "rev"),
                     ("Cost-to-serve effect", cost_to_serve.summary, "ratio", "ratio_lo", "ratio_hi", "cost"),
                     ("Churn effect", churn.summary, "hazard_ratio", "hr_lo", "hr_hi", "hr")])


def _row_moves(moves: dict[tuple[str, str], float], rows: pd.DataFrame) -> tuple[dict, dict[str, str]]:
    """The group moves as moves between mover rows; a move with nobody to move is left out."""
    from cxvalue.movers import row_name

    out, left_out = {}, {}
    for (g, h), share in moves.items():
        if g == h or share <= 0:
            continue
        if row_name(g, h) not in rows.index:
            left_out[f"move {g} to {h}"] = (f"Moving customers from {g} to {h} is left out: no respondent of the {g} "
                                            f"group is still a customer, so there is nobody to move.")
            continue
        out[(row_name(g, g), row_name(g, h))] = share
    return out, left_out


def _referral_values(pricing: _Pricing, gross_margin: float, discount_rate: float, H: int) -> np.ndarray:
    """What one referred customer is worth when they join in year 1..H: the base's mean CLV over
    the years left of the horizon (a year-5 referral of a 5-year case brings one year)."""
    from cxvalue.value import group_clv

    if pricing.models["referrals"] is None:
        return np.zeros(H)
    g = pricing.groups
    out = []
    for t in range(1, H + 1):
        left = H - t + 1
        clv = group_clv(pricing.models["revenue"].summary, g[["cost_to_serve"]].rename(columns={"cost_to_serve": "adjusted"}),
                        g[["hazard_ratio"]], pricing.ref_curve, gross_margin, discount_rate, left,
                        reference_survival=pricing.s_ref[:left])
        out.append(_referral_value(clv, g["customers"]))
    return np.asarray(out)


def evaluate(revenue, cost_to_serve, churn, curves: pd.DataFrame, base_customers: pd.Series,
             params: dict[str, Any], referrals=None, *, history: pd.DataFrame,
             weights: pd.Series | None = None) -> BusinessCase:
    """Price the scenario of ``params["scenario"]`` with the fitted linkage models.

    Parameters
    ----------
    revenue, cost_to_serve, churn : fitted :mod:`cxvalue.linkage` models.
    referrals : optional fitted :class:`cxvalue.linkage.ReferralModel` (referrals per
        customer-year by group): adds the referrals lever, each referred customer valued at
        the base's mean CLV over the years left of the horizon.
    curves : Kaplan-Meier curves (``ChurnModel.km_curves``); the reference group's prices the
        CLV per group.
    base_customers : customers per group in today's base (e.g. active customers by group).
    params : run parameters (``gross_margin``, ``discount_rate``, ``horizon_years``, ``seed``,
        ``scenario.*``).
    history : the customer history the models were fitted on: the movers are priced on their
        own rows (:mod:`cxvalue.movers`).
    weights : optional response weights, one per history row, so that the movers stand for
        today's customers of their group rather than for those who answered.

    The lowest group moves to the reference group (``scenario.detractor_to_passive``) and
    the reference group to the highest (``scenario.passive_to_promoter``), ramped linearly
    over ``scenario.ramp_years``. One-off cost at time 0 (the ``year`` 0 row of the cash
    flows), yearly cost every year. Each move is priced on today's customers of the group who
    would move, at their own levels and survival (:func:`cxvalue.movers.mover_rows`); CLV per
    group stays standardised over all respondents (what a customer of each group is worth).
    """
    from cxvalue.value import group_clv

    sc = params["scenario"]
    H = int(params["horizon_years"])
    pricing = _pricing(revenue, cost_to_serve, churn, curves, base_customers, H, referrals, history, weights)
    groups = pricing.groups
    clv = group_clv(revenue.summary, groups[["cost_to_serve"]].rename(columns={"cost_to_serve": "adjusted"}),
                    groups[["hazard_ratio"]], pricing.ref_curve, params["gross_margin"], params["discount_rate"], H,
                    reference_survival=pricing.s_ref)
    seed, n = int(params["seed"]), int(sc["draws"])
    draws = (_draws(revenue, n, seed, revenue.summary["ratio"]),
             _draws(cost_to_serve, n, seed + 1, cost_to_serve.summary["ratio"]),
             _draws(churn, n, seed + 2, groups["hazard_ratio"]),
             _draws(referrals, n, seed + 3, referrals.summary["ratio"]) if referrals is not None else None)
    return _evaluate(pricing, clv, draws, params)


def _evaluate(pricing: _Pricing, clv: pd.DataFrame, draws: tuple, params: dict[str, Any],
              first_year: pd.Series | None = None) -> BusinessCase:
    """Price the scenario from ``pricing`` (its groups and movers' rows), with ``clv`` per group and
    ``draws`` (revenue, cost to serve, hazard, referrals: relative draws per group, see
    :func:`npv_distribution`). ``first_year``: each group's customer-years in year 1 when they are
    not ``(1 + S_ref(1) ** hazard_ratio) / 2`` (:func:`group_value_per_year`)."""
    sc = params["scenario"]
    H = int(params["horizon_years"])
    reference, labels, groups, left_out = pricing.reference, pricing.labels, pricing.groups, dict(pricing.left_out)
    s_ref = pricing.s_ref
    ref_values = _referral_values(pricing, params["gross_margin"], params["discount_rate"], H)
    d2p, p2p = scenario_shares(sc, groups["customers"], labels, reference)
    moves, moves_left_out = _priced_moves(_moves(labels, reference, d2p, p2p), groups)
    left_out.update(moves_left_out)
    row_moves, rows_left_out = _row_moves(moves, pricing.rows)
    left_out.update(rows_left_out)
    ramp = _linear_ramp(sc["ramp_years"])
    flows = scenario_cash_flows(pricing.rows, row_moves, ramp, params["gross_margin"], H, sc["yearly_cost"],
                                sc["lag_years"], ref_values)
    flows = _with_year_zero(flows, sc["one_off_cost"])
    yearly = flows.loc[1:]
    costs = yearly["cost"]
    rev_draws, cost_draws, hr_draws, ref_draws = draws
    draws = npv_distribution(pricing.rows, rev_draws, cost_draws, hr_draws, row_moves, ramp,
                             params["gross_margin"], params["discount_rate"], H, sc["one_off_cost"],
                             sc["yearly_cost"], sc["lag_years"], ref_draws, ref_values)
    year = min(3, H)  # the CX guides quote gains "within 2-3 years"
    base_revenue = float((groups["customers"] * groups["revenue"]).sum())
    base_cost = float((groups["customers"] * groups["cost_to_serve"]).sum())
    context = {"year": year,
               "revenue_uplift": float(yearly.loc[year, "revenue_change"] / base_revenue) if base_revenue else float("nan"),
               "cost_to_serve_change": float(yearly.loc[year, "cost_to_serve_change"] / base_cost) if base_cost else float("nan"),
               "guide_revenue_growth": [0.05, 0.10], "guide_cost_reduction": [0.15, 0.25]}
    shares = {"detractor_to_passive": d2p, "passive_to_promoter": p2p}
    return BusinessCase(
        context=context,
        sensitivity=_tornado(pricing, {**params, "scenario": {**sc, **shares, "target_score": None}}),
        clv=clv, cash_flows=flows,
        npv=npv(yearly["net"], params["discount_rate"], sc["one_off_cost"]),
        roi=roi(yearly["benefit"], costs, params["discount_rate"], sc["one_off_cost"]),
        payback_months=payback_months(yearly["net"], sc["one_off_cost"]),
        irr=irr(yearly["net"], sc["one_off_cost"]),
        uncertainty=summarise_npv(draws), npv_draws=draws,
        moved={f"{g}->{h}": float(groups.loc[g, "customers"] * s) for (g, h), s in moves.items()
               if g != h and f"move {g} to {h}" not in left_out},
        left_out=left_out,
        inputs={"groups": groups.drop(columns="survival", errors="ignore"), "movers": pricing.rows,
                "mover_moves": row_moves,
                "reference": reference, "reference_survival": [float(x) for x in s_ref], "moves": moves,
                "ramp": ramp, "referral_value": [float(x) for x in ref_values], "gross_margin": params["gross_margin"],
                "discount_rate": params["discount_rate"], "horizon_years": H, "one_off_cost": sc["one_off_cost"],
                "yearly_cost": sc["yearly_cost"], "lag_years": sc["lag_years"], "currency": params.get("currency", ""),
                "target_score": sc.get("target_score"),
                **({"first_year": first_year} if first_year is not None else {})},
    )


def evaluate_non_contractual(purchases, cost_to_serve, base_customers: pd.Series, params: dict[str, Any], *,
                             history: pd.DataFrame, weights: pd.Series | None = None) -> BusinessCase:
    """Price the scenario for customers who never cancel, from a fitted
    :class:`cxvalue.purchases.PurchaseModel` (and the cost-to-serve model, when fitted).

    The same scenario, arithmetic and outputs as :func:`evaluate`; what changes is where each
    row's revenue and curve come from (:func:`cxvalue.purchases.pricing_rows`): revenue is the
    spend per purchase times today's expected purchase rate, and the "survival" is the share of
    today's buying still going on after each year, so that moving customers splits into buying
    more often (the spend lever: the purchase-rate effect) and buying for longer (the retention
    lever: the dropout effect, and the purchase rate's own effect on how soon buyers stop). The
    CLV per group is a new customer of each group, standardised over every respondent; the
    referrals lever is left out. The simulation varies the purchase-rate and dropout ratios
    jointly (:func:`cxvalue.purchases.effect_draws`).
    """
    from cxvalue import purchases as pm
    from cxvalue.value import clv as clv_of

    sc = params["scenario"]
    H = int(params["horizon_years"])
    reference = purchases.reference_group
    labels = [str(g) for g in purchases.summary_.index]
    groups = pm.group_rows(purchases, cost_to_serve, base_customers, H)
    left_out: dict[str, str] = {
        "referrals": "Referrals are not priced for customers who never cancel (non-contractual mode) yet."}
    if cost_to_serve is None or not cost_to_serve.fitted:
        left_out["cost_to_serve"] = getattr(cost_to_serve, "skipped_", None) or "Cost to serve could not be measured."
    standard = [m for m in _moves(labels, reference, 1.0, 1.0) if m[0] != m[1]]
    measured = [(g, h) for g, h in standard if not groups.loc[[g, h], "revenue"].isna().any()]
    rows = pm.pricing_rows(purchases, history, cost_to_serve, measured, groups["customers"], H, weights)
    s_ref = np.asarray(groups.loc[reference, "survival"], float)
    summary = purchases.summary_
    cost_summary = (cost_to_serve.summary if cost_to_serve is not None and cost_to_serve.fitted
                    else pd.DataFrame(columns=["ratio", "ratio_lo", "ratio_hi"]))
    pricing = _Pricing(reference, labels, pd.DataFrame(columns=["group", "days", "retained"]), s_ref, groups,
                       left_out, rows, {"revenue": None, "cost_to_serve": cost_to_serve, "churn": None,
                                        "referrals": None},
                       [("Purchase-rate effect", summary.rename(columns={"purchase_rate_ratio": "ratio"}), "ratio",
                         "purchase_rate_ratio_lo", "purchase_rate_ratio_hi", "rev"),
                        ("Cost-to-serve effect", cost_summary, "ratio", "ratio_lo", "ratio_hi", "cost"),
                        ("Dropout effect", summary, "dropout_ratio", "dropout_ratio_lo", "dropout_ratio_hi", "hr")])
    gm, rate = params["gross_margin"], params["discount_rate"]
    clv_rows = []
    for g, r in groups.iterrows():
        if pd.isna(r["revenue"]):
            clv_rows.append({"group": g, "margin_per_year": np.nan, "retention_year_1": np.nan, "clv": np.nan})
            continue
        margin = gm * r["revenue"] - r["cost_to_serve"]
        clv_rows.append({"group": g, "margin_per_year": margin, "retention_year_1": float(r["survival"][0]),
                         "clv": clv_of(margin, r["survival"], rate)})
    clv = pd.DataFrame(clv_rows).set_index("group")
    seed, n = int(params["seed"]), int(sc["draws"])
    rate_draws, dropout_draws = pm.effect_draws(purchases, n, seed)
    cost_draws = (_draws(cost_to_serve, n, seed + 1, cost_to_serve.summary["ratio"])
                  if cost_to_serve is not None and cost_to_serve.fitted else None)
    first_year = groups["survival"].map(lambda s: (1 + float(np.asarray(s, float)[0])) / 2)
    case = _evaluate(pricing, clv, (rate_draws, cost_draws, dropout_draws, None), params, first_year=first_year)
    case.inputs["business_model"] = "non_contractual"
    return case


def _with_year_zero(flows: pd.DataFrame, one_off_cost: float) -> pd.DataFrame:
    """The cash flows with a year-0 row holding the one-off cost, so that discounting every row
    (year ``t`` at ``(1 + d)^t``) gives the NPV exactly."""
    zero = pd.DataFrame({c: [0.0] for c in flows.columns}, index=pd.RangeIndex(0, 1, name="year"))
    zero["cost"] = float(one_off_cost)
    zero["net"] = -float(one_off_cost)
    return pd.concat([zero, flows])


def achieved_by_year(ramp: list[float], lag_years: int, horizon_years: int) -> np.ndarray:
    """Share of a change in place and paying in each year 1..H: the part made at the start of
    programme year ``k`` (the ramp's increase) pays from year ``k + lag`` on, as a move does in
    :func:`scenario_cash_flows`."""
    H = int(horizon_years)
    new_share = _ramp_shares(ramp, H)
    out = np.zeros(H)
    for k in range(H):
        e = k + int(lag_years)
        if e < H:
            out[e:] += new_share[k]
    return out


def add_yearly_lever(case: BusinessCase, lever: str, value_per_year: float, value_draws, params: dict[str, Any],
                     detail: dict[str, Any] | None = None, label: str | None = None,
                     cost_saved_per_year: float = 0.0) -> BusinessCase:
    """The case with one more lever worth ``value_per_year`` once fully in place (e.g. removing a
    share of failure demand: :meth:`cxvalue.failure_demand.FailureDemand.yearly_value_draws`).

    The lever follows the scenario's ramp and lag (:func:`achieved_by_year`): in year ``t`` it
    brings ``value_per_year x achieved(t)``. Cash flows, NPV, ROI, payback and IRR are recomputed;
    each NPV draw adds the present value of one of ``value_draws`` (resampled to the number of
    draws with the run's seed, independently of the linkage effects' draws); the sensitivity
    rows move by the lever's present value and gain a row for the lever at half and one and a
    half times its value (named ``label``). ``detail`` goes into ``inputs[lever]`` (and the
    assumptions). The part of the value that is cost to serve saved (``cost_saved_per_year``,
    once in place) joins the context's change in the base's cost to serve.
    """
    sc = params["scenario"]
    H, rate = int(params["horizon_years"]), float(params["discount_rate"])
    achieved = achieved_by_year(_linear_ramp(sc["ramp_years"]), sc["lag_years"], H)
    flows = case.cash_flows.copy()
    flows[lever] = 0.0
    flows.loc[1:, lever] = float(value_per_year) * achieved
    flows["benefit"] = flows[list(LEVERS)].sum(axis=1)
    flows["net"] = flows["benefit"] - flows["cost"]
    yearly = flows.loc[1:]
    one_off = float(sc["one_off_cost"])
    new_npv = npv(yearly["net"], rate, one_off)
    pv_factor = float(np.sum(achieved / (1 + rate) ** np.arange(1, H + 1)))
    pv = float(value_per_year) * pv_factor
    rng = np.random.default_rng([int(params["seed"]), 7])
    picked = rng.choice(np.asarray(value_draws, float), size=len(case.npv_draws), replace=True)
    draws = np.asarray(case.npv_draws, float) + picked * pv_factor
    sens = case.sensitivity
    if sens is not None:
        sens = sens.copy()
        sens[["npv_low", "npv_high"]] += pv
        extra = pd.DataFrame([{"assumption": label or f"Value of the {lever.replace('_', ' ')} lever", "low": "half the value",
                               "high": "1.5 times the value", "npv_low": new_npv - pv / 2, "npv_high": new_npv + pv / 2}])
        sens = pd.concat([sens, extra], ignore_index=True)
        sens["swing"] = (sens["npv_high"] - sens["npv_low"]).abs()
        sens = sens.sort_values("swing", ascending=False, ignore_index=True)
    inputs = {**case.inputs, lever: {**(detail or {}), "value_per_year": float(value_per_year),
                                     "achieved_by_year": [float(x) for x in achieved]}}
    context = dict(case.context)
    groups = case.inputs.get("groups")
    if cost_saved_per_year and groups is not None and "year" in context:
        base_cost = float((groups["customers"] * groups["cost_to_serve"]).sum())
        if base_cost:
            context["cost_to_serve_change"] -= float(cost_saved_per_year) * achieved[context["year"] - 1] / base_cost
    return replace(case, context=context, cash_flows=flows, npv=new_npv,
                   roi=roi(yearly["benefit"], yearly["cost"], rate, one_off),
                   payback_months=payback_months(yearly["net"], one_off), irr=irr(yearly["net"], one_off),
                   uncertainty=summarise_npv(draws), npv_draws=draws, sensitivity=sens, inputs=inputs)


def group_value_per_year(case: BusinessCase) -> pd.Series:
    """What one customer of each group brings in their first year: margin (gross margin x
    revenue - cost to serve) times the customer-years of that year, plus the referrals they
    bring, valued at ``referral_value``. Moving a customer from ``g`` to ``h`` is worth
    ``v_h - v_g`` in its first year. Levels standardised over all respondents (a typical
    customer of each group); :func:`value_at_stake` prices today's customers of the lowest
    group on their own levels."""
    i = case.inputs
    g = i["groups"]
    if i.get("first_year") is not None:
        years_1 = i["first_year"].reindex(g.index).astype(float)
    else:
        s1 = float(np.asarray(i["reference_survival"], float)[0])
        years_1 = (1 + s1 ** g["hazard_ratio"].astype(float)) / 2
    refs = g["referrals"] if "referrals" in g else 0.0
    ref_value = float(np.asarray(i["referral_value"], float).ravel()[0])
    value = (i["gross_margin"] * g["revenue"] - g["cost_to_serve"] + ref_value * refs) * years_1
    return value.astype(float).rename("value_per_year")


def value_at_stake(case: BusinessCase) -> float:
    """Margin a year that dissatisfaction costs today: the first-year benefit if every customer of
    the lowest group today spent, stayed, cost and referred like the reference group, each at
    their own levels (the movers' rows of :func:`cxvalue.movers.mover_rows`): ``N_lowest x
    (v(as reference) A'(1) - v(as they are) A(1))``."""
    from cxvalue.movers import row_name

    i = case.inputs
    low, ref = list(i["groups"].index)[0], i["reference"]
    rows = i.get("movers")
    if low == ref or rows is None or row_name(low, ref) not in rows.index:
        return float("nan")
    flows = scenario_cash_flows(rows, {(row_name(low, low), row_name(low, ref)): 1.0}, [1.0], i["gross_margin"], 1,
                                referral_value=np.asarray(i["referral_value"], float).ravel()[:1])
    return float(flows.loc[1, "benefit"])


def sensitivity(revenue, cost_to_serve, churn, curves: pd.DataFrame, base_customers: pd.Series,
                params: dict[str, Any], referrals=None, *, history: pd.DataFrame,
                weights: pd.Series | None = None) -> pd.DataFrame:
    """Tornado: the NPV when each assumption moves to the low and high end of a plausible range.

    Ranges: gross margin and discount rate ±25% of their value; each shift share ±50%; the
    ramp one year faster or slower; each measured effect (revenue ratio, cost-to-serve ratio,
    hazard ratio, for every non-reference group) at its 95% interval bounds. Everything else
    stays at the base case. Returns one row per assumption, sorted by swing (largest first):
    ``assumption``, ``low``, ``high`` (the settings), ``npv_low``, ``npv_high``, ``swing``.
    """
    pricing = _pricing(revenue, cost_to_serve, churn, curves, base_customers, int(params["horizon_years"]),
                       referrals, history, weights)
    return _tornado(pricing, params)


def _tornado(pricing: _Pricing, params: dict[str, Any]) -> pd.DataFrame:
    sc = params["scenario"]
    H = int(params["horizon_years"])
    reference, labels, groups, rows = pricing.reference, pricing.labels, pricing.groups, pricing.rows
    low_g = labels[0]
    ones = pd.DataFrame([{g: 1.0 for g in labels}])

    def moves(d2p, p2p):
        return _row_moves(_priced_moves(_moves(labels, reference, d2p, p2p), groups)[0], rows)[0]

    def run(p=None, rev=None, cost=None, hr=None, shares=None, ramp_years=None):
        p = p or params
        d2p, p2p = shares or (sc["detractor_to_passive"], sc["passive_to_promoter"])
        return float(npv_distribution(
            rows, rev if rev is not None else ones, cost if cost is not None else ones,
            hr if hr is not None else ones, moves(d2p, p2p), _linear_ramp(ramp_years or sc["ramp_years"]),
            p["gross_margin"], p["discount_rate"], H, sc["one_off_cost"], sc["yearly_cost"], sc["lag_years"], None,
            _referral_values(pricing, p["gross_margin"], p["discount_rate"], H))[0])

    def with_param(key, value):
        return {**params, key: value}

    out_rows = []
    gm, dr = params["gross_margin"], params["discount_rate"]
    out_rows.append(("Gross margin", f"{gm * 0.75:.0%}", f"{min(gm * 1.25, 1):.0%}",
                     run(with_param("gross_margin", gm * 0.75)), run(with_param("gross_margin", min(gm * 1.25, 1.0)))))
    out_rows.append(("Discount rate", f"{dr * 1.25:.1%}", f"{dr * 0.75:.1%}",
                     run(with_param("discount_rate", dr * 1.25)), run(with_param("discount_rate", dr * 0.75))))
    d2p, p2p = sc["detractor_to_passive"], sc["passive_to_promoter"]
    out_rows.append((f"Share of {low_g} moved", f"{d2p * 0.5:.0%}", f"{min(d2p * 1.5, 1):.0%}",
                     run(shares=(d2p * 0.5, p2p)), run(shares=(min(d2p * 1.5, 1.0), p2p))))
    out_rows.append((f"Share of {reference} moved", f"{p2p * 0.5:.0%}", f"{min(p2p * 1.5, 1):.0%}",
                     run(shares=(d2p, p2p * 0.5)), run(shares=(d2p, min(p2p * 1.5, 1.0)))))
    ry = int(sc["ramp_years"])
    out_rows.append(("Years to full effect", str(ry + 1), str(max(1, ry - 1)),
                     run(ramp_years=ry + 1), run(ramp_years=max(1, ry - 1))))
    for name, summary, col, lo, hi, arg in pricing.effects:
        point_col = groups["hazard_ratio"] if arg == "hr" else summary[col]
        for g in labels:
            if g == reference or g not in summary.index or pd.isna(summary.loc[g, col]):
                continue
            at = {}
            for bound in (lo, hi):
                relative = ones.copy()
                relative[g] = float(summary.loc[g, bound]) / float(point_col[g])
                at[bound] = run(**{arg: relative})
            out_rows.append((f"{name}, {g}", f"{summary.loc[g, lo]:.2f}", f"{summary.loc[g, hi]:.2f}",
                             at[lo], at[hi]))
    out = pd.DataFrame(out_rows, columns=["assumption", "low", "high", "npv_low", "npv_high"])
    out["swing"] = (out["npv_high"] - out["npv_low"]).abs()
    return out.sort_values("swing", ascending=False, ignore_index=True)
