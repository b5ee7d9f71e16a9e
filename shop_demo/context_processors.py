"""Context shared by every page of the demo shop."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from .demo import SESSION_KEY, country_choices


def demo(request: HttpRequest) -> dict:
    """The footer's "pretend to come from" choices, in DEBUG only."""
    if getattr(settings, "DEMO_PAGE_CACHE", False):
        return {"demo_pretend_enabled": False, "page_cache": True}
    if not settings.DEBUG:
        return {"demo_pretend_enabled": False}
    session = getattr(request, "session", None)
    return {
        "demo_pretend_enabled": True,
        "demo_pretend_countries": country_choices(),
        "demo_pretend_ip": session.get(SESSION_KEY, "") if session is not None else "",
    }
