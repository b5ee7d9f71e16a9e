"""A request without the visitor cookie writes no row: what it would write is held in the
profile and written, with its own timestamps and exactly once, when the cookie comes back."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import path

import tests.urls
from personalization import holding, track
from personalization.models import Conversion, Event, Exposure, ProductInteraction, Visitor
from personalization.profiling import storage
from personalization.reports.period import parse_period
from personalization.reports.queries import build_report
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

LANDED = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def product_pages(settings):
    """Product pages that record a view and render two recommendation blocks."""
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PRODUCT_VIEW_URLS": {"shop:product-recs": "slug"},
    }


def page(client: Client, product) -> None:
    assert client.get(f"/products/{product.slug}/with-recommendations/").status_code == 200


def test_a_client_that_keeps_no_cookie_writes_nothing(make_product):
    product = make_product()
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    for _ in range(20):
        client.cookies.clear()
        page(client, product)
    assert Exposure.objects.count() == 0
    assert ProductInteraction.objects.count() == 0
    assert Visitor.objects.count() == 0


def test_the_first_page_is_written_when_the_cookie_comes_back(make_product, clock):
    product, other = make_product(), make_product()
    browser = Client(HTTP_USER_AGENT=BROWSER_UA)
    page(browser, product)
    assert not Exposure.objects.exists() and not ProductInteraction.objects.exists()
    clock.shift(20)
    page(browser, other)
    first = Exposure.objects.filter(created_at=LANDED)
    assert first.count() == 2  # both blocks of the landing page, at its own time
    assert {e.placement for e in first} == {"product-viewed-together", "product-bought-together"}
    assert Exposure.objects.filter(created_at=LANDED + dt.timedelta(seconds=20)).count() == 2
    views = ProductInteraction.objects.order_by("created_at")
    assert [(v.product_id, v.created_at) for v in views] == [
        (str(product.pk), LANDED),
        (str(other.pk), LANDED + dt.timedelta(seconds=20)),
    ]
    only = Visitor.objects.get()
    assert {e.visitor_id for e in Exposure.objects.all()} == {only.pk}
    for _ in range(3):  # later pages add their own rows and never the first page's again
        clock.shift(20)
        page(browser, other)
    assert Exposure.objects.filter(created_at=LANDED).count() == 2
    assert ProductInteraction.objects.filter(created_at=LANDED).count() == 1
    assert Exposure.objects.count() == 10


_together: dict[str, threading.Barrier] = {}


def paused(request: HttpRequest) -> HttpResponse:
    """Waits until every request of the run has loaded the profile (none has saved it)."""
    _together["run"].wait(timeout=20)
    return HttpResponse("paused")


urlpatterns = [path("paused/", paused), *tests.urls.urlpatterns]


@pytest.mark.django_db(transaction=True)
def test_overlapping_requests_write_the_held_rows_once(make_product, clock, settings):
    """The second and third requests both load the profile with the held rows before either
    saves it; only the one that claims the rows writes them."""
    settings.ROOT_URLCONF = __name__
    product = make_product()
    browser = Client(HTTP_USER_AGENT=BROWSER_UA)
    page(browser, product)
    clock.shift(20)
    cookie = browser.cookies["pzn_vid"].value
    _together["run"] = threading.Barrier(2)
    errors: list[BaseException] = []

    def request() -> None:
        client = Client(HTTP_USER_AGENT=BROWSER_UA)
        client.cookies["pzn_vid"] = cookie
        try:
            assert client.get("/paused/").status_code == 200
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            _together["run"].abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert Exposure.objects.filter(created_at=LANDED).count() == 2
    assert ProductInteraction.objects.filter(created_at=LANDED).count() == 1
    assert Exposure.objects.count() == 2
    assert storage.load(visitor_id_of(browser)).held == []
    clock.shift(20)
    page(browser, product)
    assert Exposure.objects.filter(created_at=LANDED).count() == 2


@pytest.mark.parametrize("control_percent", [0, 100])
def test_control_and_personalized_visitors_are_held_alike(
    make_product, clock, settings, control_percent
):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "CONTROL_GROUP_PERCENT": control_percent,
    }
    product = make_product()
    cookieless, browser = Client(HTTP_USER_AGENT=BROWSER_UA), Client(HTTP_USER_AGENT=BROWSER_UA)
    for _ in range(3):
        cookieless.cookies.clear()
        page(cookieless, product)
    assert Exposure.objects.count() == 0
    page(browser, product)
    assert Exposure.objects.count() == 0
    clock.shift(20)
    page(browser, product)
    rows = Exposure.objects.all()
    assert len(rows) == 4
    assert {row.is_control for row in rows} == {control_percent == 100}
    assert Exposure.objects.filter(created_at=LANDED).count() == 2


def test_visitor_counts_match_visitor_rows_in_a_mixed_run(make_product, clock):
    product = make_product()
    browsers = [Client(HTTP_USER_AGENT=BROWSER_UA) for _ in range(4)]
    scraper = Client(HTTP_USER_AGENT=BROWSER_UA)
    for _ in range(3):
        for browser in browsers:
            page(browser, product)
        for _ in range(5):
            scraper.cookies.clear()
            page(scraper, product)
        clock.shift(20)
    exposed = set(Exposure.objects.values_list("visitor_id", flat=True))
    assert exposed == set(Visitor.objects.values_list("pk", flat=True))
    assert len(exposed) == 4
    assert set(ProductInteraction.objects.values_list("visitor_id", flat=True)) == exposed
    assert ProductInteraction.objects.count() == 12


def test_an_order_is_attributed_to_the_landing_page(make_product, clock, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 0}
    product = make_product()
    browser = Client(HTTP_USER_AGENT=BROWSER_UA)
    page(browser, product)  # the only personalized content this visitor is ever shown
    clock.shift(60)
    assert browser.post("/order/", {"order_id": "A-1", "total": "20.00"}).status_code == 201
    assert Exposure.objects.filter(created_at=LANDED).count() == 2
    result = build_report(parse_period("2026-11-02", "2026-11-02"))
    assert result["personalized"]["visitors"] == 1
    assert result["personalized"]["converted_visitors"] == 1


def test_cart_additions_and_goals_are_held_too(rf, make_product, clock):
    """Called by the shop's own views: held on a cookieless request, written on the next."""
    from personalization.middleware import VisitorMiddleware

    product = make_product()
    done = []

    def view(request):
        if not done:  # the first request only
            assert track.add_to_cart(request, product, quantity=2)
            done.append(track.goal(request, "newsletter_signup"))
        return HttpResponse("ok")

    middleware = VisitorMiddleware(view)
    request = rf.get("/", HTTP_USER_AGENT=BROWSER_UA)
    response = middleware(request)
    assert done[0].pk is None  # returned unsaved
    assert not Event.objects.exists() and not Conversion.objects.exists()
    assert not ProductInteraction.objects.exists()
    clock.shift(5)
    second = rf.get("/", HTTP_USER_AGENT=BROWSER_UA)
    second.COOKIES = {key: morsel.value for key, morsel in response.cookies.items()}
    middleware(second)
    event = Event.objects.get()
    assert (event.kind, event.product_id, event.created_at) == (
        "add_to_cart",
        str(product.pk),
        LANDED,
    )
    cart = ProductInteraction.objects.get()
    assert (cart.kind, cart.quantity, cart.created_at) == ("cart", 2, LANDED)
    conversion = Conversion.objects.get()
    assert (conversion.goal, conversion.created_at) == ("newsletter_signup", LANDED)
    assert {event.visitor_id, cart.visitor_id, conversion.visitor_id} == {second.visitor.id}
    assert Visitor.objects.filter(pk=second.visitor.id).exists()


def test_held_rows_are_bounded_to_the_latest(rf, make_product, clock):
    from personalization.middleware import VisitorMiddleware

    products = [make_product() for _ in range(15)]

    def view(request):
        if not request.COOKIES:
            for product in products:  # an event and an interaction each: 30 rows
                assert track.add_to_cart(request, product)
                clock.shift(1)
        return HttpResponse("ok")

    middleware = VisitorMiddleware(view)
    response = middleware(rf.get("/", HTTP_USER_AGENT=BROWSER_UA))
    second = rf.get("/", HTTP_USER_AGENT=BROWSER_UA)
    second.COOKIES = {key: morsel.value for key, morsel in response.cookies.items()}
    middleware(second)
    assert Event.objects.count() + ProductInteraction.objects.count() == holding.MAX_HELD
    kept = {str(product.pk) for product in products[-10:]}
    assert set(Event.objects.values_list("product_id", flat=True)) == kept
    assert set(ProductInteraction.objects.values_list("product_id", flat=True)) == kept


def test_held_rows_are_dropped_with_the_profile(make_product, clock):
    product = make_product()
    browser = Client(HTTP_USER_AGENT=BROWSER_UA)
    page(browser, product)
    held = storage.load(visitor_id_of(browser)).held
    assert [label for label, _ in held] == ["personalization.Exposure"] * 2 + [
        "personalization.ProductInteraction"
    ]
    storage.revisions.forget(visitor_id_of(browser))  # the cache lost the profile
    clock.shift(20)
    page(browser, product)
    assert Exposure.objects.count() == 2  # the second page's own; the first page's are gone
    assert not Exposure.objects.filter(created_at=LANDED).exists()


def visitor_id_of(client: Client) -> str | None:
    request = RequestFactory().get("/")
    request.COOKIES["pzn_vid"] = client.cookies["pzn_vid"].value
    return storage.read_visitor_id(request)


def test_a_click_on_the_landing_page_finds_its_exposure(clock):
    """The click's beacon may be the first request that comes back with the cookie: the held
    exposures are written before the events API checks that the exposure is the visitor's."""
    browser = Client(HTTP_USER_AGENT=BROWSER_UA)
    response = browser.get("/personalization/api/recommendations/", {"placement": "home"})
    shown = [response.json()["exposure"]]
    assert not Exposure.objects.exists()
    clock.shift(2)
    click = browser.post(
        "/personalization/api/events/",
        json.dumps({"type": "click", "exposure": shown[0]}),
        content_type="application/json",
        HTTP_SEC_FETCH_SITE="same-origin",
        HTTP_ORIGIN="http://testserver",
    )
    assert click.status_code == 204
    event = Event.objects.get()
    assert (event.kind, str(event.exposure_id)) == ("click", shown[0])
    assert Exposure.objects.get(pk=shown[0]).created_at == LANDED
