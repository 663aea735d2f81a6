"""One row per customer: index response, satisfaction group, and windows around it.

Built as one Ibis expression over the checked tables and executed on the source's own
backend (DuckDB by default; Spark, BigQuery, Snowflake... through the same code).

Definitions (CONTRACT section 2), for a customer whose index response is on day ``r``:

* **index response**: the first (``index_response="last"``: the last) response with a
  score on the chosen metric, from a relationship survey (empty ``journey``) unless
  ``survey_type="any"``, dated inside ``[study_start, study_end]``. Same-day ties go to
  the lower score. Customers without one are not in the history.
* **group**: the band of ``bands`` that holds the index score.
* a customer is *active* from ``start_date`` through ``end_date`` inclusive (or through
  ``as_of`` when still a customer); the data is observed through ``as_of`` inclusive.
* **pre window**: ``[max(start_date, r - window_months), r)``;
  **post window**: ``[r, min(r + window_months, end_date + 1 day, as_of + 1 day))``.
  Both half-open, in days; a transaction or contact on day ``r`` is in the post window.
* ``*_exposure_years`` = window length in days / 365.25: the time actually observed,
  shorter than the window when tenure is short, the customer churned or the data ends.
* ``prior_sales`` / ``prior_sales_transactions``: sum and count of the positive amounts
  dated before ``r`` over the customer's whole history (not just the pre window): the
  typical bill, the steadiest measure of an account's size that the data holds.
* revenue = sum of ``amount`` (refunds are negative), ``*_cogs`` = sum of transaction
  ``cost`` (when present), contact cost = the contact's ``cost``, else
  ``contact_cost[channel]``, else ``contact_cost["other"]``.
* **churn**: ``churned`` = the customer has an ``end_date`` (on or before ``as_of``);
  ``duration_days`` = ``end_date - r`` if churned, else ``as_of - r`` (right-censored).
* ``tenure_years`` = ``(r - start_date)`` / 365.25; ``n_responses`` counts all checked
  responses of the customer; ``n_referred`` the customers naming them in ``referred_by``;
  ``post_referred`` those of them who started inside the post window (referrals per
  customer-year after the survey: the advocacy lever).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from cxvalue.config import bands_for, load_params
from cxvalue.data import CheckedData

__all__ = ["build_history", "history", "HISTORY_COLUMNS", "DAYS_PER_YEAR", "contact_unit_cost", "study_bounds"]

DAYS_PER_YEAR = 365.25
FAR_FUTURE = dt.date(9999, 12, 31)

#: Columns every history has (covariates follow them).
HISTORY_COLUMNS = [
    "customer_id", "response_date", "score", "group", "start_date", "end_date", "tenure_years",
    "pre_exposure_years", "post_exposure_years", "pre_revenue", "post_revenue",
    "pre_transactions", "post_transactions", "pre_contacts", "post_contacts",
    "pre_contact_cost", "post_contact_cost", "churned", "duration_days", "n_responses", "n_referred",
    "prior_sales", "prior_sales_transactions", "post_referred",
]


def contact_unit_cost(contacts: ir.Table, params: dict[str, Any], has_cost: bool) -> ir.FloatingValue:
    """What one contact costs: its ``cost``, else ``contact_cost[channel]``, else ``contact_cost["other"]``."""
    cost_map = dict(params["contact_cost"])
    other = float(cost_map.get("other", 0.0))
    by_channel = ibis.cases(*[(contacts.channel.lower() == ch.lower(), float(v)) for ch, v in cost_map.items()],
                            else_=other) if cost_map else ibis.literal(other)
    unit = contacts.cost.fill_null(by_channel) if has_cost else by_channel
    return unit.cast("float64")


def study_bounds(data: CheckedData, params: dict[str, Any]) -> tuple[dt.date | None, dt.date]:
    """The study window ``(study_start or None, study_end)``: ``study_end`` defaults to and is capped
    at the data's ``as_of``."""
    start = dt.date.fromisoformat(params["study_start"]) if params.get("study_start") else None
    end = dt.date.fromisoformat(params["study_end"]) if params.get("study_end") else data.as_of
    return start, min(end, data.as_of)


def _index_responses(data: CheckedData, params: dict[str, Any]) -> ir.Table:
    r = data.tables["responses"]
    metric = params["metric"]
    cond = [r[metric].notnull()]
    if params["survey_type"] == "relationship" and "journey" in r.columns:
        cond.append(r.journey.isnull())
    if params.get("study_start"):
        cond.append(r.response_date >= ibis.literal(dt.date.fromisoformat(params["study_start"])))
    study_end = dt.date.fromisoformat(params["study_end"]) if params.get("study_end") else data.as_of
    cond.append(r.response_date <= ibis.literal(study_end))
    r = r.filter(*cond)
    first = params["index_response"] == "first"
    order = [r.response_date if first else r.response_date.desc(), r[metric]]
    ranked = r.mutate(_rn=ibis.row_number().over(group_by=r.customer_id, order_by=order))
    idx = ranked.filter(ranked._rn == 0)
    bands = bands_for(params)
    group = ibis.cases(*[((idx[metric] >= lo) & (idx[metric] <= hi), label) for label, (lo, hi) in bands.items()])
    return idx.select(customer_id=idx.customer_id, response_date=idx.response_date,
                      score=idx[metric].cast("int64"), group=group)


def build_history(data: CheckedData, params: dict[str, Any] | None = None, use_unjoined: bool = True,
                  shift_months: int = 0) -> ir.Table:
    """The customer-history table as an Ibis expression (not yet executed).

    Parameters
    ----------
    data : checked tables from :func:`cxvalue.data.check`.
    params : run parameters; uses ``metric``, ``bands``, ``index_response``, ``survey_type``,
        ``study_start``, ``study_end``, ``window_months``, ``contact_cost``.
    shift_months : a placebo history (:mod:`cxvalue.placebo`): every index response is dated
        this many months earlier (the group stays the one of the real response), and only the
        customers who were already customers on that earlier day are kept.

    Returns
    -------
    One row per customer with an index response: :data:`HISTORY_COLUMNS` (money in the
    data's currency, exposures in years) plus ``pre_cogs``/``post_cogs`` when transactions
    carry ``cost`` and every customer covariate.
    """
    params = params or load_params()
    months = int(params["window_months"])
    as_of = ibis.literal(data.as_of, type="date")
    day_after_as_of = ibis.literal(data.as_of + dt.timedelta(days=1), type="date")
    customers = data.tables["customers"]
    idx = _index_responses(data, params)

    base = idx.inner_join(customers, "customer_id")
    if shift_months:
        base = base.mutate(response_date=(base.response_date - ibis.interval(months=int(shift_months))).cast("date"))
        base = base.filter(base.start_date <= base.response_date)
    end_or_far = base.end_date.fill_null(ibis.literal(FAR_FUTURE, type="date"))
    base = base.mutate(  # dates, not timestamps: millions of event dates are compared with them
        pre_start=ibis.greatest(base.start_date, (base.response_date - ibis.interval(months=months)).cast("date")),
        post_end=ibis.least((base.response_date + ibis.interval(months=months)).cast("date"),
                            (end_or_far + ibis.interval(days=1)).cast("date"), day_after_as_of),
    )
    win = base.select("customer_id", "start_date", "pre_start", "response_date", "post_end")
    # The windows lie inside [start_date, min(end_date + 1, as_of + 1)), so every row the
    # contract rules exclude (unknown customer, no date, before start, after end or as_of,
    # no amount) falls outside them: the rows need not be joined to customers twice.
    events = {n: data.in_windows(n) if use_unjoined else data.tables[n] for n in ("transactions", "contacts")
              if n in data.tables}

    # transactions ------------------------------------------------------------------
    t = events["transactions"]
    tj = t.inner_join(win, "customer_id").filter(ibis._.amount.notnull())
    in_pre = (tj.date >= tj.pre_start) & (tj.date < tj.response_date)
    in_post = (tj.date >= tj.response_date) & (tj.date < tj.post_end)
    zero = ibis.literal(0.0)
    prior_sale = (tj.date >= tj.start_date) & (tj.date < tj.response_date) & (tj.amount > 0)
    aggs = {
        "prior_sales": ibis.cases((prior_sale, tj.amount), else_=zero).sum(),
        "prior_sales_transactions": prior_sale.cast("int64").sum(),
        "pre_revenue": ibis.cases((in_pre, tj.amount), else_=zero).sum(),
        "post_revenue": ibis.cases((in_post, tj.amount), else_=zero).sum(),
        "pre_transactions": in_pre.cast("int64").sum(),
        "post_transactions": in_post.cast("int64").sum(),
    }
    if data.has_transaction_cost:
        cost = tj.cost.fill_null(0.0)
        aggs["pre_cogs"] = ibis.cases((in_pre, cost), else_=zero).sum()
        aggs["post_cogs"] = ibis.cases((in_post, cost), else_=zero).sum()
    tx = tj.group_by("customer_id").aggregate(**aggs)

    # contacts ----------------------------------------------------------------------
    contact_cols = ["pre_contacts", "post_contacts", "pre_contact_cost", "post_contact_cost"]
    if "contacts" in data.tables:
        c = events["contacts"]
        cj = c.inner_join(win, "customer_id")  # price contacts after the join: fewer rows
        cj = cj.mutate(_unit_cost=contact_unit_cost(cj, params, data.has_contact_cost))
        c_pre = (cj.date >= cj.pre_start) & (cj.date < cj.response_date)
        c_post = (cj.date >= cj.response_date) & (cj.date < cj.post_end)
        ct = cj.group_by("customer_id").aggregate(
            pre_contacts=c_pre.cast("int64").sum(),
            post_contacts=c_post.cast("int64").sum(),
            pre_contact_cost=ibis.cases((c_pre, cj._unit_cost), else_=zero).sum(),
            post_contact_cost=ibis.cases((c_post, cj._unit_cost), else_=zero).sum(),
        )
    else:
        ct = None

    responses = data.tables["responses"]
    n_resp = responses.group_by("customer_id").aggregate(n_responses=ibis._.count())
    referred = customers.filter(customers.referred_by.notnull()).select(
        customer_id=customers.referred_by, referee_start=customers.start_date)
    rj = referred.inner_join(win, "customer_id")
    referrals = rj.group_by("customer_id").aggregate(
        n_referred=ibis._.count(),
        post_referred=((rj.referee_start >= rj.response_date) & (rj.referee_start < rj.post_end)).cast("int64").sum())

    h = base.left_join(tx, "customer_id").drop("customer_id_right")
    if ct is not None:
        h = h.left_join(ct, "customer_id").drop("customer_id_right")
    h = h.left_join(n_resp, "customer_id").drop("customer_id_right")
    h = h.left_join(referrals, "customer_id").drop("customer_id_right")

    fills = {k: h[k].fill_null(0) for k in aggs}
    if ct is not None:
        fills.update({k: h[k].fill_null(0) for k in contact_cols})
    else:
        fills.update({k: ibis.literal(0, type="int64" if "cost" not in k else "float64") for k in contact_cols})
    h = h.mutate(**fills, n_responses=h.n_responses.fill_null(0), n_referred=h.n_referred.fill_null(0),
                 post_referred=h.post_referred.fill_null(0))

    churned = h.end_date.notnull()
    stop = h.end_date.fill_null(as_of)
    # days as float64 before dividing: Spark reads 365.25 as a decimal and would round the years
    # to 6 decimals; DuckDB promotes the integer to a double either way (same bytes)
    years = ibis.literal(DAYS_PER_YEAR, type="float64")
    h = h.mutate(
        tenure_years=h.response_date.delta(h.start_date, unit="day").cast("float64") / years,
        pre_exposure_years=h.response_date.delta(h.pre_start, unit="day").cast("float64") / years,
        post_exposure_years=h.post_end.delta(h.response_date, unit="day").cast("float64") / years,
        churned=churned,
        duration_days=stop.delta(h.response_date, unit="day"),
    )
    extra = [c for c in ("pre_cogs", "post_cogs") if c in h.columns]
    covariates = [c for c in data.covariates if c in h.columns]
    return h.select(*HISTORY_COLUMNS, *extra, *covariates)


def history(data: CheckedData, params: dict[str, Any] | None = None, shift_months: int = 0) -> pd.DataFrame:
    """Execute :func:`build_history` and return it as a DataFrame sorted by ``customer_id``.

    ``group`` is an ordered categorical in band order (lowest scores first).
    """
    params = params or load_params()
    # through Arrow directly: several times faster than Ibis' own pandas conversion
    df = build_history(data, params, shift_months=shift_months).order_by("customer_id").to_pyarrow().to_pandas(date_as_object=False)
    df["group"] = pd.Categorical(df["group"], categories=list(bands_for(params)), ordered=True)
    for col in ("response_date", "start_date", "end_date"):
        df[col] = pd.to_datetime(df[col])
    return df


def active_customers_by_group(data: CheckedData, hist: pd.DataFrame, weights: pd.Series | None = None) -> pd.Series:
    """Today's customer base split by group: customers active at ``as_of`` times the group
    shares of the respondents still active then (respondents stand in for the base; with
    ``weights``, one per history row, each respondent counts by their weight)."""
    c = data.tables["customers"]
    n_active = int(c.filter(c.end_date.isnull()).count().to_pandas())
    active = hist[~hist["churned"]]
    w = pd.Series(1.0, index=active.index) if weights is None else weights.reindex(active.index).fillna(1.0)
    shares = w.groupby(active["group"], observed=False).sum()
    shares = shares[shares > 0] / w.sum()
    shares.index.name = None
    return (shares.sort_values(ascending=False) * n_active).rename("customers")
