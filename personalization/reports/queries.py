"""The conversion report: who was shown what in a period, and who converted after it.

Definitions (docs/report.md repeats them):

- **Population**: exposures whose ``created_at`` lies in the period (whole days, shop time).
  Exposures of visitors whose account (``Visitor.user``) is staff or superuser are left out;
  exposures whose Visitor row does not exist yet still count. Bots and opted-out visitors never
  have exposures.
- **Groups**: a visitor is *personalized* when they have an exposure with ``is_control=False``
  in the period, *control* when they have one with ``is_control=True``; each visitor counts
  once. A visitor with exposures of both groups (at any time: a device that logged into an
  account of the other group, history from before groups were kept per person) counts in
  neither, and in ``excluded_visitors`` when exposed in the period.
- **Attribution**: a conversion of the report's goal counts for a group when the same visitor
  has an exposure of that group in the period strictly before it, at most
  ``ATTRIBUTION_WINDOW_DAYS`` earlier:
  ``exposure.created_at < conversion.created_at <= exposure.created_at + window`` (content
  shown with or after the conversion, such as an order confirmation, never earns it). The
  conversion may fall after the period's end, within the window. The goal ``"purchase"`` means
  orders (conversions of kind purchase), ``"any"`` every conversion, any other name the
  conversions of that ``Conversion.goal``.
- **Per group**: ``visitors``; ``converted_visitors``, those with an attributed conversion;
  ``conversion_rate`` = 100 × converted_visitors / visitors; ``orders``, attributed
  conversions, each counted once however many exposures precede it; ``revenue``, their sum;
  ``average_order_value`` = revenue / orders; ``revenue_per_visitor`` = revenue / visitors.
- **Breakdowns** (placement, content, segment, first referrer source, country, day): a
  visitor counts in a slice when exposed in it, and converted when a conversion is attributed
  to one of their exposures in that slice. ``by_goal`` counts, per goal name, the visitors of
  each group with a conversion of that goal attributed to them (rates over the group's
  visitors). ``clicks`` compares, among personalized visitors shown recommendations, those
  who clicked one with those who did not, converted meaning a conversion attributed to their
  recommendation exposures (``clicks_any``: any personalized content).

Each part is one small function over two querysets (the population's exposures and the
goal's conversions), so a later source, such as daily roll-ups, can replace any of them. The
whole report costs a fixed number of queries, whatever the number of visitors.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from ..conf import app_settings
from ..models import Conversion, Event, Exposure, ReportRollup, Visitor
from . import rollups, staff, stats
from .period import Period

logger = logging.getLogger("personalization")

PURCHASE = "purchase"
ANY_GOAL = "any"
ANY_KIND = "any"
EVERYONE = "(everyone)"
UNKNOWN = "(unknown)"
CENT = Decimal("0.01")

Counts = dict[tuple[Hashable, bool], tuple[int, int]]


class ReportTimeout(Exception):
    """The report took longer than REPORT_TIMEOUT_SECONDS and was cancelled."""


class ReportPreparing(Exception):
    """The roll-ups the report needs are being built, and the raw rows are too many to read
    meanwhile. ``progress`` is the parts done ("3/25"), or empty while the build starts."""

    retry_after = 30  # seconds, for the Retry-After header

    def __init__(self, progress: str = "") -> None:
        super().__init__(progress)
        self.progress = progress

    def message(self) -> str:
        """What staff read meanwhile."""
        from django.utils.translation import gettext as _

        if self.progress:
            return _(
                "The report is being prepared: its daily roll-ups are being built from every "
                "exposure (%(progress)s parts done). Try again in a minute or two."
            ) % {"progress": self.progress}
        return _(
            "The report is being prepared: its daily roll-ups are being built from every "
            "exposure. Try again in a minute or two."
        )


def build_report(period: Period, goal: str = PURCHASE) -> dict[str, Any]:
    """The report for ``period`` and ``goal`` as the JSON-ready dict of the contract.

    From the roll-ups when they serve the current settings. When they do not (a new install,
    a changed attribution window), their build is asked for, and meanwhile the report reads
    the raw rows if there are at most REPORT_RAW_MAX_EXPOSURES exposures, else raises
    ReportPreparing: reading millions of raw rows would take minutes. Raises ReportTimeout
    when PostgreSQL cancels it after REPORT_TIMEOUT_SECONDS."""
    rollup = rollups.status() if app_settings.REPORT_ROLLUPS else None
    if app_settings.REPORT_ROLLUPS and rollup is None:
        from .. import jobs
        from .rollup_build import status_text

        jobs.enqueue("rollups", dedupe_seconds=300)
        limit = int(app_settings.REPORT_RAW_MAX_EXPOSURES)
        if Exposure.objects.order_by()[: limit + 1].count() > limit:
            raise ReportPreparing(status_text(ReportRollup.objects.filter(pk=1).first()))
    try:
        with analytic_session():
            if rollup is not None:
                return _from_rollups(period, goal, rollup)
            return _build_report(period, goal)
    except OperationalError as exc:
        if "statement timeout" in str(exc):
            raise ReportTimeout(str(exc)) from exc
        raise


@contextmanager
def analytic_session() -> Iterator[None]:
    """One read transaction for the report; on PostgreSQL with a time limit, and without JIT
    compilation, which costs more (0.5–0.8 s a query, measured) than it saves here."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            timeout_ms = int(float(app_settings.REPORT_TIMEOUT_SECONDS) * 1000)
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)]
                )
        yield


def _build_report(period: Period, goal: str) -> dict[str, Any]:
    ensure_statistics()
    window = dt.timedelta(days=app_settings.ATTRIBUTION_WINDOW_DAYS)
    everyone = population(period)
    exposures = everyone.exclude(of_both_groups())
    conversions = goal_conversions(goal)
    flagged = with_conversion_flag(exposures, conversions, window)
    visitors = group_visitors(flagged)
    return assemble(
        period,
        goal,
        visitors=visitors,
        orders=group_orders(exposures, conversions, window, period),
        placements=counts_by(flagged, "placement"),
        contents=by_content(flagged),
        segments=counts_by(flagged.filter(is_control=False), "segment"),
        sources=counts_by(flagged, _visitor_field("first_source")),
        countries=counts_by(flagged, _visitor_field("country_code")),
        goals=by_goal(exposures, window, period),
        clicks_recommendation=clicks(flagged, Exposure.RECOMMENDATION),
        clicks_any=clicks(flagged, None),
        days=daily(flagged),
        excluded=excluded_visitors(everyone),
        source={"source": "raw"},
    )


def _from_rollups(period: Period, goal: str, rollup: Any) -> dict[str, Any]:
    """The same report from the daily roll-ups (``rollups``), plus live activity."""
    found = rollups.totals(period, goal, rollup)
    measure = rollups.conv(goal)

    def counts(dimension: str, groups: Iterable[bool] = (False, True)) -> Counts:
        return {
            (key, is_control): (
                found.n(dimension, key, is_control, rollups.SEEN),
                found.n(dimension, key, is_control, measure),
            )
            for key, _ in found.keys(dimension)
            for is_control in groups
            if found.n(dimension, key, is_control, rollups.SEEN)
        }

    def clicked(kind: str) -> tuple[int, int, int, int]:
        def n(name: str) -> int:
            return found.n("clicks", kind, False, name)

        both = n(rollups.click_among_converted(goal)) + n(measure) - n(rollups.click_or_conv(goal))
        return n(rollups.SEEN), n(measure), n(rollups.CLICK), both

    contents = [
        {
            "placement": key,
            "content": detail,
            "label": found.tally[("content", key, detail, False, rollups.SEEN)][2],
            "visitors": found.n("content", key, False, rollups.SEEN, detail),
            "converted_visitors": found.n("content", key, False, measure, detail),
            "clicked_visitors": found.n("content", key, False, rollups.CLICK, detail),
        }
        for key, detail in found.keys("content")
        if found.n("content", key, False, rollups.SEEN, detail)
    ]
    reached = rollups.REACHED
    goals = [
        (key, found.n("goal", key, False, reached), found.n("goal", key, True, reached))
        for key, _ in found.keys("goal")
    ]
    by_day: dict[dt.date, dict[bool, tuple[int, int]]] = defaultdict(dict)
    for (day, is_control, name), total in found.daily.items():
        seen, converted = by_day[dt.date.fromordinal(day)].get(is_control, (0, 0))
        if name == rollups.SEEN:
            seen += total
        else:
            converted += total
        by_day[dt.date.fromordinal(day)][is_control] = (seen, converted)
    return assemble(
        period,
        goal,
        visitors={
            is_control: (
                found.n("total", "", is_control, rollups.SEEN),
                found.n("total", "", is_control, measure),
            )
            for is_control in (False, True)
        },
        orders={
            is_control: Revenue(
                found.n("orders", goal, is_control, rollups.COVER),
                Decimal(found.cents("orders", goal, is_control, rollups.COVER)) / 100,
                found.cents("orders", goal, is_control, rollups.REVENUE_SQUARES),
                found.n("orders", goal, is_control, rollups.COVER)
                + found.cents("orders", goal, is_control, rollups.ORDER_SQUARES),
                found.cents("orders", goal, is_control, rollups.COVER)
                + found.cents("orders", goal, is_control, rollups.CROSS),
            )
            for is_control in (False, True)
        },
        placements=counts("placement"),
        contents=contents,
        segments=counts("segment", (False,)),
        sources=counts("source"),
        countries=counts("country"),
        goals=[row for row in goals if row[1] or row[2]],
        clicks_recommendation=clicked(Exposure.RECOMMENDATION),
        clicks_any=clicked(rollups.ANY),
        days=by_day,
        excluded=found.n(rollups.EXCLUDED, "", False, rollups.SEEN),
        source={
            "source": "rollups",
            "rolled_up_to": found.rolled_up_to.isoformat(),
            "live_visitors": found.live_visitors,
        },
    )


def assemble(
    period: Period,
    goal: str,
    *,
    visitors: dict[bool, tuple[int, int]],
    orders: dict[bool, Revenue],
    placements: Counts,
    contents: list[dict[str, Any]],
    segments: Counts,
    sources: Counts,
    countries: Counts,
    goals: list[tuple[str, int, int]],
    clicks_recommendation: tuple[int, int, int, int],
    clicks_any: tuple[int, int, int, int],
    days: dict[dt.date, dict[bool, tuple[int, int]]],
    excluded: int,
    source: dict[str, Any],
) -> dict[str, Any]:
    """The report's JSON from its counts, whichever source they came from."""
    p_n, p_conv = visitors[False]
    c_n, c_conv = visitors[True]
    lift = stats.lift(p_conv, p_n, c_conv, c_n)
    goal_rows = _goal_rows(goals, p_n, c_n)
    return {
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "goal": goal,
        "attribution_window_days": app_settings.ATTRIBUTION_WINDOW_DAYS,
        "generated_at": timezone.now().isoformat(),
        **source,
        "personalized": _group(p_n, p_conv, orders[False]),
        "control": _group(c_n, c_conv, orders[True]),
        "revenue_per_visitor_lift": stats.mean_lift(
            p_n,
            float(orders[False].revenue * 100),
            orders[False].revenue_squares,
            c_n,
            float(orders[True].revenue * 100),
            orders[True].revenue_squares,
        ),
        "lift": lift,
        "verdict": lift["verdict"],
        "probability_better": lift["probability_better"],
        "visitors_needed": lift["visitors_needed"],
        "planned_visitors": lift["planned_visitors"],
        "srm": stats.srm(p_n, c_n),
        "excluded_visitors": excluded,
        "enough_data": stats.enough_data(p_n, p_conv, c_n, c_conv),
        "method": lift["method"],
        "by_placement": _compared(_both_groups("placement", placements), _split_counts),
        "by_content": _with_interval(_content_rows(contents)),
        "by_segment": _with_interval(_segment_rows(segments)),
        "by_referrer": _compared(_both_groups("source", sources), _split_counts),
        "by_country": _compared(_both_groups("country", countries), _split_counts),
        "by_goal": _compared(
            goal_rows,
            lambda row: (
                row["personalized_converted_visitors"],
                p_n,
                row["control_converted_visitors"],
                c_n,
            ),
        ),
        "clicks": _clicks_entry(Exposure.RECOMMENDATION, *clicks_recommendation),
        "clicks_any": _clicks_entry(ANY_KIND, *clicks_any),
        "daily": _daily_rows(period, days),
    }


# Statistics for the planner ---------------------------------------------------------------
# A table is analysed before the raw report reads it when more than this share of its rows
# (and at least STALE_ROWS rows) changed since its statistics were taken.
STALE_SHARE = 0.5
STALE_ROWS = 1000
# How long ANALYZE may wait for a lock (another ANALYZE or VACUUM of the table) before the
# report goes on without it.
LOCK_TIMEOUT = "2s"


def ensure_statistics() -> None:
    """On PostgreSQL, analyse the report's tables whose statistics are missing or far behind.

    The raw report's lookups (the exposures and conversions of one visitor around one
    instant) are planned from the tables' statistics. A table filled in bulk since it was
    last analysed (an import, ``personalization_synthetic``, a young shop's first busy day,
    or a server without autovacuum) looks almost empty to the planner, which then scans a
    time range per lookup or loops over every click for every exposure: 52 s instead of 3 s
    at 100,000 exposures, measured. ANALYZE samples a fixed number of rows (about a second
    at millions); it waits at most LOCK_TIMEOUT for a lock and is skipped on any error."""
    if connection.vendor != "postgresql":
        return
    models = (Exposure, Conversion, Event, Visitor)
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) "
            "AND schemaname = ANY(current_schemas(false)) "
            "AND n_mod_since_analyze > GREATEST(%s, n_live_tup * %s)",
            [tables, STALE_ROWS, STALE_SHARE],
        )
        stale = [name for (name,) in cursor.fetchall()]
    for table in stale:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                    [LOCK_TIMEOUT],
                )
                previous = cursor.fetchone()[0]
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
        except DatabaseError:
            logger.warning("personalization: could not analyse %s for the report", table)


# Sources ---------------------------------------------------------------------------------
def population(period: Period) -> QuerySet[Exposure]:
    """Exposures in the period, without those of staff accounts."""
    exposures = Exposure.objects.filter(
        created_at__gte=period.start_at, created_at__lt=period.end_at
    ).order_by()
    of_staff = staff.is_staff_q()
    if of_staff is None:
        return exposures
    return exposures.exclude(
        Exists(Visitor.objects.filter(pk=OuterRef("visitor_id")).filter(of_staff))
    )


def of_both_groups() -> Q:
    """The exposure's visitor was also shown content of the other group, at any time. One
    probe of the (visitor, is_control, created_at) index per exposure."""

    def shown(is_control: bool) -> Exists:
        rows = Exposure.objects.filter(visitor_id=OuterRef("visitor_id"), is_control=is_control)
        return Exists(rows.order_by())

    return Q(is_control=False) & Q(shown(True)) | Q(is_control=True) & Q(shown(False))


def excluded_visitors(exposures: QuerySet[Exposure]) -> int:
    """The visitors of these exposures who were shown content of both groups, and so count in
    neither. One query."""
    excluded: int = exposures.filter(of_both_groups()).aggregate(n=_visitors())["n"]
    return excluded


def goal_conversions(goal: str) -> QuerySet[Conversion]:
    """The conversions that count for ``goal``: orders, every one, or those of that name."""
    conversions = Conversion.objects.order_by()
    if goal == PURCHASE:
        return conversions.filter(kind=Conversion.PURCHASE)
    if goal == ANY_GOAL:
        return conversions
    return conversions.filter(goal=goal)


def with_conversion_flag(
    exposures: QuerySet[Exposure], conversions: QuerySet[Conversion], window: dt.timedelta
) -> QuerySet[Exposure]:
    """The exposures, each with ``converted``: a conversion follows it (strictly later)
    within the window."""
    following = conversions.filter(
        visitor_id=OuterRef("visitor_id"),
        created_at__gt=OuterRef("created_at"),
        created_at__lte=OuterRef("created_at") + window,
    )
    return exposures.annotate(converted=Exists(following))


def attributed_conversions(
    exposures: QuerySet[Exposure],
    conversions: QuerySet[Conversion],
    window: dt.timedelta,
    period: Period,
) -> QuerySet[Conversion]:
    """Conversions that may follow the period's exposures, each flagged ``personalized`` and
    ``control``: whether an exposure of that group precedes it (strictly) within the window."""

    def preceded_by(is_control: bool) -> Exists:
        return Exists(
            exposures.filter(
                is_control=is_control,
                visitor_id=OuterRef("visitor_id"),
                created_at__lt=OuterRef("created_at"),
                created_at__gte=OuterRef("created_at") - window,
            )
        )

    return conversions.filter(
        created_at__gte=period.start_at, created_at__lt=period.end_at + window
    ).annotate(personalized=preceded_by(False), control=preceded_by(True))


# Groups ----------------------------------------------------------------------------------
def group_visitors(flagged: QuerySet[Exposure]) -> dict[bool, tuple[int, int]]:
    """is_control -> (visitors, converted visitors). One query."""
    totals = flagged.aggregate(
        personalized_visitors=_visitors(Q(is_control=False)),
        personalized_converted=_visitors(Q(is_control=False, converted=True)),
        control_visitors=_visitors(Q(is_control=True)),
        control_converted=_visitors(Q(is_control=True, converted=True)),
    )
    return {
        False: (totals["personalized_visitors"], totals["personalized_converted"]),
        True: (totals["control_visitors"], totals["control_converted"]),
    }


def _visitors(condition: Q | None = None) -> Count:
    """Distinct visitors, among the rows that meet ``condition``."""
    return Count("visitor_id", distinct=True, filter=condition)


def group_orders(
    exposures: QuerySet[Exposure],
    conversions: QuerySet[Conversion],
    window: dt.timedelta,
    period: Period,
) -> dict[bool, Revenue]:
    """is_control -> attributed conversions, their revenue, and the per-visitor sums of
    squares. One query; the raw rows are read for small shops only, a row a conversion."""
    sums: dict[bool, dict[str, list[int]]] = {False: defaultdict(lambda: [0, 0]),
                                              True: defaultdict(lambda: [0, 0])}  # fmt: skip
    rows = attributed_conversions(exposures, conversions, window, period).values_list(
        "visitor_id", "revenue", "personalized", "control"
    )  # type: ignore[misc]  # annotations the plugin does not follow through the function
    for visitor_id, revenue, personalized, control in rows:
        cents = int((Decimal(revenue or 0) * 100).to_integral_value())
        for is_control, attributed in ((False, personalized), (True, control)):
            if attributed:
                found = sums[is_control][visitor_id]
                found[0] += cents
                found[1] += 1
    result = {}
    for is_control, visitors in sums.items():
        result[is_control] = Revenue(
            orders=sum(count for _, count in visitors.values()),
            revenue=Decimal(sum(cents for cents, _ in visitors.values())) / 100,
            revenue_squares=sum(cents * cents for cents, _ in visitors.values()),
            order_squares=sum(count * count for _, count in visitors.values()),
            cross=sum(cents * count for cents, count in visitors.values()),
        )
    return result


@dataclass(frozen=True)
class Revenue:
    """A group's attributed conversions and revenue, with the per-visitor sums the intervals
    need: Σ revenue², Σ conversions² and Σ revenue × conversions over its visitors (in cents)."""

    orders: int
    revenue: Decimal
    revenue_squares: int = 0
    order_squares: int = 0
    cross: int = 0


def _group(visitors: int, converted: int, found: Revenue) -> dict[str, Any]:
    orders, revenue = found.orders, found.revenue
    cents = float(revenue * 100)
    per_visitor = stats.mean_interval(visitors, cents, found.revenue_squares)
    per_order = stats.ratio_interval(
        visitors, cents, orders, found.revenue_squares, found.order_squares, found.cross
    )
    return {
        "visitors": visitors,
        "converted_visitors": converted,
        "conversion_rate": stats.rate(converted, visitors),
        "orders": orders,
        "revenue": _money(revenue),
        "average_order_value": _money(revenue / orders if orders else Decimal(0)),
        "revenue_per_visitor": _money(revenue / visitors if visitors else Decimal(0)),
        "revenue_per_visitor_ci95": _money_interval(per_visitor),
        "average_order_value_ci95": _money_interval(per_order) if orders > 1 else None,
    }


def _money_interval(interval: list[float] | None) -> list[str] | None:
    """An interval in cents as amounts, never below zero."""
    if interval is None:
        return None
    return [_money(Decimal(max(0.0, bound)) / 100) for bound in interval]


def _money(amount: Decimal) -> str:
    return str(Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP))


# Breakdowns ------------------------------------------------------------------------------
def counts_by(flagged: QuerySet[Exposure], key: Any) -> Counts:
    """(key value, is_control) -> (visitors, converted visitors); ``key`` is a field name or
    an expression. One query."""
    if not isinstance(key, str):
        flagged, key = flagged.annotate(slice_key=key), "slice_key"
    rows = flagged.values(key, "is_control").annotate(
        visitors=_visitors(),
        converted_visitors=_visitors(Q(converted=True)),
    )
    return {
        (row[key], row["is_control"]): (row["visitors"], row["converted_visitors"]) for row in rows
    }


def _visitor_field(name: str) -> Coalesce:
    # A subquery rather than a join: an exposure whose Visitor row is not written yet counts,
    # with "" like a visitor whose value is unknown.
    row = Visitor.objects.filter(pk=OuterRef("visitor_id")).order_by()
    value = Subquery(row.values(name)[:1])
    return Coalesce(value, Value(""))


def _both_groups(label: str, counts: Counts) -> list[dict[str, Any]]:
    keys = {key for key, _ in counts}
    rows = []
    for key in keys:
        p_n, p_conv = counts.get((key, False), (0, 0))
        c_n, c_conv = counts.get((key, True), (0, 0))
        rows.append(
            {
                label: key or UNKNOWN,
                "visitors": p_n,
                "converted_visitors": p_conv,
                "conversion_rate": stats.rate(p_conv, p_n),
                "control_visitors": c_n,
                "control_converted_visitors": c_conv,
                "control_conversion_rate": stats.rate(c_conv, c_n),
            }
        )
    return _largest_first(rows, label, lambda row: row["visitors"] + row["control_visitors"])


def _split_counts(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        row["converted_visitors"],
        row["visitors"],
        row["control_converted_visitors"],
        row["control_visitors"],
    )


def _compared(
    rows: list[dict[str, Any]], counts: Callable[[dict[str, Any]], tuple[int, int, int, int]]
) -> list[dict[str, Any]]:
    """Each row with ``difference_ci95``, the 95% interval of the personalized minus the
    control rate in percentage points, ``p_value`` (the same single-look comparison: the
    pooled two-proportion z-test) and ``q_value``, that p-value adjusted for the number of
    rows of the table (Benjamini–Hochberg); None where a group has no visitors."""
    p_values = []
    for row in rows:
        p_conv, p_n, c_conv, c_n = counts(row)
        p_value = None
        row["difference_ci95"] = None
        if p_n > 0 and c_n > 0:
            row["difference_ci95"] = stats.difference_interval(p_conv, p_n, c_conv, c_n)
            p_value = stats.lift(p_conv, p_n, c_conv, c_n)["fixed_horizon"]["p_value"]
        row["p_value"] = p_value
        p_values.append(p_value)
    for row, q_value in zip(rows, stats.bh_adjust(p_values), strict=True):
        row["q_value"] = q_value
    return rows


def _with_interval(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row of one group's visitors with ``ci95``, the 95% interval of its rate (%)."""
    for row in rows:
        row["ci95"] = stats.proportion_interval(row["converted_visitors"], row["visitors"])
    return rows


def _largest_first(rows: Iterable[dict[str, Any]], label: str, size: Any) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: (-size(row), str(row[label])))


def by_content(flagged: QuerySet[Exposure]) -> list[dict[str, Any]]:
    """Personalized visitors per placement and content, with those who clicked it."""
    clicks = Event.objects.filter(exposure_id=OuterRef("pk"), kind=Event.CLICK)
    rows = (
        flagged.filter(is_control=False)
        .annotate(clicked=Exists(clicks))
        .values("placement", "content")
        .annotate(
            label=Max("content_label"),
            visitors=_visitors(),
            converted_visitors=_visitors(Q(converted=True)),
            clicked_visitors=_visitors(Q(clicked=True)),
        )
    )
    return list(rows)  # type: ignore[arg-type]  # the plugin's TypedDict rows are dicts


def _content_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    result = [
        {
            "placement": row["placement"],
            "content": row["content"],
            "label": row["label"],
            "visitors": row["visitors"],
            "converted_visitors": row["converted_visitors"],
            "conversion_rate": stats.rate(row["converted_visitors"], row["visitors"]),
            "clicked_visitors": row["clicked_visitors"],
        }
        for row in rows
    ]
    return sorted(result, key=lambda row: (-row["visitors"], row["placement"], row["content"]))


def _segment_rows(counts: Counts) -> list[dict[str, Any]]:
    """Personalized visitors per target segment the content was chosen for."""
    rows = [
        {
            "segment": segment or EVERYONE,
            "visitors": visitors,
            "converted_visitors": converted,
            "conversion_rate": stats.rate(converted, visitors),
        }
        for (segment, _), (visitors, converted) in counts.items()
    ]
    return _largest_first(rows, "segment", lambda row: row["visitors"])


def by_goal(
    exposures: QuerySet[Exposure], window: dt.timedelta, period: Period
) -> list[tuple[str, int, int]]:
    """(goal, personalized visitors, control visitors) with an attributed conversion of it."""
    rows = (
        attributed_conversions(exposures, goal_conversions(ANY_GOAL), window, period)
        .filter(Q(personalized=True) | Q(control=True))
        .values("goal")
        .annotate(
            n_personalized=_visitors(Q(personalized=True)),
            n_control=_visitors(Q(control=True)),
        )
    )
    return [(row["goal"], row["n_personalized"], row["n_control"]) for row in rows]


def _goal_rows(goals: Iterable[tuple[str, int, int]], p_n: int, c_n: int) -> list[dict[str, Any]]:
    result = [
        {
            "goal": goal,
            "personalized_converted_visitors": personalized,
            "personalized_rate": stats.rate(personalized, p_n),
            "control_converted_visitors": control,
            "control_rate": stats.rate(control, c_n),
        }
        for goal, personalized, control in goals
    ]
    return _largest_first(
        result,
        "goal",
        lambda row: row["personalized_converted_visitors"] + row["control_converted_visitors"],
    )


def clicks(flagged: QuerySet[Exposure], kind: str | None) -> tuple[int, int, int, int]:
    """Among personalized visitors shown content of ``kind`` (None: any): (visitors,
    converted, clicked, clicked and converted). One query."""
    shown = flagged.filter(is_control=False)
    if kind is not None:
        shown = shown.filter(kind=kind)
    clicked_ids = shown.filter(
        Exists(Event.objects.filter(exposure_id=OuterRef("pk"), kind=Event.CLICK))
    ).values("visitor_id")
    # The aggregates' names must differ from the annotations they filter on.
    totals = shown.aggregate(
        n_visitors=_visitors(),
        n_converted=_visitors(Q(converted=True)),
        n_clicked=_visitors(Q(visitor_id__in=clicked_ids)),
        n_clicked_converted=_visitors(Q(visitor_id__in=clicked_ids, converted=True)),
    )
    return (
        totals["n_visitors"],
        totals["n_converted"],
        totals["n_clicked"],
        totals["n_clicked_converted"],
    )


def _clicks_entry(
    kind: str, visitors: int, converted: int, n_clicked: int, clicked_converted: int
) -> dict[str, Any]:
    """The conversion rate of visitors who clicked against those who did not."""
    clicked = (n_clicked, clicked_converted)
    not_clicked = (visitors - n_clicked, converted - clicked_converted)
    ratio = None
    if clicked[0] and not_clicked[0] and not_clicked[1]:
        ratio = round((clicked[1] / clicked[0]) / (not_clicked[1] / not_clicked[0]), 2)
    return {
        "kind": kind,
        "clicked": _visitors_entry(*clicked),
        "not_clicked": _visitors_entry(*not_clicked),
        "ratio": ratio,
    }


def _visitors_entry(visitors: int, converted: int) -> dict[str, Any]:
    return {
        "visitors": visitors,
        "converted_visitors": converted,
        "conversion_rate": stats.rate(converted, visitors),
    }


def daily(flagged: QuerySet[Exposure]) -> dict[dt.date, dict[bool, tuple[int, int]]]:
    """Per day: each group's visitors exposed that day, and those with a conversion
    attributed to that day's exposures. One query."""
    day = TruncDate("created_at", tzinfo=timezone.get_default_timezone())
    by_day: dict[dt.date, dict[bool, tuple[int, int]]] = defaultdict(dict)
    for (value, is_control), numbers in counts_by(flagged, day).items():
        if isinstance(value, str):  # some backends return the date as text
            value = dt.date.fromisoformat(value)
        by_day[value][is_control] = numbers  # type: ignore[index]  # a date by now
    return by_day


def _daily_rows(
    period: Period, by_day: dict[dt.date, dict[bool, tuple[int, int]]]
) -> list[dict[str, Any]]:
    """One entry per day of the period."""
    result = []
    for date in period.days:
        p_n, p_conv = by_day.get(date, {}).get(False, (0, 0))
        c_n, c_conv = by_day.get(date, {}).get(True, (0, 0))
        result.append(
            {
                "date": date.isoformat(),
                "personalized_visitors": p_n,
                "personalized_converted_visitors": p_conv,
                "personalized_rate": stats.rate(p_conv, p_n),
                "control_visitors": c_n,
                "control_converted_visitors": c_conv,
                "control_rate": stats.rate(c_conv, c_n),
            }
        )
    return result
