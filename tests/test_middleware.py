"""VisitorMiddleware end to end: visits, storage, cookies, opt-out, bots, failures, async."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import caches
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory

from personalization.models import Visitor
from personalization.profiling.storage import COOKIE_SALT, profile_cache_key, read_visitor_id
from tests.conftest import BROWSER_UA, GOOGLEBOT_UA

pytestmark = pytest.mark.django_db


def profile(client: Client, path: str = "/profile/", **extra) -> dict:
    response = client.get(path, **extra)
    assert response.status_code == 200
    return response.json()


def signed_cookie(value: str) -> str:
    response = HttpResponse()
    response.set_signed_cookie("pzn_vid", value, salt=COOKIE_SALT)
    return response.cookies["pzn_vid"].value


def read_visitor_id_of(response) -> str | None:
    request = RequestFactory().get("/")
    request.COOKIES["pzn_vid"] = response.cookies["pzn_vid"].value
    return read_visitor_id(request)


def cookie_of(response) -> str | None:
    morsel = response.cookies.get("pzn_vid")
    return morsel.value if morsel is not None and morsel.value else None


class TestVisits:
    def test_first_request_is_a_first_visit_and_sets_a_signed_cookie(self, browser):
        response = browser.get("/profile/")
        body = response.json()
        assert body["is_first_visit"] is True
        assert body["visit_count"] == 1
        morsel = response.cookies["pzn_vid"]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert int(morsel["max-age"]) == 365 * 86400
        # The cookie value is the id, signed.
        request = RequestFactory().get("/")
        request.COOKIES["pzn_vid"] = morsel.value
        assert read_visitor_id(request) == body["id"]

    def test_the_id_is_stable_within_and_across_visits(self, browser, clock):
        first = profile(browser)["id"]
        clock.shift(60)
        assert profile(browser)["id"] == first
        clock.shift(3 * 3600)
        assert profile(browser)["id"] == first

    def test_a_new_visit_starts_after_the_timeout(self, browser, clock):
        profile(browser)
        clock.shift(29 * 60)
        same = profile(browser)
        assert (same["visit_count"], same["is_first_visit"]) == (1, True)
        clock.shift(29 * 60)  # 58 minutes after landing but only 29 idle: still the same visit
        same = profile(browser)
        assert same["visit_count"] == 1
        clock.shift(30 * 60 + 1)
        later = profile(browser)
        assert (later["visit_count"], later["is_first_visit"]) == (2, False)

    def test_the_timeout_is_a_setting(self, browser, clock, settings):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VISIT_TIMEOUT_MINUTES": 5}
        profile(browser)
        clock.shift(5 * 60 + 1)
        assert profile(browser)["visit_count"] == 2

    def test_the_row_waits_for_the_cookie_then_is_written_once_per_visit(
        self, browser, clock, django_assert_num_queries
    ):
        with django_assert_num_queries(0):
            browser.get("/")
        assert not Visitor.objects.exists()
        clock.shift(20)
        with django_assert_num_queries(1):  # the cookie came back: INSERT
            browser.get("/")
        row = Visitor.objects.get()
        assert row.visit_count == 1
        for _ in range(5):
            clock.shift(20)
            with django_assert_num_queries(0):
                browser.get("/")
        clock.shift(31 * 60)
        with django_assert_num_queries(1):  # new visit: one UPDATE
            browser.get("/")
        row.refresh_from_db()
        assert row.visit_count == 2
        assert row.last_seen.timestamp() - row.first_seen.timestamp() == pytest.approx(
            20 * 6 + 31 * 60
        )

    def test_a_returning_visitor_costs_no_query_on_plain_pages(
        self, browser, clock, django_assert_num_queries
    ):
        browser.get("/")
        clock.shift(20)
        browser.get("/")
        clock.shift(1)
        with django_assert_num_queries(0):
            response = browser.get("/")
        assert response.status_code == 200

    def test_a_lost_cache_entry_is_rebuilt_from_the_row(self, browser, clock):
        browser.get("/")
        clock.shift(20)
        first = profile(browser)
        caches["default"].clear()
        clock.shift(20)
        again = profile(browser)
        assert again["id"] == first["id"]
        assert again["visit_count"] == 1


class TestReferrerOfTheVisit:
    def test_landing_source_is_kept_during_internal_navigation(self, browser, clock):
        landing = profile(browser, HTTP_REFERER="https://www.google.co.uk/search?q=tents")
        assert (landing["source"], landing["host"]) == ("search", "www.google.co.uk")
        clock.shift(30)
        inside = profile(browser, HTTP_REFERER="http://testserver/profile/")
        assert inside["source"] == "search"
        clock.shift(30)
        inside = profile(browser, path="/profile/?utm_campaign=x&utm_source=y")
        assert inside["source"] == "search"

    def test_each_visit_gets_its_own_source_and_the_row_keeps_the_first(self, browser, clock):
        profile(browser, path="/profile/?utm_source=news&utm_campaign=winter-sale")
        clock.shift(20)
        profile(browser)
        clock.shift(2 * 3600)
        second = profile(browser, HTTP_REFERER="https://l.facebook.com/l.php?u=x")
        assert second["source"] == "social"
        assert second["campaign"] is None
        row = Visitor.objects.get()
        assert (row.first_source, row.first_campaign) == ("campaign", "winter-sale")
        assert (row.latest_source, row.latest_referrer_host) == ("social", "l.facebook.com")


class TestCookies:
    def test_a_tampered_cookie_gives_a_clean_profile(self, browser):
        original = profile(browser)["id"]
        value = browser.cookies["pzn_vid"].value
        browser.cookies["pzn_vid"] = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
        fresh = profile(browser)
        assert fresh["id"] != original
        assert fresh["is_first_visit"] is True

    def test_a_cookie_signed_with_another_key_is_ignored(self, browser, settings):
        secret = settings.SECRET_KEY
        settings.SECRET_KEY = "another-shop-secret"
        foreign = signed_cookie("A" * 22)
        settings.SECRET_KEY = secret
        browser.cookies["pzn_vid"] = foreign
        body = profile(browser)
        assert body["id"] != "A" * 22

    def test_a_100_kb_cookie_is_ignored(self, browser):
        browser.cookies["pzn_vid"] = "x" * 100_000
        response = browser.get("/profile/")
        assert response.status_code == 200
        assert response.json()["visit_count"] == 1
        assert len(cookie_of(response) or "") < 100

    def test_a_validly_signed_but_malformed_id_is_ignored(self, browser):
        browser.cookies["pzn_vid"] = signed_cookie("../../etc/passwd")
        body = profile(browser)
        assert body["id"] != "../../etc/passwd"

    def test_a_known_id_whose_data_was_purged_starts_over(self, browser, clock):
        browser.get("/")
        clock.shift(20)
        visitor_id = profile(browser)["id"]
        caches["default"].clear()
        Visitor.objects.all().delete()
        clock.shift(20)
        again = profile(browser)
        assert again["id"] == visitor_id
        assert again["visit_count"] == 1
        assert Visitor.objects.filter(pk=visitor_id).exists()

    def test_responses_that_read_the_profile_vary_on_cookie(self, browser):
        assert "Cookie" in browser.get("/profile/")["Vary"]
        settled = browser.get("/")  # the visitor's row is written, the cookie says so
        assert "private" in settled["Cache-Control"] and "Cookie" in settled["Vary"]
        assert "Cookie" not in browser.get("/").get("Vary", "")  # nothing read, nothing set


class TestOptOut:
    @pytest.mark.parametrize("header", ["HTTP_DNT", "HTTP_SEC_GPC"])
    def test_opted_out_visitors_get_an_anonymous_profile_and_nothing_is_stored(
        self, browser, header, django_assert_num_queries
    ):
        with django_assert_num_queries(0):
            response = browser.get("/profile/", **{header: "1"})
        assert response.status_code == 200
        assert response.json()["visit_count"] == 1
        assert "pzn_vid" not in response.cookies
        with django_assert_num_queries(0):
            browser.get("/profile/", **{header: "1"})
        assert not Visitor.objects.exists()
        assert not caches["default"].get(profile_cache_key(response.json()["id"]))

    def test_opting_out_deletes_an_existing_cookie(self, browser):
        browser.get("/")
        assert browser.cookies["pzn_vid"].value
        response = browser.get("/", HTTP_SEC_GPC="1")
        assert response.cookies["pzn_vid"].value == ""

    def test_dnt_0_is_not_an_opt_out(self, browser):
        response = browser.get("/", HTTP_DNT="0")
        assert cookie_of(response)

    def test_the_shop_may_choose_not_to_honour_dnt(self, browser, settings):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RESPECT_DO_NOT_TRACK": False}
        response = browser.get("/", HTTP_DNT="1")
        assert cookie_of(response)


class TestBots:
    def test_crawlers_are_flagged_and_never_stored(self, django_assert_num_queries):
        bot = Client(HTTP_USER_AGENT=GOOGLEBOT_UA)
        for _ in range(3):
            with django_assert_num_queries(0):
                response = bot.get("/profile/")
            assert response.json()["is_bot"] is True
            assert response.json()["in_control_group"] is False
            assert "pzn_vid" not in response.cookies
        assert not Visitor.objects.exists()

    def test_browsers_are_not_bots(self, browser):
        assert profile(browser)["is_bot"] is False


class TestControlGroup:
    def test_assignment_is_deterministic_and_near_the_configured_share(self, settings):
        from personalization.profiling.visitor import control_group_bucket, new_visitor_id

        ids = [new_visitor_id() for _ in range(4000)]
        held_out = [i for i in ids if control_group_bucket(i) < 10]
        assert 0.08 < len(held_out) / len(ids) < 0.12
        assert [control_group_bucket(i) for i in ids[:50]] == [
            control_group_bucket(i) for i in ids[:50]
        ]

    def test_the_percent_setting_moves_visitors_in_and_out(self, browser, settings):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 100}
        assert profile(browser)["in_control_group"] is True
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 0}
        assert profile(browser)["in_control_group"] is False


class TestDegradation:
    def test_an_unreachable_cache_leaves_the_page_working_and_the_profile_in_the_row(
        self, browser, unreachable_cache, clock, caplog
    ):
        with caplog.at_level(logging.WARNING, logger="personalization"):
            response = browser.get("/profile/")
            assert response.status_code == 200
            assert response.json()["visit_count"] == 1
            visitor_id = read_visitor_id_of(response)  # a new visitor still gets a cookie
            assert visitor_id == response.json()["id"]
            clock.shift(20)
            # The cookie came back: with no cache, the row is where the profile lives.
            assert profile(browser)["id"] == visitor_id
            assert Visitor.objects.get(pk=visitor_id).visit_count == 1
            clock.shift(31 * 60)
            assert profile(browser)["visit_count"] == 2
            assert Visitor.objects.get(pk=visitor_id).visit_count == 2
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, warnings  # the outage, once; no error
        assert "the cache 'broken' failed" in warnings[0]

    def test_a_returning_visitor_without_a_row_keeps_the_id_of_its_cookie(
        self, browser, unreachable_cache
    ):
        browser.cookies["pzn_vid"] = signed_cookie("B" * 22)
        response = browser.get("/profile/")
        assert response.status_code == 200
        assert response.json()["id"] == "B" * 22
        assert Visitor.objects.filter(pk="B" * 22).exists()

    def test_garbage_headers_never_raise(self, browser, settings):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRUSTED_PROXY_COUNT": 2}
        response = browser.get(
            "/profile/",
            HTTP_REFERER="http://\xe9\xff\xfe/" + "a" * 100_000,
            HTTP_X_FORWARDED_FOR="not-an-ip, ::::, 999.1.1.1," + "x" * 100_000,
            HTTP_USER_AGENT="\x00\xff" * 10_000,
            HTTP_DNT="\xff" * 1000,
        )
        assert response.status_code == 200
        assert response.json()["country"] is None


@pytest.mark.django_db(transaction=True)
class TestAsync:
    """Async views run the middleware's work in a worker thread with its own connection,
    outside the test's transaction, so these tests flush the database instead."""

    @pytest.fixture(autouse=True)
    async def _close_worker_thread_connections(self):
        yield
        from asgiref.sync import sync_to_async
        from django.db import connections

        # The connection opened in the worker thread would keep the test database busy.
        await sync_to_async(connections.close_all)()

    async def test_the_async_path_profiles_and_counts_visits(self, clock):
        client = AsyncClient(HTTP_USER_AGENT=BROWSER_UA)
        first = await client.get("/async-profile/")
        assert first.status_code == 200
        body = first.json()
        assert body["visit_count"] == 1
        client.cookies["pzn_vid"] = first.cookies["pzn_vid"].value
        clock.shift(31 * 60)
        second = (await client.get("/async-profile/")).json()
        assert second == {"id": body["id"], "visit_count": 2}

    async def test_async_and_sync_stacks_share_one_profile(self, clock):
        client = AsyncClient(HTTP_USER_AGENT=BROWSER_UA)
        first = await client.get("/async-profile/")
        sync = Client(HTTP_USER_AGENT=BROWSER_UA)
        sync.cookies["pzn_vid"] = first.cookies["pzn_vid"].value
        clock.shift(10)
        from asgiref.sync import sync_to_async

        body = await sync_to_async(lambda: sync.get("/profile/").json())()
        assert body["id"] == first.json()["id"]


class TestGeoThroughTheMiddleware:
    @pytest.fixture
    def geoip(self, settings, tmp_path):
        from personalization.testutils import write_geoip_database

        path = write_geoip_database(
            tmp_path / "city.mmdb",
            [
                (
                    "81.2.69.0/24",
                    {
                        "country": "GB",
                        "country_name": "United Kingdom",
                        "city": "London",
                        "latitude": 51.5,
                        "longitude": -0.09,
                    },
                ),
                ("2a02:d3c0::/32", {"country": "DE", "country_name": "Germany", "city": "Berlin"}),
            ],
        )
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GEOIP_PATH": str(path)}
        return settings

    def test_remote_addr_is_located_and_only_the_country_is_kept(self, browser, geoip, clock):
        body = profile(browser, REMOTE_ADDR="81.2.69.142")
        assert (body["country"], body["city"]) == ("GB", "London")
        clock.shift(20)
        profile(browser, REMOTE_ADDR="81.2.69.142")
        row = Visitor.objects.get()
        assert (row.country_code, row.city) == ("GB", "London")
        stored = str(caches["default"].get(profile_cache_key(row.pk)))
        assert "81.2.69" not in stored
        assert "81.2.69" not in str(Visitor.objects.values().get())

    def test_ipv6_works(self, browser, geoip):
        assert profile(browser, REMOTE_ADDR="2a02:d3c0::1")["country"] == "DE"

    def test_forwarded_for_is_trusted_only_as_configured(self, browser, geoip):
        spoofed = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "81.2.69.142"}
        assert profile(browser, **spoofed)["country"] is None  # 0 trusted proxies
        geoip.PERSONALIZATION = {**geoip.PERSONALIZATION, "TRUSTED_PROXY_COUNT": 1}
        assert profile(browser, **spoofed)["country"] == "GB"
        # The client prepends a fake hop; only the entry the proxy added counts.
        forged = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "2a02:d3c0::9, 81.2.69.142"}
        assert profile(browser, **forged)["country"] == "GB"

    def test_private_addresses_have_no_location(self, browser, geoip):
        assert profile(browser, REMOTE_ADDR="192.168.1.20")["country"] is None

    def test_a_corrupt_database_leaves_pages_working(self, browser, settings, tmp_path, caplog):
        path = tmp_path / "broken.mmdb"
        path.write_bytes(b"\x00garbage" * 1000)
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GEOIP_PATH": str(path)}
        with caplog.at_level(logging.WARNING):
            body = profile(browser, REMOTE_ADDR="81.2.69.142")
            profile(browser, REMOTE_ADDR="81.2.69.142")
        assert body["country"] is None
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
