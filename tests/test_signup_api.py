"""POST api/signup/: an email address, with consent, for one coupon per address and visitor."""

from __future__ import annotations

import datetime as dt
import json
import pickle

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client, override_settings

from personalization import coupons
from personalization.models import Conversion, Coupon, ReferralCode, Signup
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

SIGNUP = "/personalization/api/signup/"
ME = "/personalization/api/me/"
CSRF_SECRET = "a" * 32
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def post(client: Client, body, **extra):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(SIGNUP, data=data, content_type="application/json", **extra)


def visitor_id(client: Client) -> str:
    return client.get("/profile/").json()["id"]


@pytest.fixture
def signup_rate(settings):
    def set_rate(rate: str) -> None:
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SIGNUP_THROTTLE_RATE": rate}

    return set_rate


def test_a_signup_gets_a_coupon_and_a_referral_link(browser, clock):
    own_id = visitor_id(browser)
    response = post(browser, {"email": "  Ada@Example.COM ", "consent": "Send me offers."})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"coupon_code", "discount", "expires_at", "referral_link"}
    assert body["discount"] == "10%"
    assert dt.datetime.fromisoformat(body["expires_at"]) == dt.datetime(
        2026, 12, 2, 10, tzinfo=dt.UTC
    )
    signup = Signup.objects.get()
    assert signup.email == "ada@example.com"
    assert signup.visitor_id == own_id
    assert signup.consent_text == "Send me offers."
    assert signup.consent_at is not None
    assert signup.coupon.code == body["coupon_code"]
    assert coupons.validate(body["coupon_code"]).source == Coupon.SOURCE_SIGNUP
    code = ReferralCode.objects.get(signup=signup)
    assert body["referral_link"] == f"http://testserver/?ref={code.code}"


def test_replaying_the_signup_returns_the_same_coupon(browser):
    first = post(browser, {"email": "ada@example.com"})
    again = post(browser, {"email": "ADA@example.com"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Signup.objects.count() == Coupon.objects.count() == 1


def test_one_visitor_gets_one_coupon_whatever_address_they_give(browser):
    first = post(browser, {"email": "ada@example.com"})
    other = post(browser, {"email": "lovelace@example.com"})
    assert other.status_code == 200
    assert other.json()["coupon_code"] == first.json()["coupon_code"]
    assert list(Signup.objects.values_list("email", flat=True)) == ["ada@example.com"]


def test_someone_elses_address_is_a_409_without_its_coupon(browser):
    code = post(browser, {"email": "ada@example.com"}).json()["coupon_code"]
    stranger = Client(HTTP_USER_AGENT=BROWSER_UA)
    response = post(stranger, {"email": " ADA@example.com"})
    assert response.status_code == 409
    assert response.json() == {"detail": "This email address has already been signed up."}
    assert code not in response.content.decode()
    assert Coupon.objects.count() == Signup.objects.count() == 1
    # The stranger's own address still gets them a coupon of their own.
    own = post(stranger, {"email": "stranger@example.com"})
    assert own.status_code == 201
    assert own.json()["coupon_code"] != code
    # And the first visitor still gets theirs back.
    again = post(browser, {"email": "ada@example.com"})
    assert (again.status_code, again.json()["coupon_code"]) == (200, code)


@pytest.mark.parametrize("email", ["not-an-address", "ada@", "@example.com", "a b@example.com"])
def test_a_malformed_address_is_a_400_that_says_so(browser, email):
    response = post(browser, {"email": email})
    assert response.status_code == 400
    assert response.json() == {"email": ["Enter a valid email address."]}
    assert not Signup.objects.exists()


def test_a_missing_address_is_a_400(browser):
    response = post(browser, {"consent": "yes"})
    assert response.status_code == 400
    assert response.json()["email"] == ["This field is required."]


@pytest.mark.parametrize("body", ['{"email": ', "[1, 2]", '"ada@example.com"', "null"])
def test_a_malformed_body_is_a_400_with_json(browser, body):
    response = post(browser, body)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()  # says what is wrong
    assert not Signup.objects.exists()


def test_a_broken_json_body_names_the_parse_error(browser):
    response = post(browser, '{"email": ')
    assert response.json()["detail"].startswith("JSON parse error")


def test_csrf_is_enforced_for_anonymous_visitors():
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_UA)
    response = post(client, {"email": "ada@example.com"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Signup.objects.exists()

    client.cookies["csrftoken"] = CSRF_SECRET
    response = post(client, {"email": "ada@example.com"}, HTTP_X_CSRFTOKEN=CSRF_SECRET)
    assert response.status_code == 201


def test_a_flood_of_signups_is_throttled_per_client(browser, signup_rate):
    signup_rate("3/minute")
    statuses = [post(browser, {"email": f"user{n}@example.com"}).status_code for n in range(4)]
    assert statuses == [201, 200, 200, 429]
    throttled = post(browser, {"email": "user9@example.com"})
    assert throttled.status_code == 429
    assert "throttled" in throttled.json()["detail"]
    other_client = Client(HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="198.51.100.7")
    assert post(other_client, {"email": "other@example.com"}).status_code == 201


@override_settings(CACHES=LOCMEM)
@pytest.mark.parametrize("proxies", [0, 1])
def test_throttle_cache_keys_hold_no_raw_ip(settings, proxies):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRUSTED_PROXY_COUNT": proxies}
    ip = "203.0.113.77"
    network = {"REMOTE_ADDR": ip} if proxies == 0 else {"HTTP_X_FORWARDED_FOR": ip}
    client = Client(HTTP_USER_AGENT=BROWSER_UA, **network)
    assert post(client, {"email": "ada@example.com"}).status_code == 201
    stored = caches["default"]._cache
    keys = list(stored)
    assert any(":throttle:signup:" in key for key in keys), keys
    for key in keys:
        assert ip not in key
        assert ip.encode() not in stored[key]
        assert ip not in repr(pickle.loads(stored[key]))


def test_the_signup_goal_is_recorded_once(browser):
    post(browser, {"email": "ada@example.com"})
    post(browser, {"email": "ada@example.com"})
    post(browser, {"email": "other@example.com"})
    goals = Conversion.objects.filter(goal="signup")
    assert goals.count() == 1
    assert goals.get().kind == Conversion.LEAD


def test_the_profile_remembers_the_signup(browser):
    post(browser, {"email": "ada@example.com"})
    me = browser.get(ME).json()
    assert [signup["email"] for signup in me["signups"]] == ["ada@example.com"]
    assert me["coupons"][0]["discount"] == "10%"
    assert me["coupons"][0]["redeemed"] is False


def test_an_opted_out_visitor_may_still_sign_up():
    client = Client(HTTP_USER_AGENT=BROWSER_UA, HTTP_DNT="1")
    response = post(client, {"email": "private@example.com"})
    assert response.status_code == 201
    signup = Signup.objects.get()
    assert signup.visitor_id is None
    assert signup.coupon.visitor_id is None
    assert not Conversion.objects.exists()
    assert ReferralCode.objects.filter(signup=signup).exists()


def test_a_logged_in_customer_is_linked_to_the_signup(browser):
    user = get_user_model().objects.create_user("ada", "ada@example.com", "pw")
    browser.force_login(user)
    assert post(browser, {"email": "ada@example.com"}).status_code == 201
    assert Signup.objects.get().user == user


def test_forgetting_a_visitor_erases_their_signup_and_unused_coupons(browser):
    code = post(browser, {"email": "ada@example.com"}).json()["coupon_code"]
    own_id = visitor_id(browser)
    used = coupons.issue(source=Coupon.SOURCE_MANUAL, value=5, email="ada@example.com")
    Coupon.objects.filter(pk=used.pk).update(visitor_id=own_id)
    coupons.redeem(used.code, order_id="A-1")
    assert browser.delete(ME).status_code == 204
    assert not Signup.objects.exists()
    assert not Coupon.objects.filter(code=code).exists()
    assert not ReferralCode.objects.exists()
    used.refresh_from_db()  # kept for the shop's accounts, without the address
    assert (used.email, used.visitor_id, used.redeemed_order_id) == ("", None, "A-1")


def test_other_methods_get_a_json_405(browser):
    response = browser.get(SIGNUP)
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.'}
