"""``{% load personalization_preview %}``: the staff preview toolbar where a template wants it.

Without the tag the middleware adds the toolbar before ``</body>`` of every previewed page.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

logger = logging.getLogger("personalization")
register = template.Library()


@register.simple_tag(takes_context=True)
def personalization_preview_toolbar(context: Any) -> SafeString:
    """The preview toolbar while staff preview the site; nothing for anyone else."""
    from ..preview.toolbar import render_toolbar

    request = context.get("request")
    if request is None:
        return mark_safe("")
    try:
        return mark_safe(render_toolbar(request))
    except Exception:
        logger.exception("personalization: the preview toolbar failed; rendering nothing")
        return mark_safe("")
