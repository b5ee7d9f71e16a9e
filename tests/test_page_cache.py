"""Pages cached whole (PAGE_CACHE) behind Django's per-site cache: one cached page for every
visitor, each visitor's own banner, recommendations and popup from the fragments endpoint,
exposures counted once, when the fragments are shown."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.template import Context, Template
from django.test import Client

from personalization.models import Exposure, Placement, ProductInteraction, Visitor
from personalization.recommendations import precompute, store
from personalization.targeting import definitions
from personalization.testutils import attach_visitor
from personalization.tracking import pending_exposures
from tests.conftest import BROWSER_UA
from tests.test_banners import make_segment

pytestmark = pytest.mark.django_db

FRAGMENT_RE = re.compile(r'data-pzn-fragment="([^"]*)"')
EXPOSURE_RE = re.compile(r'data-personalization-exposure="([0-9a-f-]{36})"')


@pytest.fixture(autouse=True)
def page_cache(settings):
    """Django's per-site cache around the shop, and PAGE_CACHE on."""
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PAGE_CACHE": True,
        "CONTROL_GROUP_PERCENT": 0,
        "VIEW_WRITE_DELAY_SECONDS": 0,
    }
    settings.MIDDLEWARE = [
        "django.middleware.cache.UpdateCacheMiddleware",
        *settings.MIDDLEWARE,
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    settings.CACHE_MIDDLEWARE_SECONDS = 300
    settings.CACHE_MIDDLEWARE_KEY_PREFIX = "page-cache-test"
    from django.core.cache import cache

    cache.clear()
    definitions.forget_local()
    store.forget_local()
    yield
    cache.clear()
    definitions.forget_local()


@pytest.fixture
def hero():
    placement = Placement.objects.create(
        slug="home-hero", name="Home hero", default_title="Welcome to the shop"
    )
    Placement.objects.create(slug="sidebar", name="Sidebar", default_title="Sidebar default")
    welcome = placement.banners.create(name="Welcome", title="Hello, newcomer")
    welcome.segments.add(make_segment("first-timers", "first_visit"))
    back = placement.banners.create(name="Back", title="Welcome back")
    back.segments.add(make_segment("returning", "returning"))
    return placement


def visitor() -> Client:
    return Client(HTTP_USER_AGENT=BROWSER_UA)


def fragments(client: Client, page: str, specs: list[str], referrer: str = "") -> list[str]:
    query = urlencode([("page", page), ("referrer", referrer), *(("f", s) for s in specs)])
    response = client.get(f"/personalization/fragments/?{query}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    return response.json()["fragments"]


def test_one_cached_page_for_everyone_and_each_visitor_s_own_banner(hero, clock):
    newcomer, regular = visitor(), visitor()
    # The regular visitor came 40 minutes ago: this is their second visit.
    fragments(regular, "/", [])
    clock.shift(20)
    fragments(regular, "/", [])
    clock.shift(40 * 60)
    fragments(newcomer, "/", [])  # the newcomer's cookie, so their rows are not held

    first = newcomer.get("/banner-page/")
    html = first.content.decode()
    assert "pzn_vid" not in first.cookies  # nothing of the visitor in the cached page
    assert "Cookie" not in first.get("Vary", "")
    assert "Welcome to the shop" in html  # the fallback: the placement's default
    assert "Hello, newcomer" not in html and "Welcome back" not in html
    assert not EXPOSURE_RE.search(html)
    assert Exposure.objects.count() == 0

    second = regular.get("/banner-page/")
    assert second.content == first.content
    assert second.wsgi_request.resolver_match is None  # served from the cache, no view ran

    specs = FRAGMENT_RE.findall(html)
    specs = [spec.replace("&amp;", "&") for spec in specs]
    assert len(specs) == 2
    mine = fragments(newcomer, "http://testserver/banner-page/", specs)
    theirs = fragments(regular, "http://testserver/banner-page/", specs)
    assert "Hello, newcomer" in mine[0] and "Welcome back" in theirs[0]
    assert "Sidebar default" in mine[1] and "Sidebar default" in theirs[1]

    # One exposure per fragment shown, in each visitor's own name, and the ids in the markup.
    rows = list(Exposure.objects.order_by("created_at"))
    assert len(rows) == 4
    ids = set(EXPOSURE_RE.findall("".join(mine + theirs)))
    assert {str(row.id) for row in rows} == ids
    by_visitor = {(row.visitor_id, row.placement) for row in rows}
    assert len({visitor_id for visitor_id, _ in by_visitor}) == 2
    hero_rows = {row.segment for row in rows if row.placement == "home-hero"}
    assert hero_rows == {"first-timers", "returning"}

    # Served again from the cache: still no exposure until the fragments are asked for.
    regular.get("/banner-page/")
    assert Exposure.objects.count() == 4


def test_the_fragment_request_profiles_the_page_it_fills(make_product, clock):
    """The campaign of the page's address, and the view of a product page the cache served."""
    product = make_product(slug="tent")
    client = visitor()
    fragments(client, "http://testserver/?utm_source=news&utm_campaign=spring", [],
              referrer="https://mail.example.com/")  # fmt: skip
    clock.shift(20)
    page = client.get("/products/tent/")
    assert page.status_code == 200 and "pzn_vid" not in page.cookies
    assert ProductInteraction.objects.count() == 0  # the page itself records nothing
    client.get("/products/tent/")  # from the cache
    fragments(client, "http://testserver/products/tent/", [], referrer="http://testserver/")
    row = Visitor.objects.get()
    assert row.first_campaign == "spring"
    assert [str(key) for key in row.recently_viewed] == [str(product.pk)]
    assert ProductInteraction.objects.filter(product_id=str(product.pk)).count() == 1


def test_a_page_that_reads_the_visitor_is_not_shared(make_product):
    make_product(slug="tent")
    client = visitor()
    fragments(client, "/", [])
    response = client.get("/products/tent/?read=1")
    assert "Cookie" in response["Vary"]


def test_recommendations_and_the_popup_become_placeholders(make_product, rf):
    products = [make_product(slug=f"p{n}") for n in range(6)]
    precompute.recompute_all()
    request = rf.get("/")
    attach_visitor(request, in_control_group=False)
    html = Template(
        "{% load personalization %}"
        '{% recommendations "product-related" product=p limit=3 %}{% signup_popup %}'
    ).render(Context({"request": request, "p": products[0]}))
    specs = [spec.replace("&amp;", "&") for spec in FRAGMENT_RE.findall(html)]
    assert len(specs) == 2
    assert "kind=recommendations" in specs[0] and f"product={products[0].pk}" in specs[0]
    assert "limit=3" in specs[0] and specs[1] == "kind=popup"
    assert html.count('class="pzn-recs__item"') == 3  # the fallback: the control's products
    assert not EXPOSURE_RE.search(html)
    assert pending_exposures(request) == []
    assert not request.visitor.accessed

    client = visitor()
    fragments(client, "/", [])
    shown = fragments(client, "http://testserver/", specs)
    assert shown[0].count('class="pzn-recs__item"') == 3
    assert EXPOSURE_RE.search(shown[0])
    assert "data-pzn-popup" in shown[1]  # a first visit: the popup, with its exposure
    assert Exposure.objects.filter(placement="product-related").count() == 1
    assert Exposure.objects.filter(kind="popup").count() == 1


def test_the_script_is_told_where_the_fragments_are(rf):
    request = rf.get("/")
    attach_visitor(request)
    html = Template("{% load personalization %}{% personalization_scripts %}").render(
        Context({"request": request})
    )
    assert 'data-fragments-url="/personalization/fragments/"' in html


@pytest.mark.parametrize(
    "specs",
    [
        ["kind=banner&placement=nowhere"],  # an unknown placement is not created
        ["kind=teapot"],
        ["kind=recommendations&placement=home&limit=9999"],
        ["x" * 600],
    ],
)
def test_bad_fragments_render_nothing(specs):
    Placement.objects.create(slug="home", name="Home")
    definitions.forget_local()
    assert fragments(visitor(), "/", specs) == [""]
    assert not Placement.objects.filter(slug="nowhere").exists()


def test_too_many_fragments_or_another_method_is_refused():
    client = visitor()
    query = urlencode([("f", "kind=popup")] * 21)
    response = client.get(f"/personalization/fragments/?{query}")
    assert response.status_code == 400
    assert "20" in response.json()["detail"]
    assert client.post("/personalization/fragments/").status_code == 405


def test_without_page_cache_the_tags_render_as_before(hero, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PAGE_CACHE": False}
    client = visitor()
    client.get("/")
    html = client.get("/banner-page/").content.decode()
    assert "data-pzn-fragment" not in html
    assert "Hello, newcomer" in html


def test_the_demo_shop_caches_its_home_page_whole(demo, settings, clock):
    """DEMO_PAGE_CACHE's settings: the home page is one cached page for every visitor, and
    the fragments give each their own hero banner."""
    from django.core.management import call_command

    call_command("demo_setup", verbosity=0)
    settings.DEMO_PAGE_CACHE = True
    settings.MIDDLEWARE = [
        "django.middleware.cache.UpdateCacheMiddleware",
        *settings.MIDDLEWARE,
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PAGE_CACHE": True}
    newcomer, regular = visitor(), visitor()
    fragments(regular, "/", [])
    clock.shift(20)
    fragments(regular, "/", [])
    clock.shift(40 * 60)
    fragments(newcomer, "/", [])

    first = newcomer.get("/")
    assert first.status_code == 200
    assert "Cookie" not in first.get("Vary", "") and not first.cookies
    second = regular.get("/")
    assert second.wsgi_request.resolver_match is None and second.content == first.content

    specs = [s.replace("&amp;", "&") for s in FRAGMENT_RE.findall(first.content.decode())]
    hero = next(spec for spec in specs if "home-hero" in spec)
    mine = fragments(newcomer, "http://testserver/", [hero])[0]
    theirs = fragments(regular, "http://testserver/", [hero])[0]
    assert mine and theirs and mine != theirs


def test_a_response_that_sets_the_visitor_cookie_is_never_shared(settings):
    """Without PAGE_CACHE, a page that gives a visitor their cookie is kept from shared
    caches: two newcomers behind Django's cache middleware get two ids."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PAGE_CACHE": False}
    first, second = visitor().get("/"), visitor().get("/")
    assert "private" in first["Cache-Control"] and "Cookie" in first["Vary"]
    assert second.wsgi_request.resolver_match is not None  # not served from the cache
    assert first.cookies["pzn_vid"].value != second.cookies["pzn_vid"].value


@pytest.mark.parametrize(
    ("lang", "heading"), [("de", "Ihre nächste Bestellung"), ("xx", "off your next order")]
)
def test_fragments_speak_the_page_s_language(settings, lang, heading):
    """The page script sends the page's <html lang>: a language the shop offers is used (an
    i18n_patterns prefix chose it, which the fragment URL lacks); another is ignored."""
    settings.LANGUAGES = [("en", "English"), ("de", "Deutsch")]
    client = visitor()
    query = urlencode([("page", "http://testserver/"), ("lang", lang), ("f", "kind=popup")])
    response = client.get(f"/personalization/fragments/?{query}")
    assert heading in response.json()["fragments"][0]
