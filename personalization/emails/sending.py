"""Claiming, holding out, rendering and sending: each due email is claimed by inserting its
row (unique per recipient, flow and trigger) before anything else, so two workers, a retry or
a second run never send it twice. A crash after the claim leaves the row "being sent": such
an email is never sent again (at most once, never twice)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from ..conf import app_settings
from ..products import get_adapter
from . import links
from .flows import Due

logger = logging.getLogger("personalization")

MAX_ATTEMPTS = 5
# Minutes before the retries of a send that failed: 5, 15, 45, 135.
BACKOFF_MINUTES = 5


def in_control_group(recipient: Any) -> bool:
    """The recipient's group is the person's group on the site: their visitor's (one group
    per person); an address with no visitor is grouped by its own address."""
    from ..models import Visitor
    from ..profiling.visitor import control_group_bucket

    if recipient.visitor_id:
        row = (
            Visitor.objects.filter(pk=recipient.visitor_id)
            .values("in_control_group", "fixed_control_group")
            .first()
        )
        if row is not None:
            fixed = row["fixed_control_group"]
            return bool(fixed if fixed is not None else row["in_control_group"])
        return control_group_bucket(recipient.visitor_id) < float(
            app_settings.CONTROL_GROUP_PERCENT
        )
    key = "email:" + recipient.email.lower()
    return control_group_bucket(key) < float(app_settings.CONTROL_GROUP_PERCENT)


def sent_this_week(recipient: Any, now: dt.datetime) -> int:
    """Emails due for the recipient in the last 7 days, held out ones included: the cap
    holds back the control group's exactly as it would have held back their emails."""
    from ..models import EmailSend

    return (
        EmailSend.objects.filter(recipient=recipient, created_at__gte=now - dt.timedelta(days=7))
        .exclude(status=EmailSend.SUNSET)
        .count()
    )


ENGAGED_DAYS = 90
NEW_RECIPIENT_DAYS = 30


def weekly_allowance(recipient: Any, now: dt.datetime) -> int:
    """How many emails the recipient may get in 7 days: ``EMAIL_MAX_PER_WEEK`` while they
    are engaged (an order or a click, on the site or in an email, in the last 90 days; or a
    consent of the last 30), a third of it (at least one) when they are not."""
    from ..models import Conversion, Event

    most = int(app_settings.EMAIL_MAX_PER_WEEK)
    if recipient.consent_at >= now - dt.timedelta(days=NEW_RECIPIENT_DAYS):
        return most
    since = now - dt.timedelta(days=ENGAGED_DAYS)
    if recipient.visitor_id and (
        Conversion.objects.filter(visitor_id=recipient.visitor_id, created_at__gte=since).exists()
        or Event.objects.filter(
            visitor_id=recipient.visitor_id, kind=Event.CLICK, created_at__gte=since
        ).exists()
    ):
        return most
    return max(1, most // 3) if most else 0


def sunset(recipient: Any) -> bool:
    """Whether the recipient clicked none of their last ``EMAIL_SUNSET_AFTER`` emails (0:
    never): their later emails are recorded, and not sent."""
    from ..models import EmailSend, Event

    run = int(app_settings.EMAIL_SUNSET_AFTER)
    if run <= 0:
        return False
    last = list(
        EmailSend.objects.filter(recipient=recipient, status=EmailSend.SENT)
        .order_by("-created_at")
        .values_list("exposure_id", flat=True)[:run]
    )
    if len(last) < run:
        return False
    return not Event.objects.filter(kind=Event.CLICK, exposure_id__in=last).exists()


def process(item: Due, now: dt.datetime) -> Any:
    """Claim, hold out or send one due email; the EmailSend, or None when another run has
    it or the weekly cap holds it back (it stays due)."""
    from ..models import EmailSend, Exposure

    recipient = item.recipient
    is_control = in_control_group(recipient)
    if sent_this_week(recipient, now) >= weekly_allowance(recipient, now):
        return None  # stays due, for both groups alike
    faded = not is_control and item.flow != "welcome" and sunset(recipient)
    exposure = Exposure(
        visitor_id=recipient.visitor_id or "",
        placement=f"email-{item.flow}",
        kind=Exposure.EMAIL,
        content=item.trigger if item.flow == "campaign" else item.flow,
        content_label=str(item.context.get("campaign") or item.flow.replace("_", " "))[:200],
        items=[str(key) for key in [*item.products, *item.context.get("companion_keys", [])]],
        is_control=is_control,
        created_at=now,
    )
    send = EmailSend(
        recipient=recipient,
        visitor_id=recipient.visitor_id,
        flow=item.flow,
        trigger=item.trigger,
        status=EmailSend.CONTROL
        if is_control
        else (EmailSend.SUNSET if faded else EmailSend.PENDING),
        is_control=is_control,
        items=exposure.items,
        created_at=now,
    )
    try:
        with transaction.atomic():
            send.save(force_insert=True)  # the claim: unique per recipient, flow and trigger
            if recipient.visitor_id:  # both groups are exposed the same way
                exposure.save(force_insert=True)
                send.exposure = exposure
                send.save(update_fields=["exposure"])
    except IntegrityError:
        return None
    if is_control or faded:  # recorded, with its exposure, and not sent
        return send
    try:
        render(send, item)
    except Exception as exc:
        logger.exception("personalization: could not render the %s email %s", item.flow, send.pk)
        send.status, send.error = EmailSend.FAILED, f"render: {exc}"[:300]
        send.attempts = MAX_ATTEMPTS  # a template error is not retried
        send.save(update_fields=["status", "error", "attempts"])
        return send
    deliver(send)
    return send


def _cards(keys: list[Any], send: Any) -> list[dict[str, Any]]:
    adapter = get_adapter()
    products = {
        str(adapter.pk(product)): product
        for product in adapter.get_queryset().filter(pk__in=list(keys))
    }
    cards = []
    for key in keys:
        product = products.get(str(key))
        if product is None or not adapter.is_available(product):
            continue
        path = adapter.url(product)
        image = adapter.image_url(product)
        cards.append(
            {
                "name": adapter.name(product),
                "url": links.click_url(send.pk, path) if links.is_local_path(path) else None,
                "image": links.absolute(image) if links.is_local_path(image) else image,
                "price": adapter.price(product),
                "currency": adapter.currency(product) or "",
            }
        )
    return cards


def render(send: Any, item: Due) -> None:
    """Render the email's subject, text and HTML into its row (kept for the outbox and for
    retries)."""
    compose(send, item)
    send.save(update_fields=["subject", "body_text", "body_html"])


def compose(send: Any, item: Due) -> None:
    """Fill in the email's subject, text and HTML, without saving them."""
    cart_path = app_settings.EMAIL_CART_PATH
    context = {
        **item.context,
        "flow": send.flow,
        "recipient": send.recipient,
        "products": _cards(item.products, send),
        "companions": _cards(item.context.get("companion_keys") or [], send),
        "shop_url": links.click_url(send.pk, "/"),
        "cart_url": links.click_url(send.pk, cart_path or "/"),
        "unsubscribe_url": links.unsubscribe_url(send.recipient_id, send.flow),
        "unsubscribe_all_url": links.unsubscribe_url(send.recipient_id),
    }
    base = f"personalization/email/{send.flow}"
    send.subject = " ".join(render_to_string(f"{base}_subject.txt", context).split())[:200]
    send.body_text = render_to_string(f"{base}.txt", context)
    send.body_html = render_to_string(f"{base}.html", context)


def deliver(send: Any) -> bool:
    """Hand the rendered email to Django's email backend; a failure is kept for a retry with
    backoff, up to :data:`MAX_ATTEMPTS`."""
    from ..models import EmailSend

    one_click = links.unsubscribe_url(send.recipient_id)
    message = EmailMultiAlternatives(
        subject=send.subject,
        body=send.body_text,
        from_email=app_settings.EMAIL_FROM or None,
        to=[send.recipient.email],
        headers={
            "List-Unsubscribe": f"<{one_click}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(send.body_html, "text/html")
    send.attempts += 1
    try:
        message.send()
    except Exception as exc:
        send.status = EmailSend.FAILED
        send.error = f"{type(exc).__name__}: {exc}"[:300]
        minutes = BACKOFF_MINUTES * 3 ** (send.attempts - 1)
        send.next_attempt_at = timezone.now() + dt.timedelta(minutes=minutes)
        send.save(update_fields=["status", "error", "attempts", "next_attempt_at"])
        logger.warning("personalization: could not send email %s: %s", send.pk, send.error)
        return False
    send.status, send.sent_at, send.error = EmailSend.SENT, timezone.now(), ""
    send.save(update_fields=["status", "sent_at", "error", "attempts"])
    return True


def retry_failed(now: dt.datetime) -> int:
    """Send again the emails whose sending failed, once their backoff has passed."""
    from ..models import EmailSend

    retried = 0
    failed = EmailSend.objects.filter(
        status=EmailSend.FAILED, attempts__lt=MAX_ATTEMPTS, next_attempt_at__lte=now
    ).select_related("recipient")
    for send in failed.iterator(chunk_size=200):
        if not send.recipient.receives(send.flow):
            continue
        claimed = EmailSend.objects.filter(pk=send.pk, status=EmailSend.FAILED).update(
            status=EmailSend.PENDING
        )
        if claimed:  # not taken by another run meanwhile
            retried += deliver(send)
    return retried


CONFIRM = "confirm"


def send_confirmations(now: dt.datetime) -> int:
    """With ``EMAIL_DOUBLE_OPT_IN``: the confirmation email, once per address, to every
    recipient not confirmed yet (both groups: it is not personalized, and has no exposure)."""
    from ..models import EmailRecipient, EmailSend

    if not app_settings.EMAIL_DOUBLE_OPT_IN:
        return 0
    sent = 0
    waiting = EmailRecipient.objects.filter(
        confirmed_at__isnull=True,
        unsubscribed_at__isnull=True,
        suppressed_at__isnull=True,
        consent_at__gte=now - dt.timedelta(days=float(app_settings.EMAIL_DUE_DAYS)),
    ).exclude(pk__in=EmailSend.objects.filter(flow=CONFIRM).values("recipient_id"))
    for recipient in waiting.iterator(chunk_size=200):
        send = EmailSend(
            recipient=recipient,
            visitor_id=recipient.visitor_id,
            flow=CONFIRM,
            trigger="consent",
            status=EmailSend.PENDING,
            created_at=now,
        )
        try:
            with transaction.atomic():
                send.save(force_insert=True)
        except IntegrityError:
            continue
        context = {
            "recipient": recipient,
            "confirm_url": links.confirm_url(recipient.pk),
            "unsubscribe_url": links.unsubscribe_url(recipient.pk),
            "unsubscribe_all_url": links.unsubscribe_url(recipient.pk),
        }
        base = "personalization/email/confirm"
        send.subject = " ".join(render_to_string(f"{base}_subject.txt", context).split())[:200]
        send.body_text = render_to_string(f"{base}.txt", context)
        send.body_html = render_to_string(f"{base}.html", context)
        send.save(update_fields=["subject", "body_text", "body_html"])
        sent += deliver(send)
    return sent
