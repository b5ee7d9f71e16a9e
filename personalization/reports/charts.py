"""Inline SVG charts for the report page, drawn on the server: no CDN, no JavaScript.

Every piece of text that comes from data (dates, placement slugs) goes through
``format_html``/``escape``; the result is safe to put into a template as it is. Colours are
presentation attributes, so the charts also read well outside the admin, and carry classes the
admin page's stylesheet uses to follow the admin's light and dark themes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

PERSONALIZED_COLOUR = "#417690"
CONTROL_COLOUR = "#c36b1d"
AXIS_COLOUR = "#666666"
GRID_COLOUR = "#dddddd"

_ids = itertools.count(1)


def nice_ticks(largest: float) -> list[float]:
    """Ticks from 0 to at least ``largest`` at a round step (1, 2 or 5 times a power of ten),
    three to six steps, the top as low as possible: axes read 0, 10, 20… not 0, 12.5, 25…"""
    if largest <= 0:
        return [0.0, 1.0]
    magnitude = math.floor(math.log10(largest))
    candidates = []
    for power in range(magnitude - 2, magnitude + 1):
        for multiple in (1, 2, 5):
            step = multiple * 10.0**power
            steps = math.ceil(largest / step - 1e-9)
            if 3 <= steps <= 6:
                candidates.append((step * steps, steps, step))
    _top, steps, step = min(candidates)
    return [round(step * n, 10) for n in range(steps + 1)]


def _percent(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") + "%"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rate(row: Mapping[str, Any], rate_key: str, visitors_key: str) -> float | None:
    """A day's rate, or None where nobody in that group was seen (a gap, not a zero)."""
    rate = row.get(rate_key)
    if rate is None or not row.get(visitors_key):
        return None
    return float(rate)


def _svg_open(kind: str, width: int, height: int, title: str, description: str) -> SafeString:
    number = next(_ids)
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="pzn-chart pzn-chart-{kind}" role="img" '
        'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        'aria-label="{title}" aria-describedby="pzn-{kind}-desc-{n}" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12">'
        '<title id="pzn-{kind}-title-{n}">{title}</title>'
        '<desc id="pzn-{kind}-desc-{n}">{description}</desc>',
        kind=kind,
        width=width,
        height=height,
        title=title,
        description=description,
        n=number,
    )


def _legend(
    x: float, y: float, entries: Sequence[tuple[str, str, bool]], bars: bool = False
) -> SafeString:
    """Swatches and names side by side from (x, y); entries are (name, colour, is_control)."""
    parts = []
    for name, colour, is_control in entries:
        css = "pzn-control" if is_control else "pzn-personalized"
        if bars:
            swatch = format_html(
                '<rect x="{x}" y="{y}" width="16" height="10" rx="2" fill="{colour}"'
                ' class="pzn-fill {css}"/>',
                x=x + 3,
                y=y - 5,
                colour=colour,
                css=css,
            )
        else:
            swatch = format_html(
                '<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" stroke-width="3"'
                ' class="pzn-stroke {css}"{dash}/>',
                x1=x,
                x2=x + 22,
                y=y,
                colour=colour,
                css=css,
                dash=mark_safe(' stroke-dasharray="6 4"') if is_control else "",
            )
        parts.append(
            format_html(
                '<g class="pzn-legend-entry">{swatch}'
                '<text x="{tx}" y="{ty}" class="pzn-text" fill="{text}">{name}</text></g>',
                swatch=swatch,
                tx=x + 28,
                ty=y + 4,
                text=AXIS_COLOUR,
                name=name,
            )
        )
        x = round(x + 44 + 7.2 * len(name), 1)
    return mark_safe("".join(parts))


def _empty(kind: str, width: int, height: int, title: str, message: str) -> SafeString:
    return format_html(
        '{open}<text x="{x}" y="{y}" text-anchor="middle" class="pzn-text" fill="{colour}">'
        "{message}</text></svg>",
        open=_svg_open(kind, width, height, title, message),
        x=width / 2,
        y=height / 2,
        colour=AXIS_COLOUR,
        message=message,
    )


def daily_rate_chart(
    daily: Sequence[Mapping[str, Any]], width: int = 760, height: int = 300
) -> str:
    """A line chart of each day's conversion rate, personalized against control."""
    title = _("Daily conversion rate, personalized vs control")
    series = [
        (
            _("Personalized"),
            PERSONALIZED_COLOUR,
            False,
            [_rate(row, "personalized_rate", "personalized_visitors") for row in daily],
            [row.get("personalized_visitors") or 0 for row in daily],
        ),
        (
            _("Control"),
            CONTROL_COLOUR,
            True,
            [_rate(row, "control_rate", "control_visitors") for row in daily],
            [row.get("control_visitors") or 0 for row in daily],
        ),
    ]
    known = [rate for *_rest, rates, _visitors in series for rate in rates if rate is not None]
    if not daily or not known:
        return _empty("daily", width, 120, title, _("No visitors in this period yet."))

    left, right, top, bottom = 56, 30, 40, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max(known))
    y_max = ticks[-1]
    days = len(daily)

    def x_at(index: int) -> float:
        return left + (plot_w * index / (days - 1) if days > 1 else plot_w / 2)

    def y_at(rate: float) -> float:
        return top + plot_h - plot_h * rate / y_max

    described = ", ".join(
        f"{row.get('date')}: "
        + " / ".join(
            f"{name.lower()} {_percent(rates[i]) if rates[i] is not None else '–'}"  # type: ignore[arg-type]
            for name, _c, _d, rates, _v in series
        )
        for i, row in enumerate(daily)
    )
    parts: list[str] = [
        _svg_open("daily", width, height, title, _("Conversion rate per day: ") + described)
    ]

    # Grid lines and y labels at round steps.
    for value in ticks:
        y = y_at(value)
        parts.append(
            format_html(
                '<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{grid}" class="pzn-grid"/>'
                '<text x="{tx}" y="{ty}" text-anchor="end" class="pzn-text" fill="{axis}">'
                "{label}</text>",
                x1=left,
                x2=left + plot_w,
                y=round(y, 1),
                grid=GRID_COLOUR,
                tx=left - 6,
                ty=round(y + 4, 1),
                axis=AXIS_COLOUR,
                label=_percent(value),
            )
        )
    # Axes.
    parts.append(
        format_html(
            '<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="{c}" class="pzn-axis"/>'
            '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{c}" class="pzn-axis"/>',
            l=left,
            t=top,
            b=top + plot_h,
            r=left + plot_w,
            c=AXIS_COLOUR,
        )
    )
    # X labels: at most eight dates, evenly spread, first and last always.
    label_every = max(1, math.ceil((days - 1) / 7)) if days > 1 else 1
    shown = sorted({*range(0, days, label_every), days - 1})
    if len(shown) > 1 and shown[-1] - shown[-2] < label_every / 2:
        shown.pop(-2)  # keep the last date from crowding its neighbour
    for index in shown:
        parts.append(
            format_html(
                '<line x1="{x}" y1="{b}" x2="{x}" y2="{b2}" stroke="{c}" class="pzn-axis"/>'
                '<text x="{x}" y="{ty}" text-anchor="middle" class="pzn-text" fill="{c}">'
                "{label}</text>",
                x=round(x_at(index), 1),
                b=top + plot_h,
                b2=top + plot_h + 4,
                ty=top + plot_h + 18,
                c=AXIS_COLOUR,
                label=_day_label(daily[index].get("date")),
            )
        )
    parts.append(
        format_html(
            '<text x="{x}" y="{y}" text-anchor="middle" class="pzn-text pzn-axis-title" '
            'fill="{c}">{label}</text>',
            x=left + plot_w / 2,
            y=height - 6,
            c=AXIS_COLOUR,
            label=_("Day"),
        )
    )
    parts.append(
        format_html(
            '<text x="14" y="{y}" text-anchor="middle" transform="rotate(-90 14 {y})" '
            'class="pzn-text pzn-axis-title" fill="{c}">{label}</text>',
            y=top + plot_h / 2,
            c=AXIS_COLOUR,
            label=_("Conversion rate"),
        )
    )

    for name, colour, dashed, rates, visitors in series:
        css = "pzn-control" if dashed else "pzn-personalized"
        known_points = {
            i: (x_at(i), y_at(rate)) for i, rate in enumerate(rates) if rate is not None
        }
        for run in _runs(rates):
            points = " ".join("{:.1f},{:.1f}".format(*known_points[i]) for i in run)
            parts.append(
                format_html(
                    '<polyline class="pzn-line pzn-stroke {css}" fill="none" stroke="{colour}" '
                    'stroke-width="2.5" stroke-linejoin="round" points="{points}"{dash}/>',
                    css=css,
                    colour=colour,
                    points=points,
                    dash=mark_safe(' stroke-dasharray="6 4"') if dashed else "",
                )
            )
        for i, rate in enumerate(rates):
            if rate is None:
                continue
            parts.append(
                format_html(
                    '<circle class="pzn-point pzn-fill {css}" cx="{x}" cy="{y}" r="3.5" '
                    'fill="{colour}"><title>{date} · {name}: {rate} ({visitors})</title></circle>',
                    css=css,
                    x=round(x_at(i), 1),
                    y=round(y_at(rate), 1),
                    colour=colour,
                    date=str(daily[i].get("date", "")),
                    name=name,
                    rate=_percent(rate),
                    visitors=_("%(count)s visitors") % {"count": visitors[i]},
                )
            )
    parts.append(
        _legend(left, 18, [(name, colour, dashed) for name, colour, dashed, *_r in series])
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def placement_rate_chart(
    placements: Iterable[Mapping[str, Any]], width: int = 760, row_height: int = 46
) -> str:
    """Horizontal bars of each placement's conversion rate, personalized against control."""
    title = _("Conversion rate by placement, personalized vs control")
    rows = list(placements)
    if not rows:
        return _empty("placement", width, 120, title, _("No placement was shown in this period."))

    left, right, top, bottom = 180, 70, 40, 34
    height = top + bottom + row_height * len(rows)
    plot_w = width - left - right
    rates = [
        (float(row.get("conversion_rate") or 0), float(row.get("control_conversion_rate") or 0))
        for row in rows
    ]
    ticks = nice_ticks(max(max(pair) for pair in rates))
    x_max = ticks[-1]

    def x_at(rate: float) -> float:
        return left + plot_w * rate / x_max

    described = "; ".join(
        _("%(placement)s: personalized %(personalized)s, control %(control)s")
        % {
            "placement": row.get("placement", ""),
            "personalized": _percent(personalized),
            "control": _percent(control),
        }
        for row, (personalized, control) in zip(rows, rates, strict=True)
    )
    parts: list[str] = [_svg_open("placement", width, height, title, described)]
    for value in ticks:
        x = round(x_at(value), 1)
        parts.append(
            format_html(
                '<line x1="{x}" y1="{t}" x2="{x}" y2="{b}" stroke="{grid}" class="pzn-grid"/>'
                '<text x="{x}" y="{ty}" text-anchor="middle" class="pzn-text" fill="{c}">'
                "{label}</text>",
                x=x,
                t=top,
                b=height - bottom,
                grid=GRID_COLOUR,
                ty=height - bottom + 16,
                c=AXIS_COLOUR,
                label=_percent(value),
            )
        )
    parts.append(
        format_html(
            '<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="{c}" class="pzn-axis"/>',
            l=left,
            t=top,
            b=height - bottom,
            c=AXIS_COLOUR,
        )
    )
    bar = (row_height - 14) / 2
    for index, (row, (personalized, control)) in enumerate(zip(rows, rates, strict=True)):
        y = top + index * row_height + 6
        placement = str(row.get("placement", ""))
        parts.append(
            format_html(
                '<text x="{x}" y="{y}" text-anchor="end" class="pzn-text pzn-label" fill="{c}">'
                "<title>{full}</title>{short}</text>",
                x=left - 8,
                y=round(y + bar + 4, 1),
                c=AXIS_COLOUR,
                full=placement,
                short=_short(placement, 24),
            )
        )
        for offset, rate, visitors, converted, colour, css, name in (
            (
                0,
                personalized,
                row.get("visitors", 0),
                row.get("converted_visitors", 0),
                PERSONALIZED_COLOUR,
                "pzn-personalized",
                _("Personalized"),
            ),
            (
                bar + 2,
                control,
                row.get("control_visitors", 0),
                row.get("control_converted_visitors", 0),
                CONTROL_COLOUR,
                "pzn-control",
                _("Control"),
            ),
        ):
            bar_w = max(x_at(rate) - left, 1 if visitors else 0)
            parts.append(
                format_html(
                    '<rect class="pzn-bar pzn-fill {css}" x="{x}" y="{y}" width="{w}" '
                    'height="{h}" fill="{colour}" rx="2"><title>{placement} · {name}: '
                    "{rate} ({converted} / {visitors})</title></rect>"
                    '<text x="{tx}" y="{ty}" class="pzn-text pzn-value" fill="{c}" '
                    'font-size="11">{rate}</text>',
                    css=css,
                    x=left,
                    y=round(y + offset, 1),
                    w=round(bar_w, 1),
                    h=round(bar, 1),
                    colour=colour,
                    placement=placement,
                    name=name,
                    rate=_percent(rate),
                    converted=converted,
                    visitors=visitors,
                    tx=round(left + bar_w + 5, 1),
                    ty=round(y + offset + bar - 3, 1),
                    c=AXIS_COLOUR,
                )
            )
    parts.append(
        _legend(
            left,
            18,
            [(_("Personalized"), PERSONALIZED_COLOUR, False), (_("Control"), CONTROL_COLOUR, True)],
            bars=True,
        )
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _runs(values: Sequence[float | None]) -> list[list[int]]:
    """Indexes of consecutive known values: each run is drawn as its own line."""
    runs: list[list[int]] = []
    current: list[int] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(index)
    if current:
        runs.append(current)
    return runs


def _day_label(value: Any) -> str:
    try:
        day = dt.date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{day.strftime('%b')} {day.day}"
