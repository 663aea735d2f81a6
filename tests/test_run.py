"""End to end: the CLI, the notebooks under papermill, and the output folder contract."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from cxvalue import report

AS_OF = ["--set", "as_of=2025-12-31"]
#: a plain goal and a goal with a date
GOALS = ["--set", "targets.nps={value: 20, by: 2026-12-31}", "--set", "targets.retention_12m=0.9"]
#: the scenario's failure-demand lever on two of the world's contact reasons
LEVER = ["--set", "scenario.failure_demand_reasons=billing, technical"]


def cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "cxvalue.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def first_run(small_world_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "report"
    res = cli("run", "--data", str(small_world_dir), "--out", str(out), "--runs-dir", str(out.with_name("kept")),
              *GOALS, *LEVER, *AS_OF)
    assert res.returncode == 0, res.stderr
    return out


def test_output_folder_is_complete(first_run):
    assert {p.name for p in first_run.iterdir()} == {"results.json", "report.html", "manifest.json", "notebooks",
                                                     "business_case.xlsx"}
    nbs = sorted(p.name for p in (first_run / "notebooks").glob("*.ipynb"))
    assert nbs == [p.name for p in report.notebooks()]
    executed = nbformat.read(first_run / "notebooks" / nbs[0], as_version=4)
    assert executed.metadata["papermill"]["parameters"]["as_of"] == "2025-12-31"  # parameters recorded
    manifest = json.loads((first_run / "manifest.json").read_text())
    assert manifest["parameters"]["as_of"] == "2025-12-31"
    assert manifest["inputs"]["transactions"]["rows"] > 0
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["inputs"]["customers"]["sha256"])
    assert {"pandas", "duckdb", "ibis-framework", "statsmodels"} <= set(manifest["packages"])


def test_results_json_has_the_contract_keys(first_run):
    r = json.loads((first_run / "results.json").read_text())
    assert r["schema_version"] == 1
    assert r["groups"] == ["detractor", "passive", "promoter"]
    assert r["reference_group"] == "passive"
    assert sum(r["n_customers"].values()) > 500 and min(r["n_customers"].values()) > 50
    for g in r["groups"]:
        assert r["linkage"]["revenue"][g]["observed"] > 0
        assert 0 < r["linkage"]["churn"][g]["observed_rate_12m"] < 1
        assert r["linkage"]["cost_to_serve"][g]["observed"] > 0
        for block in ("revenue", "cost_to_serve"):
            entry = r["linkage"][block][g]
            assert entry["adjusted"] > 0
            if g != r["reference_group"]:  # a real interval around the ratio, not a point (the reference's is)
                lo, hi = entry["ratio_ci"]
                assert 0 < lo < entry["ratio"] < hi
        if g != r["reference_group"]:
            lo, hi = r["linkage"]["churn"][g]["hazard_ratio_ci"]
            assert 0 < lo < r["linkage"]["churn"][g]["hazard_ratio"] < hi
    # the small world's true effects (cxvalue.synthetic.TRUE_EFFECTS): the direction of each gap is read right
    lk = r["linkage"]
    assert lk["revenue"]["detractor"]["ratio"] < 1 < lk["revenue"]["promoter"]["ratio"]
    assert lk["churn"]["detractor"]["hazard_ratio"] > 1 and lk["cost_to_serve"]["detractor"]["ratio"] > 1
    assert set(r["value"]["clv"]) == set(r["groups"])
    assert r["value"]["clv"]["promoter"] > r["value"]["clv"]["detractor"]
    bc = r["business_case"]
    for key in ("npv", "roi", "payback_months", "npv_p10", "npv_p50", "npv_p90", "p_npv_positive", "cash_flows"):
        assert key in bc, key
    assert bc["npv_p10"] <= bc["npv_p50"] <= bc["npv_p90"] and 0 <= bc["p_npv_positive"] <= 1
    assert [f["year"] for f in bc["cash_flows"]] == list(range(0, 6))  # year 0: the one-off cost
    assert all(f["net"] == pytest.approx(f["benefit"] - f["cost"]) for f in bc["cash_flows"])
    rate = bc["assumptions"]["discount_rate"]
    assert sum(f["net"] / (1 + rate) ** f["year"] for f in bc["cash_flows"]) == pytest.approx(bc["npv"])
    manifest = json.loads((first_run / "manifest.json").read_text())
    assert manifest["used"] == bc["assumptions"]  # the values used, the measured margin included
    assert bc["assumptions"]["margin_source"] == "transaction cost"
    assert bc["assumptions"]["gross_margin"] != manifest["parameters"]["gross_margin"]
    assert r["linkage"]["revenue"]["passive"]["ratio"] == 1.0
    placebo = r["placebo"]  # the comparison a year before the survey: the small world's effects start at it
    assert placebo["skipped"] is None and placebo["shift_months"] == 12
    assert set(placebo["revenue"]) == {"detractor", "promoter"} and placebo["passed"] is not None
    assert r["linkage"]["churn"]["passive"]["hazard_ratio"] == 1.0
    dq = r["data_quality"]
    assert set(dq) == {"customers", "responses", "transactions", "contacts", "maturity"}
    assert dq["responses"]["excluded"]["nps outside 0-10 or not a whole number"] == 12
    assert dq["transactions"]["rows_read"] - dq["transactions"]["rows_used"] == 15
    assert isinstance(r["warnings"], list)
    kpis = r["kpis"]
    assert set(kpis) == {"nps", "csat", "ces", "retention_12m", "revenue_per_customer", "cost_to_serve_per_customer"}
    assert kpis["nps"]["target"] == 20 and kpis["nps"]["status"] in ("behind target", "within the noise", "on target")
    assert kpis["nps"]["margin_of_error"] > 0 and -100 <= kpis["nps"]["actual"] <= 100
    assert kpis["retention_12m"]["value_of_gap"] is not None or kpis["retention_12m"]["status"] == "on target"
    assert r["headline"]["value_at_stake_per_year"] > 0
    d = r["drivers"]
    assert sum(d["importance"].values()) == pytest.approx(1.0)
    assert set(d["value_per_point"]) == set(d["importance"]) and max(d["importance"], key=d["importance"].get) == "attr_product"
    assert all(v > 0 for v in d["value_per_point"].values())
    assert {"journeys_vs_touchpoints", "closing_the_loop", "transitions", "who_answered"} <= set(d)
    # the programme around the money: goals with dates, failure demand, maturity (issue 14)
    goal = r["goals"]["nps"]
    assert r["goals"]["skipped"] is None and goal["value"] == 20 and goal["by"] == "2026-12-31"
    assert goal["from"] == "2025-01-01" and goal["start_source"] == "measured" and goal["milestones"]
    assert "retention_12m" not in r["goals"]  # a plain goal has no path
    fd = r["failure_demand"]
    assert fd["skipped"] is None and set(fd["reasons"]) >= {"billing", "technical"} and fd["ranking"]
    assert sum(v["cost_per_year"] for v in fd["reasons"].values()) > 0
    lever = bc["assumptions"]["failure_demand"]  # the scenario's failure-demand lever, priced from the same analysis
    assert lever["reasons"] == ["billing", "technical"]
    assert lever["value_per_year"] == pytest.approx(sum(fd["reasons"][x]["value_per_year"] for x in lever["reasons"]))
    assert [f["failure_demand"] for f in bc["cash_flows"]] == pytest.approx(
        [0.0] + [lever["value_per_year"] * a for a in lever["achieved_by_year"]])
    mat = r["maturity"]
    assert mat["skipped"] is None and 1 <= mat["overall_level"] <= 5 and len(mat["elements"]) == 9
    assert mat["change"]["overall"] is not None and mat["unit"] == "team"
    assert r["data_quality"]["maturity"]["rows_used"] == 180


def test_report_is_offline_and_free_of_identifiers(first_run):
    html = (first_run / "report.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*[\"']?(https?:)?//", html, re.I)
    assert "ZQX" not in html  # every customer id in this world starts with ZQX
    assert "vegaEmbed" in html and html.count("<svg") >= 1  # at least one chart
    assert "from cxvalue import" not in html  # no code cells
    assert "per customer per year" in html
    # one title; the waterfall once (page one points to it); no stray header rows; meanings in full
    assert html.count("What customer experience is worth") == 2  # <title> and the page's one heading
    assert html.count("Where the value comes from (present value over the horizon)") == 1 and 'href="#section-3"' in html
    assert all(head.count("<tr") == 1 for head in re.findall(r"<thead>(.*?)</thead>", html, re.S))
    assert "..." not in re.sub(r"<script.*?</script>", "", html, flags=re.S)
    # the failure-demand lever in words, in the cash flows and in the waterfall
    assert "together with removing 25% of the contacts about billing and technical" in html
    assert "Less failure demand" in html and "includes removing 25% of the contacts about billing and technical" in html
    import zipfile

    with zipfile.ZipFile(first_run / "business_case.xlsx") as book:
        assert not any(b"ZQX" in book.read(name) for name in book.namelist())


def test_rerun_gives_byte_identical_results_and_the_trend_shows_both_runs(first_run, small_world_dir):
    """Run again into the same runs folder, this time with relative paths from the data's parent folder."""
    import yaml

    before = (first_run / "results.json").read_bytes()
    assert "the trend starts with the next run" in (first_run / "report.html").read_text()
    kept = first_run.with_name("kept")
    # reproducible from its records: the manifest's parameters as the config file, nothing else
    config_file = first_run.with_name("from-manifest.yaml")
    config_file.write_text(yaml.safe_dump(json.loads((first_run / "manifest.json").read_text())["parameters"]))
    res = cli("run", "--data", small_world_dir.name, "--out", str(first_run), "--runs-dir", str(kept),
              "--config", str(config_file), cwd=small_world_dir.parent)
    assert res.returncode == 0, res.stderr
    assert (first_run / "results.json").read_bytes() == before
    runs = sorted(p for p in kept.iterdir() if not p.name.startswith("."))
    assert len(runs) == 2 and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d{6}Z", p.name) for p in runs)
    assert (runs[1] / "results.json").read_bytes() == before  # --out holds a copy of the latest run
    html = (first_run / "report.html").read_text()
    assert "KPIs across runs" in html and "(data to 2025-12-31)" in html and "this run" in html
    assert "no clear change" in html  # same data: the survey KPIs did not move beyond their noise
    assert "Since the last run the overall level has not changed." in html  # maturity, run to run
    assert "Path to each goal" in html  # the goal's chart, both runs read against the path

    res = cli("compare", str(runs[0]), str(runs[1]))
    assert res.returncode == 0, res.stderr
    assert "NPV" in res.stdout and "Retention over 12 months" in res.stdout and "within the intervals" in res.stdout
    assert " up" not in res.stdout and " down" not in res.stdout  # nothing moved
    res = cli("compare", str(runs[0]), str(kept / "nope"))
    assert res.returncode == 2 and "not a cxvalue run folder" in res.stderr


def test_bad_input_exits_2_and_keeps_the_earlier_report(first_run, small_world_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(small_world_dir, bad)
    (bad / "transactions.parquet").unlink()
    before = (first_run / "report.html").read_bytes()
    res = cli("run", "--data", str(bad), "--out", str(first_run), *AS_OF)
    assert res.returncode == 2
    assert "transactions" in res.stderr and "not found" in res.stderr
    assert (first_run / "report.html").read_bytes() == before

    res = cli("run", "--data", str(small_world_dir), "--out", str(first_run), "--set", "window_months=0")
    assert res.returncode == 2 and "window_months" in res.stderr
    assert (first_run / "report.html").read_bytes() == before

    res = cli("run", "--data", str(small_world_dir), "--out", str(first_run), *AS_OF,
              "--set", "scenario.target_score=-95")  # the base's net score is already above it
    assert res.returncode == 2 and "scenario.target_score" in res.stderr and "already" in res.stderr
    assert (first_run / "report.html").read_bytes() == before


def test_failing_notebook_exits_1_names_the_cell_and_keeps_the_earlier_report(first_run, small_world_dir, tmp_path):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    cheap = [nb for nb in report.notebooks() if "histories" in nb.name]  # one real notebook runs before the failure
    for nb in cheap:
        shutil.copy(nb, nb_dir / nb.name)
    broken = nbformat.v4.new_notebook()
    broken.cells = [nbformat.v4.new_code_cell("data = 'demo'\nresults_dir = ''"), nbformat.v4.new_code_cell("1 / 0")]
    broken.cells[0].metadata["tags"] = ["parameters"]
    broken.metadata["kernelspec"] = {"name": "cxvalue", "display_name": "cxvalue", "language": "python"}
    nbformat.write(broken, nb_dir / "99-broken.ipynb")
    before = (first_run / "report.html").read_bytes()
    res = cli("run", "--data", str(small_world_dir), "--out", str(first_run), *AS_OF,
              env={"CXVALUE_NOTEBOOKS": str(nb_dir)})
    assert res.returncode == 1
    assert "99-broken.ipynb" in res.stderr and "`1 / 0`" in res.stderr and "ZeroDivisionError" in res.stderr
    assert "report.failed" in res.stderr
    assert (first_run / "report.html").read_bytes() == before
    partial = first_run.with_name(first_run.name + ".failed") / "notebooks" / "99-broken.ipynb"
    assert partial.is_file()


def test_refuses_to_replace_a_folder_that_is_not_a_run(small_world_dir, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.docx").write_text("keep me")
    res = cli("run", "--data", str(small_world_dir), "--out", str(precious), *AS_OF)
    assert res.returncode == 2 and "refusing" in res.stderr
    assert (precious / "thesis.docx").read_text() == "keep me"


def test_validate_prints_the_quality_table(small_world_dir):
    res = cli("validate", "--data", str(small_world_dir), *AS_OF)
    assert res.returncode == 0, res.stderr
    assert "nps outside 0-10 or not a whole number" in res.stdout and "rows used" in res.stdout
    res = cli("validate", "--data", str(small_world_dir), "--set", "metric=xyz")
    assert res.returncode == 2 and "metric" in res.stderr


def test_synth_writes_a_world(tmp_path):
    res = cli("synth", "--customers", "300", "--seed", "3", "--out", str(tmp_path / "w"), "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert {p.name for p in (tmp_path / "w").iterdir()} == {
        "customers.csv", "responses.csv", "transactions.csv", "contacts.csv", "truth.json"}


@pytest.mark.parametrize("notebook", report.notebooks(), ids=lambda p: p.name)
def test_each_notebook_runs_on_its_own_with_its_defaults(notebook, tmp_path):
    """`papermill NB OUT` with no parameters runs on the demo world."""
    out = tmp_path / notebook.name
    pm.execute_notebook(str(notebook), str(out), kernel_name=report.ensure_kernel(), progress_bar=False,
                        cwd=str(tmp_path), kernel_manager_class="cxvalue.report.IPCKernelManager")
    executed = nbformat.read(out, as_version=4)
    assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))


def test_notebooks_are_committed_clean_and_thin():
    for nb_path in report.notebooks():
        nb = nbformat.read(nb_path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, nb_path.name
        for c in nb.cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None, f"{nb_path.name} has outputs"
                assert not re.search(r"^\s*(def|class) |lambda\b", c.source, re.M), f"{nb_path.name} defines functions"


FAULTS_OF_A_SECOND_ARRAY = """
import resource, sys
if sys.argv[1] == "cli":
    import cxvalue.cli
import os
import numpy as np
a = np.ones(100_000_000 // 8)
del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(100_000_000 // 8)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, os.environ["NUMPY_MADVISE_HUGEPAGE"])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator and Linux's page counts")
def test_the_cli_keeps_freed_memory_for_the_next_array_and_hands_its_settings_to_the_processes_it_starts():
    """A freed 100 MB array is used again by the next one (no page asked of the kernel again);
    without the CLI's settings each of its 24,000 pages is asked for and zeroed again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "NUMPY_MADVISE"))}

    def second_array_faults(mode, **extra):
        out = subprocess.run([sys.executable, "-c", FAULTS_OF_A_SECOND_ARRAY, mode], env={**env, **extra},
                             capture_output=True, text=True, check=True).stdout.split()
        return int(out[0]), out[1]

    assert second_array_faults("cli")[0] < 100
    assert second_array_faults("cli")[1] == "0"  # numpy's huge pages off in what the run starts
    assert second_array_faults("cli", NUMPY_MADVISE_HUGEPAGE="1")[1] == "1"  # the user's choice kept
    assert second_array_faults("plain", NUMPY_MADVISE_HUGEPAGE="0")[0] > 20_000
