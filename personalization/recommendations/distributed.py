"""The nightly fit's parts on the shop's Celery workers, as ``chord(group(parts), finish)``.

:func:`dispatch` sends a plan of :mod:`.parts`: each part is a task
(``personalization.fit_recommendations_part``) that any worker takes, and when every part is
done the callback (``personalization.finish_recommendations_fit``) switches their lists in.
A part that raises is tried again after 30 s, 60 s and 120 s (the tasks' options in
:mod:`personalization.tasks`); if it still fails, the callback never runs, the lists served
stay, one error line says which part failed, and the job's last run is recorded as failed.
The next fit deletes what the parts of the failed one wrote.

A worker keeps the interactions it read for a fit while parts of that fit keep coming
(:mod:`.snapshot`), so one that takes several parts reads them once.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from .. import jobs
from . import parts, snapshot

logger = logging.getLogger("personalization")

JOB = "recommendations"
PART_TASK = "personalization.fit_recommendations_part"
FINISH_TASK = "personalization.finish_recommendations_fit"


def dispatch(plan: parts.Plan) -> dict[str, Any] | None:
    """Send the plan's parts to the workers as a chord. Returns None when no Celery app with a
    broker and a result backend takes them (the caller then runs them itself). An eager app
    (tests) runs the chord here, now, and returns what the switch returned."""
    app = jobs.celery_app()
    if app is None:
        return None
    from celery import chord, group

    from .. import tasks  # noqa: F401  (the app knows the tasks once they are defined)

    header = group(
        app.signature(PART_TASK, args=(plan, index)) for index in range(len(plan["parts"]))
    )
    fit = chord(header, app.signature(FINISH_TASK, args=(plan,)), app=app)
    if app.conf.task_always_eager:
        return fit.apply_async().get()  # type: ignore[no-any-return]
    if not jobs.broker_answers(app, JOB):
        return None
    try:
        sent = fit.apply_async()
    except Exception:
        logger.exception(
            "personalization: could not send the recommendation fit's parts to Celery (is a "
            "result backend configured?); fitting in this process"
        )
        return None
    return {"fit": plan["fit"], "parts": len(plan["parts"]), "queued": True, "task": sent.id}


def run_part(plan: parts.Plan, index: int, *, tries: int, last: bool) -> dict[str, Any]:
    """A part, in a worker: ``tries`` counts this one; ``last``: no retry follows a failure."""
    try:
        return parts.run_part(plan, index)
    except Exception:
        if last:
            parts.log_failure(plan, index, tries)
            jobs.record_outcome(JOB, error=traceback.format_exc(limit=20))
        raise
    finally:
        snapshot.release_when_idle()


def finish(results: list[dict[str, Any]], plan: parts.Plan) -> dict[str, Any]:
    """The chord's callback: switch the parts' lists in, and record the job's outcome."""
    try:
        result = parts.finish(plan, results)
    finally:
        snapshot.release()
    jobs.record_outcome(JOB, result=result, seconds=result.get("seconds"))
    return result
