"""Contract checks (CONTRACT section 1; the rule table in ``cxvalue/data.py``).

One test per rule of the table. Error rules each get their own tiny source. Exclusion
and correction rules share one small CSV source, ``rule_world()``, checked once: every
bad row in it breaks exactly one rule (except the rows marked *first rule wins*) and
carries a ``label`` so that the tests can see which rows were kept; next to each bad
row sits a row on the boundary that must be kept. Then identifiers, date formats,
source kinds (CSV, Parquet, DuckDB file) and file safety.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cxvalue import config, data, history
from cxvalue.exceptions import ContractError, InputError

try:
    from tests.fixtures.sources import tree_hashes, write, write_csv
except ImportError:  # pragma: no cover - when tests/ itself is on sys.path
    from fixtures.sources import tree_hashes, write, write_csv

pytestmark = [
    pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'future.infer_string' option"),
]

AS_OF = "2024-12-31"
TABLE_NAMES = ("customers", "responses", "transactions", "contacts")
DATE_COL = {"responses": "response_date", "transactions": "date", "contacts": "date"}
EVENT_TABLES = ["responses", "transactions", "contacts"]


def params(**overrides):
    return config.load_params(overrides={"as_of": AS_OF, **overrides})


def check(tmp_path, tables, **overrides):
    return data.check(write_csv(tmp_path / "src", tables), params(**overrides))


def day(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


def base() -> dict[str, list[dict]]:
    """A valid source: four customers (C3 churned 2024-06-30), one row each elsewhere."""
    return {
        "customers": [
            {"customer_id": "C1", "start_date": "2023-01-01", "end_date": "", "referred_by": ""},
            {"customer_id": "C2", "start_date": "2023-01-01", "end_date": "", "referred_by": "C1"},
            {"customer_id": "C3", "start_date": "2023-06-01", "end_date": "2024-06-30", "referred_by": ""},
            {"customer_id": "C4", "start_date": "2023-01-01", "end_date": "", "referred_by": ""},
        ],
        "responses": [
            {"customer_id": "C1", "response_date": "2024-01-10", "nps": "9", "csat": "5", "ces": "6", "journey": ""},
            {"customer_id": "C2", "response_date": "2024-01-10", "nps": "5", "csat": "2", "ces": "2", "journey": ""},
            {"customer_id": "C3", "response_date": "2024-01-10", "nps": "7", "csat": "3", "ces": "4", "journey": ""},
            {"customer_id": "C4", "response_date": "2024-02-01", "nps": "8", "csat": "4", "ces": "5", "journey": ""},
        ],
        "transactions": [
            {"customer_id": "C1", "date": "2024-02-01", "amount": "100"},
            {"customer_id": "C2", "date": "2024-02-01", "amount": "50"},
            {"customer_id": "C3", "date": "2024-02-01", "amount": "30.5"},
            {"customer_id": "C4", "date": "2024-02-01", "amount": "20"},
        ],
        "contacts": [
            {"customer_id": "C1", "date": "2024-02-01", "channel": "phone"},
            {"customer_id": "C2", "date": "2024-02-01", "channel": "email"},
            {"customer_id": "C3", "date": "2024-03-01", "channel": "chat"},
            {"customer_id": "C4", "date": "2024-03-01", "channel": "web"},
        ],
    }


# --------------------------------------------------------------------------- error rules


@pytest.mark.parametrize("table", ["customers", "responses", "transactions"])
def test_error_required_table_missing(tmp_path, table):
    tables = base()
    del tables[table]
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables)
    assert isinstance(err.value, InputError)  # exit code 2
    assert f"required table(s) {table} not found" in str(err.value)


@pytest.mark.parametrize("table, column", [
    ("customers", "customer_id"), ("customers", "start_date"),
    ("responses", "customer_id"), ("responses", "response_date"),
    ("transactions", "date"), ("transactions", "amount"),
    ("contacts", "channel"),  # an optional table, once present, needs its required columns
])
def test_error_required_column_missing(tmp_path, table, column):
    tables = base()
    tables[table] = [{k: v for k, v in row.items() if k != column} for row in tables[table]]
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables)
    msg = str(err.value)
    assert f"table '{table}'" in msg
    assert f"required column(s) {column} missing" in msg


# (table, column, unreadable value, rows in the table)
UNREADABLE = [
    ("customers", "start_date", "31/12/2022", 4),
    ("customers", "end_date", "30/06/2024", 4),
    ("responses", "response_date", "10/01/2024", 4),
    ("responses", "nps", "nine", 4),
    ("transactions", "date", "01.02.2024", 4),
    ("transactions", "amount", "1.234,50", 4),
    ("contacts", "date", "Feb 1st 2024", 4),
]


@pytest.mark.parametrize("table, column, bad, n", UNREADABLE)
def test_error_mostly_unreadable_column(tmp_path, table, column, bad, n):
    """Every value in a non-ISO format: the run stops naming table, column, count, examples."""
    tables = base()
    for row in tables[table]:
        row[column] = bad
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables)
    msg = str(err.value)
    assert f"table '{table}', column '{column}'" in msg
    assert f"{n} of {n} values cannot be read" in msg
    assert bad in msg  # an example row value


def test_error_exactly_half_unreadable(tmp_path):
    """``half or more`` unreadable: 2 of 4 amounts stops the run (below half is excluded)."""
    tables = base()
    tables["transactions"][0]["amount"] = "12,50"
    tables["transactions"][1]["amount"] = "EUR 7"
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables)
    msg = str(err.value)
    assert "table 'transactions', column 'amount': 2 of 4 values cannot be read" in msg
    assert "12,50" in msg and "EUR 7" in msg


def test_error_duplicate_customer_id(tmp_path):
    tables = base()
    # " C2 " is C2 once trimmed: two identifiers appear twice
    tables["customers"].append({"customer_id": " C2 ", "start_date": "2023-02-02", "end_date": "", "referred_by": ""})
    tables["customers"].append({"customer_id": "C4", "start_date": "2023-03-03", "end_date": "", "referred_by": ""})
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables)
    msg = str(err.value)
    assert "table 'customers', column 'customer_id': 2 identifier(s) appear on more than one row" in msg
    assert "C2" in msg and "2023-02-02" in msg  # example rows (the first few, in identifier order)


def test_error_chosen_metric_missing(tmp_path):
    tables = base()
    tables["responses"] = [{k: v for k, v in r.items() if k != "csat"} for r in tables["responses"]]
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables, metric="csat")
    msg = str(err.value)
    assert "table 'responses'" in msg and "column 'csat' (the chosen metric) is missing" in msg
    assert "available: nps, ces" in msg


def test_error_no_score_column_at_all(tmp_path):
    tables = base()
    tables["responses"] = [{k: v for k, v in r.items() if k not in ("nps", "csat", "ces")} for r in tables["responses"]]
    with pytest.raises(ContractError, match=r"table 'responses': none of the score columns nps, csat, ces"):
        check(tmp_path, tables)


# --------------------------------------------------------------------------- the rule world


def _cust(cid, start="2023-01-01", end="", ref=""):
    return {"customer_id": cid, "start_date": start, "end_date": end, "referred_by": ref}


def _resp(label, cid, date, nps="8", csat="", ces=""):
    return {"label": label, "customer_id": cid, "response_date": date, "nps": nps, "csat": csat, "ces": ces,
            "journey": ""}


def _tx(label, cid, date, amount="10"):
    return {"label": label, "customer_id": cid, "date": date, "amount": amount}


def _co(label, cid, date, channel="phone"):
    return {"label": label, "customer_id": cid, "date": date, "channel": channel}


_EVENT = {"responses": _resp, "transactions": _tx, "contacts": _co}


def _event_rows(table: str) -> list[dict]:
    """Rows shared by the three event tables: valid ones, one group per rule, boundaries."""
    make = _EVENT[table]
    d = DATE_COL[table]
    return [
        make("ok1", "C1", "2024-02-01"), make("ok2", "C2", "2024-02-01"),
        make("ok3", "C3", "2024-02-01"), make("ok4", "C4", "2024-02-01"),
        # customer_id not a known customer
        make("unknown_id", "C99", "2024-03-01"),
        make("empty_id", "", "2024-03-01"),
        make("excluded_customer", "X_LATE", "2024-03-01"),  # X_LATE's own row is excluded
        make("trimmed_id", " C1 ", "2024-03-01"),           # C1 once trimmed: kept
        # date empty or not a date
        make("no_date", "C1", ""), make("bad_date", "C2", "2024-02-31"),
        # date after as_of
        make("after_as_of", "C1", "2025-01-01"),
        make("on_as_of", "C1", "2024-12-31"), make("on_as_of_ts", "C2", "2024-12-31 23:59:59"),
        # date before the customer's start_date (C3 started 2023-06-01)
        make("before_start", "C3", "2023-05-31"), make("on_start", "C3", "2023-06-01"),
        # date after the customer's end_date (C3 left 2024-06-30; the end day is still active)
        make("after_end", "C3", "2024-07-01"), make("on_end", "C3", "2024-06-30"),
        # C6 left on as_of: active through it
        make("on_end_as_of", "C6", "2024-12-31"),
        make("first_rule_" + d, "C99", "2025-02-01"),  # unknown AND after as_of: first rule wins
    ]


def rule_world() -> dict[str, list[dict]]:
    customers = [
        _cust("C1"), _cust("C2", ref="C1"), _cust("C3", start="2023-06-01", end="2024-06-30"),
        _cust("C4", ref="C99"),                         # referred_by unknown -> corrected to empty
        _cust("C5", end="2025-01-01"),                  # end_date after as_of -> corrected to empty
        _cust("C6", end="2024-12-31"),                  # left on as_of: kept as is
        _cust("C7", ref=" C1 "),                        # a known customer once trimmed: not corrected
        # customer_id empty (3; the last also starts after as_of: first rule wins)
        _cust(""), _cust("   "), _cust("", start="2025-06-01"),
        # start_date empty or not a date (2)
        _cust("X_NOSTART", start=""), _cust("X_BADSTART", start="2023-02-30"),
        # start_date after as_of (1) / on as_of: kept
        _cust("X_LATE", start="2025-01-01"), _cust("K_START_ON_AS_OF", start="2024-12-31"),
        # end_date not a date (1)
        _cust("X_BADEND", end="soon"),
        # end_date before start_date (1) / same day: kept
        _cust("X_ENDBEFORE", start="2023-05-02", end="2023-05-01"),
        _cust("K_SAMEDAY", start="2023-05-02", end="2023-05-02"),
    ]
    responses = _event_rows("responses") + [
        # no score (1) / one score is enough
        _resp("no_score", "C1", "2024-05-01", nps=""), _resp("csat_only", "C1", "2024-05-02", nps="", csat="3"),
        # scores outside their range or not whole (3 each) / edges: kept
        _resp("nps_11", "C1", "2024-06-01", nps="11"), _resp("nps_-1", "C1", "2024-06-01", nps="-1"),
        _resp("nps_7.5", "C1", "2024-06-01", nps="7.5"),
        _resp("nps_0", "C1", "2024-06-01", nps="0"), _resp("nps_10", "C1", "2024-06-01", nps="10"),
        _resp("nps_9.0", "C1", "2024-06-01", nps="9.0"),
        _resp("csat_0", "C1", "2024-06-02", nps="", csat="0"), _resp("csat_6", "C1", "2024-06-02", nps="", csat="6"),
        _resp("csat_4.5", "C1", "2024-06-02", nps="", csat="4.5"),
        _resp("csat_1", "C1", "2024-06-02", nps="", csat="1"), _resp("csat_5", "C1", "2024-06-02", nps="", csat="5"),
        _resp("ces_0", "C1", "2024-06-03", nps="", ces="0"), _resp("ces_8", "C1", "2024-06-03", nps="", ces="8"),
        _resp("ces_2.2", "C1", "2024-06-03", nps="", ces="2.2"),
        _resp("ces_1", "C1", "2024-06-03", nps="", ces="1"), _resp("ces_7", "C1", "2024-06-03", nps="", ces="7"),
        # a good nps with a bad csat: the row is out (the csat rule)
        _resp("nps_ok_csat_bad", "C2", "2024-06-04", nps="9", csat="9"),
    ]
    transactions = _event_rows("transactions") + [
        # amount empty or not a number (2) / a refund: kept
        _tx("no_amount", "C1", "2024-04-01", ""), _tx("bad_amount", "C1", "2024-04-02", "n/a"),
        _tx("refund", "C1", "2024-04-03", "-12.5"),
        # after as_of AND amount empty: first rule wins (date after as_of)
        _tx("first_rule_amount", "C1", "2025-02-01", ""),
    ]
    contacts = _event_rows("contacts") + [
        # channel empty: counted as 'other' (2)
        _co("no_channel", "C1", "2024-04-01", ""), _co("blank_channel", "C2", "2024-04-02", "  "),
        # unknown customer AND channel empty: excluded, so not corrected
        _co("unknown_no_channel", "C99", "2024-04-03", ""),
    ]
    return {"customers": customers, "responses": responses, "transactions": transactions, "contacts": contacts}


#: The full expected data_quality of rule_world().
RULE_WORLD_DQ = {
    "customers": {
        "rows_read": 17, "rows_used": 9,
        "excluded": {"customer_id empty": 3, "start_date empty or not a date": 2, "start_date after as_of": 1,
                     "end_date not a date": 1, "end_date before start_date": 1},
        "corrected": {"end_date after as_of (treated as still a customer)": 1,
                      "referred_by not a known customer (set empty)": 1},
    },
    "responses": {
        "rows_read": 19 + 19, "rows_used": 38 - 20,
        "excluded": {"customer_id not a known customer": 4, "response_date empty or not a date": 2,
                     "response_date after as_of": 1, "response_date before the customer's start_date": 1,
                     "response_date after the customer's end_date": 1, "no score (nps, csat and ces all empty)": 1,
                     "nps outside 0-10 or not a whole number": 3, "csat outside 1-5 or not a whole number": 4,
                     "ces outside 1-7 or not a whole number": 3},
        "corrected": {},
    },
    "transactions": {
        "rows_read": 19 + 4, "rows_used": 23 - 12,
        "excluded": {"customer_id not a known customer": 4, "date empty or not a date": 2, "date after as_of": 2,
                     "date before the customer's start_date": 1, "date after the customer's end_date": 1,
                     "amount empty or not a number": 2},
        "corrected": {},
    },
    "contacts": {
        "rows_read": 19 + 3, "rows_used": 22 - 10,
        "excluded": {"customer_id not a known customer": 5, "date empty or not a date": 2, "date after as_of": 1,
                     "date before the customer's start_date": 1, "date after the customer's end_date": 1},
        "corrected": {"channel empty (counted as 'other')": 2},
    },
}


@pytest.fixture(scope="module")
def ruled(tmp_path_factory):
    """rule_world() checked once: ``(data_quality, {table: kept rows as a DataFrame})``."""
    src = write_csv(tmp_path_factory.mktemp("rules") / "src", rule_world())
    cd = data.check(src, params())
    kept = {name: t.to_pandas() for name, t in cd.tables.items()}
    return cd.data_quality, kept


def labels(ruled, table) -> set[str]:
    df = ruled[1][table]
    return set(df["label"] if "label" in df else df["customer_id"])


def excluded(ruled, table) -> dict[str, int]:
    return ruled[0][table]["excluded"]


def test_rule_world_data_quality(ruled):
    """Everything at once: exact counts per reason, rows_read and rows_used, nothing else."""
    assert ruled[0] == RULE_WORLD_DQ


def test_rule_world_keeps_the_valid_rows(ruled):
    assert labels(ruled, "customers") == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "K_START_ON_AS_OF",
                                          "K_SAMEDAY"}
    for table in EVENT_TABLES:
        assert {"ok1", "ok2", "ok3", "ok4"} <= labels(ruled, table)


# --------------------------------------------------------------------------- customers


def test_exclude_customer_id_empty(ruled):
    assert excluded(ruled, "customers")["customer_id empty"] == 3  # "", "   ", "" starting after as_of
    assert ruled[1]["customers"].customer_id.notna().all()


def test_exclude_start_date_empty_or_not_a_date(ruled):
    assert excluded(ruled, "customers")["start_date empty or not a date"] == 2
    assert not {"X_NOSTART", "X_BADSTART"} & labels(ruled, "customers")


def test_exclude_start_date_after_as_of(ruled):
    assert excluded(ruled, "customers")["start_date after as_of"] == 1
    assert "X_LATE" not in labels(ruled, "customers")
    assert "K_START_ON_AS_OF" in labels(ruled, "customers")


def test_exclude_end_date_not_a_date(ruled):
    assert excluded(ruled, "customers")["end_date not a date"] == 1
    assert "X_BADEND" not in labels(ruled, "customers")


def test_exclude_end_date_before_start_date(ruled):
    assert excluded(ruled, "customers")["end_date before start_date"] == 1
    assert "X_ENDBEFORE" not in labels(ruled, "customers")
    c = ruled[1]["customers"].set_index("customer_id")
    assert c.loc["K_SAMEDAY", "end_date"] == day("2023-05-02")


def test_correct_end_date_after_as_of(ruled):
    assert ruled[0]["customers"]["corrected"]["end_date after as_of (treated as still a customer)"] == 1
    c = ruled[1]["customers"].set_index("customer_id")
    assert pd.isna(c.loc["C5", "end_date"])          # the corrected value: still a customer
    assert c.loc["C6", "end_date"] == day("2024-12-31")  # on as_of: unchanged
    assert c.loc["C3", "end_date"] == day("2024-06-30")


def test_correct_referred_by_unknown(ruled):
    assert ruled[0]["customers"]["corrected"]["referred_by not a known customer (set empty)"] == 1
    c = ruled[1]["customers"].set_index("customer_id")
    assert pd.isna(c.loc["C4", "referred_by"])  # the corrected value: empty
    assert c.loc["C7", "referred_by"] == "C1"   # trimmed, known
    assert c.loc["C2", "referred_by"] == "C1"


# --------------------------------------------------------------------------- event tables


@pytest.mark.parametrize("table", EVENT_TABLES)
def test_exclude_event_customer_not_kept(ruled, table):
    n = {"responses": 4, "transactions": 4, "contacts": 5}[table]  # + first-rule rows
    assert excluded(ruled, table)["customer_id not a known customer"] == n
    kept = labels(ruled, table)
    assert not {"unknown_id", "empty_id", "excluded_customer", f"first_rule_{DATE_COL[table]}"} & kept
    assert "trimmed_id" in kept
    assert set(ruled[1][table].customer_id) <= labels(ruled, "customers")


@pytest.mark.parametrize("table", EVENT_TABLES)
def test_exclude_event_date_empty_or_not_a_date(ruled, table):
    assert excluded(ruled, table)[f"{DATE_COL[table]} empty or not a date"] == 2
    assert not {"no_date", "bad_date"} & labels(ruled, table)


@pytest.mark.parametrize("table", EVENT_TABLES)
def test_exclude_event_date_after_as_of(ruled, table):
    n = 2 if table == "transactions" else 1  # + the transaction after as_of with no amount
    assert excluded(ruled, table)[f"{DATE_COL[table]} after as_of"] == n
    kept = labels(ruled, table)
    assert "after_as_of" not in kept
    assert {"on_as_of", "on_as_of_ts", "on_end_as_of"} <= kept
    assert ruled[1][table][DATE_COL[table]].max() == day("2024-12-31")


@pytest.mark.parametrize("table", EVENT_TABLES)
def test_exclude_event_before_start_date(ruled, table):
    assert excluded(ruled, table)[f"{DATE_COL[table]} before the customer's start_date"] == 1
    kept = labels(ruled, table)
    assert "before_start" not in kept and "on_start" in kept


@pytest.mark.parametrize("table", EVENT_TABLES)
def test_exclude_event_after_end_date(ruled, table):
    assert excluded(ruled, table)[f"{DATE_COL[table]} after the customer's end_date"] == 1
    kept = labels(ruled, table)
    assert "after_end" not in kept and "on_end" in kept


def test_exclude_response_without_any_score(ruled):
    assert excluded(ruled, "responses")["no score (nps, csat and ces all empty)"] == 1
    kept = labels(ruled, "responses")
    assert "no_score" not in kept and "csat_only" in kept


@pytest.mark.parametrize("metric, bad, good", [
    ("nps", ["nps_11", "nps_-1", "nps_7.5"], {"nps_0": 0, "nps_10": 10, "nps_9.0": 9}),
    ("csat", ["csat_0", "csat_6", "csat_4.5", "nps_ok_csat_bad"], {"csat_1": 1, "csat_5": 5}),
    ("ces", ["ces_0", "ces_8", "ces_2.2"], {"ces_1": 1, "ces_7": 7}),
])
def test_exclude_score_out_of_range_or_not_whole(ruled, metric, bad, good):
    lo, hi = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}[metric]
    assert excluded(ruled, "responses")[f"{metric} outside {lo}-{hi} or not a whole number"] == len(bad)
    r = ruled[1]["responses"].set_index("label")
    assert not set(bad) & set(r.index)
    assert {k: r.loc[k, metric] for k in good} == good  # whole numbers ("9.0" -> 9)


def test_exclude_amount_empty_or_not_a_number(ruled):
    assert excluded(ruled, "transactions")["amount empty or not a number"] == 2
    t = ruled[1]["transactions"].set_index("label")
    assert not {"no_amount", "bad_amount", "first_rule_amount"} & set(t.index)
    assert t.loc["refund", "amount"] == -12.5


def test_correct_contact_channel_empty(ruled):
    assert ruled[0]["contacts"]["corrected"] == {"channel empty (counted as 'other')": 2}
    c = ruled[1]["contacts"].set_index("label")
    assert c.loc["no_channel", "channel"] == "other"  # the corrected value
    assert c.loc["blank_channel", "channel"] == "other"
    assert c.loc["ok1", "channel"] == "phone"


def test_row_counted_under_its_first_rule_only(ruled):
    # customers: "" starting after as_of -> "customer_id empty" (3 = 2 + 1), not "start_date after as_of" (1)
    assert excluded(ruled, "customers")["start_date after as_of"] == 1
    # a transaction after as_of without amount -> "date after as_of" (2 = 1 + 1), amounts stay 2
    assert excluded(ruled, "transactions")["date after as_of"] == 2
    # every table: each row counted once
    for table, q in ruled[0].items():
        assert q["rows_used"] == q["rows_read"] - sum(q["excluded"].values())
        assert len(ruled[1][table]) == q["rows_used"]


# --------------------------------------------------------------------------- identifiers and dates


def test_identifiers_compare_as_strings(tmp_path):
    tables = base()
    tables["customers"].append({"customer_id": "007", "start_date": "2023-01-01", "end_date": "", "referred_by": ""})
    tables["customers"][1]["referred_by"] = "7"    # not customer 007: corrected to empty
    tables["customers"][3]["referred_by"] = "007"
    tables["responses"].append({"customer_id": "007", "response_date": "2024-03-01", "nps": "8", "journey": ""})
    tables["transactions"] += [
        {"customer_id": "007", "date": "2024-03-01", "amount": "70"},
        {"customer_id": " 007 ", "date": "2024-03-02", "amount": "1"},  # trimmed: still 007
        {"customer_id": "7", "date": "2024-03-01", "amount": "7000"},   # another identifier
        {"customer_id": "7.0", "date": "2024-03-01", "amount": "7000"},
    ]
    p = params()
    cd = data.check(write_csv(tmp_path / "src", tables), p)
    dq = cd.data_quality
    assert dq["transactions"]["excluded"] == {"customer_id not a known customer": 2}
    assert dq["transactions"]["rows_used"] == 6
    assert dq["customers"]["corrected"] == {"referred_by not a known customer (set empty)": 1}
    tx = cd.tables["transactions"].to_pandas()
    assert sorted(tx[tx.customer_id == "007"].amount) == [1.0, 70.0]
    h = history.history(cd, p).set_index("customer_id")
    assert "007" in h.index and "7" not in h.index
    assert h.loc["007", "post_revenue"] == pytest.approx(71.0)
    assert h.loc["007", "post_transactions"] == 2
    assert h.loc["007", "n_referred"] == 1


def test_dates_accept_iso_dates_and_timestamps(tmp_path):
    tables = base()
    tables["customers"][0]["start_date"] = "2023-01-01T00:00:00"
    tables["customers"][2]["end_date"] = "2024-06-30 18:45:00"
    tables["responses"][0]["response_date"] = "2024-01-10 08:00:00"
    tables["responses"][1]["response_date"] = "2024-01-10T23:59:59"
    tables["transactions"] += [
        {"customer_id": "C1", "date": "2024-03-05", "amount": "1"},
        {"customer_id": "C1", "date": "2024-03-05 14:22:00", "amount": "2"},
        {"customer_id": "C1", "date": "2024-03-05T14:22:00", "amount": "3"},
        {"customer_id": "C1", "date": "2024-03-05T14:22:00.123", "amount": "4"},
        {"customer_id": "C3", "date": "2024-06-30 23:59:59", "amount": "5"},  # the end day: kept
    ]
    tables["contacts"].append({"customer_id": "C2", "date": "2024-03-05T09:00:00", "channel": "chat"})
    cd = check(tmp_path, tables)
    for name in TABLE_NAMES:
        assert cd.data_quality[name]["excluded"] == {}, name
    c = cd.tables["customers"].to_pandas().set_index("customer_id")
    assert c.loc["C1", "start_date"] == day("2023-01-01")
    assert c.loc["C3", "end_date"] == day("2024-06-30")  # the day is kept, not the time
    r = cd.tables["responses"].to_pandas().set_index("customer_id")
    assert r.loc["C1", "response_date"] == day("2024-01-10")
    assert r.loc["C2", "response_date"] == day("2024-01-10")
    tx = cd.tables["transactions"].to_pandas()
    assert tx[tx.amount.isin([1, 2, 3, 4])].date.tolist() == [day("2024-03-05")] * 4
    assert tx[tx.amount == 5].date.tolist() == [day("2024-06-30")]
    co = cd.tables["contacts"].to_pandas()
    assert sorted(co[co.channel == "chat"].date) == [day("2024-03-01"), day("2024-03-05")]


def test_contacts_table_is_optional(tmp_path):
    tables = base()
    del tables["contacts"]
    p = params()
    cd = data.check(write_csv(tmp_path / "src", tables), p)
    assert set(cd.data_quality) == {"customers", "responses", "transactions"}
    assert not cd.has_contact_cost
    h = history.history(cd, p)
    assert h.customer_id.tolist() == ["C1", "C2", "C3", "C4"]
    assert h.pre_contacts.tolist() == [0] * 4 and h.post_contacts.tolist() == [0] * 4
    assert h.pre_contact_cost.tolist() == [0.0] * 4 and h.post_contact_cost.tolist() == [0.0] * 4
    assert h.post_revenue.tolist() == [100.0, 50.0, 30.5, 20.0]


# --------------------------------------------------------------------------- source kinds


def typed_world() -> dict[str, pd.DataFrame]:
    """The same small world with real column types (as a Parquet/DuckDB user would have it).

    It breaks a few rules on purpose so that ``data_quality`` is not trivial.
    """
    def ts(values):
        return pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601").astype("datetime64[us]")
    return {
        "customers": pd.DataFrame({
            "customer_id": ["C1", "C2", "C3", "C4", "C5"],
            "start_date": ts(["2023-01-01", "2023-01-01", "2023-06-01", "2023-01-01", "2025-03-01"]),
            "end_date": ts([None, None, "2024-06-30", "2025-02-01", None]),   # C4: after as_of -> corrected
            "referred_by": pd.array([None, "C1", "C9", "C1", None], dtype="string"),  # C9 unknown -> corrected
            "plan": ["basic", "pro", "basic", "pro", "basic"],
            "employees": [3, 12, 5, 40, 2],
        }),
        "responses": pd.DataFrame({
            "customer_id": ["C1", "C2", "C3", "C4", "C4", "C9", "C2"],
            "response_date": ts(["2024-01-10", "2024-01-10", "2024-01-10", "2024-02-01", "2024-05-01",
                                 "2024-02-01", "2025-01-02"]),
            "nps": pd.array([9, 5, 7, 8, 11, 3, 6], dtype="Int64"),                # C4 11: out of range
            "csat": pd.array([5, 2, 3, 4, None, 1, 2], dtype="Int64"),
            "journey": pd.array([None, None, None, None, "billing", None, None], dtype="string"),
        }),
        "transactions": pd.DataFrame({
            "customer_id": ["C1", "C1", "C2", "C3", "C3", "C4", "C1"],
            "date": ts(["2023-06-01", "2024-03-05 14:22:00", "2024-02-01", "2024-02-01", "2024-08-01",
                        "2024-02-01", "2024-04-01"]),                             # C3 2024-08-01: after end
            "amount": [40.0, 100.0, 50.0, 30.5, 9.0, 20.0, None],                  # C1 None: excluded
            "cost": [10.0, 30.0, None, 12.0, 3.0, 8.0, 0.0],
        }),
        "contacts": pd.DataFrame({
            "customer_id": ["C1", "C2", "C3", "C4", "C1"],
            "date": ts(["2024-02-01", "2023-12-01", "2024-03-01", "2024-03-01", "2024-06-01"]),
            "channel": pd.array(["phone", "email", None, "web", "fax"], dtype="string"),  # C3: corrected
            "cost": [None, 1.5, None, None, None],
        }),
    }


EXPECTED_WORLD_DQ = {
    "customers": {"rows_read": 5, "rows_used": 4, "excluded": {"start_date after as_of": 1},
                  "corrected": {"end_date after as_of (treated as still a customer)": 1,
                                "referred_by not a known customer (set empty)": 1}},
    "responses": {"rows_read": 7, "rows_used": 4,
                  "excluded": {"customer_id not a known customer": 1, "response_date after as_of": 1,
                               "nps outside 0-10 or not a whole number": 1}, "corrected": {}},
    "transactions": {"rows_read": 7, "rows_used": 5,
                     "excluded": {"date after the customer's end_date": 1, "amount empty or not a number": 1},
                     "corrected": {}},
    "contacts": {"rows_read": 5, "rows_used": 5, "excluded": {},
                 "corrected": {"channel empty (counted as 'other')": 1}},
}
BASE_COLUMNS = history.HISTORY_COLUMNS + ["pre_cogs", "post_cogs"]


def _run(source):
    """Check and build the history; hash the source's files before and after."""
    on_disk = isinstance(source, (str, Path))
    before = tree_hashes(source) if on_disk else None
    p = params()
    cd = data.check(source, p)
    h = history.history(cd, p)
    after = tree_hashes(source) if on_disk else None
    return {"dq": cd.data_quality, "history": h, "covariates": cd.covariates, "hashes": (before, after)}


@pytest.fixture(scope="module")
def world_csv(tmp_path_factory):
    return _run(write("csv", tmp_path_factory.mktemp("world"), typed_world()))


@pytest.fixture(scope="module")
def world_parquet(tmp_path_factory):
    return _run(write("parquet", tmp_path_factory.mktemp("world"), typed_world()))


def test_csv_world(world_csv):
    assert world_csv["dq"] == EXPECTED_WORLD_DQ
    h = world_csv["history"].set_index("customer_id")
    assert h.index.tolist() == ["C1", "C2", "C3", "C4"]
    assert h.loc["C1", ["pre_revenue", "post_revenue", "pre_cogs", "post_cogs"]].tolist() == [40.0, 100.0, 10.0, 30.0]
    assert h.loc["C3", "post_revenue"] == 30.5 and bool(h.loc["C3", "churned"])
    assert not h.loc["C4", "churned"]  # end_date after as_of: still a customer
    assert h.loc["C4", "score"] == 8  # the out-of-range 11 was excluded
    assert h.loc["C1", "n_referred"] == 2


def test_parquet_folder_matches_csv_folder(world_csv, world_parquet):
    assert world_parquet["dq"] == world_csv["dq"]
    pd.testing.assert_frame_equal(world_parquet["history"][BASE_COLUMNS], world_csv["history"][BASE_COLUMNS])
    assert world_parquet["history"].plan.tolist() == world_csv["history"].plan.tolist()


def test_parquet_folder_matches_csv_folder_covariates(world_csv, world_parquet):
    assert world_parquet["covariates"] == {"plan": "categorical", "employees": "numeric"}
    assert world_csv["covariates"] == world_parquet["covariates"]
    csv_employees = world_csv["history"]["employees"]
    assert pd.api.types.is_numeric_dtype(csv_employees)
    assert csv_employees.astype(float).tolist() == world_parquet["history"]["employees"].astype(float).tolist()


def test_duckdb_file_matches_csv_folder(tmp_path, world_csv):
    got = _run(write("duckdb", tmp_path, typed_world()))
    assert got["hashes"][0] == got["hashes"][1]
    assert got["dq"] == world_csv["dq"]
    pd.testing.assert_frame_equal(got["history"][BASE_COLUMNS], world_csv["history"][BASE_COLUMNS])


def test_dict_of_dataframes_matches_csv_folder(world_csv):
    got = _run(typed_world())
    assert got["dq"] == world_csv["dq"]
    pd.testing.assert_frame_equal(got["history"][BASE_COLUMNS], world_csv["history"][BASE_COLUMNS])


def test_ibis_backend_matches_csv_folder(world_csv):
    import ibis

    con = ibis.duckdb.connect()
    for name, df in typed_world().items():
        con.create_table(name, ibis.memtable(df))
    got = _run(con)
    assert got["dq"] == world_csv["dq"]
    pd.testing.assert_frame_equal(got["history"][BASE_COLUMNS], world_csv["history"][BASE_COLUMNS])


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_input_files_never_modified(kind, world_csv, world_parquet):
    before, after = {"csv": world_csv, "parquet": world_parquet}[kind]["hashes"]
    assert sorted(before) == [f"{t}.{kind}" for t in sorted(TABLE_NAMES)]
    assert after == before  # same files, same bytes, nothing added


def test_source_that_does_not_exist(tmp_path):
    with pytest.raises(InputError, match="no such folder or DuckDB file"):
        data.check(tmp_path / "nowhere", params())


def test_padded_identifiers_in_parquet_are_trimmed(tmp_path):
    """Parquet sources are typed without trimming; padding found in the rules pass re-types the table."""
    customers = pd.DataFrame({"customer_id": ["A1", "A2"], "start_date": pd.to_datetime(["2023-01-01", "2023-01-01"])})
    responses = pd.DataFrame({"customer_id": [" A1", "A2 "], "response_date": pd.to_datetime(["2024-01-01", "2024-01-01"]),
                              "nps": [9, 3]})
    transactions = pd.DataFrame({"customer_id": ["A1 ", "A2"], "date": pd.to_datetime(["2024-02-01", "2024-02-01"]),
                                 "amount": [10.0, 20.0]})
    contacts = pd.DataFrame({"customer_id": ["A1", "A2"], "date": pd.to_datetime(["2024-02-01", "2024-02-01"]),
                             "channel": [" phone ", "email"]})
    for name, df in {"customers": customers, "responses": responses, "transactions": transactions,
                     "contacts": contacts}.items():
        df.to_parquet(tmp_path / f"{name}.parquet", index=False)
    p = config.load_params(overrides={"as_of": "2024-12-31", "contact_cost": {"phone": 6.0, "email": 3.0, "other": 1.0}})
    checked = data.check(tmp_path, p)
    assert all(q["excluded"] == {} for q in checked.data_quality.values()), checked.data_quality
    h = history.history(checked, p).set_index("customer_id")
    assert h.loc["A1", "post_revenue"] == 10.0 and h.loc["A2", "post_revenue"] == 20.0
    assert h.loc["A1", "post_contact_cost"] == 6.0  # " phone " priced as phone, not other


# --------------------------------------------------------------------------- CSV dialects


def _write_dialect(folder: Path, tables: dict, sep: str = ",", decimal: str = ".", bom: bool = False,
                   crlf: bool = False) -> Path:
    """Write ``tables`` as an export in another dialect (pandas quotes what needs quoting)."""
    from tests.fixtures.sources import frame

    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        text = frame(rows).to_csv(index=False, sep=sep, decimal=decimal, lineterminator="\r\n" if crlf else "\n")
        (folder / f"{name}.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return folder


def _typed_tables(cd) -> dict[str, pd.DataFrame]:
    return {name: t.to_pandas() for name, t in cd.tables.items()}


def _quoted_world() -> dict:
    """base() with a text in every table that holds each delimiter, a quote and a line break."""
    tables = base()
    tables["customers"][0]["plan"] = 'pro; "gold", | tab\there'
    for row in tables["customers"][1:]:
        row["plan"] = "basic"
    tables["responses"][0]["journey"] = "billing, online; app|web"
    tables["contacts"][0]["reason"] = "line one\nline two"
    return tables


@pytest.fixture(scope="module")
def plain_world(tmp_path_factory):
    cd = data.check(write_csv(tmp_path_factory.mktemp("plain") / "src", _quoted_world()), params())
    return cd.data_quality, _typed_tables(cd)


@pytest.mark.parametrize("sep, bom, crlf", [(";", False, False), ("\t", False, False), ("|", False, False),
                                            (",", True, False), (",", False, True), (";", True, True)])
def test_csv_dialects_read_like_plain_csv(tmp_path, plain_world, sep, bom, crlf):
    """DuckDB detects the delimiter, the byte-order mark and CRLF; quoted fields keep their delimiters."""
    folder = _write_dialect(tmp_path / "src", _quoted_world(), sep=sep, bom=bom, crlf=crlf)
    before = tree_hashes(folder)
    cd = data.check(folder, params())
    assert tree_hashes(folder) == before  # input files never modified
    assert cd.data_quality == plain_world[0]
    got = _typed_tables(cd)
    for name, df in plain_world[1].items():
        pd.testing.assert_frame_equal(got[name], df, obj=name)
    assert 'pro; "gold", | tab\there' in set(got["customers"].plan)
    assert "billing, online; app|web" in set(got["responses"].journey)
    assert "line one\nline two" in set(got["contacts"].reason)


def test_excel_csv_folder_reads_like_plain_csv(tmp_path):
    """tests/shapes.py's Excel export (';', decimal commas, BOM, CRLF): same data_quality, same values."""
    from tests.shapes import AS_OF as SHAPES_AS_OF, world_tables, write as write_shape

    tables = world_tables(n=300)
    plain = write_shape({k: v.copy() for k, v in tables.items()}, tmp_path / "plain", "csv")
    excel = write_shape({k: v.copy() for k, v in tables.items()}, tmp_path / "excel", "excel-csv")
    assert b"," in (excel / "transactions.csv").read_bytes().split(b"\r\n")[1]  # a decimal comma
    p = config.load_params(overrides={"as_of": SHAPES_AS_OF})
    a, b = data.check(plain, p), data.check(excel, p)
    assert b.data_quality == a.data_quality
    assert b.covariates == a.covariates and a.covariates["employees"] == "numeric"
    for name, df in _typed_tables(a).items():
        pd.testing.assert_frame_equal(_typed_tables(b)[name], df, obj=name)


def test_identifier_starting_with_hash_is_not_a_comment(tmp_path):
    """DuckDB would take '#' lines for comments; here they are rows like any other."""
    tables = base()
    for name in ("customers", "responses", "transactions", "contacts"):
        for row in tables[name]:
            row["customer_id"] = "#" + row["customer_id"]
    cd = check(tmp_path, tables)
    assert {t: q["rows_used"] for t, q in cd.data_quality.items()} == {t: 4 for t in TABLE_NAMES}
    assert sorted(cd.tables["customers"].to_pandas().customer_id) == ["#C1", "#C2", "#C3", "#C4"]


def test_file_duckdb_cannot_parse_is_bad_input(tmp_path):
    folder = write_csv(tmp_path / "src", base())
    raw = (folder / "transactions.csv").read_bytes()
    (folder / "transactions.csv").write_bytes(raw.replace(b"C2,", b"C\xff\xfe2,"))  # not UTF-8
    with pytest.raises(ContractError) as err:
        data.check(folder, params())
    msg = str(err.value)
    assert "table 'transactions'" in msg and "transactions.csv cannot be read as CSV" in msg
    assert "utf-8" in msg.lower()


# --------------------------------------------------------------------------- decimal commas and date formats


def _amounts(tables: dict, *amounts: str) -> dict:
    for row, amount in zip(tables["transactions"], amounts):
        row["amount"] = amount
    return tables


def test_semicolon_file_reads_decimal_commas(tmp_path):
    """A ';' file is Excel's European export: decimal commas are read, with or without thousands dots."""
    tables = _amounts(base(), "1.234,50", "30,5", "-12,25", "20")
    tables["responses"][0]["attr_speed"] = "7,0"
    tables["customers"][0]["employees"] = "12,5"
    for row in tables["customers"][1:]:
        row["employees"] = "3"
    cd = data.check(_write_dialect(tmp_path / "src", tables, sep=";"), params())
    assert cd.data_quality["transactions"]["excluded"] == {}
    assert sorted(cd.tables["transactions"].to_pandas().amount) == [-12.25, 20.0, 30.5, 1234.5]
    assert cd.tables["responses"].to_pandas().attr_speed.max() == 7.0
    assert cd.covariates["employees"] == "numeric"
    assert sorted(cd.tables["customers"].to_pandas().employees) == [3.0, 3.0, 3.0, 12.5]


def test_decimal_set_per_file(tmp_path):
    """source.<table>.decimal: ',' reads '1.234' as 1234; '.' turns the ';' default off."""
    tables = _amounts(base(), "1.234", "1.234,5", "7", "0,5")
    cd = data.check(write_csv(tmp_path / "comma", tables), params(source={"transactions": {"decimal": ","}}))
    assert sorted(cd.tables["transactions"].to_pandas().amount) == [0.5, 7.0, 1234.0, 1234.5]
    with pytest.raises(ContractError) as err:
        data.check(_write_dialect(tmp_path / "semi", _amounts(base(), "1,5", "2,5", "3", "4,5"), sep=";"),
                   params(source={"transactions": {"decimal": "."}}))
    assert "column 'amount': 3 of 4 values cannot be read; expected plain numbers" in str(err.value)


def test_decimal_comma_kept_strict(tmp_path):
    """With decimal ',' a value with a decimal point is not guessed (12.5 is not 125): excluded."""
    tables = _amounts(base(), "12.5", "2", "3", "4")
    cd = data.check(write_csv(tmp_path / "src", tables), params(source={"transactions": {"decimal": ","}}))
    assert cd.data_quality["transactions"]["excluded"] == {"amount empty or not a number": 1}


def test_decimal_commas_in_a_comma_file_say_how_to_read_them(tmp_path):
    tables = _amounts(base(), "12,50", "3,10", "7,25", "1")
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables)
    msg = str(err.value)
    assert "table 'transactions', column 'amount': 3 of 4 values cannot be read" in msg
    assert "3 of them read as numbers with a decimal comma: set source.transactions.decimal: ','" in msg


def test_non_finite_numbers_are_not_numbers(tmp_path):
    cd = check(tmp_path, _amounts(base(), "nan", "10", "20", "30"))
    assert cd.data_quality["transactions"]["excluded"] == {"amount empty or not a number": 1}


def test_date_format_set_per_file(tmp_path):
    tables = base()
    for row in tables["transactions"]:
        row["date"] = "01/02/2024"                    # 1 February, day first
    tables["transactions"][3]["date"] = "2024-02-01"  # ISO still reads
    tables["transactions"][2]["date"] = "31/02/2024"  # no such day: excluded, counted
    cd = data.check(write_csv(tmp_path / "src", tables),
                    params(source={"transactions": {"date_format": "%d/%m/%Y"}}))
    assert cd.data_quality["transactions"]["excluded"] == {"date empty or not a date": 1}
    assert set(cd.tables["transactions"].to_pandas().date) == {day("2024-02-01")}


def test_unreadable_dates_say_how_to_set_their_format(tmp_path):
    tables = base()
    for row in tables["responses"]:
        row["response_date"] = "10/01/2024"
    with pytest.raises(ContractError, match=r"source\.responses\.date_format, e\.g\. '%d/%m/%Y'"):
        check(tmp_path, tables)


# --------------------------------------------------------------------------- the source block


def renamed_world() -> dict:
    """base() as a CRM exports it: its own column names."""
    tables = base()
    tables["transactions"] = [{"CustID": r["customer_id"], "OrderDate": r["date"], "NetValue": r["amount"]}
                              for r in tables["transactions"]]
    tables["customers"] = [{" Customer_ID ": r["customer_id"], "START_DATE": r["start_date"], "Ende": r["end_date"],
                            "referred_by": r["referred_by"]} for r in tables["customers"]]
    return tables


def _contract_dq(tmp_path) -> dict:
    return check(tmp_path / "contract", base()).data_quality


def test_source_block_file_and_columns(tmp_path):
    """Files under other names and other columns, mapped by a parameter file with relative paths."""
    tables = renamed_world()
    exports = tmp_path / "project" / "exports"
    write_csv(exports, {"orders": tables.pop("transactions")})
    _write_dialect(exports, {"crm": tables.pop("customers")}, sep=";")
    data_dir = write_csv(tmp_path / "data", tables)  # responses, contacts under their contract names
    cfg = tmp_path / "project" / "cx.yaml"
    cfg.write_text(
        "as_of: 2024-12-31\n"
        "source:\n"
        "  transactions: {file: exports/orders.csv, columns: {customer_id: CustID, date: OrderDate, amount: netvalue}}\n"
        "  customers:\n"
        "    file: exports/crm.csv\n"
        "    columns: {end_date: Ende}\n"
        "    delimiter: ';'\n")
    p = config.load_params(cfg)
    before = {**tree_hashes(tmp_path / "project"), **tree_hashes(data_dir)}
    cd = data.check(data_dir, p)
    assert {**tree_hashes(tmp_path / "project"), **tree_hashes(data_dir)} == before
    assert cd.data_quality == _contract_dq(tmp_path)
    assert cd.source.files["transactions"] == (exports / "orders.csv").resolve()
    assert set(cd.tables["transactions"].columns) >= {"customer_id", "date", "amount"}
    c = cd.tables["customers"].to_pandas().set_index("customer_id")
    assert c.loc["C3", "end_date"] == day("2024-06-30")


def test_source_block_without_a_data_folder(tmp_path):
    tables = base()
    files = {name: write_csv(tmp_path / name, {name: rows}) / f"{name}.csv" for name, rows in tables.items()}
    p = params(source={name: {"file": str(path)} for name, path in files.items()})
    cd = data.check(None, p)
    assert cd.data_quality == _contract_dq(tmp_path)
    with pytest.raises(InputError, match="no data source: give --data"):
        data.check(None, params())


def test_source_block_table_and_query_on_a_duckdb_file(tmp_path):
    tables = base()
    tables["crm_accounts"] = [{"AccountNo": r["customer_id"], "since": r["start_date"], "end_date": r["end_date"],
                               "referred_by": r["referred_by"]} for r in tables.pop("customers")]
    tables["survey"] = [{"id": r["customer_id"], "answered": r["response_date"], "score": r["nps"],
                         "wave": str(i + 1)} for i, r in enumerate(tables.pop("responses"))]
    tables["survey"].append({"id": "C1", "answered": "2024-03-01", "score": "0", "wave": "1"})  # an early wave
    db = write("duckdb", tmp_path, tables)
    p = params(source={
        "customers": {"table": "crm_accounts", "columns": {"customer_id": "AccountNo", "start_date": "since"}},
        "responses": {"query": "SELECT id AS customer_id, answered AS response_date, score AS nps "
                               "FROM survey WHERE CAST(wave AS INT) >= 1 AND score <> '0'"},
    })
    before = tree_hashes(db)
    cd = data.check(db, p)
    assert tree_hashes(db) == before
    expected = _contract_dq(tmp_path)
    assert cd.data_quality == expected
    assert sorted(cd.tables["responses"].to_pandas().nps) == [5, 7, 8, 9]


def test_source_block_table_of_another_database_on_a_backend():
    """``table: crm.accounts``: a table of another database or schema of an Ibis backend (a Spark SQL
    database, a warehouse schema); checked here on DuckDB, on Spark in tests/test_spark.py."""
    import ibis

    con = ibis.duckdb.connect()
    con.raw_sql("CREATE SCHEMA crm")
    for name, rows in base().items():
        con.create_table(name, pd.DataFrame(rows, dtype=object))
        if name == "customers":
            con.raw_sql("CREATE TABLE crm.accounts AS SELECT * FROM customers")
            con.drop_table("customers")
    cd = data.check(con, params(source={"customers": {"table": "crm.accounts"}}))
    assert cd.data_quality["customers"]["rows_used"] == len(base()["customers"])
    with pytest.raises(InputError, match="'source.customers.table': no table 'crm.nowhere' in Ibis backend duckdb"):
        data.open_source(con, params(source={"customers": {"table": "crm.nowhere"}}))


def test_source_block_query_on_a_folder_sees_its_files(tmp_path):
    tables = base()
    tables["survey_2024"] = tables.pop("responses")
    folder = write_csv(tmp_path / "src", tables)
    p = params(source={"responses": {"query": "SELECT * FROM survey_2024 WHERE nps <> '5'"}})
    cd = data.check(folder, p)
    assert cd.data_quality["responses"]["rows_read"] == 3


def test_source_block_on_a_dict_of_dataframes():
    tables = {name: pd.DataFrame(rows, dtype=object) for name, rows in renamed_world().items()}
    tables["orders"] = tables.pop("transactions")
    p = params(source={"transactions": {"table": "orders", "columns": {"customer_id": "CustID", "date": "OrderDate",
                                                                        "amount": "NetValue"}},
                       "customers": {"columns": {"end_date": "ende"}}})
    cd = data.check(tables, p)
    assert cd.data_quality["transactions"]["rows_used"] == 4 and cd.data_quality["customers"]["rows_used"] == 4


def test_missing_column_names_the_closest_and_how_to_map_it(tmp_path):
    tables = renamed_world()
    tables["customers"] = base()["customers"]
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables)
    msg = str(err.value)
    assert "table 'transactions': required column(s) customer_id, date, amount missing" in msg
    assert "columns found: CustID, OrderDate, NetValue" in msg
    assert "Closest names found: customer_id ~ CustID; date ~ OrderDate" in msg
    assert "source: {transactions: {columns: {customer_id: CustID, date: OrderDate, amount: <your column>}}}" in msg


@pytest.mark.parametrize("source, error, fragment", [
    ({"customers": {"table": "crm"}}, InputError, "'source.customers.table': no table 'crm' in folder"),
    ({"transactions": {"columns": {"amount": "amont"}}}, ContractError,
     "table 'transactions': column 'amont' (source.transactions.columns.amount) not found; columns found: "
     "customer_id, date, amount. Closest: amount."),
    ({"transactions": {"columns": {"amount": "date"}}}, ContractError,
     "column 'amount' already has the name that source.transactions.columns.amount gives to 'date'"),
    ({"responses": {"query": "SELECT * FROM nowhere"}}, InputError, "'source.responses.query': the query fails"),
])
def test_bad_source_block_for_this_source(tmp_path, source, error, fragment):
    with pytest.raises(error) as err:
        data.check(write_csv(tmp_path / "src", base()), params(source=source))
    assert fragment in str(err.value)


def test_delimiter_on_a_parquet_file(tmp_path):
    folder = write("parquet", tmp_path, base())
    with pytest.raises(InputError, match="'source.customers.delimiter': applies to CSV files; customers.parquet"):
        data.check(folder, params(source={"customers": {"delimiter": ";"}}))


def test_column_names_that_collide():
    """Names match case-insensitively, spaces trimmed: two such columns are ambiguous (in a CSV
    header DuckDB itself renames the second, ``Amount_1``)."""
    tables = {name: pd.DataFrame(rows, dtype=object) for name, rows in base().items()}
    tables["transactions"][" Amount"] = "1"
    with pytest.raises(ContractError, match="table 'transactions': columns 'amount' and ' Amount' have the same name"):
        data.check(tables, params())


def test_source_tables_are_the_contract_tables():
    assert set(config.SOURCE_TABLES) == set(data.TABLES)


def test_mixed_type_dataframe_column_reads_like_csv():
    tables = {name: pd.DataFrame(rows, dtype=object) for name, rows in base().items()}
    tables["transactions"]["amount"] = [100, "50", 30.5, "twenty"]  # what a spreadsheet gives
    cd = data.check(tables, params())
    assert cd.data_quality["transactions"]["excluded"] == {"amount empty or not a number": 1}


# --------------------------------------------------------------------------- empty tables


@pytest.mark.parametrize("table", ["customers", "responses", "transactions"])
def test_required_table_without_rows(tmp_path, table):
    tables = base()
    tables[table] = pd.DataFrame(columns=list(tables[table][0]))  # the header only
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables)
    assert f"table '{table}' has no rows (file " in str(err.value)


def test_required_table_in_memory_without_rows():
    tables = {name: pd.DataFrame(rows, dtype=object) for name, rows in base().items()}
    tables["responses"] = tables["responses"].iloc[0:0]
    with pytest.raises(ContractError, match=r"table 'responses' has no rows \(in-memory tables\)"):
        data.check(tables, params())


def test_empty_file(tmp_path):
    folder = write_csv(tmp_path / "src", base())
    (folder / "responses.csv").write_bytes(b"\xef\xbb\xbf\r\n")
    with pytest.raises(ContractError, match="table 'responses' has no rows: .*responses.csv is empty"):
        data.check(folder, params())


@pytest.mark.parametrize("table", ["responses", "transactions"])
def test_required_table_without_usable_rows(tmp_path, table):
    tables = base()
    for row in tables[table]:
        row["customer_id"] = "X" + row["customer_id"]  # no such customers
    with pytest.raises(ContractError) as err:
        check(tmp_path, tables)
    msg = str(err.value)
    assert f"table '{table}' has no usable rows: all 4 were excluded (customer_id not a known customer: 4)" in msg


def test_empty_contacts_table_is_fine(tmp_path):
    tables = base()
    tables["contacts"] = pd.DataFrame(columns=["customer_id", "date", "channel"])
    cd = check(tmp_path, tables)
    assert cd.data_quality["contacts"]["rows_read"] == 0


def test_cli_validate_with_a_source_block_and_no_data(tmp_path):
    """`cxvalue validate --config cx.yaml` without --data: the source block names every file (exit 0);
    a bad source block is exit 2 naming the key."""
    import subprocess
    import sys

    tables = renamed_world()
    write_csv(tmp_path / "exports", {"orders": tables.pop("transactions"), **tables})
    cfg = tmp_path / "cx.yaml"
    cfg.write_text("source:\n"
                   "  customers: {file: exports/customers.csv, columns: {end_date: ende}}\n"
                   "  responses: {file: exports/responses.csv}\n"
                   "  transactions: {file: exports/orders.csv, columns: {customer_id: CustID, date: OrderDate,"
                   " amount: NetValue}}\n")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "cxvalue.cli", "validate", *args], capture_output=True,
                              text=True, timeout=300, cwd=tmp_path)

    res = cli("--config", str(cfg), "--set", f"as_of={AS_OF}")
    assert res.returncode == 0, res.stderr
    assert "the files and queries of the source block" in res.stdout and "rows used" in res.stdout
    res = cli("--config", str(cfg), "--set", "source.transactions.colums=CustID")
    assert res.returncode == 2 and "'source.transactions.colums': unknown key" in res.stderr
    res = cli()
    assert res.returncode == 2 and "no data source: give --data" in res.stderr


def test_huge_scores_and_infinite_amounts_are_excluded_not_a_crash():
    """Found by tests/test_properties.py: a score beyond a 64-bit integer broke the whole-number rule."""
    tables = {name: pd.DataFrame(rows, dtype=object) for name, rows in base().items()}
    tables["responses"]["nps"] = [9.0, -3.9e159, 7.0, 8.0]
    tables["transactions"]["amount"] = [100.0, float("inf"), 30.5, 20.0]
    cd = data.check(tables, params())
    assert cd.data_quality["responses"]["excluded"] == {"nps outside 0-10 or not a whole number": 1}
    assert cd.data_quality["transactions"]["excluded"] == {"amount empty or not a number": 1}


def test_the_worked_example_of_docs_contract(tmp_path):
    """The source block example in docs/CONTRACT.md, as printed there, reads its data."""
    import re

    import duckdb

    doc = (Path(__file__).resolve().parents[1] / "docs" / "CONTRACT.md").read_text()
    block = re.search(r"```yaml\n(# cx.yaml.*?)```", doc, re.S).group(1)
    (tmp_path / "cx.yaml").write_text(block)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "orders.csv").write_bytes(
        "\ufeffCustID;OrderDate;NetValue\r\n4711;30.09.2025;1.234,50\r\n0815;01.02.2025;-12,5\r\n".encode())
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE TABLE crm_accounts AS SELECT * FROM (VALUES ('4711', DATE '2024-01-01', NULL::DATE), "
                "('0815', DATE '2024-03-01', DATE '2025-06-30')) t(AccountNo, Since, Cancelled)")
    con.execute("CREATE TABLE survey AS SELECT * FROM (VALUES ('4711', DATE '2025-01-05', 9, 'app', 3), "
                "('0815', DATE '2025-01-07', 4, 'web', 3), ('4711', DATE '2024-06-01', 2, 'web', 1)) "
                "t(id, answered, score, channel, wave)")
    con.close()
    p = config.load_params(tmp_path / "cx.yaml")
    cd = data.check(tmp_path / "warehouse.duckdb", p)
    assert {t: q["rows_used"] for t, q in cd.data_quality.items()} == {"customers": 2, "responses": 2,
                                                                        "transactions": 2}
    tx = cd.tables["transactions"].to_pandas().set_index("customer_id")
    assert tx.loc["4711", "amount"] == 1234.5 and tx.loc["0815", "amount"] == -12.5  # "0815" keeps its zero
    assert tx.loc["4711", "date"] == day("2025-09-30")
    assert sorted(cd.tables["responses"].to_pandas().touchpoint) == ["app", "web"]


def test_an_infinite_date_is_not_a_date():
    """DuckDB reads 'Infinity' as a date that no calendar has (and pandas cannot convert): it is not a date."""
    import ibis

    from cxvalue.data import _as_date
    t = ibis.memtable(pd.DataFrame({"d": ["2023-01-01", "Infinity", "-infinity"]}))
    out = t.select(x=_as_date(t.d)).to_pandas()["x"]
    assert out.iloc[0] == pd.Timestamp("2023-01-01") and out.iloc[1:].isna().all()
