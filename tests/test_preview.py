"""Staff preview: staff see the site as a segment, a country, a first or returning visitor,
either group, with a banner or a strategy forced; nothing of it is recorded, other visitors
are unaffected, and only staff with the permission can start one."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission, User
from django.core import signing
from django.http import HttpResponse
from django.template import Context, Template
from django.test import AsyncClient, Client, RequestFactory
from django.utils import timezone

from personalization.middleware import VisitorMiddleware
from personalization.models import (
    Banner,
    Conversion,
    Event,
    Exposure,
    Placement,
    ProductInteraction,
    Segment,
    SegmentRule,
    Visitor,
)
from personalization.preview import COOKIE_NAME
from personalization.profiling import storage
from personalization.recommendations import serving, store
from personalization.targeting import definitions
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

PREVIEW_URL = "/personalization/preview/"
EXPOSURE_ATTRIBUTE = "data-personalization-exposure"
TOOLBAR = "data-personalization-preview"


@pytest.fixture(autouse=True)
def _fresh_state(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 0}
    definitions.forget_local()
    store.forget_local()
    serving.strategies.cache_clear()
    yield
    definitions.forget_local()


def make_segment(slug: str, kind: str, value: str = "") -> Segment:
    segment = Segment.objects.create(name=slug.title(), slug=slug)
    SegmentRule.objects.create(segment=segment, kind=kind, value=value)
    return segment


@pytest.fixture
def hero():
    """home-hero: a banner for first visits, one for VIPs (big spenders), one for Japan, and
    an inactive one scheduled for later; sidebar: its default only."""
    placement = Placement.objects.create(
        slug="home-hero", name="Home hero", default_title="Welcome to the shop"
    )
    Placement.objects.create(slug="sidebar", name="Sidebar", default_title="Sidebar default")
    first = make_segment("first-timers", "first_visit")
    vip = make_segment("vip", "total_spent", ">=1000")
    japan = make_segment("japan", "country", "JP")
    for name, title, segment, priority in [
        ("Welcome", "Hello, newcomer", first, 0),
        ("VIP", "VIP early access", vip, 10),
        ("Japan", "Free shipping to Japan", japan, 5),
    ]:
        banner = Banner.objects.create(
            placement=placement, name=name, title=title, priority=priority
        )
        banner.segments.add(segment)
    Banner.objects.create(
        placement=placement,
        name="Launch",
        title="Secret launch",
        is_active=False,
        starts_at=timezone.now() + dt.timedelta(days=30),
    )
    return placement


def staff_user(username: str = "editor", *, permission: bool = True) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    if permission:
        user.user_permissions.add(Permission.objects.get(codename="view_banner"))
    return user


@pytest.fixture
def staff():
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    client.force_login(staff_user())
    client.get("/")  # the visitor cookie
    client.get("/")  # ... came back: the staff member's own profile is stored
    return client


def start(client: Client, expect: int = 302, **overrides: str):
    response = client.post(PREVIEW_URL, {"next": "/banner-page/", **overrides})
    assert response.status_code == expect, response.content.decode()[:2000]
    return response


def banner_page(client: Client) -> str:
    response = client.get("/banner-page/")
    assert response.status_code == 200
    return response.content.decode()


def hero_html(html: str) -> str:
    return re.search(r'<div id="hero">(.*?)</div>\s*<div id="side">', html, re.S).group(1)


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Exposure, ProductInteraction, Event, Conversion, Visitor)
    }


# --- What staff see -------------------------------------------------------------------------


def test_staff_preview_a_segment_and_see_its_banner(hero, staff):
    assert "Hello, newcomer" in hero_html(banner_page(staff))  # their own first visit
    start(staff, segment="vip")
    html = banner_page(staff)
    assert "VIP early access" in hero_html(html)
    assert "Hello, newcomer" not in html  # in that segment, and no other
    assert "Sidebar default" in html
    assert TOOLBAR in html and "Vip (vip)" in html
    assert EXPOSURE_ATTRIBUTE not in html  # nothing to report clicks on


def test_the_control_group_sees_the_control_content(hero, staff):
    start(staff, segment="vip", group="control")
    html = hero_html(banner_page(staff))
    assert "Welcome to the shop" in html and "VIP early access" not in html
    start(staff, segment="vip", group="personalized")
    assert "VIP early access" in hero_html(banner_page(staff))


def test_a_forced_banner_shows_in_its_placement_whatever_its_state(hero, staff):
    launch = Banner.objects.get(name="Launch")
    start(staff, banner=str(launch.pk), group="control")
    html = banner_page(staff)
    assert "Secret launch" in hero_html(html)
    assert "Sidebar default" in html  # other placements as they are
    assert "Launch (home-hero)" in html  # the toolbar says what is forced


def test_the_country_and_the_visit_are_what_rules_read(hero, staff):
    start(staff, country="JP", visit="returning")
    body = staff.get("/profile/").json()
    assert body["country"] == "JP"
    assert body["is_first_visit"] is False and body["visit_count"] >= 2
    assert body["segments"] == ["japan"]
    assert "Free shipping to Japan" in hero_html(banner_page(staff))
    start(staff, visit="first")
    body = staff.get("/profile/").json()
    assert (body["is_first_visit"], body["visit_count"]) == (True, 1)
    assert body["segments"] == ["first-timers"]


def test_the_async_stack_previews_too(hero, staff):
    start(staff, visit="returning")
    client = AsyncClient(HTTP_USER_AGENT=BROWSER_UA)
    client.cookies = staff.cookies
    response = async_to_sync(client.get)("/async-profile/")
    assert response.json()["visit_count"] >= 2


@pytest.fixture
def catalogue(make_product):
    products = [make_product(slug=f"p{n}", name=f"P{n}") for n in range(6)]
    Placement.objects.create(slug="product-viewed-together", name="Viewed together")
    return products


def recommendation_titles(client: Client, product) -> list[str]:
    html = client.get(f"/products/{product.slug}/with-recommendations/").content.decode()
    return re.findall(r'<h2 class="pzn-recs__title">([^<]*)</h2>', html)


def api_strategy(client: Client, product) -> str:
    response = client.get(
        "/personalization/api/recommendations/",
        {"placement": "product-viewed-together", "product": product.pk},
    )
    assert response.status_code == 200
    return response.json()["strategy"]


def test_a_forced_strategy_is_used_in_every_placement(catalogue, staff):
    product = catalogue[0]
    assert api_strategy(staff, product) == "auto"
    assert "Trending now" not in recommendation_titles(staff, product)
    start(staff, strategy="trending")
    assert api_strategy(staff, product) == "trending"
    assert recommendation_titles(staff, product) == ["Trending now", "Trending now"]
    start(staff, strategy="trending", group="control")  # the control group keeps its own
    assert api_strategy(staff, product) == "bestsellers"


def test_a_visitor_browsing_meanwhile_is_unaffected(hero, catalogue, staff):
    visitor = Client(HTTP_USER_AGENT=BROWSER_UA)
    visitor.get("/")
    start(staff, segment="vip", strategy="trending", country="JP")
    for _ in range(2):  # interleaved with the staff member's requests, in one thread
        assert "VIP early access" in hero_html(banner_page(staff))
        html = banner_page(visitor)
        assert "Hello, newcomer" in hero_html(html) and TOOLBAR not in html
        assert EXPOSURE_ATTRIBUTE in html
        assert api_strategy(visitor, catalogue[0]) == "auto"
        body = visitor.get("/profile/").json()
        assert body["country"] is None and body["segments"] == ["first-timers"]
    visitor_id = visitor.get("/profile/").json()["id"]
    assert Exposure.objects.filter(visitor_id=visitor_id).count() >= 4


def test_nothing_a_preview_shows_or_does_is_recorded(hero, catalogue, staff):
    own_id = staff.get("/profile/").json()["id"]
    start(staff, segment="vip")  # (this request, not yet a preview, links the staff account)
    row_before = Visitor.objects.values().get(pk=own_id)
    profile_before = storage.load(own_id).to_dict()
    before = counts()
    start(staff, segment="vip", visit="returning", strategy="trending")
    product = catalogue[0]
    html = banner_page(staff)
    assert "VIP early access" in html
    assert staff.get(f"/products/{product.slug}/").status_code == 200  # a product view
    recommendation_titles(staff, product)
    api_strategy(staff, product)
    assert staff.post(f"/cart/add/{product.slug}/").status_code == 201
    assert staff.post("/order/", {"order_id": "P-1", "total": "10.00"}).status_code == 201
    staff.get("/popup-page/")
    assert counts() == before
    assert Visitor.objects.values().get(pk=own_id) == row_before
    assert storage.load(own_id).to_dict() == profile_before


def test_preview_responses_are_never_cached(hero, staff):
    start(staff, segment="vip")
    response = staff.get("/banner-page/")
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert "Cookie" in response["Vary"]


# --- The toolbar ----------------------------------------------------------------------------------


def toolbar_of(html: str) -> str:
    return re.search(r"<aside[^>]*" + TOOLBAR + r".*?</aside>", html, re.S).group(0)


def test_the_toolbar_says_what_is_previewed_and_links_out(hero, staff):
    start(staff, segment="vip", country="jp", visit="first", group="control", strategy="trending")
    html = banner_page(staff)
    assert html.count(TOOLBAR) == 1
    assert html.index(TOOLBAR) < html.rindex("</body>")
    toolbar = toolbar_of(html)
    for text in ("Vip (vip)", "JP", "first visit", "control", "trending", "Nothing is recorded"):
        assert text in toolbar
    assert "preview.css" in html
    # CSP-clean: no inline style or script.
    assert "style=" not in toolbar and "<script" not in toolbar
    leave = re.search(r'href="([^"]*preview=off[^"]*)"', toolbar).group(1).replace("&amp;", "&")
    response = staff.get(leave)
    assert response.status_code == 302 and response["Location"] == "/banner-page/"
    assert response.cookies[COOKIE_NAME].value == ""
    html = banner_page(staff)
    assert TOOLBAR not in html and "Hello, newcomer" in hero_html(html)


def test_the_toolbar_tag_renders_it_where_the_template_says_once(hero):
    staff = Client(HTTP_USER_AGENT=BROWSER_UA)
    user = staff_user()
    staff.force_login(user)
    start(staff, segment="vip")
    template = Template(
        "{% load personalization_preview %}<html><body><header>"
        "{% personalization_preview_toolbar %}</header><main>page</main></body></html>"
    )
    request = RequestFactory().get("/somewhere/")
    request.COOKIES = {COOKIE_NAME: staff.cookies[COOKIE_NAME].value}
    request.user = user
    middleware = VisitorMiddleware(
        lambda req: HttpResponse(template.render(Context({"request": req})))
    )
    html = middleware(request).content.decode()
    assert html.count(TOOLBAR) == 1
    assert html.index(TOOLBAR) < html.index("<main>")


def test_the_tag_renders_nothing_for_visitors(hero, browser):
    template = Template("{% load personalization_preview %}[{% personalization_preview_toolbar %}]")
    request = RequestFactory().get("/")
    request.user = None
    VisitorMiddleware(lambda req: HttpResponse())(request)
    assert template.render(Context({"request": request})) == "[]"


def test_json_and_pages_without_a_body_are_left_as_they_are(hero, staff):
    start(staff, segment="vip")
    body = staff.get("/profile/").json()
    assert body["segments"] == ["vip"]
    assert staff.get("/").content == b"plain page"


# --- Who may preview ---------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(hero, browser):
    response = browser.get(PREVIEW_URL + "?segment=vip")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
    assert browser.post(PREVIEW_URL, {"segment": "vip"}).status_code == 302
    assert COOKIE_NAME not in browser.cookies


@pytest.mark.parametrize("kind", ["customer", "staff-without-permission"])
def test_others_get_a_403(hero, kind):
    if kind == "customer":
        user = User.objects.create_user("customer", password="pw")
    else:
        user = staff_user(permission=False)
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    client.force_login(user)
    assert client.get(PREVIEW_URL).status_code == 403
    assert client.post(PREVIEW_URL, {"segment": "vip"}).status_code == 403
    assert COOKIE_NAME not in client.cookies


def test_a_deactivated_staff_member_is_logged_out_and_their_preview_ends(hero, staff):
    start(staff, segment="vip")
    User.objects.filter(username="editor").update(is_active=False)
    assert staff.get(PREVIEW_URL).status_code == 302  # to the login page
    assert "VIP early access" not in banner_page(staff)


def test_without_a_permission_setting_any_staff_member_may_preview(hero, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PREVIEW_PERMISSION": None}
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    client.force_login(staff_user(permission=False))
    assert client.get(PREVIEW_URL).status_code == 200
    start(client, segment="vip")
    assert "VIP early access" in banner_page(client)


def test_a_malformed_permission_setting_lets_nobody_preview(hero, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PREVIEW_PERMISSION": "view_banner"}
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    client.force_login(User.objects.create_superuser("root", password="pw"))
    assert client.get(PREVIEW_URL).status_code == 403


def test_the_page_lists_segments_banners_and_strategies(hero, staff):
    response = staff.get(PREVIEW_URL + "?segment=vip&next=/banner-page/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<option value="vip" selected>' in html
    assert "Launch — inactive" in html and 'optgroup label="home-hero"' in html
    assert '<option value="trending">' in html
    assert 'value="/banner-page/"' in html
    assert "style=" not in html and "<script" not in html
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("value", ["view_banner", "personalization.", ".view", "a.b.c", 7, True])
def test_a_malformed_permission_setting_is_reported(settings, value):
    from django.core.checks import run_checks

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PREVIEW_PERMISSION": value}
    assert [m.id for m in run_checks() if m.id == "personalization.W009"] == [
        "personalization.W009"
    ]


@pytest.mark.parametrize("value", [None, "personalization.view_banner", "shop.preview_site"])
def test_a_good_permission_setting_passes(settings, value):
    from django.core.checks import run_checks

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PREVIEW_PERMISSION": value}
    assert "personalization.W009" not in {m.id for m in run_checks()}


@pytest.mark.parametrize(("value", "reported"), [(8, False), (0.5, False), (0, True), ("8", True)])
def test_the_preview_age_is_checked(settings, value, reported):
    from django.core.checks import run_checks

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PREVIEW_AGE_HOURS": value}
    errors = [m for m in run_checks() if "PREVIEW_AGE_HOURS" in m.msg]
    assert bool(errors) is reported
    assert all(m.id == "personalization.E005" for m in errors)


# --- Forged, stale and bad input ---------------------------------------------------------------


def test_a_tampered_cookie_is_ignored_and_deleted(hero, staff):
    start(staff, segment="vip")
    value = staff.cookies[COOKIE_NAME].value
    payload, _, signature = value.rpartition(":")
    staff.cookies[COOKIE_NAME] = payload + ":" + signature[::-1]
    response = staff.get("/banner-page/")
    html = response.content.decode()
    assert TOOLBAR not in html and "Hello, newcomer" in hero_html(html)
    assert response.cookies[COOKIE_NAME].value == ""


def test_a_cookie_signed_with_another_key_does_nothing(hero, staff):
    forged = signing.dumps({"k": "x" * 32, "p": {"segment": "vip"}}, salt="personalization.preview")
    staff.cookies[COOKIE_NAME] = forged
    assert "VIP early access" not in banner_page(staff)


def test_the_cookie_is_bound_to_its_staff_member(hero, staff):
    start(staff, segment="vip")
    cookie = staff.cookies[COOKIE_NAME].value
    colleague = Client(HTTP_USER_AGENT=BROWSER_UA)
    colleague.force_login(staff_user("colleague"))
    colleague.cookies[COOKIE_NAME] = cookie
    assert "VIP early access" not in banner_page(colleague)
    anonymous = Client(HTTP_USER_AGENT=BROWSER_UA)
    anonymous.cookies[COOKIE_NAME] = cookie
    html = banner_page(anonymous)
    assert "VIP early access" not in html and TOOLBAR not in html
    staff.logout()
    staff.cookies[COOKIE_NAME] = cookie
    assert "VIP early access" not in banner_page(staff)


def test_revoking_staff_status_ends_the_preview_at_once(hero, staff):
    start(staff, segment="vip")
    User.objects.filter(username="editor").update(is_staff=False)
    assert "VIP early access" not in banner_page(staff)


def test_a_preview_ends_by_itself(hero, staff, settings, time_machine):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PREVIEW_AGE_HOURS": 1}
    time_machine.move_to(timezone.now(), tick=False)
    start(staff, segment="vip")
    assert "VIP early access" in banner_page(staff)
    time_machine.shift(dt.timedelta(hours=1, minutes=1))
    assert "VIP early access" not in banner_page(staff)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("segment", "no-such-segment"),
        ("country", "DEU"),
        ("country", "1X"),
        ("visit", "third"),
        ("group", "holdout"),
        ("banner", "999999"),
        ("banner", "abc"),
        ("strategy", "no-such-strategy"),
    ],
)
def test_bad_input_is_a_400_that_says_what_is_wrong(hero, staff, field, value):
    response = start(staff, expect=400, **{field: value})
    assert "errorlist" in response.content.decode()
    assert COOKIE_NAME not in response.cookies


NASTY = ["\x00", "a" * 5000, "\u202e\ufeff", "../../etc/passwd", "<script>", "1e309", "-1", "%00"]


@pytest.mark.parametrize("value", NASTY)
def test_nasty_input_never_gives_a_500(hero, staff, value):
    for field in ("segment", "country", "visit", "group", "banner", "strategy", "next"):
        assert staff.get(PREVIEW_URL, {field: value}).status_code == 200
        assert staff.post(PREVIEW_URL, {field: value}).status_code in (302, 400)
    assert staff.get(PREVIEW_URL, {"preview": "off", "next": value}).status_code == 302
    if value.isascii():  # what a Cookie header can carry
        staff.cookies[COOKIE_NAME] = value
        assert staff.get("/banner-page/").status_code == 200


def test_next_never_leaves_the_site(hero, staff):
    response = staff.post(PREVIEW_URL, {"segment": "vip", "next": "https://evil.example/"})
    assert response["Location"] == "/"
    response = staff.get(PREVIEW_URL + "?preview=off&next=//evil.example/")
    assert response["Location"] == "/"


# --- In a real Chromium, under a strict Content-Security-Policy --------------------------------

CHROMIUM = "/usr/bin/chromium"
STRICT_CSP = "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_staff_start_see_and_leave_a_preview(live_server, settings, monkeypatch):
    """Chromium logs in as staff, starts a preview through the form, sees the toolbar on the
    page and leaves; the strict CSP reports no violation (no inline style or script)."""
    import os
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        if os.environ.get("PZN_REQUIRE_BROWSER"):
            raise RuntimeError(f"browser tests need Debian's chromium at {CHROMIUM}")
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    from django.db import connections

    from tests.test_browser import CHROMIUM_ARGS

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 0}
    Placement.objects.create(slug="home-hero", name="Home hero", default_title="Welcome")
    Placement.objects.create(slug="sidebar", name="Sidebar", default_title="Sidebar default")
    vip = make_segment("vip", "total_spent", ">=1000")
    banner = Banner.objects.create(
        placement=Placement.objects.get(slug="home-hero"), name="VIP", title="VIP early access"
    )
    banner.segments.add(vip)
    login = Client()
    login.force_login(staff_user())
    session = login.cookies[settings.SESSION_COOKIE_NAME].value

    violations: list[str] = []
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = chromium.new_context(
                base_url=live_server.url,
                user_agent=BROWSER_UA,
                viewport={"width": 900, "height": 600},
            )
            context.set_default_timeout(10_000)
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
            )

            def strict(route):
                response = route.fetch(max_redirects=0)  # redirects are the browser's
                headers = {**response.headers, "content-security-policy": STRICT_CSP}
                route.fulfill(response=response, headers=headers)

            context.route("**/*", strict)
            page = context.new_page()
            page.on(
                "console",
                lambda message: (
                    violations.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            page.goto("/personalization/preview/?segment=vip&next=/banner-page/")
            expect = sync_api.expect
            expect(page.get_by_label("Segment")).to_have_value("vip")
            artifacts = Path(__file__).resolve().parent.parent / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "preview-page.png"), full_page=True)
            page.get_by_role("button", name="Start the preview").click()
            page.wait_for_url("**/banner-page/")
            toolbar = page.get_by_role("complementary", name="Personalization preview")
            expect(toolbar).to_be_visible()
            expect(toolbar).to_contain_text("Vip (vip)")
            expect(page.locator("#hero")).to_contain_text("VIP early access")
            assert toolbar.evaluate("el => getComputedStyle(el).position") == "fixed"
            page.screenshot(path=str(artifacts / "preview-toolbar.png"))
            toolbar.get_by_role("link", name="Leave preview").click()
            page.wait_for_url("**/banner-page/")
            expect(page.locator("[data-personalization-preview]")).to_have_count(0)
            expect(page.locator("#hero")).not_to_contain_text("VIP early access")
        finally:
            chromium.close()
            connections.close_all()
    assert violations == []
    assert Exposure.objects.filter(segment="vip").count() == 0
