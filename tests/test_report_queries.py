"""The conversion report's numbers (reports/queries.py), computed by hand on small fixtures."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings

from personalization.models import Conversion, Event, Exposure, Visitor
from personalization.reports import rollups, stats
from personalization.reports.period import parse_period
from personalization.reports.queries import build_report
from tests.rows import purchase

pytestmark = pytest.mark.django_db

_orders = itertools.count(1)
SECOND = dt.timedelta(seconds=1)
WEEK = dt.timedelta(days=7)


def utc(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 11):
    """A time in November 2026, UTC (Europe/Berlin, the test TIME_ZONE, is UTC+1 then)."""
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=dt.UTC)


def exposure(visitor_id: str, at: dt.datetime, **fields) -> Exposure:
    values = {"placement": "home-hero", "kind": Exposure.BANNER, "content": "banner:1"}
    values.update(fields)
    return Exposure(visitor_id=visitor_id, created_at=at, **values)


def control(visitor_id: str, at: dt.datetime, **fields) -> Exposure:
    return exposure(visitor_id, at, is_control=True, content="default", **fields)


def order(visitor_id: str, at: dt.datetime, revenue: str = "10.00") -> Conversion:
    return purchase(
        visitor_id, at=at, revenue=revenue, order_id=f"order-{next(_orders)}", currency="EUR"
    )


def goal(visitor_id: str, at: dt.datetime, name: str, kind: str = Conversion.LEAD) -> Conversion:
    return Conversion(visitor_id=visitor_id, kind=kind, goal=name, created_at=at)


def visitor(visitor_id: str, source: str = "direct", country: str = "", user=None) -> Visitor:
    return Visitor.objects.create(
        id=visitor_id,
        user=user,
        first_seen=utc(1, 0),
        last_seen=utc(1, 0),
        first_source=source,
        latest_source=source,
        country_code=country,
    )


def click(shown: Exposure) -> Event:
    return Event(visitor_id=shown.visitor_id, exposure=shown, kind=Event.CLICK)


SOURCE = {"name": "raw"}


@pytest.fixture(autouse=True, params=["raw", "rollups"])
def report_source(request):
    """Every test runs twice: on the raw rows, and on daily roll-ups rebuilt just before the
    report is asked for (the roll-ups' own tests cover refreshing and live activity)."""
    SOURCE["name"] = request.param
    yield request.param
    SOURCE["name"] = "raw"


def report(start: str, end: str, goal_name: str = "purchase") -> dict:
    if SOURCE["name"] == "rollups":
        rollups.refresh(full=True)
    result = build_report(parse_period(start, end), goal_name)
    assert result["source"] == SOURCE["name"]
    return result


class Headline(dict):
    """A group's contract figures; compared without the intervals, which tests of their own
    check."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict):
            return NotImplemented
        return dict(self) == {k: v for k, v in other.items() if not k.endswith("_ci95")}

    __hash__ = None  # type: ignore[assignment]


def headline(
    visitors: int,
    converted: int,
    rate: float,
    orders: int,
    revenue: str,
    aov: str,
    rpv: str,
) -> dict:
    return Headline(
        {
            "visitors": visitors,
            "converted_visitors": converted,
            "conversion_rate": rate,
            "orders": orders,
            "revenue": revenue,
            "average_order_value": aov,
            "revenue_per_visitor": rpv,
        }
    )


# The contract's example: 1,000 personalized visitors, 50 converted; 110 control, 3 converted.
@pytest.fixture
def contract_example():
    exposures, conversions = [], []
    for n in range(1000):
        vid = f"p{n:04d}"
        shown_at = utc(1 + n % 30)
        exposures.append(exposure(vid, shown_at))
        if n < 100:  # shown three times: still one visitor, and their order counts once
            exposures += [exposure(vid, shown_at + dt.timedelta(hours=h)) for h in (1, 2)]
        if n < 50:
            conversions.append(order(vid, shown_at + dt.timedelta(hours=3), "45.00"))
        if n < 5:  # a second order: one converted visitor, two orders
            conversions.append(order(vid, shown_at + dt.timedelta(days=2), "100.00"))
    # Conversions that must not count: too late, a goal that is not an order, too early.
    conversions.append(order("p0050", utc(21) + dt.timedelta(days=8), "999.00"))
    conversions.append(goal("p0060", utc(1 + 60 % 30, 13), "newsletter_signup"))
    conversions.append(order("p0070", utc(1 + 70 % 30, 11), "999.00"))
    for n in range(110):
        exposures.append(control(f"c{n:03d}", utc(1 + n % 30, 9)))
    for n, revenue in enumerate(["39.99", "40.00", "40.01"]):
        conversions.append(order(f"c{n:03d}", utc(1 + n % 30, 9) + dt.timedelta(days=1), revenue))
    Exposure.objects.bulk_create(exposures)
    Conversion.objects.bulk_create(conversions)


def test_every_headline_number_of_the_contract_example(contract_example):
    result = report("2026-11-01", "2026-11-30")
    assert result["start"] == "2026-11-01"
    assert result["end"] == "2026-11-30"
    assert result["goal"] == "purchase"
    assert result["attribution_window_days"] == 7
    assert dt.datetime.fromisoformat(result["generated_at"]).tzinfo is not None
    assert result["personalized"] == headline(1000, 50, 5.0, 55, "2750.00", "50.00", "2.75")
    assert result["control"] == headline(110, 3, 2.73, 3, "120.00", "40.00", "1.09")
    # The headline is exactly what the public function gives for these counts.
    lift = result["lift"]
    assert lift == stats.lift(50, 1000, 3, 110)
    assert lift["relative"] == 0.833
    assert result["method"] == lift["method"]
    for key in ("verdict", "probability_better", "visitors_needed", "planned_visitors"):
        assert result[key] == lift[key]
    assert result["enough_data"] is False  # control has 3 converted visitors, fewer than 5
    # Sample ratio: 110 of 1,110 in control against the 10% configured; chi-square by hand.
    chi2 = (110 - 111) ** 2 / 111 + (1000 - 999) ** 2 / 999
    assert result["srm"] == stats.srm(1000, 110)
    assert result["srm"]["observed_control_share"] == round(110 / 1110, 4)
    assert result["srm"]["p_value"] == round(math.erfc(math.sqrt(chi2 / 2)), 4)
    assert result["srm"]["ok"] is True
    assert result["excluded_visitors"] == 0
    assert without_statistics(result["by_placement"]) == [
        {
            "placement": "home-hero",
            "visitors": 1000,
            "converted_visitors": 50,
            "conversion_rate": 5.0,
            "control_visitors": 110,
            "control_converted_visitors": 3,
            "control_conversion_rate": 2.73,
        }
    ]


def test_enough_data_follows_the_minimums(contract_example):
    personalization = {"PRODUCT_MODEL": "testapp.Product", "REPORT_MIN_CONVERSIONS": 3}
    with override_settings(PERSONALIZATION=personalization):
        result = report("2026-11-01", "2026-11-30")
        assert result["enough_data"] is stats.enough_data(1000, 50, 110, 3)
    personalization["REPORT_MIN_VISITORS"] = 111
    with override_settings(PERSONALIZATION=personalization):
        assert report("2026-11-01", "2026-11-30")["enough_data"] is False


def test_daily_entries_of_the_contract_example(contract_example):
    daily = report("2026-11-01", "2026-11-30")["daily"]
    assert [entry["date"] for entry in daily] == [f"2026-11-{d:02d}" for d in range(1, 31)]
    # Day 1 (n % 30 == 0): personalized p0000, p0030 … p0990 (34), converted p0000 and p0030;
    # control c000, c030, c060, c090, converted c000.
    assert daily[0] == {
        "date": "2026-11-01",
        "personalized_visitors": 34,
        "personalized_converted_visitors": 2,
        "personalized_rate": 5.88,
        "control_visitors": 4,
        "control_converted_visitors": 1,
        "control_rate": 25.0,
    }
    # Day 30 (n % 30 == 29): 33 personalized, p0029 converted; control c029, c059, c089.
    assert daily[29] == {
        "date": "2026-11-30",
        "personalized_visitors": 33,
        "personalized_converted_visitors": 1,
        "personalized_rate": 3.03,
        "control_visitors": 3,
        "control_converted_visitors": 0,
        "control_rate": 0.0,
    }
    assert sum(entry["personalized_visitors"] for entry in daily) == 1000
    assert sum(entry["personalized_converted_visitors"] for entry in daily) == 50


def test_the_number_of_queries_does_not_grow_with_the_data(
    contract_example, django_assert_num_queries, report_source
):
    from django.db import connection

    if report_source == "rollups":
        pytest.skip("the roll-ups' own tests count their queries")
    from personalization.reports.queries import ensure_statistics

    # Twelve queries, plus the savepoint around them, plus looking for roll-ups and counting
    # the exposures up to REPORT_RAW_MAX_EXPOSURES (there are none yet), plus (on PostgreSQL)
    # turning JIT off, setting the time limit and looking for tables to analyse (none:
    # earlier tests may have left some, which this analyses first).
    ensure_statistics()
    expected = 12 + 2 + 2 + 3 * (connection.vendor == "postgresql")
    with django_assert_num_queries(expected):
        report("2026-11-01", "2026-11-30")
    Exposure.objects.all().delete()
    Conversion.objects.all().delete()
    Exposure.objects.bulk_create([exposure("only-one", utc(3))])
    with django_assert_num_queries(expected):
        report("2026-11-01", "2026-11-30")


# Attribution ------------------------------------------------------------------------------
@pytest.fixture
def window_edges():
    shown_at = utc(10)
    Exposure.objects.bulk_create(
        [exposure(vid, shown_at) for vid in ("inside", "edge", "outside", "before", "same")]
    )
    Conversion.objects.bulk_create(
        [
            order("inside", shown_at + WEEK - SECOND),
            order("edge", shown_at + WEEK),
            order("outside", shown_at + WEEK + SECOND),
            order("before", shown_at - SECOND),
            order("same", shown_at),
        ]
    )


def test_a_conversion_counts_after_the_exposure_to_the_end_of_the_window(window_edges):
    personalized = report("2026-11-01", "2026-11-30")["personalized"]
    # inside and edge convert; one second too late or too early does not, and neither does
    # a conversion at the exposure's own instant.
    assert personalized == headline(5, 2, 40.0, 2, "20.00", "10.00", "4.00")


@override_settings(
    PERSONALIZATION={"PRODUCT_MODEL": "testapp.Product", "ATTRIBUTION_WINDOW_DAYS": 1}
)
def test_the_window_follows_the_setting(window_edges):
    Conversion.objects.bulk_create([order("inside", utc(10) + dt.timedelta(hours=23))])
    result = report("2026-11-01", "2026-11-30")
    assert result["attribution_window_days"] == 1
    assert result["personalized"]["converted_visitors"] == 1  # only inside's second order


def test_content_shown_at_the_conversions_instant_never_earns_it():
    """An order confirmation page renders its placements with the order's own timestamp (a
    checkout that records the order and shows the page within one clock tick)."""
    placed = utc(12, 15)
    confirmation = {"placement": "order-confirmation", "kind": Exposure.RECOMMENDATION}
    Exposure.objects.bulk_create(
        [
            exposure("buyer", placed, **confirmation, content="strategy:auto"),
            control("control-buyer", placed, **confirmation),
            exposure("earlier", placed - SECOND, **confirmation, content="strategy:auto"),
        ]
    )
    Conversion.objects.bulk_create(
        [order("buyer", placed), order("control-buyer", placed), order("earlier", placed)]
    )
    result = report("2026-11-01", "2026-11-30")
    assert result["personalized"] == headline(2, 1, 50.0, 1, "10.00", "10.00", "5.00")
    assert result["control"] == headline(1, 0, 0.0, 0, "0.00", "0.00", "0.00")
    assert without_statistics(result["by_placement"]) == [
        row("placement", "order-confirmation", (2, 1, 50.0), (1, 0, 0.0))
    ]
    goals = result["by_goal"]
    assert [(entry["goal"], entry["personalized_converted_visitors"]) for entry in goals] == [
        ("purchase", 1)
    ]
    assert sum(day["personalized_converted_visitors"] for day in result["daily"]) == 1


# One group per person ---------------------------------------------------------------------
@pytest.fixture
def two_groups():
    """Visitor "both" was shown the default as a control visitor (an anonymous device), then
    personalized content (the account it logged into); "later" was shown both groups, the
    personalized side only after the period. Each orders after everything."""
    Exposure.objects.bulk_create(
        [
            control("both", utc(3, 9)),
            exposure("both", utc(3, 10)),
            exposure("later", utc(4, 10)),
            control("later", utc(2, 10, month=12)),
            exposure("personalized", utc(3, 10)),
            control("control", utc(3, 10)),
        ]
    )
    Conversion.objects.bulk_create(
        [order(vid, utc(5)) for vid in ("both", "later", "personalized", "control")]
    )


def test_a_person_shown_both_groups_counts_in_neither(two_groups):
    result = report("2026-11-01", "2026-11-30")
    assert result["excluded_visitors"] == 2
    assert result["personalized"] == headline(1, 1, 100.0, 1, "10.00", "10.00", "10.00")
    assert result["control"] == headline(1, 1, 100.0, 1, "10.00", "10.00", "10.00")
    assert without_statistics(result["by_placement"]) == [
        row("placement", "home-hero", (1, 1, 100.0), (1, 1, 100.0))
    ]
    assert [entry["personalized_visitors"] for entry in result["daily"]][2] == 1
    assert [entry["control_visitors"] for entry in result["daily"]][2] == 1
    assert result["by_goal"][0]["personalized_converted_visitors"] == 1
    assert result["by_goal"][0]["control_converted_visitors"] == 1
    assert result["clicks_any"]["not_clicked"]["visitors"] == 1


def test_excluded_visitors_are_those_shown_something_in_the_period(two_groups):
    assert report("2026-11-04", "2026-11-30")["excluded_visitors"] == 1  # later
    assert report("2026-11-05", "2026-11-30")["excluded_visitors"] == 0


# Statistics of the breakdowns -------------------------------------------------------------
def wilson(converted: int, visitors: int) -> tuple[float, float]:
    z = 1.959963984540054
    share, z2n = converted / visitors, z * z / visitors
    centre = (share + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(share * (1 - share) / visitors + z2n / (4 * visitors))
    return max(0.0, centre - half), min(1.0, centre + half)


def benjamini_hochberg(p_values: list) -> list:
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    q_values: list = [None] * len(p_values)
    smallest = 1.0
    for rank in range(len(tested), 0, -1):
        p, i = tested[rank - 1]
        smallest = min(smallest, p * len(tested) / rank)
        q_values[i] = round(smallest, 4)
    return q_values


def test_breakdown_rows_carry_intervals_and_false_discovery_rates(shop_week):
    result = report("2026-11-01", "2026-11-03")
    for table, counts in (
        ("by_placement", lambda r: (r["converted_visitors"], r["visitors"],
                                    r["control_converted_visitors"], r["control_visitors"])),
        ("by_referrer", lambda r: (r["converted_visitors"], r["visitors"],
                                   r["control_converted_visitors"], r["control_visitors"])),
        ("by_country", lambda r: (r["converted_visitors"], r["visitors"],
                                  r["control_converted_visitors"], r["control_visitors"])),
        ("by_goal", lambda r: (r["personalized_converted_visitors"], 5,
                               r["control_converted_visitors"], 2)),
    ):  # fmt: skip
        rows = result[table]
        for entry in rows:
            _, p_n, _, c_n = counts(entry)
            if p_n and c_n:
                assert entry["difference_ci95"] == stats.difference_interval(*counts(entry))
                assert entry["p_value"] == stats.lift(*counts(entry))["fixed_horizon"]["p_value"]
            else:  # nothing to compare with
                assert entry["difference_ci95"] is None and entry["p_value"] is None
        assert [entry["q_value"] for entry in rows] == benjamini_hochberg(
            [entry["p_value"] for entry in rows]
        ), table
    # By hand: product-recs 3/4 against 0/1, home-hero 1/2 against 1/2 (no difference at all).
    recs, hero = result["by_placement"]
    pooled = 3 / 5
    z = 0.75 / math.sqrt(pooled * (1 - pooled) * (1 / 4 + 1 / 1))
    assert recs["p_value"] == round(math.erfc(z / math.sqrt(2)), 4)
    assert hero["p_value"] == 1.0
    assert (recs["q_value"], hero["q_value"]) == (round(2 * recs["p_value"], 4), 1.0)
    low1, high1 = wilson(3, 4)
    low2, high2 = wilson(0, 1)
    assert recs["difference_ci95"] == [
        round(100 * (0.75 - math.sqrt((0.75 - low1) ** 2 + high2**2)), 2),
        round(100 * (0.75 + math.sqrt((high1 - 0.75) ** 2 + low2**2)), 2),
    ]
    low, high = hero["difference_ci95"]
    assert low < 0 < high and math.isclose(low, -high, abs_tol=0.011)
    # Rows of the personalized group alone carry the interval of their rate.
    for table in ("by_content", "by_segment"):
        for entry in result[table]:
            low, high = wilson(entry["converted_visitors"], entry["visitors"])
            assert entry["ci95"] == [round(100 * low, 2), round(100 * high, 2)], table
            assert "difference_ci95" not in entry


def test_a_conversion_after_the_period_counts_within_the_window():
    # 22:00 UTC on Nov 10 is 23:00 in Berlin: the last hour of the period.
    Exposure.objects.bulk_create([exposure("late", utc(10, 22)), exposure("next-day", utc(10, 23))])
    Conversion.objects.bulk_create(
        [order("late", utc(15), "20.00"), order("next-day", utc(15), "30.00")]
    )
    result = report("2026-11-01", "2026-11-10")
    assert result["personalized"] == headline(1, 1, 100.0, 1, "20.00", "20.00", "20.00")


def test_visitors_count_once_and_orders_once_each():
    shown_at = utc(5)
    Exposure.objects.bulk_create(
        [exposure("many", shown_at + dt.timedelta(minutes=m)) for m in range(10)]
        + [exposure("once", shown_at)]
    )
    Conversion.objects.bulk_create(
        [
            order("many", shown_at + dt.timedelta(hours=1), "10.00"),
            order("many", shown_at + dt.timedelta(days=1), "15.00"),
            order("once", shown_at + dt.timedelta(hours=2), "5.00"),
        ]
    )
    personalized = report("2026-11-01", "2026-11-30")["personalized"]
    # 2 visitors, both converted; 3 orders though 10 exposures precede each of "many"'s.
    assert personalized == headline(2, 2, 100.0, 3, "30.00", "10.00", "15.00")


def test_exposures_outside_the_period_do_not_count():
    # Berlin midnight is 23:00 UTC the day before.
    Exposure.objects.bulk_create(
        [
            exposure("before-start", utc(31, 22, 59, 59, month=10)),
            exposure("at-start", utc(31, 23, month=10)),
            exposure("before-end", utc(30, 22, 59, 59)),
            exposure("at-end", utc(30, 23)),
        ]
    )
    # Each converts right after; only those whose exposure is in the period count.
    Conversion.objects.bulk_create(
        [
            order("before-start", utc(1, 10)),
            order("at-start", utc(1, 10)),
            order("before-end", utc(30, 23, 30)),
            order("at-end", utc(30, 23, 30)),
        ]
    )
    personalized = report("2026-11-01", "2026-11-30")["personalized"]
    assert personalized == headline(2, 2, 100.0, 2, "20.00", "10.00", "10.00")


def test_days_are_days_of_the_shops_time_zone():
    # 23:30 UTC on Nov 1 is 00:30 on Nov 2 in Berlin.
    Exposure.objects.bulk_create(
        [exposure("night", utc(1, 23, 30)), control("evening", utc(1, 22, 30))]
    )
    assert report("2026-11-01", "2026-11-01")["personalized"]["visitors"] == 0
    assert report("2026-11-01", "2026-11-01")["control"]["visitors"] == 1
    assert report("2026-11-02", "2026-11-02")["personalized"]["visitors"] == 1
    daily = report("2026-11-01", "2026-11-02")["daily"]
    assert [(d["date"], d["personalized_visitors"], d["control_visitors"]) for d in daily] == [
        ("2026-11-01", 0, 1),
        ("2026-11-02", 1, 0),
    ]


def test_staff_are_left_out_but_visitors_without_a_row_count():
    users = get_user_model().objects
    visitor("staff", user=users.create_user("staff", "s@example.com", "pw", is_staff=True))
    visitor("root", user=users.create_user("root", "r@example.com", "pw", is_superuser=True))
    visitor("customer", user=users.create_user("ada", "a@example.com", "pw"))
    visitor("anonymous")
    vids = ["staff", "root", "customer", "anonymous", "no-row-yet"]
    Exposure.objects.bulk_create(
        [exposure(vid, utc(3)) for vid in vids] + [control("staff-c", utc(3))]
    )
    visitor("staff-c", user=users.create_user("c", "c@example.com", "pw", is_staff=True))
    Conversion.objects.bulk_create([order(vid, utc(4)) for vid in [*vids, "staff-c"]])
    result = report("2026-11-01", "2026-11-30")
    assert result["personalized"] == headline(3, 3, 100.0, 3, "30.00", "10.00", "10.00")
    assert result["control"] == headline(0, 0, 0.0, 0, "0.00", "0.00", "0.00")


def test_no_exposures_make_an_empty_report():
    result = report("2026-11-01", "2026-11-02")
    empty = headline(0, 0, 0.0, 0, "0.00", "0.00", "0.00")
    assert (result["personalized"], result["control"]) == (empty, empty)
    assert result["lift"]["relative"] is None
    assert result["lift"]["ci95"] is None
    assert result["lift"]["p_value"] is None
    assert result["enough_data"] is False
    for key in ("by_placement", "by_content", "by_segment", "by_referrer", "by_country"):
        assert result[key] == []
    assert result["by_goal"] == []
    assert len(result["daily"]) == 2
    assert result["clicks"]["ratio"] is None


# Breakdowns on a small hand-made case -----------------------------------------------------
@pytest.fixture
def shop_week():
    """Nov 1-3. Personalized: A, B, C, D (no Visitor row), I; control: E, F.

    A  search/DE  home-hero banner:1 (segment winter) + recs:trending (clicked), orders 100.00
    B  social/GB  recs:trending, nothing
    C  search/--  home-hero banner:2 (clicked), signs up for the newsletter
    D  no row     recs:trending (clicked), orders 30.00
    I  email/FR   recs:personal on Nov 2, orders 20.00 on Nov 4 (after the period, in window)
    E  search/DE  control home-hero, orders 50.00 the next day
    F  direct/DE  control home-hero and product-recs, nothing
    Not counted: G (staff), H (shown on Oct 31 only).
    """
    visitor("A", "search", "DE")
    visitor("B", "social", "GB")
    visitor("C", "search", "")
    visitor("I", "email", "FR")
    visitor("E", "search", "DE")
    visitor("F", "direct", "DE")
    staff = get_user_model().objects.create_user("g", "g@example.com", "pw", is_staff=True)
    visitor("G", "search", "DE", user=staff)
    visitor("H", "search", "DE")
    recs = {"placement": "product-recs", "kind": Exposure.RECOMMENDATION}
    trending = {**recs, "content": "recs:trending", "content_label": "Trending"}
    a_recs = exposure("A", utc(1, 10, 5), **trending)
    c_banner = exposure("C", utc(2, 12), content="banner:2", content_label="Free shipping")
    d_recs = exposure("D", utc(3, 8), **trending)
    g_recs = exposure("G", utc(2, 8), **trending)
    Exposure.objects.bulk_create(
        [
            exposure("A", utc(1, 10), content_label="Winter sale", segment="winter"),
            a_recs,
            exposure("B", utc(2, 9), **trending),
            c_banner,
            d_recs,
            exposure("I", utc(2, 18), **recs, content="recs:personal", content_label="For you"),
            control("E", utc(1, 15)),
            control("F", utc(3, 20)),
            control("F", utc(3, 20), **recs),
            g_recs,
            exposure("H", utc(31, 20, month=10)),
        ]
    )
    Event.objects.bulk_create([click(a_recs), click(c_banner), click(d_recs), click(g_recs)])
    Conversion.objects.bulk_create(
        [
            order("A", utc(1, 11), "100.00"),
            goal("C", utc(2, 12, 10), "newsletter_signup"),
            order("D", utc(3, 8, 30), "30.00"),
            order("I", utc(4, 10), "20.00"),
            order("E", utc(2, 10), "50.00"),
            order("G", utc(2, 9), "500.00"),
            order("H", utc(1, 10), "500.00"),
        ]
    )


STATISTICS = {"difference_ci95", "p_value", "q_value", "ci95"}


def without_statistics(rows: list[dict]) -> list[dict]:
    """The rows' counts and rates, without their intervals and tests (tested on their own)."""
    return [{key: value for key, value in row.items() if key not in STATISTICS} for row in rows]


def row(key: str, value: str, p: tuple, c: tuple) -> dict:
    return {
        key: value,
        "visitors": p[0],
        "converted_visitors": p[1],
        "conversion_rate": p[2],
        "control_visitors": c[0],
        "control_converted_visitors": c[1],
        "control_conversion_rate": c[2],
    }


def test_groups_and_lift_of_the_small_case(shop_week):
    result = report("2026-11-01", "2026-11-03")
    assert result["personalized"] == headline(5, 3, 60.0, 3, "150.00", "50.00", "30.00")
    assert result["control"] == headline(2, 1, 50.0, 1, "50.00", "50.00", "25.00")
    assert result["lift"] == stats.lift(3, 5, 1, 2)
    assert result["lift"]["relative"] == 0.2
    assert result["verdict"] == "not-enough-data"


def test_by_placement(shop_week):
    assert without_statistics(report("2026-11-01", "2026-11-03")["by_placement"]) == [
        row("placement", "product-recs", (4, 3, 75.0), (1, 0, 0.0)),  # A, B, D, I / F
        row("placement", "home-hero", (2, 1, 50.0), (2, 1, 50.0)),  # A, C / E, F
    ]


def test_by_content(shop_week):
    assert without_statistics(report("2026-11-01", "2026-11-03")["by_content"]) == [
        {
            "placement": "product-recs",
            "content": "recs:trending",
            "label": "Trending",
            "visitors": 3,
            "converted_visitors": 2,
            "conversion_rate": 66.67,
            "clicked_visitors": 2,
        },
        {
            "placement": "home-hero",
            "content": "banner:1",
            "label": "Winter sale",
            "visitors": 1,
            "converted_visitors": 1,
            "conversion_rate": 100.0,
            "clicked_visitors": 0,
        },
        {
            "placement": "home-hero",
            "content": "banner:2",
            "label": "Free shipping",
            "visitors": 1,
            "converted_visitors": 0,
            "conversion_rate": 0.0,
            "clicked_visitors": 1,
        },
        {
            "placement": "product-recs",
            "content": "recs:personal",
            "label": "For you",
            "visitors": 1,
            "converted_visitors": 1,
            "conversion_rate": 100.0,
            "clicked_visitors": 0,
        },
    ]


def test_by_segment(shop_week):
    assert without_statistics(report("2026-11-01", "2026-11-03")["by_segment"]) == [
        {"segment": "(everyone)", "visitors": 5, "converted_visitors": 3, "conversion_rate": 60.0},
        {"segment": "winter", "visitors": 1, "converted_visitors": 1, "conversion_rate": 100.0},
    ]


def test_by_referrer_and_country(shop_week):
    result = report("2026-11-01", "2026-11-03")
    assert without_statistics(result["by_referrer"]) == [
        row("source", "search", (2, 1, 50.0), (1, 1, 100.0)),  # A, C / E
        row("source", "(unknown)", (1, 1, 100.0), (0, 0, 0.0)),  # D has no row yet
        row("source", "direct", (0, 0, 0.0), (1, 0, 0.0)),  # F
        row("source", "email", (1, 1, 100.0), (0, 0, 0.0)),  # I
        row("source", "social", (1, 0, 0.0), (0, 0, 0.0)),  # B
    ]
    assert without_statistics(result["by_country"]) == [
        row("country", "DE", (1, 1, 100.0), (2, 1, 50.0)),  # A / E, F
        row("country", "(unknown)", (2, 1, 50.0), (0, 0, 0.0)),  # C (blank), D (no row)
        row("country", "FR", (1, 1, 100.0), (0, 0, 0.0)),  # I
        row("country", "GB", (1, 0, 0.0), (0, 0, 0.0)),  # B
    ]


def test_by_goal(shop_week):
    assert without_statistics(report("2026-11-01", "2026-11-03")["by_goal"]) == [
        {
            "goal": "purchase",
            "personalized_converted_visitors": 3,
            "personalized_rate": 60.0,
            "control_converted_visitors": 1,
            "control_rate": 50.0,
        },
        {
            "goal": "newsletter_signup",
            "personalized_converted_visitors": 1,
            "personalized_rate": 20.0,
            "control_converted_visitors": 0,
            "control_rate": 0.0,
        },
    ]


def test_clicks(shop_week):
    result = report("2026-11-01", "2026-11-03")
    # Shown recommendations: A, B, D, I. Clicked one: A, D (both converted); not: B, I (I did).
    assert result["clicks"] == {
        "kind": "recommendation",
        "clicked": {"visitors": 2, "converted_visitors": 2, "conversion_rate": 100.0},
        "not_clicked": {"visitors": 2, "converted_visitors": 1, "conversion_rate": 50.0},
        "ratio": 2.0,
    }
    # Any content: C's banner click joins the clickers (C bought nothing).
    assert result["clicks_any"] == {
        "kind": "any",
        "clicked": {"visitors": 3, "converted_visitors": 2, "conversion_rate": 66.67},
        "not_clicked": {"visitors": 2, "converted_visitors": 1, "conversion_rate": 50.0},
        "ratio": 1.33,
    }


def test_daily(shop_week):
    assert report("2026-11-01", "2026-11-03")["daily"] == [
        {  # A / E
            "date": "2026-11-01",
            "personalized_visitors": 1,
            "personalized_converted_visitors": 1,
            "personalized_rate": 100.0,
            "control_visitors": 1,
            "control_converted_visitors": 1,
            "control_rate": 100.0,
        },
        {  # B, C, I (I converted) / nobody
            "date": "2026-11-02",
            "personalized_visitors": 3,
            "personalized_converted_visitors": 1,
            "personalized_rate": 33.33,
            "control_visitors": 0,
            "control_converted_visitors": 0,
            "control_rate": 0.0,
        },
        {  # D / F
            "date": "2026-11-03",
            "personalized_visitors": 1,
            "personalized_converted_visitors": 1,
            "personalized_rate": 100.0,
            "control_visitors": 1,
            "control_converted_visitors": 0,
            "control_rate": 0.0,
        },
    ]


def test_other_goals(shop_week):
    signups = report("2026-11-01", "2026-11-03", "newsletter_signup")
    assert signups["goal"] == "newsletter_signup"
    assert signups["personalized"] == headline(5, 1, 20.0, 1, "0.00", "0.00", "0.00")
    assert signups["control"]["converted_visitors"] == 0
    assert without_statistics(signups["by_placement"])[1] == row(
        "placement", "home-hero", (2, 1, 50.0), (2, 0, 0.0)
    )
    anything = report("2026-11-01", "2026-11-03", "any")
    # A, C, D, I; 4 conversions, 150.00.
    assert anything["personalized"] == headline(5, 4, 80.0, 4, "150.00", "37.50", "30.00")
    assert anything["control"] == headline(2, 1, 50.0, 1, "50.00", "50.00", "25.00")
    nothing = report("2026-11-01", "2026-11-03", "app_download")
    assert nothing["personalized"]["converted_visitors"] == 0
    assert nothing["by_goal"] == anything["by_goal"]  # by_goal covers every goal


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner statistics")
@pytest.mark.django_db(transaction=True)
def test_tables_filled_since_their_statistics_are_analysed_before_the_raw_rows_are_read(
    report_source,
):
    if report_source == "rollups":
        pytest.skip("the roll-ups read no raw rows for a report")

    def estimated_rows() -> float:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = 'personalization_exposure'::regclass"
            )
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE personalization_exposure")  # statistics of an empty table
    assert estimated_rows() < 100
    Exposure.objects.bulk_create(exposure(f"bulk-{n}", utc(3)) for n in range(3000))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # what the table went through
    assert report("2026-11-01", "2026-11-30")["personalized"]["visitors"] == 3000
    assert estimated_rows() == 3000


def test_revenue_per_visitor_and_order_value_have_intervals_over_visitors():
    """A visitor's orders are summed before they are squared (their orders are not
    independent units), and an order counts in a period when an exposure of the period is
    attributed to it."""
    exposures = [exposure("a", utc(2)), exposure("a", utc(10)), exposure("b", utc(2))]
    exposures += [exposure("c", utc(2)), control("k", utc(2)), control("k2", utc(3))]
    Exposure.objects.bulk_create(exposures)
    Conversion.objects.bulk_create(
        [
            order("a", utc(2, 18), "10.00"),  # follows a's exposure of the 2nd
            order("a", utc(10, 18), "30.00"),  # follows a's exposure of the 10th only
            order("b", utc(2, 18), "20.00"),
            order("k", utc(2, 18), "5.00"),
        ]
    )
    whole = report("2026-11-01", "2026-11-30")["personalized"]
    # y = 40, 20, 0: mean 20, sample variance 400, standard error 11.547
    assert whole["revenue_per_visitor"] == "20.00"
    assert whole["revenue_per_visitor_ci95"] == ["0.00", "42.63"]
    # orders 2, 1, 0 and revenue 40, 20, 0: AOV 20, with the delta method's variance 0
    assert whole["average_order_value_ci95"] == ["20.00", "20.00"]
    later = report("2026-11-10", "2026-11-30")["personalized"]
    assert (later["visitors"], later["orders"], later["revenue"]) == (1, 1, "30.00")
    assert later["revenue_per_visitor_ci95"] is None  # one visitor
    result = report("2026-11-01", "2026-11-30")
    lift = result["revenue_per_visitor_lift"]
    assert lift["relative"] == pytest.approx(20.00 / 2.50 - 1)
    assert lift["ci95"][0] < lift["relative"] < lift["ci95"][1]
