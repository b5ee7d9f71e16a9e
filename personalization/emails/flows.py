"""What is due: each flow finds its recipients and triggers, and says what its email holds.

A flow yields :class:`Due` items; :mod:`personalization.emails.sending` claims each one (once
per recipient, flow and trigger), holds out the control group and sends the rest."""

from __future__ import annotations

import datetime as dt
import heapq
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from ..conf import app_settings

WELCOME = "welcome"
BROWSE_ABANDONMENT = "browse_abandonment"
CART_ABANDONMENT = "cart_abandonment"
POST_PURCHASE = "post_purchase"
WINBACK = "winback"
CAMPAIGN = "campaign"
FLOWS = (WELCOME, BROWSE_ABANDONMENT, CART_ABANDONMENT, POST_PURCHASE, WINBACK)
# A customer is lapsed when the last order is this many times their usual gap between orders
# old (and at least the winback delay).
LAPSE_FACTOR = 1.5
# Products named in a browse-abandonment email.
MAX_PRODUCTS = 3
# How far down each list companions are looked for: this many times the products wanted.
COMPANION_DEPTH = 8


@dataclass
class Due:
    """One email a flow wants sent: to ``recipient``, for ``trigger`` (unique in the flow)."""

    flow: str
    recipient: Any
    trigger: str
    products: list[Any] = field(default_factory=list)  # product keys, most relevant first
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlowConfig:
    """A flow as it runs now: the settings' delay overridden by staff's Email flows."""

    name: str
    delay: dt.timedelta | None = None  # None: switched off
    segment: Any = None  # a compiled segment the recipient's visitor must be in
    subject: str = ""
    message: str = ""


class _Nobody:
    """The condition of a segment whose rules cannot be read: it matches nobody."""

    def matches(self, context: Any) -> bool:
        return False


def configs() -> dict[str, FlowConfig]:
    """Every flow's settings now (one query): ``EMAIL_FLOWS`` gives the delays, and what
    staff set in Email flows (on or off, delay, segment, subject, words) comes first."""
    from ..conf import DEFAULTS
    from ..models import EmailFlow
    from ..targeting.definitions import compile_segment

    given = app_settings.EMAIL_FLOWS or {}
    rows = {row.name: row for row in EmailFlow.objects.select_related("segment")}
    result = {CAMPAIGN: FlowConfig(CAMPAIGN), "confirm": FlowConfig("confirm")}
    for name in FLOWS:
        minutes = given.get(name)
        row = rows.get(name)
        segment = None
        if row is not None:
            if row.delay_minutes is not None:
                minutes = row.delay_minutes
            if row.enabled is False:
                minutes = None
            elif row.enabled and minutes is None:  # on, with no delay anywhere: the default
                minutes = DEFAULTS["EMAIL_FLOWS"][name]
            if row.segment_id is not None:
                segment = compile_segment(row.segment) or _Nobody()
        result[name] = FlowConfig(
            name,
            delay=None if minutes is None else dt.timedelta(minutes=float(minutes)),
            segment=segment,
            subject=row.subject if row is not None else "",
            message=row.message if row is not None else "",
        )
    return result


def delay(flow: str, flows: dict[str, FlowConfig] | None = None) -> dt.timedelta | None:
    """The flow's delay, or None when it is switched off."""
    config = (flows or configs()).get(flow)
    return None if config is None else config.delay


# Recipients read at a time: the flows' memory does not grow with the audience.
CHUNK = 1000


def _recipients() -> Any:
    from ..models import EmailRecipient

    recipients = EmailRecipient.objects.filter(
        unsubscribed_at__isnull=True, suppressed_at__isnull=True
    )
    if app_settings.EMAIL_DOUBLE_OPT_IN:
        recipients = recipients.filter(confirmed_at__isnull=False)
    return recipients


def welcome(now: dt.datetime, flows: dict[str, FlowConfig] | None = None) -> Iterator[Due]:
    """The signup's coupon, once per address, ``delay`` after the signup."""
    from ..models import EmailSend

    wait = delay(WELCOME, flows)
    if wait is None:
        return
    since = now - dt.timedelta(days=float(app_settings.EMAIL_DUE_DAYS))
    done = Exists(EmailSend.objects.filter(recipient=OuterRef("pk"), flow=WELCOME))
    recipients = (
        _recipients().filter(consent_at__gte=since, consent_at__lte=now - wait).exclude(done)
    )
    for page in _pages(recipients):
        for recipient in page:
            if not recipient.receives(WELCOME):
                continue
            yield Due(WELCOME, recipient, "signup", context=welcome_context(recipient))


def welcome_context(recipient: Any) -> dict[str, Any]:
    """The welcome email's coupon and the referral link to share (the signup's, else the
    account's), with the offers for both friends."""
    from ..models import ReferralCode, Signup
    from . import links

    signup = Signup.objects.filter(email__iexact=recipient.email).select_related("coupon").first()
    code = None
    if signup is not None:
        code = ReferralCode.objects.filter(signup=signup).first()
    if code is None and recipient.user_id is not None:
        code = ReferralCode.objects.filter(user_id=recipient.user_id).first()
    return {
        "coupon": signup.coupon if signup is not None else None,
        "referral_url": links.absolute(f"/?ref={code.code}") if code is not None else "",
        "referral_welcome_percent": app_settings.REFERRAL_WELCOME_PERCENT,
        "referral_reward_percent": app_settings.REFERRAL_REWARD_PERCENT,
    }


def browse_abandonment(
    now: dt.datetime, flows: dict[str, FlowConfig] | None = None
) -> Iterator[Due]:
    """A visit with product views and no order: the products viewed most in it, ``delay``
    after the visit ended (``VISIT_TIMEOUT_MINUTES`` after its last view), once per visit."""
    from ..models import ProductInteraction

    yield from _visit_flow(now, BROWSE_ABANDONMENT, ProductInteraction.VIEW, flows or configs())


def cart_abandonment(now: dt.datetime, flows: dict[str, FlowConfig] | None = None) -> Iterator[Due]:
    """A visit that put products in the cart and placed no order: those products and what is
    bought with them, ``delay`` after the visit ended, once per visit."""
    from ..models import ProductInteraction

    yield from _visit_flow(
        now, CART_ABANDONMENT, ProductInteraction.CART, flows or configs(), with_companions=True
    )


def post_purchase(now: dt.datetime, flows: dict[str, FlowConfig] | None = None) -> Iterator[Due]:
    """``delay`` after an order: what is bought with what was bought, never what was just
    bought; once per order."""
    from ..models import Conversion, EmailSend

    wait = delay(POST_PURCHASE, flows)
    if wait is None:
        return
    since = now - wait - dt.timedelta(days=float(app_settings.EMAIL_DUE_DAYS))
    orders = Conversion.objects.filter(
        kind=Conversion.PURCHASE,
        visitor_id__in=_recipient_visitors(),
        created_at__gte=since,
        created_at__lte=now - wait,
    )
    visitor_ids = sorted(set(orders.values_list("visitor_id", flat=True)))
    for recipients in _by_visitor(POST_PURCHASE, visitor_ids):
        done = set(
            EmailSend.objects.filter(
                flow=POST_PURCHASE, recipient__in=list(recipients.values())
            ).values_list("recipient_id", "trigger")
        )
        for order in orders.filter(visitor_id__in=list(recipients)).order_by("created_at"):
            recipient = recipients[order.visitor_id]
            trigger = f"order:{order.order_id or order.pk}"[:100]
            if (recipient.pk, trigger) in done:
                continue
            bought = [str(item[0]) for item in order.items or [] if isinstance(item, list) and item]
            products = _companions(bought, exclude=set(bought), limit=MAX_PRODUCTS)
            if products:
                yield Due(POST_PURCHASE, recipient, trigger, products=products)


def winback(now: dt.datetime, flows: dict[str, FlowConfig] | None = None) -> Iterator[Due]:
    """Customers who stopped buying, by their own rhythm: the last order is
    :data:`LAPSE_FACTOR` times their median gap between orders old, and at least ``delay``
    (for a customer with one order, ``delay`` alone). Once per last order: what goes with
    what they bought, else the shop's bestsellers, never what they bought."""
    from ..models import Conversion

    wait = delay(WINBACK, flows)
    if wait is None:
        return
    # Customers whose last order is at least the delay old, and not yet won back since.
    last = dict(
        Conversion.objects.filter(kind=Conversion.PURCHASE, visitor_id__in=_recipient_visitors())
        .values("visitor_id")
        .annotate(last=Max("created_at"))
        .filter(last__lte=now - wait)
        .values_list("visitor_id", "last")
    )
    answered = _answered(WINBACK, last)
    visitor_ids = sorted(v for v in last if v not in answered)
    for recipients in _by_visitor(WINBACK, visitor_ids):
        orders: dict[str, list[Any]] = {}
        rows = Conversion.objects.filter(
            kind=Conversion.PURCHASE, visitor_id__in=list(recipients)
        ).values_list("visitor_id", "created_at", "order_id", "pk", "items")
        for visitor_id, at, order_id, pk, items in rows.order_by("created_at"):
            orders.setdefault(visitor_id, []).append((at, order_id or pk, items or []))
        for visitor_id, placed in orders.items():
            item = _lapsed(recipients[visitor_id], placed, wait, now)
            if item is not None:
                yield item


def _lapsed(recipient: Any, placed: list[Any], wait: dt.timedelta, now: dt.datetime) -> Due | None:
    from statistics import median

    from ..recommendations.store import SharedStore

    last_at, last_id, _ = placed[-1]
    gaps = [(b[0] - a[0]).total_seconds() for a, b in pairwise(placed)]
    lapse = max(wait, dt.timedelta(seconds=LAPSE_FACTOR * median(gaps)) if gaps else wait)
    due_days = dt.timedelta(days=float(app_settings.EMAIL_DUE_DAYS))
    if not last_at + lapse <= now <= last_at + lapse + due_days:
        return None
    trigger = f"lapsed-after:{last_id}"[:100]
    if _claimed(recipient, WINBACK, trigger):
        return None
    bought = {str(item[0]) for _, _, items in placed for item in items if isinstance(item, list)}
    products = _companions(sorted(bought), exclude=bought, limit=MAX_PRODUCTS)
    if len(products) < MAX_PRODUCTS:
        best = [p for p, _ in SharedStore().get("bestsellers") if p not in bought]
        products += [p for p in best if p not in products][: MAX_PRODUCTS - len(products)]
    return Due(WINBACK, recipient, trigger, products=products) if products else None


def campaigns(now: dt.datetime, flows: dict[str, FlowConfig] | None = None) -> Iterator[Due]:
    """Each campaign whose time has come, to the recipients of its segment who may receive
    it (a page at a time: memory does not grow with the audience), once each."""
    from ..models import EmailCampaign, EmailSend, Visitor
    from ..recommendations.store import SharedStore
    from ..targeting.definitions import compile_segment
    from ..targeting.membership import visitor_from_row
    from ..targeting.rules import RuleContext

    due_days = dt.timedelta(days=float(app_settings.EMAIL_DUE_DAYS))
    for campaign in EmailCampaign.objects.filter(
        send_at__lte=now, send_at__gte=now - due_days
    ).select_related("segment"):
        compiled = compile_segment(campaign.segment) if campaign.segment_id else None
        if campaign.segment_id and compiled is None:
            continue  # a segment without rules matches nobody
        trigger = f"campaign:{campaign.pk}"
        done = Exists(
            EmailSend.objects.filter(recipient=OuterRef("pk"), flow=CAMPAIGN, trigger=trigger)
        )
        moment = now.timestamp()
        bestsellers = [p for p, _ in SharedStore().get("bestsellers")]
        for page in _pages(_recipients().exclude(done), size=500):
            page = [r for r in page if r.receives(CAMPAIGN)]
            ids = [r.visitor_id for r in page if r.visitor_id]
            rows = {row.pk: row for row in Visitor.objects.filter(pk__in=ids)}
            for recipient in page:
                row = rows.get(recipient.visitor_id)
                recipient.visitor_row = row  # read once: the sending needs it too
                if compiled is not None and (
                    row is None
                    or not compiled.matches(RuleContext(visitor_from_row(row, moment), moment))
                ):
                    continue
                # The personalized block: what goes with what they looked at, else bestsellers.
                seen = [str(key) for key in (row.recently_viewed if row is not None else [])]
                lists = ("viewed_together", "bought_together")
                products = _companions(seen, exclude=set(seen), limit=MAX_PRODUCTS, lists=lists)
                if len(products) < MAX_PRODUCTS:
                    best = [p for p in bestsellers if p not in products]
                    products += best[: MAX_PRODUCTS - len(products)]
                context = {"campaign": campaign}
                yield Due(CAMPAIGN, recipient, trigger, products=products, context=context)


def _claimed(recipient: Any, flow: str, trigger: str) -> bool:
    from ..models import EmailSend

    return EmailSend.objects.filter(recipient=recipient, flow=flow, trigger=trigger).exists()


def _pages(recipients: Any, size: int = CHUNK) -> Iterator[list[Any]]:
    """``recipients`` a page at a time, by primary key (rows added or claimed meanwhile do
    not upset the walk, and no cursor stays open between pages)."""
    last = None
    while True:
        page = recipients.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        rows = list(page[:size])
        if not rows:
            return
        yield rows
        last = rows[-1].pk


def _by_visitor(flow: str, visitor_ids: list[str]) -> Iterator[dict[str, Any]]:
    """The recipients of ``visitor_ids`` who may get ``flow``, by visitor id, a chunk at a
    time."""
    for start in range(0, len(visitor_ids), CHUNK):
        rows = _recipients().filter(visitor_id__in=visitor_ids[start : start + CHUNK])
        chunk = {r.visitor_id: r for r in rows if r.receives(flow)}
        if chunk:
            yield chunk


def _recipient_visitors() -> Any:
    """The visitor ids of the addresses that may receive email (a subquery)."""
    return _recipients().filter(visitor__isnull=False).values("visitor_id")


def _answered(flow: str, last: dict[str, dt.datetime]) -> set[str]:
    """The visitors of ``last`` who got an email of ``flow`` at or after their time there:
    whatever that time stands for (a visit's last view, a last order) was answered."""
    from ..models import EmailSend

    answered: set[str] = set()
    visitor_ids = list(last)
    for start in range(0, len(visitor_ids), CHUNK):
        rows = (
            EmailSend.objects.filter(flow=flow, visitor_id__in=visitor_ids[start : start + CHUNK])
            .values("visitor_id")
            .annotate(latest=Max("created_at"))
            .values_list("visitor_id", "latest")
        )
        answered.update(v for v, latest in rows if latest >= last[v])
    return answered


def _companions(
    products: list[str],
    *,
    exclude: set[str],
    limit: int,
    lists: tuple[str, ...] = ("bought_together",),
) -> list[str]:
    """What goes with ``products`` in the recommender's ``lists``, best first."""
    from ..recommendations.store import SharedStore

    scores: dict[str, float] = {}
    store = SharedStore()
    depth = COMPANION_DEPTH * limit
    for name in lists:
        for ranked in store.get_many(name, products).values():
            for product, score in ranked[:depth]:  # each list's best: enough for ``limit``
                if product not in exclude:
                    scores[product] = scores.get(product, 0.0) + score
    return heapq.nlargest(limit, scores, key=scores.__getitem__)


def _visit_flow(
    now: dt.datetime,
    flow: str,
    kind: str,
    flows: dict[str, FlowConfig],
    *,
    with_companions: bool = False,
) -> Iterator[Due]:
    """The visits (of recipients) whose last ``kind`` interaction is ``delay`` past the end
    of the visit, with no order since the visit started: one email per visit, naming the
    products of that kind most often in it."""
    from ..models import ProductInteraction

    wait = delay(flow, flows)
    if wait is None:
        return
    timeout = dt.timedelta(seconds=app_settings.visit_timeout_seconds)
    since = now - dt.timedelta(days=float(app_settings.EMAIL_DUE_DAYS))
    carts_first = kind == ProductInteraction.VIEW and delay(CART_ABANDONMENT, flows) is not None
    # Recipients' visitors whose last such interaction ended a visit long enough ago, and
    # whose last email of the flow came before it (else that visit was answered).
    last = dict(
        ProductInteraction.objects.filter(
            kind=kind, created_at__gte=since, visitor_id__in=_recipient_visitors()
        )
        .values("visitor_id")
        .annotate(last=Max("created_at"))
        .filter(last__lte=now - timeout - wait)
        .values_list("visitor_id", "last")
    )
    answered = _answered(flow, last)
    visitor_ids = sorted(v for v in last if v not in answered)
    for recipients in _by_visitor(flow, visitor_ids):
        for visitor_id in sorted(recipients):
            item = _visit_email(recipients[visitor_id], flow, kind, since, timeout, carts_first)
            if item is not None:
                if with_companions:
                    exclude = set(item.context.pop("bought")) | set(item.products)
                    item.context["companion_keys"] = _companions(
                        item.products, exclude=exclude, limit=2
                    )
                else:
                    item.context.pop("bought")
                yield item


def _visit_email(
    recipient: Any,
    flow: str,
    kind: str,
    since: dt.datetime,
    timeout: dt.timedelta,
    carts_first: bool,
) -> Due | None:
    from ..models import Conversion, ProductInteraction

    visitor_id = recipient.visitor_id
    rows = list(
        ProductInteraction.objects.filter(visitor_id=visitor_id, kind=kind, created_at__gte=since)
        .order_by("-created_at")
        .values_list("product_id", "created_at")[:500]
    )
    if not rows:
        return None
    visit = _last_visit(rows, timeout)
    started = visit[-1][1]
    trigger = f"visit:{started.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S}"
    if _claimed(recipient, flow, trigger):
        return None
    purchases = Conversion.objects.filter(visitor_id=visitor_id, kind=Conversion.PURCHASE)
    if purchases.filter(created_at__gte=started).exists():
        return None
    if carts_first:
        carts = ProductInteraction.objects.filter(
            visitor_id=visitor_id, kind=ProductInteraction.CART, created_at__gte=started
        )
        if carts.exists():  # the cart's email speaks for this visit
            return None
    bought = {
        str(item[0])
        for items in purchases.values_list("items", flat=True)
        for item in (items or [])
        if isinstance(item, list | tuple) and item
    }
    counts = Counter(product for product, _ in visit if product not in bought)
    products = [product for product, _ in counts.most_common(MAX_PRODUCTS)]
    if not products:
        return None
    return Due(flow, recipient, trigger, products=products, context={"bought": sorted(bought)})


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
    flows = configs()
    yield from welcome(now, flows)
    yield from cart_abandonment(now, flows)  # before browsing: a visit with a cart gets it
    yield from browse_abandonment(now, flows)
    yield from post_purchase(now, flows)
    yield from winback(now, flows)
    yield from campaigns(now, flows)


def preview(flow: str, recipient: Any, now: dt.datetime | None = None) -> Due:
    """What ``flow`` would send ``recipient`` with what is known of them now, whatever the
    delays, the caps and the emails sent before (for staff's preview; nothing is claimed)."""
    from ..models import Conversion, ProductInteraction
    from ..recommendations.store import SharedStore

    visitor_id = recipient.visitor_id
    timeout = dt.timedelta(seconds=app_settings.visit_timeout_seconds)
    purchases = Conversion.objects.filter(visitor_id=visitor_id, kind=Conversion.PURCHASE)
    bought = {
        str(item[0])
        for items in purchases.values_list("items", flat=True)
        for item in (items or [])
        if isinstance(item, list | tuple) and item
    }
    products: list[Any] = []
    context: dict[str, Any] = {}
    if flow in (BROWSE_ABANDONMENT, CART_ABANDONMENT):
        kind = ProductInteraction.VIEW if flow == BROWSE_ABANDONMENT else ProductInteraction.CART
        rows = list(
            ProductInteraction.objects.filter(visitor_id=visitor_id, kind=kind)
            .order_by("-created_at")
            .values_list("product_id", "created_at")[:500]
        )
        if rows:
            counts = Counter(p for p, _ in _last_visit(rows, timeout) if p not in bought)
            products = [product for product, _ in counts.most_common(MAX_PRODUCTS)]
        if flow == CART_ABANDONMENT:
            context["companion_keys"] = _companions(
                products, exclude=bought | set(products), limit=2
            )
    elif flow in (POST_PURCHASE, WINBACK):
        last = purchases.order_by("-created_at").first()
        ordered = [str(i[0]) for i in (last.items or []) if isinstance(i, list)] if last else []
        basis = ordered if flow == POST_PURCHASE else sorted(bought)
        exclude = set(ordered) if flow == POST_PURCHASE else bought
        products = _companions(basis, exclude=exclude, limit=MAX_PRODUCTS)
        if flow == WINBACK and len(products) < MAX_PRODUCTS:
            best = [p for p, _ in SharedStore().get("bestsellers") if p not in exclude]
            products += [p for p in best if p not in products][: MAX_PRODUCTS - len(products)]
    elif flow == WELCOME:
        context = welcome_context(recipient)
    return Due(flow, recipient, "preview", products=products, context=context)
