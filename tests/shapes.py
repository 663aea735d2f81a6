"""Data shapes a real export comes in: the synthetic world reshaped, one function per variant.

Each shape takes the four tables of a small synthetic world (a dict of DataFrames, copied)
and returns the tables a user might bring instead, plus how they are written
(``fmt``: csv, parquet, duckdb, excel-csv) and the run parameters the shape needs. The shape
matrix (``tests/test_shapes.py``) runs each one end to end; the driver and loop tests use
them too (:func:`checked_history`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from cxvalue.synthetic import generate

AS_OF = "2025-12-31"


@dataclass
class Shape:
    """A variant of the export: how to reshape the tables, how to write them, what to expect."""

    name: str
    reshape: Callable[[dict[str, pd.DataFrame]], dict[str, pd.DataFrame]]
    fmt: str = "csv"
    sets: list[str] = field(default_factory=list)
    #: exit 0: the result blocks expected to be skipped (``results["skipped"]`` keys)
    skipped: tuple[str, ...] = ()
    #: exit 2: a piece of the expected message
    error: str | None = None
    config: dict[str, Any] | None = None
    customers: int = 600
    #: files beside the tables that are not tables (a README, an old export)
    extra_files: bool = False


def world_tables(n: int = 600, seed: int = 11, **kw) -> dict[str, pd.DataFrame]:
    """The four tables of a small seeded world (fresh copies)."""
    w = generate(n_customers=n, seed=seed, as_of=AS_OF, **kw)
    return {name: df.copy() for name, df in w.tables.items()}


def write(tables: dict[str, pd.DataFrame], folder: Path, fmt: str = "csv", extra_files: bool = False) -> Path:
    """Write tables as a user's export: csv, parquet, a DuckDB file, or an Excel-style CSV
    (semicolon-separated, decimal commas, a byte-order mark and CRLF line ends)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "duckdb":
        import duckdb

        path = folder / "warehouse.duckdb"
        con = duckdb.connect(str(path))
        for name, df in tables.items():
            con.register("df", df)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM df")
            con.unregister("df")
        con.close()
        return path
    for name, df in tables.items():
        if fmt == "parquet":
            df.to_parquet(folder / f"{name}.parquet", index=False)
        elif fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
        elif fmt == "excel-csv":
            text = df.to_csv(index=False, sep=";", decimal=",", date_format="%Y-%m-%d", lineterminator="\r\n")
            (folder / f"{name}.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
        else:
            raise ValueError(fmt)
    if extra_files:
        (folder / "README.txt").write_text("Export of 2025-12-31 from the CRM.\n")
        tables["transactions"].head(20).to_csv(folder / "transactions_2019_old.csv", index=False)
    return folder


@cache
def checked_history(name: str, n: int = 300, sets: tuple[str, ...] = ()):
    """(params, checked data, history) of an ``n``-customer world reshaped as shape ``name``,
    its ``sets`` plus ``sets`` (e.g. ``("metric=csat",)``), read from the tables in memory: how
    the analyses of notebook 05 are tested on every shape without running the notebook.
    Built once per session (shared by the test modules; do not modify what it returns)."""
    from cxvalue import data, history
    from cxvalue.config import load_params, parse_set

    shape = next(s for s in SHAPES if s.name == name)
    params = load_params(overrides={"as_of": AS_OF, **parse_set([*shape.sets, *sets])})
    checked = data.check(shape.reshape(world_tables(n=min(shape.customers, n))), params)
    return params, checked, history.history(checked, params)


# --------------------------------------------------------------------------- reshapers


def _drop(table: str, *columns: str):
    def f(t):
        t[table] = t[table].drop(columns=[c for c in columns if c in t[table]])
        return t
    return f


def _only_metric(metric: str):
    others = [m for m in ("nps", "csat", "ces") if m != metric]

    def f(t):
        r = t["responses"].drop(columns=others)
        t["responses"] = r[r[metric].notna()]
        return t
    return f


def _no_attributes(t):
    t["responses"] = t["responses"].drop(columns=[c for c in t["responses"] if c.startswith("attr_")])
    return t


def _no_contacts(t):
    del t["contacts"]
    return t


def _bare_contacts(t):
    c = t["contacts"][["customer_id", "date", "channel"]].copy()
    c["channel"] = c["channel"].map({"phone": "Telefon", "email": "E-Mail", "chat": "Chat", "web": "web"})
    t["contacts"] = c
    return t


def _nobody_left(t):
    t["customers"]["end_date"] = pd.NaT
    return t


def _no_covariates(t):
    keep = ["customer_id", "start_date", "end_date", "referred_by"]
    t["customers"] = t["customers"][[c for c in keep if c in t["customers"]]]
    return t


def _no_group(label_range: tuple[int, int]):
    lo, hi = label_range

    def f(t):
        r = t["responses"]
        t["responses"] = r[~r["nps"].between(lo, hi)]
        return t
    return f


def _tiny_group(t):
    r = t["responses"]
    promoters = r.index[r["nps"] >= 9]
    t["responses"] = r.drop(promoters[5:])
    return t


def _integer_ids(t):
    for name in ("customers", "responses", "transactions", "contacts"):
        t[name]["customer_id"] = t[name]["customer_id"].str.extract(r"(\d+)")[0].astype("int64")
    ref = t["customers"]["referred_by"].str.extract(r"(\d+)")[0]
    t["customers"]["referred_by"] = pd.to_numeric(ref).astype("Int64")
    return t


def _padded_mixed_ids(t):
    def pad(s):
        s = s.astype("string")
        return "  " + s.str.upper().str.lower() + " "
    t["customers"]["customer_id"] = pad(t["customers"]["customer_id"])
    for name in ("responses", "transactions"):
        t[name]["customer_id"] = t[name]["customer_id"].astype("string") + " "
    return t


def _timestamps(t):
    r = t["responses"]
    r["response_date"] = pd.to_datetime(r["response_date"]).dt.strftime("%Y-%m-%dT09:30:00+01:00")
    tx = t["transactions"]
    tx["date"] = pd.to_datetime(tx["date"]).dt.strftime("%Y-%m-%d 14:05:59")
    return t


def _extra_columns(t):
    t["transactions"]["invoice_no"] = np.arange(len(t["transactions"]))
    t["responses"]["comment"] = "fine, thanks; \"really\""
    return t


def _renamed(t):
    t["transactions"] = t["transactions"].rename(columns={"customer_id": "CustID", "date": "OrderDate",
                                                           "amount": "NetValue"})
    t["customers"] = t["customers"].rename(columns={"customer_id": " Customer_ID ", "start_date": "START_DATE"})
    return t


def _empty(table: str):
    def f(t):
        t[table] = t[table].iloc[0:0]
        return t
    return f


def _journey_only(t):
    r = t["responses"]
    r["journey"] = r["journey"].fillna("support")
    return t


def _crm_snapshot(t):
    r = t["responses"]
    r = r[r["journey"].isna()].drop_duplicates("customer_id").copy()
    r["response_date"] = AS_OF
    t["responses"] = r
    return t


def _with_maturity(t):
    """The CX maturity self-assessment of the synthetic world (its own stream), as a fifth table."""
    import numpy as np

    from cxvalue.synthetic import _days, _maturity_table

    t["maturity"] = _maturity_table(np.random.default_rng(1), _days(AS_OF))[0]
    return t


def _unusable_maturity(t):
    t = _with_maturity(t)
    t["maturity"]["level"] = 7  # every answer out of range: the section says so
    return t


def _ident(t):
    return t


SHAPES: list[Shape] = [
    Shape("as-is csv", _ident),
    Shape("parquet", _ident, fmt="parquet"),
    Shape("duckdb file", _ident, fmt="duckdb"),
    Shape("excel csv (; , BOM CRLF)", _ident, fmt="excel-csv"),
    Shape("nps only", _only_metric("nps")),
    Shape("csat only", _only_metric("csat"), sets=["metric=csat"]),
    Shape("ces only", _only_metric("ces"), sets=["metric=ces"]),
    Shape("no attr_*", _no_attributes, skipped=("drivers.key_drivers",)),
    Shape("no journey/touchpoint", _drop("responses", "journey", "touchpoint"),
          skipped=("drivers.journeys_vs_touchpoints",)),
    Shape("no contacts table", _no_contacts, skipped=("linkage.cost_to_serve", "drivers.closing_the_loop",
                                                      "failure_demand")),
    Shape("bare contacts, unknown channels", _bare_contacts, skipped=("drivers.closing_the_loop", "failure_demand")),
    Shape("no end_date column", _drop("customers", "end_date"), skipped=("linkage.churn",)),
    Shape("nobody left", _nobody_left, skipped=("linkage.churn",)),
    Shape("no covariates", _no_covariates),
    Shape("no referred_by", _drop("customers", "referred_by")),
    Shape("no promoters", _no_group((9, 10))),
    Shape("5 promoters", _tiny_group),
    Shape("300 customers", _ident, customers=300),
    Shape("integer ids (parquet)", _integer_ids, fmt="parquet"),
    Shape("padded text ids", _padded_mixed_ids),
    Shape("dates with time and zone", _timestamps),
    Shape("extra columns and files", _extra_columns, extra_files=True),
    Shape("maturity table", _with_maturity),
    Shape("maturity, no usable answer", _unusable_maturity, skipped=("maturity",)),
    Shape("nps only, no contacts, no end_date", lambda t: _drop("customers", "end_date")(_no_contacts(_only_metric("nps")(t))),
          skipped=("linkage.cost_to_serve", "linkage.churn", "failure_demand")),
    # cannot be analysed at all: exit 2 before any notebook runs
    Shape("empty responses", _empty("responses"), error="responses"),
    Shape("empty transactions", _empty("transactions"), error="transactions"),
    Shape("no relationship survey", _journey_only, error="index response"),
    Shape("crm snapshot on the last day", _crm_snapshot, error="after"),
    Shape("no passives", _no_group((7, 8)), error="reference_group"),
]


#: the shapes the analyses of notebook 05 see differently (the file formats reach them as the same
#: tables), and the full world on the two other metrics: case -> (shape, extra parameters)
SHAPE_CASES = {s.name: (s.name, ()) for s in SHAPES if not s.error and s.fmt == "csv" and not s.extra_files} | {
    "as-is csv, metric=csat": ("as-is csv", ("metric=csat",)), "as-is csv, metric=ces": ("as-is csv", ("metric=ces",))}


def shaped(case: str):
    """(params, checked data, history) of a 300-customer world reshaped as ``case``."""
    shape, sets = SHAPE_CASES[case]
    return checked_history(shape, sets=sets)


def value_by_group(params) -> pd.Series:
    """A made-up value per customer-year for each group of ``params``' metric (500, 600, ...)."""
    from cxvalue.config import bands_for

    groups = list(bands_for(params))
    return pd.Series(np.arange(len(groups)) * 100.0 + 500, index=groups)
