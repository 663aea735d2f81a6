"""E-values reproduce the published worked examples and the R package ``EValue``'s output.

Sources of the expected numbers (R package EValue, github.com/mayamathur/evalue_package, commit
333d022; the printed outputs are in its pkgdown site, EValue/docs/):
* [V] vignette "E-values for unmeasured confounding" (EValue/vignettes/unmeasured-confounding.Rmd,
  rendered in EValue/docs/articles/unmeasured-confounding.html), reproducing VanderWeele & Ding
  (2017, Ann Intern Med) and Ding & VanderWeele (2016, Epidemiology);
* [RR], [HR], [MD]: the examples of ``?evalues.RR``, ``?evalues.HR``, ``?evalues.MD``
  (EValue/R/EValue.R, printed in EValue/docs/reference/evalues.*.html).
The packages print 6-7 significant digits; the tolerances are one unit of the last printed digit.
"""

from __future__ import annotations

import numpy as np
import pytest

from cxvalue import evalue as ev


def test_infant_deaths_breastfeeding_3_9():
    # [V] / VanderWeele & Ding 2017 (Victora et al.): RR 3.9 (1.8, 8.7) -> E-values 7.263034 and 3.0
    e = ev.e_values_rr(3.9, 1.8, 8.7)
    assert e.point == pytest.approx(7.263034, abs=1e-6)
    assert e.ci == pytest.approx(3.0, abs=1e-9)  # 1.8 + sqrt(1.8 * 0.8) = 1.8 + 1.2, exactly


def test_smoking_lung_cancer_10_73():
    # [V] / Ding & VanderWeele 2016 (Hammond & Horn): RR 10.73 (8.02, 14.36) -> 20.94777 and 15.52336
    e = ev.e_values_rr(10.73, 8.02, 14.36)
    assert e.point == pytest.approx(20.94777, abs=1e-5)
    assert e.ci == pytest.approx(15.52336, abs=1e-5)


def test_protective_ratio_leukaemia_0_80_uses_the_upper_bound():
    # [V] and [RR] / VanderWeele & Ding 2017 (AHRQ): RR 0.80 (0.71, 0.91) -> 1.809017 and 1.428571
    # (the upper bound 0.91 is the one nearer 1: 1/0.91 + sqrt(1/0.91 * (1/0.91 - 1)) = 1.428571)
    e = ev.e_values_rr(0.80, 0.71, 0.91)
    assert e.point == pytest.approx(1.809017, abs=1e-6)
    assert e.ci == pytest.approx(1.428571, abs=1e-6)


def test_symmetry_of_ratio_and_its_inverse():
    # [RR]: evalues.RR(1 / 0.80) "has same E-value as the above", 1.809017
    assert ev.e_value(1 / 0.80) == pytest.approx(ev.e_value(0.80), rel=1e-12)
    assert ev.e_value(1.25) == pytest.approx(1.809017, abs=1e-6)
    ratios = np.array([0.3, 0.7, 0.95, 1.0, 1.6])
    np.testing.assert_allclose(ev.e_value(ratios), ev.e_value(1 / ratios), rtol=1e-12)


def test_hazard_ratio_common_outcome():
    # [HR]: evalues.HR(0.56, 0.46, 0.69, rare = FALSE)
    #   RR       0.670084 0.585935 0.7735267
    #   E-values 2.349531       NA 1.9080039
    e = ev.e_values_hr(0.56, 0.46, 0.69, rare=False)
    assert e.rr == pytest.approx(0.670084, abs=1e-6)
    assert ev.rr_from_hr(0.46, rare=False) == pytest.approx(0.585935, abs=1e-6)
    assert ev.rr_from_hr(0.69, rare=False) == pytest.approx(0.7735267, abs=1e-7)
    assert e.point == pytest.approx(2.349531, abs=1e-6)
    assert e.ci == pytest.approx(1.9080039, abs=1e-7)
    assert "common outcome" in e.conversion and "0.5^sqrt(HR)" in e.conversion


def test_hazard_ratio_rare_outcome_is_taken_as_a_risk_ratio():
    e = ev.e_values_hr(0.56, 0.46, 0.69, rare=True)
    assert e.point == pytest.approx(ev.e_value(0.56)) and e.ci == pytest.approx(ev.e_value(0.69))
    assert "rare" in e.conversion


def test_hazard_ratio_below_one_mirrors_its_inverse():
    # the common-outcome conversion is symmetric: rr(1/HR) = 1/rr(HR), so HR and 1/HR (with the
    # interval inverted) give the same E-values
    for hr, lo, hi in ((1.8, 1.5, 2.2), (2.36, 2.21, 2.52), (1.1, 0.97, 1.25)):
        up = ev.e_values_hr(hr, lo, hi, rare=False)
        down = ev.e_values_hr(1 / hr, 1 / hi, 1 / lo, rare=False)
        assert up.point == pytest.approx(down.point, rel=1e-12)
        assert up.ci == pytest.approx(down.ci, rel=1e-12)
        assert ev.rr_from_hr(1 / hr, rare=False) == pytest.approx(1 / ev.rr_from_hr(hr, rare=False), rel=1e-12)


def test_hazard_ratio_by_hand():
    # HR 2, common outcome: RR = (1 - 0.5**sqrt(2)) / (1 - 0.5**sqrt(0.5)) = 0.62500 / 0.38745 = 1.61255,
    # E = 1.61255 + sqrt(1.61255 * 0.61255) = 1.61255 + 0.99386 = 2.60640
    assert ev.rr_from_hr(2.0, rare=False) == pytest.approx((1 - 0.5 ** 2 ** 0.5) / (1 - 0.5 ** 0.5 ** 0.5))
    assert ev.e_values_hr(2.0, rare=False).point == pytest.approx(2.6064, abs=1e-4)
    assert ev.rr_from_hr(1.0, rare=False) == 1.0


def test_standardised_mean_difference():
    # [MD]: evalues.MD(.5, .25)
    #   RR       1.576173 1.010050 2.459603
    #   E-values 2.529142 1.110803       NA
    e = ev.e_values_smd(0.5, 0.25)
    assert e.rr == pytest.approx(1.576173, abs=1e-6)
    assert e.point == pytest.approx(2.529142, abs=1e-6)
    assert e.ci == pytest.approx(1.110803, abs=1e-6)
    assert ev.rr_from_smd(0.5) == pytest.approx(np.exp(0.455))


def test_ratio_of_means_is_taken_as_a_risk_ratio():
    # revenue 12% lower, 95% CI 0.84 to 0.92: E-values of 1/0.88 and 1/0.92
    e = ev.e_values_ratio_of_means(0.88, 0.84, 0.92)
    assert e.point == pytest.approx(1 / 0.88 + np.sqrt(1 / 0.88 * (1 / 0.88 - 1)))
    assert e.ci == pytest.approx(ev.e_value(0.92))
    assert "ratio of means" in e.conversion


@pytest.mark.parametrize("est, lo, hi", [(1.2, 0.9, 1.5), (0.9, 0.8, 1.1), (1.3, 1.0, 1.7), (0.8, 0.6, 1.0),
                                         (1.0, 0.9, 1.1)])
def test_interval_that_includes_one_gives_one(est, lo, hi):
    # [V]: "Confidence interval crosses the true value, so its E-value is 1."
    assert ev.e_values_rr(est, lo, hi).ci == 1.0
    assert ev.e_values_hr(est, lo, hi, rare=False).ci == 1.0


def test_vectorised_and_missing_values():
    e = ev.e_values_rr(np.array([3.9, 0.8, np.nan, 1.2]), np.array([1.8, 0.71, np.nan, 0.9]),
                       np.array([8.7, 0.91, np.nan, 1.5]))
    np.testing.assert_allclose(e.point[:2], [7.263034, 1.809017], atol=1e-6)
    np.testing.assert_allclose(e.ci[[0, 1, 3]], [3.0, 1.428571, 1.0], atol=1e-6)
    assert np.isnan(e.point[2]) and np.isnan(e.ci[2])
    assert np.isnan(ev.e_values_rr(1.5).ci)  # no interval given: no E-value for it
    assert isinstance(ev.e_value(2.0), float)


def test_e_value_grows_with_the_ratio_and_is_one_at_one():
    ratios = np.linspace(1, 5, 41)
    e = ev.e_value(ratios)
    assert e[0] == 1.0 and np.all(np.diff(e) > 0) and np.all(e >= ratios)
