"""Benchmark: a personalized email campaign to 100,000 recipients, prepared and handed to the
email backend on one core, against a static send of as many emails.

Target: a campaign of 100,000 recipients is prepared and handed to the email backend in at
most 5 minutes and 500 MB of peak memory on one core, personalization included.

Setup (a process of its own, run to its end before the measuring one starts, so that one core
is used at a time and the measuring process holds only what the send needs):
a fresh database; a catalogue of ``--products`` products in 20 categories (the test
settings' ``testapp.Product``); ``--interactions`` product views, carts and purchases of
other visitors over 60 days, from which ``precompute.recompute_all()`` fits and stores the
recommender's lists (``viewed_together``, ``bought_together``, ``bestsellers``…); then
``--recipients`` recipients, each an ``EmailRecipient`` (consent from an import, 4 to 720 days
ago) with a ``Visitor`` (ten countries, a time zone, a few recently viewed products, the
control group as the middleware assigns it); a segment "country is one of DE, GB, FR, US, NL,
SE, AT" (about 90% of them) and an ``EmailCampaign`` for it due now. The lifecycle flows keep
the app's defaults (nothing is due for them: ``--no-flows`` switches them off).

Measured, in this process:

- **Personalized campaign**: ``personalization.emails.run_due()`` (the ``emails`` job), called
  again until it sends nothing more: for each recipient, the segment's rules on their visitor,
  the control group, the weekly cap and the sunset, the claim and exposure rows, a block of
  products from what goes with what they viewed (else bestsellers), the subject, text and
  HTML rendered with signed links, and the message handed to the backend.
- **Static send (baseline)**: as many emails with one subject and body (a copy of one
  campaign email), the same sender, addresses and ``List-Unsubscribe`` headers (signed for
  each recipient), built as ``EmailMultiAlternatives`` and handed to one connection's
  ``send_messages`` 500 at a time; the addresses are read from the database in the timing.

Both go to ``benchmarks.email_backend.SerializingBackend``, which serialises each message to
MIME bytes as an SMTP backend does (``message.message().as_bytes()``), counts it and drops
it. Reported: wall and CPU seconds, emails per second, SQL statements, bytes, the emails
sent, held out (control group) and sunset, and memory: the process's peak resident set
(``ru_maxrss``), and the resident set before each send and its peak during it
(``VmRSS``/``VmHWM`` of /proc/self/status; the peak is reset before each send through
/proc/self/clear_refs where the kernel allows it, else read before and after).

One core: run it under ``taskset -c 0`` (the header says whether the process was pinned to one
CPU); BLAS is held to one thread. On PostgreSQL the server's processes are not pinned by it.

    taskset -c 0 python benchmarks/bench_email.py [--recipients 100000] [--database sqlite]
        [--interactions 200000] [--products 2000] [--no-flows] [--json OUT] [--write]

SQLite: a file in a temporary folder, with the demo shop's options (WAL, synchronous
NORMAL). PostgreSQL: a throwaway database (PZN_BENCH_EMAIL_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/pzn_email), dropped and created again for each run and
dropped at its end. ``--write`` replaces this script's section of benchmarks/RESULTS.md.

To see where the time goes, ``python -m cProfile -o OUT benchmarks/bench_email.py ...``
profiles the measuring process only (its figures are then slowed by the profiler).
"""

from __future__ import annotations

import os

# One core: the BLAS behind the recommender's fit must not spread over the others.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

DATABASE_URL = os.environ.get(
    "PZN_BENCH_EMAIL_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/pzn_email"
)
# The demo shop's SQLite options (shop_demo.settings.SQLITE_OPTIONS).
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
}
# Country -> (share of the recipients in %, time zone); the segment takes the first seven.
COUNTRIES = {
    "DE": (30, "Europe/Berlin"),
    "GB": (15, "Europe/London"),
    "FR": (12, "Europe/Paris"),
    "US": (12, "America/New_York"),
    "NL": (8, "Europe/Amsterdam"),
    "SE": (7, "Europe/Stockholm"),
    "AT": (6, "Europe/Vienna"),
    "CH": (4, "Europe/Zurich"),
    "PL": (3, "Europe/Warsaw"),
    "IT": (3, "Europe/Rome"),
}
SEGMENT_COUNTRIES = ["DE", "GB", "FR", "US", "NL", "SE", "AT"]
CATEGORIES = 20
CHUNK = 5000
STATIC_CHUNK = 500
SITE_URL = "https://shop.example"
FROM = "Example Shop <news@shop.example>"
SUBJECT = "Our summer selection is here"
MESSAGE = (
    "Dear customer,\n\nThe days are long and our summer selection has just arrived: light "
    "jackets, tents for two and everything for the picnic. Until Sunday, delivery is free on "
    "every order.\n\nSee you soon in the shop!"
)
TARGET_SECONDS = 300
TARGET_MB = 500


# Measuring ------------------------------------------------------------------------------
def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: resident now; VmHWM: its peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    """Reset VmHWM to the current resident set (Linux 4.0+: "5" to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return status_kib("VmHWM") <= status_kib("VmRSS") + 64


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class QueryCounter:
    """Counts the SQL statements run on a connection (``connection.execute_wrapper``)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def measured(run: Callable[[], Any]) -> dict[str, Any]:
    """Run ``run`` once: its result, wall and CPU seconds, SQL statements and memory."""
    from django.db import connection

    from benchmarks.email_backend import SerializingBackend

    gc.collect()
    rss_before = status_kib("VmRSS")
    hwm_before = status_kib("VmHWM")
    was_reset = reset_peak()
    SerializingBackend.reset()
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        cpu, started = time.process_time(), time.perf_counter()
        result = run()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    hwm_after = status_kib("VmHWM")
    return {
        "result": result,
        "seconds": wall,
        "cpu_seconds": cpu,
        "queries": counter.count,
        "backend": SerializingBackend.counts(),
        "rss_before_mib": rss_before / 1024,
        "rss_after_mib": status_kib("VmRSS") / 1024,
        # with the reset: the peak during the run; without: the process's peak so far
        "peak_mib": hwm_after / 1024,
        "peak_reset": was_reset,
        "hwm_before_mib": hwm_before / 1024,
        "growth_mib": (hwm_after - rss_before) / 1024
        if was_reset or hwm_after > hwm_before
        else None,
        "maxrss_mib": maxrss_mib(),
    }


# Databases ------------------------------------------------------------------------------
def _admin() -> Any:
    from benchmarks.results import postgres_admin

    return postgres_admin(DATABASE_URL)


def _database_name() -> str:
    return urlsplit(DATABASE_URL).path.lstrip("/") or "pzn_email"


def recreate_postgresql() -> None:
    name = _database_name()
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_postgresql() -> None:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{_database_name()}" WITH (FORCE)')


def setup_django(args: argparse.Namespace) -> None:
    """The test settings on the chosen database (set before any connection is made)."""
    if args.database == "postgresql":
        os.environ["PZN_TEST_DATABASE_URL"] = DATABASE_URL  # read by tests/settings.py
    else:
        os.environ.pop("PZN_TEST_DATABASE_URL", None)
    import django

    django.setup()
    from django.conf import settings

    database = settings.DATABASES["default"]
    if args.database == "sqlite":
        database["NAME"] = args.sqlite_path
        database["OPTIONS"] = dict(SQLITE_OPTIONS)
    assert database["ENGINE"].rsplit(".", 1)[-1] == args.database.replace("sqlite", "sqlite3")


def describe_database() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        return f"PostgreSQL {connection.pg_version // 10000} (a throwaway database)"
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version} (a file, WAL, synchronous NORMAL)"


# Data -----------------------------------------------------------------------------------
def catalogue(products: int) -> list[list[int]]:
    """The products, as shelves: each category's product pks, in the order of the catalogue."""
    from tests.testapp.models import Category, Product

    Category.objects.bulk_create(
        Category(slug=f"category-{n}", name=f"Category {n}") for n in range(CATEGORIES)
    )
    categories = list(Category.objects.order_by("pk"))
    Product.objects.bulk_create(
        (
            Product(
                name=f"Product {n}",
                slug=f"product-{n}",
                price=10 + n % 90,
                category=categories[n % CATEGORIES],
            )
            for n in range(products)
        ),
        batch_size=1000,
    )
    shelves: dict[int, list[int]] = {}
    for pk, category_id in Product.objects.order_by("pk").values_list("pk", "category_id"):
        shelves.setdefault(category_id, []).append(pk)
    return list(shelves.values())


def browse(rng: random.Random, shelves: list[list[int]]) -> list[int]:
    """A few products of one shelf, as a visit views them: some shelves and, within a shelf,
    some products draw most eyes."""
    shelf = shelves[int(len(shelves) * rng.random() ** 2)]
    start = int(len(shelf) * rng.random() ** 3)
    return [shelf[(start + step) % len(shelf)] for step in range(rng.randint(1, 6))]


def history(shelves: list[list[int]], total: int, seed: int = 1) -> int:
    """``total`` product interactions of other visitors over 60 days: visits of a few views
    within a shelf; one in six ends with a cart and a purchase of one or two products."""
    from django.utils import timezone

    from personalization.models import ProductInteraction

    rng = random.Random(seed)
    now = timezone.now()
    countries = list(COUNTRIES)
    weights = [share for share, _ in COUNTRIES.values()]
    written, batch, visitor = 0, [], 0
    while written + len(batch) < total:
        visitor += 1
        vid, country = f"h{visitor}", rng.choices(countries, weights)[0]
        for _visit in range(1 + int(rng.expovariate(1.5))):
            at = now - dt.timedelta(seconds=rng.random() * 60 * 86400)
            viewed = browse(rng, shelves)
            for pk in viewed:
                batch.append(
                    ProductInteraction(visitor_id=vid, product_id=str(pk), kind="view",
                                       created_at=at, country=country)
                )  # fmt: skip
                at += dt.timedelta(seconds=rng.randint(10, 120))
            if rng.random() < 0.17:
                for pk in viewed[: rng.randint(1, 2)]:
                    for kind in ("cart", "purchase"):
                        batch.append(
                            ProductInteraction(visitor_id=vid, product_id=str(pk), kind=kind,
                                               created_at=at, country=country)
                        )  # fmt: skip
        if len(batch) >= 20_000:
            batch = batch[: total - written]
            ProductInteraction.objects.bulk_create(batch, batch_size=CHUNK)
            written += len(batch)
            batch = []
    ProductInteraction.objects.bulk_create(batch[: total - written], batch_size=CHUNK)
    return total


def recipients(shelves: list[list[int]], total: int, seed: int = 2) -> dict[str, int]:
    """``total`` recipients, each with a visitor, written ``CHUNK`` at a time."""
    from django.utils import timezone

    from personalization.conf import app_settings
    from personalization.models import EmailRecipient, Visitor
    from personalization.profiling.referrer import SOURCES
    from personalization.profiling.visitor import control_group_bucket

    rng = random.Random(seed)
    now = timezone.now()
    control_percent = float(app_settings.CONTROL_GROUP_PERCENT)
    countries = list(COUNTRIES)
    weights = [share for share, _ in COUNTRIES.values()]
    counts = {"members": 0, "control_members": 0}
    for first in range(0, total, CHUNK):
        visitors, rows = [], []
        for n in range(first, min(total, first + CHUNK)):
            vid = f"e{n:07d}"
            country = rng.choices(countries, weights)[0]
            first_seen = now - dt.timedelta(days=rng.uniform(30, 700))
            viewed = list(dict.fromkeys(browse(rng, shelves) + browse(rng, shelves)))[:8]
            control = control_group_bucket(vid) < control_percent
            source = rng.choice(SOURCES)
            visitors.append(
                Visitor(
                    id=vid,
                    first_seen=first_seen,
                    last_seen=now - dt.timedelta(days=rng.uniform(1, 29)),
                    visit_count=rng.randint(1, 40),
                    first_source=source,
                    latest_source=rng.choice(SOURCES),
                    country_code=country,
                    time_zone=COUNTRIES[country][1],
                    in_control_group=control,
                    device=rng.choice(("desktop", "mobile", "mobile", "tablet")),
                    recently_viewed=viewed,
                    product_views={str(pk): rng.randint(1, 4) for pk in viewed},
                )
            )
            rows.append(
                EmailRecipient(
                    email=f"customer{n}@example.com",
                    visitor_id=vid,
                    consent_at=now - dt.timedelta(days=rng.uniform(4, 720)),
                    consent_text="I would like to receive the shop's newsletter.",
                    consent_source=EmailRecipient.SOURCE_IMPORT,
                )
            )
            if country in SEGMENT_COUNTRIES:
                counts["members"] += 1
                counts["control_members"] += control
        Visitor.objects.bulk_create(visitors, batch_size=1000)
        EmailRecipient.objects.bulk_create(rows, batch_size=1000)
    return counts


def campaign() -> int:
    from django.utils import timezone

    from personalization.models import EmailCampaign, Segment, SegmentRule

    segment = Segment.objects.create(name="Main markets", slug="main-markets")
    SegmentRule.objects.create(segment=segment, kind="country", value=", ".join(SEGMENT_COUNTRIES))
    return EmailCampaign.objects.create(
        name="Summer selection",
        segment=segment,
        subject=SUBJECT,
        message=MESSAGE,
        send_at=timezone.now() - dt.timedelta(seconds=1),
    ).pk


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The setup process: the database, the catalogue, the fitted lists, the recipients and
    the campaign."""
    from django.core.management import call_command

    from personalization.models import RecommendationList
    from personalization.recommendations import precompute

    started = time.perf_counter()
    call_command("migrate", verbosity=0, run_syncdb=True)
    shelves = catalogue(args.products)
    history(shelves, args.interactions)
    fit_started = time.perf_counter()
    fitted = precompute.recompute_all()
    fit_seconds = time.perf_counter() - fit_started
    counts = recipients(shelves, args.recipients)
    campaign_id = campaign()
    if args.database == "postgresql":
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    lists = {
        name: RecommendationList.objects.filter(name=name).count()
        for name in ("viewed_together", "bought_together", "bestsellers")
    }
    return {
        **counts,
        "campaign": campaign_id,
        "interactions": fitted["interactions"],
        "lists": fitted["lists"],
        "lists_by_name": lists,
        "fit_seconds": fit_seconds,
        "setup_seconds": time.perf_counter() - started,
        "setup_maxrss_mib": maxrss_mib(),
    }


# Sending --------------------------------------------------------------------------------
def send_settings(args: argparse.Namespace) -> Any:
    from django.conf import settings
    from django.test import override_settings

    personalization = {
        **settings.PERSONALIZATION,
        "EMAIL_SITE_URL": SITE_URL,
        "EMAIL_FROM": FROM,
        "EMAIL_QUIET_HOURS": None,
        "EMAIL_MAX_PER_WEEK": 100,
    }
    if args.no_flows:
        personalization["EMAIL_FLOWS"] = {}
    return override_settings(
        EMAIL_BACKEND="benchmarks.email_backend.SerializingBackend",
        PERSONALIZATION=personalization,
    )


def profile_sql() -> None:
    """``--sql-profile``: the statements the database spent most time on, printed at exit
    (time in the client, by the first 110 characters of the SQL)."""
    import atexit
    import collections
    import re

    from django.db import connection

    totals: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = re.sub(r"\s+", " ", sql)[:110]
            totals[key] += time.perf_counter() - started
            counts[key] += 1

    def report() -> None:
        for key, seconds in totals.most_common(12):
            print(f"{seconds:8.2f} s {counts[key]:7,d}  {key}", file=sys.stderr)

    connection.execute_wrappers.append(timed)
    atexit.register(report)


def run_campaign() -> list[dict[str, Any]]:
    """``run_due()`` again until it sends nothing more: each call's counts and seconds."""
    from personalization.emails import run_due

    rounds = []
    while len(rounds) < 1000:
        started = time.perf_counter()
        counts = run_due()
        rounds.append({**counts, "seconds": time.perf_counter() - started})
        if not any(counts[key] for key in ("sent", "control", "sunset", "failed", "retried")):
            break
    return rounds


def static_copy(campaign_id: int) -> tuple[str, str, str]:
    """One campaign email's subject, text and HTML: the static send's copy for everyone."""
    from personalization.models import EmailSend

    send = (
        EmailSend.objects.filter(trigger=f"campaign:{campaign_id}", status=EmailSend.SENT)
        .order_by("created_at", "pk")
        .first()
    )
    assert send is not None, "the campaign sent nothing"
    return send.subject, send.body_text, send.body_html


def addresses(campaign_id: int) -> list[tuple[int, str]]:
    """The recipients the campaign was sent to: as many emails for the static send (read
    before the static send is timed: it measures sending, as the campaign's pages do)."""
    from personalization.models import EmailRecipient, EmailSend

    sent = EmailSend.objects.filter(
        trigger=f"campaign:{campaign_id}", status=EmailSend.SENT
    ).values("recipient_id")
    rows = EmailRecipient.objects.filter(pk__in=sent).order_by("pk").values_list("pk", "email")
    return list(rows)


def static_send(recipients: list[tuple[int, str]], copy: tuple[str, str, str]) -> int:
    """The baseline: the same copy for everyone, 500 messages per ``send_messages`` of one
    connection; each with its recipient's signed List-Unsubscribe header."""
    from django.core.mail import EmailMultiAlternatives, get_connection

    from personalization.emails import links

    subject, text, html = copy
    sent = 0
    with get_connection() as connection:
        chunk: list[EmailMultiAlternatives] = []
        for recipient_id, email in recipients:
            message = EmailMultiAlternatives(
                subject=subject,
                body=text,
                from_email=FROM,
                to=[email],
                headers={
                    "List-Unsubscribe": f"<{links.unsubscribe_url(recipient_id)}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            )
            message.attach_alternative(html, "text/html")
            chunk.append(message)
            if len(chunk) == STATIC_CHUNK:
                sent += connection.send_messages(chunk)
                chunk = []
        if chunk:
            sent += connection.send_messages(chunk)
    return sent


def database_mib() -> float:
    """The database's size on disk (SQLite: the file and its WAL)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0] / 2**20
    name = Path(connection.settings_dict["NAME"])
    files = [name, name.with_name(name.name + "-wal")]
    return sum(path.stat().st_size for path in files if path.exists()) / 2**20


def outcome(campaign_id: int) -> dict[str, int]:
    from django.db.models import Count

    from personalization.models import EmailSend

    rows = (
        EmailSend.objects.filter(trigger=f"campaign:{campaign_id}")
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    return dict(rows.order_by())


# Report ---------------------------------------------------------------------------------
def affinity() -> str:
    cpus = len(os.sched_getaffinity(0))
    if cpus == 1:
        return "pinned to 1 CPU (`taskset -c 0`)"
    return f"NOT pinned: {cpus} CPUs allowed (run it under `taskset -c 0`)"


def command(args: argparse.Namespace) -> str:
    parts = ["taskset -c 0 python benchmarks/bench_email.py"]
    parts.append(f"--recipients {args.recipients}")
    parts.append(f"--database {args.database}")
    if args.interactions != 200_000:
        parts.append(f"--interactions {args.interactions}")
    if args.products != 2000:
        parts.append(f"--products {args.products}")
    if args.no_flows:
        parts.append("--no-flows")
    return " ".join(parts)


def report(args: argparse.Namespace, data: dict[str, Any]) -> str:
    from benchmarks.results import machine

    setup, personalized, static = data["setup"], data["personalized"], data["static"]
    statuses = data["statuses"]
    sent = statuses.get("sent", 0)
    ratio = personalized["seconds"] / static["seconds"] if static["seconds"] else float("nan")
    lines = [
        f"## Email: a campaign of {args.recipients:,} recipients on one core "
        f"({'PostgreSQL' if args.database == 'postgresql' else 'SQLite'})",
        "",
        f"Run on {data['date']} — {machine()}; {data['database']}; this process "
        f"{data['affinity']}; load average {data['load_before']:.1f} before the send, "
        f"{data['load_after']:.1f} after.",
        f"`{command(args)}`: {args.products:,} products in {CATEGORIES} categories; "
        f"{setup['interactions']:,} interactions of other visitors over 60 days, fitted by "
        f"`precompute.recompute_all()` into {setup['lists']:,} lists "
        f"({', '.join(f'{k} {v:,}' for k, v in setup['lists_by_name'].items())}) in "
        f"{setup['fit_seconds']:.1f} s; {args.recipients:,} recipients with a visitor each "
        f"(ten countries, a few recently viewed products), {setup['members']:,} of them in the "
        f"campaign's segment (country one of {', '.join(SEGMENT_COUNTRIES)}), "
        f"{setup['control_members']:,} of these in the control group. Lifecycle flows: "
        + ("off (`--no-flows`)." if args.no_flows else "the app's defaults (none is due).")
        + f" Setup in a process of its own: {setup['setup_seconds']:.0f} s.",
        "",
        "| send | wall s | CPU s | emails | emails/s | KiB/email | SQL statements | "
        "statements/email | backends opened | RSS before (MiB) | peak during (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, run in (
        ("personalized campaign (`run_due()` until nothing is due)", personalized),
        ("static send, 500 per `send_messages` (baseline)", static),
    ):
        emails = run["backend"]["messages"]
        rate = emails / run["seconds"] if run["seconds"] else 0.0
        size = run["backend"]["bytes"] / max(1, emails) / 1024
        lines.append(
            f"| {label} | {run['seconds']:.2f} | {run['cpu_seconds']:.2f} | {emails:,} | "
            f"{rate:,.0f} | {size:.1f} | {run['queries']:,} | "
            f"{run['queries'] / max(1, emails):.1f} | {run['backend']['connections']:,} | "
            f"{run['rss_before_mib']:.0f} | {run['peak_mib']:.0f} |"
        )
    per_100k = personalized["seconds"] / max(1, args.recipients) * 100_000
    rounds = ", ".join(
        f"{r['seconds']:.2f} s ({r['sent']:,} sent, {r['control']:,} control)"
        for r in data["rounds"]
    )
    judged = personalized["seconds"] if args.recipients >= 100_000 else per_100k
    met_time = judged <= TARGET_SECONDS
    met_memory = data["job_peak_mib"] * 2**20 <= TARGET_MB * 10**6
    lines += [
        "",
        f"Personalized campaign {personalized['seconds']:.1f} s vs static send "
        f"{static['seconds']:.1f} s (ratio {ratio:.1f}).",
        "",
        f"- Emails: {sent:,} sent, {statuses.get('control', 0):,} held out (control group), "
        f"{statuses.get('sunset', 0):,} sunset, {statuses.get('failed', 0):,} failed, "
        f"{statuses.get('pending', 0):,} left pending; expected "
        f"{setup['members'] - setup['control_members']:,} sent and "
        f"{setup['control_members']:,} held out.",
        f"- `run_due()` calls: {rounds}.",
        f"- Memory: the process's peak resident set (`ru_maxrss`) after the campaign "
        f"{data['job_peak_mib']:.0f} MiB ({data['start_rss_mib']:.0f} MiB once Django was "
        f"loaded); resident set before the campaign {personalized['rss_before_mib']:.0f} MiB, "
        f"peak during it {personalized['peak_mib']:.0f} MiB"
        + (
            f" (+{personalized['growth_mib']:.0f} MiB)"
            if personalized["growth_mib"] is not None
            else " (no growth above the earlier peak)"
        )
        + (
            ", the peak reset before each send (/proc/self/clear_refs)."
            if personalized["peak_reset"]
            else ", read before and after (the peak could not be reset)."
        )
        + f" The setup process's peak: {setup['setup_maxrss_mib']:.0f} MiB.",
        f"- The database after the campaign: {data['database_mib']:,.0f} MiB (each email's "
        "subject, text and HTML are kept in its `EmailSend` row).",
        f"- Target ({TARGET_SECONDS // 60} minutes and {TARGET_MB} MB for 100,000 recipients on "
        f"one core): "
        + (
            f"{personalized['seconds']:.0f} s"
            if args.recipients >= 100_000
            else f"{per_100k:.0f} s by a linear projection of this run to 100,000"
        )
        + f", {'within' if met_time else 'OVER'} the time; peak {data['job_peak_mib']:.0f} MiB"
        + ("" if args.recipients >= 100_000 else " at this size")
        + f", {'within' if met_memory else 'OVER'} the memory.",
    ]
    return "\n".join(lines)


# Main -----------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--interactions", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--no-flows", action="store_true", help="switch the lifecycle flows off")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument(
        "--sql-profile", action="store_true", help="print where the database time went"
    )
    # Internal: the setup process.
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sqlite-path", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.setup_only:
        setup_django(args)
        args.state.write_text(json.dumps(build(args)))
        return

    workdir = Path(tempfile.mkdtemp(prefix="pzn-bench-email-"))
    args.sqlite_path = str(workdir / "db.sqlite3")
    state = workdir / "setup.json"
    if args.database == "postgresql":
        recreate_postgresql()
    try:
        print(f"setup: {args.recipients:,} recipients on {args.database} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--setup-only", "--state", str(state),
             "--sqlite-path", args.sqlite_path],
            check=True,
        )  # fmt: skip
        setup = json.loads(state.read_text())
        data = measure(args, setup)
    finally:
        from django.db import connections

        connections.close_all()
        if args.database == "postgresql" and not args.keep:
            drop_postgresql()
        if args.keep:
            print(f"kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    section = report(args, data)
    print(section)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
    if args.write:
        from benchmarks.results import write_section

        write_section(f"bench_email_{args.database}", section)


def measure(args: argparse.Namespace, setup: dict[str, Any]) -> dict[str, Any]:
    setup_django(args)
    from django.utils import timezone

    # What the job imports, imported before the process's memory is read.
    from personalization.emails import flows, sending

    assert flows and sending

    start_rss = status_kib("VmRSS") / 1024
    campaign_id = setup["campaign"]
    data: dict[str, Any] = {
        "date": timezone.localdate().isoformat(),
        "database": describe_database(),
        "affinity": affinity(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "arguments": {k: str(v) for k, v in vars(args).items() if k not in ("state",)},
        "setup": setup,
        "start_rss_mib": start_rss,
        "load_before": os.getloadavg()[0],
    }
    print("personalized campaign ...", file=sys.stderr)
    with send_settings(args):
        if args.sql_profile:
            profile_sql()
        personalized = measured(run_campaign)
        data["job_peak_mib"] = maxrss_mib()
        data["rounds"] = personalized.pop("result")
        data["personalized"] = personalized
        data["statuses"] = outcome(campaign_id)
        copy = static_copy(campaign_id)
        print("static send ...", file=sys.stderr)
        recipients = addresses(campaign_id)
        static = measured(lambda: static_send(recipients, copy))
        static["result"] = static.pop("result")
        data["static"] = static
    data["load_after"] = os.getloadavg()[0]
    data["database_mib"] = database_mib()
    data["final_maxrss_mib"] = maxrss_mib()
    return data


if __name__ == "__main__":
    main()
