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

__all__ = ["build_history", "history", "histories", "HISTORY_COLUMNS", "DAYS_PER_YEAR", "contact_unit_cost", "study_bounds"]

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


#: The columns of a history that depend on the date of the index response (a placebo history moves it).
DATED_COLUMNS = [
    "response_date", "tenure_years", "pre_exposure_years", "post_exposure_years", "pre_revenue", "post_revenue",
    "pre_transactions", "post_transactions", "pre_contacts", "post_contacts", "pre_contact_cost",
    "post_contact_cost", "duration_days", "prior_sales", "prior_sales_transactions", "post_referred",
    "pre_cogs", "post_cogs",
]


def _dated(column: str, shift: int) -> str:
    """The name of a dated column of the history shifted ``shift`` months in a table of several."""
    return f"{column}__shift{shift}"


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
    k = int(shift_months)
    wide = _build_histories(data, params, (k,), use_unjoined)
    wide = wide.filter(wide[f"_in{k}"]) if k else wide
    return wide.select(**{c: wide[w] for c, w in _one_shift(data, wide.columns, k).items()})


def _one_shift(data: CheckedData, columns: list[str], shift: int) -> dict[str, str]:
    """The history's columns (:data:`HISTORY_COLUMNS`, cogs, covariates) in a table of several shifts'
    (:func:`_build_histories` with ``columns``): name -> that shift's column."""
    wanted = [*HISTORY_COLUMNS, "pre_cogs", "post_cogs", *data.covariates]
    named = {c: _dated(c, shift) if c in DATED_COLUMNS else c for c in wanted}
    return {c: w for c, w in named.items() if w in columns}


def _build_histories(data: CheckedData, params: dict[str, Any], shifts: tuple[int, ...],
                     use_unjoined: bool = True) -> ir.Table:
    """The histories of every shift in ``shifts`` (months; 0: the history itself) in one table, from
    one pass over the transactions and one over the contacts: one row per customer with an index
    response, the columns of :data:`DATED_COLUMNS` once per shift (named by :func:`_dated`) and the
    others once; ``_in{shift}`` says whether the customer belongs to that shift's history."""
    months = int(params["window_months"])
    as_of = ibis.literal(data.as_of, type="date")
    day_after_as_of = ibis.literal(data.as_of + dt.timedelta(days=1), type="date")
    customers = data.tables["customers"]
    idx = _index_responses(data, params)

    base = idx.inner_join(customers, "customer_id")
    end_or_far = base.end_date.fill_null(ibis.literal(FAR_FUTURE, type="date"))
    windows = {}
    for k in shifts:
        r = (base.response_date - ibis.interval(months=k)).cast("date") if k else base.response_date
        windows.update({  # dates, not timestamps: millions of event dates are compared with them
            f"_r{k}": r,
            f"_pre_start{k}": ibis.greatest(base.start_date, (r - ibis.interval(months=months)).cast("date")),
            f"_post_end{k}": ibis.least((r + ibis.interval(months=months)).cast("date"),
                                        (end_or_far + ibis.interval(days=1)).cast("date"), day_after_as_of),
        })
    base = base.mutate(**windows)
    win = base.select("customer_id", "start_date", *windows)
    # The windows lie inside [start_date, min(end_date + 1, as_of + 1)), so every row the
    # contract rules exclude (unknown customer, no date, before start, after end or as_of,
    # no amount) falls outside them: the rows need not be joined to customers twice.
    events = {n: data.in_windows(n) if use_unjoined else data.tables[n] for n in ("transactions", "contacts")
              if n in data.tables}
    zero = ibis.literal(0.0)

    # transactions ------------------------------------------------------------------
    t = events["transactions"]
    tj = t.inner_join(win, "customer_id").filter(ibis._.amount.notnull())
    aggs = {}
    for k in shifts:
        r, in_pre = tj[f"_r{k}"], (tj.date >= tj[f"_pre_start{k}"]) & (tj.date < tj[f"_r{k}"])
        in_post = (tj.date >= r) & (tj.date < tj[f"_post_end{k}"])
        prior_sale = (tj.date >= tj.start_date) & (tj.date < r) & (tj.amount > 0)
        aggs.update({
            _dated("prior_sales", k): ibis.cases((prior_sale, tj.amount), else_=zero).sum(),
            _dated("prior_sales_transactions", k): prior_sale.cast("int64").sum(),
            _dated("pre_revenue", k): ibis.cases((in_pre, tj.amount), else_=zero).sum(),
            _dated("post_revenue", k): ibis.cases((in_post, tj.amount), else_=zero).sum(),
            _dated("pre_transactions", k): in_pre.cast("int64").sum(),
            _dated("post_transactions", k): in_post.cast("int64").sum(),
        })
        if data.has_transaction_cost:
            cost = tj.cost.fill_null(0.0)
            aggs[_dated("pre_cogs", k)] = ibis.cases((in_pre, cost), else_=zero).sum()
            aggs[_dated("post_cogs", k)] = ibis.cases((in_post, cost), else_=zero).sum()
    tx = tj.group_by("customer_id").aggregate(**aggs)

    # contacts ----------------------------------------------------------------------
    contact_cols = ["pre_contacts", "post_contacts", "pre_contact_cost", "post_contact_cost"]
    if "contacts" in data.tables:
        c = events["contacts"]
        cj = c.inner_join(win, "customer_id")  # price contacts after the join: fewer rows
        cj = cj.mutate(_unit_cost=contact_unit_cost(cj, params, data.has_contact_cost))
        contact_aggs = {}
        for k in shifts:
            c_pre = (cj.date >= cj[f"_pre_start{k}"]) & (cj.date < cj[f"_r{k}"])
            c_post = (cj.date >= cj[f"_r{k}"]) & (cj.date < cj[f"_post_end{k}"])
            contact_aggs.update({
                _dated("pre_contacts", k): c_pre.cast("int64").sum(),
                _dated("post_contacts", k): c_post.cast("int64").sum(),
                _dated("pre_contact_cost", k): ibis.cases((c_pre, cj._unit_cost), else_=zero).sum(),
                _dated("post_contact_cost", k): ibis.cases((c_post, cj._unit_cost), else_=zero).sum(),
            })
        ct = cj.group_by("customer_id").aggregate(**contact_aggs)
    else:
        ct = None

    responses = data.tables["responses"]
    n_resp = responses.group_by("customer_id").aggregate(n_responses=ibis._.count())
    referred = customers.filter(customers.referred_by.notnull()).select(
        customer_id=customers.referred_by, referee_start=customers.start_date)
    rj = referred.inner_join(win, "customer_id")
    referrals = rj.group_by("customer_id").aggregate(n_referred=ibis._.count(), **{
        _dated("post_referred", k): ((rj.referee_start >= rj[f"_r{k}"]) & (rj.referee_start < rj[f"_post_end{k}"]))
        .cast("int64").sum() for k in shifts})

    h = base.left_join(tx, "customer_id").drop("customer_id_right")
    if ct is not None:
        h = h.left_join(ct, "customer_id").drop("customer_id_right")
    h = h.left_join(n_resp, "customer_id").drop("customer_id_right")
    h = h.left_join(referrals, "customer_id").drop("customer_id_right")

    fills = {name: h[name].fill_null(0) for name in [*aggs, *(ct.columns[1:] if ct is not None else [])]}
    for k in shifts:
        fills[_dated("post_referred", k)] = h[_dated("post_referred", k)].fill_null(0)
        if ct is None:
            fills.update({_dated(col, k): ibis.literal(0, type="int64" if "cost" not in col else "float64")
                          for col in contact_cols})
    h = h.mutate(**fills, n_responses=h.n_responses.fill_null(0), n_referred=h.n_referred.fill_null(0))

    stop = h.end_date.fill_null(as_of)
    # days as float64 before dividing: Spark reads 365.25 as a decimal and would round the years
    # to 6 decimals; DuckDB promotes the integer to a double either way (same bytes)
    years = ibis.literal(DAYS_PER_YEAR, type="float64")
    dated = {}
    for k in shifts:
        r = h[f"_r{k}"]
        dated.update({
            _dated("response_date", k): r,
            _dated("tenure_years", k): r.delta(h.start_date, unit="day").cast("float64") / years,
            _dated("pre_exposure_years", k): r.delta(h[f"_pre_start{k}"], unit="day").cast("float64") / years,
            _dated("post_exposure_years", k): h[f"_post_end{k}"].delta(r, unit="day").cast("float64") / years,
            _dated("duration_days", k): stop.delta(r, unit="day"),
        })
    h = h.mutate(**dated, churned=h.end_date.notnull())
    common = [c for c in _one_shift(data, h.columns, 0) if c not in DATED_COLUMNS]
    shifted = [_dated(c, k) for k in shifts for c in DATED_COLUMNS if _dated(c, k) in h.columns]
    # a customer is in a shifted history when already a customer on the earlier day
    return h.select(*common, *shifted, **{f"_in{k}": h.start_date <= h[f"_r{k}"] for k in shifts if k})


def history(data: CheckedData, params: dict[str, Any] | None = None, shift_months: int = 0) -> pd.DataFrame:
    """Execute :func:`build_history` and return it as a DataFrame sorted by ``customer_id``.

    ``group`` is an ordered categorical in band order (lowest scores first). A history that
    :func:`histories` built ahead and kept on ``data`` for these parameters is returned (once)
    instead of being built again.
    """
    params = params or load_params()
    kept = data.kept.pop(_kept_as(params, shift_months), None)
    return kept if kept is not None else histories(data, params, (shift_months,))[0]


def histories(data: CheckedData, params: dict[str, Any] | None = None, shifts: tuple[int, ...] = (0,),
              keep: tuple[int, ...] = ()) -> list[pd.DataFrame]:
    """:func:`history` for each of ``shifts`` (its ``shift_months``), built in one query: one pass over
    the transactions and one over the contacts for them all (a run needs the history and the
    placebo check's, :func:`cxvalue.placebo.shifted_history`). The histories of the shifts in
    ``keep`` are also kept on ``data`` for the next :func:`history` call that asks for them."""
    params = params or load_params()
    shifts = tuple(int(k) for k in shifts)
    # through Arrow directly: several times faster than Ibis' own pandas conversion
    wide = (_build_histories(data, params, shifts).order_by("customer_id").to_pyarrow()
            .to_pandas(date_as_object=False))
    wide["group"] = pd.Categorical(wide["group"], categories=list(bands_for(params)), ordered=True)
    out = []
    for k in shifts:
        rows = wide[wide[f"_in{k}"]].reset_index(drop=True) if k else wide
        df = pd.DataFrame({c: rows[w] for c, w in _one_shift(data, list(wide.columns), k).items()})
        for col in ("response_date", "start_date", "end_date"):
            df[col] = pd.to_datetime(df[col])
        out.append(df)
        if k in keep:
            data.kept[_kept_as(params, k)] = df
    return out


def _kept_as(params: dict[str, Any], shift_months: int) -> str:
    """What a kept history is filed under: its shift and every parameter that shapes it."""
    import json

    used = {name: params.get(name) for name in ("metric", "index_response", "survey_type", "study_start",
                                                "study_end", "window_months", "contact_cost")}
    return json.dumps([int(shift_months), used, bands_for(params)], sort_keys=True, default=str)


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
