"""Daily roll-ups of the conversion report: exact figures for any period in a few milliseconds.

Every number of the report is a sum over visitors: a visitor counts in a slice (the whole
group, a placement, a country, a day...) when one of the visitor's days in that slice falls in
the period. A refresh turns each visitor's exposures, clicks and conversions into *sets of
days* (days exposed; days whose exposures a conversion of each goal followed, strictly later
and within the attribution window; days of clicked content; for each conversion, the days of
the exposures it is attributed to), and each set of days ``d1 < d2 < ... < dm`` into cells
``(0, d1), (d1, d2), ... (dm-1, dm)`` of :class:`~personalization.models.ReportCell`. The
set meets a period ``[a, b]`` exactly when one of its cells has ``prev_day < a <= day <= b``:
the first of its days on or after ``a``. Summing those cells counts each visitor once,
exactly, for every period, and the table grows with the number of days and slices, not with
the traffic.

Refreshing is incremental and idempotent. The cells hold every row created before the
roll-ups' cutoff (``rolled_up_to``: the last refresh, less ``SLACK`` for rows committed a
little after the time they carry). A refresh recomputes only the visitors with rows since the
cutoff: their part of the cells is what their rows before the old cutoff give, taken away, and
what their rows before the new one give, added. Per visitor only the attributes the cells were
computed with are kept (:class:`~personalization.models.ReportVisitorState`, under 100 bytes),
and, when a visitor's rows are moved or deleted, their part of the cells as it was. The report
adds, the same way and without writing, what the rows since the cutoff change, so today's
figures are always live. A change of ``ATTRIBUTION_WINDOW_DAYS`` or ``TIME_ZONE`` rebuilds
everything, in parts of visitors that Celery workers (or ``manage.py personalization_rollup
--processes N``) compute side by side (:mod:`.rollup_build`). A visitor shown content of both
groups is left out of both; only the days they were shown anything are kept, to count them as
excluded.

Rows written with past dates after the cutoff (an import) are not looked for: rebuild after
one (``manage.py personalization_rollup --full``).

Retention: when inactive visitors are purged, their per-visitor state goes with them but the
anonymous cells stay, so older reports keep their figures. A visitor who asks to be deleted
(``DELETE api/me/``) is taken out of the cells too.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, BinaryField, F, Func, Max, Q, Sum
from django.utils import timezone

from ..conf import app_settings
from ..models import (
    Conversion,
    Event,
    Exposure,
    ReportCell,
    ReportRollup,
    ReportVisitorState,
    Visitor,
)
from .period import Period
from .staff import lookups as staff_lookups

logger = logging.getLogger(__name__)

ANY = "any"
PURCHASE = "purchase"
SEEN = "seen"
CLICK = "click"
REACHED = "reached"
COVER = "cover"
# The dimension of visitors shown content of both groups, left out of both.
EXCLUDED = "excluded"
# Per visitor, goal and group, the sums of squares and products of the revenue and the number
# of conversions in a period (for the intervals of revenue per visitor and average order value):
# REVENUE_SQUARES holds Σ revenue², ORDER_SQUARES Σ conversions² and CROSS Σ revenue ×
# conversions, in the cells' ``revenue_cents`` (cents², cents, conversions).
REVENUE_SQUARES = "rr"
ORDER_SQUARES = "oo"
CROSS = "ro"
# A visitor's conversions with distinct attributions beyond this many add their own squares
# but no products with each other (a bot, a reseller): the sums of squares are then a little
# low for that one visitor rather than the refresh slow.
MAX_PAIRED = 24
BATCH_SIZE = 1000
# Rows may be committed a little after the time they carry (a long request): the cells hold
# the rows created up to this long before a refresh, and the rows since are read live.
SLACK = dt.timedelta(minutes=10)

# (dimension, key, detail, is_control, measure)
Slice = tuple[str, str, str, bool, str]
EXPOSURE_FIELDS = ("visitor_id", "id", "placement", "kind", "content", "content_label",
                   "segment", "is_control", "created_at")  # fmt: skip
# Slice + (prev_day, day)
CellKey = tuple[str, str, str, bool, str, int, int]
# [dimension, key, detail, is_control, measure, days, revenue_cents, label]
Entry = list[Any]


def conv(goal_key: str) -> str:
    """The measure of the days whose exposures a conversion of ``goal_key`` followed."""
    return f"conv:{goal_key}"


def click_among_converted(goal_key: str) -> str:
    """Days of clicked content, kept only for visitors with a ``conv(goal_key)`` set."""
    return f"clickc:{goal_key}"


def click_or_conv(goal_key: str) -> str:
    """The union of a visitor's ``click`` and ``conv(goal_key)`` days."""
    return f"click|conv:{goal_key}"


def goal_keys(kind: str, goal: str) -> list[str]:
    """The report goals a conversion counts for: every conversion for ``any``, orders for
    ``purchase``, and its own goal name."""
    keys = [ANY]
    if kind == Conversion.PURCHASE:
        keys.append(PURCHASE)
    if goal not in (ANY, PURCHASE):
        keys.append(goal)
    return keys


# One visitor ------------------------------------------------------------------------------
# The attributes the cells hold a visitor with: country, first source, staff.
Attributes = tuple[str, str, bool]
NO_ATTRIBUTES: Attributes = ("", "", False)


@dataclass
class Raw:
    """A visitor's rows, as the refresh reads them."""

    exposures: list[tuple[Any, ...]] = field(default_factory=list)
    conversions: list[tuple[Any, ...]] = field(default_factory=list)
    # exposure id -> when it was first clicked
    clicks: dict[Any, int] = field(default_factory=dict)  # microseconds since the epoch
    attributes: Attributes = NO_ATTRIBUTES


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
QUARTER_HOUR = 900_000_000  # microseconds
# time zone -> quarter hour (since the epoch) -> its shop-time date, as a proleptic ordinal
_days_by_zone: dict[str, dict[int, int]] = {}


def micros(moment: dt.datetime) -> int:
    """Microseconds since the epoch (a naive datetime is read as UTC, as the database does)."""
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _days() -> tuple[dict[int, int], Any]:
    """The quarter-hour -> date table of the shop's time zone, and how to fill it.

    Every time zone's offsets, and so its local midnights, fall on whole quarter hours of
    UTC, so a date is computed once per quarter hour (a refresh reads millions of rows)."""
    zone = str(settings.TIME_ZONE) if settings.USE_TZ else "UTC"
    days = _days_by_zone.get(zone)
    if days is None or len(days) > 200_000:
        days = _days_by_zone[zone] = {}
    use_tz = settings.USE_TZ

    def compute(quarter: int) -> int:
        at = EPOCH + dt.timedelta(microseconds=quarter * QUARTER_HOUR)
        if use_tz:
            at = timezone.localtime(at, timezone.get_default_timezone())
        day = days[quarter] = at.date().toordinal()
        return day

    return days, compute


def day_number(moment: dt.datetime | int) -> int:
    """The shop-time date of ``moment`` (a datetime, or microseconds since the epoch) as a
    proleptic ordinal."""
    if isinstance(moment, dt.datetime):
        moment = micros(moment)
    days, compute = _days()
    quarter = moment // QUARTER_HOUR
    day = days.get(quarter)
    return day if day is not None else compute(quarter)


def entries_as_of(
    raw: Raw,
    cutoff: dt.datetime | None,
    window: dt.timedelta,
    attributes: Attributes | None = None,
) -> list[Entry]:
    """The visitor's entries from the rows created before ``cutoff`` (every row with None),
    with ``attributes`` (default: the visitor's current ones)."""
    if cutoff is None:
        exposures, conversions = raw.exposures, raw.conversions
        clicked = set(raw.clicks)
    else:
        limit = micros(cutoff)
        exposures = [row for row in raw.exposures if row[7] < limit]
        conversions = [row for row in raw.conversions if row[3] < limit]
        clicked = {key for key, at in raw.clicks.items() if at < limit}
    if not exposures:
        return []
    return visitor_entries(
        Raw(exposures, conversions, {}, attributes or raw.attributes), clicked, window
    )


def _union(sets: list[set[int]]) -> set[int]:
    return sets[0] if len(sets) == 1 else set().union(*sets)


def visitor_entries(raw: Raw, clicked: set[Any], window: dt.timedelta) -> list[Entry]:
    """The visitor's sets of days, per slice and measure (see the module's docstring).

    ``raw.exposures`` holds (id, placement, kind, content, label, segment, is_control,
    created_at); ``raw.conversions`` (kind, goal, revenue, created_at); times in
    microseconds since the epoch; ``clicked`` the ids of the exposures that were clicked. A
    staff visitor counts nowhere. A visitor shown content of both groups counts in neither:
    only the days they were shown anything, under ``EXCLUDED``. A conversion is attributed to
    the exposures strictly before it, within the window."""
    country, source, staff = raw.attributes
    exposures = raw.exposures
    if staff or not exposures:
        return []
    days_of, compute = _days()
    is_control = bool(exposures[0][6])
    if any(bool(row[6]) != is_control for row in exposures):
        found = set()
        for row in exposures:
            quarter = row[7] // QUARTER_HOUR
            found.add(days_of.get(quarter) or compute(quarter))
        return [[EXCLUDED, "", "", False, SEEN, sorted(found), 0, ""]]
    span = int(window.total_seconds() * 1_000_000)
    conversions = sorted(raw.conversions, key=lambda row: row[3]) if raw.conversions else []
    times = [row[3] for row in conversions]
    keys_of = [goal_keys(row[0], row[1]) for row in conversions]
    covers: list[set[int]] = [set() for _ in conversions]
    # (placement, kind, content, segment) -> [days seen, days clicked, goal -> days converted]
    shown: dict[tuple[str, str, str, str], list[Any]] = {}
    labels: dict[tuple[str, str], str] = {}
    bisect_right = bisect.bisect_right
    for exposure_id, placement, kind, content, label, segment, _group, at in exposures:
        quarter = at // QUARTER_HOUR
        day = days_of.get(quarter)
        if day is None:
            day = compute(quarter)
        group = shown.get((placement, kind, content, segment))
        if group is None:
            group = shown[(placement, kind, content, segment)] = [set(), set(), {}]
        group[0].add(day)
        if times:
            for index in range(bisect_right(times, at), bisect_right(times, at + span)):
                covers[index].add(day)  # strictly after the exposure, within the window
                for goal in keys_of[index]:
                    converted = group[2].get(goal)
                    if converted is None:
                        converted = group[2][goal] = set()
                    converted.add(day)
        if clicked and exposure_id in clicked:
            group[1].add(day)
        if label and not is_control and label > labels.get((placement, content), ""):
            labels[(placement, content)] = label

    # slice -> the groups of exposures it takes its days from
    members: dict[tuple[str, str, str], list[list[Any]]] = {}
    for (placement, kind, content, segment), group in shown.items():
        targets = [("total", "", ""), ("placement", placement, "")]
        if not is_control:
            targets += [("content", placement, content), ("segment", segment, "")]
            targets.append(("clicks", ANY, ""))
            if kind == Exposure.RECOMMENDATION:
                targets.append(("clicks", Exposure.RECOMMENDATION, ""))
        for target in targets:
            found_members = members.get(target)
            if found_members is None:
                members[target] = [group]
            else:
                found_members.append(group)

    entries: list[Entry] = []
    for (dimension, key, detail), groups in members.items():
        label = labels.get((key, detail), "") if dimension == "content" else ""
        measures: dict[str, set[int]] = {SEEN: _union([group[0] for group in groups])}
        goals: dict[str, list[set[int]]] = {}
        for group in groups:
            for goal, days in group[2].items():
                goals.setdefault(goal, []).append(days)
        for goal, sets in goals.items():
            measures[conv(goal)] = _union(sets)
        if dimension in ("content", "clicks"):
            clicks = [group[1] for group in groups if group[1]]
            if clicks:
                measures[CLICK] = _union(clicks)
        if dimension == "clicks":
            clicked_days = measures.get(CLICK, set())
            for goal in goals:
                if clicked_days:
                    measures[click_among_converted(goal)] = clicked_days
                measures[click_or_conv(goal)] = clicked_days | measures[conv(goal)]
        where = [(dimension, key, detail)]
        if dimension == "total":
            where += [("country", country, ""), ("source", source, "")]
        for measure, days in measures.items():
            ordered = sorted(days)
            for dimension_, key_, detail_ in where:
                entries.append([dimension_, key_, detail_, is_control, measure, ordered, 0, label])
    if not conversions:
        return entries
    reached: dict[str, set[int]] = defaultdict(set)
    attributed: dict[str, list[tuple[int, list[int]]]] = defaultdict(list)
    for (_kind, goal, revenue, _at), keys, cover in zip(conversions, keys_of, covers, strict=True):
        if not cover:
            continue
        cents = int((Decimal(revenue or 0) * 100).to_integral_value())
        days = sorted(cover)
        reached[goal] |= cover
        for key in keys:
            entries.append(["orders", key, "", is_control, COVER, days, cents, ""])
            attributed[key].append((cents, days))
    for goal, days_reached in reached.items():
        entries.append(["goal", goal, "", is_control, REACHED, sorted(days_reached), 0, ""])
    for key, attributed_to_key in attributed.items():
        entries.extend(_square_entries(key, is_control, attributed_to_key))
    return entries


def _square_entries(key: str, is_control: bool, found: list[tuple[int, list[int]]]) -> list[Entry]:
    """Entries whose cells sum, over a period, each visitor's revenue², conversions² and
    revenue × conversions, counting the conversions attributed to an exposure in the period.

    With y = Σ r_j [j meets the period], y² = Σ r_j² [j meets] + Σ_{j≠k} r_j r_k [both meet],
    and [both meet] = [j meets] + [k meets] − [j or k meets]: each term is a set of days that
    meets the period, as the cells count (conversions with the same days are taken together)."""
    days: Iterable[int]  # lists and tuples of day ordinals
    merged: dict[tuple[int, ...], list[int]] = {}
    for cents, days in found:
        total = merged.setdefault(tuple(days), [0, 0])
        total[0] += cents
        total[1] += 1
    sets = list(merged.items())
    entries: list[Entry] = []
    for days, (cents, count) in sets:
        entries.append(["orders", key, "", is_control, REVENUE_SQUARES, list(days), cents**2, ""])
        if count > 1:
            entries.append(
                ["orders", key, "", is_control, ORDER_SQUARES, list(days), count**2 - count, ""]
            )
            entries.append(
                ["orders", key, "", is_control, CROSS, list(days), cents * (count - 1), ""]
            )
    paired = sets[:MAX_PAIRED]
    for index, (days_j, (cents_j, count_j)) in enumerate(paired):
        for days_k, (cents_k, count_k) in paired[index + 1 :]:
            union = sorted(set(days_j) | set(days_k))
            for measure, value in (
                (REVENUE_SQUARES, 2 * cents_j * cents_k),
                (ORDER_SQUARES, 2 * count_j * count_k),
                (CROSS, cents_j * count_k + cents_k * count_j),
            ):
                if not value:
                    continue
                for days, sign in ((list(days_j), 1), (list(days_k), 1), (union, -1)):
                    entries.append(["orders", key, "", is_control, measure, days, sign * value, ""])
    return entries


def add_cells(
    cells: dict[CellKey, list[Any]], entries: Iterable[Entry], sign: int = 1
) -> dict[CellKey, list[Any]]:
    """Add (or with ``sign=-1`` take away) the cells of ``entries`` to ``cells``:
    key -> [n, revenue_cents, label]."""
    for dimension, key, detail, is_control, measure, days, cents, label in entries:
        _add(cells, (dimension, key, detail, is_control, measure), days, sign, sign * cents, label)
    return cells


def _add(
    cells: dict[CellKey, list[Any]],
    where: Slice,
    days: Iterable[int],
    n: int,
    cents: int,
    label: str,
) -> None:
    prev = 0
    for day in days:
        cell = cells.get((*where, prev, day))
        if cell is None:
            cell = cells[(*where, prev, day)] = [0, 0, ""]
        cell[0] += n
        cell[1] += cents
        if label > cell[2]:
            cell[2] = label
        prev = day


class EntryCounts:
    """Entries of many visitors, counted before they are turned into cells: most visitors'
    entries are the same as others' (one day, one placement)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[Any, ...], int] = defaultdict(int)

    def add(self, entries: Iterable[Entry]) -> None:
        counts = self.counts
        for dimension, key, detail, is_control, measure, days, cents, label in entries:
            counts[(dimension, key, detail, is_control, measure, tuple(days), cents, label)] += 1

    def cells(self) -> dict[CellKey, list[Any]]:
        cells: dict[CellKey, list[Any]] = {}
        for (
            dimension,
            key,
            detail,
            is_control,
            measure,
            days,
            cents,
            label,
        ), n in self.counts.items():
            _add(cells, (dimension, key, detail, is_control, measure), days, n, n * cents, label)
        return cells


# Reading the raw rows ---------------------------------------------------------------------
def window() -> dt.timedelta:
    return dt.timedelta(days=float(app_settings.ATTRIBUTION_WINDOW_DAYS))


def _with_micros(
    rows: Any, fields: tuple[str, ...], uuid_field: str | None = None
) -> Iterable[tuple[Any, ...]]:
    """``rows.values_list(*fields, <created_at>)`` with the time in microseconds since the
    epoch. On PostgreSQL the time is computed by the database and the rows are fetched by the
    cursor itself (turning millions of timestamps into datetimes, and rows into Django's
    values, costs more than reading them), ``uuid_field`` as its 16 bytes (a uuid.UUID costs
    more to make than the rest of the row). Elsewhere the time is converted here."""
    if connection.vendor == "postgresql":
        epoch = Func(
            F("created_at"),
            template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint",
            output_field=BigIntegerField(),
        )
        rows = rows.annotate(us=epoch)
        names = list(fields)
        if uuid_field is not None:
            rows = rows.annotate(
                id16=Func(F(uuid_field), function="uuid_send", output_field=BinaryField())
            )
            names[names.index(uuid_field)] = "id16"
        sql, params = rows.values_list(*names, "us").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched: list[tuple[Any, ...]] = cursor.fetchall()
            return fetched
    return ((*row, micros(at)) for *row, at in rows.values_list(*fields, "created_at"))


def load(
    visitor_ids: list[str] | None = None,
    id_range: tuple[str, str] | None = None,
    before: dt.datetime | None = None,
) -> dict[str, Raw]:
    """The rows of the visitors in ``visitor_ids`` or in the (inclusive) ``id_range``, created
    before ``before`` (all with None), by visitor; only visitors with exposures. Times are
    microseconds since the epoch."""

    def of(field_name: str) -> Q:
        if visitor_ids is not None:
            return Q(**{f"{field_name}__in": visitor_ids})
        assert id_range is not None
        return Q(**{f"{field_name}__gte": id_range[0], f"{field_name}__lte": id_range[1]})

    def dated(rows: Any) -> Any:
        return (
            rows.filter(created_at__lt=before).order_by() if before is not None else rows.order_by()
        )

    raws: dict[str, Raw] = defaultdict(Raw)
    for visitor_id, *row in _with_micros(
        dated(Exposure.objects.filter(of("visitor_id"))), EXPOSURE_FIELDS[:-1], uuid_field="id"
    ):
        raws[visitor_id].exposures.append(tuple(row))
    if not raws:
        return {}
    conversion_rows = _with_micros(
        dated(Conversion.objects.filter(of("visitor_id"))),
        ("visitor_id", "kind", "goal", "revenue"),
    )
    for visitor_id, *row in conversion_rows:
        if visitor_id in raws:
            raws[visitor_id].conversions.append(tuple(row))
    visitor_rows = (
        Visitor.objects.filter(of("id"))
        .order_by()
        .values_list("id", "country_code", "first_source", *staff_lookups())
    )
    for visitor_id, country, source, *flags in visitor_rows:
        if visitor_id in raws:
            raws[visitor_id].attributes = (country, source, any(flags))
    owner = {row[0]: raw for raw in raws.values() for row in raw.exposures}
    if id_range is not None:
        # A range of visitors: one join, which reads the clicks once.
        batches = [
            _with_micros(
                dated(Event.objects.filter(of("exposure__visitor_id"), kind=Event.CLICK)),
                ("exposure_id",),
                uuid_field="exposure_id",
            )
        ]
    elif connection.vendor == "postgresql":
        batches = [_clicks_of(list(owner), before)]
    else:
        # A few visitors: by the exposures' ids (an index), not by a join (a scan of events).
        shown = list(owner)
        batches = [
            _with_micros(
                dated(
                    Event.objects.filter(
                        exposure_id__in=shown[start : start + 5000], kind=Event.CLICK
                    )
                ),
                ("exposure_id",),
            )
            for start in range(0, len(shown), 5000)
        ]
    for clicks in batches:
        for exposure_id, at in clicks:
            found = owner.get(exposure_id)
            if found is not None and (
                exposure_id not in found.clicks or at < found.clicks[exposure_id]
            ):
                found.clicks[exposure_id] = at
    return dict(raws)


CLICK_PROBES = 5_000


def _clicks_of(exposure_ids: list[Any], before: dt.datetime | None) -> list[tuple[Any, int]]:
    """(exposure id, time of a click) of these exposures (ids as their 16 bytes), on
    PostgreSQL: one probe of the events' exposure index per id, kept so by ``OFFSET 0``.
    (Given the ids as a list, or a lateral join it may flatten, the planner hashes every
    click once there are a few thousand ids: 450-600 ms against 20-60 ms at 15,000 ids among
    900,000 clicks.)"""
    if not exposure_ids:
        return []
    qn = connection.ops.quote_name
    table = qn(Event._meta.db_table)
    dated = f"AND e.{qn('created_at')} < %s" if before is not None else ""
    sql = (
        f"SELECT uuid_send(shown.id), "
        f"(EXTRACT(EPOCH FROM e.{qn('created_at')}) * 1000000)::bigint "
        f"FROM unnest(%s::uuid[]) AS shown(id) CROSS JOIN LATERAL ("
        f"SELECT {qn('created_at')} FROM {table} e "
        f"WHERE e.{qn('exposure_id')} = shown.id AND e.{qn('kind')} = %s {dated} OFFSET 0) e"
    )
    found: list[tuple[Any, int]] = []
    with connection.cursor() as cursor:
        # In batches whose estimated cost stays below PostgreSQL's JIT threshold (compiling the
        # query would cost more than running it).
        for start in range(0, len(exposure_ids), CLICK_PROBES):
            batch = exposure_ids[start : start + CLICK_PROBES]
            ids = [uuid.UUID(bytes=bytes(exposure_id)) for exposure_id in batch]
            cursor.execute(sql, [ids, Event.CLICK, *([before] if before is not None else [])])
            found.extend(cursor.fetchall())
    return found


def touched_since(since: dt.datetime) -> set[str]:
    """Visitors with exposures, conversions or clicks created since ``since``, whose row
    (country, source, account) may have been written since, or whose rows were moved."""
    ids: set[str] = set()
    ids.update(Exposure.objects.filter(created_at__gte=since).values_list("visitor_id", flat=True))
    ids.update(
        Conversion.objects.filter(created_at__gte=since).values_list("visitor_id", flat=True)
    )
    ids.update(
        Event.objects.filter(
            created_at__gte=since, kind=Event.CLICK, exposure__isnull=False
        ).values_list("exposure__visitor_id", flat=True)
    )
    row_written = since - dt.timedelta(seconds=app_settings.visit_timeout_seconds)
    ids.update(Visitor.objects.filter(last_seen__gte=row_written).values_list("id", flat=True))
    ids.update(ReportVisitorState.objects.filter(dirty=True).values_list("visitor_id", flat=True))
    return ids


@dataclass
class Held:
    """What the cells hold of a visitor: the attributes they were computed with, or, after the
    visitor's rows were moved or deleted, the entries themselves."""

    attributes: Attributes
    pending: list[Entry] | None = None


def _held(visitor_ids: list[str]) -> dict[str, Held]:
    rows = ReportVisitorState.objects.filter(visitor_id__in=visitor_ids).values_list(
        "visitor_id", "country", "source", "staff", "dirty", "pending"
    )
    return {
        visitor_id: Held((country, source, staff), pending if dirty else None)
        for visitor_id, country, source, staff, dirty, pending in rows
    }


def _cutoff() -> dt.datetime | None:
    """The instant before which the cells hold every row (also while a rebuild is going on)."""
    rollup = ReportRollup.objects.filter(pk=1).first()
    if rollup is None:
        return None
    if rollup.rolled_up_to is not None:
        return rollup.rolled_up_to
    if rollup.build:
        return dt.datetime.fromisoformat(rollup.build["cutoff"])
    return None


def mark_changed(visitor_ids: Iterable[str]) -> None:
    """Call before these visitors' rows are moved to another visitor or deleted: keeps what the
    cells hold of them, for the next refresh (and any report before it) to take away."""
    cutoff = _cutoff()
    if cutoff is None:
        return
    ids = sorted(set(visitor_ids))
    held = _held(ids)
    keep = [
        visitor_id for visitor_id in ids if visitor_id in held and held[visitor_id].pending is None
    ]
    if not keep:
        return
    raws = load(visitor_ids=keep, before=cutoff)
    for visitor_id in keep:
        raw = raws.get(visitor_id, Raw())
        pending = entries_as_of(raw, None, window(), held[visitor_id].attributes)
        ReportVisitorState.objects.filter(visitor_id=visitor_id).update(dirty=True, pending=pending)


def _chunks(items: list[str], size: int = BATCH_SIZE) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Changes:
    """What a set of visitors' rows since the cutoff change: the cells to add, and each
    visitor's new state (None: nothing held any more)."""

    delta: dict[CellKey, list[Any]] = field(default_factory=dict)
    states: dict[str, Held | None] = field(default_factory=dict)
    changed: int = 0  # visitors whose part of the cells changed


def changes(
    visitor_ids: Iterable[str], since: dt.datetime, until: dt.datetime | None = None
) -> Changes:
    """The cells to add for these visitors: what their rows created before ``until`` give
    (every row with None), less what the cells hold of them (their rows before ``since``)."""
    found = Changes()
    span = window()
    for batch in _chunks(sorted(visitor_ids)):
        raws = load(visitor_ids=batch)
        held = _held(batch)
        for visitor_id in batch:
            raw = raws.get(visitor_id, Raw())
            state = held.get(visitor_id)
            if state is None:
                before: list[Entry] = []
            elif state.pending is not None:
                before = state.pending
            else:
                before = entries_as_of(raw, since, span, state.attributes)
            after = entries_as_of(raw, until, span)
            if before != after:
                found.changed += 1
                add_cells(found.delta, before, -1)
                add_cells(found.delta, after, 1)
            if not after:
                if state is not None:
                    found.states[visitor_id] = None
            elif state is None or state.pending is not None or state.attributes != raw.attributes:
                found.states[visitor_id] = Held(raw.attributes)
    return found


# Refreshing -------------------------------------------------------------------------------
def _settings_fingerprint() -> tuple[float, str]:
    return float(app_settings.ATTRIBUTION_WINDOW_DAYS), str(settings.TIME_ZONE)


def status() -> ReportRollup | None:
    """The roll-ups' status when they can serve the report with today's settings."""
    rollup = ReportRollup.objects.filter(pk=1, rolled_up_to__isnull=False).first()
    if rollup is None or (rollup.window_days, rollup.time_zone) != _settings_fingerprint():
        return None
    return rollup


def refresh(
    *,
    full: bool = False,
    part: int | None = None,
    build: str | None = None,
    processes: int | None = None,
) -> dict[str, Any]:
    """Bring the roll-ups up to now: the visitors with rows since the last refresh; or
    everyone (``full``, or when the settings they were built with changed), in parts that
    Celery workers take when there are any, or ``processes`` processes of this machine (see
    :mod:`.rollup_build`); or, with ``part`` and ``build``, one part of a rebuild. Returns
    what was done. A second refresh waits for the first."""
    from . import rollup_build

    if part is not None:
        return rollup_build.run_part(str(build), part)
    started = time.monotonic()
    now = timezone.now()
    with transaction.atomic():
        ReportRollup.objects.get_or_create(pk=1)
        rollup = ReportRollup.objects.select_for_update().get(pk=1)
        fingerprint = _settings_fingerprint()
        building = rollup.build is not None and tuple(rollup.build["settings"]) == fingerprint
        rebuild = full or (
            not building
            and (
                rollup.rolled_up_to is None or (rollup.window_days, rollup.time_zone) != fingerprint
            )
        )
        if not rebuild and building:
            rollup_build.resume_if_stalled(rollup)
            return rollup_build.progress(rollup)
        if not rebuild:
            assert rollup.rolled_up_to is not None
            cutoff = max(now - SLACK, rollup.rolled_up_to)
            found = changes(touched_since(rollup.rolled_up_to), rollup.rolled_up_to, cutoff)
            _save_states(found.states)
            _apply(found.delta)
            rollup.rolled_up_to = cutoff
            rollup.visitors = ReportVisitorState.objects.count()
            rollup.last_duration = round(time.monotonic() - started, 3)
            rollup.save()
            result = {"rebuilt": False, "visitors": found.changed, "seconds": rollup.last_duration}
            logger.info("personalization: report roll-ups refreshed: %s", result)
            return result
        plan = rollup_build.start(rollup, now, fingerprint)
    if processes and processes > 1:
        return rollup_build.run_here(plan, processes)
    return rollup_build.dispatch(plan)


def _save_states(states: dict[str, Held | None]) -> None:
    gone = [visitor_id for visitor_id, held in states.items() if held is None]
    for batch in _chunks(gone):
        ReportVisitorState.objects.filter(visitor_id__in=batch).delete()
    save_states({visitor_id: held.attributes for visitor_id, held in states.items() if held})


def save_states(attributes: dict[str, Attributes], *, new: bool = False) -> None:
    """Record the attributes the cells now hold these visitors with (nothing pending);
    ``new``: none of them has a state yet (a rebuild's part)."""
    if not attributes:
        return
    qn = connection.ops.quote_name
    upsert = (
        f"ON CONFLICT ({qn('visitor_id')}) DO UPDATE SET "
        + ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in ("country", "source", "staff", "dirty"))
        + f", {qn('pending')} = NULL"
    )
    insert_rows(
        ReportVisitorState._meta.db_table,
        ["visitor_id", "country", "source", "staff", "dirty"],
        ["text", "text", "text", "boolean", "boolean"],
        [(visitor_id, *found, False) for visitor_id, found in attributes.items()],
        "" if new else upsert,
    )


def cell_rows(delta: dict[CellKey, list[Any]]) -> list[tuple[Any, ...]]:
    """The non-empty cells, in key order (writers that add to the same cells take their locks
    in one order)."""
    return sorted(
        (*key, value[0], value[1], value[2]) for key, value in delta.items() if value[0] or value[1]
    )


CELL_COLUMNS = ["dimension", "key", "detail", "is_control", "measure", "prev_day", "day", "n",
                "revenue_cents", "label"]  # fmt: skip
CELL_TYPES = ["text", "text", "text", "boolean", "text", "integer", "integer", "bigint", "bigint",
              "text"]  # fmt: skip


def insert_rows(table: str, columns: list[str], types: list[str], rows: list[tuple[Any, ...]],
                suffix: str = "") -> None:  # fmt: skip
    """INSERT many rows, with ``suffix`` (ON CONFLICT ...). On PostgreSQL by COPY without a
    suffix, else a column of values each, sent in binary (no SQL text to build and parse);
    elsewhere chunks of VALUES."""
    qn = connection.ops.quote_name
    names = ", ".join(qn(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not suffix:
            with cursor.cursor.copy(f"COPY {qn(table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%b::{kind}[]" for kind in types)
            for start in range(0, len(rows), 50_000):
                chunk = rows[start : start + 50_000]
                cursor.cursor.execute(  # psycopg's own cursor, for %b
                    f"INSERT INTO {qn(table)} ({names}) SELECT * FROM unnest({arrays}) {suffix}",
                    [list(column) for column in zip(*chunk, strict=True)],
                )
            return
        placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
        size = max(1, 900 // len(columns))
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            cursor.execute(
                f"INSERT INTO {qn(table)} ({names}) "
                f"VALUES {', '.join([placeholders] * len(chunk))} {suffix}",
                [value for row in chunk for value in row],
            )


def _apply(delta: dict[CellKey, list[Any]]) -> None:
    """Add the delta to the cells with INSERT ... ON CONFLICT DO UPDATE, then drop empty ones."""
    rows = cell_rows(delta)
    if not rows:
        return
    qn = connection.ops.quote_name
    table = qn(ReportCell._meta.db_table)
    unique = ", ".join(qn(c) for c in CELL_COLUMNS[:7])
    upsert = (
        f"ON CONFLICT ({unique}) DO UPDATE SET "
        f"{qn('n')} = {table}.{qn('n')} + excluded.{qn('n')}, "
        f"{qn('revenue_cents')} = {table}.{qn('revenue_cents')} + excluded.{qn('revenue_cents')}, "
        f"{qn('label')} = CASE WHEN excluded.{qn('label')} > {table}.{qn('label')} "
        f"THEN excluded.{qn('label')} ELSE {table}.{qn('label')} END"
    )
    insert_rows(ReportCell._meta.db_table, CELL_COLUMNS, CELL_TYPES, rows, upsert)
    ReportCell.objects.filter(n=0, revenue_cents=0).delete()


def forget(visitor_ids: Iterable[str]) -> None:
    """Drop these visitors' roll-up state and keep their anonymous counts in the cells: for
    visitors deleted by the retention purge, whose old reports keep their figures. (A visitor
    deleted at their own request is ``mark_changed`` instead, which takes them out.)"""
    ids = sorted(set(visitor_ids))
    for batch in _chunks(ids):
        ReportVisitorState.objects.filter(visitor_id__in=batch).delete()


# Reading for a report ---------------------------------------------------------------------
Tally = dict[Slice, list[Any]]  # slice -> [n, revenue_cents, label]


@dataclass
class Totals:
    """The period's sums per slice, and per day for the whole groups."""

    tally: Tally
    daily: dict[tuple[int, bool, str], int]
    rolled_up_to: dt.datetime
    live_visitors: int

    def n(self, dimension: str, key: str, is_control: bool, measure: str, detail: str = "") -> int:
        return int(self.tally.get((dimension, key, detail, is_control, measure), (0,))[0])

    def cents(self, dimension: str, key: str, is_control: bool, measure: str) -> int:
        return int(self.tally.get((dimension, key, "", is_control, measure), (0, 0))[1])

    def keys(self, dimension: str) -> set[tuple[str, str]]:
        return {(s[1], s[2]) for s, v in self.tally.items() if s[0] == dimension and v[0]}


def measures_for(goal: str) -> list[str]:
    return [SEEN, CLICK, REACHED, COVER, conv(goal), click_among_converted(goal),
            click_or_conv(goal), REVENUE_SQUARES, ORDER_SQUARES, CROSS]  # fmt: skip


def totals(period: Period, goal: str, rollup: ReportRollup) -> Totals:
    """The sums for ``period`` and ``goal``: cells from the table, plus the live difference of
    the visitors active since the last refresh. Three queries and the live visitors' rows."""
    first, last = period.start.toordinal(), period.end.toordinal()
    measures = measures_for(goal)
    relevant = Q(measure__in=measures) & (~Q(dimension="orders") | Q(key=goal))
    rows = (
        ReportCell.objects.filter(relevant, day__gte=first, day__lte=last, prev_day__lt=first)
        .values_list("dimension", "key", "detail", "is_control", "measure")
        .annotate(total=Sum("n"), cents=Sum("revenue_cents"), name=Max("label"))
        .order_by()
    )
    tally: Tally = {tuple(row[:5]): [row[5], row[6], row[7]] for row in rows}
    daily_rows = (
        ReportCell.objects.filter(
            dimension="total", measure__in=[SEEN, conv(goal)], day__gte=first, day__lte=last
        )
        .values_list("day", "is_control", "measure")
        .annotate(total=Sum("n"))
        .order_by()
    )
    daily = {(day, is_control, measure): total for day, is_control, measure, total in daily_rows}
    assert rollup.rolled_up_to is not None
    live = changes(touched_since(rollup.rolled_up_to), rollup.rolled_up_to)
    for cell, (n, cents, label) in live.delta.items():
        dimension, key, detail, is_control, measure, prev, day = cell
        if measure not in measures or (dimension == "orders" and key != goal):
            continue
        if dimension == "total" and first <= day <= last:
            slot = (day, is_control, measure)
            daily[slot] = daily.get(slot, 0) + n
        if prev < first <= day <= last:
            found = tally.setdefault((dimension, key, detail, is_control, measure), [0, 0, ""])
            found[0] += n
            found[1] += cents
            found[2] = max(found[2] or "", label)
    return Totals(tally, daily, rollup.rolled_up_to, live.changed)
