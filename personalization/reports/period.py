"""The report's period: whole days in the shop's time zone, parsed from YYYY-MM-DD strings."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from ..conf import app_settings

DEFAULT_DAYS = 30
# Far enough from the calendar's ends that the period, its attribution window and the
# conversion to UTC never overflow.
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(9998, 12, 31)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class PeriodError(ValueError):
    """A report period that cannot be used; the message says why, for the person asking."""


@dataclass(frozen=True)
class Period:
    """The days from ``start`` to ``end``, both included, in the shop's ``TIME_ZONE``."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> list[dt.date]:
        count = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=n) for n in range(count)]

    @property
    def start_at(self) -> dt.datetime:
        """Midnight at the start of the first day, shop time (aware when USE_TZ is on)."""
        return _midnight(self.start)

    @property
    def end_at(self) -> dt.datetime:
        """Midnight after the last day, shop time: the period ends before it."""
        return _midnight(self.end + dt.timedelta(days=1))


def _midnight(day: dt.date) -> dt.datetime:
    naive = dt.datetime.combine(day, dt.time.min)
    if not settings.USE_TZ:  # the database holds naive shop times then
        return naive
    return timezone.make_aware(naive, timezone.get_default_timezone())


def _today() -> dt.date:
    if not settings.USE_TZ:
        return timezone.now().date()
    return timezone.localdate(timezone=timezone.get_default_timezone())


def parse_period(start: str | None, end: str | None, *, today: dt.date | None = None) -> Period:
    """The period from ``start`` to ``end`` (YYYY-MM-DD, both included).

    Without ``end`` it ends today (shop time); without ``start`` it covers 30 days up to
    ``end`` (or ``REPORT_MAX_DAYS``, if fewer). Empty strings count as missing. Raises
    PeriodError for a date that is not YYYY-MM-DD, a start after the end, or more than
    ``REPORT_MAX_DAYS`` days.
    """
    max_days = max(1, int(app_settings.REPORT_MAX_DAYS))
    end_date = _parse_date(end, "end")
    start_date = _parse_date(start, "start")
    if end_date is None:
        end_date = today or _today()
    if start_date is None:
        default_days = min(DEFAULT_DAYS, max_days)
        start_date = max(end_date - dt.timedelta(days=default_days - 1), EARLIEST)
    if start_date > end_date:
        raise PeriodError(
            f"The start ({start_date.isoformat()}) is after the end ({end_date.isoformat()})."
        )
    days = (end_date - start_date).days + 1
    if days > max_days:
        raise PeriodError(f"The period covers {days} days; at most {max_days} are allowed.")
    return Period(start_date, end_date)


def _parse_date(value: str | None, name: str) -> dt.date | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        day = dt.date.fromisoformat(text)
    except ValueError:
        message = f"The {name} date {text!r} is not a date in the form YYYY-MM-DD."
        raise PeriodError(message) from None
    if not EARLIEST <= day <= LATEST:
        raise PeriodError(
            f"The {name} date {text!r} is not between {EARLIEST.isoformat()} "
            f"and {LATEST.isoformat()}."
        )
    return day
