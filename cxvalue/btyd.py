"""Buy till you die: purchases, dropout and spend of customers who never cancel.

Two maximum-likelihood fitters, each ``fit(frame) -> self`` with ``params_``, ``summary``,
``log_likelihood_`` and a notebook view:

* :class:`BGNBD`, the beta-geometric / negative binomial model of repeat purchases and silent
  dropout (Fader, Hardie & Lee 2005a), with optional time-invariant covariates in both
  processes -- the satisfaction group (one-hot against a reference group) and numeric controls;
* :class:`GammaGamma`, spend per purchase (Fader, Hardie & Lee 2005b), fitted on repeat buyers.

and :func:`customer_summary`, which turns a transactions table into the one-row-per-customer
table both models read (``x``, ``t_x``, ``T``, ``mean_spend``), and :func:`aggregate_patterns`,
which collapses customers with identical data into weighted rows (the fit at 1M customers).

Units: ``t_x``, ``T`` and the prediction horizon ``t`` are in one time unit (weeks or days, as
:func:`customer_summary` was asked); purchase rates are per that unit; spend is in the data's
currency per purchase.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005a). "Counting your customers" the easy way:
    an alternative to the Pareto/NBD model. *Marketing Science* 24(2), 275-284. Likelihood
    eq. (6), conditional expectation eq. (10); P(alive) from Fader, Hardie & Lee (2008),
    "Computing P(alive) using the BG/NBD model", note 021.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005b). RFM and CLV: using iso-value curves for
    customer base analysis. *Journal of Marketing Research* 42(4), 415-430. Gamma-Gamma
    likelihood and conditional expected spend, appendix; also Fader & Hardie (2013), "The
    Gamma-Gamma model of monetary value", note 025.
Fader, P. S. & Hardie, B. G. S. (2007). Incorporating time-invariant covariates into the
    Pareto/NBD and BG/NBD models. Note 019. Purchase process: ``alpha_i = alpha * exp(-g1'z_i)``.
Bachmann, P., Meierer, M. & Naef, J. CLVTools (R), ``src/bgnbd_LL.cpp``: the same purchase
    link; for dropout it scales *both* beta parameters, ``a_i = a exp(g2'z)``, ``b_i = b exp(g2'z)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from cxvalue.exceptions import InputError, ModelError

__all__ = ["customer_summary", "aggregate_patterns", "BGNBD", "GammaGamma", "group_outputs"]

Z95 = 1.959963984540054
_UNITS = {"W": 7.0, "D": 1.0}


# --------------------------------------------------------------------------- data preparation

def customer_summary(transactions: pd.DataFrame, as_of: Any, start: Any = None, unit: str = "W",
                     customer_col: str = "customer_id", date_col: str = "date",
                     amount_col: str | None = None) -> pd.DataFrame:
    """One row per customer: repeat purchases ``x``, recency ``t_x`` and age ``T``.

    Purchases on the same day count once (their amounts are summed), as in lifetimes'
    ``summary_data_from_transaction_data``.

    Parameters
    ----------
    transactions : one row per purchase; ``customer_col`` and ``date_col`` (dates or datetimes),
        optionally ``amount_col`` (money per purchase).
    as_of : the end of observation (inclusive). Purchases after it are ignored.
    start : where each customer's clock starts: ``None`` (default) = the customer's first
        purchase, which is then *not* counted in ``x`` (lifetimes' convention); or a date for
        everybody, or a Series of dates indexed by customer (e.g. the survey date). With a start,
        every purchase in ``(start, as_of]`` counts, customers with none get ``x = 0`` (only those
        in the Series' index are returned), and the model assumes the customer was alive at
        ``start`` (answering the survey is the "birth" of the BG/NBD clock).
    unit : ``"W"`` (weeks) or ``"D"`` (days) for ``t_x`` and ``T``.
    amount_col : when given, ``mean_spend`` is the mean amount per counted purchase day
        (0 when ``x = 0``), the Gamma-Gamma model's input.

    Returns
    -------
    DataFrame indexed by customer: ``x`` (int), ``t_x``, ``T`` (in ``unit``) and, with
    ``amount_col``, ``mean_spend``.
    """
    if unit not in _UNITS:
        raise InputError(f"customer_summary: unit must be 'W' or 'D', not {unit!r}.")
    missing = [c for c in (customer_col, date_col, amount_col) if c is not None and c not in transactions]
    if missing:
        raise InputError(f"customer_summary: the transactions table has no column {missing}.")
    per_unit = _UNITS[unit]
    as_of = pd.Timestamp(as_of).normalize()
    tx = pd.DataFrame({"customer": transactions[customer_col].to_numpy(),
                       "day": pd.to_datetime(transactions[date_col]).dt.normalize().to_numpy()})
    tx["amount"] = transactions[amount_col].to_numpy(float) if amount_col else 0.0
    tx = tx[tx["day"] <= as_of]
    daily = tx.groupby(["customer", "day"], sort=True)["amount"].sum().reset_index()
    if start is None:
        first = daily.groupby("customer")["day"].transform("min")
        origin = daily.groupby("customer")["day"].min()
        repeat = daily[daily["day"] > first]
    else:
        if isinstance(start, pd.Series):
            origin = pd.to_datetime(start).dt.normalize()
        else:
            origin = pd.Series(pd.Timestamp(start).normalize(), index=pd.Index(daily["customer"].unique()))
        origin.index.name = "customer"
        if (origin > as_of).any():
            raise InputError(f"customer_summary: {(origin > as_of).sum()} customers start after as_of {as_of.date()}.")
        s = daily["customer"].map(origin)
        repeat = daily[(daily["day"] > s) & s.notna()]
    g = repeat.groupby("customer")
    out = pd.DataFrame(index=origin.index)
    out["x"] = g.size().reindex(origin.index, fill_value=0).astype(int)
    last = g["day"].max().reindex(origin.index)
    day_ns = 86_400e9 * per_unit
    out["t_x"] = ((last - origin).dt.total_seconds().fillna(0.0) * 1e9 / day_ns).to_numpy()
    out["T"] = ((as_of - origin).dt.total_seconds() * 1e9 / day_ns).to_numpy()
    if amount_col:
        out["mean_spend"] = g["amount"].mean().reindex(origin.index).fillna(0.0)
    out.index.name = customer_col
    return out


def aggregate_patterns(frame: pd.DataFrame, columns: list[str], weights: str | np.ndarray | None = None,
                       weight_name: str = "customers") -> pd.DataFrame:
    """Collapse rows with identical ``columns`` into one row with a weight.

    The log-likelihood of a weighted pattern is the weight times the log-likelihood of one of
    its customers, so a fit on the result equals the fit on all rows (tested). Returns the
    distinct patterns with a ``weight_name`` column (the summed weights, or counts).
    """
    w = _weights(frame, weights)
    keys = frame[columns].reset_index(drop=True)
    keys[weight_name] = w
    return keys.groupby(columns, sort=False, observed=True, dropna=False)[weight_name].sum().reset_index()


def _weights(frame: pd.DataFrame, weights: str | np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.ones(len(frame))
    w = np.asarray(frame[weights] if isinstance(weights, str) else weights, float)
    if w.shape != (len(frame),) or not np.all(np.isfinite(w)) or (w < 0).any():
        raise InputError("weights: need one finite, non-negative weight per row.")
    return w


def _check_columns(frame: pd.DataFrame, needed: list[str], who: str) -> None:
    missing = [c for c in needed if c not in frame]
    if missing:
        raise InputError(f"{who}: the customer table has no column {missing}; "
                         f"build it with cxvalue.btyd.customer_summary().")


# --------------------------------------------------------------------------- shared fitter parts

class _Fitter:
    """What both fitters share: the notebook view and the 'not fitted yet' guard."""

    summary_: pd.DataFrame | None = None

    @property
    def summary(self) -> pd.DataFrame:
        """One row per parameter: estimate, standard error and 95% interval (see the class)."""
        if self.summary_ is None:
            raise ModelError(f"{type(self).__name__}: call fit() first.")
        return self.summary_

    def _repr_html_(self) -> str:
        if self.summary_ is None:
            return f"<p>{type(self).__name__} (not fitted)</p>"
        return self.summary_.to_html(float_format=lambda v: f"{v:.4g}")


def _minimise(negll, theta0: np.ndarray, who: str) -> optimize.OptimizeResult:
    """BFGS on the analytic gradient; a ModelError in plain words if it does not converge."""
    with np.errstate(all="ignore"):
        res = optimize.minimize(negll, theta0, jac=True, method="L-BFGS-B",
                                options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-7, "maxcor": 30})
        if not np.isfinite(res.fun):
            raise ModelError(f"{who}: the likelihood is not finite at the start or optimum; check the data "
                             f"(t_x <= T, x >= 0).")
        _, grad = negll(res.x)
    scale = max(1.0, abs(res.fun))
    if not np.all(np.isfinite(grad)) or np.max(np.abs(grad)) > 1e-3 * scale:
        raise ModelError(f"{who}: the fit did not converge ({res.message}); the data may not identify the "
                         f"model (e.g. too few repeat buyers, or a group where nobody buys again).")
    return res


def _to_mean_rate(theta: np.ndarray) -> np.ndarray:
    """[log r, log alpha, ...] -> [log r, log(r / alpha), ...]: the mean purchase rate is well
    determined even when r and alpha are not (large r), which keeps the optimiser on course."""
    phi = theta.copy()
    phi[1] = theta[0] - theta[1]
    return phi


def _from_mean_rate(phi: np.ndarray) -> np.ndarray:
    theta = phi.copy()
    theta[1] = phi[0] - phi[1]
    return theta


def _by_mean_rate(like):
    """The BG/NBD negative log-likelihood as a function of ``_to_mean_rate`` parameters."""
    def negll(phi):
        value, grad = like(_from_mean_rate(phi))
        g = grad.copy()
        g[0] = grad[0] + grad[1]
        g[1] = -grad[1]
        return value, g
    return negll


def _hessian(negll, theta: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Observed information: forward differences of the analytic gradient, symmetrised.

    Forward rather than central differences: one gradient per parameter instead of two (half the
    passes over a million rows); the error, of the order of ``step``, is far below the sampling
    error the matrix is used for."""
    k = theta.size
    g0 = negll(theta)[1]
    h = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step * max(1.0, abs(theta[j]))
        h[:, j] = (negll(theta + e)[1] - g0) / e[j]
    return (h + h.T) / 2


def _covariance(hess: np.ndarray, who: str) -> np.ndarray:
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError as err:
        raise ModelError(f"{who}: the information matrix is singular; a covariate or group has no "
                         f"variation or no buyers.") from err
    if not np.all(np.isfinite(np.diag(cov))) or (np.diag(cov) <= 0).any():
        raise ModelError(f"{who}: the standard errors are not defined (the likelihood is flat in some "
                         f"direction); drop constant covariates or tiny groups.")
    return cov


# --------------------------------------------------------------------------- BG/NBD

class BGNBD(_Fitter):
    """BG/NBD model of repeat purchases and silent dropout, by maximum likelihood.

    While alive, customer ``i`` buys as a Poisson process with rate ``lambda_i ~ Gamma(r,
    alpha_i)`` (rate parameter ``alpha_i``, so the mean purchase rate is ``r / alpha_i`` per time
    unit); after each purchase they drop out with probability ``p_i ~ Beta(a_i, b)``.

    Covariates ``z_i`` (the one-hot group columns and numeric controls) enter both processes:

    * purchase: ``alpha_i = alpha * exp(-g1'z_i)``, so ``exp(g1)`` is the **purchase-rate ratio**
      (mean of ``lambda`` in a group over the reference group, other covariates equal). This is
      Fader & Hardie's (2007, note 019) link, also used by CLVTools.
    * dropout: ``a_i = a * exp(g2'z_i)`` with ``b`` common, so ``exp(g2)`` is the **dropout
      ratio**: the ratio of the mean dropout odds per purchase, ``E[p/(1-p)] = a_i / (b - 1)``,
      exactly; and of the mean dropout probability ``a_i / (a_i + b)`` nearly, when dropout per
      purchase is small. CLVTools (``bgnbd_staticcov_LL_ind``) instead multiplies both ``a`` and
      ``b`` by ``exp(g2'z)``, which leaves the mean dropout probability ``a/(a+b)`` unchanged and
      moves only its spread, so its coefficient is not a dropout ratio; we scale ``a`` alone for a
      coefficient a finance reader can use. With no covariates both are the published model.

    Log-likelihood: Fader, Hardie & Lee (2005a), eq. (6), in the log form of Fader & Hardie
    (2013, note 027), all four base parameters on the log scale. Standard errors from the inverse
    of the observed information (central differences of the analytic gradient).

    Parameters
    ----------
    group : column holding the satisfaction group (text or categorical), or None.
    reference_group : the group the ratios divide by (required with ``group``).

    Fitted attributes
    -----------------
    params_ : Series ``r``, ``alpha``, ``a``, ``b`` (natural scale) then one coefficient per
        covariate and process, named ``purchase:<col>`` and ``dropout:<col>`` (log ratios).
    covariance_ : covariance of the estimates on the fitting scale (log r, log alpha, log a,
        log b, coefficients), a DataFrame.
    log_likelihood_ : maximised log-likelihood (sum over customers, weights applied).
    group_effects_ : per group, ``customers``, ``purchase_rate_ratio`` and ``dropout_ratio`` with
        95% intervals (``*_lower``, ``*_upper``); the reference group reads 1. None without group.
    customers_, patterns_ : customers (summed weights) and distinct data rows fitted.
    """

    base = ("r", "alpha", "a", "b")
    #: above this many distinct data rows, the fit starts from a fit on this many of them
    warm_start_rows = 100_000

    def __init__(self, group: str | None = None, reference_group: str | None = None) -> None:
        if group is not None and reference_group is None:
            raise InputError("BGNBD: give reference_group together with group.")
        self.group = group
        self.reference_group = reference_group
        self.params_: pd.Series | None = None
        self.group_effects_: pd.DataFrame | None = None

    # ---- design
    def _design(self, frame: pd.DataFrame) -> pd.DataFrame:
        cols: dict[str, np.ndarray] = {}
        if self.group is not None:
            g = frame[self.group].astype(str).to_numpy()
            for label in self.group_labels_:
                if label != self.reference_group:
                    cols[f"group[{label}]"] = (g == label).astype(float)
        for c in self.covariates_:
            cols[c] = frame[c].to_numpy(float)
        return pd.DataFrame(cols, index=frame.index)

    def _set_groups(self, frame: pd.DataFrame) -> None:
        if self.group is None:
            self.group_labels_ = []
            return
        _check_columns(frame, [self.group], "BGNBD")
        g = frame[self.group]
        labels = [str(x) for x in (g.cat.categories if hasattr(g, "cat") else sorted(g.astype(str).unique()))]
        if self.reference_group not in labels:
            raise InputError(f"BGNBD: the reference group {self.reference_group!r} is not in column "
                             f"{self.group!r} (groups: {labels}).")
        self.group_labels_ = labels

    # ---- fit
    def fit(self, frame: pd.DataFrame, covariates: list[str] | None = None,
            weights: str | np.ndarray | None = None, aggregate: bool = True) -> BGNBD:
        """Fit on one row per customer (or per pattern, with ``weights``).

        Parameters
        ----------
        frame : columns ``x`` (repeat purchases, integer >= 0), ``t_x`` (time of the last
            purchase), ``T`` (time observed), in one time unit; plus ``group`` and ``covariates``.
        covariates : numeric control columns entering both processes (e.g. log of the pre-window
            purchase count). Missing values are not allowed.
        weights : column name or array of frequency weights (customers per row).
        aggregate : collapse identical rows first (same estimates, much faster at scale).
        """
        _check_columns(frame, ["x", "t_x", "T", *(covariates or [])], "BGNBD")
        self.covariates_ = list(covariates or [])
        self._set_groups(frame)
        w = _weights(frame, weights)
        data = frame[["x", "t_x", "T"]].astype(float).copy()
        design = self._design(frame)
        if design.isna().any().any():
            bad = design.columns[design.isna().any()].tolist()
            raise InputError(f"BGNBD: covariates {bad} have missing values; fill or drop those customers.")
        self._check_data(data, w)
        names = list(design.columns)
        work = pd.concat([data, design], axis=1)
        if aggregate:
            work = aggregate_patterns(work, list(work.columns), w, weight_name="__w")
            w = work.pop("__w").to_numpy()
        self.customers_ = float(w.sum())
        self.patterns_ = len(work)
        if self.group is not None:
            self._check_groups(frame, _weights(frame, weights))
        z = work[names].to_numpy(float)
        k = len(names)
        # fit with centred covariates (better conditioned), then move to the uncentred scale:
        # alpha_i = alpha_c exp(-g1'(z - m)) = [alpha_c exp(g1'm)] exp(-g1'z); a likewise.
        centre = np.einsum("i,ij->j", w, z) / w.sum() if k else np.zeros(0)
        x_, t_x_, T_ = (work[c].to_numpy() for c in ("x", "t_x", "T"))
        like = _BGNBDLikelihood(x_, t_x_, T_, z - centre, w)
        mean_x, mean_T = np.average(x_, weights=w), np.average(T_, weights=w)
        theta0 = np.r_[0.0, np.log(mean_T / max(mean_x, 0.05)), 0.0, 0.0, np.zeros(2 * k)]
        if len(work) > self.warm_start_rows:
            # start from a fit on a random subset of patterns: far fewer passes over all rows
            pick = np.random.default_rng(0).choice(len(work), self.warm_start_rows, replace=False)
            sub = _BGNBDLikelihood(x_[pick], t_x_[pick], T_[pick], (z - centre)[pick], w[pick])
            try:
                theta0 = _from_mean_rate(_minimise(_by_mean_rate(sub), _to_mean_rate(theta0), "BGNBD").x)
            except ModelError:
                pass  # the subset was not enough; start from scratch
        res = _minimise(_by_mean_rate(like), _to_mean_rate(theta0), "BGNBD")
        theta_c = _from_mean_rate(res.x)
        self.log_likelihood_ = -float(like(theta_c)[0])
        cov_c = _covariance(_hessian(like, theta_c), "BGNBD")
        jac = np.eye(4 + 2 * k)
        jac[1, 4:4 + k] = centre
        jac[2, 4 + k:] = -centre
        theta, cov = jac @ theta_c, jac @ cov_c @ jac.T
        self._theta = theta
        labels = ["log r", "log alpha", "log a", "log b"] + [f"purchase:{n}" for n in names] + \
                 [f"dropout:{n}" for n in names]
        self.covariance_ = pd.DataFrame(cov, index=labels, columns=labels)
        self.design_columns_ = names
        self.params_ = pd.Series(np.r_[np.exp(theta[:4]), theta[4:]],
                                 index=list(self.base) + labels[4:], name="estimate")
        se = np.sqrt(np.diag(cov))
        lower, upper = theta - Z95 * se, theta + Z95 * se
        nat = np.r_[np.ones(4, bool), np.zeros(2 * k, bool)]
        self.summary_ = pd.DataFrame({
            "estimate": self.params_.to_numpy(),
            "se": np.where(nat, np.exp(theta) * se, se),  # delta method for r, alpha, a, b
            "lower_95": np.where(nat, np.exp(lower), lower),
            "upper_95": np.where(nat, np.exp(upper), upper),
            "ratio": np.where(nat, np.nan, np.exp(theta)),
            "ratio_lower_95": np.where(nat, np.nan, np.exp(lower)),
            "ratio_upper_95": np.where(nat, np.nan, np.exp(upper)),
        }, index=self.params_.index)
        self.summary_.index.name = "parameter"
        self.group_effects_ = self._group_effects(frame, weights) if self.group is not None else None
        return self

    @staticmethod
    def _check_data(data: pd.DataFrame, w: np.ndarray) -> None:
        x, t_x, T = (data[c].to_numpy() for c in ("x", "t_x", "T"))
        problems = []
        if not np.all(np.isfinite(data.to_numpy())):
            problems.append("missing or infinite values in x, t_x or T")
        if (x < 0).any() or (x != np.round(x)).any():
            problems.append(f"{int(((x < 0) | (x != np.round(x))).sum())} rows with x not a whole number >= 0")
        if (t_x < 0).any() or (t_x > T + 1e-9).any():
            problems.append(f"{int(((t_x < 0) | (t_x > T + 1e-9)).sum())} rows with t_x outside [0, T]")
        if ((x == 0) & (t_x != 0)).any():
            problems.append(f"{int(((x == 0) & (t_x != 0)).sum())} rows with x = 0 but t_x > 0")
        if (T <= 0).any():
            problems.append(f"{int((T <= 0).sum())} rows with T <= 0")
        if problems:
            raise InputError("BGNBD: the customer table is not a valid (x, t_x, T) summary: " + "; ".join(problems) + ".")
        if not (w[x > 0] > 0).any():
            raise ModelError("BGNBD: nobody bought again in the window (all x = 0), so purchase rate and "
                             "dropout cannot be told apart; use a longer window.")

    def _check_groups(self, frame: pd.DataFrame, w: np.ndarray) -> None:
        g = frame[self.group].astype(str).to_numpy()
        buyers = frame["x"].to_numpy() > 0
        for label in self.group_labels_:
            if not (w[(g == label) & buyers] > 0).any():
                raise ModelError(f"BGNBD: nobody in the {label} group bought again in the window, so its purchase "
                                 f"rate and dropout cannot be estimated; merge it with another group.")

    def _group_effects(self, frame: pd.DataFrame, weights) -> pd.DataFrame:
        w = _weights(frame, weights)
        g = frame[self.group].astype(str)
        customers = pd.Series(w, index=frame.index).groupby(g.to_numpy()).sum()
        rows = []
        for label in self.group_labels_:
            row = {"group": label, "customers": float(customers.get(label, 0.0))}
            for process, key in (("purchase", "purchase_rate_ratio"), ("dropout", "dropout_ratio")):
                if label == self.reference_group:
                    row.update({key: 1.0, f"{key}_lower": 1.0, f"{key}_upper": 1.0})
                else:
                    s = self.summary_.loc[f"{process}:group[{label}]"]
                    row.update({key: s["ratio"], f"{key}_lower": s["ratio_lower_95"],
                                f"{key}_upper": s["ratio_upper_95"]})
            rows.append(row)
        return pd.DataFrame(rows).set_index("group")

    # ---- predictions
    def _individual(self, frame: pd.DataFrame):
        if self.params_ is None:
            raise ModelError("BGNBD: call fit() first.")
        _check_columns(frame, ["x", "t_x", "T", *self.covariates_], "BGNBD")
        th = self._theta
        k = len(self.design_columns_)
        z = self._design(frame).to_numpy(float) if k else np.zeros((len(frame), 0))
        r, alpha, a, b = np.exp(th[:4])
        alpha_i = alpha * np.exp(-z @ th[4:4 + k])
        a_i = a * np.exp(z @ th[4 + k:])
        x, t_x, T = (frame[c].to_numpy(float) for c in ("x", "t_x", "T"))
        return r, alpha_i, a_i, b, x, t_x, T

    def probability_alive(self, frame: pd.DataFrame) -> np.ndarray:
        """P(alive at T | x, t_x, T, z) per row (Fader, Hardie & Lee 2008, note 021, eq. 2)."""
        r, alpha, a, b, x, t_x, T = self._individual(frame)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(x > 0, special.expit(-log_odds), 1.0)

    def expected_purchases(self, t: float, frame: pd.DataFrame) -> np.ndarray:
        """E[X(T, T + t] | x, t_x, T, z]: expected purchases in the next ``t`` time units, per row.

        Fader, Hardie & Lee (2005a), eq. (10), with each customer's ``alpha_i`` and ``a_i``.
        Needs ``a_i != 1``; the Gaussian hypergeometric function is evaluated with scipy, through
        Euler's transformation where the direct series does not return a finite value.
        """
        r, alpha, a, b, x, t_x, T = self._individual(frame)
        z = t / (alpha + T + t)
        c = a + b + x - 1
        with np.errstate(all="ignore"):
            hyp = special.hyp2f1(r + x, b + x, c, z)
            bad = ~np.isfinite(hyp)
            if bad.any():  # Euler: 2F1(p,q;c;z) = (1-z)^(c-p-q) 2F1(c-p, c-q; c; z)
                hyp[bad] = (1 - z[bad]) ** (c[bad] - r - x[bad] - b - x[bad]) * special.hyp2f1(
                    c[bad] - r - x[bad], c[bad] - b - x[bad], c[bad], z[bad])
            head = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
            odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
        return head / (1 + odds)

    def purchase_rate(self, frame: pd.DataFrame) -> np.ndarray:
        """Mean purchase rate while alive, ``r / alpha_i`` per time unit (before seeing any purchase)."""
        r, alpha, *_ = self._individual(frame)
        return r / alpha


def _factorize_rows(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct rows of ``z`` and those rows (hash-based; ``np.unique(axis=0)`` sorts)."""
    if z.shape[1] == 0:
        return np.zeros(z.shape[0], np.int64), np.zeros((1, 0))
    key = np.zeros(z.shape[0], np.int64)
    for j in range(z.shape[1]):
        codes, uniques = pd.factorize(z[:, j])
        key, _ = pd.factorize(key * uniques.size + codes)
    inverse, uniques = pd.factorize(key)
    row = np.zeros(uniques.size, np.int64)
    row[inverse] = np.arange(z.shape[0])  # any row of a pattern will do: they are equal
    return inverse.astype(np.int64), z[row]


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Inner product without BLAS: OpenBLAS threads large dot products and, on a busy machine,
    its spinning threads made one likelihood evaluation twice as slow."""
    return float(np.einsum("i,i->", u, v, optimize=False))


class _BGNBDLikelihood:
    """Negative log-likelihood of the BG/NBD with covariates and its analytic gradient.

    ``theta = [log r, log alpha, log a, log b, g1 (k), g2 (k)]``. Special functions that depend
    only on ``x`` or on (covariate pattern, ``x``) are evaluated once per distinct value, and the
    rows are ordered repeat buyers first so the second term of the likelihood is computed on
    buyers only: one evaluation at a million rows is a few vector passes.

    Per row, with ``A = (alpha_i + T)^-(r+x)`` and ``B = a_i / (b + x - 1) (alpha_i + t_x)^-(r+x)``
    (``B = 0`` when ``x = 0``), Fader & Hardie (2013, note 027) eq. (4):
    ``ll = lnG(r+x) - lnG(r) + r ln alpha_i + lnB(a_i, b+x) - lnB(a_i, b) + ln(A + B)``.
    """

    def __init__(self, x, t_x, T, z, w):
        x = np.asarray(x, float)
        order = np.argsort(x == 0, kind="stable")  # buyers first
        self.x = x[order]
        self.t_x, self.T = np.asarray(t_x, float)[order], np.asarray(T, float)[order]
        self.w = np.asarray(w, float)[order]
        self.z = np.asarray(z, float)[order].reshape(len(order), -1)
        self.k = self.z.shape[1]
        self.nb = int((self.x > 0).sum())
        self.x_inv, self.xu = pd.factorize(self.x)
        self.x_inv = self.x_inv.astype(np.int64)
        self.z_inv, self.zu = _factorize_rows(self.z)
        key = self.z_inv * self.xu.size + self.x_inv
        self.k_inv, self.ku = pd.factorize(key)
        self.k_inv = self.k_inv.astype(np.int64)
        self.ku_z, self.ku_x = self.ku // self.xu.size, self.xu[self.ku % self.xu.size]
        self.wz = self.w[:, None] * self.z  # for the covariate gradients

    def __call__(self, theta):
        k, nb, w = self.k, self.nb, self.w
        r, alpha, a, b = np.exp(theta[:4])
        eta1 = self.zu @ theta[4:4 + k] if k else np.zeros(1)
        eta2 = self.zu @ theta[4 + k:] if k else np.zeros(1)
        log_alpha_p = np.log(alpha) - eta1
        alpha_p, a_p = np.exp(log_alpha_p), a * np.exp(eta2)
        # functions of x only (buyers: x >= 1, so b + x - 1 > 0)
        xu = self.xu
        xu_b = np.maximum(xu - 1, 0) + b
        ux = np.stack([special.gammaln(r + xu) - special.gammaln(r) + special.gammaln(b + xu) - special.gammaln(b),
                       special.digamma(r + xu) - special.digamma(r), special.digamma(b + xu) - special.digamma(b),
                       np.log(xu_b), 1.0 / xu_b])
        # functions of (covariate pattern, x)
        ab_k = a_p[self.ku_z] + b
        uk = np.stack([special.gammaln(ab_k) - special.gammaln(ab_k + self.ku_x),
                       special.digamma(ab_k) - special.digamma(ab_k + self.ku_x)])
        lg_x, dg_rx, dg_bx, log_bx, inv_bx = (np.take(v, self.x_inv) for v in ux)
        lg_abx, dg_abx = (np.take(v, self.k_inv) for v in uk)
        up = np.stack([log_alpha_p, alpha_p, np.log(a_p), a_p])
        log_alpha_i, alpha_i, log_a_i, a_i = (np.take(v, self.z_inv) for v in up)

        rx = r + self.x
        inv_aT = 1.0 / (alpha_i + self.T)
        log_aT = -np.log(inv_aT)
        u1 = -rx * log_aT
        # second term, buyers only
        s = slice(0, nb)
        inv_at = 1.0 / (alpha_i[s] + self.t_x[s])
        log_at = -np.log(inv_at)
        u2 = log_a_i[s] - log_bx[s] - rx[s] * log_at
        m = u1.copy()
        m[s] = np.logaddexp(u1[s], u2)
        w2 = np.zeros_like(u1)
        w2[s] = np.exp(u2 - m[s])
        w1 = 1.0 - w2
        ll = lg_x + r * log_alpha_i + lg_abx + m
        d_r = dg_rx + log_alpha_i - w1 * log_aT
        d_r[s] -= w2[s] * log_at
        t_alpha = r - rx * w1 * alpha_i * inv_aT      # alpha_i * d ll / d alpha_i
        t_alpha[s] -= rx[s] * w2[s] * alpha_i[s] * inv_at
        t_a = dg_abx * a_i + w2         # a_i * d ll / d a_i
        d_b = dg_bx + dg_abx - w2 * inv_bx
        dot = _dot
        grad = np.empty(4 + 2 * k)
        grad[0] = r * dot(w, d_r)
        grad[1] = dot(w, t_alpha)
        grad[2] = dot(w, t_a)
        grad[3] = b * dot(w, d_b)
        if k:
            grad[4:4 + k] = -np.einsum("i,ij->j", t_alpha, self.wz, optimize=False)
            grad[4 + k:] = np.einsum("i,ij->j", t_a, self.wz, optimize=False)
        return -dot(w, ll), -grad


# --------------------------------------------------------------------------- Gamma-Gamma

class GammaGamma(_Fitter):
    """Gamma-Gamma model of spend per purchase, by maximum likelihood on repeat buyers.

    Each purchase of customer ``i`` is ``Gamma(p, nu_i)`` (shape ``p``, rate ``nu_i``) and
    ``nu_i ~ Gamma(q, gamma)``, so a customer's mean spend is ``p / nu_i`` and the population's
    ``p gamma / (q - 1)``. Only the customer's mean spend over ``x`` purchases enters the
    likelihood (Fader, Hardie & Lee 2005b; Fader & Hardie 2013, note 025, eq. 2):

        f(mbar | x) = Gamma(p x + q) / (Gamma(p x) Gamma(q)) * gamma^q mbar^(p x - 1) x^(p x)
                      / (gamma + mbar x)^(p x + q)

    Customers with ``x = 0`` (no repeat purchase) carry no information and are left out, as in
    the published fit. Spend is assumed independent of purchase frequency; check that with the
    correlation of ``x`` and ``mean_spend`` among repeat buyers (``spend_frequency_correlation_``).

    Fitted attributes
    -----------------
    params_ : Series ``p``, ``q``, ``gamma``.
    log_likelihood_, covariance_ (of log p, log q, log gamma), buyers_ (repeat buyers used),
    spend_frequency_correlation_.
    """

    def __init__(self) -> None:
        self.params_: pd.Series | None = None

    def fit(self, frame: pd.DataFrame, weights: str | np.ndarray | None = None) -> GammaGamma:
        """Fit on ``x`` (repeat purchases) and ``mean_spend`` (mean spend per repeat purchase)."""
        _check_columns(frame, ["x", "mean_spend"], "GammaGamma")
        w = _weights(frame, weights)
        x, m = frame["x"].to_numpy(float), frame["mean_spend"].to_numpy(float)
        keep = (x > 0) & (w > 0)
        if keep.sum() < 2:
            raise ModelError(f"GammaGamma: {int(keep.sum())} repeat buyers; spend per purchase needs customers who "
                             f"bought again in the window.")
        x, m, w = x[keep], m[keep], w[keep]
        if not np.all(np.isfinite(m)) or (m <= 0).any():
            raise InputError(f"GammaGamma: {int((~np.isfinite(m) | (m <= 0)).sum())} repeat buyers have a mean spend "
                             f"that is missing or not positive; the model needs positive spend (drop refunds-only "
                             f"customers).")
        self.buyers_ = float(w.sum())
        self.spend_frequency_correlation_ = float(np.corrcoef(x, m)[0, 1]) if np.ptp(x) > 0 else float("nan")
        like = _GammaGammaLikelihood(x, m, w)
        res = _minimise(like, np.array([0.0, 0.0, np.log(np.average(m, weights=w))]), "GammaGamma")
        theta = res.x
        self._theta = theta
        self.log_likelihood_ = -float(like(theta)[0])
        cov = _covariance(_hessian(like, theta), "GammaGamma")
        names = ["p", "q", "gamma"]
        self.covariance_ = pd.DataFrame(cov, index=[f"log {n}" for n in names], columns=[f"log {n}" for n in names])
        self.params_ = pd.Series(np.exp(theta), index=names, name="estimate")
        se = np.sqrt(np.diag(cov))
        self.summary_ = pd.DataFrame({"estimate": np.exp(theta), "se": np.exp(theta) * se,
                                      "lower_95": np.exp(theta - Z95 * se), "upper_95": np.exp(theta + Z95 * se)},
                                     index=pd.Index(names, name="parameter"))
        return self

    def expected_spend(self, frame: pd.DataFrame) -> np.ndarray:
        """E[spend per purchase | x, mean_spend], per row, in currency per purchase.

        ``(gamma + mbar x) p / (p x + q - 1)``: a weighted mean of the population mean
        ``p gamma / (q - 1)`` and the customer's own mean (Fader, Hardie & Lee 2005b, eq. 5).
        Customers with ``x = 0`` get the population mean.
        """
        if self.params_ is None:
            raise ModelError("GammaGamma: call fit() first.")
        p, q, gamma = self.params_.to_numpy()
        x = frame["x"].to_numpy(float)
        m = frame["mean_spend"].to_numpy(float) if "mean_spend" in frame else np.zeros(len(frame))
        m = np.where(x > 0, m, 0.0)
        return (gamma + m * x) * p / (p * x + q - 1)

    @property
    def population_mean_spend(self) -> float:
        """``p gamma / (q - 1)``: mean spend per purchase of a new customer (infinite when q <= 1)."""
        p, q, gamma = self.params_.to_numpy()
        return float(p * gamma / (q - 1)) if q > 1 else float("inf")


class _GammaGammaLikelihood:
    """Negative log-likelihood of the Gamma-Gamma model and its gradient; theta = log p, q, gamma."""

    def __init__(self, x, m, w):
        self.x, self.m, self.w = x, m, w
        self.log_m, self.log_x = np.log(m), np.log(x)

    def __call__(self, theta):
        p, q, g = np.exp(theta)
        x, m, w = self.x, self.m, self.w
        px = p * x
        log_gmx = np.log(g + m * x)
        ll = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(g)
              + (px - 1) * self.log_m + px * self.log_x - (px + q) * log_gmx)
        dg = special.digamma(px + q)
        d_p = x * (dg - special.digamma(px) + self.log_m + self.log_x - log_gmx)
        d_q = dg - special.digamma(q) + np.log(g) - log_gmx
        d_g = q / g - (px + q) / (g + m * x)
        grad = np.array([p * _dot(w, d_p), q * _dot(w, d_q), g * _dot(w, d_g)])
        return -_dot(w, ll), -grad


# --------------------------------------------------------------------------- per group

def group_outputs(purchases: BGNBD, spend: GammaGamma | None, frame: pd.DataFrame, t: float) -> pd.DataFrame:
    """Per satisfaction group: the fitted ratios and the customers' expected next ``t`` time units.

    Returns a DataFrame indexed by group with ``customers``, ``purchase_rate_ratio`` and
    ``dropout_ratio`` with their 95% intervals (from :attr:`BGNBD.group_effects_`), and the
    means over the group's customers of ``expected_purchases`` (E[X(t) | history], purchases per
    customer in the next ``t`` units), ``p_alive`` (P(alive) at the end of the data) and, with a
    fitted ``spend`` model, ``spend_per_purchase`` and ``expected_revenue`` (expected purchases x
    expected spend per purchase, currency per customer over the next ``t`` units).
    """
    if purchases.group_effects_ is None:
        raise ModelError("group_outputs: the BG/NBD model was fitted without a group.")
    out = purchases.group_effects_.copy()
    g = frame[purchases.group].astype(str).to_numpy()
    per = pd.DataFrame({"group": g, "expected_purchases": purchases.expected_purchases(t, frame),
                        "p_alive": purchases.probability_alive(frame)})
    if spend is not None:
        per["spend_per_purchase"] = spend.expected_spend(frame)
        per["expected_revenue"] = per["expected_purchases"] * per["spend_per_purchase"]
    return out.join(per.groupby("group").mean())
