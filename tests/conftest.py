"""Shared fixtures: small seeded synthetic worlds written to disk once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxvalue.synthetic import generate, write_world


def strict_least_greatest(monkeypatch) -> None:
    """Make Ibis' LEAST and GREATEST behave as BigQuery's and Snowflake's: NULL when any argument is NULL
    (DuckDB, Postgres and Spark skip NULLs), for the rest of the test. Queries must not lean on the skipping."""
    import ibis

    def strict(fn):
        def call(*args):
            exprs = [ibis.literal(a) if isinstance(a, (int, float)) else a for a in args]
            if any(e is None for e in exprs):
                return ibis.null(fn(*[e for e in exprs if e is not None]).type())
            out = fn(*exprs)
            return ibis.cases((ibis.or_(*[e.isnull() for e in exprs]), ibis.null(out.type())), else_=out)
        return call

    monkeypatch.setattr(ibis, "least", strict(ibis.least))
    monkeypatch.setattr(ibis, "greatest", strict(ibis.greatest))


@pytest.fixture
def null_strict_least_greatest(monkeypatch):
    """:func:`strict_least_greatest` for the whole test."""
    strict_least_greatest(monkeypatch)


def world_with_prefixed_ids(n: int, seed: int, prefix: str = "ZQX", **kw):
    """A synthetic world whose identifiers start with ``prefix`` (easy to search for in output)."""
    w = generate(n_customers=n, seed=seed, **kw)
    for df in (w.customers, w.responses, w.transactions, w.contacts):
        df["customer_id"] = prefix + df["customer_id"].astype(str)
    w.customers["referred_by"] = w.customers["referred_by"].where(
        w.customers["referred_by"].isna(), prefix + w.customers["referred_by"].astype(str))
    return w


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory) -> Path:
    """3,000 customers, parquet, identifiers 'ZQX<n>', a few messy rows, a CX maturity assessment."""
    out = tmp_path_factory.mktemp("world")
    write_world(world_with_prefixed_ids(3_000, seed=7, messy=True, maturity=True), out)
    return out


#: Test modules (or one test function's cases) that share one costly module fixture (a Spark JVM, a whole
#: run, a fitted world) and run on one xdist worker each: spread over both, each worker built the fixture
#: (test_run's run twice, test_shapes' earlier report twice).
ONE_WORKER = {"tests/test_spark.py": "spark",
              "tests/test_shapes.py::test_shape_that_cannot_be_analysed_exits_2_in_run_and_validate": "shapes-fatal",
              **{f"tests/test_{name}.py": name for name in (
                  "run", "movers", "business_case_truth", "loop", "failure_demand", "failure_demand_lever",
                  "excel", "store", "within_customer", "placebo")}}


def one_worker_group(nodeid: str) -> str | None:
    """The :data:`ONE_WORKER` group of a test, by its module or its function (any parameters)."""
    path, _, rest = nodeid.partition("::")
    function = rest.split("[", 1)[0]
    return ONE_WORKER.get(f"{path}::{function}") or ONE_WORKER.get(path)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: make mutation runs pytest with -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` (make test) with :data:`ONE_WORKER`'s modules kept on one worker.

    pytest-xdist 3.8 tags the tests of an ``xdist_group`` by rewriting ``item._nodeid``, which
    pytest 9 no longer reads (a node id comes from ``item._id``): the group's tests were spread
    over both workers and each set up the module's fixtures (two JVMs, the analyses twice). This
    scheduler groups those modules by their path instead; every other test is scheduled as before.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Grouped(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return one_worker_group(nodeid) or super()._split_scope(nodeid)

    return Grouped(config, log)
