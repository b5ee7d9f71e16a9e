"""A page cached whole (Django's per-site cache, PAGE_CACHE) in a real Chromium: the page
script replaces the fallbacks with the visitor's own banner and popup, counted once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_browser import expect, page, retrying, wait_for  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cached_site(settings: Any) -> None:
    from django.core.cache import cache

    from personalization.models import Placement
    from personalization.targeting import definitions
    from tests.test_banners import make_segment

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PAGE_CACHE": True}
    settings.MIDDLEWARE = [
        "django.middleware.cache.UpdateCacheMiddleware",
        *settings.MIDDLEWARE,
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    settings.CACHE_MIDDLEWARE_SECONDS = 300
    settings.CACHE_MIDDLEWARE_KEY_PREFIX = "browser-page-cache"
    cache.clear()
    hero = Placement.objects.create(
        slug="home-hero", name="Home hero", default_title="Welcome to the shop"
    )
    banner = hero.banners.create(name="Welcome", title="Hello, newcomer")
    banner.segments.add(make_segment("first-timers", "first_visit"))
    definitions.forget_local()


def test_the_cached_page_shows_the_visitor_s_own_banner_and_popup(
    cached_site: None,
    page: Any,  # noqa: F811  (the fixture of tests.test_browser)
    live_server: Any,
) -> None:
    from django.test import Client

    from personalization.models import Exposure, Signup

    # Someone else's request puts the page in the cache: the fallback only.
    cached = Client().get("/cached-page/").content.decode()
    assert "Welcome to the shop" in cached and "Hello, newcomer" not in cached

    page.goto("/cached-page/")
    hero = page.locator("#hero")
    expect(hero).to_contain_text("Hello, newcomer")  # the fragment replaced the fallback
    expect(hero).not_to_contain_text("Welcome to the shop")
    dialog = page.get_by_role("dialog", name="Get 10% off your next order")
    expect(dialog).to_be_visible()
    # The popup came with the fragments: it signs up like any other (its CSRF token too).
    dialog.get_by_label("Email address").fill("grace@example.com")
    dialog.get_by_role("button", name="Get my code").click()
    expect(dialog.locator("[data-pzn-code]")).not_to_be_empty()
    assert retrying(Signup.objects.count) == 1

    # A second page view, from the cache: one more exposure of the banner, none at build.
    page.goto("/cached-page/")
    expect(page.locator("#hero")).to_contain_text("Hello, newcomer")
    wait_for(lambda: Exposure.objects.filter(placement="home-hero").count() == 2)
    rows = retrying(lambda: list(Exposure.objects.filter(placement="home-hero")))
    assert len({row.visitor_id for row in rows}) == 1
