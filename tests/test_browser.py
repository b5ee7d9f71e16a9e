"""The signup popup in a real Chromium: opening, focus, errors, the coupon and dismissal.

Needs Debian's ``chromium`` at /usr/bin/chromium and the ``playwright`` package (its own
browser downloads are not used). Select or skip with ``-m browser`` / ``-m "not browser"``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connections

from tests.conftest import BROWSER_UA

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

if not Path(CHROMIUM).exists():
    if os.environ.get("PZN_REQUIRE_BROWSER"):  # CI: a missing browser is a failure
        raise RuntimeError(f"browser tests need Debian's chromium at {CHROMIUM}")
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need playwright (pip install playwright)"
)
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``condition`` until it returns something truthy (the beacons are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except OperationalError:  # SQLite's shared in-memory test database is busy: retry
            result = None
        if result or time.monotonic() > deadline:
            assert result, "timed out waiting for the server to record it"
            return result
        time.sleep(0.05)


def retrying(query: Callable[[], Any], attempts: int = 50) -> Any:
    """Run an ORM read, retrying while SQLite's shared in-memory database is busy."""
    for _ in range(attempts - 1):
        try:
            return query()
        except OperationalError:
            time.sleep(0.05)
    return query()


@pytest.fixture
def page(live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh Chromium page (no cookies: a first-time visitor) against the live server."""
    # Playwright's sync API keeps an asyncio loop running in this thread, so Django would
    # refuse this thread's ORM queries; they are plain sync calls, so allow them here only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "SIGNUP_POPUP_DELAY_SECONDS": 0,
        "CONTROL_GROUP_PERCENT": 0,
    }
    errors: list[Any] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        # Headless Chromium says "HeadlessChrome", which the bot filter rightly skips.
        context = browser.new_context(
            base_url=live_server.url,
            user_agent=BROWSER_UA,
            viewport={"width": 1024, "height": 720},
            locale="en-US",
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(error))
        try:
            yield page
        finally:
            browser.close()
            # While Playwright's loop runs, Django keeps this thread's connections in a
            # context variable, out of reach once the loop stops: close them now, or
            # PostgreSQL cannot drop the test database at the end.
            connections.close_all()
    assert errors == [], f"JavaScript errors: {errors}"


def _popup_exposure(page: Any) -> str:
    return page.locator("[data-pzn-popup]").get_attribute("data-personalization-exposure")


def _inside_dialog(page: Any) -> bool:
    return page.evaluate("document.querySelector('[role=dialog]').contains(document.activeElement)")


def test_a_first_visit_signs_up_and_gets_the_coupon(page: Any) -> None:
    from personalization.models import Coupon, Event, Signup

    page.goto("/popup-page/")
    dialog = page.get_by_role("dialog", name="Get 10% off your next order")
    expect(dialog).to_be_visible()
    email = dialog.get_by_label("Email address")
    expect(email).to_be_focused()
    exposure = _popup_exposure(page)
    wait_for(lambda: Event.objects.filter(kind="popup_shown", exposure_id=exposure).exists())

    status = dialog.get_by_role("status")
    submit = dialog.get_by_role("button", name="Get my code")
    email.fill("ada@")  # caught in the page, never sent
    submit.click()
    expect(status).to_have_text("Please enter a valid email address.")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()

    email.fill("ada@example")  # valid for the browser, not for the server: a 400
    submit.click()
    expect(status).to_contain_text("valid email")
    expect(submit).to_be_enabled()
    assert not retrying(Signup.objects.exists)

    email.fill("ada@example.com")
    submit.click()
    code = dialog.locator("[data-pzn-code]")
    expect(code).to_be_visible()
    coupon = retrying(lambda: Coupon.objects.get(code=code.inner_text().strip()))
    assert coupon.email == "ada@example.com"
    assert coupon.source == Coupon.SOURCE_SIGNUP
    assert (
        retrying(Signup.objects.get).consent_text == "We'll email you offers. Unsubscribe any time."
    )
    expect(dialog.get_by_role("button", name="Copy")).to_be_visible()
    expect(dialog.locator("[data-pzn-expires]")).not_to_be_empty()
    expect(email).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "popup.png"))

    dialog.get_by_role("button", name="Continue shopping").click()
    expect(dialog).to_be_hidden()
    page.reload()
    expect(page.get_by_role("heading", name="Popup page")).to_be_visible()
    expect(page.locator("[data-pzn-popup]")).to_have_count(0)
    # Closing after a signup is not a dismissal.
    assert not retrying(Event.objects.filter(kind="popup_dismissed").exists)


def test_escape_dismisses_it_for_good(page: Any) -> None:
    from personalization.models import Event

    page.goto("/popup-page/")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    exposure = _popup_exposure(page)
    wait_for(lambda: Event.objects.filter(kind="popup_shown", exposure_id=exposure).exists())

    for key in ["Tab"] * 4 + ["Shift+Tab"] * 4:  # focus stays in the dialog
        page.keyboard.press(key)
        assert _inside_dialog(page), key
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    wait_for(lambda: Event.objects.filter(kind="popup_dismissed", exposure_id=exposure).exists())

    page.reload()
    expect(page.get_by_role("heading", name="Popup page")).to_be_visible()
    expect(page.locator("[data-pzn-popup]")).to_have_count(0)
    wait_for(lambda: Event.objects.filter(kind="popup_dismissed").count() == 1)


def test_a_click_on_personalized_content_survives_navigation(page: Any) -> None:
    from personalization.models import Event

    page.goto("/popup-page/")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    exposure = _popup_exposure(page)
    # Stand in for a banner: any element carrying one of this visitor's exposure ids.
    page.locator("#plain-link").evaluate(
        "(link, id) => { link.dataset.personalizationExposure = id;"
        " link.innerHTML = '<span data-personalization-product=\"42\">Tent</span>'; }",
        exposure,
    )
    page.get_by_text("Tent").click()
    # The link navigates away at once; the beacon still arrives.
    expect(page.locator("body")).to_have_text("plain page")

    click = wait_for(lambda: Event.objects.filter(kind="click").first())
    assert (str(click.exposure_id), click.product_id) == (exposure, "42")
    # The click on the popup's close button was a dismissal, not a click.
    assert retrying(Event.objects.filter(kind="click").count) == 1
    wait_for(lambda: Event.objects.filter(kind="popup_dismissed", exposure_id=exposure).exists())
