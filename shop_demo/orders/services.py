"""Placing an order: the single place where a checkout becomes an :class:`Order`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest

from personalization import coupons, track
from shop_demo.cart.cart import Cart
from shop_demo.catalog.models import Product

from .models import Order, OrderLine

#: Session key listing the pks of the orders this session placed (for the confirmation page).
PLACED_ORDERS_SESSION_KEY = "placed_orders"
#: Session key of the checkout form's current one-time token.
CHECKOUT_TOKEN_SESSION_KEY = "checkout_token"


class CheckoutError(Exception):
    """The order cannot be placed (empty cart, not enough stock...); the message says why."""


def remember_order(request: HttpRequest, order: Order) -> None:
    placed = list(request.session.get(PLACED_ORDERS_SESSION_KEY, []))
    if order.pk not in placed:
        placed.append(order.pk)
        request.session[PLACED_ORDERS_SESSION_KEY] = placed[-50:]


def _finish(request: HttpRequest, cart: Cart, order: Order) -> None:
    """Empty the cart and let this session see the order's confirmation page."""
    cart.clear()
    request.session.pop(CHECKOUT_TOKEN_SESSION_KEY, None)
    remember_order(request, order)


def place_order(request: HttpRequest, cart: Cart, form_data: dict[str, Any]) -> Order:
    """Turn the cart into an order, once per checkout token.

    ``form_data`` is the checkout form's ``cleaned_data``: name, email, street, postal_code,
    city, country and ``token``. Everything happens in one transaction: the bought products
    are locked with ``select_for_update`` (so a double submit waits for the first one and then
    finds its order by token), stock is checked and decremented, and the order and its lines
    are written. The cart is cleared afterwards. Raises :class:`CheckoutError`.

    Returns the existing order, untouched, when this token has already been used.
    """
    token = form_data["token"]
    user = request.user if request.user.is_authenticated else None
    existing = Order.objects.filter(idempotency_key=token).first()
    if existing is not None:  # the form was submitted again after the order was placed
        _finish(request, cart, existing)
        return existing
    try:
        with transaction.atomic():
            lines = cart.lines
            if not lines:
                raise CheckoutError("Your cart is empty.")
            # Lock the rows being bought: a concurrent submit of the same form queues here,
            # and then finds the order the first one committed.
            products = Product.objects.select_for_update().in_bulk(
                [line.product.pk for line in lines]
            )
            existing = Order.objects.filter(idempotency_key=token).first()
            if existing is not None:
                _finish(request, cart, existing)
                return existing

            problems = []
            for line in lines:
                product = products.get(line.product.pk)
                if product is None or not product.is_available:
                    problems.append(f"{line.product.name} is no longer available.")
                elif product.stock < line.quantity:
                    problems.append(f"Only {product.stock} of {product.name} left in stock.")
            if problems:
                raise CheckoutError(" ".join(problems))

            subtotal = sum(
                (products[line.product.pk].price * line.quantity for line in lines),
                Decimal("0.00"),
            )
            code = (form_data.get("coupon") or "").strip()
            discount = Decimal("0.00")
            if code:
                priced = [(pk, line.quantity, products[pk].price) for pk, line in _keyed(lines)]
                try:
                    discount = coupons.discount(coupons.validate(code), subtotal, priced)
                except coupons.CouponError as exc:
                    raise CheckoutError(exc.message) from None
            order = Order.objects.create(
                number=f"new-{token}",
                user=user,
                email=form_data["email"],
                name=form_data["name"],
                street=form_data["street"],
                postal_code=form_data["postal_code"],
                city=form_data["city"],
                country=form_data["country"],
                discount=discount,
                coupon_code=code.upper() if code else "",
                total=subtotal - discount,
                currency=Cart.currency,
                idempotency_key=token,
            )
            order.number = Order.number_for(order.pk)
            order.save(update_fields=["number"])
            OrderLine.objects.bulk_create(
                OrderLine(
                    order=order,
                    product=products[line.product.pk],
                    quantity=line.quantity,
                    unit_price=products[line.product.pk].price,
                )
                for line in lines
            )
            for line in lines:
                Product.objects.filter(pk=line.product.pk).update(stock=F("stock") - line.quantity)
            if code:
                try:  # atomic: of two checkouts racing for one code, exactly one gets it
                    coupons.redeem(code, order_id=order.number)
                except coupons.CouponError as exc:
                    raise CheckoutError(exc.message) from None
    except IntegrityError:
        # A concurrent submit with the same token won the race (databases without row locks).
        existing = Order.objects.filter(idempotency_key=token).first()
        if existing is None:
            raise
        _finish(request, cart, existing)
        return existing

    _finish(request, cart, order)
    # Reached once per new order, never for a resubmitted form; track.order is idempotent
    # per order_id anyway.
    track.order(
        request,
        order_id=order.number,
        total=order.total,
        currency=order.currency,
        items=[(line.product_id, line.quantity, line.unit_price) for line in order.lines.all()],
    )
    return order


def _keyed(lines: list[Any]) -> list[tuple[Any, Any]]:
    return [(line.product.pk, line) for line in lines]
