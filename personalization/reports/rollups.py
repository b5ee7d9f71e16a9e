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

Refreshing is incremental and idempotent: each visitor's sets are kept
(:class:`~personalization.models.ReportVisitorState`), so a refresh recomputes only the
visitors with activity since the last one, from the raw rows, and adds the difference. The
report adds, the same way and without writing, the visitors active since the last refresh, so
today's figures are always live. A change of ``ATTRIBUTION_WINDOW_DAYS`` or ``TIME_ZONE``
rebuilds everything. A visitor shown content of both groups is left out of both; only the
days they were shown anything are kept, to count them as excluded.

Retention: when inactive visitors are purged, their per-visitor state goes with them but the
anonymous cells stay, so older reports keep their figures. A visitor who asks to be deleted
(``DELETE api/me/``) is taken out of the cells too.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q, Sum
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

logger = logging.getLogger(__name__)

ANY = "any"
PURCHASE = "purchase"
SEEN = "seen"
CLICK = "click"
REACHED = "reached"
COVER = "cover"
# The dimension of visitors shown content of both groups, left out of both.
EXCLUDED = "excluded"
BATCH_SIZE = 1000
# Rows may be committed a little after the time they carry (a long request); visitors with
# rows this much older than the last refresh are looked at again, which is harmless.
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
@dataclass
class Raw:
    """A visitor's rows, as the refresh reads them."""

    exposures: list[tuple[Any, ...]] = field(default_factory=list)
    conversions: list[tuple[Any, ...]] = field(default_factory=list)
    country: str = ""
    source: str = ""
    staff: bool = False


_days_of_quarter_hours: dict[tuple[str, int], int] = {}


def day_number(moment: dt.datetime) -> int:
    """The shop-time date of ``moment`` as a proleptic ordinal.

    Every time zone's offsets, and so its local midnights, fall on whole quarter hours of
    UTC, so the date is looked up once per quarter hour (the refresh reads millions of rows)."""
    if not (settings.USE_TZ and timezone.is_aware(moment)):
        return moment.date().toordinal()
    zone = str(settings.TIME_ZONE)
    quarter = int(moment.timestamp() // 900)
    day = _days_of_quarter_hours.get((zone, quarter))
    if day is None:
        local = timezone.localtime(moment, timezone.get_default_timezone())
        day = _days_of_quarter_hours[(zone, quarter)] = local.date().toordinal()
        if len(_days_of_quarter_hours) > 200_000:
            _days_of_quarter_hours.clear()
    return day


def visitor_entries(raw: Raw, clicked: set[Any], window: dt.timedelta) -> list[Entry]:
    """The visitor's sets of days, per slice and measure (see the module's docstring).

    ``raw.exposures`` holds (id, placement, kind, content, label, segment, is_control,
    created_at); ``raw.conversions`` (kind, goal, revenue, created_at); ``clicked`` the ids
    of the exposures that were clicked. A visitor shown content of both groups counts in
    neither: only the days they were shown anything, under ``EXCLUDED``. A conversion is
    attributed to the exposures strictly before it, within the window."""
    if raw.staff or not raw.exposures:
        return []
    if len({row[6] for row in raw.exposures}) > 1:
        days = sorted({day_number(row[7]) for row in raw.exposures})
        return [[EXCLUDED, "", "", False, SEEN, days, 0, ""]]
    conversions = sorted(raw.conversions, key=lambda row: row[3])
    times = [row[3] for row in conversions]
    keys_of = [goal_keys(row[0], row[1]) for row in conversions]
    covers: list[dict[bool, set[int]]] = [{False: set(), True: set()} for _ in conversions]
    slices: dict[tuple[str, str, str, bool], dict[str, set[int]]] = defaultdict(
        lambda: defaultdict(set)
    )
    labels: dict[tuple[str, str], str] = {}
    for exposure_id, placement, kind, content, label, segment, is_control, at in raw.exposures:
        day = day_number(at)
        first = bisect.bisect_right(times, at)  # an exposure at the conversion's instant: no
        last = bisect.bisect_right(times, at + window)
        goals: set[str] = set()
        for index in range(first, last):
            goals.update(keys_of[index])
            covers[index][is_control].add(day)
        was_clicked = exposure_id in clicked
        targets = [
            ("total", "", ""),
            ("country", raw.country, ""),
            ("source", raw.source, ""),
            ("placement", placement, ""),
        ]
        if not is_control:
            targets += [("content", placement, content), ("segment", segment, "")]
            targets.append(("clicks", ANY, ""))
            if kind == Exposure.RECOMMENDATION:
                targets.append(("clicks", Exposure.RECOMMENDATION, ""))
            labels[(placement, content)] = max(label, labels.get((placement, content), ""))
        for dimension, key, detail in targets:
            sets = slices[(dimension, key, detail, is_control)]
            sets[SEEN].add(day)
            for goal in goals:
                sets[conv(goal)].add(day)
            if was_clicked and dimension in ("content", "clicks"):
                sets[CLICK].add(day)

    entries: list[Entry] = []
    for (dimension, key, detail, is_control), sets in slices.items():
        label = labels.get((key, detail), "") if dimension == "content" else ""
        if dimension == "clicks":
            clicks = sets.get(CLICK, set())
            for measure in [m for m in sets if m.startswith("conv:")]:
                goal = measure[len("conv:") :]
                if clicks:
                    sets[click_among_converted(goal)] = clicks
                sets[click_or_conv(goal)] = clicks | sets[measure]
        for measure, days in sets.items():
            entries.append([dimension, key, detail, is_control, measure, sorted(days), 0, label])
    reached: dict[tuple[str, bool], set[int]] = defaultdict(set)
    for (_kind, goal, revenue, _at), keys, cover in zip(conversions, keys_of, covers, strict=True):
        cents = int((Decimal(revenue or 0) * 100).to_integral_value())
        for is_control, days in cover.items():
            if not days:
                continue
            reached[(goal, is_control)] |= days
            for key in keys:
                entries.append(["orders", key, "", is_control, COVER, sorted(days), cents, ""])
    for (goal, is_control), days in reached.items():
        entries.append(["goal", goal, "", is_control, REACHED, sorted(days), 0, ""])
    return entries


def add_cells(
    cells: dict[CellKey, list[Any]], entries: Iterable[Entry], sign: int = 1
) -> dict[CellKey, list[Any]]:
    """Add (or with ``sign=-1`` take away) the cells of ``entries`` to ``cells``:
    key -> [n, revenue_cents, label]."""
    for dimension, key, detail, is_control, measure, days, cents, label in entries:
        prev = 0
        for day in days:
            cell = cells.get((dimension, key, detail, is_control, measure, prev, day))
            if cell is None:
                cell = cells[(dimension, key, detail, is_control, measure, prev, day)] = [0, 0, ""]
            cell[0] += sign
            cell[1] += sign * cents
            if label > cell[2]:
                cell[2] = label
            prev = day
    return cells


# Reading the raw rows ---------------------------------------------------------------------
def load(
    visitor_ids: list[str] | None = None, id_range: tuple[str, str] | None = None
) -> dict[str, list[Entry]]:
    """Entries of the visitors in ``visitor_ids`` or in the (inclusive) ``id_range``."""
    window = dt.timedelta(days=float(app_settings.ATTRIBUTION_WINDOW_DAYS))

    def of(field_name: str) -> Q:
        if visitor_ids is not None:
            return Q(**{f"{field_name}__in": visitor_ids})
        assert id_range is not None
        return Q(**{f"{field_name}__gte": id_range[0], f"{field_name}__lte": id_range[1]})

    raws: dict[str, Raw] = defaultdict(Raw)
    exposure_rows = (
        Exposure.objects.filter(of("visitor_id")).order_by().values_list(*EXPOSURE_FIELDS)
    )
    for visitor_id, *row in exposure_rows:
        raws[visitor_id].exposures.append(tuple(row))
    if not raws:
        return {}
    conversion_rows = (
        Conversion.objects.filter(of("visitor_id"))
        .order_by()
        .values_list("visitor_id", "kind", "goal", "revenue", "created_at")
    )
    for visitor_id, *row in conversion_rows:
        if visitor_id in raws:
            raws[visitor_id].conversions.append(tuple(row))
    visitor_rows = (
        Visitor.objects.filter(of("id"))
        .order_by()
        .values_list("id", "country_code", "first_source", "user__is_staff", "user__is_superuser")
    )
    for visitor_id, country, source, is_staff, is_superuser in visitor_rows:
        if visitor_id in raws:
            raw = raws[visitor_id]
            raw.country, raw.source, raw.staff = country, source, bool(is_staff or is_superuser)
    # By the exposures' ids (an index), not by a join on their visitors (a scan of events).
    shown = [row[0] for raw in raws.values() for row in raw.exposures]
    clicked: set[Any] = set()
    for start in range(0, len(shown), 5000):
        clicked.update(
            Event.objects.filter(exposure_id__in=shown[start : start + 5000], kind=Event.CLICK)
            .order_by()
            .values_list("exposure_id", flat=True)
        )
    return {visitor_id: visitor_entries(raw, clicked, window) for visitor_id, raw in raws.items()}


def touched_since(since: dt.datetime) -> set[str]:
    """Visitors with exposures, conversions or clicks since ``since``, or whose row (country,
    source, account) may have been written since."""
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


def mark_changed(visitor_ids: Iterable[str]) -> None:
    """Have the next refresh (and any report before it) recompute these visitors, whose rows
    were moved to another visitor or deleted whatever their dates."""
    ReportVisitorState.objects.bulk_create(
        [ReportVisitorState(visitor_id=visitor_id, dirty=True) for visitor_id in set(visitor_ids)],
        update_conflicts=True,
        unique_fields=["visitor_id"],
        update_fields=["dirty"],
    )


def _stored(visitor_ids: list[str]) -> dict[str, tuple[list[Entry], bool]]:
    """visitor id -> (entries, marked changed)."""
    rows = ReportVisitorState.objects.filter(visitor_id__in=visitor_ids).values_list(
        "visitor_id", "data", "dirty"
    )
    return {visitor_id: (data.get("entries", []), dirty) for visitor_id, data, dirty in rows}


def _chunks(items: list[str], size: int = BATCH_SIZE) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def changes(visitor_ids: Iterable[str]) -> tuple[dict[CellKey, list[Any]], dict[str, list[Entry]]]:
    """The cells to add for these visitors' activity not rolled up yet, and their new entries."""
    delta: dict[CellKey, list[Any]] = {}
    fresh: dict[str, list[Entry]] = {}
    for batch in _chunks(sorted(visitor_ids)):
        new = load(visitor_ids=batch)
        old = _stored(batch)
        for visitor_id in batch:
            before, dirty = old.get(visitor_id, ([], False))
            after = new.get(visitor_id, [])
            if before == after and not dirty:
                continue
            add_cells(delta, before, -1)
            add_cells(delta, after, 1)
            fresh[visitor_id] = after
    return delta, fresh


# Refreshing -------------------------------------------------------------------------------
def _settings_fingerprint() -> tuple[float, str]:
    return float(app_settings.ATTRIBUTION_WINDOW_DAYS), str(settings.TIME_ZONE)


def status() -> ReportRollup | None:
    """The roll-ups' status when they can serve the report with today's settings."""
    rollup = ReportRollup.objects.filter(pk=1, rolled_up_to__isnull=False).first()
    if rollup is None or (rollup.window_days, rollup.time_zone) != _settings_fingerprint():
        return None
    return rollup


def refresh(*, full: bool = False) -> dict[str, Any]:
    """Bring the roll-ups up to now: the visitors with activity since the last refresh, or
    everyone (``full``, or when the settings they were built with changed). Returns what was
    done. Runs in one transaction; a second refresh waits for the first."""
    started = time.monotonic()
    now = timezone.now()
    with transaction.atomic():
        ReportRollup.objects.get_or_create(pk=1)
        rollup = ReportRollup.objects.select_for_update().get(pk=1)
        fingerprint = _settings_fingerprint()
        rebuild = (
            full
            or rollup.rolled_up_to is None
            or (rollup.window_days, rollup.time_zone) != fingerprint
        )
        if rebuild:
            visitors = _rebuild()
            rollup.rebuilt_at = now
        else:
            assert rollup.rolled_up_to is not None
            touched = touched_since(rollup.rolled_up_to - SLACK)
            delta, fresh = changes(touched)
            _save_states(fresh)
            _apply(delta)

            visitors = len(fresh)
        rollup.rolled_up_to = now
        rollup.window_days, rollup.time_zone = fingerprint
        rollup.visitors = ReportVisitorState.objects.count()
        rollup.last_duration = round(time.monotonic() - started, 3)
        if rebuild:
            rollup.rebuild_duration = rollup.last_duration
        rollup.save()
    result = {"rebuilt": rebuild, "visitors": visitors, "seconds": rollup.last_duration}
    logger.info("personalization: report roll-ups refreshed: %s", result)
    return result


def _rebuild() -> int:
    """Recompute every visitor's entries and every cell, batch by batch of visitor ids."""
    ReportCell.objects.all()._raw_delete(connection.alias)
    ReportVisitorState.objects.all()._raw_delete(connection.alias)
    cells: dict[CellKey, list[Any]] = {}
    visitors = 0
    ids = Exposure.objects.order_by("visitor_id").values_list("visitor_id", flat=True).distinct()
    batch: list[str] = []

    def flush() -> None:
        nonlocal visitors
        entries = load(id_range=(batch[0], batch[-1]))
        for visitor_entries_ in entries.values():
            add_cells(cells, visitor_entries_)
        states = [
            ReportVisitorState(visitor_id=visitor_id, data={"entries": found})
            for visitor_id, found in entries.items()
            if found
        ]
        ReportVisitorState.objects.bulk_create(states, batch_size=2000)
        visitors += len(states)
        batch.clear()

    for visitor_id in ids.iterator(chunk_size=5000):
        batch.append(visitor_id)
        if len(batch) >= BATCH_SIZE:
            flush()
    if batch:
        flush()
    ReportCell.objects.bulk_create(
        (_cell(key, value) for key, value in cells.items() if value[0] or value[1]),
        batch_size=5000,
    )
    return visitors


def _cell(key: CellKey, value: list[Any]) -> ReportCell:
    dimension, name, detail, is_control, measure, prev_day, day = key
    return ReportCell(
        dimension=dimension, key=name, detail=detail, is_control=is_control, measure=measure,
        prev_day=prev_day, day=day, n=value[0], revenue_cents=value[1], label=value[2],
    )  # fmt: skip


def _save_states(fresh: dict[str, list[Entry]]) -> None:
    gone = [visitor_id for visitor_id, entries in fresh.items() if not entries]
    ReportVisitorState.objects.filter(visitor_id__in=gone).delete()
    ReportVisitorState.objects.bulk_create(
        [
            ReportVisitorState(visitor_id=visitor_id, data={"entries": entries})
            for visitor_id, entries in fresh.items()
            if entries
        ],
        update_conflicts=True,
        unique_fields=["visitor_id"],
        update_fields=["data", "dirty"],
        batch_size=1000,
    )


def _apply(delta: dict[CellKey, list[Any]]) -> None:
    """Add the delta to the cells with INSERT ... ON CONFLICT DO UPDATE, then drop empty ones."""
    rows = [(*k, v[0], v[1], v[2]) for k, v in delta.items() if v[0] or v[1]]
    if not rows:
        return
    qn = connection.ops.quote_name
    table = qn(ReportCell._meta.db_table)
    columns = ["dimension", "key", "detail", "is_control", "measure", "prev_day", "day", "n",
               "revenue_cents", "label"]  # fmt: skip
    unique = ", ".join(qn(c) for c in columns[:7])
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(qn(c) for c in columns)}) "
                f"VALUES {', '.join([placeholders] * len(chunk))} "
                f"ON CONFLICT ({unique}) DO UPDATE SET "
                f"{qn('n')} = {table}.{qn('n')} + excluded.{qn('n')}, "
                f"{qn('revenue_cents')} = {table}.{qn('revenue_cents')} "
                f"+ excluded.{qn('revenue_cents')}, "
                f"{qn('label')} = CASE WHEN excluded.{qn('label')} > {table}.{qn('label')} "
                f"THEN excluded.{qn('label')} ELSE {table}.{qn('label')} END",
                [value for row in chunk for value in row],
            )
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
            click_or_conv(goal)]  # fmt: skip


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
    tally: Tally = {tuple(row[:5]): [row[5], row[6], row[7]] for row in rows}  # type: ignore[misc]
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
    delta, fresh = changes(touched_since(rollup.rolled_up_to - SLACK))
    for cell, (n, cents, label) in delta.items():
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
    return Totals(tally, daily, rollup.rolled_up_to, len(fresh))
