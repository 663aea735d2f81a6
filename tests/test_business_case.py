"""NPV, ROI, payback and IRR against hand computations."""

import math

import pytest

from cxvalue import business_case as bc


def test_npv_by_hand():
    # -150 + 100 / 1.1 + 100 / 1.21 = -150 + 90.909 + 82.645
    assert bc.npv([100, 100], 0.10, initial=150) == pytest.approx(23.5537190)
    assert bc.npv([100, 100], 0.0) == 200


def test_roi_by_hand():
    # PV benefits 173.554, PV costs 150 (all up front): (173.554 - 150) / 150
    assert bc.roi([100, 100], [0, 0], 0.10, initial=150) == pytest.approx(23.5537190 / 150)
    assert math.isnan(bc.roi([100], [0], 0.1))


def test_payback_by_hand():
    # cumulative: -150, -50 after year 1; year 2 brings 100, half needed -> 12 + 6 months
    assert bc.payback_months([100, 100], initial=150) == pytest.approx(18.0)
    assert bc.payback_months([10, 10], initial=150) is None
    assert bc.payback_months([-50, 100, 100], initial=0) == pytest.approx(12 + 12 * 0.5)


def test_irr_by_hand():
    # 100 x + 100 x^2 = 150 with x = 1 / (1 + r): x = (-1 + sqrt(7)) / 2
    x = (-1 + math.sqrt(7)) / 2
    assert bc.irr([100, 100], initial=150) == pytest.approx(1 / x - 1)
    assert bc.npv([100, 100], bc.irr([100, 100], initial=150), initial=150) == pytest.approx(0, abs=1e-8)
    assert bc.irr([100, 100], initial=0) is None  # never negative: no IRR
