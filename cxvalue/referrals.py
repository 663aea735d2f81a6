"""Customers referred by each satisfaction group, and what they spend.

:func:`referred_customers` (``drivers.referrals.referred_customers`` in ``results.json``).
Units: money per customer per year in the data's currency.
"""

from __future__ import annotations


import ibis
import numpy as np
import pandas as pd

from cxvalue.data import CheckedData
from cxvalue.history import DAYS_PER_YEAR
from cxvalue.skipping import require, skippable_frame

__all__ = ["referred_customers"]


@skippable_frame(["referred", "revenue_per_customer_year", "still_customers", "suppressed"], index="group")
def referred_customers(data: CheckedData, hist: pd.DataFrame, min_cell_size: int = 10) -> pd.DataFrame:
    """Customers referred by a surveyed customer, by the referrer's group (the advocacy lever).

    For every customer whose ``referred_by`` names a customer of ``hist``: the referrer's group,
    and the referred customer's revenue since joining (all their transactions) per
    customer-year as a customer (start to ``end_date`` or ``as_of``). One row per group:
    ``referred`` (customers), ``revenue_per_customer_year`` (sum of revenue / sum of years),
    ``still_customers`` (share with no ``end_date``). Groups with fewer than ``min_cell_size``
    referred customers are blanked (``suppressed``). Descriptive: who referred whom, not why.
    When no customer names a referrer: an empty table whose ``attrs["skipped"]`` says what to add.
    """
    c = data.tables["customers"]
    referred = c.filter(c.referred_by.notnull() & (c.referred_by != "")) if "referred_by" in c.columns else None
    require(referred is not None and int(referred.count().to_pandas()) > 0,
            "Referrals need to know who referred whom: no customer names a referrer. Add a column referred_by to "
            "the customers table, holding the customer_id of whoever referred each customer.")
    require(not hist.empty, "Referrals need surveyed customers: no customer has a survey answer that sets a group.")
    # every checked transaction of a referred customer is one dated inside their time as a customer,
    # [start_date, min(end_date, as_of)]: read for them alone, not checked against every customer first
    last_day = ibis.literal(data.as_of, type="date")
    win = referred.select("customer_id", "start_date",
                          _stop=ibis.least(referred.end_date.fill_null(last_day), last_day))
    t = data.in_windows("transactions")
    tj = t.inner_join(win, "customer_id")
    tj = tj.filter(tj.amount.notnull(), tj.date >= tj.start_date, tj.date <= tj._stop)
    revenue = tj.group_by("customer_id").aggregate(revenue=tj.amount.sum())
    r = (referred.left_join(revenue, "customer_id")
         .select("referred_by", "start_date", "end_date", "revenue").to_pyarrow().to_pandas(date_as_object=False))
    groups = hist.set_index(hist["customer_id"].astype(str))["group"]
    r["group"] = r["referred_by"].astype(str).map(groups.astype(str))
    r = r[r["group"].notna()]
    as_of = pd.Timestamp(data.as_of)
    stop = pd.to_datetime(r["end_date"]).fillna(as_of).clip(upper=as_of)
    r["years"] = ((stop - pd.to_datetime(r["start_date"])).dt.days + 1).clip(lower=1) / DAYS_PER_YEAR
    r["revenue"] = r["revenue"].fillna(0.0)
    r["still"] = r["end_date"].isna()
    order = [str(g) for g in (hist["group"].cat.categories if hasattr(hist["group"], "cat") else sorted(groups.unique()))]
    g = r.groupby("group")
    out = pd.DataFrame({"referred": g.size(), "revenue_per_customer_year": g["revenue"].sum() / g["years"].sum(),
                        "still_customers": g["still"].mean()}).reindex(order)
    out["referred"] = out["referred"].fillna(0).astype(int)
    out["suppressed"] = (out["referred"] > 0) & (out["referred"] < min_cell_size)
    out.loc[out["suppressed"] | (out["referred"] == 0), ["revenue_per_customer_year", "still_customers"]] = np.nan
    out.index.name = "group"
    return out
