"""Benchmark: how often the report's lift is wrong, by simulation.

Simulates experiments of 30 days with a 10% control group: each day a Poisson number of
visitors arrives, each is assigned to control with probability 0.10 and converts with the
group's true rate; the counts are cumulated day by day and every day is read through the
report's own statistics (``stats.lift_arrays``, the vectorised core that ``stats.lift`` calls,
with the default settings). For base rates of 1%, 3% and 10% and 2,000 to 200,000 visitors in
the 30 days, it measures

- with no real difference (A/A): how often a single look at day 30 is significant, with the
  single-look (fixed-horizon) p-value and with the always-valid one; how often a reader who
  looks every day and stops at the first day with p < 0.05 declares a difference; how often
  the verdict ever names a winner;
- with a true lift of +20% and +50%: how often the 95% interval covers it (at day 30, and on
  all 30 days at once), and how often the verdict declares personalization the winner by day 30.

Writes its section of benchmarks/RESULTS.md.

    python benchmarks/bench_calibration.py [--runs 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure()  # the app's defaults: no PERSONALIZATION setting

from benchmarks.results import machine, write_section  # noqa: E402
from personalization.reports import stats  # noqa: E402

DAYS = 30
CONTROL_SHARE = 0.10
BASE_RATES = (0.01, 0.03, 0.10)
VISITORS = (2_000, 20_000, 200_000)
LIFTS = (0.0, 0.20, 0.50)
# The single-look methods are large-sample approximations: their targets are also checked
# where the control group expects at least this many conversions by day 30.
BIG_COUNT = 20
WINS, CONTROL_WINS = (
    stats.VERDICTS.index(stats.PERSONALIZATION_WINS),
    stats.VERDICTS.index(stats.CONTROL_WINS),
)


def simulate(
    rng: np.random.Generator, runs: int, visitors: int, base: float, lift: float
) -> tuple[np.ndarray, ...]:
    """Cumulative (personalized converted, personalized visitors, control converted, control
    visitors), each of shape (runs, DAYS)."""
    daily = rng.poisson(visitors / DAYS, size=(runs, DAYS))
    control = rng.binomial(daily, CONTROL_SHARE)
    personalized = daily - control
    c_conv = rng.binomial(control, base)
    p_conv = rng.binomial(personalized, min(1.0, base * (1.0 + lift)))
    return tuple(np.cumsum(counts, axis=1) for counts in (p_conv, personalized, c_conv, control))


def measure(rng: np.random.Generator, runs: int, visitors: int, base: float, lift: float) -> dict:
    p_conv, p_n, c_conv, c_n = simulate(rng, runs, visitors, base, lift)
    core = stats.lift_arrays(p_conv, p_n, c_conv, c_n, stats.plan())
    last = -1
    with np.errstate(invalid="ignore"):
        p_av, p_fixed = core["p_value"], core["fixed_p_value"]
        verdict = core["verdict"]
        result = {
            "single_fixed": np.mean(p_fixed[:, last] < 0.05),
            "single_av": np.mean(p_av[:, last] < 0.05),
            "peek_fixed": np.mean(np.any(p_fixed < 0.05, axis=1)),
            "peek_av": np.mean(np.any(p_av < 0.05, axis=1)),
            "false_winners": np.mean(np.any((verdict == WINS) | (verdict == CONTROL_WINS), axis=1)),
            "wins": np.mean(np.any(verdict == WINS, axis=1)),
            "interval_wins": np.mean(np.any(core["low"] > 0, axis=1)),
            "reached": np.mean(core["enough"][:, last]),
            "fixed_power": np.mean((p_fixed[:, last] < 0.05) & (core["relative"][:, last] > 0)),
        }
        truth = lift
        low, high = core["low"], core["high"]
        defined = ~np.isnan(low)
        covered = (low <= truth) & (truth <= high)
        result["defined"] = np.mean(defined[:, last])
        result["cover_av"] = _share(covered[:, last], defined[:, last])
        result["cover_av_all"] = np.mean(np.all(covered | ~defined, axis=1))
        f_low, f_high = core["fixed_low"], core["fixed_high"]
        fixed_defined = ~np.isnan(f_low[:, last])
        fixed_covered = (f_low[:, last] <= truth) & (truth <= f_high[:, last])
        result["cover_fixed"] = _share(fixed_covered, fixed_defined)
        # The planned sample of both groups at the pooled rate the design expects.
        pooled = base * (1.0 + (1.0 - CONTROL_SHARE) * lift)
        planned = stats.planned_visitors(0, 0, 0, 0, replace(stats.plan(), baseline_rate=pooled))
        result["planned"] = planned["personalized"] + planned["control"]
    return result


def _share(hits: np.ndarray, among: np.ndarray) -> float:
    return float(np.sum(hits & among) / np.sum(among)) if np.any(among) else math.nan


def pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20_000, help="runs per setting")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args()

    started = time.perf_counter()
    results = {}
    for i, (base, visitors, lift) in enumerate(
        (b, v, f) for b in BASE_RATES for v in VISITORS for f in LIFTS
    ):
        rng = np.random.default_rng([args.seed, i])
        results[base, visitors, lift] = measure(rng, args.runs, visitors, base, lift)
        print(f"rate {base:.0%}, {visitors} visitors, lift {lift:+.0%}: done", file=sys.stderr)
    elapsed = time.perf_counter() - started

    body = report(results, args.runs, args.seed, elapsed)
    print(body)
    if not args.no_write:
        write_section("bench_calibration", body)


def report(results: dict, runs: int, seed: int, elapsed: float) -> str:
    aa = {key[:2]: value for key, value in results.items() if key[2] == 0.0}
    up = {key: value for key, value in results.items() if key[2] > 0.0}
    se = math.sqrt(0.05 * 0.95 / runs)
    plan = stats.plan()

    def worst(values, pick=max):
        values = [v for v in values if not math.isnan(v)]
        return pick(values) if values else math.nan

    def within(items, measure, low, high):
        """The range of ``measure`` over the settings, naming those outside [low, high]."""
        values = {key: r[measure] for key, r in items if not math.isnan(r[measure])}
        outside = [
            f"{key[0]:.0%} × {key[1]:,}" + (f" +{key[2]:.0%}" if len(key) > 2 else "")
            for key, value in values.items()
            if not low <= value <= high
        ]
        text = f"{pct(min(values.values()))} to {pct(max(values.values()))}"
        return text + (f" (outside: {', '.join(outside)})" if outside else ""), not outside

    def counted(key):  # settings where control expects at least BIG_COUNT conversions
        return key[0] * key[1] * CONTROL_SHARE >= BIG_COUNT

    targets = [
        (
            "A/A, one look at day 30, single-look p < 0.05",
            "5% ± 1%",
            *within(aa.items(), "single_fixed", 0.04, 0.06),
        ),
        (
            f"the same, settings where control expects ≥ {BIG_COUNT} conversions",
            "5% ± 1%",
            *within([(k, r) for k, r in aa.items() if counted(k)], "single_fixed", 0.04, 0.06),
        ),
        (
            "A/A, one look at day 30, always-valid p < 0.05",
            "≤ 5%",
            f"≤ {pct(worst(r['single_av'] for r in aa.values()))}",
            all(r["single_av"] <= 0.05 for r in aa.values()),
        ),
        (
            "A/A, daily peeking, stop at first always-valid p < 0.05",
            "≤ 6%",
            f"≤ {pct(worst(r['peek_av'] for r in aa.values()))}",
            all(r["peek_av"] <= 0.06 for r in aa.values()),
        ),
        (
            "A/A, daily peeking, stop at first verdict naming a winner",
            "≤ 6%",
            f"≤ {pct(worst(r['false_winners'] for r in aa.values()))}",
            all(r["false_winners"] <= 0.06 for r in aa.values()),
        ),
        (
            "+20%, +50%: always-valid 95% interval covers the true lift at day 30",
            "≥ 95%",
            f"≥ {pct(worst((r['cover_av'] for r in up.values()), min))}",
            all(r["cover_av"] >= 0.95 for r in up.values() if not math.isnan(r["cover_av"])),
        ),
        (
            "+20%, +50%: always-valid interval covers it on all 30 days at once",
            "≥ 95%",
            f"≥ {pct(worst((r['cover_av_all'] for r in up.values()), min))}",
            all(r["cover_av_all"] >= 0.95 for r in up.values()),
        ),
        (
            "+20%, +50%: single-look (Katz) interval covers it at day 30",
            "95% ± 1.5%",
            *within(up.items(), "cover_fixed", 0.935, 0.965),
        ),
        (
            f"the same, settings where control expects ≥ {BIG_COUNT} conversions",
            "95% ± 1.5%",
            *within([(k, r) for k, r in up.items() if counted(k)], "cover_fixed", 0.935, 0.965),
        ),
    ]
    lines = [
        "## Calibration of the report's lift, interval and verdict",
        "",
        f"Run on {dt.date.today().isoformat()} — {machine()}; numpy {np.__version__}.",
        f"`python benchmarks/bench_calibration.py --runs {runs} --seed {seed}`: {runs:,} "
        f"simulated experiments per setting and true lift ({elapsed:.0f} s in all). Each lasts "
        f"{DAYS} days; every day a Poisson number of visitors arrives (the total over the "
        f"{DAYS} days averages the *visitors* column), each is held out as control with "
        f"probability {CONTROL_SHARE:.2f} and converts with its group's true rate (control: "
        "the base rate; personalized: base × (1 + lift)). The cumulative counts of every day "
        "go through `stats.lift_arrays`, the vectorised core of `stats.lift` (a test checks "
        "they agree exactly), with the default settings: "
        f"REPORT_MDE = {plan.mde:g}, REPORT_POWER = {plan.power:g}, the pooled baseline, "
        f"REPORT_MIN_VISITORS = {plan.min_visitors}, REPORT_MIN_CONVERSIONS = "
        f"{plan.min_conversions}. *Peeking*: the reader looks every day and stops at the first "
        "day the figure is significant; the share is of experiments that ever are. Monte "
        f"Carlo standard error of a 5% share: {100 * se:.2f} points.",
        "",
        "### Targets",
        "",
        "| measure | target | measured over the settings | |",
        "| --- | --- | --- | --- |",
    ]
    for name, target, measured, ok in targets:
        lines.append(f"| {name} | {target} | {measured} | {'PASS' if ok else 'FAIL'} |")
    lines += [
        "",
        "### No real difference (A/A)",
        "",
        "*Control conversions*: expected in the control group by day 30. "
        "*Planned*: the planned sample of both groups together at that base rate; *reached*: "
        "experiments whose planned sample is reached by day 30. Single look: the share "
        "significant at day 30; peeking: the share ever significant over the 30 daily looks.",
        "",
        "| base rate | visitors | control conversions | planned | reached | "
        "single look, single-look p | "
        "single look, always-valid p | peeking, single-look p | peeking, always-valid p "
        "| peeking, verdict names a winner |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (base, visitors), r in aa.items():
        lines.append(
            f"| {base:.0%} | {visitors:,} | {base * visitors * CONTROL_SHARE:,.0f} | "
            f"{r['planned']:,} | {pct(r['reached'])} | "
            f"{pct(r['single_fixed'])} | {pct(r['single_av'])} | {pct(r['peek_fixed'])} | "
            f"{pct(r['peek_av'])} | {pct(r['false_winners'])} |"
        )
    lines += [
        "",
        "### A real lift",
        "",
        "Coverage: the share of experiments whose 95% interval contains the true lift, among "
        "those with an interval (*with interval*: both groups have a conversion at day 30). "
        "*Power*: the verdict says `personalization-wins` on some day by day 30 (none "
        "where the planned sample is not reached: the verdict withholds judgement there by "
        "design); *interval alone*: the always-valid interval lies above 0 on some day, "
        "whatever the plan; *single look*: the single-look test at day 30 (p < 0.05, lift "
        "above 0), only valid when read once.",
        "",
        "| base rate | visitors | true lift | planned | reached | with interval | "
        "always-valid, day 30 | always-valid, all 30 days | single-look (Katz), day 30 | "
        "power: verdict | power: interval alone | power: single look |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (base, visitors, lift), r in up.items():
        lines.append(
            f"| {base:.0%} | {visitors:,} | +{lift:.0%} | {r['planned']:,} | "
            f"{pct(r['reached'])} | {pct(r['defined'])} | {pct(r['cover_av'])} | "
            f"{pct(r['cover_av_all'])} | {pct(r['cover_fixed'])} | {pct(r['wins'])} | "
            f"{pct(r['interval_wins'])} | {pct(r['fixed_power'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
