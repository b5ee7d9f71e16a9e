"""Checkout and order confirmation."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render

from personalization import referrals
from shop_demo.cart.cart import Cart
from shop_demo.views import has_control_characters

from .forms import CheckoutForm
from .models import Order
from .services import (
    CHECKOUT_TOKEN_SESSION_KEY,
    PLACED_ORDERS_SESSION_KEY,
    CheckoutError,
    place_order,
)


def _checkout_token(request: HttpRequest) -> str:
    token = request.session.get(CHECKOUT_TOKEN_SESSION_KEY)
    if not token:
        token = uuid.uuid4().hex
        request.session[CHECKOUT_TOKEN_SESSION_KEY] = token
    return token


def _initial(request: HttpRequest) -> dict:
    """Prefill the form for a logged-in customer from the account and the last order."""
    user = request.user
    if not user.is_authenticated:
        return {}
    initial = {"name": user.get_full_name() or user.get_username(), "email": user.email}
    last = Order.objects.filter(user=user).order_by("-created_at").first()
    if last is not None:
        initial.update(
            name=last.name,
            street=last.street,
            postal_code=last.postal_code,
            city=last.city,
            country=last.country,
        )
    return initial


def _offered_coupon(request: HttpRequest) -> str:
    """A referred visitor's welcome coupon, filled in for them."""
    coupon = referrals.welcome_offer(request)
    return coupon.code if coupon is not None and not coupon.is_redeemed else ""


def checkout(request: HttpRequest) -> HttpResponse:
    cart = Cart(request)
    if request.method == "POST":
        form = CheckoutForm(request.POST)
        if form.is_valid():
            token = form.cleaned_data["token"]
            already_placed = Order.objects.filter(idempotency_key=token).exists()
            if token != request.session.get(CHECKOUT_TOKEN_SESSION_KEY) and not already_placed:
                messages.warning(
                    request, "This checkout form expired. Please check and submit again."
                )
                form = CheckoutForm(request.POST.copy())
                form.data["token"] = _checkout_token(request)
            else:
                try:
                    order = place_order(request, cart, form.cleaned_data)
                except CheckoutError as exc:
                    messages.error(request, str(exc))
                    return redirect("cart:detail")
                return HttpResponseRedirect(order.get_absolute_url())
    else:
        if not cart:
            messages.info(request, "Your cart is empty.")
            return redirect("cart:detail")
        form = CheckoutForm(
            initial={
                **_initial(request),
                "token": _checkout_token(request),
                "coupon": _offered_coupon(request),
            }
        )
    if not cart:
        return redirect("cart:detail")
    return render(
        request,
        "orders/checkout.html",
        {"form": form, "cart": cart, "lines": cart.lines},
    )


def can_view(request: HttpRequest, order: Order) -> bool:
    if order.pk in request.session.get(PLACED_ORDERS_SESSION_KEY, []):
        return True
    user = request.user
    return user.is_authenticated and order.user_id == user.pk


def confirmation(request: HttpRequest, number: str) -> HttpResponse:
    if has_control_characters(number):  # no order has one, and PostgreSQL refuses a NUL
        raise Http404("No such order.")
    order = get_object_or_404(Order, number=number)
    if not can_view(request, order):
        raise Http404("No such order.")
    lines = order.lines.select_related("product", "product__category")
    return render(request, "orders/confirmation.html", {"order": order, "lines": lines})
