"""The hot profile in the cache, saved without losing what a concurrent request changed.

Each cached profile carries a revision: a chain token and a number. A request that loaded
revision *n* saves *n + 1* only after claiming that number with an atomic ``add``; only one
request can. A request whose claim is taken (another request of the same visitor saved
first) re-reads the newer copy, replays its own changes onto it (:mod:`.merge`) and claims
the next number. An uncontended save costs one round trip more than a plain ``set``; a
profile nobody cached yet is created with ``add``, so two first requests do not overwrite
each other either.

The cache also holds an *epoch*. A process that kept profiles in the database because the
cache was unreachable sets it to the current time as soon as the cache answers again; a
cached profile saved under an older epoch may lack what the database got meanwhile (orders,
above all) and is joined with its row when it is next loaded (:func:`.merge.join`).

Every call goes through the cache's circuit breaker (:mod:`personalization.resilience`) and
raises :class:`~personalization.resilience.CacheUnavailable` when the cache does not answer.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from ..conf import app_settings, on_settings_change
from ..resilience import CacheUnavailable, cache, on_recovery
from .merge import merge_changes
from .visitor import ProfileData

if TYPE_CHECKING:
    from .visitor import VisitorProfile

EPOCH_KEY = "pzn:v1:profiles-epoch"
# How long a claimed revision number stays claimed; a request that loaded its profile longer
# ago than half of this re-reads it before claiming (its number may have been freed).
CLAIM_SECONDS = 120
# How long a save waits for another request that claimed a revision and has not written it
# yet; after that it starts a new chain, which every later save merges onto.
SAVE_PATIENCE_SECONDS = 0.05
MAX_ATTEMPTS = 50


class Revision(NamedTuple):
    """Where a loaded profile stands: its chain and number in the cache (``token`` None when
    it was not loaded from the cache) and the epoch it is consistent with."""

    token: str | None = None
    number: int = 0
    epoch: float = 0.0


def profile_cache_key(visitor_id: str) -> str:
    return f"pzn:v1:profile:{visitor_id}"


def _claim_key(visitor_id: str, revision: Revision) -> str:
    return f"pzn:v1:profile-rev:{visitor_id}:{revision.token}:{revision.number}"


def _number(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def revision_of(raw: Any) -> Revision:
    """The revision a cached profile was saved at (an empty chain for one saved without)."""
    value = raw.get("rev") if isinstance(raw, dict) else None
    if isinstance(value, tuple | list) and len(value) == 3:
        return Revision(str(value[0]), int(value[1]), _number(value[2]))
    return Revision("", 0, 0.0)


def _dump(data: ProfileData, revision: Revision) -> dict[str, Any]:
    raw = data.to_dict()
    raw["rev"] = tuple(revision)
    return raw


# The epoch ----------------------------------------------------------------------------------
_state: dict[str, Any] = {"epoch": 0.0, "db_since": None}


@on_settings_change
def forget_epoch() -> None:
    """Another cache, maybe: what this process knew of the last one does not hold."""
    _state.update(epoch=0.0, db_since=None)


def current_epoch() -> float:
    """The epoch this process saw last (for profiles that start without a cache read)."""
    return float(_state["epoch"])


def note_database_write() -> None:
    """Profiles went to the database instead of the cache: once the cache answers again, the
    copies it still holds must be checked against the rows."""
    if _state["db_since"] is None:
        _state["db_since"] = time.time()


def _announce_recovery(seen: float) -> float:
    """After an outage in which this process wrote to the database, move the epoch on, so
    that every process rejoins the older cached copies with their rows."""
    epoch = max(seen, current_epoch())  # it only grows; a flushed cache forgot it
    if _state["db_since"] is not None:
        epoch = max(time.time(), epoch)
        cache().call("set", EPOCH_KEY, epoch, None)
        _state["db_since"] = None
    _state["epoch"] = epoch
    return epoch


@on_recovery
def _cache_is_back(breaker: Any) -> None:
    if _state["db_since"] is not None and breaker is cache().breaker:
        _announce_recovery(current_epoch())


def read(visitor_id: str) -> tuple[Any, float]:
    """The cached profile (raw) and the current epoch, in one round trip."""
    found = cache().call("get_many", [profile_cache_key(visitor_id), EPOCH_KEY])
    return found.get(profile_cache_key(visitor_id)), _announce_recovery(
        _number(found.get(EPOCH_KEY))
    )


def forget(visitor_id: str) -> None:
    """Drop the cached profile; when the cache cannot, its copy is rejoined with the (then
    missing) row once the cache is back, which drops it there."""
    try:
        cache().call("delete", profile_cache_key(visitor_id))
    except CacheUnavailable:
        note_database_write()


# Saving ---------------------------------------------------------------------------------------
def _fresh(visitor_id: str) -> tuple[ProfileData | None, Revision]:
    raw = cache().call("get", profile_cache_key(visitor_id))
    data = ProfileData.from_dict(raw)
    if data is None or data.id != visitor_id:
        return None, Revision()
    return data, revision_of(raw)


def save(visitor: VisitorProfile) -> bool:
    """Save the request's profile, merged onto any copy saved since it was loaded. Returns
    False, having written nothing, when the cache is unavailable (the caller then keeps the
    profile in the database); the profile and revision saved end up on ``visitor``."""
    loaded = visitor.revision
    if not isinstance(loaded, Revision):
        loaded = Revision(None, 0, current_epoch())
    try:
        data, saved = _save_merged(visitor, loaded)
    except CacheUnavailable:
        return False
    visitor._data, visitor.revision = data, saved
    visitor._base, visitor.views = data.copy(), []
    return True


def write_whole(data: ProfileData, epoch: float) -> Revision:
    """Write ``data`` as the whole profile, on a new chain that later saves merge onto."""
    revision = Revision(secrets.token_hex(6), 1, epoch)
    cache().call("set", profile_cache_key(data.id), _dump(data, revision), _timeout())
    return revision


def _timeout() -> int:
    return app_settings.profile_cache_seconds


def _save_merged(visitor: VisitorProfile, loaded: Revision) -> tuple[ProfileData, Revision]:
    ours, base, views = visitor._data, visitor._base, visitor.views
    key = profile_cache_key(ours.id)
    data, revision = ours, loaded
    # A request that loaded long ago may hold a number whose claim has expired: re-read first.
    claim = revision.token is None or time.time() - visitor.loaded_at < CLAIM_SECONDS / 2
    deadline = time.monotonic() + SAVE_PATIENCE_SECONDS
    for _ in range(MAX_ATTEMPTS):
        if claim:
            if revision.token is None:
                new = Revision(secrets.token_hex(6), 1, revision.epoch)
                if cache().call("add", key, _dump(data, new), _timeout()):
                    return data, new
            else:
                new = revision._replace(number=revision.number + 1)
                if cache().call("add", _claim_key(ours.id, new), 1, CLAIM_SECONDS):
                    cache().call("set", key, _dump(data, new), _timeout())
                    return data, new
        fresh, fresh_revision = _fresh(ours.id)
        if fresh is None:  # gone meanwhile (evicted, forgotten): create it again
            data, revision, claim = ours, Revision(None, 0, loaded.epoch), True
        elif claim and revision.token is not None and fresh_revision[:2] == revision[:2]:
            # The request that claimed the next number has not written its copy yet.
            if time.monotonic() >= deadline:
                break  # and never will
            time.sleep(0.002)
            claim = False
        else:  # another request saved since: replay this request's changes onto its copy
            data = merge_changes(fresh, ours, base, views)  # type: ignore[arg-type]  # loaded
            revision = fresh_revision._replace(epoch=max(fresh_revision.epoch, loaded.epoch))
            claim = True
    # Contended beyond reason, or a claimant that died: a new chain every later save merges onto.
    return data, write_whole(data, revision.epoch)
