"""Middleware of the demo shop."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .demo import SESSION_KEY


class PretendIPMiddleware:
    """Let a demo visitor pretend to come from another country (DEBUG only).

    The footer's "Pretend to come from" form stores one of the demo GeoIP addresses in the
    session; this middleware then makes it the request's client address, so the
    personalization app's geolocation sees that country. It has to sit after
    SessionMiddleware and before ``personalization.middleware.VisitorMiddleware``.

    When ``settings.DEBUG`` is False it does nothing at all.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.DEBUG and not getattr(settings, "DEMO_PAGE_CACHE", False):
            session = getattr(request, "session", None)
            ip = session.get(SESSION_KEY) if session is not None else None
            if ip:
                request.META["REMOTE_ADDR"] = ip
                # Behind trusted proxies the client address is read from X-Forwarded-For,
                # N entries from the right: make every one of them the pretend address.
                hops = int(getattr(settings, "PERSONALIZATION", {}).get("TRUSTED_PROXY_COUNT") or 0)
                if hops > 0:
                    request.META["HTTP_X_FORWARDED_FOR"] = ", ".join([ip] * hops)
        return self.get_response(request)
