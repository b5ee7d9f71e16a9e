"""Requests of one visitor that overlap never lose each other's changes: two product pages
and a checkout, each in its own thread against a real Redis and the suite's database, are
held after loading the profile until all three have loaded it, then finish in every order
(and all at once). The order stays in the profile and in the row, both product views are
kept, and the next visit writes none of it away."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from decimal import Decimal

import pytest
import time_machine
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.test import Client, RequestFactory
from django.urls import include, path

from personalization import track
from personalization.models import Conversion, Visitor
from personalization.profiling import storage
from tests.conftest import BROWSER_UA
from tests.redis_servers import RedisServer, cache_settings, need_redis_server

STEPS = ("view-a", "view-b", "checkout")
# Every order in which the three can finish, and all three at once; seven times over.
SCHEDULES = [*itertools.permutations(STEPS), None] * 7


class Choreography:
    """Holds each request's view until every request has loaded the profile, then lets them
    finish in ``order``: each one's response is complete before the next view returns."""

    def __init__(self, order: tuple[str, ...] | None) -> None:
        self.order = order
        self.loaded = threading.Barrier(len(STEPS))
        self.turn = {step: threading.Event() for step in STEPS}
        self.done = {step: threading.Event() for step in STEPS}

    def pause(self, step: str) -> None:
        self.loaded.wait(timeout=20)
        assert self.turn[step].wait(timeout=20), f"{step} was never let through"

    def conduct(self) -> None:
        if self.order is None:
            for event in self.turn.values():
                event.set()
            return
        for step in self.order:
            self.turn[step].set()
            assert self.done[step].wait(timeout=20), f"{step} did not finish"


_current: dict[str, Choreography] = {}


def paused_product(request: HttpRequest, slug: str) -> HttpResponse:
    from tests.testapp.models import Product

    product = get_object_or_404(Product, slug=slug)
    _current["run"].pause(request.GET["step"])
    return HttpResponse(f"product {product.name}")


def paused_checkout(request: HttpRequest) -> HttpResponse:
    conversion = track.order(request, order_id=request.POST["order_id"], total="10.00")
    _current["run"].pause("checkout")
    return HttpResponse(str(conversion.pk if conversion else ""), status=201)


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("plain")


urlpatterns = [
    path("", plain),
    path("checkout/", paused_checkout),
    path("", include(([path("products/<slug:slug>/", paused_product, name="product")], "shop"))),
]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    need_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def shop(settings, redis_server, make_product):
    settings.ROOT_URLCONF = __name__
    settings.CACHES = {
        **settings.CACHES,
        "profiles": cache_settings(redis_server.port, "pzn-concurrent"),
    }
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CACHE_ALIAS": "profiles"}
    return make_product(slug="a"), make_product(slug="b", category="kitchen")


def visitor_id_of(client: Client) -> str | None:
    request = RequestFactory().get("/")
    request.COOKIES["pzn_vid"] = client.cookies["pzn_vid"].value
    return storage.read_visitor_id(request)


def in_thread(cookie: str, run: Choreography, step: str, order_id: str, errors: list) -> None:
    client = Client(HTTP_USER_AGENT=BROWSER_UA)  # one per thread: a browser's tabs
    client.cookies["pzn_vid"] = cookie
    try:
        if step == "checkout":
            response = client.post("/checkout/?step=checkout", {"order_id": order_id})
            assert response.status_code == 201, response
        else:
            response = client.get(f"/products/{step[-1]}/?step={step}")
            assert response.status_code == 200, response
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)
        run.loaded.abort()
    finally:
        run.done[step].set()
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_a_checkout_and_two_product_pages_that_overlap_lose_nothing(shop):
    product_a, product_b = shop
    for n, order in enumerate(SCHEDULES):
        client = Client(HTTP_USER_AGENT=BROWSER_UA)
        client.get("/")
        client.get("/")  # the cookie came back: the row exists
        visitor_id = visitor_id_of(client)
        cookie = client.cookies["pzn_vid"].value
        run = _current["run"] = Choreography(order)
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=in_thread, args=(cookie, run, step, f"R-{n}", errors))
            for step in STEPS
        ]
        for thread in threads:
            thread.start()
        run.conduct()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        schedule = order or "all at once"

        assert Conversion.objects.get(order_id=f"R-{n}").visitor_id == visitor_id
        row = Visitor.objects.get(pk=visitor_id)
        assert (row.order_count, row.total_spent) == (1, Decimal("10.00")), schedule
        profile = storage.load(visitor_id)
        assert (profile.order_count, profile.total_spent) == (1, 10.0), schedule
        assert sorted(profile.recently_viewed) == sorted([product_a.pk, product_b.pk]), schedule
        assert sorted(profile.product_views.values()) == [1, 1], schedule

        # The next visit writes the row from the cached profile: nothing is taken back.
        with time_machine.travel(dt.timedelta(minutes=31), tick=True):
            assert client.get("/").status_code == 200
        row.refresh_from_db()
        assert (row.visit_count, row.order_count, row.total_spent) == (2, 1, Decimal("10.00"))
        assert sorted(row.recently_viewed) == sorted([product_a.pk, product_b.pk]), schedule
