"""Property-based checks of the data contract (``cxvalue.data.check``) with hypothesis.

Whatever tables a user brings (random column subsets, odd identifiers, unreadable dates and
numbers, scores out of range, duplicate identifiers, empty tables, mixed types in one column,
other CSV delimiters), checking them ends in one of two ways: a ``CheckedData`` whose
``data_quality`` adds up (every row read is used or excluded under one reason, nothing
dropped on the way), or an ``InputError`` (exit 2) with a message. Never another exception.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cxvalue import config, data
from cxvalue.exceptions import InputError

pytestmark = [
    pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'future.infer_string' option"),
]

# few examples, each a whole check on a fresh DuckDB: about 40 s for the module. A longer hunt:
# CXVALUE_EXAMPLES=500 pytest tests/test_properties.py
SETTINGS = settings(max_examples=int(os.environ.get("CXVALUE_EXAMPLES", "30")), deadline=None, database=None,
                    report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: odd values any cell may get
ODD = st.one_of(
    st.sampled_from(["", "   ", "7", " C1 ", "#C2", "c1", "1.0", "x;y", 'q"uote', "a,b", "é", "C1\n", "C99",
                     "2024-02-31", "2024-03-05 14:22:00", "2024-03-05T09:00:00+01:00", "31/12/2024", "2025-06-01",
                     "soon", "-1", "11", "7.5", "1,5", "1.234,50", "nan", "inf", "1e400", "n/a", " 9 ", "9.0"]),
    st.integers(-3, 12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.dates().map(str), st.text(max_size=8))
#: what a DataFrame column may hold besides text: mixed types in one column
ODD_TYPED = st.one_of(ODD, st.none(), st.integers(-5, 15), st.floats(allow_nan=True), st.booleans())


@st.composite
def clean_world(draw) -> dict[str, pd.DataFrame]:
    """Tables that pass every rule: 1-6 customers, their answers, orders and contacts."""
    ids = [f"C{i}" for i in range(1, draw(st.integers(1, 6)) + 1)]
    customers = {"customer_id": ids, "start_date": ["2023-01-01"] * len(ids),
                 "end_date": draw(st.lists(st.sampled_from(["", "2024-12-31", "2024-06-30"]),
                                           min_size=len(ids), max_size=len(ids))),
                 "referred_by": draw(st.lists(st.sampled_from(["", *ids]), min_size=len(ids), max_size=len(ids))),
                 "plan": draw(st.lists(st.sampled_from(["basic", "pro"]), min_size=len(ids), max_size=len(ids)))}

    def events(date_col, **columns):
        n = draw(st.integers(1, 8))
        rows = {"customer_id": draw(st.lists(st.sampled_from(ids), min_size=n, max_size=n)),
                date_col: draw(st.lists(st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2024, 6, 30))
                                        .map(str), min_size=n, max_size=n))}
        rows.update({c: draw(st.lists(values, min_size=n, max_size=n)) for c, values in columns.items()})
        return pd.DataFrame(rows, dtype=object)

    return {
        "customers": pd.DataFrame(customers, dtype=object),
        "responses": events("response_date", nps=st.integers(0, 10).map(str), csat=st.integers(1, 5).map(str),
                            ces=st.integers(1, 7).map(str), journey=st.sampled_from(["", "billing"]),
                            attr_speed=st.integers(1, 10).map(str)),
        "transactions": events("date", amount=st.floats(-50, 500).map(lambda x: f"{x:.2f}")),
        "contacts": events("date", channel=st.sampled_from(["phone", "email", ""]), cost=st.sampled_from(["", "3.5"])),
    }


@st.composite
def world(draw, typed_values: bool = False) -> dict[str, pd.DataFrame]:
    """A clean world with 0-4 things a real export gets wrong."""
    tables = draw(clean_world())
    odd = ODD_TYPED if typed_values else ODD
    for _ in range(draw(st.integers(0, 4))):
        if not tables:
            break
        name = draw(st.sampled_from(sorted(tables)))
        df = tables[name]
        what = draw(st.sampled_from(["cell", "cell", "cell", "column", "drop", "rename", "duplicate", "empty",
                                     "no table"]))
        if what == "cell" and len(df) and len(df.columns):
            df.iat[draw(st.integers(0, len(df) - 1)), draw(st.integers(0, len(df.columns) - 1))] = draw(odd)
        elif what == "column":  # an extra column of odd values, maybe named like a contract column
            column = draw(st.sampled_from(["note", "attr_x", "employees", "nps", "csat", "ces", "cost", "end_date"]))
            df[column] = draw(st.lists(odd, min_size=len(df), max_size=len(df)))
        elif what == "drop" and len(df.columns):
            tables[name] = df.drop(columns=draw(st.sampled_from(list(df.columns))))
        elif what == "rename" and len(df.columns):  # case and spaces differ, or a name clash
            column = draw(st.sampled_from(list(df.columns)))
            tables[name] = df.rename(columns={column: draw(st.sampled_from([column.upper(), f" {column} ", "x"]))})
        elif what == "duplicate" and len(df):
            tables[name] = pd.concat([df, df.iloc[[0]]], ignore_index=True)
        elif what == "empty":
            tables[name] = df.iloc[0:0]
        elif what == "no table":
            del tables[name]
    return tables


PARAMS = st.fixed_dictionaries({"as_of": st.sampled_from([None, "2024-12-31", "2023-06-30"]),
                                "metric": st.sampled_from(["nps", "nps", "csat", "ces"])})


def _assert_adds_up(checked: data.CheckedData, rows: dict[str, int]) -> None:
    for name, q in checked.data_quality.items():
        assert q["rows_used"] + sum(q["excluded"].values()) == q["rows_read"], (name, q)
        assert q["rows_read"] == rows[name], (name, q, rows[name])  # nothing dropped unseen
        assert all(n > 0 for n in q["excluded"].values()), (name, q)
        assert int(checked.tables[name].count().to_pandas()) == q["rows_used"], name


def _check_ends_well(source, params: dict, rows: dict[str, int]) -> None:
    try:
        checked = data.check(source, config.load_params(overrides=params))
    except InputError as exc:
        assert str(exc).strip()
        return
    _assert_adds_up(checked, rows)


@SETTINGS
@given(world(typed_values=True), PARAMS)
def test_dict_of_dataframes_ends_in_checked_data_or_input_error(tables, params):
    _check_ends_well(tables, params, {name: len(df) for name, df in tables.items()})


#: found by CI: an extra 'end_date' column of spaces in contacts was read as a date for as_of
_EXTRA_END_DATE = {
    "customers": pd.DataFrame({"customer_id": ["C1"], "start_date": ["2023-01-01"], "end_date": [""],
                               "referred_by": [""], "plan": ["basic"]}),
    "responses": pd.DataFrame({"customer_id": ["C1"], "response_date": ["2023-01-01"], "nps": ["0"], "csat": ["1"],
                               "ces": ["1"], "journey": [""], "attr_speed": ["1"]}),
    "transactions": pd.DataFrame({"customer_id": ["C1"], "date": ["2023-01-01"], "amount": ["0.00"]}),
    "contacts": pd.DataFrame({"customer_id": ["C1"], "date": ["2023-01-01"], "channel": ["phone"], "cost": [""],
                              "end_date": ["   "]}),
}


@SETTINGS
@given(world(), PARAMS, st.sampled_from([",", ",", ";", "\t", "|"]))
@example(_EXTRA_END_DATE, {"as_of": None, "metric": "nps"}, ",")
def test_csv_folder_ends_in_checked_data_or_input_error(tables, params, sep):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, df in tables.items():
            df.to_csv(folder / f"{name}.csv", index=False, sep=sep)
        _check_ends_well(folder, params, {name: len(df) for name, df in tables.items()})
