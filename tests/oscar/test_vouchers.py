"""Every personalization coupon is an Oscar voucher: same code, single use, same window and
discount (percent or amount, whole basket or the coupon's products), kept in step when staff
change or delete the coupon; referral rewards included."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from oscar.core.loading import get_model

from personalization import coupons
from personalization.models import Coupon

from .conftest import BROWSER_UA
from .shop import add_to_basket, add_voucher, check_out_as_guest, sign_up

pytestmark = pytest.mark.django_db

Voucher = get_model("voucher", "Voucher")
ConditionalOffer = get_model("offer", "ConditionalOffer")
Benefit = get_model("offer", "Benefit")


def basket_total(client) -> Decimal:
    return client.get("/basket/").context["basket"].total_incl_tax


def test_a_signup_coupon_is_a_single_use_voucher_for_its_window(shopper, make_product):
    code = sign_up(shopper, "ada@example.com")["coupon_code"]
    coupon = Coupon.objects.get(code=code)
    voucher = Voucher.objects.get(code=code)
    assert voucher.usage == Voucher.SINGLE_USE
    assert (voucher.start_datetime, voucher.end_datetime) == (
        coupon.created_at,
        coupon.expires_at,
    )
    offer = voucher.offers.get()
    assert offer.offer_type == ConditionalOffer.VOUCHER
    assert (offer.benefit.type, offer.benefit.value) == (Benefit.PERCENTAGE, Decimal("10.00"))
    assert offer.benefit.range.includes_all_products


def test_coupons_of_one_discount_share_one_offer(shopper):
    first = coupons.issue(source=Coupon.SOURCE_SIGNUP, value=10, days=30)
    second = coupons.issue(source=Coupon.SOURCE_SIGNUP, value=10, days=30)
    other = coupons.issue(source=Coupon.SOURCE_MANUAL, value=15, days=30)
    offers = {code: Voucher.objects.get(code=code).offers.get() for code in
              (first.code, second.code, other.code)}  # fmt: skip
    assert offers[first.code] == offers[second.code] != offers[other.code]
    assert ConditionalOffer.objects.count() == 2


def test_an_amount_off_coupon_takes_its_amount_off_the_basket(shopper, make_product):
    coupon = coupons.issue(
        source=Coupon.SOURCE_MANUAL, kind=Coupon.AMOUNT, value="5", currency="EUR", days=7
    )
    add_to_basket(shopper, make_product(price="12.00"), quantity=2)
    add_voucher(shopper, coupon.code)
    assert basket_total(shopper) == Decimal("19.00")


def test_a_product_coupon_discounts_only_its_products(shopper, make_product):
    parent = make_product("Jacket", price=None, structure="parent")
    jacket = make_product("Jacket L", parent=parent, price="100.00")
    socks = make_product("Socks", price="10.00")
    coupon = coupons.issue(source=Coupon.SOURCE_MANUAL, value=20, product_ids=[parent.pk])
    add_to_basket(shopper, jacket)
    add_to_basket(shopper, socks)
    add_voucher(shopper, coupon.code)
    assert basket_total(shopper) == Decimal("90.00")  # 20% off the jacket only
    only_socks = Client(HTTP_USER_AGENT=BROWSER_UA)
    add_to_basket(only_socks, socks)
    page = add_voucher(only_socks, coupon.code)
    assert "Your basket does not qualify for a voucher discount" in page.text
    assert basket_total(only_socks) == Decimal("10.00")


def test_an_expired_coupon_is_not_accepted(shopper, make_product):
    coupon = coupons.issue(source=Coupon.SOURCE_SIGNUP, value=10, days=1)
    add_to_basket(shopper, make_product(price="10.00"))
    Coupon.objects.filter(pk=coupon.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    coupon.refresh_from_db()
    coupon.expires_at = timezone.now() - dt.timedelta(days=2)
    coupon.save()  # as the admin saves a changed expiry
    page = add_voucher(shopper, coupon.code)
    assert f"The &#x27;{coupon.code}&#x27; voucher has expired" in page.text
    assert basket_total(shopper) == Decimal("10.00")


def test_a_coupon_that_never_expires_gets_a_far_end(shopper):
    coupon = coupons.issue(source=Coupon.SOURCE_MANUAL, value=10)
    voucher = Voucher.objects.get(code=coupon.code)
    assert voucher.end_datetime > timezone.now() + dt.timedelta(days=365 * 50)


def test_a_deleted_coupon_takes_its_unused_voucher_along(shopper):
    unused = coupons.issue(source=Coupon.SOURCE_MANUAL, value=10)
    unused.delete()
    assert not Voucher.objects.filter(code=unused.code).exists()


def test_a_used_voucher_outlives_its_deleted_coupon_but_ends(
    shopper, make_product, shipping_country
):
    code = coupons.issue(source=Coupon.SOURCE_MANUAL, value=10).code
    add_to_basket(shopper, make_product(price="10.00"))
    add_voucher(shopper, code)
    assert check_out_as_guest(shopper, "ada@example.com").status_code == 302
    Coupon.objects.get(code=code).delete()
    voucher = Voucher.objects.get(code=code)
    assert voucher.applications.count() == 1
    assert voucher.end_datetime <= timezone.now()


def test_a_voucher_the_shop_made_is_left_alone(shopper, caplog):
    from personalization.coupons import generate_code

    code = generate_code("WELCOME")
    Voucher.objects.create(
        name="Shop's own",
        code=code,
        usage=Voucher.MULTI_USE,
        start_datetime=timezone.now(),
        end_datetime=timezone.now() + dt.timedelta(days=1),
    )
    coupon = Coupon(kind=Coupon.PERCENT, value=10, source=Coupon.SOURCE_MANUAL, code=code)
    coupon.save()
    voucher = Voucher.objects.get(code=code)
    assert (voucher.name, voucher.usage) == ("Shop's own", Voucher.MULTI_USE)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"personalization: coupon {code} cannot be redeemed in the basket: a voucher the shop "
        "made has the same code"
    ]


def test_a_referral_reward_is_a_voucher_for_the_product_the_referrer_wanted(
    shopper, make_product, shipping_country
):
    wanted = make_product("Hyperion", price="40.00")
    other = make_product("Solaris", price="10.00")
    shopper.get("/")
    shopper.get(wanted.get_absolute_url())
    shopper.get(wanted.get_absolute_url())
    link = sign_up(shopper, "ada@example.com")["referral_link"]

    friend = Client(HTTP_USER_AGENT=BROWSER_UA)
    friend.get(link.replace("http://testserver", ""))
    add_to_basket(friend, other)
    assert check_out_as_guest(friend, "friend@example.com").status_code == 302

    reward = Coupon.objects.get(source=Coupon.SOURCE_REFERRAL_REWARD)
    assert reward.product_ids == [wanted.pk]
    add_to_basket(shopper, wanted)
    add_to_basket(shopper, other)
    add_voucher(shopper, reward.code)
    assert basket_total(shopper) == Decimal("44.00")  # 15% off Hyperion only


def test_coupons_issued_before_the_app_was_installed_become_vouchers(shopper, make_product):
    from io import StringIO

    from django.core.management import call_command

    older = coupons.issue(source=Coupon.SOURCE_SIGNUP, value=10, days=30)
    used = coupons.issue(source=Coupon.SOURCE_SIGNUP, value=10, days=30)
    coupons.redeem(used.code, order_id="A-1")
    Voucher.objects.all().delete()  # as if issued before the app was installed
    out = StringIO()
    call_command("personalization_oscar_vouchers", stdout=out)
    assert out.getvalue().strip() == "1 coupons are Oscar vouchers; 0 codes are taken."
    assert list(Voucher.objects.values_list("code", flat=True)) == [older.code]
    add_to_basket(shopper, make_product(price="10.00"))
    add_voucher(shopper, older.code)
    assert basket_total(shopper) == Decimal("9.00")
