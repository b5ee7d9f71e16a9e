"""A visitor's right to see and delete their data: GET and DELETE api/me/."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import Client

from personalization.models import Visitor
from personalization.profiling.storage import profile_cache_key
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

ME = "/personalization/api/me/"


def test_a_visitor_sees_what_is_stored(browser, make_product, clock):
    product = make_product()
    browser.get(f"/products/{product.slug}/", HTTP_REFERER="https://duckduckgo.com/")
    clock.shift(20)
    browser.get("/")  # the cookie came back: the row is written
    clock.shift(20)
    body = browser.get(ME).json()
    assert body["tracked"] is True
    assert body["recently_viewed"] == [product.pk]
    assert body["top_categories"] == ["camping"]
    assert body["referrer"]["source"] == "search"
    assert body["stored_record"]["id"] == body["id"]
    assert not {"ip", "ip_address", "remote_addr"} & set(body["stored_record"])


def test_delete_forgets_everything_and_the_cookie(browser, make_product, clock):
    product = make_product()
    browser.get(f"/products/{product.slug}/")
    clock.shift(20)
    visitor_id = browser.get(ME).json()["id"]
    assert Visitor.objects.filter(pk=visitor_id).exists()
    response = browser.delete(ME)
    assert response.status_code == 204
    assert response.cookies["pzn_vid"].value == ""
    assert not Visitor.objects.filter(pk=visitor_id).exists()
    assert caches["default"].get(profile_cache_key(visitor_id)) is None
    fresh = browser.get(ME).json()
    assert fresh["id"] != visitor_id
    assert fresh["recently_viewed"] == []


def test_opted_out_visitors_are_told_nothing_is_kept():
    client = Client(HTTP_USER_AGENT=BROWSER_UA, HTTP_DNT="1")
    assert client.get(ME).json() == {"tracked": False, "reason": "opted-out"}
    assert client.delete(ME).status_code == 204
