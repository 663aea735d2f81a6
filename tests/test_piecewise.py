"""The piecewise-exponential fit on one row per unit (cxvalue.piecewise) against statsmodels' Poisson GLM
on the person-period rows it stands for: the same estimates and the same covariance."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cxvalue import piecewise

EDGES = (0.0, 0.25, 0.5, 1.0, 2.0, np.inf)
LABELS = ["a", "b", "c", "d", "e"]


def _world(n: int = 6000, seed: int = 1, mult=(1.0, 0.7, 1.3, 0.9, 0.5), max_follow: float = 3.0):
    """Units (customers, or a customer's time in one of two states) with a continuous and a binary term;
    person-period rows over EDGES, follow-up censored at random up to ``max_follow`` years."""
    rng = np.random.default_rng(seed)
    x1, g = rng.normal(size=n), (rng.random(n) < 0.3).astype(float)
    haz = 0.3 * np.exp(0.5 * x1 + 0.4 * g)
    e, cum, t = rng.exponential(size=n), np.zeros(n), np.full(n, np.inf)
    for (lo, hi), m in zip(zip(EDGES[:-1], EDGES[1:]), mult):
        seg = haz * m * (hi - lo) if np.isfinite(hi) else np.full(n, np.inf)
        hit = np.isinf(t) & (e <= cum + seg)
        t[hit] = lo + (e[hit] - cum[hit]) / (haz[hit] * m)
        cum = cum + seg
    censor = rng.uniform(0.2, max_follow, n)
    dur, ev = np.minimum(t, censor), t <= censor
    rows = []
    for k, (lo, hi) in enumerate(zip(EDGES[:-1], EDGES[1:])):
        r = np.flatnonzero(dur > lo)
        rows.append(pd.DataFrame({"unit": r, "period": k, "exposure": np.minimum(dur[r], hi) - lo,
                                  "event": (ev[r] & (dur[r] <= hi)).astype(float)}))
    return pd.DataFrame({"const": 1.0, "x1": x1, "g": g}), pd.concat(rows, ignore_index=True)


def _glm(X: pd.DataFrame, pp: pd.DataFrame, ref: int = 0):
    """statsmodels on the person-period rows, the interval ``ref`` as reference."""
    rows = X.iloc[pp["unit"]].reset_index(drop=True)
    for k in sorted(set(pp["period"]) - {ref}):
        rows[f"period[{LABELS[k]}]"] = (pp["period"] == k).to_numpy(float)
    return sm.GLM(pp["event"].to_numpy(), rows, family=sm.families.Poisson(),
                  offset=np.log(pp["exposure"].to_numpy())).fit()


def _fit(X, pp, **kw):
    return piecewise.fit(X, pp["unit"], pp["period"], LABELS, pp["event"], pp["exposure"], **kw)


def _same(fit: piecewise.PiecewiseFit, glm) -> None:
    names = list(glm.params.index)
    assert sorted(fit.params.index) == sorted(names)
    np.testing.assert_allclose(fit.params[names], glm.params, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fit.cov.loc[names, names], glm.cov_params(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(fit.bse[names], glm.bse, rtol=1e-6)
    np.testing.assert_allclose(fit.pvalues[names], glm.pvalues, rtol=1e-5, atol=1e-300)
    np.testing.assert_allclose(fit.conf_int().loc[names], glm.conf_int(), rtol=1e-6, atol=1e-9)


def test_the_same_fit_as_the_glm_on_person_periods():
    X, pp = _world()
    fit = _fit(X, pp)
    _same(fit, _glm(X, pp))
    assert fit.converged and fit.reference == "a" and 1 < fit.iterations < 30
    # and near the world's own coefficients
    assert fit.params["x1"] == pytest.approx(0.5, abs=0.05) and fit.params["g"] == pytest.approx(0.4, abs=0.08)
    assert fit.params["period[e]"] == pytest.approx(np.log(0.5), abs=0.15)


def test_units_with_time_in_two_states():
    """A customer's time before and after a change of state is two units with different terms."""
    X, pp = _world(n=4000, seed=3)
    cut = 0.4  # every customer switches state at 0.4 years: split each row that spans it
    rows = []
    for k, (lo, hi) in enumerate(zip(EDGES[:-1], EDGES[1:])):
        part = pp[pp["period"] == k]
        end = lo + part["exposure"]
        before = part.assign(exposure=np.minimum(end, cut) - lo, event=np.where(end <= cut, part["event"], 0.0))
        after = part.assign(unit=part["unit"] + len(X), exposure=end - np.maximum(lo, cut),
                            event=np.where(end > cut, part["event"], 0.0))
        rows += [before[before["exposure"] > 0], after[after["exposure"] > 0]]
    split = pd.concat(rows, ignore_index=True)
    units = pd.concat([X.assign(later=0.0), X.assign(later=1.0)], ignore_index=True)
    fit = _fit(units, split)
    _same(fit, _glm(units, split))
    assert abs(fit.params["later"]) < 3 * fit.bse["later"]  # the world has no such effect


def test_an_interval_without_events_has_no_hazard():
    """Time at risk in an interval but nobody leaving in it: hazard 0 there (-inf, variance 0); the rest is
    the GLM without those rows (which add nothing to the likelihood at a zero hazard)."""
    X, pp = _world(n=3000, seed=4)
    pp = pp.assign(event=np.where(pp["period"] == 2, 0.0, pp["event"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log(0) of the empty interval is expected, not warned about
        fit = _fit(X, pp)
    assert fit.params["period[c]"] == -np.inf and fit.bse["period[c]"] == 0
    _same_rest = _glm(X, pp[pp["period"] != 2])
    names = list(_same_rest.params.index)
    np.testing.assert_allclose(fit.params[names], _same_rest.params, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fit.cov.loc[names, names], _same_rest.cov_params(), rtol=1e-6, atol=1e-12)


def test_the_reference_is_the_first_interval_with_an_event_and_unreached_ones_are_left_out():
    X, pp = _world(n=3000, seed=5, max_follow=0.9)  # nobody followed past 0.9 years: d and e unreached
    assert set(pp["period"]) == {0, 1, 2}
    pp = pp.assign(event=np.where(pp["period"] == 0, 0.0, pp["event"]))  # nobody leaves in the first
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor the 0 / 0 of the intervals nobody reached
        fit = _fit(X, pp)
    assert fit.reference == "b" and fit.params["period[a]"] == -np.inf
    assert "period[d]" not in fit.params and "period[e]" not in fit.params
    ref = _glm(X, pp[pp["period"] != 0], ref=1)
    np.testing.assert_allclose(fit.params[list(ref.params.index)], ref.params, rtol=1e-7, atol=1e-9)


def test_no_event_at_all_and_a_fit_that_did_not_finish(monkeypatch):
    X, pp = _world(n=500, seed=6)
    with pytest.raises(ValueError, match="^no event$"):
        _fit(X, pp.assign(event=0.0))
    zero = _fit(X, pp, maxiter=0)  # no step: the crude rates
    assert zero.converged is False and zero.iterations == 0
    one = _fit(X, pp, maxiter=1)  # one Newton step from the crude rates: not there yet
    assert one.converged is False and one.iterations == 1
    assert not np.allclose(one.params[["const", "period[b]"]], zero.params[["const", "period[b]"]], rtol=1e-3)
    assert not np.allclose(one.params[["x1", "g"]], _glm(X, pp).params[["x1", "g"]], rtol=1e-4)
    done = _fit(X, pp)
    assert done.converged is True and 1 < done.iterations < 15
    _same(done, _glm(X, pp))
    assert _fit(X, pp, maxiter=done.iterations).converged is True
    assert _fit(X, pp, maxiter=done.iterations - 1).converged is False


def test_strong_effects_far_from_the_crude_start():
    """Strong effects put the optimum far from the crude start (a hazard ratio of 12 per unit of x1)."""
    rng = np.random.default_rng(8)
    n = 4000
    X = pd.DataFrame({"const": 1.0, "x1": rng.normal(scale=1.5, size=n)})
    rate = 0.05 * np.exp(2.5 * X["x1"].to_numpy())
    dur = np.minimum(rng.exponential(1 / rate), 1.5)
    ev = (dur < 1.5).astype(float)
    rows = []
    for k, (lo, hi) in enumerate(zip(EDGES[:-1], EDGES[1:])):
        r = np.flatnonzero(dur > lo)
        rows.append(pd.DataFrame({"unit": r, "period": k, "exposure": np.minimum(dur[r], hi) - lo,
                                  "event": ev[r] * (dur[r] <= hi)}))
    pp = pd.concat(rows, ignore_index=True)
    fit = _fit(X, pp)
    glm = _glm(X, pp)
    assert fit.converged
    np.testing.assert_allclose(fit.params[glm.params.index], glm.params, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fit.bse[glm.params.index], glm.bse, rtol=1e-6)
    assert fit.params["x1"] == pytest.approx(2.5, abs=0.1)


def test_steps_that_overshoot_are_halved(monkeypatch):
    """Newton steps five times too long (the information shrunk) overshoot and would run off; halved
    until the likelihood does not fall, they still reach the optimum (to the rounding of the likelihood,
    which wrong steps cannot get below, so not converged to 1e-10)."""
    X, pp = _world(n=3000, seed=9)
    glm = _glm(X, pp)
    information = piecewise._information
    monkeypatch.setattr(piecewise, "_information", lambda *a: (lambda i, s: (i / 5, s))(*information(*a)))
    fit = _fit(X, pp, maxiter=200)
    np.testing.assert_allclose(fit.params[glm.params.index], glm.params, rtol=1e-5)


def test_intervals_with_a_single_event_and_little_time():
    """An interval with one loss is estimated (and may be the reference); one reached for under a year of
    time at risk in all, without a loss, has a hazard of 0 (not "nobody reached it")."""
    X, pp = _world(n=3000, seed=7)
    first = np.flatnonzero((pp["period"] == 0) & (pp["event"] == 1))
    third = np.flatnonzero((pp["period"] == 2) & (pp["event"] == 1))
    pp.loc[pp.index[first[1:]], "event"] = 0.0  # one loss in the first interval, one in the third
    pp.loc[pp.index[third[1:]], "event"] = 0.0
    fit = _fit(X, pp)
    assert fit.reference == "a" and np.isfinite(fit.params["period[c]"])
    _same(fit, _glm(X, pp))
    few = pp[(pp["period"] != 4) | (pp.groupby("period").cumcount() < 3)].copy()  # 3 customers reach e ...
    few.loc[few["period"] == 4, ["event", "exposure"]] = [0.0, 0.1]  # ... for 0.3 years, nobody leaving
    fit = _fit(X, few)
    assert fit.params["period[e]"] == -np.inf


def test_inputs_as_the_callers_have_them():
    """Units and interval codes as floats (a pandas column with a gap), losses as booleans, a boolean term."""
    X, pp = _world(n=2000, seed=8)
    X["g"] = X["g"].astype(bool)
    fit = piecewise.fit(X, pp["unit"].astype(float), pp["period"].astype(float), LABELS, pp["event"].astype(bool),
                        pp["exposure"].to_list())
    _same(fit, _glm(X.astype(float), pp))


def test_a_single_loss_in_all():
    """One loss among everyone: the only interval with a hazard is the one it fell in, its rate the loss over
    that interval's time at risk."""
    X, pp = _world(n=500, seed=9)
    pp = pp.assign(event=0.0)
    pp.loc[pp.index[(pp["period"] == 1).to_numpy().nonzero()[0][0]], "event"] = 1.0
    fit = _fit(X[["const"]], pp)
    assert fit.reference == "b" and fit.params["period[a]"] == -np.inf
    assert np.exp(fit.params["const"]) == pytest.approx(1 / pp.loc[pp["period"] == 1, "exposure"].sum(), rel=1e-9)


def test_a_design_without_a_constant():
    """No constant column: the reference interval's log hazard is 0, as in the GLM on the rows without one."""
    X, pp = _world(n=2000, seed=10)
    _same(_fit(X[["x1", "g"]], pp), _glm(X[["x1", "g"]], pp))


def test_remove_data_keeps_the_estimates_and_drops_the_rows():
    X, pp = _world(n=500, seed=11)
    fit = _fit(X, pp)
    params, cov = fit.params.copy(), fit.cov.copy()
    stat, df = fit.score_test(X[["g"]].to_numpy())
    assert df == 4 and np.isfinite(stat)
    fit.remove_data()
    assert fit.design is None and fit.at_risk is None and fit.losses is None
    pd.testing.assert_series_equal(fit.params, params)
    pd.testing.assert_frame_equal(fit.cov, cov)


def test_score_test_is_statsmodels_on_the_person_periods():
    """The terms g x [interval k] (k not the reference): Rao's score test at the main-effects fit, as
    statsmodels computes it on the person-period rows; a term nobody has time in is left out."""
    X, pp = _world(n=3000, seed=12, mult=(1.0, 0.5, 1.6, 0.9, 0.5))
    Xs = X.assign(g2=(X["x1"] > 1).astype(float))
    fit = _fit(Xs, pp)
    rows = _glm(Xs, pp)
    Z = Xs[["g", "g2"]].to_numpy()
    extra = np.column_stack([Z[pp["unit"], j] * (pp["period"] == k).to_numpy() for j in range(2) for k in range(1, 5)])
    want = rows.score_test(exog_extra=extra)
    stat, df = fit.score_test(Z)
    assert df == 8 and stat == pytest.approx(float(np.ravel(want[0])[0]), rel=1e-6)
    # nobody with g2 = 1 followed past 1 year: those two terms go
    late = pp[~((pp["period"] >= 3) & (Xs["g2"].to_numpy()[pp["unit"]] == 1))]
    assert _fit(Xs, late).score_test(Z)[1] == 6
