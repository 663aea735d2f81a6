"""Failure demand as a lever of the business case: the yearly value of removing a share of the
chosen reasons, put in place by the scenario's ramp and lag, added to the cash flows, the NPV and
its simulation; reasons the data cannot support are left out in words and the rest stands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxvalue import business_case as bc
from cxvalue import config, data, history, linkage, narrative, pipeline
from cxvalue.synthetic import FAILURE_REASONS, generate


def test_achieved_by_year_by_hand():
    # half the removal is made at the start of year 1, the rest at the start of year 2; with a
    # one-year lag each part pays a year later
    assert bc.achieved_by_year([0.5, 1.0], 0, 4).tolist() == [0.5, 1.0, 1.0, 1.0]
    assert bc.achieved_by_year([0.5, 1.0], 1, 4).tolist() == [0.0, 0.5, 1.0, 1.0]
    assert bc.achieved_by_year([1 / 3, 2 / 3, 1.0], 2, 4) == pytest.approx([0, 0, 1 / 3, 2 / 3])
    assert bc.achieved_by_year([1.0], 5, 3).tolist() == [0.0, 0.0, 0.0]  # the lag outlasts the horizon


@pytest.fixture(scope="module")
def fitted():
    """A small world seeded with failure demand; its models, case and params (ramp 2 years, lag 0)."""
    world = generate(n_customers=3_000, seed=21, failure_reasons=FAILURE_REASONS)
    p = config.load_params({"as_of": world.truth["as_of"], "scenario.one_off_cost": 20_000,
                            "scenario.yearly_cost": 5_000, "scenario.draws": 400})
    checked = data.check(world.tables, p)
    h = history.history(checked, p)
    cov = list(checked.covariates)
    rev, cost, churn = (m("passive", cov).fit(h) for m in (linkage.RevenueModel, linkage.CostToServeModel,
                                                            linkage.ChurnModel))
    base = history.active_customers_by_group(checked, h)
    case = bc.evaluate(rev, cost, churn, churn.km_curves(h), base, p, history=h)
    return {"world": world, "params": p, "checked": checked, "history": h, "cov": cov, "base": base, "case": case}


def test_a_yearly_lever_adds_its_present_value_by_hand(fitted):
    case, p = fitted["case"], fitted["params"]
    d = p["discount_rate"]
    with_lever = bc.add_yearly_lever(case, "failure_demand", 10_000.0, np.full(100, 10_000.0), p,
                                     {"reasons": ["x"]}, label="Lever", cost_saved_per_year=4_000.0)
    flows = with_lever.cash_flows
    # ramp over 2 years, no lag: half the value in year 1, all of it from year 2
    assert flows.loc[:, "failure_demand"].to_list() == pytest.approx([0, 5_000, 10_000, 10_000, 10_000, 10_000])
    pv = 5_000 / (1 + d) + sum(10_000 / (1 + d) ** t for t in range(2, 6))
    assert with_lever.npv == pytest.approx(case.npv + pv)
    assert ((flows["net"] / (1 + d) ** flows.index.to_numpy()).sum()) == pytest.approx(with_lever.npv)
    assert (flows["benefit"] == flows[list(bc.LEVERS)].sum(axis=1)).all()
    assert (flows["net"] == flows["benefit"] - flows["cost"]).all()
    # a lever known for sure moves every simulated NPV by its present value
    assert with_lever.npv_draws - case.npv_draws == pytest.approx(np.full(len(case.npv_draws), pv))
    assert with_lever.uncertainty["npv_p50"] == pytest.approx(case.uncertainty["npv_p50"] + pv)
    # the tornado's base moves with it, and the lever has its own row, half to 1.5 times its value
    sens = with_lever.sensitivity.set_index("assumption")
    old = case.sensitivity.set_index("assumption")
    assert sens.loc["Gross margin", "npv_low"] == pytest.approx(old.loc["Gross margin", "npv_low"] + pv)
    assert sens.loc["Lever", ["npv_low", "npv_high"]].to_list() == pytest.approx(
        [with_lever.npv - pv / 2, with_lever.npv + pv / 2])
    # its cost saved lowers the base's cost to serve in the context year (3: fully in place)
    groups = case.inputs["groups"]
    base_cost = float((groups["customers"] * groups["cost_to_serve"]).sum())
    assert with_lever.context["cost_to_serve_change"] == pytest.approx(case.context["cost_to_serve_change"] - 4_000 / base_cost)
    r = with_lever.results()["business_case"]
    assert [row["failure_demand"] for row in r["cash_flows"]] == pytest.approx([0, 5_000, 10_000, 10_000, 10_000, 10_000])
    assert r["assumptions"]["failure_demand"]["value_per_year"] == 10_000.0
    assert r["assumptions"]["failure_demand"]["achieved_by_year"] == [0.5, 1.0, 1.0, 1.0, 1.0]
    # an uncertain lever widens the simulated NPVs, around the same centre
    spread = bc.add_yearly_lever(case, "failure_demand", 10_000.0,
                                 np.random.default_rng(0).normal(10_000, 5_000, 2_000), p)
    # drawn independently of the moves' effects: the variances add
    expected_sd = np.sqrt(np.var(case.npv_draws) + (5_000 * pv / 10_000) ** 2)
    assert np.std(spread.npv_draws) == pytest.approx(expected_sd, rel=0.1)
    assert spread.uncertainty["npv_p50"] == pytest.approx(case.uncertainty["npv_p50"] + pv, abs=0.1 * pv)


def test_the_lever_prices_the_chosen_reasons(fitted):
    f, p = fitted, fitted["params"]
    chosen = {**p, "scenario": {**p["scenario"], "failure_demand_reasons": "billing_error,service_outage,nope"}}
    case, fd = pipeline.failure_demand_lever(f["checked"], f["history"], chosen, f["cov"], f["case"], f["base"])
    lever = case.inputs["failure_demand"]
    assert lever["reasons"] == ["billing_error", "service_outage"]
    value = fd.summary.loc[["billing_error", "service_outage"], "value_per_year"].sum()
    assert lever["value_per_year"] == pytest.approx(value)
    # the value is the cost saved plus the customers kept at the base's mean margin
    saved = 0.25 * fd.summary.loc[["billing_error", "service_outage"], "cost_per_year"].sum()
    assert lever["cost_saved_per_year"] == pytest.approx(saved)
    assert lever["value_per_year"] == pytest.approx(saved + lever["retention_value_per_year"])
    assert lever["retention_value_per_year"] > 0  # the seeded reasons drive churn
    assert case.cash_flows.loc[5, "failure_demand"] == pytest.approx(value)
    assert "nope" in case.left_out["failure demand: nope"] and "billing_error" in case.left_out["failure demand: nope"]
    sentences = narrative.business_case_sentences(case, "USD", 5, p["discount_rate"])
    assert "together with removing 25% of the contacts about billing error and service outage" in sentences[0]
    assert "includes removing 25%" in narrative.failure_demand_sentences(fd, "USD", lever)[-1]
    # "top": the valued (costliest) reasons
    top = {**p, "scenario": {**p["scenario"], "failure_demand_reasons": "top"}}
    case_top, fd_top = pipeline.failure_demand_lever(f["checked"], f["history"], top, f["cov"], f["case"], f["base"],
                                                     fitted=fd)
    assert fd_top is fd and case_top.inputs["failure_demand"]["reasons"] == list(fd.top_)
    assert case_top.npv > case.npv > f["case"].npv


def test_without_reasons_the_lever_is_left_out_and_the_case_stands(fitted):
    f, p = fitted, fitted["params"]
    tables = {k: v.drop(columns="reason") if k == "contacts" else v for k, v in f["world"].tables.items()}
    checked = data.check(tables, p)
    top = {**p, "scenario": {**p["scenario"], "failure_demand_reasons": "top"}}
    case, fd = pipeline.failure_demand_lever(checked, f["history"], top, f["cov"], f["case"], f["base"])
    assert fd.skipped_ and "reason" in case.left_out["failure_demand"]
    assert case.npv == f["case"].npv and "failure_demand" not in case.inputs
    assert (case.cash_flows["failure_demand"] == 0).all()
