"""One analysis per run: the stored analysis answers as the live one, and only for its own inputs;
the public entry point; progress lines."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pandas as pd
import pytest

import cxvalue
from cxvalue import config, pipeline, store
from cxvalue.progress import Reporter
from cxvalue.results import dumps

AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def live(small_world_dir):
    """The public entry point on the small world, every part computed."""
    return cxvalue.analyse(small_world_dir, as_of=AS_OF, scenario__draws=500).compute_all()


@pytest.fixture(scope="module")
def saved(live, small_world_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("analysis")
    params = config.load_params(overrides={"as_of": AS_OF, "scenario.draws": 500})
    key = store.run_key(params, str(small_world_dir), live.checked.source.files, live.checked.source.file_hashes(), [])
    store.save(live, folder, key)
    return folder, params, key


def _equal(a, b):
    if isinstance(a, pd.DataFrame):
        # Parquet keeps a category column's categories and order, not the categories index's name
        pd.testing.assert_frame_equal(a, b, check_dtype=False, check_index_type=False, check_column_type=False,
                                      check_categorical=False)
        for col in a.columns[[isinstance(t, pd.CategoricalDtype) for t in a.dtypes]]:
            assert list(a[col].cat.categories) == list(b[col].cat.categories) and a[col].cat.ordered == b[col].cat.ordered
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_dtype=False, check_index_type=False, check_categorical=False)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert dumps(a) == dumps(b)


def test_public_entry_point_takes_parameters_by_name(live, small_world_dir):
    assert isinstance(live, cxvalue.Analysis)
    assert live.params["scenario"]["draws"] == 500 and live.checked.as_of.isoformat() == AS_OF
    nested = cxvalue.analyse(small_world_dir, as_of=AS_OF, scenario={"draws": 200, "detractor_to_passive": 0.3},
                             margin_source="parameter", gross_margin=0.5)
    assert nested.params["scenario"]["draws"] == 200 and nested.params["scenario"]["detractor_to_passive"] == 0.3
    assert nested.params["gross_margin"] == 0.5
    with pytest.raises(cxvalue.InputError):
        cxvalue.analyse(small_world_dir, window_months=0)


def test_parts_show_themselves_in_jupyter(live):
    page = live._repr_html_()
    assert "cxvalue analysis" in page and "NPV" in page and "ZQX" not in page
    for part, title in (("revenue", "RevenueModel"), ("churn", "ChurnModel"), ("case", "Business case"),
                        ("scorecard", "KPI scorecard"), ("goal_paths", "Goals with a date"),
                        ("maturity", "CX maturity"), ("key_drivers", "Key drivers"),
                        ("journeys", "Journeys vs touchpoints"), ("closing_the_loop", "Closing the loop"),
                        ("transitions", "Movement between groups"), ("who_answered", "Who answered")):
        shown = getattr(live, part)._repr_html_()
        assert title in shown and ("<table" in shown or "Skipped" in shown), part
        assert "ZQX" not in shown


def test_stored_analysis_answers_as_the_live_one(live, saved, small_world_dir):
    folder, params, _ = saved
    back = store.load(folder, params, str(small_world_dir), [])
    assert isinstance(back, store.StoredAnalysis)
    for name in store.FRAMES + store.VALUES:
        _equal(getattr(live, name), getattr(back, name))
    assert dumps(back.skipped()) == dumps(live.skipped()) and back.warnings() == live.warnings()
    assert back.cost_to_serve_per_customer_year() == live.cost_to_serve_per_customer_year()
    for kind, (attrs, calls) in store.PARTS.items():
        obj = live.checked if kind == "checked" else getattr(live, kind)
        rec = getattr(back, kind)
        if obj is None:
            assert rec is None
            continue
        for attr in attrs:
            if kind == "checked" or attr == "inputs_shown" or not hasattr(obj, attr):
                continue
            _equal(getattr(obj, attr), getattr(rec, attr))
        for call in calls:
            _equal(getattr(obj, call)(), getattr(rec, call)())
    # what results.json gets from each part is the same bytes
    assert dumps(back.key_drivers.results()) == dumps(live.key_drivers.results(live.value_per_year, live.customers))
    assert back.checked.as_of == live.checked.as_of and set(back.checked.tables) == set(live.checked.tables)
    assert back.case.inputs["margin_source"] == live.case.inputs["margin_source"]
    assert back.referred.attrs == live.referred.attrs


def test_stored_analysis_is_used_only_for_its_own_inputs(saved, small_world_dir, tmp_path):
    folder, params, key = saved
    data = str(small_world_dir)
    assert store.load(folder, params, data, []) is not None
    other = config.load_params(overrides={"as_of": AS_OF, "scenario.draws": 500, "gross_margin": 0.4})
    assert store.load(folder, other, data, []) is None  # a parameter differs
    # a notebook compares only what it declares: gross_margin undeclared -> the run's analysis serves
    assert store.load(folder, other, data, [], declared=["as_of", "metric"]) is not None
    assert store.load(folder, other, data, [], declared=["as_of", "gross_margin"]) is None
    assert store.load(folder, params, data + "/", []) is None  # another source
    assert store.load(folder, params, data, [{"run": {"label": "earlier"}}]) is None  # other earlier runs
    assert store.load(tmp_path, params, data, []) is None  # nothing stored
    # an input file changed since
    victim = next(iter(key["files"].values()))[0]
    st = os.stat(victim)
    try:
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert store.load(folder, params, data, []) is None
    finally:
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert len(key["key"]) == 64 and key["file_hashes"] == dict(sorted(key["file_hashes"].items()))


def test_notebook_entry_point_loads_the_run_analysis(saved, small_world_dir):
    folder, params, _ = saved
    namespace = {**config.to_notebook(params), "data": str(small_world_dir), "analysis_dir": str(folder), "runs_dir": ""}
    assert isinstance(pipeline.for_notebook(namespace), store.StoredAnalysis)
    del namespace["scenario__draws"]  # not declared: the default (10,000) is not compared
    assert isinstance(pipeline.for_notebook(namespace), store.StoredAnalysis)


def test_a_notebook_without_runs_dir_takes_the_analysis_of_a_run_with_earlier_runs(live, small_world_dir, tmp_path):
    """Papermill hands a notebook only the parameters it declares, and only the summary declares
    ``runs_dir``: the others cannot know the earlier runs, and must not compute the analysis again
    because the run had some (they did, whenever the runs folder held a run)."""
    params = config.load_params(overrides={"as_of": AS_OF, "scenario.draws": 500})
    earlier = [{"run": {"label": "2026-01-05 07:00 (data to 2025-12-31)"}}]
    key = store.run_key(params, str(small_world_dir), live.checked.source.files, live.checked.source.file_hashes(),
                        earlier)
    store.save(live, tmp_path, key)
    data = str(small_world_dir)
    assert store.load(tmp_path, params, data, earlier) is not None
    assert store.load(tmp_path, params, data, []) is None  # a caller who knows of no earlier run
    assert store.load(tmp_path, params, data, None) is not None  # a caller who does not know
    namespace = {**config.to_notebook(params), "data": data, "analysis_dir": str(tmp_path)}
    assert "runs_dir" not in namespace
    assert isinstance(pipeline.for_notebook(namespace), store.StoredAnalysis)
    assert isinstance(pipeline.load_or_analyse(data, params, str(tmp_path), None), store.StoredAnalysis)


def test_typed_json_round_trip():
    import datetime as dt

    value = {"a": (1, 2.5), 3: [np.float64("nan"), np.int64(4), float("inf")], "d": dt.date(2025, 1, 2),
             ("x", "y"): {"t": pd.Timestamp("2025-01-02 03:04")}, "arr": np.arange(3.0), "none": None}
    back = store.decode(store.encode(value))
    assert back["a"] == (1, 2.5) and back[3][1] == 4 and np.isnan(back[3][0]) and back[3][2] == float("inf")
    assert back["d"] == dt.date(2025, 1, 2) and back[("x", "y")]["t"] == pd.Timestamp("2025-01-02 03:04")
    np.testing.assert_array_equal(back["arr"], np.arange(3.0))
    with pytest.raises(TypeError):
        store.encode(object())


def test_progress_plain_lines_without_a_terminal_and_a_bar_on_one():
    plain = io.StringIO()
    say = Reporter(plain, tty=False)
    say("customer history", None)
    say("customer history", 2.345)
    say.close()
    lines = plain.getvalue().splitlines()
    assert lines[0] == "[0:00] customer history ..." and len(lines) == 2
    assert re.fullmatch(r"\[0:00\] customer history: done in 2\.3 s \(peak memory so far \d+\.\d GB\)", lines[1])
    assert "\x1b" not in plain.getvalue() and "\r" not in plain.getvalue()

    term = io.StringIO()
    bar = Reporter(term, total=4, tty=True)
    bar("notebook 01-summary.ipynb", None)
    bar("notebook 01-summary.ipynb", 1.0)
    bar.close()
    assert "\r" in term.getvalue() and "[######------------------] 1/4" in term.getvalue()
    assert "notebook 01-summary.ipynb: 1.0 s" in term.getvalue()


def test_same_data_in_another_row_order_gives_the_same_answers(small_world_dir, tmp_path):
    """DuckDB's parallel scans keep no row order: key drivers' bootstrap, the first complaint and the
    scorecard's latest answer must not depend on it (same-day complaints and answers included)."""
    import shutil

    from cxvalue import data as cxdata
    from cxvalue.closing_the_loop import complaint_history
    from cxvalue.drivers import KeyDrivers
    from cxvalue.history import history
    from cxvalue.scorecard import Scorecard

    shuffled = tmp_path / "shuffled"
    shutil.copytree(small_world_dir, shuffled)
    contacts = pd.read_parquet(shuffled / "contacts.parquet")
    complaints_only = contacts[contacts["is_complaint"].fillna(False).astype(bool)].dropna(subset=["date"])
    complaint = complaints_only.sort_values("date").groupby("customer_id").head(1).iloc[-1]  # a customer's first
    twin = complaint.copy()  # the same customer complains twice that day; only one is resolved
    complaint = complaint.copy()
    complaint["resolved"], complaint["resolved_date"] = True, complaint["date"]
    twin["resolved"], twin["resolved_date"] = False, pd.NaT
    contacts = pd.concat([contacts, complaint.to_frame().T, twin.to_frame().T], ignore_index=True)
    contacts = contacts.astype({c: t for c, t in pd.read_parquet(small_world_dir / "contacts.parquet").dtypes.items()})
    responses = pd.read_parquet(shuffled / "responses.parquet")
    for name, frame, seed in (("contacts", contacts, 1), ("responses", responses, 2)):
        frame.sample(frac=1.0, random_state=seed).to_parquet(shuffled / f"{name}.parquet")
    in_order = tmp_path / "in-order"
    shutil.copytree(small_world_dir, in_order)
    contacts.to_parquet(in_order / "contacts.parquet")
    params = config.load_params(overrides={"as_of": AS_OF})
    answers = []
    for folder in (in_order, shuffled):
        checked = cxdata.check(str(folder), params)
        hist = history(checked, params)
        complaints = complaint_history(checked, params, hist).sort_values("customer_id").reset_index(drop=True)
        drivers = KeyDrivers.from_params(params, n_boot=20).fit(checked)
        card = Scorecard(params).fit(checked)
        answers.append((complaints, drivers.summary, card.results()))
    pd.testing.assert_frame_equal(answers[0][0], answers[1][0])
    row = answers[0][0].set_index("customer_id").loc[str(complaint["customer_id"])]
    assert not row["resolved"]  # the complaint left open counts
    pd.testing.assert_frame_equal(answers[0][1], answers[1][1])
    assert dumps(answers[0][2]) == dumps(answers[1][2])


def test_the_second_process_fits_what_this_one_would(live, small_world_dir, monkeypatch):
    """``cxvalue run`` on a large history fits journeys vs touchpoints, key drivers, closing the loop and
    failure demand and the placebo check in a second process started before the core (their inputs need
    only the data and the history; the placebo check's history, when not built with the history, is read
    then), one after the other: the same fitted models as fitted here, closing the loop priced at the core's cost to serve
    and failure demand at the business case's margins. From the start of that process on, DuckDB runs
    each query on one thread. With the scenario's failure-demand lever the core fits failure demand itself."""
    monkeypatch.setattr(pipeline, "SECOND_PROCESS_FROM", 0)  # the small world counts as large
    from cxvalue import data as cxdata
    from cxvalue import history

    params = config.load_params(overrides={"as_of": AS_OF, "scenario.draws": 500})
    lines = []
    say = lambda step, seconds: lines.append((step, seconds))  # noqa: E731
    checked = cxdata.check(small_world_dir, params)
    hist = history.history(checked, params)
    second = pipeline.start_second_process(checked, hist, params, say)
    assert list(second.pending) == list(pipeline.ELSEWHERE) == [
        "journeys", "key_drivers", "closing_the_loop", "failure_demand", "placebo"]
    assert checked.source.con.raw_sql("SELECT current_setting('threads')").fetchone()[0] == 1
    there = pipeline.analyse(small_world_dir, params, checked=checked, hist=hist, progress=say, second=second)
    there.compute_all(second_process=True)
    assert there.second is None  # handed back
    import duckdb

    threads = "SELECT current_setting('threads')"
    assert checked.source.con.raw_sql(threads).fetchone() == duckdb.connect().sql(threads).fetchone()  # all again
    done = [s for s, t in lines if t is not None]
    assert [s for s in done if "second process" in s] == [
        "journeys vs touchpoints (second process)", "key drivers (second process)", "closing the loop (second process)",
        "failure demand (second process)", "placebo check (second process)"]
    assert done.index("key drivers: its data") < done.index("linkage models")  # read before the core
    assert done.index("closing the loop: its data") < done.index("linkage models")
    assert done.index("placebo check: its data") < done.index("linkage models")
    assert there.closing_the_loop.cost_to_serve_per_customer_year == there.cost_to_serve_per_customer_year() > 0
    for part in ("journeys", "closing_the_loop", "failure_demand", "placebo"):
        assert dumps(getattr(there, part).results()) == dumps(getattr(live, part).results()), part
    assert there.placebo.warnings_ == live.placebo.warnings_
    assert dumps(there.closing_the_loop.summary_) == dumps(live.closing_the_loop.summary_)
    pd.testing.assert_frame_equal(there.failure_demand.summary, live.failure_demand.summary)
    assert there.failure_demand.yearly_value_draws().tolist() == live.failure_demand.yearly_value_draws().tolist()
    assert there.failure_demand.mean_margin_ == live.failure_demand.mean_margin_ > 0
    assert dumps(there.key_drivers.results(there.value_per_year, there.customers)) == dumps(
        live.key_drivers.results(live.value_per_year, live.customers))
    pd.testing.assert_frame_equal(there.key_drivers.summary, live.key_drivers.summary)
    lever = config.load_params(overrides={"as_of": AS_OF, "scenario.failure_demand_reasons": "top"})

    class Handed(pipeline.SecondProcess):  # what would be handed over, without a process
        def __init__(self):
            self.pending = {}

        def submit(self, name, args):
            self.pending[name] = args

    monkeypatch.setattr(pipeline, "SecondProcess", Handed)
    assert list(pipeline.start_second_process(checked, hist, lever).pending) == [
        "journeys", "key_drivers", "closing_the_loop", "placebo"]
    # small data, or no second process asked for: none started, everything fitted here
    monkeypatch.setattr(pipeline, "SECOND_PROCESS_FROM", len(hist) + 1)
    assert pipeline.start_second_process(checked, hist, params) is None


def test_the_second_process_starts_once_the_data_is_checked(small_world_dir, monkeypatch):
    """On large data ``cxvalue run`` starts the second process as soon as the data is checked, so that its
    imports overlap the history; the process is the one the parts are handed to, and it is shut down
    when the data cannot be analysed or the history turns out too small for it."""
    from cxvalue import data as cxdata
    from cxvalue import report
    from cxvalue.exceptions import InputError

    params = config.load_params(overrides={"as_of": AS_OF})
    checked = cxdata.check(small_world_dir, params)
    customers = checked.data_quality["customers"]["rows_used"]
    monkeypatch.setattr(pipeline, "SECOND_PROCESS_FROM", customers + 1)  # more customers than the data has
    assert pipeline.warm_second_process(checked) is None
    assert report.check_ready(small_world_dir, params, second_process=True)[2] is None
    monkeypatch.setattr(pipeline, "SECOND_PROCESS_FROM", customers)
    ready, hist, warm = report.check_ready(small_world_dir, params, second_process=True)
    assert isinstance(warm, pipeline.SecondProcess) and len(hist) < customers
    assert report.check_ready(small_world_dir, params)[2] is None  # one core: none
    shut = []
    monkeypatch.setattr(warm, "shutdown", lambda: shut.append(True) or pipeline.SecondProcess.shutdown(warm))
    assert pipeline.start_second_process(ready, hist, params, second=warm) is None and shut == [True]
    monkeypatch.setattr(pipeline, "SECOND_PROCESS_FROM", 0)
    warm = pipeline.warm_second_process(ready)
    handed = pipeline.start_second_process(ready, hist, params, second=warm)
    try:
        assert handed is warm and list(handed.pending) == list(pipeline.ELSEWHERE)
        assert [name for name, _ in handed.results()] == list(pipeline.ELSEWHERE)
    finally:
        handed.shutdown()
        cxdata.one_thread(ready, on=False)
    closed = []
    monkeypatch.setattr(pipeline.SecondProcess, "shutdown", lambda self: closed.append(self))
    too_early = config.load_params(overrides={"as_of": AS_OF, "study_end": "2001-01-01"})
    with pytest.raises(InputError):  # exit 2 after the process started (no survey to start from): shut down
        report.check_ready(small_world_dir, too_early, second_process=True)
    assert len(closed) == 1


@pytest.mark.parametrize("shape", ["no contacts table", "nobody left", "nps only, no contacts, no end_date"])
def test_the_second_process_on_data_shaped_otherwise(shape, monkeypatch):
    """What the second process fits, and what it skips for want of data (no contacts: no complaints and no
    reasons; nobody who left: no churn to link), is what this process would fit and skip."""
    from shapes import checked_history

    monkeypatch.setattr(pipeline, "SECOND_PROCESS_FROM", 0)
    params, checked, hist = checked_history(shape)
    params = {**params, "scenario": {**params["scenario"], "draws": 200}}
    here = pipeline.analyse(checked, params, checked=checked, hist=hist).compute_all()
    if shape == "nobody left":  # the process compute_all starts itself, the inputs read there
        there = pipeline.analyse(checked, params, checked=checked, hist=hist).compute_all(second_process=True)
    else:
        second = pipeline.start_second_process(checked, hist, params)
        there = pipeline.analyse(checked, params, checked=checked, hist=hist, second=second).compute_all()
    for part in ("journeys", "closing_the_loop", "failure_demand", "placebo"):
        assert dumps(getattr(there, part).results()) == dumps(getattr(here, part).results()), part
        assert getattr(there, part).warnings_ == getattr(here, part).warnings_, part
    assert dumps(there.key_drivers.results(there.value_per_year, there.customers)) == dumps(
        here.key_drivers.results(here.value_per_year, here.customers))
    assert there.skipped() == here.skipped()


def test_a_store_of_the_core_grows_part_by_part_and_each_reader_waits_for_its_own(live, small_world_dir, tmp_path,
                                                                                   monkeypatch):
    """The run stores the core first, then each part as it is done, and the notebooks start on the core: a
    part not stored yet waits until a later save stores it (or the run says it failed); the core, with its
    lists of skips and caveats (the linkage models' and the business case's), answers at once; each save
    keeps what the ones before it wrote."""
    import dataclasses

    params = config.load_params(overrides={"as_of": AS_OF, "scenario.draws": 500})
    data = str(small_world_dir)
    key = store.run_key(params, data, live.checked.source.files, live.checked.source.file_hashes(), [])
    core_only = dataclasses.replace(live)  # the same core, no other part computed yet
    assert not {"placebo", "key_drivers", "value_per_point"} & set(core_only.__dict__)
    store.save(core_only, tmp_path, key, complete=False)
    monkeypatch.setattr(store, "WAIT_S", 0.5)
    reader = store.load(tmp_path, params, data, [])
    assert reader.revenue.results() == live.revenue.results() and reader.observed is not None  # no wait
    assert dumps(reader.skipped()) == dumps(live.skipped()) and reader.warnings() == live.warnings()
    for read in (lambda a: a.placebo, lambda a: a.key_drivers, lambda a: a.value_per_point):
        with pytest.raises(TimeoutError):
            read(store.load(tmp_path, params, data, []))
    assert store.waits_for_the_rest("placebo") and store.waits_for_the_rest("value_per_point")
    assert not store.waits_for_the_rest("history") and not store.waits_for_the_rest("case")
    assert not store.waits_for_the_rest("skipped") and not store.waits_for_the_rest("warnings")
    written = (tmp_path / "history.parquet").stat().st_mtime_ns

    core_only.__dict__["placebo"] = live.placebo  # as compute_all leaves it once the placebo check is done
    store.save(core_only, tmp_path, key, complete=False)
    assert dumps(reader.placebo.results()) == dumps(live.placebo.results())  # the same reader, now at once
    with pytest.raises(TimeoutError):
        reader.key_drivers
    store.save(live, tmp_path, key)  # the whole
    assert dumps(reader.key_drivers.results()) == dumps(live.key_drivers.results(live.value_per_year, live.customers))
    _equal(reader.value_per_point, live.value_per_point)
    assert (tmp_path / "history.parquet").stat().st_mtime_ns == written  # the core's frames written once

    store.save(core_only, tmp_path, key, complete=False)
    store.mark_failed(tmp_path, "ValueError: no")
    with pytest.raises(RuntimeError, match="no"):
        store.load(tmp_path, params, data, []).key_drivers


def test_notebooks_that_show_only_the_core_run_first():
    """While the run computes the rest of the analysis, the notebooks that need only the core run (the
    business case, the customer histories; the assumptions read no analysis); the others after them, in
    the order the run stores the parts they wait for: the summary's scorecard, goals and maturity come
    first, then the linkage's placebo check, then the drivers' parts from the second process."""
    from cxvalue import report

    order = [p.name for p in report.run_order(report.notebooks())]
    assert order == ["03-business-case.ipynb", "04-customer-histories.ipynb", "06-assumptions-and-method.ipynb",
                     "01-summary.ipynb", "02-value-linkage.ipynb", "05-drivers.ipynb"]
