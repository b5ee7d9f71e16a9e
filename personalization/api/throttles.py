"""Rate limits per client address, keyed by a keyed hash: the raw IP never reaches the cache."""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.utils.crypto import salted_hmac
from rest_framework.throttling import SimpleRateThrottle

from ..conf import app_settings
from ..profiling.geo import client_ip

HASH_SALT = "personalization.api.throttle"


def client_key(request: Any) -> str:
    """A stable, non-reversible token for the client's address (SECRET_KEY-keyed HMAC).

    Clients whose address cannot be read share one bucket rather than escaping the limit."""
    address = client_ip(request.META, int(app_settings.TRUSTED_PROXY_COUNT)) or "unknown"
    return salted_hmac(HASH_SALT, address, algorithm="sha256").hexdigest()[:32]


class ClientAddressThrottle(SimpleRateThrottle):
    """A DRF throttle whose rate is a PERSONALIZATION setting, read live."""

    rate_setting = ""

    @property
    def cache(self) -> Any:  # type: ignore[override]
        return caches[app_settings.CACHE_ALIAS]

    def get_rate(self) -> str | None:
        return app_settings.get(self.rate_setting)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return f"pzn:v1:throttle:{self.scope}:{client_key(request)}"


class SignupThrottle(ClientAddressThrottle):
    scope = "signup"
    rate_setting = "SIGNUP_THROTTLE_RATE"


class EventsThrottle(ClientAddressThrottle):
    scope = "events"
    rate_setting = "EVENTS_THROTTLE_RATE"
