"""Rows the report's tests write again and again: the winter-sale banner shown to a visitor
(or the placement's default, to the control group) and a purchase."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from personalization.models import Conversion, Exposure


def banner(
    visitor_id: str, *, control: bool, at: dt.datetime, label: str = "Winter sale"
) -> Exposure:
    """The home-hero banner ``label`` (the default content for the control group), not
    saved: for bulk_create."""
    return Exposure(
        visitor_id=visitor_id,
        placement="home-hero",
        kind=Exposure.BANNER,
        content="default" if control else "banner:1",
        content_label="" if control else label,
        is_control=control,
        created_at=at,
    )


def banner_shown(visitor: Any, *, control: bool, at: dt.datetime) -> Exposure:
    """The home-hero banner "Winter sale" (the default content for the control group), saved."""
    shown = banner(visitor.pk, control=control, at=at)
    shown.save()
    return shown


def purchase(
    visitor_id: str,
    *,
    control: bool = False,
    at: dt.datetime,
    revenue: str,
    order_id: str = "",
    currency: str = "",
) -> Conversion:
    """An order of ``visitor_id`` (order id ``o-<visitor>`` unless given), not saved: for
    bulk_create."""
    return Conversion(
        visitor_id=visitor_id,
        kind=Conversion.PURCHASE,
        goal="purchase",
        order_id=order_id or f"o-{visitor_id}",
        revenue=Decimal(revenue),
        currency=currency,
        is_control=control,
        created_at=at,
    )
