"""Claiming, holding out, rendering and sending, a batch at a time: each due email is claimed
by inserting its row (unique per recipient, flow and trigger) before anything else, so two
workers, a retry or a second run never send it twice. A crash after the claim leaves the row
"being sent": such an email is never sent again (at most once, never twice).

A batch costs a few queries whatever its size (groups, caps, engagement and sunsets are read
for all its recipients at once; claims and exposures are inserted together), its products are
read once, and its emails go through one connection of the email backend."""

from __future__ import annotations

import datetime as dt
import email.policy
import functools
import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.template import Context, Template
from django.template.loader import get_template, render_to_string
from django.utils import timezone, translation

from ..conf import app_settings
from ..products import get_adapter
from ..tracking import without_waiting
from . import links, quiet
from .flows import WELCOME, Due, FlowConfig, configs

logger = logging.getLogger("personalization")

MAX_ATTEMPTS = 5
# Minutes before the retries of a send that failed: 5, 15, 45, 135.
BACKOFF_MINUTES = 5
# Due emails handled together: claimed in one statement, sent through one connection.
BATCH_SIZE = 200
# Flows that answer the visitor's own action at once: no quiet hours.
IMMEDIATE = frozenset({WELCOME, "confirm"})


def _group_of(recipient: Any, row: Any) -> bool:
    from ..profiling.visitor import control_group_bucket

    percent = float(app_settings.CONTROL_GROUP_PERCENT)
    if recipient.visitor_id:
        if row is not None:
            fixed = row.fixed_control_group
            return bool(fixed if fixed is not None else row.in_control_group)
        return control_group_bucket(recipient.visitor_id) < percent
    return control_group_bucket("email:" + recipient.email.lower()) < percent


def in_control_group(recipient: Any) -> bool:
    """The recipient's group is the person's group on the site: their visitor's (one group
    per person); an address with no visitor is grouped by its own address."""
    from ..models import Visitor

    row = None
    if recipient.visitor_id:
        row = (
            Visitor.objects.filter(pk=recipient.visitor_id)
            .only("in_control_group", "fixed_control_group")
            .first()
        )
    return _group_of(recipient, row)


def sent_this_week(recipient: Any, now: dt.datetime) -> int:
    """Emails due for the recipient in the last 7 days, held out ones included: the cap
    holds back the control group's exactly as it would have held back their emails."""
    return _sent_this_week([recipient.pk], now)[recipient.pk]


def _sent_this_week(recipient_ids: Sequence[int], now: dt.datetime) -> Counter[int]:
    from ..models import EmailSend

    rows = (
        EmailSend.objects.filter(
            recipient_id__in=list(recipient_ids), created_at__gte=now - dt.timedelta(days=7)
        )
        .exclude(status=EmailSend.SUNSET)
        .values("recipient_id")
        .annotate(n=Count("pk"))
        .values_list("recipient_id", "n")
    )
    return Counter(dict(rows))


ENGAGED_DAYS = 90
NEW_RECIPIENT_DAYS = 30


def weekly_allowance(recipient: Any, now: dt.datetime) -> int:
    """How many emails the recipient may get in 7 days: ``EMAIL_MAX_PER_WEEK`` while they
    are engaged (an order, a click on the site or in an email, or an email opened, in the
    last 90 days; or a consent of the last 30), a third of it (at least one) when not."""
    most, reduced = _allowances()
    if recipient.consent_at >= now - dt.timedelta(days=NEW_RECIPIENT_DAYS):
        return most
    return most if recipient.pk in _engaged([recipient], now) else reduced


def _allowances() -> tuple[int, int]:
    most = int(app_settings.EMAIL_MAX_PER_WEEK)
    return most, (max(1, most // 3) if most else 0)


def _engaged(recipients: Sequence[Any], now: dt.datetime) -> set[int]:
    """Which of ``recipients`` ordered, clicked or opened an email in the last 90 days."""
    from ..models import Conversion, EmailSend, Event

    since = now - dt.timedelta(days=ENGAGED_DAYS)
    by_visitor = {r.visitor_id: r.pk for r in recipients if r.visitor_id}
    active = set(
        Conversion.objects.filter(visitor_id__in=list(by_visitor), created_at__gte=since)
        .values_list("visitor_id", flat=True)
        .distinct()
    )
    active |= set(
        Event.objects.filter(
            visitor_id__in=list(by_visitor), kind=Event.CLICK, created_at__gte=since
        )
        .values_list("visitor_id", flat=True)
        .distinct()
    )
    engaged = {by_visitor[visitor_id] for visitor_id in active}
    engaged |= set(
        EmailSend.objects.filter(recipient_id__in=[r.pk for r in recipients])
        .filter(Q(clicked_at__gte=since) | Q(opened_at__gte=since))
        .values_list("recipient_id", flat=True)
        .distinct()
    )
    return engaged


def sunset(recipient: Any) -> bool:
    """Whether the recipient neither clicked nor (with ``EMAIL_TRACK_OPENS``) opened any of
    their last ``EMAIL_SUNSET_AFTER`` emails (0: never): their later emails are recorded,
    and not sent."""
    return recipient.pk in _faded([recipient.pk])


def _faded(recipient_ids: Sequence[int]) -> set[int]:
    from ..models import EmailSend

    run = int(app_settings.EMAIL_SUNSET_AFTER)
    if run <= 0 or not recipient_ids:
        return set()
    rows = (
        EmailSend.objects.filter(recipient_id__in=list(recipient_ids), status=EmailSend.SENT)
        .order_by("recipient_id", "-created_at")
        .values_list("recipient_id", "opened_at", "clicked_at")
    )
    unanswered: Counter[int] = Counter()
    answered: set[int] = set()
    for recipient_id, opened_at, clicked_at in rows.iterator(chunk_size=2000):
        if recipient_id in answered:
            continue
        if opened_at is not None or clicked_at is not None:
            answered.add(recipient_id)
        else:
            unanswered[recipient_id] += 1
    return {recipient_id for recipient_id, n in unanswered.items() if n >= run}


def process(item: Due, now: dt.datetime) -> Any:
    """Claim, hold out or send one due email; the EmailSend, or None when another run has
    it, or the cap, the quiet hours or the flow's segment hold it back (it stays due)."""
    return process_batch([item], now)[0]


def process_batch(
    items: Sequence[Due], now: dt.datetime, products: dict[str, Any] | None = None
) -> list[Any]:
    """:func:`process` for many due emails at once; the results in the order of ``items``.
    ``products``: what the run's earlier batches read of products, kept for the next."""
    from ..models import EmailRecipient, EmailSend, Visitor

    results: list[Any] = [None] * len(items)
    if not items:
        return results
    flow_configs = configs()
    rows: dict[str, Any] = {  # the rows a flow read already (a campaign's)
        item.recipient.visitor_id: item.recipient.visitor_row
        for item in items
        if getattr(item.recipient, "visitor_row", None) is not None
    }
    visitor_ids = {
        item.recipient.visitor_id
        for item in items
        if item.recipient.visitor_id and item.recipient.visitor_id not in rows
    }
    if visitor_ids:
        visitors = Visitor.objects.filter(pk__in=visitor_ids)
        if not any(flow_configs[item.flow].segment for item in items):
            visitors = visitors.only(
                "in_control_group", "fixed_control_group", "time_zone", "country_code"
            )
        rows.update((row.pk, row) for row in visitors)
    moment = now.timestamp()

    # Who may get their email now: the same checks for both groups, before the claim.
    waiting: list[int] = []
    for index, item in enumerate(items):
        recipient, row = item.recipient, rows.get(item.recipient.visitor_id)
        if not _valid_address(recipient):
            EmailRecipient.objects.filter(pk=recipient.pk, suppressed_at__isnull=True).update(
                suppressed_at=now, suppressed_reason="invalid address"
            )
            continue
        config = flow_configs[item.flow]
        if config.segment is not None and not _in_segment(config, row, moment):
            continue
        if item.flow not in IMMEDIATE and quiet.is_quiet(now, _zone(row)):
            continue  # stays due: sent after the recipient's quiet hours
        waiting.append(index)
    if not waiting:
        return results

    recipients = {items[i].recipient.pk: items[i].recipient for i in waiting}
    this_week = _sent_this_week(list(recipients), now)
    most, reduced = _allowances()
    fresh = now - dt.timedelta(days=NEW_RECIPIENT_DAYS)
    due_now = Counter(items[i].recipient.pk for i in waiting)
    doubtful = [
        r
        for r in recipients.values()
        if r.consent_at < fresh and this_week[r.pk] + due_now[r.pk] > reduced
    ]
    engaged = _engaged(doubtful, now) if doubtful else set()
    claims: list[tuple[int, Any, Any]] = []
    for index in waiting:
        recipient = items[index].recipient
        new_or_engaged = recipient.consent_at >= fresh or recipient.pk in engaged
        if this_week[recipient.pk] >= (most if new_or_engaged else reduced):
            continue  # stays due, for both groups alike
        this_week[recipient.pk] += 1
        claims.append((index, *_claim_rows(items[index], rows, now)))
    treated = {send.recipient_id for _, send, _ in claims if not send.is_control}
    faded = _faded(list(treated))
    for index, send, _ in claims:
        if not send.is_control and items[index].flow != WELCOME and send.recipient_id in faded:
            send.status = EmailSend.SUNSET

    # Rendered before the claim, so that the row is inserted whole (ids are made here).
    pending = [(items[i], send) for i, send, _ in claims if send.status == EmailSend.PENDING]
    products = _products({key for item, _ in pending for key in _keys(item)}, products)
    for item, send in pending:
        try:
            compose(send, item, products=products, config=flow_configs[item.flow])
        except Exception as exc:
            logger.exception(
                "personalization: could not render the %s email %s", item.flow, send.pk
            )
            send.status, send.error = EmailSend.FAILED, f"render: {exc}"[:300]
            send.attempts = MAX_ATTEMPTS  # a template error is not retried

    for index, send in _claim(claims):
        results[index] = send
    deliver_many([s for s in results if s is not None and s.status == EmailSend.PENDING])
    return results


def _valid_address(recipient: Any) -> bool:
    try:
        validate_email(recipient.email)
    except ValidationError:
        logger.warning(
            "personalization: email recipient %s has an invalid address; suppressed",
            recipient.pk,
        )
        return False
    return True


def _in_segment(config: FlowConfig, row: Any, moment: float) -> bool:
    from ..targeting.membership import visitor_from_row
    from ..targeting.rules import RuleContext

    if row is None:
        return False
    return bool(config.segment.matches(RuleContext(visitor_from_row(row, moment), moment)))


def _zone(row: Any) -> Any:
    if row is None:
        return quiet.zone_for("", "")
    return quiet.zone_for(row.time_zone or "", row.country_code or "")


def _claim_rows(item: Due, rows: dict[str, Any], now: dt.datetime) -> tuple[Any, Any]:
    """The email's row and its exposure (None without a visitor), not saved yet."""
    from ..models import EmailSend, Exposure
    from ..models.email import ordered_uuid

    recipient = item.recipient
    is_control = _group_of(recipient, rows.get(recipient.visitor_id))
    exposure = None
    items = [str(key) for key in _keys(item)]
    if recipient.visitor_id:  # both groups are exposed the same way
        exposure = Exposure(
            id=ordered_uuid(),
            visitor_id=recipient.visitor_id,
            placement=f"email-{item.flow}",
            kind=Exposure.EMAIL,
            content=item.trigger if item.flow == "campaign" else item.flow,
            content_label=str(item.context.get("campaign") or item.flow.replace("_", " "))[:200],
            items=items,
            is_control=is_control,
            created_at=now,
        )
    send = EmailSend(
        recipient=recipient,
        visitor_id=recipient.visitor_id,
        flow=item.flow,
        trigger=item.trigger,
        status=EmailSend.CONTROL if is_control else EmailSend.PENDING,
        is_control=is_control,
        items=items,
        exposure_id=exposure.pk if exposure is not None else None,
        created_at=now,
    )
    return send, exposure


def _claim(claims: list[tuple[int, Any, Any]]) -> list[tuple[int, Any]]:
    """Insert the rows (the claims) and their exposures; those this run got, with their
    index. Rows another run has are skipped; a batch that fails as a whole (a recipient
    deleted meanwhile) is claimed one email at a time."""
    from ..models import EmailRecipient, EmailSend, Exposure

    if not claims:
        return []
    try:
        with transaction.atomic():
            alive = set(
                EmailRecipient.objects.filter(
                    pk__in={send.recipient_id for _, send, _ in claims}
                ).values_list("pk", flat=True)
            )
            claims = [claim for claim in claims if claim[1].recipient_id in alive]
            sends = [send for _, send, _ in claims]
            EmailSend.objects.bulk_create(sends, ignore_conflicts=True)
            mine = set(
                EmailSend.objects.filter(pk__in=[s.pk for s in sends]).values_list("pk", flat=True)
            )
            got = [(i, s, e) for i, s, e in claims if s.pk in mine]
            Exposure.objects.bulk_create([e for _, _, e in got if e is not None])
            return [(i, s) for i, s, _ in got]
    except IntegrityError:  # deleted between the check and the commit
        if len(claims) <= 1:
            return []
    return [claim for one in claims for claim in _claim([one])]


def _keys(item: Due) -> list[Any]:
    return [*item.products, *item.context.get("companion_keys", [])]


def _products(keys: set[Any], known: dict[str, Any] | None = None) -> dict[str, Any]:
    """What an email shows of each product, by key (None: gone or not available). Products
    in ``known`` (a run's earlier batches) are not read again; the rest in one query."""
    adapter = get_adapter()
    shown: dict[str, Any] = known if known is not None else {}
    missing = {str(key) for key in keys} - shown.keys()
    if not missing:
        return shown
    shown.update(dict.fromkeys(missing))
    for product in adapter.get_queryset().filter(pk__in=list(missing)):
        try:
            if not adapter.is_available(product):
                continue
            path, image = adapter.url(product), adapter.image_url(product)
            shown[str(adapter.pk(product))] = {
                "name": adapter.name(product),
                "path": path if links.is_local_path(path) else None,
                "image": links.absolute(image) if links.is_local_path(image) else image,  # type: ignore[arg-type]
                "price": adapter.price(product),
                "currency": adapter.currency(product) or "",
            }
        except Exception:
            logger.exception("personalization: product %s left out of emails", product.pk)
    return shown


def _cards(keys: list[Any], send: Any, products: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    cards = []
    for key in keys:
        product = products.get(str(key))
        if product is not None:
            path = product["path"]
            url = links.click_url(send.pk, path) if path is not None else None
            cards.append({**product, "url": url})
    return cards


def render(send: Any, item: Due) -> None:
    """Render the email's subject, text and HTML into its row (kept for the outbox and for
    retries)."""
    compose(send, item)
    send.save(update_fields=["subject", "body_text", "body_html"])


def compose(
    send: Any,
    item: Due,
    *,
    products: dict[str, Any] | None = None,
    config: FlowConfig | None = None,
) -> None:
    """Fill in the email's subject, text and HTML, without saving them: the flow's templates,
    with staff's subject and opening words (Email flows in the admin) when they wrote any."""
    if products is None:
        products = _products(set(_keys(item)))
    if config is None:
        config = configs().get(send.flow) or FlowConfig(send.flow)
    cart_path = app_settings.EMAIL_CART_PATH or get_adapter().cart_path()
    cards = _cards(item.products, send, products)
    if item.products and not cards:
        raise ValueError("none of the email's products can be shown")
    send.one_click_url = one_click = links.unsubscribe_url(send.recipient_id)
    context = {
        **item.context,
        "flow": send.flow,
        "recipient": send.recipient,
        "products": cards,
        "companions": _cards(item.context.get("companion_keys") or [], send, products),
        "intro": config.message,
        # Signed when a template uses them (templates call callables), once each.
        "shop_url": functools.cache(lambda: links.click_url(send.pk, "/")),
        "cart_url": functools.cache(lambda: links.click_url(send.pk, cart_path or "/")),
        "unsubscribe_url": links.unsubscribe_url(send.recipient_id, send.flow),
        "unsubscribe_all_url": one_click,
        "open_pixel_url": links.open_url(send.pk) if app_settings.EMAIL_TRACK_OPENS else "",
    }
    base = f"personalization/email/{send.flow}"
    # In the shop's language (LANGUAGE_CODE), whatever the worker or the request has active.
    with translation.override(settings.LANGUAGE_CODE):
        if config.subject:
            first = cards[0]["name"] if cards else ""
            subject = config.subject.replace("{{ product }}", first).replace("{{product}}", first)
        else:
            subject = render_text(f"{base}_subject.txt", context)
        send.subject = one_line(subject)
        send.body_text = render_text(f"{base}.txt", context)
        send.body_html = render_to_string(f"{base}.html", context)


def render_text(name: str, context: dict[str, Any]) -> str:
    """A subject or plain-text template, without HTML escaping ("Salt & pepper" stays so)."""
    template = get_template(name)
    django_template = getattr(template, "template", None)
    if isinstance(django_template, Template):  # Django's engine: escaping off for text
        return django_template.render(Context(context, autoescape=False))
    return template.render(context)


class _OneLine:
    """A header the modern email policy writes on one line as it is (RFC 5322 allows 998
    characters). Folded by that policy, a long URL with no space to fold at becomes RFC 2047
    encoded words, and mail clients (Gmail among them) then ignore List-Unsubscribe."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def fold(self, *, policy: Any) -> str:
        return f"{self.name}: {self.value}{policy.linesep}"

    def __str__(self) -> str:
        return self.value


class PersonalizedEmail(EmailMultiAlternatives):
    """An email whose List-Unsubscribe header stays a plain URL whatever the policy the
    email backend serialises it with (Django 6.1 uses Python's modern email policies)."""

    def message(self, *args: Any, **kwargs: Any) -> Any:
        msg = super().message(*args, **kwargs)
        if isinstance(msg.policy, email.policy.EmailPolicy):
            # The generator writes these; no public way to keep a line.
            headers = msg._headers  # type: ignore[attr-defined]
            for index, (name, value) in enumerate(headers):
                if name.lower() == "list-unsubscribe":
                    headers[index] = (name, _OneLine(name, " ".join(str(value).split())))
        return msg


def message_for(send: Any) -> EmailMultiAlternatives:
    """The email as Django's email backends take it, with RFC 8058 one-click unsubscribe."""
    one_click = getattr(send, "one_click_url", None) or links.unsubscribe_url(send.recipient_id)
    message = PersonalizedEmail(
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
    return message


def open_connection() -> Any:
    """A connection of the shop's email backend (its default mailer on Django 6.1+)."""
    from django.core import mail

    mailers = getattr(mail, "mailers", None)
    if mailers is not None:
        return mailers.default
    return mail.get_connection()


def deliver(send: Any) -> bool:
    """Hand one rendered email to the email backend (see :func:`deliver_many`)."""
    return deliver_many([send]) == 1


def deliver_many(sends: Sequence[Any]) -> int:
    """Hand rendered emails to the email backend through one connection; a failure is kept
    for a retry with backoff, up to :data:`MAX_ATTEMPTS`. The number sent."""
    from ..models import EmailSend

    if not sends:
        return 0
    delivered: list[Any] = []
    try:
        backend = open_connection()
        backend.open()
    except Exception as exc:
        for send in sends:
            _failed(send, exc)
    else:
        try:
            for send in sends:
                try:
                    backend.send_messages([message_for(send)])
                except Exception as exc:
                    _failed(send, exc)
                else:
                    delivered.append(send.pk)
        finally:
            try:
                backend.close()
            except Exception:
                logger.warning("personalization: closing the email connection failed")
    now = timezone.now()
    # Not waiting for the disk (PostgreSQL): losing this in a crash of the database's machine
    # leaves the emails "being sent", which are never sent again.
    with without_waiting():
        EmailSend.objects.filter(pk__in=delivered).update(
            status=EmailSend.SENT, sent_at=now, error="", attempts=F("attempts") + 1
        )
    for send in sends:
        if send.pk in delivered:
            send.status, send.sent_at, send.error = EmailSend.SENT, now, ""
            send.attempts += 1
    return len(delivered)


def _failed(send: Any, exc: Exception) -> None:
    from ..models import EmailSend

    send.attempts += 1
    send.status = EmailSend.FAILED
    send.error = f"{type(exc).__name__}: {exc}"[:300]
    minutes = BACKOFF_MINUTES * 3 ** (send.attempts - 1)
    send.next_attempt_at = timezone.now() + dt.timedelta(minutes=minutes)
    send.save(update_fields=["status", "error", "attempts", "next_attempt_at"])
    logger.warning("personalization: could not send email %s: %s", send.pk, send.error)


def retry_failed(now: dt.datetime) -> int:
    """Send again the emails whose sending failed, once their backoff has passed."""
    from ..models import EmailSend

    retried = 0
    failed = EmailSend.objects.filter(
        status=EmailSend.FAILED, attempts__lt=MAX_ATTEMPTS, next_attempt_at__lte=now
    ).select_related("recipient")
    batch: list[Any] = []
    for send in failed.iterator(chunk_size=BATCH_SIZE):
        if not send.recipient.receives(send.flow):
            continue
        claimed = EmailSend.objects.filter(pk=send.pk, status=EmailSend.FAILED).update(
            status=EmailSend.PENDING
        )
        if claimed:  # not taken by another run meanwhile
            batch.append(send)
        if len(batch) >= BATCH_SIZE:
            retried += deliver_many(batch)
            batch = []
    return retried + deliver_many(batch)


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
        with translation.override(settings.LANGUAGE_CODE):  # the shop's, as in compose()
            send.subject = one_line(render_text(f"{base}_subject.txt", context))
            send.body_text = render_text(f"{base}.txt", context)
            send.body_html = render_to_string(f"{base}.html", context)
        send.save(update_fields=["subject", "body_text", "body_html"])
        sent += deliver(send)
    return sent


def one_line(subject: str) -> str:
    """A subject on one line: runs of spaces and line breaks become one space, a no-break
    space (French punctuation) stays; 200 characters at most."""
    return re.sub(r"[ \t\r\n]+", " ", subject).strip()[:200]
