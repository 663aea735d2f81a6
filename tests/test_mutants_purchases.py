"""Customers who never cancel, by hand (tests added for the mutation run, tests/MUTATION.md).

The BG/NBD and Gamma-Gamma fits themselves are checked in tests/test_mutants_btyd.py; here they are
stand-ins with chosen parameters, so that what purchases.py does with them can be worked out:

* the expected purchase rate ``s`` weeks on is written as Euler's integral, the Beta mean of
  ``(1 + p s / beta)^-(r + x + 1)`` (scipy's ``quad`` of the Beta density, not ``hyp2f1``), and for
  a near-degenerate gamma its limit, the Beta mean of ``exp(-p rate s)``;
* the rows of the business case, the draws of the effects, the summary and ``results()`` from
  those rates, spends and effects;
* the purchase summary, the controls and the business model from small hand-made tables.
"""

from __future__ import annotations

import datetime as dt
import math
from types import SimpleNamespace

import ibis
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from cxvalue import purchases
from cxvalue.config import load_params
from cxvalue.exceptions import InputError, ModelError
from cxvalue.history import DAYS_PER_YEAR

try:
    from tests.fixtures.sources import write_csv
except ImportError:  # run from inside tests/
    from fixtures.sources import write_csv

WPY = 365.25 / 7
SIZE_RATE, SIZE_DROPOUT = 0.4, -0.3
GROUPS = ["detractor", "passive", "promoter"]


# --------------------------------------------------------------------------- a stand-in BG/NBD


class StandInBGNBD:
    """``lambda ~ Gamma(r, alpha_i)``, ``p ~ Beta(a_i, b)`` with ``alpha_i = alpha exp(-g1[group])`` and
    ``a_i = a exp(g2[group])``; P(alive) by group for customers who bought again (1 otherwise)."""

    def __init__(self, r=0.8, alpha=6.0, a=1.4, b=2.5, g1=None, g2=None, group="group", reference="passive",
                 labels=GROUPS, alive=None, closed_form=None):
        self.r, self.alpha, self.a, self.b = r, alpha, a, b
        self.g1 = g1 if g1 is not None else {"detractor": -0.3, "passive": 0.0, "promoter": 0.2}
        self.g2 = g2 if g2 is not None else {"detractor": 0.25, "passive": 0.0, "promoter": -0.15}
        self.group, self.reference_group, self.group_labels_ = group, reference, list(labels)
        self.alive = alive or {"detractor": 0.6, "passive": 0.75, "promoter": 0.9}
        self.closed_form = closed_form
        self.moved_to = []

    def _effects(self, rows):
        # a covariate, the account's size, raises the rate and lowers the dropout of each customer
        size = rows["size"].to_numpy(float) if "size" in rows else np.zeros(len(rows))
        if self.group is None:
            return SIZE_RATE * size, SIZE_DROPOUT * size
        g = rows[self.group].astype(str).to_numpy()
        self.moved_to.append(sorted(set(g)))
        return (np.array([self.g1[v] for v in g]) + SIZE_RATE * size,
                np.array([self.g2[v] for v in g]) + SIZE_DROPOUT * size)

    def _individual(self, rows):
        g1, g2 = self._effects(rows)
        x, t_x, T = (rows[c].to_numpy(float) for c in ("x", "t_x", "T"))
        return self.r, self.alpha * np.exp(-g1), self.a * np.exp(g2), self.b, x, t_x, T

    def probability_alive(self, rows):
        g = rows["group"].astype(str).to_numpy() if self.group is not None else np.array(["passive"] * len(rows))
        return np.where(rows["x"].to_numpy() > 0, [self.alive.get(v, 0.5) for v in g], 1.0)

    def expected_purchases(self, t, rows):
        return self.closed_form(t, rows)


def _beta_pdf(a, b):
    log_b = special.betaln(a, b)
    return lambda p: math.exp((a - 1) * math.log(p) + (b - 1) * math.log1p(-p) - log_b) if 0 < p < 1 else 0.0


def _mean(f, a, b):
    """The Beta(a, b) mean of ``f(p)``."""
    pdf = _beta_pdf(a, b)
    return integrate.quad(lambda p: pdf(p) * f(p), 0, 1, epsabs=0, epsrel=1e-12)[0]


def _by_hand(m, row, s, as_group=None, fresh=False):
    """Expected purchases per week of one row ``s`` weeks on, by Euler's integral."""
    g = row["group"] if m.group is not None else None
    x, T = (0.0, 0.0) if fresh else (float(row["x"]), float(row["T"]))
    alive = 1.0 if fresh or x == 0 else m.alive[g if g is not None else "passive"]
    size = float(row["size"]) if "size" in row else 0.0
    alpha_g = m.alpha * math.exp(-(m.g1[g] if g is not None else 0.0) - SIZE_RATE * size)
    h = as_group if as_group is not None and m.group is not None else g
    alpha_h = m.alpha * math.exp(-(m.g1[h] if h is not None else 0.0) - SIZE_RATE * size)
    a_h = m.a * math.exp((m.g2[h] if h is not None else 0.0) + SIZE_DROPOUT * size)
    beta = (alpha_g + T) * alpha_h / alpha_g  # the move multiplies lambda by alpha_g / alpha_h
    k = m.r + x
    if k > 1e4:
        mean = _mean(lambda p: math.exp(-p * k / beta * s), a_h, m.b + x)
    else:
        mean = _mean(lambda p: (1 + p * s / beta) ** -(k + 1), a_h, m.b + x)
    return alive * k / beta * mean


def _rows():
    return pd.DataFrame({"group": pd.Categorical(["detractor", "passive", "promoter", "detractor"], categories=GROUPS),
                         "x": [3, 0, 5, 1], "t_x": [20.0, 0.0, 40.0, 3.0], "T": [52.0, 30.0, 60.0, 10.0],
                         "mean_spend": [20.0, 0.0, 50.0, 8.0], "size": [0.5, -1.0, 0.0, 1.5]},
                        index=pd.Index([7, 3, 9, 1], name="row"))


def test_purchase_rate_by_hand():
    m, rows = StandInBGNBD(), _rows()
    weeks = [0.0, 10.0, WPY]
    got = purchases.purchase_rate_at(m, rows, weeks)
    assert got.shape == (4, 3)
    expected = [[_by_hand(m, r, s) for s in weeks] for _, r in rows.iterrows()]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    # as promoters from now on: their lambda scaled by alpha_g / alpha_promoter, their dropout the promoters'
    moved = purchases.purchase_rate_at(m, rows, weeks, as_group="promoter")
    np.testing.assert_allclose(moved, [[_by_hand(m, r, s, "promoter") for s in weeks] for _, r in rows.iterrows()],
                               rtol=1e-9)
    assert ["promoter"] in m.moved_to
    # a new customer: no purchase yet, no time observed, alive for sure
    fresh = purchases.purchase_rate_at(m, rows, weeks, as_group="detractor", fresh=True)
    np.testing.assert_allclose(fresh, [[_by_hand(m, r, s, "detractor", fresh=True) for s in weeks]
                                       for _, r in rows.iterrows()], rtol=1e-9)
    fresh_own = purchases.purchase_rate_at(m, rows, WPY, fresh=True)  # a number of weeks: one column
    assert fresh_own.shape == (4, 1)
    np.testing.assert_allclose(fresh_own[:, 0], [_by_hand(m, r, WPY, fresh=True) for _, r in rows.iterrows()],
                               rtol=1e-9)
    assert list(rows["x"]) == [3, 0, 5, 1]  # the caller's rows are not changed


def test_purchase_rate_without_groups_ignores_a_move():
    m, rows = StandInBGNBD(group=None), _rows()
    got = purchases.purchase_rate_at(m, rows, [0.0, 30.0], as_group="promoter")
    np.testing.assert_allclose(got, [[_by_hand(m, r, s) for s in (0.0, 30.0)] for _, r in rows.iterrows()], rtol=1e-9)


def test_purchase_rate_of_a_near_degenerate_gamma():
    # r + x over 1e4: the gamma has no spread left, the rate is the Beta mean of exp(-p lambda s);
    # at exactly 1e4 still the 2F1 (which differs from the limit in the fifth digit here)
    rows = _rows().iloc[[1]].assign(size=0.0)  # x = 0
    for r in (2e4, 10000.5, 1e4):
        m = StandInBGNBD(r=r, alpha=4e4)
        got = purchases.purchase_rate_at(m, rows, [0.0, 26.0, 104.0])
        np.testing.assert_allclose(got[0], [_by_hand(m, rows.iloc[0], s) for s in (0.0, 26.0, 104.0)], rtol=1e-9)
    # a repeat buyer (x = 3) of a near-degenerate fit: their dropout is Beta(a, b + x)
    buyer = _rows().iloc[[0]]
    m = StandInBGNBD(r=2e4, alpha=4e4)
    got = purchases.purchase_rate_at(m, buyer, [0.0, 26.0, 104.0], as_group="promoter")
    np.testing.assert_allclose(got[0], [_by_hand(m, buyer.iloc[0], s, "promoter") for s in (0.0, 26.0, 104.0)],
                               rtol=1e-9)
    m = StandInBGNBD(r=1e4, alpha=2e4)
    row = rows.iloc[0]
    k, beta, a, b = 1e4, 2e4 + 30.0, 1.4, 2.5
    limit = k / beta * _mean(lambda p: math.exp(-p * k / beta * 104), a, b)
    got = purchases.purchase_rate_at(m, rows, [104.0])[0, 0]
    assert got == pytest.approx(_by_hand(m, row, 104.0), rel=1e-9) and abs(got / limit - 1) > 1e-6


@pytest.mark.filterwarnings("error")
def test_an_endless_horizon_cannot_be_evaluated_and_warns_nothing():
    # an infinite number of weeks: inf / inf inside the hypergeometric function, not finite, said in words
    # (numpy's floating-point warnings are silenced there, so nothing else is raised)
    with pytest.raises(ModelError, match="evaluated for 4 customers"):
        purchases.purchase_rate_at(StandInBGNBD(), _rows(), [np.inf])


def test_purchase_rate_that_cannot_be_evaluated():
    m, rows = StandInBGNBD(), _rows()
    m.alpha = float("nan")
    with pytest.raises(ModelError) as e:
        purchases.purchase_rate_at(m, rows, [0.0, 5.0])
    assert str(e.value) == ("Purchases: the expected rate of buying could not be evaluated for 4 customers (the "
                            "fit's parameters are extreme).")
    m = StandInBGNBD(g1={"detractor": float("inf"), "passive": 0.0, "promoter": 0.0})  # alpha_i 0 for detractors
    with pytest.raises(ModelError, match="evaluated for 2 customers"):
        purchases.purchase_rate_at(m, rows.assign(T=0.0), [0.0, 5.0])


def test_hyp2f1_of_a_negative_argument():
    # Euler's integral again: 2F1(a, b; c; -y) = E[(1 + p y)^-a], p ~ Beta(b, c - b)
    for a, b, c, y in [(3.5, 1.4, 4.9, 0.7), (1.2, 2.0, 3.1, 12.0), (2.0, 0.7, 3.0, 0.0)]:
        hand = _mean(lambda p: (1 + p * y) ** -a, b, c - b)
        assert purchases._hyp2f1_negative(a, b, c, y) == pytest.approx(hand, rel=1e-9)
    # integers become floats (an integer y to the power -b of an integer b would be refused)
    assert purchases._hyp2f1_negative(2.0, 2, 3, [1, 3]) == pytest.approx(
        [_mean(lambda p: (1 + p * y) ** -2.0, 2, 1) for y in (1, 3)], rel=1e-9)
    got = purchases._hyp2f1_negative(2.0, 1.5, 3.0, [1, 2])
    assert got == pytest.approx([purchases._hyp2f1_negative(2.0, 1.5, 3.0, 1.0),
                                 purchases._hyp2f1_negative(2.0, 1.5, 3.0, 2.0)], rel=1e-12)


def test_expected_purchases_falls_back_to_the_rate_where_the_closed_form_fails():
    rows = _rows()

    def closed_form(t, r):
        return np.where(np.arange(len(r)) % 2 == 0, 0.5 * t, np.nan)

    m = StandInBGNBD(r=3.0, alpha=2.0, closed_form=closed_form)
    for weeks in (5.0, 52.0, WPY):
        got = purchases.expected_purchases(m, rows, weeks)
        n = 2 * math.ceil(weeks / 2) + 1  # about one node a week, an odd number for Simpson
        grid = np.linspace(0.0, weeks, n)
        assert got[0] == 0.5 * weeks and got[2] == 0.5 * weeks
        # the rate itself is checked by hand above
        rate = purchases.purchase_rate_at(m, rows.iloc[[1, 3]], grid)
        assert got[[1, 3]] == pytest.approx(integrate.simpson(rate, x=grid, axis=1), rel=1e-9), weeks
        if weeks == 5.0:  # near the exact integral (a Simpson of 7 nodes)
            exact = integrate.quad(lambda s: _by_hand(m, rows.iloc[1], s), 0, weeks, epsrel=1e-8)[0]
            assert got[1] == pytest.approx(exact, rel=1e-5)
    m.closed_form = lambda t, r: np.full(len(r), 2.5)
    assert purchases.expected_purchases(m, rows, 10.0).tolist() == [2.5] * 4


# --------------------------------------------------------------------------- the model's money


class StandInSpend:
    def __init__(self, mean=40.0, params=None):
        self.population_mean_spend = mean
        self.params_ = pd.Series(params or {"p": 6.0, "q": 4.0, "gamma": 20.0})

    def expected_spend(self, rows):
        return 10.0 + 0.5 * rows["mean_spend"].to_numpy(float)


def _model(spend=True, **kw):
    pm = purchases.PurchaseModel("passive")
    pm.bgnbd_ = StandInBGNBD(**kw)
    pm.spend_ = StandInSpend() if spend else None
    pm.frame_ = _rows()
    pm.fitted_rows_ = pm.frame_.index
    pm.skipped_ = None
    return pm


def test_spend_per_purchase():
    pm, rows = _model(), _rows()
    assert pm.spend(rows).tolist() == [20.0, 10.0, 35.0, 14.0] and pm.population_spend() == 40.0
    own = _model(spend=False)
    # each repeat buyer's own mean; the others the repeat buyers' mean (20 + 50 + 8) / 3 = 26
    assert own.spend(rows).tolist() == [20.0, 26.0, 50.0, 8.0]
    assert own.population_spend() == pytest.approx(26.0) and type(own.population_spend()) is float
    assert own.spend(rows.iloc[[1]]).tolist() == [26.0]


def test_a_row_of_the_business_case_by_hand():
    pm, rows = _model(), _rows()
    w = np.array([1.0, 2.0, 0.5, 1.5])
    H = 3
    weeks = WPY * np.arange(0, H + 1)
    rate = np.array([[_by_hand(pm.bgnbd_, r, s, "promoter") for s in weeks] for _, r in rows.iterrows()])
    money = (np.array([20.0, 10.0, 35.0, 14.0])[:, None] * rate * w[:, None]).sum(axis=0) / w.sum()
    revenue, survival = purchases._row(pm, rows, "promoter", w, H)
    assert revenue == pytest.approx(money[0] * WPY, rel=1e-9) and type(revenue) is float
    np.testing.assert_allclose(survival, money[1:] / money[0], rtol=1e-9)
    assert survival.shape == (3,) and (np.diff(survival) < 0).all()
    # a new customer: the population's spend, x = 0, T = 0
    rate = np.array([[_by_hand(pm.bgnbd_, r, s, "detractor", fresh=True) for s in weeks] for _, r in rows.iterrows()])
    money = 40.0 * (rate * w[:, None]).sum(axis=0) / w.sum()
    revenue, survival = purchases._row(pm, rows, "detractor", w, H, fresh=True)
    assert revenue == pytest.approx(money[0] * WPY, rel=1e-9)
    np.testing.assert_allclose(survival, money[1:] / money[0], rtol=1e-9)
    # very little spent (under one a week): still revenue
    pm.spend_ = StandInSpend(mean=1e-3)
    revenue, survival = purchases._row(pm, rows, "detractor", w, H, fresh=True)
    assert revenue == pytest.approx(money[0] * WPY * 1e-3 / 40.0, rel=1e-9)
    np.testing.assert_allclose(survival, money[1:] / money[0], rtol=1e-9)
    # nothing spent: no revenue and no buying left
    pm.spend_ = StandInSpend(mean=0.0)
    revenue, survival = purchases._row(pm, rows, None, w, 2, fresh=True)
    assert revenue == 0.0 and survival.tolist() == [0.0, 0.0]


class StandInCost:
    """The cost model: its prediction per customer-year for ``group`` is a level times the row's id."""

    def __init__(self, fitted=True):
        self.fitted = fitted
        self.level = {"detractor": 3.0, "passive": 2.0, "promoter": 1.0}
        self.summary = pd.DataFrame({"adjusted": [30.0, 20.0]}, index=GROUPS[:2])  # none for promoters

    def predict(self, group, rows):
        return pd.Series(self.level[group] * np.asarray(rows, float), index=rows)


def test_group_rows_by_hand(monkeypatch):
    pm = _model()
    pm.bgnbd_.group_labels_ = ["detractor", "promoter"]  # passives were not fitted
    pm.summary_ = pd.DataFrame({"dropout_ratio": [1.3, 1.0, np.nan]}, index=pd.Index(GROUPS, name="group"))
    base = pd.Series({"passive": 500, "detractor": 200})
    out = purchases.group_rows(pm, StandInCost(), base, 2)
    rows, w = _rows(), np.ones(4)
    assert list(out.index) == GROUPS
    assert list(out.columns) == ["customers", "revenue", "survival", "cost_to_serve", "referrals", "hazard_ratio"]
    for g in ("detractor", "promoter"):
        revenue, survival = purchases._row(pm, rows, g, w, 2, fresh=True)
        assert out.loc[g, "revenue"] == pytest.approx(revenue, rel=1e-12)
        np.testing.assert_allclose(out.loc[g, "survival"], survival, rtol=1e-12)
    assert np.isnan(out.loc["passive", "revenue"]) and np.isnan(out.loc["passive", "survival"]).all()
    assert len(out.loc["passive", "survival"]) == 2
    assert out["customers"].tolist() == [200.0, 500.0, 0.0] and out["customers"].dtype == float
    assert out["cost_to_serve"].tolist() == [30.0, 20.0, 0.0]
    assert out["referrals"].tolist() == [0.0, 0.0, 0.0]
    assert out["hazard_ratio"].tolist() == [1.3, 1.0, 1.0]
    # no cost model, or one not fitted: no cost to serve
    for cost in (None, StandInCost(fitted=False)):
        assert purchases.group_rows(pm, cost, base, 2)["cost_to_serve"].tolist() == [0.0, 0.0, 0.0]
    # more fitted respondents than STANDARDISE_ROWS: a seeded sample of them
    monkeypatch.setattr(purchases, "STANDARDISE_ROWS", 3)
    sample = rows.sample(3, random_state=0)
    out = purchases.group_rows(pm, None, base, 2)
    revenue, _ = purchases._row(pm, sample, "detractor", np.ones(3), 2, fresh=True)
    assert out.loc["detractor", "revenue"] == pytest.approx(revenue, rel=1e-12)
    # the sample is seeded: 5 of 40 customers of different sizes, the same 5 every time (a random 5 would be
    # another set but once in 658,008)
    big = pd.concat([_rows()] * 10, ignore_index=True).assign(size=np.linspace(-1, 1, 40))
    pm.frame_, pm.fitted_rows_ = big, big.index
    monkeypatch.setattr(purchases, "STANDARDISE_ROWS", 5)
    revenue, _ = purchases._row(pm, big.sample(5, random_state=0), "detractor", np.ones(5), 2, fresh=True)
    assert purchases.group_rows(pm, None, base, 2).loc["detractor", "revenue"] == pytest.approx(revenue, rel=1e-12)
    pm.frame_, pm.fitted_rows_ = rows, rows.index
    monkeypatch.setattr(purchases, "STANDARDISE_ROWS", 4)  # exactly as many: all of them
    out = purchases.group_rows(pm, None, base, 2)
    revenue, _ = purchases._row(pm, rows, "detractor", np.ones(4), 2, fresh=True)
    assert out.loc["detractor", "revenue"] == pytest.approx(revenue, rel=1e-12)


def test_pricing_rows_by_hand():
    pm = _model()
    pm.summary_ = pd.DataFrame({"dropout_ratio": [1.3, np.nan]}, index=pd.Index(GROUPS[:2], name="group"))
    frame = pm.frame_
    base = pd.Series({"detractor": 200.0, "passive": 500.0})
    weights = pd.Series({7: 2.0, 3: 3.0})  # 1, a detractor, not given: 1
    cost = StandInCost()
    moves = [("detractor", "passive"), ("nobody", "passive"), ("passive", "promoter"), ("detractor", "promoter")]
    out = purchases.pricing_rows(pm, frame, cost, moves, base, 2, weights)
    assert out.index.name == "row"
    assert list(out.index) == ["detractor", "detractor as passive", "passive", "passive as promoter",
                               "detractor as promoter"]
    assert list(out.columns) == ["customers", "movers", "movers_effective", "as_group", "revenue", "cost_to_serve",
                                 "referrals", "hazard_ratio", "survival"]
    det = frame.loc[[7, 1]]
    w = np.array([2.0, 1.0])
    for name, as_group in [("detractor", None), ("detractor as passive", "passive"),
                           ("detractor as promoter", "promoter")]:
        revenue, survival = purchases._row(pm, det, as_group, w, 2)
        r = out.loc[name]
        assert r["revenue"] == pytest.approx(revenue, rel=1e-12)
        np.testing.assert_allclose(r["survival"], survival, rtol=1e-12)
        g = as_group or "detractor"
        assert r["cost_to_serve"] == pytest.approx(cost.level[g] * (7 * 2 + 1 * 1) / 3, rel=1e-12)
        assert r["as_group"] == g and r["customers"] == 200.0 and r["movers"] == 2
        assert r["movers_effective"] == pytest.approx(9 / 5)
    # the passives' dropout ratio is unknown, the promoters' not in the summary: 1 for both
    assert out.loc["detractor as passive", "hazard_ratio"] == 1.0 and out.loc["detractor", "hazard_ratio"] == 1.3
    assert out.loc["detractor as promoter", "hazard_ratio"] == 1.0
    p = out.loc["passive"]
    assert p["customers"] == 500.0 and p["movers"] == 1 and p["movers_effective"] == 1.0
    assert p["cost_to_serve"] == pytest.approx(2.0 * 3)
    assert out.loc["passive as promoter", "customers"] == 500.0
    assert out["referrals"].tolist() == [0.0] * 5 and out["hazard_ratio"].dtype == float
    # without weights every mover counts once; a group not in the base has 0 customers
    plain = purchases.pricing_rows(pm, frame, None, [("promoter", "passive")], pd.Series(dtype=float), 1)
    assert plain.loc["promoter", "customers"] == 0.0 and plain.loc["promoter", "cost_to_serve"] == 0.0
    revenue, _ = purchases._row(pm, frame.loc[[9]], "passive", np.ones(1), 1)
    assert plain.loc["promoter as passive", "revenue"] == pytest.approx(revenue, rel=1e-12)
    # no movers at all: the usual columns, no row
    none = purchases.pricing_rows(pm, frame, cost, [("nobody", "passive")], base, 2)
    assert none.empty and none.index.name == "row" and list(none.columns) == list(out.columns)


def test_effect_draws():
    labels = ["detractor", "passive", "promoter"]
    names = ["purchase:group[detractor]", "purchase:group[promoter]", "dropout:group[detractor]",
             "dropout:group[promoter]", "r"]
    cov = np.array([[0.04, 0.01, 0.006, 0.0, 0.3],
                    [0.01, 0.09, 0.0, -0.012, 0.3],
                    [0.006, 0.0, 0.0225, 0.003, 0.3],
                    [0.0, -0.012, 0.003, 0.0625, 0.3],
                    [0.3, 0.3, 0.3, 0.3, 9.0]])
    fit = SimpleNamespace(group_labels_=labels, reference_group="passive", covariance_=pd.DataFrame(cov, names, names))
    pm = purchases.PurchaseModel("passive")
    pm.bgnbd_ = fit
    rate, drop = purchases.effect_draws(pm, 200_000, 5)
    assert list(rate.columns) == ["detractor", "promoter", "passive", "_level"] == list(drop.columns)
    assert (rate["passive"] == 1.0).all() and (drop["_level"] == 1.0).all() and (rate["_level"] == 1.0).all()
    assert (drop["passive"] == 1.0).all() and len(rate) == 200_000
    logs = np.log(np.column_stack([rate["detractor"], rate["promoter"], drop["detractor"], drop["promoter"]]))
    # the sample covariance of the log draws is the estimates' to its sampling error (sd of a sample
    # variance: sqrt(2 / n) of it, 0.3%; 2% is several of those); their means 0
    np.testing.assert_allclose(np.cov(logs.T), cov[:4, :4], atol=0.02 * 0.0625)
    np.testing.assert_allclose(logs.mean(axis=0), 0.0, atol=0.005)
    again, _ = purchases.effect_draws(pm, 200_000, 5)
    pd.testing.assert_frame_equal(rate, again)
    other, _ = purchases.effect_draws(pm, 10, 6)
    assert not np.allclose(other["detractor"], rate["detractor"][:10])
    # a covariance that is not quite symmetric is symmetrised; a slightly negative eigenvalue is 0
    skew = cov[:4, :4].copy()
    skew[0, 1] += 0.004
    skew[1, 0] -= 0.004
    fit.covariance_ = pd.DataFrame(skew, names[:4], names[:4])
    rate, drop = purchases.effect_draws(pm, 200_000, 5)
    logs = np.log(np.column_stack([rate["detractor"], rate["promoter"], drop["detractor"], drop["promoter"]]))
    np.testing.assert_allclose(np.cov(logs.T), cov[:4, :4], atol=0.02 * 0.0625)
    singular = np.array([[0.04, 0.04], [0.04, 0.04]]) - np.diag([1e-12, 0])
    fit.group_labels_ = ["passive", "detractor"]
    fit.covariance_ = pd.DataFrame(singular, names[::2][:2], names[::2][:2])
    rate, drop = purchases.effect_draws(pm, 50_000, 1)
    assert np.isfinite(rate["detractor"]).all()
    d = np.log(rate["detractor"]) - np.log(drop["detractor"])
    assert np.abs(d).max() < 1e-4  # perfectly correlated, no NaN from the negative eigenvalue
    assert np.var(np.log(rate["detractor"])) == pytest.approx(0.04, rel=0.02)


# --------------------------------------------------------------------------- the summary and results


def test_results_by_hand():
    pm = _model()
    pm.bgnbd_.params_ = pd.Series({"r": 0.8, "alpha": np.float32(6.0)})
    pm.bgnbd_.log_likelihood_ = -123.5
    pm.controls_ = ("log_pre_purchase_rate",)
    s = pd.DataFrame({"customers": [120, 80], "small_group": [False, True]}, index=pd.Index(["passive", "promoter"]))
    for k in pm.estimates:
        s[k] = np.nan
    s.loc["promoter", ["purchase_rate_ratio", "purchase_rate_ratio_lo", "purchase_rate_ratio_hi"]] = [1.2, 1.1, 1.3]
    s.loc["promoter", ["dropout_ratio", "dropout_ratio_lo", "dropout_ratio_hi", "p_alive"]] = [0.9, 0.8, 1.0, 0.7]
    s["customers"] = s["customers"].astype(np.int64)
    pm.summary_ = s
    r = pm.results()
    nan_block = {"expected_purchases_12m": None, "p_alive": None, "spend_per_purchase": None,
                 "expected_revenue_12m": None, "repeat_rate_12m": None}
    assert r["passive"] == {"purchase_rate_ratio": None, "dropout_ratio": None, **nan_block, "customers": 120,
                            "small_group": False, "purchase_rate_ratio_ci": [None, None], "dropout_ratio_ci": [None, None]}
    assert list(r["passive"]) == ["purchase_rate_ratio", "dropout_ratio", "expected_purchases_12m", "p_alive",
                                  "spend_per_purchase", "expected_revenue_12m", "repeat_rate_12m", "customers",
                                  "small_group", "purchase_rate_ratio_ci", "dropout_ratio_ci"]
    assert r["promoter"] == {"purchase_rate_ratio": 1.2, "dropout_ratio": 0.9, **nan_block, "p_alive": 0.7,
                             "customers": 80, "small_group": True, "purchase_rate_ratio_ci": [1.1, 1.3],
                             "dropout_ratio_ci": [0.8, 1.0]}
    assert type(r["promoter"]["customers"]) is int and type(r["promoter"]["small_group"]) is bool
    assert type(r["promoter"]["p_alive"]) is float
    assert r["_model"] == {"parameters": {"r": 0.8, "alpha": 6.0}, "log_likelihood": -123.5,
                           "spend": {"p": 6.0, "q": 4.0, "gamma": 20.0}, "controls": ["log_pre_purchase_rate"],
                           "time_unit": "weeks", "customers_fitted": 4}
    assert type(r["_model"]["parameters"]["alpha"]) is float and type(r["_model"]["controls"]) is list
    assert list(r) == ["passive", "promoter", "_model"]
    pm.spend_ = None
    assert pm.results()["_model"]["spend"] is None
    pm.skipped_ = "Purchases: not fitted."
    assert list(pm.results()) == ["passive", "promoter"]


def test_defaults():
    pm = purchases.PurchaseModel("passive")
    assert pm.reference_group == "passive" and pm.covariates == [] and pm.min_group_size == 100 and pm.warnings_ == []
    pm = purchases.PurchaseModel("promoter", ("age",), 7)
    assert pm.covariates == ["age"] and type(pm.covariates) is list and pm.min_group_size == 7
    assert pm.label == "Purchases"


# --------------------------------------------------------------------------- fit_frame on stand-ins


def _hist():
    """Eight respondents: three detractors, three passives, two promoters; the pre-window columns the
    linkage controls need, with varying pre-window purchases."""
    n = 8
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "group": pd.Categorical(["detractor"] * 3 + ["passive"] * 3 + ["promoter"] * 2, categories=GROUPS),
        "pre_revenue": 100.0, "pre_contact_cost": 0.0, "pre_exposure_years": 1.0, "prior_sales": 100.0,
        "prior_sales_transactions": 2, "tenure_years": 2.0,
        "pre_transactions": [0, 1, 2, 3, 4, 5, 6, 7],
    }, index=pd.Index(range(20, 28)))


def _frame(h):
    return pd.DataFrame({"x": [2, 0, 1, 3, 0, 1, 4, 0], "t_x": [10.0, 0, 5, 40, 0, 20, 50, 0],
                         "T": [60.0, 0.0, 30.0, 60.0, 45.0, 52.0, 70.0, 10.0],
                         "mean_spend": [10.0, 0.0, 20.0, 30.0, 0.0, 40.0, 50.0, 0.0],
                         "first_weeks": [5.0, np.nan, 5.0, 53.0, np.nan, 20.0, 52.0, np.nan]}, index=h.index)


class RecordingBGNBD(StandInBGNBD):
    made: list = []
    error = None

    def __init__(self, group, reference):
        super().__init__()
        self.args = (group, reference)
        RecordingBGNBD.made.append(self)

    def fit(self, rows, covariates):
        if RecordingBGNBD.error:
            raise RecordingBGNBD.error
        self.rows, self.covariates = rows.copy(), covariates
        self.group_effects_ = pd.DataFrame(
            {"purchase_rate_ratio": [0.7, 1.0], "purchase_rate_ratio_lower": [0.5, 1.0],
             "purchase_rate_ratio_upper": [0.9, 1.0], "dropout_ratio": [1.4, 1.0], "dropout_ratio_lower": [1.1, 1.0],
             "dropout_ratio_upper": [1.8, 1.0]}, index=pd.Index(["detractor", "passive"], name="group"))
        self.closed_form = lambda t, r: 0.01 * t * (1 + r["x"].to_numpy(float))
        return self


class RecordingSpend(StandInSpend):
    made: list = []
    error = None
    mean = 40.0

    def __init__(self):
        super().__init__(mean=RecordingSpend.mean)
        RecordingSpend.made.append(self)

    def fit(self, rows):
        if RecordingSpend.error:
            raise RecordingSpend.error
        self.rows = rows.copy()
        return self


@pytest.fixture
def stand_ins(monkeypatch):
    RecordingBGNBD.made, RecordingBGNBD.error = [], None
    RecordingSpend.made, RecordingSpend.error, RecordingSpend.mean = [], None, 40.0
    monkeypatch.setattr(purchases, "BGNBD", RecordingBGNBD)
    monkeypatch.setattr(purchases, "GammaGamma", RecordingSpend)
    return RecordingBGNBD, RecordingSpend


@pytest.mark.filterwarnings("error")  # a group nobody of which was observed: no pandas deprecation either
def test_fit_frame_by_hand(stand_ins):
    h = _hist()
    # the promoters are never observed: row 27 (T 10 weeks) is, but pretend 26 and 27 answered on as_of
    frame = _frame(h).assign(T=[60.0, 0.0, 30.0, 60.0, 45.0, 52.0, 0.0, 0.0])
    pm = purchases.PurchaseModel("passive", min_group_size=3).fit_frame(h, frame)
    assert pm.skipped_ is None and pm.fitted
    bg = RecordingBGNBD.made[0]
    assert bg.args == ("group", "passive")
    assert list(bg.rows.index) == [20, 22, 23, 24, 25]  # observed (T > 0); the promoters none
    assert list(bg.rows["group"].cat.categories) == ["detractor", "passive"]
    assert bg.covariates == ["log_pre_purchase_rate"] == pm.controls_  # the other controls are constant
    np.testing.assert_allclose(bg.rows["log_pre_purchase_rate"], np.log1p([0, 2, 3, 4, 5]), rtol=1e-12)
    assert list(RecordingSpend.made[0].rows.index) == [20, 22, 23, 25]  # bought again: spend > 0
    assert list(pm.fitted_rows_) == [20, 22, 23, 24, 25] and list(pm.frame_.index) == list(h.index)
    assert pm.frame_["group"].isna().tolist() == [False] * 6 + [True, True]
    assert pm.groups_ == GROUPS
    s = pm.summary
    assert list(s.columns) == ["customers", *pm.estimates, "small_group"]
    assert list(s.index) == GROUPS and s["customers"].tolist() == [3, 3, 2]
    assert s["small_group"].tolist() == [False, False, True]
    assert pm.warnings_ == ["Purchases: the promoter group has only 2 customers; its estimate is unreliable."]
    assert s.loc["detractor", "purchase_rate_ratio"] == 0.7 and s.loc["detractor", "purchase_rate_ratio_lo"] == 0.5
    assert s.loc["detractor", "purchase_rate_ratio_hi"] == 0.9 and s.loc["detractor", "dropout_ratio"] == 1.4
    assert s.loc["detractor", "dropout_ratio_lo"] == 1.1 and s.loc["detractor", "dropout_ratio_hi"] == 1.8
    assert s.loc["passive", "purchase_rate_ratio"] == 1.0
    assert s.loc["promoter", ["purchase_rate_ratio", "expected_purchases_12m", "p_alive"]].isna().all()
    # detractors fitted: rows 20 (x 2) and 22 (x 1); passives 23 (x 3), 24 (x 0), 25 (x 1)
    e = 0.01 * WPY
    assert s.loc["detractor", "expected_purchases_12m"] == pytest.approx(e * (3 + 2) / 2, rel=1e-12)
    assert s.loc["passive", "expected_purchases_12m"] == pytest.approx(e * (4 + 1 + 2) / 3, rel=1e-12)
    assert s.loc["detractor", "p_alive"] == pytest.approx(0.6) and s.loc["passive", "p_alive"] == pytest.approx(
        (0.75 + 1 + 0.75) / 3)
    spend_d, spend_p = [15.0, 20.0], [25.0, 10.0, 30.0]
    assert s.loc["detractor", "spend_per_purchase"] == pytest.approx(17.5)
    assert s.loc["passive", "spend_per_purchase"] == pytest.approx(65 / 3)
    assert s.loc["detractor", "expected_revenue_12m"] == pytest.approx((e * 3 * 15 + e * 2 * 20) / 2, rel=1e-12)
    assert s.loc["passive", "expected_revenue_12m"] == pytest.approx(
        (e * 4 * spend_p[0] + e * 1 * spend_p[1] + e * 2 * spend_p[2]) / 3, rel=1e-12)
    # bought again within a year, of those followed a year (T >= 52.18 weeks): detractors 20 (5 weeks): 1;
    # passives 23 (53 weeks, after the year): 0, 25 (T 52 < a year) not followed; promoters not followed
    assert s.loc["detractor", "repeat_rate_12m"] == 1.0 and s.loc["passive", "repeat_rate_12m"] == 0.0
    assert np.isnan(s.loc["promoter", "repeat_rate_12m"])


def test_fit_frame_repeat_rate_edges(stand_ins):
    h = _hist()
    # T exactly a year and a first purchase exactly a year after the survey: followed, and bought again
    frame = _frame(h).assign(T=[WPY, 0.5, 30.0, WPY, 45.0, 52.0, 70.0, 10.0],
                             first_weeks=[WPY, np.nan, 5.0, WPY + 1e-9, np.nan, 20.0, 52.0, np.nan])
    h.loc[24, "group"] = np.nan  # a score outside every band: no group, not fitted
    pm = purchases.PurchaseModel("passive").fit_frame(h, frame)
    assert list(RecordingBGNBD.made[-1].rows.index) == [20, 21, 22, 23, 25, 26, 27]  # T of half a week is observed
    s = pm.summary
    assert s.loc["detractor", "repeat_rate_12m"] == 1.0 and s.loc["passive", "repeat_rate_12m"] == 0.0
    assert s.loc["promoter", "repeat_rate_12m"] == 1.0  # 26: followed 70 weeks, bought again at 52 weeks
    # without first purchase times, no repeat rate
    pm = purchases.PurchaseModel("passive").fit_frame(h, frame.drop(columns="first_weeks"))
    assert pm.summary["repeat_rate_12m"].isna().all() and pm.summary.loc["detractor", "p_alive"] > 0


def test_fit_frame_skips_and_warnings(stand_ins):
    h = _hist()
    pm = purchases.PurchaseModel("passive").fit_frame(h, _frame(h).assign(T=0.0))
    assert pm.skipped_ == ("Purchases: no respondent has any time observed after their survey, so how often and how "
                           "long each group buys cannot be measured.")
    assert pm.warnings_ == [pm.skipped_] and RecordingBGNBD.made == [] and pm.summary["customers"].tolist() == [3, 3, 2]
    RecordingBGNBD.error = ModelError("the likelihood is flat")
    pm = purchases.PurchaseModel("passive").fit_frame(h, _frame(h))
    assert pm.skipped_ == "Purchases: the buy-till-you-die model could not be fitted: the likelihood is flat"
    RecordingBGNBD.error = InputError("no repeat buyer")
    pm = purchases.PurchaseModel("passive").fit_frame(h, _frame(h))
    assert pm.skipped_ == "Purchases: the buy-till-you-die model could not be fitted: no repeat buyer"
    assert not pm.fitted and pm.warnings_ == [pm.skipped_]
    RecordingBGNBD.error = None
    # spend per purchase: a Gamma-Gamma that fails, or has no finite mean, leaves each customer's own mean
    for error, mean, why in [(ModelError("no convergence"), 40.0, "no convergence"),
                             (InputError("one buyer"), 40.0, "one buyer"),
                             (None, float("inf"), "spend per purchase has no finite mean (q <= 1)"),
                             (None, float("nan"), "spend per purchase has no finite mean (q <= 1)")]:
        RecordingSpend.error, RecordingSpend.mean = error, mean
        pm = purchases.PurchaseModel("passive", min_group_size=1).fit_frame(h, _frame(h))
        assert pm.skipped_ is None and pm.spend_ is None
        assert pm.warnings_ == [f"Purchases: spend per purchase is each customer's own mean (the Gamma-Gamma model "
                                f"could not be fitted: {why})."]
        # own means: detractors 20 (10) and 22 (20); passive 24 bought no more: the repeat buyers' mean
        assert pm.summary.loc["detractor", "spend_per_purchase"] == pytest.approx(15.0)
        assert pm.summary.loc["passive", "spend_per_purchase"] == pytest.approx((30 + 30 + 40) / 3)
    # a refit starts over: no warning left from before
    RecordingSpend.error, RecordingSpend.mean = None, 40.0
    pm.fit_frame(h, _frame(h))
    assert pm.warnings_ == [] and pm.spend_ is not None and pm.skipped_ is None


def test_fit_reads_the_purchase_summary_unless_given(stand_ins, monkeypatch):
    h = _hist()
    seen = []
    monkeypatch.setattr(purchases, "purchase_summary", lambda d, hist, p: seen.append((d, p)) or _frame(hist))
    pm = purchases.PurchaseModel("passive").fit("data", h, {"a": 1})
    assert seen == [("data", {"a": 1})] and pm.fitted and list(pm.frame_["x"]) == [2, 0, 1, 3, 0, 1, 4, 0]
    pm = purchases.PurchaseModel("passive").fit("data", h, {}, frame=_frame(h).assign(x=1))
    assert len(seen) == 1 and list(pm.frame_["x"]) == [1] * 8


# --------------------------------------------------------------------------- controls, business model, purchase summary


def test_controls_by_hand():
    h = pd.DataFrame({"pre_revenue": 0.0, "pre_contact_cost": 0.0, "prior_sales": 0.0, "prior_sales_transactions": 0,
                      "tenure_years": 1.0, "plan": ["a", "b", "a", "a", "a"],
                      # exactly 28 days of pre window (as history computes it: 28 / 365.25 years), 27 days, a
                      # year, half a year with a negative count (corrections): clipped at 0
                      "pre_exposure_years": [28 / DAYS_PER_YEAR, 27 / DAYS_PER_YEAR, 1.0, 0.5, 0.5],
                      "pre_transactions": [2, 5, 3, 8, -4]}, index=pd.Index([4, 5, 6, 7, 8]))
    out = purchases._controls(h, ["plan"])
    assert list(out.columns) == ["no_pre_history", "plan_b", "log_pre_purchase_rate"]
    assert (out.dtypes == float).all() and list(out.index) == [4, 5, 6, 7, 8]
    assert out["no_pre_history"].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert out["plan_b"].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(out["log_pre_purchase_rate"],
                               np.log1p([2 * DAYS_PER_YEAR / 28, 0.0, 3.0, 16.0, 0.0]), rtol=1e-12)
    # nothing varies: no control
    assert purchases._controls(h.iloc[[2]], []).shape == (1, 0)


def _customers_table(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "end_date"])
    return ibis.memtable(df, schema={"customer_id": "string", "end_date": "date"})


def test_business_model_word_for_word():
    no_end = SimpleNamespace(tables={"customers": _customers_table([("a", None), ("b", None)])})
    assert purchases.business_model({"business_model": "contractual"}, None) == (
        "contractual", "Contractual (customers cancel), as the run's business_model parameter says.")
    assert purchases.business_model({"business_model": "non_contractual"}, None) == (
        "non_contractual", "Non-contractual (customers never cancel; they stop buying), as the run's business_model "
                           "parameter says.")
    auto = ("non_contractual", "Non-contractual (customers never cancel; they stop buying): no customer has an "
                               "end_date, so how long customers stay is read from when they buy (business_model = auto).")
    assert purchases.business_model({"business_model": "auto"}, no_end) == auto
    assert purchases.business_model({}, no_end) == auto  # auto by default
    many = SimpleNamespace(tables={"customers": _customers_table(
        [(f"c{i}", dt.date(2024, 1, 1)) for i in range(1234)] + [("x", None)])})
    assert purchases.business_model({}, many) == (
        "contractual", "Contractual (customers cancel): 1,234 customers have an end_date (business_model = auto).")
    one = SimpleNamespace(tables={"customers": _customers_table([("a", dt.date(2024, 1, 1)), ("b", None)])})
    assert purchases.business_model({"business_model": "auto"}, one)[1].startswith("Contractual (customers cancel): 1 ")


AS_OF = "2025-12-31"
SHOP = {
    "customers": [{"customer_id": c, "start_date": "2020-01-01"} for c in ("a", "b", "c", "d", "e")],
    "responses": [
        {"customer_id": "a", "response_date": "2025-06-04", "nps": "9"},
        {"customer_id": "b", "response_date": "2025-03-01", "nps": "3"},
        {"customer_id": "c", "response_date": "2025-12-31", "nps": "7"},  # on as_of: no time observed
        {"customer_id": "d", "response_date": "2025-10-01", "nps": "8"},
        {"customer_id": "e", "response_date": "2025-09-01", "nps": "10"},
    ],
    "transactions": [
        {"customer_id": "a", "date": "2025-06-03", "amount": "500"},  # before the survey: out
        {"customer_id": "a", "date": "2025-06-04", "amount": "400"},  # the survey's day: out
        {"customer_id": "a", "date": "2025-06-05", "amount": "30"},  # two on one day: one purchase of 50
        {"customer_id": "a", "date": "2025-06-05", "amount": "20"},
        {"customer_id": "a", "date": "2025-07-01", "amount": "40"},  # a sale and its refund: no purchase
        {"customer_id": "a", "date": "2025-07-01", "amount": "-40"},
        {"customer_id": "a", "date": "2025-08-01", "amount": "-10"},  # a refund alone: no purchase
        {"customer_id": "a", "date": "2025-12-31", "amount": "25"},  # on as_of: in
        {"customer_id": "b", "date": "2025-02-01", "amount": "60"},  # only before the survey
        {"customer_id": "c", "date": "2025-12-30", "amount": "60"},
        {"customer_id": "d", "date": "2025-10-08", "amount": "0.5"},  # under 1 is still a purchase
        {"customer_id": "d", "date": "2025-10-22", "amount": "1.5"},
        {"customer_id": "e", "date": "2025-11-01", "amount": "12"},  # one purchase
    ],
}


def test_purchase_summary_by_hand(tmp_path):
    from cxvalue import data as cxdata

    p = load_params({"as_of": AS_OF, "min_group_size": 1})
    checked = cxdata.check(write_csv(tmp_path / "shop", SHOP), p)
    hist = pd.DataFrame({"customer_id": ["d", "b", "a", "c", "e"],
                         "response_date": pd.to_datetime(["2025-10-01", "2025-03-01", "2025-06-04", "2025-12-31",
                                                          "2025-09-01"])},
                        index=pd.Index([13, 11, 10, 12, 14], name="row"))
    out = purchases.purchase_summary(checked, hist, p)
    assert list(out.columns) == ["x", "t_x", "T", "mean_spend", "first_weeks"] and list(out.index) == [13, 11, 10, 12, 14]
    end = dt.date(2025, 12, 31)

    def weeks(a, b):
        return (b - a).days / 7

    a_survey, d_survey, b_survey = dt.date(2025, 6, 4), dt.date(2025, 10, 1), dt.date(2025, 3, 1)
    e_survey = dt.date(2025, 9, 1)
    assert out["x"].tolist() == [2, 0, 2, 0, 1] and out["x"].dtype == np.int64
    np.testing.assert_allclose(out["t_x"], [weeks(d_survey, dt.date(2025, 10, 22)), 0.0,
                                            weeks(a_survey, end), 0.0, weeks(e_survey, dt.date(2025, 11, 1))], rtol=1e-12)
    np.testing.assert_allclose(out["T"], [weeks(d_survey, end), weeks(b_survey, end), weeks(a_survey, end), 0.0,
                                          weeks(e_survey, end)], rtol=1e-12)
    np.testing.assert_allclose(out["mean_spend"], [1.0, 0.0, 37.5, 0.0, 12.0], rtol=1e-12)
    np.testing.assert_allclose(out["first_weeks"], [1.0, np.nan, 1 / 7, np.nan, weeks(e_survey, dt.date(2025, 11, 1))],
                               rtol=1e-12)


def test_fit_frame_adjusts_for_the_covariates(stand_ins):
    h = _hist().assign(plan=["a", "b", "a", "a", "b", "a", "a", "a"])
    pm = purchases.PurchaseModel("passive", ["plan"]).fit_frame(h, _frame(h))
    assert RecordingBGNBD.made[0].covariates == ["plan_b", "log_pre_purchase_rate"] == pm.controls_
    assert RecordingBGNBD.made[0].rows["plan_b"].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]  # 21 not observed


def test_fit_frame_keeps_the_band_order_and_every_spend(stand_ins):
    # groups whose band order is not alphabetical: the fit sees them in band order
    h = _hist()
    h["group"] = pd.Categorical(["low"] * 3 + ["mid"] * 3 + ["high"] * 2, categories=["low", "mid", "high"])
    pm = purchases.PurchaseModel("mid").fit_frame(h, _frame(h))
    assert list(RecordingBGNBD.made[0].rows["group"].cat.categories) == ["low", "mid", "high"]
    # no group has an effect (the stand-in answers for other groups): the summary's columns all the same
    assert list(pm.summary.columns) == ["customers", *pm.estimates, "small_group"]
    assert pm.summary["purchase_rate_ratio"].isna().all() and list(pm.summary.index) == ["low", "mid", "high"]
    # a mean spend under 1 is a spend: the Gamma-Gamma model sees it
    h = _hist()
    purchases.PurchaseModel("passive").fit_frame(h, _frame(h).assign(mean_spend=[10.0, 0.0, 0.5, 30, 0, 40, 50, 0]))
    assert list(RecordingSpend.made[-1].rows.index) == [20, 22, 23, 25, 26]
