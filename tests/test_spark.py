"""The analysis on Spark (local mode, through Ibis) gives DuckDB's history and results.

One small synthetic world (2,000 customers, messy rows included) is analysed twice:
by DuckDB from its Parquet folder, and by Spark from Spark SQL tables in a database of a
temporary warehouse (over the same files), typed as the Parquet files have them but contacts
all text (a CSV landing table), found through the ``source`` block
(``table: cx.customers``) with a SparkSession as the source. The data checks, the customer
history and the results blocks (linkage, who answered, business case, scorecard) must agree to rounding:
sums over doubles run in another order on each engine, so floats agree to 1e-9 relative (the
history) and 1e-6 after the models (results.json keeps 12 digits).

Skipped only where there is no Java; with Java and no pyspark it fails: ``make test`` installs
the ``spark`` extra. One JVM for the module (about 8 s to start, more on a busy machine), kept
on one xdist worker by its group (``make test`` runs ``--dist loadgroup``).
"""

from __future__ import annotations

import math
import os
import shutil

import pandas as pd
import pytest

from cxvalue import config, data, pipeline, results
from cxvalue.synthetic import generate, write_world

pytestmark = pytest.mark.xdist_group("spark")

JAVA = (shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if os.environ.get("JAVA_HOME")
        else shutil.which("java"))
if JAVA is None:
    pytest.skip("no Java on this machine: Spark needs a JVM (Java 17)", allow_module_level=True)

TABLES = ("customers", "responses", "transactions", "contacts")
AS_TEXT = ("contacts",)  # loaded as text, like a CSV export landed in the warehouse
#: same parameters on both engines; fewer simulation draws keep the test short
PARAMS = {"scenario.draws": 1000}


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    try:
        from pyspark.sql import SparkSession
    except ModuleNotFoundError:
        pytest.fail("Java is here but pyspark is not: install the spark extra "
                    "(pip install -c constraints.txt -e '.[spark]'; make test does it)")
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (SparkSession.builder.master("local[2]").appName("cxvalue-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               # small local queries: compiling whole-stage code and re-planning cost more than they save
               .config("spark.sql.codegen.wholeStage", "false")
               .config("spark.sql.adaptive.enabled", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.warehouse.dir", str(warehouse))
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    # seed 7: a world whose simulated NPV stays finite. Some small worlds (seed 11) have so few
    # referrals that the referrals model's drawn level explodes (1e34) and the NPV's P90 with it,
    # which then moves with the last bits of any sum: a business-case problem, not Spark's.
    return write_world(generate(n_customers=2_000, seed=7, messy=True), tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def spark_tables(spark, world):
    """The world as Spark SQL tables ``cx.<table>`` over its Parquet files (nothing copied); contacts
    a view of it with every column as text."""
    spark.sql("CREATE DATABASE IF NOT EXISTS cx")
    for name in TABLES:
        stored = f"cx.{name}_parquet" if name in AS_TEXT else f"cx.{name}"
        spark.sql(f"CREATE TABLE {stored} USING parquet LOCATION '{world / f'{name}.parquet'}'")
        if name in AS_TEXT:
            text = ", ".join(f"CAST(`{c}` AS STRING) AS `{c}`" for c in spark.table(stored).columns)
            spark.sql(f"CREATE VIEW cx.{name} AS SELECT {text} FROM {stored}")
    return {name: f"cx.{name}" for name in TABLES}


@pytest.fixture(scope="module")
def analyses(spark, spark_tables, world):
    params = config.load_params(PARAMS)
    on_spark = pipeline.analyse(spark, {**params, "source": {t: {"table": q} for t, q in spark_tables.items()}})
    on_duckdb = pipeline.analyse(world, params)
    return on_spark, on_duckdb


def _close(a, b, path="", rel=1e-6) -> list[str]:
    """Where two JSON-like values differ: floats beyond ``rel``, anything else at all."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))} on one side only"]
        return [d for k in a for d in _close(a[k], b[k], f"{path}.{k}", rel)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _close(x, y, f"{path}[{i}]", rel)]
    if isinstance(a, float) or isinstance(b, float):
        ok = (isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool)
              and not isinstance(b, bool) and math.isclose(a, b, rel_tol=rel, abs_tol=1e-9))
        return [] if ok else [f"{path}: {a!r} (Spark) vs {b!r} (DuckDB)"]
    return [] if a == b else [f"{path}: {a!r} (Spark) vs {b!r} (DuckDB)"]


def _blocks(analysis: pipeline.Analysis) -> dict:
    """The results.json blocks the analysis gives (as notebooks 01, 02 and 03 save them), with who
    answered, whose response weights the business case is priced with."""
    return results.clean({
        "linkage": {"revenue": analysis.revenue.results(), "churn": analysis.churn.results(),
                    "cost_to_serve": analysis.cost_to_serve.results(),
                    "proportional_hazards_p": analysis.churn.ph_test_["p_value"]},
        **analysis.case.results(), **analysis.scorecard.results(),
        "drivers": {"who_answered": analysis.who_answered.results()},
        "skipped": analysis.skipped(), "warnings": analysis.warnings(),
    })


def test_spark_checks_the_data_as_duckdb_does(analyses):
    on_spark, on_duckdb = analyses
    assert on_spark.checked.con.name == "pyspark"
    assert on_spark.checked.data_quality == on_duckdb.checked.data_quality
    assert on_duckdb.checked.data_quality["responses"]["excluded"]  # the messy rows were there to count
    assert on_spark.checked.as_of == on_duckdb.checked.as_of
    assert on_spark.checked.covariates == on_duckdb.checked.covariates
    assert on_spark.checked.metrics == on_duckdb.checked.metrics


def test_spark_builds_the_same_customer_history(analyses):
    on_spark, on_duckdb = analyses
    assert len(on_duckdb.history) > 500
    pd.testing.assert_frame_equal(on_spark.history, on_duckdb.history, check_exact=False, rtol=1e-9)


def test_spark_gives_the_same_results(analyses):
    on_spark, on_duckdb = analyses
    spark_blocks, duckdb_blocks = _blocks(on_spark), _blocks(on_duckdb)
    assert {"linkage", "value", "business_case", "kpis"} <= set(duckdb_blocks)
    assert on_duckdb.response_weights is not None and on_spark.response_weights is not None  # the case is weighted
    assert duckdb_blocks["drivers"]["who_answered"]["skipped"] is None
    # The simulation's summaries: the draws come from an eigendecomposition of the effects' covariance,
    # whose near-zero directions turn with the last bits of the sums (seen: P10 off by 4e-5 of itself).
    # They must agree to 1% of the P10-P90 spread and to two draws in the chance of a positive NPV,
    # far inside their Monte Carlo error (the P10 of 1,000 draws: about 5% of that spread).
    simulated = {k: (spark_blocks["business_case"].pop(k), duckdb_blocks["business_case"].pop(k))
                 for k in ("npv_p10", "npv_p50", "npv_p90", "p_npv_positive")}
    spread = simulated["npv_p90"][1] - simulated["npv_p10"][1]
    assert 0 < spread < 1e9, f"the simulated NPV's spread is {spread:.3g}: the world's draws exploded"
    for k in ("npv_p10", "npv_p50", "npv_p90"):
        assert simulated[k][0] == pytest.approx(simulated[k][1], abs=0.01 * spread), k
    assert simulated["p_npv_positive"][0] == pytest.approx(simulated["p_npv_positive"][1], abs=2 / PARAMS["scenario.draws"])
    differences = _close(spark_blocks, duckdb_blocks)
    assert not differences, "\n".join(differences[:20])


def test_a_run_finds_spark_tables_by_their_contract_names(spark, spark_tables, analyses):
    """A session, its Ibis connection and a pyspark:// URL (which joins the running session) all
    find tables named as in the contract in the current database."""
    import ibis

    for name, table in spark_tables.items():
        spark.table(table).createOrReplaceTempView(name)
    for source in (spark, ibis.pyspark.connect(spark), "pyspark://?spark.sql.shuffle.partitions=2"):
        src = data.open_source(source, config.load_params())
        assert set(src.tables) == set(TABLES), source
        assert src.con.name == "pyspark"
        assert src.tables["customers"].columns == analyses[1].checked.source.tables["customers"].columns


def test_spark_counts_each_respondents_purchases_as_duckdb_does(analyses):
    """The purchase model's input for customers who never cancel (x, t_x, T, mean spend, first
    purchase after the survey) is one Ibis query: Spark's must be DuckDB's."""
    from cxvalue.purchases import purchase_summary

    on_spark, on_duckdb = analyses
    params = config.load_params(PARAMS)
    mine = purchase_summary(on_spark.checked, on_spark.history, params)
    theirs = purchase_summary(on_duckdb.checked, on_duckdb.history, params)
    assert theirs["x"].sum() > 1000
    pd.testing.assert_frame_equal(mine, theirs, check_exact=False, rtol=1e-9)
