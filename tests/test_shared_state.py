"""Every process serves what another one changed within SHARED_STATE_SECONDS, whatever the
cache backend: version tokens kept in the cache and in the database (SharedVersion), and
real separate processes, each with Django's default local-memory cache, sharing one
database."""

from __future__ import annotations

import shutil
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from personalization.models import Placement, SharedState
from personalization.versioning import UNSET, SharedVersion
from tests.processes import ShopProcess

KEY = "pzn:v1:test-version"


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.fixture
def every_read(settings):
    """Versions compared on every read, the database read at most once a second, with a
    cache of this process's own (also when the suite runs on Redis)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "shared-state-tests",
        }
    }
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SHARED_STATE_SECONDS": 1}
    return SharedVersion(KEY, interval=0)


@pytest.mark.django_db
class TestSharedVersion:
    def test_a_bump_goes_to_the_cache_and_the_database(self, every_read):
        from django.core.cache import caches

        assert every_read.get() == UNSET  # nobody bumped it: every process agrees without a write
        every_read.bump()
        stored = SharedState.objects.get(key=KEY).value
        assert stored == caches["default"].get(KEY) != UNSET
        assert every_read.get() == stored

    def test_with_a_local_memory_cache_the_database_is_read_at_most_every_interval(
        self, every_read
    ):
        with CaptureQueriesContext(connection) as first:
            before = every_read.get()
            started = time.monotonic()
        assert len(statements(first)) == 1
        SharedVersion(KEY).bump()  # another process: its own memory, the same database
        with CaptureQueriesContext(connection) as warm:
            kept = every_read.get()
        if time.monotonic() - started < 0.8:
            assert statements(warm) == [] and kept == before  # its copy, within the interval
        time.sleep(1.05)
        assert every_read.get() == SharedState.objects.get(key=KEY).value != before

    def test_a_shared_cache_is_read_and_the_database_only_when_the_cache_lost_the_token(
        self, every_read, settings, tmp_path
    ):
        settings.CACHES = {
            **settings.CACHES,
            "files": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(tmp_path / "cache"),
            },
        }
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CACHE_ALIAS": "files"}
        other = SharedVersion(KEY, interval=0)
        other.bump()
        with CaptureQueriesContext(connection) as captured:
            seen = every_read.get()
            other.bump()
            changed = every_read.get()
        assert len(statements(captured)) == 1  # other's bump stores it; reading costs no SQL
        assert seen != changed == SharedState.objects.get(key=KEY).value
        from django.core.cache import caches

        caches["files"].clear()  # evicted: read the database's token again, not a new one
        assert every_read.get() == changed

    def test_a_cache_that_fails_is_replaced_by_the_database(self, every_read, unreachable_cache):
        SharedVersion(KEY).bump()  # the cache refuses it, the database takes it
        stored = SharedState.objects.get(key=KEY).value
        assert every_read.get() == stored
        with CaptureQueriesContext(connection) as captured:
            every_read.get()  # the cache is not asked again for a while, nor the database
        assert statements(captured) == []

    def test_a_missing_table_keeps_the_last_token_and_the_transaction_usable(self, every_read):
        every_read.bump()
        known = every_read.get()
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE personalization_sharedstate RENAME TO personalization_elsewhere"
            )
        time.sleep(1.05)
        assert every_read.get() == known
        with pytest.raises(Exception, match="sharedstate"):
            SharedVersion(KEY).get()  # nothing known yet, nowhere to read it from
        assert Placement.objects.count() == 0  # the test's transaction still works

    def test_definitions_are_served_while_no_version_can_be_read(
        self, every_read, unreachable_cache
    ):
        from personalization.targeting import definitions

        Placement.objects.create(slug="home-hero", name="Home hero", default_title="Welcome")
        known = definitions.current()
        assert known.placements["home-hero"].default.title == "Welcome"
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE personalization_sharedstate RENAME TO personalization_elsewhere"
            )
        definitions.VERSION.forget()  # neither the cache nor the database can say now
        assert definitions.current() is known

    def test_a_token_bumped_while_redis_was_down_replaces_the_one_it_kept(self, settings, tmp_path):
        from django.core.cache import caches

        from tests.redis_servers import RedisServer, cache_settings, need_redis_server

        need_redis_server()
        redis = RedisServer(tmp_path / "redis").start()
        try:
            settings.CACHES = {**settings.CACHES, "redis": cache_settings(redis.port, "pzn-sv")}
            settings.PERSONALIZATION = {
                **settings.PERSONALIZATION,
                "CACHE_ALIAS": "redis",
                "CACHE_FAILURE_COOLDOWN": 0.2,
            }
            version = SharedVersion(KEY, interval=0)
            version.bump()
            before = version.get()
            redis.stop(save=True)
            version.bump()  # only the database takes it
            during = SharedState.objects.get(key=KEY).value
            assert during != before
            redis.start()  # with the token from before
            assert caches["redis"].get(KEY) == before
            time.sleep(0.25)
            version.get()  # the breaker's trial: the cache is back
            assert caches["redis"].get(KEY) == during
            assert version.get() == during
        finally:
            redis.stop()

    def test_a_bump_in_a_transaction_is_published_again_when_it_commits(
        self, every_read, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            every_read.bump()
            during = every_read.get()
            every_read.bump()  # one save after another in one admin form
        assert len(callbacks) == 1
        assert every_read.get() not in {during, UNSET}


# Separate processes -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    database = folder / "template.sqlite3"
    with ShopProcess(database, log=folder / "migrate.log") as process:
        process.call("migrate", timeout=300)
    return database


@pytest.fixture
def shop_database(migrated_database, tmp_path):
    database = tmp_path / "shop.sqlite3"
    shutil.copyfile(migrated_database, database)
    return database


def until(condition, seconds: float):
    """Poll ``condition()`` until it is truthy, for at most ``seconds``; its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


INTERVAL = 2.0


def test_what_one_process_changes_another_serves_within_the_interval(shop_database, tmp_path):
    log = tmp_path / "processes.log"
    with (
        ShopProcess(shop_database, shared_state_seconds=INTERVAL, log=log) as web,
        ShopProcess(shop_database, shared_state_seconds=INTERVAL, log=log) as admin,
    ):
        admin.call("make_products", names=["a", "b", "c", "d"])

        def banner_page() -> str:
            page = web.call("get", path="/banner-page/")
            assert page["status"] == 200
            return page["body"]

        def recommended() -> list[tuple[str, str]]:
            answer = web.call(
                "get", path="/personalization/api/recommendations/",
                params={"placement": "home", "limit": 4},
            )  # fmt: skip
            return [(item["name"], item["price"]) for item in answer["body"]["items"]]

        # The web process renders placements nobody created: nothing shows, they are created.
        assert "Winter sale" not in banner_page()
        assert admin.call("placements") == ["home-hero", "sidebar"]
        # A new shop's lists are full: the newest products first.
        assert [name for name, _ in recommended()] == ["D", "C", "B", "A"]

        # Staff edit the placement in the admin process ...
        web.call("forget")
        started = time.monotonic()
        banner_page()  # the web process reads the shared state now, after `started`
        admin.call("edit_placement", slug="home-hero", default_title="Winter sale")
        stale = "Winter sale" not in banner_page()
        if time.monotonic() - started < INTERVAL * 0.8:
            assert stale  # within the interval the web process keeps its copy ...
        assert until(lambda: "Winter sale" in banner_page(), INTERVAL * 3)  # ... then reloads

        # Lists fitted in another process (a worker) ...
        admin.call("save_lists", lists={"bestsellers": ["a", "b"]})
        assert until(lambda: [n for n, _ in recommended()][:2] == ["A", "B"], INTERVAL * 3)
        # ... and a price changed there.
        admin.call("set_price", slug="a", price="12.50")
        assert until(lambda: ("A", "12.50") in recommended(), INTERVAL * 3)


def test_a_new_shops_first_product_views_lead_to_a_fit_that_is_then_served(shop_database, tmp_path):
    with ShopProcess(shop_database, log=tmp_path / "shop.log") as shop:
        pks = shop.call("make_products", names=["a", "b", "c", "d", "e", "f"])
        # Visitors view a, then b; nobody runs a job.
        for n in range(4):
            shop.call("get", path="/", client=f"v{n}")
            for name in ("a", "b"):
                assert shop.call("get", path=f"/products/{name}/", client=f"v{n}")["status"] == 200
        assert shop.call("job", name="recommendations")["status"] == ""
        # The next recommendations served ask for the first fit; it runs (JOBS_FALLBACK
        # "inline") and its lists are served: on a's page, b leads, not the newest product.
        answer = shop.call(
            "get", path="/personalization/api/recommendations/", client="v9",
            params={"placement": "product-related", "product": pks["a"], "limit": 3},
        )  # fmt: skip
        assert answer["status"] == 200
        run = shop.call("job", name="recommendations")
        assert run["status"] == "ok" and run["result"]["interactions"] == 8
        names = [item["name"] for item in answer["body"]["items"]]
        assert names[0] == "B" and "A" not in names and len(names) == 3
