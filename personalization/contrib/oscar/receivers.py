"""Oscar's signals, received: orders and basket additions tracked, cached product cards
cleared when stock, images or variants change, coupons kept in step with their vouchers.

Receivers log instead of raising (one line per failure), and those that write do so in a
savepoint: Oscar sends most of these signals inside its own views and transactions, and a
customer must never see a checkout fail because personalization could not write something
down. The one exception is deliberate: a coupon that another order has already used stops
the order that tries to use it again.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from oscar.apps.basket.signals import basket_addition
from oscar.apps.checkout.signals import post_checkout
from oscar.apps.order.signals import order_placed
from oscar.core.loading import get_model

from ... import products, track
from ...models import Coupon
from . import vouchers

logger = logging.getLogger("personalization")

MAX_QUANTITY = 10_000


def connect() -> None:
    """Connect every receiver (from AppConfig.ready(); idempotent)."""
    uid = "personalization.contrib.oscar."
    post_checkout.connect(record_order, dispatch_uid=uid + "record_order")
    order_placed.connect(forget_ordered_products, dispatch_uid=uid + "forget_ordered_products")
    basket_addition.connect(record_basket_addition, dispatch_uid=uid + "basket_addition")

    product_model = get_model("catalogue", "Product")
    for model, receiver in (
        (get_model("partner", "StockRecord"), forget_owner_product),
        (get_model("catalogue", "ProductImage"), forget_owner_product),
        (product_model, forget_parent_product),
    ):
        name = f"{uid}{model._meta.label_lower}"
        post_save.connect(receiver, sender=model, dispatch_uid=name + ".save")
        post_delete.connect(receiver, sender=model, dispatch_uid=name + ".delete")
    m2m_changed.connect(
        forget_categorised_product,
        sender=product_model.categories.through,
        dispatch_uid=uid + "product_categories",
    )

    post_save.connect(coupon_saved, sender=Coupon, dispatch_uid=uid + "coupon_saved")
    post_delete.connect(coupon_deleted, sender=Coupon, dispatch_uid=uid + "coupon_deleted")
    post_save.connect(
        voucher_used,
        sender=get_model("voucher", "VoucherApplication"),
        dispatch_uid=uid + "voucher_used",
    )


# Orders ---------------------------------------------------------------------------------
def record_order(sender: Any, order: Any, request: Any = None, **kwargs: Any) -> None:
    """``post_checkout``: the order, its total and its lines, with ``track.order``."""
    if request is None:
        return
    try:
        with transaction.atomic():
            track.order(
                request,
                order_id=order.number,
                total=order.total_incl_tax,
                currency=order.currency,
                items=order_items(order),
            )
    except Exception as exc:
        logger.error(
            "personalization: Oscar order %s was placed but not recorded (%s: %s)",
            getattr(order, "number", "?"),
            type(exc).__name__,
            exc,
        )


def order_items(order: Any) -> list[tuple[Any, int, Decimal]]:
    """``(product key, quantity, unit price)`` per line, variants as their parents. Lines
    whose product was deleted are left out (the order's total still counts them); a line
    without a unit price counts at what it cost."""
    items = []
    rows = order.lines.values_list(
        "product_id",
        "product__parent_id",
        "quantity",
        "unit_price_incl_tax",
        "unit_price_excl_tax",
        "line_price_incl_tax",
    )
    for product_id, parent_id, quantity, incl_tax, excl_tax, line_price in rows:
        if product_id is None or not quantity or quantity <= 0:
            continue
        unit_price = incl_tax if incl_tax is not None else excl_tax
        if unit_price is None:
            unit_price = (line_price or Decimal(0)) / quantity
        items.append((parent_id or product_id, int(quantity), max(Decimal(unit_price), Decimal(0))))
    return items


def forget_ordered_products(sender: Any, order: Any, **kwargs: Any) -> None:
    """``order_placed``: Oscar allocates stock with UPDATEs that send no signal, so the cards
    of what was just bought are cleared here (their availability may have changed)."""
    try:
        product_model = get_model("catalogue", "Product")
        keys: set[Any] = set()
        for product_id, parent_id in order.lines.values_list("product_id", "product__parent_id"):
            keys.update(key for key in (product_id, parent_id) if key is not None)
        for product in product_model._default_manager.filter(pk__in=keys):
            _forget(product)
    except Exception as exc:
        logger.warning(
            "personalization: could not clear the cards of order %s (%s)",
            getattr(order, "number", "?"),
            exc,
        )


# Basket ---------------------------------------------------------------------------------
def record_basket_addition(sender: Any, product: Any, request: Any = None, **kwargs: Any) -> None:
    """``basket_addition``: ``track.add_to_cart`` with the quantity the form posted."""
    if request is None:
        return
    try:
        quantity = int(request.POST.get("quantity") or 1)
    except (AttributeError, TypeError, ValueError):
        quantity = 1
    try:
        with transaction.atomic():
            track.add_to_cart(request, product, max(1, min(quantity, MAX_QUANTITY)))
    except Exception as exc:
        logger.error("personalization: a basket addition was not recorded (%s)", exc)


# Product cards --------------------------------------------------------------------------
def forget_owner_product(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A stock record or image changed: its product's card (and its parent's, whose price
    and availability come from the variants) is cleared at once."""
    try:
        product = instance.product
    except Exception:
        return  # deleted together with its product
    _forget_with_parent(product)


def forget_parent_product(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A variant was saved or deleted: its parent's card changes too (the core clears the
    variant's own)."""
    if getattr(instance, "parent_id", None):
        _forget_with_parent(instance)


def forget_categorised_product(
    sender: Any, instance: Any, action: str, pk_set: Any = None, **kwargs: Any
) -> None:
    """A product's categories changed (from either side of the relation)."""
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    product_model = get_model("catalogue", "Product")
    if isinstance(instance, product_model):
        _forget_with_parent(instance)
    elif pk_set:
        for product in product_model._default_manager.filter(pk__in=pk_set):
            _forget_with_parent(product)


def _forget_with_parent(product: Any) -> None:
    try:
        _forget(product)
        if getattr(product, "parent_id", None):
            _forget(product.parent)
    except Exception as exc:
        logger.warning("personalization: could not clear a cached product card (%s)", exc)


def _forget(product: Any) -> None:
    """Clear the product's cached lookups now, and again when the transaction commits: a
    request that read the old row in between must not keep it cached."""

    def forget() -> None:
        products.forget_view_info(product)
        products.forget_card(product)

    forget()
    transaction.on_commit(forget, robust=True)


# Coupons and vouchers -------------------------------------------------------------------
def coupon_saved(sender: Any, instance: Coupon, raw: bool = False, **kwargs: Any) -> None:
    """A coupon issued (or its expiry changed): its voucher, in the same transaction."""
    if raw:
        return
    try:
        with transaction.atomic():
            vouchers.sync_voucher(instance)
    except Exception as exc:
        logger.error(
            "personalization: coupon %s has no Oscar voucher (%s: %s)",
            instance.code,
            type(exc).__name__,
            exc,
        )


def coupon_deleted(sender: Any, instance: Coupon, **kwargs: Any) -> None:
    try:
        with transaction.atomic():
            vouchers.withdraw_voucher(instance)
    except Exception as exc:
        logger.error("personalization: the voucher of coupon %s stays (%s)", instance.code, exc)


def voucher_used(sender: Any, instance: Any, created: bool, raw: bool = False, **kw: Any) -> None:
    """Oscar records a voucher's use inside the order's transaction: the coupon is redeemed
    in that same transaction."""
    if not created or raw or not vouchers.is_personalization_voucher(instance.voucher):
        return
    vouchers.redeem_for_order(instance.voucher.code, instance.order)
