"""Customer lifetime value per satisfaction group, from the fitted linkage models.

Pure functions of fitted results and parameters: no fitting, no file I/O.

Formula (money per customer, in the data's currency). For a customer of group ``g``:

* yearly margin ``m_g = gross_margin * adjusted_revenue_g - adjusted_cost_to_serve_g``
  (both per customer-year, standardised to the whole customer base);
* survival ``S_g(t) = S_ref(t) ** hazard_ratio_g``: the reference group's Kaplan-Meier
  curve raised to the adjusted hazard ratio (proportional hazards), read at the end of each
  year the follow-up covers. Beyond the last full year observed, that year's retention
  ``S(k) / S(k-1)`` continues (its hazard stays constant, as the churn model's last interval's
  does), see :func:`yearly_survival`;
* expected customer-years in year ``t`` = ``(S_g(t-1) + S_g(t)) / 2`` (trapezoid), cash at
  the end of the year, so ``CLV_g = sum_{t=1..H} m_g * (S_g(t-1) + S_g(t)) / 2 / (1 + d)^t``.

With ``timing="end"`` the year's margin counts only for customers alive at its end,
``CLV = sum m * S(t) / (1 + d)^t``; for constant retention ``r`` and an infinite horizon this
is the textbook ``m * r / (1 + d - r)`` (Gupta & Lehmann 2003), which the tests check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxvalue.history import DAYS_PER_YEAR

__all__ = ["clv", "yearly_survival", "group_clv", "effect_draws", "measured_gross_margin"]


def clv(margin_per_year: float | np.ndarray, survival: np.ndarray, discount_rate: float, timing: str = "mid") -> float:
    """Discounted margin over the years of ``survival`` (``survival[t]`` = alive at end of year t+1).

    Parameters
    ----------
    margin_per_year : margin per customer-year, a number or one per year.
    survival : share still a customer at the end of each year 1..H (S(0) = 1 is implied).
    discount_rate : yearly rate, e.g. 0.08.
    timing : ``"mid"`` (customer-years by trapezoid, the default) or ``"end"``.
    """
    s = np.asarray(survival, float)
    years = np.arange(1, s.size + 1)
    m = np.broadcast_to(np.asarray(margin_per_year, float), s.shape)
    if timing == "end":
        alive = s
    elif timing == "mid":
        alive = (np.concatenate([[1.0], s[:-1]]) + s) / 2
    else:
        raise ValueError("timing must be 'mid' or 'end'")
    return float(np.sum(m * alive / (1 + discount_rate) ** years))


def yearly_survival(days: np.ndarray, retained: np.ndarray, horizon_years: int, hazard_ratio: float = 1.0) -> np.ndarray:
    """Survival at the end of years 1..H from a step curve (days, share retained), to the power HR.

    Years the curve covers are read from it (the value on the last point at or before
    ``t x 365.25`` days). Past the last full year it covers, that year's retention
    ``S(k) / S(k - 1)`` repeats (its constant hazard carries on, as the churn model's last
    interval does); a curve shorter than a year stretches its own hazard,
    ``S(t) = S_last ** (t / last_day)``.
    """
    days = np.asarray(days, float)
    retained = np.asarray(retained, float)
    if days.size == 0 or retained.size != days.size:
        raise ValueError("need a survival curve: days and retained of the same, non-zero length")
    last_day = days.max()

    def at(t: float) -> float:
        return float(retained[np.searchsorted(days, t, side="right") - 1]) if t > 0 else 1.0

    full_years = int(last_day // DAYS_PER_YEAR)
    out = []
    for year in range(1, horizon_years + 1):
        t = year * DAYS_PER_YEAR
        if year <= full_years:
            out.append(at(t))
        elif full_years >= 1:
            s_end, s_before = at(full_years * DAYS_PER_YEAR), at((full_years - 1) * DAYS_PER_YEAR)
            last_year = s_end / s_before if s_before > 0 else 0.0
            out.append(s_end * last_year ** (year - full_years))
        else:  # less than a year observed: stretch the observed hazard
            s_last = retained[-1]
            out.append(s_last ** (t / last_day) if last_day > 0 else s_last)
    return np.clip(np.asarray(out) ** hazard_ratio, 0.0, 1.0)


def group_clv(revenue: pd.DataFrame, cost_to_serve: pd.DataFrame, churn: pd.DataFrame, reference_curve: pd.DataFrame,
              gross_margin: float, discount_rate: float, horizon_years: int,
              reference_survival: np.ndarray | None = None) -> pd.DataFrame:
    """CLV per group from the linkage summaries.

    Parameters
    ----------
    revenue, cost_to_serve : ``RevenueModel.summary`` / ``CostToServeModel.summary`` (``adjusted``
        per customer-year).
    churn : ``ChurnModel.summary`` (``hazard_ratio``).
    reference_curve : Kaplan-Meier curve of the reference group (``days``, ``retained``), e.g.
        from ``ChurnModel.km_curves`` filtered to that group.
    gross_margin, discount_rate, horizon_years : the run parameters.
    reference_survival : the reference group's yearly survival 1..H, when already computed from
        ``reference_curve`` (or all ones where churn could not be measured).

    Returns
    -------
    One row per group: ``margin_per_year``, ``retention_year_1``, ``clv`` (money per customer
    over the horizon).
    """
    rows = []
    for g in revenue.index:
        hr = churn.loc[g, "hazard_ratio"] if g in churn.index else np.nan
        rev, cost = revenue.loc[g, "adjusted"], cost_to_serve.loc[g, "adjusted"] if g in cost_to_serve.index else 0.0
        if pd.isna(hr) or pd.isna(rev):
            rows.append({"group": g, "margin_per_year": np.nan, "retention_year_1": np.nan, "clv": np.nan})
            continue
        margin = gross_margin * rev - (0.0 if pd.isna(cost) else cost)
        if reference_survival is not None:
            surv = np.clip(np.asarray(reference_survival, float)[:horizon_years] ** hr, 0.0, 1.0)
        else:
            surv = yearly_survival(reference_curve["days"].to_numpy(), reference_curve["retained"].to_numpy(),
                                   horizon_years, hr)
        rows.append({"group": g, "margin_per_year": margin, "retention_year_1": float(surv[0]),
                     "clv": clv(margin, surv, discount_rate)})
    return pd.DataFrame(rows).set_index("group")


def measured_gross_margin(history: pd.DataFrame) -> float | None:
    """The margin the data itself shows when transactions carry a ``cost`` (direct cost of goods):
    ``1 - sum(post_cogs) / sum(post_revenue)`` over the post windows; None without costs."""
    if "post_cogs" not in history or history["post_revenue"].sum() <= 0:
        return None
    return float(1 - history["post_cogs"].sum() / history["post_revenue"].sum())


def effect_draws(model, n_draws: int, seed: int) -> pd.DataFrame:
    """Draws of each group's ratio (or hazard ratio) from a fitted linkage model's sampling
    distribution, plus ``_level``: how far the reference group's own level moves in that draw.

    The group coefficients (and, for a rate model, the log level below) are drawn jointly from a
    normal with the model's estimates and covariance (``result_.params``,
    ``result_.cov_params()``); group ratios are the exponentiated group coefficients (the
    reference group is 1 in every draw).

    ``_level`` multiplies the reference group's level:

    * rate models (revenue, cost to serve, referrals): the reference group's adjusted rate
      is ``L(b) = mean_i exp(x_i b)`` over everyone set to the reference group; to first
      order ``log L(b) - log L(b_hat) = grad . (b - b_hat)`` with ``grad`` the
      ``exp(x_i b_hat)``-weighted mean of ``x_i``, so ``_level = exp(grad . (b - b_hat))``
      (the delta method, drawn jointly with the ratios from their joint covariance
      ``A' cov A``; a covariance that is not positive semi-definite, as near separation, is
      replaced by its nearest one);
    * churn: the reference group's Kaplan-Meier curve is uncertain too; ``_level`` scales its
      cumulative hazard, ``log _level ~ N(0, se)`` with ``se`` the Greenwood standard error of
      ``log(-log S)`` at one year (``ChurnModel.reference_curve_se_``).

    Returns one column per group and ``_level``, ``n_draws`` rows. A skipped model (no
    ``result_``) draws 1 for every group: nothing measured, nothing varied.
    """
    if getattr(model, "result_", None) is None or not getattr(model, "fitted", True):
        groups = list(model.summary_.index)
        return pd.DataFrame(1.0, index=range(n_draws), columns=[*groups, "_level"])
    res = model.result_
    names = [c for c in res.params.index if c.startswith("group[")]
    pos = [res.params.index.get_loc(c) for c in names]
    rng = np.random.default_rng(seed)
    beta = res.params.to_numpy()
    cov = res.cov_params().to_numpy()
    # what is drawn: the group coefficients and, for a rate model, the log of the reference level,
    # a linear function grad . b of all coefficients (A' b); their joint covariance is A' cov A
    design = getattr(model, "design_", None)
    A = np.zeros((len(beta), len(pos) + (design is not None)))
    A[pos, range(len(pos))] = 1.0
    within = getattr(model, "method_", None) == "within"
    if design is not None:
        x_ref = design[res.params.index].to_numpy(copy=True)
        x_ref[:, pos] = 0.0
        # each customer's level as the reference group (under the within-customer headline: their fitted
        # level moved by the within-customer ratios, as the model predicts it)
        w = model.predict(model.reference_group).to_numpy() if within else np.exp(x_ref @ beta)
        A[:, -1] = (w[:, None] * x_ref).sum(axis=0) / w.sum()
    joint = A.T @ np.nan_to_num(cov) @ A
    ratios = beta[pos]
    if within:
        # the headline ratios are the within-customer comparison's: drawn from its own fit, apart from the
        # reference level (the delta method on the main fit, above)
        wres = model.within_result_
        names = [c for c in wres.params.index if c.startswith("group[")]
        ratios = wres.params[names].to_numpy()
        level = joint[-1, -1]
        joint = np.zeros((len(names) + 1, len(names) + 1))
        joint[:-1, :-1] = np.nan_to_num(wres.cov_params().loc[names, names].to_numpy())
        joint[-1, -1] = level
    # a covariance that is not positive semi-definite (a fit near separation) is drawn from its
    # nearest one (negative eigenvalues set to 0): only the small joint matrix is drawn from, so one
    # ill-determined nuisance coefficient cannot throw the level off by orders of magnitude
    vals, vecs = np.linalg.eigh((joint + joint.T) / 2)
    z = rng.standard_normal((n_draws, len(vals))) @ (vecs * np.sqrt(np.clip(vals, 0.0, None))).T
    out = pd.DataFrame(np.exp(ratios + z[:, :len(names)]), columns=[n[len("group["):-1] for n in names])
    out[model.reference_group] = 1.0
    if design is not None:
        out["_level"] = np.exp(z[:, -1])
    elif np.isfinite(getattr(model, "reference_curve_se_", np.nan)):
        out["_level"] = np.exp(rng.normal(0.0, model.reference_curve_se_, n_draws))
    else:
        out["_level"] = 1.0
    return out
