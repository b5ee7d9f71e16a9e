"""Serving recommendations: a placement's strategy, the visitor's context, the stored lists.

``recommend(request, placement, product=..., limit=...)`` is what the template tag and the API
call. It never fits and never raises: a strategy that fails falls back to the control group's
default (and the error is logged). Whatever the strategy, a list it leaves short is filled
with available products read from the catalogue and the orders (:mod:`.coldstart`), so a new
shop shows full lists from its first request, and the first fit is asked for by itself.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings, cached_on_settings
from ..models import Exposure
from ..products import cards as product_cards
from ..products import get_adapter
from ..products import instances as product_instances
from ..profiling.visitor import VisitorProfile
from . import coldstart
from . import strategies as builtin
from .base import MAX_SESSION, REBUY_AFTER, Context, Strategy
from .merchandising import Rules, card_facts, product_facts
from .store import SharedStore

logger = logging.getLogger("personalization")

OVERFETCH = 2  # candidates per slot, so unavailable products can be skipped
# Products loaded beyond the limit at first; the other candidates only when these fall short.
SPARE = 2
# Candidates per slot when the placement's rules leave some out (a category, low stock).
FILTERED_OVERFETCH = 4
TITLES = {
    "auto": _("Recommended for you"),
    "recently_viewed": _("Recently viewed"),
    "viewed_together": _("Customers who viewed this also viewed"),
    "bought_together": _("Frequently bought together"),
    "trending": _("Trending now"),
    "popular_near_you": _("Popular near you"),
    "buy_again": _("Buy again"),
    "bestsellers": _("Best sellers"),
}


class LimitError(ValueError):
    """A ``limit`` that is not a whole number from 1 to RECOMMENDATION_MAX_LIMIT."""


@dataclass
class Recommendations:
    """What a placement shows: products (the shop's objects), in order."""

    placement: str
    strategy: str
    title: str
    products: list[Any] = field(default_factory=list)
    exposure_id: str | None = None
    is_control: bool = False

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.products)

    def __len__(self) -> int:
        return len(self.products)

    def __bool__(self) -> bool:
        return bool(self.products)


@cached_on_settings
@functools.lru_cache(maxsize=1)
def strategies() -> dict[str, Strategy]:
    """Every strategy by name: the built-in ones and RECOMMENDATION_STRATEGIES' classes."""
    found: dict[str, Strategy] = {name: cls() for name, cls in builtin.BUILTIN_STRATEGIES.items()}
    for path in app_settings.RECOMMENDATION_STRATEGIES or []:
        strategy = import_string(path)()
        found[strategy.name] = strategy
    return found


def parse_limit(value: Any, default: int = 4) -> int:
    """A limit from a template or a query string; LimitError says what is wrong."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise LimitError("limit must be a whole number.")
    try:
        limit = int(str(value).strip())
    except (TypeError, ValueError):
        raise LimitError("limit must be a whole number.") from None
    maximum = int(app_settings.RECOMMENDATION_MAX_LIMIT)
    if not 1 <= limit <= maximum:
        raise LimitError(f"limit must be between 1 and {maximum}.")
    return limit


def _compiled(placement: str) -> Any:
    """The placement's compiled definition; None when unknown or unavailable (logged)."""
    from ..targeting import definitions

    try:
        return definitions.current().placements.get(placement)
    except Exception:
        logger.exception("personalization: placements unavailable; using the defaults")
        return None


def merchandising_for(placement: str) -> Rules | None:
    """The placement's merchandising rules (:mod:`.merchandising`); None without any."""
    compiled = _compiled(placement)
    return getattr(compiled, "merchandising", None) if compiled is not None else None


def strategy_name_for(placement: str, visitor: VisitorProfile | None) -> tuple[str, str, bool]:
    """(strategy name, heading, is_control) for this placement and visitor."""
    compiled = _compiled(placement)
    is_control = bool(visitor is not None and visitor.is_tracked and visitor.in_control_group)
    if is_control:
        name = str(app_settings.RECOMMENDATION_CONTROL_STRATEGY)
    else:
        name = (compiled.strategy if compiled else "") or str(
            app_settings.RECOMMENDATION_DEFAULT_STRATEGY
        )
    heading = compiled.recommendation_title if compiled and compiled.recommendation_title else ""
    return name, heading, is_control


def context_for(
    request: HttpRequest, product_key: str | None, category: str | None = None
) -> Context:
    """What serving knows about the visitor: views, purchases, cart, country, interests (the
    page's ``category`` first)."""
    visitor = getattr(request, "visitor", None)
    context = Context(now=timezone.now(), product=product_key)
    first_visit = True
    try:
        context.cart = [str(key) for key in get_adapter().cart_product_keys(request)]
    except Exception:
        logger.exception("personalization: the adapter could not read the cart")
    if isinstance(visitor, VisitorProfile) and visitor.is_tracked:
        context.viewed = [str(key) for key in visitor.recently_viewed]
        context.session = visitor.session_views[:MAX_SESSION]
        context.campaign = str(visitor.referrer.campaign or "")
        first_visit = visitor.visit_count <= 1
        context.purchased = [str(key) for key in visitor.purchased]
        context.categories = visitor.top_categories
        context.country = visitor.geo.country_code or ""
        context.purchased_at = _just_ordered(visitor)
    if category:
        context.categories = [category, *(key for key in context.categories if key != category)]
    if context.categories and first_visit:
        # A first visit: the page's category, else the one their first views showed.
        context.landing_category = context.categories[0]
    return context


def _just_ordered(visitor: VisitorProfile) -> dict[str, Any]:
    """The products of an order placed within REBUY_AFTER, with its time (one query, only
    then): the blend offers what goes with them rather than the same again."""
    from ..models import Conversion

    last = visitor._data.last_order_at
    if last is None or time.time() - last > REBUY_AFTER.total_seconds():
        return {}
    row = (
        Conversion.objects.filter(visitor_id=visitor.id, kind=Conversion.PURCHASE)
        .order_by("-created_at")
        .values_list("items", "created_at")
        .first()
    )
    if row is None:
        return {}
    items, at = row
    return {str(line[0]): at for line in items or [] if isinstance(line, list | tuple) and line}


def recommend(
    request: HttpRequest,
    placement: str,
    *,
    product: Any = None,
    product_key: str | None = None,
    category: str | None = None,
    limit: int = 4,
    as_cards: bool = False,
) -> Recommendations:
    """The recommendations for this visitor in ``placement`` (on the page of ``product``, or
    of the product whose primary key is ``product_key``, or of the category keyed
    ``category``), with one exposure logged. ``as_cards`` gives cached product cards
    (:func:`~personalization.products.cards`) instead of model instances: no SQL when warm.
    The placement's merchandising rules apply to both groups (:mod:`.merchandising`).

    The exposure is logged whenever the placement is reached, in the visitor's group, also
    when nothing is shown (its ``items`` are then empty): control and personalized visitors
    are counted under the same condition, whichever strategy finds products."""
    visitor = getattr(request, "visitor", None)
    visitor = visitor if isinstance(visitor, VisitorProfile) else None
    adapter = get_adapter()
    is_control = bool(visitor is not None and visitor.is_tracked and visitor.in_control_group)
    try:
        name, heading, is_control = strategy_name_for(placement, visitor)
        rules = merchandising_for(placement)
        if product is not None:
            product_key = str(adapter.pk(product))
        context = context_for(request, product_key, str(category) if category else None)
    except Exception:
        logger.exception("personalization: could not prepare recommendations for %r", placement)
        result = Recommendations(placement=placement, strategy="", title="", is_control=is_control)
        _log_exposure(request, result, [])
        return result
    keys, name = _candidates(name, context, limit, rules)
    load = _cards if as_cards else _products
    products = load(keys, limit, rules, context.excluded())
    result = Recommendations(
        placement=placement,
        strategy=name,
        title=str(heading or TITLES.get(name, "") or ""),
        products=products,
        is_control=is_control,
    )
    _log_exposure(
        request,
        result,
        [item["id"] if as_cards else adapter.pk(item) for item in products],  # type: ignore[arg-type]
    )
    return result


def fallback(
    placement: str,
    *,
    product: Any = None,
    category: str | None = None,
    limit: int = 4,
    as_cards: bool = False,
) -> Recommendations:
    """What the placement shows a visitor without personalization (the control strategy's
    products, on the page of ``product`` or of ``category``), read from nothing of the
    visitor and with no exposure: a page cached for everyone holds it until the visitor's own
    list replaces it (:mod:`personalization.fragments`)."""
    name = str(app_settings.RECOMMENDATION_CONTROL_STRATEGY)
    compiled = _compiled(placement)
    heading = compiled.recommendation_title if compiled and compiled.recommendation_title else ""
    rules = merchandising_for(placement)
    product_key = str(get_adapter().pk(product)) if product is not None else None
    context = Context(now=timezone.now(), product=product_key)
    if category:
        context.categories = [str(category)]
    keys, name = _candidates(name, context, limit, rules)
    load = _cards if as_cards else _products
    return Recommendations(
        placement=placement,
        strategy=name,
        title=str(heading or TITLES.get(name, "") or ""),
        products=load(keys, limit, rules, context.excluded()),
    )


def _log_exposure(request: HttpRequest, result: Recommendations, items: list[Any]) -> None:
    from ..tracking import record_exposure

    result.exposure_id = record_exposure(
        request,
        placement=result.placement,
        kind=Exposure.RECOMMENDATION,
        content=f"strategy:{result.strategy}",
        label=result.title,
        items=items,
        is_control=result.is_control,
    )


def _cards(
    keys: list[str], limit: int, rules: Rules | None = None, blocked: set[str] | None = None
) -> list[dict[str, Any]]:
    """Cached cards of the available products among ``keys``, in order; with ``rules``,
    the cards of what they arrange (the pinned products' cards are read with the others)."""
    try:
        found = product_cards([*keys, *rules.pinned] if rules else keys)
    except Exception:
        logger.exception("personalization: could not load recommended products")
        return []
    if rules is not None:
        try:
            facts = {key: card_facts(card) for key, card in found.items()}
            return [found[key] for key in rules.arrange(keys, facts, limit, blocked or set())]
        except Exception:
            logger.exception("personalization: merchandising rules failed; not applied")
    return [found[key] for key in keys if key in found and found[key]["available"]][:limit]


def _candidates(
    name: str, context: Context, limit: int, rules: Rules | None = None
) -> tuple[list[str], str]:
    """Product keys to show ``limit`` of, best first: the strategy's, then the fill (which
    leaves out what the strategy must: the page's product, the cart, what was just bought,
    and what the placement's rules exclude or pin). Asks for a fit when the lists need one."""
    coldstart.request_fit_if_due()
    overfetch = OVERFETCH
    if rules is not None:
        left_out = rules.left_out()
        if rules.exclude_viewed:
            left_out |= {*context.viewed, *context.session}
        context = dataclasses.replace(context, exclude=context.exclude | left_out)
        if rules.filters:
            overfetch = FILTERED_OVERFETCH
    keys, name = _ranked(name, context, limit * overfetch)
    blocked = context.excluded()
    seen = set(keys)
    extra = []
    for key in coldstart.fill():
        if key not in blocked and key not in seen:
            extra.append(key)
            if len(extra) >= limit * overfetch:
                break
    return [*keys, *extra], name


def _ranked(name: str, context: Context, limit: int) -> tuple[list[str], str]:
    """Product keys from the strategy; on any failure from the control default instead."""
    store = SharedStore()
    fallback = str(app_settings.RECOMMENDATION_CONTROL_STRATEGY)
    for attempt in dict.fromkeys([name, fallback]):
        strategy = strategies().get(attempt)
        if strategy is None:
            logger.error("personalization: unknown recommendation strategy %r", attempt)
            continue
        try:
            return builtin.recommend(strategy, context, store, limit), attempt
        except Exception:
            logger.exception("personalization: recommendation strategy %r failed", attempt)
    return [], name


def _products(
    keys: list[str], limit: int, rules: Rules | None = None, blocked: set[str] | None = None
) -> list[Any]:
    """The shop's products for these keys, in order, skipping unknown and unavailable ones;
    with ``rules``, what they arrange (every candidate and the pinned products are loaded:
    a boost may lift any of them). At most two queries: without rules, the first
    ``limit + SPARE`` candidates, then the rest only when those leave the list short."""
    if rules is not None:
        found = _load_products([*keys, *rules.pinned])
        if found is None:
            return []
        try:
            adapter = get_adapter()
            facts = {key: product_facts(adapter, item, rules) for key, item in found.items()}
            return [found[key] for key in rules.arrange(keys, facts, limit, blocked or set())]
        except Exception:
            logger.exception("personalization: merchandising rules failed; not applied")
        return _available(keys, found, limit)
    chosen: list[Any] = []
    first = limit + SPARE
    for batch in (keys[:first], keys[first:]):
        found = _load_products(batch) if batch else {}
        if found is None:
            break
        chosen.extend(_available(batch, found, limit - len(chosen)))
        if len(chosen) >= limit:
            break
    return chosen


def _load_products(keys: list[str]) -> dict[str, Any] | None:
    """The shop's products for ``keys`` by key (one query; none without keys); None when the
    query fails (logged)."""
    if not keys:
        return {}
    try:
        return product_instances(keys)
    except Exception:
        logger.exception("personalization: could not load recommended products")
        return None


def _available(keys: list[str], found: Mapping[str, Any], limit: int) -> list[Any]:
    """The first ``limit`` available products of ``found``, in the order of ``keys``."""
    adapter = get_adapter()
    chosen: list[Any] = []
    for key in keys:
        if len(chosen) >= limit:
            break
        item = found.get(key)
        if item is not None and adapter.is_available(item):
            chosen.append(item)
    return chosen


def recommend_for_visitor(visitor_id: str, placement: str = "email", *, limit: int = 4) -> Any:
    """Recommendations for a visitor outside a request — an email, a push message — from the
    visitor's stored row: views, category interests, country, purchases and group. One
    exposure is written at once (the message is rendered to be sent), in the visitor's group,
    also when no product is found. Returns :class:`Recommendations`; empty, with no exposure,
    for an unknown visitor."""
    from ..models import ProductInteraction, Visitor

    row = Visitor.objects.filter(pk=visitor_id).first()
    if row is None:
        return Recommendations(placement=placement, strategy="", title="")
    rules = None
    try:
        name, heading, _ = strategy_name_for(placement, None)
        rules = merchandising_for(placement)
        if row.in_control_group:
            name = str(app_settings.RECOMMENDATION_CONTROL_STRATEGY)
        purchased = (
            ProductInteraction.objects.filter(
                visitor_id=visitor_id, kind=ProductInteraction.PURCHASE
            )
            .order_by("-created_at")
            .values_list("product_id", flat=True)[:200]
        )
        interests = row.category_interest if isinstance(row.category_interest, dict) else {}
        context = Context(
            now=timezone.now(),
            viewed=[str(key) for key in row.recently_viewed or []],
            purchased=list(dict.fromkeys(purchased)),
            country=row.country_code or "",
            categories=sorted(interests, key=lambda key: -float(interests[key][0])),
            campaign=row.latest_campaign or row.first_campaign or "",
        )
    except Exception:
        logger.exception("personalization: could not prepare recommendations for %r", visitor_id)
        result = Recommendations(
            placement=placement, strategy="", title="", is_control=row.in_control_group
        )
    else:
        keys, name = _candidates(name, context, limit, rules)
        result = Recommendations(
            placement=placement,
            strategy=name,
            title=str(heading or TITLES.get(name, "") or ""),
            products=_products(keys, limit, rules, context.excluded()),
            is_control=row.in_control_group,
        )
    adapter = get_adapter()
    exposure = Exposure.objects.create(
        visitor_id=visitor_id,
        placement=placement[:100],
        kind=Exposure.RECOMMENDATION,
        content=f"strategy:{result.strategy}",
        content_label=result.title[:200],
        items=[str(adapter.pk(item)) for item in result.products],
        is_control=row.in_control_group,
    )
    result.exposure_id = str(exposure.pk)
    return result
