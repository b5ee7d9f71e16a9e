"""Coupons: issue unguessable single-use codes, validate them, redeem them atomically, and
work out the discount they give."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Coupon, ReferralCode
from .money import parse_amount

# 32 symbols without the look-alikes 0/O and 1/I: 5 bits each.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GROUPS = 3
GROUP_LENGTH = 4  # 3 groups of 4 symbols: 60 random bits
MAX_PREFIX_LENGTH = 16
MAX_ORDER_ID_LENGTH = 64
CREATE_ATTEMPTS = 5
CENT = Decimal("0.01")

PREFIXES = {
    Coupon.SOURCE_SIGNUP: "WELCOME",
    Coupon.SOURCE_REFERRAL_WELCOME: "FRIEND",
    Coupon.SOURCE_REFERRAL_REWARD: "THANKS",
}

_NOT_PREFIX = re.compile(r"[^A-Z0-9]")
_WHITESPACE = re.compile(r"\s+")


class CouponError(ValueError):
    """A code that cannot be used; ``reason`` is one of :data:`REASONS`."""

    REASONS = {
        "unknown": _("This code does not exist."),
        "expired": _("This code has expired."),
        "redeemed": _("This code has already been used."),
        "not-applicable": _("This code does not apply to these products."),
    }

    def __init__(self, reason: str, message: str | None = None) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"Unknown coupon error reason {reason!r}.")
        self.reason = reason
        self.message = message or str(self.REASONS[reason])
        super().__init__(self.message)


# Codes ----------------------------------------------------------------------------------
def generate_code(prefix: str = "") -> str:
    """A fresh code such as ``WELCOME-7KQ4-M9XR-2HTP``: 60 random bits from :data:`ALPHABET`,
    after an optional prefix (upper-cased, letters and digits only)."""
    groups = ["".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS)]
    clean_prefix = _NOT_PREFIX.sub("", prefix.upper())[:MAX_PREFIX_LENGTH]
    return "-".join([clean_prefix, *groups] if clean_prefix else groups)


def normalize_code(code: Any) -> str:
    """What a customer typed, as stored: spaces removed, upper case."""
    return _WHITESPACE.sub("", code).upper() if isinstance(code, str) else ""


def issue(
    *,
    source: str,
    value: Any,
    kind: str = Coupon.PERCENT,
    email: str = "",
    visitor_id: str | None = None,
    days: int | float | None = None,
    product_ids: Iterable[Any] = (),
    referral: ReferralCode | None = None,
    currency: str = "",
    note: str = "",
    referred_visitor_id: str = "",
) -> Coupon:
    """Create a coupon with a new unique code; ``days=None`` never expires."""
    amount = checked_value(kind, value)
    if source not in dict(Coupon.SOURCE_CHOICES):
        raise ValueError(f"Unknown coupon source {source!r}.")
    expires_at = timezone.now() + dt.timedelta(days=days) if days is not None else None
    coupon = Coupon(
        kind=kind,
        value=amount,
        currency=currency.upper(),
        product_ids=list(product_ids),
        source=source,
        email=email,
        visitor_id=visitor_id,
        referral=referral,
        note=note[:200],
        expires_at=expires_at,
        referred_visitor_id=referred_visitor_id,
    )
    prefix = PREFIXES.get(source, "")
    return save_with_fresh_code(coupon, lambda: generate_code(prefix))


def checked_value(kind: str, value: Any) -> Decimal:
    """The value as stored; ValueError unless a percentage in (0, 100] or a positive amount."""
    try:
        amount = Decimal(str(value)).quantize(CENT)
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"A coupon's value must be a number, not {value!r}.") from None
    if kind not in dict(Coupon.KIND_CHOICES):
        raise ValueError(f"Unknown coupon kind {kind!r}.")
    if amount <= 0 or (kind == Coupon.PERCENT and amount > 100):
        raise ValueError(f"{value!r} is not a valid {kind} value.")
    return amount


_Coded = TypeVar("_Coded", Coupon, ReferralCode)


def save_with_fresh_code(instance: _Coded, make_code: Callable[[], str]) -> _Coded:
    """Insert ``instance`` (a Coupon or ReferralCode) under a new ``code``, drawing another
    on a collision. An IntegrityError that is not about the code is raised."""
    model = type(instance)
    attempts = 0
    while True:
        attempts += 1
        instance.code = make_code()
        try:
            with transaction.atomic():
                instance.save(force_insert=True)
            return instance
        except IntegrityError:
            taken = model._default_manager.filter(code=instance.code).exists()
            if not taken or attempts >= CREATE_ATTEMPTS:
                raise


# Use ------------------------------------------------------------------------------------
def validate(code: Any) -> Coupon:
    """The usable coupon for ``code`` (any case, spaces ignored); raises CouponError."""
    coupon = Coupon.objects.filter(code=normalize_code(code)).first() if code else None
    if coupon is None:
        raise CouponError("unknown")
    _check_usable(coupon, timezone.now())
    return coupon


def _check_usable(coupon: Coupon, now: dt.datetime) -> None:
    if coupon.is_redeemed:
        raise CouponError("redeemed")
    if coupon.is_expired(now):
        raise CouponError("expired")


def redeem(code: Any, *, order_id: Any) -> Coupon:
    """Mark the coupon used by ``order_id`` in one conditional UPDATE, so that of concurrent
    redemptions exactly one wins. Redeeming again for the same order returns the coupon."""
    order_id = str(order_id).strip() if order_id is not None else ""
    if not order_id or len(order_id) > MAX_ORDER_ID_LENGTH:
        raise ValueError(f"order_id must be 1 to {MAX_ORDER_ID_LENGTH} characters.")
    normalized = normalize_code(code)
    if not normalized:
        raise CouponError("unknown")
    now = timezone.now()
    won = (
        Coupon.objects.filter(code=normalized, redeemed_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .update(redeemed_at=now, redeemed_order_id=order_id)
    )
    coupon = Coupon.objects.filter(code=normalized).first()
    if coupon is None:
        raise CouponError("unknown")
    if won or (coupon.is_redeemed and coupon.redeemed_order_id == order_id):
        return coupon
    _check_usable(coupon, now)
    raise CouponError("redeemed")  # pragma: no cover  (changed between the two queries)


def discount(
    coupon: Coupon, subtotal: Any, lines: Iterable[tuple[Any, Any, Any]] | None = None
) -> Decimal:
    """The amount the coupon takes off, never more than what it applies to.

    A coupon limited to products counts only the matching ``(product_pk, quantity,
    unit_price)`` lines, and raises CouponError("not-applicable") when none match.
    """
    base = parse_amount(subtotal)
    if coupon.product_ids:
        base = min(base, _matching_total(coupon, lines or ()))
    percent = coupon.kind == Coupon.PERCENT
    off = base * Decimal(coupon.value) / 100 if percent else Decimal(coupon.value)
    return min(off, base).quantize(CENT, rounding=ROUND_HALF_UP)


def _matching_total(coupon: Coupon, lines: Iterable[tuple[Any, Any, Any]]) -> Decimal:
    wanted = {str(pk) for pk in coupon.product_ids}
    matching = [(quantity, unit_price) for pk, quantity, unit_price in lines if str(pk) in wanted]
    if not matching:
        raise CouponError("not-applicable")
    return sum((int(quantity) * parse_amount(price) for quantity, price in matching), Decimal(0))


def for_visitor(visitor_id: str) -> list[Coupon]:
    """The coupons issued to a visitor, newest first."""
    return list(Coupon.objects.filter(visitor_id=visitor_id))
