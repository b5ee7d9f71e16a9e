"""Template tags: ``{% load personalization %}``.

Every tag degrades to default content and logs when personalization fails: a broken cache,
database or rule never takes a shop page down.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

logger = logging.getLogger("personalization")
register = template.Library()


def _request(context: Any) -> Any:
    return context.get("request")


@register.simple_tag(takes_context=True)
def personalized_banner(context: Any, placement: str) -> SafeString:
    """The best banner for this visitor in ``placement``, or the placement's default."""
    from .. import fragments
    from ..targeting.banners import render_banner

    try:
        if fragments.enabled():
            from ..targeting.definitions import ensure_placement

            ensure_placement(placement)  # staff find it in the admin, ready to edit
            return fragments.placeholder(
                fragments.BANNER, fragments.fallback_banner(placement), placement=placement
            )
        return render_banner(_request(context), placement)
    except Exception:
        logger.exception("personalization: banner %r failed; rendering nothing", placement)
        return mark_safe("")


@register.simple_tag(takes_context=True)
def signup_popup(context: Any) -> SafeString:
    """The email-for-coupon popup, only for the visitors it targets."""
    from .. import fragments
    from ..popup import popup_context

    request = _request(context)
    if fragments.enabled():
        return fragments.placeholder(fragments.POPUP)
    try:
        popup = popup_context(request)
    except Exception:
        logger.exception("personalization: the signup popup failed; rendering nothing")
        return mark_safe("")
    if popup is None:
        return mark_safe("")
    return mark_safe(render_to_string("personalization/popup.html", popup, request=request))


@register.simple_tag(takes_context=True)
def personalization_scripts(context: Any) -> SafeString:
    """The small script that reports clicks and popup actions."""
    from ..popup import scripts_context

    request = _request(context)
    try:
        return mark_safe(
            render_to_string(
                "personalization/scripts.html", scripts_context(request), request=request
            )
        )
    except Exception:
        logger.exception("personalization: the page script failed; rendering nothing")
        return mark_safe("")


class RecommendationsNode(template.Node):
    def __init__(self, placement: Any, options: dict[str, Any], target: str | None) -> None:
        self.placement = placement
        self.options = options
        self.target = target

    def render(self, context: Any) -> str:
        from .. import fragments
        from ..products import get_adapter
        from ..recommendations.serving import LimitError, Recommendations, parse_limit, recommend
        from ..targeting.definitions import ensure_placement

        request = _request(context)
        placement = str(self.placement.resolve(context))
        ensure_placement(placement)  # staff find it in the admin, ready to edit
        # Rendered markup may come from cached cards; a context variable always holds products.
        as_cards = False
        try:
            adapter = get_adapter()
            from_cards = getattr(adapter, "recommendations_from_cards", False)
            as_cards = not self.target and bool(from_cards)
            product = (
                self.options["product"].resolve(context) if "product" in self.options else None
            )
            category = (
                self.options["category"].resolve(context) if "category" in self.options else None
            )
            raw_limit = self.options["limit"].resolve(context) if "limit" in self.options else None
            try:
                limit = parse_limit(raw_limit)
            except LimitError:
                logger.warning(
                    "personalization: recommendations %r: bad limit %r", placement, raw_limit
                )
                limit = 0
            if fragments.enabled() and not self.target:
                return _placeholder(placement, product, category, limit, as_cards)
            result = (
                recommend(
                    request,
                    placement,
                    product=product,
                    category=category,
                    limit=limit,
                    as_cards=as_cards,
                )
                if limit and request is not None
                else Recommendations(placement=placement, strategy="", title="")
            )
        except Exception:
            logger.exception(
                "personalization: recommendations %r failed; rendering nothing", placement
            )
            result = Recommendations(placement=placement, strategy="", title="")
        if self.target:
            context[self.target] = result
            return ""
        if not result:
            return ""
        return _render_recommendations(result, request, as_cards)


def _placeholder(placement: str, product: Any, category: Any, limit: int, as_cards: bool) -> str:
    """``{% recommendations %}`` on a page cached for everyone: the control group's products,
    replaced by the visitor's own from the fragments endpoint."""
    from .. import fragments
    from ..products import get_adapter

    if not limit:
        return ""
    return fragments.placeholder(
        fragments.RECOMMENDATIONS,
        fragments.fallback_recommendations(placement, product, category, limit, as_cards),
        placement=placement,
        product=get_adapter().pk(product) if product is not None else None,
        category=category,
        limit=limit,
    )


def _render_recommendations(result: Any, request: Any, as_cards: bool = False) -> str:
    from ..products import get_adapter, links
    from ..recommendations import markup

    adapter = get_adapter()
    if as_cards:
        items = [
            {**card, "product": None, "pk": card["id"], "price": _decimal(card.get("price"))}
            for card in result.products
        ]
    else:
        items = [
            {
                "product": product,
                "pk": adapter.pk(product),
                "name": adapter.name(product),
                "url": url,
                "price": adapter.price(product),
                "image_url": image_url,
            }
            for product, (url, image_url) in zip(
                result.products, links(adapter, result.products), strict=True
            )
        ]
    names = [
        f"personalization/recommendations_{result.placement}.html",
        *filter(None, [getattr(adapter, "recommendations_template", None)]),
        "personalization/recommendations.html",
    ]
    return markup.render(names, result, items, request)


def _decimal(value: Any) -> Decimal | None:
    return Decimal(value) if value is not None else None


@register.tag("recommendations")
def recommendations_tag(parser: Any, token: Any) -> RecommendationsNode:
    """``{% recommendations "PLACEMENT" product=product category=key limit=4 [as name] %}``:
    the products recommended to this visitor in that placement (on that product's or
    category's page), rendered through ``personalization/recommendations.html`` (or
    ``recommendations_<placement>.html``), or, with ``as``, put into the context as a
    list-like object."""
    bits = token.split_contents()
    if len(bits) < 2:
        raise template.TemplateSyntaxError(f"{bits[0]} needs a placement.")
    target = None
    if len(bits) >= 4 and bits[-2] == "as":
        target = bits[-1]
        bits = bits[:-2]
    placement = parser.compile_filter(bits[1])
    options = template.base.token_kwargs(bits[2:], parser)
    if len(options) != len(bits[2:]) or set(options) - {"product", "category", "limit"}:
        raise template.TemplateSyntaxError(
            f"{bits[0]} takes product=…, category=… and limit=…, and optionally 'as name'."
        )
    return RecommendationsNode(placement, options, target)
