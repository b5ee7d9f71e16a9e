"""Benchmark: what VisitorMiddleware adds to a page, and what a GeoIP lookup costs.

Runs the same pages through Django's full handler with and without the middleware, in one
process and interleaved rounds, for a new visitor (no cookie) and a returning one (cookie,
warm cache). Prints a Markdown table and writes it into benchmarks/RESULTS.md.

    python benchmarks/bench_middleware.py [--rounds 30] [--batch 200]

With PZN_TEST_DATABASE_URL and PZN_TEST_REDIS_URL (see tests/settings.py) it runs on
PostgreSQL and Redis and writes a section of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from benchmarks.results import machine, write_section  # noqa: E402

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
MIDDLEWARE_PATH = "personalization.middleware.VisitorMiddleware"


def setup_data(geoip_path: Path) -> str:
    """Seed the demo shop's catalog (160 products with images) into a fresh database."""
    from shop_demo.catalog.models import Product

    call_command("migrate", verbosity=0, run_syncdb=True)
    call_command("demo_setup", verbosity=0)  # writes the GeoIP file at GEOIP_PATH too
    return Product.objects.filter(category__slug="camping").order_by("pk")[3].slug


def per_request_us(client: Client, path: str, batch: int, cookie: str | None) -> float:
    extra = {"REMOTE_ADDR": "81.2.69.142"}
    start = time.perf_counter()
    for _ in range(batch):
        if cookie is None:
            client.cookies.clear()
        client.get(path, **extra)
    return (time.perf_counter() - start) / batch * 1e6


def make_clients() -> tuple[Client, Client]:
    with_mw = Client(HTTP_USER_AGENT=UA)
    without_mw = Client(HTTP_USER_AGENT=UA)
    without = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    with override_settings(MIDDLEWARE=without):
        without_mw.get("/")  # the handler loads its middleware chain on the first request
    with_mw.get("/")
    return with_mw, without_mw


def measure(rounds: int, batch: int, pages: dict[str, str]) -> list[dict]:
    rows = []
    for visitor in ("returning", "new"):
        for page, path in pages.items():
            with_mw, without_mw = make_clients()
            cookie = "keep" if visitor == "returning" else None
            for client in (with_mw, without_mw):  # warm: cookie, cache, product info
                per_request_us(client, path, 20, cookie)
            with_times, without_times = [], []
            for _ in range(rounds):
                with_times.append(per_request_us(with_mw, path, batch, cookie))
                without_times.append(per_request_us(without_mw, path, batch, cookie))
            if cookie is None:
                with_mw.cookies.clear()
                without_mw.cookies.clear()
            with CaptureQueriesContext(connection) as with_q:
                with_mw.get(path)
            with CaptureQueriesContext(connection) as without_q:
                without_mw.get(path)
            with_median = statistics.median(with_times)
            without_median = statistics.median(without_times)
            rows.append(
                {
                    "visitor": visitor,
                    "page": page,
                    "without": without_median,
                    "with": with_median,
                    "ratio": with_median / without_median,
                    "extra_queries": len(with_q) - len(without_q),
                }
            )
    return rows


def measure_geoip(rounds: int) -> dict:
    from personalization.profiling import geo

    ips = [f"81.2.69.{i}" for i in range(256)] + [f"89.160.20.{i}" for i in range(128, 256)]
    cold, warm, proxies = [], [], []
    meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9, 81.2.69.142"}
    for _ in range(rounds):
        geo.close_reader()
        geo.lookup("81.2.69.1")  # open the reader outside the timing
        geo.close_reader()
        geo.lookup("81.2.69.1")
        start = time.perf_counter()
        for ip in ips:  # first lookup of each address: a real read of the .mmdb
            geo.lookup(ip)
        cold.append((time.perf_counter() - start) / len(ips) * 1e6)
        start = time.perf_counter()
        for ip in ips:  # memoised
            geo.lookup(ip)
        warm.append((time.perf_counter() - start) / len(ips) * 1e6)
        start = time.perf_counter()
        for _ in range(len(ips)):
            geo.client_ip(meta, 1)
        proxies.append((time.perf_counter() - start) / len(ips) * 1e6)
    return {
        "cold": statistics.median(cold),
        "warm": statistics.median(warm),
        "client_ip": statistics.median(proxies),
    }


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| visitor | page | without (µs) | with (µs) | added (µs) | ratio | extra SQL queries |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['visitor']} | {row['page']} | {row['without']:.0f} | {row['with']:.0f} "
            f"| {row['with'] - row['without']:.0f} | {row['ratio']:.3f} | {row['extra_queries']} |"
        )
    return lines


def backends() -> str:
    database = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(
        connection.vendor, connection.vendor
    )
    backend = settings.CACHES["default"]["BACKEND"]
    cache = "Redis cache" if "redis" in backend.lower() else "local-memory cache"
    return f"{database}, {cache}"


def command_prefix() -> str:
    """The environment a PostgreSQL and Redis run was given (tests/settings.py reads it)."""
    names = ("PZN_TEST_DATABASE_URL", "PZN_TEST_REDIS_URL")
    return "".join(f"{name}=… " for name in names if os.environ.get(name))


def render(profiling: list[dict], personalized: list[dict], geoip: dict, args: Any) -> str:
    today = dt.date.today().isoformat()
    lines = [
        "## VisitorMiddleware overhead"
        + ("" if connection.vendor == "sqlite" else f" ({backends()})"),
        "",
        f"Run on {today} — {machine()}, {backends()}.",
        f"`{command_prefix()}python benchmarks/bench_middleware.py --rounds {args.rounds} "
        f"--batch {args.batch}`:",
        f"each cell is the median over {args.rounds} interleaved rounds of the mean time of",
        f"{args.batch} requests through Django's full handler (test client, the demo shop's",
        "other middleware on), with and without `VisitorMiddleware`, over the demo shop's",
        "seeded catalog. A GeoIP City database is configured and every request comes from a",
        "London address. *Returning*: the cookie is sent (warm cache); *new*: no cookie.",
        "",
        "### Profiling alone (pages without personalized content)",
        "",
        "The category page renders 12 products from one query; the bare page returns a",
        "constant `HttpResponse` (nothing but the middleware does any work, the worst case for",
        "a ratio). Within a visit neither reads the profile: the signed cookie says when the",
        "visitor was last seen, and is set again every 15 s. The product page renders one",
        "product from one query and is recorded as a view: the profile is read and saved in",
        "the cache, and the view's `ProductInteraction` row goes to the process's background",
        "writer, which writes a second's views in one `INSERT` (its time is in the figures, its",
        "statement is not among the request's queries). *View written in the request* is the",
        "same page with `VIEW_WRITE_DELAY_SECONDS = 0`: one `INSERT` of its own, with its",
        "`BEGIN` and `COMMIT` on PostgreSQL.",
        "",
        *table(profiling),
        "",
        "Target: a returning visitor's page costs at most 10% more than without the middleware,",
        "with 0 extra queries on plain pages.",
        "",
        "### The demo shop's pages, with their personalized content",
        "",
        "The same comparison on the demo's real pages, which render a personalized banner, the",
        "signup popup (a first-time visitor who never dismisses it) and the page script: the",
        "added time is the whole cost of personalization — profiling, segments, choosing and",
        "rendering the content, recommendations included (two lists on the home and product",
        "pages, one on category pages) — and the extra queries are the page's one write:",
        "its exposures in one `INSERT` (the product view goes to the background writer); on",
        "PostgreSQL in a transaction of its own that commits without waiting for the disk",
        "(`BEGIN`, the `INSERT` with `synchronous_commit` off, `COMMIT`: three entries).",
        "A *new* visitor's rows wait for the cookie to come back: no query. Without the",
        "middleware the banner and popup tags render their defaults and recommendations are",
        "the blend's fallback for an unknown visitor (the same product queries, no exposure).",
        "",
        *table(personalized),
        "",
        "GeoIP (`personalization.profiling.geo`, a City database written by",
        "`personalization.testutils.write_geoip_database`):",
        "",
        "| operation | median µs |",
        "| --- | ---: |",
        f"| `lookup()` of an address not seen before (reads the .mmdb) | {geoip['cold']:.2f} |",
        f"| `lookup()` of an address seen before (in-process memo) | {geoip['warm']:.2f} |",
        f"| `client_ip()` with one trusted proxy | {geoip['client_ip']:.2f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    setup_test_environment()
    settings.DEBUG = False
    from shop_demo import settings as demo

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and database["NAME"] == ":memory:":
        # A file, as a shop's: the background writer's thread opens it too.
        database["NAME"] = str(Path(tempfile.mkdtemp(prefix="pzn-bench-")) / "db.sqlite3")
        database["OPTIONS"] = demo.SQLITE_OPTIONS  # the demo shop's

    with tempfile.TemporaryDirectory() as tmp:
        geoip_path = Path(tmp) / "bench-city.mmdb"
        demo_settings = override_settings(
            ROOT_URLCONF="benchmarks.urls",
            TEMPLATES=demo.TEMPLATES,
            MIDDLEWARE=[m for m in demo.MIDDLEWARE if "PretendIP" not in m],
            MEDIA_ROOT=Path(tmp) / "media",
            MEDIA_URL="/media/",
            PERSONALIZATION={
                **demo.PERSONALIZATION,
                "GEOIP_PATH": str(geoip_path),
                "PRODUCT_VIEW_URLS": {"catalog:product-detail": "slug", "plain-product": "slug"},
            },
        )
        with demo_settings:
            slug = setup_data(geoip_path)
            profiling = measure(
                args.rounds,
                args.batch,
                {
                    "category page": "/plain/categories/camping/",
                    "product page": f"/plain/products/{slug}/",
                    "bare page": "/bare/",
                },
            )
            inline = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 0}
            with override_settings(PERSONALIZATION=inline):
                profiling += measure(
                    args.rounds,
                    args.batch,
                    {"product page, view written in the request": f"/plain/products/{slug}/"},
                )
            personalized = measure(
                args.rounds,
                args.batch,
                {
                    "demo home page": "/",
                    "demo category page": "/categories/camping/",
                    "demo product page": f"/products/{slug}/",
                },
            )
            geoip = measure_geoip(args.rounds)
    section = render(profiling, personalized, geoip, args)
    print(section)
    if not args.no_write:
        suffix = "" if connection.vendor == "sqlite" else f"_{connection.vendor}"
        write_section("bench_middleware" + suffix, section)


if __name__ == "__main__":
    main()
