"""Coupons as Oscar vouchers: every personalization coupon becomes a single-use voucher with
the same code, validity window and discount, and the order that uses the voucher redeems the
coupon in the same transaction, so a code is honoured exactly once.

Vouchers of the same discount share one voucher offer (as Oscar's voucher sets do), so the
dashboard lists a handful of offers, not one per signup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from oscar.core.loading import get_class, get_model

from ... import coupons
from ...models import Coupon

logger = logging.getLogger("personalization")

OFFER_PREFIX = "Personalization"
# Oscar vouchers need an end; a coupon that never expires gets one far away.
NO_EXPIRY = dt.timedelta(days=100 * 365)


def sync_voucher(coupon: Coupon) -> Any:
    """Create or update the voucher of ``coupon``; returns it, or None when its code belongs
    to a voucher the shop made itself (which is left alone)."""
    voucher_model = get_model("voucher", "Voucher")
    offer = offer_for(coupon)
    end = coupon.expires_at or coupon.created_at + NO_EXPIRY
    voucher = voucher_model._default_manager.filter(code=coupon.code).first()
    if voucher is None:
        voucher = voucher_model(code=coupon.code, usage=voucher_model.SINGLE_USE)
    elif not is_personalization_voucher(voucher):
        logger.error(
            "personalization: coupon %s cannot be redeemed in the basket: a voucher the shop "
            "made has the same code",
            coupon.code,
        )
        return None
    voucher.name = _voucher_name(coupon)
    voucher.start_datetime = coupon.created_at
    voucher.end_datetime = max(end, coupon.created_at)
    voucher.save()
    if list(voucher.offers.all()) != [offer]:
        voucher.offers.set([offer])
    return voucher


def withdraw_voucher(coupon: Coupon) -> None:
    """A deleted coupon's voucher: deleted when never used, otherwise ended now (orders keep
    their record of it)."""
    voucher_model = get_model("voucher", "Voucher")
    voucher = voucher_model._default_manager.filter(code=coupon.code).first()
    if voucher is None or not is_personalization_voucher(voucher):
        return
    if voucher.applications.exists():
        voucher_model._default_manager.filter(pk=voucher.pk).update(
            end_datetime=min(voucher.end_datetime, timezone.now())
        )
    else:
        voucher.delete()


def is_personalization_voucher(voucher: Any) -> bool:
    return voucher.offers.filter(name__startswith=f"{OFFER_PREFIX}:").exists()


def redeem_for_order(code: str, order: Any) -> None:
    """Mark the coupon with this voucher code used by ``order``; called inside the order's
    transaction. A coupon already used by another order (or expired meanwhile) stops the
    order with Oscar's UnableToPlaceOrder, whose message the customer sees; any other
    failure is logged (Oscar's own record of the voucher's use still makes it single-use)."""
    try:
        with transaction.atomic():
            if not Coupon.objects.filter(code=code).exists():
                return  # a voucher of the shop's own
            coupons.redeem(code, order_id=order.number)
    except coupons.CouponError as exc:
        unable_to_place_order = get_class("order.exceptions", "UnableToPlaceOrder")
        raise unable_to_place_order(exc.message) from exc
    except Exception as exc:
        logger.error(
            "personalization: coupon %s was used by order %s but is not marked redeemed (%s)",
            code,
            order.number,
            exc,
        )


# Offers ---------------------------------------------------------------------------------
def offer_for(coupon: Coupon) -> Any:
    """The voucher offer that gives the coupon's discount: percent or amount off the whole
    basket, or off the coupon's products only. Created on first use, shared after."""
    offer_model = get_model("offer", "ConditionalOffer")
    name = _offer_name(coupon)
    offer = offer_model._default_manager.filter(name=name).first()
    if offer is not None:
        return offer
    try:
        with transaction.atomic():
            return _create_offer(coupon, name)
    except IntegrityError:  # created at the same moment by another request
        offer = offer_model._default_manager.filter(name=name).first()
        if offer is None:
            raise
        return offer


def _create_offer(coupon: Coupon, name: str) -> Any:
    offer_model = get_model("offer", "ConditionalOffer")
    condition_model = get_model("offer", "Condition")
    benefit_model = get_model("offer", "Benefit")
    product_range = _range_for(coupon)
    condition = condition_model._default_manager.create(
        range=product_range, type=condition_model.COUNT, value=1
    )
    percent = coupon.kind == Coupon.PERCENT
    benefit = benefit_model._default_manager.create(
        range=product_range,
        type=benefit_model.PERCENTAGE if percent else benefit_model.FIXED,
        value=coupon.value,
    )
    if not percent and coupon.currency:
        default = getattr(settings, "OSCAR_DEFAULT_CURRENCY", "")
        if default and coupon.currency != default:
            logger.warning(
                "personalization: coupon %s is worth %s, but Oscar takes the amount off in "
                "the basket's currency",
                coupon.code,
                coupon.describe(),
            )
    return offer_model._default_manager.create(
        name=name,
        description=f"Coupons issued by personalization: {_discount_label(coupon)}.",
        offer_type=offer_model.VOUCHER,
        condition=condition,
        benefit=benefit,
        max_basket_applications=1,
    )


def _range_for(coupon: Coupon) -> Any:
    range_model = get_model("offer", "Range")
    product_ids = _product_ids(coupon)
    if not product_ids:
        product_range, _ = range_model._default_manager.get_or_create(
            name=f"{OFFER_PREFIX}: all products",
            defaults={"includes_all_products": True, "is_public": False},
        )
        return product_range
    product_model = get_model("catalogue", "Product")
    product_range, created = range_model._default_manager.get_or_create(
        name=f"{OFFER_PREFIX}: products {_digest(product_ids)}", defaults={"is_public": False}
    )
    if created:
        # A range that includes a parent product includes its variants too.
        products = product_model._default_manager.filter(pk__in=product_ids)
        product_range.included_products.add(*products)
    return product_range


def _product_ids(coupon: Coupon) -> list[str]:
    product_model = get_model("catalogue", "Product")
    pk_field = product_model._meta.pk
    valid = []
    for key in coupon.product_ids or []:
        try:
            valid.append(str(pk_field.to_python(key)))
        except Exception:
            continue
    return sorted(set(valid), key=lambda key: (len(key), key))


def _digest(product_ids: list[str]) -> str:
    return hashlib.blake2b(",".join(product_ids).encode(), digest_size=5).hexdigest()


def _discount_label(coupon: Coupon) -> str:
    if coupon.kind == Coupon.PERCENT:
        return f"{Decimal(coupon.value).normalize():f}% off"
    return f"{Decimal(coupon.value):.2f} off"


def _offer_name(coupon: Coupon) -> str:
    name = f"{OFFER_PREFIX}: {_discount_label(coupon)}"
    product_ids = _product_ids(coupon)
    if product_ids:
        count = len(product_ids)
        plural = "product" if count == 1 else "products"
        name += f" {count} {plural} ({_digest(product_ids)})"
    return name[:128]


def _voucher_name(coupon: Coupon) -> str:
    return f"{coupon.describe()} off ({coupon.code})"[:128]
