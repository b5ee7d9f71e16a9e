"""Benchmark: segment evaluation and {% personalized_banner %} with 50 segments and 200 banners.

Both are measured warm (definitions compiled and cached, templates loaded), counting SQL
queries, against a baseline in the same run: segments compiled from the database on every
call (no cache), and the same banner markup rendered from a fixed context (no targeting).
Writes its section of benchmarks/RESULTS.md.

    python benchmarks/bench_targeting.py [--rounds 30] [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.template import Context, Template  # noqa: E402
from django.template.loader import get_template  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from benchmarks.results import machine, write_section  # noqa: E402

RULES = [
    ("first_visit", ""),
    ("returning", ""),
    ("visit_count", ">3"),
    ("referrer_source", "search, social"),
    ("campaign", "*"),
    ("country", "DE, AT, CH"),
    ("city", "London, Paris"),
    ("category_interest", "camping >= 2"),
    ("category_interest", "kitchen"),
    ("viewed_product", "12, 40, 77"),
    ("order_count", ">3"),
    ("order_count", "0"),
    ("total_spent", ">=100"),
    ("abandoned_cart", "1"),
    ("signed_up", ""),
    ("device", "mobile, tablet"),
    ("weekday", "sat, sun"),
    ("hour", "18-23"),
    ("date_range", "2026-11-27..2026-11-30"),
    ("referred", ""),
]


def build(segments: int, banners: int, placements: int) -> list[str]:
    from personalization.models import Banner, Placement, Segment, SegmentRule

    rng = random.Random(42)
    made = []
    for i in range(segments):
        segment = Segment.objects.create(
            name=f"Segment {i}", slug=f"segment-{i}", match="all" if i % 3 else "any"
        )
        for position, (kind, value) in enumerate(rng.sample(RULES, k=1 + i % 3)):
            SegmentRule.objects.create(segment=segment, kind=kind, value=value, position=position)
        made.append(segment)
    slugs = []
    for p in range(placements):
        placement = Placement.objects.create(
            slug=f"placement-{p}", name=f"Placement {p}", default_title="Default"
        )
        slugs.append(placement.slug)
        for b in range(banners // placements):
            banner = Banner.objects.create(
                placement=placement,
                name=f"Banner {p}-{b}",
                title=f"Offer {b}",
                body="<p>Something <strong>good</strong> for you.</p>",
                cta_text="Shop now",
                cta_url="/camping/",
                priority=rng.randint(0, 10),
            )
            banner.segments.add(*rng.sample(made, k=rng.randint(1, 3)))
    return slugs


def visitor_for(request=None):
    from personalization.testutils import make_visitor

    return make_visitor(
        request=request,
        visit_count=4,
        referrer="search",
        geo={"country_code": "DE", "city": "Berlin"},
        recently_viewed=[40, 3, 9],
        interests={"camping": 3.0, "kitchen": 0.5},
        in_control_group=False,
    )


def per_call_us(func, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from personalization.targeting import definitions
    from personalization.targeting.definitions import compile_segment
    from personalization.targeting.rules import RuleContext
    from personalization.targeting.segments import segments_for

    setup_test_environment()
    call_command("migrate", verbosity=0, run_syncdb=True)
    slugs = build(segments=50, banners=200, placements=10)

    # Segments -------------------------------------------------------------------------
    def warm_segments():
        return segments_for(visitor_for())

    def uncached_segments():
        from personalization.models import Segment

        visitor = visitor_for()
        ctx = RuleContext(visitor, visitor._now)
        compiled = [compile_segment(s) for s in Segment.objects.prefetch_related("rules")]
        return frozenset(s.slug for s in compiled if s and s.matches(ctx))

    matched = warm_segments()
    assert matched == uncached_segments()
    with CaptureQueriesContext(connection) as segment_queries:
        warm_segments()

    # Banners --------------------------------------------------------------------------
    factory = RequestFactory()
    tag = Template("{% load personalization %}{% personalized_banner slug %}")
    banner_template = get_template("personalization/banner.html")
    placement = definitions.current().placements[slugs[3]]
    fixed = {"placement": placement, "banner": placement.banners[0], "exposure_id": "x" * 36}

    def request_with_visitor():
        request = factory.get("/")
        request.visitor = visitor_for(request)
        return request

    def warm_tag():
        request = request_with_visitor()
        return tag.render(Context({"request": request, "slug": slugs[3]}))

    def baseline_render():
        request = request_with_visitor()
        return banner_template.render(fixed, request)

    assert "pzn-banner" in warm_tag()
    with CaptureQueriesContext(connection) as tag_queries:
        warm_tag()

    rows = {"warm": [], "uncached": [], "tag": [], "baseline": []}
    calls = args.calls
    for _ in range(args.rounds):
        # Fresh profile objects (segments are computed once per request), built untimed.
        fresh = iter([visitor_for() for _ in range(calls)])
        rows["warm"].append(per_call_us(lambda fresh=fresh: segments_for(next(fresh)), calls))
        rows["uncached"].append(per_call_us(uncached_segments, max(1, calls // 50)))
        rows["tag"].append(per_call_us(warm_tag, calls // 4))
        rows["baseline"].append(per_call_us(baseline_render, calls // 4))
    med = {key: statistics.median(values) for key, values in rows.items()}

    section = "\n".join(
        [
            "## Targeting: segments and banners",
            "",
            f"Run on {time.strftime('%Y-%m-%d')} — {machine()}.",
            f"`python benchmarks/bench_targeting.py --rounds {args.rounds} --calls {calls}`:",
            "50 active segments (1–3 rules each, of every rule kind) and 200 banners in 10",
            "placements, each targeting 1–3 segments. Medians over the rounds of the mean time",
            "per call. The visitor is in "
            f"{len(matched)} of the 50 segments. Warm: definitions compiled and cached.",
            "",
            "| what | median µs per call | SQL queries | baseline (same run) | baseline µs "
            "| ratio |",
            "| --- | ---: | ---: | --- | ---: | ---: |",
            f"| segment evaluation (`request.visitor.segments`) | {med['warm']:.1f} "
            f"| {len(segment_queries)} | compiled from the database on each call "
            f"| {med['uncached']:.0f} | {med['warm'] / med['uncached']:.4f} |",
            f"| `{{% personalized_banner %}}` (choose, render, queue the exposure) "
            f"| {med['tag']:.1f} | {len(tag_queries)} | the same banner template from a fixed "
            f"context | {med['baseline']:.1f} | {med['tag'] / med['baseline']:.2f} |",
            "",
            "Targets: segment evaluation at most 50 µs per request and the banner tag at most",
            "0.5 ms, both warm, with no SQL query. The exposure the tag queues is written by",
            "the middleware with the page's other exposures in one INSERT, after the response.",
        ]
    )
    print(section)
    if not args.no_write:
        write_section("bench_targeting", section)


if __name__ == "__main__":
    main()
