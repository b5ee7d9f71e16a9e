"""Statistics of the report: conversion rates, the lift over control, its interval and test."""

from __future__ import annotations

import math
from typing import Any

from ..conf import app_settings

# The 95% quantile the Katz interval is usually quoted with.
Z95 = 1.96
METHOD = (
    "Lift is the personalized conversion rate divided by the control rate, minus one; its 95% "
    "interval is the Katz log interval of that risk ratio, and the p-value comes from a "
    "two-sided two-proportion z-test with pooled variance."
)


def rate(converted: int, visitors: int) -> float:
    """Conversion rate in percent, rounded to 2 decimals; 0.0 without visitors."""
    if visitors <= 0:
        return 0.0
    return round(100.0 * converted / visitors, 2)


def lift(p_conv: int, p_n: int, c_conv: int, c_n: int) -> dict[str, Any]:
    """The personalized group's lift over control from converted visitors and visitors.

    ``relative``: p_rate / c_rate - 1 (3 decimals), None when the control rate is 0 or a
    group is empty. ``ci95``: [low, high] of the relative lift, Katz log method, None when a
    count is 0. ``p_value``: two-sided pooled two-proportion z-test (4 decimals), None when
    undefined. ``method``: one sentence for the help text.
    """
    _check_counts(p_conv, p_n)
    _check_counts(c_conv, c_n)
    relative = None
    if p_n > 0 and c_n > 0 and c_conv > 0:
        relative = round((p_conv / p_n) / (c_conv / c_n) - 1.0, 3)
    return {
        "relative": relative,
        "ci95": _katz_interval(p_conv, p_n, c_conv, c_n),
        "p_value": _two_proportion_p_value(p_conv, p_n, c_conv, c_n),
        "method": METHOD,
    }


def enough_data(p_n: int, p_conv: int, c_n: int, c_conv: int) -> bool:
    """Whether both groups reach REPORT_MIN_VISITORS visitors and REPORT_MIN_CONVERSIONS
    visitors who converted."""
    min_visitors = app_settings.REPORT_MIN_VISITORS
    min_conversions = app_settings.REPORT_MIN_CONVERSIONS
    return all(n >= min_visitors for n in (p_n, c_n)) and all(
        conv >= min_conversions for conv in (p_conv, c_conv)
    )


def _check_counts(converted: int, visitors: int) -> None:
    if converted < 0 or visitors < 0 or converted > visitors:
        raise ValueError(f"Impossible counts: {converted} converted of {visitors} visitors.")


def _katz_interval(p_conv: int, p_n: int, c_conv: int, c_n: int) -> list[float] | None:
    if 0 in (p_conv, p_n, c_conv, c_n):
        return None
    p1, p2 = p_conv / p_n, c_conv / c_n
    log_ratio = math.log(p1 / p2)
    half_width = Z95 * math.sqrt((1.0 - p1) / p_conv + (1.0 - p2) / c_conv)
    return [
        round(math.exp(log_ratio - half_width) - 1.0, 3),
        round(math.exp(log_ratio + half_width) - 1.0, 3),
    ]


def _two_proportion_p_value(p_conv: int, p_n: int, c_conv: int, c_n: int) -> float | None:
    if p_n == 0 or c_n == 0:
        return None
    pooled = (p_conv + c_conv) / (p_n + c_n)
    variance = pooled * (1.0 - pooled) * (1.0 / p_n + 1.0 / c_n)
    if variance <= 0.0:  # nobody, or everybody, converted: no difference to test
        return None
    z = (p_conv / p_n - c_conv / c_n) / math.sqrt(variance)
    # Imported here: scipy.stats takes most of a second to import, which the URLconf (and so
    # every shop process) would otherwise pay.
    from scipy.stats import norm

    return round(float(2.0 * norm.sf(abs(z))), 4)
