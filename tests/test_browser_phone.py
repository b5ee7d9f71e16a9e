"""The demo shop on a phone, in a real Chromium: no page scrolls sideways at 390 px, the signup
popup's bottom sheet fits the screen and works by touch, and recommendation tiles show
pictures of different products.

Screenshots of every page go to test-artifacts/screenshots/ (phone-<page>.png, desktop-*.png).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import re_path
from django.views.static import serve

import shop_demo
from tests.test_browser import ARTIFACTS, page, retrying  # noqa: F401  (the page fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect = pytest.importorskip("playwright.sync_api").expect

SCREENSHOTS = ARTIFACTS / "screenshots"
PHONE = {"width": 390, "height": 844}
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


def _media(request: Any, path: str) -> Any:
    return serve(request, path, document_root=django_settings.MEDIA_ROOT)


# The demo's URLs, plus its uploaded pictures (the demo serves them itself only in DEBUG, and
# decides that once, at import).
urlpatterns = [re_path(r"^media/(?P<path>.+)$", _media)]


@pytest.fixture
def shop(demo: Any, settings: Any) -> Any:
    """The demo shop as ``make demo`` sets it up (catalog, pictures, history, lists), in
    DEBUG as the demo runs, with its stylesheet and pictures served by the live server."""
    from shop_demo import urls as shop_urls
    from shop_demo.catalog.models import Product

    urlpatterns[:] = [urlpatterns[0], *shop_urls.urlpatterns]
    settings.ROOT_URLCONF = __name__
    settings.STATICFILES_DIRS = [Path(shop_demo.__file__).parent / "static"]
    settings.DEBUG = True  # the footer's country box is there in DEBUG only
    call_command("demo_setup", stdout=io.StringIO())
    return Product.objects.filter(is_available=True, stock__gt=5).order_by("pk")


def _popup_after(settings: Any, seconds: int) -> None:
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "SIGNUP_POPUP_DELAY_SECONDS": seconds,
        "SIGNUP_POPUP_EXIT_INTENT": False,
    }


@pytest.fixture
def phone(page: Any) -> Iterator[Any]:  # noqa: F811
    """A page in a phone's browser: 390×844, touch, a mobile user agent, and the viewport
    meta tag honoured (a page wider than the screen widens the layout viewport, as on a
    real phone)."""
    context = page.context.browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=1,
        user_agent=PHONE_UA,
        locale="en-US",
    )
    context.set_default_timeout(10_000)
    phone_page = context.new_page()
    errors: list[Any] = []
    phone_page.on("pageerror", lambda error: errors.append(error))
    yield phone_page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def live(live_server: Any) -> str:
    return live_server.url


def _all_pictures_loaded(tab: Any) -> list[dict[str, Any]]:
    """Load the lazy pictures too (a full-page screenshot shows them) and wait for all."""
    return tab.evaluate(
        """() => Promise.all([...document.images].map((img) => {
             img.loading = "eager";
             const done = () => ({src: img.currentSrc, width: img.naturalWidth});
             if (img.complete) return done();
             return new Promise((resolve) => { img.onload = img.onerror = () => resolve(done()); });
           }))"""
    )


def _widths(tab: Any) -> dict[str, Any]:
    """The page's width, the viewport's, and what sticks out past the screen's right edge."""
    return tab.evaluate(
        """(screen) => {
          const scroll = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
          const wide = [];
          const clipped = (el) => {  // inside a box that scrolls or clips on its own
            for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
              if (getComputedStyle(up).overflowX !== "visible") return true;
            }
            return false;
          };
          for (const el of document.body.querySelectorAll("*")) {
            const box = el.getBoundingClientRect();
            if (box.width && box.right > screen + 0.5 && !clipped(el)) {
              const name = `${el.tagName.toLowerCase()}.${el.classList[0] || ""}`;
              wide.push(`${name} ${Math.round(box.right)}`);
            }
          }
          return {scroll, inner: window.innerWidth, wide: wide.slice(0, 6)};
        }""",
        PHONE["width"],
    )


def _check_and_shoot(tab: Any, name: str) -> dict[str, Any]:
    expect(tab.locator("body")).to_be_visible()
    pictures = _all_pictures_loaded(tab)
    assert all(p["width"] > 0 for p in pictures), f"{name}: a picture did not load: {pictures}"
    widths = _widths(tab)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"phone-{name}.png"), full_page=True)
    # On a phone a page wider than the screen widens the layout viewport: both must stay 390.
    assert widths["inner"] == PHONE["width"], f"{name} is wider than the phone: {widths}"
    assert widths["scroll"] <= widths["inner"], f"{name} scrolls sideways: {widths}"
    return widths


def test_no_demo_page_scrolls_sideways_on_a_phone(
    shop: Any,
    phone: Any,
    page: Any,  # noqa: F811
    live: str,
    settings: Any,
) -> None:
    _popup_after(settings, 3600)  # out of the way: the popup has a test of its own
    product = shop.first()
    phone.goto(f"{live}/")
    # The shop's own stylesheet is applied (not an unstyled page that trivially fits).
    assert phone.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 244, 239)"
    expect(phone.locator("#pretend-country")).to_be_visible()  # the footer's country box
    _check_and_shoot(phone, "home")
    phone.goto(f"{live}{product.category.get_absolute_url()}")
    _check_and_shoot(phone, "category")
    phone.goto(f"{live}{product.get_absolute_url()}")
    _check_and_shoot(phone, "product")
    phone.goto(f"{live}/search/?q=tent")
    expect(phone.locator(".product-card").first).to_be_visible()
    _check_and_shoot(phone, "search")
    phone.goto(f"{live}/search/?q={'Unbreakablewordwithoutanyspaces' * 4}")
    _check_and_shoot(phone, "search-long-word")
    phone.goto(f"{live}/accounts/login/")
    _check_and_shoot(phone, "login")

    # An account: sign up, then the account's page.
    phone.goto(f"{live}/accounts/signup/")
    _check_and_shoot(phone, "signup")
    name = f"phone{uuid.uuid4().hex[:8]}"
    phone.fill("#id_username", name)
    phone.fill("#id_email", f"{name}@example.com")
    phone.fill("#id_password1", "a-long-Passphrase-42")
    phone.fill("#id_password2", "a-long-Passphrase-42")
    with phone.expect_navigation():
        phone.get_by_role("button", name="Sign up").tap()
    expect(phone.get_by_role("button", name="Log out")).to_be_attached()
    phone.goto(f"{live}/accounts/orders/")
    _check_and_shoot(phone, "account")

    # Cart, checkout and the order confirmation.
    phone.goto(f"{live}{product.get_absolute_url()}")
    with phone.expect_navigation():
        phone.locator(".add-to-cart button[type=submit]").tap()
    phone.goto(f"{live}/cart/")
    expect(phone.locator(".cart-line")).to_have_count(1)
    _check_and_shoot(phone, "cart")
    phone.goto(f"{live}/checkout/")
    _check_and_shoot(phone, "checkout")
    for field, value in {
        "name": "Ada Lovelace",
        "email": "ada.lovelace.with.a.rather.long.address@example.com",
        "street": "Long Street 1",
        "postal_code": "10115",
        "city": "Berlin",
    }.items():
        phone.fill(f"#id_{field}", value)
    phone.locator("button[data-once]").tap()
    expect(phone.get_by_role("heading", name="Thank you, Ada Lovelace!")).to_be_visible()
    _check_and_shoot(phone, "confirmation")

    # The shop's own 404 page (DEBUG shows Django's technical one instead).
    settings.DEBUG = False
    response = phone.goto(f"{live}/no-such-page/")
    assert response.status == 404
    expect(phone.get_by_role("heading", name="We couldn't find that page")).to_be_visible()
    _check_and_shoot(phone, "404")

    # And on a desktop: the same pages, wide.
    settings.DEBUG = True
    page.set_viewport_size({"width": 1280, "height": 900})
    for name, url in (("home", "/"), ("product", product.get_absolute_url())):
        page.goto(f"{live}{url}")
        _all_pictures_loaded(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.screenshot(path=str(SCREENSHOTS / f"desktop-{name}.png"), full_page=True)


KEYBOARD_UP = {"width": 360, "height": 360}  # a small phone with its keyboard shown


@pytest.mark.parametrize("size", [PHONE, KEYBOARD_UP], ids=["390x844", "keyboard-up"])
def test_the_popup_fits_a_phone_and_signs_up_by_touch(
    shop: Any,
    phone: Any,
    live: str,
    settings: Any,
    size: dict[str, int],
) -> None:
    from personalization.models import Coupon

    _popup_after(settings, 0)
    phone.set_viewport_size(size)
    phone.goto(f"{live}{shop.first().get_absolute_url()}")
    dialog = phone.get_by_role("dialog", name="Get 10% off your next order")
    expect(dialog).to_be_visible()
    phone.wait_for_function(
        "document.getAnimations().every((a) => a.playState !== 'running')"
    )  # the sheet has slid in
    width, height = size["width"], size["height"]

    def inside(locator: Any) -> dict[str, float]:
        box = locator.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["y"] >= 0, box
        assert box["x"] + box["width"] <= width + 0.5, box
        assert box["y"] + box["height"] <= height + 0.5, box
        return box

    sheet = inside(dialog)
    assert sheet["width"] == width  # a bottom sheet, edge to edge
    assert abs(sheet["y"] + sheet["height"] - height) < 1  # on the bottom edge
    inside(dialog.get_by_role("button", name="Close"))
    email = dialog.get_by_label("Email address")
    submit = dialog.get_by_role("button", name="Get my code")
    if size == PHONE:
        # Everything needed is on the first screen, without scrolling anything.
        inside(email)
        inside(submit)
        assert dialog.evaluate("(d) => d.scrollTop") == 0
        phone.screenshot(path=str(SCREENSHOTS / "phone-popup.png"))
    else:
        # A short screen (a phone with its keyboard up): the sheet scrolls inside itself, the
        # page behind it stays put.
        assert dialog.evaluate("(d) => d.scrollHeight > d.clientHeight")
        submit.scroll_into_view_if_needed()
        inside(submit)
    assert phone.evaluate("window.scrollY") == 0
    assert phone.evaluate("document.documentElement.scrollWidth") <= width

    email.tap()
    email.fill("pocket@example.com")
    submit.tap()
    code = dialog.locator("[data-pzn-code]")
    expect(code).to_be_visible()
    coupon = retrying(lambda: Coupon.objects.get(code=code.inner_text().strip()))
    assert coupon.email == "pocket@example.com"
    inside(code)
    if size == PHONE:
        phone.screenshot(path=str(SCREENSHOTS / "phone-popup-coupon.png"))
    done = dialog.get_by_role("button", name="Continue shopping")
    done.scroll_into_view_if_needed()
    inside(done)
    done.tap()
    expect(dialog).to_be_hidden()


def test_recommendation_tiles_show_different_pictures(
    shop: Any, phone: Any, live: str, settings: Any
) -> None:
    _popup_after(settings, 3600)
    # A product with history: its "viewed together" and "bought together" rows are filled.
    phone.goto(f"{live}{shop.first().get_absolute_url()}")
    rows = phone.locator("section[data-personalization-placement]")
    expect(rows.first).to_be_visible()
    _all_pictures_loaded(phone)
    checked = 0
    for index in range(rows.count()):
        row = rows.nth(index)
        placement = row.get_attribute("data-personalization-placement")
        pictures = row.locator(".product-card-media img")
        sources = [pictures.nth(k).get_attribute("src") for k in range(pictures.count())]
        if len(sources) < 2:
            continue
        assert len(set(sources)) == len(sources), placement
        contents = [
            hashlib.sha256(phone.request.get(f"{live}{src}").body()).hexdigest() for src in sources
        ]
        assert len(set(contents)) == len(contents), f"{placement}: the same picture twice"
        shots = [pictures.nth(k).screenshot() for k in range(pictures.count())]
        for a, b in itertools.combinations(shots, 2):
            assert a != b, f"{placement}: two tiles look the same"
        checked += 1
    assert checked >= 2, "expected at least two recommendation rows on a product page"
