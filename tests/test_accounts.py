"""Logging in links the visitor to the user; a user on a second device keeps one profile."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
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
