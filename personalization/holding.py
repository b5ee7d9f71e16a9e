"""What a visitor's requests write before the visitor's cookie comes back.

A request that came without the visitor cookie (a new visitor's first request, or any request
of a client that keeps no cookies) writes no row: its exposures, product views, cart
additions and goals are *held* in the visitor's cached profile, the last :data:`MAX_HELD` of
them, with their own timestamps. The first request that comes back with the cookie claims
them (one atomic ``add`` in the cache, so two overlapping requests cannot both write them)
and writes them before its view runs. A client that never sends the cookie back writes
nothing; held rows of a profile the cache loses (evicted, or unreachable) are never written.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.apps import apps

from . import resilience
from .conf import app_settings
from .resilience import CacheUnavailable

if TYPE_CHECKING:
    from .profiling.visitor import VisitorProfile

logger = logging.getLogger("personalization")

MAX_HELD = 20
CLAIM_KEY = "pzn:v1:held-claim:{}"


def _values(row: Any) -> dict[str, Any]:
    """The row's field values, but its automatic key and its visitor (set when written)."""
    return {
        field.attname: getattr(row, field.attname)
        for field in row._meta.concrete_fields
        if field.attname != "visitor_id" and field is not row._meta.auto_field
    }


def hold(visitor: VisitorProfile, rows: list[Any]) -> None:
    """Keep ``rows`` in the visitor's profile instead of writing them (the oldest go first
    beyond :data:`MAX_HELD`)."""
    if not rows:
        return
    entries = [(row._meta.label, _values(row)) for row in rows]
    visitor._data.held = [*visitor._data.held, *entries][-MAX_HELD:]
    visitor.dirty = True


def release(visitor: VisitorProfile) -> list[Any]:
    """Take the rows held in the profile, as unsaved model instances of this visitor; empty
    when another request of the visitor took them first or the cache cannot tell."""
    held = visitor._data.held
    if not held:
        return []
    visitor._data.held = []
    visitor.dirty = True
    try:
        claimed = resilience.cache().call(
            "add", CLAIM_KEY.format(visitor.id), 1, app_settings.profile_cache_seconds
        )
    except CacheUnavailable:
        return []
    if not claimed:
        return []
    rows = []
    for label, values in held:
        try:
            rows.append(apps.get_model(label)(visitor_id=visitor.id, **values))
        except Exception:
            logger.exception("personalization: dropped a held row of %s", label)
    return rows


def by_model(rows: list[Any]) -> list[tuple[Any, list[Any]]]:
    """Rows grouped by model, for :func:`personalization.tracking.write_rows`."""
    groups: dict[Any, list[Any]] = {}
    for row in rows:
        groups.setdefault(type(row), []).append(row)
    return list(groups.items())
