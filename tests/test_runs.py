"""Dated runs: finding them, the headline trend, and what moved between two runs."""

from __future__ import annotations

import json

import pytest

from cxvalue import runs
from cxvalue.exceptions import InputError


def _run(folder, started, npv, nps, nps_se, revenue_ratio, ci, retention):
    folder.mkdir(parents=True)
    results = {
        "reference_group": "passive",
        "business_case": {"npv": npv, "npv_p10": npv - 10, "npv_p90": npv + 10, "roi": 0.5, "payback_months": 20.0,
                          "p_npv_positive": 0.9},
        "kpis": {"nps": {"actual": nps, "se": nps_se}, "retention_12m": {"actual": retention, "se": None}},
        "linkage": {"revenue": {"detractor": {"ratio": revenue_ratio, "ratio_ci": ci},
                                "passive": {"ratio": 1.0, "ratio_ci": [1.0, 1.0]}}},
    }
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "manifest.json").write_text(json.dumps({"run_id": folder.name, "started_at": started,
                                                      "as_of": "2025-12-31"}))
    return folder


def test_compare_judges_each_change_against_its_noise(tmp_path):
    a = _run(tmp_path / "2026-01-01T000000Z", "2026-01-01T00:00:00+00:00", 1000.0, 10.0, 2.0, 0.85, [0.80, 0.90], 0.80)
    b = _run(tmp_path / "2026-04-01T000000Z", "2026-04-01T00:00:00+00:00", 1200.0, 13.0, 2.0, 0.70, [0.65, 0.75], 0.80)
    t = runs.compare(a, b).set_index("figure")
    assert t.loc["NPV", "change"] == pytest.approx(200) and t.loc["NPV", "reading"] == "up"
    assert t.loc["NPS", "change"] == pytest.approx(3) and t.loc["NPS", "reading"] == "no clear change"  # 3 < 5.5
    assert t.loc["Retention over 12 months", "reading"] == "no change"
    assert t.loc["Revenue ratio, detractor", "reading"] == "down"  # intervals do not contain each other's estimate
    assert "Revenue ratio, passive" not in t.index  # the reference group is 1 by definition
    c = _run(tmp_path / "2026-07-01T000000Z", "2026-07-01T00:00:00+00:00", 1200.0, 20.0, 2.0, 0.72, [0.66, 0.78], 0.80)
    t2 = runs.compare(b, c).set_index("figure")
    assert t2.loc["NPS", "reading"] == "up"  # 7 > 1.96 * sqrt(8) = 5.5
    assert t2.loc["Revenue ratio, detractor", "reading"] == "within the intervals"


def test_earlier_runs_skip_hidden_failed_and_foreign_folders(tmp_path):
    _run(tmp_path / "2026-04-01T000000Z", "2026-04-01T00:00:00+00:00", 2.0, 1.0, 1.0, 1.0, [1, 1], 0.8)
    _run(tmp_path / "2026-01-01T000000Z", "2026-01-01T00:00:00+00:00", 1.0, 1.0, 1.0, 1.0, [1, 1], 0.8)
    _run(tmp_path / ".2026-05-01T000000Z.abc", "2026-05-01T00:00:00+00:00", 3.0, 1.0, 1.0, 1.0, [1, 1], 0.8)
    _run(tmp_path / "2026-06-01T000000Z.failed", "2026-06-01T00:00:00+00:00", 4.0, 1.0, 1.0, 1.0, [1, 1], 0.8)
    (tmp_path / "notes").mkdir()
    found = runs.earlier_runs(tmp_path)
    assert [r["business_case"]["npv"] for r in found] == [1.0, 2.0]  # oldest first
    trend = runs.headline_trend(found, {"npv": 5.0})
    assert list(trend["npv"]) == [1.0, 2.0, 5.0] and trend["run"].iloc[-1] == "this run"
    assert runs.earlier_runs("") == [] and runs.earlier_runs(tmp_path / "missing") == []
    with pytest.raises(InputError, match="not a cxvalue run folder"):
        runs.load_run(tmp_path / "notes")


def test_compare_reads_the_maturity_change_against_the_teams_spread(tmp_path):
    def with_maturity(folder, started, overall, by_unit):
        f = _run(folder, started, 1.0, 1.0, 1.0, 1.0, [1, 1], 0.8)
        r = json.loads((f / "results.json").read_text())
        r["maturity"] = {"overall_level": overall, "by_unit": by_unit}
        (f / "results.json").write_text(json.dumps(r))
        return f

    a = with_maturity(tmp_path / "a", "2026-01-01T00:00:00+00:00", 2.5, {"sales": 2.0, "service": 3.0, "it": 2.5})
    b = with_maturity(tmp_path / "b", "2026-04-01T00:00:00+00:00", 3.0, {"sales": 2.5, "service": 3.4, "it": 3.1})
    c = with_maturity(tmp_path / "c", "2026-07-01T00:00:00+00:00", 3.1, {"sales": 3.5, "service": 2.4, "it": 3.4})
    t = runs.compare(a, b).set_index("figure")
    # paired changes 0.5, 0.4, 0.6: mean 0.5, half-width 1.96 x 0.1 / sqrt(3) = 0.11: up
    assert t.loc["Overall level (1-5)", "change"] == pytest.approx(0.5) and t.loc["Overall level (1-5)", "reading"] == "up"
    # changes +1.0, -1.0, +0.3: the teams disagree on the direction: no clear change
    assert runs.compare(b, c).set_index("figure").loc["Overall level (1-5)", "reading"] == "no clear change"
    plain = _run(tmp_path / "d", "2026-08-01T00:00:00+00:00", 1.0, 1.0, 1.0, 1.0, [1, 1], 0.8)
    assert runs.compare(c, plain).set_index("figure").loc["Overall level (1-5)", "reading"] == "not comparable"
