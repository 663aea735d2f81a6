"""Closing the loop, movement between groups and who answered: hand-computed answers and
recovery of the synthetic world's known truth."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from cxvalue import data, history, loop
from cxvalue.config import bands_for, load_params
from cxvalue.synthetic import SyntheticWorld, generate

GROUPS = ["detractor", "passive", "promoter"]


def _checked(world):
    p = load_params(overrides={"as_of": world.truth["as_of"]})
    checked = data.check(world.tables, p)
    return p, checked, history.history(checked, p)


def _loop_fit(world, **kw):
    p, checked, h = _checked(world)
    complaints = loop.complaint_history(checked, p, h)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return complaints, loop.ClosingTheLoop(list(checked.covariates), **kw).fit(complaints)


@pytest.fixture(scope="module")
def loop_world():
    world = generate(n_customers=20_000, seed=42, resolution_effect=1.6)
    return (world, *_loop_fit(world))


@pytest.fixture(scope="module")
def biased_world():
    """Answering depends strongly on plan and size (response_bias=4)."""
    world = generate(n_customers=20_000, seed=9, response_bias=4.0)
    p, checked, h = _checked(world)
    return world, p, checked, h


# --------------------------------------------------------------------------- closing the loop


def test_person_periods_split_open_and_resolved_time_by_hand():
    # 0: resolved on day 5, leaves on day 40 (resolved); 1: never resolved, censored at 100;
    # 2: resolved on day 10 but leaves that very day (counts as leaving open); 3: leaves on day 0
    pp = loop.loop_person_periods([40, 100, 10, 0], [5, np.nan, 10, np.nan], [True, False, True, True])
    days = (pp.groupby(["row", "state"])["exposure_years"].sum() * 365.25).round(6)
    assert days.to_dict() == {(0, "open"): 5, (0, "resolved"): 35, (1, "open"): 100, (2, "open"): 10, (3, "open"): 0.5}
    events = pp[pp.event == 1].set_index("row")
    assert events["state"].to_dict() == {0: "resolved", 2: "open", 3: "open"}
    assert events.loc[0, "period"] == "30-91d" and events.loc[3, "period"] == "0-30d"
    assert pp.loc[pp.row == 1, "period"].tolist() == ["0-30d", "30-91d", "91-182d"]


def test_discounted_years_closed_form():
    lam, rate, horizon = 0.2, 0.08, 5.0
    delta = np.log1p(rate)
    log_h = np.full((1, len(loop.LOOP_INTERVALS) - 1), np.log(lam))
    years = loop._discounted_years(log_h, loop.LOOP_INTERVALS, horizon, rate)[0]
    assert years == pytest.approx((1 - np.exp(-(lam + delta) * horizon)) / (lam + delta), rel=1e-12)
    # no hazard, no discounting: the horizon itself
    assert loop._discounted_years(np.full((1, 6), -50.0), loop.LOOP_INTERVALS, 3.0, 0.0)[0] == pytest.approx(3.0)


def test_complaint_history_by_hand():
    """First complaint per customer; a resolution after the customer left is no resolution;
    the satisfaction group counts only when the survey came before the complaint."""
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "start_date": ["2023-01-01"] * 3,
                              "end_date": [None, "2024-03-01", None], "plan": ["x", "y", "x"]})
    contacts = pd.DataFrame({
        "customer_id": ["a", "a", "b", "c", "c"],
        "date": ["2024-02-01", "2024-01-10", "2024-02-20", "2023-06-01", "2024-05-01"],
        "channel": ["phone"] * 5,
        "is_complaint": [True, True, True, False, True],
        "resolved": [True, False, True, None, True],
        "resolved_date": ["2024-02-03", None, "2024-03-10", None, "2024-05-04"],
    })
    responses = pd.DataFrame({"customer_id": ["a", "c"], "response_date": ["2023-12-01", "2024-06-01"], "nps": [3, 10]})
    transactions = pd.DataFrame({"customer_id": ["a", "a", "b", "c"], "amount": [100.0, 100.0, 50.0, 70.0],
                                 "date": ["2023-12-15", "2024-03-15", "2024-01-05", "2024-04-01"]})
    p = load_params(overrides={"as_of": "2024-12-31"})
    checked = data.check({"customers": customers, "contacts": contacts, "responses": responses,
                          "transactions": transactions}, p)
    h = history.history(checked, p)
    ch = loop.complaint_history(checked, p, h).set_index("customer_id")
    assert ch.loc["a", "complaint_date"] == pd.Timestamp("2024-01-10")  # the first one, left open
    assert not ch.loc["a", "resolved"] and pd.isna(ch.loc["a", "resolution_days"])
    assert not ch.loc["b", "resolved"]  # resolved on 10 March, after leaving on 1 March
    assert ch.loc["b", "churned"] and ch.loc["b", "duration_days"] == 10
    assert ch.loc["c", "resolved"] and ch.loc["c", "resolution_days"] == 3
    assert ch.loc["a", "satisfaction_at_complaint"] == "detractor"
    assert ch.loc["c", "satisfaction_at_complaint"] == "(unknown)"  # surveyed a month after
    assert ch.loc["a", "pre_revenue"] == 100.0  # the December invoice, not the March one
    # revenue window: from the landmark (30 days after the complaint) to as_of + 1 day (< 12 months)
    assert ch.loc["a", "post_exposure_years"] * 365.25 == pytest.approx(20 + 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30 + 31 + 1)
    assert ch.loc["a", "post_revenue"] == 100.0  # the March invoice


def test_recovers_the_resolution_hazard_ratio(loop_world):
    """Truth: hazard x1.36 while a first complaint is open, x0.85 once resolved (ratio 1.6)."""
    world, complaints, model = loop_world
    truth = world.truth["resolution"]["hazard_ratio_open_vs_resolved"]
    hr = model.hazard_ratio_
    assert hr["estimate"] == pytest.approx(truth, rel=0.10)
    assert hr["lo"] < truth < hr["hi"]
    s = model.summary
    assert s.loc["open", "adjusted_rate_12m"] > s.loc["resolved", "adjusted_rate_12m"]
    assert s.loc["open", "observed_rate_12m"] > s.loc["resolved", "observed_rate_12m"]
    # under the model 12-month churn is 1 - exp(-H) per customer: the arms' cumulative hazards
    # (averaged) stand in roughly the hazard ratio
    h_open, h_res = (-np.log1p(-s.loc[a, "adjusted_rate_12m"]) for a in ("open", "resolved"))
    assert h_open / h_res == pytest.approx(hr["estimate"], rel=0.05)


def test_no_revenue_or_speed_effect_where_the_world_has_none(loop_world):
    world, complaints, model = loop_world
    r = model.results()
    assert world.truth["resolution"]["revenue_ratio_open_vs_resolved"] == 1.0
    assert r["revenue_ratio_ci"][0] - 0.005 < 1.0 < r["revenue_ratio_ci"][1] + 0.005
    assert r["revenue_ratio_open_vs_resolved"] == pytest.approx(1.0, abs=0.03)
    lo, hi = r["by_speed"]["ci"]
    assert lo < 1.0 < hi  # in the world a resolution helps equally whether it took 2 days or 12


def test_value_of_closing_a_loop_is_years_kept_times_margin(loop_world):
    world, complaints, model = loop_world
    v = model.results()["value_of_closing_a_loop"]
    assert v["customer_years_kept"] > 0
    assert v["customer_years_kept"] == pytest.approx(v["customer_years_if_resolved"] - v["customer_years_if_open"])
    assert v["value_per_resolved_complaint"] == pytest.approx(v["customer_years_kept"] * v["margin_per_customer_year"])
    assert v["margin_per_customer_year"] == pytest.approx(0.6 * model.summary.loc["resolved", "revenue_adjusted"])
    assert v["value_ci"][0] < v["value_per_resolved_complaint"] < v["value_ci"][1]
    assert v["customer_years_if_resolved"] < 5  # within the five-year horizon
    # a given margin is used as is; a higher discount rate keeps fewer (discounted) years
    p, checked, h = _checked(world)
    fixed = loop.ClosingTheLoop(list(checked.covariates), margin_per_customer_year=100.0, discount_rate=0.3, draws=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed.fit(complaints)
    assert fixed.value_["margin_per_customer_year"] == 100.0
    assert fixed.value_["customer_years_kept"] < v["customer_years_kept"]
    json.dumps(model.results())


def test_null_world_interval_includes_one():
    world = generate(n_customers=15_000, seed=77, resolution_effect=1.0)
    _, model = _loop_fit(world, draws=50)
    hr = model.hazard_ratio_
    assert hr["lo"] < 1.0 < hr["hi"]
    assert abs(np.log(hr["estimate"])) < 0.15
    # and not too wide: the standard error of the log hazard ratio, log(hi / lo) / 3.92, is about
    # the log-rank one from the events in each arm, sqrt(1/d_open + 1/d_resolved); the adjustment
    # inflates it by sqrt(variance inflation), so between 0.9 and 1.5 times (1.00 here)
    events = model.summary_["churn_events"]
    se = np.log(hr["hi"] / hr["lo"]) / (2 * 1.959964)
    assert 0.9 < se / np.sqrt(1 / events["open"] + 1 / events["resolved"]) < 1.5
    v = model.value_
    assert v["value_ci"][0] < 0 < v["value_ci"][1]  # no value in closing a loop that changes nothing


def _size_confounded_complaints(effect: float, n: int = 20_000, seed: int = 5) -> pd.DataFrame:
    """Complainers whose account size (seen only through their pre-window revenue, a continuous proxy)
    drives both whether the complaint is resolved (big accounts far more often) and how fast they leave
    (big accounts slowly); the hazard is ``effect`` times higher while the complaint is open."""
    rng = np.random.default_rng(seed)
    log_size = rng.normal(0.0, 1.0, n)
    resolved = rng.random(n) < 1 / (1 + np.exp(-(0.8 + 1.5 * log_size)))
    res_days = np.where(resolved, 1 + rng.exponential(10.0, n), np.inf)
    lam = 0.4 * np.exp(-0.8 * log_size) / 365.25  # per day once resolved
    e = rng.exponential(1.0, n)  # the cumulative hazard at which each one leaves
    open_h = effect * lam * res_days
    with np.errstate(invalid="ignore"):  # never resolved: inf - inf in the branch not taken
        t = np.where(e < open_h, e / (effect * lam), res_days + (e - open_h) / lam)
    duration = np.minimum(t, 500.0)
    resolved &= res_days <= duration
    pre_revenue = 1000 * np.exp(log_size + rng.normal(0.0, 0.05, n))
    return pd.DataFrame({
        "resolution_days": np.where(resolved, res_days, np.nan), "resolved": resolved, "duration_days": duration,
        "churned": t <= 500.0, "pre_revenue": pre_revenue, "pre_exposure_years": 1.0, "prior_sales": 2 * pre_revenue,
        "prior_sales_transactions": 10, "pre_contact_cost": 50.0, "tenure_years": 2.0,
        "post_revenue": pre_revenue * duration / 365.25, "post_exposure_years": duration / 365.25,
        "satisfaction_at_complaint": "passive"})


@pytest.mark.parametrize("effect", [1.6, 1.0])
def test_resolution_hazard_ratio_under_strong_confounding_by_a_continuous_size(effect):
    """Issue 11: size is continuous and strong (a resolved complainer's account is about 3 times the size of an
    open one's); without adjustment the open arm leaves about twice as fast as the effect alone makes it. The
    model adjusts for the pre-window revenue as it is, not in quintile bins (whose insides stay confounded)."""
    c = _size_confounded_complaints(effect)
    m = loop.ClosingTheLoop(draws=50, min_group_size=1).fit(c)
    hr = m.hazard_ratio_
    assert hr["estimate"] == pytest.approx(effect, rel=0.06)
    assert hr["lo"] < effect < hr["hi"]
    crude = m.summary_["churn_events"] / m.summary_["customer_years"]
    assert crude["open"] / crude["resolved"] > 1.8 * effect  # the confounding the model has to undo


def _hand_complaints(types) -> pd.DataFrame:
    """A complaint_history-like table from (n, resolution_days, duration_days, churned) types: every customer
    with the same pre-window terms (as with a single price), revenue 100 a year after the landmark."""
    rows = [{"resolution_days": r, "duration_days": d, "churned": ch} for n, r, d, ch in types for _ in range(n)]
    c = pd.DataFrame(rows).astype({"resolution_days": float})
    return c.assign(resolved=c["resolution_days"].notna(), pre_revenue=100.0, pre_contact_cost=10.0,
                    pre_exposure_years=1.0, prior_sales=120.0, prior_sales_transactions=12, tenure_years=2.0,
                    post_revenue=100.0 + 10 * (np.arange(len(c)) % 3), post_exposure_years=1.0,
                    satisfaction_at_complaint="(unknown)")


#: open: 12 leave on day 50, 8 stay; resolved on day 5: 10 stay, 10 leave on day 205; on day 20: 12 leave on
#: day 120, 6 stay
HAND = [(12, np.nan, 50, True), (8, np.nan, 400, False), (10, 5, 400, False), (10, 5, 205, True),
        (12, 20, 120, True), (6, 20, 400, False)]


def test_loop_with_the_same_pre_window_terms_for_everyone():
    """Constant adjustment terms (one price: the same typical bill for every complainer) used to stop the
    revenue model (a constant log(1 + x) has a float std of 1e-16, so it stayed in the design next to the
    constant: singular), and with nothing left to adjust for the value of a loop failed on an empty groupby.
    Both models then have closed forms: the ratio of the two states' churn rates, of the two arms' revenue."""
    m = loop.ClosingTheLoop(intervals=(0, np.inf), max_followup_days=None, draws=20, min_group_size=1)
    m.fit(_hand_complaints(HAND))
    assert m.skipped_ is None and m.warnings_ == []
    open_rate = 12 / (12 * 50 + 8 * 400 + 20 * 5 + 18 * 20)
    resolved_rate = 22 / (10 * 395 + 10 * 200 + 12 * 100 + 6 * 380)
    assert m.hazard_ratio_["estimate"] == pytest.approx(open_rate / resolved_rate, rel=1e-8)
    assert list(m.revenue_result_.params.index) == ["const", "open"]
    # the open arm: the first 20 rows, 100, 110, 120, 100, ... a year each
    assert m.summary.loc["open", "revenue_adjusted"] == pytest.approx(sum(100 + 10 * (i % 3) for i in range(20)) / 20,
                                                                      rel=1e-8)
    lam = resolved_rate * 365.25
    delta = np.log(1.08)
    assert m.value_["customer_years_if_resolved"] == pytest.approx((1 - np.exp(-5 * (lam + delta))) / (lam + delta),
                                                                   rel=1e-8)


def test_a_state_nobody_spent_time_in_is_not_compared():
    """Every resolution after the follow-up (or none within fast_days) used to give a made-up hazard ratio:
    the state's column was kept though constant, and the fit split the constant between the two."""
    late = HAND[:2] + [(20, 200, 300, True), (20, 250, 400, False)]
    m = loop.ClosingTheLoop(intervals=(0, 100, np.inf), max_followup_days=150, draws=5, min_group_size=1)
    m.fit(_hand_complaints(late))
    assert m.skipped_ == ("Closing the loop could not be measured: within the follow-up (max_followup_days after the "
                          "complaint) no complainer spent any time after the complaint was resolved, so there is "
                          "nothing to compare it with.")
    assert m.hazard_ratio_["estimate"] is None
    # nobody resolved within 4 days (5 and 20): no speed comparison, the main one as before
    s = loop.ClosingTheLoop(intervals=(0, np.inf), max_followup_days=None, draws=5, min_group_size=1, fast_days=4)
    s.fit(_hand_complaints(HAND))
    assert s.skipped_ is None and s.hazard_ratio_["estimate"] > 1
    assert s.speed_["hazard_ratio_later_vs_fast"] is None and s.speed_["ci"] == [None, None]
    assert s.speed_["resolved_fast"] == 0 and s.speed_["resolved_later"] == 38
    assert s.warnings_ == ["Closing the loop could not be measured: within the follow-up (max_followup_days after the "
                           "complaint) no complainer spent any time after a complaint resolved within 4 days, so there "
                           "is nothing to compare it with. The speed comparison is not reported."]


# --------------------------------------------------------------------------- transitions


def test_transitions_by_hand():
    pairs = pd.DataFrame({
        "from_group": ["detractor"] * 4 + ["passive"] * 3 + ["promoter"] * 3,
        "to_group": ["detractor", "detractor", "passive", "promoter", "passive", "passive", "detractor",
                     "promoter", "promoter", "passive"],
        "gap_years": [1.0] * 5 + [0.5] * 5,
    })
    value = pd.Series({"detractor": 100.0, "passive": 200.0, "promoter": 400.0})
    t = loop.Transitions(GROUPS, min_cell_size=1).fit(pairs, value)  # nothing suppressed
    assert t.counts_.loc["detractor"].tolist() == [2, 1, 1]
    assert t.row_shares_.loc["promoter"].tolist() == pytest.approx([0, 1 / 3, 2 / 3])
    # up: d->p, d->pr; down: p->d, pr->p; 7.5 customer-years between responses
    m = t.movement_
    assert (m["moved_up"], m["moved_down"], m["stayed"]) == (2, 2, 6)
    assert m["moving_up_per_customer_year"] == pytest.approx(2 / 7.5)
    assert m["net_up_per_customer_year"] == 0
    # value: +100 +300 -100 -200 = +100 over 7.5 years
    r = t.results()
    assert r["value_change_per_customer_year"] == pytest.approx(100 / 7.5)
    assert r["by_from_group"]["detractor"] == pytest.approx(400 / 4.0)
    json.dumps(r)
    # cells of one customer are suppressed, zeros are not; the rows' lone small cells
    # (passive->detractor, promoter->passive) take their row's smallest other positive cell
    # with them, and the movement totals are withheld (cheaper than hiding more cells)
    t = loop.Transitions(GROUPS, min_cell_size=2).fit(pairs, value)
    r = t.results()
    assert r["counts"]["detractor"]["passive"] is None and r["row_shares"]["detractor"]["promoter"] is None
    assert r["counts"]["promoter"]["detractor"] == 0 and (r["small_cells"], r["suppressed_cells"]) == (4, 6)
    assert r["counts"]["passive"]["passive"] is None and r["counts"]["promoter"]["promoter"] is None
    assert r["counts"]["detractor"]["detractor"] == 2 and r["counts"]["passive"]["promoter"] == 0
    assert r["moved_up"] is None and r["stayed"] is None and r["customers"] == 10
    assert t.summary["customers"].isna().sum() == 6
    assert "would reveal a group too small" in narrative.transitions_sentence(r, "USD")


def test_no_suppressed_transition_cell_can_be_worked_out_from_the_totals():
    # the demo's matrix: one small cell (promoter -> passive, 5); its row's total is known from
    # the shares, so a second cell of that row goes, and the movement totals stay
    c = np.array([[240, 102, 3], [93, 376, 57], [4, 50, 193]])
    small = (c > 0) & (c < 10)
    assert loop.derivable_cells(small, loop._published_sets(3, True)) == [2, 6]  # each alone in its row
    hidden, withheld = loop.protect_cells(c, small)
    assert not withheld and loop.derivable_cells(hidden, loop._published_sets(3, True)) == []
    # one small cell: cheaper to withhold the totals than to hide five more cells
    c = np.array([[240, 102, 0], [93, 376, 57], [0, 5, 193]])
    hidden, withheld = loop.protect_cells(c, (c > 0) & (c < 10))
    assert withheld and hidden.sum() == 2 and hidden[2, 1] and hidden[2, 2]
    # two groups: a small cell above the diagonal is "moved up" on its own
    assert loop.protect_cells(np.array([[50, 3], [20, 40]]), np.array([[0, 1], [0, 0]], bool))[1]
    # many random matrices: small cells stay hidden and none of the hidden can be recovered
    rng = np.random.default_rng(3)
    for _ in range(300):
        k = int(rng.integers(2, 5))
        c = rng.choice([0, 1, 3, 8, 20, 60, 200], size=(k, k))
        small = (c > 0) & (c < 10)
        hidden, withheld = loop.protect_cells(c, small)
        assert (hidden >= small).all()
        assert loop.derivable_cells(hidden, loop._published_sets(k, not withheld)) == []


def test_transitions_on_the_synthetic_world(biased_world):
    world, p, checked, h = biased_world
    pairs = loop.next_responses(checked, h, p)
    # the same pairs straight from the responses table
    rel = world.responses[world.responses["journey"].isna() & world.responses["nps"].notna()]
    rel = rel.sort_values(["customer_id", "response_date"])
    nth = rel.groupby("customer_id").cumcount()
    direct = rel[nth == 0][["customer_id", "nps"]].merge(rel[nth == 1][["customer_id", "nps"]], on="customer_id")
    assert len(pairs) == len(direct) > 500
    m = pairs.set_index("customer_id").join(direct.set_index("customer_id"))
    assert (m["from_score"] == m["nps_x"]).all() and (m["to_score"] == m["nps_y"]).all()
    t = loop.Transitions(list(bands_for(p)), min_cell_size=p["min_cell_size"]).fit(pairs)
    assert t.counts_.to_numpy().sum() == len(pairs)
    # repeat answers are 0.75 x the latent satisfaction + noise: staying is the most common
    # path, and the ends of the scale drift toward the middle (regression to the mean)
    shares = t.row_shares_
    assert all(shares.loc[g, g] > 0.5 for g in GROUPS)
    assert shares.loc["detractor", "passive"] > shares.loc["passive", "detractor"]
    assert shares.loc["promoter", "passive"] > shares.loc["passive", "promoter"]
    assert 0.5 < t.movement_["mean_gap_years"] < 1.1  # repeat surveys 6 to 13 months later


# --------------------------------------------------------------------------- who answered


def test_standardised_difference_by_hand():
    assert loop._std_diff((1.0, 0.5), (0.0, 1.5)) == pytest.approx(1.0)
    assert loop._weighted_mean_var(pd.Series([1.0, 3.0, np.nan]), pd.Series([1.0, 3.0, 5.0])) == pytest.approx((2.5, 0.75))


def test_weights_carry_respondents_over_to_the_whole_base(biased_world):
    """Truth: the world's hidden latent group of every customer still there on their survey
    day; per-group revenue as if all of them had answered (a history built on that)."""
    world, p, checked, h = biased_world
    base = loop.response_base(checked, h, p)
    assert base["responded"].sum() == len(h)
    model = loop.WhoAnswered(list(checked.covariates), groups=GROUPS).fit(base)
    s = model.summary
    # respondents are selected on plan and size; the weights balance them with the base
    assert s.loc["plan=premium", "std_diff"] > 0.3 and s.loc["employees", "std_diff"] > 0.2
    covs = [i for i in s.index if i.split("=")[0] in ("plan", "region", "employees", "tenure_years")]
    assert s.loc[covs, "std_diff_weighted"].abs().max() < 0.05
    assert model.weights_.mean() == pytest.approx(1.0, abs=0.1)

    hid = world.hidden[world.hidden["eligible"]]
    everyone = SyntheticWorld(world.customers, pd.DataFrame({"customer_id": hid["customer_id"],
                                                             "response_date": hid["survey_date"], "nps": hid["nps"]}),
                              world.transactions, world.contacts)
    p_all = load_params(overrides={"as_of": world.truth["as_of"]})
    h_all = history.history(data.check(everyone.tables, p_all), p_all)
    g = h_all.groupby("group", observed=True)
    truth = pd.DataFrame({"share": g.size() / len(h_all),
                          "revenue": g["post_revenue"].sum() / g["post_exposure_years"].sum()})
    v = model.group_values_
    err_w = (v["share_weighted"] - truth["share"]).abs()
    err_u = (v["share"] - truth["share"]).abs()
    assert err_w.max() < 0.01 and err_u.max() > 3 * err_w.max()
    rel_w = (v["revenue_per_customer_year_weighted"] / truth["revenue"] - 1).abs()
    rel_u = (v["revenue_per_customer_year"] / truth["revenue"] - 1).abs()
    assert rel_w.max() < 0.05 and rel_u.min() > 3 * rel_w.max()
    r = model.results()
    assert r["propensity"]["auc"] > 0.6 and r["propensity"]["effective_sample_size"] <= r["respondents"]
    json.dumps(r)


def test_response_base_of_todays_customers_only(biased_world):
    """current_only=True: the base's rows of customers with no end_date, the same rows as before."""
    world, p, checked, h = biased_world
    base = loop.response_base(checked, h, p)
    today = set(world.customers.loc[world.customers["end_date"].isna(), "customer_id"].astype(str))
    current = loop.response_base(checked, h, p, current_only=True)
    assert 0 < len(current) < len(base)
    expected = base[base["customer_id"].astype(str).isin(today)].reset_index(drop=True)
    pd.testing.assert_frame_equal(current.reset_index(drop=True), expected)


def test_unbiased_response_needs_no_correction():
    """response_bias=0: answering does not depend on plan or size; the weights stay near 1."""
    world = generate(n_customers=6_000, seed=13, response_bias=0.0)
    p, checked, h = _checked(world)
    model = loop.WhoAnswered(list(checked.covariates)).fit(loop.response_base(checked, h, p))
    s = model.summary
    assert s.loc[["plan=premium", "employees"], "std_diff"].abs().max() < 0.1
    assert model.propensity_summary_["auc"] < 0.6


# ----------------------------------------------------------------------------- referrals


def test_referred_customers_by_hand():
    customers = pd.DataFrame({
        "customer_id": ["A", "B", "C", "D"],
        "start_date": ["2020-01-01", "2025-01-01", "2025-07-02", "2024-01-01"],
        "end_date": [None, None, "2025-10-01", None],
        "referred_by": [None, "A", "A", "Z"],  # D names nobody we know of: not counted
    })
    responses = pd.DataFrame({"customer_id": ["A"], "response_date": ["2024-06-01"], "nps": [10]})
    transactions = pd.DataFrame({"customer_id": ["A", "B", "B", "C"], "date": ["2024-07-01", "2025-02-01", "2025-03-01", "2025-08-01"],
                                 "amount": [10.0, 100.0, 50.0, 30.0]})
    p = load_params({"as_of": "2025-12-31", "min_group_size": 1})
    checked = data.check({"customers": customers, "responses": responses, "transactions": transactions}, p)
    hist = history.history(checked, p)
    out = loop.referred_customers(checked, hist, min_cell_size=1)
    assert out.loc["promoter", "referred"] == 2 and out.loc["detractor", "referred"] == 0
    years = (365 + 92) / 365.25  # B: 2025-01-01..12-31 = 365 days; C: 2025-07-02..10-01 = 92 days
    assert out.loc["promoter", "revenue_per_customer_year"] == pytest.approx(180 / years)
    assert out.loc["promoter", "still_customers"] == pytest.approx(0.5)
    assert pd.isna(out.loc["passive", "revenue_per_customer_year"])
    small = loop.referred_customers(checked, hist, min_cell_size=5)
    assert small.loc["promoter", "suppressed"] and pd.isna(small.loc["promoter", "revenue_per_customer_year"])


def test_referred_customers_spend_alike_whoever_referred_them():
    """In the synthetic world who refers a new customer (promoters 4x as often as passives)
    does not change what the new customer spends: per-group values agree within noise."""
    world = generate(n_customers=20_000, seed=11)
    _, checked, hist = _checked(world)
    out = loop.referred_customers(checked, hist)
    per_customer = out["referred"] / hist["group"].astype(str).value_counts()
    assert per_customer["promoter"] > 2 * per_customer["passive"] > 0  # promoters refer more (4x in truth)
    rev = out["revenue_per_customer_year"].dropna()
    assert len(rev) == 3 and (rev / rev.mean()).sub(1).abs().max() < 0.15


# --------------------------------------------------------------------------- data shapes
# Each analysis on every shape a real export comes in (tests/shapes.py), on 300 customers:
# its result, or the expected skipped reason (a plain sentence), never an exception.

from shapes import SHAPE_CASES, shaped, value_by_group as _value  # noqa: E402

from cxvalue import narrative, skipping  # noqa: E402



def _results(model) -> dict:
    """The JSON block, which says why when the analysis was skipped (the reason is a warning too)."""
    r = json.loads(json.dumps(model.results()))
    assert r["skipped"] == model.skipped_ and (model.skipped_ is None or model.skipped_ in model.warnings_)
    return r


LOOP_SKIPPED = {
    "no contacts table": "Closing the loop needs a contacts table with the complaints",
    "nps only, no contacts, no end_date": "Closing the loop needs a contacts table with the complaints",
    "bare contacts, unknown channels": "add a column is_complaint (true for a complaint) to the contacts table",
    "no end_date column": "Closing the loop needs complainers who left",
    "nobody left": "Closing the loop needs complainers who left",
}


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_closing_the_loop_on_every_shape(name):
    p, checked, h = shaped(name)
    complaints = loop.complaint_history(checked, p, h)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = loop.ClosingTheLoop(list(checked.covariates), draws=20, seed=p["seed"]).fit(complaints)
    r = _results(model)
    expected = LOOP_SKIPPED.get(name)
    if expected:
        assert expected in r["skipped"] and r["arms"] == {} and r["hazard_ratio_open_vs_resolved"] is None
        assert narrative.loop_sentences(r, "USD") == [narrative.skipped_sentence(r)]
    else:
        assert r["skipped"] is None and set(r["arms"]) == {"resolved", "open"} and r["hazard_ratio_open_vs_resolved"] > 0
        assert len(narrative.loop_sentences(r, "USD")) >= 2


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_transitions_on_every_shape(name):
    p, checked, h = shaped(name)
    model = loop.Transitions(list(bands_for(p)), p["min_cell_size"]).fit(loop.next_responses(checked, h, p), _value(p))
    r = _results(model)
    assert r["skipped"] is None and r["customers"] >= p["min_cell_size"]  # every shape has repeat answers
    shown = [v for row in r["counts"].values() for v in row.values() if v is not None]
    assert all(v == 0 or v >= p["min_cell_size"] for v in shown)  # small cells suppressed
    assert narrative.transitions_sentence(r, "USD").startswith(f"{r['customers']:,} customers answered again")


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_who_answered_on_every_shape(name):
    p, checked, h = shaped(name)
    groups = list(bands_for(p))
    model = loop.WhoAnswered(list(checked.covariates), groups=groups).fit(loop.response_base(checked, h, p))
    r = _results(model)
    assert r["skipped"] is None and set(r["groups"]) == set(groups)
    table = narrative.who_answered_table(model, "USD", p["min_cell_size"])
    small = model.group_values_.index[model.group_values_["respondents"] < p["min_cell_size"]]
    assert all((table.loc[narrative.label(g)] == "suppressed").all() for g in small)
    if name == "no promoters":
        assert list(small) == ["promoter"] and r["groups"]["promoter"]["respondents"] == 0
    assert len(narrative.who_answered_sentences(model)) == 2


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_referred_customers_on_every_shape(name):
    p, checked, h = shaped(name)
    out = loop.referred_customers(checked, h, p["min_cell_size"])
    assert list(out.columns) == ["referred", "revenue_per_customer_year", "still_customers", "suppressed"]
    if name == "no referred_by":
        assert "Add a column referred_by to the customers table" in skipping.reason(out) and out.empty
        assert narrative.referrals_sentence(None, "USD", out) == narrative.skipped_sentence(out)
        assert narrative.referred_table(out, "USD").empty
    else:
        assert skipping.reason(out) is None and list(out.index) == list(bands_for(p))
        small = (out["referred"] > 0) & (out["referred"] < p["min_cell_size"])
        assert out.loc[small, "revenue_per_customer_year"].isna().all() and (out.loc[small, "suppressed"]).all()


def test_a_loop_without_both_arms_or_with_too_few_answering_twice_is_skipped():
    p, checked, h = shaped("as-is csv")
    complaints = loop.complaint_history(checked, p, h)
    resolved = loop.ClosingTheLoop(draws=10).fit(complaints.assign(resolved=True, resolution_days=1.0))
    assert f"all {len(complaints):,} first complaints are resolved" in resolved.skipped_
    assert resolved.results()["n_complainers"] == len(complaints)

    groups = list(bands_for(p))
    pairs = loop.next_responses(checked, h, p)
    few = loop.Transitions(groups, min_cell_size=10).fit(pairs.iloc[:3])
    assert few.skipped_ == "Movement between groups needs at least 10 customers who answered twice; only 3 did."
    assert few.results()["counts"]["passive"]["passive"] == 0 and narrative.transitions_table(few).empty
    none = loop.Transitions(groups).fit(pairs.iloc[0:0])
    assert "no customer answered another survey" in none.skipped_ and none.results()["customers"] == 0

    base = loop.response_base(checked, h, p)
    everyone = loop.WhoAnswered(groups=groups).fit(base.assign(responded=True))
    assert "there is no one to compare the respondents with" in everyone.skipped_
    assert narrative.who_answered_sentences(everyone) == [everyone.skipped_] and everyone.results()["comparison"] == {}
    assert narrative.who_answered_table(everyone, "USD", 10).empty


def test_windows_read_without_the_rules_join_equal_the_checked_tables():
    """Closing the loop's complaint history, who answered's response base, failure demand's reason
    flags and the referrals read the events without the rules' join too (``CheckedData.in_windows``).
    On a world with complaints and referred customers' transactions that the rules exclude (before
    the customer's start, after their end, of an unknown customer, undated), each is the same as
    read from the checked tables; a first complaint or a revenue taken from the unchecked rows
    would differ."""
    import dataclasses

    from cxvalue import closing_the_loop, failure_demand, referrals, who_answered

    world = generate(n_customers=1_500, seed=9, messy=True)
    c, cust = world.contacts, world.customers.set_index("customer_id")
    complaints = c[c["is_complaint"]]
    early = complaints.drop_duplicates("customer_id").head(40).copy()  # a day before each one's start
    early["date"] = cust.loc[early["customer_id"], "start_date"].to_numpy() - pd.Timedelta(days=1)
    churned = cust[cust["end_date"].notna()].head(40)
    late = c[c["customer_id"].isin(churned.index)].drop_duplicates("customer_id").copy()  # after their end
    late["date"] = churned.loc[late["customer_id"], "end_date"].to_numpy() + pd.Timedelta(days=3)
    late["is_complaint"] = True
    # kept: a complaint on a customer's first day (before their first other one) and on a leaver's last day
    first_day = complaints.drop_duplicates("customer_id").tail(40).copy()
    first_day["date"] = cust.loc[first_day["customer_id"], "start_date"].to_numpy()
    last_day = c[c["customer_id"].isin(cust[cust["end_date"].notna()].index[-60:])].drop_duplicates("customer_id")
    last_day = last_day.assign(is_complaint=True, resolved=False, resolved_date=pd.NaT)
    last_day["date"] = cust.loc[last_day["customer_id"], "end_date"].to_numpy()
    ghost = complaints.head(5).assign(customer_id="X-ghost")
    undated = complaints.head(5).assign(date=pd.NaT)
    t, referred = world.transactions, cust[cust["referred_by"].notna()]
    assert len(referred) > 50
    before = t.head(len(referred)).assign(customer_id=referred.index, date=referred["start_date"].to_numpy()
                                          - pd.Timedelta(days=2), amount=1_000.0)  # before each one's start
    gone = referred[referred["end_date"].notna()]
    after = t.head(len(gone)).assign(customer_id=gone.index, date=gone["end_date"].to_numpy() + pd.Timedelta(days=2),
                                     amount=1_000.0)  # after their end
    tables = {**world.tables, "contacts": pd.concat([c, early, late, first_day, last_day, ghost, undated],
                                                    ignore_index=True),
              "transactions": pd.concat([t, before, after], ignore_index=True)}
    p = load_params(overrides={"as_of": world.truth["as_of"]})
    checked = data.check(tables, p)
    excluded = checked.data_quality["contacts"]["excluded"]
    assert excluded["date before the customer's start_date"] == len(early) == 40
    assert excluded["date after the customer's end_date"] == len(late) > 30
    assert excluded["customer_id not a known customer"] >= len(ghost)
    t_excluded = checked.data_quality["transactions"]["excluded"]
    assert t_excluded["date before the customer's start_date"] == len(before)
    assert t_excluded["date after the customer's end_date"] == len(after) > 10
    assert set(checked.unjoined) == {"transactions", "contacts"}  # the fast path is taken
    strict = dataclasses.replace(checked, unjoined={})  # every read from the checked tables
    h = history.history(checked, p)
    reads = {
        "complaint history": lambda d: closing_the_loop.complaint_history(d, p, h),
        "response base": lambda d: who_answered.response_base(d, h, p),
        "reason flags": lambda d: failure_demand.reason_exposure(d, h, p),
        "referrals": lambda d: referrals.referred_customers(d, h),
    }
    for what, read in reads.items():
        fast, slow = read(checked), read(strict)
        assert len(fast) >= 3 and fast.notna().any().all(), what
        pd.testing.assert_frame_equal(fast, slow, obj=what)
    firsts = reads["complaint history"](checked).set_index("customer_id")["complaint_date"]
    assert (firsts.reindex(first_day["customer_id"]).to_numpy() == first_day["date"].to_numpy()).all()
    on_last_day = firsts.reindex(last_day["customer_id"]).to_numpy() == last_day["date"].to_numpy()
    assert on_last_day.sum() > 10  # those who had not complained before their last day
