"""Who may post to the API: the page-script endpoints take posts from the shop's own pages
only, told by the headers browsers set themselves (``Sec-Fetch-Site``, ``Origin``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import is_same_domain
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

# The bodies a page of any site can post without a CORS preflight (the "simple" requests).
SIMPLE_MEDIA_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def is_trusted_origin(request: HttpRequest, origin: str) -> bool:
    """The origin is this site's own (scheme, host and port) or one of
    ``CSRF_TRUSTED_ORIGINS`` (``https://*.example.com`` for its subdomains), as Django's CSRF
    check reads them."""
    if origin == f"{request.scheme}://{request.get_host()}":
        return True
    trusted = getattr(settings, "CSRF_TRUSTED_ORIGINS", [])
    if origin in trusted:
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    return any(
        is_same_domain(parsed.netloc, pattern.netloc.lstrip("*"))
        for pattern in map(urlsplit, (item for item in trusted if "*" in item))
        if pattern.scheme == parsed.scheme
    )


def same_origin(request: HttpRequest) -> bool | None:
    """True when the browser says the request comes from a page of this site, False when it
    says otherwise, None when it says nothing (not a browser, or a very old one).

    ``Sec-Fetch-Site`` is read first: a page cannot set it, and it stays right where a
    ``Referrer-Policy: no-referrer`` makes the browser send ``Origin: null``."""
    fetch_site = request.META.get("HTTP_SEC_FETCH_SITE", "")
    origin = request.META.get("HTTP_ORIGIN", "")
    if fetch_site == "same-origin":
        return True
    if fetch_site or origin:
        return bool(origin) and origin != "null" and is_trusted_origin(request, origin)
    return None


class SameOriginPost(BasePermission):
    """Posts from the shop's own pages (or ``CSRF_TRUSTED_ORIGINS``) only, for endpoints that
    take no CSRF token (a beacon cannot send one).

    A browser says where a post comes from; when it says nothing, a body that a page of
    another site could have posted without a CORS preflight (``text/plain``) is refused, and
    one it could not have (``application/json``) is let through."""

    message = _("Posts to this endpoint must come from the shop's own pages.")

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        verdict = same_origin(request._request)
        if verdict is None:
            return not _is_simple_and_read(request)
        return verdict


def _is_simple_and_read(request: Request) -> bool:
    """The body is of a type any page can post, and the view would read it (other bodies get
    a 415 from the view)."""
    media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    return media_type in SIMPLE_MEDIA_TYPES and (
        request.negotiator.select_parser(request, request.parsers) is not None  # type: ignore[union-attr, arg-type]
    )
