"""E-values: how strong a confounder the data cannot see would have to be to explain a gap away.

The E-value (VanderWeele & Ding 2017) is the smallest strength of association, on the risk-ratio
scale, that an unmeasured confounder would need with *both* the group (exposure) and the
outcome, over and above the measured controls, to move an observed ratio to 1. It is given for
the estimate and for the confidence-interval bound nearer 1 (how strong a confounder would have
to be for the interval to include no difference); the latter is 1 when the interval already
includes 1.

Each ratio the linkage models report is first put on the risk-ratio scale:

* a risk ratio or a rate ratio: as it is;
* a hazard ratio: as it is when the outcome is rare (under 15% by the end of follow-up), else
  the published conversion for a common outcome
  ``RR ~ (1 - 0.5 ** sqrt(HR)) / (1 - 0.5 ** sqrt(1 / HR))`` (VanderWeele & Ding 2017, Table 2;
  VanderWeele 2020, Biometrics). Churn over a customer's follow-up here is usually common;
* a ratio of means of a non-negative outcome (revenue, cost to serve per customer-year): as it
  is; see :func:`e_values_ratio_of_means` for why this and not the standardised-mean-difference
  route ``RR ~ exp(0.91 d)`` (:func:`e_values_smd`, also given).

The numbers agree with the R package ``EValue`` (Mathur, Ding, Riddell & VanderWeele 2018;
``evalues.RR``, ``evalues.HR``, ``evalues.MD``); ``tests/test_evalue.py`` reproduces them.

All functions are pure and numpy-vectorised: scalars in, floats out; arrays in, arrays out;
NaN in, NaN out.

References
----------
VanderWeele TJ, Ding P. Sensitivity analysis in observational research: introducing the
E-value. Ann Intern Med 2017;167(4):268-274.
VanderWeele TJ, Ding P, Mathur M. Technical considerations in the use of the E-value.
J Causal Inference 2019;7(2):20180007.
Ding P, VanderWeele TJ. Sensitivity analysis without assumptions. Epidemiology 2016;27(3):368-377.
VanderWeele TJ. Optimal approximate conversions of odds ratios and hazard ratios to risk
ratios. Biometrics 2020;76(3):746-752.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["EValues", "RARE_OUTCOME_SHARE", "e_value", "e_value_ci", "rr_from_hr", "rr_from_smd", "e_values_rr",
           "e_values_hr", "e_values_ratio_of_means", "e_values_smd", "HR_COMMON", "HR_RARE", "RATIO_OF_MEANS"]

#: An outcome is "rare" when fewer than this share of the group had it by the end of follow-up
#: (the threshold of VanderWeele & Ding 2017 and of ``EValue``'s ``rare`` argument).
RARE_OUTCOME_SHARE = 0.15

#: The conversions, in words, for the report's method notes.
HR_COMMON = ("hazard ratio converted to a risk ratio for a common outcome, RR = (1 - 0.5^sqrt(HR)) / "
             "(1 - 0.5^sqrt(1/HR)) (VanderWeele & Ding 2017)")
HR_RARE = "hazard ratio taken as a risk ratio (rare outcome, VanderWeele & Ding 2017)"
RATIO_OF_MEANS = "ratio of means of a non-negative outcome taken as a risk ratio (Ding & VanderWeele 2016)"
SMD = "standardised mean difference converted to a risk ratio, RR = exp(0.91 d) (VanderWeele & Ding 2017)"


class EValues(NamedTuple):
    """E-values of one or more ratios (floats, or arrays of the input's shape)."""

    #: E-value of the estimate
    point: float | np.ndarray
    #: E-value of the confidence-interval bound nearer 1 (1 when the interval includes 1)
    ci: float | np.ndarray
    #: the risk ratio (after conversion) the E-values are computed from
    rr: float | np.ndarray
    #: which conversion was used, in words
    conversion: str


def _out(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


def e_value(rr) -> float | np.ndarray:
    """E-value of a risk ratio: ``RR + sqrt(RR (RR - 1))``, with ``1 / RR`` for a ratio below 1.

    VanderWeele & Ding 2017, Table 1 (``EValue::threshold``). 1 for a ratio of 1; infinite for 0
    or infinity; NaN for NaN. Negative ratios are invalid and give NaN.
    """
    x = np.asarray(rr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(x < 1, 1 / x, x)
        e = x + np.sqrt(x * (x - 1))
    return _out(np.where(x >= 1, e, np.nan))


def e_value_ci(rr, lo, hi) -> float | np.ndarray:
    """E-value of the confidence-interval bound nearer 1: the lower bound of a ratio above 1, the
    upper bound of a ratio below 1; 1 when the interval includes 1 (or the ratio is 1).

    All three on the risk-ratio scale. NaN when the estimate or the bound needed is NaN.
    """
    rr, lo, hi = (np.asarray(v, dtype=float) for v in (rr, lo, hi))
    bound = np.where(rr > 1, lo, np.where(rr < 1, hi, 1.0))
    includes_one = np.where(rr > 1, lo <= 1, np.where(rr < 1, hi >= 1, True))
    e = np.where(includes_one, 1.0, np.asarray(e_value(bound), dtype=float))
    return _out(np.where(np.isnan(rr) | np.isnan(bound), np.nan, e))


def rr_from_hr(hr, rare: bool) -> float | np.ndarray:
    """A hazard ratio on the risk-ratio scale.

    ``rare=True``: the hazard ratio itself (fine when under 15% have the outcome by the end of
    follow-up). ``rare=False``: ``(1 - 0.5 ** sqrt(HR)) / (1 - 0.5 ** sqrt(1 / HR))``, the
    conversion for a common outcome (VanderWeele & Ding 2017, Table 2; VanderWeele 2020;
    ``EValue::toRR.HR``). The conversion is symmetric: ``rr(1 / HR) = 1 / rr(HR)``.
    """
    h = np.asarray(hr, dtype=float)
    if rare:
        return _out(h)
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = (1 - 0.5 ** np.sqrt(h)) / (1 - 0.5 ** np.sqrt(1 / h))
    return _out(np.where(h == 1, 1.0, rr))


def rr_from_smd(d) -> float | np.ndarray:
    """A standardised mean difference (Cohen's d) on the risk-ratio scale: ``exp(0.91 d)``
    (VanderWeele & Ding 2017, Table 2, after Chinn 2000; ``EValue::toRR.MD``)."""
    return _out(np.exp(0.91 * np.asarray(d, dtype=float)))


def e_values_rr(rr, lo=np.nan, hi=np.nan) -> EValues:
    """E-values of a risk ratio (or a rate ratio) and its 95% interval, as ``EValue::evalues.RR``."""
    return EValues(e_value(rr), e_value_ci(rr, lo, hi), _out(np.asarray(rr, dtype=float)), "risk ratio")


def e_values_hr(hr, lo=np.nan, hi=np.nan, *, rare: bool) -> EValues:
    """E-values of a hazard ratio and its 95% interval, as ``EValue::evalues.HR``.

    ``rare`` chooses the conversion (see :func:`rr_from_hr`); ``conversion`` says which was used.
    Decide it from the data: the share of customers who left by the end of follow-up, compared
    with :data:`RARE_OUTCOME_SHARE`. When in doubt, ``rare=False`` gives the smaller E-value.
    """
    rr, rlo, rhi = (rr_from_hr(v, rare) for v in (hr, lo, hi))
    return EValues(e_value(rr), e_value_ci(rr, rlo, rhi), rr, HR_RARE if rare else HR_COMMON)


def e_values_ratio_of_means(ratio, lo=np.nan, hi=np.nan) -> EValues:
    """E-values of an adjusted ratio of means of a non-negative outcome (revenue or cost to serve
    per customer-year) and its 95% interval.

    The ratio is taken as it is, as a risk ratio would be. Why this choice:

    * The bounding factor behind the E-value holds for the ratio of the means of any
      non-negative outcome, not only a binary one, with the confounder-outcome association
      read as the largest ratio by which the hidden factor changes the mean outcome (Ding &
      VanderWeele 2016, extension to non-negative outcomes). Revenue and cost to serve are
      non-negative (refund-heavy customers are counted as 0 by the models) and the models
      report exactly such a ratio (a log-link GLM, standardised over the population), so no
      approximate conversion is added.
    * The other published route, ``EValue::evalues.MD`` (a standardised mean difference ``d``
      turned into ``RR ~ exp(0.91 d)``, Chinn 2000), assumes a roughly normal outcome and needs
      its standard deviation; spend per customer is strongly skewed, and the same ratio of means
      would give an E-value that moves with how unequal customers' spend is rather than with the
      gap. It is kept as :func:`e_values_smd` for reference.

    The E-value then reads: a hidden factor would have to make customers E times as likely to be
    in the group and change their mean revenue (or cost) E-fold, over and above the controls.
    """
    e = e_values_rr(ratio, lo, hi)
    return e._replace(conversion=RATIO_OF_MEANS)


def e_values_smd(d, se=np.nan) -> EValues:
    """E-values of a standardised mean difference ``d`` with standard error ``se``, as
    ``EValue::evalues.MD``: ``RR = exp(0.91 d)``, interval ``exp(0.91 d -/+ 1.78 se)``
    (1.78 = 0.91 x 1.96; VanderWeele & Ding 2017, Table 2)."""
    d, se = np.asarray(d, dtype=float), np.asarray(se, dtype=float)
    rr = np.exp(0.91 * d)
    return EValues(e_value(rr), e_value_ci(rr, np.exp(0.91 * d - 1.78 * se), np.exp(0.91 * d + 1.78 * se)),
                   _out(rr), SMD)
