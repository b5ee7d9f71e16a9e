"""Quiet hours: the recipient's zone (GeoIP, country, shop) and the local-time window."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import logging
from zoneinfo import ZoneInfo

import pytest

from personalization.emails import quiet
from personalization.emails.quiet import is_quiet, next_send_time, quiet_for, zone_for
from personalization.models import Visitor
from personalization.profiling.geo import EMPTY_GEO, Geo, lookup
from personalization.testutils import DEMO_GEOIP_RECORDS, DEMO_IPS, write_geoip_database

UTC = dt.UTC
PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")  # TIME_ZONE of the test settings

GARBAGE_ZONES = [
    "Mars/Olympus_Mons",
    "europe/paris",  # names are case-sensitive
    "../../etc/passwd",
    "/etc/localtime",
    "Europe",  # a directory
    "zone.tab",  # a file that is no zone
    "Europe/Paris\x00",
    "Europe/" + "x" * 100,
    " ",
]


@pytest.fixture(autouse=True)
def _fresh_memos():
    quiet._zone_name.cache_clear()
    quiet.country_zones.cache_clear()
    quiet._warned.clear()
    yield
    quiet._zone_name.cache_clear()
    quiet.country_zones.cache_clear()
    quiet._warned.clear()


def set_hours(settings, hours):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EMAIL_QUIET_HOURS": hours}


def use_db(settings, path):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GEOIP_PATH": str(path)}


def at(zone, *args):
    """A wall time in ``zone``."""
    return dt.datetime(*args, tzinfo=zone)


# --- The zone from GeoIP ---------------------------------------------------------------------


@pytest.fixture
def city_db(tmp_path):
    return write_geoip_database(
        tmp_path / "city.mmdb",
        [
            *DEMO_GEOIP_RECORDS,
            ("185.10.0.0/16", {"country": "FR", "city": "Lyon", "time_zone": "Mars/Olympus"}),
            ("194.20.0.0/16", {"country": "US", "city": "Nowhere"}),  # no time zone
        ],
    )


def test_a_city_database_gives_the_time_zone(settings, city_db):
    use_db(settings, city_db)
    assert lookup(DEMO_IPS["GB"]).time_zone == "Europe/London"
    assert lookup("2a02:d3c0::1").time_zone == "Europe/London"
    assert lookup(DEMO_IPS["JP"]).time_zone == "Asia/Tokyo"
    assert lookup(DEMO_IPS["US"]).time_zone == "America/Los_Angeles"


def test_a_time_zone_zoneinfo_does_not_know_is_dropped(settings, city_db):
    use_db(settings, city_db)
    located = lookup("185.10.100.7")
    assert (located.country_code, located.city, located.time_zone) == ("FR", "Lyon", None)
    assert lookup("194.20.113.9").time_zone is None


def test_a_country_database_has_no_time_zone(settings, tmp_path):
    path = write_geoip_database(
        tmp_path / "country.mmdb", DEMO_GEOIP_RECORDS, database_type="GeoIP2-Country"
    )
    use_db(settings, path)
    assert lookup(DEMO_IPS["GB"]) == Geo("GB", "United Kingdom")


def test_the_time_zone_survives_as_dict_and_is_validated_by_from_dict():
    geo = Geo("GB", "United Kingdom", time_zone="Europe/London")
    assert geo.as_dict()["time_zone"] == "Europe/London"
    assert Geo.from_dict(geo.as_dict()) == geo
    assert Geo.from_dict({"time_zone": "Europe/London"}).time_zone == "Europe/London"
    assert Geo.from_dict({"time_zone": 5}) is EMPTY_GEO
    for garbage in GARBAGE_ZONES:
        assert Geo.from_dict({"country_code": "GB", "time_zone": garbage}).time_zone is None


@pytest.mark.django_db
def test_the_visitor_row_keeps_the_time_zone_and_follows_the_visitor(
    settings, city_db, browser, clock
):
    use_db(settings, city_db)
    browser.get("/profile/", REMOTE_ADDR=DEMO_IPS["FR"])
    clock.shift(20)
    browser.get("/profile/", REMOTE_ADDR=DEMO_IPS["FR"])  # the cookie came back: INSERT
    row = Visitor.objects.get()
    assert (row.country_code, row.time_zone) == ("FR", "Europe/Paris")
    fields = Visitor.objects.values("time_zone", "country_code").get()
    assert zone_for(fields["time_zone"], fields["country_code"]) == PARIS

    clock.shift(31 * 60)  # a new visit, from Tokyo: the row is updated
    browser.get("/profile/", REMOTE_ADDR=DEMO_IPS["JP"])
    row.refresh_from_db()
    assert (row.country_code, row.city, row.time_zone) == ("JP", "Tokyo", "Asia/Tokyo")
    # 2026-11-02 10:31 UTC is 19:31 in Tokyo, 11:31 in Berlin.
    fields = Visitor.objects.values("time_zone", "country_code").get()
    assert not quiet_for(fields, None)
    clock.shift(2 * 3600)  # 21:31 in Tokyo, 13:31 in Berlin
    assert quiet_for(fields, None)
    assert not quiet_for(None, None)

    clock.shift(31 * 60)  # a visit without a time zone empties it
    browser.get("/profile/", REMOTE_ADDR="194.20.113.9")
    row.refresh_from_db()
    assert (row.country_code, row.time_zone) == ("US", "")


# --- Zone resolution -------------------------------------------------------------------------


def test_the_visitors_zone_comes_first():
    assert zone_for("America/New_York", "FR") == NEW_YORK
    assert zone_for("Europe/London", "") == LONDON


@pytest.mark.parametrize("country", ["FR", "fr", " FR "])
def test_a_country_with_one_zone_gives_it(country):
    assert zone_for("", country) == PARIS
    assert zone_for(None, country) == PARIS


def test_a_country_with_several_zones_or_none_gives_the_default(settings):
    assert zone_for("", "US") == BERLIN
    assert zone_for("", "") == BERLIN
    assert zone_for(None, None) == BERLIN
    assert zone_for("", "XX") == BERLIN
    settings.TIME_ZONE = "Asia/Tokyo"  # the default is read each time, not memoised
    assert zone_for("", "US") == TOKYO


@pytest.mark.parametrize("garbage", GARBAGE_ZONES)
def test_a_garbage_time_zone_falls_back(garbage):
    assert zone_for(garbage, "") == BERLIN
    assert zone_for(garbage, "JP") == TOKYO


def test_without_a_zone_table_the_country_fallback_is_skipped(monkeypatch, tmp_path):
    def no_package(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib.resources, "files", no_package)
    monkeypatch.setattr(quiet, "SYSTEM_ZONEINFO", tmp_path)
    assert quiet.country_zones() == {}
    assert zone_for("", "FR") == BERLIN
    assert zone_for("Europe/Paris", "") == PARIS


def test_the_system_table_is_read_without_tzdata(monkeypatch, tmp_path):
    def no_package(name):
        raise ModuleNotFoundError(name)

    (tmp_path / "zone.tab").write_text(
        "# a comment\n"
        "FR\t+4852+00220\tEurope/Paris\n"
        "XA\t+0000+00000\tMars/Olympus\n"  # no such zone: ignored
        "XB\t+0000+00000\tAsia/Tokyo\n"
        "XB\t+0000+00000\tEurope/London\n"
        "broken line\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(importlib.resources, "files", no_package)
    monkeypatch.setattr(quiet, "SYSTEM_ZONEINFO", tmp_path)
    assert quiet.country_zones() == {"FR": ("Europe/Paris",), "XB": ("Asia/Tokyo", "Europe/London")}
    assert zone_for("", "FR") == PARIS
    assert zone_for("", "XA") == BERLIN
    assert zone_for("", "XB") == BERLIN


def test_zone1970_lists_several_countries_per_zone(monkeypatch, tmp_path):
    def no_package(name):
        raise ModuleNotFoundError(name)

    (tmp_path / "zone1970.tab").write_text("FR,MC\t+4852+00220\tEurope/Paris\n", encoding="utf-8")
    monkeypatch.setattr(importlib.resources, "files", no_package)
    monkeypatch.setattr(quiet, "SYSTEM_ZONEINFO", tmp_path)
    assert zone_for("", "MC") == PARIS


# --- The window ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "quiet_hours"),
    [
        ((21, 8), {21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7}),
        ([21, 8], {21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7}),
        ((13, 14), {13}),
        ((0, 6), {0, 1, 2, 3, 4, 5}),
        ((23, 0), {23}),
        ((8, 8), set()),
        (None, set()),
    ],
)
def test_the_window_in_local_hours(settings, hours, quiet_hours):
    set_hours(settings, hours)
    for hour in range(24):
        for minute in (0, 59):
            now = at(PARIS, 2026, 7, 1, hour, minute, 59)
            assert is_quiet(now, PARIS) is (hour in quiet_hours), (hour, minute)
            assert is_quiet(now.astimezone(UTC), PARIS) is (hour in quiet_hours)
            expected = hours is not None and hour in quiet_hours
            assert is_quiet(now, PARIS, hours if hours is not None else (0, 0)) is expected


def test_the_default_is_21_to_8_in_the_recipients_zone():
    now = dt.datetime(2026, 7, 1, 19, 30, tzinfo=UTC)  # 21:30 in Paris, 20:30 in London
    assert is_quiet(now, PARIS)
    assert not is_quiet(now, LONDON)
    assert not is_quiet(now, NEW_YORK)  # 15:30
    assert is_quiet(now, TOKYO)  # 04:30


def test_a_naive_time_is_in_the_shops_time_zone():
    assert is_quiet(dt.datetime(2026, 7, 1, 22, 0), BERLIN)
    assert not is_quiet(dt.datetime(2026, 7, 1, 22, 0), NEW_YORK)  # 16:00 there


def test_explicit_hours_override_the_setting(settings):
    set_hours(settings, None)
    now = at(PARIS, 2026, 7, 1, 13, 30)
    assert not is_quiet(now, PARIS)
    assert is_quiet(now, PARIS, (13, 14))


@pytest.mark.parametrize(
    "hours",
    [(21,), (21, 8, 0), ("21", "8"), (24, 8), (21, -1), (True, 8), (21.0, 8), "21-8", 21, {21: 8}],
)
def test_invalid_hours_are_never_quiet_and_warned_about_once(settings, caplog, hours):
    set_hours(settings, hours)
    now = at(PARIS, 2026, 7, 1, 23, 0)
    with caplog.at_level(logging.WARNING, logger="personalization"):
        assert not is_quiet(now, PARIS)
        assert not is_quiet(now, PARIS)
        assert not quiet_for({"time_zone": "Europe/Paris"}, now)
        assert next_send_time(now, PARIS) == now
    warnings = [r for r in caplog.records if "EMAIL_QUIET_HOURS" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


def test_valid_or_switched_off_hours_are_not_warned_about(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="personalization"):
        for hours in [(21, 8), [0, 23], (5, 5), None]:
            set_hours(settings, hours)
            is_quiet(at(PARIS, 2026, 7, 1, 23, 0), PARIS)
    assert not [r for r in caplog.records if "EMAIL_QUIET_HOURS" in r.getMessage()]


# --- When the window ends --------------------------------------------------------------------


def test_next_send_time_is_the_end_of_the_window():
    evening = at(PARIS, 2026, 7, 1, 22, 15)
    assert next_send_time(evening, PARIS) == at(PARIS, 2026, 7, 2, 8, 0)
    night = at(PARIS, 2026, 7, 2, 3, 0)
    assert next_send_time(night, PARIS) == at(PARIS, 2026, 7, 2, 8, 0)
    assert next_send_time(evening, PARIS).tzinfo is UTC
    day = at(PARIS, 2026, 7, 2, 12, 0)
    assert next_send_time(day, PARIS) is day
    lunch = at(PARIS, 2026, 7, 2, 13, 40)
    assert next_send_time(lunch, PARIS, (13, 14)) == at(PARIS, 2026, 7, 2, 14, 0)
    assert next_send_time(lunch.astimezone(UTC), PARIS, (13, 14)) == at(PARIS, 2026, 7, 2, 14)
    assert next_send_time(lunch, PARIS, (0, 0)) is lunch


def test_dst_nights_are_shorter_or_longer():
    # Spring forward in Paris: 2026-03-29 02:00 CET -> 03:00 CEST, at 01:00 UTC.
    start = at(PARIS, 2026, 3, 28, 21, 0)
    end = next_send_time(start, PARIS)
    assert end == dt.datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST
    assert end - start == dt.timedelta(hours=10)
    # Fall back: 2026-10-25 03:00 CEST -> 02:00 CET, at 01:00 UTC.
    start = at(PARIS, 2026, 10, 24, 21, 0)
    end = next_send_time(start, PARIS)
    assert end == dt.datetime(2026, 10, 25, 7, 0, tzinfo=UTC)  # 08:00 CET
    assert end - start == dt.timedelta(hours=12)


def test_a_window_ending_at_an_hour_the_clocks_skip_ends_when_they_jump():
    hours = (21, 2)  # 02:00-02:59 does not exist on 2026-03-29 in Paris
    before = dt.datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)  # 01:59:59 CET
    jump = dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert is_quiet(before, PARIS, hours)
    assert not is_quiet(jump, PARIS, hours)
    end = next_send_time(before, PARIS, hours)
    assert end == jump
    local = end.astimezone(PARIS)
    assert (local.hour, local.utcoffset()) == (3, dt.timedelta(hours=2))


def test_a_window_ending_at_an_hour_that_occurs_twice_ends_at_the_first():
    hours = (22, 2)  # 02:00-02:59 happens twice on 2026-10-25 in Paris
    night = dt.datetime(2026, 10, 24, 23, 30, tzinfo=UTC)  # 01:30 CEST
    assert is_quiet(night, PARIS, hours)
    end = next_send_time(night, PARIS, hours)
    assert end == dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # the first 02:00, CEST
    assert not is_quiet(end, PARIS, hours)
    assert not is_quiet(dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC), PARIS, hours)  # 02:30 CET


@pytest.mark.parametrize(
    "zone",
    ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Havana", "Asia/Kolkata"],
)
@pytest.mark.parametrize("hours", [(21, 8), (13, 14), (0, 2), (23, 0), (2, 3), (1, 2)])
def test_next_send_time_is_the_first_moment_that_is_not_quiet(zone, hours):
    """Around every change of the clocks in 2026: the returned moment is not quiet, the
    second before it is, and so is every sampled moment in between."""
    zone = ZoneInfo(zone)
    step = dt.timedelta(minutes=23)
    starts = [
        dt.datetime(2026, month, day, tzinfo=UTC)
        for month in (3, 4, 9, 10, 11)
        for day in (1, 4, 8)
    ]
    starts += [
        dt.datetime(2026, month, day, tzinfo=UTC) for month in (3, 10) for day in (7, 13, 27)
    ]
    for start in starts:
        now = start
        while now < start + dt.timedelta(days=2):
            end = next_send_time(now, zone, hours)
            assert end >= now
            assert not is_quiet(end, zone, hours), (now, end)
            if end != now:
                assert is_quiet(now, zone, hours)
                assert is_quiet(end - dt.timedelta(seconds=1), zone, hours), (now, end)
                probe = now
                while probe < end:
                    assert is_quiet(probe, zone, hours), (now, probe, end)
                    probe += dt.timedelta(minutes=10)
                assert end - now <= dt.timedelta(hours=25)
            now += step


def test_quiet_for_reads_a_visitor_rows_fields():
    now = dt.datetime(2026, 7, 1, 20, 30, tzinfo=UTC)  # 22:30 Paris/Berlin, 16:30 New York
    assert quiet_for({"time_zone": "Europe/Paris", "country_code": "FR"}, now)
    assert not quiet_for({"time_zone": "America/New_York", "country_code": "FR"}, now)
    assert quiet_for({"time_zone": "", "country_code": "JP"}, now)  # 05:30 in Tokyo
    assert quiet_for({"time_zone": "bogus", "country_code": "US"}, now)  # Berlin
    assert quiet_for({}, now)
    assert quiet_for(None, now)
    assert not quiet_for(None, dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC))
