"""Project-level views of the demo shop."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .demo import COUNTRY_NAMES, SESSION_KEY, demo_ips

# C0 and C1 control characters and DEL: never in a search or an order number, and a NUL byte
# is refused by PostgreSQL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def without_control_characters(text: str) -> str:
    """The text with its control characters removed (what a visitor meant to type)."""
    return CONTROL_CHARACTERS.sub("", text)


def has_control_characters(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None


def safe_next_url(request: HttpRequest, fallback: str = "/") -> str:
    """The ``next`` field or the referer, if it points back at this site."""
    for candidate in (request.POST.get("next"), request.META.get("HTTP_REFERER")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return fallback


@require_POST
def pretend_country(request: HttpRequest) -> HttpResponse:
    """Store (or clear) the pretend client address used by PretendIPMiddleware."""
    if not settings.DEBUG:
        raise Http404("Only available in DEBUG mode.")
    country = request.POST.get("country", "")
    ips = demo_ips()
    if country in ips:
        request.session[SESSION_KEY] = ips[country]
        name = COUNTRY_NAMES.get(country, country)
        messages.info(request, f"You now browse as a visitor from {name} ({ips[country]}).")
    else:
        request.session.pop(SESSION_KEY, None)
        messages.info(request, "You now browse from your real address.")
    return HttpResponseRedirect(safe_next_url(request))
