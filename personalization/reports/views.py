"""The conversion report in the admin: the page, and the same numbers as CSV or JSON."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from ..conf import app_settings
from ..models import Conversion
from ..models.measurement import Report
from . import charts
from .period import Period, PeriodError, parse_period
from .queries import ANY_GOAL, ReportTimeout, build_report
from .queries import PURCHASE as PURCHASE_GOAL

TEMPLATE = "admin/personalization/report.html"
MAX_GOAL_LENGTH = 100
PRESET_DAYS = (7, 30, 90)
FORMATS = ("html", "csv", "json")
# A spreadsheet reads a cell that starts with one of these as a formula (OWASP "CSV
# injection"); the full-width forms are read as formulas by some spreadsheet locales.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def report_view(
    request: HttpRequest, *, admin_site: admin.AdminSite | None = None, model_admin: Any = None
) -> HttpResponse:
    """``GET ?start=YYYY-MM-DD&end=YYYY-MM-DD&goal=NAME&format=html|csv|json``.

    Only reached through ``AdminSite.admin_view``, which sends anyone but active staff to the
    admin login. A period or goal that cannot be used is answered with its reason and 400.
    """
    site = admin_site or admin.site
    output = request.GET.get("format", "html") or "html"
    if output not in FORMATS:
        return _text_error(
            _("Unknown format %(format)r; use html, csv or json.") % {"format": output}
        )
    goal = (request.GET.get("goal") or PURCHASE_GOAL).strip()
    period: Period | None = None
    try:
        period = parse_period(request.GET.get("start"), request.GET.get("end"))
    except PeriodError as error:
        message = str(error)
    else:
        message = ""
        if not goal or len(goal) > MAX_GOAL_LENGTH:
            message = _("A goal has 1 to %(n)d characters.") % {"n": MAX_GOAL_LENGTH}
    if period is None or message:
        if output == "json":
            return JsonResponse({"error": message}, status=400)
        if output == "csv":
            return _text_error(message)
        context = _page_context(request, site, model_admin, goal=goal, error=message)
        return TemplateResponse(request, TEMPLATE, context, status=400)

    try:
        report = build_report(period, goal=goal)
    except ReportTimeout:
        message = _("This report takes too long to compute; choose a shorter period.")
        if output == "json":
            return JsonResponse({"error": message}, status=503)
        if output == "csv":
            return HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        context = _page_context(request, site, model_admin, goal=goal, error=str(message))
        return TemplateResponse(request, TEMPLATE, context, status=503)
    if output == "json":
        return JsonResponse(report)
    if output == "csv":
        return report_csv(report, period)
    context = _page_context(request, site, model_admin, goal=goal, period=period, report=report)
    return TemplateResponse(request, TEMPLATE, context)


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
    context.update(
        report=report,
        rolled_up_to=_rolled_up_to(report.get("rolled_up_to")),
        headline=_headline(personalized, control),
        lift=_lift(report.get("lift") or {}),
        clicks_sentence=_clicks_sentence(report.get("clicks"), _("a recommendation")),
        clicks_any_sentence=_clicks_sentence(
            report.get("clicks_any"), _("any personalized content")
        ),
        split_tables=_split_tables(report),
        control_share=_share(control.get("visitors"), personalized.get("visitors")),
        daily_chart=charts.daily_rate_chart(report.get("daily") or []),
        placement_chart=charts.placement_rate_chart(report.get("by_placement") or []),
        csv_url="?" + urlencode({**_query(period, goal), "format": "csv"}),
        json_url="?" + urlencode({**_query(period, goal), "format": "json"}),
        min_visitors=_setting("REPORT_MIN_VISITORS"),
        min_conversions=_setting("REPORT_MIN_CONVERSIONS"),
    )
    return context


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
        rows = [{**row, "name": row.get(key)} for row in report.get(table_id) or []]
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


def _headline(personalized: Mapping[str, Any], control: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "key": key,
            "label": _(label),
            "personalized": show(personalized.get(key)),
            "control": show(control.get(key)),
        }
        for key, label, show in HEADLINE
    ]


def _signed_percent(fraction: float) -> str:
    return f"{fraction * 100:+.1f}%".replace("-", "−")


def _lift(lift: Mapping[str, Any]) -> dict[str, Any]:
    relative, ci95, p_value = lift.get("relative"), lift.get("ci95"), lift.get("p_value")
    shown: dict[str, Any] = {
        "relative": None if relative is None else _signed_percent(relative),
        "ci95": None,
        "p_value": None,
        "verdict": None,
        # Coloured as a gain or a loss only when it is unlikely to be chance.
        "tone": "",
        "method": lift.get("method") or "",
    }
    if ci95:
        low, high = ci95
        shown["ci95"] = _("%(low)s to %(high)s") % {
            "low": _signed_percent(low),
            "high": _signed_percent(high),
        }
    if p_value is not None:
        shown["p_value"] = (
            "< 0.001" if p_value < 0.001 else f"{p_value:.3f}".rstrip("0").rstrip(".")
        )
        if p_value < 0.05:
            shown["verdict"] = _("Unlikely to be chance alone (p < 0.05).")
            if relative is not None and relative != 0:
                shown["tone"] = "up" if relative > 0 else "down"
        else:
            shown["verdict"] = _(
                "Could still be chance: the interval includes no difference (p ≥ 0.05)."
            )
    return shown


def _clicks_sentence(clicks: Mapping[str, Any] | None, what: str) -> str:
    """The seed metric: how much better visitors who clicked convert than those who did not."""
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


def neutralize(value: Any) -> Any:
    """A cell a spreadsheet cannot run: text that could start a formula gets a leading '.

    Numbers stay numbers (a lift of -0.2 is data, not a formula); only text is changed.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


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
TABLES: Sequence[tuple[str, Sequence[str]]] = (
    (
        "by_placement",
        ("placement", *BOTH_GROUPS),
    ),
    (
        "by_content",
        (
            "placement",
            "content",
            "label",
            "visitors",
            "converted_visitors",
            "conversion_rate",
            "clicked_visitors",
        ),
    ),
    ("by_segment", ("segment", "visitors", "converted_visitors", "conversion_rate")),
    (
        "by_referrer",
        ("source", *BOTH_GROUPS),
    ),
    (
        "by_country",
        ("country", *BOTH_GROUPS),
    ),
    (
        "by_goal",
        (
            "goal",
            "personalized_converted_visitors",
            "personalized_rate",
            "control_converted_visitors",
            "control_rate",
        ),
    ),
    (
        "daily",
        ("date", "personalized_visitors", "personalized_rate", "control_visitors", "control_rate"),
    ),
)
MONEY = {"revenue", "average_order_value", "revenue_per_visitor"}


def report_rows(report: Mapping[str, Any]) -> Iterable[list[Any]]:
    """The report as CSV rows: one section after another, each with its own header row and
    its name in the first column, sections separated by an empty row."""
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
    yield []
    lift = report.get("lift") or {}
    ci95 = lift.get("ci95") or [None, None]
    yield ["section", "relative", "ci95_low", "ci95_high", "p_value", "enough_data", "method"]
    yield [
        "lift",
        lift.get("relative"),
        ci95[0],
        ci95[1],
        lift.get("p_value"),
        report.get("enough_data"),
        lift.get("method") or report.get("method"),
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
        yield ["section", *columns]
        for row in report.get(name) or []:
            yield [name, *(row.get(column) for column in columns)]


def report_csv(report: Mapping[str, Any], period: Period) -> HttpResponse:
    filename = f"personalization-report-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    for row in report_rows(report):
        writer.writerow([neutralize(value) for value in row])
    return response
