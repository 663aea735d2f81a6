"""BG/NBD and Gamma-Gamma by hand (tests added for the mutation run, tests/MUTATION.md).

Every expected number is worked out here from the published closed forms with scipy.special (or
by numerical integration / a plain series), never read back from cxvalue.btyd:

* BG/NBD likelihood of one customer (Fader, Hardie & Lee 2005a, eq. 6), with the covariate links
  ``alpha_i = alpha exp(-g1 z)``, ``a_i = a exp(g2 z)``;
* P(alive) as the share of the likelihood's first term (note 021);
* E[X(t)] (eq. 10) with the Gaussian hypergeometric series summed term by term;
* the Gamma-Gamma density of a mean spend by integrating the Gamma(p x, x nu) density of the mean
  over nu ~ Gamma(q, gamma), and its conditional expected spend from the Gamma posterior of nu.

Small data sets only: the fits here take a fraction of a second each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

from cxvalue import btyd
from cxvalue.btyd import BGNBD, GammaGamma, aggregate_patterns, customer_summary, group_outputs
from cxvalue.exceptions import InputError, ModelError

Z = 1.959963984540054


# --------------------------------------------------------------------------- independent closed forms

def ll_one(r, alpha, a, b, x, t_x, T):
    """log L of one customer, FHL 2005a eq. (6)."""
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    first = common + special.betaln(a, b + x) - (r + x) * np.log(alpha + T)
    if x == 0:
        return first
    second = common + special.betaln(a + 1, b + x - 1) - (r + x) * np.log(alpha + t_x)
    return np.logaddexp(first, second)


def ll_total(theta, frame, zcols=(), w=None):
    """Sum of eq. (6) over the rows, vectorised: theta = log r, log alpha, log a, log b, g1 (k), g2 (k)."""
    r, alpha, a, b = np.exp(theta[:4])
    k = len(zcols)
    z = frame[list(zcols)].to_numpy(float) if k else np.zeros((len(frame), 0))
    alpha_i, a_i = alpha * np.exp(-z @ theta[4:4 + k]), a * np.exp(z @ theta[4 + k:4 + 2 * k])
    x, t_x, T = (frame[c].to_numpy(float) for c in ("x", "t_x", "T"))
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha_i) - special.betaln(a_i, b)
    first = common + special.betaln(a_i, b + x) - (r + x) * np.log(alpha_i + T)
    second = common + special.betaln(a_i + 1, np.maximum(b + x - 1, 1e-9)) - (r + x) * np.log(alpha_i + t_x)
    ll = np.where(x > 0, np.logaddexp(first, np.where(x > 0, second, -np.inf)), first)
    w = np.ones(len(frame)) if w is None else w
    return float(w @ ll)


def p_alive_one(r, alpha, a, b, x, t_x, T):
    if x == 0:
        return 1.0
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    first = common + special.betaln(a, b + x) - (r + x) * np.log(alpha + T)
    return float(np.exp(first - ll_one(r, alpha, a, b, x, t_x, T)))


def hyp2f1_series(p, q, c, z, terms=4000):
    total, term = 1.0, 1.0
    for n in range(terms):
        term *= (p + n) * (q + n) / ((c + n) * (n + 1)) * z
        total += term
    return total


def expected_one(t, r, alpha, a, b, x, t_x, T):
    """FHL 2005a eq. (10)."""
    hyp = hyp2f1_series(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    head = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    odds = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
    return head / (1 + odds)


def gg_density(p, q, gamma, x, m):
    """Density of a customer's mean spend over x purchases: integrate over nu ~ Gamma(q, rate gamma)."""
    f = lambda nu: stats.gamma.pdf(m, a=p * x, scale=1 / (x * nu)) * stats.gamma.pdf(nu, a=q, scale=1 / gamma)
    value, _ = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-11, limit=400)
    return value


def num_grad(f, theta, h=1e-5):
    g = np.zeros_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        g[j] = (f(theta + e) - f(theta - e)) / (2 * h)
    return g


def num_hess(f, theta, h=1e-4):
    k = theta.size
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = h, h
            H[i, j] = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)) / (4 * h * h)
    return H


def _fixed(params, group=None, reference=None, labels=(), covariates=(), g1=(), g2=()):
    """A BGNBD with given parameters, without fitting."""
    m = BGNBD(group, reference)
    names = [f"group[{lab}]" for lab in labels if lab != reference] + list(covariates)
    m.covariates_ = list(covariates)
    m.group_labels_ = list(labels)
    m.design_columns_ = names
    m._theta = np.r_[np.log(params), g1, g2]
    m.params_ = pd.Series(np.r_[params, g1, g2])
    return m


# A small customer table: buyers and non-buyers, two groups, a numeric control
SMALL = pd.DataFrame({
    "x":   [2, 1, 0, 5, 0, 3, 1, 0, 4, 2, 0, 1, 6, 0, 2, 1],
    "t_x": [30.4, 5.0, 0.0, 36.0, 0.0, 20.0, 12.5, 0.0, 33.0, 8.0, 0.0, 1.0, 38.0, 0.0, 25.0, 18.0],
    "T":   [38.9, 38.0, 37.0, 39.0, 30.0, 35.0, 36.0, 20.0, 38.0, 30.0, 39.0, 25.0, 39.0, 33.0, 38.0, 31.0],
    "group": ["a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b"],
    "size": [0.5, 1.0, -0.3, 2.0, 0.0, 1.5, -1.0, 0.2, 1.1, 0.4, -0.5, 0.9, 1.8, -0.2, 0.6, 0.3],
})


# --------------------------------------------------------------------------- likelihood

@pytest.mark.parametrize("theta", [np.log([0.243, 4.414, 0.793, 2.426]), np.log([1.7, 0.6, 3.0, 0.8])])
def test_bgnbd_likelihood_value_and_gradient_match_eq6(theta):
    like = btyd._BGNBDLikelihood(SMALL["x"], SMALL["t_x"], SMALL["T"], np.zeros((len(SMALL), 0)),
                                 np.arange(1, len(SMALL) + 1) / 4)
    w = np.arange(1, len(SMALL) + 1) / 4
    value, grad = like(theta)
    assert -value == pytest.approx(ll_total(theta, SMALL, w=w), rel=1e-11)
    np.testing.assert_allclose(-grad, num_grad(lambda t: ll_total(t, SMALL, w=w), theta), rtol=1e-6, atol=1e-7)


def test_bgnbd_likelihood_with_a_covariate_matches_eq6():
    theta = np.r_[np.log([0.8, 3.0, 1.4, 2.2]), 0.35, -0.6]
    z = SMALL[["size"]].to_numpy()
    like = btyd._BGNBDLikelihood(SMALL["x"], SMALL["t_x"], SMALL["T"], z, np.ones(len(SMALL)))
    value, grad = like(theta)
    assert -value == pytest.approx(ll_total(theta, SMALL, ["size"]), rel=1e-11)
    np.testing.assert_allclose(-grad, num_grad(lambda t: ll_total(t, SMALL, ["size"]), theta), rtol=1e-6, atol=1e-7)


def test_bgnbd_likelihood_with_two_covariates_and_weights():
    # two columns: the covariate patterns must be told apart by both
    frame = SMALL.assign(grp=(SMALL["group"] == "b").astype(float))
    z = frame[["grp", "size"]].to_numpy()
    w = np.linspace(0.5, 2.0, len(frame))
    theta = np.r_[np.log([0.8, 3.0, 1.4, 2.2]), 0.2, -0.3, 0.5, 0.1]

    def ll(t):
        r, alpha, a, b = np.exp(t[:4])
        total = 0.0
        for i in range(len(frame)):
            e1, e2 = z[i] @ t[4:6], z[i] @ t[6:8]
            total += w[i] * ll_one(r, alpha * np.exp(-e1), a * np.exp(e2), b, frame["x"][i], frame["t_x"][i], frame["T"][i])
        return total

    value, grad = btyd._BGNBDLikelihood(frame["x"], frame["t_x"], frame["T"], z, w)(theta)
    assert -value == pytest.approx(ll(theta), rel=1e-11)
    np.testing.assert_allclose(-grad, num_grad(ll, theta), rtol=1e-6, atol=1e-7)


def test_factorize_rows_and_dot():
    z = np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 2.0], [0.0, 3.0], [1.0, 3.0]])
    inv, rows = btyd._factorize_rows(z)
    assert list(inv) == [0, 1, 0, 2, 1]
    np.testing.assert_array_equal(rows, [[1.0, 2.0], [1.0, 3.0], [0.0, 3.0]])
    np.testing.assert_array_equal(z, rows[inv])
    # (2, 0) and (0, 2) must not collide: codes 1*size + 0 vs 0*size + 1 ...
    z2 = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    inv2, rows2 = btyd._factorize_rows(z2)
    assert list(inv2) == [0, 1, 2, 3]
    np.testing.assert_array_equal(rows2, z2)
    inv0, rows0 = btyd._factorize_rows(np.zeros((3, 0)))
    assert list(inv0) == [0, 0, 0] and rows0.shape == (1, 0)
    assert btyd._dot(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])) == 32.0


def test_mean_rate_reparametrisation():
    theta = np.array([0.3, 1.1, -0.2, 0.4, 0.7])
    phi = btyd._to_mean_rate(theta)
    np.testing.assert_array_equal(phi, [0.3, 0.3 - 1.1, -0.2, 0.4, 0.7])
    assert theta[1] == 1.1  # not changed in place
    np.testing.assert_allclose(btyd._from_mean_rate(phi), theta, rtol=0, atol=1e-15)
    assert phi[1] == 0.3 - 1.1
    # the gradient by the chain rule, against differences of the wrapped function
    f = lambda t: (float(t[0] ** 2 + 3 * t[0] * t[1] + np.sin(t[1]) + t[2] ** 3),
                   np.array([2 * t[0] + 3 * t[1], 3 * t[0] + np.cos(t[1]), 3 * t[2] ** 2]))
    g = btyd._by_mean_rate(f)
    p = np.array([0.4, -0.7, 1.2])
    value, grad = g(p)
    assert value == f(btyd._from_mean_rate(p))[0]
    np.testing.assert_allclose(grad, num_grad(lambda q: g(q)[0], p), rtol=1e-8)


def test_hessian_of_a_known_function():
    A = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, -0.2], [0.5, -0.2, 2.0]])
    f = lambda t: (0.5 * t @ A @ t + (t[0] ** 3) / 3, A @ t + np.array([t[0] ** 2, 0.0, 0.0]))
    theta = np.array([2.0, -30.0, 0.1])
    H = btyd._hessian(f, theta)
    # d2/dt0^2 adds 2 t0 = 4; forward difference error ~ step * max(1, |t|)
    expected = A + np.diag([4.0, 0.0, 0.0])
    np.testing.assert_allclose(H, expected, atol=1e-4)
    assert (H == H.T).all()
    # a step of 1e-6 scaled by |theta|: at theta0 = 2 the forward difference of t0^2 is off by 2e-6
    assert H[0, 0] - 8.0 == pytest.approx(2e-6, rel=0.05)
    H2 = btyd._hessian(f, theta, step=1e-3)
    assert H2[0, 0] - 8.0 == pytest.approx(2e-3, rel=1e-3)


def test_covariance_errors():
    np.testing.assert_allclose(btyd._covariance(np.array([[2.0, 0.0], [0.0, 4.0]]), "X"), [[0.5, 0], [0, 0.25]])
    with pytest.raises(ModelError, match=r"^W: the information matrix is singular; a covariate or group has no "
                                         r"variation or no buyers\.$"):
        btyd._covariance(np.zeros((2, 2)), "W")
    with pytest.raises(ModelError, match=r"^V: the standard errors are not defined \(the likelihood is flat in some "
                                         r"direction\); drop constant covariates or tiny groups\.$"):
        btyd._covariance(np.array([[1.0, 0.0], [0.0, -1.0]]), "V")
    with pytest.raises(ModelError, match="standard errors are not defined"):
        btyd._covariance(np.array([[1.0, 0.0], [0.0, 1e-320]]), "V")


def test_minimise_finds_a_minimum_and_reports_failures():
    f = lambda t: (float(((t - 3.0) ** 2).sum()), 2 * (t - 3.0))
    res = btyd._minimise(f, np.zeros(2), "Q")
    np.testing.assert_allclose(res.x, [3.0, 3.0], atol=1e-6)
    with pytest.raises(ModelError, match=r"^Q: the likelihood is not finite at the start or optimum; check the data "
                                         r"\(t_x <= T, x >= 0\)\.$"):
        btyd._minimise(lambda t: (float("nan"), np.zeros(1)), np.zeros(1), "Q")
    # a gradient that does not match the value: the optimiser stops where the gradient is not 0
    with pytest.raises(ModelError, match=r"^R: the fit did not converge \(.*\); the data may not identify the model "
                                         r"\(e\.g\. too few repeat buyers, or a group where nobody buys again\)\.$"):
        btyd._minimise(lambda t: (0.5, np.array([0.002])), np.zeros(1), "R")
    with pytest.raises(ModelError, match="did not converge"):
        btyd._minimise(lambda t: (0.5, np.array([-0.002])), np.zeros(1), "R")
    with pytest.raises(ModelError, match="did not converge"):
        btyd._minimise(lambda t: (0.5, np.array([np.nan])), np.zeros(1), "R")
    # the tolerance is 1e-3 * max(1, |value|)
    btyd._minimise(lambda t: (0.5, np.array([0.0009])), np.zeros(1), "R")
    btyd._minimise(lambda t: (-4000.0, np.array([3.9])), np.zeros(1), "R")
    with pytest.raises(ModelError, match="did not converge"):
        btyd._minimise(lambda t: (-4000.0, np.array([4.1])), np.zeros(1), "R")


# --------------------------------------------------------------------------- predictions

PARAMS = np.array([0.243, 4.414, 0.793, 2.426])


def test_probability_alive_and_purchase_rate_by_hand():
    m = _fixed(PARAMS)
    frame = pd.DataFrame({"x": [2, 0, 7, 1], "t_x": [30.43, 0.0, 10.0, 38.0], "T": [38.86, 20.0, 38.0, 38.0]})
    expected = [p_alive_one(*PARAMS, *row) for row in frame[["x", "t_x", "T"]].itertuples(index=False)]
    np.testing.assert_allclose(m.probability_alive(frame), expected, rtol=1e-12)
    assert m.probability_alive(frame)[1] == 1.0
    np.testing.assert_allclose(m.purchase_rate(frame), 0.243 / 4.414, rtol=1e-14)


def test_expected_purchases_by_hand_eq10():
    m = _fixed(PARAMS)
    frame = pd.DataFrame({"x": [2, 0, 7, 1], "t_x": [30.43, 0.0, 10.0, 38.0], "T": [38.86, 20.0, 38.0, 38.0]})
    expected = [expected_one(39, *PARAMS, *row) for row in frame[["x", "t_x", "T"]].itertuples(index=False)]
    np.testing.assert_allclose(m.expected_purchases(39, frame), expected, rtol=1e-10)
    assert round(expected[0], 3) == 1.226  # the paper's example


def test_predictions_with_group_and_covariate_by_hand():
    g1, g2 = [np.log(0.75), 0.2], [np.log(1.5), -0.1]
    m = _fixed(np.array([1.2, 3.0, 0.6, 2.5]), "group", "a", ["a", "b"], ["size"], g1, g2)
    frame = SMALL.iloc[:6]
    r, alpha, a, b = 1.2, 3.0, 0.6, 2.5
    for i, row in enumerate(frame.itertuples(index=False)):
        zb = 1.0 if row.group == "b" else 0.0
        al = alpha * np.exp(-(g1[0] * zb + g1[1] * row.size))
        ai = a * np.exp(g2[0] * zb + g2[1] * row.size)
        assert m.purchase_rate(frame)[i] == pytest.approx(r / al, rel=1e-12)
        assert m.probability_alive(frame)[i] == pytest.approx(p_alive_one(r, al, ai, b, row.x, row.t_x, row.T), rel=1e-12)
        assert m.expected_purchases(10, frame)[i] == pytest.approx(
            expected_one(10, r, al, ai, b, row.x, row.t_x, row.T), rel=1e-10)


def test_expected_purchases_euler_branch(monkeypatch):
    # where scipy's direct series gives no finite value, Euler's transformation is used: same number
    m = _fixed(PARAMS)
    frame = pd.DataFrame({"x": [2, 3, 0], "t_x": [30.43, 12.0, 0.0], "T": [38.86, 30.0, 25.0]})
    expected = [expected_one(39, *PARAMS, *row) for row in frame[["x", "t_x", "T"]].itertuples(index=False)]
    real = special.hyp2f1
    calls = []

    def fake(p, q, c, z):
        calls.append(1)
        out = np.array(real(p, q, c, z), float)
        if len(calls) == 1:
            out[[0, 2]] = np.nan  # the direct series "fails" for rows 0 and 2
        return out

    monkeypatch.setattr(btyd.special, "hyp2f1", fake)
    np.testing.assert_allclose(m.expected_purchases(39, frame), expected, rtol=1e-9)
    assert len(calls) == 2


def test_predictions_need_a_fit_and_the_columns():
    with pytest.raises(ModelError, match=r"^BGNBD: call fit\(\) first\.$"):
        BGNBD().probability_alive(SMALL)
    with pytest.raises(InputError, match=r"^BGNBD: the customer table has no column \['T'\]; build it with "
                                         r"cxvalue\.btyd\.customer_summary\(\)\.$"):
        _fixed(PARAMS).probability_alive(SMALL.drop(columns="T"))
    with pytest.raises(ModelError, match=r"^GammaGamma: call fit\(\) first\.$"):
        GammaGamma().expected_spend(SMALL)
    assert BGNBD()._repr_html_() == "<p>BGNBD (not fitted)</p>"
    assert GammaGamma()._repr_html_() == "<p>GammaGamma (not fitted)</p>"
    with pytest.raises(ModelError, match=r"^GammaGamma: call fit\(\) first\.$"):
        GammaGamma().summary
    with pytest.raises(InputError, match=r"^BGNBD: give reference_group together with group\.$"):
        BGNBD("group")


# --------------------------------------------------------------------------- the fit

def _check_optimum(fit, frame, zcols=(), w=None, rtol=2e-3):
    theta = np.r_[np.log(fit.params_.iloc[:4].to_numpy()), fit.params_.iloc[4:].to_numpy()]
    f = lambda t: ll_total(t, frame, zcols, w)
    assert fit.log_likelihood_ == pytest.approx(f(theta), rel=1e-10)
    np.testing.assert_allclose(num_grad(f, theta), 0.0, atol=5e-3)
    cov = np.linalg.inv(-num_hess(f, theta))
    np.testing.assert_allclose(fit.covariance_.to_numpy(), cov, rtol=rtol, atol=1e-6)
    return theta, cov


_CDNOW = pd.read_csv(Path(__file__).parent / "data" / "cdnow" / "cdnow_customers_summary_with_transactions.csv")
CDN = pd.DataFrame({"x": _CDNOW["x"], "t_x": _CDNOW["t_x"], "T": _CDNOW["T"], "mean_spend": _CDNOW["zbar"],
                    "group": np.where(_CDNOW["ID"] % 2 == 1, "a", "b"), "size": (_CDNOW["ID"] % 7 - 3) / 3.0})
W3 = 1.0 + (_CDNOW["ID"] % 3).to_numpy(float)


def test_bgnbd_fit_is_the_maximum_of_eq6():
    fit = BGNBD().fit(CDN)
    theta, cov = _check_optimum(fit, CDN)
    assert list(fit.params_.index) == ["r", "alpha", "a", "b"]
    assert list(fit.covariance_.index) == ["log r", "log alpha", "log a", "log b"]
    assert list(fit.covariance_.columns) == ["log r", "log alpha", "log a", "log b"]
    assert fit.customers_ == 2357.0 and fit.patterns_ < 2357 and fit.group_effects_ is None
    s = fit.summary
    assert s.index.name == "parameter"
    assert list(s.columns) == ["estimate", "se", "lower_95", "upper_95", "ratio", "ratio_lower_95", "ratio_upper_95"]
    se = np.sqrt(np.diag(fit.covariance_.to_numpy()))
    np.testing.assert_allclose(s["estimate"], np.exp(theta), rtol=1e-12)
    np.testing.assert_allclose(s["se"], np.exp(theta) * se, rtol=1e-12)
    np.testing.assert_allclose(s["lower_95"], np.exp(theta - Z * se), rtol=1e-12)
    np.testing.assert_allclose(s["upper_95"], np.exp(theta + Z * se), rtol=1e-12)
    assert s[["ratio", "ratio_lower_95", "ratio_upper_95"]].isna().all().all()


def test_bgnbd_fit_with_weights_equals_repeated_rows():
    fit = BGNBD().fit(CDN, weights=W3, aggregate=False)
    _check_optimum(fit, CDN, w=W3)
    assert fit.customers_ == W3.sum() and fit.patterns_ == 2357
    by_name = BGNBD().fit(CDN.assign(n=W3), weights="n")
    np.testing.assert_allclose(by_name.params_, fit.params_, rtol=1e-5)
    assert by_name.log_likelihood_ == pytest.approx(fit.log_likelihood_, rel=1e-10)


def test_bgnbd_fit_with_group_and_covariate_is_the_maximum_of_eq6():
    frame = CDN.assign(group=pd.Categorical(CDN["group"], categories=["b", "a"]))
    fit = BGNBD("group", "b").fit(frame, covariates=["size"])
    frame_z = CDN.assign(za=(CDN["group"] == "a").astype(float))
    zcols = ["za", "size"]
    assert list(fit.params_.index) == ["r", "alpha", "a", "b", "purchase:group[a]", "purchase:size",
                                       "dropout:group[a]", "dropout:size"]
    assert fit.design_columns_ == ["group[a]", "size"]
    theta, cov = _check_optimum(fit, frame_z, zcols, rtol=5e-3)
    s = fit.summary
    se = np.sqrt(np.diag(cov))
    for j, name in enumerate(fit.params_.index[4:], start=4):
        assert s.loc[name, "estimate"] == pytest.approx(theta[j], rel=1e-12)
        assert s.loc[name, "se"] == pytest.approx(se[j], rel=5e-3)
        assert s.loc[name, "ratio"] == pytest.approx(np.exp(theta[j]), rel=1e-12)
        lo, hi = theta[j] - Z * s.loc[name, "se"], theta[j] + Z * s.loc[name, "se"]
        assert s.loc[name, "lower_95"] == pytest.approx(lo, rel=1e-12)
        assert s.loc[name, "upper_95"] == pytest.approx(hi, rel=1e-12)
        assert s.loc[name, "ratio_lower_95"] == pytest.approx(np.exp(lo), rel=1e-12)
        assert s.loc[name, "ratio_upper_95"] == pytest.approx(np.exp(hi), rel=1e-12)
    eff = fit.group_effects_
    assert list(eff.index) == ["b", "a"] and eff.index.name == "group"
    assert list(eff.columns) == ["customers", "purchase_rate_ratio", "purchase_rate_ratio_lower",
                                 "purchase_rate_ratio_upper", "dropout_ratio", "dropout_ratio_lower",
                                 "dropout_ratio_upper"]
    assert eff.loc["b"].drop("customers").tolist() == [1.0] * 6
    assert eff.loc["a", "customers"] == (CDN["group"] == "a").sum()
    assert eff.loc["b", "customers"] == (CDN["group"] == "b").sum()
    for process, key in (("purchase", "purchase_rate_ratio"), ("dropout", "dropout_ratio")):
        row = s.loc[f"{process}:group[a]"]
        assert eff.loc["a", key] == row["ratio"]
        assert eff.loc["a", f"{key}_lower"] == row["ratio_lower_95"]
        assert eff.loc["a", f"{key}_upper"] == row["ratio_upper_95"]
    # the predictions of the fitted model use each customer's alpha_i, a_i
    r, alpha, a, b = np.exp(theta[:4])
    for i in range(5):
        e1 = theta[4] * frame_z["za"][i] + theta[5] * frame_z["size"][i]
        e2 = theta[6] * frame_z["za"][i] + theta[7] * frame_z["size"][i]
        row = frame_z.iloc[i]
        assert fit.probability_alive(frame.iloc[[i]])[0] == pytest.approx(
            p_alive_one(r, alpha * np.exp(-e1), a * np.exp(e2), b, row["x"], row["t_x"], row["T"]), rel=1e-9)


def test_bgnbd_fit_weighted_groups_and_warm_start():
    cold = BGNBD("group", "a").fit(CDN, weights=W3)
    assert cold.group_effects_.loc["a", "customers"] == W3[CDN["group"] == "a"].sum()
    assert cold.group_effects_.loc["b", "customers"] == W3[CDN["group"] == "b"].sum()
    assert list(cold.group_effects_.index) == ["a", "b"]
    _check_optimum(cold, CDN.assign(zb=(CDN["group"] == "b").astype(float)), ["zb"], w=W3, rtol=5e-3)
    warm = BGNBD("group", "a")
    warm.warm_start_rows = 600
    warm.fit(CDN, weights=W3)
    np.testing.assert_allclose(warm.params_, cold.params_, rtol=1e-4, atol=1e-6)
    assert warm.log_likelihood_ == pytest.approx(cold.log_likelihood_, rel=1e-10)


def test_bgnbd_fit_warm_start_subset_failure_falls_back(monkeypatch):
    real = btyd._minimise
    calls = []

    def flaky(negll, theta0, who):
        calls.append(theta0.copy())
        if len(calls) == 1:
            raise ModelError("subset failed")
        return real(negll, theta0, who)

    monkeypatch.setattr(btyd, "_minimise", flaky)
    m = BGNBD()
    m.warm_start_rows = 500
    m.fit(CDN)
    assert len(calls) == 2
    np.testing.assert_array_equal(calls[0], calls[1])  # the second starts from scratch
    mean_x, mean_T = CDN["x"].mean(), CDN["T"].mean()
    np.testing.assert_allclose(calls[1], [0.0, np.log(mean_x / mean_T), 0.0, 0.0], rtol=1e-12)
    _check_optimum(m, CDN)


def test_bgnbd_start_values(monkeypatch):
    real = btyd._minimise
    calls = []
    monkeypatch.setattr(btyd, "_minimise", lambda n, t, who: calls.append((t.copy(), who)) or real(n, t, who))
    sixteen = pd.DataFrame({"x": [1] + [0] * 15, "t_x": [2.0] + [0.0] * 15, "T": [8.0] * 16})
    for frame, mean_x in ((sixteen, 1 / 16), (sixteen.iloc[:3].assign(T=[8.0] * 3).iloc[:1].pipe(
            lambda d: pd.concat([d] + [sixteen.iloc[[1]]] * 29, ignore_index=True)), 0.05)):
        calls.clear()
        try:
            BGNBD().fit(frame)
        except ModelError:
            pass
        # log(r / alpha) starts at log(mean x / mean T), mean x floored at 0.05
        assert calls[0][1] == "BGNBD"
        np.testing.assert_allclose(calls[0][0], [0.0, np.log(mean_x / 8.0), 0.0, 0.0], rtol=1e-12)
    calls.clear()
    BGNBD("group", "a").fit(CDN, covariates=["size"])
    assert calls[0][0][4:].tolist() == [0.0] * 4 and calls[0][0][0] == 0.0


def test_bgnbd_fit_rejects_bad_data_with_counts():
    ok = pd.DataFrame({"x": [1, 2, 0], "t_x": [5.0, 9.0, 0.0], "T": [10.0, 12.0, 9.0]})
    msg = "BGNBD: the customer table is not a valid (x, t_x, T) summary: "
    cases = [
        (ok.assign(x=[1.5, 2, -1]), "2 rows with x not a whole number >= 0."),
        (ok.assign(t_x=[-1.0, 12.5, 0.0]), "2 rows with t_x outside [0, T]."),
        (ok.assign(t_x=[5.0, 9.0, 3.0]), "1 rows with x = 0 but t_x > 0."),
        (ok.assign(T=[10.0, 12.0, 0.0]), "1 rows with T <= 0."),
        (ok.assign(T=[10.0, np.nan, 9.0]), "missing or infinite values in x, t_x or T."),
        (ok.assign(T=[10.0, np.inf, 9.0]), "missing or infinite values in x, t_x or T."),
        (ok.assign(x=[-1, 2, 0], T=[10.0, 12.0, -1.0]), "1 rows with x not a whole number >= 0; 1 rows with t_x outside [0, T]; 1 rows with T <= 0."),
    ]
    for frame, tail in cases:
        with pytest.raises(InputError) as err:
            BGNBD().fit(frame)
        assert str(err.value) == msg + tail, tail
    # t_x equal to T, or above it by rounding only, is fine
    BGNBD._check_data(ok.assign(t_x=[10.0 + 1e-10, 12.0, 0.0]).astype(float), np.ones(3))
    with pytest.raises(InputError, match="t_x outside"):
        BGNBD._check_data(ok.assign(t_x=[10.0 + 1e-8, 12.0, 0.0]).astype(float), np.ones(3))
    # buyers with weight 0 do not count
    with pytest.raises(ModelError, match=r"^BGNBD: nobody bought again in the window \(all x = 0\), so purchase rate "
                                         r"and dropout cannot be told apart; use a longer window\.$"):
        BGNBD._check_data(ok.astype(float), np.array([0.0, 0.0, 1.0]))
    BGNBD._check_data(ok.astype(float), np.array([0.0, 1.0, 0.0]))
    with pytest.raises(InputError, match=r"^BGNBD: covariates \['size'\] have missing values; fill or drop those "
                                         r"customers\.$"):
        BGNBD().fit(SMALL.assign(size=[np.nan] + [1.0] * 15), covariates=["size"])
    with pytest.raises(InputError, match=r"^BGNBD: the customer table has no column \['size'\]"):
        BGNBD().fit(SMALL.drop(columns="size"), covariates=["size"])
    with pytest.raises(InputError, match=r"^BGNBD: the customer table has no column \['group'\]"):
        BGNBD("group", "a").fit(SMALL.drop(columns="group"))
    with pytest.raises(InputError, match=r"^BGNBD: the reference group 'c' is not in column 'group' "
                                         r"\(groups: \['a', 'b'\]\)\.$"):
        BGNBD("group", "c").fit(SMALL)


def test_bgnbd_group_without_buyers_is_a_model_error():
    frame = SMALL.assign(group=["c" if x == 0 else g for x, g in zip(SMALL["x"], SMALL["group"])])
    with pytest.raises(ModelError, match=r"^BGNBD: nobody in the c group bought again in the window, so its purchase "
                                         r"rate and dropout cannot be estimated; merge it with another group\.$"):
        BGNBD("group", "a").fit(frame)
    # buyers of a group with weight 0 do not count either
    w = np.where((SMALL["group"] == "b") & (SMALL["x"] > 0), 0.0, 1.0)
    with pytest.raises(ModelError, match="nobody in the b group"):
        BGNBD("group", "a").fit(SMALL, weights=w)


def test_weights_errors():
    for bad in (np.ones(3), np.r_[np.ones(15), np.nan], np.r_[np.ones(15), -1.0], np.r_[np.ones(15), np.inf]):
        with pytest.raises(InputError, match=r"^weights: need one finite, non-negative weight per row\.$"):
            btyd._weights(SMALL, bad)
    np.testing.assert_array_equal(btyd._weights(SMALL, None), np.ones(16))
    np.testing.assert_array_equal(btyd._weights(SMALL, "size"), SMALL["size"].to_numpy()) if False else None
    np.testing.assert_array_equal(btyd._weights(SMALL.assign(n=np.arange(16)), "n"), np.arange(16.0))
    assert btyd._weights(SMALL.assign(n=np.arange(16)), "n").dtype == float
    np.testing.assert_array_equal(btyd._weights(SMALL, np.r_[np.zeros(15), 2.0]), np.r_[np.zeros(15), 2.0])


def test_aggregate_patterns_by_hand():
    frame = pd.DataFrame({"x": [1, 0, 1, 2, 0, 1], "T": [5.0, 3.0, 5.0, 5.0, np.nan, 5.0],
                          "other": list("abcdef")})
    out = aggregate_patterns(frame, ["x", "T"])
    assert list(out.columns) == ["x", "T", "customers"]
    assert out["x"].tolist() == [1, 0, 2, 0]  # in order of first appearance, missing keys kept
    assert out["T"].tolist()[:3] == [5.0, 3.0, 5.0] and np.isnan(out["T"].iloc[3])
    assert out["customers"].tolist() == [3.0, 1.0, 1.0, 1.0]
    w = aggregate_patterns(frame.set_index(pd.Index([10, 11, 12, 13, 14, 15])), ["x", "T"],
                           np.array([0.5, 1.0, 2.0, 1.0, 3.0, 4.0]), weight_name="n")
    assert w["n"].tolist() == [6.5, 1.0, 1.0, 3.0]
    assert list(w.index) == [0, 1, 2, 3]


# --------------------------------------------------------------------------- customer_summary

def _tx():
    return pd.DataFrame({
        "cid": [1, 1, 1, 1, 2, 2, 3, 1],
        "when": ["2024-01-01 00:00", "2024-01-01 15:00", "2024-01-15 00:00", "2024-02-12 00:00", "2024-01-08 00:00",
                 "2024-03-04 00:00", "2024-02-05 00:00", "2024-01-29 08:00"],
        "amt": [10.0, 5.0, 20.0, 30.0, 7.0, 9.0, 4.0, 40.0],
    })


def test_customer_summary_from_first_purchase_by_hand():
    s = customer_summary(_tx(), as_of="2024-02-26 13:00", customer_col="cid", date_col="when", amount_col="amt")
    assert s.index.name == "cid" and list(s.columns) == ["x", "t_x", "T", "mean_spend"]
    assert s.index.tolist() == [1, 2, 3]
    # customer 1: first day 01-01 (two purchases, 15), repeats 01-15 (20), 01-29 (40), 02-12 (30); 2: only
    # 01-08 before as_of; 3: 02-05
    assert s["x"].tolist() == [3, 0, 0] and s["x"].dtype == int
    np.testing.assert_allclose(s["t_x"], [6.0, 0.0, 0.0], rtol=1e-14)
    np.testing.assert_allclose(s["T"], [8.0, 7.0, 3.0], rtol=1e-14)
    np.testing.assert_allclose(s["mean_spend"], [30.0, 0.0, 0.0], rtol=1e-14)
    d = customer_summary(_tx(), as_of="2024-02-26", unit="D", customer_col="cid", date_col="when")
    assert "mean_spend" not in d
    np.testing.assert_allclose(d["t_x"], [42.0, 0.0, 0.0])
    np.testing.assert_allclose(d["T"], [56.0, 49.0, 21.0])


def test_customer_summary_with_a_start_by_hand():
    s = customer_summary(_tx(), as_of="2024-03-04", start="2024-01-08", customer_col="cid", date_col="when",
                         amount_col="amt", unit="D")
    # from 01-08: customer 1 buys 01-15, 01-29, 02-12; 2 buys 03-04 (01-08 itself does not count); 3 on 02-05
    assert s.index.tolist() == [1, 2, 3]
    assert s["x"].tolist() == [3, 1, 1]
    np.testing.assert_allclose(s["t_x"], [35.0, 56.0, 28.0])
    np.testing.assert_allclose(s["T"], [56.0, 56.0, 56.0])
    np.testing.assert_allclose(s["mean_spend"], [30.0, 9.0, 4.0])
    starts = pd.Series(pd.to_datetime(["2024-01-20 10:00", "2024-03-01 00:00", "2024-02-01 00:00"]), index=[1, 4, 3])
    t = customer_summary(_tx(), as_of="2024-03-04", start=starts, customer_col="cid", date_col="when",
                         amount_col="amt", unit="D")
    assert t.index.tolist() == [1, 4, 3] and t.index.name == "cid"
    assert t["x"].tolist() == [2, 0, 1]
    np.testing.assert_allclose(t["t_x"], [23.0, 0.0, 4.0])
    np.testing.assert_allclose(t["T"], [44.0, 3.0, 32.0])
    np.testing.assert_allclose(t["mean_spend"], [35.0, 0.0, 4.0])


def test_customer_summary_errors():
    with pytest.raises(InputError, match=r"^customer_summary: unit must be 'W' or 'D', not 'M'\.$"):
        customer_summary(_tx(), as_of="2024-03-04", unit="M", customer_col="cid", date_col="when")
    with pytest.raises(InputError, match=r"^customer_summary: the transactions table has no column \['date', 'x'\]\.$"):
        customer_summary(_tx(), as_of="2024-03-04", customer_col="cid", amount_col="x")
    with pytest.raises(InputError, match=r"^customer_summary: 2 customers start after as_of 2024-02-01\.$"):
        customer_summary(_tx(), as_of="2024-02-01", start=pd.Series(pd.to_datetime(["2024-02-02", "2024-03-01",
                                                                                        "2024-01-01"]), index=[1, 2, 3]),
                         customer_col="cid", date_col="when")
    # a start on as_of itself is allowed
    s = customer_summary(_tx(), as_of="2024-02-01", start="2024-02-01", customer_col="cid", date_col="when")
    assert s.index.tolist() == [1, 2] and s["T"].tolist() == [0.0, 0.0]  # 3 bought only after as_of


def test_customer_summary_default_column_names():
    tx = _tx().rename(columns={"cid": "customer_id", "when": "date"})
    s = customer_summary(tx, as_of="2024-02-26")
    assert s.index.name == "customer_id" and s["x"].tolist() == [3, 0, 0]
    np.testing.assert_allclose(s["T"], [8.0, 7.0, 3.0])


# --------------------------------------------------------------------------- Gamma-Gamma

GG = pd.DataFrame({"x": [2, 1, 5, 3, 0, 4, 1, 2, 6, 3, 1, 0],
                   "mean_spend": [20.0, 35.0, 12.0, 18.0, 0.0, 25.0, 60.0, 15.0, 22.0, 30.0, 9.0, 50.0]})


def gg_ll(theta, frame, w=None):
    p, q, g = np.exp(theta)
    w = np.ones(len(frame)) if w is None else w
    keep = frame["x"].to_numpy() > 0
    x, m = frame["x"].to_numpy(float)[keep], frame["mean_spend"].to_numpy(float)[keep]
    logf = (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(g)
            + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(g + m * x))
    return float((w[keep] * logf).sum())


def test_gamma_gamma_density_is_the_mixture_integral():
    # the closed form used by the helper above, against the integral over nu, then the code against both
    for p, q, g, x, m in [(6.25, 3.74, 15.44, 2, 20.0), (1.3, 2.2, 4.0, 5, 3.5), (0.7, 5.0, 40.0, 1, 12.0)]:
        theta = np.log([p, q, g])
        frame = pd.DataFrame({"x": [x], "mean_spend": [m]})
        assert np.exp(gg_ll(theta, frame)) == pytest.approx(gg_density(p, q, g, x, m), rel=1e-7)
    like = btyd._GammaGammaLikelihood(np.array([2.0, 5.0, 1.0]), np.array([20.0, 3.5, 12.0]), np.array([1.0, 2.0, 0.5]))
    frame = pd.DataFrame({"x": [2, 5, 1], "mean_spend": [20.0, 3.5, 12.0]})
    w = np.array([1.0, 2.0, 0.5])
    for theta in (np.log([6.25, 3.74, 15.44]), np.log([1.3, 2.2, 4.0])):
        value, grad = like(theta)
        assert -value == pytest.approx(gg_ll(theta, frame, w), rel=1e-12)
        np.testing.assert_allclose(-grad, num_grad(lambda t: gg_ll(t, frame, w), theta), rtol=1e-6, atol=1e-8)


def test_gamma_gamma_fit_is_the_maximum():
    w = W3.copy()
    w[:5] = 0.0
    gg = GammaGamma().fit(CDN, weights=w)
    theta = np.log(gg.params_.to_numpy())
    f = lambda t: gg_ll(t, CDN, w)
    assert gg.log_likelihood_ == pytest.approx(f(theta), rel=1e-11)
    np.testing.assert_allclose(num_grad(f, theta), 0.0, atol=1e-3)
    cov = np.linalg.inv(-num_hess(f, theta))
    np.testing.assert_allclose(gg.covariance_.to_numpy(), cov, rtol=2e-3)
    assert list(gg.params_.index) == ["p", "q", "gamma"] and gg.params_.name == "estimate"
    assert list(gg.covariance_.index) == ["log p", "log q", "log gamma"] == list(gg.covariance_.columns)
    keep = (CDN["x"].to_numpy() > 0) & (w > 0)
    assert gg.buyers_ == w[keep].sum()
    assert gg.spend_frequency_correlation_ == pytest.approx(
        np.corrcoef(CDN["x"][keep], CDN["mean_spend"][keep])[0, 1], rel=1e-12)
    s = gg.summary
    se = np.sqrt(np.diag(gg.covariance_.to_numpy()))
    assert s.index.name == "parameter" and list(s.index) == ["p", "q", "gamma"]
    assert list(s.columns) == ["estimate", "se", "lower_95", "upper_95"]
    np.testing.assert_allclose(s["estimate"], np.exp(theta), rtol=1e-12)
    np.testing.assert_allclose(s["se"], np.exp(theta) * se, rtol=1e-12)
    np.testing.assert_allclose(s["lower_95"], np.exp(theta - Z * se), rtol=1e-12)
    np.testing.assert_allclose(s["upper_95"], np.exp(theta + Z * se), rtol=1e-12)
    assert "<table" in gg._repr_html_()


def test_gamma_gamma_fit_without_weights_and_one_frequency():
    gg = GammaGamma().fit(CDN)
    theta = np.log(gg.params_.to_numpy())
    np.testing.assert_allclose(num_grad(lambda t: gg_ll(t, CDN), theta), 0.0, atol=1e-3)
    assert gg.buyers_ == 946.0
    same_x = CDN.assign(x=np.where(CDN["x"] > 0, 2, 0))
    assert np.isnan(GammaGamma().fit(same_x).spend_frequency_correlation_)


def test_gamma_gamma_errors():
    with pytest.raises(ModelError, match=r"^GammaGamma: 1 repeat buyers; spend per purchase needs customers who "
                                         r"bought again in the window\.$"):
        GammaGamma().fit(pd.DataFrame({"x": [0, 3, 2], "mean_spend": [0.0, 5.0, 6.0]}), weights=np.array([1, 1, 0.0]))
    with pytest.raises(InputError, match=r"^GammaGamma: 2 repeat buyers have a mean spend that is missing or not "
                                         r"positive; the model needs positive spend \(drop refunds-only customers\)\.$"):
        GammaGamma().fit(GG.assign(mean_spend=[20.0, 0.0, np.nan] + [10.0] * 9))
    with pytest.raises(InputError, match="not positive"):
        GammaGamma().fit(GG.assign(mean_spend=[20.0, -1.0] + [10.0] * 10))
    with pytest.raises(InputError, match="not positive"):
        GammaGamma().fit(GG.assign(mean_spend=[20.0, np.inf] + [10.0] * 10))
    with pytest.raises(InputError, match=r"^GammaGamma: the customer table has no column \['mean_spend'\]"):
        GammaGamma().fit(GG.drop(columns="mean_spend"))


def test_gamma_gamma_expected_spend_by_hand():
    gg = GammaGamma()
    gg.params_ = pd.Series([6.0, 3.0, 15.0], index=["p", "q", "gamma"])
    frame = pd.DataFrame({"x": [2, 0, 1], "mean_spend": [20.0, 99.0, 4.0]})
    # posterior nu | data ~ Gamma(q + p x, gamma + m x): E[p / nu] = p (gamma + m x) / (q + p x - 1)
    np.testing.assert_allclose(gg.expected_spend(frame), [6 * 55 / 14, 6 * 15 / 2, 6 * 19 / 8], rtol=1e-14)
    np.testing.assert_allclose(gg.expected_spend(frame[["x"]]), [6 * 15 / 14, 6 * 15 / 2, 6 * 15 / 8], rtol=1e-14)
    assert gg.population_mean_spend == 45.0
    gg.params_ = pd.Series([6.0, 1.0, 15.0], index=["p", "q", "gamma"])
    assert gg.population_mean_spend == float("inf")
    gg.params_ = pd.Series([6.0, 0.5, 15.0], index=["p", "q", "gamma"])
    assert gg.population_mean_spend == float("inf")


# --------------------------------------------------------------------------- group_outputs

def test_group_outputs_by_hand():
    m = _fixed(PARAMS, "group", "a", ["a", "b"], [], [np.log(0.5)], [np.log(2.0)])
    m.group_effects_ = pd.DataFrame({"customers": [8.0, 8.0], "purchase_rate_ratio": [1.0, 0.5]},
                                    index=pd.Index(["a", "b"], name="group"))
    gg = GammaGamma()
    gg.params_ = pd.Series([6.0, 3.0, 15.0], index=["p", "q", "gamma"])
    frame = SMALL.assign(mean_spend=np.linspace(5.0, 20.0, 16))
    out = group_outputs(m, gg, frame, 20)
    r, alpha, a, b = PARAMS
    rows = {"a": [], "b": []}
    for row in frame.itertuples(index=False):
        al, ai = (alpha, a) if row.group == "a" else (alpha / 0.5, a * 2.0)
        e = expected_one(20, r, al, ai, b, row.x, row.t_x, row.T)
        pa = p_alive_one(r, al, ai, b, row.x, row.t_x, row.T)
        sp = 6 * (15 + (row.mean_spend * row.x if row.x > 0 else 0.0)) / (6 * row.x + 2)
        rows[row.group].append((e, pa, sp, e * sp))
    assert list(out.columns) == ["customers", "purchase_rate_ratio", "expected_purchases", "p_alive",
                                 "spend_per_purchase", "expected_revenue"]
    for g in ("a", "b"):
        np.testing.assert_allclose(out.loc[g, ["expected_purchases", "p_alive", "spend_per_purchase",
                                               "expected_revenue"]].to_numpy(float),
                                   np.mean(rows[g], axis=0), rtol=1e-9)
    assert m.group_effects_.columns.tolist() == ["customers", "purchase_rate_ratio"]  # not changed
    bare = group_outputs(m, None, frame, 20)
    assert list(bare.columns) == ["customers", "purchase_rate_ratio", "expected_purchases", "p_alive"]
    with pytest.raises(ModelError, match=r"^group_outputs: the BG/NBD model was fitted without a group\.$"):
        group_outputs(_fixed(PARAMS), gg, frame, 20)


# --------------------------------------------------------------------------- second round (the first run's survivors)

def test_customer_summary_decimal_amounts_and_unsorted_customers():
    # amounts as a database driver returns NUMERIC columns (decimal.Decimal objects), customers not sorted
    from decimal import Decimal
    tx = pd.DataFrame({"customer_id": [3, 1, 2, 1, 3, 1],
                       "date": pd.to_datetime(["2024-01-10", "2024-01-02", "2024-01-05", "2024-01-09", "2024-01-24",
                                               "2024-01-16"]),
                       "amount": [Decimal("4.50"), Decimal("10.00"), Decimal("7.25"), Decimal("20.00"),
                                  Decimal("5.50"), Decimal("31.00")]})
    s = customer_summary(tx, as_of="2024-01-30", start="2024-01-01", unit="D", amount_col="amount")
    assert s.index.tolist() == [1, 2, 3]  # sorted by customer, whatever the order of the rows
    assert s["x"].tolist() == [3, 1, 2]
    np.testing.assert_allclose(s["t_x"], [15.0, 4.0, 23.0])
    assert s["mean_spend"].dtype == np.float64
    np.testing.assert_allclose(s["mean_spend"], [61.0 / 3, 7.25, 5.0], rtol=1e-14)


def test_customer_summary_start_on_as_of_is_not_after_it():
    starts = pd.Series(pd.to_datetime(["2024-02-01", "2024-03-01", "2024-01-01"]), index=[1, 2, 3])
    with pytest.raises(InputError, match=r"^customer_summary: 1 customers start after as_of 2024-02-01\.$"):
        customer_summary(_tx(), as_of="2024-02-01", start=starts, customer_col="cid", date_col="when")


def test_repr_html_shows_four_significant_digits():
    m = BGNBD()
    m.summary_ = pd.DataFrame({"estimate": [1.23456789, 12345.678]}, index=pd.Index(["r", "alpha"], name="parameter"))
    html = m._repr_html_()
    assert "<td>1.235</td>" in html and "<td>1.235e+04</td>" in html and "1.234568" not in html


def test_gamma_gamma_database_numbers_two_buyers_and_small_spend():
    from decimal import Decimal
    buyers = CDN[CDN["x"] > 0]
    floats = GammaGamma().fit(buyers)
    # x as Python ints and spend as Decimals in object columns: the same fit
    obj = pd.DataFrame({"x": pd.Series([int(v) for v in buyers["x"]], dtype=object),
                        "mean_spend": pd.Series([Decimal(repr(v)) for v in buyers["mean_spend"]], dtype=object)})
    np.testing.assert_allclose(GammaGamma().fit(obj).params_, floats.params_, rtol=1e-9)
    # spend in hundreds (mean spends under 1): the Gamma scale gamma scales, p and q do not
    cents = GammaGamma().fit(buyers.assign(mean_spend=buyers["mean_spend"] / 100))
    np.testing.assert_allclose(cents.params_[["p", "q"]], floats.params_[["p", "q"]], rtol=1e-4)
    assert cents.params_["gamma"] == pytest.approx(floats.params_["gamma"] / 100, rel=1e-4)
    # two repeat buyers are enough to try (the fit may still not identify the model)
    try:
        GammaGamma().fit(pd.DataFrame({"x": [1, 3, 0], "mean_spend": [10.0, 14.0, 0.0]}))
    except ModelError as err:
        assert "repeat buyers;" not in str(err)


def test_gamma_gamma_rejects_zero_spend_and_counts_it():
    for spend, n in (([20.0, 0.0] + [10.0] * 10, 1), ([0.5, 0.0] + [10.0] * 10, 1), ([0.0, -2.0, np.nan] + [3.0] * 9, 3)):
        with pytest.raises(InputError, match=rf"^GammaGamma: {n} repeat buyers have a mean spend"):
            GammaGamma().fit(GG.assign(mean_spend=spend))


def test_gamma_gamma_correlation_with_frequencies_one_and_two():
    frame = CDN[CDN["x"].isin([1, 2])]
    gg = GammaGamma().fit(frame)
    assert np.isfinite(gg.spend_frequency_correlation_)
    assert gg.spend_frequency_correlation_ == pytest.approx(np.corrcoef(frame["x"], frame["mean_spend"])[0, 1], rel=1e-12)


def test_expected_purchases_of_a_customer_long_gone_warns_nothing():
    import warnings
    m = _fixed(PARAMS)
    frame = pd.DataFrame({"x": [400, 2], "t_x": [1.0, 30.43], "T": [100.0, 38.86]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = m.expected_purchases(39, frame)
    # 400 purchases in the first week then nothing for 99 weeks: P(alive) ~ (5.4 / 104.4)^400, E[X] ~ 0
    assert 0.0 <= e[0] < 1e-100
    assert e[1] == pytest.approx(expected_one(39, *PARAMS, 2, 30.43, 38.86), rel=1e-10)


def test_gamma_gamma_start_and_names_in_messages(monkeypatch):
    real_min, real_cov = btyd._minimise, btyd._covariance
    seen = []
    monkeypatch.setattr(btyd, "_minimise", lambda n, t, who: seen.append(("min", t.copy(), who)) or real_min(n, t, who))
    monkeypatch.setattr(btyd, "_covariance", lambda h, who: seen.append(("cov", None, who)) or real_cov(h, who))
    w = W3.copy()
    GammaGamma().fit(CDN, weights=w)
    keep = CDN["x"].to_numpy() > 0
    start = np.log((w[keep] * CDN["mean_spend"][keep]).sum() / w[keep].sum())
    assert seen[0][0] == "min" and seen[0][2] == "GammaGamma"
    np.testing.assert_allclose(seen[0][1], [0.0, 0.0, start], rtol=1e-13)
    assert seen[1][0] == "cov" and seen[1][2] == "GammaGamma"
    monkeypatch.setattr(btyd, "_hessian", lambda like, theta: np.zeros((3, 3)))
    with pytest.raises(ModelError, match=r"^GammaGamma: the information matrix is singular"):
        GammaGamma().fit(CDN)


def test_bgnbd_names_in_messages(monkeypatch):
    real_min, real_cov = btyd._minimise, btyd._covariance
    seen = []
    monkeypatch.setattr(btyd, "_minimise", lambda n, t, who: seen.append(who) or real_min(n, t, who))
    monkeypatch.setattr(btyd, "_covariance", lambda h, who: seen.append(who) or real_cov(h, who))
    m = BGNBD()
    m.warm_start_rows = 600
    m.fit(CDN)
    assert seen == ["BGNBD", "BGNBD", "BGNBD"]
    monkeypatch.setattr(btyd, "_hessian", lambda like, theta: np.zeros((4, 4)))
    with pytest.raises(ModelError, match=r"^BGNBD: the information matrix is singular"):
        BGNBD().fit(CDN)


def test_expected_spend_of_database_numbers_and_non_buyers_without_spend():
    from decimal import Decimal
    gg = GammaGamma()
    gg.params_ = pd.Series([6.0, 3.0, 15.0], index=["p", "q", "gamma"])
    obj = pd.DataFrame({"x": pd.Series([2, 0, 1], dtype=object),
                        "mean_spend": pd.Series([Decimal("20"), Decimal("99"), Decimal("4")], dtype=object)})
    out = gg.expected_spend(obj)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [6 * 55 / 14, 6 * 15 / 2, 6 * 19 / 8], rtol=1e-14)
    # a customer without repeat purchases has no mean spend (NaN): the population mean p gamma / (q - 1)
    nan = pd.DataFrame({"x": [0, 1], "mean_spend": [np.nan, 4.0]})
    np.testing.assert_allclose(gg.expected_spend(nan), [45.0, 6 * 19 / 8], rtol=1e-14)


def test_aggregate_patterns_indexed_by_a_key_and_with_categories():
    frame = pd.DataFrame({"x": [1, 0, 1], "g": pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"])})
    # a table indexed by one of its own key columns
    out = aggregate_patterns(frame.set_index(frame["x"].rename("x")), ["x", "g"])
    assert out.to_dict("list") == {"x": [1, 0], "g": ["a", "b"], "customers": [2.0, 1.0]}
    # a categorical key: only the patterns seen, not every combination of categories
    out = aggregate_patterns(frame, ["x", "g"])
    assert len(out) == 2 and out["customers"].tolist() == [2.0, 1.0]


def test_check_groups_counts_one_repeat_purchase_as_buying_again():
    m = BGNBD("group", "a")
    m.group_labels_ = ["a", "b"]
    frame = pd.DataFrame({"x": [1, 0, 3, 0], "group": ["a", "a", "b", "b"]})
    m._check_groups(frame, np.ones(4))  # group a's only buyer bought once more: enough
    with pytest.raises(ModelError, match="nobody in the a group"):
        m._check_groups(frame, np.array([0.0, 1.0, 1.0, 1.0]))


def test_predictions_with_b_under_one_and_database_numbers():
    from decimal import Decimal
    params = np.array([0.9, 2.0, 0.7, 0.5])  # b < 1: b + x - 1 < 1 for x = 1
    m = _fixed(params)
    frame = pd.DataFrame({"x": [1, 2, 0], "t_x": [3.0, 8.0, 0.0], "T": [10.0, 10.0, 10.0]})
    pa = [p_alive_one(*params, *row) for row in frame.itertuples(index=False)]
    ex = [expected_one(5, *params, *row) for row in frame.itertuples(index=False)]
    np.testing.assert_allclose(m.probability_alive(frame), pa, rtol=1e-12)
    np.testing.assert_allclose(m.expected_purchases(5, frame), ex, rtol=1e-10)
    # object columns, as from a database driver (Python ints, Decimals): the same numbers
    obj = pd.DataFrame({c: pd.Series([Decimal(str(v)) if c != "x" else int(v) for v in frame[c]], dtype=object)
                        for c in ("x", "t_x", "T")})
    np.testing.assert_allclose(m.probability_alive(obj), pa, rtol=1e-12)
    np.testing.assert_allclose(m.expected_purchases(5, obj), ex, rtol=1e-10)
    np.testing.assert_allclose(m.purchase_rate(obj), [0.45] * 3, rtol=1e-14)


def test_factorize_rows_with_three_values_in_a_column():
    # (2, 0) and (0, 1) are different patterns however the codes are combined
    z = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    inv, rows = btyd._factorize_rows(z)
    assert list(inv) == [0, 1, 2, 3, 2]
    np.testing.assert_array_equal(rows, z[:4])


def test_bgnbd_fitted_tables_are_named_and_numeric():
    fit = BGNBD("group", "a").fit(CDN)
    assert fit.params_.name == "estimate"
    assert (fit.summary.dtypes == np.float64).all()
    assert fit.summary.loc[["r", "alpha", "a", "b"], ["ratio", "ratio_lower_95", "ratio_upper_95"]].isna().all().all()
    assert fit.summary.loc["purchase:group[b]", ["ratio", "ratio_lower_95", "ratio_upper_95"]].notna().all()


def test_check_data_boundaries_and_counts():
    msg = "BGNBD: the customer table is not a valid (x, t_x, T) summary: "
    # t_x = T + 1e-9 is within the rounding allowance; t_x = T is fine; 13 > 12 is not
    frame = pd.DataFrame({"x": [1.0, 2.0, 1.0], "t_x": [10.0 + 1e-9, 13.0, 9.0], "T": [10.0, 12.0, 9.0]})
    with pytest.raises(InputError) as err:
        BGNBD._check_data(frame, np.ones(3))
    assert str(err.value) == msg + "1 rows with t_x outside [0, T]."
    BGNBD._check_data(frame.iloc[[0, 2]], np.ones(2))
    frame = pd.DataFrame({"x": [1.0, 1.0, 0.0, 0.0], "t_x": [5.0, 9.0, 3.0, 0.0], "T": [10.0] * 4})
    with pytest.raises(InputError) as err:
        BGNBD._check_data(frame, np.ones(4))
    assert str(err.value) == msg + "1 rows with x = 0 but t_x > 0."
    # T under one time unit is fine (e.g. a customer who answered half a week ago)
    frame = pd.DataFrame({"x": [1.0, 0.0, 0.0], "t_x": [0.2, 0.0, 0.0], "T": [0.5, 0.0, 3.0]})
    with pytest.raises(InputError) as err:
        BGNBD._check_data(frame, np.ones(3))
    assert str(err.value) == msg + "1 rows with T <= 0."
    BGNBD._check_data(frame.iloc[[0, 2]], np.ones(2))


def test_minimise_tolerances_and_hessian_steps():
    # the gradient tolerance gtol 1e-7 reaches the minimum of a flat function (1e-5 would stop 0.03 short)
    f = lambda t: (float(1e-4 * np.cosh(t[0] - 3)), np.array([1e-4 * np.sinh(t[0] - 3)]))
    assert abs(btyd._minimise(f, np.zeros(1), "F").x[0] - 3) < 2e-3
    # a gradient exactly at the tolerance 1e-3 * max(1, |f|) passes
    btyd._minimise(lambda t: (0.5, np.array([1e-3])), np.zeros(1), "F")
    # the step is 1e-6 * max(1, |theta|): at theta = 0.5, d/dt of t^2 by forward difference is 1 + 1e-6
    g = lambda t: (float(t[0] ** 3 / 3), np.array([t[0] ** 2]))
    assert btyd._hessian(g, np.array([0.5]))[0, 0] - 1.0 == pytest.approx(1e-6, rel=1e-3)
    # an infinite curvature gives a zero variance: not a standard error
    with pytest.raises(ModelError, match="standard errors are not defined"):
        btyd._covariance(np.array([[np.inf, 0.0], [0.0, 1.0]]), "V")


def test_bgnbd_fit_on_a_table_indexed_by_customer():
    frame = CDN.assign(group=CDN["group"]).set_index(_CDNOW["ID"] + 1000)
    by_id = BGNBD("group", "a").fit(frame, covariates=["size"])
    by_row = BGNBD("group", "a").fit(CDN, covariates=["size"])
    np.testing.assert_allclose(by_id.params_, by_row.params_, rtol=1e-6, atol=1e-9)
    assert by_id.log_likelihood_ == pytest.approx(by_row.log_likelihood_, rel=1e-12)
