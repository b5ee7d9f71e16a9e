"""The conversion report in the admin: the page, and the same numbers as CSV or JSON."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import csvsafe
from ..conf import app_settings
from ..csvsafe import neutralize  # noqa: F401  (re-exported: the report's cell rule)
from ..models import Conversion
from ..models.measurement import Report
from . import charts, stats
from .parameters import ParameterError, check_characters, check_goal
from .period import Period, PeriodError, parse_period
from .queries import ANY_GOAL, ReportPreparing, ReportTimeout, build_report
from .queries import PURCHASE as PURCHASE_GOAL

logger = logging.getLogger(__name__)

TEMPLATE = "admin/personalization/report.html"
MAX_GOAL_LENGTH = 100
PRESET_DAYS = (7, 30, 90)
FORMATS = ("html", "csv", "json")


def report_permission() -> str:
    """``personalization.view_report``: the permission that reading the report takes."""
    opts = Report._meta
    return f"{opts.app_label}.{get_permission_codename('view', opts)}"


def can_view_report(user: Any) -> bool:
    """Active staff with ``personalization.view_report`` (superusers have every permission):
    the report shows revenue, which not every staff member should read."""
    return bool(
        getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
        and user.has_perm(report_permission())
    )


def report_view(
    request: HttpRequest, *, admin_site: admin.AdminSite | None = None, model_admin: Any = None
) -> HttpResponse:
    """``GET ?start=YYYY-MM-DD&end=YYYY-MM-DD&goal=NAME&format=html|csv|json``.

    Reached through ``AdminSite.admin_view``, which sends anyone but active staff to the admin
    login; staff without ``personalization.view_report`` get a 403. A period or goal that
    cannot be used is answered with its reason and 400; a report that cannot be computed, with
    503, never a 500.
    """
    site = admin_site or admin.site
    output = request.GET.get("format", "html") or "html"
    if not can_view_report(request.user):
        return _forbidden(output)
    try:
        check_characters(request.GET)  # before anything reaches the database or the page
    except ParameterError as error:
        return _error(request, site, model_admin, str(error), output, status=400)
    if output not in FORMATS:
        return _text_error(
            _("Unknown format %(format)r; use html, csv or json.") % {"format": output}
        )
    goal = (request.GET.get("goal") or PURCHASE_GOAL).strip()
    period: Period | None = None
    try:
        period = parse_period(request.GET.get("start"), request.GET.get("end"))
        if not goal or len(goal) > MAX_GOAL_LENGTH:
            raise ParameterError(_("A goal has 1 to %(n)d characters.") % {"n": MAX_GOAL_LENGTH})
        check_goal(goal)
    except (ParameterError, PeriodError) as error:
        message = str(error)
    else:
        message = ""
    if period is None or message:
        return _error(request, site, model_admin, message, output, status=400, goal=goal)

    try:
        with recoverable():
            report = build_report(period, goal=goal)
    except ReportTimeout:
        message = _("This report takes too long to compute; choose a shorter period.")
        return _error(request, site, model_admin, message, output, status=503, goal=goal)
    except ReportPreparing as preparing:
        response = _error(
            request, site, model_admin, preparing.message(), output, status=503, goal=goal
        )
        response["Retry-After"] = str(preparing.retry_after)
        return response
    except Exception:
        logger.exception("personalization: the report for %s could not be computed", period)
        return _error(request, site, model_admin, failed_message(), output, status=503, goal=goal)
    if output == "json":
        return JsonResponse(report)
    if output == "csv":
        return report_csv(report, period)
    context = _page_context(request, site, model_admin, goal=goal, period=period, report=report)
    return TemplateResponse(request, TEMPLATE, context)


def failed_message() -> str:
    return _(
        "The report could not be computed: the error has been logged for the site's "
        "developers. Try again later, or choose another period or goal."
    )


def recoverable() -> Any:
    """Inside a transaction (``ATOMIC_REQUESTS``), a savepoint around the report, so that a
    database error while computing it leaves the request's transaction usable for the page
    that says so. Outside one, nothing: the report's own queries keep their transactions."""
    return transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()


def _forbidden(output: str) -> HttpResponse:
    """Staff without the report's permission: a 403, as JSON or text when asked for."""
    message = _("Reading the conversion report takes the permission %(permission)s.") % {
        "permission": report_permission()
    }
    if output == "json":
        return JsonResponse({"error": message}, status=403)
    if output == "csv":
        return HttpResponse(message, status=403, content_type="text/plain; charset=utf-8")
    raise PermissionDenied(message)


def _error(
    request: HttpRequest,
    site: admin.AdminSite,
    model_admin: Any,
    message: str,
    output: str,
    *,
    status: int,
    goal: str | None = None,
) -> HttpResponse:
    """The report's answer when it cannot be given: JSON or text when asked for, else the
    page with the message. Without a ``goal`` the request's own values (which may hold
    control characters) are not shown back."""
    if output == "json":
        return JsonResponse({"error": message}, status=status)
    if output == "csv":
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    if goal is None:
        context = _page_context(request, site, model_admin, goal=PURCHASE_GOAL, error=message)
        context.update(start="", end="")
    else:
        context = _page_context(request, site, model_admin, goal=goal, error=message)
    return TemplateResponse(request, TEMPLATE, context, status=status)


def _text_error(message: str) -> HttpResponse:
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


# The page ---------------------------------------------------------------------------------


def _page_context(
    request: HttpRequest,
    site: admin.AdminSite,
    model_admin: Any,
    *,
    goal: str,
    period: Period | None = None,
    report: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    today = timezone.localdate(timezone=timezone.get_default_timezone())
    view = request.GET.get("view")
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": _("Conversion report"),
        "opts": Report._meta,
        "app_label": Report._meta.app_label,
        "model_admin": model_admin,
        "has_view_permission": True,
        "error": error,
        "goal": goal,
        "goals": _goal_choices(goal),
        # Echo what was asked, even when it could not be used, so it can be corrected.
        "start": period.start.isoformat() if period else request.GET.get("start", ""),
        "end": period.end.isoformat() if period else request.GET.get("end", ""),
        "presets": _presets(today, goal, period),
        "control_percent": app_settings.CONTROL_GROUP_PERCENT,
    }
    if period is None or report is None:
        return context
    personalized, control = report["personalized"], report["control"]
    lift = report.get("lift") or {}
    verdict = _verdict(report, period, today)
    fixed = _fixed_horizon(lift)
    excluded = report.get("excluded_visitors")
    context.update(
        report=report,
        rolled_up_to=_rolled_up_to(report.get("rolled_up_to")),
        headline=_headline(personalized, control),
        revenue_lift_sentence=_revenue_lift_sentence(report.get("revenue_per_visitor_lift")),
        verdict=verdict,
        lift=_lift(lift, verdict),
        fixed=fixed if view == "fixed" else None,
        fixed_url=("?" + urlencode({**_query(period, goal), "view": "fixed"})) if fixed else None,
        valid_url="?" + urlencode(_query(period, goal)),
        srm=_srm(report.get("srm")),
        probability_better=_probability_better(report, lift),
        excluded_visitors=excluded if isinstance(excluded, int) and excluded > 0 else None,
        excluded_shown=_count(excluded),
        clicks_sentence=_clicks_sentence(report.get("clicks"), _("a recommendation")),
        clicks_any_sentence=_clicks_sentence(
            report.get("clicks_any"), _("any personalized content")
        ),
        split_tables=_split_tables(report),
        content_rows=[_with_intervals(row) for row in report.get("by_content") or []],
        segment_rows=[_with_intervals(row) for row in report.get("by_segment") or []],
        goal_rows=[_with_intervals(row) for row in report.get("by_goal") or []],
        breakdown_stats=any(
            key in row
            for table in BREAKDOWNS
            for row in report.get(table) or []
            for key in ("difference_ci95", "ci95", "q_value")
        ),
        control_share=_share(control.get("visitors"), personalized.get("visitors")),
        daily_chart=charts.daily_rate_chart(report.get("daily") or []),
        placement_chart=charts.placement_rate_chart(report.get("by_placement") or []),
        csv_url="?" + urlencode({**_query(period, goal), "format": "csv"}),
        json_url="?" + urlencode({**_query(period, goal), "format": "json"}),
    )
    return context


BREAKDOWNS = ("by_placement", "by_content", "by_segment", "by_referrer", "by_country", "by_goal")


def _split_tables(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The breakdowns that compare personalized and control visitors, in one table shape."""
    tables = []
    for key, first, table_id, caption, empty, code in (
        (
            "placement",
            _("Placement"),
            "by_placement",
            _("By placement"),
            _("No placement was shown in this period."),
            True,
        ),
        (
            "source",
            _("Referrer source"),
            "by_referrer",
            _("By referrer source (how the visit arrived)"),
            _("No visitors in this period."),
            False,
        ),
        (
            "country",
            _("Country"),
            "by_country",
            _("By country"),
            _("No visitors in this period."),
            False,
        ),
    ):
        rows = [
            {**_with_intervals(row), "name": row.get(key)} for row in report.get(table_id) or []
        ]
        tables.append(
            {
                "id": "pzn-" + table_id.replace("_", "-"),
                "caption": caption,
                "first": first,
                "rows": rows,
                "empty": empty,
                "code": code,
            }
        )
    return tables


def _share(control: int | None, personalized: int | None) -> str | None:
    """The control group's share of the period's visitors, as a percentage."""
    total = (control or 0) + (personalized or 0)
    return f"{100 * (control or 0) / total:.1f}%" if total else None


def _setting(name: str) -> Any:
    try:
        return app_settings.get(name)
    except AttributeError:
        return None


def _rolled_up_to(value: str | None) -> Any:
    if not value:
        return None
    moment = dt.datetime.fromisoformat(value)
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def _query(period: Period, goal: str) -> dict[str, str]:
    return {"start": period.start.isoformat(), "end": period.end.isoformat(), "goal": goal}


def _goal_choices(current: str) -> list[tuple[str, str]]:
    """(value, label): orders first, then every goal together, then each goal recorded."""
    recorded = set(Conversion.objects.order_by().values_list("goal", flat=True).distinct()[:200])
    recorded.add(current)
    recorded -= {PURCHASE_GOAL, ANY_GOAL}
    return [
        (PURCHASE_GOAL, _("purchase (orders)")),
        (ANY_GOAL, _("any goal")),
        *((goal, goal) for goal in sorted(recorded)),
    ]


def _presets(today: dt.date, goal: str, period: Period | None) -> list[dict[str, Any]]:
    presets = []
    for days in PRESET_DAYS:
        start = today - dt.timedelta(days=days - 1)
        presets.append(
            {
                "label": _("Last %(days)d days") % {"days": days},
                "url": "?"
                + urlencode({"start": start.isoformat(), "end": today.isoformat(), "goal": goal}),
                "active": period is not None and (period.start, period.end) == (start, today),
            }
        )
    return presets


def _count(value: Any) -> str:
    return number_format(value or 0, force_grouping=True)


def _rate(value: Any) -> str:
    return "–" if value is None else f"{float(value):.2f}%"


def _money(value: Any) -> str:
    if value in (None, ""):
        return "–"
    try:
        return number_format(Decimal(str(value)), decimal_pos=2, force_grouping=True)
    except InvalidOperation:
        return str(value)


HEADLINE: Sequence[tuple[str, str, Any]] = (
    ("visitors", "Visitors", _count),
    ("converted_visitors", "Converted visitors", _count),
    ("conversion_rate", "Conversion rate", _rate),
    ("orders", "Orders", _count),
    ("revenue", "Revenue", _money),
    ("average_order_value", "Average order value", _money),
    ("revenue_per_visitor", "Revenue per visitor", _money),
)


# Figures shown with their 95% interval under them.
WITH_INTERVAL = ("average_order_value", "revenue_per_visitor")


def _headline(personalized: Mapping[str, Any], control: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "key": key,
            "label": _(label),
            "personalized": show(personalized.get(key)),
            "control": show(control.get(key)),
            "personalized_ci": _money_interval(personalized.get(f"{key}_ci95")),
            "control_ci": _money_interval(control.get(f"{key}_ci95")),
        }
        for key, label, show in HEADLINE
    ]


def _money_interval(ci95: Any) -> str:
    if bounds := _interval(ci95):
        return _("95%%: %(low)s to %(high)s") % {
            "low": _money(bounds[0]),
            "high": _money(bounds[1]),
        }
    return ""


def _revenue_lift_sentence(lift: Mapping[str, Any] | None) -> str:
    """The revenue-per-visitor lift in words, with its single-look interval."""
    interval = _interval((lift or {}).get("ci95"))
    if not lift or lift.get("relative") is None or interval is None:
        return ""
    return _(
        "Revenue per visitor: %(relative)s for personalization (95%% interval %(low)s to "
        "%(high)s, delta method, visitors as units). A single-look interval: revenue is "
        "heavy-tailed, so read it beside the conversion lift, which stays valid however often "
        "the report is read."
    ) % {
        "relative": _signed_percent(float(lift["relative"])),
        "low": _signed_percent(interval[0]),
        "high": _signed_percent(interval[1]),
    }


def _signed_percent(fraction: float) -> str:
    return f"{fraction * 100:+,.1f}%".replace("-", "−")


def _signed_points(points: float) -> str:
    return f"{points:+.2f}".replace("-", "−")


def _format_q(q_value: Any) -> str | None:
    """A q-value as its column shows it: ``< 0.001`` or ``0.049``."""
    if q_value is None:
        return None
    return stats.format_p(float(q_value)).removeprefix("p = ").removeprefix("p ")


def _interval(ci95: Any) -> tuple[float, float] | None:
    """[low, high] from the report, or None where it has none (or not in that shape)."""
    if not isinstance(ci95, list | tuple) or len(ci95) != 2 or None in ci95:
        return None
    return float(ci95[0]), float(ci95[1])


# The verdict: its tone (the lift's colour follows it and nothing else), title and sentence.
VERDICTS: Mapping[str, tuple[str, Any, Any]] = {
    "personalization-wins": (
        "good",
        gettext_lazy("Personalization wins"),
        gettext_lazy(
            "Personalized visitors convert more than the control group, and the whole 95% "
            "interval of the lift is above 0%."
        ),
    ),
    "control-wins": (
        "bad",
        gettext_lazy("The control group wins"),
        gettext_lazy(
            "Personalized visitors convert less than the control group, and the whole 95% "
            "interval of the lift is below 0%: personalization as set up costs conversions."
        ),
    ),
    "no-difference-yet": (
        "neutral",
        gettext_lazy("No difference shown yet"),
        gettext_lazy(
            "The 95% interval of the lift still includes 0%: the difference between the "
            "groups may be chance. The interval narrows as visitors come, and it stays valid "
            "however often this report is read."
        ),
    ),
    "not-enough-data": (
        "neutral",
        gettext_lazy("Not enough data yet"),
        gettext_lazy(
            "The groups are still too small to tell a difference from chance: whatever lift "
            "is shown below may be noise."
        ),
    ),
}


def _verdict(report: Mapping[str, Any], period: Period, today: dt.date) -> dict[str, Any] | None:
    """The report's one verdict, as the page says it; None when the report gives none."""
    key = report.get("verdict")
    if key not in VERDICTS:
        return None
    tone, title, text = VERDICTS[key]  # type: ignore[index]  # one of VERDICTS by now
    verdict: dict[str, Any] = {"key": key, "tone": tone, "title": str(title), "text": str(text)}
    if key == "not-enough-data":
        verdict["needed"] = _visitors_needed(report, period, today)
    return verdict


def _visitors_needed(
    report: Mapping[str, Any], period: Period, today: dt.date
) -> dict[str, Any] | None:
    """How many more visitors the planned test needs, and how many days that is at the
    period's traffic (its visitors per day, counting only the days already begun)."""
    needed = report.get("visitors_needed")
    if not isinstance(needed, int | float) or isinstance(needed, bool) or needed < 0:
        return None
    if needed == 0:
        return {"reached": True}
    visitors = sum(
        (report.get(group) or {}).get("visitors") or 0 for group in ("personalized", "control")
    )
    days = (min(period.end, today) - period.start).days + 1
    per_day = visitors / days if days > 0 else 0.0
    planned = report.get("planned_visitors") or {}
    mde = _setting("REPORT_MDE")
    return {
        "reached": False,
        "visitors": _count(math.ceil(needed)),
        "per_day": _count(round(per_day)) if per_day >= 1 else f"{per_day:.1f}",
        "days": _count(math.ceil(needed / per_day)) if per_day > 0 else None,
        "planned_personalized": _count(planned["personalized"])
        if planned.get("personalized") is not None
        else None,
        "planned_control": _count(planned["control"])
        if planned.get("control") is not None
        else None,
        "mde": f"{float(mde):.0%}" if isinstance(mde, int | float) else None,
    }


def _lift(lift: Mapping[str, Any], verdict: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headline lift: always-valid interval and p-value; its colour from the verdict."""
    relative = lift.get("relative")
    tone = (verdict or {}).get("tone")
    interval = _interval(lift.get("ci95"))
    p_value = lift.get("p_value")
    return {
        "relative": None if relative is None else _signed_percent(relative),
        "ci95": None
        if interval is None
        else _("%(low)s to %(high)s")
        % {"low": _signed_percent(interval[0]), "high": _signed_percent(interval[1])},
        "p_value": None if p_value is None else stats.format_p(p_value),
        # Green only when the verdict says personalization wins, red only when control does.
        "tone": {"good": "up", "bad": "down"}.get(tone or "", ""),
        "method": lift.get("method") or "",
    }


def _fixed_horizon(lift: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fixed-horizon figures, for the one planned look they are valid for."""
    fixed = lift.get("fixed_horizon")
    if not isinstance(fixed, Mapping):
        return None
    interval = _interval(fixed.get("ci95"))
    p_value = fixed.get("p_value")
    return {
        "ci95": None
        if interval is None
        else _("%(low)s to %(high)s")
        % {"low": _signed_percent(interval[0]), "high": _signed_percent(interval[1])},
        "p_value": None if p_value is None else stats.format_p(p_value),
        "method": fixed.get("method") or "",
    }


def _srm(srm: Any) -> dict[str, Any] | None:
    """The sample-ratio check as the page shows it; None when the report has none."""
    if not isinstance(srm, Mapping) or "ok" not in srm:
        return None

    def share(value: Any) -> str:
        return "–" if value is None else f"{100 * float(value):.1f}%"

    p_value = srm.get("p_value")
    return {
        "ok": bool(srm["ok"]),
        "expected": share(srm.get("expected_control_share")),
        "observed": share(srm.get("observed_control_share")),
        "p_value": None if p_value is None else stats.format_p(p_value),
    }


def _probability_better(report: Mapping[str, Any], lift: Mapping[str, Any]) -> str | None:
    value = report.get("probability_better", lift.get("probability_better"))
    if value is None:
        return None
    return f"{100 * float(value):.1f}%"


def _points_interval(ci95: Any) -> str | None:
    interval = _interval(ci95)
    if interval is None:
        return None
    return _("%(low)s to %(high)s") % {
        "low": _signed_points(interval[0]),
        "high": _signed_points(interval[1]),
    }


def _rate_interval(ci95: Any) -> str | None:
    interval = _interval(ci95)
    if interval is None:
        return None
    return f"{interval[0]:.2f}–{interval[1]:.2f}%"


def _with_intervals(row: Mapping[str, Any]) -> dict[str, Any]:
    """A breakdown row with its interval and q-value as the page shows them."""
    return {
        **row,
        "difference_shown": _points_interval(row.get("difference_ci95")),
        "ci95_shown": _rate_interval(row.get("ci95")),
        "q_shown": _format_q(row.get("q_value")),
    }


def _clicks_sentence(clicks: Mapping[str, Any] | None, what: str) -> str:
    """How visitors who clicked convert against those who did not: a correlation only."""
    clicked = (clicks or {}).get("clicked") or {}
    not_clicked = (clicks or {}).get("not_clicked") or {}
    if not clicked.get("visitors"):
        return _("No clicks on %(what)s yet.") % {"what": what}
    ratio = (clicks or {}).get("ratio")
    if ratio is None:
        return _(
            "Visitors who clicked %(what)s converted at %(clicked)s; "
            "those who did not, at %(not_clicked)s."
        ) % {
            "what": what,
            "clicked": _rate(clicked.get("conversion_rate")),
            "not_clicked": _rate(not_clicked.get("conversion_rate")),
        }
    return _(
        "Visitors who clicked %(what)s converted at %(ratio)s× the rate of those who did not "
        "(%(clicked)s vs %(not_clicked)s)."
    ) % {
        "what": what,
        "ratio": f"{ratio:.1f}",
        "clicked": _rate(clicked.get("conversion_rate")),
        "not_clicked": _rate(not_clicked.get("conversion_rate")),
    }


# CSV --------------------------------------------------------------------------------------


def _number(value: Any) -> Any:
    """Money arrives as text ("2750.00"); written as a number, so spreadsheets can sum it."""
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


# The columns of a breakdown that compares the two groups.
BOTH_GROUPS = (
    "visitors",
    "converted_visitors",
    "conversion_rate",
    "control_visitors",
    "control_converted_visitors",
    "control_conversion_rate",
)
# How a breakdown compares the groups: the difference's interval (written as two columns,
# ``difference_ci95_low`` and ``_high``), its single-look p-value and the table's q-value.
COMPARED = ("difference_ci95", "p_value", "q_value")
# Written as two columns, ``<name>_low`` and ``<name>_high``.
INTERVALS = {"difference_ci95", "ci95"}
TABLES: Sequence[tuple[str, Sequence[str]]] = (
    ("by_placement", ("placement", *BOTH_GROUPS, *COMPARED)),
    (
        "by_content",
        (
            "placement",
            "content",
            "label",
            "visitors",
            "converted_visitors",
            "conversion_rate",
            "ci95",
            "clicked_visitors",
        ),
    ),
    ("by_segment", ("segment", "visitors", "converted_visitors", "conversion_rate", "ci95")),
    ("by_referrer", ("source", *BOTH_GROUPS, *COMPARED)),
    ("by_country", ("country", *BOTH_GROUPS, *COMPARED)),
    (
        "by_goal",
        (
            "goal",
            "personalized_converted_visitors",
            "personalized_rate",
            "control_converted_visitors",
            "control_rate",
            *COMPARED,
        ),
    ),
    (
        "daily",
        ("date", "personalized_visitors", "personalized_rate", "control_visitors", "control_rate"),
    ),
)
MONEY = {"revenue", "average_order_value", "revenue_per_visitor"}


def _pair(value: Any) -> list[Any]:
    """[low, high] of an interval, or two empty cells."""
    return list(value) if isinstance(value, list | tuple) and len(value) == 2 else [None, None]


def _header(columns: Sequence[str]) -> list[str]:
    header = []
    for column in columns:
        header += [f"{column}_low", f"{column}_high"] if column in INTERVALS else [column]
    return header


def _cells(row: Mapping[str, Any], columns: Sequence[str]) -> list[Any]:
    cells: list[Any] = []
    for column in columns:
        cells += _pair(row.get(column)) if column in INTERVALS else [row.get(column)]
    return cells


def report_rows(report: Mapping[str, Any]) -> Iterable[list[Any]]:
    """The report as CSV rows: one section after another, each with its own header row and
    its name in the first column, sections separated by an empty row. The same figures as
    the JSON, unrounded; the page rounds them for reading."""
    yield ["section", "start", "end", "goal", "attribution_window_days", "generated_at"]
    yield [
        "report",
        report.get("start"),
        report.get("end"),
        report.get("goal"),
        report.get("attribution_window_days"),
        report.get("generated_at"),
    ]
    yield []
    yield ["section", "metric", "personalized", "control"]
    personalized, control = report.get("personalized") or {}, report.get("control") or {}
    for key, _label, _show in HEADLINE:
        values = [personalized.get(key), control.get(key)]
        if key in MONEY:
            values = [_number(value) for value in values]
        yield ["headline", key, *values]
    for key in WITH_INTERVAL:
        lows_highs = [_pair(group.get(f"{key}_ci95")) for group in (personalized, control)]
        for index, end in enumerate(("low", "high")):
            yield ["headline", f"{key}_ci95_{end}", *(_number(pair[index]) for pair in lows_highs)]
    yield []
    revenue_lift = report.get("revenue_per_visitor_lift") or {}
    yield ["section", "relative", "ci95_low", "ci95_high"]
    yield [
        "revenue_per_visitor_lift",
        revenue_lift.get("relative"),
        *_pair(revenue_lift.get("ci95")),
    ]
    yield []
    lift = report.get("lift") or {}
    fixed = lift.get("fixed_horizon") or {}
    yield [
        "section",
        "relative",
        "ci95_low",
        "ci95_high",
        "p_value",
        "enough_data",
        "method",
        "fixed_horizon_ci95_low",
        "fixed_horizon_ci95_high",
        "fixed_horizon_p_value",
        "fixed_horizon_method",
    ]
    yield [
        "lift",
        lift.get("relative"),
        *_pair(lift.get("ci95")),
        lift.get("p_value"),
        report.get("enough_data"),
        lift.get("method") or report.get("method"),
        *_pair(fixed.get("ci95")),
        fixed.get("p_value"),
        fixed.get("method"),
    ]
    yield []
    planned = report.get("planned_visitors") or {}
    yield [
        "section",
        "verdict",
        "probability_better",
        "visitors_needed",
        "planned_personalized_visitors",
        "planned_control_visitors",
        "excluded_visitors",
    ]
    yield [
        "verdict",
        report.get("verdict"),
        report.get("probability_better"),
        report.get("visitors_needed"),
        planned.get("personalized"),
        planned.get("control"),
        report.get("excluded_visitors"),
    ]
    srm = report.get("srm") or {}
    yield []
    yield ["section", "expected_control_share", "observed_control_share", "p_value", "ok"]
    yield [
        "srm",
        srm.get("expected_control_share"),
        srm.get("observed_control_share"),
        srm.get("p_value"),
        srm.get("ok"),
    ]
    for name, kind in (("clicks", "recommendation"), ("clicks_any", "any")):
        clicks = report.get(name) or {}
        yield []
        yield ["section", "kind", "group", "visitors", "converted_visitors", "conversion_rate"]
        for group in ("clicked", "not_clicked"):
            row = clicks.get(group) or {}
            yield [
                name,
                clicks.get("kind", kind),
                group,
                row.get("visitors"),
                row.get("converted_visitors"),
                row.get("conversion_rate"),
            ]
        yield [name, clicks.get("kind", kind), "ratio", clicks.get("ratio"), None, None]
    for name, columns in TABLES:
        yield []
        yield ["section", *_header(columns)]
        for row in report.get(name) or []:
            yield [name, *_cells(row, columns)]


def report_csv(report: Mapping[str, Any], period: Period) -> HttpResponse:
    filename = f"personalization-report-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    csvsafe.writer(response).writerows(report_rows(report))
    return response
