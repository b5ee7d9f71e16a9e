"""Rows the report's tests write again and again: the winter-sale banner shown to a visitor
(or the placement's default, to the control group) and a purchase."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from personalization.models import Conversion, Exposure


def banner_shown(visitor: Any, *, control: bool, at: dt.datetime) -> Exposure:
    """The home-hero banner "Winter sale" (the default content for the control group), saved."""
    return Exposure.objects.create(
        visitor=visitor,
        placement="home-hero",
        kind=Exposure.BANNER,
        content="default" if control else "banner:1",
        content_label="" if control else "Winter sale",
        is_control=control,
        created_at=at,
    )


def purchase(visitor_id: str, *, control: bool, at: dt.datetime, revenue: str) -> Conversion:
    """An order of ``visitor_id`` (order id ``o-<visitor>``), not saved: for bulk_create."""
    return Conversion(
        visitor_id=visitor_id,
        kind=Conversion.PURCHASE,
        goal="purchase",
        order_id=f"o-{visitor_id}",
        revenue=Decimal(revenue),
        is_control=control,
        created_at=at,
    )
