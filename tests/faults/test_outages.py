"""The demo shop through two Redis outages: Redis stopped (connections refused) and Redis
replaced by a listener that accepts connections and never answers. Meanwhile every page
answers within a second, with its defaults; the APIs give no 5xx; a new visitor gets a
cookie; a returning customer's order is credited to them in the database and is in their
profile once Redis is back (with the copies it kept from before the outage); and the shop
logs each outage once, not once per request."""

from __future__ import annotations

import pickle
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
import redis as redis_client

from tests.faults.conftest import COOLDOWN_SECONDS, Browser, Shop, form_token
from tests.redis_servers import HungListener

pytestmark = pytest.mark.faults

PAGE_SECONDS = 1.0
HERO = 'data-personalization-placement="home-hero"'
DEFAULT_HERO = "Nights under the stars, mornings with great coffee."
OPENED = "the cache 'default' failed"
CHECKOUT = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "street": "1 Analytical Row",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
    "coupon": "",
}


@contextmanager
def outage(shop: Shop, kind: str) -> Iterator[None]:
    """Redis down for the duration: ``stopped`` refuses connections, ``hung`` accepts them
    and never answers. Redis then comes back with the data it had (saved at the stop)."""
    shop.redis.stop(save=True)
    listener = HungListener(shop.redis.port) if kind == "hung" else None
    try:
        yield
    finally:
        if listener is not None:
            listener.close()
        shop.redis.start()


def query(shop: Shop, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(shop.database, timeout=20) as connection:
        return connection.execute(sql, params).fetchall()


def cached_profile(shop: Shop, visitor_id: str) -> dict | None:
    client = redis_client.Redis(port=shop.redis.port, socket_timeout=5)
    raw = client.get(f":1:pzn:v1:profile:{visitor_id}")
    return pickle.loads(raw) if raw is not None else None


def add_to_cart(browser: Browser, product_slug: str, product_pk: int) -> float:
    page = browser.get(f"/products/{product_slug}/")
    added = browser.post(
        f"/cart/add/{product_pk}/",
        form={"csrfmiddlewaretoken": form_token(page), "quantity": "1"},
    )
    assert added.status == 302, added.body[:500]
    return added.seconds


def place_order(browser: Browser) -> dict[str, float]:
    checkout = browser.get("/checkout/")
    assert checkout.status == 200, checkout.body[:500]
    token = form_token(checkout)
    import re

    order_token = re.search(r'name="token" value="([^"]+)"', checkout.body).group(1)
    placed = browser.post(
        "/checkout/", form={**CHECKOUT, "csrfmiddlewaretoken": token, "token": order_token}
    )
    assert placed.status == 302, placed.body[:2000]
    confirmation = browser.get(placed.headers["Location"])
    assert confirmation.status == 200
    return {
        "checkout": checkout.seconds,
        "place order": placed.seconds,
        "confirmation": confirmation.seconds,
    }


def concurrent_home_pages(shop: Shop, count: int = 12) -> list[float]:
    seconds: list[float] = []
    statuses: list[int] = []

    def visit() -> None:
        page = shop.browser().get("/")
        statuses.append(page.status)
        seconds.append(page.seconds)

    threads = [threading.Thread(target=visit) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [200] * count
    return seconds


@pytest.mark.parametrize("kind", ["stopped", "hung"])
def test_the_shop_works_through_a_redis_outage(shop: Shop, kind: str) -> None:
    [(category,)] = query(shop, "SELECT slug FROM catalog_category ORDER BY position LIMIT 1")
    [(slug, pk)] = query(
        shop, "SELECT slug, id FROM catalog_product WHERE stock > 5 ORDER BY id LIMIT 1"
    )
    customer = shop.browser()  # a returning customer with a cart, known before the outage
    assert customer.get("/").status == 200
    add_to_cart(customer, slug, pk)
    assert customer.get("/cart/").status == 200
    customer_id = customer.visitor_id
    assert query(shop, "SELECT order_count FROM personalization_visitor WHERE id = ?",
                 customer_id) == [(0,)]  # fmt: skip
    log_before = len(shop.log_text())
    timings: dict[str, float] = {}

    with outage(shop, kind):
        newcomer = shop.browser()
        for name, path in [
            ("home", "/"),
            ("category", f"/categories/{category}/"),
            ("product", f"/products/{slug}/"),
            ("search", "/search/?q=tent"),
        ]:
            page = newcomer.get(path)
            assert page.status == 200, (name, page.body[:500])
            timings[name] = page.seconds
            if name == "home":
                assert HERO in page.body  # the hero is there, personalized or default
        assert newcomer.visitor_id, "a new visitor gets a cookie"
        untracked = shop.browser(DNT="1").get("/")
        assert DEFAULT_HERO in untracked.body
        timings["home, default hero"] = untracked.seconds
        timings["add to cart"] = add_to_cart(newcomer, slug, pk)
        timings["cart"] = newcomer.get("/cart/").seconds

        csrf = {"X-CSRFToken": newcomer.cookie("csrftoken") or ""}
        apis = {
            "api/events": newcomer.post(
                "/personalization/api/events/",
                json_body={"type": "add_to_cart", "product": str(pk)},
            ),
            "api/signup": newcomer.post(
                "/personalization/api/signup/",
                json_body={"email": f"{kind}@example.com"},
                headers=csrf,
            ),
            "api/recommendations": newcomer.get(
                "/personalization/api/recommendations/?placement=home-for-you&limit=4"
            ),
            "api/me": newcomer.get("/personalization/api/me/"),
        }
        for name, page in apis.items():
            assert page.status < 500, (name, page.status, page.body[:500])
            timings[name] = page.seconds
        assert apis["api/signup"].status == 201, apis["api/signup"].body

        concurrent = concurrent_home_pages(shop)
        timings["12 concurrent home pages (slowest)"] = max(concurrent)
        timings.update(place_order(customer))
        [(revenue, visitor)] = query(
            shop, "SELECT revenue, visitor_id FROM personalization_conversion WHERE kind = ? "
            "AND visitor_id = ?", "purchase", customer_id
        )  # fmt: skip
        [(orders, spent, last_order)] = query(
            shop, "SELECT order_count, total_spent, last_order_at FROM personalization_visitor "
            "WHERE id = ?", customer_id
        )  # fmt: skip
        assert visitor == customer_id and Decimal(str(revenue)) > 0
        assert (orders, Decimal(str(spent))) == (1, Decimal(str(revenue)))
        assert last_order is not None

    time.sleep(COOLDOWN_SECONDS + 0.3)  # Redis is back: the next call is the breaker's trial
    stale = cached_profile(shop, customer_id)
    assert stale is not None and stale["order_count"] == 0  # what Redis kept from before
    assert customer.get("/").status == 200
    profile = cached_profile(shop, customer_id)
    assert (profile["order_count"], profile["total_spent"]) == (1, float(Decimal(str(spent))))

    log = shop.log_text()[log_before:]
    report = "\n".join(f"  {name:38} {seconds * 1000:7.0f} ms" for name, seconds in timings.items())
    print(f"\nRedis {kind}: during the outage\n{report}")
    assert log.count(OPENED) == 1, log[-4000:]
    assert "answers again after" in log
    slow = {name: seconds for name, seconds in timings.items() if seconds >= PAGE_SECONDS}
    assert not slow, f"slower than {PAGE_SECONDS} s during the outage:\n{report}"
