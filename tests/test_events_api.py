"""POST api/events/: the page script's beacon for clicks, cart additions and popup actions."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from personalization.models import Event, Exposure
from personalization.profiling import storage
from tests.conftest import BROWSER_UA, GOOGLEBOT_UA

pytestmark = pytest.mark.django_db

EVENTS = "/personalization/api/events/"
START = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC).timestamp()  # the clock fixture's time


def visitor_id(client: Client) -> str:
    return client.get("/profile/").json()["id"]


def exposure_for(owner_id: str) -> Exposure:
    return Exposure.objects.create(
        visitor_id=owner_id, placement="home-hero", kind=Exposure.BANNER, content="banner:1"
    )


# What a browser adds to a beacon sent by one of the shop's own pages.
SAME_ORIGIN = {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_ORIGIN": "http://testserver"}


def send(client: Client, body, content_type: str = "application/json", **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(EVENTS, data=data, content_type=content_type, **headers)


@pytest.fixture
def own_exposure(browser) -> Exposure:
    return exposure_for(visitor_id(browser))


def test_a_click_on_the_visitors_own_exposure_is_stored(browser, own_exposure):
    body = {"type": "click", "exposure": str(own_exposure.pk), "product": 12}
    response = send(browser, body)
    assert response.status_code == 204
    event = Event.objects.get()
    assert (event.kind, event.exposure_id, event.product_id) == ("click", own_exposure.pk, "12")
    assert event.visitor_id == own_exposure.visitor_id


def test_someone_elses_exposure_is_refused(browser):
    visitor_id(browser)
    stranger = exposure_for(visitor_id(Client(HTTP_USER_AGENT=BROWSER_UA)))
    response = send(browser, {"type": "click", "exposure": str(stranger.pk)})
    assert response.status_code == 400
    assert response.json() == {"exposure": ["Unknown exposure."]}
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        '{"type": "click", ',
        "[]",
        "42",
        {"type": "purchase", "exposure": str(uuid.uuid4())},
        {"type": "click", "exposure": "not-a-uuid"},
        {"type": "click", "exposure": str(uuid.uuid4())},
        {"type": "click"},
        {"exposure": str(uuid.uuid4())},
        {"type": "add_to_cart", "product": "x" * 65},
    ],
)
def test_bad_input_is_a_400_with_json(browser, body):
    visitor_id(browser)
    response = send(browser, body)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()
    assert not Event.objects.exists()


def test_an_empty_beacon_is_a_400(browser):
    response = send(browser, "")
    assert response.status_code == 400
    assert response.json()


def test_a_form_is_a_415(browser):
    response = browser.post(EVENTS, {"type": "add_to_cart"}, **SAME_ORIGIN)
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        SAME_ORIGIN,
        {"HTTP_SEC_FETCH_SITE": "same-origin"},
        {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_ORIGIN": "null"},  # no-referrer policy
        {"HTTP_ORIGIN": "http://testserver"},  # a browser without Sec-Fetch-Site
    ],
)
def test_send_beacon_text_plain_bodies_from_the_shops_pages_are_accepted(
    browser, own_exposure, headers
):
    body = json.dumps({"type": "click", "exposure": str(own_exposure.pk)})
    response = send(browser, body, "text/plain;charset=UTF-8", **headers)
    assert response.status_code == 204
    assert Event.objects.filter(kind="click", exposure=own_exposure).exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_SEC_FETCH_SITE": "same-site", "HTTP_ORIGIN": "http://blog.testserver"},
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_ORIGIN": "https://testserver"},  # another scheme is another origin
        {"HTTP_ORIGIN": "null"},  # a sandboxed frame
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
    ],
)
def test_posts_from_other_sites_are_refused(browser, own_exposure, headers, content_type):
    body = json.dumps({"type": "click", "exposure": str(own_exposure.pk)})
    response = send(browser, body, content_type, **headers)
    assert response.status_code == 403
    assert "own pages" in response.json()["detail"]
    assert not Event.objects.exists()


def test_a_text_plain_body_without_a_browsers_word_on_its_origin_is_refused(browser, own_exposure):
    body = json.dumps({"type": "click", "exposure": str(own_exposure.pk)})
    assert send(browser, body, "text/plain").status_code == 403
    # JSON no other site can post without a CORS preflight: a client that is not a browser.
    assert send(browser, body).status_code == 204
    assert Event.objects.count() == 1


def test_trusted_origins_may_post(browser, own_exposure, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://www.shop.example", "https://*.shop.example"]
    body = json.dumps({"type": "click", "exposure": str(own_exposure.pk)})
    for origin in ("https://www.shop.example", "https://m.shop.example"):
        assert send(browser, body, "text/plain", HTTP_ORIGIN=origin).status_code == 204
    refused = send(browser, body, "text/plain", HTTP_ORIGIN="http://m.shop.example")
    assert refused.status_code == 403
    assert Event.objects.count() == 2


def test_no_csrf_token_is_needed_even_when_logged_in():
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_UA)
    client.force_login(get_user_model().objects.create_user("ada", "ada@example.com", "pw"))
    exposure = exposure_for(visitor_id(client))
    body = {"type": "click", "exposure": str(exposure.pk)}
    response = send(client, body, "text/plain", **SAME_ORIGIN)
    assert response.status_code == 204
    assert Event.objects.filter(exposure=exposure).exists()


def test_popup_shown_and_dismissed_update_the_profile(browser, own_exposure, clock):
    exposure = str(own_exposure.pk)
    assert send(browser, {"type": "popup_shown", "exposure": exposure}).status_code == 204
    profile = storage.load(own_exposure.visitor_id)
    assert profile.popup_shown_visit == 1
    assert profile.popup_dismissed_at is None
    clock.shift(5)
    assert send(browser, {"type": "popup_dismissed", "exposure": exposure}).status_code == 204
    profile = storage.load(own_exposure.visitor_id)
    assert profile.popup_dismissed_at == START + 5
    assert list(Event.objects.order_by("created_at").values_list("kind", flat=True)) == [
        "popup_shown",
        "popup_dismissed",
    ]


def test_add_to_cart_needs_no_exposure_and_dates_the_cart(browser, clock):
    own_id = visitor_id(browser)
    response = send(browser, {"type": "add_to_cart", "product": "sku-9"})
    assert response.status_code == 204
    event = Event.objects.get()
    assert (event.kind, event.exposure_id, event.product_id) == ("add_to_cart", None, "sku-9")
    assert storage.load(own_id).cart_updated_at == START


@pytest.mark.parametrize("headers", [{"HTTP_DNT": "1"}, {"HTTP_USER_AGENT": GOOGLEBOT_UA}])
def test_untracked_visitors_get_a_204_and_nothing_is_stored(headers):
    client = Client(**{"HTTP_USER_AGENT": BROWSER_UA, **headers})
    response = send(client, {"type": "add_to_cart", "product": "1"})
    assert response.status_code == 204
    assert send(client, "garbage").status_code == 204
    assert not Event.objects.exists()


def test_a_flood_of_events_is_throttled(browser, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EVENTS_THROTTLE_RATE": "2/minute"}
    statuses = [send(browser, {"type": "add_to_cart"}).status_code for _ in range(3)]
    assert statuses == [204, 204, 429]
    assert Event.objects.count() == 2
