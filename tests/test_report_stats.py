"""The report's statistics (reports/stats.py) against hand-computed values, published examples,
edge cases and small simulations."""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import pytest
from django.test import override_settings

from personalization.reports import stats
from personalization.reports.stats import (
    bh_adjust,
    difference_interval,
    enough_data,
    format_p,
    lift,
    mean_interval,
    probability_better,
    proportion_interval,
    rate,
    ratio_interval,
    srm,
)

VERDICTS = {"personalization-wins", "control-wins", "no-difference-yet", "not-enough-data"}


def shop(**values):
    """override_settings with these PERSONALIZATION values."""
    return override_settings(PERSONALIZATION={"PRODUCT_MODEL": "testapp.Product", **values})


# Written out from the formulas, independently of the module ----------------------------------
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


def mixture(x1: int, n1: int, x2: int, n2: int, mde: float = 0.20) -> tuple[list[float], float]:
    """The normal-mixture confidence sequence (prior N(0, τ²), τ = log(1 + mde)) on the log
    risk ratio, as [low, high] of the lift rounded outwards, and its always-valid p-value
    1/Λ(0), Λ(θ) = sqrt(V/(V+τ²)) exp(τ²(θ̂−θ)²/(2V(V+τ²)))."""
    theta = math.log((x1 / n1) / (x2 / n2))
    v = 1 / x1 - 1 / n1 + 1 / x2 - 1 / n2
    t2 = math.log(1 + mde) ** 2
    half = math.sqrt(v * (v + t2) / t2 * (2 * math.log(20) + math.log(1 + t2 / v)))
    interval = [
        math.floor((math.exp(theta - half) - 1) * 1000) / 1000,
        math.ceil((math.exp(theta + half) - 1) * 1000) / 1000,
    ]
    big_lambda = math.sqrt(v / (v + t2)) * math.exp(t2 * theta**2 / (2 * v * (v + t2)))
    return interval, round(min(1.0, 1 / big_lambda), 4)


def power_multiplier(alpha: float = 0.05, power: float = 0.8) -> float:
    """k with Φ(k − sqrt((1 + 1/k²)(2 log(1/α) + log(1 + k²)))) = power, by bisection."""
    z_power = statistics.NormalDist().inv_cdf(power)
    low, high = 1.0, 20.0
    for _ in range(200):
        k = (low + high) / 2
        width = math.sqrt((1 + 1 / k**2) * (2 * math.log(1 / alpha) + math.log(1 + k**2)))
        low, high = (k, high) if k - width < z_power else (low, k)
    return (low + high) / 2


def planned_total(baseline: float, mde: float = 0.20, share: float = 0.10) -> float:
    treated = baseline * (1 + mde)
    variance = (math.log(1 + mde) / power_multiplier()) ** 2
    return ((1 - treated) / (treated * (1 - share)) + (1 - baseline) / (baseline * share)) / (
        variance
    )


# Rates ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("converted", "visitors", "expected"),
    [(50, 1000, 5.0), (3, 110, 2.73), (1, 3, 33.33), (2, 3, 66.67), (7, 7, 100.0), (0, 5, 0.0)],
)
def test_rate_is_a_percentage_with_two_decimals(converted, visitors, expected):
    assert rate(converted, visitors) == expected


def test_rate_without_visitors_is_zero():
    assert rate(0, 0) == 0.0


# The shape of lift() ----------------------------------------------------------------------
def test_lift_has_every_field_of_the_api():
    result = lift(50, 1000, 3, 110)
    assert set(result) == {
        "relative",
        "ci95",
        "p_value",
        "verdict",
        "method",
        "fixed_horizon",
        "probability_better",
        "planned_visitors",
        "visitors_needed",
    }
    assert set(result["fixed_horizon"]) == {"ci95", "p_value", "method"}
    assert set(result["planned_visitors"]) == {"personalized", "control"}
    assert result["verdict"] in VERDICTS
    assert all(isinstance(value, float) for value in result["ci95"])
    assert isinstance(result["p_value"], float)
    assert isinstance(result["probability_better"], float)
    assert all(isinstance(value, int) for value in result["planned_visitors"].values())
    assert isinstance(result["visitors_needed"], int)


def test_method_says_always_valid_and_bayesian_in_two_sentences():
    method = lift(1, 10, 1, 10)["method"]
    assert method.count(". ") == 1 and method.endswith(".")
    assert "always valid" in method and "Bayesian" in method
    assert "20% lift" in method and "80% power" in method
    with shop(REPORT_MDE=0.1, REPORT_POWER=0.9):
        assert "10% lift with 90% power" in lift(1, 10, 1, 10)["method"]


def test_fixed_horizon_method_is_one_sentence_naming_the_methods():
    method = lift(1, 10, 1, 10)["fixed_horizon"]["method"]
    assert method.count(".") == 1 and method.endswith(".")
    assert "Katz" in method and "z-test" in method and "pooled" in method


# The single-look view: today's Katz interval and pooled z-test -----------------------------
@pytest.mark.parametrize(
    ("counts", "relative", "ci95", "p_value"),
    [
        ((50, 1000, 3, 110), 0.833, [-0.419, 4.78], 0.2887),  # the contract's example
        ((200, 2000, 150, 2000), 0.333, [0.089, 0.632], 0.0051),  # z = 2.798
        ((150, 2000, 200, 2000), -0.25, [-0.387, -0.082], 0.0051),
        ((388, 9000, 30, 1000), 0.437, [-0.003, 1.071], 0.0494),
    ],
)
def test_fixed_horizon_is_katz_and_the_pooled_z_test(counts, relative, ci95, p_value):
    result = lift(*counts)
    assert result["relative"] == relative
    assert result["fixed_horizon"]["ci95"] == ci95 == katz(*counts)
    assert result["fixed_horizon"]["p_value"] == p_value == pooled_z_test(*counts)


def test_equal_rates_have_no_lift_and_p_values_one():
    result = lift(10, 100, 20, 200)
    assert result["relative"] == 0.0
    assert result["fixed_horizon"]["p_value"] == 1.0
    assert result["p_value"] == 1.0
    for low, high in (result["ci95"], result["fixed_horizon"]["ci95"]):
        assert low < 0 < high


def test_no_control_conversions_leave_lift_and_intervals_undefined():
    result = lift(5, 100, 0, 100)
    assert result["relative"] is None
    assert result["ci95"] is None and result["p_value"] is None
    assert result["fixed_horizon"]["ci95"] is None
    assert result["fixed_horizon"]["p_value"] == pooled_z_test(5, 100, 0, 100) == 0.0235
    assert result["verdict"] == "not-enough-data"


def test_no_personalized_conversions_give_minus_one_without_interval():
    result = lift(0, 100, 5, 100)
    assert result["relative"] == -1.0
    assert result["ci95"] is None and result["fixed_horizon"]["ci95"] is None
    assert result["fixed_horizon"]["p_value"] == 0.0235


def test_nobody_converting_leaves_everything_undefined():
    result = lift(0, 100, 0, 100)
    assert (result["relative"], result["ci95"], result["p_value"]) == (None, None, None)
    assert result["fixed_horizon"]["p_value"] is None


def test_empty_groups_leave_everything_undefined():
    empty = lift(0, 0, 0, 0)
    assert (empty["relative"], empty["ci95"], empty["p_value"]) == (None, None, None)
    assert empty["probability_better"] is None
    assert empty["verdict"] == "not-enough-data"
    assert lift(0, 0, 3, 10)["relative"] is None
    assert lift(3, 10, 0, 0)["relative"] is None
    assert lift(3, 10, 0, 0)["fixed_horizon"]["p_value"] is None


def test_everybody_converting_has_a_point_interval_and_no_p_value():
    result = lift(10, 10, 5, 5)
    assert result["relative"] == 0.0
    assert result["ci95"] == result["fixed_horizon"]["ci95"] == [0.0, 0.0]
    assert result["p_value"] is None and result["fixed_horizon"]["p_value"] is None


@pytest.mark.parametrize("counts", [(11, 10, 1, 10), (1, 10, -1, 10), (1, -10, 1, 10)])
def test_impossible_counts_are_refused(counts):
    with pytest.raises(ValueError, match="Impossible counts"):
        lift(*counts)


# The always-valid interval and p-value ----------------------------------------------------
@pytest.mark.parametrize(
    "counts",
    [(50, 1000, 3, 110), (200, 2000, 150, 2000), (150, 2000, 200, 2000), (3300, 90000, 250, 10000)],
)
def test_ci95_and_p_value_are_the_normal_mixture_confidence_sequence(counts):
    interval, p_value = mixture(*counts)
    result = lift(*counts)
    assert result["ci95"] == interval
    assert result["p_value"] == p_value


def test_the_always_valid_interval_is_wider_than_the_single_look_one():
    # 10% against 7.5% of 2,000 each: significant at one look, not yet always-valid.
    result = lift(200, 2000, 150, 2000)
    assert result["ci95"] == [-0.035, 0.842]
    assert result["p_value"] == 0.1076
    low, high = result["ci95"]
    fixed_low, fixed_high = result["fixed_horizon"]["ci95"]
    assert low < fixed_low and high > fixed_high
    assert result["p_value"] > result["fixed_horizon"]["p_value"]


def test_the_mixture_follows_the_mde_setting():
    with shop(REPORT_MDE=0.5):
        assert lift(200, 2000, 150, 2000)["ci95"] == mixture(200, 2000, 150, 2000, 0.5)[0]


def test_the_contracts_problem_case_is_no_win():
    # Shown as "+43.7%, 95% CI −0.3% to +107.1%, p = 0.049" and called a win before.
    result = lift(388, 9000, 30, 1000)
    assert result["fixed_horizon"]["p_value"] < 0.05
    assert result["fixed_horizon"]["ci95"][0] < 0
    assert result["verdict"] != "personalization-wins"
    assert result["ci95"][0] < 0 < result["ci95"][1]
    assert result["p_value"] > 0.05
    # Even with the planned sample reached, the interval includes no difference.
    with shop(REPORT_MDE=3.0):
        reached = lift(388, 9000, 30, 1000)
        assert stats.enough_data(9000, 388, 1000, 30)
        assert reached["verdict"] == "no-difference-yet"


def grid():
    for p_n in (300, 2000, 20000):
        for c_n in (40, 300, 3000):
            for p_rate in (0.01, 0.05, 0.2):
                for c_rate in (0.01, 0.04, 0.06, 0.2):
                    yield round(p_rate * p_n), p_n, round(c_rate * c_n), c_n


def test_the_verdict_never_contradicts_ci95_nor_the_p_value():
    seen = set()
    with shop(REPORT_MDE=1.0, REPORT_MIN_VISITORS=0, REPORT_MIN_CONVERSIONS=0):
        for counts in grid():
            result = lift(*counts)
            verdict, interval = result["verdict"], result["ci95"]
            seen.add(verdict)
            if verdict == "not-enough-data":
                assert interval is None or not stats.enough_data(
                    counts[1], counts[0], counts[3], counts[2]
                )
                continue
            low, high = interval
            assert verdict == (
                "personalization-wins"
                if low > 0
                else "control-wins"
                if high < 0
                else "no-difference-yet"
            )
            if verdict != "no-difference-yet":
                assert result["p_value"] < 0.05
    assert seen == VERDICTS


def test_p_value_below_005_exactly_when_ci95_excludes_no_difference():
    checked = 0
    for counts in grid():
        result = lift(*counts)
        if result["ci95"] is None or result["p_value"] is None:
            continue
        low, high = result["ci95"]
        # Outward rounding of the interval may only keep 0 inside near the boundary.
        if low > 0 or high < 0:
            assert result["p_value"] < 0.05
        elif result["p_value"] < 0.049:
            pytest.fail(f"{counts}: p = {result['p_value']} but {result['ci95']} holds 0")
        checked += 1
    assert checked > 50


def test_lift_arrays_agrees_exactly_with_lift():
    counts = [*grid(), (0, 0, 0, 0), (5, 100, 0, 100), (10, 10, 5, 5), (0, 100, 5, 100)]
    with shop(REPORT_MDE=1.0, REPORT_MIN_VISITORS=0):
        settings = stats.plan()
        columns = [np.array(column) for column in zip(*counts, strict=True)]
        core = stats.lift_arrays(*columns, settings)
        for i, row in enumerate(counts):
            result = lift(*row)

            def value(key, i=i):
                number = float(core[key][i])
                return None if math.isnan(number) else number

            assert result["relative"] == value("relative")
            assert result["p_value"] == value("p_value")
            assert result["fixed_horizon"]["p_value"] == value("fixed_p_value")
            interval = None if value("low") is None else [value("low"), value("high")]
            assert result["ci95"] == interval
            fixed = (
                None if value("fixed_low") is None else [value("fixed_low"), value("fixed_high")]
            )
            assert result["fixed_horizon"]["ci95"] == fixed
            assert result["verdict"] == stats.VERDICTS[core["verdict"][i]]


# The planned sample ----------------------------------------------------------------------
def test_the_power_multiplier_solves_the_power_equation():
    assert stats._power_multiplier(0.05, 0.8) == pytest.approx(power_multiplier(), abs=1e-9)
    assert 3.85 < power_multiplier() < 3.95  # 2.80 for a single look


def test_planned_visitors_follow_the_power_formula():
    with shop(REPORT_BASELINE_RATE=0.03):
        planned = lift(0, 0, 0, 0)["planned_visitors"]
    total = planned_total(0.03)
    assert planned == {"personalized": math.ceil(0.9 * total), "control": math.ceil(0.1 * total)}
    # Sanity: at a 3% baseline, +20% with a 10% holdout needs about 160,000 visitors.
    assert 150_000 < planned["personalized"] + planned["control"] < 170_000


def test_a_smaller_mde_needs_more_visitors():
    with shop(REPORT_BASELINE_RATE=0.03, REPORT_MDE=0.1):
        small = lift(0, 0, 0, 0)["planned_visitors"]["control"]
    with shop(REPORT_BASELINE_RATE=0.03):
        assert small > 3.5 * lift(0, 0, 0, 0)["planned_visitors"]["control"]


def test_the_baseline_is_the_pooled_rate_not_one_groups():
    lucky_control = lift(180, 9000, 120, 1000)["planned_visitors"]
    unlucky_control = lift(290, 9000, 10, 1000)["planned_visitors"]
    assert lucky_control == unlucky_control  # both pool 300 of 10,000 visitors
    with shop(REPORT_BASELINE_RATE=0.03):
        assert lift(0, 0, 0, 0)["planned_visitors"] == lucky_control


def test_without_conversions_the_default_baseline_plans():
    with shop(REPORT_BASELINE_RATE=stats.DEFAULT_BASELINE_RATE):
        expected = lift(0, 0, 0, 0)["planned_visitors"]
    result = lift(0, 500, 0, 50)
    assert result["planned_visitors"] == expected
    assert result["visitors_needed"] > 0


def test_the_verdict_waits_for_the_planned_sample_of_both_groups():
    with shop(REPORT_BASELINE_RATE=0.05):
        planned = lift(0, 0, 0, 0)["planned_visitors"]
        p_n, c_n = planned["personalized"], planned["control"]
        # A clear lift: 8% against 5%.
        reached = lift(round(0.08 * p_n), p_n, round(0.05 * c_n), c_n)
        assert reached["verdict"] == "personalization-wins"
        assert reached["visitors_needed"] == 0
        assert reached["ci95"][0] > 0
        short = lift(round(0.08 * p_n), p_n, round(0.05 * (c_n - 1)), c_n - 1)
        assert short["verdict"] == "not-enough-data"
        assert short["ci95"][0] > 0  # the interval alone would have said so
        assert short["visitors_needed"] > 0
        assert lift(round(0.08 * (p_n - 1)), p_n - 1, round(0.05 * c_n), c_n)["verdict"] == (
            "not-enough-data"
        )
        assert stats.enough_data(p_n, 3, c_n, 2) is True
        assert stats.enough_data(p_n, 3, c_n - 1, 2) is False


def test_visitors_needed_at_the_current_split():
    with shop(REPORT_BASELINE_RATE=0.05):
        planned = lift(0, 0, 0, 0)["planned_visitors"]
        p_goal, c_goal = planned["personalized"], planned["control"]
        # Control at 20% of visitors so far: the personalized group is the one to fill.
        needed = lift(40, 800, 10, 200)["visitors_needed"]
        assert needed == math.ceil(max((p_goal - 800) / 0.8, (c_goal - 200) / 0.2))
        # At the configured 10% with no visitors yet: the whole plan.
        assert lift(0, 0, 0, 0)["visitors_needed"] == math.ceil(
            max(p_goal / 0.9, c_goal / 0.1) - 1e-9
        )


def test_no_control_group_leaves_the_plan_unknown():
    with shop(CONTROL_GROUP_PERCENT=0):
        result = lift(40, 800, 0, 0)
        assert result["planned_visitors"] == {"personalized": None, "control": None}
        assert result["visitors_needed"] is None
        assert result["verdict"] == "not-enough-data"


def test_the_minimums_stay_floors_under_the_plan():
    with shop(REPORT_BASELINE_RATE=0.5, REPORT_MDE=3.0, REPORT_MIN_VISITORS=100):
        planned = lift(0, 0, 0, 0)["planned_visitors"]
        assert planned == {"personalized": 100, "control": 100}
        assert enough_data(100, 50, 100, 50) is True
        assert enough_data(99, 50, 100, 50) is False
        assert enough_data(100, 50, 99, 50) is False


def test_the_conversions_floor_counts_both_groups_together():
    # A floor on one group's conversions admits the runs where that group was lucky.
    with shop(REPORT_BASELINE_RATE=0.5, REPORT_MDE=3.0, REPORT_MIN_CONVERSIONS=5):
        assert enough_data(100, 3, 100, 2) is True
        assert enough_data(100, 4, 100, 0) is False
        assert enough_data(100, 0, 100, 5) is True
        assert lift(4, 100, 0, 100)["visitors_needed"] == math.ceil(1 / 0.5)


@pytest.mark.parametrize(
    "values", [{"REPORT_MDE": 0}, {"REPORT_POWER": 1.0}, {"REPORT_BASELINE_RATE": 1.5}]
)
def test_impossible_plans_are_refused(values):
    with shop(**values), pytest.raises(ValueError, match="REPORT_"):
        lift(1, 10, 1, 10)


# Peeking, simulated --------------------------------------------------------------------------
def test_daily_peeking_stays_near_5_percent_with_the_always_valid_p_value():
    """A/A: 400 experiments of 30 days, 1,500 visitors a day, 10% control, 5% conversion,
    read every day: the single-look p-value is ever significant in about a quarter of them,
    the always-valid one in at most about 5%."""
    rng = np.random.default_rng(20261130)
    runs, days = 400, 30
    control = rng.binomial(1500, 0.1, size=(runs, days))
    personalized = 1500 - control
    cumulative = [
        np.cumsum(counts, axis=1)
        for counts in (
            rng.binomial(personalized, 0.05),
            personalized,
            rng.binomial(control, 0.05),
            control,
        )
    ]
    with shop(REPORT_MIN_VISITORS=0):
        core = stats.lift_arrays(*cumulative, stats.plan())
    with np.errstate(invalid="ignore"):
        fixed_once = np.mean(core["fixed_p_value"][:, -1] < 0.05)
        fixed_peeking = np.mean(np.any(core["fixed_p_value"] < 0.05, axis=1))
        valid_peeking = np.mean(np.any(core["p_value"] < 0.05, axis=1))
    assert 0.02 <= fixed_once <= 0.08
    assert fixed_peeking > 0.15
    assert valid_peeking <= 0.06
    false_winners = np.isin(core["verdict"], [2, 3]).any(axis=1).mean()
    assert false_winners <= valid_peeking


# Bayesian probability ----------------------------------------------------------------------
def exact_probability_better(x1: int, n1: int, x2: int, n2: int) -> float:
    """P(r₁ > r₂) for Beta(1 + x, 1 + n − x) posteriors, Evan Miller's closed form:
    Σ_{i<α₁} B(α₂ + i, β₁ + β₂) / ((β₁ + i) B(1 + i, β₁) B(α₂, β₂))."""
    a1, b1, a2, b2 = x1 + 1, n1 - x1 + 1, x2 + 1, n2 - x2 + 1

    def log_beta(a, b):
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    return sum(
        math.exp(
            log_beta(a2 + i, b1 + b2) - math.log(b1 + i) - log_beta(1 + i, b1) - log_beta(a2, b2)
        )
        for i in range(a1)
    )


@pytest.mark.parametrize(
    "counts",
    [
        (50, 1000, 3, 110),
        (3, 110, 50, 1000),
        (0, 10, 0, 10),
        (1, 2, 0, 1),
        (200, 2000, 150, 2000),
        (388, 9000, 30, 1000),
        (2700, 90000, 300, 10000),
        (0, 5000, 3, 400),
    ],
)
def test_probability_better_is_the_exact_posterior_probability(counts):
    assert probability_better(*counts) == round(exact_probability_better(*counts), 3)
    assert lift(*counts)["probability_better"] == probability_better(*counts)


def test_probability_better_is_symmetric_and_a_half_for_equal_data():
    assert probability_better(30, 1000, 30, 1000) == 0.5
    assert probability_better(50, 1000, 3, 110) + probability_better(3, 110, 50, 1000) == 1.0


# Sample ratio mismatch -------------------------------------------------------------------
def test_srm_flags_a_control_share_of_5_percent_for_10():
    result = srm(9500, 500)
    assert result == {
        "expected_control_share": 0.1,
        "observed_control_share": 0.05,
        "p_value": 0.0,
        "ok": False,
    }


def test_srm_accepts_the_planned_share():
    result = srm(9000, 1000)
    assert (result["p_value"], result["ok"], result["observed_control_share"]) == (1.0, True, 0.1)


@pytest.mark.parametrize(("control", "p_value", "ok"), [(900, 0.0009, False), (950, 0.0956, True)])
def test_srm_is_the_chi_square_test_with_one_degree_of_freedom(control, p_value, ok):
    personalized = 10000 - control
    chi2 = (control - 1000) ** 2 / 1000 + (personalized - 9000) ** 2 / 9000
    assert round(math.erfc(math.sqrt(chi2 / 2)), 4) == p_value
    assert srm(personalized, control) == {
        "expected_control_share": 0.1,
        "observed_control_share": round(control / 10000, 4),
        "p_value": p_value,
        "ok": ok,
    }


def test_srm_follows_the_setting_and_the_argument():
    with shop(CONTROL_GROUP_PERCENT=50):
        assert srm(5000, 5000)["ok"] is True
        assert srm(9000, 1000)["ok"] is False
        assert srm(9000, 1000, expected_control_share=0.1)["ok"] is True


def test_srm_without_visitors_is_ok():
    assert srm(0, 0) == {
        "expected_control_share": 0.1,
        "observed_control_share": None,
        "p_value": None,
        "ok": True,
    }


# Breakdown rows -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("converted", "visitors", "expected"),
    # Newcombe (1998), Stat. Med. 17:857–872, Table I, method 3 (Wilson score).
    [
        (81, 263, [25.53, 36.62]),
        (15, 148, [6.24, 16.05]),
        (0, 20, [0.0, 16.11]),
        (1, 29, [0.61, 17.18]),
    ],
)
def test_proportion_interval_is_wilsons(converted, visitors, expected):
    assert proportion_interval(converted, visitors) == expected


def test_proportion_interval_without_visitors_is_none():
    assert proportion_interval(0, 0) is None


@pytest.mark.parametrize(
    ("counts", "expected"),
    # Newcombe (1998), Stat. Med. 17:873–890, Table II, method 10 (hybrid score).
    [
        ((56, 70, 48, 80), [5.24, 33.39]),
        ((9, 10, 3, 10), [17.05, 80.9]),
        ((6, 7, 2, 7), [5.82, 80.62]),
        ((5, 56, 0, 29), [-3.81, 19.26]),
        ((0, 10, 0, 20), [-16.11, 27.75]),
        ((10, 10, 0, 20), [67.91, 100.0]),
    ],
)
def test_difference_interval_is_newcombes_hybrid_score(counts, expected):
    assert difference_interval(*counts) == expected


def test_difference_interval_widens_with_a_smaller_alpha_and_needs_both_groups():
    low, high = difference_interval(56, 70, 48, 80)
    wide_low, wide_high = difference_interval(56, 70, 48, 80, alpha=0.005)
    assert wide_low < low and wide_high > high
    assert difference_interval(5, 10, 0, 0) is None


def test_bh_adjust_against_a_hand_worked_example():
    # Sorted 0.01, 0.04, 0.045, 0.2 of m = 4: p·m/rank = 0.04, 0.08, 0.06, 0.2; running
    # minimum from the largest: 0.2, 0.06, 0.06, 0.04.
    assert bh_adjust([0.045, None, 0.2, 0.01, 0.04]) == [0.06, None, 0.2, 0.04, 0.06]


def test_bh_adjust_edges():
    assert bh_adjust([]) == []
    assert bh_adjust([None, None]) == [None, None]
    assert bh_adjust([0.03]) == [0.03]
    assert bh_adjust([0.5, 0.9, 0.8]) == [0.9, 0.9, 0.9]
    with pytest.raises(ValueError):
        bh_adjust([0.5, 1.5])


def test_bh_adjust_of_ten_p_values():
    # p·m/rank: 0.01, 0.04, 0.13, 0.1025, 0.084, 0.1, 0.10571, 0.25625, 0.23556, 0.216.
    p_values = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    expected = [0.01, 0.04, 0.084, 0.084, 0.084, 0.1, 0.1057, 0.216, 0.216, 0.216]
    assert bh_adjust(p_values) == expected
    assert bh_adjust(p_values[::-1]) == expected[::-1]


# Revenue -----------------------------------------------------------------------------------
REVENUE = [0, 0, 0, 25.5, 0, 80, 0, 0, 12, 0, 140.25, 0, 0, 0, 60, 0, 33, 0, 0, 0]
ORDERS = [0, 0, 0, 1, 0, 2, 0, 0, 1, 0, 3, 0, 0, 0, 1, 0, 1, 0, 0, 0]


def test_mean_interval_is_the_normal_interval_with_the_sample_variance():
    n = len(REVENUE)
    mean, sd = statistics.fmean(REVENUE), statistics.stdev(REVENUE)
    low, high = mean_interval(n, sum(REVENUE), sum(v * v for v in REVENUE))
    assert low == pytest.approx(mean - 1.959964 * sd / math.sqrt(n))
    assert high == pytest.approx(mean + 1.959964 * sd / math.sqrt(n))
    assert mean_interval(1, 5.0, 25.0) is None


def test_ratio_interval_is_the_delta_method():
    n = len(REVENUE)
    ratio = sum(REVENUE) / sum(ORDERS)
    # The linearised per-visitor values (y − R x) / x̄ have the ratio's delta-method variance.
    linear = [
        (y - ratio * x) / statistics.fmean(ORDERS) for x, y in zip(ORDERS, REVENUE, strict=True)
    ]
    half = 1.959964 * statistics.stdev(linear) / math.sqrt(n)
    low, high = ratio_interval(
        n,
        sum(REVENUE),
        sum(ORDERS),
        sum(y * y for y in REVENUE),
        sum(x * x for x in ORDERS),
        sum(x * y for x, y in zip(ORDERS, REVENUE, strict=True)),
    )
    assert (low, high) == pytest.approx((ratio - half, ratio + half))
    assert ratio_interval(n, 10.0, 0.0, 100.0, 0.0, 0.0) is None


def test_ratio_interval_over_a_constant_denominator_is_the_mean_interval():
    n = len(REVENUE)
    squares = sum(v * v for v in REVENUE)
    ratio = ratio_interval(n, sum(REVENUE), n, squares, n, sum(REVENUE))
    assert ratio == pytest.approx(mean_interval(n, sum(REVENUE), squares))


def test_ratio_interval_covers_the_true_average_order_value():
    """1,000 samples of 2,000 visitors, 5% of them ordering 1–3 times at a mean of 50 an
    order: the 95% interval of revenue per order holds 50 about 95% of the time."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(1000):
        orders = rng.binomial(1, 0.05, 2000) * rng.integers(1, 4, 2000)
        revenue = np.array([rng.exponential(50, k).sum() for k in orders])
        low, high = ratio_interval(
            2000,
            revenue.sum(),
            orders.sum(),
            (revenue**2).sum(),
            (orders**2).sum(),
            (orders * revenue).sum(),
        )
        covered += low <= 50 <= high
    assert 0.93 <= covered / 1000 <= 0.97


# Display ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0, "p < 0.001"),
        (0.0009, "p < 0.001"),
        (0.001, "p = 0.001"),
        (0.049, "p = 0.049"),
        (0.0494, "p = 0.049"),
        (0.0496, "p = 0.0496"),  # never "p = 0.05" for a p-value below 0.05
        (0.05, "p = 0.05"),
        (0.2887, "p = 0.289"),
        (1.0, "p = 1"),
        (None, ""),
    ],
)
def test_format_p(p, text):
    assert format_p(p) == text
    assert "= <" not in format_p(p)


# Speed -------------------------------------------------------------------------------------------
def test_each_call_is_well_under_a_millisecond():
    lift(3300, 90000, 250, 10000)  # imports numpy and scipy once

    def median_seconds(func, *args):
        timings = []
        for _ in range(30):
            started = time.perf_counter()
            func(*args)
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)

    assert median_seconds(lift, 3300, 90000, 250, 10000) < 0.001
    assert median_seconds(difference_interval, 3300, 90000, 250, 10000) < 0.0001


# The normal distribution from the standard library --------------------------------------------
def test_normal_sf_is_scipys_to_1e_12():
    from scipy.stats import norm

    for z in [*np.linspace(-12.0, 12.0, 4801), 20.0, 37.0, -37.0]:
        ours, theirs = stats.normal_sf(float(z)), float(norm.sf(z))
        assert abs(ours - theirs) <= 1e-12
        assert math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-300), z
    assert stats.normal_sf(0.0) == 0.5
    assert stats.normal_sf(1.959963984540054) == pytest.approx(0.025, abs=1e-15)


def test_the_vectorised_erfc_is_scipys_and_keeps_nan():
    from scipy.special import erfc

    values = np.concatenate([np.linspace(-6.0, 27.0, 3301), [np.inf, -np.inf]])
    ours, theirs = stats._erfc(values), erfc(values)
    assert ours.dtype == np.float64 and ours.shape == values.shape
    assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-300)
    grid = np.array([[0.5, np.nan], [np.nan, 2.0]])
    assert np.array_equal(np.isnan(stats._erfc(grid)), np.isnan(grid))
    assert float(stats._erfc(np.float64(1.0))) == math.erfc(1.0)


@pytest.mark.parametrize("counts", [(50, 1000, 3, 110), (3300, 90000, 250, 10000), (7, 9, 1, 8)])
def test_the_single_look_p_values_are_the_two_sided_normal_tail(counts):
    from scipy.stats import norm

    x1, n1, x2, n2 = counts
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    expected = round(float(2 * norm.sf(abs(z))), 4)
    assert stats.two_proportion_p_value(*counts) == expected
    assert lift(*counts)["fixed_horizon"]["p_value"] == expected


def test_the_request_path_and_the_report_never_import_scipy_stats():
    """Importing the middleware and every report module, and computing a report's statistics,
    leaves scipy.stats (a slow import, and large) unloaded."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    program = """
import importlib, pkgutil, sys
import django
django.setup()
import personalization.middleware
import personalization.api.reports
import personalization.admin.report
import personalization.reports
for module in pkgutil.iter_modules(personalization.reports.__path__):
    importlib.import_module("personalization.reports." + module.name)
from personalization.reports import stats
stats.lift(50, 1000, 3, 110)
stats.srm(1000, 110)
stats.two_proportion_p_value(50, 1000, 3, 110)
print(sorted(name for name in sys.modules if name.startswith("personalization.reports.")))
assert "scipy.stats" not in sys.modules, "scipy.stats was imported"
"""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=root,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "personalization.reports.views" in done.stdout
    assert "personalization.reports.stats" in done.stdout
