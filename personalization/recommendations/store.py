"""Precomputed lists for serving: written by the precompute tasks, read through three layers.

1. a per-process memo, valid for one *version* of the lists;
2. Django's cache (``CACHE_ALIAS``), one entry per list, shared by every process;
3. the ``RecommendationList`` table, read (one query for all missing lists) only on a miss.

Only the lists served are read: those of an empty ``fit``; the nightly fit writes its lists
under its own id and switches them in at once (:mod:`.parts`). Writing new lists bumps their
version (:class:`~personalization.versioning.SharedVersion`),
which every process checks at most once a second in a shared cache, or every
``SHARED_STATE_SECONDS`` in the database when the cache is per process; warm serving costs no
SQL and usually no cache round trip.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import resilience
from ..conf import on_settings_change
from ..versioning import SharedVersion
from .base import Ranked, RankedList

logger = logging.getLogger("personalization")

VERSION_KEY = "pzn:v1:recommendations-version"
CHECK_INTERVAL_SECONDS = 1.0
MEMO_SIZE = 20_000
CACHE_SECONDS = 24 * 3600

VERSION = SharedVersion(VERSION_KEY, CHECK_INTERVAL_SECONDS)
_state: dict[str, Any] = {"version": None, "offline_until": 0.0}
_memo: OrderedDict[tuple[str, str], Ranked] = OrderedDict()
_lock = threading.Lock()


def _cache() -> Any:
    return resilience.cache()


@on_settings_change
def forget_local() -> None:
    """Drop this process's memo (tests; a settings change)."""
    with _lock:
        _memo.clear()
        _state["version"] = None
        _state["offline_until"] = 0.0
    VERSION.forget()


def current_version() -> str:
    """The lists' version; read at most once a second per process (see module doc)."""
    now = time.monotonic()
    if now < _state["offline_until"]:
        return str(_state["version"])
    try:
        version = VERSION.get()
    except Exception:
        # Neither the cache nor the database tells this process about new lists: read them
        # from the database again every CHECK_INTERVAL_SECONDS.
        logger.warning("personalization: cache unavailable for recommendations", exc_info=True)
        version = f"offline-{secrets.token_hex(4)}"
        _state["offline_until"] = now + CHECK_INTERVAL_SECONDS
    with _lock:
        if version != _state["version"]:
            _memo.clear()
        _state["version"] = version
    return version


def _cache_key(version: str, name: str, key: str) -> str:
    return f"pzn:v1:recs:{version}:{name}:{key}"[:240]


class SharedStore:
    """The serving :class:`~personalization.recommendations.base.ListStore`."""

    def get(self, name: str, key: str = "") -> Ranked:
        return self.get_many(name, [key]).get(key, [])

    def get_many(self, name: str, keys: Iterable[str]) -> dict[str, Ranked]:
        version = current_version()
        found: dict[str, Ranked] = {}
        missing: list[str] = []
        memo = _memo.get  # reads need no lock: a dict lookup is atomic
        for key in dict.fromkeys(keys):
            key = str(key)
            hit = memo((name, key))
            if hit is None:
                missing.append(key)
            elif hit:  # a list known to be empty is remembered as []
                found[key] = hit
        if missing:
            loaded = _load(version, name, missing)
            with _lock:
                for key, ranked in loaded.items():
                    _memo[(name, key)] = ranked
                while len(_memo) > MEMO_SIZE:  # the oldest loaded go first
                    _memo.popitem(last=False)
            found.update((key, ranked) for key, ranked in loaded.items() if ranked)
        return found


def _load(version: str, name: str, keys: list[str]) -> dict[str, Ranked]:
    """Lists from the cache, then from the table (one query); a missing list is [] and is
    remembered as such."""
    from ..models import RecommendationList

    cache = _cache()
    by_cache_key = {_cache_key(version, name, key): key for key in keys}
    result: dict[str, Ranked] = {}
    try:
        cached = cache.get_many(list(by_cache_key))
    except Exception:
        logger.warning("personalization: cache unavailable for recommendations", exc_info=True)
        cached = {}
    for cache_key, value in cached.items():
        result[by_cache_key[cache_key]] = RankedList(tuple(item) for item in value)
    absent = [key for key in keys if key not in result]
    if absent:
        rows = dict(
            RecommendationList.objects.filter(fit="", name=name, key__in=absent).values_list(
                "key", "items"
            )
        )
        fresh = {}
        for key in absent:
            ranked = [(str(item[0]), float(item[1])) for item in rows.get(key, [])]
            result[key] = RankedList(ranked)
            fresh[_cache_key(version, name, key)] = ranked  # a plain list in the cache
        try:
            cache.set_many(fresh, CACHE_SECONDS)
        except Exception:
            logger.warning("personalization: could not cache recommendations", exc_info=True)
    return result


def save_lists(lists: Mapping[tuple[str, str], Ranked], names: Iterable[str] | None = None) -> int:
    """Replace the stored lists of ``names`` (default: every name in ``lists``) and publish
    them to every process. Returns the number of lists written."""
    from ..models import RecommendationList

    replaced = set(names) if names is not None else {name for name, _ in lists}
    with transaction.atomic():
        lock_live()
        if replaced:
            RecommendationList.objects.filter(fit="", name__in=replaced).delete()
        written = insert_lists({key: ranked for key, ranked in lists.items() if key[0] in replaced})
    publish()
    return written


def insert_lists(lists: Mapping[tuple[str, str], Ranked], *, fit: str = "", part: int = 0) -> int:
    """Insert the non-empty lists (as served, or under a fit's id); returns how many. On
    PostgreSQL by COPY: a fit of a big shop writes hundreds of thousands of lists."""
    from ..models import RecommendationList

    now = timezone.now()
    rows = [
        (name, key[:100], [[product, round(float(score), 6)] for product, score in ranked])
        for (name, key), ranked in lists.items()
        if ranked
    ]
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        RecommendationList.objects.bulk_create(
            (RecommendationList(name=name, key=key, items=items, computed_at=now, fit=fit,
                                part=part) for name, key, items in rows),
            batch_size=2000,
        )  # fmt: skip
        return len(rows)
    from psycopg.types.json import Jsonb

    table = connection.ops.quote_name(RecommendationList._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY {table} (name, key, items, computed_at, fit, part) FROM STDIN"
        ) as copy,
    ):
        for name, key, items in rows:
            copy.write_row((name, key, Jsonb(items), now, fit, part))
    return len(rows)


LIVE_KEY = "pzn:v1:recommendations-live"


def lock_live() -> dt.datetime | None:
    """Lock the record of the lists served until the transaction ends, so that their writers
    take turns; returns the moment the fit they come from was as of (None: not recorded)."""
    from ..models import SharedState

    row, _ = SharedState.objects.select_for_update().get_or_create(
        key=LIVE_KEY, defaults={"value": ""}
    )
    try:
        return dt.datetime.fromisoformat(row.value) if row.value else None
    except ValueError:
        return None


def mark_live(fitted_as_of: dt.datetime) -> None:
    """Record, under :func:`lock_live`, the moment the fit switched in was as of."""
    from ..models import SharedState

    SharedState.objects.filter(key=LIVE_KEY).update(
        value=fitted_as_of.astimezone(dt.UTC).isoformat(), updated_at=timezone.now()
    )


def publish() -> None:
    """Make every process read the lists anew."""
    try:
        VERSION.bump()
    except Exception:
        logger.warning("personalization: could not publish new recommendations", exc_info=True)
    forget_local()
