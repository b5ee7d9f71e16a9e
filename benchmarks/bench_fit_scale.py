"""Benchmark: the nightly recommendation fit on 10 million interactions in PostgreSQL, in one
process and as a Celery chord across two worker processes.

Data: the UCI Online Retail baskets (``benchmarks/convert_online_retail.py``) replayed by
synthetic visitors over the 90 days before the fit: 60% of the visitors browse a few products of
one basket; the others replay one to three consecutive baskets of one customer, viewing every
line, putting 22% of them in the cart and buying half of those. Each visitor shops in one of
ten copies of the catalogue (36,000 products; categories from the stock code's first two
digits), from the customer's country. Loaded with COPY into a database of its own
(``PZN_BENCH_DATABASE_URL``, default ``postgresql://postgres@127.0.0.1:5432/pzn_fit_scale``),
created for the run and dropped after it (``--keep`` keeps it; ``--reuse`` fits on a kept one).

Each round, the same ``now`` for both fits:

- **one process**: ``precompute.recompute_all(now)`` with ``RECOMMENDATION_FIT_PARTS`` off, in a
  fresh process: wall time, peak RSS (``ru_maxrss``);
- **chord**: ``--workers`` fresh ``celery worker -c 1 --prefetch-multiplier 1`` processes (Redis
  broker and result backend, ``PZN_BENCH_BROKER_URL``, default ``redis://127.0.0.1:6379/7``);
  ``recompute_all(now)`` with ``RECOMMENDATION_FIT_PARTS`` = ``--parts`` sends
  ``chord(group(parts), finish)``; wall time from the call until the callback switched the
  lists in, and each worker's peak RSS (``VmHWM`` of its pool process, which runs the tasks).

The lists served after each fit are compared (an MD5 over every list): they must be equal.

    python benchmarks/bench_fit_scale.py [--interactions 10000000] [--rounds 3] [--workers 2]
        [--parts auto] [--keep | --reuse] [--write]
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime as dt
import io
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "PZN_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/pzn_fit_scale"
)
BROKER_URL = os.environ.get("PZN_BENCH_BROKER_URL", "redis://127.0.0.1:6379/7")
# benchmarks/scale_settings.py: the test settings on that database; tests/settings.py takes the
# Celery broker and result backend from PZN_TEST_CELERY_BROKER. The workers inherit these.
os.environ["PZN_BENCH_DATABASE_URL"] = DATABASE_URL
os.environ["PZN_TEST_CELERY_BROKER"] = BROKER_URL
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.scale_settings"
os.environ.pop("PZN_TEST_REDIS_URL", None)
os.environ.pop("PZN_TEST_DATABASE_URL", None)

import django  # noqa: E402

django.setup()

from benchmarks import convert_online_retail  # noqa: E402
from benchmarks.results import machine, postgres_admin, write_section  # noqa: E402

VARIANTS = 10
DAYS = 90
BROWSERS = 0.6
CART_SHARE = 0.22
BUY_SHARE = 0.5
CELERY = str(Path(sys.executable).with_name("celery"))


# Data ---------------------------------------------------------------------------------------
def baskets() -> tuple[dict[str, list[list[str]]], dict[str, str]]:
    """Each customer's baskets (the lines of one invoice time), in order, and their country."""
    events = convert_online_retail.DEFAULT_OUT
    if not events.exists():
        convert_online_retail.convert(convert_online_retail.SOURCE, events)
    lines: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    country: dict[str, str] = {}
    with events.open(newline="", encoding="utf-8") as source:
        for row in csv.DictReader(source):
            lines[(row["visitor_id"], row["timestamp"])].append(row["product_id"])
            country[row["visitor_id"]] = row["country"]
    by_customer: dict[str, list[list[str]]] = collections.defaultdict(list)
    for (customer, _), products in sorted(lines.items(), key=lambda item: item[0][1]):
        by_customer[customer].append(products)
    return dict(by_customer), country


def interactions(total: int, now: dt.datetime, seed: int = 1):  # type: ignore[no-untyped-def]
    """(visitor, product key, kind, country, created_at) of ``total`` synthetic interactions."""
    latest = now - dt.timedelta(seconds=1)
    for visitor, product, kind, country, at in _replayed(total, now, seed):
        yield visitor, product, kind, country, min(at, latest)


def _replayed(total: int, now: dt.datetime, seed: int):  # type: ignore[no-untyped-def]
    by_customer, country_of = baskets()
    customers = sorted(by_customer)
    rng = random.Random(seed)
    made = visitor = 0
    while made < total:
        visitor += 1
        customer = rng.choice(customers)
        vid = f"v{visitor:021d}"
        variant = visitor % VARIANTS
        country = country_of[customer]
        at = now - dt.timedelta(seconds=rng.random() * DAYS * 86400)
        history = by_customer[customer]
        if rng.random() < BROWSERS:
            basket = rng.choice(history)
            for code in rng.sample(basket, min(rng.randint(1, 6), len(basket))):
                yield vid, (code, variant), "view", country, at
                at += dt.timedelta(seconds=rng.randint(10, 120))
                made += 1
            continue
        start = rng.randrange(len(history))
        for basket in history[start : start + rng.randint(1, 3)]:
            for code in basket:
                yield vid, (code, variant), "view", country, at
                made += 1
                if rng.random() < CART_SHARE:
                    yield vid, (code, variant), "cart", country, at + dt.timedelta(seconds=5)
                    made += 1
                    if rng.random() < BUY_SHARE:
                        yield vid, (code, variant), "purchase", country, at
                        made += 1
                at += dt.timedelta(seconds=rng.randint(10, 120))
            at += dt.timedelta(days=rng.random() * 10)


def load(total: int, now: dt.datetime) -> dict[str, int]:
    """The catalogue and ``total`` interactions, by COPY."""
    from django.db import connection

    from personalization.models import ProductInteraction
    from tests.testapp.models import Category, Product

    product_pk: dict[tuple[str, int], int] = {}
    categories: dict[str, int] = {}
    table = ProductInteraction._meta.db_table
    columns = "visitor_id, product_id, kind, quantity, country, created_at"
    written = 0
    buffer = io.StringIO()
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for vid, product, kind, country, at in interactions(total, now):
            pk = product_pk.setdefault(product, len(product_pk) + 1)
            buffer.write(f"{vid}\t{pk}\t{kind}\t1\t{country}\t{at.isoformat()}\n")
            written += 1
            if written % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
                if written % 1_000_000 == 0:
                    print(f"  {written:,} interactions", flush=True)
        copy.write(buffer.getvalue())
    for code, variant in product_pk:
        categories.setdefault(f"{code[:2]}-{variant}", len(categories) + 1)
    Category.objects.bulk_create(
        Category(pk=pk, slug=f"c{key}", name=f"Category {key}") for key, pk in categories.items()
    )
    Product.objects.bulk_create(
        (
            Product(pk=pk, name=f"{code} ({variant})", slug=f"p{pk}", price=1 + pk % 40,
                    category_id=categories[f"{code[:2]}-{variant}"])
            for (code, variant), pk in product_pk.items()
        ),
        batch_size=5000,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    return {"interactions": written, "products": len(product_pk), "categories": len(categories)}


def data_figures() -> dict[str, Any]:
    from django.db import connection

    from personalization.models import ProductInteraction

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(DISTINCT visitor_id), count(DISTINCT product_id) "
            f"FROM {ProductInteraction._meta.db_table}"
        )
        total, visitors, products = cursor.fetchone()
    kinds = dict(
        ProductInteraction.objects.order_by()
        .values_list("kind")
        .annotate(n=django.db.models.Count("id"))
        .values_list("kind", "n")
    )
    return {"interactions": total, "visitors": visitors, "products": products, "kinds": kinds}


# Databases ----------------------------------------------------------------------------------
def _admin() -> Any:
    return postgres_admin(DATABASE_URL)


def _database_name() -> str:
    return urlsplit(DATABASE_URL).path.lstrip("/") or "pzn_fit_scale"


def recreate_database() -> None:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{_database_name()}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{_database_name()}"')


def drop_database() -> None:
    from django.db import connections

    connections.close_all()
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{_database_name()}" WITH (FORCE)')


def digest() -> tuple[int, str]:
    """How many lists are served, and an MD5 over all of them."""
    from django.db import connection

    from personalization.models import RecommendationList

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), md5(string_agg(md5(name || chr(31) || key || chr(31) || "
            f"items::text), '' ORDER BY name, key)) FROM {RecommendationList._meta.db_table} "
            "WHERE fit = ''"
        )
        count, checksum = cursor.fetchone()
    return int(count), str(checksum)


# One fit in a fresh process -----------------------------------------------------------------
def fit_in_this_process(now: dt.datetime, parts: str | None) -> dict[str, Any]:
    """``recompute_all(now)``; with ``parts``, sent to the workers and awaited."""
    from celery.result import AsyncResult
    from django.conf import settings
    from django.test.utils import override_settings

    from personalization.recommendations import precompute
    from tests.celery_app import app

    app.conf.task_always_eager = False
    split = {**settings.PERSONALIZATION, "RECOMMENDATION_FIT_PARTS": parts}
    started = time.perf_counter()
    with override_settings(PERSONALIZATION=split):
        result = precompute.recompute_all(now)
    if parts:
        assert result.get("queued"), result
        result = AsyncResult(result["task"], app=app).get(timeout=3 * 3600)
    result["wall_s"] = time.perf_counter() - started
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def in_fresh_process(now: dt.datetime, parts: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--fit-now", now.isoformat(), "--parts", parts or "off"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# Workers ------------------------------------------------------------------------------------
def start_workers(count: int) -> list[subprocess.Popen]:
    from tests.celery_app import app

    app.control.purge()
    workers = []
    for number in range(count):
        log = open(f"/tmp/pzn_fit_scale_worker{number}.log", "w")  # noqa: SIM115
        command = [CELERY, "-A", "tests.celery_app", "worker", "-c", "1", "-P", "prefork",
                   "--prefetch-multiplier", "1", "-n", f"fit{number}@%h", "--without-gossip",
                   "--without-mingle", "--without-heartbeat", "-l", "INFO"]  # fmt: skip
        env = dict(os.environ, PZN_CELERY_WORKER="1")  # tests/settings.py: not eager
        workers.append(
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        )
    deadline = time.monotonic() + 60
    while len(app.control.ping(timeout=1.0) or []) < count:
        if time.monotonic() > deadline:
            stop_workers(workers)
            raise RuntimeError("the Celery workers did not start (see /tmp/pzn_fit_scale_*.log)")
    return workers


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker_peaks(workers: list[subprocess.Popen]) -> list[dict[str, float]]:
    """Each worker's pool process's peak RSS (it runs the tasks), and its main process's."""
    return [
        {
            "pool": max((peak_rss_mib(child) for child in children(worker.pid)), default=0.0),
            "main": peak_rss_mib(worker.pid),
        }
        for worker in workers
    ]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


# The run ------------------------------------------------------------------------------------
def run_rounds(args: argparse.Namespace, now: dt.datetime) -> list[dict[str, Any]]:
    rounds = []
    for number in range(args.rounds):
        print(f"round {number + 1}: one process ...", flush=True)
        single = in_fresh_process(now, None)
        single_digest = digest()
        print(f"  {single['wall_s']:.1f} s, {single['peak_rss_mib']:.0f} MiB", flush=True)
        workers = start_workers(args.workers)
        try:
            print(f"round {number + 1}: chord across {args.workers} workers ...", flush=True)
            chord = in_fresh_process(now, args.parts)
            peaks = worker_peaks(workers)
        finally:
            stop_workers(workers)
        chord_digest = digest()
        print(f"  {chord['wall_s']:.1f} s, workers' peaks {peaks}", flush=True)
        assert "abandoned" not in chord, chord
        assert chord_digest == single_digest, (chord_digest, single_digest)
        rounds.append({"single": single, "chord": chord, "peaks": peaks, "lists": chord_digest[0]})
    return rounds


def section(args: argparse.Namespace, data: dict[str, Any], rounds: list[dict[str, Any]]) -> str:
    single = [r["single"]["wall_s"] for r in rounds]
    chord = [r["chord"]["wall_s"] for r in rounds]
    single_rss = [r["single"]["peak_rss_mib"] for r in rounds]
    pools = [[peak["pool"] for peak in r["peaks"]] for r in rounds]
    mains = [[peak["main"] for peak in r["peaks"]] for r in rounds]
    median_single, median_chord = statistics.median(single), statistics.median(chord)
    last = rounds[-1]["chord"]
    parts = sorted(last.get("part_results", []), key=lambda part: part["part"])
    part_rows = "\n".join(
        f"| {part['part'] + 1} | {part['units']} | {part['read_s']:.1f} | "
        f"{part['seconds'] - part['read_s']:.1f} | {part['lists']:,} |"
        for part in parts
    )
    kinds = data["kinds"]
    today = dt.date.today().isoformat()
    rounds_single = ", ".join(f"{seconds:.1f}" for seconds in single)
    rounds_chord = ", ".join(f"{seconds:.1f}" for seconds in chord)
    single_row = (
        f"| `recompute_all`, one process | {median_single:.1f} | {rounds_single} | 1.00 | "
        f"{max(single_rss):.0f} |"
    )
    chord_row = (
        f"| chord, {args.workers} workers, parts `{args.parts}` | {median_chord:.1f} | "
        f"{rounds_chord} | {median_chord / median_single:.2f} | "
        f"{max(max(p) for p in pools):.0f} per worker |"
    )
    worker_peaks = "; ".join(" and ".join(f"{peak:.0f}" for peak in round_) for round_ in pools)
    return f"""
## Recommendations: the nightly fit on 10 million interactions, in one process and in parts

Run on {today} — {machine()}; PostgreSQL {data["pg_version"]}, Redis as Celery broker and
result backend. `python benchmarks/bench_fit_scale.py --interactions {args.interactions}
--rounds {args.rounds} --workers {args.workers} --parts {args.parts}`.

Data: {data["interactions"]:,} interactions over {DAYS} days ({kinds.get("view", 0):,} views,
{kinds.get("cart", 0):,} cart additions, {kinds.get("purchase", 0):,} purchases) of
{data["visitors"]:,} visitors on {data["products"]:,} products: the Online Retail baskets
replayed by synthetic visitors (the script's docstring), loaded by COPY in
{data["load_s"]:.0f} s. Every fit writes {rounds[-1]["lists"]:,} lists, the same in both
ways (an MD5 over every list served, compared after each fit).

| fit | median wall s | rounds (s) | ratio to one process | peak RSS (MiB) |
| --- | ---: | --- | ---: | ---: |
{single_row}
{chord_row}

Each worker is `celery worker -c 1 --prefetch-multiplier 1`; its peak RSS is its pool
process's `VmHWM` (the process that runs the tasks), per round: {worker_peaks} MiB; the
workers' main processes stayed under {max(max(m) for m in mains):.0f} MiB. Targets: at most
10 minutes with {args.workers} workers, at most 4 GB each.

The parts of the last chord (a worker reads and encodes the interactions for the first part
it takes, and keeps them for the next ones):

| part | families | reading s | fitting and writing s | lists |
| --- | --- | ---: | ---: | ---: |
{part_rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--parts", default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="fit on the kept database")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    parser.add_argument("--fit-now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_now:  # a child: one fit, its figures as the last line
        parts = None if args.parts == "off" else args.parts
        result = fit_in_this_process(dt.datetime.fromisoformat(args.fit_now), parts)
        print(json.dumps(result, default=str))
        return

    from django.core.management import call_command
    from django.db import connection

    from personalization.models import SharedState

    if not args.reuse:
        recreate_database()
        call_command("migrate", verbosity=0)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        started = time.perf_counter()
        print(f"loading {args.interactions:,} interactions ...", flush=True)
        load(args.interactions, now)
        loaded = f"{time.perf_counter() - started:.1f}"
        SharedState.objects.create(key="bench-fit-scale-now", value=now.isoformat())
        SharedState.objects.create(key="bench-fit-scale-load", value=loaded)
    state = dict(
        SharedState.objects.filter(key__startswith="bench-fit-scale").values_list("key", "value")
    )
    now = dt.datetime.fromisoformat(state["bench-fit-scale-now"])
    try:
        data = data_figures()
        data["load_s"] = float(state["bench-fit-scale-load"])
        data["pg_version"] = connection.pg_version // 10000
        print(f"data: {data}", flush=True)
        rounds = run_rounds(args, now)
    finally:
        if not args.keep and not args.reuse:
            drop_database()
    if not rounds:
        return
    body = section(args, data, rounds)
    print(body)
    if args.write:
        write_section("bench_fit_scale", body)


if __name__ == "__main__":
    main()
