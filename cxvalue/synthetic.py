"""A seeded synthetic subscription business with known true effects.

It is both the demo world and the test oracle: :func:`generate` returns the four
contract tables (CONTRACT section 1) and, beside them, the truth they were drawn from.

How the world works (all vectorised, no per-customer Python loop):

* Each customer has a latent **account size** (log-normal) and a **plan**
  (basic / plus / premium). Both raise spend and lower churn, and both also raise
  satisfaction (scaled by ``confounding``), so raw group gaps overstate the true effect.
  ``employees`` is an observed, noisy proxy of size; ``plan`` and ``region`` are observed.
  With ``spend_noise`` > 0 a customer's spend level before the survey also departs from
  their size, so pre-survey spend measures the confounder only noisily.
* Every customer has a latent satisfaction built from four attribute drivers
  (``attr_product``, ``attr_support``, ``attr_price``, ``attr_ease`` with known weights)
  plus the confounders and noise. It fixes the NPS, CSAT and CES answers.
* Every customer reaching their survey date ``r`` gets a satisfaction group from the
  NPS of that survey. From ``r`` on, the group multiplies the spend rate, the churn
  hazard and the contact rate by the true effects in :data:`TRUE_EFFECTS` (reference
  group: passive = 1). Before ``r`` only size and plan matter. Respondents are a subset
  whose response probability depends on plan and size; non-respondents carry the same
  effects, unseen.
* Churn is exponential with a hazard that changes at ``r``; histories are
  right-censored at ``as_of``. Monthly invoices (with refunds), contacts (Poisson, with
  complaints and their resolution), repeat and journey surveys and referrals complete it.
* In the year before the survey, respondents rate whole journeys (``touchpoint`` empty) and
  their touchpoints; a latent journey experience behind churn after the survey is seen
  mostly by one or the other (``journey_signal``).

The truth (effects, driver weights, group shares, ...) is returned in
:class:`SyntheticWorld.truth`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

__all__ = ["TRUE_EFFECTS", "SyntheticWorld", "generate", "write_world"]

#: True multiplicative effects of the NPS group at the index survey (passive = 1).
TRUE_EFFECTS: dict[str, dict[str, float]] = {
    "revenue": {"detractor": 0.85, "passive": 1.0, "promoter": 1.08},
    "churn": {"detractor": 1.8, "passive": 1.0, "promoter": 0.7},
    "contacts": {"detractor": 1.5, "passive": 1.0, "promoter": 0.85},
}
#: True weights of the attribute drivers in the latent satisfaction (before scaling).
TRUE_DRIVER_WEIGHTS = {"product": 0.60, "support": 0.45, "price": 0.30, "ease": 0.15}

PLANS = np.array(["basic", "plus", "premium"])
PLAN_SHARE = np.array([0.55, 0.30, 0.15])
PLAN_SPEND = np.array([1.0, 1.8, 3.5])  # monthly spend multiplier
PLAN_CHURN = np.array([1.25, 1.0, 0.7])  # hazard multiplier
PLAN_SAT = np.array([-0.35, 0.1, 0.5])  # satisfaction shift
REGIONS = np.array(["north", "south", "east", "west"])
#: With ``region_confounding`` = c: satisfaction shift ``c x REGION_SAT`` and churn hazard
#: multiplier ``exp(-c x REGION_SAT)`` by region (north ... west); spend and contacts unchanged.
REGION_SAT = np.array([-0.5, -0.15, 0.15, 0.5])
CHANNELS = np.array(["phone", "email", "chat", "web"])
CHANNEL_SHARE = np.array([0.35, 0.30, 0.25, 0.10])
#: Cost per contact by channel in the demo world; the same as the default parameter.
CHANNEL_COST = {"phone": 12.0, "email": 6.0, "chat": 5.0, "web": 1.0}
JOURNEYS = {
    "onboarding": ["welcome_call", "setup_guide"],
    "billing": ["invoice", "payment_portal"],
    "support": ["phone_agent", "chat_agent", "help_center"],
}
DAYS_PER_YEAR = 365.25
REASONS = np.array(["billing", "technical", "account", "cancellation"])
REASON_SHARE = [0.35, 0.4, 0.2, 0.05]
#: Contact reasons of a world seeded with failure demand (``generate(failure_reasons=...)``, the
#: demo): each reason's share of contacts at average satisfaction, ``tilt`` (how much one unit of
#: latent dissatisfaction raises its log-odds: concentrated among dissatisfied customers when
#: positive) and ``churn_hr``, the churn hazard ratio from the survey on for a customer who
#: contacted about it in the 12 months before the survey (1 = no effect).
FAILURE_REASONS: dict[str, dict[str, float]] = {
    "billing_error": {"share": 0.10, "tilt": 0.8, "churn_hr": 1.6},
    "service_outage": {"share": 0.12, "tilt": 0.5, "churn_hr": 1.3},
    "how_to": {"share": 0.38, "tilt": 0.0, "churn_hr": 1.0},
    "account_change": {"share": 0.30, "tilt": 0.0, "churn_hr": 1.0},
    "plan_question": {"share": 0.10, "tilt": -0.3, "churn_hr": 1.0},
}
#: Share of complaints the world resolves (if the customer is still a customer on the day).
RESOLVED_SHARE = 0.7


@dataclass
class SyntheticWorld:
    """The four contract tables plus the truth they were drawn from."""

    customers: pd.DataFrame
    responses: pd.DataFrame
    transactions: pd.DataFrame
    contacts: pd.DataFrame
    truth: dict[str, Any] = field(default_factory=dict)
    #: What the data does not show, one row per customer (not written to disk): ``customer_id``,
    #: ``nps`` and ``group`` (latent, also for non-respondents), ``survey_date`` (the day the
    #: customer was or would have been surveyed; empty when never reachable), ``eligible``
    #: (still a customer that day) and ``responded``.
    hidden: pd.DataFrame | None = None
    #: the CX maturity self-assessment (``generate(maturity=True)``), else None
    maturity: pd.DataFrame | None = None

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        out = {
            "customers": self.customers,
            "responses": self.responses,
            "transactions": self.transactions,
            "contacts": self.contacts,
        }
        if self.maturity is not None:
            out["maturity"] = self.maturity
        return out


def _days(d: str | dt.date) -> int:
    return int(np.datetime64(pd.Timestamp(d).date(), "D").astype(np.int64))


def _to_date(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]")


def generate(
    n_customers: int = 20_000,
    seed: int = 42,
    as_of: str = "2025-12-31",
    years: float = 6.0,
    effects: dict[str, dict[str, float]] | None = None,
    confounding: float = 0.6,
    response_rate: float = 0.6,
    monthly_spend: float = 100.0,
    yearly_churn: float = 0.15,
    monthly_contacts: float = 0.4,
    messy: bool = False,
    resolution_effect: float = 1.6,
    response_bias: float = 1.0,
    journey_signal: float = 0.8,
    region_confounding: float = 0.0,
    failure_reasons: dict[str, dict[str, float]] | None = None,
    maturity: bool = False,
    spend_noise: float = 0.0,
) -> SyntheticWorld:
    """Draw a world of ``n_customers`` customers.

    Parameters
    ----------
    n_customers : number of customers (1,000,000 takes well under a minute).
    seed : random seed; the same seed gives the same world.
    as_of : the data's "as of" date; every history is censored there.
    years : how far back the first customers started.
    effects : true effects per outcome and group (default :data:`TRUE_EFFECTS`);
        pass all ones for a null world.
    confounding : how strongly size and plan drive satisfaction (0 = no confounding).
    response_rate : mean share of reachable customers who answer the relationship survey.
    monthly_spend, yearly_churn, monthly_contacts : baseline levels for a basic-plan
        customer of median size, currency per month, share per year, contacts per month.
    messy : add a few rows that break the contract's exclusion rules (demo of data_quality).
    resolution_effect : true churn hazard ratio of an open vs a resolved first complaint
        (1 = resolving makes no difference). From a customer's first complaint the hazard is
        multiplied by ``u`` while it is open and by ``v`` once it is resolved, ``u / v`` =
        ``resolution_effect`` and ``0.7 v + 0.3 u = 1`` (70% of complaints get resolved), so
        a group's average hazard is unchanged. See :func:`_close_the_loop`.
    response_bias : how strongly plan and size drive answering the survey (1 = default;
        0 = everyone reachable is equally likely to answer; 4 = strongly selected).
    journey_signal : share (0-1) of the journey experience behind churn that only the
        whole-journey rating sees (the hand-offs between steps); touchpoint ratings see the
        rest. High (default 0.8): journey-level satisfaction predicts churn better; low
        (0.1): touchpoint-level does. See ``truth["journeys_vs_touchpoints"]``.
    region_confounding : how strongly ``region`` drives both satisfaction and churn (0 = not at
        all, the default). Region acts on nothing else: not on spend or contacts, so the history's
        pre-survey spend and contact cost carry no trace of it and only the ``region`` covariate
        can remove the bias it puts into the churn comparison (:data:`REGION_SAT`).
    failure_reasons : contact reasons with their share, tilt towards dissatisfied customers and
        churn hazard ratio (e.g. :data:`FAILURE_REASONS`; default None: the plain reasons
        :data:`REASONS`, unrelated to anything). See :func:`_seed_failure_demand`; drawn from
        its own random stream, so every other draw of the world stays as it was.
    maturity : add a CX maturity self-assessment (table ``maturity``): two rounds a year apart,
        two respondents in each of five teams, nine elements (:func:`_maturity_table`, its own
        random stream; ``truth["maturity"]``).
    spend_noise : sd of a per-customer log-normal factor (mean 1) on every invoice before the
        customer's survey date and on none after it (0 = none, the default: the worlds are exactly
        as without it). Pre-survey spend then measures the latent account size, which drives
        satisfaction, spend, churn and contacts, only noisily, while post-survey spend still
        follows size: adjusting for pre-survey spend leaves residual confounding that grows with
        ``spend_noise`` and ``confounding``. The factor is independent of everything else (drawn
        from its own random stream), so it biases nothing on its own.
    """
    rng = np.random.default_rng(seed)
    effects = {k: dict(v) for k, v in (effects or TRUE_EFFECTS).items()}
    n = int(n_customers)
    as_of_d = _days(as_of)
    ids = np.arange(1, n + 1)

    # --- customers: plan, size, region, start -------------------------------------
    plan_idx = rng.choice(3, size=n, p=PLAN_SHARE)
    log_size = rng.normal(0.0, 0.7, n)
    size = np.exp(log_size - 0.7**2 / 2)  # mean 1
    employees = np.maximum(1, np.round(20 * np.exp(log_size + rng.normal(0, 0.15, n)))).astype(np.int64)
    region_idx = rng.integers(0, 4, n)
    region = REGIONS[region_idx]
    start = as_of_d - rng.integers(45, int(years * DAYS_PER_YEAR), n)

    # --- latent satisfaction and the index survey ----------------------------------
    w = TRUE_DRIVER_WEIGHTS
    z = {k: rng.normal(0, 1, n) for k in w}
    confounder = confounding * (0.55 * log_size / 0.7 + PLAN_SAT[plan_idx]) + region_confounding * REGION_SAT[region_idx]
    latent = confounder + sum(w[k] * z[k] for k in w) + rng.normal(0, 0.55, n)
    nps = np.clip(np.round(7.2 + 1.6 * latent), 0, 10).astype(np.int64)
    group = np.where(nps <= 6, "detractor", np.where(nps <= 8, "passive", "promoter"))

    # survey date r: uniform over the customer's last three years, >= 30 days after start
    lo = np.maximum(start + 30, as_of_d - int(3 * DAYS_PER_YEAR))
    hi = as_of_d - 15
    reachable = lo < hi
    r = np.where(reachable, lo + np.floor(rng.random(n) * np.maximum(hi - lo, 1)).astype(np.int64), as_of_d + 10_000)

    # --- churn: exponential hazard, changes at r -----------------------------------
    base_hazard = (yearly_churn * PLAN_CHURN[plan_idx] * size ** -0.3 * np.exp(-region_confounding * REGION_SAT[region_idx])
                   / DAYS_PER_YEAR)  # per day
    t_pre = rng.exponential(1.0, n) / base_hazard
    churn_before_r = start + t_pre < r
    hr = np.vectorize(effects["churn"].get)(group).astype(float)
    t_post = rng.exponential(1.0, n) / (base_hazard * hr)
    end_time = np.where(churn_before_r, start + t_pre, r + t_post)  # redrawn after a first complaint, below
    end = np.floor(end_time).astype(np.int64)
    churned = end <= as_of_d
    alive_at_r = reachable & ~churn_before_r

    p_resp = response_rate * np.clip(0.75 + response_bias * (0.25 * (plan_idx == 2) + 0.1 * log_size), 0.2, 1.5)
    u_resp = rng.random(n)
    responded = alive_at_r & (u_resp < np.clip(p_resp, 0, 1))

    referred = np.full(n, None, dtype=object)
    order = np.argsort(start, kind="stable")
    ref_weight = np.where(group == "promoter", 4.0, np.where(group == "passive", 1.0, 0.3))[order]
    cum = np.cumsum(ref_weight)
    pos = np.arange(n)
    is_ref = (rng.random(n) < 0.08) & (pos > 0)
    u = rng.random(n) * np.where(pos > 0, cum[np.maximum(pos - 1, 0)], 0)
    pick = np.minimum(np.searchsorted(cum, u, side="right"), np.maximum(pos - 1, 0))
    referred[order[is_ref]] = ids[order[pick[is_ref]]].astype(str)

    customers = pd.DataFrame({
        "customer_id": ids.astype(str),
        "start_date": _to_date(start),
        "end_date": pd.Series(_to_date(end)).where(churned),
        "referred_by": pd.array(referred, dtype="str"),
        "plan": PLANS[plan_idx],
        "region": region,
        "employees": employees,
    })

    # --- transactions: monthly invoices, group effect from r -----------------------
    last_day = np.minimum(end, as_of_d)  # active through end_date (inclusive)
    n_inv = (last_day - start) // 30 + 1
    cust = np.repeat(np.arange(n), n_inv)
    k = np.arange(n_inv.sum()) - np.repeat(np.cumsum(n_inv) - n_inv, n_inv)
    tday = start[cust] + 30 * k
    rev_eff = np.vectorize(effects["revenue"].get)(group).astype(float)
    pre_spend = _pre_spend_factor(seed, n, spend_noise)
    mult = np.where(tday >= r[cust], rev_eff[cust], pre_spend[cust])
    amount = monthly_spend * PLAN_SPEND[plan_idx[cust]] * size[cust] * mult * rng.lognormal(-0.02, 0.2, cust.size)
    amount = np.round(amount, 2)
    refund = rng.random(cust.size) < 0.02
    rf_day = np.minimum(tday[refund] + rng.integers(1, 10, refund.sum()), last_day[cust[refund]])
    t_cust = np.concatenate([cust, cust[refund]])
    t_day = np.concatenate([tday, rf_day])
    t_amt = np.concatenate([amount, -np.round(amount[refund] * rng.uniform(0.2, 1.0, refund.sum()), 2)])
    srt = np.lexsort((t_day, t_cust))
    transactions = pd.DataFrame({
        "customer_id": ids[t_cust[srt]].astype(str),
        "date": _to_date(t_day[srt]),
        "amount": t_amt[srt],
        "cost": np.round(t_amt[srt] * 0.35, 2),
    })
    tx_cust = t_cust[srt]

    # --- contacts: Poisson before and after r ---------------------------------------
    c_rate = monthly_contacts / 30.0 * np.array([1.0, 1.2, 1.5])[plan_idx] * np.sqrt(size)
    c_eff = np.vectorize(effects["contacts"].get)(group).astype(float)
    seg_a_end = np.minimum(r, last_day + 1)  # [start, min(r, last+1))
    dur_pre = np.maximum(seg_a_end - start, 0)
    dur_post = np.maximum(last_day + 1 - r, 0)
    n_pre = rng.poisson(c_rate * dur_pre)
    n_post = rng.poisson(c_rate * c_eff * dur_post)
    cc = np.concatenate([np.repeat(np.arange(n), n_pre), np.repeat(np.arange(n), n_post)])
    seg_start = np.concatenate([np.repeat(start, n_pre), np.repeat(r, n_post)])
    seg_len = np.concatenate([np.repeat(dur_pre, n_pre), np.repeat(dur_post, n_post)])
    c_day = seg_start + np.floor(rng.random(cc.size) * seg_len).astype(np.int64)
    channel = CHANNELS[rng.choice(4, size=cc.size, p=CHANNEL_SHARE)]
    complaint = rng.random(cc.size) < np.where(group[cc] == "detractor", 0.25, 0.1)
    resolved = complaint & (rng.random(cc.size) < 0.7)
    res_day = c_day + np.ceil(rng.exponential(4.0, cc.size)).astype(np.int64)
    srt = np.lexsort((c_day, cc))
    reasons = REASONS
    contacts = pd.DataFrame({
        "customer_id": ids[cc[srt]].astype(str),
        "date": _to_date(c_day[srt]),
        "channel": channel[srt],
        "reason": reasons[rng.choice(4, size=cc.size, p=REASON_SHARE)][srt] if cc.size else np.array([], dtype=str),
        "is_complaint": complaint[srt],
        "resolved": pd.array(np.where(complaint, resolved, False)[srt], dtype="boolean").copy(),
        "resolved_date": pd.Series(_to_date(res_day[srt])).where(resolved[srt] & (res_day[srt] <= as_of_d)),
    })
    contacts.loc[~complaint[srt], "resolved"] = pd.NA
    contact_cust, complaint, resolved, res_day = cc[srt], complaint[srt], resolved[srt], res_day[srt]

    # --- failure demand: reasons that drive churn (own random stream) --------------------------
    fd = None
    if failure_reasons:
        fd = _seed_failure_demand(np.random.default_rng([seed, 9]), failure_reasons, latent=latent, r=r,
                                  end_time=end_time, as_of_d=as_of_d, contacts=contacts, contact_cust=contact_cust,
                                  transactions=transactions, tx_cust=tx_cust)
        keep_c = fd["keep_contacts"]
        end_time, hr = fd["end_time"], hr * fd["multiplier"]
        contacts = fd["contacts"]
        transactions, tx_cust = fd["transactions"], fd["tx_cust"]
        contact_cust, complaint, resolved, res_day = (contact_cust[keep_c], complaint[keep_c], resolved[keep_c],
                                                      res_day[keep_c])

    # --- closing the loop: a first complaint changes the churn hazard (own random stream) -----
    loop = _close_the_loop(
        np.random.default_rng([seed, 7]), resolution_effect, as_of_d, end_time=end_time, start=start, r=r,
        base_hazard=base_hazard, hr=hr, group=group, plan_idx=plan_idx, size=size, rev_eff=rev_eff,
        pre_spend=pre_spend, monthly_spend=monthly_spend, c_rate=c_rate, c_eff=c_eff, ids=ids,
        transactions=transactions, tx_cust=tx_cust, contacts=contacts, contact_cust=contact_cust, complaint=complaint,
        resolved=resolved, res_day=res_day)
    end_time, transactions, contacts = loop["end_time"], loop["transactions"], loop["contacts"]
    if fd is not None:  # the loop's extra contacts (a now-later end) get reasons of this world too
        extra = ~contacts["reason"].isin(list(failure_reasons))
        contacts.loc[extra, "reason"] = fd["draw"](np.flatnonzero(extra), contacts)
    end = np.floor(end_time).astype(np.int64)
    churned = end <= as_of_d
    last_day = np.minimum(end, as_of_d)
    customers["end_date"] = pd.Series(_to_date(end)).where(churned)
    alive_at_r = reachable & (end_time >= r)
    responded = alive_at_r & (u_resp < np.clip(p_resp, 0, 1))

    # --- responses: index, repeat, journey surveys ----------------------------------
    def scores(lat, noise_rng_scale=0.0):
        ln = lat + rng.normal(0, noise_rng_scale, lat.size) if noise_rng_scale else lat
        nps_ = np.clip(np.round(7.2 + 1.6 * ln), 0, 10).astype(np.int64)
        csat_ = np.clip(np.round(3.6 + 0.8 * ln + rng.normal(0, 0.4, lat.size)), 1, 5).astype(np.int64)
        ces_ = np.clip(np.round(4.9 + 1.0 * ln + rng.normal(0, 0.6, lat.size)), 1, 7).astype(np.int64)
        return nps_, csat_, ces_

    resp_i = np.flatnonzero(responded)
    idx_nps = nps[resp_i]
    _, idx_csat, idx_ces = scores(latent[resp_i])
    attrs = {f"attr_{k}": np.clip(np.round(6.5 + 1.5 * (z[k][resp_i] + rng.normal(0, 0.3, resp_i.size))), 1, 10).astype(np.int64) for k in w}

    # a repeat relationship survey for ~35% of respondents still active 6-13 months later
    rep_day = r[resp_i] + rng.integers(180, 400, resp_i.size)
    rep = (rng.random(resp_i.size) < 0.35) & (rep_day <= np.minimum(last_day[resp_i], as_of_d))
    rep_i = resp_i[rep]
    rep_nps, rep_csat, rep_ces = scores(0.75 * latent[rep_i] + rng.normal(0, 0.5, rep_i.size))

    # journey surveys (no NPS): ~40% of customers, at a random active day
    j_cust = np.flatnonzero(rng.random(n) < 0.4)
    j_day = start[j_cust] + np.floor(rng.random(j_cust.size) * (last_day[j_cust] - start[j_cust] + 1)).astype(np.int64)
    j_names = np.array(list(JOURNEYS))
    j_idx = rng.integers(0, len(j_names), j_cust.size)
    tp_choice = rng.random(j_cust.size)
    touch = np.empty(j_cust.size, dtype=object)
    for j, name in enumerate(j_names):  # three journeys, not a per-customer loop
        m = j_idx == j
        tps = np.array(JOURNEYS[name])
        touch[m] = tps[np.minimum((tp_choice[m] * tps.size).astype(int), tps.size - 1)]
    _, j_csat, j_ces = scores(0.8 * latent[j_cust] + 0.6 * rng.normal(0, 1, j_cust.size))

    # whole-journey and touchpoint ratings in the year up to the index survey (own random
    # stream). A customer's journey experience X drives their churn after the survey: X is
    # the normal score of their lifetime after r on their own hazard scale. X = sqrt(s) H +
    # sqrt(1 - s) T (s = journey_signal, H and T independent): the whole-journey rating sees
    # H + 0.35 T, each touchpoint rating sees T, both with noise (sd 0.5).
    jrng = np.random.default_rng([seed, 6])
    s_j = float(np.clip(journey_signal, 0.0, 1.0))
    experience = ndtri(np.clip(-np.expm1(-np.maximum(end_time - r, 0) * base_hazard * hr), 1e-9, 1 - 1e-9))
    nu = jrng.normal(0, 1, n)
    handoffs = np.sqrt(s_j) * experience + np.sqrt(1 - s_j) * nu
    steps = np.sqrt(1 - s_j) * experience - np.sqrt(s_j) * nu
    jt = resp_i[jrng.random(resp_i.size) < 0.7]  # respondents with journey feedback
    jw_cust = np.repeat(jt, len(j_names))
    jw_idx = np.tile(np.arange(len(j_names)), jt.size)
    keep = jrng.random(jw_cust.size) < 0.6  # each journey surveyed with probability 0.6
    jw_cust, jw_idx = jw_cust[keep], jw_idx[keep]
    jw_day = r[jw_cust] - np.floor(jrng.random(jw_cust.size) * np.minimum(r[jw_cust] - start[jw_cust], 365)).astype(np.int64)
    n_tp = np.array([len(JOURNEYS[j]) for j in j_names])
    tp_row = np.repeat(np.arange(jw_cust.size), n_tp[jw_idx])  # every touchpoint of a surveyed journey
    tp_k = np.arange(tp_row.size) - np.repeat(np.cumsum(n_tp[jw_idx]) - n_tp[jw_idx], n_tp[jw_idx])
    rated = jrng.random(tp_row.size) < 0.8  # ... is rated with probability 0.8
    tp_row, tp_k = tp_row[rated], tp_k[rated]
    all_tp = np.concatenate([np.array(JOURNEYS[j], dtype=object) for j in j_names])
    tp_name = all_tp[(np.cumsum(n_tp) - n_tp)[jw_idx[tp_row]] + tp_k]

    def journey_scores(lat):
        csat_ = np.clip(np.round(3.6 + 0.8 * lat), 1, 5).astype(np.int64)
        ces_ = np.clip(np.round(4.9 + 1.0 * lat + jrng.normal(0, 0.6, lat.size)), 1, 7).astype(np.int64)
        return csat_, ces_

    jw_csat, jw_ces = journey_scores(handoffs[jw_cust] + 0.35 * steps[jw_cust] + jrng.normal(0, 0.5, jw_cust.size))
    tp_csat, tp_ces = journey_scores(steps[jw_cust[tp_row]] + jrng.normal(0, 0.5, tp_row.size))

    def block(cust_i, day, nps_, csat_, ces_, journey, touchpoint, attr):
        m = cust_i.size
        out = {
            "customer_id": ids[cust_i].astype(str),
            "response_date": _to_date(day),
            "nps": pd.array(nps_, dtype="Int64") if nps_ is not None else pd.array([pd.NA] * m, dtype="Int64"),
            "csat": pd.array(csat_, dtype="Int64"),
            "ces": pd.array(ces_, dtype="Int64"),
            "journey": pd.array(journey, dtype="str"),
            "touchpoint": pd.array(touchpoint, dtype="str"),
        }
        for a in attrs:
            out[a] = pd.array(attr[a], dtype="Int64") if attr is not None else pd.array([pd.NA] * m, dtype="Int64")
        return pd.DataFrame(out)

    none_m = lambda m: np.full(m, None, dtype=object)  # noqa: E731
    responses = pd.concat([
        block(resp_i, r[resp_i], idx_nps, idx_csat, idx_ces, none_m(resp_i.size), none_m(resp_i.size), attrs),
        block(rep_i, rep_day[rep], rep_nps, rep_csat, rep_ces, none_m(rep_i.size), none_m(rep_i.size),
              {a: np.clip(v[rep] + rng.integers(-1, 2, rep.sum()), 1, 10) for a, v in attrs.items()}),
        block(j_cust, j_day, None, j_csat, j_ces, j_names[j_idx].astype(object), touch, None),
        block(jw_cust, jw_day, None, jw_csat, jw_ces, j_names[jw_idx].astype(object), none_m(jw_cust.size), None),
        block(jw_cust[tp_row], jw_day[tp_row], None, tp_csat, tp_ces, j_names[jw_idx[tp_row]].astype(object),
              tp_name, None),
    ], ignore_index=True)
    responses = responses.sort_values(["customer_id", "response_date"], kind="stable", ignore_index=True)

    world = SyntheticWorld(customers, responses, transactions, contacts)
    if messy:
        _add_mess(world, rng, as_of_d)

    shares = pd.Series(group[responded]).value_counts(normalize=True).to_dict()
    world.truth = {
        "seed": seed,
        "as_of": str(_to_date(np.array([as_of_d]))[0]),
        "metric": "nps",
        "reference_group": "passive",
        "effects": effects,
        "driver_weights": dict(w),
        # the drivers are independent and rated with equal noise, so each one's Shapley share of
        # the R² of NPS is its squared weight over the sum (rounding and clipping move it < .002)
        "driver_importance": {k: v**2 / sum(x**2 for x in w.values()) for k, v in w.items()},
        "confounding": confounding,
        "spend_noise": spend_noise,
        "region_confounding": region_confounding,
        "group_shares": {g: float(shares.get(g, 0.0)) for g in ("detractor", "passive", "promoter")},
        "n_customers": n,
        "n_respondents": int(responded.sum()),
        "channel_cost": dict(CHANNEL_COST),
        "monthly_spend": monthly_spend,
        "yearly_churn": yearly_churn,
        "messy": messy,
        "resolution": {
            "hazard_ratio_open_vs_resolved": resolution_effect,
            "hazard_multiplier_open": loop["multipliers"][0],
            "hazard_multiplier_resolved": loop["multipliers"][1],
            "resolved_share": RESOLVED_SHARE,
            "applies_from": "first complaint",
            "revenue_ratio_open_vs_resolved": 1.0,
        },
        "response_bias": response_bias,
        "journeys_vs_touchpoints": _journey_truth(s_j),
    }
    if maturity:
        world.maturity, world.truth["maturity"] = _maturity_table(np.random.default_rng([seed, 11]), as_of_d)
    if fd is not None:
        world.truth["failure_demand"] = {
            "reasons": {k: dict(v) for k, v in failure_reasons.items()}, "window_months": 12,
            "applies_from": "survey date, for a customer with a contact about the reason in the 12 months before it",
            "exposed_customers": fd["exposed"]}
    world.hidden = pd.DataFrame({
        "customer_id": ids.astype(str), "nps": nps, "group": group,
        "survey_date": pd.Series(_to_date(r)).where(reachable), "eligible": alive_at_r, "responded": responded,
        # each customer's own true levels without the group effect (multiply by TRUE_EFFECTS): the
        # oracle of the business case. Revenue: invoices every 30 days, refunds take 2% x 60% on average
        "revenue_per_year": monthly_spend * PLAN_SPEND[plan_idx] * size * DAYS_PER_YEAR / 30 * (1 - 0.02 * 0.6),
        "hazard_per_year": base_hazard * DAYS_PER_YEAR,
        "contacts_per_year": c_rate * DAYS_PER_YEAR,
        "active": ~churned,
    })
    return world


def _seed_failure_demand(rng: np.random.Generator, reasons: dict[str, dict[str, float]], *, latent, r, end_time,
                         as_of_d: int, contacts: pd.DataFrame, contact_cust: np.ndarray, transactions: pd.DataFrame,
                         tx_cust: np.ndarray) -> dict[str, Any]:
    """Give every contact a reason and let the failure reasons drive churn.

    A contact's reason is drawn with log-odds ``log(share) + tilt x (-latent satisfaction)``
    of its customer (softmax over the reasons). A customer with a contact about a reason in the
    12 calendar months before their survey day ``r`` has their churn hazard multiplied by that
    reason's ``churn_hr`` from ``r`` on (the product over such reasons). The hazard after ``r`` is
    constant at this point (the loop's redraw comes after and is handed the multiplier), so the
    remaining lifetime scales exactly: ``end' = r + (end - r) / multiplier``. Every multiplier is
    at least 1, so ends only move earlier: the invoices and contacts after a new end are dropped.
    Only ``rng`` (its own stream) is drawn from.
    """
    names = np.array(list(reasons))
    log_share = np.log([reasons[k]["share"] for k in names])
    tilt = np.array([reasons[k]["tilt"] for k in names])
    hrs = np.array([reasons[k]["churn_hr"] for k in names])
    if (hrs < 1).any():
        raise ValueError("failure_reasons: churn_hr must be 1 or more (a reason that keeps customers is not modelled)")

    def draw(rows: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        who = frame["customer_id"].to_numpy()[rows].astype(np.int64) - 1
        logits = log_share[None, :] + tilt[None, :] * (-latent[who])[:, None]
        prob = np.exp(logits - logits.max(axis=1, keepdims=True))
        cum = np.cumsum(prob / prob.sum(axis=1, keepdims=True), axis=1)
        pick = (rng.random(rows.size)[:, None] > cum).sum(axis=1)
        return names[np.minimum(pick, names.size - 1)]

    contacts = contacts.copy()
    contacts["reason"] = draw(np.arange(len(contacts)), contacts) if len(contacts) else np.array([], dtype=str)
    day = contacts["date"].to_numpy().astype("datetime64[D]")
    r_date = _to_date(r[contact_cust])
    pre_start = (pd.to_datetime(pd.Series(r_date)) - pd.DateOffset(months=12)).to_numpy().astype("datetime64[D]")
    in_pre = (day >= pre_start) & (day < r_date)
    multiplier = np.ones(len(latent))
    exposed = {}
    for k, hr_k in zip(names, hrs):
        who = np.unique(contact_cust[in_pre & (contacts["reason"].to_numpy() == k)])
        exposed[str(k)] = int(who.size)
        multiplier[who] *= hr_k
    alive = end_time > r
    new_end = np.where(alive, r + (end_time - r) / multiplier, end_time)
    last = np.minimum(np.floor(new_end).astype(np.int64), as_of_d)
    keep_c = contacts["date"].to_numpy().astype("datetime64[D]").astype(np.int64) <= last[contact_cust]
    keep_t = transactions["date"].to_numpy().astype("datetime64[D]").astype(np.int64) <= last[tx_cust]
    return {"contacts": contacts[keep_c].reset_index(drop=True), "keep_contacts": keep_c,
            "transactions": transactions[keep_t].reset_index(drop=True), "tx_cust": tx_cust[keep_t],
            "end_time": new_end, "multiplier": multiplier, "exposed": exposed, "draw": draw}


#: The demo's CX maturity: each element's average level in the first round (teams and respondents
#: scatter around it), the improvement a year later, and the element the teams disagree on.
MATURITY_TRUTH = {
    "levels": {"strategy": 2.8, "leadership": 2.6, "customer_insight": 3.2, "journey_design": 2.2, "measurement": 3.0,
               "governance": 2.3, "culture": 2.6, "operations": 2.4, "technology": 2.9},
    "improvement": 0.4, "team_sd": 0.3, "respondent_sd": 0.4, "disagreement": "journey_design", "disagreement_sd": 1.1,
    "teams": ["customer_service", "marketing", "product", "sales", "finance"], "respondents_per_team": 2,
}


def _maturity_table(rng: np.random.Generator, as_of_d: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Two rounds of the maturity self-assessment, 13 and 1 months before ``as_of``: each
    respondent's level of each element = the element's level (+ the improvement in round two) + a
    team effect + their own noise, rounded and clipped to 1-5. On the disagreement element each
    team sees its own level (a large team effect)."""
    t = MATURITY_TRUTH
    rows = []
    team_effect = {(team, el): rng.normal(0, t["disagreement_sd"] if el == t["disagreement"] else t["team_sd"])
                   for team in t["teams"] for el in t["levels"]}
    for k, (offset, gain) in enumerate(((396, 0.0), (31, t["improvement"]))):
        for team in t["teams"]:
            for j in range(t["respondents_per_team"]):
                day = as_of_d - offset + int(rng.integers(0, 14))
                for el, level in t["levels"].items():
                    x = level + gain + team_effect[(team, el)] + rng.normal(0, t["respondent_sd"])
                    rows.append({"assessed_by": f"{team} {j + 1}", "team": team, "date": _to_date(np.array([day]))[0],
                                 "element": el.replace("_", " "), "level": int(np.clip(np.round(x), 1, 5))})
    return pd.DataFrame(rows), {k: v for k, v in t.items()}


def _pre_spend_factor(seed: int, n: int, spend_noise: float) -> np.ndarray:
    """Each customer's spend multiplier before their survey date: ``exp(s u - s^2 / 2)``, u standard
    normal from its own random stream (``[seed, 13]``), so mean 1; exactly 1 (and nothing drawn)
    when ``spend_noise`` s is 0."""
    if not spend_noise:
        return np.ones(n)
    if spend_noise < 0:
        raise ValueError(f"spend_noise must be >= 0, got {spend_noise}")
    s = float(spend_noise)
    return np.exp(s * np.random.default_rng([seed, 13]).normal(0.0, 1.0, n) - s * s / 2)


def _journey_truth(s: float) -> dict[str, Any]:
    """Correlation of the churn-driving journey experience X with one whole-journey rating
    and with the mean of two touchpoint ratings of the same journey (before rounding), and
    which is higher. The crossover is near ``journey_signal`` = 0.36."""
    corr_journey = (np.sqrt(s) + 0.35 * np.sqrt(1 - s)) / np.sqrt(1 + 0.35**2 + 0.5**2)
    corr_touchpoints = np.sqrt(1 - s) / np.sqrt(1 + 0.5**2 / 2)
    return {"journey_signal": s, "corr_journey": float(corr_journey), "corr_touchpoints": float(corr_touchpoints),
            "journeys_win": bool(corr_journey > corr_touchpoints), "drives": ["churn"]}


def loop_multipliers(resolution_effect: float) -> tuple[float, float]:
    """Churn hazard multipliers after a first complaint: ``(open, resolved)``.

    ``open / resolved = resolution_effect`` and ``0.7 resolved + 0.3 open = 1``
    (:data:`RESOLVED_SHARE`), so complaining leaves a group's average hazard unchanged.
    """
    u = 1.0 / (RESOLVED_SHARE / resolution_effect + (1 - RESOLVED_SHARE))
    return u, u / resolution_effect


def _close_the_loop(rng: np.random.Generator, resolution_effect: float, as_of_d: int, *, end_time, start, r,
                    base_hazard, hr, group, plan_idx, size, rev_eff, monthly_spend, pre_spend=None, c_rate, c_eff, ids,
                    transactions, tx_cust, contacts, contact_cust, complaint, resolved, res_day) -> dict:
    """Redraw each complainer's lifetime from their first complaint, with the resolution effect.

    From the first complaint's day ``c`` the hazard is the customer's own (``base_hazard``,
    times the group effect ``hr`` from the survey day ``r``) times ``u`` until the complaint
    is resolved and ``v`` after (:func:`loop_multipliers`); a complaint never resolved keeps
    ``u``. Churn is exponential, so (memorylessness) the remaining lifetime from ``c`` can be
    redrawn by inverting the piecewise-constant cumulative hazard. A resolution happens only
    if the customer is still a customer on its day and it is on or before ``as_of`` (else the
    complaint stays unresolved, for every complaint). Events after a now-earlier end are
    dropped; a now-later end gets invoices and contacts for the extra days. Only ``rng`` (its
    own stream) is drawn from. ``contacts`` and the ``contact_*`` arrays are in the same order.
    """
    u, v = loop_multipliers(resolution_effect)
    end_old = np.floor(end_time).astype(np.int64)
    last_old = np.minimum(end_old, as_of_d)

    # each customer's first complaint (contacts are sorted by customer, then day)
    c_day = contacts["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    ci = np.flatnonzero(complaint)
    first = ci[np.r_[True, contact_cust[ci][1:] != contact_cust[ci][:-1]]] if ci.size else ci
    who = contact_cust[first]
    c1 = c_day[first].astype(float)
    res1 = np.where(resolved[first], res_day[first], np.inf)
    r_w, bh, hr_w = r[who].astype(float), base_hazard[who], hr[who]
    a = np.maximum(r_w, c1)  # the group effect applies from r on
    p = np.column_stack([c1, np.minimum(a, res1), np.maximum(a, res1), np.full(c1.size, np.inf)])
    with np.errstate(invalid="ignore"):
        length = np.nan_to_num(np.diff(p, axis=1), nan=0.0, posinf=np.inf)  # inf - inf: never reached
    starts = p[:, :3]
    rate = bh[:, None] * np.where(starts >= r_w[:, None], hr_w[:, None], 1.0) * np.where(starts >= res1[:, None], v, u)
    with np.errstate(invalid="ignore"):
        piece_h = np.where(length > 0, rate * length, 0.0)
    cum = np.cumsum(piece_h, axis=1)
    e = rng.exponential(1.0, c1.size)
    j = np.argmax(cum > e[:, None], axis=1)
    k = np.arange(c1.size)
    before = np.column_stack([np.zeros(c1.size), cum[:, :-1]])[k, j]  # cumulative hazard up to piece j
    t = starts[k, j] + (e - before) / rate[k, j]
    end_time = end_time.copy()
    end_time[who] = t
    end_new = np.floor(end_time).astype(np.int64)
    last_new = np.minimum(end_new, as_of_d)

    # contacts: drop what falls after a now-earlier end; resolve only while still a customer
    keep = c_day <= last_new[contact_cust]
    done = resolved & (res_day <= last_new[contact_cust])
    contacts = contacts.assign(resolved=contacts["resolved"].where(~complaint, done),
                               resolved_date=contacts["resolved_date"].where(done))[keep]
    contact_cust, c_day = contact_cust[keep], c_day[keep]
    tx_day = transactions["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    keep = tx_day <= last_new[tx_cust]
    transactions, tx_cust, tx_day = transactions[keep], tx_cust[keep], tx_day[keep]

    # a now-later end: invoices and contacts for the extra days, drawn as in generate()
    ext = np.flatnonzero(last_new > last_old)
    n_old = (last_old[ext] - start[ext]) // 30 + 1
    n_add = (last_new[ext] - start[ext]) // 30 + 1 - n_old
    cust = np.repeat(ext, n_add)
    kk = np.repeat(n_old, n_add) + np.arange(n_add.sum()) - np.repeat(np.cumsum(n_add) - n_add, n_add)
    tday = start[cust] + 30 * kk
    pre = 1.0 if pre_spend is None else pre_spend[cust]
    amount = np.round(monthly_spend * PLAN_SPEND[plan_idx[cust]] * size[cust] * np.where(tday >= r[cust], rev_eff[cust], pre)
                      * rng.lognormal(-0.02, 0.2, cust.size), 2)
    refund = rng.random(cust.size) < 0.02
    rf_day = np.minimum(tday[refund] + rng.integers(1, 10, refund.sum()), last_new[cust[refund]])
    rf_amt = -np.round(amount[refund] * rng.uniform(0.2, 1.0, refund.sum()), 2)
    t_amt = np.concatenate([amount, rf_amt])
    extra_tx = pd.DataFrame({"customer_id": ids[np.concatenate([cust, cust[refund]])].astype(str),
                             "date": _to_date(np.concatenate([tday, rf_day])), "amount": t_amt,
                             "cost": np.round(t_amt * 0.35, 2)})
    order = np.lexsort((np.concatenate([tx_day, tday, rf_day]), np.concatenate([tx_cust, cust, cust[refund]])))
    transactions = pd.concat([transactions, extra_tx], ignore_index=True).iloc[order].reset_index(drop=True)

    lo, hi = last_old[ext] + 1, last_new[ext] + 1  # extra days [lo, hi), split at r
    pre_len = np.maximum(np.minimum(r[ext], hi) - lo, 0)
    post_from = np.maximum(r[ext], lo)
    post_len = np.maximum(hi - post_from, 0)
    n_pre = rng.poisson(c_rate[ext] * pre_len)
    n_post = rng.poisson(c_rate[ext] * c_eff[ext] * post_len)
    cc = np.concatenate([np.repeat(ext, n_pre), np.repeat(ext, n_post)])
    day = (np.concatenate([np.repeat(lo, n_pre), np.repeat(post_from, n_post)])
           + np.floor(rng.random(cc.size) * np.concatenate([np.repeat(pre_len, n_pre), np.repeat(post_len, n_post)])).astype(np.int64))
    is_complaint = rng.random(cc.size) < np.where(group[cc] == "detractor", 0.25, 0.1)
    res = np.where(is_complaint, day + np.ceil(rng.exponential(4.0, cc.size)).astype(np.int64), 0)
    is_resolved = is_complaint & (rng.random(cc.size) < RESOLVED_SHARE) & (res <= last_new[cc])
    extra_c = pd.DataFrame({
        "customer_id": ids[cc].astype(str),
        "date": _to_date(day),
        "channel": CHANNELS[rng.choice(4, size=cc.size, p=CHANNEL_SHARE)],
        "reason": REASONS[rng.choice(4, size=cc.size, p=REASON_SHARE)],
        "is_complaint": is_complaint,
        "resolved": pd.array(np.where(is_complaint, is_resolved, False), dtype="boolean").copy(),
        "resolved_date": pd.Series(_to_date(res)).where(is_resolved),
    })
    extra_c.loc[~is_complaint, "resolved"] = pd.NA
    order = np.lexsort((np.concatenate([c_day, day]), np.concatenate([contact_cust, cc])))
    contacts = pd.concat([contacts, extra_c], ignore_index=True).iloc[order].reset_index(drop=True)
    return {"end_time": end_time, "transactions": transactions, "contacts": contacts, "multipliers": (u, v)}


def _add_mess(world: SyntheticWorld, rng: np.random.Generator, as_of_d: int) -> None:
    """Add a handful of rows that the contract's exclusion rules must catch and count."""
    r = world.responses
    bad = r[r["nps"].notna()].sample(n=min(12, len(r)), random_state=int(rng.integers(1 << 31))).copy()
    bad["nps"] = 11  # out of range
    ghost = r.sample(n=min(8, len(r)), random_state=int(rng.integers(1 << 31))).copy()
    ghost["customer_id"] = [f"X{i}" for i in range(len(ghost))]  # unknown customers
    world.responses = pd.concat([r, bad, ghost], ignore_index=True)
    t = world.transactions
    late = t.sample(n=min(15, len(t)), random_state=int(rng.integers(1 << 31))).copy()
    late["date"] = _to_date(np.array([as_of_d + 40]))[0]  # after as_of
    world.transactions = pd.concat([t, late], ignore_index=True)
    c = world.contacts
    ghost_c = c.sample(n=min(6, len(c)), random_state=int(rng.integers(1 << 31))).copy()
    ghost_c["customer_id"] = "X-unknown"
    world.contacts = pd.concat([c, ghost_c], ignore_index=True)


def write_world(world: SyntheticWorld, out_dir: str | Path, fmt: str = "parquet") -> Path:
    """Write the tables (four, or five with ``maturity``) as ``<table>.parquet`` (or ``.csv``) and ``truth.json``."""
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in world.tables.items():
        if fmt == "csv":
            df.to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%d")
        elif fmt == "parquet":
            # row groups of 100k rows let DuckDB read a table on every core
            df.to_parquet(out / f"{name}.parquet", index=False, row_group_size=100_000)
        else:
            raise ValueError(f"unknown format {fmt!r}; use parquet or csv")
    (out / "truth.json").write_text(json.dumps(world.truth, indent=2, sort_keys=True))
    return out


#: The demo world: about 20,000 customers, messy rows included to show data quality, contact reasons
#: seeded with failure demand (:data:`FAILURE_REASONS`) and a CX maturity self-assessment.
DEMO = {"n_customers": 20_000, "seed": 42, "messy": True, "failure_reasons": FAILURE_REASONS, "maturity": True}
#: Bump when the generator changes so cached demo worlds are rebuilt.
DEMO_VERSION = 6


def demo_dir() -> Path:
    """Folder holding the demo world, generated once (seeded, so always the same).

    ``$CXVALUE_DEMO_DIR`` if set; else ``data/demo`` in a source checkout; else a cache folder.
    """
    import os
    import shutil
    import tempfile

    env = os.environ.get("CXVALUE_DEMO_DIR")
    repo = Path(__file__).resolve().parents[1]
    if env:
        path = Path(env)
    elif (repo / "pyproject.toml").is_file() and (repo / "data").is_dir():
        path = repo / "data" / "demo"
    else:
        path = Path.home() / ".cache" / "cxvalue" / "demo"
    import json

    truth = path / "truth.json"
    if truth.is_file() and json.loads(truth.read_text()).get("demo_version") == DEMO_VERSION:
        return path
    if truth.is_file():  # an older demo world: rebuild it
        shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-", dir=path.parent))
    world = generate(**DEMO)
    world.truth["demo_version"] = DEMO_VERSION
    write_world(world, tmp)
    try:
        tmp.rename(path)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return path
