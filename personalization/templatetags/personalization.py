"""Template tags: ``{% load personalization %}``.

Every tag degrades to default content and logs when personalization fails: a broken cache,
database or rule never takes a shop page down.
"""

from __future__ import annotations

import logging
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
    from ..targeting.banners import render_banner

    try:
        return render_banner(_request(context), placement)
    except Exception:
        logger.exception("personalization: banner %r failed; rendering nothing", placement)
        return mark_safe("")


@register.simple_tag(takes_context=True)
def signup_popup(context: Any) -> SafeString:
    """The email-for-coupon popup, only for the visitors it targets."""
    from ..popup import popup_context

    request = _request(context)
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
