"""Profiles while a real Redis is down: the Visitor row is the store, an order is counted in
the row, a new visitor still gets a cookie; once Redis is back with the copies it kept from
before, those are joined with the rows, and what the database got meanwhile shows."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest
from django.core.cache import caches

from personalization.models import Conversion, Visitor
from personalization.profiling import storage
from personalization.profiling.revisions import profile_cache_key
from tests.redis_servers import RedisServer, cache_settings, need_redis_server

pytestmark = pytest.mark.django_db

COOLDOWN = 0.3


@pytest.fixture
def redis(settings, tmp_path):
    """Profiles in a Redis of the test's own, which a test may stop and start again."""
    need_redis_server()
    server = RedisServer(tmp_path / "redis").start()
    settings.CACHES = {**settings.CACHES, "profiles": cache_settings(server.port, "pzn-outage")}
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "CACHE_ALIAS": "profiles",
        "CACHE_FAILURE_COOLDOWN": COOLDOWN,
    }
    yield server
    server.stop()


def openings_logged(caplog) -> int:
    return sum(
        1
        for r in caplog.records
        if r.levelno == logging.WARNING and "the cache 'profiles' failed" in r.getMessage()
    )


def returning_visitor(browser, *pages: str) -> str:
    browser.get("/")
    for page in pages:
        assert browser.get(page).status_code == 200
    return browser.get("/profile/").json()["id"]


def cached_copy(visitor_id: str):
    return caches["profiles"].get(profile_cache_key(visitor_id))


def test_an_order_during_an_outage_is_counted_and_in_the_profile_once_redis_is_back(
    redis, browser, make_product, caplog
):
    tent, pan = make_product(slug="tent"), make_product(slug="pan", category="kitchen")
    visitor_id = returning_visitor(browser, f"/products/{tent.slug}/")
    assert Visitor.objects.get(pk=visitor_id).recently_viewed == [tent.pk]
    redis.stop(save=True)  # it keeps the copy it had: no order, no pan

    with caplog.at_level(logging.INFO, logger="personalization"):
        started = time.perf_counter()
        response = browser.post("/order/", {"order_id": "O-1", "total": "25.00"})
        assert browser.get(f"/products/{pan.slug}/").status_code == 200
        during = browser.get("/profile/").json()
        took = time.perf_counter() - started
        assert response.status_code == 201 and response.content  # credited, not to nobody
        conversion = Conversion.objects.get(order_id="O-1")
        assert conversion.visitor_id == visitor_id
        row = Visitor.objects.get(pk=visitor_id)
        assert (row.order_count, row.total_spent) == (1, Decimal("25.00"))
        assert row.last_order_at is not None
        assert during["recently_viewed"] == row.recently_viewed == [pan.pk, tent.pk]
        assert took < 1.0

        redis.start()
        stale = storage.ProfileData.from_dict(cached_copy(visitor_id))
        assert (stale.order_count, stale.recently_viewed) == (0, [tent.pk])
        time.sleep(COOLDOWN + 0.05)
        after = browser.get("/profile/").json()
    assert after["recently_viewed"] == [pan.pk, tent.pk]
    fresh = storage.ProfileData.from_dict(cached_copy(visitor_id))
    assert (fresh.order_count, fresh.total_spent, fresh.recently_viewed) == (
        1,
        25.0,
        [pan.pk, tent.pk],
    )
    assert openings_logged(caplog) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_new_visitor_gets_a_cookie_and_a_row_once_it_comes_back(redis, browser):
    redis.stop()
    first = browser.get("/profile/")
    assert first.status_code == 200
    assert first.cookies["pzn_vid"].value
    assert not Visitor.objects.exists()  # a client that keeps no cookie writes nothing
    second = browser.get("/profile/").json()
    assert second["id"] == first.json()["id"]
    assert Visitor.objects.filter(pk=second["id"]).exists()


def test_a_visitor_forgotten_during_an_outage_is_not_brought_back_by_the_stale_copy(redis, browser):
    visitor_id = returning_visitor(browser, "/")
    assert cached_copy(visitor_id) is not None
    redis.stop(save=True)
    assert browser.delete("/personalization/api/me/").status_code == 204
    assert not Visitor.objects.filter(pk=visitor_id).exists()
    redis.start()
    assert cached_copy(visitor_id) is not None  # Redis kept it
    time.sleep(COOLDOWN + 0.05)
    assert storage.load(visitor_id) is None
    assert cached_copy(visitor_id) is None
    assert not Visitor.objects.filter(pk=visitor_id).exists()
