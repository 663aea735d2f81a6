"""Piecewise-exponential (Poisson) survival models fitted on one row per unit, not per interval.

A piecewise-exponential model's person-period rows (one per customer and follow-up interval)
are many: a million customers over five intervals make five million rows, and a Poisson GLM
on them holds gigabytes. When the covariates do not change between a unit's intervals (a
customer, or a customer's time in one state), all the likelihood needs is each unit's time at
risk and losses per interval: :func:`fit` takes Newton steps on the coefficients and the
interval effects together from the crude rates, with the information matrix built from the unit
rows (p x p for the coefficients, one column per interval, a diagonal for the intervals). At the optimum it
is the same maximum-likelihood fit as the GLM on person-period rows, with the covariance from
the whole information matrix (coefficients and interval effects together), so its intervals are
that GLM's too; :meth:`PiecewiseFit.score_test` is that GLM's score test of extra terms (both
tested against statsmodels on the rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["PiecewiseFit", "fit"]


@dataclass
class PiecewiseFit:
    """The fitted coefficients (``params``: the unit design's columns, then ``period[<label>]``
    for every interval reached but the ``reference``) and their covariance; read like a
    statsmodels result."""

    params: pd.Series
    cov: pd.DataFrame
    converged: bool
    iterations: int
    reference: str
    #: what :meth:`score_test` needs: the unit design, time at risk and losses per unit and interval, the
    #: interval effects in interval order (the reference 0, -inf where none) and which of them were estimated
    design: np.ndarray = field(default=None, repr=False)
    at_risk: np.ndarray = field(default=None, repr=False)
    losses: np.ndarray = field(default=None, repr=False)
    alpha: np.ndarray = field(default=None, repr=False)
    free: list = field(default=None, repr=False)

    def remove_data(self) -> None:
        """Drop the unit design, time at risk and losses (as statsmodels' ``remove_data``): what a
        fitted model keeps is its estimates and their covariance; :meth:`score_test` needs them."""
        self.design = self.at_risk = self.losses = None

    def score_test(self, Z: np.ndarray) -> tuple[float, int]:
        """Rao's score test, at this fit, of the terms ``Z[:, j] x [interval k]`` for every column j of
        ``Z`` (one row per unit) and every interval k with a finite effect other than the reference:
        does a term's effect change between intervals? Terms nobody has time at risk in are left out.
        The score of each term is its observed minus expected losses, its variance the efficient
        information (the terms' information less what the fitted coefficients and interval effects
        explain). Returns the statistic and its degrees of freedom (chi-square)."""
        Xa, E, D, alpha, free = self.design, self.at_risk, self.losses, self.alpha, self.free
        b = self.params.to_numpy()[:Xa.shape[1]]
        mu = E * np.exp(alpha)[None, :] * np.exp(Xa @ b)[:, None]
        info, _ = _information(Xa, E, D.sum(axis=1), D.sum(axis=0), b, alpha, free)
        Z = np.asarray(Z, float)
        terms = [(j, q) for j in range(Z.shape[1]) for q in free if (Z[:, j] * E[:, q]).any()]
        if not terms:
            return float("nan"), 0
        u = np.array([Z[:, j] @ (D[:, q] - mu[:, q]) for j, q in terms])
        i_zz = np.zeros((len(terms), len(terms)))
        for a, (j, q) in enumerate(terms):
            for c, (j2, q2) in enumerate(terms):
                if q == q2:
                    i_zz[a, c] = (Z[:, j] * Z[:, j2]) @ mu[:, q]
        i_zb = np.array([(Z[:, j] * mu[:, q]) @ Xa for j, q in terms])
        i_za = np.array([[(Z[:, j] @ mu[:, q]) if q == q2 else 0.0 for q2 in free] for j, q in terms]).reshape(
            len(terms), len(free))
        i_zeta = np.hstack([i_zb, i_za])
        v = i_zz - i_zeta @ np.linalg.pinv(info) @ i_zeta.T
        stat = float(u @ np.linalg.pinv(v) @ u)
        return stat, len(terms)

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index)

    @property
    def pvalues(self) -> pd.Series:
        return pd.Series(2 * stats.norm.sf(np.abs(self.params / self.bse)), index=self.params.index)

    def cov_params(self) -> pd.DataFrame:
        return self.cov

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        z = stats.norm.ppf(1 - alpha / 2)
        return pd.DataFrame({0: self.params - z * self.bse, 1: self.params + z * self.bse})


#: Newton steps at most (``fit``'s ``maxiter``); each halves its step until the likelihood does not fall.
MAXITER = 50


def _information(Xa: np.ndarray, E: np.ndarray, y: np.ndarray, d: np.ndarray, b: np.ndarray, alpha: np.ndarray,
                 free: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The information matrix and the score of the coefficients ``b`` and the interval effects
    ``alpha[free]``: with ``mu`` the expected events per unit and interval, ``X' diag(sum mu) X``,
    ``X' mu``, ``diag(sum over units of mu)``; the score ``X' (y - sum mu)``, ``d - sum mu``."""
    mu = E * np.exp(alpha)[None, :] * np.exp(Xa @ b)[:, None]  # expected events, unit x interval
    per_unit = mu.sum(axis=1)
    info_bb = Xa.T @ (Xa * per_unit[:, None])
    info_ba = Xa.T @ mu[:, free]
    info = np.block([[info_bb, info_ba], [info_ba.T, np.diag(mu[:, free].sum(axis=0))]])
    score = np.concatenate([Xa.T @ (y - per_unit), d[free] - mu[:, free].sum(axis=0)])
    return info, score


def _loglik(Xa: np.ndarray, E: np.ndarray, y: np.ndarray, d: np.ndarray, b: np.ndarray, alpha: np.ndarray,
            free: list[int]) -> float:
    """The Poisson log-likelihood of the person-period rows, less the terms that do not depend on
    ``b`` and ``alpha``: ``sum events * log hazard - sum expected events``."""
    eta = Xa @ b
    return float(y @ eta + d[free] @ alpha[free] - np.exp(eta) @ (E @ np.exp(alpha)))


def fit(X: pd.DataFrame, unit: np.ndarray, period: np.ndarray, labels: list[str], event: np.ndarray,
        exposure: np.ndarray, tol: float = 1e-10, maxiter: int = MAXITER) -> PiecewiseFit:
    """Fit ``log hazard = X b + alpha[period]`` on person-period rows grouped by unit.

    Newton's method on the coefficients and interval effects together, from the crude rates (each
    interval's losses over its time at risk), at most ``maxiter`` steps, each halved until the
    log-likelihood does not fall; ``converged`` once a step moves no estimate by ``tol``.

    Parameters
    ----------
    X : one row per unit (with the constant), constant over the unit's intervals.
    unit, period : per person-period row, the unit's row in ``X`` and the interval's position
        in ``labels``.
    event, exposure : per person-period row, the events and the time at risk (> 0).

    The reference interval (``reference``; its effect is 0) is the first with an event; every
    other interval anybody reached has its effect as ``period[<label>]``. One with time at risk
    but no event has no finite effect (the GLM's would run off to minus infinity): its hazard
    is 0, reported as ``-inf`` with a variance of 0. An interval nobody reached is left out of
    ``params``. Raises ``ValueError`` when there is no event at all.
    """
    n, k = len(X), len(labels)
    unit = np.asarray(unit, np.int64)
    period = np.asarray(period, np.int64)
    event = np.asarray(event, float)
    exposure = np.asarray(exposure, float)
    E = np.bincount(unit * k + period, weights=exposure, minlength=n * k).reshape(n, k)  # time at risk
    y = np.bincount(unit, weights=event, minlength=n)
    d = np.bincount(period, weights=event, minlength=k)
    reached = E.sum(axis=0) > 0
    if not (d > 0).any():
        raise ValueError("no event")
    ref = int(np.flatnonzero(d > 0)[0])
    # start from the crude rates: each interval's events over its time at risk, the reference's on the constant
    with np.errstate(divide="ignore", invalid="ignore"):
        crude = np.log(d / E.sum(axis=0))
    alpha = np.where(d > 0, crude - crude[ref], -np.inf)
    Xa = X.to_numpy(float)
    b = np.zeros(Xa.shape[1])
    ones = np.flatnonzero((Xa == 1).all(axis=0))
    if len(ones):
        b[ones[0]] = crude[ref]
    free = [j for j in range(k) if j != ref and d[j] > 0]  # the interval effects with a finite estimate
    ll = _loglik(Xa, E, y, d, b, alpha, free)
    converged, it = False, 0
    while it < maxiter and not converged:
        it += 1
        info, score = _information(Xa, E, y, d, b, alpha, free)
        delta = np.linalg.lstsq(info, score, rcond=None)[0]
        converged = bool(np.max(np.abs(delta)) < tol)  # judged on the full step, not a halved one
        for _ in range(30):  # halved while the likelihood falls: a full step can overshoot far from the optimum
            b_new, alpha_new = b + delta[:len(b)], alpha.copy()
            alpha_new[free] += delta[len(b):]
            ll_new = _loglik(Xa, E, y, d, b_new, alpha_new, free)
            if ll_new >= ll - 1e-12 * abs(ll):  # (less would be rounding)
                break
            delta = delta / 2
        b, alpha, ll = b_new, alpha_new, ll_new
    info, _ = _information(Xa, E, y, d, b, alpha, free)
    cov = np.linalg.pinv(info)  # as statsmodels' own covariance
    names = list(X.columns) + [f"period[{labels[j]}]" for j in free]
    zero = [f"period[{labels[j]}]" for j in range(k) if reached[j] and not np.isfinite(alpha[j])]
    params = pd.Series(np.concatenate([b, alpha[free], np.full(len(zero), -np.inf)]), index=names + zero)
    full = np.zeros((len(params), len(params)))
    full[:len(names), :len(names)] = cov
    cov = pd.DataFrame(full, index=params.index, columns=params.index)
    D = np.bincount(unit * k + period, weights=event, minlength=n * k).reshape(n, k)  # losses
    out = PiecewiseFit(params=params, cov=cov, converged=converged, iterations=it, reference=labels[ref],
                       design=Xa, at_risk=E, losses=D, alpha=alpha, free=free)
    return out
