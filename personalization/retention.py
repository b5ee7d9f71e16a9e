"""Data retention: deleting visitors who have not been seen for VISITOR_RETENTION_DAYS.

Their rows go, with what points at them; the report's daily roll-ups keep the anonymous
counts they contributed to, so older reports keep their figures."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from . import resilience
from .conf import app_settings
from .models import Visitor
from .profiling import revisions
from .profiling.storage import profile_cache_key
from .reports import rollups

BATCH_SIZE = 2000


def purge_inactive_visitors(now: dt.datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Delete visitors whose last visit started more than VISITOR_RETENTION_DAYS ago, with
    their cached profiles; returns how many were deleted. ``0`` days keeps everyone."""
    days = int(app_settings.VISITOR_RETENTION_DAYS)
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    cache = resilience.cache()
    deleted = 0
    while True:
        ids = list(Visitor.objects.not_seen_since(cutoff).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        if not cache.delete_many([profile_cache_key(visitor_id) for visitor_id in ids]):
            revisions.note_database_write()  # their cached copies go once the cache is back
        rollups.forget(ids)  # the report's anonymous counts stay
        Visitor.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


def purge_old_interactions(now: dt.datetime | None = None) -> int:
    """Delete product interactions older than the recommender reads
    (RECOMMENDATION_HISTORY_DAYS); returns how many."""
    from .models import ProductInteraction

    days = float(app_settings.RECOMMENDATION_HISTORY_DAYS)
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    deleted, _ = ProductInteraction.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def purge(now: dt.datetime | None = None) -> dict[str, int]:
    """The job: both retention periods at once."""
    interactions = purge_old_interactions(now)
    return {"visitors": purge_inactive_visitors(now), "interactions": interactions}
