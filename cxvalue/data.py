"""Read a data source and check it against the contract (CONTRACT section 1).

One code path for every source: a folder of CSV/Parquet files (read by DuckDB), a
DuckDB database file (attached read-only), an Ibis backend connection or URL (Spark, BigQuery,
Snowflake, Postgres, ...), a Spark session, a dict of DataFrames, or ``"demo"`` (the bundled
synthetic world). Tables stay Ibis expressions on the source's own backend; nothing is
round-tripped through pandas.

The ``source`` parameter maps a user's own files, tables, queries and column names onto the
contract's (:func:`open_source`); column names also match case-insensitively, spaces trimmed.
CSV files are read by DuckDB, which detects the delimiter (``,`` ``;`` tab ``|``), quotes, a
byte-order mark and line ends; every column is read as text and typed by the rules below.
Numbers are plain (``1234.50``) unless ``source.<table>.decimal`` is ``","`` (``1234,50``,
``1.234,50``); in a ``;``-separated file without that setting both are read (Excel's export in
Europe), ``1.234`` then being 1.234. Dates are ISO ``YYYY-MM-DD`` or timestamps, and with
``source.<table>.date_format`` (``%d/%m/%Y``) that format first.

The rules, applied in this order, each row counted under the first rule it breaks
(``data_quality[table]["excluded"]``); ``error`` rules stop the run with exit code 2.

========================  =====================================================  ========
table                     rule                                                   action
========================  =====================================================  ========
any                       required table or column missing                       error
any                       two columns with one name (case and spaces ignored)    error
any                       half or more of a date/number column unreadable         error
customers, responses,     no rows, or no rows left after the rules below         error
transactions
customers                 duplicate ``customer_id``                              error
customers                 ``customer_id`` empty                                  exclude
customers                 ``start_date`` empty or not a date                     exclude
customers                 ``start_date`` after ``as_of``                         exclude
customers                 ``end_date`` not a date                                exclude
customers                 ``end_date`` before ``start_date``                     exclude
customers                 ``end_date`` after ``as_of``: still a customer then    corrected
customers                 ``referred_by`` not a known customer: set empty        corrected
responses, transactions,  ``customer_id`` not a (kept) customer                  exclude
contacts                  date empty or not a date                               exclude
                          date after ``as_of``                                   exclude
                          date before the customer's ``start_date``              exclude
                          date after the customer's ``end_date``                 exclude
responses                 no score at all                                        exclude
responses                 a score outside its range or not whole                 exclude
transactions              ``amount`` empty or not a number                       exclude
contacts                  ``channel`` empty: counted as ``other``                corrected
maturity                  ``assessed_by`` empty                                  exclude
maturity                  ``date`` empty or not a date, or after ``as_of``       exclude
maturity                  ``element`` not one of the nine                        exclude
maturity                  ``level`` outside 1-5 or not whole                     exclude
========================  =====================================================  ========

Score ranges: nps 0-10, csat 1-5, ces 1-7. Identifiers compare as trimmed strings.
Dates accept ISO ``YYYY-MM-DD`` and timestamps (the day is kept). A number that is not
finite (``nan``, ``inf``) is not a number.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from cxvalue.config import METRICS, SCORE_RANGES
from cxvalue.exceptions import ContractError, InputError, ParameterError

__all__ = ["TABLES", "Source", "CheckedData", "open_source", "check", "quality_table", "MATURITY_ELEMENTS",
           "MATURITY_LEVELS"]

#: Required (bold in the contract) and optional typed columns per table.
TABLES: dict[str, dict[str, Any]] = {
    "customers": {"required": True, "columns": {"customer_id": "id", "start_date": "date"},
                  "optional": {"end_date": "date", "referred_by": "id"}},
    "responses": {"required": True, "columns": {"customer_id": "id", "response_date": "date"},
                  "optional": {"nps": "number", "csat": "number", "ces": "number", "journey": "text", "touchpoint": "text"}},
    "transactions": {"required": True, "columns": {"customer_id": "id", "date": "date", "amount": "number"},
                     "optional": {"cost": "number"}},
    "contacts": {"required": False, "columns": {"customer_id": "id", "date": "date", "channel": "text"},
                 "optional": {"cost": "number", "reason": "text", "is_complaint": "bool", "resolved": "bool",
                              "resolved_date": "date"}},
    "maturity": {"required": False, "columns": {"assessed_by": "text", "date": "date", "element": "text",
                                                "level": "number"},
                 "optional": {"team": "text"}},
}
DATE_COLUMN = {"responses": "response_date", "transactions": "date", "contacts": "date"}

#: The nine elements of the CX maturity self-assessment (table ``maturity``, CONTRACT section
#: 1.4): name -> (label, what a level describes). Names match case-insensitively, with spaces or
#: hyphens for the underscores.
MATURITY_ELEMENTS: dict[str, tuple[str, str]] = {
    "strategy": ("Strategy", "a customer-experience vision, goals with dates and a business case the leadership signs"),
    "leadership": ("Leadership", "executives who own the CX goals, sponsor the programme and act on its findings"),
    "customer_insight": ("Customer insight", "surveys, feedback and data that show what customers need and feel"),
    "journey_design": ("Journey design", "whole journeys mapped, designed and improved end to end, not touchpoint by "
                                         "touchpoint"),
    "measurement": ("Measurement", "CX metrics tracked with their noise and linked to revenue, churn and cost"),
    "governance": ("Governance", "clear ownership, decision rights and a rhythm for choosing and funding CX work"),
    "culture": ("Culture and people", "employees who are hired, trained, measured and rewarded for customer outcomes"),
    "operations": ("Operations", "closing the loop with customers and fixing the root causes of contacts and "
                                 "complaints"),
    "technology": ("Technology and data", "systems and a single view of the customer that make the rest possible"),
}
#: The five levels, each element answered with one of them.
MATURITY_LEVELS: dict[int, tuple[str, str]] = {
    1: ("Initial", "ad hoc: little or nothing in place, depends on individuals"),
    2: ("Developing", "first efforts in some teams, not yet consistent"),
    3: ("Defined", "in place across the organisation, documented and repeatable"),
    4: ("Managed", "measured, linked to business value and steered by the numbers"),
    5: ("Leading", "embedded in how the company works and improved continuously"),
}


def maturity_element(col: ir.StringValue) -> ir.StringValue:
    """An element as written -> its name: lower case, trimmed, spaces and hyphens as underscores."""
    return col.lower().strip().re_replace(r"[\s\-]+", "_")
UNREADABLE_SHARE = 0.5
N_EXAMPLES = 3


@dataclass
class Source:
    """An opened data source: an Ibis backend and its raw tables by contract name."""

    con: Any
    tables: dict[str, ir.Table]
    description: str
    files: dict[str, Path] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)  # e.g. the demo world's as_of
    #: how each table's text is read: {"decimal": "." | "," | "auto" (both), "date_format": str | None}
    reading: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the user's column behind each contract column a ``source`` block renamed: {table: {contract: yours}}
    mapped: dict[str, dict[str, str]] = field(default_factory=dict)

    def file_hashes(self) -> dict[str, str]:
        """sha256 of each input file (folder sources), for the run manifest."""
        out = {}
        for name, path in self.files.items():
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            out[name] = h.hexdigest()
        return out


@dataclass
class CheckedData:
    """Typed, checked tables (Ibis expressions) and what was excluded on the way."""

    source: Source
    tables: dict[str, ir.Table]
    as_of: dt.date
    data_quality: dict[str, dict[str, Any]]
    metrics: list[str]
    covariates: dict[str, str]  # name -> "numeric" | "categorical"
    attributes: list[str]
    has_transaction_cost: bool
    has_contact_cost: bool
    #: transactions and contacts typed but not joined to customers for the rules: every row
    #: a rule excludes falls outside every history window, so the history can skip that join
    unjoined: dict[str, ir.Table] = field(default_factory=dict)
    #: what was computed from these tables ahead of its use, kept for the one call that asks for it
    #: (:func:`cxvalue.history.histories`: the placebo check's history, built with the history itself)
    kept: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def con(self):
        return self.source.con

    def in_windows(self, name: str) -> ir.Table:
        """Table ``name`` (transactions or contacts) for sums over per-customer windows that lie
        inside each customer's checked dates (``[start_date, min(end_date, as_of)]``), joined to
        those windows by ``customer_id``: the rows the rules exclude fall outside every such
        window, so the table need not be joined to the customers for the rules first (the checked
        table otherwise). A sum that also reads rows with a null amount or date must filter them."""
        return self.unjoined.get(name, self.tables[name])

    def checked_rows(self, name: str, rows: ir.Table) -> ir.Table:
        """The rows of ``rows`` (a filter of :meth:`in_windows` ``name``) that the checked table keeps: the
        contract's rules (:func:`_event_rules`) applied to these rows alone, not to the whole table."""
        if name not in self.unjoined:
            return rows  # already the checked table's
        c = self.tables["customers"]
        cust = c.select(_c_id=c.customer_id, _c_start=c.start_date, _c_end=c.end_date)
        j, rules, _ = _event_rules(name, rows, cust, ibis.literal(self.as_of, type="date"))
        broken = ibis.or_(*[cond.fill_null(False) for _, cond in rules])
        return j.filter(~broken).drop("_c_id", "_c_start", "_c_end")


# --------------------------------------------------------------------------- opening


@dataclass
class _Origin:
    """Where a source's tables are before the ``source`` block picks them."""

    con: Any
    description: str
    folder: Path | None = None                  # tables are files named after them
    database: tuple[str, str] | None = None     # an attached DuckDB file
    names: set[str] = field(default_factory=set)  # tables on the backend (not folders)
    queried: bool = False                       # folder files registered for queries


def open_source(source: Any, params: dict[str, Any] | None = None) -> Source:
    """Open a folder, a DuckDB file, an Ibis backend or URL, a Spark session, a dict of DataFrames or ``"demo"``.

    A URL (``duckdb:///path.db``, ``postgres://user@host/db``, ...) goes to ``ibis.connect``;
    ``pyspark://[/warehouse][?spark.setting=value&...]`` starts (or joins) a Spark session
    (:func:`_spark_from_url`). A SparkSession is opened through ``ibis.pyspark.connect``.
    Tables are found under the contract's names (customers, responses, ...) unless the
    ``source`` parameter (CONTRACT section 1, ``docs/CONTRACT.md``) says otherwise: per table a
    ``file``, a ``table`` of the source under another name (``database.table`` for another
    database or schema of the backend), or a ``query`` run on the source's backend, and
    ``columns`` (contract name -> the user's column), renamed here so that every later step
    sees contract names. With a ``source`` block that names every required table's
    ``file`` or ``query``, ``source`` may be None.

    CSV files are read with DuckDB's dialect detection (delimiter, quotes, byte-order mark,
    line ends), every column as text; ``source.<table>.delimiter`` overrides the delimiter.
    """
    if isinstance(source, Source):
        return source
    mapping = (params or {}).get("source") or {}
    if isinstance(source, str) and source == "demo":
        from cxvalue.synthetic import demo_dir

        path = demo_dir()
        src = open_source(path, params)
        import json

        src.defaults["as_of"] = json.loads((path / "truth.json").read_text())["as_of"]
        src.description = f"demo world ({path})"
        return src
    origin = _origin(source, mapping)
    out = Source(origin.con, {}, origin.description)
    for name in TABLES:
        spec = mapping.get(name, {})
        found = _find(origin, name, spec)
        if found is None:
            continue
        raw, path, delimiter = found
        if spec.get("date_format") and getattr(origin.con, "name", "") != "duckdb":
            raise ParameterError(f"parameter 'source.{name}.date_format': works on files and DuckDB; on "
                                 f"{origin.description} convert the dates in source.{name}.query instead")
        if path is not None:
            out.files[name] = path
        # a ';'-separated file is Excel's export where a comma is the decimal mark: read both
        out.reading[name] = {"decimal": spec.get("decimal") or ("auto" if delimiter == ";" else "."),
                             "date_format": spec.get("date_format")}
        out.tables[name] = _rename(name, raw, spec.get("columns", {}))
        if spec.get("columns"):
            out.mapped[name] = dict(spec["columns"])
    return out


def _origin(source: Any, mapping: dict[str, Any]) -> _Origin:
    if source is None or (isinstance(source, str) and not source.strip()):
        if not mapping:
            raise InputError("no data source: give --data (a folder, a DuckDB file, an Ibis URL or 'demo'), or name "
                             "each table's file or query in the parameter file's source block")
        return _Origin(ibis.duckdb.connect(), "the files and queries of the source block")
    if isinstance(source, dict):
        con = ibis.duckdb.connect()
        for name, df in source.items():
            _frame_to_table(con, str(name), df)
        return _Origin(con, "in-memory tables", names={str(n) for n in source})
    if _is_spark_session(source):  # a SparkSession (classic or Spark Connect, e.g. Databricks)
        return _origin(ibis.pyspark.connect(source), mapping)
    if isinstance(source, str) and "://" in source:  # an Ibis connection URL, e.g. postgres://...
        try:
            con = _spark_from_url(source) if source.split("://", 1)[0].lower() == "pyspark" else ibis.connect(source)
        except Exception as exc:
            raise InputError(f"data source {source}: cannot connect ({type(exc).__name__}: {exc})") from None
        return _origin(con, mapping)
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.is_dir():
            return _Origin(ibis.duckdb.connect(), f"folder {path}", folder=path)
        if path.is_file() and path.suffix.lower() in (".duckdb", ".db", ".ddb"):
            con = ibis.duckdb.connect()
            con.attach(str(path), name="src", read_only=True)
            # a query names the file's tables as they are (FROM survey); new tables stay in memory
            con.raw_sql(f"SET search_path = '{con.current_catalog}.main,src.main'")
            return _Origin(con, f"DuckDB file {path}", database=("src", "main"),
                           names=set(con.list_tables(database=("src", "main"))))
        raise InputError(f"data source {source}: no such folder or DuckDB file")
    if hasattr(source, "list_tables") and hasattr(source, "table"):  # an Ibis backend
        return _Origin(source, f"Ibis backend {getattr(source, 'name', type(source).__name__)}",
                       names=set(source.list_tables()))
    raise InputError(f"data source {source!r}: expected a folder, a DuckDB file, an Ibis connection or 'demo'")


def _is_spark_session(obj: Any) -> bool:
    return any(c.__name__ == "SparkSession" and c.__module__.startswith("pyspark.sql") for c in type(obj).__mro__)


def _spark_from_url(url: str) -> Any:
    """A Spark session for ``pyspark://[/warehouse folder][?spark.conf=value&...]``, through Ibis.

    The query's settings (``spark.master``, ``spark.sql.catalogImplementation=hive``, ...) configure
    the session when it is created; the path, if any, is ``spark.sql.warehouse.dir``. Spark reads
    the rest as usual (``$SPARK_CONF_DIR``: spark-defaults.conf, hive-site.xml). Ibis 12 opens the
    same URL itself but then sets the warehouse folder again on the running session, which Spark
    refuses (a static setting), so the session is built here and handed to Ibis as it is.
    """
    from urllib.parse import parse_qsl, urlsplit

    from pyspark.sql import SparkSession

    parts = urlsplit(url)
    builder = SparkSession.builder
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        builder = builder.config(key, value)
    if parts.netloc or parts.path.strip("/"):
        warehouse = Path(parts.netloc + parts.path).expanduser().absolute()
        builder = builder.config("spark.sql.warehouse.dir", str(warehouse))
    return ibis.pyspark.connect(builder.getOrCreate())


def _qualified_table(origin: _Origin, name: str, wanted: str) -> ir.Table:
    """``database.table`` or ``catalog.database.table`` of a backend (a Spark or warehouse schema)."""
    *where, table = wanted.split(".")
    database = where[0] if len(where) == 1 else tuple(where)
    try:
        return origin.con.table(table, database=database)
    except Exception as exc:  # noqa: BLE001 - every backend has its own error for a missing table
        raise ParameterError(f"parameter 'source.{name}.table': no table '{wanted}' in {origin.description} "
                             f"({type(exc).__name__}: {_first_line(exc)})") from None


def _find(origin: _Origin, name: str, spec: dict[str, Any]) -> tuple[ir.Table, Path | None, str | None] | None:
    """The user's table for contract table ``name``: (raw table, its file, its CSV delimiter), or None."""
    if "file" in spec:
        if getattr(origin.con, "name", "") != "duckdb":
            raise ParameterError(f"parameter 'source.{name}.file': files are read by DuckDB and cannot join tables of "
                                 f"{origin.description}; load the file there, or use --data with a folder")
        return _read_file(origin.con, Path(spec["file"]), name, spec)
    if "query" in spec:
        if origin.folder is not None and not origin.queried:
            _register_folder(origin)
        try:
            return origin.con.sql(spec["query"]), None, None
        except Exception as exc:  # noqa: BLE001 - every backend has its own SQL errors
            raise ParameterError(f"parameter 'source.{name}.query': the query fails on {origin.description} "
                                 f"({type(exc).__name__}: {_first_line(exc)})") from None
    wanted = spec.get("table", name)
    if origin.folder is not None:
        path = _file_in(origin.folder, wanted, name)
        if path is not None:
            return _read_file(origin.con, path, name, spec)
        names = sorted(p.name for p in origin.folder.iterdir() if p.name.lower().endswith(FILE_SUFFIXES))
    else:
        if wanted in origin.names:
            if "delimiter" in spec:
                raise ParameterError(f"parameter 'source.{name}.delimiter': applies to CSV files; '{wanted}' is a "
                                     f"table of {origin.description}")
            return origin.con.table(wanted, database=origin.database), None, None
        if "table" in spec and "." in wanted and origin.database is None:  # another database's table: db.table
            return _qualified_table(origin, name, wanted), None, None
        names = sorted(origin.names)
    if "table" in spec:
        raise ParameterError(f"parameter 'source.{name}.table': no table '{wanted}' in {origin.description} "
                             f"(found: {', '.join(names) or 'none'})")
    return None


#: Files a table may be, in the order a folder is searched.
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
FILE_SUFFIXES = (".parquet", *CSV_SUFFIXES)


def _file_in(folder: Path, stem: str, name: str) -> Path | None:
    found = [p for ext in FILE_SUFFIXES for p in [folder / f"{stem}{ext}"] if p.is_file()]
    if len(found) > 1:
        raise InputError(f"data source {folder}: table '{name}' is there twice ({', '.join(p.name for p in found)}); "
                         f"keep one")
    return found[0] if found else None


def _read_file(con: Any, path: Path, name: str, spec: dict[str, Any]) -> tuple[ir.Table, Path, str | None]:
    """Read one CSV or Parquet file as table ``name``: (table, path, the CSV's delimiter)."""
    if path.suffix.lower() == ".parquet":
        if "delimiter" in spec:
            raise ParameterError(f"parameter 'source.{name}.delimiter': applies to CSV files; {path.name} is Parquet")
        try:
            return con.read_parquet(path, table_name=f"raw_{name}"), path, None
        except duckdb.Error as exc:
            raise _unreadable(name, path, exc) from None
    if not path.name.lower().endswith(CSV_SUFFIXES):
        raise ParameterError(f"parameter 'source.{name}.file': {path.name} is neither CSV ({', '.join(CSV_SUFFIXES)}) "
                             f"nor Parquet (.parquet)")
    if not path.name.lower().endswith(".gz"):
        with open(path, "rb") as fh:
            if not fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n"):
                raise ContractError(f"table '{name}' has no rows: {path} is empty (not even a header line)")
    delimiter = spec.get("delimiter") or ("\t" if path.name.lower().endswith(".tsv") else None)
    try:
        if delimiter is None:  # DuckDB's own detection; known here for the decimal mark of ';' files
            delimiter = con.raw_sql("SELECT Delimiter FROM sniff_csv(?, comment := '')",
                                    parameters=[str(path)]).fetchone()[0]
        # every column as text: identifiers keep leading zeros, dates and numbers are parsed
        # by the contract's rules below; no comment lines (an identifier may start with '#')
        table = con.read_csv(path, table_name=f"raw_{name}", all_varchar=True, header=True, comment="",
                             delim=delimiter)
    except duckdb.Error as exc:
        raise _unreadable(name, path, exc) from None
    return table, path, delimiter


def _unreadable(name: str, path: Path, exc: BaseException) -> ContractError:
    if path.suffix.lower() == ".parquet":
        return ContractError(f"table '{name}': {path} cannot be read as Parquet ({_first_line(exc, 2)})")
    return ContractError(f"table '{name}': {path} cannot be read as CSV ({_first_line(exc, 2)}). Fix the file (cxvalue "
                         f"reads UTF-8), or set its delimiter in the parameter file (source.{name}.delimiter).")


def _register_folder(origin: _Origin) -> None:
    """Make every CSV/Parquet file of a folder a table named after the file, for ``query``."""
    for path in sorted(origin.folder.iterdir()):
        stem = next((path.name[:-len(ext)] for ext in FILE_SUFFIXES if path.name.lower().endswith(ext)), None)
        if stem:
            try:
                if path.suffix.lower() == ".parquet":
                    origin.con.read_parquet(path, table_name=stem)
                else:
                    origin.con.read_csv(path, table_name=stem, all_varchar=True, header=True, comment="")
            except duckdb.Error:  # not a table after all; a query naming it says so
                continue
    origin.queried = True


def _frame_to_table(con: Any, name: str, df: Any) -> ir.Table:
    """A DataFrame as a table of ``con``; a column of mixed types becomes text, like a CSV column."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"table '{name}': expected a pandas DataFrame (got {type(df).__name__})")
    df = df.rename(columns=str)
    _check_unique_names(name, list(df.columns))
    mixed = []
    for c in df.columns[df.dtypes == object]:
        try:
            pa.array(df[c], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            mixed.append(c)
    df = df.assign(**{c: df[c].map(str).where(df[c].notna(), None) for c in mixed},
                   **{c: df[c].astype("string") for c in df.columns[df.dtypes == object] if df[c].isna().all()})
    return con.create_table(name, df, temp=True)


def _check_unique_names(name: str, columns: list[str]) -> None:
    """Column names match case-insensitively, spaces trimmed: two that match are ambiguous."""
    seen: dict[str, str] = {}
    for c in columns:
        key = c.strip().lower()
        if key in seen:
            raise ContractError(f"table '{name}': columns '{seen[key]}' and '{c}' have the same name once trimmed and "
                                f"lower-cased; rename or drop one")
        seen[key] = c


def _closest(word: str, columns: list[str]) -> list[str]:
    """Column names like ``word`` (case and spaces ignored), closest first."""
    by_key = {c.strip().lower(): c for c in columns}
    return [by_key[k] for k in difflib.get_close_matches(word.lower(), list(by_key), n=3, cutoff=0.5)]


def _rename(name: str, raw: ir.Table, columns: dict[str, str]) -> ir.Table:
    """Give the user's columns their contract names (``source.<table>.columns``: contract -> yours)."""
    if not columns:
        return raw
    by_key = {c.strip().lower(): c for c in raw.columns}
    renames = {}
    for contract, yours in columns.items():
        col = by_key.get(yours.strip().lower())
        if col is None:
            close = _closest(yours, list(raw.columns))
            raise ContractError(
                f"table '{name}': column '{yours}' (source.{name}.columns.{contract}) not found; columns found: "
                f"{', '.join(raw.columns)}." + (f" Closest: {', '.join(close)}." if close else ""))
        renames[contract] = col
    for c in raw.columns:
        key = c.strip().lower()
        if key in renames and c != renames[key]:
            raise ContractError(
                f"table '{name}': column '{c}' already has the name that source.{name}.columns.{key} gives to "
                f"'{renames[key]}'; map only one of them, or leave the other out with source.{name}.query")
    return raw.rename({contract: col for contract, col in renames.items() if contract != col})


def _first_line(exc: BaseException, n: int = 1) -> str:
    """The first ``n`` lines of an error's message (DuckDB's CSV errors say what in the second)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith("Original Line")]
    return " ".join(lines[:n])[:400] or type(exc).__name__


# --------------------------------------------------------------------------- typing


@ibis.udf.scalar.builtin(name="trim")
def _trim_spaces(value: str) -> str:
    """SQL ``TRIM(x)`` (spaces): several times faster on DuckDB than Ibis' ``strip()``,
    which trims a list of whitespace characters; compiles the same on every SQL backend."""


def _as_id(col: ir.Value) -> ir.Value:
    return _trim_spaces(col.cast("string")).nullif("")


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, format: str) -> dt.datetime:
    """DuckDB's ``try_strptime``: the timestamp, or NULL where the text does not fit the format."""


def _as_date(col: ir.Value, date_format: str | None = None) -> ir.Value:
    """A date from a date, a timestamp, or text: ``date_format`` if given, else ISO dates and timestamps."""
    t = col.type()
    if t.is_date():
        d = col
    elif t.is_timestamp():
        d = col.date()
    else:
        s = _trim_spaces(col.cast("string")).nullif("")
        d = ibis.coalesce(s.try_cast("timestamp").date(), s.substr(0, 10).try_cast("date"))
        d = ibis.coalesce(_try_strptime(s, date_format).date(), d) if date_format else d
    # DuckDB reads 'infinity' as a date; no calendar (nor Python) has it: not a date
    lo, hi = ibis.literal(dt.date(1, 1, 1), type="date"), ibis.literal(dt.date(9999, 12, 31), type="date")
    return ibis.ifelse(d.between(lo, hi), d, ibis.null("date"))


#: A number written with a decimal comma, optionally with '.' between thousands: 1234,50 or 1.234,50.
DECIMAL_COMMA = r"^[-+]?(\d{1,3}(\.\d{3})+|\d*)(,\d+)?([eE][-+]?\d+)?$"


def _as_number(col: ir.Value, decimal: str = ".") -> ir.Value:
    """A float from a number, a boolean, or text with ``decimal`` "." (1234.50), "," (1234,50 or
    1.234,50) or "auto" (either; ``1.234`` then reads as 1.234). What is not a finite number
    (``nan``, ``inf``, ``1e999``) is NULL."""
    t = col.type()
    if t.is_integer() or t.is_boolean():
        return col.cast("float64")
    if t.is_numeric():
        return _finite(col.cast("float64"))
    s = _trim_spaces(col.cast("string")).nullif("")
    plain = s.try_cast("float64")
    comma = ibis.cases((s.re_search(DECIMAL_COMMA), s.replace(".", "").replace(",", ".").try_cast("float64")),
                       else_=ibis.null("float64"))
    return _finite({".": plain, ",": comma, "auto": ibis.coalesce(plain, comma)}[decimal])


def _finite(v: ir.FloatingValue) -> ir.FloatingValue:
    return ibis.cases((v.isnan() | v.isinf(), ibis.null("float64")), else_=v)


def _as_text(col: ir.Value) -> ir.Value:
    return _trim_spaces(col.cast("string")).nullif("")


def _as_bool(col: ir.Value) -> ir.Value:
    t = col.type()
    if t.is_boolean():
        return col
    if t.is_numeric():
        return col != 0
    s = col.cast("string").strip().lower()
    return ibis.cases((s.isin(["true", "t", "yes", "y", "1"]), True), (s.isin(["false", "f", "no", "n", "0"]), False),
                      else_=ibis.null("boolean"))


def _cast(kind: str, col: ir.Value, reading: dict[str, Any]) -> ir.Value:
    """Column ``col`` as ``kind`` (id, date, number, text, bool), text read per ``reading``."""
    if kind == "date":
        return _as_date(col, reading.get("date_format"))
    if kind == "number":
        return _as_number(col, reading.get("decimal", "."))
    return {"id": _as_id, "text": _as_text, "bool": _as_bool}[kind](col)


def _examples(expr: ir.Table, columns: list[str]) -> str:
    df = expr.select(*[c for c in columns if c in expr.columns]).limit(N_EXAMPLES).to_pandas()
    return df.to_string(index=False, max_colwidth=40)


def _padded_text_columns(raw: ir.Table, columns: list[str]) -> set[str]:
    """Text columns holding a value with a leading or trailing space (one cheap pass).

    Non-text columns are never padded. Trimming tens of millions of identifiers costs
    seconds, so it is done only where a value needs it.
    """
    text = [c for c in columns if raw[c].type().is_string()]
    if not text:
        return set()
    probe = {f"p{i}": (raw[c].startswith(" ") | raw[c].endswith(" ")).fill_null(False).cast("int64").sum()
             for i, c in enumerate(text)}
    row = raw.aggregate(**probe).to_pandas().iloc[0]
    return {c for i, c in enumerate(text) if int(row[f"p{i}"] or 0) > 0}


def _typed(name: str, raw: ir.Table, probe: bool = True,
           reading: dict[str, Any] | None = None) -> tuple[ir.Table, dict[str, str]]:
    """Check required columns, cast known columns; return the typed table and covariates.

    Column names match case-insensitively, spaces trimmed. ``reading`` says how text is read
    (:attr:`Source.reading`). ``probe=False`` skips the look for padded text (no trimming): the
    caller then checks for padding in a pass it makes anyway and types the table again if it
    finds any.
    """
    spec, reading = TABLES[name], reading or {}
    _check_unique_names(name, list(raw.columns))
    cols = {c.lower().strip(): c for c in raw.columns}
    missing = [c for c in spec["columns"] if c not in cols]
    if missing:
        unused = [c for low, c in cols.items() if low not in {**spec["columns"], **spec["optional"]}]
        guesses = {c: _closest(c, unused) for c in missing}
        close = "; ".join(f"{c} ~ {', '.join(g)}" for c, g in guesses.items() if g)
        example = ", ".join(f"{c}: {(g or ['<your column>'])[0]}" for c, g in guesses.items())
        raise ContractError(
            f"table '{name}': required column(s) {', '.join(missing)} missing "
            f"(columns found: {', '.join(raw.columns)}). " + (f"Closest names found: {close}. " if close else "")
            + f"Rename them in the export, or map them in the parameter file: "
              f"source: {{{name}: {{columns: {{{example}}}}}}} (see docs/CONTRACT.md).")
    known = {**spec["columns"], **spec["optional"]}
    padded = _padded_text_columns(raw, [cols[c] for c in cols if known.get(c) in ("id", "text")]) if probe else set()
    out, extra = {}, {}
    for low, orig in cols.items():
        if low in known:
            if known[low] in ("id", "text") and orig not in padded:
                out[low] = raw[orig].cast("string").nullif("")  # nothing to trim: skip the costly TRIM
            else:
                out[low] = _cast(known[low], raw[orig], reading)
            out[f"_raw_{low}"] = raw[orig]
        elif name == "responses" and low.startswith("attr_"):
            out[low] = _cast("number", raw[orig], reading)
        else:
            out[low] = raw[orig]
            extra[low] = raw[orig].type()
    covariates = {}
    if name == "customers" and extra:
        # text columns (all of a CSV) whose every non-empty value is a number are numeric
        text = [c for c, t in extra.items() if t.is_string()]
        if text:
            probe = {}
            for c in text:
                v = _trim_spaces(raw[cols[c]]).nullif("")
                probe[c] = (v.notnull() & _cast("number", v, reading).isnull()).cast("int64").sum()
                probe[f"{c}__n"] = v.notnull().cast("int64").sum()
            row = raw.aggregate(**probe).to_pandas().iloc[0]
            for c in text:
                if int(row[c] or 0) == 0 and int(row[f"{c}__n"] or 0) > 0:
                    out[c] = _cast("number", raw[cols[c]], reading)
                    extra[c] = out[c].type()
        for c, t in extra.items():
            covariates[c] = "numeric" if t.is_numeric() else "categorical"
    typed = raw.select(**out)
    return typed, covariates


#: What a run needs from each required table (for the message when it is empty).
NEEDS = {"customers": "one row per customer", "responses": "the survey answers",
         "transactions": "the revenue events (invoices, orders)"}


def _check_readable(name: str, typed: ir.Table, src: Source) -> None:
    """Stop when a required table has no rows, or a date or number column is mostly unreadable
    (a format problem); the message says which parameter reads that format."""
    spec = TABLES[name]
    known = {**spec["columns"], **spec["optional"]}
    reading = src.reading.get(name, {})
    # only text columns can be unreadable: typed dates and numbers (Parquet, databases) are skipped
    checks = {c: k for c, k in known.items()
              if k in ("date", "number") and c in typed.columns and typed[f"_raw_{c}"].type().is_string()}
    aggs = {"_rows": typed.count()}
    for c in checks:
        raw = _trim_spaces(typed[f"_raw_{c}"].cast("string")).nullif("")
        aggs[f"{c}__n"] = raw.notnull().sum()
        aggs[f"{c}__bad"] = (raw.notnull() & typed[c].isnull()).sum()
    counts = typed.aggregate(**aggs).to_pandas().iloc[0]
    if int(counts["_rows"]) == 0 and spec["required"]:
        where = f"file {src.files[name]}" if name in src.files else src.description
        raise ContractError(
            f"table '{name}' has no rows ({where}). A run needs {NEEDS[name]}; check the export "
            f"(or the table's entry in the parameter file's source block).")
    for c, kind in checks.items():
        n, bad = int(counts[f"{c}__n"] or 0), int(counts[f"{c}__bad"] or 0)
        if not n or bad / n < UNREADABLE_SHARE:
            continue
        unread = typed.filter(typed[f"_raw_{c}"].notnull() & typed[c].isnull())
        ex = _examples(unread, [f"_raw_{c}"])
        yours = src.mapped.get(name, {}).get(c)
        column = f"column '{c}'" + (f" (your '{yours}')" if yours else "")
        if kind == "date":
            fmt = reading.get("date_format")
            what = f"dates like {fmt}" + " or ISO dates" if fmt else "ISO dates YYYY-MM-DD (or timestamps)"
            fix = (f"Check source.{name}.date_format in the parameter file." if fmt else
                   f"Set their format in the parameter file: source.{name}.date_format, e.g. '%d/%m/%Y'.")
        elif reading.get("decimal", ".") == ",":
            what = "numbers with a decimal comma like 1234,50 or 1.234,50"
            fix = f"If they use a decimal point, set source.{name}.decimal: '.' in the parameter file."
        else:
            what = "plain numbers like 1234.50"
            commas = int(unread.filter(_as_number(unread[f"_raw_{c}"], ",").notnull()).count().to_pandas())
            fix = (f"{commas:,} of them read as numbers with a decimal comma: set source.{name}.decimal: ',' in "
                   f"the parameter file." if commas else "Fix the values in the export.")
        raise ContractError(
            f"table '{name}', {column}: {bad:,} of {n:,} values cannot be read; expected {what}. {fix} "
            f"Examples:\n{ex}")


# --------------------------------------------------------------------------- checking


def _apply_rules(name: str, typed: ir.Table, rules: list[tuple[str, ir.Value]],
                 flags: dict[str, ir.Value] | None = None) -> tuple[ir.Table, dict[str, int], int, dict[str, int]]:
    """Label each row with the first rule it breaks; return kept rows and counts.

    ``flags`` (label -> boolean expression) are counted among the kept rows in the same
    pass over the table (the corrections).
    """
    # rule numbers, not labels, in the per-row CASE: cheaper on tens of millions of rows
    reason = (ibis.cases(*[(cond.fill_null(False), i) for i, (_, cond) in enumerate(rules)], else_=ibis.null("int8"))
              if rules else ibis.null("int8"))
    labelled = typed.mutate(_reason=reason)
    flags = flags or {}
    flag_sums = {f"_flag{i}": expr.fill_null(False).cast("int64").sum() for i, expr in enumerate(flags.values())}
    counts = labelled.group_by("_reason").aggregate(n=ibis._.count(), **flag_sums).to_pandas()
    excluded = {rules[int(r)][0]: int(n) for r, n in zip(counts["_reason"], counts["n"]) if pd.notna(r)}
    rows_read = int(counts["n"].sum())
    kept_counts = counts[counts["_reason"].isna()]
    corrected = {}
    for i, label in enumerate(flags):
        # corrections count among kept rows; internal flags ("_..."): among all rows
        rows = counts if label.startswith("_") else kept_counts
        n = int(rows[f"_flag{i}"].sum()) if len(rows) else 0
        if n:
            corrected[label] = n
    kept = labelled.filter(labelled._reason.isnull()).drop("_reason")
    ordered = {label: excluded[label] for label, _ in rules if label in excluded}
    return kept, ordered, rows_read, corrected


def check(source: Any, params: dict[str, Any] | None = None, materialize: bool | None = None) -> CheckedData:
    """Check a source against the contract; return typed tables and ``data_quality``.

    Parameters
    ----------
    source : anything :func:`open_source` accepts.
    params : run parameters (``as_of``, ``metric``, ``source``); defaults when omitted.
    materialize : store the typed tables on the backend right after parsing (default: for CSV
        folders, whose files would otherwise be parsed again by every query).

    Raises
    ------
    ContractError : a rule marked *error* in the module docstring, or a required table with
        no (usable) rows (exit code 2).
    ParameterError : the ``source`` block names what the source does not have (exit code 2).
    """
    from cxvalue.config import load_params

    params = params or load_params()
    src = open_source(source, params)
    missing = [t for t, s in TABLES.items() if s["required"] and t not in src.tables]
    if missing:
        raise ContractError(
            f"data source {src.description}: required table(s) {', '.join(missing)} not found "
            f"(found: {', '.join(src.tables) or 'none'}). A folder needs files named customers.csv (or .parquet), "
            f"responses, transactions; contacts is optional. Tables under other names: map them in the parameter "
            f"file (source.<table>.file, .table or .query; see docs/CONTRACT.md).")
    if materialize is None:
        materialize = any(str(p).endswith(CSV_SUFFIXES) for p in src.files.values())

    typed, covariates = {}, {}
    for name, raw in src.tables.items():
        try:
            typed[name], cov = _typed(name, raw, probe=materialize or name == "customers",
                                      reading=src.reading.get(name))
            covariates.update(cov)
            if materialize or name == "customers":
                # parse once: CSV files are otherwise re-read by every pass; customers are
                # read several times (duplicates, rules, referrals)
                typed[name] = _materialize(src.con, f"typed_{name}", typed[name])
            _check_readable(name, typed[name], src)
        except duckdb.Error as exc:  # a file DuckDB cannot parse past the lines it sniffed
            if name not in src.files:
                raise
            raise _unreadable(name, src.files[name], exc) from None

    metrics = [m for m in METRICS if m in typed["responses"].columns]
    if not metrics:
        raise ContractError(
            f"table 'responses': none of the score columns nps, csat, ces is present (columns: "
            f"{', '.join(src.tables['responses'].columns)})")
    if params["metric"] not in metrics:
        raise ContractError(
            f"table 'responses': column '{params['metric']}' (the chosen metric) is missing; "
            f"available: {', '.join(metrics)}. Set --set metric=... to one of them.")

    as_of = _resolve_as_of(params.get("as_of") or src.defaults.get("as_of"), typed)
    as_of_lit = ibis.literal(as_of, type="date")
    dq: dict[str, dict[str, Any]] = {}

    # customers ---------------------------------------------------------------------
    c = typed["customers"]
    dup = (c.filter(c.customer_id.notnull()).group_by("customer_id").aggregate(n=ibis._.count()).filter(lambda t: t.n > 1))
    n_dup = int(dup.count().to_pandas())
    if n_dup:
        ex = _examples(c.semi_join(dup, "customer_id").order_by("customer_id"), ["_raw_customer_id", "_raw_start_date"])
        raise ContractError(
            f"table 'customers', column 'customer_id': {n_dup:,} identifier(s) appear on more than one row; "
            f"each customer must have exactly one row. Examples:\n{ex}")
    has_end = "end_date" in c.columns
    rules = [
        ("customer_id empty", c.customer_id.isnull()),
        ("start_date empty or not a date", c.start_date.isnull()),
        ("start_date after as_of", c.start_date > as_of_lit),
    ]
    if has_end:
        rules += [
            ("end_date before start_date", c.end_date < c.start_date),
        ]
        if c._raw_end_date.type().is_string():  # only text can fail to be a date
            rules.insert(-1, ("end_date not a date",
                              _trim_spaces(c._raw_end_date).nullif("").notnull() & c.end_date.isnull()))
    kept, excluded, rows_read, _ = _apply_rules("customers", c, rules)
    flags = {}
    if has_end:
        kept = kept.mutate(_late=(kept.end_date > as_of_lit).fill_null(False))
        kept = kept.mutate(end_date=ibis.cases((kept._late, ibis.null("date")), else_=kept.end_date))
        flags["end_date after as_of (treated as still a customer)"] = "_late"
    else:
        kept = kept.mutate(end_date=ibis.null("date"))
    if "referred_by" in kept.columns:
        ids = kept.select(_ref_id=kept.customer_id)
        kept = kept.left_join(ids, kept.referred_by == ids._ref_id)
        kept = kept.mutate(_bad_ref=(kept.referred_by.notnull() & kept._ref_id.isnull()).fill_null(False))
        kept = kept.mutate(referred_by=ibis.cases((kept._bad_ref, ibis.null("string")), else_=kept.referred_by))
        flags["referred_by not a known customer (set empty)"] = "_bad_ref"
    else:
        kept = kept.mutate(referred_by=ibis.null("string"))
    kept = _materialize(src.con, "customers", _drop_raw(kept))
    corr_counts = _count_flags(kept, flags)
    kept = kept.drop(*[x for x in ("_late", "_bad_ref", "_ref_id") if x in kept.columns])
    dq["customers"] = _dq(rows_read, excluded, corr_counts)
    if rows_read - sum(excluded.values()) == 0:
        raise _no_usable_rows("customers", rows_read, excluded)
    customers = kept
    out = {"customers": customers}

    # event tables ------------------------------------------------------------------
    cust = customers.select(_c_id=customers.customer_id, _c_start=customers.start_date, _c_end=customers.end_date)
    unjoined: dict[str, ir.Table] = {}
    for name in ("responses", "transactions", "contacts"):
        if name not in typed:
            continue
        for attempt in (1, 2):
            j, rules, flags = _event_rules(name, typed[name], cust, as_of_lit)
            spec = {**TABLES[name]["columns"], **TABLES[name]["optional"]}
            text = [j[f"_raw_{c}"] for c, kind in spec.items()
                    if kind in ("id", "text") and f"_raw_{c}" in j.columns and j[f"_raw_{c}"].type().is_string()]
            padded = "_padded text" if attempt == 1 and not materialize and text else None
            if padded:  # typed without trimming: look for padded text in this same pass
                flags[padded] = ibis.or_(*[col.startswith(" ") | col.endswith(" ") for col in text])
            kept, excluded, rows_read, corr_counts = _apply_rules(name, j, rules, flags)
            if padded and corr_counts.pop(padded, 0):
                typed[name], _ = _typed(name, src.tables[name], probe=True,  # rare: type again, trimming
                                        reading=src.reading.get(name))
                continue
            break
        if name == "contacts":
            kept = kept.mutate(channel=kept.channel.fill_null("other"))
        kept = _drop_raw(kept).drop("_c_id", "_c_start", "_c_end")
        if name == "responses":
            kept = kept.mutate(**{m: kept[m].cast("int64") for m in metrics})
            kept = _materialize(src.con, name, kept)  # small, and read by several queries
        else:
            unjoined[name] = _drop_raw(typed[name]).mutate(channel=typed[name].channel.fill_null("other")) \
                if name == "contacts" else _drop_raw(typed[name])
        out[name] = kept
        dq[name] = _dq(rows_read, excluded, corr_counts)
        if TABLES[name]["required"] and dq[name]["rows_used"] == 0:
            raise _no_usable_rows(name, rows_read, excluded)

    if "maturity" in typed:
        m = typed["maturity"]
        m = m.mutate(element=maturity_element(m.element))
        near = m.level.clip(0, 6)  # keep huge values out of round()
        rules = [
            ("assessed_by empty", m.assessed_by.isnull()),
            ("date empty or not a date", m.date.isnull()),
            ("date after as_of", m.date > as_of_lit),
            ("element not one of the nine (CONTRACT section 1.4)",
             m.element.isnull() | ~m.element.isin(list(MATURITY_ELEMENTS))),
            ("level outside 1-5 or not a whole number",
             m.level.isnull() | (m.level < 1) | (m.level > 5) | (near != near.round())),
        ]
        kept, excluded, rows_read, _ = _apply_rules("maturity", m, rules)
        kept = _drop_raw(kept)
        out["maturity"] = kept.mutate(level=kept.level.cast("int64"))
        dq["maturity"] = _dq(rows_read, excluded, {})

    attributes = [col for col in out["responses"].columns if col.startswith("attr_")]
    return CheckedData(
        source=src, tables=out, as_of=as_of, data_quality=dq, metrics=metrics, covariates=covariates,
        attributes=attributes,
        has_transaction_cost="cost" in out["transactions"].columns,
        has_contact_cost="contacts" in out and "cost" in out["contacts"].columns,
        unjoined=unjoined,
    )


def _event_rules(name: str, t: ir.Table, cust: ir.Table, as_of_lit: ir.Value):
    """An event table joined to its customers, with the contract's rules and corrections."""
    d = DATE_COLUMN[name]
    j = t.left_join(cust, t.customer_id == cust._c_id)
    rules = [
        ("customer_id not a known customer", j._c_id.isnull()),
        (f"{d} empty or not a date", j[d].isnull()),
        (f"{d} after as_of", j[d] > as_of_lit),
        (f"{d} before the customer's start_date", j[d] < j._c_start),
        (f"{d} after the customer's end_date", j._c_end.notnull() & (j[d] > j._c_end)),
    ]
    if name == "responses":
        present = [m for m in METRICS if m in j.columns]
        rules.append(("no score (nps, csat and ces all empty)", ibis.and_(*[j[m].isnull() for m in present])))
        for m in present:
            lo, hi = SCORE_RANGES[m]
            near = j[m].clip(lo - 1, hi + 1)  # round() casts to a 64-bit integer: keep huge scores out of it
            rules.append((f"{m} outside {lo}-{hi} or not a whole number",
                          j[m].notnull() & ((j[m] < lo) | (j[m] > hi) | (near != near.round()))))
    if name == "transactions":
        rules.append(("amount empty or not a number", j.amount.isnull()))
    flags = {"channel empty (counted as 'other')": j.channel.isnull()} if name == "contacts" else {}
    return j, rules, flags


def _no_usable_rows(name: str, rows_read: int, excluded: dict[str, int]) -> ContractError:
    reasons = "; ".join(f"{reason}: {n:,}" for reason, n in excluded.items())
    return ContractError(
        f"table '{name}' has no usable rows: all {rows_read:,} were excluded ({reasons}). A run needs "
        f"{NEEDS[name]}; the rules are in docs/CONTRACT.md (identifiers that match no customer and dates after "
        f"as_of are the usual causes).")


def one_thread(data: CheckedData, on: bool = True) -> None:
    """Have the data's database engine run each query on one thread from now on (``on=False``: on
    as many as it likes again), when it is this machine's (DuckDB; a remote engine is left as it
    is): for a run that keeps the other cores busy with its own work meanwhile (DuckDB's threads
    then compete with it and cost more CPU time than they save)."""
    con = data.source.con
    if getattr(con, "name", None) == "duckdb":
        con.raw_sql("SET threads = 1" if on else "RESET threads")


def _materialize(con: Any, name: str, expr: ir.Table) -> ir.Table:
    """Compute ``expr`` once on its backend (a temporary table) and return the stored table."""
    import uuid

    tmp = f"_cxvalue_{name}_{uuid.uuid4().hex[:8]}"
    try:
        return con.create_table(tmp, expr, temp=True)
    except Exception:  # backends without temporary tables: Ibis' own cache
        return expr.cache()


def _drop_raw(t: ir.Table) -> ir.Table:
    return t.drop(*[c for c in t.columns if c.startswith("_raw_")])


def _count_flags(t: ir.Table, flags: dict[str, str]) -> dict[str, int]:
    """Count rows per boolean flag column: ``{label: column}`` -> ``{label: count}`` (non-zero only)."""
    if not flags:
        return {}
    keys = list(flags)
    row = t.aggregate(**{f"f{i}": t[flags[k]].fill_null(False).cast("int64").sum() for i, k in enumerate(keys)}).to_pandas().iloc[0]
    return {k: int(row[f"f{i}"] or 0) for i, k in enumerate(keys) if int(row[f"f{i}"] or 0)}


def _dq(rows_read: int, excluded: dict[str, int], corrected: dict[str, int]) -> dict[str, Any]:
    return {"rows_read": rows_read, "rows_used": rows_read - sum(excluded.values()),
            "excluded": excluded, "corrected": corrected}


def _resolve_as_of(value: Any, typed: dict[str, ir.Table]) -> dt.date:
    if value:
        return dt.date.fromisoformat(str(value)[:10])
    maxima = []
    for name, t in typed.items():
        if name == "maturity":  # a self-assessment of the company, not the customer data's end
            continue
        known = {**TABLES[name]["columns"], **TABLES[name]["optional"]}
        # only the contract's own date columns: an extra column named like one (an 'end_date' in
        # contacts) is the user's, left as it came
        for col in (c for c, kind in known.items() if kind == "date" and c != "resolved_date"):
            if col in t.columns:
                maxima.append(t[col].max().to_pandas())
    found = [pd.Timestamp(m).date() for m in maxima if m is not None and not pd.isna(m)]
    if not found:
        raise ContractError("no readable dates in any table; cannot set as_of")
    return max(found)


def quality_table(data_quality: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The data-quality dict as a table: one row per table and reason."""
    rows = []
    for table, q in data_quality.items():
        rows.append({"table": table, "what": "rows read", "rows": q["rows_read"]})
        for reason, n in q["excluded"].items():
            rows.append({"table": table, "what": f"excluded: {reason}", "rows": n})
        for reason, n in q.get("corrected", {}).items():
            rows.append({"table": table, "what": f"corrected: {reason}", "rows": n})
        rows.append({"table": table, "what": "rows used", "rows": q["rows_used"]})
    return pd.DataFrame(rows)
