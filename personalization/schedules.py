"""The jobs' schedule in django-celery-beat, registered after migrate when it is installed.

Tasks are created once, by name, so staff can change or disable them in the admin's
*Periodic tasks* and a later migrate leaves their changes alone. Shops without beat run the
same jobs with ``manage.py personalization_jobs`` (:mod:`personalization.jobs`).
"""

from __future__ import annotations

from typing import Any

from .jobs import JOBS

# beat name -> (task, schedule): ("every", seconds) or ("cron", minute, hour)
PERIODIC_TASKS: dict[str, tuple[str, tuple[Any, ...]]] = {
    job.beat_name: (
        job.task,
        ("every", job.every)
        if job.every
        else ("cron", str(int(job.at.split(":")[1])), str(int(job.at.split(":")[0]))),  # type: ignore[union-attr]
    )
    for job in JOBS.values()
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
