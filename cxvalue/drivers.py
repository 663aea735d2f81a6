"""What drives the value: key drivers of the score, and journeys vs touchpoints.

How a row of the responses table (CONTRACT section 1) is read here:

* **relationship response**: ``journey`` empty (null or blank). It carries the overall
  score (``nps``, ``csat`` or ``ces``) and the ``attr_*`` attribute ratings.
* **whole-journey rating**: ``journey`` set, ``touchpoint`` empty: the customer's
  satisfaction with the journey as a whole (onboarding, billing, ...).
* **touchpoint rating**: ``journey`` and ``touchpoint`` set: satisfaction with one step of
  that journey (the invoice, the payment portal, ...).

**Key drivers** (:class:`KeyDrivers`). The relative importance of each driver for the
overall score is the Shapley value of the R² of an ordinary least-squares regression of
the score on the drivers (Lipovetsky & Conklin 2001; it equals Budescu's "general
dominance" and the LMG measure of Lindeman, Merenda & Gold 1980): the gain in R² from
adding the driver, averaged over every order in which the drivers can enter. It is
computed exactly over all ``2^p`` subsets, and the shares (driver's value / full R²) sum
to 1. Their 95% intervals are bootstrap percentiles over resampled customers (a customer's responses
stay together). With
independent drivers a driver's share is its squared standardised coefficient over the sum
of them. Beside importance stands performance (mean rating, top-two-box share), the usual
importance-vs-performance view. Journey scores can be drivers too: a customer's mean
whole-journey rating per journey, from the ``lookback_months`` up to the relationship
response.

**Money per point.** A one-point gain on driver ``k`` raises each respondent's rating by
``min(1, scale maximum - rating)`` (no one rises above the top of the scale) and their
score by the driver's OLS coefficient times that gain. Scores are whole numbers, so a
respondent's score is read as the rounded value of a continuous score spread evenly over
``score +- 0.5``; the shifted score's band is then a probability over the bands of
:func:`cxvalue.config.bands_for` (a shift of 0.3 moves 30% of those at the top of their
band into the next). The change in each group's share times a value per customer per year
of each group times a number of customers is the money per year (:func:`value_per_point`).

**Journeys vs touchpoints** (:class:`JourneysVsTouchpoints`). Per customer of the
history, from the ratings dated in the ``lookback_months`` up to the index response:
journey-level satisfaction = the mean whole-journey rating per journey; touchpoint-level
satisfaction = the mean rating per touchpoint. Each set predicts, in K-fold cross-
validation, (a) churn within 12 months of the index response (Poisson model of the event
with log time-at-risk offset, i.e. a constant-hazard survival model that keeps censored
customers) and (b) revenue per customer-year in the post window (quasi-Poisson, log
exposure offset, as :class:`cxvalue.linkage.RevenueModel`). The yardstick is the
out-of-sample deviance explained against an intercept-only model fitted on the same
folds; a missing rating is set to the column mean with a missing-indicator column. The
difference (journeys - touchpoints) gets a paired bootstrap interval over customers and
its fold-to-fold spread; a side wins when the interval excludes 0 and the difference is at
least ``min_difference`` (0.01 of the deviance by default).
"""

from __future__ import annotations

import gc
import math
import warnings as _warnings
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from cxvalue.config import DEFAULT_BANDS, METRICS, SCORE_RANGES, bands_for
from cxvalue.exceptions import InputError
from cxvalue.history import DAYS_PER_YEAR
from cxvalue.skipping import Skip, require, skippable

__all__ = ["responses_frame", "journey_metric", "subset_r2", "shapley_values", "band_shares", "value_per_point",
           "journey_features", "KeyDrivers", "JourneysVsTouchpoints"]


# --------------------------------------------------------------------------- inputs


def responses_frame(data: Any) -> pd.DataFrame:
    """The responses table as pandas, from checked data or a DataFrame.

    ``journey`` and ``touchpoint`` blanks become missing; ``customer_id`` is text and
    ``response_date`` a datetime.
    """
    if isinstance(data, pd.DataFrame):
        df = data.copy()
    else:  # in a fixed order: the bootstrap resamples by position, and DuckDB's parallel scans keep no order
        r = data.tables["responses"]
        first = ["customer_id", "response_date"]
        df = r.order_by([*first, *[c for c in r.columns if c not in first]]).to_pyarrow().to_pandas()
    for col in ("journey", "touchpoint"):
        if col in df.columns:
            x = df[col].astype("string").str.strip()
            df[col] = x.where(x != "")
        else:
            df[col] = pd.Series(pd.NA, index=df.index, dtype="string")
    df["customer_id"] = df["customer_id"].astype(str)
    df["response_date"] = pd.to_datetime(df["response_date"])
    return df


def _name(x: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(x).strip().lower())


def journey_metric(responses: pd.DataFrame, metric: str | None = None) -> str:
    """The score the journey surveys are compared on: ``metric`` when given, else whichever of
    nps, csat, ces rates the most responses with a journey (ties: csat, ces, nps).

    Raises :class:`cxvalue.skipping.Skip` when the responses hold no journey survey or none
    with a score on that metric.
    """
    require("journey" in responses.columns and responses["journey"].notna().any(),
            "Journeys vs touchpoints need journey surveys: add columns journey and touchpoint to the responses "
            "table (journey = the journey surveyed, such as billing; touchpoint = the step rated, empty for a "
            "rating of the whole journey).")
    journeys = responses[responses["journey"].notna()]
    if metric is not None:
        require(metric in journeys.columns and journeys[metric].notna().any(),
                f"Journeys vs touchpoints need {metric.upper()} ratings on the journey surveys; the responses "
                f"with a journey carry none.")
        return metric
    rated = {m: int(journeys[m].notna().sum()) for m in ("csat", "ces", "nps") if m in journeys.columns}
    best = max(rated, key=rated.get, default=None)
    require(best is not None and rated[best] > 0,
            f"Journeys vs touchpoints need a score on the journey surveys: the responses with a journey carry "
            f"no {', '.join(METRICS)}.")
    return best


def _journey_ratings(responses: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Whole-journey and touchpoint ratings with a score on ``metric``."""
    if metric not in responses.columns:
        return responses.iloc[0:0]
    j = responses[responses["journey"].notna() & responses[metric].notna()]
    return j[["customer_id", "response_date", "journey", "touchpoint", metric]].astype({metric: float})


def _in_lookback(rated: pd.DataFrame, anchors: pd.DataFrame, months: int) -> pd.DataFrame:
    """Ratings of each anchor's customer dated in ``(anchor - months, anchor]``.

    ``anchors`` has ``customer_id``, ``anchor_date`` and ``row`` (what the ratings attach to).
    """
    m = rated.merge(anchors, on="customer_id")
    start = m["anchor_date"] - pd.DateOffset(months=months)
    return m[(m["response_date"] <= m["anchor_date"]) & (m["response_date"] > start)]


# --------------------------------------------------------------------------- Shapley R²

#: Most drivers for the exact decomposition (2^14 = 16,384 subset regressions per fit).
MAX_DRIVERS = 14


def subset_r2(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """R² of the OLS regression (with intercept) of ``y`` on every subset of ``X``'s columns.

    Entry ``mask`` holds the subset of columns whose bits are set (entry 0 = no column = 0).
    One QR decomposition of the centred ``[X, y]`` reduces the data to a square matrix ``R``
    with the same cross-products, so each subset's least squares (``numpy.linalg.lstsq``)
    runs on ``p + 1`` rows instead of ``n``: the residual sums of squares are identical.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    return _subset_r2(np.linalg.qr(np.column_stack([Xc, yc]), mode="r"))


def _subset_r2(r: np.ndarray) -> np.ndarray:
    """:func:`subset_r2` from any square ``r`` whose cross-products ``r.T @ r`` are those of the
    centred ``[X, y]`` (``y`` last): every subset's residual sum of squares is the same on ``r``."""
    p = r.shape[1] - 1
    ry = r[:, -1]
    tss = float(ry @ ry)
    out = np.zeros(2**p)
    if tss <= 0:
        return out
    for mask in range(1, 2**p):
        cols = [j for j in range(p) if mask >> j & 1]
        coef = np.linalg.lstsq(r[:, cols], ry, rcond=None)[0]
        resid = ry - r[:, cols] @ coef
        out[mask] = 1.0 - float(resid @ resid) / tss
    return out


def _customer_cross_products(z: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Per customer (``codes``: 0 .. ``n_groups`` - 1, each present): the number of rows, the column sums of ``z``
    and the sums of every product ``z[:, i] * z[:, j]`` with ``i <= j``, one row per customer. A
    resample's cross-products are then one product of its draw counts with this table
    (:func:`_resample_root`)."""
    from scipy import sparse

    i, j = np.triu_indices(z.shape[1])
    rows = np.column_stack([np.ones(len(z)), z, z[:, i] * z[:, j]])
    by_customer = sparse.csr_matrix((np.ones(len(z)), (codes, np.arange(len(z)))), shape=(n_groups, len(z)))
    # column-major: a resample's product with the draw counts then reads each column in one run
    return np.asfortranarray(by_customer @ rows)


def _resample_root(table: np.ndarray, counts: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A square ``r`` with ``r.T @ r`` = the centred cross-products of the columns of a resample that
    draws each customer ``counts`` times (:func:`_customer_cross_products`); from the
    eigen-decomposition, so a resample with a constant column still has one. A column the resample
    holds constant (its drawn customers' lowest and highest values, ``low`` and ``high``, all alike)
    is exactly 0 in ``r``: its centred sums would hold rounding errors, not 0, from which a least
    squares fit could pick up noise. Only a column whose centred sum of squares is tiny next to its
    plain one is checked."""
    k = low.shape[1]
    agg = counts @ table
    total, sums = agg[0], agg[1:k + 1]
    cross = np.empty((k, k))
    i, j = np.triu_indices(k)
    cross[i, j] = cross[j, i] = agg[k + 1:]
    plain = np.diag(cross).copy()
    cross -= np.outer(sums, sums) / total
    constant = np.diag(cross) <= 1e-9 * plain
    if constant.any():
        drawn = counts > 0
        constant[constant] = (low[drawn][:, constant].min(axis=0) == high[drawn][:, constant].max(axis=0))
    cross[constant, :] = 0.0
    cross[:, constant] = 0.0
    vals, vecs = np.linalg.eigh(cross)
    r = np.sqrt(np.clip(vals, 0.0, None))[:, None] * vecs.T
    r[:, constant] = 0.0
    return r


def shapley_values(r2: np.ndarray) -> np.ndarray:
    """Shapley value of each column from the R² of every subset (:func:`subset_r2`).

    ``phi_k = sum over S without k of |S|! (p - |S| - 1)! / p! * (R²(S + k) - R²(S))``;
    the values sum to the R² of all columns.
    """
    p = int(round(math.log2(len(r2))))
    masks = np.arange(2**p)
    size = np.array([bin(m).count("1") for m in masks])
    weight = np.array([math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p) if s < p else 0.0
                       for s in size])
    phi = np.empty(p)
    for k in range(p):
        without = masks[(masks >> k & 1) == 0]
        phi[k] = float(np.sum(weight[without] * (r2[without | (1 << k)] - r2[without])))
    return phi


# --------------------------------------------------------------------------- bands and money


def _cuts(bands: dict[str, list[int]]) -> np.ndarray:
    """Boundaries between consecutive bands on the continuous score (hi + 0.5 when contiguous)."""
    ranges = list(bands.values())
    return np.array([(a[1] + b[0]) / 2 for a, b in zip(ranges[:-1], ranges[1:])], float)


def band_shares(scores: np.ndarray, shift: np.ndarray | float, bands: dict[str, list[int]]) -> pd.Series:
    """Expected share of respondents in each band after adding ``shift`` to their scores.

    A whole-number score ``s`` stands for a continuous score spread evenly over
    ``[s - 0.5, s + 0.5)``; the shifted score's band is the share of that interval falling
    in each band (lowest band open below, highest open above). With ``shift = 0`` these are
    the observed shares. Returns a Series indexed by band label, summing to 1.
    """
    s = np.asarray(scores, float) + np.broadcast_to(np.asarray(shift, float), np.shape(scores))
    edges = np.concatenate([[-np.inf], _cuts(bands), [np.inf]])
    lo, hi = s - 0.5, s + 0.5
    share = [np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0, 1).mean() for a, b in zip(edges[:-1], edges[1:])]
    return pd.Series(share, index=list(bands), dtype=float)


def value_per_point(share_shifts: pd.DataFrame, value_per_customer_year: pd.Series, n_customers: float) -> pd.Series:
    """Money per year from a one-point gain on each driver.

    Parameters
    ----------
    share_shifts : drivers x groups: change in the share of customers in each group from a
        one-point gain on the driver (rows sum to 0), e.g. ``KeyDrivers.share_shifts_``.
    value_per_customer_year : group -> money per customer per year (e.g. margin per
        customer-year, or CLV spread over its years), in the data's currency.
    n_customers : how many customers the gain reaches (e.g. today's active base).

    Returns
    -------
    Series driver -> ``n_customers * sum_g shift_g * value_g``, money per year. Because
    the shifts sum to 0, only the gaps between the groups' values matter.
    """
    missing = [g for g in share_shifts.columns if g not in value_per_customer_year.index]
    if missing:
        raise InputError(f"value_per_point: no value per customer-year for group(s) {', '.join(map(str, missing))}; "
                         f"give one for every group ({', '.join(map(str, share_shifts.columns))}).")
    value = value_per_customer_year.reindex(share_shifts.columns).astype(float)
    return (share_shifts.astype(float) @ value * float(n_customers)).rename("value_per_year")


# --------------------------------------------------------------------------- key drivers


class KeyDrivers:
    """Relative importance (Shapley R²) and performance of the drivers of the overall score.

    Parameters
    ----------
    metric : the overall score (``nps``, ``csat`` or ``ces``) whose drivers are sought.
    bands : score bands ``label -> [low, high]`` for the money per point (default: the
        contract's bands of ``metric``).
    min_cell_size : drivers rated by fewer respondents are left out (and warned about).
    n_boot : bootstrap resamples for the intervals of the shares (0 = none).
    seed : random seed of the bootstrap.
    journey_drivers : also use journey scores as drivers (``journey_<name>``: the
        customer's mean whole-journey ``journey_metric`` rating per journey, from the
        ``lookback_months`` up to the relationship response; ``journey_metric`` None = the
        score the journey surveys carry, :func:`journey_metric`). Only respondents with every
        driver rated enter the model.
    top_box : how many top points of a scale count as a top rating (2 = top-two box).
    attribute_scale : ``(low, high)`` of the ``attr_*`` scale (default: the lowest and
        highest rating seen over all of them).

    Fitted attributes: ``summary_`` (see :attr:`summary`), ``r2_``, ``n_responses_``,
    ``result_`` (statsmodels OLS of the score on all drivers), ``shares_`` (observed group
    shares), ``share_shifts_`` (drivers x groups), ``boot_shares_``, ``warnings_``, ``skipped_``
    (None, or why the data cannot support the analysis: no ``metric`` column, no ``attr_*``
    ratings, too few respondents with every driver rated; every other attribute is then empty).
    """

    def __init__(self, metric: str = "nps", bands: dict[str, list[int]] | None = None, min_cell_size: int = 10,
                 n_boot: int = 200, seed: int = 42, journey_drivers: bool = False, journey_metric: str | None = None,
                 lookback_months: int = 12, top_box: int = 2, attribute_scale: tuple[int, int] | None = None):
        self.metric = metric
        self.bands = dict(bands or DEFAULT_BANDS[metric])
        self.min_cell_size = min_cell_size
        self.n_boot = n_boot
        self.seed = seed
        self.journey_drivers = journey_drivers
        self.journey_metric = journey_metric
        self.lookback_months = lookback_months
        self.top_box = top_box
        self.attribute_scale = attribute_scale

    @classmethod
    def from_params(cls, params: dict[str, Any], **kwargs: Any) -> "KeyDrivers":
        """Set up from run parameters (``metric``, ``bands``, ``min_cell_size``, ``seed``)."""
        base = {"metric": params["metric"], "bands": bands_for(params), "min_cell_size": params["min_cell_size"],
                "seed": params["seed"]}
        return cls(**{**base, **kwargs})

    # ---------------------------------------------------------------- data
    def _frame(self, responses: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, tuple[float, float]]]:
        """Relationship responses with a score: the score, the drivers, and each driver's scale."""
        rel = responses[responses["journey"].isna() & responses[self.metric].notna()].reset_index(drop=True)
        attrs = [c for c in rel.columns if c.startswith("attr_")]
        frame = pd.DataFrame({"customer_id": rel["customer_id"], "score": rel[self.metric].astype(float)})
        scales: dict[str, tuple[float, float]] = {}
        if attrs:
            values = rel[attrs].astype(float)
            lo, hi = self.attribute_scale or (np.nanmin(values.to_numpy()), np.nanmax(values.to_numpy()))
            for a in attrs:
                frame[a] = values[a]
                scales[a] = (float(lo), float(hi))
        if self.journey_drivers and responses["journey"].notna().any():
            try:
                metric = journey_metric(responses, self.journey_metric)
            except Skip as skip:
                self.warnings_.append(f"Key drivers: journey scores are not used as drivers. {skip}")
                return frame, scales
            rated = _journey_ratings(responses, metric)
            rated = rated[rated["touchpoint"].isna()]
            anchors = pd.DataFrame({"customer_id": rel["customer_id"], "anchor_date": rel["response_date"],
                                    "row": np.arange(len(rel))})
            near = _in_lookback(rated, anchors, self.lookback_months)
            means = near.pivot_table(index="row", columns="journey", values=metric, aggfunc="mean")
            for j in sorted(means.columns):
                col = f"journey_{_name(j)}"
                frame[col] = means[j].reindex(frame.index)
                scales[col] = tuple(float(v) for v in SCORE_RANGES[metric])
        return frame, scales

    # ---------------------------------------------------------------- fit
    @skippable
    def fit(self, data: Any) -> "KeyDrivers":
        """Fit on checked data (:func:`cxvalue.data.check`) or a responses DataFrame; returns ``self``
        (with ``skipped_`` set when the data cannot support it)."""
        return self._fit(data)

    def _fit(self, data: Any) -> "KeyDrivers":
        """The body of :meth:`fit` (undecorated, so that mutmut mutates it)."""
        responses = responses_frame(data)
        m = self.metric.upper()
        self.n_responses_ = 0
        require(self.metric in responses.columns,
                f"Key drivers need the {m} score: the responses table has no column {self.metric}.")
        require((responses["journey"].isna() & responses[self.metric].notna()).any(),
                f"Key drivers need relationship survey answers (journey empty) with an {m} score; the responses "
                f"have none.")
        frame, scales = self._frame(responses)
        counts = frame.drop(columns=["customer_id", "score"]).notna().sum()
        self.performance_ = self._performance(frame, counts, scales)
        require(counts.size, "Key drivers need attribute ratings (the responses have no attr_* ratings): add columns "
                             "named attr_<name> to the responses table (for example attr_support).")
        kept = []
        for d, n in counts.items():
            if n < self.min_cell_size:
                self.warnings_.append(f"Key drivers: {_label(d)} was rated by only {int(n)} respondents (fewer than "
                                      f"{self.min_cell_size}); it is left out.")
            elif frame[d].nunique() < 2:
                self.warnings_.append(f"Key drivers: every respondent gave {_label(d)} the same rating; it is left out.")
            else:
                kept.append(d)
        require(kept, f"Key drivers need attributes rated by at least {self.min_cell_size} respondents, and not "
                      f"all alike; none of the {len(counts)} attr_* ratings is, so there is nothing to rank.")
        require(len(kept) <= MAX_DRIVERS,
                f"Key drivers rank at most {MAX_DRIVERS} attributes at once (the exact decomposition takes 2^n "
                f"regressions) and the responses have {len(kept)}: keep at most {MAX_DRIVERS} attr_* columns.")
        complete = frame.dropna(subset=kept)
        self.drivers_ = kept
        self.scales_ = {d: scales[d] for d in kept}
        self.n_responses_ = len(complete)
        need = max(self.min_cell_size, 5 * (len(kept) + 1))
        require(len(complete) >= need,
                f"Key drivers need at least {need} relationship responses with every attribute rated (five per "
                f"driver and one more); only {len(complete)} have them, too few to rank the drivers.")
        if len(complete) < 0.5 * len(frame):
            self.warnings_.append(f"Key drivers: {len(complete):,} of {len(frame):,} relationship responses have every "
                                  f"driver rated; only they enter the model.")
        X = complete[kept].to_numpy(float)
        y = complete["score"].to_numpy(float)
        r2 = subset_r2(X, y)
        self.r2_ = float(r2[-1])
        phi = shapley_values(r2)
        shares = phi / self.r2_ if self.r2_ > 0 else np.full(len(kept), np.nan)
        if self.r2_ < 0.02:
            self.warnings_.append(f"Key drivers: the drivers explain only {self.r2_:.1%} of the variation in "
                                  f"{self.metric.upper()}; their ranking says little.")
        self.boot_shares_ = self._bootstrap(X, y, complete["customer_id"])
        self.result_ = sm.OLS(y, sm.add_constant(pd.DataFrame(X, columns=kept))).fit()
        coef, ci = self.result_.params[kept], self.result_.conf_int().loc[kept]
        self.shares_ = band_shares(y, 0.0, self.bands)
        gains = {}
        shifts = {}
        for j, d in enumerate(kept):
            lift = np.minimum(1.0, np.maximum(self.scales_[d][1] - X[:, j], 0.0))
            score_gain = coef[d] * lift
            gains[d] = float(score_gain.mean())
            shifts[d] = band_shares(y, score_gain, self.bands) - self.shares_
            if coef[d] < 0 and ci.loc[d, 1] < 0:
                self.warnings_.append(f"Key drivers: a better {_label(d)} rating goes with a lower "
                                      f"{self.metric.upper()} once the other drivers are held fixed; its money per "
                                      f"point is negative and worth a closer look.")
        self.share_shifts_ = pd.DataFrame(shifts).T.reindex(kept)
        self.share_shifts_.index.name = "driver"
        boot = self.boot_shares_
        summary = pd.DataFrame({
            "importance": shares,
            "importance_lo": np.nanpercentile(boot, 2.5, axis=0) if len(boot) else np.nan,
            "importance_hi": np.nanpercentile(boot, 97.5, axis=0) if len(boot) else np.nan,
            "r2_contribution": phi,
            "coefficient": coef.to_numpy(),
            "coefficient_lo": ci[0].to_numpy(),
            "coefficient_hi": ci[1].to_numpy(),
            "score_gain_per_point": [gains[d] for d in kept],
        }, index=pd.Index(kept, name="driver"))
        summary = summary.join(self.performance_)
        # a score everybody gave alike has no shares (NaN): they then all rank last, not a crash
        summary["rank"] = summary["importance"].rank(ascending=False, method="min", na_option="bottom").astype(int)
        self.summary_ = summary.sort_values("importance", ascending=False)
        return self

    def _performance(self, frame: pd.DataFrame, counts: pd.Series, scales: dict) -> pd.DataFrame:
        rows = {}
        for d, n in counts.items():
            x = frame[d].dropna()
            top = scales[d][1] - self.top_box + 1
            small = n < self.min_cell_size
            rows[d] = {"n_ratings": int(n), "mean_rating": np.nan if small or x.empty else float(x.mean()),
                       "top_box_share": np.nan if small or x.empty else float((x >= top).mean()),
                       "scale_max": scales[d][1], "suppressed": bool(small)}
        out = pd.DataFrame.from_dict(rows, orient="index",
                                     columns=["n_ratings", "mean_rating", "top_box_share", "scale_max", "suppressed"])
        out.index.name = "driver"
        return out

    def _bootstrap(self, X: np.ndarray, y: np.ndarray, customer: np.ndarray) -> np.ndarray:
        """Shares on resampled customers (all of a customer's responses go together). A resample
        counts each customer's responses as often as the customer was drawn: its cross-products,
        and so every subset's R², come from per-customer sums (:func:`_resample_root`) without
        building the resampled rows."""
        rng = np.random.default_rng(self.seed)
        codes, n_cust = pd.factorize(customer)[0], int(customer.nunique())
        z = np.column_stack([X, y])
        z = z - z.mean(axis=0)  # centred once: a resample's own centring then subtracts little
        table = _customer_cross_products(z, codes, n_cust)
        # each column's lowest and highest value per customer: which columns a resample holds constant
        low, high = np.full((n_cust, z.shape[1]), np.inf), np.full((n_cust, z.shape[1]), -np.inf)
        np.minimum.at(low, codes, z)
        np.maximum.at(high, codes, z)
        out = np.empty((self.n_boot, X.shape[1]))
        for b in range(self.n_boot):
            counts = np.bincount(rng.integers(0, n_cust, n_cust), minlength=n_cust).astype(float)
            # a constant score: every R² is 0 and the resample has no shares (NaN)
            r2 = _subset_r2(_resample_root(table, counts, low, high))
            out[b] = shapley_values(r2) / r2[-1] if r2[-1] > 0 else np.nan
        return out

    def _empty(self) -> None:
        """A skipped fit: no drivers; what was counted before the skip stays."""
        self.n_responses_ = getattr(self, "n_responses_", 0)
        self.performance_ = getattr(self, "performance_", self._performance(pd.DataFrame(), pd.Series(dtype=int), {}))
        self.drivers_, self.scales_ = [], {}
        self.r2_ = float("nan")
        self.result_ = None
        self.boot_shares_ = np.empty((0, 0))
        self.shares_ = pd.Series(np.nan, index=list(self.bands), dtype=float)
        self.share_shifts_ = pd.DataFrame(columns=list(self.bands), dtype=float)
        self.summary_ = pd.DataFrame(columns=["importance", "importance_lo", "importance_hi", "r2_contribution",
                                              "coefficient", "coefficient_lo", "coefficient_hi",
                                              "score_gain_per_point", *self.performance_.columns, "rank"])

    # ---------------------------------------------------------------- output
    @property
    def summary(self) -> pd.DataFrame:
        """Per driver, most important first: ``importance`` (share of the explained R², sums
        to 1) with its 95% bootstrap interval, ``r2_contribution``, the OLS ``coefficient``
        (score points per rating point) with 95% CI, ``score_gain_per_point`` (mean score gain
        from a one-point gain, capped at the scale top), ``n_ratings``, ``mean_rating``,
        ``top_box_share``, ``scale_max``, ``suppressed`` and ``rank``."""
        return self.summary_

    def value_per_point(self, value_per_customer_year: pd.Series, n_customers: float) -> pd.Series:
        """Money per year per driver from a one-point gain: :func:`value_per_point` of the fitted shifts."""
        return value_per_point(self.share_shifts_, value_per_customer_year, n_customers)

    def results(self, value_per_customer_year: pd.Series | None = None,
                n_customers: float | None = None) -> dict[str, Any]:
        """The ``results.json`` ``drivers`` block.

        ``importance`` {driver: share}, ``importance_ci`` {driver: [lo, hi]}, ``r2``,
        ``n_responses``, ``coefficients`` and ``coefficient_ci`` (score points per rating
        point), ``score_gain_per_point``, ``performance``
        {driver: {mean_rating, top_box_share, n_ratings}}, ``group_shares``,
        ``share_shift_per_point`` {driver: {group: change in share}}, ``warnings``, ``skipped``
        (None or the reason); and ``value_per_point`` {driver: money per year} when a value per
        group and a number of customers are given.
        """
        s = self.summary_
        out: dict[str, Any] = {
            "skipped": self.skipped_,
            "metric": self.metric,
            "importance": {d: _num(r["importance"]) for d, r in s.iterrows()},
            "importance_ci": {d: [_num(r["importance_lo"]), _num(r["importance_hi"])] for d, r in s.iterrows()},
            "r2": _num(self.r2_),
            "n_responses": int(self.n_responses_),
            "coefficients": {d: _num(r["coefficient"]) for d, r in s.iterrows()},
            "coefficient_ci": {d: [_num(r["coefficient_lo"]), _num(r["coefficient_hi"])] for d, r in s.iterrows()},
            "score_gain_per_point": {d: _num(r["score_gain_per_point"]) for d, r in s.iterrows()},
            "performance": {d: {"mean_rating": _num(r["mean_rating"]), "top_box_share": _num(r["top_box_share"]),
                                "n_ratings": int(r["n_ratings"])} for d, r in self.performance_.iterrows()},
            "group_shares": {g: _num(v) for g, v in self.shares_.items()},
            "share_shift_per_point": {d: {g: _num(v) for g, v in row.items()}
                                      for d, row in self.share_shifts_.iterrows()},
            "warnings": list(self.warnings_),
        }
        if value_per_customer_year is not None and n_customers is not None:
            out["value_per_point"] = {d: _num(v) for d, v in
                                      self.value_per_point(value_per_customer_year, n_customers).items()}
        return out

    def _repr_html_(self) -> str:
        """In Jupyter: the name, the skipped reason or the summary table, the caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, "Key drivers")


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def _label(driver: str) -> str:
    """``attr_ease`` -> "ease", ``journey_billing`` -> "the billing journey"."""
    if driver.startswith("attr_"):
        return driver[5:].replace("_", " ")
    if driver.startswith("journey_"):
        return f"the {driver[8:].replace('_', ' ')} journey"
    return driver


# --------------------------------------------------------------------------- journeys vs touchpoints

#: Follow-up of the churn outcome, days after the index response.
CHURN_HORIZON_DAYS = 365
#: Design matrices above this size are freed right after each cross-validation fit.
GC_BYTES = 10_000_000


def _poisson_unit_deviance(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Each observation's Poisson deviance (statsmodels' deviance residuals, squared)."""
    return sm.families.Poisson().resid_dev(y, mu) ** 2


def journey_features(responses: pd.DataFrame, history: pd.DataFrame, metric: str | None = None,
                     lookback_months: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Journey-level and touchpoint-level satisfaction of each history row's customer.

    Ratings on ``metric`` (None: :func:`journey_metric`) dated in ``(response_date - lookback_months, response_date]`` of
    the history row (the index response). Returns two frames indexed by the history row's
    position: ``journey:<journey>`` = mean whole-journey rating (rows with a journey and no
    touchpoint) and ``touchpoint:<journey>/<touchpoint>`` = mean touchpoint rating; only rows
    with at least one rating appear.
    """
    responses = responses_frame(responses)
    metric = journey_metric(responses, metric)
    rated = _journey_ratings(responses, metric)
    anchors = pd.DataFrame({"customer_id": history["customer_id"].astype(str).to_numpy(),
                            "anchor_date": pd.to_datetime(history["response_date"]).to_numpy(),
                            "row": np.arange(len(history))})
    near = _in_lookback(rated, anchors, lookback_months)
    whole = near[near["touchpoint"].isna()]
    steps = near[near["touchpoint"].notna()]
    journeys = whole.pivot_table(index="row", columns="journey", values=metric, aggfunc="mean")
    journeys.columns = [f"journey:{j}" for j in journeys.columns]
    touch = steps.pivot_table(index="row", columns=["journey", "touchpoint"], values=metric, aggfunc="mean")
    touch.columns = [f"touchpoint:{j}/{t}" for j, t in touch.columns]
    return journeys, touch


class JourneysVsTouchpoints:
    """Does journey-level or touchpoint-level satisfaction better predict churn and revenue?

    Parameters
    ----------
    metric : the rating of journey surveys compared (None: whichever score the journey
        surveys carry most, :func:`journey_metric`; csat first on a tie).
    folds : K of the K-fold cross-validation (customers assigned at random, seeded).
    n_boot : paired bootstrap resamples of customers for the difference's 95% interval.
    seed : random seed of the folds and the bootstrap.
    lookback_months : ratings dated in the months up to the index response count.
    min_cell_size : fewer customers with both kinds of rating than this (or than 10 per
        fold) and the comparison is skipped; rarer columns are dropped, and an outcome with
        fewer churn events (or customers with revenue) than this is not compared.
    covariates : with ``adjust=True``, the customer covariates of
        :func:`cxvalue.linkage.adjustment_frame`, in every model (baseline included).
    adjust : put the linkage models' adjustment terms (pre-window revenue and cost, tenure,
        covariates) into every model, so each set is judged on what it adds to them.
    min_difference : the smallest difference in deviance explained that names a winner (with
        millions of customers a gap of 0.001 is "significant" but does not matter).

    Fitted attributes: ``summary_`` (see :attr:`summary`), ``features_`` (``journey`` and
    ``touchpoint`` feature names), ``n_customers_``, ``metric_`` (the score compared),
    ``fold_scores_`` (per fold and outcome), ``warnings_``, ``skipped_`` (None, or why the data
    cannot support the comparison: no journey surveys, no score on them, too few customers
    with both kinds of rating, nothing to predict).
    """

    OUTCOMES = ("churn_12m", "revenue_per_customer_year")

    def __init__(self, metric: str | None = None, folds: int = 5, n_boot: int = 1000, seed: int = 42,
                 lookback_months: int = 12, min_cell_size: int = 10, covariates: list[str] | None = None,
                 adjust: bool = False, min_difference: float = 0.01):
        self.metric = metric
        self.folds = folds
        self.n_boot = n_boot
        self.seed = seed
        self.lookback_months = lookback_months
        self.min_cell_size = min_cell_size
        self.covariates = list(covariates or [])
        self.adjust = adjust
        self.min_difference = min_difference

    # ---------------------------------------------------------------- features
    def _design(self, block: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Ratings with missing values set to the column mean, plus missing indicators."""
        out, dropped = {}, []
        for col in block.columns:
            x = block[col]
            if x.notna().sum() < self.min_cell_size or x.nunique() < 2:
                dropped.append(col)
                continue
            out[col] = x.fillna(x.mean())
            if x.isna().any():
                out[f"{col} missing"] = x.isna().astype(float)
        return pd.DataFrame(out, index=block.index), dropped

    # ---------------------------------------------------------------- fit
    @skippable
    def fit(self, data: Any, history: pd.DataFrame) -> "JourneysVsTouchpoints":
        """Fit on checked data (or a responses DataFrame) and its :func:`cxvalue.history.history`;
        returns ``self`` (with ``skipped_`` set when the data cannot support it)."""
        return self._fit(data, history)

    def _fit(self, data: Any, history: pd.DataFrame) -> "JourneysVsTouchpoints":
        """The body of :meth:`fit` (undecorated, so that mutmut mutates it)."""
        responses = responses_frame(data)
        h = history.reset_index(drop=True)
        self.metric_ = journey_metric(responses, self.metric)
        m, months = self.metric_.upper(), self.lookback_months
        journeys, touch = journey_features(responses, h, self.metric_, months)
        both = journeys.index.intersection(touch.index)
        self.n_customers_ = int(len(both))
        self.features_ = {"journey": list(journeys.columns), "touchpoint": list(touch.columns)}
        need = max(self.min_cell_size, 10 * self.folds)
        lacking = [what for what, block in (("whole-journey ratings (a journey, no touchpoint)", journeys),
                                            ("touchpoint ratings", touch)) if block.empty]
        require(len(both) >= need,
                f"Journeys vs touchpoints need at least {need} customers who rated both a whole journey and a "
                f"touchpoint ({m}) in the {months} months before their survey; only {len(both)} did"
                + (f" (there are no {' and no '.join(lacking)})" if lacking else "") + ", too few to compare.")
        Xj, drop_j = self._design(journeys.loc[both])
        Xt, drop_t = self._design(touch.loc[both])
        for col, block in [(c, journeys) for c in drop_j] + [(c, touch) for c in drop_t]:
            why = (f"has fewer than {self.min_cell_size} ratings" if block.loc[both, col].notna().sum()
                   < self.min_cell_size else "has the same rating from every one of these customers")
            self.warnings_.append(f"Journeys vs touchpoints: {col.split(':', 1)[1]} {why}; it is left out.")
        lacking = [what for what, X in (("journey", Xj), ("touchpoint", Xt)) if X.empty]
        require(not lacking, f"Journeys vs touchpoints need journeys and touchpoints each rated by at least "
                             f"{self.min_cell_size} of these customers, with different ratings; no "
                             f"{' and no '.join(lacking)} is.")
        hb = h.loc[both]
        base = pd.DataFrame({"const": 1.0}, index=both)
        if self.adjust:
            from cxvalue.linkage import adjustment_frame

            adj = adjustment_frame(hb, self.covariates)
            base = base.join(adj.loc[:, adj.std() > 0])
        rng = np.random.default_rng(self.seed)
        fold = rng.permutation(np.arange(len(both)) % self.folds)
        outcomes = self._outcomes(hb, fold)
        require(outcomes, "Journeys vs touchpoints need something to predict: too few of the customers who rated "
                          "journeys and touchpoints left within 12 months of their survey or spent after it.")
        rows, fold_rows = [], []
        for name, (y, exposure) in outcomes.items():
            ok = exposure > 0
            dev = {key: np.full(len(y), np.nan) for key in ("null", "journey", "touchpoint")}
            designs = {key: X.to_numpy(float) for key, X in
                       (("null", base), ("journey", base.join(Xj)), ("touchpoint", base.join(Xt)))}
            start = dict.fromkeys(designs)  # each fold's fit starts from the previous fold's estimates
            for k in range(self.folds):
                train, test = ok & (fold != k), ok & (fold == k)
                for key, X in designs.items():
                    mu, start[key] = self._fit_predict(X, y, exposure, train, test, start[key])
                    dev[key][test] = _poisson_unit_deviance(y[test], mu)
                fr = {key: dev[key][test].sum() for key in dev}
                fold_rows.append({"outcome": name, "fold": k, "journey_explained": 1 - fr["journey"] / fr["null"],
                                  "touchpoint_explained": 1 - fr["touchpoint"] / fr["null"]})
            d = {key: v[ok] for key, v in dev.items()}
            rows.append(self._compare(name, d, int(ok.sum()), rng))
        self.fold_scores_ = pd.DataFrame(fold_rows)
        self.fold_scores_["difference"] = self.fold_scores_["journey_explained"] - self.fold_scores_["touchpoint_explained"]
        spread = self.fold_scores_.groupby("outcome")["difference"].std()
        self.summary_ = pd.DataFrame(rows).set_index("outcome")
        self.summary_.insert(self.summary_.columns.get_loc("difference_hi") + 1, "fold_difference_sd", spread)
        return self

    def _outcomes(self, h: pd.DataFrame, fold: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(outcome, exposure in years) per customer: churn within 12 months, revenue in the post
        window. An outcome with fewer than ``min_cell_size`` churn events (customers with
        revenue), or none in some fold's training customers, is left out with a warning."""
        days = h["duration_days"].to_numpy(float)
        churned = h["churned"].to_numpy(bool) & (days <= CHURN_HORIZON_DAYS)
        at_risk = np.clip(days, 0.5, CHURN_HORIZON_DAYS) / DAYS_PER_YEAR
        revenue = h["post_revenue"].to_numpy(float).clip(min=0)
        outcomes = {"churn_12m": (churned.astype(float), at_risk),
                    "revenue_per_customer_year": (revenue, h["post_exposure_years"].to_numpy(float))}
        what = {"churn_12m": "left within 12 months of their survey", "revenue_per_customer_year": "spent after it"}
        for name, (y, exposure) in list(outcomes.items()):
            hit = (y > 0) & (exposure > 0)
            few = hit.sum() < self.min_cell_size or not hit.any()
            if few or any(not hit[fold != k].any() for k in range(self.folds)):
                why = (f"fewer than {self.min_cell_size}" if few else
                       f"all in one of the {self.folds} cross-validation folds, so the model fitted without it has "
                       f"none to learn from")
                self.warnings_.append(f"Journeys vs touchpoints: only {int(hit.sum())} of these customers "
                                      f"{what[name]} ({why}), so "
                                      f"{'churn' if name == 'churn_12m' else 'revenue'} is not compared.")
                del outcomes[name]
        return outcomes

    def _fit_predict(self, X: np.ndarray, y: np.ndarray, exposure: np.ndarray, train: np.ndarray,
                     test: np.ndarray, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Poisson GLM with log-exposure offset on ``train`` (from ``start``, e.g. the same model's
        estimates on another fold); expected values on ``test``, and the estimates."""
        model = sm.GLM(y[train], X[train], family=sm.families.Poisson(), offset=np.log(exposure[train]))
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            try:
                res = model.fit(start_params=start, maxiter=100)
                if start is not None and not res.converged:
                    raise ValueError("no convergence from the start given")
            except ValueError:  # another fold's estimates can be too far off for this one (near separation)
                if start is None:
                    raise
                res = model.fit(maxiter=100)  # statsmodels' own start
        del model
        if not res.converged:
            msg = "Journeys vs touchpoints: a cross-validation model did not converge; treat the comparison with caution."
            if msg not in self.warnings_:
                self.warnings_.append(msg)
        beta = np.asarray(res.params)
        del res  # statsmodels results hold reference cycles: free each fit's copies of the data now
        if X.nbytes > GC_BYTES:  # a full collection takes ~0.1 s: worth it only for big copies
            gc.collect()
        return np.exp(X[test] @ beta + np.log(exposure[test])), beta

    def _compare(self, name: str, dev: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> dict[str, Any]:
        """Deviance explained by each set, their difference and its paired bootstrap interval."""
        null = dev["null"].sum()
        journey = 1 - dev["journey"].sum() / null
        touchpoint = 1 - dev["touchpoint"].sum() / null
        diffs = np.empty(self.n_boot)
        gap = dev["touchpoint"] - dev["journey"]  # the difference is sum(gap) / sum(null)
        chunk = max(1, min(100, 5_000_000 // max(n, 1)))  # resamples at a time: bounded memory
        for start in range(0, self.n_boot, chunk):
            idx = rng.integers(0, n, (min(chunk, self.n_boot - start), n))
            diffs[start:start + idx.shape[0]] = gap[idx].sum(axis=1) / dev["null"][idx].sum(axis=1)
        lo, hi = (np.percentile(diffs, [2.5, 97.5]) if self.n_boot else (np.nan, np.nan))
        # a side wins when the interval excludes 0 and the gap is big enough to matter
        d = journey - touchpoint
        winner = ("journeys" if lo > 0 and d >= self.min_difference else
                  "touchpoints" if hi < 0 and -d >= self.min_difference else "neither")
        return {"outcome": name, "customers": n, "journey_explained": float(journey),
                "touchpoint_explained": float(touchpoint), "difference": float(journey - touchpoint),
                "difference_lo": float(lo), "difference_hi": float(hi), "winner": winner}

    def _empty(self) -> None:
        """A skipped fit: no comparison; what was counted before the skip stays."""
        self.metric_ = getattr(self, "metric_", self.metric)
        self.n_customers_ = getattr(self, "n_customers_", 0)
        self.features_ = getattr(self, "features_", {"journey": [], "touchpoint": []})
        self.fold_scores_ = pd.DataFrame(columns=["outcome", "fold", "journey_explained", "touchpoint_explained",
                                                  "difference"])
        self.summary_ = pd.DataFrame(columns=["customers", "journey_explained", "touchpoint_explained", "difference",
                                              "difference_lo", "difference_hi", "fold_difference_sd", "winner"],
                                     index=pd.Index([], name="outcome"))

    # ---------------------------------------------------------------- output
    @property
    def summary(self) -> pd.DataFrame:
        """Per outcome (``churn_12m``, ``revenue_per_customer_year``): ``customers``,
        out-of-sample deviance explained by journey-level (``journey_explained``) and by
        touchpoint-level satisfaction (``touchpoint_explained``), ``difference`` (journeys -
        touchpoints) with its 95% paired bootstrap interval, ``fold_difference_sd`` and
        ``winner`` (``journeys``, ``touchpoints`` or ``neither`` when the interval holds 0)."""
        return self.summary_

    def results(self) -> dict[str, Any]:
        """JSON-ready: ``skipped`` (None or the reason), ``metric``, ``customers``, ``features``,
        ``outcomes`` {outcome: {journey_explained, touchpoint_explained, difference, difference_ci,
        fold_difference_sd, winner}}, ``warnings``."""
        return {
            "skipped": self.skipped_,
            "metric": self.metric_,
            "customers": int(self.n_customers_),
            "features": self.features_,
            "outcomes": {o: {"journey_explained": _num(r["journey_explained"]),
                             "touchpoint_explained": _num(r["touchpoint_explained"]),
                             "difference": _num(r["difference"]),
                             "difference_ci": [_num(r["difference_lo"]), _num(r["difference_hi"])],
                             "fold_difference_sd": _num(r["fold_difference_sd"]),
                             "winner": r["winner"]} for o, r in self.summary_.iterrows()},
            "warnings": list(self.warnings_),
        }

    def _repr_html_(self) -> str:
        """In Jupyter: the name, the skipped reason or the summary table, the caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, "Journeys vs touchpoints")
