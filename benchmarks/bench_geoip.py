"""Benchmark: what a GeoIP lookup costs with each way of opening the database.

A lookup of an address not seen before (a miss of the per-database memo) through the same
code as ``personalization.profiling.geo.lookup``, with the reader opened

- the way the app does (``geodb.open_database``): a private copy mapped by the C extension;
- as a baseline, the C extension mapping the original file (fast, but a file truncated in
  place kills the process with SIGBUS);
- with the pure-Python reader, the file read into memory (``MODE_MEMORY``);
- with the pure-Python reader mapping the private copy (the app without the C extension).

Also what opening costs (copy, open, check). Within a round the readers take turns every 100
addresses; each figure is the median over the rounds. Prints a Markdown section and writes it
into benchmarks/RESULTS.md.

    python benchmarks/bench_geoip.py [--rounds 25] [--lookups 2000] [--networks 20000]
                                     [--database PATH]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402

django.setup()

import geoip2.database  # noqa: E402
import maxminddb  # noqa: E402

from benchmarks.results import machine, write_section  # noqa: E402
from personalization.profiling import geo, geodb  # noqa: E402

CITIES = [
    ("GB", "United Kingdom", "England", "London", 51.5142, -0.0931),
    ("SE", "Sweden", "Östergötland County", "Linköping", 58.4167, 15.6167),
    ("US", "United States", "California", "San Francisco", 37.7749, -122.4194),
    ("BR", "Brazil", "São Paulo", "São Paulo", -23.5475, -46.6361),
    ("JP", "Japan", "Tokyo", "Tokyo", 35.6895, 139.6917),
    ("DE", "Germany", "Berlin", "Berlin", 52.5244, 13.4105),
]


def write_database(path: Path, networks: int) -> list[str]:
    """A City database of ``networks`` /24 networks; returns one address in each."""
    from personalization.testutils import write_geoip_database

    rng = random.Random(42)
    firsts = rng.sample(range(1 << 24), networks)
    records = []
    for n, first in enumerate(sorted(firsts)):
        network = ipaddress.IPv4Network((first << 8, 24))
        if not network.is_global or network.is_multicast:
            continue
        code, country, region, city, lat, lon = CITIES[n % len(CITIES)]
        records.append(
            (
                str(network),
                {
                    "country": code,
                    "country_name": country,
                    "region": region,
                    "city": f"{city} {n % 997}",
                    "latitude": lat,
                    "longitude": lon,
                },
            )
        )
    write_geoip_database(path, records)
    return [str(ipaddress.IPv4Network(network)[rng.randrange(1, 255)]) for network, _ in records]


def addresses_in(path: Path, count: int) -> list[str]:
    """Addresses of ``count`` networks of a database (for ``--database``)."""
    rng = random.Random(42)
    with maxminddb.open_database(os.fspath(path)) as reader:
        found = []
        for network, _record in reader:
            if network.version == 4 and network.prefixlen <= 30 and network.is_global:
                found.append(network)
            if len(found) >= 20 * count:
                break
    picked = rng.sample(found, min(count, len(found)))
    return [str(n[rng.randrange(1, n.num_addresses - 1)]) for n in picked]


def opener(kind: str, path: str) -> Callable[[], geodb.OpenedDatabase]:
    def plain(mode: int) -> geodb.OpenedDatabase:
        reader = geoip2.database.Reader(path, mode=mode)
        return geodb.OpenedDatabase(reader, reader.city, reader.metadata().ip_version == 6, mode)

    def private_copy(mode: int) -> geodb.OpenedDatabase:
        geodb.MAPPED_MODE = mode
        opened, problem = geodb.open_database(path)
        assert opened is not None and opened.mode == mode, problem
        return opened

    return {
        "copy": lambda: private_copy(maxminddb.MODE_MMAP_EXT),
        "original": lambda: plain(maxminddb.MODE_MMAP_EXT),
        "memory": lambda: plain(maxminddb.MODE_MEMORY),
        "copy-python": lambda: private_copy(maxminddb.MODE_MMAP),
    }[kind]


KINDS = {
    "copy": "the app: private copy, C extension (`MODE_MMAP_EXT`)",
    "original": "baseline: the original file, C extension (`MODE_MMAP_EXT`)",
    "memory": "pure Python, read into memory (`MODE_MEMORY`)",
    "copy-python": "pure Python, private copy mapped (`MODE_MMAP`; no C extension)",
}


def measure(path: str, ips: list[str], rounds: int, chunk: int = 100) -> dict[str, dict]:
    """Per kind: median open time, and median lookup time and ratio to the baseline.

    Lookups are timed in the thread's CPU time, less disturbed than wall time by other work on
    the machine, the kinds taking turns every ``chunk`` addresses; opening in wall time.
    """
    opens: dict[str, list[float]] = {kind: [] for kind in KINDS}
    misses: dict[str, list[float]] = {kind: [] for kind in KINDS}
    hits: list[float] = []
    kinds = list(KINDS)
    for round_ in range(rounds):
        opened, lookups, spent = {}, {}, dict.fromkeys(kinds, 0.0)
        for kind in kinds:
            start = time.perf_counter()
            opened[kind] = opener(kind, path)()
            opens[kind].append((time.perf_counter() - start) * 1e3)
            lookups[kind] = geo._memoised_lookups(opened[kind], path)  # a new, empty memo
        for n in range(0, len(ips), chunk):
            part = ips[n : n + chunk]
            turn = (round_ + n // chunk) % len(kinds)
            for kind in kinds[turn:] + kinds[:turn]:
                lookup = lookups[kind]
                start = time.thread_time()
                for ip in part:
                    lookup(ip)
                spent[kind] += time.thread_time() - start
        start = time.thread_time()
        for ip in ips:  # all seen before: answered by the memo
            lookups["copy"](ip)
        hits.append((time.thread_time() - start) / len(ips) * 1e6)
        for kind in kinds:
            assert lookups[kind](ips[0]), "the addresses must be in the database"
            misses[kind].append(spent[kind] / len(ips) * 1e6)
            opened[kind].reader.close()
    return {
        "hit_us": statistics.median(hits),
        **{
            kind: {
                "open_ms": statistics.median(opens[kind]),
                "miss_us": statistics.median(misses[kind]),
                "miss_ratio": statistics.median(
                    m / b for m, b in zip(misses[kind], misses["original"], strict=True)
                ),
            }
            for kind in KINDS
        },
    }


def copy_ms(directory: str, megabytes: int, rounds: int) -> float:
    """Wall time of ``geodb.open_database`` on a file of ``megabytes`` that is not a database:
    the private copy, written and deleted, with next to nothing else."""
    path = os.path.join(directory, "large.bin")
    with open(path, "wb") as file:
        file.write(os.urandom(megabytes << 20))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        opened, _problem = geodb.open_database(path)
        times.append((time.perf_counter() - start) * 1e3)
        assert opened is None
    os.unlink(path)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--networks", type=int, default=20000)
    parser.add_argument("--copy-mb", type=int, default=60, help="a file size to time copying")
    parser.add_argument("--database", type=Path, help="a City .mmdb instead of a written one")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if not geodb._has_extension():
        sys.exit("The C extension of maxminddb is not installed: nothing to compare.")

    with tempfile.TemporaryDirectory() as directory:
        if args.database:
            path = args.database
            ips = addresses_in(path, args.lookups)
            source = f"`{path.name}`"
        else:
            path = Path(directory) / "city.mmdb"
            ips = write_database(path, args.networks)[: args.lookups]
            source = (
                f"a City database of {args.networks} /24 networks written by "
                f"`personalization.testutils.write_geoip_database`"
            )
        size_mb = path.stat().st_size / 1e6
        try:
            results = measure(os.fspath(path), ips, args.rounds)
        finally:
            geodb.MAPPED_MODE = maxminddb.MODE_MMAP_EXT
        copying = copy_ms(directory, args.copy_mb, min(args.rounds, 9))

    command = f"python benchmarks/bench_geoip.py --rounds {args.rounds} --lookups {len(ips)}"
    if args.database:
        command += f" --database {args.database.name}"
    elif args.networks != 20000:
        command += f" --networks {args.networks}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    intro = (
        f"`{command}`: {source} ({size_mb:.1f} MB). *Lookup*: the mean time of "
        f"`personalization.profiling.geo.lookup`'s work for {len(ips)} addresses not seen "
        "before (each a miss of the in-process memo, which itself answers a repeated address "
        f"in {results['hit_us']:.1f} µs); *ratio*: to the baseline in the same round. *Open*: "
        "copying (where there is a copy), opening and checking the file (wall time). Lookups "
        "are timed in the thread's CPU time, the readers taking turns every 100 addresses; "
        "medians over the rounds."
    )
    if load is not None and load > 0.5 * (os.cpu_count() or 1):
        intro += (
            f" Other work kept the machine busy (load average {load:.1f} on "
            f"{os.cpu_count()} cores): the times are high and noisy, the ratios are the figures "
            "to read."
        )
    lines = [
        "## GeoIP lookups: how the database is opened",
        "",
        f"Run on {time.strftime('%Y-%m-%d', time.gmtime())} — {machine()}; "
        f"maxminddb {maxminddb.__version__}, geoip2 {geoip2.__version__}.",
        *textwrap.wrap(intro, 92, break_on_hyphens=False),
        "",
        "| reader | lookup (µs) | ratio | open (ms) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind, label in KINDS.items():
        row = results[kind]
        lines.append(
            f"| {label} | {row['miss_us']:.1f} | {row['miss_ratio']:.2f} | {row['open_ms']:.1f} |"
        )
    lines += [
        "",
        *textwrap.wrap(
            f"Copying a {args.copy_mb} MB file to a private temporary file and deleting it "
            "(what each process adds to opening a new GeoLite2-City, about that size): "
            f"{copying:.0f} ms, taken by the one request that finds the new file while the "
            "process's other threads go on with the database they have.",
            92,
        ),
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section("bench_geoip", section)


if __name__ == "__main__":
    main()
