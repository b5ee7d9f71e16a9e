"""The periodic jobs, and how work is queued without ever failing the caller.

Every job is a plain function. Three things can drive them, alone or together:

* ``manage.py personalization_jobs`` (cron, or a person): runs the jobs that are due;
* Celery beat, when the shop has ``django_celery_beat``: the schedule is registered at migrate
  and the tasks in :mod:`personalization.tasks` call :func:`run`;
* :func:`enqueue`, for work asked for now (a segment saved in the admin, the first fit of a new
  shop). It queues a Celery task after the transaction commits when a Celery app with a broker
  is there; when there is none, or the broker refuses, the work runs in-process after commit
  (``JOBS_FALLBACK``) and an operator sees one log line.

Each run is recorded in :class:`~personalization.models.JobRun`; each job is idempotent, so a
second driver running it again does no harm.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, close_old_connections, connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from . import resilience
from .conf import app_settings, cached_on_settings

logger = logging.getLogger("personalization")


@dataclass(frozen=True)
class Job:
    """One periodic job: ``every`` seconds, or daily at ``at`` (``"HH:MM"``, shop time)."""

    name: str
    function: str
    description: str
    task: str
    beat_name: str
    every: int | None = None
    at: str | None = None

    @property
    def schedule(self) -> str:
        if self.every:
            minutes, seconds = divmod(self.every, 60)
            return f"every {minutes} min" if not seconds else f"every {self.every} s"
        return f"daily at {self.at}"

    def call(self, **kwargs: Any) -> Any:
        return import_string(self.function)(**kwargs)

    def last_due(self, now: dt.datetime) -> dt.datetime | None:
        """The latest moment at or before ``now`` the job was scheduled for (daily jobs); None
        for interval jobs, which are due ``every`` seconds after their last start."""
        if self.every:
            return None
        hour, minute = (int(part) for part in str(self.at).split(":"))
        local = timezone.localtime(now)
        moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if moment > local:
            moment -= dt.timedelta(days=1)
        return moment


JOBS: dict[str, Job] = {
    job.name: job
    for job in [
        Job(
            "recommendations",
            "personalization.recommendations.precompute.recompute_all",
            "Fit every recommendation list on the recent history.",
            "personalization.recompute_recommendations",
            "personalization: recompute recommendations",
            at="02:45",
        ),
        Job(
            "trending",
            "personalization.recommendations.precompute.refresh_trending",
            "Refit the trending lists.",
            "personalization.refresh_trending",
            "personalization: refresh trending products",
            every=300,
        ),
        Job(
            "rollups",
            "personalization.reports.rollups.refresh",
            "Roll up the conversion report's figures for the visitors active since last time.",
            "personalization.refresh_report_rollups",
            "personalization: roll up report figures",
            every=300,
        ),
        Job(
            "banner-stats",
            "personalization.targeting.bandit.refresh_stats",
            "Roll up banner exposures and clicks for the bandit.",
            "personalization.refresh_banner_stats",
            "personalization: refresh banner statistics",
            every=600,
        ),
        Job(
            "segment-counts",
            "personalization.targeting.membership.count",
            "Count each segment's members among the last 30 days' visitors.",
            "personalization.count_segment_members",
            "personalization: count segment members",
            at="04:15",
        ),
        Job(
            "emails",
            "personalization.emails.run_due",
            "Send the personalized emails that are due (flows) and retry failed ones.",
            "personalization.send_emails",
            "personalization: send due emails",
            every=300,
        ),
        Job(
            "purge",
            "personalization.retention.purge",
            "Delete visitors and interactions past their retention period.",
            "personalization.purge_inactive_visitors",
            "personalization: purge inactive visitors",
            at="03:30",
        ),
    ]
}


class UnknownJob(KeyError):
    """A job name that is not in :data:`JOBS`."""


def get(name: str) -> Job:
    try:
        return JOBS[name]
    except KeyError:
        raise UnknownJob(name) from None


# Running --------------------------------------------------------------------------------
_running: dict[str, threading.Lock] = {name: threading.Lock() for name in JOBS}


def run(name: str, **kwargs: Any) -> Any:
    """Run a job now in this process and record the run; raises what the job raises."""
    from .models import JobRun

    job = get(name)
    started = timezone.now()
    clock = time.monotonic()
    _record(JobRun, name, started_at=started, status=JobRun.RUNNING)
    try:
        result = job.call(**kwargs)
    except Exception:
        _record(
            JobRun,
            name,
            finished_at=timezone.now(),
            status=JobRun.FAILED,
            seconds=time.monotonic() - clock,
            error=traceback.format_exc(limit=20)[-4000:],
        )
        raise
    _record(
        JobRun,
        name,
        finished_at=timezone.now(),
        status=JobRun.OK,
        seconds=time.monotonic() - clock,
        result=_jsonable(result),
        error="",
        # a request made while this run was going on is not done by it, nor one for the whole
        # job by a run narrowed to a part (one segment)
        requested_at=None if _whole_job(kwargs) else _KEEP,
        clear_requested_before=started,
    )
    return result


_KEEP = object()


def _whole_job(kwargs: dict[str, Any]) -> bool:
    """Whether a run with these arguments does the whole job: no argument narrows it to a
    part (``segment_id=None`` does not; flags such as ``full`` only widen it)."""
    return all(value is None or isinstance(value, bool) for value in kwargs.values())


def _record(model: Any, name: str, *, clear_requested_before: Any = None, **fields: Any) -> None:
    """Upsert the job's row; bookkeeping never fails the job."""
    fields = {key: value for key, value in fields.items() if value is not _KEEP}
    try:
        row, created = model.objects.get_or_create(name=name, defaults=fields)
        if created:
            return
        if (
            clear_requested_before is not None
            and row.requested_at is not None
            and "requested_at" in fields
        ):
            if row.requested_at <= clear_requested_before:
                fields["requested_at"] = None
            else:
                fields.pop("requested_at", None)
        model.objects.filter(name=name).update(**fields)
    except DatabaseError:
        logger.warning("personalization: could not record the run of job %r", name, exc_info=True)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value)


def due(now: dt.datetime | None = None) -> list[str]:
    """The jobs to run now: never run, asked for, or past their schedule since the last
    start."""
    from .models import JobRun

    now = now or timezone.now()
    rows = {row.name: row for row in JobRun.objects.filter(name__in=list(JOBS))}
    names = []
    for name, job in JOBS.items():
        row = rows.get(name)
        last = row.started_at if row is not None else None
        if (row is not None and row.requested_at is not None) or last is None:
            names.append(name)
        elif job.every:
            if (now - last).total_seconds() >= job.every - 5:  # cron's minute granularity
                names.append(name)
        elif last < job.last_due(now):  # type: ignore[operator]
            names.append(name)
    return names


def run_due(now: dt.datetime | None = None) -> dict[str, Any]:
    """Run every due job once, each on its own: one failing does not stop the others.
    Returns name -> result, or the exception of a job that failed."""
    results: dict[str, Any] = {}
    for name in due(now):
        try:
            results[name] = run(name)
        except Exception as exc:
            logger.exception("personalization: job %r failed", name)
            results[name] = exc
    return results


# Queuing --------------------------------------------------------------------------------
_logged: set[tuple[str, str]] = set()


def _log_once(key: tuple[str, str], message: str, *args: Any, exc_info: bool = False) -> None:
    """One line per process and cause: an operator sees it, the log is not flooded."""
    if key in _logged:
        return
    _logged.add(key)
    logger.warning(message, *args, exc_info=exc_info)


@cached_on_settings
@functools.lru_cache(maxsize=1)
def celery_app() -> Any:
    """The shop's Celery app, or None when Celery is not installed or no app was created (the
    fallback app Celery makes on its own has no broker of the shop's)."""
    try:
        from celery import _state, current_app
    except ImportError:
        return None
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app is _state.default_app and not app.conf.broker_url:  # type: ignore[attr-defined]
        return None
    return app


def enqueue(name: str, *, dedupe_seconds: float = 0, **kwargs: Any) -> None:
    """Ask for a job to run soon. Never raises and never waits for a broker.

    The work is sent after the current transaction commits (a worker must see what the caller
    saved). With ``dedupe_seconds``, further requests within that time are dropped (shared
    through the cache when it answers). Where no Celery app and broker take it, the work runs
    in this process per ``JOBS_FALLBACK``: ``"thread"`` (after commit, in a background
    thread), ``"inline"`` (after commit, in the caller's thread) or ``"defer"`` (marked as asked
    for; the next ``personalization_jobs`` run does it).
    """
    try:
        get(name)
        if dedupe_seconds and not _first_request(name, kwargs, dedupe_seconds):
            return
        transaction.on_commit(functools.partial(_dispatch, name, kwargs))
    except Exception:
        _log_once(("enqueue", name), "personalization: could not queue job %r", name, exc_info=True)


_local_dedupe: dict[str, float] = {}


def _first_request(name: str, kwargs: dict[str, Any], seconds: float) -> bool:
    key = f"pzn:v1:job-asked:{name}:{sorted(kwargs.items())}"[:200]
    now = time.monotonic()
    if _local_dedupe.get(key, 0.0) > now:
        return False
    _local_dedupe[key] = now + seconds
    try:
        return bool(resilience.cache().call("add", key, 1, int(seconds) or 1))
    except resilience.CacheUnavailable:
        return True  # this process's own memo above still holds


# How long to wait for a broker before running the work without it, and how long to skip a
# broker that failed: an admin save or a page never waits seconds for a broker that is down.
BROKER_TIMEOUT_SECONDS = 0.5
BROKER_RETRY_SECONDS = 60.0
_broker = {"down_until": 0.0}


@contextlib.contextmanager
def _connection(app: Any) -> Iterator[Any]:
    """A connection to the broker with short timeouts (the shop's Celery settings may retry
    for seconds); raises when the broker does not answer."""
    timeout = BROKER_TIMEOUT_SECONDS
    options = {
        **(app.conf.broker_transport_options or {}),
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
    }
    with app.connection_for_write(connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0, timeout=timeout)
        yield conn


def _send(app: Any, job: Job, kwargs: dict[str, Any]) -> None:
    """Publish the job's task on a connection of its own; raises when the broker does not take
    it."""
    with _connection(app) as conn:
        # No result is awaited: the result backend (maybe a Redis that hangs) is never asked.
        app.send_task(job.task, kwargs=kwargs, retry=False, connection=conn, ignore_result=True)


def _dispatch(name: str, kwargs: dict[str, Any]) -> None:
    """Hand queued work to Celery, else run it per ``JOBS_FALLBACK``. It runs after commit,
    inside the caller's request or admin save, so it never raises: what cannot be started is
    left to the next ``personalization_jobs`` run."""
    try:
        if _taken_by_celery(name, kwargs):
            return
        fallback = app_settings.JOBS_FALLBACK
        if fallback == "inline":
            _run_logged(name, kwargs)
        elif fallback == "defer":
            _mark_requested(name)
        else:
            threading.Thread(
                target=_run_in_thread, args=(name, kwargs), name=f"pzn-job-{name}", daemon=True
            ).start()
    except Exception:
        logger.exception("personalization: could not start job %r; the next run does it", name)
        _mark_requested(name)


def _taken_by_celery(name: str, kwargs: dict[str, Any]) -> bool:
    """Whether the shop's Celery app took the work (an eager app runs it here and now)."""
    try:
        app = celery_app()
        eager = app is not None and bool(app.conf.task_always_eager)
    except Exception:  # an app whose configuration cannot be loaded
        _log_once(
            ("celery-app", ""),
            "personalization: the Celery app cannot be used; queued jobs run without Celery "
            "(JOBS_FALLBACK=%r)",
            app_settings.JOBS_FALLBACK,
            exc_info=True,
        )
        return False
    if app is None:
        _log_once(
            ("no-celery", ""),
            "personalization: no Celery app is configured; queued jobs run in-process "
            "(JOBS_FALLBACK=%r) and periodic jobs through `manage.py personalization_jobs`",
            app_settings.JOBS_FALLBACK,
        )
        return False
    if eager:
        _run_logged(name, kwargs)
        return True
    return _publish(app, name, kwargs)


def _publish(app: Any, name: str, kwargs: dict[str, Any]) -> bool:
    """Send the job's task to the broker; False when it does not take it, or failed within
    the last minute (tried again once the minute is over). Logs the first failure."""
    return _through_broker(name, lambda: _send(app, get(name), kwargs))


def broker_answers(app: Any, name: str) -> bool:
    """Whether the app's broker answers now, for job ``name`` to send work as several tasks
    (a chord) itself; as :func:`_publish`, False within a minute of a failure, and the first
    failure logged."""

    def connect() -> None:
        with _connection(app):
            pass

    return _through_broker(name, connect)


def _through_broker(name: str, send: Callable[[], None]) -> bool:
    if time.monotonic() < _broker["down_until"]:
        return False
    try:
        send()
    except Exception:
        _broker["down_until"] = time.monotonic() + BROKER_RETRY_SECONDS
        _log_once(
            ("broker", ""),
            "personalization: the Celery broker did not take job %r; queued jobs run "
            "without Celery for a minute at a time while it fails (JOBS_FALLBACK=%r)",
            name,
            app_settings.JOBS_FALLBACK,
            exc_info=True,
        )
        return False
    _logged.discard(("broker", ""))  # the next outage is logged again
    return True


def hand_to_workers(name: str, **kwargs: Any) -> bool:
    """Send the job to the shop's Celery workers now, for work split in parts that workers
    should share; False when no Celery app with a broker takes it (an eager app included),
    and the caller then does the work itself. Never raises; waits at most
    ``BROKER_TIMEOUT_SECONDS``."""
    try:
        app = celery_app()
        if app is None or app.conf.task_always_eager:
            return False
    except Exception:
        return False
    return _publish(app, name, kwargs)


def record_outcome(
    name: str, *, result: Any = None, error: str | None = None, seconds: float | None = None
) -> None:
    """Record how the work that a run of job ``name`` handed to Celery workers ended (the
    recommendation fit's parts): its result, or its error as a failure of that run."""
    from .models import JobRun

    fields: dict[str, Any] = {"finished_at": timezone.now()}
    if seconds is not None:
        fields["seconds"] = seconds
    if error is None:
        fields.update(status=JobRun.OK, result=_jsonable(result), error="")
    else:
        fields.update(status=JobRun.FAILED, error=error[-4000:])
    _record(JobRun, name, **fields)


def _run_logged(name: str, kwargs: dict[str, Any]) -> None:
    lock = _running[name]
    if not lock.acquire(blocking=False):
        _mark_requested(name)  # a run is going on in this process: the next one does it again
        return
    try:
        run(name, **kwargs)
    except Exception:
        logger.exception("personalization: job %r failed", name)
    finally:
        lock.release()


def _run_in_thread(name: str, kwargs: dict[str, Any]) -> None:
    close_old_connections()
    try:
        _run_logged(name, kwargs)
    finally:
        connections.close_all()  # this thread's connections only


def _mark_requested(name: str) -> None:
    from .models import JobRun

    try:
        _, created = JobRun.objects.get_or_create(
            name=name, defaults={"requested_at": timezone.now()}
        )
        if not created:
            JobRun.objects.filter(name=name, requested_at__isnull=True).update(
                requested_at=timezone.now()
            )
    except DatabaseError:
        logger.warning("personalization: could not mark job %r as asked for", name, exc_info=True)
