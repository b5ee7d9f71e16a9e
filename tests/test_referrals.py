"""Referrals: ?ref= landings, the referred friend's welcome offer, the referrer's reward."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, RequestFactory

from personalization import referrals, track
from personalization.models import Coupon, ReferralCode, Signup
from personalization.profiling import storage
from personalization.profiling.visitor import VisitorProfile
from personalization.testutils import attach_visitor
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

SIGNUP = "/personalization/api/signup/"


def new_client() -> Client:
    return Client(HTTP_USER_AGENT=BROWSER_UA)


def visitor_id(client: Client) -> str:
    return client.get("/profile/").json()["id"]


def land(client: Client, code: str) -> dict:
    return client.get(f"/profile/?ref={code}").json()


def sign_up(client: Client, email: str) -> Signup:
    response = client.post(SIGNUP, json.dumps({"email": email}), content_type="application/json")
    assert response.status_code == 201
    return Signup.objects.get(email=email)


def request_as(visitor_id: str):
    """A request carrying the stored profile, as a checkout view would see it."""
    request = RequestFactory().post("/checkout/")
    request.visitor = VisitorProfile(storage.load(visitor_id), request=request, now=time.time())
    return request


def place_order(visitor_id: str, order_id: str, *products) -> None:
    request = request_as(visitor_id)
    items = [(product.pk, 1, product.price) for product in products]
    total = sum((product.price for product in products), Decimal(0))
    track.order(request, order_id=order_id, total=total, items=items)
    storage.save_to_cache(request.visitor._data)  # what the middleware does after the view


def view(client: Client, product, times: int = 1) -> None:
    for _ in range(times):
        assert client.get(f"/products/{product.slug}/").status_code == 200


# Codes ----------------------------------------------------------------------------------
def test_codes_are_short_unguessable_and_one_per_owner():
    user = get_user_model().objects.create_user("ada", "ada@example.com", "pw")
    code = referrals.code_for_user(user)
    assert re.fullmatch(r"[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{8}", code.code)
    assert referrals.code_for_user(user) == code
    assert ReferralCode.objects.count() == 1


def test_the_link_is_absolute():
    request = RequestFactory().get("/", HTTP_HOST="shop.example")
    assert referrals.referral_link(request, "ABCD2345") == "http://shop.example/?ref=ABCD2345"


def test_validity_is_cached_and_follows_changes(django_assert_num_queries):
    assert referrals.is_valid_code("ABCD2345") is False
    with django_assert_num_queries(0):
        assert referrals.is_valid_code("ABCD2345") is False  # negative answers are cached too
    code = ReferralCode.objects.create(code="ABCD2345")
    assert referrals.is_valid_code("ABCD2345") is True  # the save cleared the cache
    with django_assert_num_queries(0):
        assert referrals.is_valid_code("ABCD2345") is True
    code.is_active = False
    code.save()
    assert referrals.is_valid_code("ABCD2345") is False
    code.delete()
    assert referrals.is_valid_code("ABCD2345") is False


@pytest.mark.parametrize("code", ["", "bad code", "x" * 65, None, "ÄÖÜ"])
def test_malformed_codes_are_invalid_without_a_query(code, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert referrals.is_valid_code(code) is False


def test_an_expired_code_is_invalid(clock):
    ReferralCode.objects.create(code="OLD23456", expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert referrals.is_valid_code("OLD23456") is False


# Landing --------------------------------------------------------------------------------
def test_a_valid_ref_link_makes_the_visit_a_referral(browser):
    code = sign_up(new_client(), "ada@example.com").referral_code.code
    body = land(browser, code)
    assert body["source"] == "referral"
    assert storage.load(body["id"]).referred_by == code


@pytest.mark.parametrize("code", ["NOSUCH23", "bad%20code"])
def test_an_unknown_code_is_ignored(browser, code):
    body = land(browser, code)
    assert body["source"] == "direct"
    assert storage.load(body["id"]).referred_by is None


def test_a_deactivated_code_no_longer_counts():
    code = sign_up(new_client(), "ada@example.com").referral_code
    assert land(new_client(), code.code)["source"] == "referral"
    code.is_active = False
    code.save()
    assert land(new_client(), code.code)["source"] == "direct"


# Welcome offer --------------------------------------------------------------------------
def referred_request(code: str, **state):
    request = RequestFactory().get("/")
    visitor = attach_visitor(request, **state)
    visitor._data.referred_by = code
    return request


def test_a_referred_visitor_gets_one_welcome_coupon(clock):
    code = ReferralCode.objects.create(code="FRND2345")
    request = referred_request(code.code)
    coupon = referrals.welcome_offer(request)
    assert coupon is not None
    assert (coupon.source, coupon.value, coupon.referral) == (
        Coupon.SOURCE_REFERRAL_WELCOME,
        Decimal("10.00"),
        code,
    )
    assert coupon.visitor_id == request.visitor.id
    assert coupon.expires_at == dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)
    assert referrals.welcome_offer(request) == coupon
    assert Coupon.objects.count() == 1


def test_no_welcome_offer_without_a_valid_referral():
    assert referrals.welcome_offer(referred_request("NOSUCH23")) is None
    ReferralCode.objects.create(code="GONE2345", is_active=False)
    assert referrals.welcome_offer(referred_request("GONE2345")) is None
    request = RequestFactory().get("/")
    attach_visitor(request)
    assert referrals.welcome_offer(request) is None
    assert not Coupon.objects.exists()


def test_no_welcome_offer_for_untracked_visitors():
    ReferralCode.objects.create(code="FRND2345")
    assert referrals.welcome_offer(referred_request("FRND2345", opted_out=True)) is None
    assert not Coupon.objects.exists()


def test_no_welcome_offer_for_the_referrer_themself():
    referrer = new_client()
    code = sign_up(referrer, "ada@example.com").referral_code
    own = referred_request(code.code, visitor_id=visitor_id(referrer))
    assert referrals.welcome_offer(own) is None
    user = get_user_model().objects.create_user("bob", "bob@example.com", "pw")
    user_code = referrals.code_for_user(user)
    assert referrals.welcome_offer(referred_request(user_code.code, user_id=user.pk)) is None
    assert not Coupon.objects.filter(source=Coupon.SOURCE_REFERRAL_WELCOME).exists()


# The referrer's reward ------------------------------------------------------------------
@pytest.fixture
def referrer_who_browsed(make_product):
    """A signed-up visitor who viewed A 3x, B 1x and bought C after viewing it 5x."""
    wanted, glanced, bought = make_product(), make_product(), make_product()
    client = new_client()
    view(client, wanted, 3)
    view(client, glanced)
    view(client, bought, 5)
    own_id = visitor_id(client)
    place_order(own_id, "R-1", bought)
    signup = sign_up(client, "ada@example.com")
    return signup, wanted


def test_the_referrer_is_rewarded_with_a_bundle_on_what_they_wanted(
    referrer_who_browsed, django_capture_on_commit_callbacks
):
    signup, wanted = referrer_who_browsed
    friend_id = land(new_client(), signup.referral_code.code)["id"]
    with django_capture_on_commit_callbacks(execute=True):
        place_order(friend_id, "F-1", wanted)
    reward = Coupon.objects.get(source=Coupon.SOURCE_REFERRAL_REWARD)
    assert reward.product_ids == [wanted.pk]
    assert reward.value == Decimal("15.00")
    assert wanted.name in reward.note
    assert (reward.email, reward.visitor_id) == ("ada@example.com", signup.visitor_id)
    assert reward.referral == signup.referral_code
    assert reward.referred_visitor_id == friend_id
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@example.com"]
    assert reward.code in mail.outbox[0].body
    assert wanted.name in mail.outbox[0].body


def test_only_the_first_order_of_a_referred_visitor_is_rewarded(
    referrer_who_browsed, make_product, django_capture_on_commit_callbacks
):
    signup, wanted = referrer_who_browsed
    code = signup.referral_code.code
    friend_id = land(new_client(), code)["id"]
    with django_capture_on_commit_callbacks(execute=True):
        place_order(friend_id, "F-1", wanted)
        place_order(friend_id, "F-2", make_product())
        place_order(friend_id, "F-1", wanted)  # a replayed order
        assert referrals.reward_referrer(code, friend_id, "F-3") is None
    assert Coupon.objects.filter(source=Coupon.SOURCE_REFERRAL_REWARD).count() == 1
    assert len(mail.outbox) == 1


def test_a_referrer_without_a_wish_gets_a_whole_order_coupon(django_capture_on_commit_callbacks):
    signup = sign_up(new_client(), "ada@example.com")
    friend_id = land(new_client(), signup.referral_code.code)["id"]
    with django_capture_on_commit_callbacks(execute=True):
        reward = referrals.reward_referrer(signup.referral_code.code, friend_id, "F-1")
    assert reward.product_ids == []
    assert reward.note == "15% off your next order"
    assert len(mail.outbox) == 1


def test_a_customers_code_rewards_the_account(make_product, django_capture_on_commit_callbacks):
    user = get_user_model().objects.create_user("ada", "ada@shop.example", "pw")
    wanted = make_product()
    customer = new_client()
    customer.force_login(user)
    view(customer, wanted, 2)
    customer.get("/whoami/")  # a view that reads request.user: the visitor is linked
    code = referrals.code_for_user(user).code
    friend_id = land(new_client(), code)["id"]
    with django_capture_on_commit_callbacks(execute=True):
        place_order(friend_id, "F-1", make_product())
    reward = Coupon.objects.get(source=Coupon.SOURCE_REFERRAL_REWARD)
    assert reward.product_ids == [wanted.pk]
    assert reward.email == "ada@shop.example"
    assert mail.outbox[0].to == ["ada@shop.example"]


def test_referring_oneself_earns_nothing(referrer_who_browsed):
    signup, _wanted = referrer_who_browsed
    assert referrals.reward_referrer(signup.referral_code.code, signup.visitor_id, "X-1") is None
    assert not Coupon.objects.filter(source=Coupon.SOURCE_REFERRAL_REWARD).exists()


@pytest.mark.parametrize("code", ["NOSUCH23", "", "bad code"])
def test_unknown_codes_earn_nothing(code):
    assert referrals.reward_referrer(code, "friend-visitor-id-1", "F-1") is None
    assert not Coupon.objects.exists()


def test_a_failing_mail_server_does_not_break_the_order(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr(referrals, "send_mail", refuse)
    signup = sign_up(new_client(), "ada@example.com")
    friend_id = land(new_client(), signup.referral_code.code)["id"]
    with django_capture_on_commit_callbacks(execute=True):
        reward = referrals.reward_referrer(signup.referral_code.code, friend_id, "F-1")
    assert reward is not None
    assert "could not email a referral reward" in caplog.text
