"""Daily roll-ups of the report: the same figures as the raw rows, refreshed incrementally,
with activity since the last refresh read live."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import random
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone

from personalization.models import (
    Conversion,
    Event,
    Exposure,
    ReportCell,
    ReportRollup,
    ReportVisitorState,
    Visitor,
)
from personalization.reports import rollups
from personalization.reports.period import parse_period
from personalization.reports.queries import build_report

pytestmark = pytest.mark.django_db

PLACEMENTS = [
    ("home-hero", Exposure.BANNER, ["banner:1", "banner:2"]),
    ("product-related", Exposure.RECOMMENDATION, ["strategy:auto", "strategy:viewed"]),
    ("signup-popup", Exposure.POPUP, ["popup"]),
]
GOALS = [
    (Conversion.PURCHASE, "purchase"),
    (Conversion.LEAD, "signup"),
    (Conversion.APP_DOWNLOAD, "app_download"),
    (Conversion.ENGAGEMENT, "click"),
]
_orders = itertools.count(1)
# Rows this old are in the cells after a refresh; younger ones are read live.
SETTLED = rollups.SLACK + dt.timedelta(minutes=2)
VOLATILE = {"generated_at", "source", "rolled_up_to", "live_visitors"}


def stable(report: dict) -> dict:
    return {key: value for key, value in report.items() if key not in VOLATILE}


def raw_report(period, goal: str, settings) -> dict:
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REPORT_ROLLUPS": False}
    try:
        result = build_report(period, goal)
    finally:
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REPORT_ROLLUPS": True}
    assert result["source"] == "raw"
    return result


def random_shop(seed: int, start: dt.datetime, days: int, visitors: int = 120) -> None:
    """Visitors with a few visits each, of both groups, some staff, some without a row, some
    shown both groups, with clicks and conversions of several goals, some just before or after
    midnight."""
    rng = random.Random(seed)
    users = get_user_model().objects
    exposures, conversions, clicks = [], [], []
    for number in range(visitors):
        vid = f"r{seed}-{number}"
        is_control = rng.random() < 0.2
        crosses_groups = rng.random() < 0.08
        if rng.random() < 0.85:
            user = None
            if rng.random() < 0.05:
                user = users.create_user(f"staff-{vid}", is_staff=True)
            Visitor.objects.create(
                id=vid,
                user=user,
                first_seen=start,
                last_seen=start,
                first_source=rng.choice(["direct", "search", "social", "email"]),
                latest_source="direct",
                country_code=rng.choice(["DE", "GB", "US", ""]),
                in_control_group=is_control,
            )
        for _visit in range(1 + int(rng.expovariate(0.8))):
            at = start + dt.timedelta(seconds=rng.random() * days * 86400)
            if rng.random() < 0.2:  # around the shop's midnight (Europe/Berlin)
                local = timezone.localtime(at).replace(hour=23, minute=59, second=50)
                at = local + dt.timedelta(seconds=rng.choice([0, 20]))
            for _page in range(1 + int(rng.expovariate(0.7))):
                if crosses_groups:
                    is_control = rng.random() < 0.5
                placement, kind, contents = rng.choice(PLACEMENTS)
                content = "default" if is_control else rng.choice(contents)
                shown = Exposure(
                    visitor_id=vid,
                    content_label=f"<b>{content.title()}</b>" if content != "popup" else "",
                    placement=placement,
                    kind=kind,
                    content=content,
                    # A content keeps its name (a renamed one shows its greatest name).
                    segment="" if is_control else rng.choice(["", "first-time", "campers"]),
                    is_control=is_control,
                    created_at=at,
                )
                exposures.append(shown)
                if not is_control and rng.random() < 0.15:
                    clicks.append(Event(visitor_id=vid, exposure=shown, kind=Event.CLICK))
                at += dt.timedelta(seconds=rng.randint(5, 600))
            while rng.random() < 0.3:
                kind, name = rng.choice(GOALS)
                later = at + dt.timedelta(hours=rng.choice([0.01, 2, 30, 24 * 6.99, 24 * 7.5]))
                conversions.append(
                    Conversion(
                        visitor_id=vid,
                        kind=kind,
                        goal=name,
                        order_id=f"o-{next(_orders)}" if kind == Conversion.PURCHASE else None,
                        revenue=Decimal(rng.randint(100, 9999)) / 100
                        if kind == Conversion.PURCHASE
                        else None,
                        created_at=later,
                    )
                )
    Exposure.objects.bulk_create(exposures)
    Conversion.objects.bulk_create(conversions)
    Event.objects.bulk_create(clicks)


PERIODS = [
    ("2026-10-01", "2026-11-30"),
    ("2026-10-10", "2026-10-20"),
    ("2026-10-15", "2026-10-15"),
    ("2026-10-31", "2026-11-02"),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rolled_up_reports_equal_the_raw_reports_for_any_period_and_goal(seed, settings):
    random_shop(seed, dt.datetime(2026, 10, 1, tzinfo=dt.UTC), days=35)
    rollups.refresh()
    assert ReportCell.objects.exists()
    for start, end in PERIODS:
        period = parse_period(start, end, today=dt.date(2026, 12, 1))
        for goal in ("purchase", "any", "signup", "app_download", "never-reached"):
            rolled = build_report(period, goal)
            assert rolled["source"] == "rollups"
            assert stable(rolled) == stable(raw_report(period, goal, settings)), (start, goal)
    whole = parse_period(*PERIODS[0], today=dt.date(2026, 12, 1))
    assert build_report(whole, "purchase")["excluded_visitors"] > 0  # some crossed groups


def test_the_cells_grow_with_days_not_with_visitors():
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    random_shop(1, start, days=2, visitors=300)
    rollups.refresh()
    cells_before = ReportCell.objects.count()
    random_shop(2, start, days=2, visitors=900)
    rollups.refresh(full=True)
    assert ReportVisitorState.objects.count() > 1000  # four times the visitors...
    assert ReportCell.objects.count() < 1.5 * cells_before  # ...not four times the cells


@pytest.fixture
def now():
    with time_machine.travel("2026-11-20 10:00:00+00:00", tick=False) as traveller:
        yield traveller


def activity(vid: str, *, control: bool = False, order: str | None = None) -> Exposure:
    """An exposure now, and an order a minute later when ``order`` holds its revenue."""
    shown = Exposure.objects.create(
        visitor_id=vid,
        placement="home-hero",
        kind=Exposure.BANNER,
        content="default" if control else "banner:1",
        is_control=control,
    )
    if order is not None:
        Conversion.objects.create(
            visitor_id=vid,
            kind=Conversion.PURCHASE,
            goal="purchase",
            order_id=f"o-{next(_orders)}",
            revenue=Decimal(order),
            created_at=timezone.now() + dt.timedelta(minutes=1),
        )
    return shown


def this_month() -> object:
    return parse_period("2026-11-01", "2026-11-30", today=dt.date(2026, 11, 30))


def test_activity_since_the_last_refresh_is_read_live(now, settings):
    activity("a", order="10.00")
    activity("b", control=True)
    rollups.refresh()
    now.shift(dt.timedelta(hours=2))
    activity("c", order="30.00")  # new visitor
    activity("b", control=True, order="5.00")  # a control visitor converts
    Event.objects.create(visitor_id="a", exposure=activity("a"), kind=Event.CLICK)
    live = build_report(this_month(), "purchase")
    assert live["source"] == "rollups"
    assert live["live_visitors"] == 3
    assert live["personalized"]["visitors"] == 2
    assert live["personalized"]["revenue"] == "40.00"
    assert live["control"]["converted_visitors"] == 1
    assert live["clicks_any"]["clicked"]["visitors"] == 1
    assert stable(live) == stable(raw_report(this_month(), "purchase", settings))

    done = rollups.refresh()  # the rows of the last ten minutes stay live
    assert done == {"rebuilt": False, "visitors": 2, "seconds": done["seconds"]}
    assert build_report(this_month(), "purchase")["live_visitors"] == 3
    now.shift(SETTLED)
    done = rollups.refresh()
    assert done == {"rebuilt": False, "visitors": 3, "seconds": done["seconds"]}
    rolled = build_report(this_month(), "purchase")
    assert rolled["live_visitors"] == 0
    assert stable(rolled) == stable(live)


def test_an_incremental_refresh_recomputes_only_active_visitors(now):
    for number in range(30):
        activity(f"v{number}", order="1.00" if number % 3 == 0 else None)
    now.shift(dt.timedelta(hours=1))
    assert rollups.refresh()["rebuilt"] is True
    now.shift(dt.timedelta(hours=1))
    assert rollups.refresh() == {
        "rebuilt": False,
        "visitors": 0,
        "seconds": pytest.approx(0, abs=5),
    }
    activity("v1", order="2.00")
    now.shift(SETTLED)
    result = rollups.refresh()
    assert result["visitors"] == 1
    assert ReportRollup.objects.get().rolled_up_to == timezone.now() - rollups.SLACK
    assert build_report(this_month(), "purchase")["personalized"]["orders"] == 11


def test_a_refresh_repeated_changes_nothing(now):
    activity("a", order="10.00")
    activity("b")
    rollups.refresh()
    before = sorted(ReportCell.objects.values_list("measure", "day", "n", "revenue_cents"))
    rollups.refresh()  # the same visitors are within the slack again
    rollups.refresh(full=True)
    after = sorted(ReportCell.objects.values_list("measure", "day", "n", "revenue_cents"))
    assert after == before


def test_a_changed_attribution_window_falls_back_to_raw_rows_until_rebuilt(now, settings):
    activity("a", order="10.00")
    rollups.refresh()
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "ATTRIBUTION_WINDOW_DAYS": 3}
    assert rollups.status() is None
    assert build_report(this_month(), "purchase")["source"] == "raw"
    assert rollups.refresh()["rebuilt"] is True
    assert build_report(this_month(), "purchase")["source"] == "rollups"


def test_the_setting_turns_roll_ups_off(now, settings):
    activity("a")
    rollups.refresh()
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REPORT_ROLLUPS": False}
    assert build_report(this_month(), "purchase")["source"] == "raw"


def test_the_report_from_roll_ups_costs_a_fixed_number_of_queries(now, django_assert_num_queries):
    from django.db import connection

    for number in range(20):
        activity(f"v{number}", order="3.00")
    now.shift(dt.timedelta(hours=1))
    rollups.refresh()
    # status, savepoint x2, cells, daily cells, five queries for visitors active since
    # (none), and on PostgreSQL JIT and the time limit.
    expected = 1 + 2 + 2 + 5 + 2 * (connection.vendor == "postgresql")
    with django_assert_num_queries(expected):
        build_report(this_month(), "purchase")
    for number in range(20, 200):
        activity(f"v{number}", order="3.00")
    now.shift(dt.timedelta(hours=1))
    rollups.refresh()
    with django_assert_num_queries(expected):
        result = build_report(this_month(), "purchase")
    assert result["personalized"]["converted_visitors"] == 200


def test_a_visitor_who_asks_to_be_deleted_leaves_the_roll_ups(now):
    from personalization.profiling import storage

    activity("gone", order="10.00")  # no Visitor row: the rows must go all the same
    activity("stays", order="20.00")
    rollups.refresh()
    storage.delete_visitor("gone")
    assert not Exposure.objects.filter(visitor_id="gone").exists()
    assert not Conversion.objects.filter(visitor_id="gone").exists()
    live = build_report(this_month(), "purchase")  # before the next refresh
    assert live["personalized"]["visitors"] == 1
    assert live["personalized"]["revenue"] == "20.00"
    rollups.refresh()
    assert not ReportVisitorState.objects.filter(visitor_id="gone").exists()
    assert stable(build_report(this_month(), "purchase")) == stable(live)


def test_purged_visitors_keep_their_anonymous_counts(now, settings):
    from personalization.retention import purge_inactive_visitors

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VISITOR_RETENTION_DAYS": 10}
    Visitor.objects.create(
        id="old", first_seen=timezone.now(), last_seen=timezone.now(), first_source="direct"
    )
    activity("old", order="10.00")
    now.shift(SETTLED)
    rollups.refresh()
    now.shift(dt.timedelta(days=11))
    assert purge_inactive_visitors() == 1
    assert not Exposure.objects.filter(visitor_id="old").exists()
    assert not ReportVisitorState.objects.exists()
    rollups.refresh()
    result = build_report(this_month(), "purchase")
    assert result["personalized"]["visitors"] == 1
    assert result["personalized"]["revenue"] == "10.00"


def test_rows_moved_to_an_account_visitor_are_counted_once(now, settings):
    from personalization.profiling import storage

    activity("phone", order="10.00")
    activity("laptop")
    rollups.refresh()
    storage._reassign_related("phone", "laptop")  # what logging in on a second device does
    live = build_report(this_month(), "purchase")
    assert live["personalized"]["visitors"] == 1
    assert live["personalized"]["converted_visitors"] == 1
    assert stable(live) == stable(raw_report(this_month(), "purchase", settings))
    rollups.refresh()
    assert stable(build_report(this_month(), "purchase")) == stable(live)


def test_a_visitor_shown_the_other_group_later_leaves_both_groups(now, settings):
    activity("switcher", order="10.00")
    activity("stays", control=True, order="5.00")
    rollups.refresh()
    assert build_report(this_month(), "purchase")["excluded_visitors"] == 0
    now.shift(dt.timedelta(hours=2))
    activity("switcher", control=True)
    live = build_report(this_month(), "purchase")
    assert live["excluded_visitors"] == 1
    assert (live["personalized"]["visitors"], live["personalized"]["revenue"]) == (0, "0.00")
    assert (live["control"]["visitors"], live["control"]["revenue"]) == (1, "5.00")
    assert stable(live) == stable(raw_report(this_month(), "purchase", settings))
    rollups.refresh()
    assert stable(build_report(this_month(), "purchase")) == stable(live)


def test_the_job_and_the_command_refresh(now):
    from django.core.management import call_command

    from personalization import jobs

    activity("a", order="10.00")
    assert jobs.run("rollups")["rebuilt"] is True
    assert ReportRollup.objects.get().rolled_up_to == timezone.now() - rollups.SLACK
    assert jobs.JOBS["rollups"].every == 300
    out = io.StringIO()
    now.shift(SETTLED)
    call_command("personalization_rollup", "--full", stdout=out)
    assert "Rebuilt the report roll-ups: 1 visitor(s)" in out.getvalue()


def test_the_task_refreshes_and_beat_runs_it_every_five_minutes(now):
    pytest.importorskip("celery", reason="Celery is optional")
    beat = pytest.importorskip("django_celery_beat.models", reason="django-celery-beat is optional")
    from personalization.tasks import refresh_report_rollups_task

    activity("a", order="10.00")
    assert refresh_report_rollups_task.delay().get()["rebuilt"] is True
    assert ReportRollup.objects.get().rolled_up_to == timezone.now() - rollups.SLACK
    scheduled = beat.PeriodicTask.objects.get(task="personalization.refresh_report_rollups")
    assert (scheduled.interval.every, scheduled.interval.period) == (300, "seconds")
