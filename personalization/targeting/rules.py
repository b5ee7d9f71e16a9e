"""Segment rules: what each kind of rule reads from the profile, and how its value is written.

A rule's value is text that staff type in the admin ("2-5", "DE, AT", "camping >= 2"). Each
kind parses it once into a Python value (a wrong value is refused with a message) and tests
it against a visitor in memory, without SQL.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from ..profiling.devices import DEVICES
from ..profiling.referrer import SOURCES

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class RuleValueError(ValueError):
    """A rule value that does not parse; the message is shown to staff."""


class RuleContext:
    """What rules read for one visitor at one moment; the shop-local time is made once."""

    def __init__(self, visitor: Any, now: float) -> None:
        self.visitor = visitor
        self.data = visitor._data
        self.now = now

    @cached_property
    def local(self) -> dt.datetime:
        return timezone.localtime(dt.datetime.fromtimestamp(self.now, tz=dt.UTC))

    @cached_property
    def geo(self) -> Any:
        return self.visitor.current_geo()


@dataclass(frozen=True)
class RuleKind:
    key: str
    label: StrOrPromise
    help: StrOrPromise
    parse: Callable[[str], Any]
    test: Callable[[RuleContext, Any], bool]


# Parsers -------------------------------------------------------------------------------
_RANGE_RE = re.compile(
    r"^\s*(?:(?P<op>>=|<=|>|<|=)?\s*(?P<a>[-+]?\d+(?:[.,]\d+)?)\s*(?P<plus>\+)?"
    r"(?:\s*(?:-|\.\.|to)\s*(?P<b>\d+(?:[.,]\d+)?))?)\s*$"
)


def _number_range(text: str, *, integer: bool) -> tuple[float, float]:
    """ "3", "2-5", ">=3", ">3", "<2", "3+" -> inclusive (low, high)."""
    match = _RANGE_RE.match(text or "")
    if not match:
        raise RuleValueError(_('Write a number or a range, e.g. "3", "2-5", ">3" or "<=10".'))
    op, plus = match["op"], match["plus"]
    try:
        a = Decimal(match["a"].replace(",", "."))
        b = Decimal(match["b"].replace(",", ".")) if match["b"] else None
    except InvalidOperation:
        raise RuleValueError(_("That is not a number.")) from None
    if integer and (a != a.to_integral_value() or (b is not None and b != b.to_integral_value())):
        raise RuleValueError(_("Use whole numbers here."))
    if a < 0 or (b is not None and b < 0):
        raise RuleValueError(_("Use numbers of zero or more."))
    step = Decimal(1) if integer else Decimal("0.01")
    low, high = float(a), float(a)
    if b is not None:
        if op:
            raise RuleValueError(_('Write either a range ("2-5") or a comparison (">3").'))
        if b < a:
            raise RuleValueError(_("The range ends before it starts."))
        high = float(b)
    elif plus or op == ">=":
        high = math.inf
    elif op == ">":
        low, high = float(a + step), math.inf
    elif op == "<=":
        low = 0.0
    elif op == "<":
        low, high = 0.0, float(a - step)
        if high < 0:
            raise RuleValueError(_("Nothing is below zero."))
    return low, high


def _int_range(text: str) -> tuple[float, float]:
    return _number_range(text, integer=True)


def _money_range(text: str) -> tuple[float, float]:
    return _number_range(text, integer=False)


def _no_value(text: str) -> None:
    if (text or "").strip():
        raise RuleValueError(_("This rule takes no value; leave it empty."))


def _items(text: str) -> list[str]:
    items = [item.strip() for item in re.split(r"[,;\n]", text or "") if item.strip()]
    if not items:
        raise RuleValueError(_("Give at least one value (separate several with commas)."))
    return items


def _choices(allowed: tuple[str, ...]) -> Callable[[str], frozenset[str]]:
    def parse(text: str) -> frozenset[str]:
        values = {item.lower() for item in _items(text)}
        unknown = sorted(values - set(allowed))
        if unknown:
            raise RuleValueError(
                _("Unknown: %(unknown)s. Choose from: %(allowed)s.")
                % {"unknown": ", ".join(unknown), "allowed": ", ".join(allowed)}
            )
        return frozenset(values)

    return parse


def _countries(text: str) -> frozenset[str]:
    codes = {item.upper() for item in _items(text)}
    bad = sorted(code for code in codes if not re.fullmatch(r"[A-Z]{2}", code))
    if bad:
        raise RuleValueError(
            _("Use two-letter ISO country codes such as DE or GB (not: %(bad)s).")
            % {"bad": ", ".join(bad)}
        )
    return frozenset(codes)


def _words(text: str) -> frozenset[str]:
    return frozenset(item.casefold() for item in _items(text))


def _campaigns(text: str) -> frozenset[str] | None:
    """A list of campaign names, or "*" for any campaign."""
    return None if (text or "").strip() == "*" else _words(text)


_INTEREST_RE = re.compile(r"^\s*(?P<key>[^\s<>=]+)\s*(?:(?:>=|>|=)?\s*(?P<t>\d+(?:[.,]\d+)?))?\s*$")


def _interest(text: str) -> tuple[str, float]:
    match = _INTEREST_RE.match(text or "")
    if not match:
        raise RuleValueError(
            _('Write a category key and optionally a threshold, e.g. "camping" or "camping >= 2".')
        )
    threshold = float(match["t"].replace(",", ".")) if match["t"] else 1.0
    if threshold <= 0:
        raise RuleValueError(_("The threshold must be above zero."))
    return match["key"], threshold


def _product_keys(text: str) -> frozenset[str]:
    return frozenset(_items(text))


def _days(text: str) -> float:
    try:
        days = float((text or "").strip().replace(",", "."))
    except ValueError:
        raise RuleValueError(_("Write a number of days, e.g. 2.")) from None
    if not 0 < days <= 3650:
        raise RuleValueError(_("Write a number of days from 0 to 3650."))
    return days


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _weekdays(text: str) -> frozenset[int]:
    names = {item.lower()[:3] for item in _items(text)}
    unknown = sorted(names - set(WEEKDAYS))
    if unknown:
        raise RuleValueError(
            _("Unknown day: %(unknown)s. Use mon, tue, wed, thu, fri, sat, sun.")
            % {"unknown": ", ".join(unknown)}
        )
    return frozenset(WEEKDAYS.index(name) for name in names)


def _hours(text: str) -> tuple[int, int]:
    """ "9-17": from 9:00 to 16:59; "22-6" wraps past midnight."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", text or "")
    if not match:
        raise RuleValueError(_('Write hours as "from-to", e.g. "9-17" or "22-6".'))
    start, end = int(match[1]), int(match[2])
    if not (0 <= start <= 23 and 0 <= end <= 24) or start == end:
        raise RuleValueError(_("Hours go from 0 to 24, and the two must differ."))
    return start, end


def _dates(text: str) -> tuple[dt.date, dt.date]:
    parts = re.split(r"\s*(?:\.\.|/| to )\s*", (text or "").strip())
    try:
        if len(parts) == 1:
            start = end = dt.date.fromisoformat(parts[0])
        elif len(parts) == 2:
            start, end = dt.date.fromisoformat(parts[0]), dt.date.fromisoformat(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise RuleValueError(
            _('Write a date or a range of dates, e.g. "2026-11-27" or "2026-11-27..2026-11-30".')
        ) from None
    if end < start:
        raise RuleValueError(_("The range ends before it starts."))
    return start, end


# Tests ---------------------------------------------------------------------------------
def _in_range(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def _geo_in(attribute: str) -> Callable[[RuleContext, frozenset[str]], bool]:
    def test(ctx: RuleContext, wanted: frozenset[str]) -> bool:
        value = getattr(ctx.geo, attribute)
        if not value:
            return False
        return (value.upper() if attribute == "country_code" else value.casefold()) in wanted

    return test


def _campaign_test(ctx: RuleContext, wanted: frozenset[str] | None) -> bool:
    campaign = ctx.data.referrer.campaign
    if not campaign:
        return False
    return wanted is None or campaign.casefold() in wanted


def _interest_test(ctx: RuleContext, value: tuple[str, float]) -> bool:
    key, threshold = value
    return bool(ctx.visitor.category_interest(key) >= threshold)


def _abandoned_cart(ctx: RuleContext, days: float) -> bool:
    added = ctx.data.cart_updated_at
    if added is None:
        return False
    ordered = ctx.data.last_order_at
    if ordered is not None and ordered >= added:
        return False
    return bool(ctx.now - added >= days * 86400)


def _hour_test(ctx: RuleContext, hours: tuple[int, int]) -> bool:
    start, end = hours
    hour = ctx.local.hour
    return start <= hour < end if start < end else (hour >= start or hour < end)


def _date_test(ctx: RuleContext, dates: tuple[dt.date, dt.date]) -> bool:
    return dates[0] <= ctx.local.date() <= dates[1]


_KINDS = [
    RuleKind("first_visit", _("First visit"), _("No value."), _no_value,
             lambda ctx, _v: ctx.data.visit_count == 1),
    RuleKind("returning", _("Returning visitor"), _("No value."), _no_value,
             lambda ctx, _v: ctx.data.visit_count > 1),
    RuleKind("visit_count", _("Number of visits"), _('"3", "2-5", ">3", "<=2".'), _int_range,
             lambda ctx, v: _in_range(ctx.data.visit_count, v)),
    RuleKind("referrer_source", _("Arrived from"),
             _("One or more of: %s.") % ", ".join(SOURCES), _choices(SOURCES),
             lambda ctx, v: ctx.data.referrer.source in v),
    RuleKind("referred", _("Arrived through a referral"), _("No value."), _no_value,
             lambda ctx, _v: bool(ctx.data.referred_by)),
    RuleKind("campaign", _("Campaign (utm_campaign)"),
             _('Campaign names, or "*" for any campaign.'), _campaigns, _campaign_test),
    RuleKind("country", _("Country"), _('ISO codes, e.g. "DE, AT, CH".'), _countries,
             _geo_in("country_code")),
    RuleKind("region", _("Region"), _('English names, e.g. "Bavaria, England".'), _words,
             _geo_in("region")),
    RuleKind("city", _("City"), _('English names, e.g. "London, Paris".'), _words,
             _geo_in("city")),
    RuleKind("category_interest", _("Interested in a category"),
             _('A category key and a threshold: "camping >= 2" (one fresh view = 1).'),
             _interest, _interest_test),
    RuleKind("viewed_product", _("Viewed a product"), _("Product ids, e.g. \"12, 40\"."),
             _product_keys,
             lambda ctx, v: any(str(pk) in v for pk in ctx.data.recently_viewed)
             or any(key in v for key in ctx.data.product_views)),
    RuleKind("order_count", _("Number of orders"),
             _('Frequent buyers: ">3"; never bought: "0".'), _int_range,
             lambda ctx, v: _in_range(ctx.data.order_count, v)),
    RuleKind("total_spent", _("Total spent"), _('An amount or a range, e.g. ">=100".'),
             _money_range, lambda ctx, v: _in_range(ctx.data.total_spent, v)),
    RuleKind("abandoned_cart", _("Cart left without an order for N days"),
             _("A number of days, e.g. 1."), _days, _abandoned_cart),
    RuleKind("signed_up", _("Gave an email address"), _("No value."), _no_value,
             lambda ctx, _v: ctx.data.signed_up_at is not None),
    RuleKind("device", _("Device"), _("One or more of: %s.") % ", ".join(DEVICES),
             _choices(DEVICES), lambda ctx, v: ctx.data.device in v),
    RuleKind("weekday", _("Day of the week (shop time)"), _('e.g. "sat, sun".'), _weekdays,
             lambda ctx, v: ctx.local.weekday() in v),
    RuleKind("hour", _("Hour of the day (shop time)"), _('"9-17", or "22-6" across midnight.'),
             _hours, _hour_test),
    RuleKind("date_range", _("Date range (shop time)"),
             _('"2026-11-27" or "2026-11-27..2026-11-30".'), _dates, _date_test),
]  # fmt: skip

RULE_KINDS: dict[str, RuleKind] = {kind.key: kind for kind in _KINDS}
RULE_CHOICES = [(kind.key, kind.label) for kind in _KINDS]
