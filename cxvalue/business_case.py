"""Business-case arithmetic: NPV, ROI, payback and IRR of yearly cash flows.

Pure functions (no fitting, no I/O). Conventions, stated once:

* ``cash_flows`` are yearly net amounts for years 1..H, received at each year's end;
  ``initial`` is spent at time 0 (a one-off programme cost, as a positive number).
* ``NPV = -initial + sum_t cash_flows[t] / (1 + d)^t``.
* ``ROI = (discounted benefits - discounted costs) / discounted costs``.
* payback: months until the cumulative undiscounted net reaches zero, the year's cash
  spread evenly over its 12 months (linear interpolation); ``None`` if never within H.
* IRR: the rate that makes NPV zero (Brent's method on [-99%, 1000%]); ``None`` when the
  flows never change sign.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

__all__ = ["npv", "roi", "payback_months", "irr"]


def npv(cash_flows, discount_rate: float, initial: float = 0.0) -> float:
    """Net present value of yearly flows at year ends, less an up-front ``initial`` cost."""
    cf = np.asarray(cash_flows, float)
    years = np.arange(1, cf.size + 1)
    return float(-initial + np.sum(cf / (1 + discount_rate) ** years))


def roi(benefits, costs, discount_rate: float, initial: float = 0.0) -> float:
    """(PV benefits - PV costs) / PV costs, costs including the up-front ``initial``."""
    pv_b = npv(benefits, discount_rate)
    pv_c = npv(costs, discount_rate) + initial
    if pv_c <= 0:
        return float("nan")
    return float((pv_b - pv_c) / pv_c)


def payback_months(cash_flows, initial: float = 0.0) -> float | None:
    """Months until cumulative net cash (undiscounted) first reaches zero; None if never."""
    cum = -float(initial)
    flows = np.asarray(cash_flows, float)
    if cum >= 0 and (flows.size == 0 or flows[0] >= 0):
        return 0.0  # nothing to pay back
    for year, flow in enumerate(flows):
        if cum < 0 and flow > 0 and cum + flow >= 0:
            return float(12 * year + 12 * (-cum / flow))
        cum += flow
    return None


def irr(cash_flows, initial: float = 0.0) -> float | None:
    """Internal rate of return of ``-initial`` at time 0 and ``cash_flows`` at years 1..H."""
    cf = np.asarray(cash_flows, float)
    flows = np.concatenate([[-initial], cf])
    if not (np.any(flows < 0) and np.any(flows > 0)):
        return None

    def f(rate):
        return npv(cf, rate, initial)

    lo, hi = -0.99, 10.0
    if f(lo) * f(hi) > 0:
        return None
    return float(brentq(f, lo, hi, xtol=1e-10))
