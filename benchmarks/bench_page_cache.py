"""Benchmark: a page cached whole with personal fragments, against the same page uncached,
over HTTP (gunicorn, PostgreSQL, Redis).

The demo shop's home page (a personal hero banner, two recommendation rows, the popup) on its
production settings under gunicorn, loaded by wrk as 64 returning visitors taken in turn:

- **uncached**: personalization renders in the page (``PAGE_CACHE`` off, no page cache);
- **cached whole**: ``DEMO_PAGE_CACHE=1`` — Django's per-site cache (in Redis) serves the
  page, and each page view also asks ``personalization/fragments/`` for the visitor's banner,
  rows and popup (``PAGE_CACHE`` on). Measured apart: the cached page, the fragment request,
  and what a page view costs with both (``1 / (1/page + 1/fragments)``).

Medians over rounds, the two set-ups alternating, each in a fresh gunicorn. Same needs as
``bench_http.py`` (wrk, gunicorn, PostgreSQL, Redis).

    python benchmarks/bench_page_cache.py [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_http  # noqa: E402
from benchmarks.results import machine, write_section  # noqa: E402

COOKIES = 64
FRAGMENT_RE = re.compile(r'data-pzn-fragment="([^"]*)"')


class Server(bench_http.Server):
    """gunicorn serving the demo shop, its pages cached whole or not."""

    def __init__(self, cached: bool) -> None:
        environment = bench_http.environment

        def with_cache(middleware: bool) -> dict[str, str]:
            return {**environment(middleware), "DEMO_PAGE_CACHE": "1" if cached else "0"}

        bench_http.environment = with_cache
        try:
            super().__init__(middleware=True)
        finally:
            bench_http.environment = environment


def set_cookie(response) -> str:  # type: ignore[no-untyped-def]
    return "; ".join(
        value.split(";", 1)[0]
        for name, value in response.getheaders()
        if name.lower() == "set-cookie" and value.startswith("pzn_vid=")
    )


def fragments_path(port: int) -> str:
    """The fragment request of the home page, as its page script makes it."""
    connection = bench_http.http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/")
    html = connection.getresponse().read().decode()
    connection.close()
    specs = [unescape(spec) for spec in FRAGMENT_RE.findall(html)]
    assert specs, "the cached home page has no placeholders"
    query = urlencode(
        [("page", f"http://127.0.0.1:{port}/"), ("referrer", ""), *(("f", s) for s in specs)]
    )
    return f"/personalization/fragments/?{query}"


def returning_cookies(port: int, path: str) -> list[str]:
    """Returning visitors: the first fragment request sets the cookie, the second writes the
    visitor's row."""
    cookies = []
    for _ in range(COOKIES):
        cookie = set_cookie(bench_http.get(port, path))
        bench_http.get(port, path, cookie)
        cookies.append(cookie)
    return cookies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    bench_http.ensure_database()
    bench_http.manage("demo_setup")
    bench_http.manage("collectstatic", "--noinput")
    bench_http.flush_redis()
    found: dict[str, list[tuple[float, float]]] = {}
    errors = 0
    with tempfile.TemporaryDirectory() as folder:
        server = Server(cached=True)
        try:
            fragments = fragments_path(server.port)
            cookies = returning_cookies(server.port, fragments)
        finally:
            server.stop()
        script = Path(folder) / "cookies.lua"
        script.write_text(bench_http.LUA % ", ".join(f'"{cookie}"' for cookie in cookies))
        for number in range(args.rounds):
            for cached in [True, False] if number % 2 == 0 else [False, True]:
                bench_http.flush_redis()  # no page cached from the other set-up
                server = Server(cached)
                targets = (
                    [("cached page", "/"), ("fragments", fragments)]
                    if cached
                    else [("uncached page", "/")]
                )
                try:
                    for _label, path in targets:  # warm up every worker (and the page cache)
                        bench_http.wrk(server.port, path, str(script), 2)
                    for label, path in targets:
                        rate, latency, failed = bench_http.wrk(
                            server.port, path, str(script), args.seconds
                        )
                        errors += failed
                        found.setdefault(label, []).append((rate, latency))
                        print(label, rate, latency, failed, flush=True)
                finally:
                    server.stop()
                time.sleep(1)

    def rate(label: str) -> float:
        return statistics.median(value for value, _ in found[label])

    def p50(label: str) -> float:
        return statistics.median(latency for _, latency in found[label])

    uncached, page, fragment = rate("uncached page"), rate("cached page"), rate("fragments")
    views = 1 / (1 / page + 1 / fragment)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    body = f"""
## Pages cached whole, with personal fragments (gunicorn, PostgreSQL, Redis)

Run on {today} — {machine()}; PostgreSQL, Redis (cache and page cache), gunicorn.
`python benchmarks/bench_page_cache.py --rounds {args.rounds} --seconds {args.seconds:g}`: the
demo shop's home page (a personal hero banner, two recommendation rows, the popup) on its
production settings under gunicorn (3 workers x 4 threads), loaded by wrk (2 threads, 32
connections, {args.seconds:g} s a target and round) as 64 returning visitors taken in turn, on
the same 2 cores as the server, PostgreSQL and Redis. *Uncached*: personalization renders in
the page. *Cached whole*: `DEMO_PAGE_CACHE=1`, Django's per-site cache serves the page and
each page view asks `personalization/fragments/` for its three personal parts
([page caches](../docs/caching.md)). Medians over {args.rounds} rounds, the set-ups
alternating, each in a fresh gunicorn.

| what | req/s | p50 (ms) |
| --- | ---: | ---: |
| uncached page (personalized in the page) | {uncached:.0f} | {p50("uncached page"):.1f} |
| cached page alone | {page:.0f} | {p50("cached page"):.1f} |
| its fragment request alone | {fragment:.0f} | {p50("fragments"):.1f} |
| page views with both (1 / (1/page + 1/fragments)) | {views:.0f} | |

A page view cached whole costs {uncached / views:.2f}x the time of the uncached one on this
server ({views / uncached:.2f}x the page views per second); a CDN or proxy in front takes the
cached page off the server entirely, leaving only the fragment request:
{fragment / uncached:.2f}x the uncached page's rate. Answers other than 2xx or 3xx: {errors}.
"""
    print(body)
    if not args.no_write:
        write_section("bench_page_cache", body)


if __name__ == "__main__":
    main()
