"""The admin in a real Chromium under a strict Content-Security-Policy, and the conversion report
on a phone.

Every page of the app's admin (the report, its error page, each change list and form, the
email previews) is served with ``default-src 'self'; img-src 'self' data:`` and must cause no
``securitypolicyviolation``; on a 390 px wide phone the report fits: no page-level horizontal
scroll, charts scaled to the width, wide tables scrolling in their own box, readable text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import BROWSER_UA
from tests.rows import purchase
from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, sync_api

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = ARTIFACTS / "screenshots"
STRICT_CSP = "default-src 'self'; img-src 'self' data:"
PHONE = {"width": 390, "height": 844}

# Collects what the browser refuses, in every frame, from the first byte of each document.
RECORD_VIOLATIONS = """
window.__pznViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__pznViolations.push({
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
    sample: event.sample,
  });
});
"""


class StrictCSPMiddleware:
    """Sets :data:`STRICT_CSP` on every response that has no policy of its own, as Django
    6.0's ``ContentSecurityPolicyMiddleware`` does (used instead where Django has it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", STRICT_CSP)
        return response


def _reload_middleware(live_server: Any) -> None:
    """The live server's handlers loaded MIDDLEWARE when it started (it serves the whole test
    session): load it again, between requests, from the settings as they are now. The static
    and media file handlers wrap the app and may answer a request with their own chain."""
    handler = live_server.thread.httpd.get_app()
    while handler is not None:
        handler.load_middleware()
        handler = getattr(handler, "application", None)


@pytest.fixture
def strict_csp(settings: Any, live_server: Any) -> Iterator[str]:
    """The live server answers with a strict policy: Django's own middleware where it has
    one (6.0 and later), else :class:`StrictCSPMiddleware`."""
    if django.VERSION >= (6, 0):
        from django.utils.csp import CSP

        settings.SECURE_CSP = {"default-src": [CSP.SELF], "img-src": [CSP.SELF, "data:"]}
        middleware = "django.middleware.csp.ContentSecurityPolicyMiddleware"
    else:
        middleware = f"{__name__}.StrictCSPMiddleware"
    before = settings.MIDDLEWARE
    settings.MIDDLEWARE = [middleware, *before]
    _reload_middleware(live_server)
    try:
        yield STRICT_CSP
    finally:
        settings.MIDDLEWARE = before
        _reload_middleware(live_server)


@pytest.fixture
def shop(settings: Any) -> Any:
    """Thirty days of a shop with four placements (one with a long name), two segments,
    visitors from several countries and sources, 10% held out; rolled up. Returns the
    superuser who reads the report."""
    from personalization.models import Conversion, Exposure, Visitor
    from personalization.reports import rollups

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 10}
    now = timezone.now()
    placements = ["home-hero", "product-detail-recommendations-below-the-fold", "cart", "popup"]
    countries = ["DE", "FR", "US", "GB", ""]
    sources = ["direct", "search", "social", "email", "campaign"]
    visitors, exposures, orders = [], [], []
    for n in range(600):
        control = n % 10 == 0
        vid = f"{'c' if control else 'p'}{n:05d}"
        seen = now - dt.timedelta(days=n % 30, hours=2)
        visitors.append(
            Visitor(
                id=vid,
                first_seen=seen,
                last_seen=seen,
                first_source=sources[n % 5],
                latest_source=sources[n % 5],
                country_code=countries[n % 5],
                in_control_group=control,
            )
        )
        placement = placements[n % 4]
        exposures.append(
            Exposure(
                visitor_id=vid,
                placement=placement,
                kind=Exposure.BANNER,
                content="default" if control else f"banner:{n % 3}",
                content_label="" if control else f"Winter sale {n % 3}",
                segment="" if control else ("newcomers" if n % 2 else "returning-big-spenders"),
                is_control=control,
                created_at=seen,
            )
        )
        if n % 7 == 0 or (not control and n % 11 == 0):
            orders.append(
                purchase(
                    vid, control=control, at=seen + dt.timedelta(minutes=20), revenue="1234.50"
                )
            )
    Visitor.objects.bulk_create(visitors)
    Exposure.objects.bulk_create(exposures)
    Conversion.objects.bulk_create(orders)
    rollups.refresh()
    return get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")


def _browser_context(live_server: Any, user: Any, **options: Any) -> Iterator[Any]:
    """A Chromium context logged in as ``user``, recording policy violations and errors."""
    client = Client()
    client.force_login(user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    errors: list[Any] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            base_url=live_server.url, user_agent=BROWSER_UA, locale="en-US", **options
        )
        context.set_default_timeout(10_000)
        context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": session,
                    "url": live_server.url,
                }
            ]
        )
        context.add_init_script(RECORD_VIOLATIONS)
        context.on("weberror", lambda error: errors.append(error.error))
        try:
            yield context
        finally:
            browser.close()
            from django.db import connections

            connections.close_all()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def desktop(live_server: Any, shop: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM calls beside Playwright
    yield from _browser_context(live_server, shop, viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone(live_server: Any, shop: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    yield from _browser_context(
        live_server,
        shop,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )


def violations(page: Any) -> list[dict[str, Any]]:
    """The violations every frame of the page recorded."""
    found = []
    for frame in page.frames:
        try:
            found += frame.evaluate("window.__pznViolations || []")
        except sync_api.Error:  # a frame that went away
            continue
    return found


def report_url(**query: str) -> str:
    from urllib.parse import urlencode

    base = reverse("admin:personalization_report")
    return f"{base}?{urlencode(query)}" if query else base


# Under a strict Content-Security-Policy -------------------------------------------------------


def _admin_pages(shop_user: Any) -> list[str]:
    """Every page of the app's admin: the report (with figures, with the single-look figures,
    with an error), the index and app list, each change list, add form and change form, and
    both email previews."""
    from django.contrib import admin

    from personalization.models import Banner, EmailRecipient, EmailSend, Placement, Segment
    from tests.test_admin_trust import one_of_each_model

    made = one_of_each_model(
        '<!doctype html><html><body style="font-family:sans-serif">'
        '<h1 style="color:#417690">Welcome</h1><p>Inline styles, as email needs.</p>'
        "</body></html>"
    )
    recipient, send = made[EmailRecipient], made[EmailSend]
    today = timezone.localdate()
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["personalization"]),
        report_url(start=str(today - dt.timedelta(days=29)), end=str(today)),
        report_url(start=str(today - dt.timedelta(days=29)), end=str(today), view="fixed"),
        report_url(start="2026-13-01"),
        reverse("admin:personalization_email_preview", args=[recipient.pk, "welcome"]),
        reverse("admin:personalization_emailsend_change", args=[send.pk]),
    ]
    objects = {model: made[model] for model in (Segment, Placement, Banner, EmailRecipient)}
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        if opts.app_label != "personalization" or opts.model_name == "report":
            continue
        pages.append(reverse(f"admin:personalization_{opts.model_name}_changelist"))
        if model_admin.has_add_permission(_request_as(shop_user)):
            pages.append(reverse(f"admin:personalization_{opts.model_name}_add"))
        obj = objects.get(model) or model._default_manager.first()
        if obj is not None and model is not EmailSend:
            pages.append(reverse(f"admin:personalization_{opts.model_name}_change", args=[obj.pk]))
    return pages


def _request_as(user: Any) -> HttpRequest:
    request = HttpRequest()
    request.user = user
    return request


def test_every_admin_page_of_the_app_keeps_a_strict_policy(
    strict_csp: str, desktop: Any, shop: Any, settings: Any, live_server: Any
) -> None:
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EMAIL_SITE_URL": live_server.url}
    pages = _admin_pages(shop)
    assert len(pages) > 25
    page = desktop.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    refused: dict[str, list[dict[str, Any]]] = {}
    for url in pages:
        response = page.goto(url)
        assert response is not None and response.status in (200, 400), (url, response.status)
        assert response.headers["content-security-policy"] == strict_csp, url
        page.wait_for_load_state("load")
        if found := violations(page):
            refused[url] = found
    policy_errors = [text for text in console if "Content Security Policy" in text]
    assert refused == {} and policy_errors == [], (refused, policy_errors)


def test_the_report_and_its_charts_show_under_a_strict_policy(
    strict_csp: str, desktop: Any
) -> None:
    expect = sync_api.expect
    page = desktop.new_page()
    response = page.goto(report_url())
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == strict_csp
    # The stylesheet applied: the cards sit side by side in a grid, the verdict has its border.
    cards = page.locator(".pzn-cards")
    assert cards.evaluate("node => getComputedStyle(node).display") == "grid"
    verdict = page.locator("#pzn-verdict")
    expect(verdict).to_be_visible()
    assert verdict.evaluate("node => getComputedStyle(node).borderLeftWidth") == "6px"
    charts = page.locator("svg.pzn-chart")
    assert charts.count() == 2
    for index in range(2):
        chart = charts.nth(index)
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        # Drawn: lines or bars are there and painted in the series' colours.
        assert chart.locator(".pzn-stroke, .pzn-bar").count() > 0
    personalized = page.locator("svg.pzn-chart-daily polyline.pzn-personalized").first
    assert personalized.evaluate("node => getComputedStyle(node).stroke") == "rgb(65, 118, 144)"
    assert violations(page) == []


def test_an_email_keeps_its_own_styles_in_the_preview_frame(
    strict_csp: str, desktop: Any, shop: Any
) -> None:
    """The email's HTML needs inline styles: its frame loads it from a URL whose response has a
    policy of its own (sandboxed, no script), so the admin page's policy does not strip them."""
    from tests.test_admin_trust import sent_email

    send = sent_email('<html><body><h1 style="color: rgb(65, 118, 144)">Welcome</h1></body></html>')
    page = desktop.new_page()
    page.goto(reverse("admin:personalization_emailsend_change", args=[send.pk]))
    frame_element = page.locator("iframe.pzn-email-frame")
    sync_api.expect(frame_element).to_be_visible()
    heading = page.frame_locator("iframe.pzn-email-frame").locator("h1")
    sync_api.expect(heading).to_have_text("Welcome")
    assert heading.evaluate("node => getComputedStyle(node).color") == "rgb(65, 118, 144)"
    box = frame_element.bounding_box()
    assert box is not None and box["height"] >= 500  # sized by the stylesheet
    assert violations(page) == []


# On a phone ------------------------------------------------------------------------------------


def test_the_report_reads_on_a_phone(phone: Any, strict_csp: str) -> None:
    expect = sync_api.expect
    page = phone.new_page()
    response = page.goto(report_url())
    assert response is not None and response.status == 200
    expect(page.locator("#pzn-verdict")).to_be_visible()

    width = page.evaluate("document.documentElement.clientWidth")
    assert width == PHONE["width"]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], f"the page scrolls sideways: {scroll_width} px"

    # The charts keep their drawn size: their boxes stay within the screen and scroll
    # sideways, and every label reads as on a desktop (12 px, the bars' values 11 px).
    charts = page.locator("svg.pzn-chart")
    assert charts.count() == 2
    for index in range(2):
        chart = charts.nth(index)
        holder = chart.evaluate(
            """node => {
              const box = node.parentElement.getBoundingClientRect();
              return {left: box.left, right: box.right,
                      overflow: getComputedStyle(node.parentElement).overflowX};
            }"""
        )
        assert holder["left"] >= 0 and holder["right"] <= PHONE["width"], holder
        assert holder["overflow"] in ("auto", "scroll"), holder
        box = chart.bounding_box()
        assert box is not None and box["width"] >= 300 and box["height"] >= 100, box
        label_px = chart.evaluate(
            """svg => {
              const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
              return Math.min(...[...svg.querySelectorAll('text')]
                .filter(text => text.textContent.trim())
                .map(text => parseFloat(getComputedStyle(text).fontSize) * scale));
            }"""
        )
        assert label_px >= 11, f"chart labels at {label_px:.1f} px"

    # Wide tables scroll inside their own box, which stays within the screen.
    tables = page.locator(".pzn-report table")
    assert tables.count() >= 6
    for index in range(tables.count()):
        table = tables.nth(index)
        box = table.evaluate(
            """node => {
              const box = node.parentElement.getBoundingClientRect();
              return {left: box.left, right: box.right,
                      overflow: getComputedStyle(node.parentElement).overflowX};
            }"""
        )
        assert box["left"] >= 0 and box["right"] <= PHONE["width"], box
        assert box["overflow"] in ("auto", "scroll"), box
    # One at least is wider than the screen and scrolls: the test sees the case it is about.
    scrolling = page.evaluate(
        """[...document.querySelectorAll('.pzn-report table')]
             .filter(t => t.parentElement.scrollWidth > t.parentElement.clientWidth).length"""
    )
    assert scrolling >= 1

    # The summary is readable: no text under 12 px in the verdict and the cards.
    smallest = page.evaluate(
        """() => {
          const nodes = document.querySelectorAll(
            '#pzn-verdict, #pzn-verdict *, .pzn-cards, .pzn-cards *');
          return Math.min(...[...nodes]
            .filter(node => [...node.childNodes].some(
              child => child.nodeType === 3 && child.textContent.trim()))
            .map(node => parseFloat(getComputedStyle(node).fontSize)));
        }"""
    )
    assert smallest >= 12, f"summary text at {smallest} px"
    assert violations(page) == []

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report-phone.png"))
    page.screenshot(path=str(SCREENSHOTS / "report-phone-full.png"), full_page=True)
    page.locator(".pzn-charts").screenshot(path=str(SCREENSHOTS / "report-phone-charts.png"))
