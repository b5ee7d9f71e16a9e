"""Email delivery in practice: batches through one connection, staff's flow settings, quiet
hours in the recipient's time zone, the opens pixel, the welcome's referral link, and the
bad input of real lists (an invalid address, a recipient deleted mid-send, a template error
in one recipient's block). Django's locmem email backend stands in for the SMTP server."""

from __future__ import annotations

import datetime as dt
import logging
import re
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.utils import timezone

from personalization.emails import flows, sending
from personalization.models import (
    EmailCampaign,
    EmailFlow,
    EmailRecipient,
    EmailSend,
    Exposure,
    Segment,
    SegmentRule,
    Visitor,
)
from tests.test_emails import (
    SITE,
    browse,
    left_after_browsing,
    run_emails,
    set_email_settings,
    shopper,
    sign_up,
    visitor_id,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def email_settings(settings):
    return set_email_settings(settings, EMAIL_MAX_PER_WEEK=100)


def imported(n: int, *, prefix: str = "reader") -> list[EmailRecipient]:
    """``n`` imported addresses (no visitor), consented now."""
    now = timezone.now()
    return EmailRecipient.objects.bulk_create(
        EmailRecipient(
            email=f"{prefix}{i}@example.com",
            consent_at=now,
            consent_text="Newsletter",
            consent_source=EmailRecipient.SOURCE_IMPORT,
        )
        for i in range(n)
    )


def campaign(**fields) -> EmailCampaign:
    return EmailCampaign.objects.create(
        name=fields.pop("name", "Spring"),
        subject=fields.pop("subject", "Spring is here"),
        message=fields.pop("message", "Our spring range is in."),
        send_at=fields.pop("send_at", timezone.now()),
        **fields,
    )


def count_connections():
    return mock.patch.object(
        locmem.EmailBackend, "open", autospec=True, side_effect=lambda self: None
    )


# Delivery -----------------------------------------------------------------------------------
def test_a_batch_goes_through_one_connection_and_many_batches_stream(
    email_settings, clock, monkeypatch
):
    imported(7)
    campaign()
    monkeypatch.setattr(sending, "BATCH_SIZE", 3)
    monkeypatch.setattr(flows, "CHUNK", 2)  # recipients read two at a time
    with count_connections() as opened:
        assert run_emails()["sent"] == 7
    assert opened.call_count == 3  # batches of 3, 3 and 1: one connection each
    assert sorted(m.to[0] for m in mail.outbox) == [f"reader{i}@example.com" for i in range(7)]
    assert run_emails()["sent"] == 0 and len(mail.outbox) == 7


def test_an_invalid_address_is_suppressed_and_the_rest_are_sent(email_settings, clock, caplog):
    imported(2)
    broken = EmailRecipient.objects.create(
        email="no-at-sign",
        consent_at=timezone.now(),
        consent_text="Newsletter",
        consent_source=EmailRecipient.SOURCE_IMPORT,
    )
    campaign()
    with caplog.at_level(logging.WARNING, logger="personalization"):
        assert run_emails()["sent"] == 2
    broken.refresh_from_db()
    assert broken.suppressed_at is not None and broken.suppressed_reason == "invalid address"
    assert "invalid address" in caplog.text
    assert not EmailSend.objects.filter(recipient=broken).exists()


def test_a_recipient_deleted_mid_send_costs_nobody_else_their_email(email_settings, clock):
    imported(3)
    campaign()
    now = timezone.now()
    due = list(flows.due(now))
    EmailRecipient.objects.filter(email="reader1@example.com").delete()  # forgotten meanwhile
    results = sending.process_batch(due, now)
    assert [r is not None for r in results] == [True, False, True]
    assert sorted(m.to[0] for m in mail.outbox) == ["reader0@example.com", "reader2@example.com"]
    assert EmailSend.objects.count() == 2


def test_a_template_error_in_one_block_fails_that_email_only(
    email_settings, clock, make_product, caplog
):
    from personalization.products import DefaultProductAdapter

    make_product(slug="tent", name="Tent")
    make_product(slug="stove", name="Stove")
    first = left_after_browsing(clock, "tent")
    second = shopper(clock)
    sign_up(second, "bob@example.com")
    browse(second, clock, "stove")
    clock.shift(3 * 3600)
    real = DefaultProductAdapter.name

    def name(self, product):
        if product.slug == "stove":
            raise ValueError("a broken product")
        return real(self, product)

    with (
        mock.patch.object(DefaultProductAdapter, "name", name),
        caplog.at_level(logging.ERROR, logger="personalization"),
    ):
        counts = run_emails()
    assert counts["sent"] == 1 and counts["failed"] == 1
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    failed = EmailSend.objects.get(status=EmailSend.FAILED)
    assert failed.attempts == sending.MAX_ATTEMPTS  # not retried
    assert failed.visitor_id == visitor_id(second) != visitor_id(first)
    assert "could not render" in caplog.text


def test_a_connection_that_cannot_open_fails_the_batch_for_a_later_retry(email_settings, clock):
    imported(2)
    campaign()

    def refuse(self):
        raise ConnectionRefusedError("connection refused")

    with mock.patch.object(locmem.EmailBackend, "open", refuse):
        counts = run_emails()
    assert counts["failed"] == 2 and mail.outbox == []
    clock.shift(6 * 60)
    assert run_emails()["retried"] == 2 and len(mail.outbox) == 2
    assert run_emails()["retried"] == 0 and len(mail.outbox) == 2


# Staff's flow settings ----------------------------------------------------------------------
def test_staff_switch_a_flow_off_and_on_and_change_its_delay(
    email_settings, clock, make_product, admin_client
):
    make_product(slug="tent", name="Trail tent")
    page = admin_client.get("/admin/personalization/emailflow/")
    assert page.status_code == 200
    assert set(EmailFlow.objects.values_list("name", flat=True)) == set(flows.FLOWS)
    assert b"on: 1 h after the visit ended" in page.content  # from EMAIL_FLOWS
    flow = EmailFlow.objects.get(name="browse_abandonment")
    url = f"/admin/personalization/emailflow/{flow.pk}/change/"
    form = {"enabled": "false", "delay_minutes": "", "segment": "", "subject": "", "message": ""}
    assert admin_client.post(url, form).status_code == 302
    left_after_browsing(clock, "tent")
    assert run_emails()["sent"] == 0  # switched off
    form.update(enabled="true", delay_minutes=str(6 * 60))
    assert admin_client.post(url, form).status_code == 302
    assert run_emails()["sent"] == 0  # 3 h since the visit: the 6 h delay has not passed
    clock.shift(4 * 3600)
    assert run_emails()["sent"] == 1


def test_staff_words_replace_the_template_s(email_settings, clock, make_product):
    make_product(slug="tent", name="Trail tent")
    EmailFlow.objects.create(
        name="browse_abandonment",
        subject="{{ product }} is waiting for you",
        message="We kept it aside.\nCome back soon.",
    )
    left_after_browsing(clock, "tent")
    assert run_emails()["sent"] == 1
    (message,) = mail.outbox
    assert message.subject == "Trail tent is waiting for you"
    assert "We kept it aside." in message.body and "the other day" not in message.body
    assert "We kept it aside.<br>Come back soon." in message.alternatives[0][0]
    assert "Trail tent" in message.body


def test_a_flow_kept_to_a_segment_skips_the_others_in_both_groups(
    email_settings, clock, make_product
):
    make_product(slug="tent")
    french = Segment.objects.create(name="France", slug="france")
    SegmentRule.objects.create(segment=french, kind="country", value="FR", position=0)
    EmailFlow.objects.create(name="browse_abandonment", segment=french)
    browser = left_after_browsing(clock, "tent")
    assert run_emails()["sent"] == 0 and not EmailSend.objects.exists()
    Visitor.objects.filter(pk=visitor_id(browser)).update(country_code="FR")
    assert run_emails()["sent"] == 1


# Quiet hours --------------------------------------------------------------------------------
def test_emails_wait_for_the_morning_in_the_recipient_s_time_zone(
    email_settings, clock, make_product
):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_QUIET_HOURS": (21, 8),
        "CONTROL_GROUP_PERCENT": 50,
    }
    make_product(slug="tent")
    browsers = [left_after_browsing(clock, "tent")]  # 13:25 UTC: 22:25 in Tokyo
    for i in range(5):
        browser = shopper(clock)
        sign_up(browser, f"shopper{i}@example.com")
        browse(browser, clock, "tent")
        browsers.append(browser)
    clock.shift(3 * 3600)
    ids = [visitor_id(b) for b in browsers]
    Visitor.objects.filter(pk__in=ids).update(time_zone="Asia/Tokyo")
    counts = run_emails()
    assert counts["sent"] == counts["control"] == 0  # both groups wait alike
    assert not Exposure.objects.filter(placement="email-browse_abandonment").exists()
    clock.shift(9 * 3600)  # 01:45 UTC: 10:45 in Tokyo
    counts = run_emails()
    assert counts["sent"] + counts["control"] == 6
    assert counts["control"] >= 1 and counts["sent"] >= 1


def test_a_visitor_s_time_zone_comes_from_the_country_when_geoip_has_none(email_settings):
    from personalization.emails import quiet

    assert str(quiet.zone_for("", "FR")) == "Europe/Paris"
    late = dt.datetime(2026, 11, 2, 21, 30, tzinfo=dt.UTC)  # 22:30 in Paris
    assert quiet.is_quiet(late, quiet.zone_for("", "FR"), (21, 8))
    assert not quiet.is_quiet(late, quiet.zone_for("America/New_York", "FR"), (21, 8))


def test_the_welcome_answers_the_signup_at_once_even_at_night(email_settings, clock):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_FLOWS": {"welcome": 0},
        "EMAIL_QUIET_HOURS": (0, 23),  # quiet nearly all day
    }
    browser = shopper(clock)
    sign_up(browser)
    clock.shift(5)
    assert run_emails()["sent"] == 1


# The welcome's referral link ----------------------------------------------------------------
def test_the_welcome_email_carries_the_referral_link_for_both_friends(email_settings, clock):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_FLOWS": {"welcome": 0},
    }
    browser = shopper(clock)
    link = sign_up(browser)["referral_link"]
    code = link.rsplit("ref=", 1)[1]
    clock.shift(5)
    assert run_emails()["sent"] == 1
    (message,) = mail.outbox
    assert f"{SITE}/?ref={code}" in message.body
    assert "10% off their first order" in message.body  # REFERRAL_WELCOME_PERCENT
    assert "15% off your next one" in message.body  # REFERRAL_REWARD_PERCENT
    assert f'href="{SITE}/?ref={code}"' in message.alternatives[0][0]


# Opens --------------------------------------------------------------------------------------
def test_opens_are_counted_by_pixel_only_when_asked(email_settings, clock, make_product):
    make_product(slug="tent")
    browser = left_after_browsing(clock, "tent")
    run_emails()
    assert "/personalization/email/o/" not in mail.outbox[0].alternatives[0][0]
    email_settings.PERSONALIZATION = {**email_settings.PERSONALIZATION, "EMAIL_TRACK_OPENS": True}
    clock.shift(86400)
    browse(browser, clock, "tent")
    clock.shift(3 * 3600)
    assert run_emails()["sent"] == 1
    html = mail.outbox[1].alternatives[0][0]
    pixel = re.search(rf'<img src="{SITE}(/personalization/email/o/[^"]+\.gif)"', html).group(1)
    assert browser.head(pixel).status_code == 200
    assert EmailSend.objects.filter(opened_at__isnull=False).count() == 0  # HEAD changes nothing
    response = browser.get(pixel)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    opened = EmailSend.objects.get(opened_at__isnull=False)
    assert opened.pk == EmailSend.objects.order_by("-created_at").first().pk
    first_open = opened.opened_at
    clock.shift(60)
    browser.get(pixel)
    opened.refresh_from_db()
    assert opened.opened_at == first_open  # the first open is kept
    tampered = pixel.replace("/o/", "/o/x")
    assert browser.get(tampered).status_code == 400


def pixel_gif(html: str) -> str:
    return re.search(r'src="data:image/gif;base64,([^"]+)"', html).group(1)


def test_staff_reading_an_email_in_the_admin_do_not_open_it(
    email_settings, clock, make_product, admin_client
):
    """The admin shows the email's HTML with a blank image where its tracking pixel was:
    staff reading the outbox (or a preview) are never counted as the recipient's open."""
    from django.urls import reverse

    email_settings.PERSONALIZATION = {**email_settings.PERSONALIZATION, "EMAIL_TRACK_OPENS": True}
    make_product(slug="tent")
    left_after_browsing(clock, "tent")
    assert run_emails()["sent"] == 1
    send = EmailSend.objects.get()
    assert "/personalization/email/o/" in send.body_html
    body = admin_client.get(reverse("admin:personalization_emailsend_body", args=[send.pk]))
    assert body.status_code == 200
    html = body.content.decode()
    assert "/personalization/email/o/" not in html
    assert 'src="data:image/gif;base64,' in html
    pixel = re.search(r'src="([^"]+/personalization/email/o/[^"]+)"', send.body_html).group(1)
    assert html == send.body_html.replace(pixel, "data:image/gif;base64," + pixel_gif(html))
    send.refresh_from_db()
    assert send.opened_at is None


def test_a_recipient_who_opens_without_clicking_is_not_sunset(email_settings, clock, make_product):
    email_settings.PERSONALIZATION = {
        **email_settings.PERSONALIZATION,
        "EMAIL_SUNSET_AFTER": 2,
        "EMAIL_TRACK_OPENS": True,
    }
    make_product(slug="tent")
    browser = left_after_browsing(clock, "tent")
    assert run_emails()["sent"] == 1
    for _ in range(2):
        clock.shift(86400)
        browse(browser, clock, "tent")
        clock.shift(3 * 3600)
        assert run_emails()["sent"] == 1
        html = mail.outbox[-1].alternatives[0][0]
        pixel = re.search(r'src="https://shop.example(/[^"]+\.gif)"', html)
        browser.get(pixel.group(1))
    assert EmailSend.objects.filter(opened_at__isnull=False).count() == 2
    assert not EmailSend.objects.filter(status=EmailSend.SUNSET).exists()


def test_plain_text_and_subject_are_not_html_escaped(email_settings, clock, make_product):
    make_product(slug="mill", name="Salt & pepper <mill>")
    left_after_browsing(clock, "mill")
    assert run_emails()["sent"] == 1
    (message,) = mail.outbox
    assert message.subject == "Still thinking about Salt & pepper <mill>?"
    assert "- Salt & pepper <mill>" in message.body
    assert "Salt &amp; pepper &lt;mill&gt;" in message.alternatives[0][0]


def test_the_one_click_header_stays_a_plain_url_whatever_the_mail_policy(
    email_settings, clock, make_product
):
    """Python's modern email policy (Django 6.1's) turns a long header with no space into
    RFC 2047 encoded words, which mail clients ignore in List-Unsubscribe."""
    import email
    import email.policy

    make_product(slug="tent")
    left_after_browsing(clock, "tent")
    run_emails()
    send = EmailSend.objects.get(status=EmailSend.SENT)
    url = sending.links.unsubscribe_url(send.recipient_id)
    assert len(url) > 78  # too long for one folded line
    message = sending.message_for(send)
    for policy in (email.policy.SMTP, email.policy.default, None):
        try:
            raw = (message.message(policy=policy) if policy else message.message()).as_bytes()
        except TypeError:  # Django before 6.1 takes no policy
            raw = message.message().as_bytes()
        assert b"=?utf-8?" not in raw.split(b"\n\n")[0].split(b"\r\n\r\n")[0]
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert "".join(str(parsed["List-Unsubscribe"]).split()) == f"<{url}>"
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
