"""Benchmark: the demo shop over HTTP (gunicorn, PostgreSQL, Redis), with and without
personalization.

Serves the demo shop on its production settings (DEBUG off, PostgreSQL, Redis as the cache)
with gunicorn (3 workers x 4 threads) and loads its pages with wrk (32 connections) as
returning visitors (64 cookies, taken in turn), alternating, round by round, between the shop
with VisitorMiddleware and the same shop without it, whose pages render their defaults (no
profile, no exposure, no write). Writes the medians of requests per second and of the median
latency to benchmarks/RESULTS.md.

    python benchmarks/bench_http.py [--rounds 3] [--seconds 10]

Needs wrk (Debian: ``apt install wrk``), gunicorn (``pip install -e ".[demo]"``), PostgreSQL
(PZN_BENCH_HTTP_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/pzn_http) and Redis
(PZN_BENCH_HTTP_REDIS_URL, default redis://127.0.0.1:6379/7, emptied first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import machine, write_section  # noqa: E402

DATABASE_URL = os.environ.get(
    "PZN_BENCH_HTTP_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/pzn_http"
)
REDIS_URL = os.environ.get("PZN_BENCH_HTTP_REDIS_URL", "redis://127.0.0.1:6379/7")
COOKIES = 64


def environment(middleware: bool) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "benchmarks.http_settings",
        "PZN_BENCH_MIDDLEWARE": "on" if middleware else "off",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "benchmark-only-key-" + "x" * 40,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "PERSONALIZATION_LOG_LEVEL": "WARNING",
    }


def ensure_database() -> None:
    import psycopg

    url = urlsplit(DATABASE_URL)
    name = url.path.lstrip("/")
    with psycopg.connect(
        host=url.hostname, port=url.port or 5432, user=url.username or "postgres",
        password=url.password or None, dbname="postgres", autocommit=True,
    ) as admin:  # fmt: skip
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def manage(*args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment(True), check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port: int, path: str, cookie: str = "") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


class Server:
    """gunicorn serving the demo shop, with or without the middleware."""

    def __init__(self, middleware: bool) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "shop_demo.wsgi:application",
             "--workers", "3", "--threads", "4", "--worker-class", "gthread",
             "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"],
            cwd=ROOT, env=environment(middleware),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(self.port, "/").status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                sys.exit("gunicorn did not start")
            time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def returning_cookies(port: int) -> list[str]:
    """Cookies of returning visitors: a first page sets the cookie, a second one writes the
    visitor's row (cookieless clients cost no write)."""
    cookies = []
    for _ in range(COOKIES):
        first = get(port, "/")
        cookie = "; ".join(
            value.split(";", 1)[0]
            for name, value in first.getheaders()
            if name.lower() == "set-cookie" and value.startswith("pzn_vid=")
        )
        get(port, "/", cookie)
        cookies.append(cookie)
    return cookies


LUA = """
local cookies = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, {["Cookie"] = cookies[(i %% #cookies) + 1]})
end
"""


def wrk(port: int, path: str, script: str, seconds: float) -> tuple[float, float, int]:
    """Requests per second, median latency (ms) and non-2xx answers of one wrk run."""
    output = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{max(1, round(seconds))}s", "--latency", "-s", script,
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    found = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = float(found.group(1)) * scale[found.group(2)] if found else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return rate, latency, int(errors.group(1)) if errors else 0


def pages() -> list[tuple[str, str]]:
    os.environ.update(environment(True))
    import django

    django.setup()
    from shop_demo.catalog.models import Category, Product

    category = Category.objects.order_by("pk").first()
    product = Product.objects.order_by("pk").first()
    assert category is not None and product is not None
    return [
        ("home page", "/"),
        ("category page", f"/categories/{category.slug}/"),
        ("product page", f"/products/{product.slug}/"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_http.py needs wrk (Debian: apt install wrk)")
    ensure_database()
    manage("demo_setup")
    manage("collectstatic", "--noinput")
    flush_redis()
    targets = pages()
    with tempfile.TemporaryDirectory() as folder:
        server = Server(middleware=True)
        cookies = returning_cookies(server.port)
        server.stop()
        script = Path(folder) / "cookies.lua"
        script.write_text(LUA % ", ".join(f'"{cookie}"' for cookie in cookies))
        found: dict[tuple[str, bool], list[tuple[float, float]]] = {}
        errors = 0
        for number in range(args.rounds):
            order = [True, False] if number % 2 == 0 else [False, True]
            for middleware in order:
                server = Server(middleware)
                try:
                    for _label, path in targets:  # warm up every worker
                        wrk(server.port, path, str(script), 2)
                    for label, path in targets:
                        rate, latency, failed = wrk(server.port, path, str(script), args.seconds)
                        errors += failed
                        found.setdefault((label, middleware), []).append((rate, latency))
                        print(label, "with" if middleware else "without", rate, latency,
                              failed, flush=True)  # fmt: skip
                finally:
                    server.stop()
    rows = []
    for label, _path in targets:
        with_rates = [rate for rate, _ in found[(label, True)]]
        without_rates = [rate for rate, _ in found[(label, False)]]
        with_latency = statistics.median(latency for _, latency in found[(label, True)])
        without_latency = statistics.median(latency for _, latency in found[(label, False)])
        rate_with, rate_without = statistics.median(with_rates), statistics.median(without_rates)
        rows.append(
            f"| {label} | {rate_without:.0f} | {rate_with:.0f} | {rate_without / rate_with:.3f} "
            f"| {without_latency:.1f} | {with_latency:.1f} |"
        )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    p50 = "personalized p50"
    body = f"""
## The demo shop over HTTP (gunicorn, PostgreSQL, Redis)

Run on {today} — {machine()}; PostgreSQL, Redis cache, gunicorn.
`python benchmarks/bench_http.py --rounds {args.rounds} --seconds {args.seconds:g}`: the demo
shop on its production settings (DEBUG off) under gunicorn (3 workers x 4 threads, gthread),
loaded by wrk (2 threads, 32 connections, {args.seconds:g} s a page and round) as 64 returning
visitors taken in turn, on the same 2 cores as the server, PostgreSQL and Redis. *Defaults*
is the same shop without `VisitorMiddleware`: its banner and popup tags render their
defaults and recommendations the fallback for an unknown visitor, and nothing is written.
Medians over {args.rounds} rounds, the two alternating; the ratio is the time a request takes
with personalization against defaults (requests per second, inverted).

| page | defaults (req/s) | personalized (req/s) | ratio | defaults p50 (ms) | {p50} (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

Answers other than 2xx or 3xx: {errors}. Target: personalized pages at most 1.20x.
"""
    print(body)
    if not args.no_write:
        write_section("bench_http", body)


if __name__ == "__main__":
    main()
