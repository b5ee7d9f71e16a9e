"""Rate limits per client address, keyed by a keyed hash: the raw IP never reaches the cache.

While the cache is unavailable each process counts in its own memory instead: the limit
still holds per process, and no request fails or waits because of the cache."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.utils.crypto import salted_hmac
from rest_framework.throttling import SimpleRateThrottle

from ..conf import app_settings, on_settings_change
from ..profiling.geo import client_ip
from ..resilience import CacheUnavailable, cache

HASH_SALT = "personalization.api.throttle"


def client_key(request: Any) -> str:
    """A stable, non-reversible token for the client's address (SECRET_KEY-keyed HMAC).

    Clients whose address cannot be read share one bucket rather than escaping the limit."""
    address = client_ip(request.META, int(app_settings.TRUSTED_PROXY_COUNT)) or "unknown"
    return salted_hmac(HASH_SALT, address, algorithm="sha256").hexdigest()[:32]


# Where throttles count while the shared cache is unavailable.
_local = LocMemCache("personalization-throttles", {"OPTIONS": {"MAX_ENTRIES": 10_000}})
on_settings_change(_local.clear)


class ThrottleCache:
    """The shared cache behind its breaker, this process's memory while it is unavailable."""

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return cache().call("get", key, default)
        except CacheUnavailable:
            return _local.get(key, default)

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> None:
        try:
            cache().call("set", key, value, timeout)
        except CacheUnavailable:
            _local.set(key, value, timeout)


class ClientAddressThrottle(SimpleRateThrottle):
    """A DRF throttle whose rate is a PERSONALIZATION setting, read live."""

    rate_setting = ""
    cache = ThrottleCache()  # type: ignore[assignment]

    def get_rate(self) -> str | None:
        rate: str | None = app_settings.get(self.rate_setting)
        return rate

    def get_cache_key(self, request: Any, view: Any) -> str:
        return f"pzn:v1:throttle:{self.scope}:{client_key(request)}"


class SignupThrottle(ClientAddressThrottle):
    scope = "signup"
    rate_setting = "SIGNUP_THROTTLE_RATE"


class EventsThrottle(ClientAddressThrottle):
    scope = "events"
    rate_setting = "EVENTS_THROTTLE_RATE"
