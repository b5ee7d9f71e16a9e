"""Orders placed through Oscar's checkout: recorded once, never failing the checkout; basket
additions recorded; the popup's coupon redeemed as an Oscar voucher, exactly once."""

from __future__ import annotations

import json
import logging
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from oscar.core.loading import get_model

from personalization import coupons
from personalization.models import Conversion, Coupon, Event, ProductInteraction

from .conftest import BROWSER_UA
from .shop import add_to_basket, add_voucher, check_out_as_guest, sign_up

pytestmark = pytest.mark.django_db

Order = get_model("order", "Order")
Voucher = get_model("voucher", "Voucher")


def test_a_guest_checkout_with_the_popup_coupon(shopper, make_product, shipping_country):
    book = make_product("Dune", price="20.00")
    shopper.get("/")  # the visitor cookie comes back from here on
    assert shopper.get(book.get_absolute_url()).status_code == 200
    assert ProductInteraction.objects.filter(product_id=str(book.pk), kind="view").count() == 1

    add_to_basket(shopper, book, quantity=2)
    assert Event.objects.filter(kind=Event.ADD_TO_CART, product_id=str(book.pk)).count() == 1
    cart = ProductInteraction.objects.get(kind="cart")
    assert (cart.product_id, cart.quantity) == (str(book.pk), 2)

    code = sign_up(shopper, "ada@example.com")["coupon_code"]
    page = add_voucher(shopper, code)
    assert f"Voucher '{code}' added to basket" in [str(m) for m in page.context["messages"]]
    assert page.context["basket"].total_incl_tax == Decimal("36.00")  # 10% off 40.00

    response = check_out_as_guest(shopper, "ada@example.com")
    assert response.status_code == 302
    assert response["Location"] == reverse("checkout:thank-you")
    order = Order.objects.get()
    assert order.total_incl_tax == Decimal("36.00")
    assert order.discounts.get().voucher_code == code
    conversion = Conversion.objects.get(kind=Conversion.PURCHASE)
    assert conversion.order_id == order.number
    assert conversion.revenue == Decimal("36.00")
    assert conversion.currency == "EUR"
    assert conversion.items == [[book.pk, 2, "20.00"]]
    coupon = Coupon.objects.get(code=code)
    assert coupon.redeemed_order_id == order.number
    thank_you = shopper.get(reverse("checkout:thank-you"))
    assert thank_you.status_code == 200
    assert order.number in thank_you.text


def test_the_popup_on_oscar_pages_gives_a_code_the_basket_takes(shopper, make_product, settings):
    # Nobody held out: the control group sees no popup.
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 0}
    home = shopper.get("/", follow=True)
    assert home.status_code == 200
    signup_url = re.search(r'data-pzn-signup-url="([^"]+)"', home.text).group(1)
    assert "personalization.js" in home.text
    response = shopper.post(
        signup_url, json.dumps({"email": "ada@example.com"}), content_type="application/json"
    )
    code = response.json()["coupon_code"]
    add_to_basket(shopper, make_product(price="30.00"))
    page = add_voucher(shopper, code)
    assert page.context["basket"].total_incl_tax == Decimal("27.00")


def test_a_used_voucher_is_refused_in_the_next_basket(shopper, make_product, shipping_country):
    book = make_product(price="20.00")
    code = sign_up(shopper, "ada@example.com")["coupon_code"]
    add_to_basket(shopper, book)
    add_voucher(shopper, code)
    assert check_out_as_guest(shopper, "ada@example.com").status_code == 302

    add_to_basket(shopper, book)
    page = add_voucher(shopper, code)
    assert "This voucher has already been used" in page.text
    assert list(page.context["basket"].vouchers.all()) == []


def test_two_baskets_holding_one_voucher_place_one_order_with_it(
    shopper, make_product, shipping_country
):
    book = make_product(price="20.00")
    code = sign_up(shopper, "ada@example.com")["coupon_code"]
    friend = Client(HTTP_USER_AGENT=BROWSER_UA)
    for client in (shopper, friend):
        add_to_basket(client, book)
        add_voucher(client, code)
    assert check_out_as_guest(shopper, "ada@example.com").status_code == 302
    refused = check_out_as_guest(friend, "friend@example.com")
    assert refused.status_code == 200  # the preview again, with Oscar's message
    assert "A problem occurred while placing this order" in refused.text
    assert Order.objects.count() == 1
    assert Conversion.objects.filter(kind=Conversion.PURCHASE).count() == 1
    assert Coupon.objects.get(code=code).redeemed_order_id == Order.objects.get().number


def test_a_coupon_used_elsewhere_stops_the_order_that_tries_again(
    shopper, make_product, shipping_country
):
    book = make_product(price="20.00")
    code = sign_up(shopper, "ada@example.com")["coupon_code"]
    add_to_basket(shopper, book)
    add_voucher(shopper, code)
    coupons.redeem(code, order_id="POS-0042")  # e.g. at the till, through the API

    response = check_out_as_guest(shopper, "ada@example.com")
    assert response.status_code == 200
    assert "This code has already been used." in response.text
    assert not Order.objects.exists()
    assert Coupon.objects.get(code=code).redeemed_order_id == "POS-0042"


def test_an_order_that_cannot_be_recorded_still_thanks_the_customer(
    shopper, make_product, shipping_country, caplog
):
    odd = make_product(price="5.00", currency="EURO")  # not a three-letter code
    shopper.get("/")
    add_to_basket(shopper, odd)
    with caplog.at_level(logging.INFO, logger="personalization"):
        response = check_out_as_guest(shopper, "ada@example.com")
    assert response.status_code == 302
    order = Order.objects.get()
    assert shopper.get(response["Location"]).status_code == 200
    errors = [r for r in caplog.records if r.name == "personalization" and r.levelno >= 30]
    assert [r.getMessage() for r in errors] == [
        f"personalization: Oscar order {order.number} was placed but not recorded "
        "(TrackingError: currency must be a three-letter ISO 4217 code.)"
    ]
    assert not Conversion.objects.filter(kind=Conversion.PURCHASE).exists()


def test_free_items_and_deleted_products_in_an_order(shopper, make_product, shipping_country):
    from personalization.contrib.oscar.receivers import order_items

    gift = make_product("Bookmark", price="0.00")
    parent = make_product("Tote bag", price=None, structure="parent")
    bag = make_product("Tote bag, blue", parent=parent, price="15.00")
    shopper.get("/")
    add_to_basket(shopper, gift)
    add_to_basket(shopper, bag, quantity=3)
    assert check_out_as_guest(shopper, "ada@example.com").status_code == 302
    order = Order.objects.get()
    conversion = Conversion.objects.get(kind=Conversion.PURCHASE)
    assert conversion.revenue == order.total_incl_tax == Decimal("45.00")
    # A variant is bought as its parent, the product customers browse.
    assert sorted(conversion.items) == sorted([[gift.pk, 1, "0.00"], [parent.pk, 3, "15.00"]])

    bag.delete()
    assert order_items(order) == [(gift.pk, 1, Decimal("0.00"))]
