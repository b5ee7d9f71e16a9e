"""The cache's circuit breaker, against real Redis servers and a real listener that never
answers: a cache that fails or hangs costs one bounded call, then is skipped until a single
trial call finds it back; each outage is logged once; the APIs' throttles and the shared
versions carry on without it."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from django.test import Client

from personalization import resilience
from personalization.models import SharedState
from personalization.versioning import SharedVersion
from tests.conftest import BROWSER_UA
from tests.redis_servers import HungListener, RedisServer, cache_settings, free_port

COOLDOWN = 0.5


@pytest.fixture
def port(settings):
    """A port for the profile cache, with a short cooldown; what listens there is the
    test's business (nothing yet: connections are refused)."""
    from tests.redis_servers import need_redis_server

    need_redis_server()
    number = free_port()
    settings.CACHES = {**settings.CACHES, "outage": cache_settings(number, "pzn-resilience")}
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "CACHE_ALIAS": "outage",
        "CACHE_FAILURE_COOLDOWN": COOLDOWN,
    }
    return number


@pytest.fixture
def hung(port):
    listener = HungListener(port)
    yield listener
    listener.close()


def openings_logged(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "is skipped for" in r.getMessage()
    ]


def timed(func, *args):
    started = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - started


class TestARefusedCache:
    def test_the_first_failure_opens_the_breaker_and_is_logged_once(self, port, caplog):
        guarded = resilience.cache()
        with caplog.at_level(logging.INFO, logger="personalization"):
            with pytest.raises(resilience.CacheUnavailable):
                guarded.call("get", "key")
            for _ in range(100):
                assert guarded.get("key", "default") == "default"
                assert guarded.set("key", 1) is False
                assert guarded.add("key", 1) is False
                assert guarded.get_many(["key"]) == {}
        assert not guarded.available
        [message] = openings_logged(caplog)
        assert "the cache 'outage' failed (ConnectionError" in message


class TestAHungCache:
    def test_one_call_waits_for_the_timeout_then_none_touches_the_socket(self, hung, caplog):
        guarded = resilience.cache()
        with caplog.at_level(logging.WARNING, logger="personalization"):
            first, waited = timed(guarded.get, "key", "default")
            assert first == "default"
            assert 0.4 < waited < 1.5  # the client's socket timeout (0.5 s), once
            connections = len(hung.accepted)
            skipped, took = timed(lambda: [guarded.get("key") for _ in range(200)])
        assert skipped == [None] * 200
        assert took < 0.05  # 200 calls, none of them waiting
        assert len(hung.accepted) == connections == 1
        [message] = openings_logged(caplog)
        assert "TimeoutError" in message

    def test_concurrent_callers_each_wait_at_most_one_timeout(self, hung, caplog):
        guarded = resilience.cache()
        waits: list[float] = []

        def call() -> None:
            waits.append(timed(guarded.get, "key")[1])

        with caplog.at_level(logging.WARNING, logger="personalization"):
            threads = [threading.Thread(target=call) for _ in range(12)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            later = [timed(guarded.get, "key")[1] for _ in range(12)]
        assert max(waits) < 1.5 and wall < 2.0  # not 12 timeouts in a row
        assert max(later) < 0.01
        assert len(openings_logged(caplog)) == 1

    def test_after_the_cooldown_a_single_trial_waits_and_the_others_do_not(self, hung, caplog):
        guarded = resilience.cache()
        with caplog.at_level(logging.WARNING, logger="personalization"):
            guarded.get("key")  # opens it
            time.sleep(COOLDOWN + 0.05)
            waits: list[float] = []
            threads = [
                threading.Thread(target=lambda: waits.append(timed(guarded.get, "key")[1]))
                for _ in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        waits.sort()
        assert waits[-1] > 0.4  # the trial met the hung socket
        assert waits[-2] < 0.05  # everyone else was skipped meanwhile
        assert not guarded.available  # the trial failed: open again
        assert len(openings_logged(caplog)) == 1  # the same outage


class TestRecovery:
    def test_a_successful_trial_closes_it_and_the_next_outage_is_logged_again(
        self, port, tmp_path, caplog
    ):
        guarded = resilience.cache()
        server = RedisServer(tmp_path / "redis", port)
        try:
            with caplog.at_level(logging.INFO, logger="personalization"):
                assert guarded.set("key", "before") is False  # refused: opens it
                server.start()
                assert guarded.set("key", "early") is False  # still cooling down: skipped
                time.sleep(COOLDOWN + 0.05)
                assert guarded.set("key", "after") is True  # the trial
                assert guarded.available
                assert guarded.get("key") == "after"
                server.stop()
                assert guarded.get("key", "gone") == "gone"
            assert len(openings_logged(caplog)) == 2
            assert any("answers again after" in r.getMessage() for r in caplog.records)
        finally:
            server.stop()


@pytest.mark.django_db
class TestWithoutTheCache:
    def test_throttles_count_in_this_process_meanwhile(self, port, settings):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EVENTS_THROTTLE_RATE": "3/minute"}
        client = Client(HTTP_USER_AGENT=BROWSER_UA)
        body = json.dumps({"type": "add_to_cart", "product": "tent"})
        statuses = [
            client.post(
                "/personalization/api/events/", data=body, content_type="application/json"
            ).status_code
            for _ in range(5)
        ]
        assert statuses == [204, 204, 204, 429, 429]

    def test_shared_versions_come_from_the_database_without_cache_calls(self, hung):
        version = SharedVersion("pzn:v1:test-resilience", interval=0)
        version.bump()  # the cache times out once; the database takes the token
        stored = SharedState.objects.get(key="pzn:v1:test-resilience").value
        accepted = len(hung.accepted)
        value, took = timed(version.get)
        assert value == stored
        assert took < 0.05
        assert len(hung.accepted) == accepted
