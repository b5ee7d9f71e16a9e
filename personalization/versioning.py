"""A version token shared through Django's cache, for state every process keeps a copy of.

Staff edit targeting definitions rarely and the precompute tasks replace recommendation lists
a few times an hour, while every request reads them; so each process keeps its own copy and
compares a version token in the cache with the one its copy was made from, at most once per
``interval`` seconds. Whoever changes the state bumps the token, and every process notices
within the interval.
"""

from __future__ import annotations

import secrets
import time

from django.core.cache import caches

from .conf import app_settings


class SharedVersion:
    """The current version token under ``key`` in the cache of ``CACHE_ALIAS``."""

    def __init__(self, key: str, interval: float = 1.0) -> None:
        self.key = key
        self.interval = interval
        self._value: str | None = None
        self._checked = 0.0

    def get(self) -> str:
        """The token; read from the cache at most once per interval (and set there when
        missing). Raises when the cache does."""
        now = time.monotonic()
        if self._value is not None and now - self._checked < self.interval:
            return self._value
        cache = caches[app_settings.CACHE_ALIAS]
        value = cache.get(self.key)
        if value is None:
            cache.add(self.key, secrets.token_hex(8), None)
            value = cache.get(self.key) or secrets.token_hex(8)
        self._value, self._checked = value, now
        return value

    def bump(self) -> None:
        """A new token: every process drops its copy within the interval, this one at once."""
        caches[app_settings.CACHE_ALIAS].set(self.key, secrets.token_hex(8), None)
        self.forget()

    def forget(self) -> None:
        """Read the token again on the next :meth:`get`."""
        self._value = None
        self._checked = 0.0
