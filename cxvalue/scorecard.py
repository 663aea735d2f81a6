"""The KPI scorecard: 5-6 CX and value KPIs with goals, margins of error, trend and money.

Every KPI is measured over the **last 12 months up to** ``as_of`` (the scorecard period),
on the whole customer base, not only on the customers with an index response. The period is
half-open in days, like the histories' windows: ``[as_of + 1 day - 12 months, as_of + 1 day)``,
so 365 days (366 when it holds a 29 February), ``as_of`` itself the last day in it:

* **NPS** (points, -100..100): % promoters - % detractors among the customers who answered
  a relationship survey in the period (each customer's latest answer counts once).
  Margin of error (95%): ``1.96 * 100 * sqrt((p_pro + p_det - (p_pro - p_det)^2) / n)``, the
  standard error of a difference of two shares of one multinomial sample.
* **CSAT** and **CES** (share, 0-1): the share in the top band (satisfied 4-5; low effort
  5-7 by default, the bands of :data:`cxvalue.config.DEFAULT_BANDS`), same sample rule;
  margin of error ``1.96 * sqrt(p (1 - p) / n)``. NPS, CSAT and CES are treated alike: shown
  where the data has them, with their noise.
* **Retention, 12 months** (share): of the customers active on the period's first day, the
  share still customers at ``as_of``; binomial margin of error.
* **Revenue per customer** and **cost to serve per customer** (currency per customer per
  year): the period's revenue (transactions, refunds netted) and contact cost (priced as
  in the history) divided by the customer-years in the period (each customer's days
  active in it / 365.25). They count every transaction, not a sample: no margin of error.

Status against a goal (``targets.*``): *on target* when the actual meets it (for cost to
serve: at or below), *within the noise* when it misses by less than its margin of error,
else *behind target*; *no target set* without a goal. A change between two runs is called
*up* or *down* only when it exceeds ``1.96 * sqrt(se_a^2 + se_b^2)`` (two independent
samples), else *no clear change*: a move inside the noise is neither celebrated nor punished.

The gap to goal in money, per year (:func:`value_of_gaps`), where the linkage allows:

* NPS / CSAT / CES, for the run's metric only (its groups are the ones priced): the customers
  who must move up one group to close the gap (NPS: lowest group to the reference group,
  each adding ``100 / N`` points; top-box shares: reference group to the top group, each
  adding ``1 / N``), times the difference of those groups' margin per customer-year;
* retention: the extra customers kept (gap x customers at the start) x the base's mean
  margin per customer-year;
* revenue per customer: gap x customers x gross margin; cost to serve: gap x customers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import pandas as pd

from cxvalue.config import DEFAULT_BANDS, bands_for, goal_value, reference_group
from cxvalue.history import DAYS_PER_YEAR, contact_unit_cost

__all__ = ["KPIS", "Scorecard", "kpi_change", "value_of_gaps"]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class KPI:
    name: str
    label: str
    unit: str  # "points", "share" or "money"
    higher_is_better: bool = True


#: The scorecard's KPIs, in the order shown.
KPIS = [
    KPI("nps", "NPS", "points"),
    KPI("csat", "CSAT (share satisfied)", "share"),
    KPI("ces", "CES (share low effort)", "share"),
    KPI("retention_12m", "Retention over 12 months", "share"),
    KPI("repeat_purchase_12m", "Repeat-purchase rate over 12 months", "share"),
    KPI("revenue_per_customer", "Revenue per customer per year", "money"),
    KPI("cost_to_serve_per_customer", "Cost to serve per customer per year", "money", higher_is_better=False),
]
_BY_NAME = {k.name: k for k in KPIS}


def _bands(metric: str, params: dict[str, Any]) -> list[list[int]]:
    """The score bands of ``metric``, lowest first: the run's own for its metric, else the contract's."""
    bands = bands_for(params) if params["metric"] == metric else DEFAULT_BANDS[metric]
    return sorted(bands.values(), key=lambda b: b[0])


def _total(x: Any) -> float:
    """A sum read back from the backend: 0 where there was nothing to sum (an empty sum comes back NaN or None)."""
    return 0.0 if x is None or pd.isna(x) else float(x)


def _survey_kpis(data, params: dict[str, Any], start: dt.date, end: dt.date) -> dict[str, dict]:
    """NPS, CSAT and CES from each customer's latest relationship answer in [start, end)."""
    r = data.tables["responses"]
    rel = r.filter((r.response_date >= start) & (r.response_date < end))
    if "journey" in rel.columns:
        rel = rel.filter(rel.journey.isnull() | (rel.journey == ""))
    out = {}
    for metric in ("nps", "csat", "ces"):
        if metric not in rel.columns:
            continue
        m = rel.filter(rel[metric].notnull())
        # same-day answers: the lower score, as for the index response (cxvalue.history)
        latest = m.mutate(_rank=ibis.row_number().over(group_by=m.customer_id,
                                                       order_by=[ibis.desc(m.response_date), m[metric]]))
        latest = latest.filter(latest._rank == 0)
        bands = _bands(metric, params)
        s = latest[metric]
        agg = latest.aggregate(n=latest.count(), low=s.between(*bands[0]).cast("int64").sum(),
                               high=s.between(*bands[-1]).cast("int64").sum()).to_pandas().iloc[0]
        n = int(agg["n"])
        if n == 0:
            continue
        p_hi, p_lo = float(agg["high"]) / n, float(agg["low"]) / n
        if metric == "nps":  # % top band - % bottom band, in points
            se = 100 * np.sqrt(max(p_hi + p_lo - (p_hi - p_lo) ** 2, 0.0) / n)
            out[metric] = {"actual": 100 * (p_hi - p_lo), "se": se, "n": n}
        else:  # share in the top band
            out[metric] = {"actual": p_hi, "se": float(np.sqrt(p_hi * (1 - p_hi) / n)), "n": n}
    return out


def _base_kpis(data, params: dict[str, Any], start: dt.date, end: dt.date) -> dict[str, dict]:
    """Retention, revenue and cost to serve per customer-year over the days [start, end).

    A customer is active on the days ``[start_date, end_date + 1 day)`` (through ``end_date``
    inclusive); retention counts those active on ``start`` and still active on the period's
    last day, ``end - 1 day`` (``as_of``)."""
    c = data.tables["customers"]
    lit = lambda d: ibis.literal(d, type="date")  # noqa: E731
    last = end - dt.timedelta(days=1)
    active_at_start = (c.start_date <= lit(start)) & (c.end_date.isnull() | (c.end_date >= lit(start)))
    kept = c.end_date.isnull() | (c.end_date > lit(last))
    stop = ibis.least((c.end_date.fill_null(lit(last)) + ibis.interval(days=1)).cast("date"), lit(end))
    begin = ibis.greatest(c.start_date, lit(start))
    days = ibis.greatest(stop.delta(begin, unit="day"), 0)
    agg = c.aggregate(at_start=active_at_start.cast("int64").sum(),
                      kept=(active_at_start & kept).cast("int64").sum(),
                      customer_days=days.sum()).to_pandas().iloc[0]
    out: dict[str, dict] = {}
    n0 = int(agg["at_start"])
    if n0:
        p = float(agg["kept"]) / n0
        out["retention_12m"] = {"actual": p, "se": float(np.sqrt(p * (1 - p) / n0)), "n": n0}
    years = _total(agg["customer_days"]) / DAYS_PER_YEAR
    if years <= 0:
        return out
    t = data.tables["transactions"]
    revenue = t.filter((t.date >= start) & (t.date < end)).amount.sum().to_pandas()
    out["revenue_per_customer"] = {"actual": _total(revenue) / years, "se": None, "n": int(n0)}
    if "contacts" in data.tables:
        k = data.tables["contacts"]
        k = k.filter((k.date >= start) & (k.date < end))
        cost = k.aggregate(total=contact_unit_cost(k, params, data.has_contact_cost).sum()).to_pandas().iloc[0]["total"]
        out["cost_to_serve_per_customer"] = {"actual": _total(cost) / years, "se": None, "n": int(n0)}
    return out


def _purchase_kpis(data, params: dict[str, Any], start: dt.date, end: dt.date) -> dict[str, dict]:
    """For customers who never cancel (non-contractual mode), over the days [start, end):
    the repeat-purchase rate (of the customers who bought in the 12 months before ``start``,
    the share who bought again in the period; a purchase is a transaction with a positive
    amount) and revenue and cost to serve per customer who bought in the period (buyer-years:
    a customer's days since their start or the period's start, as for the contractual KPIs,
    counted only for customers who bought in the period)."""
    t = data.tables["transactions"]
    before = (pd.Timestamp(start) - pd.DateOffset(months=12)).date()
    sales = t.filter(t.amount > 0)
    earlier = sales.filter((sales.date >= before) & (sales.date < start)).select("customer_id").distinct()
    now = sales.filter((sales.date >= start) & (sales.date < end)).select("customer_id").distinct()
    n0 = int(earlier.count().to_pandas())
    out: dict[str, dict] = {}
    if n0:
        kept = int(earlier.semi_join(now, "customer_id").count().to_pandas())
        p = kept / n0
        out["repeat_purchase_12m"] = {"actual": p, "se": float(np.sqrt(p * (1 - p) / n0)), "n": n0}
    c = data.tables["customers"].semi_join(now, "customer_id")
    lit = lambda d: ibis.literal(d, type="date")  # noqa: E731
    days = ibis.greatest(lit(end).delta(ibis.greatest(c.start_date, lit(start)), unit="day"), 0)
    agg = c.aggregate(n=c.count(), customer_days=days.sum()).to_pandas().iloc[0]
    years = _total(agg["customer_days"]) / DAYS_PER_YEAR
    if years <= 0:
        return out
    revenue = t.filter((t.date >= start) & (t.date < end)).amount.sum().to_pandas()
    out["revenue_per_customer"] = {"actual": _total(revenue) / years, "se": None, "n": int(agg["n"])}
    if "contacts" in data.tables:
        k = data.tables["contacts"]
        k = k.filter((k.date >= start) & (k.date < end))
        cost = k.aggregate(total=contact_unit_cost(k, params, data.has_contact_cost).sum()).to_pandas().iloc[0]["total"]
        out["cost_to_serve_per_customer"] = {"actual": _total(cost) / years, "se": None, "n": int(agg["n"])}
    return out


def _status(kpi: KPI, actual: float, target: float | None, moe: float | None) -> tuple[float | None, str]:
    if target is None or actual is None or pd.isna(actual):
        return None, "no target set"
    gap = (actual - target) if kpi.higher_is_better else (target - actual)  # >= 0: goal met
    if gap >= 0:
        return float(actual - target), "on target"
    if moe is not None and -gap <= moe:
        return float(actual - target), "within the noise"
    return float(actual - target), "behind target"


def kpi_change(a: dict | None, b: dict | None) -> tuple[float | None, str]:
    """Change of one KPI from run ``a`` to run ``b`` (each ``{actual, se}``) and its reading:
    ``up``/``down`` only when larger than 1.96 x the standard error of the difference."""
    if not a or not b or a.get("actual") is None or b.get("actual") is None:
        return None, "not comparable"
    diff = float(b["actual"]) - float(a["actual"])
    se_a, se_b = a.get("se"), b.get("se")
    if se_a is not None and se_b is not None:
        if abs(diff) <= Z95 * np.sqrt(se_a**2 + se_b**2):
            return diff, "no clear change"
    elif abs(diff) <= 1e-9 * max(1.0, abs(float(a["actual"]))):  # the same census, summed in another order
        return 0.0, "no change"
    return diff, "up" if diff > 0 else "down"


def value_of_gaps(kpis: dict[str, dict], params: dict[str, Any], margin_per_year: pd.Series,
                  customers: pd.Series) -> dict[str, float | None]:
    """Money per year of closing each KPI's gap to goal (None where it cannot be priced).

    ``margin_per_year``: per group, margin per customer-year (``value.group_clv``);
    ``customers``: today's base per group. See the module docstring for the rules.
    """
    out: dict[str, float | None] = {}
    n = float(customers.sum())
    labels = list(bands_for(params))
    ref = reference_group(params)
    m = margin_per_year.reindex(labels)
    w = customers.reindex(labels).fillna(0.0)
    # the base's mean margin: unknown (not priced) when a group with customers has no margin, not that group at 0
    mean_margin = float((m * w)[w > 0].sum(skipna=False) / n) if n else np.nan
    for name, k in kpis.items():
        gap, target = k.get("gap"), k.get("target")
        if target is None or gap is None or n == 0:
            out[name] = None
            continue
        short = max(0.0, -gap) if _BY_NAME[name].higher_is_better else max(0.0, gap)
        if name in ("nps", "csat", "ces"):
            if name != params["metric"]:
                out[name] = None
                continue
            frm, to = (labels[0], ref) if name == "nps" else (ref, labels[-1])
            movers = short / 100 * n if name == "nps" else short * n
            out[name] = float(movers * (m[to] - m[frm])) if pd.notna(m[to]) and pd.notna(m[frm]) else None
        elif name in ("retention_12m", "repeat_purchase_12m"):
            out[name] = float(short * k["n"] * mean_margin) if pd.notna(mean_margin) else None
        elif name == "revenue_per_customer":
            out[name] = float(short * n * params["gross_margin"])
        elif name == "cost_to_serve_per_customer":
            out[name] = float(short * n)
    return out


class Scorecard:
    """The KPI scorecard of one run; ``fit(data)`` measures, ``summary`` shows.

    Parameters
    ----------
    params : run parameters (``targets.*``, ``metric``, ``contact_cost``, ...).
    earlier : ``results.json`` dicts of earlier runs (oldest first), for the trend; each
        may carry ``kpis`` from its own scorecard and ``run`` (``{started_at, as_of}``).
    """

    def __init__(self, params: dict[str, Any], earlier: list[dict] | None = None,
                 business_model: str = "contractual"):
        self.params = params
        self.earlier = list(earlier or [])
        #: "non_contractual": the repeat-purchase rate replaces retention, and revenue and cost
        #: to serve are per customer who bought in the period (:func:`_purchase_kpis`)
        self.business_model = business_model

    def fit(self, data, margin_per_year: pd.Series | None = None, customers: pd.Series | None = None) -> "Scorecard":
        end = data.as_of + dt.timedelta(days=1)  # half-open: as_of is the period's last day
        start = (pd.Timestamp(end) - pd.DateOffset(months=12)).date()
        self.period_ = (start, data.as_of)  # first and last day, for display
        base = _purchase_kpis if self.business_model == "non_contractual" else _base_kpis
        measured = {**_survey_kpis(data, self.params, start, end), **base(data, self.params, start, end)}
        targets = self.params.get("targets", {}) or {}
        kpis: dict[str, dict] = {}
        for k in KPIS:
            if k.name not in measured:
                continue
            m = measured[k.name]
            moe = Z95 * m["se"] if m["se"] is not None else None
            target = goal_value(targets.get(k.name))  # a goal with a date: its value (cxvalue.goals)
            gap, status = _status(k, m["actual"], target, moe)
            kpis[k.name] = {"label": k.label, "unit": k.unit, "actual": m["actual"], "target": target, "gap": gap,
                            "status": status, "margin_of_error": moe, "se": m["se"], "n": m["n"]}
        if margin_per_year is not None and customers is not None:
            for name, v in value_of_gaps(kpis, self.params, margin_per_year, customers).items():
                kpis[name]["value_of_gap"] = v
        previous = next((r.get("kpis") for r in reversed(self.earlier) if r.get("kpis")), None)
        for name, k in kpis.items():
            change, reading = kpi_change((previous or {}).get(name), k)
            k["change"], k["change_reading"] = change, reading
        self.kpis_ = kpis
        self.warnings_ = [f"Scorecard: {_BY_NAME[n].label} is based on only {k['n']} answers in the last 12 months; "
                          f"its margin of error is wide." for n, k in kpis.items()
                          if k["unit"] != "money" and k["n"] < self.params.get("min_group_size", 100)]
        return self

    @property
    def summary(self) -> pd.DataFrame:
        """One row per KPI: actual, target, gap, status, margin of error, change since the last run."""
        cols = ("actual", "target", "gap", "status", "margin_of_error", "change", "change_reading", "value_of_gap", "n")
        rows = [{"kpi": k["label"], **{c: k.get(c) for c in cols}} for k in self.kpis_.values()]
        return pd.DataFrame(rows, columns=["kpi", *cols]).set_index("kpi")  # columns: no KPI measured is an empty table

    def trend(self) -> pd.DataFrame:
        """Each KPI's actual in every earlier run and this one: ``run``, ``kpi``, ``actual``, ``low``, ``high``."""
        rows = []
        runs = [*self.earlier, {"kpis": self.kpis_, "run": {"label": "this run"}}]
        for i, r in enumerate(runs):
            label = (r.get("run") or {}).get("label") or (r.get("run") or {}).get("started_at") or f"run {i + 1}"
            for name, k in (r.get("kpis") or {}).items():
                if name not in self.kpis_ or k.get("actual") is None:
                    continue
                moe = k.get("margin_of_error") or 0.0
                scale = 100.0 if _BY_NAME[name].unit == "share" else 1.0  # shares shown in %
                rows.append({"order": i, "run": label, "kpi": _BY_NAME[name].label, "unit": _BY_NAME[name].unit,
                             "actual": float(f"{k['actual'] * scale:.6g}"), "low": float(f"{(k['actual'] - moe) * scale:.6g}"),
                             "high": float(f"{(k['actual'] + moe) * scale:.6g}")})
        return pd.DataFrame(rows, columns=["order", "run", "kpi", "unit", "actual", "low", "high"])

    def results(self) -> dict[str, Any]:
        """The ``kpis`` block of ``results.json`` (one entry per KPI measured) and the period.

        Changes since earlier runs are left out: the same data and parameters must give the
        same ``results.json`` whatever ran before (the trend is in the report and in
        ``cxvalue compare``)."""
        kpis = {n: {c: v for c, v in k.items() if c not in ("change", "change_reading")} for n, k in self.kpis_.items()}
        return {"kpis": kpis, "kpi_period": [self.period_[0].isoformat(), self.period_[1].isoformat()]}

    def _repr_html_(self) -> str:
        """In Jupyter: the name, the skipped reason or the summary table, the caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, "KPI scorecard")
