"""The report's period (reports/period.py): parsing, defaults, limits and shop-time days."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import override_settings

from personalization.reports.period import Period, PeriodError, parse_period

TODAY = dt.date(2026, 11, 30)


def test_both_dates_given():
    period = parse_period("2026-11-01", "2026-11-03")
    assert period == Period(dt.date(2026, 11, 1), dt.date(2026, 11, 3))
    assert period.days == [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]


def test_one_day():
    assert parse_period("2026-11-05", "2026-11-05").days == [dt.date(2026, 11, 5)]


def test_defaults_are_the_30_days_up_to_today():
    period = parse_period(None, None, today=TODAY)
    assert (period.start, period.end) == (dt.date(2026, 11, 1), TODAY)
    assert len(period.days) == 30
    assert parse_period("", "  ", today=TODAY) == period


def test_a_missing_start_is_29_days_before_the_end():
    period = parse_period(None, "2026-03-10", today=TODAY)
    assert (period.start, period.end) == (dt.date(2026, 2, 9), dt.date(2026, 3, 10))


def test_a_missing_end_is_today():
    assert parse_period("2026-11-20", None, today=TODAY).end == TODAY


def test_today_is_the_shops_date():
    # 23:30 UTC on Nov 1 is already Nov 2 in Berlin, the test TIME_ZONE.
    with time_machine.travel(dt.datetime(2026, 11, 1, 23, 30, tzinfo=dt.UTC), tick=False):
        assert parse_period(None, None).end == dt.date(2026, 11, 2)


def test_the_bounds_are_midnights_of_the_shops_time_zone():
    period = parse_period("2026-11-01", "2026-11-30")
    assert period.start_at == dt.datetime(2026, 10, 31, 23, tzinfo=dt.UTC)
    assert period.end_at == dt.datetime(2026, 11, 30, 23, tzinfo=dt.UTC)
    assert str(period.start_at.tzinfo) == "Europe/Berlin"


def test_a_day_with_a_clock_change_lasts_25_hours():
    # Summer time ends in the EU on Sunday, 25 October 2026.
    period = parse_period("2026-10-25", "2026-10-25")
    assert period.start_at == dt.datetime(2026, 10, 24, 22, tzinfo=dt.UTC)
    assert period.end_at == dt.datetime(2026, 10, 25, 23, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "text", ["2026-11-1", "01.11.2026", "11/01/2026", "20261101", "2026-02-30", "tomorrow"]
)
def test_dates_must_be_yyyy_mm_dd(text):
    with pytest.raises(PeriodError, match=r"is not a date in the form YYYY-MM-DD"):
        parse_period(text, "2026-11-30")
    with pytest.raises(PeriodError, match=r"^The end date"):
        parse_period("2026-11-01", text)


def test_dates_far_from_now_are_refused():
    with pytest.raises(PeriodError, match="between 1900-01-01 and 9998-12-31"):
        parse_period("0001-01-01", "0001-01-02")
    with pytest.raises(PeriodError, match="between 1900-01-01 and 9998-12-31"):
        parse_period("9999-12-30", "9999-12-31")


def test_the_start_may_not_follow_the_end():
    with pytest.raises(
        PeriodError, match=r"The start \(2026-11-02\) is after the end \(2026-11-01\)"
    ):
        parse_period("2026-11-02", "2026-11-01")
    with pytest.raises(PeriodError, match="is after the end"):
        parse_period("2026-12-01", None, today=TODAY)


def test_at_most_366_days_by_default():
    assert len(parse_period("2025-11-30", "2026-11-30").days) == 366
    with pytest.raises(PeriodError, match="covers 367 days; at most 366 are allowed"):
        parse_period("2025-11-29", "2026-11-30")


@override_settings(PERSONALIZATION={"PRODUCT_MODEL": "testapp.Product", "REPORT_MAX_DAYS": 7})
def test_the_longest_period_follows_the_setting():
    assert len(parse_period("2026-11-01", "2026-11-07").days) == 7
    with pytest.raises(PeriodError, match="at most 7"):
        parse_period("2026-11-01", "2026-11-08")
    # The default of 30 days shrinks to fit.
    assert parse_period(None, "2026-11-30").start == dt.date(2026, 11, 24)


def test_a_period_error_is_a_value_error():
    assert issubclass(PeriodError, ValueError)
