"""The report's statistics (reports/stats.py) against hand-computed values and edge cases."""

from __future__ import annotations

import math

import pytest
from django.test import override_settings

from personalization.reports.stats import enough_data, lift, rate


def katz(x1: int, n1: int, x2: int, n2: int) -> list[float]:
    """The Katz log interval of the risk ratio, minus one, written out from the formula."""
    p1, p2 = x1 / n1, x2 / n2
    half_width = 1.96 * math.sqrt((1 - p1) / x1 + (1 - p2) / x2)
    log_ratio = math.log(p1 / p2)
    return [
        round(math.exp(log_ratio - half_width) - 1, 3),
        round(math.exp(log_ratio + half_width) - 1, 3),
    ]


def pooled_z_test(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test, with the normal tail from erfc."""
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return round(math.erfc(abs(z) / math.sqrt(2)), 4)


@pytest.mark.parametrize(
    ("converted", "visitors", "expected"),
    [(50, 1000, 5.0), (3, 110, 2.73), (1, 3, 33.33), (2, 3, 66.67), (7, 7, 100.0), (0, 5, 0.0)],
)
def test_rate_is_a_percentage_with_two_decimals(converted, visitors, expected):
    assert rate(converted, visitors) == expected


def test_rate_without_visitors_is_zero():
    assert rate(0, 0) == 0.0


def test_lift_of_the_contracts_example():
    result = lift(50, 1000, 3, 110)
    assert result["relative"] == 0.833
    assert result["ci95"] == [-0.419, 4.78] == katz(50, 1000, 3, 110)
    assert result["p_value"] == 0.2887 == pooled_z_test(50, 1000, 3, 110)


def test_lift_of_a_clear_difference():
    # 10% against 7.5% of 2,000 each: z = 2.798, significant at 1%.
    result = lift(200, 2000, 150, 2000)
    assert result["relative"] == 0.333
    assert result["ci95"] == [0.089, 0.632] == katz(200, 2000, 150, 2000)
    assert result["p_value"] == 0.0051 == pooled_z_test(200, 2000, 150, 2000)


def test_a_worse_personalized_group_has_a_negative_lift_and_the_same_p_value():
    worse = lift(150, 2000, 200, 2000)
    assert worse["relative"] == -0.25
    assert worse["ci95"] == katz(150, 2000, 200, 2000) == [-0.387, -0.082]
    assert worse["p_value"] == lift(200, 2000, 150, 2000)["p_value"]


def test_equal_rates_have_no_lift_and_p_value_one():
    result = lift(10, 100, 20, 200)
    assert result["relative"] == 0.0
    assert result["p_value"] == 1.0
    low, high = result["ci95"]
    assert low < 0 < high


def test_method_is_one_sentence_naming_the_methods():
    method = lift(1, 10, 1, 10)["method"]
    assert method.count(".") == 1 and method.endswith(".")
    assert "Katz" in method and "z-test" in method and "pooled" in method


def test_no_control_conversions_leave_lift_and_interval_undefined():
    result = lift(5, 100, 0, 100)
    assert result["relative"] is None
    assert result["ci95"] is None
    assert result["p_value"] == pooled_z_test(5, 100, 0, 100) == 0.0235


def test_no_personalized_conversions_give_minus_one_without_interval():
    result = lift(0, 100, 5, 100)
    assert result["relative"] == -1.0
    assert result["ci95"] is None
    assert result["p_value"] == 0.0235


def test_nobody_converting_leaves_everything_undefined():
    result = lift(0, 100, 0, 100)
    assert (result["relative"], result["ci95"], result["p_value"]) == (None, None, None)


def test_empty_groups_leave_everything_undefined():
    assert lift(0, 0, 0, 0)["p_value"] is None
    assert lift(0, 0, 3, 10)["relative"] is None
    assert lift(3, 10, 0, 0)["relative"] is None
    assert lift(3, 10, 0, 0)["p_value"] is None


def test_everybody_converting_has_no_p_value():
    result = lift(10, 10, 5, 5)
    assert result["relative"] == 0.0
    assert result["ci95"] == [0.0, 0.0]
    assert result["p_value"] is None


@pytest.mark.parametrize("counts", [(11, 10, 1, 10), (1, 10, -1, 10), (1, -10, 1, 10)])
def test_impossible_counts_are_refused(counts):
    with pytest.raises(ValueError, match="Impossible counts"):
        lift(*counts)


def test_enough_data_needs_both_groups_at_the_minimums():
    # Defaults: 100 visitors and 5 converted visitors in each group.
    assert enough_data(100, 5, 100, 5) is True
    assert enough_data(99, 5, 100, 5) is False
    assert enough_data(100, 5, 99, 5) is False
    assert enough_data(100, 4, 100, 5) is False
    assert enough_data(100, 5, 100, 4) is False
    assert enough_data(1000, 50, 110, 3) is False  # the contract's example


@override_settings(
    PERSONALIZATION={
        "PRODUCT_MODEL": "testapp.Product",
        "REPORT_MIN_VISITORS": 10,
        "REPORT_MIN_CONVERSIONS": 1,
    }
)
def test_enough_data_follows_the_settings():
    assert enough_data(10, 1, 10, 1) is True
    assert enough_data(10, 0, 10, 1) is False
    assert enough_data(9, 1, 10, 1) is False
