"""A returning visitor's plain pages read and write nothing remote: the profile is loaded only
when something asks for it, and what visit counting needs is in the signed cookie."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory

from personalization import resilience
from personalization.models import Visitor
from personalization.profiling import storage
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db


def cookie_of(response) -> storage.Cookie | None:
    morsel = response.cookies.get("pzn_vid")
    if morsel is None or not morsel.value:
        return None
    request = RequestFactory().get("/")
    request.COOKIES["pzn_vid"] = morsel.value
    return storage.read_visitor_cookie(request)


class CacheCalls:
    """Every call the app makes to its cache, by method name."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.keys: list[tuple[str, object]] = []
        self._real = resilience.GuardedCache.call

    def __enter__(self) -> CacheCalls:
        spy = self

        def call(this, method, *args, **kwargs):
            spy.calls.append(method)
            spy.keys.append((method, args[0] if args else None))
            return spy._real(this, method, *args, **kwargs)

        self._patch = mock.patch.object(resilience.GuardedCache, "call", call)
        self._patch.start()
        return self

    def __exit__(self, *exc) -> None:
        self._patch.stop()


def settled(browser: Client, clock) -> storage.Cookie:
    """A visitor whose row is written: the first request, then the cookie coming back."""
    first = cookie_of(browser.get("/"))
    assert first is not None and first.unwritten  # the row waits for the cookie
    clock.shift(2)
    second = cookie_of(browser.get("/"))
    assert second is not None and not second.unwritten and second.id == first.id
    assert Visitor.objects.filter(pk=first.id).exists()
    return second


def test_a_plain_page_within_a_visit_touches_no_cache_and_no_database(
    browser, clock, django_assert_num_queries
):
    settled(browser, clock)
    clock.shift(3)
    with CacheCalls() as spy, django_assert_num_queries(0):
        response = browser.get("/")
    assert response.status_code == 200
    assert spy.calls == []
    assert "pzn_vid" not in response.cookies  # nothing to tell the browser yet
    assert "Cookie" not in response.get("Vary", "")


def test_the_cookie_is_set_again_when_older_than_the_touch_interval(browser, clock):
    before = settled(browser, clock)
    clock.shift(storage.TOUCH_SECONDS + 1)
    with CacheCalls() as spy:
        response = browser.get("/")
    assert spy.calls == []
    after = cookie_of(response)
    assert after is not None and after.id == before.id
    assert after.signed_at == pytest.approx(before.signed_at + storage.TOUCH_SECONDS + 1, abs=1)


def test_a_visit_lasts_while_the_visitor_keeps_coming_back(browser, clock):
    """Plain pages every 20 minutes for two hours: one visit, though the profile is never read."""
    cookie = settled(browser, clock)
    for _ in range(6):
        clock.shift(20 * 60)
        assert browser.get("/").status_code == 200
    clock.shift(5)
    body = browser.get("/profile/").json()
    assert body["id"] == cookie.id and body["visit_count"] == 1
    clock.shift(31 * 60)
    assert browser.get("/profile/").json()["visit_count"] == 2
    assert Visitor.objects.get(pk=cookie.id).visit_count == 2


def test_a_page_that_reads_the_profile_loads_it_once(browser, clock):
    settled(browser, clock)
    clock.shift(3)
    with CacheCalls() as spy:
        body = browser.get("/profile/").json()
    assert body["visit_count"] == 1
    assert spy.calls.count("get_many") == 1  # the profile and the epoch, one round trip
    writes = [key for method, key in spy.keys if method in ("set", "add", "set_many")]
    assert not [key for key in writes if body["id"] in str(key)]  # read, not changed


def test_a_product_view_loads_and_saves_the_profile(browser, clock, make_product):
    product = make_product(slug="tent")
    settled(browser, clock)
    clock.shift(3)
    browser.get("/products/tent/")
    clock.shift(3)
    assert browser.get("/profile/").json()["recently_viewed"] == [product.pk]


def test_a_profile_lost_from_the_cache_is_rebuilt_when_read(browser, clock):
    cookie = settled(browser, clock)
    from django.core.cache import caches

    caches["default"].clear()
    clock.shift(3)
    assert browser.get("/").status_code == 200  # nothing read: nothing noticed
    body = browser.get("/profile/").json()
    assert body["id"] == cookie.id and body["visit_count"] == 1


def test_a_cookie_holding_only_the_id_still_works(browser, clock):
    """Cookies set before the cookie carried flags: the signed id alone."""
    cookie = settled(browser, clock)
    from django.http import HttpResponse

    response = HttpResponse()
    storage.write_visitor_cookie(response, cookie.id)
    browser.cookies["pzn_vid"] = response.cookies["pzn_vid"].value
    clock.shift(3)
    body = browser.get("/profile/").json()
    assert body["id"] == cookie.id and body["visit_count"] == 1


def test_a_tampered_flag_is_refused(browser, clock):
    cookie = settled(browser, clock)
    value = browser.cookies["pzn_vid"].value
    browser.cookies["pzn_vid"] = value.replace(cookie.id, cookie.id + ".n", 1)
    clock.shift(3)
    assert browser.get("/profile/").json()["id"] != cookie.id


def test_a_logged_in_visitor_s_plain_pages_read_nothing_once_linked(browser, clock):
    user = get_user_model().objects.create_user("ada", password="pw-long-enough-1")
    settled(browser, clock)
    browser.force_login(user)
    clock.shift(3)
    response = browser.get("/whoami/")  # loads request.user: the profile is linked to it
    cookie = cookie_of(response)
    assert cookie is not None and cookie.user_hash == storage.user_hash(user.pk)
    assert Visitor.objects.get(pk=cookie.id).user_id == user.pk
    clock.shift(3)
    with CacheCalls() as spy:
        assert browser.get("/whoami/").status_code == 200
    assert spy.calls == []
    other = get_user_model().objects.create_user("bob", password="pw-long-enough-2")
    browser.force_login(other)
    clock.shift(3)
    browser.get("/whoami/")  # another account on this browser: linked again, not skipped
    assert Visitor.objects.filter(user_id=other.pk).exists()


def test_a_new_visitor_s_first_answer_marks_the_row_as_unwritten(clock):
    browser = Client(HTTP_USER_AGENT=BROWSER_UA)
    cookie = cookie_of(browser.get("/"))
    assert cookie is not None and cookie.unwritten
    assert not Visitor.objects.filter(pk=cookie.id).exists()


def test_a_profile_that_fails_to_load_in_a_view_gives_defaults(browser, clock, caplog):
    settled(browser, clock)
    clock.shift(3)
    with mock.patch(
        "personalization.profiling.storage.load_stored", side_effect=RuntimeError("db down")
    ):
        response = browser.get("/profile/")
    assert response.status_code == 200
    body = response.json()
    assert body["visit_count"] == 1 and body["recently_viewed"] == []
    assert "pzn_vid" not in response.cookies  # the visitor's cookie stays as it was
    assert any("could not load the visitor profile" in r.getMessage() for r in caplog.records)
