"""The customer history in plain pandas: the baseline that ``bench/run.py`` times.

This is what a competent analyst would write by hand: read the four tables with
``pd.read_parquet`` (only the columns needed), then vectorised filters, ``merge`` and
``groupby`` -- no per-row Python loop, no DuckDB, no Ibis, nothing from ``cxvalue``.

It follows the definitions in the docstring of ``cxvalue/history.py`` with the default
parameters (``metric="nps"``, ``index_response="first"``, ``survey_type="relationship"``,
``window_months=12``, default NPS bands and ``contact_cost``; no ``study_start``,
``study_end`` = ``as_of``):

* index response = the first relationship response (``journey`` empty) with a non-null
  ``nps`` dated in ``[study_start, study_end]``; same-day ties go to the lower score;
* group = detractor 0-6, passive 7-8, promoter 9-10;
* pre window ``[max(start_date, r - 12 months), r)``, post window
  ``[r, min(r + 12 months, end_date + 1 day, as_of + 1 day))``, calendar months
  (``pd.DateOffset(months=12)``), exposures = days / 365.25;
* prior_sales / prior_sales_transactions = sum / count of the positive amounts dated before
  ``r`` over the customer's whole (kept) history, not just the pre window;
* revenue / cogs = sums of ``amount`` / ``cost``; contact cost = ``cost`` if the contacts
  have one, else ``contact_cost[channel]``, else ``contact_cost["other"]``;
* churned = has an ``end_date``; duration = ``end_date - r`` or ``as_of - r``;
* n_responses = all kept responses of the customer; n_referred = kept customers naming
  the customer in ``referred_by``; post_referred = those of them who started inside the
  post window.

Contract checks are skipped (no typing of messy text, no data-quality report), but the
rows that ``cxvalue.data`` would exclude or correct are handled, so the result is the same
on messy data too:

* customers: empty id or ``start_date``, ``start_date`` after ``as_of``, ``end_date``
  before ``start_date`` are dropped; ``end_date`` after ``as_of`` becomes empty;
  ``referred_by`` naming no kept customer becomes empty;
* responses: unknown customer, empty date, date after ``as_of`` / before the start /
  after the end, no score at all, a score out of range or not whole are dropped;
* transactions and contacts: rows outside the customer's active span or after ``as_of``
  can never fall inside a window (``pre_start >= start_date``,
  ``post_end <= min(end_date, as_of) + 1 day``), and unknown customers drop out of the
  inner join, so only ``amount`` empty needs an explicit filter (and ``date >= start_date``
  for ``prior_sales``, which has no lower window bound); an empty ``channel``
  costs ``contact_cost["other"]`` like in cxvalue.

Usage as a module: ``history(folder, as_of="2025-12-31") -> DataFrame``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DAYS_PER_YEAR = 365.25
WINDOW_MONTHS = 12
#: A ``contact_cost`` map as in ``cxvalue/config.py``; bench/run.py passes cxvalue's current
#: default so that both paths price contacts the same way.
CONTACT_COST = {"phone": 6.0, "email": 3.5, "chat": 2.5, "web": 0.5, "store": 8.0, "other": 4.0}
#: Default NPS bands, label -> (low, high) inclusive, lowest first.
NPS_BANDS = {"detractor": (0, 6), "passive": (7, 8), "promoter": (9, 10)}
SCORE_RANGES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
CONTRACT_CUSTOMER_COLUMNS = {"customer_id", "start_date", "end_date", "referred_by"}

HISTORY_COLUMNS = [
    "customer_id", "response_date", "score", "group", "start_date", "end_date", "tenure_years",
    "pre_exposure_years", "post_exposure_years", "pre_revenue", "post_revenue",
    "pre_transactions", "post_transactions", "pre_contacts", "post_contacts",
    "pre_contact_cost", "post_contact_cost", "churned", "duration_days", "n_responses", "n_referred",
    "prior_sales", "prior_sales_transactions", "post_referred",
]


def _columns(path: Path, wanted: list[str]) -> list[str]:
    """The wanted columns that the file has (parquet schema only, no data read)."""
    import pyarrow.parquet as pq

    have = set(pq.read_schema(path).names)
    return [c for c in wanted if c in have]


def read_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Read the four tables from ``folder`` (``<table>.parquet`` or ``<table>.csv``)."""
    folder = Path(folder)
    wanted = {
        "customers": None,  # every column: the covariates go into the history
        "responses": ["customer_id", "response_date", "nps", "csat", "ces", "journey"],
        "transactions": ["customer_id", "date", "amount", "cost"],
        "contacts": ["customer_id", "date", "channel", "cost"],
    }
    dates = {"customers": ["start_date", "end_date"], "responses": ["response_date"],
             "transactions": ["date"], "contacts": ["date"]}
    out = {}
    for name, cols in wanted.items():
        pq_path, csv_path = folder / f"{name}.parquet", folder / f"{name}.csv"
        if pq_path.is_file():
            df = pd.read_parquet(pq_path, columns=_columns(pq_path, cols) if cols else None)
        elif csv_path.is_file():
            head = pd.read_csv(csv_path, nrows=0).columns
            use = [c for c in cols if c in head] if cols else None
            df = pd.read_csv(csv_path, usecols=use, dtype={"customer_id": str, "referred_by": str},
                             parse_dates=[d for d in dates[name] if d in head])
        elif name == "contacts":
            continue
        else:
            raise FileNotFoundError(f"{folder}: no {name}.parquet or {name}.csv")
        out[name] = df
    return out


def _as_datetime(s: pd.Series) -> pd.Series:
    """Day precision (timestamps keep their day, like cxvalue)."""
    s = pd.to_datetime(s, errors="coerce")
    return s.dt.normalize() if s.notna().any() else s


def history(folder: str | Path, as_of: str, tables: dict[str, pd.DataFrame] | None = None,
            contact_cost: dict[str, float] | None = None, window_months: int = WINDOW_MONTHS) -> pd.DataFrame:
    """One row per customer with an index response, sorted by ``customer_id``.

    ``tables`` : the output of :func:`read_tables` (read here when omitted; modified in place).
    ``contact_cost`` : cost per contact by channel, ``"other"`` for the rest (default :data:`CONTACT_COST`).
    """
    t = tables if tables is not None else read_tables(folder)
    cost_map = dict(CONTACT_COST if contact_cost is None else contact_cost)
    as_of_ts = pd.Timestamp(as_of)
    day = pd.Timedelta(days=1)
    months = pd.DateOffset(months=window_months)

    # customers: drop and correct the rows cxvalue.data would ------------------------------
    cust = t["customers"]
    for col in ("start_date", "end_date"):
        if col in cust.columns:
            cust[col] = _as_datetime(cust[col])
    if "end_date" not in cust.columns:
        cust["end_date"] = pd.NaT
    keep = (cust["customer_id"].notna() & cust["start_date"].notna() & (cust["start_date"] <= as_of_ts)
            & ~(cust["end_date"] < cust["start_date"]))
    cust = cust[keep] if not keep.all() else cust
    cust.loc[cust["end_date"] > as_of_ts, "end_date"] = pd.NaT
    if "referred_by" in cust.columns:
        cust["referred_by"] = cust["referred_by"].where(cust["referred_by"].isin(cust["customer_id"]))
    spans = cust[["customer_id", "start_date", "end_date"]]

    # responses: the kept ones -----------------------------------------------------------
    resp = t["responses"]
    resp["response_date"] = _as_datetime(resp["response_date"])
    resp = resp.merge(spans, on="customer_id", how="inner")
    ok = (resp["response_date"].notna() & (resp["response_date"] <= as_of_ts)
          & (resp["response_date"] >= resp["start_date"])
          & ~(resp["response_date"] > resp["end_date"]))
    scores = [m for m in ("nps", "csat", "ces") if m in resp.columns]
    ok &= resp[scores].notna().any(axis=1)
    for m in scores:
        lo, hi = SCORE_RANGES[m]
        v = resp[m].astype("float64")
        ok &= v.isna() | ((v >= lo) & (v <= hi) & (v == v.round()))
    resp = resp[ok]
    n_responses = resp.groupby("customer_id", sort=False).size().rename("n_responses")

    # index response: first relationship response with an NPS, ties to the lower score ----
    relationship = (resp["journey"].str.strip().replace("", None).isna() if "journey" in resp.columns
                    else pd.Series(True, index=resp.index))
    cand = resp[resp["nps"].notna() & relationship & (resp["response_date"] <= as_of_ts)]
    cand = cand.sort_values(["customer_id", "response_date", "nps"], kind="stable")
    idx = cand.drop_duplicates("customer_id", keep="first")
    base = idx[["customer_id", "response_date", "nps"]].rename(columns={"nps": "score"})
    base["score"] = base["score"].astype("int64")
    group = pd.Series(pd.NA, index=base.index, dtype="object")
    for label, (lo, hi) in NPS_BANDS.items():
        group[base["score"].between(lo, hi)] = label
    base["group"] = pd.Categorical(group, categories=list(NPS_BANDS), ordered=True)
    base = base.merge(cust, on="customer_id", how="inner")

    r = base["response_date"]
    back = r - months
    base["pre_start"] = back.where(back > base["start_date"], base["start_date"])
    stop = base["end_date"].fillna(as_of_ts).clip(upper=as_of_ts) + day  # min(end_date, as_of) + 1 day
    post_end = r + months
    base["post_end"] = post_end.where(post_end < stop, stop)
    win = base[["customer_id", "start_date", "pre_start", "response_date", "post_end"]]

    # transactions -------------------------------------------------------------------------
    tr = t["transactions"]
    tr["date"] = _as_datetime(tr["date"])
    if tr["amount"].isna().any():
        tr = tr[tr["amount"].notna()]
    tj = tr.merge(win, on="customer_id", how="inner")
    in_pre = (tj["date"] >= tj["pre_start"]) & (tj["date"] < tj["response_date"])
    in_post = (tj["date"] >= tj["response_date"]) & (tj["date"] < tj["post_end"])
    prior = (tj["date"] < tj["response_date"]) & (tj["date"] >= tj["start_date"]) & (tj["amount"] > 0)
    parts = {
        "prior_sales": tj["amount"].where(prior, 0.0),
        "prior_sales_transactions": prior.astype("int64"),
        "pre_revenue": tj["amount"].where(in_pre, 0.0),
        "post_revenue": tj["amount"].where(in_post, 0.0),
        "pre_transactions": in_pre.astype("int64"),
        "post_transactions": in_post.astype("int64"),
    }
    has_cogs = "cost" in tj.columns
    if has_cogs:
        cost = tj["cost"].fillna(0.0)
        parts["pre_cogs"] = cost.where(in_pre, 0.0)
        parts["post_cogs"] = cost.where(in_post, 0.0)
    tx = pd.DataFrame(parts).groupby(tj["customer_id"].to_numpy(), sort=False).sum()
    del tj, in_pre, in_post, prior, parts

    # contacts -----------------------------------------------------------------------------
    contact_cols = ["pre_contacts", "post_contacts", "pre_contact_cost", "post_contact_cost"]
    if "contacts" in t:
        co = t["contacts"]
        co["date"] = _as_datetime(co["date"])
        other = float(cost_map.get("other", 0.0))
        lower = {k.lower(): float(v) for k, v in cost_map.items()}
        unit = co["channel"].str.strip().str.lower().map(lower).astype("float64").fillna(other)
        if "cost" in co.columns:
            unit = co["cost"].astype("float64").fillna(unit)
        co = co[["customer_id", "date"]].assign(unit_cost=unit)
        cj = co.merge(win.drop(columns="start_date"), on="customer_id", how="inner")
        c_pre = (cj["date"] >= cj["pre_start"]) & (cj["date"] < cj["response_date"])
        c_post = (cj["date"] >= cj["response_date"]) & (cj["date"] < cj["post_end"])
        ct = pd.DataFrame({
            "pre_contacts": c_pre.astype("int64"),
            "post_contacts": c_post.astype("int64"),
            "pre_contact_cost": cj["unit_cost"].where(c_pre, 0.0),
            "post_contact_cost": cj["unit_cost"].where(c_post, 0.0),
        }).groupby(cj["customer_id"].to_numpy(), sort=False).sum()
        del cj, c_pre, c_post
    else:
        ct = pd.DataFrame(columns=contact_cols, dtype="float64")

    n_referred = (cust["referred_by"].dropna().value_counts().rename("n_referred")
                  if "referred_by" in cust.columns else pd.Series(dtype="int64", name="n_referred"))
    # referrals who started inside the referrer's post window [response_date, post_end)
    if "referred_by" in cust.columns:
        refs = cust.loc[cust["referred_by"].notna(), ["referred_by", "start_date"]].merge(
            base[["customer_id", "response_date", "post_end"]], left_on="referred_by", right_on="customer_id")
        inside = (refs["start_date"] >= refs["response_date"]) & (refs["start_date"] < refs["post_end"])
        post_referred = inside.groupby(refs["customer_id"].to_numpy()).sum().rename("post_referred")
    else:
        post_referred = pd.Series(dtype="int64", name="post_referred")

    # assemble -----------------------------------------------------------------------------
    h = base.set_index("customer_id")
    h = h.join(tx).join(ct).join(n_responses).join(n_referred).join(post_referred)
    ints = ["pre_transactions", "post_transactions", "pre_contacts", "post_contacts", "n_responses", "n_referred",
            "prior_sales_transactions", "post_referred"]
    floats = ["prior_sales", "pre_revenue", "post_revenue", "pre_contact_cost", "post_contact_cost"] + (
        ["pre_cogs", "post_cogs"] if has_cogs else [])
    for c in ints:
        h[c] = h[c].fillna(0).astype("int64")
    for c in floats:
        h[c] = h[c].fillna(0.0).astype("float64")
    r = h["response_date"]
    h["tenure_years"] = (r - h["start_date"]).dt.days / DAYS_PER_YEAR
    h["pre_exposure_years"] = (r - h["pre_start"]).dt.days / DAYS_PER_YEAR
    h["post_exposure_years"] = (h["post_end"] - r).dt.days / DAYS_PER_YEAR
    h["churned"] = h["end_date"].notna()
    h["duration_days"] = (h["end_date"].fillna(as_of_ts) - r).dt.days.astype("int64")
    h = h.reset_index().sort_values("customer_id", ignore_index=True)
    covariates = [c for c in cust.columns if c not in CONTRACT_CUSTOMER_COLUMNS]
    extra = ["pre_cogs", "post_cogs"] if has_cogs else []
    return h[HISTORY_COLUMNS + extra + covariates]


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    print(history(sys.argv[1], sys.argv[2]).head())
