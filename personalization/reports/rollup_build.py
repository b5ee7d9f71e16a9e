"""Rebuilding the report's roll-ups from every row, in parts computed side by side.

A rebuild empties the cells, splits the visitors (by id) into parts of about
``PART_EXPOSURES`` exposures and records the plan in ``ReportRollup.build``. Each part reads its
visitors' rows created before the build's cutoff, adds their cells and records their state, in
a transaction of its own; the part that finishes last makes the roll-ups serve the report
again (until then the report is prepared or read from the raw rows, see
:func:`personalization.reports.queries.build_report`). Parts are idempotent: one that runs twice
is rolled back the second time.

The parts go to the shop's Celery workers when a Celery app with a broker takes them, else they
run one after the other in the process that asked; ``manage.py personalization_rollup --full
--processes N`` runs them in N processes of its own. A build that made no progress for
``STALL`` (a worker died) has its missing parts sent again by the next refresh.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import uuid
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..models import Exposure, ReportCell, ReportCellPart, ReportRollup, ReportVisitorState
from . import rollups

logger = logging.getLogger(__name__)

PART_EXPOSURES = 400_000
MAX_PARTS = 64
STALL = dt.timedelta(minutes=20)


def start(rollup: ReportRollup, now: dt.datetime, fingerprint: tuple[float, str]) -> dict[str, Any]:
    """Empty the roll-ups and plan the rebuild, in the caller's transaction (which holds the
    roll-ups' row); returns the plan, to :func:`dispatch` once committed."""
    _empty(ReportCell, ReportCellPart, ReportVisitorState)
    cutoff = now - rollups.SLACK
    build = {
        "id": uuid.uuid4().hex,
        "cutoff": cutoff.isoformat(),
        "settings": list(fingerprint),
        "ranges": _ranges(),
        "done": [],
        "visitors": 0,
        "started_at": now.isoformat(),
        "progress_at": now.isoformat(),
    }
    rollup.build = build
    rollup.rolled_up_to = None
    rollup.window_days, rollup.time_zone = fingerprint
    rollup.save()
    return build


def _empty(*models: Any) -> None:
    """Delete every row; on PostgreSQL by TRUNCATE, which leaves no dead rows for the report's
    scans to wade through (a DELETE left the cells' table four times its size)."""
    if connection.vendor == "postgresql":
        tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables}")
        return
    for model in models:
        model.objects.all()._raw_delete(connection.alias)


def _estimated_exposures() -> int:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [Exposure._meta.db_table],
            )
            row = cursor.fetchone()
        if row and row[0] and row[0] > 0:
            return int(row[0])
    return Exposure.objects.count()


def _ranges() -> list[list[str]]:
    """Inclusive ranges of visitor ids, with about the same number of visitors each, that cover
    every visitor with exposures."""
    parts = max(1, min(MAX_PARTS, math.ceil(_estimated_exposures() / PART_EXPOSURES)))
    ids = Exposure.objects.order_by("visitor_id").values_list("visitor_id", flat=True).distinct()
    if parts == 1:
        first, last = ids.first(), ids.order_by("-visitor_id").first()
        return [[first, last]] if first is not None else []  # type: ignore[list-item]
    total = ids.count()
    size = max(1, math.ceil(total / parts))
    ranges: list[list[str]] = []
    for number, visitor_id in enumerate(ids.iterator(chunk_size=20_000)):
        if number % size == 0:
            ranges.append([visitor_id, visitor_id])
        else:
            ranges[-1][1] = visitor_id
    return ranges


def dispatch(build: dict[str, Any], parts: list[int] | None = None) -> dict[str, Any]:
    """Hand the parts to the Celery workers, or run them here one after the other."""
    from .. import jobs

    started = time.monotonic()
    todo = list(range(len(build["ranges"]))) if parts is None else parts
    queued = [
        part for part in todo if jobs.hand_to_workers("rollups", part=part, build=build["id"])
    ]
    visitors = 0
    for part in todo:
        if part not in queued:
            visitors += run_part(build["id"], part).get("visitors", 0)
    if not build["ranges"]:
        visitors += run_part(build["id"], -1).get("visitors", 0)  # nothing to read: finish
    result = {
        "rebuilt": True,
        "visitors": visitors,
        "seconds": round(time.monotonic() - started, 3),
        "parts": len(build["ranges"]),
        "queued": len(queued),
    }
    logger.info("personalization: report roll-ups rebuild: %s", result)
    return result


def run_here(build: dict[str, Any], processes: int) -> dict[str, Any]:
    """Run the parts in ``processes`` processes of this machine (forked: each opens its own
    database connection)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from django.db import connections

    started = time.monotonic()
    parts = list(range(len(build["ranges"]))) or [-1]
    connections.close_all()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        done = list(pool.map(_run_part_in_child, [build["id"]] * len(parts), parts))
    result = {
        "rebuilt": True,
        "visitors": sum(found.get("visitors", 0) for found in done),
        "seconds": round(time.monotonic() - started, 3),
        "parts": len(build["ranges"]),
        "queued": 0,
        "processes": processes,
    }
    logger.info("personalization: report roll-ups rebuild: %s", result)
    return result


def _run_part_in_child(build_id: str, part: int) -> dict[str, Any]:
    from django.db import connections

    try:
        return run_part(build_id, part)
    finally:
        connections.close_all()


class _Superseded(Exception):
    """The part was done meanwhile, or its build was replaced by a newer one."""


def run_part(build_id: str, part: int) -> dict[str, Any]:
    """Compute and add one part of a rebuild (``part`` -1: none, just finish an empty build)."""
    rollup = ReportRollup.objects.filter(pk=1).first()
    build = rollup.build if rollup is not None else None
    if not build or build["id"] != build_id or part in build["done"]:
        return {"part": part, "skipped": True, "visitors": 0}
    tally = rollups.EntryCounts()
    attributes: dict[str, rollups.Attributes] = {}
    if part >= 0:
        low, high = build["ranges"][part]
        cutoff = dt.datetime.fromisoformat(build["cutoff"])
        span = rollups.window()
        for visitor_id, raw in rollups.load(id_range=(low, high), before=cutoff).items():
            entries = rollups.entries_as_of(raw, None, span)
            if entries:
                tally.add(entries)
                attributes[visitor_id] = raw.attributes
    cells = tally.cells()
    try:
        with transaction.atomic():
            rollups.save_states(attributes, new=True)
            rows = [(build_id, *row) for row in rollups.cell_rows(cells)]
            rollups.insert_rows(
                ReportCellPart._meta.db_table,
                ["build", *rollups.CELL_COLUMNS],
                ["text", *rollups.CELL_TYPES],
                rows,
            )
            finished = _record(build_id, part, len(attributes))
    except (_Superseded, IntegrityError):
        # Done meanwhile by another run of the same part (whose states this one's collide
        # with), or replaced by a newer build.
        return {"part": part, "skipped": True, "visitors": 0}
    return {"part": part, "visitors": len(attributes), "finished": finished}


def _record(build_id: str, part: int, visitors: int) -> bool:
    """Mark the part done; the last one makes the roll-ups serve the report."""
    rollup = ReportRollup.objects.select_for_update().get(pk=1)
    build = rollup.build
    if not build or build["id"] != build_id or part in build["done"]:
        raise _Superseded
    now = timezone.now()
    if part >= 0:
        build["done"].append(part)
    build["visitors"] += visitors
    build["progress_at"] = now.isoformat()
    finished = len(build["done"]) >= len(build["ranges"])
    if finished:
        _sum_parts(build_id)
        started = dt.datetime.fromisoformat(build["started_at"])
        rollup.rolled_up_to = dt.datetime.fromisoformat(build["cutoff"])
        rollup.rebuilt_at = now
        rollup.rebuild_duration = rollup.last_duration = round((now - started).total_seconds(), 3)
        rollup.visitors = build["visitors"]
        rollup.build = None
    rollup.save()
    return finished


def _sum_parts(build_id: str) -> None:
    """Sum the parts' cells into the (empty) cells, and drop them."""
    qn = connection.ops.quote_name
    keys = ", ".join(qn(c) for c in rollups.CELL_COLUMNS[:7])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(ReportCell._meta.db_table)} "
            f"({', '.join(qn(c) for c in rollups.CELL_COLUMNS)}) "
            f"SELECT {keys}, SUM({qn('n')}), SUM({qn('revenue_cents')}), MAX({qn('label')}) "
            f"FROM {qn(ReportCellPart._meta.db_table)} WHERE {qn('build')} = %s "
            f"GROUP BY {keys} HAVING SUM({qn('n')}) <> 0 OR SUM({qn('revenue_cents')}) <> 0",
            [build_id],
        )
    _empty(ReportCellPart)


def progress(rollup: ReportRollup) -> dict[str, Any]:
    """What a refresh answers while a rebuild is going on."""
    build = rollup.build or {}
    return {
        "rebuilt": False,
        "building": True,
        "parts": len(build.get("ranges", [])),
        "parts_done": len(build.get("done", [])),
        "visitors": 0,
        "seconds": 0.0,
    }


def resume_if_stalled(rollup: ReportRollup) -> None:
    """Send the missing parts of a rebuild again when it made no progress for ``STALL``; in
    the caller's transaction, which holds the roll-ups' row."""
    build = rollup.build
    if not build:
        return
    last = dt.datetime.fromisoformat(build["progress_at"])
    if timezone.now() - last < STALL:
        return
    missing = [part for part in range(len(build["ranges"])) if part not in build["done"]]
    build["progress_at"] = timezone.now().isoformat()
    rollup.save(update_fields=["build"])
    logger.warning(
        "personalization: the report roll-ups' rebuild made no progress for %s; sending its "
        "%d missing part(s) again",
        STALL,
        len(missing),
    )
    transaction.on_commit(lambda: dispatch(dict(build), missing))


def status_text(rollup: ReportRollup | None) -> str:
    """Parts done of the rebuild going on, for the people waiting for the report."""
    if rollup is None or not rollup.build:
        return ""
    build = rollup.build
    return f"{len(build['done'])}/{len(build['ranges'])}"
