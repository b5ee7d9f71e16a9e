"""Celery tasks, for shops that run Celery: thin wrappers that run a job of
:mod:`personalization.jobs` (and record it). Without Celery installed this module defines
nothing, and the jobs run through ``manage.py personalization_jobs``."""

from __future__ import annotations

from typing import Any

from . import jobs

try:
    from celery import shared_task
except ImportError:  # Celery is optional
    shared_task = None  # type: ignore[assignment]

if shared_task is not None:

    @shared_task(name="personalization.purge_inactive_visitors", ignore_result=False)
    def purge_inactive_visitors_task() -> int:
        """Apply the retention periods; returns the visitors deleted."""
        return jobs.run("purge")["visitors"]

    @shared_task(name="personalization.send_emails")
    def send_emails_task() -> dict[str, int]:
        """Send the personalized emails that are due; nothing is sent twice."""
        return jobs.run("emails")

    @shared_task(name="personalization.count_segment_members")
    def count_segment_members_task(segment_id: int | None = None) -> int:
        """Recount one segment's members among the last 30 days' visitors, or all segments."""
        return jobs.run("segment-counts", segment_id=segment_id)

    @shared_task(name="personalization.refresh_banner_stats")
    def refresh_banner_stats_task() -> int:
        """Roll up banner exposures and clicks for the bandit."""
        return jobs.run("banner-stats")

    @shared_task(name="personalization.refresh_report_rollups")
    def refresh_report_rollups_task(
        full: bool = False, part: int | None = None, build: str | None = None
    ) -> dict[str, Any]:
        """Roll up the report's figures: the visitors active since the last run, everyone, or
        one part of a rebuild (which the workers share)."""
        return jobs.run("rollups", full=full, part=part, build=build)

    @shared_task(name="personalization.recompute_recommendations")
    def recompute_recommendations_task() -> dict[str, Any]:
        """Fit every recommendation list on the recent history (nightly)."""
        return jobs.run("recommendations")

    # The nightly fit in parts (personalization/recommendations/distributed.py): the job sends
    # the parts as a chord with the switch as its callback, which needs their results.
    _FIT_RETRIES: dict[str, Any] = {
        "bind": True,
        "ignore_result": False,
        "acks_late": True,
        "autoretry_for": (Exception,),
        "max_retries": 3,
        "retry_backoff": 30,
        "retry_backoff_max": 600,
        "retry_jitter": False,
    }

    @shared_task(name="personalization.fit_recommendations_part", **_FIT_RETRIES)
    def fit_recommendations_part_task(
        self: Any, plan: dict[str, Any], index: int
    ) -> dict[str, Any]:
        """Fit one part of the recommendation lists and write them aside (a chord's member)."""
        from .recommendations import distributed

        tries = self.request.retries + 1
        return distributed.run_part(plan, index, tries=tries, last=tries > self.max_retries)

    @shared_task(name="personalization.finish_recommendations_fit", **_FIT_RETRIES)
    def finish_recommendations_fit_task(
        self: Any, results: list[dict[str, Any]], plan: dict[str, Any]
    ) -> dict[str, Any]:
        """Switch in the lists that every part of a fit wrote (the chord's callback)."""
        from .recommendations import distributed

        return distributed.finish(results, plan)

    @shared_task(name="personalization.refresh_trending")
    def refresh_trending_task() -> dict[str, Any]:
        """Refit the trending lists (every few minutes)."""
        return jobs.run("trending")
