"""Benchmark: the conversion report at scale on PostgreSQL.

Loads synthetic data with ``manage.py personalization_synthetic`` into its own database (10
million exposures, 500,000 orders over 90 days by default; skipped when already loaded),
rebuilds the daily roll-ups (timed), then times ``build_report`` from the roll-ups for the last
7, 30 and 90 days — with nothing and with five minutes of fresh traffic to read live — an
incremental refresh of that traffic, and, as the baseline, the same report from the raw rows
(``--raw-days``). Writes the figures and the plan of the slowest roll-up query to
benchmarks/RESULTS.md.

    python benchmarks/bench_report.py [--exposures 10000000] [--orders 500000] [--runs 5]

Needs PostgreSQL (PZN_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1/pzn_scale).
"""

from __future__ import annotations

import argparse
import datetime as dt
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

LIVE_LABEL = "bench: live traffic"


def ensure_database() -> None:
    """Create the benchmark's database when it does not exist yet."""
    import psycopg

    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
        password=settings["PASSWORD"] or None, dbname="postgres", autocommit=True,
    ) as admin:  # fmt: skip
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [settings["NAME"]]
        ).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{settings["NAME"]}"')


def ensure_data(args: argparse.Namespace) -> dict[str, int]:
    from personalization.models import Conversion, Exposure, Visitor

    ensure_database()
    call_command("migrate", verbosity=0)
    if Exposure.objects.count() != args.exposures:
        if args.reuse:
            sys.exit("--reuse needs the data already loaded; run without it first")
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
        "visitors": Visitor.objects.count(),
    }


def rebuild_rollups(reuse: bool, processes: list[int]) -> tuple[dict[int, float], dict[str, int]]:
    """Rebuild the roll-ups once per number of processes (or, with ``reuse``, bring the
    existing ones up to date); returns the rebuilds' durations and the tables' sizes."""
    from personalization.models import ReportCell, ReportRollup, ReportVisitorState
    from personalization.reports import rollups

    seconds: dict[int, float] = {}
    if reuse and rollups.status() is not None:
        rollups.refresh()
    else:
        for count in processes:
            rollups.refresh(full=True, processes=count)
            seconds[count] = ReportRollup.objects.get().rebuild_duration or 0.0
            print(f"rebuilt with {count} process(es) in {seconds[count]:.0f}s", flush=True)
    with connection.cursor() as cursor:
        sizes = {}
        for model in (ReportCell, ReportVisitorState):
            table = model._meta.db_table
            cursor.execute(f"VACUUM ANALYZE {table}")
            # the rows themselves, and the table with its indexes on disk
            cursor.execute(f"SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM {table} t")
            sizes[model.__name__] = cursor.fetchone()[0]
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            sizes[model.__name__ + "_disk"] = cursor.fetchone()[0]
    return seconds, {
        "cells": ReportCell.objects.count(),
        "states": ReportVisitorState.objects.count(),
        "cells_bytes": sizes["ReportCell"],
        "states_bytes": sizes["ReportVisitorState"],
        "states_disk": sizes["ReportVisitorState_disk"],
    }


def fresh_traffic(visitors: int = 400, seed: int = 99) -> int:
    """Five minutes of a busy shop's traffic: new and returning visitors' page views, clicks
    and a few orders, dated in the five minutes before the cutoff of a refresh made now (the
    roll-ups hold rows up to ten minutes old), so that the report reads them live and the next
    refresh rolls them up. Returns the exposures written."""
    import random
    import uuid
    from decimal import Decimal

    from personalization.models import Conversion, Event, Exposure
    from personalization.reports.rollups import SLACK

    rng = random.Random(seed)
    now = timezone.now() - SLACK - dt.timedelta(seconds=30)
    exposures, clicks, orders = [], [], []
    returning = list(Exposure.objects.order_by().values_list("visitor_id", flat=True)[:200])
    for number in range(visitors):
        vid = returning[number] if number < len(returning) // 2 else f"live-{seed}-{number}"
        for page in range(1 + int(rng.expovariate(1 / 4))):
            shown = Exposure(
                id=uuid.uuid4(), visitor_id=vid, placement="home-hero", kind="banner",
                content="banner:1", content_label=LIVE_LABEL,
                created_at=now - dt.timedelta(seconds=rng.random() * 300 - page),
            )  # fmt: skip
            exposures.append(shown)
            if rng.random() < 0.05:
                clicks.append(Event(visitor_id=vid, exposure=shown, kind="click"))
        if rng.random() < 0.05:
            orders.append(
                Conversion(
                    visitor_id=vid,
                    kind="purchase",
                    goal="purchase",
                    order_id=f"live-{seed}-{number}",
                    revenue=Decimal("42.00"),
                    created_at=now,
                )
            )
    Exposure.objects.bulk_create(exposures)
    Event.objects.bulk_create(clicks)
    Conversion.objects.bulk_create(orders)
    return len(exposures)


def forget_fresh_traffic(seed: int = 99) -> None:
    """Delete the fresh traffic and have the roll-ups take it out again."""
    from personalization.models import Conversion, Event, Exposure
    from personalization.reports import rollups

    recent = timezone.now() - dt.timedelta(hours=3)
    exposures = Exposure.objects.filter(content_label=LIVE_LABEL, created_at__gte=recent)
    orders = Conversion.objects.filter(order_id__startswith=f"live-{seed}-")
    visitors = set(exposures.values_list("visitor_id", flat=True))
    visitors |= set(orders.values_list("visitor_id", flat=True))
    Event.objects.filter(exposure__in=exposures).delete()
    orders.delete()
    exposures.delete()
    rollups.mark_changed(visitors)


def time_report(days: int, runs: int, source: str) -> tuple[float, list[dict]]:
    from django.test import override_settings

    from personalization.reports.period import parse_period
    from personalization.reports.queries import build_report

    end = timezone.localdate()
    start = end - timezone.timedelta(days=days - 1)
    period = parse_period(start.isoformat(), end.isoformat())
    durations, queries = [], []
    overrides = {**django.conf.settings.PERSONALIZATION, "REPORT_ROLLUPS": source != "raw"}
    if source == "raw":
        overrides["REPORT_TIMEOUT_SECONDS"] = 0
    for _ in range(runs):
        with (
            override_settings(PERSONALIZATION=overrides),
            CaptureQueriesContext(connection) as captured,
        ):
            started = time.perf_counter()
            result = build_report(period)
            durations.append(time.perf_counter() - started)
        queries = captured.captured_queries
        assert result["source"] == source, result["source"]
    return statistics.median(durations), queries


def time_preparing() -> float:
    """How long the report takes to say it is being prepared, when the roll-ups do not serve
    the current settings (here: another attribution window) and the raw rows are millions."""
    from django.test import override_settings

    from personalization.reports.period import parse_period
    from personalization.reports.queries import ReportPreparing, build_report

    end = timezone.localdate()
    period = parse_period((end - dt.timedelta(days=29)).isoformat(), end.isoformat())
    changed = {**django.conf.settings.PERSONALIZATION, "ATTRIBUTION_WINDOW_DAYS": 3}
    from unittest import mock

    durations = []
    for _ in range(5):
        # the rebuild it asks for is not run here (it would replace the benchmark's roll-ups)
        with (
            override_settings(PERSONALIZATION=changed),
            mock.patch("personalization.jobs.enqueue") as asked,
        ):
            started = time.perf_counter()
            try:
                build_report(period)
            except ReportPreparing:
                durations.append(time.perf_counter() - started)
            else:
                raise AssertionError("the report read millions of raw rows")
            assert asked.called
    return statistics.median(durations)


def explain(sql: str) -> str:
    """The plan, with long literal lists (visitor ids) shortened."""
    import re

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return re.sub(
        r"'\{([^}]{120,})\}'",
        lambda m: "'{" + m.group(1)[:60] + f",… {m.group(1).count(',') + 1} values}}'",
        plan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=2_000_000)
    parser.add_argument("--exposures", type=int, default=10_000_000)
    parser.add_argument("--orders", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--days", type=int, nargs="+", default=[7, 30, 90])
    parser.add_argument("--raw-days", type=int, nargs="*", default=[30])
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2],
        help="rebuild once with each number of processes (the last one's roll-ups are used)",
    )  # fmt: skip
    parser.add_argument(
        "--reuse", action="store_true", help="refresh existing roll-ups instead of rebuilding"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench_report.py needs PostgreSQL")
    counts = ensure_data(args)
    load_before = os.getloadavg()[0]
    forget_fresh_traffic()
    rebuild_seconds, sizes = rebuild_rollups(args.reuse, args.processes)
    print(f"rebuilt: {rebuild_seconds} {sizes}", flush=True)

    rows, slowest = [], None
    for days in args.days:
        median, queries = time_report(days, args.runs, "rollups")
        rows.append((f"last {days} days, roll-ups", median, len(queries)))
        print(rows[-1], flush=True)
        top = max(queries, key=lambda q: float(q["time"]))
        if slowest is None or float(top["time"]) > float(slowest["time"]):
            slowest = top
    written = fresh_traffic()
    for days in args.days:
        median, queries = time_report(days, args.runs, "rollups")
        rows.append((f"last {days} days, roll-ups + 5 min live ({written} exposures)", median,
                     len(queries)))  # fmt: skip
        print(rows[-1], flush=True)
    started = time.perf_counter()
    from personalization.reports import rollups

    refreshed = rollups.refresh()
    refresh_seconds = time.perf_counter() - started
    forget_fresh_traffic()
    rollups.refresh()
    preparing = time_preparing()
    raw_rows = []
    for days in args.raw_days:
        median, queries = time_report(days, 1, "raw")
        raw_rows.append((f"last {days} days, raw rows (baseline)", median, len(queries)))
    plan = explain(slowest["sql"]) if slowest else ""
    fastest_raw = {r[0].split(",")[0]: r[1] for r in raw_rows}
    ratio_lines = []
    for label, median, _ in rows:
        key = label.split(",")[0]
        if key in fastest_raw and "live" not in label:
            raw = fastest_raw[key]
            ratio_lines.append(
                f"- {key}: raw {raw:.1f} s / roll-ups {median * 1000:.0f} ms = {raw / median:,.0f}x"
            )
    lines = [
        "## The conversion report at scale (PostgreSQL)",
        "",
        f"Run on {time.strftime('%Y-%m-%d', time.gmtime())} — {machine()}, PostgreSQL "
        f"{connection.pg_version // 10000}; load average {load_before:.1f} before the run, "
        f"{os.getloadavg()[0]:.1f} at its end (other work on the machine slows every figure).",
        f"`python benchmarks/bench_report.py --runs {args.runs}`: "
        f"{counts['exposures']:,} exposures, {counts['orders']:,} orders and "
        f"{counts['visitors']:,} visitors over 90 days (`manage.py personalization_synthetic`: "
        "visits of about five page views), `build_report` median of the runs.",
        "",
        "| report | median seconds | queries |",
        "| --- | ---: | ---: |",
        *[f"| {label} | {median:.3f} | {n} |" for label, median, n in rows + raw_rows],
        "",
        *ratio_lines,
        "",
        *[
            f"- Full rebuild of the roll-ups (`manage.py personalization_rollup --full "
            f"--processes {count}`): {seconds:.0f} s with {count} process(es)"
            + (
                f", {rebuild_seconds[1] / seconds:.2f}x faster than one"
                if 1 in rebuild_seconds and count != 1
                else ""
            )
            + "."
            for count, seconds in rebuild_seconds.items()
        ],
        f"- Roll-ups: {sizes['cells']:,} cells ({sizes['cells_bytes'] / 2**20:.0f} MiB of rows); "
        f"{sizes['states']:,} per-visitor states, "
        f"{sizes['states_bytes'] / max(1, sizes['states']):.0f} bytes of row a visitor "
        f"({sizes['states_disk'] / max(1, sizes['states']):.0f} bytes a visitor on disk, "
        "with the table's overhead and primary key).",
        f"- Incremental refresh after five minutes of traffic ({written} exposures, "
        f"{refreshed['visitors']} visitors recomputed): {refresh_seconds:.2f} s.",
        f"- Before the roll-ups serve the current settings, the report answers that it is being "
        f"prepared (503, `Retry-After`) in {preparing * 1000:.0f} ms rather than reading the raw "
        f"rows (`REPORT_RAW_MAX_EXPOSURES`), and asks for the rebuild.",
        "",
        "Targets: the report at most 0.5 s with live traffic; a full rebuild at most 5 minutes, "
        "split across workers; at most 200 bytes of state a visitor.",
        "",
        "Plan of the slowest roll-up query:",
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
