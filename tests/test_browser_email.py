"""Personalized email in a real Chromium: a visitor signs up in the popup and views a product;
the emails job sends the browse-abandonment email; staff read it in the admin's outbox; its
link leads back to the product with the click recorded; its one-click unsubscribe works."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from personalization import jobs
from personalization.models import EmailRecipient, EmailSend, Event
from tests.test_browser import ARTIFACTS, page, retrying, wait_for  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_email_its_outbox_and_its_links(page: Any, live_server: Any, settings: Any,  # noqa: F811
                                            make_product: Any) -> None:  # fmt: skip
    expect = pytest.importorskip("playwright.sync_api").expect
    # Django's test setup sends email to its memory backend (mail.outbox).
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "EMAIL_SITE_URL": live_server.url,
        "VISIT_TIMEOUT_MINUTES": 1,
        # Due as soon as the last view is a minute old: the test does not wait an hour.
        "EMAIL_FLOWS": {"welcome": None, "browse_abandonment": -1},
        "EMAIL_QUIET_HOURS": None,  # whatever the hour the test runs
    }
    make_product(slug="tent", name="Trail tent")

    page.goto("/popup-page/")
    dialog = page.get_by_role("dialog", name="Get 10% off your next order")
    dialog.get_by_label("Email address").fill("ada@example.com")
    dialog.get_by_role("button", name="Get my code").click()
    expect(dialog.locator("[data-pzn-code]")).to_be_visible()
    recipient = wait_for(lambda: EmailRecipient.objects.filter(email="ada@example.com").first())
    assert "Unsubscribe any time" in recipient.consent_text  # the words the visitor saw

    page.goto("/products/tent/")
    wait_for(lambda: retrying(lambda: jobs.run("emails"))["sent"] == 1)
    (message,) = mail.outbox
    assert message.subject == "Still thinking about Trail tent?"

    get_user_model().objects.create_user("boss", "boss@example.com", "pw", is_staff=True,
                                         is_superuser=True)  # fmt: skip
    staff = page.context.new_page()
    staff.goto("/admin/login/?next=/admin/personalization/emailsend/")
    staff.fill("#id_username", "boss")
    staff.fill("#id_password", "pw")
    staff.click("input[type=submit]")
    staff.wait_for_url("**/admin/personalization/emailsend/")
    row = staff.locator("#result_list tbody tr").filter(has_text="Still thinking about Trail tent?")
    expect(row).to_contain_text("ada@example.com")
    row.get_by_role("link").first.click()
    preview = staff.frame_locator("iframe[sandbox]")
    expect(preview.get_by_text("Trail tent")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    staff.screenshot(path=str(ARTIFACTS / "email-outbox.png"), full_page=True)
    staff.close()

    link = re.search(r"https?://[^\s]+/personalization/email/c/[^\s]+/", message.body).group(0)
    page.goto(link)
    page.wait_for_url("**/products/tent/")
    send = retrying(EmailSend.objects.get)
    wait_for(lambda: Event.objects.filter(kind="click", exposure_id=send.exposure_id).exists())

    one_click = message.extra_headers["List-Unsubscribe"].strip("<>")
    response = page.request.post(
        one_click,
        data="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200
    assert retrying(lambda: EmailRecipient.objects.get().unsubscribed_at) is not None
