"""The shape matrix: every data shape of ``tests/shapes.py`` gives a report that says what it could
not do, or a plain exit 2 before any notebook runs; never exit 1.

Three levels, so that ``make test`` stays fast and still runs one whole report per family:

* every shape that can be analysed goes through the readiness check and the whole analysis
  (``pipeline.analyse``: history, linkage, business case) with the expected parts skipped;
* every shape that cannot is refused with exit 2 by ``cxvalue run`` and ``cxvalue validate`` alike,
  keeping the earlier report;
* one shape per family (file formats, metrics, optional tables and columns, groups, identifiers and
  dates) runs end to end through the CLI to a complete report; the rest do so under ``-m slow``.
"""

from __future__ import annotations

from html import escape

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxvalue import config, pipeline, purchases, readiness, report
from cxvalue.business_case import npv
from shapes import AS_OF, SHAPES, Shape, world_tables, write

RUNNABLE = [s for s in SHAPES if s.error is None]
FATAL = [s for s in SHAPES if s.error is not None]
#: one whole report per family in `make test`
FULL_IN_MAKE_TEST = {"excel csv (; , BOM CRLF)", "ces only", "nps only, no contacts, no end_date", "no promoters",
                     "padded text ids", "maturity, no usable answer"}
FAST = ["--set", "scenario.draws=2000"]


def _ids(shapes):
    return [s.name for s in shapes]


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _source(shape: Shape, tmp: Path) -> Path:
    return write(shape.reshape(world_tables(shape.customers)), tmp / "data", shape.fmt, shape.extra_files)


def _sets(shape: Shape) -> list[str]:
    return [arg for s in shape.sets for arg in ("--set", s)]


def _params(shape: Shape) -> dict:
    return config.load_params(None, [f"as_of={AS_OF}", "scenario.draws=500", *shape.sets])


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cxvalue.cli", *args], capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("shape", RUNNABLE, ids=_ids(RUNNABLE))
def test_shape_is_analysed_with_what_it_cannot_support_skipped(shape, tmp_path):
    src = _source(shape, tmp_path)
    params = config.load_params(None, [f"as_of={AS_OF}", "scenario.draws=500", "scenario.failure_demand_reasons=top",
                                       *shape.sets])
    analysis = pipeline.analyse(str(src), params)
    checked, hist = analysis.checked, analysis.history
    readiness.require(checked, params, hist)  # what `run` checks before any notebook: passes
    skipped = analysis.skipped()
    linkage_expected = {k for k in shape.skipped if k.startswith("linkage.")}
    non_contractual = analysis.business_model == "non_contractual"
    # data without end dates is read as customers who never cancel (business_model = auto): how long
    # they stay comes from the purchase model, which prices the retention lever
    assert non_contractual == (not hist["churned"].any())
    if non_contractual:
        assert skipped["linkage.churn"] == purchases.NON_CONTRACTUAL_CHURN
        # the purchase model prices the retention lever, or says in words why it could not be fitted
        if analysis.purchases.fitted:
            assert "business_case.retention" not in skipped
        else:
            assert skipped["business_case.retention"].startswith(skipped["linkage.purchases"])
            linkage_expected = linkage_expected | {"linkage.purchases"}
    assert {k for k in skipped if k.startswith("linkage.")} == linkage_expected
    for key in linkage_expected - ({"linkage.churn", "linkage.purchases"} if non_contractual else set()):
        # a skipped model leaves its lever out of the case, in plain words
        lever = {"linkage.churn": "business_case.retention", "linkage.cost_to_serve": "business_case.cost_to_serve"}[key]
        assert skipped[lever] == skipped[key] and len(skipped[key]) > 40
    case = analysis.case
    flows = case.cash_flows
    assert np.isfinite(case.npv) and np.isfinite(flows[["benefit", "net"]].to_numpy()).all()
    assert flows.loc[0, "cost"] == params["scenario"]["one_off_cost"]  # year 0: the one-off cost
    discounted = flows["net"] / (1 + params["discount_rate"]) ** flows.index.to_numpy()
    assert case.npv == pytest.approx(discounted.sum())
    assert case.npv == pytest.approx(npv(flows.loc[1:, "net"], params["discount_rate"], params["scenario"]["one_off_cost"]))
    assert np.isfinite(list(case.uncertainty.values())).all()
    if non_contractual and analysis.purchases.fitted:
        assert (flows.loc[1:, "retention"] != 0).any()
    elif "linkage.churn" in skipped:
        assert (flows["retention"] == 0).all()
    if "linkage.cost_to_serve" in skipped:
        assert (flows["cost_to_serve"] == 0).all()
    # the failure-demand lever: in the case when the contacts carry reasons, else left out in words
    lever = case.inputs.get("failure_demand")
    if "contacts" in checked.tables and "reason" in checked.tables["contacts"].columns and lever:
        assert lever["reasons"] and (flows.loc[1:, "failure_demand"] > 0).any()
    else:
        assert lever is None and len(skipped["business_case.failure_demand"]) > 40
        assert (flows["failure_demand"] == 0).all()
    # validate lists the same sections as missing
    listed = {s.name: s for s in readiness.sections(checked, params, hist)}
    if non_contractual:
        assert listed[readiness.PURCHASES_SECTION].runs and "Churn and the retention lever" not in listed
    else:
        assert listed["Churn and the retention lever"].runs == ("linkage.churn" not in skipped)
    assert listed["Cost to serve"].runs == ("linkage.cost_to_serve" not in skipped)


def test_no_promoters_leaves_the_move_out_and_says_so(tmp_path):
    shape = next(s for s in SHAPES if s.name == "no promoters")
    analysis = pipeline.analyse(str(_source(shape, tmp_path)), _params(shape))
    assert "business_case.move_passive_to_promoter" in analysis.skipped()
    assert set(analysis.case.moved) == {"detractor->passive"}
    assert "no respondent was in the promoter group" in analysis.skipped()["business_case.move_passive_to_promoter"]


@pytest.fixture(scope="module")
def earlier_report(tmp_path_factory) -> Path:
    """A report that the refused runs below must leave as it is (one run for all of them)."""
    shape = next(s for s in SHAPES if s.name == "as-is csv")
    out = tmp_path_factory.mktemp("earlier") / "out"
    first = cli("run", "--data", str(_source(shape, out.parent)), "--out", str(out), "--set", f"as_of={AS_OF}", *FAST)
    assert first.returncode == 0, first.stderr
    return out


@pytest.mark.parametrize("shape", FATAL, ids=_ids(FATAL))
def test_shape_that_cannot_be_analysed_exits_2_in_run_and_validate(shape, tmp_path, earlier_report):
    src = _source(shape, tmp_path)
    before = _hashes(src)
    out = earlier_report
    kept = (out / "report.html").read_bytes()
    res = cli("run", "--data", str(src), "--out", str(out), "--set", f"as_of={AS_OF}", *_sets(shape))
    assert res.returncode == 2, res.stderr
    assert shape.error in res.stderr and "Traceback" not in res.stderr
    assert (out / "report.html").read_bytes() == kept
    val = cli("validate", "--data", str(src), "--set", f"as_of={AS_OF}", *_sets(shape))
    assert val.returncode == 2 and shape.error in val.stderr
    assert _hashes(src) == before


def _full_run(shape: Shape, tmp_path: Path) -> None:
    src = _source(shape, tmp_path)
    before = _hashes(src)
    out = tmp_path / "out"
    res = cli("run", "--data", str(src), "--out", str(out), "--set", f"as_of={AS_OF}", *FAST, *_sets(shape))
    assert res.returncode == 0, res.stderr[-2000:]
    assert _hashes(src) == before  # inputs never modified
    results = json.loads((out / "results.json").read_text())
    assert set(shape.skipped) <= set(results.get("skipped", {}))
    html = (out / "report.html").read_text()
    for nb in report.notebooks():  # every section is in the report
        assert (out / "notebooks" / nb.name).is_file()
    assert html.count("<h1") >= len(report.notebooks())
    for key in shape.skipped:  # and says, in its own words, what it could not do
        reason = results["skipped"][key]
        assert reason in results["warnings"]
        words = reason.split(":")[-1].strip()[:60]
        assert escape(words) in html.replace("&#39;", "&#x27;")  # as the report escapes it (attr_<name>)
    assert all(k in results for k in ("groups", "linkage", "value", "business_case", "drivers", "data_quality"))


@pytest.mark.parametrize("shape", [s for s in RUNNABLE if s.name in FULL_IN_MAKE_TEST],
                         ids=_ids([s for s in RUNNABLE if s.name in FULL_IN_MAKE_TEST]))
def test_full_report_one_shape_per_family(shape, tmp_path):
    _full_run(shape, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [s for s in RUNNABLE if s.name not in FULL_IN_MAKE_TEST],
                         ids=_ids([s for s in RUNNABLE if s.name not in FULL_IN_MAKE_TEST]))
def test_full_report_every_other_shape(shape, tmp_path):
    _full_run(shape, tmp_path)
