"""Quiet hours: the recipient's local time, and whether an email may go out now.

``EMAIL_QUIET_HOURS = (from, to)`` are local hours: from ``from:00`` up to ``to:00`` no email
is sent (``(21, 8)``: 21:00 to 07:59; ``(13, 14)``: 13:00 to 13:59). ``None``, or equal hours,
switch them off. The recipient's zone is, in this order: their visitor's (from GeoIP), their
country's when it has exactly one zone in the IANA tables, the shop's ``TIME_ZONE``.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from ..conf import app_settings
from ..profiling.geo import valid_time_zone

__all__ = ["is_quiet", "next_send_time", "quiet_for", "zone_for"]

logger = logging.getLogger("personalization")

#: The IANA tables of zones by country, best first: ``zone.tab`` names each country's own
#: zones, ``zone1970.tab`` zones shared by countries that agree since 1970.
ZONE_TABLES = ("zone.tab", "zone1970.tab")
SYSTEM_ZONEINFO = Path("/usr/share/zoneinfo")

_warned: set[str] = set()


# --- The zone ---------------------------------------------------------------------------------


def zone_for(time_zone: str | None, country_code: str | None) -> ZoneInfo:
    """The recipient's zone: ``time_zone`` when zoneinfo knows it; else the country's when it
    has exactly one zone ("FR": Europe/Paris; not "US"); else Django's default time zone."""
    name = _zone_name(
        time_zone if isinstance(time_zone, str) else "",
        country_code if isinstance(country_code, str) else "",
    )
    if name is None:
        return timezone.get_default_timezone()
    return ZoneInfo(name)


@functools.lru_cache(maxsize=4096)
def _zone_name(time_zone: str, country_code: str) -> str | None:
    name = valid_time_zone(time_zone)
    if name is not None:
        return name
    zones = country_zones().get(country_code.strip().upper(), ())
    return zones[0] if len(zones) == 1 else None


@functools.lru_cache(maxsize=1)
def country_zones() -> dict[str, tuple[str, ...]]:
    """ISO country code -> the zones zoneinfo knows for it, from the first IANA table found
    (the ``tzdata`` package's, else the system's); empty when there is none."""
    text = _zone_table()
    if text is None:
        logger.debug("personalization: no IANA zone table; countries give no time zone")
        return {}
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) < 3:
            continue
        name = valid_time_zone(columns[2])
        if name is None:
            continue
        for code in columns[0].split(","):
            code = code.strip().upper()
            if len(code) == 2 and name not in zones.setdefault(code, []):
                zones[code].append(name)
    return {code: tuple(names) for code, names in zones.items()}


def _zone_table() -> str | None:
    try:
        package = importlib.resources.files("tzdata").joinpath("zoneinfo")
    except (ImportError, TypeError):
        package = None
    for table in ZONE_TABLES:
        if package is not None:
            try:
                return package.joinpath(table).read_text(encoding="utf-8")
            except OSError:
                pass
    for table in ZONE_TABLES:
        try:
            return (SYSTEM_ZONEINFO / table).read_text(encoding="utf-8")
        except OSError:
            pass
    return None


# --- The window -------------------------------------------------------------------------------


def _window(hours: Any) -> tuple[int, int] | None:
    """``(from, to)`` when quiet hours apply; None when off, or (with a warning, once per
    value) when the value is not two hours 0-23."""
    if hours is None:
        return None
    if (
        isinstance(hours, list | tuple)
        and len(hours) == 2
        and all(type(hour) is int and 0 <= hour <= 23 for hour in hours)
    ):
        start, end = hours
        return None if start == end else (start, end)
    key = repr(hours)[:200]
    if key not in _warned and len(_warned) < 100:
        _warned.add(key)
        logger.warning(
            "personalization: EMAIL_QUIET_HOURS must be None or two hours 0-23 (from, to), "
            "got %s: emails are sent at any hour",
            key,
        )
    return None


def _local(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    if timezone.is_naive(now):  # Django's convention: naive times are in TIME_ZONE
        now = timezone.make_aware(now, timezone.get_default_timezone())
    return now.astimezone(zone)


def _in_window(hour: int, window: tuple[int, int]) -> bool:
    start, end = window
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end  # the window wraps midnight


def is_quiet(now: dt.datetime, zone: ZoneInfo, hours: Any = None) -> bool:
    """Whether ``now`` falls in the quiet hours in ``zone``; ``hours`` defaults to
    ``EMAIL_QUIET_HOURS``."""
    window = _window(app_settings.EMAIL_QUIET_HOURS if hours is None else hours)
    if window is None:
        return False
    return _in_window(_local(now, zone).hour, window)


def next_send_time(now: dt.datetime, zone: ZoneInfo, hours: Any = None) -> dt.datetime:
    """When the quiet hours around ``now`` end (in ``zone``), in UTC; ``now`` itself when it
    is not quiet.

    Across a change of the clocks it is the first moment the local hour is ``to`` or later.
    UTC, not ``zone``: arithmetic on a ``zoneinfo`` datetime is wall-clock arithmetic, and a
    wall time that occurs twice never equals a moment of another zone.
    """
    window = _window(app_settings.EMAIL_QUIET_HOURS if hours is None else hours)
    local = _local(now, zone)
    if window is None or not _in_window(local.hour, window):
        return now
    wall = local.replace(tzinfo=None)
    end = wall.replace(hour=window[1], minute=0, second=0, microsecond=0)
    if end <= wall:
        end += dt.timedelta(days=1)
    # fold=0: a wall time skipped by the clocks maps to the moment they jumped, and a wall
    # time that occurs twice to its first occurrence.
    return end.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)


def quiet_for(visitor_row_fields: Mapping[str, Any] | None, now: dt.datetime | None) -> bool:
    """Whether it is quiet now for the recipient of a Visitor row's ``time_zone`` and
    ``country_code`` (None: a recipient without a visitor, in the shop's time zone)."""
    fields = visitor_row_fields if isinstance(visitor_row_fields, Mapping) else {}
    now = timezone.now() if now is None else now
    zone = zone_for(fields.get("time_zone"), fields.get("country_code"))
    return is_quiet(now, zone)
