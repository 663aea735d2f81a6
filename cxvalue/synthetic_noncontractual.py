"""A seeded non-contractual world (customers who never cancel) with known group effects.

The test oracle of :mod:`cxvalue.btyd`: every customer is drawn from the BG/NBD and Gamma-Gamma
processes with the satisfaction group's true effects, and confounded the way real data is.

How the world works (vectorised; the only loop runs over purchase number, not customers):

* Each customer has a hidden **account size** ``s ~ N(0, 1)``. Bigger accounts are happier
  (``confounding``) and buy more often: their purchase rate is multiplied by
  ``exp(size_effect * s)``.
* The satisfaction group (detractor / passive / promoter) is cut from a latent satisfaction
  ``confounding * s + noise`` at fixed quantiles of the population.
* From the survey (time 0) on, customer ``i`` buys as a Poisson process with rate
  ``lambda_i = g_i * exp(size_effect * s_i) * purchase_rate_ratio[group]``, ``g_i ~ Gamma(r,
  rate alpha)``, and after each purchase drops out with probability ``p_i ~ Beta(a *
  dropout_ratio[group], b)`` (the parameterisation of :class:`cxvalue.btyd.BGNBD`, so the true
  dropout ratio is the ratio of mean dropout odds per purchase).
* In the ``pre_weeks`` before the survey everybody was alive and bought at their own rate
  without the group effect: ``pre_purchases ~ Poisson(g_i exp(size_effect s_i) pre_weeks)``.
  That count is what the data shows of account size; ``log1p(pre_purchases)`` is the control.
* Customers were surveyed on different days, so each is observed for ``T`` weeks (whole days,
  uniform between ``min_weeks`` and ``weeks``); ``x`` and ``t_x`` count repeat purchases after
  the survey up to ``T``. Each purchase's amount is ``Gamma(p, rate nu_i)`` with ``nu_i ~
  Gamma(q, rate gamma)`` (independent of everything else, as the Gamma-Gamma model assumes).
* The ``horizon_weeks`` after ``T`` are simulated too and kept hidden: the model-free truth for
  the expected purchases and revenue of the next year.

Everything is in weeks; money in the world's currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TRUE_EFFECTS", "NonContractualWorld", "generate", "tables"]

#: True effects of the satisfaction group (passive = 1): the purchase-rate ratio (mean purchase
#: rate while alive) and the dropout ratio (mean dropout odds per purchase).
TRUE_EFFECTS: dict[str, dict[str, float]] = {
    "purchase_rate": {"detractor": 0.75, "passive": 1.0, "promoter": 1.2},
    "dropout": {"detractor": 1.8, "passive": 1.0, "promoter": 0.6},
}
GROUPS = ("detractor", "passive", "promoter")
#: Quantiles of the latent satisfaction that cut the groups: 25% detractors, 35% passives, 40% promoters.
GROUP_CUTS = (0.25, 0.60)


@dataclass
class NonContractualWorld:
    """The customer table a BG/NBD fit reads, plus what the data does not show."""

    #: one row per customer: ``customer_id``, ``group``, ``pre_purchases``, ``log_pre_purchases``
    #: (= log1p), ``x``, ``t_x``, ``T`` (weeks), ``mean_spend`` (currency per repeat purchase, 0 if x = 0)
    customers: pd.DataFrame
    #: the parameters and true effects the world was drawn from
    truth: dict[str, Any] = field(default_factory=dict)
    #: hidden, one row per customer: ``account_size``, ``purchase_rate`` (lambda), ``dropout``
    #: (p), ``spend_per_purchase`` (p / nu), ``alive_at_T``, ``future_purchases`` and
    #: ``future_revenue`` in the ``horizon_weeks`` after T
    hidden: pd.DataFrame | None = None
    #: every purchase after the survey inside the observed window: ``customer`` (row of
    #: ``customers``) and ``weeks`` after the survey
    events: pd.DataFrame | None = None


def generate(n_customers: int = 5_000, seed: int = 7, effects: dict[str, dict[str, float]] | None = None,
             confounding: float = 1.0, size_effect: float = 0.6, r: float = 1.2, alpha: float = 6.0,
             a: float = 0.5, b: float = 5.0, spend_p: float = 6.0, spend_q: float = 4.0,
             spend_gamma: float = 20.0, weeks: float = 52.0, min_weeks: float = 26.0, pre_weeks: float = 104.0,
             horizon_weeks: float = 52.0) -> NonContractualWorld:
    """Draw a world of ``n_customers`` customers.

    Parameters
    ----------
    n_customers : customers (1,000,000 takes a few seconds).
    seed : random seed; the same seed gives the same world.
    effects : ``{"purchase_rate": {group: ratio}, "dropout": {group: ratio}}``, passive = 1
        (default :data:`TRUE_EFFECTS`); all ones for a null world.
    confounding : how strongly account size drives satisfaction (0 = none).
    size_effect : log purchase-rate change per standard deviation of account size.
    r, alpha : gamma heterogeneity of the purchase rate (shape, rate per week) for a passive
        customer of median size: mean ``r / alpha`` purchases per week.
    a, b : beta heterogeneity of the dropout probability per purchase for a passive customer.
    spend_p, spend_q, spend_gamma : Gamma-Gamma spend per purchase (mean ``p gamma / (q - 1)``).
    weeks, min_weeks : each customer is observed for T ~ Uniform(min_weeks, weeks) weeks after
        the survey, in whole days.
    pre_weeks : length of the pre-survey window whose purchases are counted.
    horizon_weeks : the hidden future simulated after T.
    """
    effects = effects or TRUE_EFFECTS
    rng = np.random.default_rng(seed)
    n = int(n_customers)
    size = rng.standard_normal(n)
    satisfaction = (confounding * size + rng.standard_normal(n)) / np.sqrt(1 + confounding ** 2)
    cuts = np.quantile(satisfaction, GROUP_CUTS)
    group_code = np.searchsorted(cuts, satisfaction)
    groups = np.array(GROUPS)[group_code]
    rate_ratio = np.array([effects["purchase_rate"][g] for g in GROUPS])[group_code]
    drop_ratio = np.array([effects["dropout"][g] for g in GROUPS])[group_code]

    base_rate = rng.gamma(r, 1 / alpha, n) * np.exp(size_effect * size)
    lam = base_rate * rate_ratio
    p_drop = rng.beta(a * drop_ratio, b)
    nu = rng.gamma(spend_q, 1 / spend_gamma, n)
    pre = rng.poisson(base_rate * pre_weeks)
    T = np.round(rng.uniform(min_weeks, weeks, n) * 7) / 7
    end = T + horizon_weeks

    x = np.zeros(n, np.int64)
    future = np.zeros(n, np.int64)
    last = np.zeros(n)
    clock = np.zeros(n)
    alive_at_T = np.ones(n, bool)
    active = np.arange(n)
    who, when = [], []  # every purchase in the window, for the contract's tables (:func:`tables`)
    while active.size:
        clock[active] += rng.exponential(1 / lam[active])
        active = active[clock[active] <= end[active]]
        in_window = clock[active] <= T[active]
        buy_now = active[in_window]
        x[buy_now] += 1
        last[buy_now] = np.floor(clock[buy_now] * 7) / 7  # purchases are dated to the day
        who.append(buy_now)
        when.append(clock[buy_now].copy())
        future[active[~in_window]] += 1
        drops = rng.random(active.size) < p_drop[active]
        alive_at_T[active[drops & in_window]] = False
        active = active[~drops]

    spend_total = np.where(x > 0, rng.gamma(np.maximum(spend_p * x, 1e-12), 1 / nu), 0.0)
    future_revenue = np.where(future > 0, rng.gamma(np.maximum(spend_p * future, 1e-12), 1 / nu), 0.0)
    customers = pd.DataFrame({
        "customer_id": np.arange(1, n + 1),
        "group": pd.Categorical(groups, categories=list(GROUPS)),
        "pre_purchases": pre,
        "log_pre_purchases": np.log1p(pre),
        "x": x,
        "t_x": np.where(x > 0, last, 0.0),
        "T": T,
        "mean_spend": np.where(x > 0, spend_total / np.maximum(x, 1), 0.0),
    })
    hidden = pd.DataFrame({"customer_id": customers["customer_id"], "account_size": size,
                           "purchase_rate": lam, "dropout": p_drop, "spend_per_purchase": spend_p * nu ** -1,
                           "alive_at_T": alive_at_T, "future_purchases": future,
                           "future_revenue": future_revenue})
    truth = {"effects": effects, "r": r, "alpha": alpha, "a": a, "b": b, "size_effect": size_effect,
             "confounding": confounding, "spend": {"p": spend_p, "q": spend_q, "gamma": spend_gamma},
             "weeks": weeks, "min_weeks": min_weeks, "pre_weeks": pre_weeks, "horizon_weeks": horizon_weeks,
             "group_share": customers["group"].value_counts(normalize=True).reindex(list(GROUPS)).to_dict(),
             "seed": seed, "n_customers": n}
    events = pd.DataFrame({"customer": np.concatenate(who) if who else np.zeros(0, np.int64),
                           "weeks": np.concatenate(when) if when else np.zeros(0)})
    return NonContractualWorld(customers=customers, truth=truth, hidden=hidden, events=events)


def tables(world: NonContractualWorld, as_of: str = "2025-12-31", seed: int = 1,
           with_end_date_column: bool = False) -> dict[str, pd.DataFrame]:
    """The world as the contract's tables (``customers``, ``responses``, ``transactions``): what a
    retailer's export looks like. No ``end_date`` column (nobody cancels), unless
    ``with_end_date_column`` (then present and empty, as a CRM export may have it).

    Every customer answered one relationship survey (``nps``: detractors 0-6, passives 7-8,
    promoters 9-10) ``T`` weeks before ``as_of`` and joined ``pre_weeks`` before it. Their
    pre-survey purchases are spread uniformly over those weeks; each purchase after the survey is
    dated to the day after the moment it happened (so that none falls on the survey day itself),
    and each amount is ``Gamma(p, rate nu_i)``, the customer's own spend, rounded to cents.
    """
    c, h, truth = world.customers, world.hidden, world.truth
    rng = np.random.default_rng([world.truth["seed"], seed])
    n = len(c)
    end = pd.Timestamp(as_of)
    survey = end - pd.to_timedelta(np.round(c["T"].to_numpy() * 7).astype(int), unit="D")
    pre_weeks = truth["pre_weeks"]
    start = survey - pd.Timedelta(days=int(round(pre_weeks * 7)))
    ids = np.array([f"C{i:06d}" for i in c["customer_id"]])
    customers = pd.DataFrame({"customer_id": ids, "start_date": start.date})
    if with_end_date_column:
        customers["end_date"] = pd.NaT
    lo = {"detractor": 0, "passive": 7, "promoter": 9}
    hi = {"detractor": 6, "passive": 8, "promoter": 10}
    g = c["group"].astype(str).to_numpy()
    score = rng.integers(np.vectorize(lo.get)(g), np.vectorize(hi.get)(g) + 1)
    responses = pd.DataFrame({"customer_id": ids, "response_date": survey.date, "nps": score})
    mean_spend = h["spend_per_purchase"].to_numpy()  # p / nu_i
    p = truth["spend"]["p"]
    pre = c["pre_purchases"].to_numpy()
    pre_who = np.repeat(np.arange(n), pre)
    pre_days = -np.ceil(rng.uniform(0, pre_weeks * 7, pre_who.size)).astype(int)
    post_who = world.events["customer"].to_numpy()
    post_days = np.ceil(world.events["weeks"].to_numpy() * 7).astype(int)
    post_days = np.maximum(post_days, 1)
    who = np.concatenate([pre_who, post_who])
    days = np.concatenate([pre_days, post_days])
    amount = np.round(rng.gamma(p, mean_spend[who] / p), 2)
    dates = survey.to_numpy()[who] + days.astype("timedelta64[D]")
    transactions = pd.DataFrame({"customer_id": ids[who], "date": pd.to_datetime(dates).date,
                                 "amount": np.maximum(amount, 0.01)})
    transactions = transactions.sort_values(["customer_id", "date"], ignore_index=True)
    return {"customers": customers, "responses": responses, "transactions": transactions}
