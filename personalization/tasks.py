"""Celery tasks: thin wrappers over plain functions that management commands also call."""

from celery import shared_task

from .retention import purge_inactive_visitors, purge_old_interactions
from .targeting import bandit, membership


@shared_task(name="personalization.purge_inactive_visitors", ignore_result=False)
def purge_inactive_visitors_task() -> int:
    """Apply the retention periods: inactive visitors, and interactions past the history the
    recommender reads. Returns the visitors deleted."""
    purge_old_interactions()
    return purge_inactive_visitors()


@shared_task(name="personalization.count_segment_members")
def count_segment_members_task(segment_id: int | None = None) -> int:
    """Recount one segment's members among the last 30 days' visitors, or all segments."""
    from .models import Segment

    if segment_id is None:
        return membership.count_all()
    segment = Segment.objects.prefetch_related("rules").filter(pk=segment_id).first()
    return membership.count_members(segment) if segment is not None else 0


@shared_task(name="personalization.refresh_banner_stats")
def refresh_banner_stats_task() -> int:
    """Roll up banner exposures and clicks for the bandit."""
    return bandit.refresh_stats()


@shared_task(name="personalization.refresh_report_rollups")
def refresh_report_rollups_task(full: bool = False) -> dict:
    """Roll up the report's figures: the visitors active since the last run, or everyone."""
    from .reports import rollups

    return rollups.refresh(full=full)


@shared_task(name="personalization.recompute_recommendations")
def recompute_recommendations_task() -> dict:
    """Fit every recommendation list on the recent history (nightly)."""
    from .recommendations import precompute

    return precompute.recompute_all()


@shared_task(name="personalization.refresh_trending")
def refresh_trending_task() -> dict:
    """Refit the trending lists (every few minutes)."""
    from .recommendations import precompute

    return precompute.refresh_trending()
