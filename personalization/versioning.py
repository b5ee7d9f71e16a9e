"""A version token shared by every process, for state each of them keeps a copy of.

Staff edit targeting definitions rarely and the precompute jobs replace recommendation lists
a few times an hour, while every request reads them; so each process keeps its own copy and
compares a version token with the one its copy was made from. Whoever changes the state
bumps the token, and every process notices:

* through Django's cache (``CACHE_ALIAS``), read at most once per ``interval`` seconds, when
  the cache is one that processes share (Redis, Memcached, a database or file cache);
* through the database (:class:`~personalization.models.SharedState`), read at most once per
  ``SHARED_STATE_SECONDS``, when the cache cannot tell other processes anything: a
  local-memory or dummy cache (Django's default), or a cache that fails.

The token is written to both, so a shop may switch cache backends at any time. The cache is
reached through its circuit breaker (:mod:`personalization.resilience`): while it is being
skipped after a failure, the token comes from the database at once, without a cache call.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .conf import app_settings
from .resilience import CacheUnavailable, GuardedCache, cache, on_recovery

logger = logging.getLogger("personalization")

# The token of a key nobody has bumped yet: every process agrees on it without a write.
UNSET = "unset"


def is_per_process(cache: Any) -> bool:
    """Whether ``cache`` lives in this process only, so other processes never see its
    entries."""
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache

    return isinstance(cache, LocMemCache | DummyCache)


def shared_state_seconds() -> float:
    """How long a process may go without reading the database's tokens (see module doc)."""
    return max(0.0, float(app_settings.SHARED_STATE_SECONDS))


def _savepoint() -> Any:
    """A savepoint when inside a transaction, so a failing statement (a table not migrated
    yet) leaves the caller's transaction usable; nothing in autocommit mode."""
    connection = transaction.get_connection()
    return transaction.atomic() if connection.in_atomic_block else _Nothing()


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class SharedVersion:
    """The current version token under ``key``, in the cache and in the database."""

    def __init__(self, key: str, interval: float = 1.0) -> None:
        self.key = key
        self.interval = interval
        self._value: str | None = None
        self._checked = 0.0  # when the token was last confirmed, from anywhere
        self._stored_checked = 0.0  # when it was last read from the database

    def get(self) -> str:
        """The token. At most once per ``interval`` from a shared cache; otherwise from the
        database at most once per ``SHARED_STATE_SECONDS``. Raises only when neither the
        cache nor the database answers and no earlier token is known."""
        now = time.monotonic()
        if self._value is not None and now - self._checked < self.interval:
            return self._value
        shared = cache()
        if not shared.is_per_process:
            try:
                value = self._from_cache(shared)
            except CacheUnavailable:
                pass  # the breaker logged it; the database answers meanwhile
            else:
                self._value, self._checked = value, now
                return value
        if self._value is not None and now - self._stored_checked < shared_state_seconds():
            self._checked = now
            return self._value
        try:
            value = self._read_stored()
        except Exception:
            if self._value is None:
                raise
            logger.warning("personalization: could not read %s", self.key, exc_info=True)
            value = self._value
        self._value, self._checked, self._stored_checked = value, now, now
        return value

    def bump(self) -> None:
        """A new token: this process drops its copy at once, every other one within its
        interval. Inside a transaction the token changes again once it commits, so no
        process keeps a copy read before the commit. Raises only when neither the cache
        nor the database took the token."""
        self._publish()
        connection = transaction.get_connection()
        if connection.in_atomic_block and not self._pending(connection):
            transaction.on_commit(self._publish_quietly, robust=True)

    def forget(self) -> None:
        """Read the token again on the next :meth:`get`."""
        self._value = None
        self._checked = 0.0
        self._stored_checked = 0.0

    # ---------------------------------------------------------------------------------------
    def _from_cache(self, shared: GuardedCache) -> str:
        value = shared.call("get", self.key)
        if value is None:
            # Evicted or never set: start from the database's token, so that every process
            # agrees on it whichever of the two it reads.
            try:
                seed = self._read_stored()
            except Exception:
                seed = secrets.token_hex(8)
            shared.call("add", self.key, seed, None)
            value = shared.call("get", self.key) or seed
        return str(value)

    def _read_stored(self) -> str:
        from .models import SharedState

        with _savepoint():
            value = SharedState.objects.filter(key=self.key).values_list("value", flat=True).first()
        return value or UNSET

    def _store(self, value: str) -> None:
        from .models import SharedState

        with _savepoint():
            if SharedState.objects.filter(key=self.key).update(
                value=value, updated_at=timezone.now()
            ):
                return
            try:
                with transaction.atomic():
                    SharedState.objects.create(key=self.key, value=value)
            except IntegrityError:  # created meanwhile by another process
                SharedState.objects.filter(key=self.key).update(
                    value=value, updated_at=timezone.now()
                )

    def _publish(self) -> None:
        value = secrets.token_hex(8)
        failures: list[Exception] = []
        try:
            cache().call("set", self.key, value, None)
        except CacheUnavailable as exc:
            failures.append(exc)  # the breaker logged it; the database carries the token
            _missed_by_the_cache.add(self)
        else:
            _missed_by_the_cache.discard(self)
        try:
            self._store(value)
        except Exception as exc:
            failures.append(exc)
            logger.warning("personalization: could not store %s", self.key, exc_info=True)
        self.forget()
        if len(failures) == 2:
            raise failures[-1]

    def _pending(self, connection: Any) -> bool:
        """Whether this transaction already publishes the token when it commits (several
        saves in one admin form need one)."""
        try:
            return any(entry[1] == self._publish_quietly for entry in connection.run_on_commit)
        except (AttributeError, IndexError, TypeError):
            return False

    def _publish_quietly(self) -> None:
        try:
            self._publish()
        except Exception:
            logger.warning("personalization: could not publish %s", self.key, exc_info=True)


# Tokens bumped while the cache failed: once it answers again it would still hand out the
# token from before, so each is copied there from the database.
_missed_by_the_cache: set[SharedVersion] = set()


@on_recovery
def _republish(breaker: Any) -> None:
    if breaker is not cache().breaker:
        return
    for version in list(_missed_by_the_cache):
        try:
            cache().call("set", version.key, version._read_stored(), None)
        except Exception:
            logger.warning("personalization: could not republish %s", version.key, exc_info=True)
            continue
        _missed_by_the_cache.discard(version)
        version.forget()
