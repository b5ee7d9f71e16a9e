"""A circuit breaker around the cache the app keeps its state in: a cache that fails or hangs
costs one bounded call, then nothing until it has had time to come back.

Every call the app makes to the ``CACHE_ALIAS`` cache goes through :func:`cache`. The first
call that fails (refused, timed out, any error) opens the breaker: for
``CACHE_FAILURE_COOLDOWN`` seconds every call is skipped at once and treated as a miss (reads)
or as not done (writes), and callers fall back to the database or to their defaults. Then one
call is let through as a trial: its success closes the breaker, its failure opens it again.
Each opening is logged once, whatever the traffic.

How long that one failing call may take is the cache client's business: give Redis short
socket timeouts (docs/getting-started.md, *Production cache*). A per-process breaker needs
no shared state, so an outage of the shared cache cannot hide itself; each process learns of
it from its own call.

A library breaker would also do; pybreaker holds its lock for the whole protected call, which
would serialise every cache call of a threaded server, so this small one is kept here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT

from .conf import app_settings, on_settings_change

logger = logging.getLogger("personalization")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CacheUnavailable(Exception):
    """The cache failed just now, or is skipped after a recent failure."""


class CircuitBreaker:
    """Closed, open for a cooldown after a failure, then half-open for one trial call.

    Thread-safe; the lock is held only to change state, never during the call itself."""

    def __init__(self, name: str, cooldown: Any = None) -> None:
        self.name = name
        self._cooldown = cooldown
        self._lock = threading.Lock()
        self.state = CLOSED
        self._retry_at = 0.0
        self._trial_started = 0.0
        self.opened_at: float | None = None
        #: How many times the breaker opened, and how many times it closed again after.
        self.openings = 0
        self.recoveries = 0

    @property
    def cooldown(self) -> float:
        value = self._cooldown
        if value is None:
            value = app_settings.CACHE_FAILURE_COOLDOWN
        return max(0.0, float(value))

    def acquire(self) -> str | None:
        """Whether a call may go ahead now: ``"closed"`` for an ordinary call, ``"trial"``
        for the single call that tests a breaker whose cooldown is over, None when the call
        must be skipped. Report its outcome with :meth:`succeeded` or :meth:`failed`."""
        if self.state == CLOSED:  # the common case costs no lock
            return CLOSED
        now = time.monotonic()
        with self._lock:
            if self.state == CLOSED:
                return CLOSED
            if self.state == OPEN and now >= self._retry_at:
                self.state, self._trial_started = HALF_OPEN, now
                return "trial"
            if self.state == HALF_OPEN and now - self._trial_started > self.cooldown:
                self._trial_started = now  # the last trial never reported: another one
                return "trial"
            return None

    def succeeded(self, permit: str) -> None:
        if permit != "trial":
            return  # a call that began before the breaker opened proves nothing
        with self._lock:
            if self.state == CLOSED:
                return
            down_for = time.monotonic() - (self.opened_at or time.monotonic())
            self.state, self.opened_at = CLOSED, None
            self.recoveries += 1
        logger.info("personalization: %s answers again after %.1f s", self.name, down_for)
        for callback in _recovery_callbacks:
            try:
                callback(self)
            except Exception:
                logger.warning("personalization: after %s came back", self.name, exc_info=True)

    def failed(self, permit: str, error: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            newly_open = self.state == CLOSED
            self.state, self._retry_at = OPEN, now + self.cooldown
            if newly_open:
                self.opened_at = now
                self.openings += 1
        if newly_open:
            logger.warning(
                "personalization: %s failed (%s: %s); it is skipped for %g s at a time, "
                "and the app works without it, until a trial call succeeds",
                self.name,
                type(error).__name__,
                error,
                self.cooldown,
            )

    def abandoned(self, permit: str) -> None:
        """The call ended without an outcome (an interrupt): let the next one try."""
        if permit == "trial":
            with self._lock:
                if self.state == HALF_OPEN:
                    self.state, self._retry_at = OPEN, 0.0

    def call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)`` under the breaker; raises :class:`CacheUnavailable`
        when it is skipped or fails."""
        permit = self.acquire()
        if permit is None:
            raise CacheUnavailable(f"{self.name} is skipped after a failure")
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            self.failed(permit, exc)
            raise CacheUnavailable(f"{self.name} failed: {exc}") from exc
        except BaseException:
            self.abandoned(permit)
            raise
        self.succeeded(permit)
        return result


_recovery_callbacks: list[Any] = []


def on_recovery(callback: Any) -> Any:
    """Call ``callback(breaker)`` whenever a breaker closes again after an outage."""
    _recovery_callbacks.append(callback)
    return callback


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker(name: str, cooldown: Any = None) -> CircuitBreaker:
    """The process's breaker called ``name`` (created on first use)."""
    found = _breakers.get(name)
    if found is None:
        with _breakers_lock:
            found = _breakers.setdefault(name, CircuitBreaker(name, cooldown))
    return found


@on_settings_change
def reset() -> None:
    """Forget every breaker's state (settings changed: maybe another cache)."""
    with _breakers_lock:
        _breakers.clear()


class GuardedCache:
    """A Django cache behind its breaker. :meth:`call` raises :class:`CacheUnavailable`;
    the usual methods never raise: a read gives its default, a write returns False."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.breaker = breaker(f"the cache {alias!r}")

    @property
    def backend(self) -> Any:
        return caches[self.alias]

    @property
    def available(self) -> bool:
        """False while the breaker skips the cache after a failure: code that reaches the
        cache some other way should not try it either."""
        return self.breaker.state == CLOSED

    @property
    def is_per_process(self) -> bool:
        from .versioning import is_per_process

        return is_per_process(self.backend)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.breaker.call(lambda: getattr(caches[self.alias], method)(*args, **kwargs))

    def _quiet(self, default: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.call(method, *args, **kwargs)
        except CacheUnavailable:
            return default

    def get(self, key: str, default: Any = None) -> Any:
        return self._quiet(default, "get", key, default)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        found: dict[str, Any] = self._quiet({}, "get_many", list(keys))
        return found

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> bool:
        return self._quiet(False, "set", key, value, timeout) is not False

    def set_many(self, data: Mapping[str, Any], timeout: Any = DEFAULT_TIMEOUT) -> bool:
        return bool(self._quiet(None, "set_many", dict(data), timeout) == [])

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> bool:
        return bool(self._quiet(False, "add", key, value, timeout))

    def delete(self, key: str) -> bool:
        return bool(self._quiet(False, "delete", key))

    def delete_many(self, keys: Iterable[str]) -> bool:
        return self._quiet(False, "delete_many", list(keys)) is not False


def cache(alias: str | None = None) -> GuardedCache:
    """The ``CACHE_ALIAS`` cache (or ``alias``) behind this process's breaker for it."""
    return GuardedCache(alias or app_settings.CACHE_ALIAS)
