"""Movement between satisfaction groups, from each customer's index response to their next one.

:class:`Transitions` (``drivers.transitions`` in ``results.json``); input: :func:`next_responses`.
Units: money per customer per year in the data's currency.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cxvalue.config import bands_for
from cxvalue.data import CheckedData
from cxvalue.exceptions import ModelError
from cxvalue.history import DAYS_PER_YEAR
from cxvalue.skipping import require, skippable, skippable_frame

__all__ = ["next_responses", "Transitions", "protect_cells", "derivable_cells"]


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


@skippable_frame(["customer_id", "from_group", "to_group", "from_score", "to_score", "gap_years"])
def next_responses(data: CheckedData, hist: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Each customer's index response and their next relationship response, side by side.

    The next response is the first response after the index date with a score on the metric
    (a relationship survey unless ``survey_type="any"``; same-day ties go to the lower score),
    at any date up to ``as_of``. Customers with no later response are left out.

    Returns
    -------
    DataFrame with ``customer_id``, ``from_group``, ``to_group`` (band labels),
    ``from_score``, ``to_score`` and ``gap_years`` (years between the two responses). Without
    the metric's column: an empty table whose ``attrs["skipped"]`` says so.
    """
    metric = params["metric"]
    r = data.tables["responses"]
    require(metric in r.columns, f"Movement between groups needs the {metric.upper()} score: the responses table "
                                 f"has no column {metric}.")
    cond = [r[metric].notnull()]
    if params["survey_type"] == "relationship" and "journey" in r.columns:
        cond.append(r.journey.isnull())
    later = r.filter(*cond).select(customer_id=r.customer_id, date=r.response_date, score=r[metric].cast("int64"))
    later = later.to_pyarrow().to_pandas(date_as_object=False)
    later["date"] = pd.to_datetime(later["date"])
    idx = hist[["customer_id", "response_date", "score", "group"]].astype({"customer_id": str})
    m = later.astype({"customer_id": str}).merge(idx, on="customer_id")
    m = m[m["date"] > m["response_date"]].sort_values(["customer_id", "date", "score_x"], kind="stable")
    m = m.drop_duplicates("customer_id")
    bands = bands_for(params)
    to_group = pd.Series(pd.NA, index=m.index, dtype=object)
    for label, (lo, hi) in bands.items():
        to_group[(m["score_x"] >= lo) & (m["score_x"] <= hi)] = label
    return pd.DataFrame({
        "customer_id": m["customer_id"].to_numpy(),
        "from_group": m["group"].astype(str).to_numpy(),
        "to_group": to_group.to_numpy(),
        "from_score": m["score_y"].to_numpy(),
        "to_score": m["score_x"].to_numpy(),
        "gap_years": ((m["date"] - m["response_date"]).dt.days / DAYS_PER_YEAR).to_numpy(),
    })


def _published_sets(k: int, with_movement: bool) -> list[np.ndarray]:
    """Cells (flat indices of a k x k matrix) whose sums a reader can work out from what is
    published: each row (a shown count over its row share gives the row's total), all cells
    (the number who answered again) and, with the movement totals, the diagonal (stayed), the
    cells above it (moved up) and below it (moved down)."""
    idx = np.arange(k * k).reshape(k, k)
    sets = [idx[i, :] for i in range(k)] + [idx.ravel()]
    if with_movement:
        sets += [np.diag(idx), idx[np.triu_indices(k, 1)], idx[np.tril_indices(k, -1)]]
    return sets


def derivable_cells(suppressed: np.ndarray, sets: list[np.ndarray]) -> list[int]:
    """Flat indices of the suppressed cells a reader could work out exactly from the published
    sums ``sets`` and the cells shown: those whose unit vector lies in the row space of the
    sums restricted to the suppressed cells (a rank test)."""
    hidden = np.flatnonzero(np.asarray(suppressed).ravel())
    if not len(hidden):
        return []
    a = np.array([np.isin(hidden, s) for s in sets], dtype=float)
    rank = np.linalg.matrix_rank(a)
    unit = np.eye(len(hidden))
    return [int(j) for n, j in enumerate(hidden) if np.linalg.matrix_rank(np.vstack([a, unit[n]])) == rank]


def _hide_until_safe(flat: np.ndarray, hidden: np.ndarray, sets: list[np.ndarray]) -> np.ndarray | None:
    """More hidden cells until none is derivable from ``sets``; None when that is impossible."""
    hidden = hidden.copy()
    while derivable := derivable_cells(hidden, sets):
        cell = derivable[0]
        # the tightest sum around it first: fewest hidden cells, then fewest cells
        around = sorted((s for s in sets if cell in s and not hidden[s].all()), key=lambda s: (hidden[s].sum(), len(s)))
        if not around:  # e.g. a hidden zero alone in a movement total
            return None
        shown = sorted((int(j) for j in around[0] if not hidden[j]), key=lambda j: (flat[j] <= 0, flat[j], j))
        hidden[shown[0]] = True
    return hidden


def protect_cells(counts: np.ndarray, primary: np.ndarray) -> tuple[np.ndarray, bool]:
    """Complementary suppression: hide more cells until no hidden one can be worked out.

    ``counts`` (k x k) and ``primary`` (the small cells, True = hidden). While some hidden
    cell is derivable (:func:`derivable_cells`) from the sums in :func:`_published_sets`, the
    smallest positive shown cell of the tightest sum around it (fewest hidden cells, then
    fewest cells) is hidden too (a zero cell when none is positive). The movement totals
    (moved up, moved down, stayed) are withheld instead (second value True) when that hides
    fewer cells, and always when a small cell would be a total on its own (two groups: the
    one cell above the diagonal is "moved up"). Returns the cells to hide and that flag.
    Only exact recovery is prevented; the bounds a reader can place on a hidden cell are not.
    """
    k = counts.shape[0]
    flat = np.asarray(counts, dtype=float).ravel()
    primary = np.asarray(primary, dtype=bool).ravel()
    without = _hide_until_safe(flat, primary, _published_sets(k, False))
    if without is None:  # cannot happen: every row has another cell; stay safe
        return np.ones((k, k), dtype=bool), True
    if any(len(s) == 1 and primary[s[0]] for s in _published_sets(k, True)[k + 1:]):
        return without.reshape(k, k), True
    with_totals = _hide_until_safe(flat, primary, _published_sets(k, True))
    if with_totals is None or without.sum() < with_totals.sum():
        return without.reshape(k, k), True
    return with_totals.reshape(k, k), False


class Transitions:
    """How customers move between satisfaction groups: index response -> next response.

    ``counts_`` and ``row_shares_`` are the transition matrix (rows: group at the index
    response; columns: group at the next one). Cells with 1 to ``min_cell_size - 1``
    customers are suppressed (NaN) in ``summary`` and ``results()``, and so are as many
    further cells as it takes that no suppressed cell can be worked out from the row shares
    and the totals published beside the matrix (:func:`protect_cells`); ``suppressed_`` holds
    both kinds, ``small_cells_`` the first. The movement totals are computed from every
    customer; they are withheld (None) where a small cell would be the only one in a total
    (two groups) or where withholding them hides fewer cells than protecting them.

    Movement per year: ``moving_up`` / ``moving_down`` = customers who moved to a higher /
    lower group divided by the customer-years between the two responses; ``net_up`` = their
    difference. With ``value_per_customer_year`` (a Series by group, e.g. margin per
    customer-year) each move is worth ``value[to] - value[from]`` a year, and
    ``value_change_per_customer_year`` = the sum over moves / the customer-years between
    responses: how much a year of movement changes the yearly value of an average customer.

    Movement includes measurement noise: a score is a noisy reading, so customers at the
    ends of the scale drift back toward the middle on a second reading (regression to the
    mean). It describes what happens, not what causes it.
    """

    label = "Movement between groups"

    def __init__(self, groups: list[str], min_cell_size: int = 10):
        self.groups = [str(g) for g in groups]
        self.min_cell_size = min_cell_size

    @skippable
    def fit(self, pairs: pd.DataFrame, value_per_customer_year: pd.Series | None = None) -> "Transitions":
        """Fit on :func:`next_responses` output (``from_group``, ``to_group``, ``gap_years``);
        skipped (``skipped_``) when fewer than ``min_cell_size`` customers answered twice."""
        unknown = set(pairs["from_group"].astype(str)) | set(pairs["to_group"].dropna().astype(str))
        unknown -= set(self.groups)
        if unknown:
            raise ModelError(f"{self.label}: groups {sorted(unknown)} are not among {self.groups}.")
        p = pairs.dropna(subset=["to_group"])
        self.n_customers_ = len(p)
        require(len(p), "Movement between groups needs customers who answered twice: no customer answered another "
                        "survey after the one that set their group.")
        require(len(p) >= self.min_cell_size, f"Movement between groups needs at least {self.min_cell_size} customers "
                                              f"who answered twice; only {len(p)} did.")
        order = {g: i for i, g in enumerate(self.groups)}
        counts = pd.crosstab(p["from_group"].astype(str), p["to_group"].astype(str)).reindex(
            index=self.groups, columns=self.groups, fill_value=0)
        counts.index.name, counts.columns.name = "from_group", "to_group"
        self.counts_ = counts
        self.row_shares_ = counts.div(counts.sum(axis=1).where(counts.sum(axis=1) > 0), axis=0)
        self.small_cells_ = (counts > 0) & (counts < self.min_cell_size)
        hidden, withhold = protect_cells(counts.to_numpy(), self.small_cells_.to_numpy())
        self.suppressed_ = pd.DataFrame(hidden, index=counts.index, columns=counts.columns)
        step = p["to_group"].astype(str).map(order) - p["from_group"].astype(str).map(order)
        years = float(p["gap_years"].sum())
        self.customer_years_ = years
        per_year = (lambda x: x / years) if years > 0 else (lambda x: np.nan)
        self.movement_ = {
            "customers": len(p),
            "mean_gap_years": float(p["gap_years"].mean()) if len(p) else np.nan,
            "moved_up": int((step > 0).sum()), "moved_down": int((step < 0).sum()), "stayed": int((step == 0).sum()),
            "moving_up_per_customer_year": per_year((step > 0).sum()),
            "moving_down_per_customer_year": per_year((step < 0).sum()),
            "net_up_per_customer_year": per_year((step > 0).sum() - (step < 0).sum()),
        }
        if withhold:  # a small cell would be a movement total on its own
            self.movement_.update({k: None for k in self.movement_ if k not in ("customers", "mean_gap_years")})
        self.value_change_ = None
        if value_per_customer_year is not None:
            v = value_per_customer_year.rename(index=str)
            missing = [g for g in self.groups if g not in v.index]
            if missing:
                raise ModelError(f"{self.label}: value_per_customer_year has no value for {missing}.")
            delta = p["to_group"].astype(str).map(v) - p["from_group"].astype(str).map(v)
            self.value_change_ = {
                "value_change_per_customer_year": float(per_year(delta.sum())),
                "by_from_group": {g: _num(delta[p["from_group"].astype(str) == g].sum()
                                          / p.loc[p["from_group"].astype(str) == g, "gap_years"].sum())
                                  if (p["from_group"].astype(str) == g).any() else None for g in self.groups},
            }
        n_small, n_sup = int(self.small_cells_.to_numpy().sum()), int(self.suppressed_.to_numpy().sum())
        if n_sup:
            self.warnings_.append(f"{self.label}: {n_small} cells with fewer than {self.min_cell_size} customers are "
                                  f"not shown" + (f", nor {n_sup - n_small} more that would let them be worked out "
                                                  f"from the totals." if n_sup > n_small else "."))
        return self

    def _empty(self) -> None:
        """A skipped fit: an empty matrix; the number of customers who answered twice stays."""
        self.n_customers_ = getattr(self, "n_customers_", 0)
        self.customer_years_ = 0.0
        self.counts_ = pd.DataFrame(0, index=pd.Index(self.groups, name="from_group"),
                                    columns=pd.Index(self.groups, name="to_group"))
        self.row_shares_ = self.counts_.astype(float) * np.nan
        self.suppressed_ = self.counts_ > 0
        self.small_cells_ = self.suppressed_.copy()
        self.movement_ = {"customers": self.n_customers_, "mean_gap_years": None, "moved_up": None,
                          "moved_down": None, "stayed": None, "moving_up_per_customer_year": None,
                          "moving_down_per_customer_year": None, "net_up_per_customer_year": None}
        self.value_change_ = None

    @property
    def summary(self) -> pd.DataFrame:
        """Long table: from_group, to_group, customers and row share (suppressed cells NaN)."""
        long = self.counts_.stack().rename("customers").reset_index()
        long["row_share"] = self.row_shares_.stack().to_numpy()
        sup = self.suppressed_.stack().to_numpy()
        long["suppressed"] = sup
        long.loc[sup, ["customers", "row_share"]] = np.nan
        return long

    def results(self) -> dict[str, Any]:
        """The ``drivers.transitions`` block of ``results.json`` (``skipped``: None or the reason)."""
        counts, shares = self.counts_.astype(float).mask(self.suppressed_), self.row_shares_.mask(self.suppressed_)
        out = {
            "skipped": self.skipped_,
            "groups": self.groups,
            "min_cell_size": self.min_cell_size,
            "counts": {f: {t: (None if pd.isna(counts.loc[f, t]) else int(counts.loc[f, t])) for t in self.groups}
                       for f in self.groups},
            "row_shares": {f: {t: _num(shares.loc[f, t]) for t in self.groups} for f in self.groups},
            "suppressed_cells": int(self.suppressed_.to_numpy().sum()),
            "small_cells": int(self.small_cells_.to_numpy().sum()),
            **{k: (_num(v) if isinstance(v, float) else v) for k, v in self.movement_.items()},
        }
        if self.value_change_ is not None:
            out.update(self.value_change_)
        return out

    def _repr_html_(self) -> str:
        """In Jupyter: the name, the skipped reason or the summary table, the caveats."""
        from cxvalue.display import fitted_html

        return fitted_html(self, "Movement between groups")
