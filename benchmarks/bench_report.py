"""Benchmark: the conversion report at scale on PostgreSQL.

Loads synthetic data with ``manage.py personalization_synthetic`` into its own database (10
million exposures, 500,000 orders over 90 days by default; skipped when already loaded),
then times ``build_report`` for the last 30 and 90 days, each query, and writes the plan of
the slowest query to benchmarks/RESULTS.md.

    python benchmarks/bench_report.py [--exposures 10000000] [--orders 500000] [--runs 3]

Needs PostgreSQL (PZN_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1/pzn_scale).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.scale_settings"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.results import machine, write_section  # noqa: E402


def ensure_data(args: argparse.Namespace) -> dict[str, int]:
    from personalization.models import Conversion, Exposure

    call_command("migrate", verbosity=0)
    if Exposure.objects.count() != args.exposures:
        call_command(
            "personalization_synthetic",
            visitors=args.visitors,
            exposures=args.exposures,
            orders=args.orders,
            days=90,
            clear=True,
        )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return {
        "exposures": Exposure.objects.count(),
        "orders": Conversion.objects.filter(kind="purchase").count(),
    }


def time_report(days: int, runs: int) -> tuple[float, list[dict]]:
    from personalization.reports.period import parse_period
    from personalization.reports.queries import build_report

    end = timezone.localdate()
    start = end - timezone.timedelta(days=days - 1)
    period = parse_period(start.isoformat(), end.isoformat())
    durations, queries = [], []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            build_report(period)
            durations.append(time.perf_counter() - started)
        queries = captured.captured_queries
    return statistics.median(durations), queries


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=2_000_000)
    parser.add_argument("--exposures", type=int, default=10_000_000)
    parser.add_argument("--orders", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, nargs="+", default=[30, 90])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench_report.py needs PostgreSQL")
    counts = ensure_data(args)
    rows, slowest = [], None
    for days in args.days:
        median, queries = time_report(days, args.runs)
        times = [float(q["time"]) for q in queries]
        rows.append((days, median, len(queries), max(times)))
        top = max(queries, key=lambda q: float(q["time"]))
        if slowest is None or float(top["time"]) > float(slowest["time"]):
            slowest = top
    plan = explain(slowest["sql"]) if slowest else ""
    lines = [
        "## The conversion report at scale (PostgreSQL)",
        "",
        f"Run on {time.strftime('%Y-%m-%d')} — {machine()}, PostgreSQL "
        f"{connection.pg_version // 10000}.",
        f"`python benchmarks/bench_report.py --runs {args.runs}`: "
        f"{counts['exposures']:,} exposures and {counts['orders']:,} orders over 90 days "
        "(`manage.py personalization_synthetic`), `build_report` for the last N days, median "
        "of the runs.",
        "",
        "| period | median seconds | queries | slowest query (s) |",
        "| --- | ---: | ---: | ---: |",
        *[f"| last {d} days | {m:.2f} | {n} | {s:.2f} |" for d, m, n, s in rows],
        "",
        "Target: under 1 s. The report reads the raw exposure and conversion tables (exact, one",
        "`Exists` per exposure for attribution); daily roll-ups are the next step.",
        "",
        "Plan of the slowest query:",
        "",
        "```",
        plan,
        "```",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section("bench_report", section)


if __name__ == "__main__":
    main()
