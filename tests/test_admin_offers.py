"""The admin for coupons, signups and referral codes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from personalization import coupons, referrals
from personalization.models import Coupon, ReferralCode, Signup

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    return client


def _coupon(**fields) -> Coupon:
    return coupons.issue(**{"source": Coupon.SOURCE_MANUAL, "value": 10, **fields})


def _signup(email: str = "ada@example.com") -> Signup:
    coupon = _coupon(source=Coupon.SOURCE_SIGNUP, email=email)
    return Signup.objects.create(email=email, coupon=coupon, consent_at=coupon.created_at)


def test_the_lists_render_with_their_columns(staff):
    signup = _signup()
    referrals.code_for_signup(signup)
    body = staff.get(reverse("admin:personalization_coupon_changelist")).content.decode()
    assert signup.coupon.code in body
    assert "10%" in body
    for name in ["signup", "referralcode"]:
        response = staff.get(reverse(f"admin:personalization_{name}_changelist"))
        assert response.status_code == 200
        assert "ada@example.com" in response.content.decode()


def test_searching_coupons_by_email_and_filtering_by_state(staff, clock):
    usable = _coupon(email="ada@example.com", days=3)
    used = _coupon(email="bob@example.com")
    coupons.redeem(used.code, order_id="A-1")
    url = reverse("admin:personalization_coupon_changelist")
    found = staff.get(url, {"q": "ADA@example"}).content.decode()
    assert usable.code in found and used.code not in found
    listed = staff.get(url, {"state": "usable"}).content.decode()
    assert usable.code in listed and used.code not in listed
    clock.shift(3 * 86400)
    expired = staff.get(url, {"state": "expired"}).content.decode()
    assert usable.code in expired


def test_staff_add_a_coupon_and_a_code_is_drawn(staff):
    response = staff.post(
        reverse("admin:personalization_coupon_add"),
        {"kind": "amount", "value": "5", "currency": "eur", "product_ids": "[]", "note": "Sorry"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    coupon = Coupon.objects.get()
    assert coupon.source == Coupon.SOURCE_MANUAL
    assert coupons.validate(coupon.code) == coupon
    assert coupon.describe() == "5.00 EUR"


def test_an_impossible_percentage_is_refused(staff):
    response = staff.post(
        reverse("admin:personalization_coupon_add"),
        {"kind": "percent", "value": "150", "product_ids": "[]"},
    )
    assert response.status_code == 200
    assert "a percentage above 0 and at most 100" in response.content.decode()
    assert not Coupon.objects.exists()


def test_a_typed_code_is_stored_as_customers_type_it(staff):
    staff.post(
        reverse("admin:personalization_coupon_add"),
        {"code": " vip 2026 ", "kind": "percent", "value": "20", "product_ids": "[]"},
    )
    assert coupons.validate("vip2026").code == "VIP2026"


def test_expire_now_spares_redeemed_coupons(staff, clock):
    open_coupon = _coupon(days=30)
    used = _coupon()
    coupons.redeem(used.code, order_id="A-1")
    response = staff.post(
        reverse("admin:personalization_coupon_changelist"),
        {"action": "expire_now", "_selected_action": [open_coupon.pk, used.pk]},
    )
    assert response.status_code == 302
    open_coupon.refresh_from_db()
    used.refresh_from_db()
    assert open_coupon.expires_at == dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
    assert used.expires_at is None
    with pytest.raises(coupons.CouponError) as error:
        coupons.validate(open_coupon.code)
    assert error.value.reason == "expired"


def test_signups_are_consent_records_staff_cannot_edit(staff):
    signup = _signup()
    assert staff.get(reverse("admin:personalization_signup_add")).status_code == 403
    change_url = reverse("admin:personalization_signup_change", args=[signup.pk])
    staff.post(change_url, {"email": "changed@example.com"})
    signup.refresh_from_db()
    assert signup.email == "ada@example.com"


def test_deactivating_a_referral_code_takes_effect_at_once(staff):
    code = ReferralCode.objects.create(code="ABCD2345")
    assert referrals.is_valid_code("ABCD2345") is True  # now cached
    staff.post(
        reverse("admin:personalization_referralcode_changelist"),
        {"action": "deactivate", "_selected_action": [code.pk]},
    )
    assert referrals.is_valid_code("ABCD2345") is False


def test_a_referral_code_is_drawn_when_left_blank(staff):
    response = staff.post(
        reverse("admin:personalization_referralcode_add"), {"code": "", "is_active": "on"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert len(ReferralCode.objects.get().code) == referrals.CODE_LENGTH
