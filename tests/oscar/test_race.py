"""Two checkouts that use one coupon at the same moment, on PostgreSQL (whose row locks
Oscar relies on): one order is placed with it, the other is refused."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from oscar.core.loading import get_class, get_model

from personalization import coupons
from personalization.models import Coupon

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (PZN_TEST_DATABASE_URL)"
    ),
]

Basket = get_model("basket", "Basket")
Order = get_model("order", "Order")
Voucher = get_model("voucher", "Voucher")
Applicator = get_class("offer.applicator", "Applicator")
Selector = get_class("partner.strategy", "Selector")


def test_racing_checkouts_redeem_a_coupon_once(make_product):
    from django.contrib.auth.models import AnonymousUser
    from oscar.test.factories import create_order

    book = make_product(price="20.00", stock=10)
    code = coupons.issue(source=Coupon.SOURCE_SIGNUP, value=10, days=30).code
    voucher = Voucher.objects.get(code=code)
    baskets = []
    for _ in range(2):
        basket = Basket.objects.create()
        basket.strategy = Selector().strategy()
        basket.add_product(book)
        basket.vouchers.add(voucher)
        baskets.append(basket)

    start = threading.Barrier(2)
    placed, refused = [], []

    def check_out(basket):
        try:
            Applicator().apply(basket, AnonymousUser())
            start.wait(timeout=10)
            placed.append(create_order(basket=basket, user=AnonymousUser()))
        except Exception as exc:
            refused.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=check_out, args=(basket,)) for basket in baskets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert (len(placed), len(refused)) == (1, 1), refused
    assert str(refused[0]) in {
        "This voucher has already been used",
        "This code has already been used.",
    }
    assert Order.objects.count() == 1
    assert voucher.applications.count() == 1
    assert Coupon.objects.get(code=code).redeemed_order_id == str(placed[0].number)
