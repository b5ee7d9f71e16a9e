"""What is due: each flow finds its recipients and triggers, and says what its email holds.

A flow yields :class:`Due` items; :mod:`personalization.emails.sending` claims each one (once
per recipient, flow and trigger), holds out the control group and sends the rest."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max
from django.utils import timezone

from ..conf import app_settings

WELCOME = "welcome"
BROWSE_ABANDONMENT = "browse_abandonment"
FLOWS = (WELCOME, BROWSE_ABANDONMENT)
# Products named in a browse-abandonment email.
MAX_PRODUCTS = 3


@dataclass
class Due:
    """One email a flow wants sent: to ``recipient``, for ``trigger`` (unique in the flow)."""

    flow: str
    recipient: Any
    trigger: str
    products: list[Any] = field(default_factory=list)  # product keys, most relevant first
    context: dict[str, Any] = field(default_factory=dict)


def delay(flow: str) -> dt.timedelta | None:
    """The flow's delay, or None when the shop switched it off."""
    minutes = (app_settings.EMAIL_FLOWS or {}).get(flow)
    if minutes is None:
        return None
    return dt.timedelta(minutes=float(minutes))


def _recipients() -> Any:
    from ..models import EmailRecipient

    return EmailRecipient.objects.filter(unsubscribed_at__isnull=True, suppressed_at__isnull=True)


def welcome(now: dt.datetime) -> Iterator[Due]:
    """The signup's coupon, once per address, ``delay`` after the signup."""
    from ..models import EmailSend, Signup

    wait = delay(WELCOME)
    if wait is None:
        return
    since = now - dt.timedelta(days=float(app_settings.EMAIL_DUE_DAYS))
    done = EmailSend.objects.filter(flow=WELCOME).values("recipient_id")
    recipients = (
        _recipients()
        .filter(consent_at__gte=since, consent_at__lte=now - wait)
        .exclude(pk__in=done)
        .order_by("pk")
    )
    for recipient in recipients.iterator(chunk_size=500):
        if not recipient.receives(WELCOME):
            continue
        signup = (
            Signup.objects.filter(email__iexact=recipient.email).select_related("coupon").first()
        )
        context = {"coupon": signup.coupon if signup is not None else None}
        yield Due(WELCOME, recipient, "signup", context=context)


def browse_abandonment(now: dt.datetime) -> Iterator[Due]:
    """A visit with product views and no order: the products viewed most in it, ``delay``
    after the visit ended (``VISIT_TIMEOUT_MINUTES`` after its last view), once per visit."""
    from ..models import Conversion, EmailSend, ProductInteraction

    wait = delay(BROWSE_ABANDONMENT)
    if wait is None:
        return
    timeout = dt.timedelta(seconds=app_settings.visit_timeout_seconds)
    since = now - dt.timedelta(days=float(app_settings.EMAIL_DUE_DAYS))
    recipients = {
        r.visitor_id: r
        for r in _recipients().filter(visitor__isnull=False)
        if r.receives(BROWSE_ABANDONMENT)
    }
    if not recipients:
        return
    visits = (
        ProductInteraction.objects.filter(
            kind=ProductInteraction.VIEW, created_at__gte=since, visitor_id__in=list(recipients)
        )
        .values("visitor_id")
        .annotate(last=Max("created_at"))
        .filter(last__lte=now - timeout - wait)
        .order_by("visitor_id")
    )
    for row in visits:
        recipient = recipients[row["visitor_id"]]
        views = list(
            ProductInteraction.objects.filter(
                visitor_id=row["visitor_id"], kind=ProductInteraction.VIEW, created_at__gte=since
            )
            .order_by("-created_at")
            .values_list("product_id", "created_at")[:500]
        )
        visit = _last_visit(views, timeout)
        started = visit[-1][1]
        trigger = f"visit:{started.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S}"
        if EmailSend.objects.filter(
            recipient=recipient, flow=BROWSE_ABANDONMENT, trigger=trigger
        ).exists():
            continue
        orders = Conversion.objects.filter(
            visitor_id=row["visitor_id"], kind=Conversion.PURCHASE, created_at__gte=started
        )
        if orders.exists():
            continue
        bought = {
            str(item[0])
            for items in orders.model.objects.filter(
                visitor_id=row["visitor_id"], kind=Conversion.PURCHASE
            ).values_list("items", flat=True)
            for item in (items or [])
            if isinstance(item, list | tuple) and item
        }
        counts = Counter(product for product, _ in visit if product not in bought)
        products = [product for product, _ in counts.most_common(MAX_PRODUCTS)]
        if products:
            yield Due(BROWSE_ABANDONMENT, recipient, trigger, products=products)


def _last_visit(views: list[tuple[str, dt.datetime]], timeout: dt.timedelta) -> list[Any]:
    """The views of the last visit (newest first): back from the last view while the gaps
    between views stay under the visit timeout."""
    visit = [views[0]]
    for view in views[1:]:
        if visit[-1][1] - view[1] > timeout:
            break
        visit.append(view)
    return visit


def due(now: dt.datetime | None = None) -> Iterator[Due]:
    """Everything due now, flow by flow."""
    now = now or timezone.now()
    yield from welcome(now)
    yield from browse_abandonment(now)
