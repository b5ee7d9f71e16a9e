"""The app's periodic tasks, registered with django-celery-beat after migrate.

They are created once, by name, so staff can change or disable them in the admin's
*Periodic tasks* and a later migrate leaves their changes alone.
"""

from __future__ import annotations

from typing import Any

# name -> (task, schedule): ("every", seconds) or ("cron", minute, hour)
PERIODIC_TASKS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "personalization: refresh banner statistics": (
        "personalization.refresh_banner_stats",
        ("every", 600),
    ),
    "personalization: roll up report figures": (
        "personalization.refresh_report_rollups",
        ("every", 300),
    ),
    "personalization: refresh trending products": (
        "personalization.refresh_trending",
        ("every", 300),
    ),
    "personalization: recompute recommendations": (
        "personalization.recompute_recommendations",
        ("cron", "45", "2"),
    ),
    "personalization: count segment members": (
        "personalization.count_segment_members",
        ("cron", "15", "4"),
    ),
    "personalization: purge inactive visitors": (
        "personalization.purge_inactive_visitors",
        ("cron", "30", "3"),
    ),
}


def ensure_periodic_tasks(**kwargs: Any) -> int:
    """Create the missing periodic tasks; returns how many were created."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    created = 0
    for name, (task, schedule) in PERIODIC_TASKS.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        if schedule[0] == "every":
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=schedule[1], period=IntervalSchedule.SECONDS
            )
            PeriodicTask.objects.create(name=name, task=task, interval=interval)
        else:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=schedule[1], hour=schedule[2], day_of_week="*", day_of_month="*",
                month_of_year="*",
            )  # fmt: skip
            PeriodicTask.objects.create(name=name, task=task, crontab=crontab)
        created += 1
    return created
