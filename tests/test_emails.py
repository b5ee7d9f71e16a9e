"""Personalized email, end to end: a visitor who consents, views products and leaves gets
exactly one browse-abandonment email naming them; a second run sends nothing more; control
recipients get none; one-click unsubscribe stops the next one; an order after a click on the
email is credited to it. Django's locmem email backend stands in for the SMTP server."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.test import Client

from personalization import jobs
from personalization.emails import links
from personalization.models import (
    Conversion,
    EmailRecipient,
    EmailSend,
    Event,
    Exposure,
    Visitor,
)
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

SITE = "https://shop.example"


def set_email_settings(settings, **more):
    """Email on, to the test's shop, nobody held out, the browse email only, at any hour."""
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "EMAIL_SITE_URL": SITE,
        "CONTROL_GROUP_PERCENT": 0,
        "EMAIL_FLOWS": {"welcome": None, "browse_abandonment": 60},
        "EMAIL_QUIET_HOURS": None,
        **more,
    }
    return settings


@pytest.fixture
def email_settings(settings):
    return set_email_settings(settings)


@contextlib.contextmanager
def smtp_down():
    """The mail server refuses every connection (the test backend stands in for it)."""
    from django.core.mail.backends import locmem

    def refuse(self, messages):
        raise ConnectionRefusedError("connection refused")

    with mock.patch.object(locmem.EmailBackend, "send_messages", refuse):
        yield


def shopper(clock) -> Client:
    browser = Client(HTTP_USER_AGENT=BROWSER_UA)
    browser.get("/")
    clock.shift(2)
    browser.get("/")  # the cookie came back: the visitor's row is written
    return browser


def sign_up(browser: Client, email: str = "ada@example.com", consent: str = "Email me offers"):
    response = browser.post(
        "/personalization/api/signup/",
        {"email": email, "consent": consent},
        content_type="application/json",
    )
    assert response.status_code in (200, 201), response.content
    return response.json()


def browse(browser: Client, clock, *slugs: str) -> None:
    for slug in slugs:
        clock.shift(30)
        assert browser.get(f"/products/{slug}/").status_code == 200


def left_after_browsing(clock, *slugs: str) -> Client:
    """A visitor who consented, viewed ``slugs`` and left three hours ago: the email is due."""
    browser = shopper(clock)
    sign_up(browser)
    browse(browser, clock, *slugs)
    clock.shift(3 * 3600)
    return browser


def counts(sent: int = 0, control: int = 0, sunset: int = 0) -> dict:
    """What the emails job reports, with nothing failed, retried or to confirm."""
    return {"sent": sent, "control": control, "sunset": sunset, "failed": 0, "retried": 0,
            "confirmations": 0}  # fmt: skip


def run_emails() -> dict:
    return jobs.run("emails")


def visitor_id(browser: Client) -> str:
    return browser.get("/profile/").json()["id"]


def test_a_visitor_who_consents_browses_and_leaves_gets_one_email(
    email_settings, clock, make_product
):
    tent = make_product(slug="tent", name="Trail tent")
    stove = make_product(slug="stove", name="Camp stove")
    browser = shopper(clock)
    sign_up(browser)
    browse(browser, clock, "tent", "stove", "tent")
    clock.shift(30 * 60 + 60 * 60 - 60)  # the visit ended, its delay not over yet
    assert run_emails()["sent"] == 0 and mail.outbox == []
    clock.shift(120)
    assert run_emails()["sent"] == 1
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "Still thinking about Trail tent?"  # viewed most
    assert "Trail tent" in message.body and "Camp stove" in message.body
    html = message.alternatives[0][0]
    assert "Trail tent" in html and "Camp stove" in html
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(
        rf"<{SITE}/personalization/email/unsubscribe/[^>]+/>",
        message.extra_headers["List-Unsubscribe"],
    )
    send = EmailSend.objects.get()
    assert send.items == [str(tent.pk), str(stove.pk)]
    exposure = Exposure.objects.get(placement="email-browse_abandonment")
    assert exposure.kind == "email" and not exposure.is_control
    assert exposure.visitor_id == send.visitor_id == Visitor.objects.get().pk
    # Run again, now and later: nothing more for this visit.
    assert run_emails()["sent"] == 0
    clock.shift(86400)
    assert run_emails()["sent"] == 0
    assert len(mail.outbox) == 1


def test_an_order_after_the_visit_means_no_email(email_settings, clock, make_product):
    make_product(slug="tent", name="Trail tent")
    browser = shopper(clock)
    sign_up(browser)
    browse(browser, clock, "tent")
    clock.shift(60)
    assert browser.post("/order/", {"order_id": "A-1", "total": "10.00"}).status_code == 201
    clock.shift(3 * 3600)
    assert run_emails()["sent"] == 0 and mail.outbox == []


def test_no_consent_no_email(email_settings, clock, make_product):
    make_product(slug="tent")
    browser = shopper(clock)
    sign_up(browser, consent="")
    browse(browser, clock, "tent")
    clock.shift(3 * 3600)
    assert not EmailRecipient.objects.exists()
    assert run_emails()["sent"] == 0 and mail.outbox == []


def test_a_control_recipient_gets_no_email_and_a_control_exposure(
    email_settings, clock, make_product
):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "CONTROL_GROUP_PERCENT": 100,
    }
    make_product(slug="tent")
    left_after_browsing(clock, "tent")
    assert run_emails() == {
        "sent": 0,
        "control": 1,
        "sunset": 0,
        "failed": 0,
        "retried": 0,
        "confirmations": 0,
    }
    assert mail.outbox == []
    send = EmailSend.objects.get()
    assert send.status == EmailSend.CONTROL and send.is_control
    exposure = Exposure.objects.get(placement="email-browse_abandonment")
    assert exposure.is_control  # logged as for the personalized group: symmetric
    assert run_emails()["control"] == 0  # once per trigger in control too


def test_one_click_unsubscribe_stops_the_next_email(email_settings, clock, make_product):
    make_product(slug="tent")
    make_product(slug="stove")
    browser = left_after_browsing(clock, "tent")
    run_emails()
    (message,) = mail.outbox
    url = message.extra_headers["List-Unsubscribe"].strip("<>").removeprefix(SITE)
    mail_client = Client()  # the mail client's POST: no cookie, no CSRF token
    response = mail_client.post(
        url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert EmailRecipient.objects.get().unsubscribed_at is not None
    browse(browser, clock, "stove")  # a new visit with views
    clock.shift(86400)
    assert run_emails()["sent"] == 0 and len(mail.outbox) == 1


def test_an_unsubscribe_link_opened_only_asks(email_settings, clock):
    recipient = EmailRecipient.objects.create(
        email="b@example.com",
        consent_at=dt.datetime.now(dt.UTC),
        consent_text="yes",
        consent_source="popup",
    )
    url = links.unsubscribe_url(recipient.pk, "browse_abandonment").removeprefix(SITE)
    page = Client().get(url)
    assert page.status_code == 200 and b"<form" in page.content
    recipient.refresh_from_db()
    assert recipient.unsubscribed_at is None and recipient.unsubscribed_flows == []
    assert Client().post(url).status_code == 200
    recipient.refresh_from_db()
    assert recipient.unsubscribed_flows == ["browse_abandonment"]
    assert recipient.unsubscribed_at is None  # only that kind of email
    assert recipient.receives("welcome") and not recipient.receives("browse_abandonment")


def test_tampered_links_get_a_400_and_never_a_redirect(email_settings):
    assert Client().get("/personalization/email/unsubscribe/nonsense/").status_code == 400
    assert Client().get("/personalization/email/c/nonsense/").status_code == 400
    with pytest.raises(links.BadLink):
        links.click_url("x", "https://evil.example/")
    with pytest.raises(links.BadLink):
        links.click_url("x", "/\\evil.example")
    good = links.click_url("x", "/products/tent/").removeprefix(SITE)
    token = good.rstrip("/").rsplit("/", 1)[1]
    forged = good.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert Client().get(forged).status_code == 400


def test_an_order_after_a_click_in_the_email_is_credited_to_it(email_settings, clock, make_product):
    make_product(slug="tent", name="Trail tent")
    browser = left_after_browsing(clock, "tent")
    run_emails()
    (message,) = mail.outbox
    link = re.search(rf"{SITE}(/personalization/email/c/[^\s]+/)", message.body).group(1)
    clock.shift(3600)
    response = browser.get(link)
    assert response.status_code == 302 and response["Location"] == "/products/tent/"
    send = EmailSend.objects.get()
    click = Event.objects.get(kind=Event.CLICK)
    assert click.exposure_id == send.exposure_id and click.visitor_id == send.visitor_id
    clock.shift(60)
    assert browser.post("/order/", {"order_id": "A-7", "total": "49.00"}).status_code == 201
    conversion = Conversion.objects.get(order_id="A-7")
    assert conversion.exposure_id == send.exposure_id
    assert conversion.revenue == Decimal("49.00")


def test_a_click_from_a_new_browser_continues_as_the_email_s_visitor(
    email_settings, clock, make_product
):
    make_product(slug="tent")
    left_after_browsing(clock, "tent")
    run_emails()
    link = re.search(rf"{SITE}(/personalization/email/c/[^\s]+/)", mail.outbox[0].body).group(1)
    phone = Client(HTTP_USER_AGENT=BROWSER_UA)
    phone.get(link)
    assert visitor_id(phone) == EmailSend.objects.get().visitor_id


def test_a_failed_send_is_retried_later_and_sent_once(email_settings, clock, make_product):
    make_product(slug="tent")
    left_after_browsing(clock, "tent")
    with smtp_down():
        assert run_emails()["failed"] == 1
    send = EmailSend.objects.get()
    assert send.status == EmailSend.FAILED and send.attempts == 1 and "refused" in send.error
    assert run_emails()["retried"] == 0  # the backoff has not passed
    clock.shift(6 * 60)
    assert run_emails()["retried"] == 1
    assert run_emails()["retried"] == 0
    assert len(mail.outbox) == 1
    send.refresh_from_db()
    assert send.status == EmailSend.SENT and send.attempts == 2


def test_forgetting_a_visitor_deletes_the_address_and_its_emails(
    email_settings, clock, make_product
):
    make_product(slug="tent")
    browser = left_after_browsing(clock, "tent")
    run_emails()
    assert EmailSend.objects.exists()
    assert browser.delete("/personalization/api/me/").status_code == 204
    assert not EmailRecipient.objects.exists() and not EmailSend.objects.exists()


def test_without_the_site_address_nothing_is_sent(settings, clock, make_product, caplog):
    make_product(slug="tent")
    left_after_browsing(clock, "tent")
    assert run_emails()["sent"] == 0 and mail.outbox == []


def test_the_welcome_email_brings_the_coupon(email_settings, clock):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_FLOWS": {"welcome": 0},
    }
    browser = shopper(clock)
    coupon = sign_up(browser)["coupon_code"]
    clock.shift(5)
    assert run_emails()["sent"] == 1
    (message,) = mail.outbox
    assert coupon in message.body and coupon in message.alternatives[0][0]
    assert message.subject.startswith("Welcome!")
    assert run_emails()["sent"] == 0


def test_the_weekly_cap_holds_emails_back(email_settings, clock, make_product):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_MAX_PER_WEEK": 1,
        "EMAIL_FLOWS": {"welcome": 0, "browse_abandonment": 60},
    }
    make_product(slug="tent")
    left_after_browsing(clock, "tent")
    assert run_emails()["sent"] == 1  # the welcome; the browse email waits for the cap
    assert [m.subject.split("!")[0] for m in mail.outbox] == ["Welcome"]


def test_the_job_is_listed_and_runs_with_nothing_due(email_settings):
    assert "emails" in jobs.JOBS
    assert run_emails() == {
        "sent": 0,
        "control": 0,
        "sunset": 0,
        "failed": 0,
        "retried": 0,
        "confirmations": 0,
    }


def test_staff_see_the_outbox_and_each_email_as_sent(
    email_settings, clock, make_product, admin_client
):
    make_product(slug="tent", name="Trail <tent>")
    left_after_browsing(clock, "tent")
    run_emails()
    send = EmailSend.objects.get()
    listing = admin_client.get("/admin/personalization/emailsend/")
    assert listing.status_code == 200 and b"ada@example.com" in listing.content
    page = admin_client.get(f"/admin/personalization/emailsend/{send.pk}/change/")
    assert page.status_code == 200
    body_url = f"/admin/personalization/emailsend/{send.pk}/body/"
    assert f'<iframe sandbox src="{body_url}"'.encode() in page.content
    assert b"Trail <tent>" not in page.content  # the email's HTML is in a document of its own
    assert b"Trail &lt;tent&gt;" in admin_client.get(body_url).content
    recipients = admin_client.get("/admin/personalization/emailrecipient/")
    assert recipients.status_code == 200 and b"ada@example.com" in recipients.content


def test_the_report_shows_the_flow_like_a_placement(
    email_settings, clock, make_product, admin_client
):
    email_settings.PERSONALIZATION = {**email_settings.PERSONALIZATION, "REPORT_ROLLUPS": False}
    make_product(slug="tent", name="Trail tent")
    browser = left_after_browsing(clock, "tent")
    run_emails()
    link = re.search(rf"{SITE}(/personalization/email/c/[^\s]+/)", mail.outbox[0].body).group(1)
    clock.shift(600)
    browser.get(link)
    clock.shift(60)
    assert browser.post("/order/", {"order_id": "A-9", "total": "49.00"}).status_code == 201
    period = {"start": "2026-11-01", "end": "2026-11-03"}  # the clock's days
    response = admin_client.get("/personalization/api/report/", period)
    assert response.status_code == 200, response.content
    rows = {row["placement"]: row for row in response.json()["by_placement"]}
    email = rows["email-browse_abandonment"]
    assert (email["visitors"], email["converted_visitors"]) == (1, 1)
    assert email["control_visitors"] == 0


def test_a_cart_left_behind_gets_the_cart_email_not_the_browsing_one(
    email_settings, clock, make_product
):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_FLOWS": {"browse_abandonment": 60, "cart_abandonment": 60},
        "EMAIL_CART_PATH": "/cart/",
    }
    tent = make_product(slug="tent", name="Trail tent")
    make_product(slug="stove", name="Camp stove")
    browser = shopper(clock)
    sign_up(browser)
    browse(browser, clock, "stove", "tent")
    assert browser.post("/cart/add/tent/").status_code == 201
    clock.shift(3 * 3600)
    assert run_emails()["sent"] == 1  # the cart's email speaks for the visit
    (message,) = mail.outbox
    assert message.subject == "Trail tent is still in your cart"
    assert "Camp stove" not in message.body.split("Back to the cart")[0]
    assert re.search(rf"Back to the cart: {SITE}/personalization/email/c/", message.body)
    send = EmailSend.objects.get()
    assert send.flow == "cart_abandonment" and send.items[0] == str(tent.pk)
    clock.shift(86400)
    assert run_emails()["sent"] == 0  # and the browsing one never comes
    assert Exposure.objects.get().placement == "email-cart_abandonment"


def test_after_an_order_what_goes_with_it_never_what_was_bought(
    email_settings, clock, make_product
):
    from personalization.models import ProductInteraction
    from personalization.recommendations import precompute

    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_FLOWS": {"post_purchase": 3 * 24 * 60},
    }
    tent = make_product(slug="tent", name="Trail tent")
    pegs = make_product(slug="pegs", name="Tent pegs")
    now = dt.datetime.now(dt.UTC)
    ProductInteraction.objects.bulk_create(  # others bought the tent with pegs
        ProductInteraction(
            visitor_id=f"history-{n}",
            product_id=str(product.pk),
            kind="purchase",
            created_at=now - dt.timedelta(days=2, minutes=n),
        )
        for n in range(10)
        for product in (tent, pegs)
    )
    precompute.recompute_all()
    browser = shopper(clock)
    sign_up(browser)
    order = {"order_id": "A-1", "total": "99.00"}
    response = browser.post("/order/", order)
    assert response.status_code == 201
    Conversion.objects.filter(order_id="A-1").update(items=[[tent.pk, 1, "99.00"]])
    clock.shift(2 * 86400)
    assert run_emails()["sent"] == 0  # three days after the order
    clock.shift(86400 + 60)
    assert run_emails()["sent"] == 1
    (message,) = mail.outbox
    assert "Tent pegs" in message.body and "Trail tent" not in message.body
    assert EmailSend.objects.get().trigger == "order:A-1"
    clock.shift(86400)
    assert run_emails()["sent"] == 0


@pytest.mark.parametrize(
    ("event_type", "suppressed", "unsubscribed"),
    [("bounced", True, False), ("complained", True, False), ("unsubscribed", False, True),
     ("delivered", False, False)],
)  # fmt: skip
def test_the_email_service_s_bounces_and_complaints_stop_email(
    email_settings, clock, make_product, event_type, suppressed, unsubscribed
):
    from anymail.signals import AnymailTrackingEvent, tracking

    make_product(slug="tent")
    left_after_browsing(clock, "tent")
    tracking.send(
        sender=object,
        event=AnymailTrackingEvent(event_type=event_type, recipient="ADA@example.com"),
        esp_name="Postmark",
    )
    recipient = EmailRecipient.objects.get()
    assert (recipient.suppressed_at is not None) == suppressed
    assert (recipient.unsubscribed_at is not None) == unsubscribed
    if suppressed:
        assert recipient.suppressed_reason == event_type
    assert run_emails()["sent"] == (0 if suppressed or unsubscribed else 1)


def test_a_customer_who_stopped_buying_by_their_own_rhythm_is_won_back(
    email_settings, clock, make_product
):
    from personalization.models import ProductInteraction
    from personalization.recommendations import precompute

    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_FLOWS": {"winback": 30 * 24 * 60},
    }
    tent, lamp = (
        make_product(slug="tent", name="Trail tent"),
        make_product(slug="lamp", name="Lamp"),
    )
    now = dt.datetime.now(dt.UTC)
    ProductInteraction.objects.bulk_create(  # the shop's bestseller: the lamp
        ProductInteraction(visitor_id=f"h-{n}", product_id=str(lamp.pk), kind="purchase",
                           created_at=now - dt.timedelta(days=1, minutes=n))
        for n in range(5)
    )  # fmt: skip
    precompute.recompute_all()
    browser = shopper(clock)
    sign_up(browser)
    for n in range(3):  # an order every 40 days
        assert browser.post("/order/", {"order_id": f"W-{n}", "total": "10.00"}).status_code == 201
        Conversion.objects.filter(order_id=f"W-{n}").update(items=[[tent.pk, 1, "10.00"]])
        clock.shift(40 * 86400)
    # 40 days after the last order: within the rhythm (1.5 x 40 = 60 days), nothing yet.
    assert run_emails()["sent"] == 0
    clock.shift(21 * 86400)
    assert run_emails()["sent"] == 1
    (message,) = mail.outbox
    assert message.subject == "It has been a while: picked for you"
    assert "Lamp" in message.body and "Trail tent" not in message.body
    assert EmailSend.objects.get().trigger.startswith("lapsed-after:W-2")
    clock.shift(86400)
    assert run_emails()["sent"] == 0


def _views_then_leave(browser: Client, clock, slug: str, days: float) -> None:
    clock.shift(days * 86400)
    browse(browser, clock, slug)
    clock.shift(3 * 3600)


def test_recipients_who_never_click_fade_out_and_are_still_counted(
    email_settings, clock, make_product
):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_SUNSET_AFTER": 2,
        "EMAIL_MAX_PER_WEEK": 100,
    }
    make_product(slug="tent")
    browser = left_after_browsing(clock, "tent")
    assert run_emails()["sent"] == 1
    _views_then_leave(browser, clock, "tent", 1)
    assert run_emails()["sent"] == 1
    _views_then_leave(browser, clock, "tent", 1)  # two emails, no click: no more sent
    assert run_emails() == {
        "sent": 0,
        "control": 0,
        "sunset": 1,
        "failed": 0,
        "retried": 0,
        "confirmations": 0,
    }
    assert len(mail.outbox) == 2
    faded = EmailSend.objects.get(status=EmailSend.SUNSET)
    assert faded.exposure_id is not None  # the report still sees the visitor as exposed
    # A click brings them back.
    link = re.search(rf"{SITE}(/personalization/email/c/[^\s]+/)", mail.outbox[1].body).group(1)
    browser.get(link)
    _views_then_leave(browser, clock, "tent", 1)
    assert run_emails()["sent"] == 1


def test_a_recipient_with_no_order_or_click_for_months_hears_less(
    email_settings, clock, make_product
):
    from personalization.emails import sending

    email_settings.PERSONALIZATION = {**email_settings.PERSONALIZATION, "EMAIL_MAX_PER_WEEK": 3}
    make_product(slug="tent")
    browser = shopper(clock)
    sign_up(browser)
    recipient = EmailRecipient.objects.get()
    now = dt.datetime.now(dt.UTC)
    assert sending.weekly_allowance(recipient, now) == 3  # new: consented this month
    clock.shift(100 * 86400)
    now = dt.datetime.now(dt.UTC)
    assert sending.weekly_allowance(recipient, now) == 1  # quiet for months
    assert browser.post("/order/", {"order_id": "Q-1", "total": "5.00"}).status_code == 201
    assert sending.weekly_allowance(recipient, dt.datetime.now(dt.UTC)) == 3


def test_double_opt_in_waits_for_the_confirmation_link(email_settings, clock, make_product):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_DOUBLE_OPT_IN": True,
    }
    make_product(slug="tent", name="Trail tent")
    browser = left_after_browsing(clock, "tent")
    ran = run_emails()
    assert (ran["confirmations"], ran["sent"]) == (1, 0)  # the confirmation only
    (confirmation,) = mail.outbox
    assert confirmation.subject == "Please confirm your email address"
    link = re.search(rf"{SITE}(/personalization/email/confirm/[^\s]+/)", confirmation.body)
    assert run_emails()["confirmations"] == 0  # once
    page = Client().get(link.group(1))  # a mail scanner's GET confirms nothing
    assert page.status_code == 200 and b"<form" in page.content
    assert EmailRecipient.objects.get().confirmed_at is None
    assert Client().post(link.group(1)).status_code == 200
    assert EmailRecipient.objects.get().confirmed_at is not None
    assert run_emails()["sent"] == 1
    assert mail.outbox[-1].subject == "Still thinking about Trail tent?"
    assert browser.get("/personalization/email/confirm/forged/").status_code == 400


def test_staff_preview_any_flow_for_a_recipient_and_send_themselves_a_test(
    email_settings, clock, make_product, admin_client, admin_user
):
    make_product(slug="tent", name="Trail tent")
    left_after_browsing(clock, "tent")
    recipient = EmailRecipient.objects.get()
    page = admin_client.get(f"/admin/personalization/emailrecipient/{recipient.pk}/change/")
    assert page.status_code == 200 and b"/preview/browse_abandonment/" in page.content
    url = f"/admin/personalization/emailrecipient/{recipient.pk}/preview/browse_abandonment/"
    preview = admin_client.get(url)
    assert preview.status_code == 200
    assert b"Still thinking about Trail tent?" in preview.content
    assert f'<iframe sandbox src="{url}body/"'.encode() in preview.content
    assert b"Trail tent" in admin_client.get(url + "body/").content
    assert not EmailSend.objects.exists() and mail.outbox == []  # nothing recorded or sent
    for flow in ("welcome", "cart_abandonment", "post_purchase", "winback"):
        assert admin_client.get(url.replace("browse_abandonment", flow)).status_code == 200
    assert admin_client.get(url.replace("browse_abandonment", "nope")).status_code == 404
    admin_user.email = "boss@example.com"
    admin_user.save()
    assert admin_client.post(url).status_code == 302
    (test,) = mail.outbox
    assert test.to == ["boss@example.com"] and test.subject.startswith("[Test] Still thinking")
    assert not EmailSend.objects.exists()
    assert Client().get(url).status_code == 302  # staff only: to the login page
    from tests.testapp.models import Product

    Product.objects.update(stock=0)  # nothing left to show: the preview says so, no 500
    response = admin_client.get(url, follow=True)
    assert response.status_code == 200 and b"cannot be rendered" in response.content


def test_a_campaign_reaches_its_segment_once_with_a_block_for_each(
    email_settings, clock, make_product, admin_client
):
    from personalization.models import EmailCampaign, Segment, SegmentRule

    make_product(slug="tent", name="Trail tent")
    newcomers = Segment.objects.create(name="Newcomers", slug="newcomers")
    SegmentRule.objects.create(segment=newcomers, kind="first_visit", value="", position=0)
    ada = shopper(clock)
    sign_up(ada, "ada@example.com")
    bob = shopper(clock)
    sign_up(bob, "bob@example.com")
    clock.shift(31 * 60)
    bob.get("/")  # a second visit: no longer a newcomer
    Visitor.objects.filter(pk=visitor_id(bob)).update(visit_count=2)
    response = admin_client.post(
        "/admin/personalization/emailcampaign/add/",
        {
            "name": "Spring",
            "segment": newcomers.pk,
            "subject": "Spring is here",
            "message": "Our spring range is in.",
            "send_at_0": "2026-11-02",
            "send_at_1": "12:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    campaign = EmailCampaign.objects.get()
    clock.shift(3 * 3600)
    assert run_emails()["sent"] == 1
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"] and message.subject == "Spring is here"
    assert "Our spring range is in." in message.body
    exposure = Exposure.objects.get(placement="email-campaign")
    assert exposure.content == f"campaign:{campaign.pk}" and exposure.content_label == "Spring"
    assert run_emails()["sent"] == 0  # once
    page = admin_client.get("/admin/personalization/emailcampaign/")
    assert page.status_code == 200 and b"Spring" in page.content
