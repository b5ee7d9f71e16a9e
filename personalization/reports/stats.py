"""Statistics of the report: conversion rates, the lift over control, its interval and verdict.

The headline lift is read as often as staff like, so its interval and p-value are *always
valid*: a confidence sequence, not a single-look interval. With the estimated log risk ratio
``θ̂ = log(p̂₁ / p̂₂)`` and its variance ``V = 1/x₁ − 1/n₁ + 1/x₂ − 1/n₂`` (Katz), the
normal-mixture martingale with mixing distribution ``N(0, τ²)`` on ``θ`` (Robbins 1970;
Howard, Ramdas, McAuliffe & Sekhon 2021, *Ann. Statist.* 49(2), the normal mixture boundary;
the mSPRT of Johari, Koomen, Pekelis & Walsh 2017/2022, *Oper. Res.* 70(3)) is::

    Λ(θ) = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ)² / (2 V (V + τ²)))

and Ville's inequality bounds by α the chance that ``Λ(θ_true)`` ever reaches ``1/α``. So

- the always-valid p-value is ``min(1, 1 / Λ(0))``;
- the 95% confidence sequence is ``{θ : Λ(θ) < 1/α}``, that is
  ``θ̂ ± sqrt(V (V + τ²) / τ² · (2 log(1/α) + log(1 + τ²/V)))``, reported as ``exp(·) − 1``
  and rounded outwards;

and they agree: the interval excludes no difference exactly when the p-value is below α. The
plug-in variance makes this an asymptotic confidence sequence (Waudby-Smith, Arnold, Wu,
Howard & Ramdas, *Time-uniform central limit theory and asymptotic confidence sequences*,
Ann. Statist. 2024); ``benchmarks/bench_calibration.py`` measures its error rates by
simulation. ``τ = log(1 + REPORT_MDE)``, fixed in advance: the boundary is then close to its
narrowest at the planned sample size (the optimum is ``τ² ≈ 8 V``, here ``τ² ≈ 15 V``, 1%
wider).

The verdict waits for the *planned sample*: the visitors each group needs for the always-valid
interval to exclude no difference with probability ``REPORT_POWER`` when the true lift is
``REPORT_MDE``, at the baseline rate (``REPORT_BASELINE_RATE``, or the pooled rate of both
groups) and the configured control share. Any stopping rule keeps a confidence sequence
valid, so this gate costs no error rate; it keeps early, noisy differences from being called.

The single-look view (Katz interval, pooled z-test) stays available as ``fixed_horizon``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from ..conf import app_settings

# The 95% quantile the Katz interval is usually quoted with (the single-look view).
Z95 = 1.96
# The level of every "95%" interval here.
ALPHA = 0.05
# The baseline conversion rate the planned sample assumes while nobody has converted yet and
# REPORT_BASELINE_RATE is not set: a typical shop's.
DEFAULT_BASELINE_RATE = 0.02

PERSONALIZATION_WINS = "personalization-wins"
CONTROL_WINS = "control-wins"
NO_DIFFERENCE_YET = "no-difference-yet"
NOT_ENOUGH_DATA = "not-enough-data"
# The verdicts, indexed by the codes lift_arrays() returns.
VERDICTS = (NOT_ENOUGH_DATA, NO_DIFFERENCE_YET, PERSONALIZATION_WINS, CONTROL_WINS)

FIXED_HORIZON_METHOD = (
    "Single look: the 95% interval is the Katz log interval of the ratio of the conversion "
    "rates and the p-value comes from a two-sided two-proportion z-test with pooled variance, "
    "both valid only when read once, at a sample size fixed in advance."
)


def rate(converted: int, visitors: int) -> float:
    """Conversion rate in percent, rounded to 2 decimals; 0.0 without visitors."""
    if visitors <= 0:
        return 0.0
    return round(100.0 * converted / visitors, 2)


# The headline lift ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What the lift's interval and verdict depend on besides the counts."""

    mde: float = 0.20
    power: float = 0.80
    control_share: float = 0.10
    baseline_rate: float | None = None
    min_visitors: int = 0
    min_conversions: int = 0
    alpha: float = ALPHA

    @property
    def tau2(self) -> float:
        """The variance of the normal mixture over the log risk ratio."""
        return math.log1p(self.mde) ** 2


def plan() -> Plan:
    """The Plan of the current settings."""
    mde = float(app_settings.REPORT_MDE)
    power = float(app_settings.REPORT_POWER)
    baseline = app_settings.REPORT_BASELINE_RATE
    if not mde > 0:
        raise ValueError(f"REPORT_MDE must be above 0, not {mde!r}.")
    if not 0 < power < 1:
        raise ValueError(f"REPORT_POWER must lie between 0 and 1, not {power!r}.")
    if baseline is not None and not 0 < float(baseline) < 1:
        raise ValueError(f"REPORT_BASELINE_RATE must be None or between 0 and 1: {baseline!r}.")
    return Plan(
        mde=mde,
        power=power,
        control_share=float(app_settings.CONTROL_GROUP_PERCENT) / 100.0,
        baseline_rate=None if baseline is None else float(baseline),
        min_visitors=int(app_settings.REPORT_MIN_VISITORS),
        min_conversions=int(app_settings.REPORT_MIN_CONVERSIONS),
    )


def lift(p_conv: int, p_n: int, c_conv: int, c_n: int) -> dict[str, Any]:
    """The personalized group's lift over control from converted visitors and visitors
    (cumulative counts of the period: personalized, then control).

    - ``relative``: p_rate / c_rate − 1 (3 decimals); None when a group is empty or control
      has no conversion.
    - ``ci95``: [low, high] of the relative lift, an always-valid 95% confidence sequence (see
      the module's docstring), rounded outwards to 3 decimals; None when a group has no
      conversion.
    - ``p_value``: the matching always-valid p-value (4 decimals): below 0.05 exactly when
      ``ci95`` excludes 0 (before rounding). None when undefined.
    - ``verdict``: ``not-enough-data`` until both groups reach their planned sample (and the
      REPORT_MIN_VISITORS / REPORT_MIN_CONVERSIONS floors) with an interval; then
      ``personalization-wins`` when ``ci95`` lies above 0, ``control-wins`` below 0, else
      ``no-difference-yet``.
    - ``method``: two sentences for the page.
    - ``fixed_horizon``: the single-look view: Katz ``ci95`` and pooled z-test ``p_value``.
    - ``probability_better``: Bayesian posterior probability that personalization's rate
      exceeds control's, under uniform Beta(1, 1) priors (3 decimals); None when a group is
      empty.
    - ``planned_visitors``: {"personalized": int, "control": int}, the planned sample of each
      group at CONTROL_GROUP_PERCENT; None values without a control group to plan for.
    - ``visitors_needed``: more visitors, both groups together at the current split, until
      the planned sample and the floors are reached; 0 once reached, None when unknown.
    """
    for converted, visitors in ((p_conv, p_n), (c_conv, c_n)):
        _check_counts(converted, visitors)
    settings = plan()
    core = lift_arrays(p_conv, p_n, c_conv, c_n, settings)
    planned = planned_visitors(p_conv, p_n, c_conv, c_n, settings)
    return {
        "relative": _scalar(core["relative"]),
        "ci95": _pair(core["low"], core["high"]),
        "p_value": _scalar(core["p_value"]),
        "verdict": VERDICTS[int(core["verdict"])],
        "method": method(settings),
        "fixed_horizon": {
            "ci95": _pair(core["fixed_low"], core["fixed_high"]),
            "p_value": _scalar(core["fixed_p_value"]),
            "method": FIXED_HORIZON_METHOD,
        },
        "probability_better": probability_better(p_conv, p_n, c_conv, c_n),
        "planned_visitors": planned,
        "visitors_needed": visitors_needed(p_conv, p_n, c_conv, c_n, settings),
    }


def method(settings: Plan | None = None) -> str:
    """The help text of the lift: which method, what "always valid" means."""
    settings = settings or plan()
    return (
        "The 95% interval and p-value of the lift are always valid (a normal-mixture "
        "confidence sequence on the ratio of the conversion rates): they stay right however "
        "often the report is read, so stopping at the first significant day is wrong at most 5% "
        "of the time when there is no real difference. The verdict waits until both groups "
        f"reach the sample planned to detect a {settings.mde:.0%} lift with {settings.power:.0%} "
        "power, and the probability that personalization is better is Bayesian, from uniform "
        "priors."
    )


def lift_arrays(p_conv: Any, p_n: Any, c_conv: Any, c_n: Any, settings: Plan) -> dict[str, Any]:
    """The vectorised core of :func:`lift`, over numpy arrays of counts (any broadcastable
    shapes): ``relative``, ``low``, ``high``, ``p_value`` (always valid), ``fixed_low``,
    ``fixed_high``, ``fixed_p_value`` (single look), rounded as lift() reports them, NaN where
    lift() says None; ``enough`` (planned sample and floors reached) and ``verdict``, codes
    into :data:`VERDICTS`. lift() is this function applied to one set of counts."""
    import numpy as np

    x1, n1, x2, n2 = (np.asarray(value, dtype=float) for value in (p_conv, p_n, c_conv, c_n))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = x1 / n1, x2 / n2
        has_rates = (n1 > 0) & (n2 > 0)
        relative = np.where(has_rates & (x2 > 0), np.round(r1 / r2 - 1.0, 3), np.nan)
        defined = has_rates & (x1 > 0) & (x2 > 0)
        log_ratio = np.where(defined, np.log(r1 / r2), np.nan)
        variance = np.where(defined, np.maximum(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2, 0.0), np.nan)
        positive = variance > 0

        # Always valid: the normal-mixture confidence sequence and its p-value.
        tau2 = settings.tau2
        log_inv_alpha = math.log(1.0 / settings.alpha)
        spread = variance * (variance + tau2) / tau2
        half = np.where(
            positive, np.sqrt(spread * (2 * log_inv_alpha + np.log1p(tau2 / variance))), 0.0
        )
        low = np.floor((np.exp(log_ratio - half) - 1.0) * 1000.0) / 1000.0
        high = np.ceil((np.exp(log_ratio + half) - 1.0) * 1000.0) / 1000.0
        log_lambda = 0.5 * np.log(variance / (variance + tau2)) + log_ratio**2 / (2 * spread)
        p_value = np.where(positive, np.round(np.minimum(1.0, np.exp(-log_lambda)), 4), np.nan)

        # Single look: Katz interval, pooled z-test.
        katz = Z95 * np.sqrt(variance)
        fixed_low = np.round(np.exp(log_ratio - katz) - 1.0, 3)
        fixed_high = np.round(np.exp(log_ratio + katz) - 1.0, 3)
        pooled = (x1 + x2) / (n1 + n2)
        pooled_variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
        tested = has_rates & (pooled_variance > 0)
        z = (r1 - r2) / np.sqrt(pooled_variance)
        fixed_p = np.where(tested, np.round(_erfc(np.abs(z) / math.sqrt(2.0)), 4), np.nan)

    enough = _enough(x1, n1, x2, n2, settings) & defined
    # Codes into VERDICTS: not enough data, else wins above 0, loses below 0, else neither.
    verdict = np.select([~enough, low > 0, high < 0], [0, 2, 3], default=1)
    return {
        "relative": relative,
        "low": low,
        "high": high,
        "p_value": p_value,
        "fixed_low": fixed_low,
        "fixed_high": fixed_high,
        "fixed_p_value": fixed_p,
        "enough": enough,
        "verdict": verdict,
    }


def enough_data(p_n: int, p_conv: int, c_n: int, c_conv: int) -> bool:
    """Whether the planned sample is reached: both groups have their planned visitors and at
    least REPORT_MIN_VISITORS each, and both groups together REPORT_MIN_CONVERSIONS converted
    visitors. (Note the order: visitors before converted visitors.)"""
    _check_counts(p_conv, p_n)
    _check_counts(c_conv, c_n)
    return bool(_enough(p_conv, p_n, c_conv, c_n, plan()))


def planned_visitors(
    p_conv: int, p_n: int, c_conv: int, c_n: int, settings: Plan | None = None
) -> dict[str, int | None]:
    """The planned sample of each group, at least REPORT_MIN_VISITORS; None values when the
    control share leaves a group empty."""
    settings = settings or plan()
    personalized, control = _planned(p_conv, p_n, c_conv, c_n, settings)
    if math.isnan(personalized):
        return {"personalized": None, "control": None}
    return {"personalized": int(personalized), "control": int(control)}


def visitors_needed(
    p_conv: int, p_n: int, c_conv: int, c_n: int, settings: Plan | None = None
) -> int | None:
    """More visitors (both groups together) until the planned sample and the floors are
    reached, if they keep arriving at the current split (the configured one while a group is
    empty); 0 once reached, None when no control share allows it."""
    settings = settings or plan()
    personalized, control = _planned(p_conv, p_n, c_conv, c_n, settings)
    if math.isnan(personalized):
        return None
    share = c_n / (p_n + c_n) if p_n and c_n else settings.control_share
    needed: float = max(0.0, (personalized - p_n) / (1.0 - share), (control - c_n) / share)
    missing_conversions = settings.min_conversions - (p_conv + c_conv)
    if missing_conversions > 0:
        needed = max(needed, missing_conversions / _baseline(p_conv, p_n, c_conv, c_n, settings))
    return math.ceil(needed - 1e-9)


def _baseline(p_conv: Any, p_n: Any, c_conv: Any, c_n: Any, settings: Plan) -> Any:
    """REPORT_BASELINE_RATE, or the pooled rate of both groups, or DEFAULT_BASELINE_RATE while
    nobody converted: never one group's rate alone."""
    import numpy as np

    if settings.baseline_rate is not None:
        return settings.baseline_rate + 0.0 * np.asarray(p_n, dtype=float)
    converted = np.asarray(p_conv, dtype=float) + np.asarray(c_conv, dtype=float)
    visitors = np.asarray(p_n, dtype=float) + np.asarray(c_n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(converted > 0, converted / visitors, DEFAULT_BASELINE_RATE)


def _planned(p_conv: Any, p_n: Any, c_conv: Any, c_n: Any, settings: Plan) -> Any:
    """(personalized, control) planned visitors, NaN without a control share to plan for.

    At the planned total N, the log risk ratio's variance
    ``(1 − p₁)/(p₁ (1 − s) N) + (1 − p₀)/(p₀ s N)`` (p₀ the baseline, p₁ = p₀ (1 + MDE),
    s the control share) equals ``(log(1 + MDE) / k)²``, where k makes the always-valid
    interval exclude 0 with probability REPORT_POWER when the lift is the MDE (see
    :func:`_power_multiplier`)."""
    import numpy as np

    share = settings.control_share
    baseline = _baseline(p_conv, p_n, c_conv, c_n, settings)
    if not 0 < share < 1:
        nan = np.full(np.shape(baseline), np.nan)
        return nan, nan
    treated = np.minimum(baseline * (1.0 + settings.mde), 1.0)
    target = (math.log1p(settings.mde) / _power_multiplier(settings.alpha, settings.power)) ** 2
    total = (
        (1.0 - treated) / (treated * (1.0 - share)) + (1.0 - baseline) / (baseline * share)
    ) / (target)
    floor = settings.min_visitors
    return (
        np.maximum(np.ceil(total * (1.0 - share) - 1e-9), floor),
        np.maximum(np.ceil(total * share - 1e-9), floor),
    )


def _enough(p_conv: Any, p_n: Any, c_conv: Any, c_n: Any, settings: Plan) -> Any:
    import numpy as np

    personalized, control = _planned(p_conv, p_n, c_conv, c_n, settings)
    converted = np.asarray(p_conv) + np.asarray(c_conv)
    return (
        (np.asarray(p_n) >= personalized)  # False while NaN: no control share, no plan
        & (np.asarray(c_n) >= control)
        & (converted >= settings.min_conversions)
    )


@functools.lru_cache(maxsize=16)
def _power_multiplier(alpha: float, power: float) -> float:
    """k such that a true log risk ratio of k standard errors, with ``τ`` set to it, leaves
    the always-valid interval above 0 with probability ``power``:
    ``k = sqrt((1 + 1/k²)(2 log(1/α) + log(1 + k²))) + z_power`` (3.90 at α = 0.05 and 80%
    power, where a single-look test needs 2.80: about 1.9 times the sample)."""
    z_power = NormalDist().inv_cdf(power)
    k = 4.0
    for _ in range(100):
        k = math.sqrt((1 + 1 / k**2) * (2 * math.log(1 / alpha) + math.log1p(k**2))) + z_power
    return k


def probability_better(p_conv: int, p_n: int, c_conv: int, c_n: int) -> float | None:
    """Bayesian: the posterior probability that personalization's conversion rate exceeds
    control's, each rate with a uniform Beta(1, 1) prior, so a Beta(1 + converted,
    1 + visitors − converted) posterior (3 decimals; None when a group is empty).

    ``P(r₁ > r₂) = ∫ f₁(x) F₂(x) dx`` by Gauss–Legendre quadrature over ±12 standard
    deviations of the narrower posterior (the other's CDF is smooth there); it agrees with
    the exact finite sum (Evan Miller's formula) to better than 1e-6."""
    _check_counts(p_conv, p_n)
    _check_counts(c_conv, c_n)
    if p_n == 0 or c_n == 0:
        return None
    import numpy as np
    from scipy.special import betainc, betaln

    a1, b1 = p_conv + 1.0, p_n - p_conv + 1.0
    a2, b2 = c_conv + 1.0, c_n - c_conv + 1.0
    flip = _beta_sd(a1, b1) > _beta_sd(a2, b2)
    if flip:  # integrate over control's narrower posterior: P = 1 − P(r₂ > r₁)
        a1, b1, a2, b2 = a2, b2, a1, b1
    mean, sd = a1 / (a1 + b1), _beta_sd(a1, b1)
    lo, hi = max(0.0, mean - 12.0 * sd), min(1.0, mean + 12.0 * sd)
    nodes, weights = _gauss_legendre()
    x = lo + (hi - lo) * (nodes + 1.0) / 2.0
    log_density = (a1 - 1.0) * np.log(x) + (b1 - 1.0) * np.log1p(-x) - betaln(a1, b1)
    result = float(np.sum(weights * np.exp(log_density) * betainc(a2, b2, x)) * (hi - lo) / 2)
    if flip:
        result = 1.0 - result
    return round(min(1.0, max(0.0, result)), 3)


def _beta_sd(a: float, b: float) -> float:
    return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))


@functools.cache
def _gauss_legendre() -> Any:
    import numpy as np

    return np.polynomial.legendre.leggauss(160)


def normal_sf(z: float) -> float:
    """The upper tail of the standard normal distribution, ``P(Z > z)``, from the standard
    library (no scipy.stats on the request path)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _erfc(values: Any) -> Any:
    """``math.erfc`` over an array (NaN stays NaN), as floats."""
    import numpy as np

    return np.asarray(_erfc_ufunc()(values), dtype=float)


@functools.cache
def _erfc_ufunc() -> Any:
    import numpy as np

    return np.frompyfunc(math.erfc, 1, 1)


def _scalar(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _pair(low: Any, high: Any) -> list[float] | None:
    low, high = _scalar(low), _scalar(high)
    return None if low is None or high is None else [low, high]


def _check_counts(converted: int, visitors: int) -> None:
    if converted < 0 or visitors < 0 or converted > visitors:
        raise ValueError(f"Impossible counts: {converted} converted of {visitors} visitors.")


# Sample ratio mismatch ---------------------------------------------------------------------
def srm(p_n: int, c_n: int, expected_control_share: float | None = None) -> dict[str, Any]:
    """Sample ratio mismatch: the chi-square goodness-of-fit test (1 degree of freedom) of the
    observed control share against ``expected_control_share`` (default
    CONTROL_GROUP_PERCENT / 100). ``ok`` is False when the p-value (4 decimals) is below
    0.001: the split is broken (bots, redirects, caching), and so is the comparison."""
    if p_n < 0 or c_n < 0:
        raise ValueError(f"Impossible counts: {p_n} and {c_n} visitors.")
    share = (
        float(app_settings.CONTROL_GROUP_PERCENT) / 100.0
        if expected_control_share is None
        else float(expected_control_share)
    )
    total = p_n + c_n
    if total == 0:
        return {
            "expected_control_share": share,
            "observed_control_share": None,
            "p_value": None,
            "ok": True,
        }
    if 0 < share < 1:
        expected_c, expected_p = share * total, (1.0 - share) * total
        chi2 = (c_n - expected_c) ** 2 / expected_c + (p_n - expected_p) ** 2 / expected_p
        p_value = round(math.erfc(math.sqrt(chi2 / 2.0)), 4)  # chi-square, 1 df, upper tail
    else:  # a share of 0 or 1 is met exactly or not at all
        p_value = 1.0 if c_n / total == share else 0.0
    return {
        "expected_control_share": share,
        "observed_control_share": round(c_n / total, 4),
        "p_value": p_value,
        "ok": p_value >= 0.001,
    }


# Breakdown rows ----------------------------------------------------------------------------
def proportion_interval(converted: int, visitors: int, alpha: float = ALPHA) -> list[float] | None:
    """The Wilson score interval of a conversion rate, in percent (2 decimals); None
    without visitors."""
    _check_counts(converted, visitors)
    if visitors == 0:
        return None
    low, high = _wilson(converted, visitors, _z(alpha))
    return [round(100.0 * low, 2), round(100.0 * high, 2)]


def difference_interval(
    p_conv: int, p_n: int, c_conv: int, c_n: int, alpha: float = ALPHA
) -> list[float] | None:
    """The interval of the difference of rates, personalized minus control, in percentage
    points (2 decimals): Newcombe's hybrid score interval (Newcombe 1998, *Stat. Med.* 17,
    method 10), built from the two Wilson intervals; sound with few conversions, where the
    Wald interval is not. None when a group has no visitors. For many rows, pass an alpha
    adjusted for their number, or read :func:`bh_adjust`'s q-values."""
    _check_counts(p_conv, p_n)
    _check_counts(c_conv, c_n)
    if p_n == 0 or c_n == 0:
        return None
    z = _z(alpha)
    r1, r2 = p_conv / p_n, c_conv / c_n
    l1, u1 = _wilson(p_conv, p_n, z)
    l2, u2 = _wilson(c_conv, c_n, z)
    difference = r1 - r2
    low = difference - math.sqrt((r1 - l1) ** 2 + (u2 - r2) ** 2)
    high = difference + math.sqrt((u1 - r1) ** 2 + (r2 - l2) ** 2)
    return [round(100.0 * low, 2), round(100.0 * high, 2)]


def two_proportion_p_value(p_conv: int, p_n: int, c_conv: int, c_n: int) -> float | None:
    """Two-sided pooled two-proportion z-test (single look, 4 decimals) of a breakdown row;
    None when undefined (an empty group, or nobody or everybody converted)."""
    _check_counts(p_conv, p_n)
    _check_counts(c_conv, c_n)
    if p_n == 0 or c_n == 0:
        return None
    pooled = (p_conv + c_conv) / (p_n + c_n)
    variance = pooled * (1.0 - pooled) * (1.0 / p_n + 1.0 / c_n)
    if variance <= 0.0:
        return None
    z = (p_conv / p_n - c_conv / c_n) / math.sqrt(variance)
    return round(math.erfc(abs(z) / math.sqrt(2.0)), 4)


def bh_adjust(p_values: list[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (q-values, 4 decimals), in the given order: a row
    whose q-value is below q is a discovery at false discovery rate q among the rows. None
    entries stay None and do not count among the tests."""
    indexed = [(p, i) for i, p in enumerate(p_values) if p is not None]
    for p, _ in indexed:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"A p-value lies between 0 and 1, not {p!r}.")
    indexed.sort()
    m = len(indexed)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank in range(m, 0, -1):
        p, i = indexed[rank - 1]
        running = min(running, p * m / rank)
        adjusted[i] = round(running, 4)
    return adjusted


# Revenue -----------------------------------------------------------------------------------
def mean_interval(
    n: int, total: float, total_of_squares: float, alpha: float = ALPHA
) -> list[float] | None:
    """The normal interval of a per-unit mean (e.g. revenue per visitor) from the number of
    units, the sum of their values and the sum of their squares, with the sample variance;
    unrounded. None with fewer than 2 units."""
    if n < 2:
        return None
    total, squares = float(total), float(total_of_squares)
    mean = total / n
    variance = max(0.0, (squares - total * mean) / (n - 1))
    half = _z(alpha) * math.sqrt(variance / n)
    return [mean - half, mean + half]


def ratio_interval(
    n: int,
    numerator_total: float,
    denominator_total: float,
    numerator_squares: float,
    denominator_squares: float,
    cross_products: float,
    alpha: float = ALPHA,
) -> list[float] | None:
    """The delta-method normal interval of a ratio of two per-unit means, R = Σy / Σx (e.g.
    average order value: revenue y over orders x, per visitor), from n units, Σy, Σx, Σy²,
    Σx² and Σxy: ``Var(R) ≈ (s_yy − 2 R s_xy + R² s_xx) / (n x̄²)`` with sample
    (co)variances; unrounded. None with fewer than 2 units or Σx = 0."""
    if n < 2 or not denominator_total:
        return None
    sy, sx = float(numerator_total), float(denominator_total)
    syy, sxx, sxy = float(numerator_squares), float(denominator_squares), float(cross_products)
    ratio = sy / sx
    var_y = (syy - sy * sy / n) / (n - 1)
    var_x = (sxx - sx * sx / n) / (n - 1)
    cov = (sxy - sx * sy / n) / (n - 1)
    mean_x = sx / n
    variance = max(0.0, (var_y - 2.0 * ratio * cov + ratio**2 * var_x) / (n * mean_x**2))
    half = _z(alpha) * math.sqrt(variance)
    return [ratio - half, ratio + half]


def mean_lift(
    p_n: int, p_total: float, p_squares: float, c_n: int, c_total: float, c_squares: float,
    alpha: float = ALPHA,
) -> dict[str, Any]:  # fmt: skip
    """The relative difference of two per-visitor means (revenue per visitor), personalized
    over control, with the delta-method normal interval of its logarithm: ``relative`` and
    ``ci95`` (None where a group has fewer than 2 visitors or a mean of 0). A single-look
    interval, not one that stays valid under daily reading."""
    empty = {"relative": None, "ci95": None}
    if p_n < 2 or c_n < 2 or p_total <= 0 or c_total <= 0:
        return empty

    def variance_of_log_mean(n: int, total: float, squares: float) -> float:
        mean = total / n
        variance = max(0.0, (squares - total * mean) / (n - 1))
        return variance / n / mean**2

    p_mean, c_mean = p_total / p_n, c_total / c_n
    log_ratio = math.log(p_mean / c_mean)
    half = _z(alpha) * math.sqrt(
        variance_of_log_mean(p_n, p_total, p_squares)
        + variance_of_log_mean(c_n, c_total, c_squares)
    )
    return {
        "relative": round(p_mean / c_mean - 1, 4),
        "ci95": [
            round(math.exp(log_ratio - half) - 1, 4),
            round(math.exp(log_ratio + half) - 1, 4),
        ],
    }


def format_p(p: float | None) -> str:
    """A p-value as the page shows it: "p < 0.001", "p = 0.049", "p = 0.5"; "" for None.
    Three decimals, four when three would round onto 0.05 from either side."""
    if p is None:
        return ""
    if p < 0.001:
        return "p < 0.001"
    text = f"{p:.3f}"
    if text == "0.050" and p != 0.05:
        text = f"{p:.4f}"
    return "p = " + (text.rstrip("0").rstrip(".") if "." in text else text)


@functools.lru_cache(maxsize=64)
def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie between 0 and 1, not {alpha!r}.")
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def _wilson(converted: int, visitors: int, z: float) -> tuple[float, float]:
    share = converted / visitors
    z2n = z * z / visitors
    centre = (share + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(share * (1.0 - share) / visitors + z2n / (4.0 * visitors))
    return max(0.0, centre - half), min(1.0, centre + half)
