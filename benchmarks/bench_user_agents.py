"""Benchmark: telling the device class of a user agent not seen before.

``personalization.profiling.devices`` (ua-parser's ``parse()``, through the compiled resolver
of ``ua-parser[regex]``) against the ``user-agents`` package as the baseline (which calls
ua-parser's older pure-Python API), in the same run, on a few hundred distinct real-looking
user agents: desktop, phone and tablet browsers, e-readers and crawlers. Every user agent of
every round is new to both (no cache of either side answers it); the two sides take turns
every 50 user agents and are timed in the thread's CPU time; each figure is the median over
the rounds of the mean time per user agent. The two must agree on every device class.

Needs the ``bench`` extra (``pip install -e '.[bench]'``) for the baseline.

    python benchmarks/bench_user_agents.py [--rounds 9] [--user-agents 400]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Every placeholder is filled with a random number or name, so that each user agent differs.
TEMPLATES: tuple[str, ...] = (
    # Desktops.
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{chrome}.0.{build}.{patch} Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{chrome}.0.{build}.{patch} Safari/537.36 Edg/{chrome}.0.{build}.{patch}",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{firefox}.0) Gecko/20100101 "
    "Firefox/{firefox}.{tiny}",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{chrome}.0.{build}.{patch} Safari/537.36 OPR/{opera}.0.{patch}.{small}",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{small}) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/{safari}.{tiny}.{small} Safari/{webkit}.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{small}) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/{chrome}.0.{build}.{patch} Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.{small}; rv:{firefox}.0) Gecko/20100101 "
    "Firefox/{firefox}.{tiny}",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{firefox}.0) Gecko/20100101 Firefox/{firefox}.{tiny}",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{firefox}.0) Gecko/20100101 "
    "Firefox/{firefox}.{tiny}",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{chrome}.0.{build}.{patch} Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 {build}.{patch}.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{chrome}.0.{build}.{patch} Safari/537.36",
    # Phones.
    "Mozilla/5.0 (iPhone; CPU iPhone OS {ios}_{small} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/{ios}.{small} Mobile/{mobile} Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS {ios}_{small} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/{chrome}.0.{build}.{patch} Mobile/{mobile} Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS {ios}_{small} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/{mobile} Instagram {instagram}.0.0.{small}.{patch}",
    "Mozilla/5.0 (Linux; Android {android}; {phone}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{chrome}.0.{build}.{patch} Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android {android}; {phone}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/{samsung}.0 Chrome/{chrome}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android {android}; {phone} Build/UP1A.{build}.{patch}; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/{chrome}.0.{build}.{patch} "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Android {android}; Mobile; rv:{firefox}.0) Gecko/{firefox}.0 "
    "Firefox/{firefox}.{tiny}",
    # Tablets and e-readers.
    "Mozilla/5.0 (iPad; CPU OS {ios}_{small} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/{ios}.{small} Mobile/{mobile} Safari/604.1",
    "Mozilla/5.0 (Linux; Android {android}; {tablet}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{chrome}.0.{build}.{patch} Safari/537.36",
    "Mozilla/5.0 (Linux; Android {android}; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Silk/{silk}.{small}.{patch} like Chrome/{chrome}.0.{build}.{patch} Safari/537.36",
    "Mozilla/5.0 (X11; U; Linux armv7l like Android; en-us) AppleWebKit/531.2+ (KHTML, like "
    "Gecko) Version/5.0 Safari/531.2+ Kindle/3.{small}.{patch}",
    # Crawlers.
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) "
    "Chrome/{chrome}.0.{build}.{patch}",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) "
    "Chrome/{chrome}.0.{build}.{patch} Safari/537.36",
    "Mozilla/5.0 (compatible; AhrefsBot/7.{small}; +http://ahrefs.com/robot/) {build}",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php) {build}.{patch}",
)
PHONES = ("Pixel 8", "Pixel 7a", "SM-S918B", "SM-A546B", "2201116SG", "CPH2451", "moto g84 5G")
TABLETS = ("SM-X710", "SM-T970", "Lenovo TB-J606F", "Pixel Tablet", "SM-P610")


def corpus(count: int, seed: int, exclude: set[str] | None = None) -> list[str]:
    """``count`` distinct user agents, none of them in ``exclude`` (which grows with them)."""
    rng = random.Random(seed)
    seen = exclude if exclude is not None else set()
    agents: list[str] = []
    tries = 0
    while len(agents) < count:
        tries += 1
        if tries > 100 * count:
            raise RuntimeError("the templates cannot make that many distinct user agents")
        template = TEMPLATES[len(agents) % len(TEMPLATES)]
        agent = template.format(
            chrome=rng.randint(100, 134),
            firefox=rng.randint(100, 134),
            opera=rng.randint(95, 115),
            safari=rng.randint(15, 18),
            ios=rng.randint(12, 18),
            android=rng.randint(10, 15),
            samsung=rng.randint(20, 27),
            silk=rng.randint(100, 130),
            instagram=rng.randint(300, 360),
            build=rng.randint(1000, 9999),
            patch=rng.randint(10, 250),
            small=rng.randint(0, 9),
            tiny=rng.randint(0, 9),
            webkit=rng.randint(600, 620),
            mobile=f"{rng.randint(15, 22)}{rng.choice('ABCDEFGH')}{rng.randint(5, 350)}",
            phone=rng.choice(PHONES),
            tablet=rng.choice(TABLETS),
        )
        if agent not in seen:
            seen.add(agent)
            agents.append(agent)
    return agents


def baseline_class(user_agent: str) -> str:
    """The device class as the ``user-agents`` package tells it."""
    from user_agents import parse

    agent = parse(user_agent)
    if agent.is_tablet:
        return "tablet"
    if agent.is_mobile:
        return "mobile"
    if agent.is_pc:
        return "desktop"
    return ""


def measure(rounds: int, count: int, chunk: int = 50) -> dict[str, float | int]:
    from personalization.profiling import devices

    def app(user_agent: str) -> str:
        return devices._from_user_agent.__wrapped__(user_agent)

    sides: dict[str, Callable[[str], str]] = {"app": app, "baseline": baseline_class}
    seen: set[str] = set()
    warm = corpus(20, seed=-1, exclude=seen)
    for agent in warm:  # loads both parsers' rules before anything is timed
        assert app(agent) == baseline_class(agent), agent
    per_agent: dict[str, list[float]] = {side: [] for side in sides}
    ratios: list[float] = []
    hits: list[float] = []
    classes: dict[str, int] = {}
    for round_ in range(rounds):
        agents = corpus(count, seed=round_, exclude=seen)
        spent = dict.fromkeys(sides, 0.0)
        found: dict[str, list[str]] = {side: [] for side in sides}
        names = list(sides)
        for n in range(0, len(agents), chunk):
            part = agents[n : n + chunk]
            turn = (round_ + n // chunk) % len(names)
            for side in names[turn:] + names[:turn]:
                classify = sides[side]
                start = time.thread_time()
                results = [classify(agent) for agent in part]
                spent[side] += time.thread_time() - start
                found[side] += results
        disagreements = [
            (agent, a, b)
            for agent, a, b in zip(agents, found["app"], found["baseline"], strict=True)
            if a != b
        ]
        assert not disagreements, f"the device classes differ: {disagreements[:5]}"
        for side in sides:
            per_agent[side].append(spent[side] / len(agents) * 1e6)
        ratios.append(spent["baseline"] / spent["app"])
        if round_ == 0:
            for value in found["app"]:
                classes[value or "none"] = classes.get(value or "none", 0) + 1
        for agent in agents:  # each seen once now: what a returning user agent costs
            devices._from_user_agent(agent)
        start = time.thread_time()
        for agent in agents:
            devices._from_user_agent(agent)
        hits.append((time.thread_time() - start) / len(agents) * 1e6)
    return {
        "hit_us": statistics.median(hits),
        "app_us": statistics.median(per_agent["app"]),
        "baseline_us": statistics.median(per_agent["baseline"]),
        "ratio": statistics.median(ratios),
        **{f"class_{name}": number for name, number in classes.items()},
    }


def first_call_ms(code: str) -> float:
    """Wall time of ``code``'s first device class in a fresh interpreter: the import and the
    loading of the parser's rules, paid once per process."""
    program = textwrap.dedent(
        f"""
        import time
        start = time.perf_counter()
        {code}
        print((time.perf_counter() - start) * 1e3)
        """
    )
    times = []
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, check=True
        )
        times.append(float(done.stdout))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--user-agents", type=int, default=400)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    try:
        import user_agents  # noqa: F401
    except ImportError:
        sys.exit("The baseline needs the bench extra: pip install -e '.[bench]'")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    import ua_parser

    from benchmarks.results import machine, write_section

    results = measure(args.rounds, args.user_agents)
    agent = TEMPLATES[0].format(chrome=131, build=6778, patch=86)
    first_app = first_call_ms(f"import ua_parser; ua_parser.parse({agent!r})")
    first_baseline = first_call_ms(f"import user_agents; user_agents.parse({agent!r}).is_mobile")
    cached = ua_parser.parser.resolver  # a CachingResolver around the one that matches
    resolver = type(getattr(cached, "parser", cached)).__module__
    classes = ", ".join(
        f"{results[key]} {key.removeprefix('class_')}"
        for key in sorted(results)
        if key.startswith("class_")
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    intro = (
        f"`python benchmarks/bench_user_agents.py --rounds {args.rounds} --user-agents "
        f"{args.user_agents}`: the device class of a user agent not seen before, "
        "`personalization.profiling.devices` (`ua_parser.parse()`, resolver "
        f"`{resolver}`) against the `user-agents` package (ua-parser's older pure-Python "
        f"API) in the same run. Each round has {args.user_agents} distinct user agents that "
        "no cache of either side has seen (desktop, phone and tablet browsers, e-readers, "
        f"crawlers; the first round's classes: {classes}), the two sides taking turns every "
        "50 and agreeing on every class; CPU time of the thread, medians over the rounds."
    )
    if load is not None and load > 0.5 * (os.cpu_count() or 1):
        intro += (
            f" Other work kept the machine busy (load average {load:.1f} on "
            f"{os.cpu_count()} cores): the ratio is the figure to read."
        )
    lines = [
        "## Device classes from user agents",
        "",
        f"Run on {time.strftime('%Y-%m-%d', time.gmtime())} — {machine()}; "
        f"ua-parser {version('ua-parser')}, ua-parser-rs {version('ua-parser-rs')}, "
        f"user-agents {version('user-agents')}.",
        *textwrap.wrap(intro, 92, break_on_hyphens=False),
        "",
        "| classifier | per unseen user agent (µs) |",
        "| --- | ---: |",
        f"| the app: `ua_parser.parse()` | {results['app_us']:.1f} |",
        f"| baseline: `user_agents.parse()` | {results['baseline_us']:.1f} |",
        "",
        *textwrap.wrap(
            f"The baseline takes {results['ratio']:.1f} times as long (median of the rounds' "
            "ratios). A user agent seen before is answered by the app's own in-process cache "
            f"in {results['hit_us']:.2f} µs. The first user agent of a process also loads the "
            f"parser's rules: {first_app:.0f} ms with the import (the baseline: "
            f"{first_baseline:.0f} ms; wall time, median of 5 fresh interpreters).",
            92,
        ),
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section("bench_user_agents", section)


if __name__ == "__main__":
    main()
