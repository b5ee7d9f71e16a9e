"""Logging in links the visitor to the user; a user on a second device keeps one profile."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client

from personalization.models import Visitor
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create_user("ada", "ada@example.com", "pw")


def profile(client) -> dict:
    return client.get("/profile/").json()


class TestLoginLinks:
    def test_logging_in_links_the_visitor_to_the_user(self, user, clock):
        device = Client(HTTP_USER_AGENT=BROWSER_UA)
        visitor_id = profile(device)["id"]
        clock.shift(10)
        response = device.post("/login/", {"username": "ada", "password": "pw"})
        assert response.status_code == 302
        assert Visitor.objects.get(user=user).pk == visitor_id

    def test_a_second_device_is_merged_into_the_users_profile(self, user, make_product, clock):
        tent, stove, mat = make_product(), make_product(), make_product(category="kitchen")
        laptop = Client(HTTP_USER_AGENT=BROWSER_UA)
        laptop.get(f"/products/{tent.slug}/")
        laptop.post("/login/", {"username": "ada", "password": "pw"})
        account_id = Visitor.objects.get(user=user).pk

        clock.shift(3600)
        phone = Client(HTTP_USER_AGENT=BROWSER_UA)
        phone.get(f"/products/{stove.slug}/")
        phone.get(f"/products/{mat.slug}/")
        phone_id = phone.get("/profile/").json()["id"]
        assert phone_id != account_id
        clock.shift(10)
        response = phone.post("/login/", {"username": "ada", "password": "pw"})
        assert response.status_code == 302
        merged = profile(phone)
        assert merged["id"] == account_id
        assert merged["recently_viewed"] == [mat.pk, stove.pk, tent.pk]
        assert set(merged["top_categories"]) == {"camping", "kitchen"}
        assert not Visitor.objects.filter(pk=phone_id).exists()
        assert Visitor.objects.filter(user=user).count() == 1
        # The laptop sees the same profile.
        assert profile(laptop)["recently_viewed"] == [mat.pk, stove.pk, tent.pk]

    def test_another_user_on_the_same_browser_gets_a_separate_profile(self, user, clock):
        other = get_user_model().objects.create_user("bob", "bob@example.com", "pw")
        shared = Client(HTTP_USER_AGENT=BROWSER_UA)
        shared.post("/login/", {"username": "ada", "password": "pw"})
        ada_id = Visitor.objects.get(user=user).pk
        shared.post("/logout/")
        clock.shift(10)
        shared.post("/login/", {"username": "bob", "password": "pw"})
        bob_row = Visitor.objects.get(user=other)
        assert bob_row.pk != ada_id
        assert profile(shared)["id"] == bob_row.pk
        assert Visitor.objects.get(pk=ada_id).user == user

    def test_a_session_logged_in_before_the_cookie_is_linked_when_the_view_reads_the_user(
        self, user
    ):
        client = Client(HTTP_USER_AGENT=BROWSER_UA)
        client.force_login(user)  # no request: the login signal had no visitor
        response = client.get("/whoami/")
        assert response.content == str(user.pk).encode()
        assert Visitor.objects.get(user=user)

    def test_opted_out_visitors_are_not_linked(self, user):
        client = Client(HTTP_USER_AGENT=BROWSER_UA, HTTP_SEC_GPC="1")
        client.post("/login/", {"username": "ada", "password": "pw"})
        assert not Visitor.objects.exists()


def holdout(settings, percent: int) -> None:
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": percent}


class TestOnePersonOneGroup:
    def test_a_new_account_keeps_the_group_of_the_device_that_logged_in(
        self, user, settings, clock
    ):
        holdout(settings, 100)
        laptop = Client(HTTP_USER_AGENT=BROWSER_UA)
        assert profile(laptop)["in_control_group"] is True
        clock.shift(10)
        laptop.post("/login/", {"username": "ada", "password": "pw"})
        account = Visitor.objects.get(user=user)
        assert (account.in_control_group, account.fixed_control_group) == (True, True)

        # Nobody is held out any more; the person stays in control on every device.
        holdout(settings, 0)
        phone = Client(HTTP_USER_AGENT=BROWSER_UA)
        assert profile(phone)["in_control_group"] is False  # anonymous: by its own id
        clock.shift(10)
        phone.post("/login/", {"username": "ada", "password": "pw"})
        assert profile(phone)["id"] == account.pk
        assert profile(phone)["in_control_group"] is True
        assert profile(laptop)["in_control_group"] is True
        caches["default"].clear()  # the group is read back from the row alone
        tablet = Client(HTTP_USER_AGENT=BROWSER_UA)
        tablet.post("/login/", {"username": "ada", "password": "pw"})
        assert profile(tablet)["in_control_group"] is True
        assert Visitor.objects.get(user=user).fixed_control_group is True

    def test_another_user_on_a_shared_browser_starts_in_its_group(self, user, settings, clock):
        get_user_model().objects.create_user("bob", "bob@example.com", "pw")
        holdout(settings, 100)
        shared = Client(HTTP_USER_AGENT=BROWSER_UA)
        shared.post("/login/", {"username": "ada", "password": "pw"})
        shared.post("/logout/")
        holdout(settings, 0)
        clock.shift(10)
        shared.post("/login/", {"username": "bob", "password": "pw"})
        bob = Visitor.objects.get(user__username="bob")
        assert (bob.in_control_group, bob.fixed_control_group) == (True, True)

    def test_a_person_shown_both_groups_is_counted_in_neither(self, user, settings, clock):
        from personalization.models import Conversion, Exposure
        from personalization.reports import rollups
        from personalization.reports.period import parse_period
        from personalization.reports.queries import build_report

        # The account is personalized: its first device logged in while nobody was held out.
        holdout(settings, 0)
        laptop = Client(HTTP_USER_AGENT=BROWSER_UA)
        laptop.get("/banner-page/")
        laptop.post("/login/", {"username": "ada", "password": "pw"})
        account_id = Visitor.objects.get(user=user).pk
        # Another shopper, personalized, who orders too.
        other = Client(HTTP_USER_AGENT=BROWSER_UA)
        other.get("/banner-page/")

        # The same person on a phone, anonymous, lands in the holdout and sees the defaults.
        holdout(settings, 100)
        clock.shift(3600)
        phone = Client(HTTP_USER_AGENT=BROWSER_UA)
        phone.get("/banner-page/")
        phone_id = profile(phone)["id"]
        assert Exposure.objects.filter(visitor_id=phone_id, is_control=True).exists()
        clock.shift(60)
        phone.post("/login/", {"username": "ada", "password": "pw"})
        after_login = profile(phone)
        assert (after_login["id"], after_login["in_control_group"]) == (account_id, False)
        phone.get("/banner-page/")
        clock.shift(60)
        assert phone.post("/order/", {"order_id": "A-1", "total": "40.00"}).status_code == 201
        assert other.post("/order/", {"order_id": "B-1", "total": "10.00"}).status_code == 201
        # The phone's control exposures followed the person to the account.
        assert set(
            Exposure.objects.filter(visitor_id=account_id).values_list("is_control", flat=True)
        ) == {False, True}
        assert Conversion.objects.get(order_id="A-1").visitor_id == account_id

        period = parse_period("2026-11-01", "2026-11-30")
        raw = build_report(period)
        rollups.refresh(full=True)
        rolled = build_report(period)
        assert (raw["source"], rolled["source"]) == ("raw", "rollups")
        for result in (raw, rolled):
            assert result["excluded_visitors"] == 1
            assert (result["personalized"]["visitors"], result["control"]["visitors"]) == (1, 0)
            # Only the other shopper's order: the person's converts for neither group.
            assert result["personalized"]["orders"] == 1
            assert result["personalized"]["revenue"] == "10.00"
            assert result["control"]["orders"] == 0
