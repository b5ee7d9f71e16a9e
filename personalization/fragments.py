"""Personal fragments for pages cached whole (``PAGE_CACHE = True``).

A page that a cache, a reverse proxy or a CDN may serve to everyone must not depend on who
asks. With ``PAGE_CACHE`` on, ``{% personalized_banner %}``, ``{% recommendations %}``
(without ``as``) and ``{% signup_popup %}`` render a **placeholder** instead: the same for
every visitor, holding a server-rendered fallback (the placement's default banner, the
control group's products, no popup) and no exposure. The page script then asks
``GET personalization/fragments/`` once per page view for the personal versions of all of
them, and puts them in place. That request, never cached (``Cache-Control: private,
no-store``), is where the visit is profiled, as the page itself would be without a cache: the
page's address and its referrer come with it, so a campaign link, a referral code and a
product page's view count as before, and the exposures are written when the fragments are
shown, in the visitor's own group, never when the cached page was built.

A page that renders no placeholder and reads nothing of the visitor is left alone by
:class:`~personalization.middleware.VisitorMiddleware`: no cookie, no ``Vary: Cookie``, so
Django's cache middleware and shared caches keep it.
"""

from __future__ import annotations

import functools
import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from .conf import app_settings, cached_on_settings

logger = logging.getLogger("personalization")

URL_NAME = "personalization:fragments"
# At most this many fragments per request, and this long a description of each.
MAX_FRAGMENTS = 20
MAX_SPEC = 500
MAX_URL = 2000
BANNER, RECOMMENDATIONS, POPUP = "banner", "recommendations", "popup"


def enabled() -> bool:
    """Whether pages are rendered for a cache shared by visitors (the ``PAGE_CACHE`` setting)."""
    return bool(app_settings.PAGE_CACHE)


@cached_on_settings
@functools.lru_cache(maxsize=1)
def path() -> str | None:
    """The fragments endpoint's path; None when the shop did not route it."""
    try:
        return reverse(URL_NAME)
    except NoReverseMatch:
        return None


def is_fragment_request(request: HttpRequest) -> bool:
    url = path()
    return url is not None and request.path == url


def placeholder(kind: str, fallback: str = "", **options: Any) -> SafeString:
    """The markup a cached page holds where a personal fragment goes: ``fallback`` until the
    page script puts the visitor's own version in its place (or for good, without script)."""
    spec = urlencode({"kind": kind, **{k: v for k, v in options.items() if v not in (None, "")}})
    return format_html(
        '<div class="pzn-fragment" data-pzn-fragment="{}">{}</div>', spec, mark_safe(fallback)
    )


# The page a fragment request fills --------------------------------------------------------
class PageRequest:
    """The page a fragment request fills, as the profile sees it: the page's path, query
    string and referrer (sent by the page script); everything else is the fragment request's
    own (its cookie, address, headers)."""

    def __init__(self, request: HttpRequest, url: str, referrer: str) -> None:
        parts = urlsplit(url[:MAX_URL])
        self._request = request
        self.path = self.path_info = parts.path or "/"
        self.GET = QueryDict(parts.query)
        self.META = {**request.META, "PATH_INFO": self.path, "QUERY_STRING": parts.query}
        if referrer:
            self.META["HTTP_REFERER"] = referrer[:MAX_URL]
        else:
            self.META.pop("HTTP_REFERER", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def page_of(request: HttpRequest) -> Any:
    """The request to profile: for a fragment request the page it fills, else ``request``."""
    page = getattr(request, "_pzn_page", None)
    return page if page is not None else request


def attach_page(request: HttpRequest) -> None:
    """Before the middleware profiles a fragment request: remember the page it fills."""
    if not is_fragment_request(request):
        return
    try:
        url = str(request.GET.get("page") or "")
        referrer = str(request.GET.get("referrer") or "")
    except Exception:  # e.g. too many fields
        return
    if url:
        request._pzn_page = PageRequest(request, url, referrer)  # type: ignore[attr-defined]


def page_match(request: HttpRequest) -> Any:
    """The resolved view of the page a fragment request fills; None when it resolves to
    nothing (or is not a fragment request)."""
    page = getattr(request, "_pzn_page", None)
    if page is None:
        return None
    try:
        return resolve(page.path_info, getattr(request, "urlconf", None))
    except (Resolver404, ValueError):
        return None


# Rendering -------------------------------------------------------------------------------
def fallback_banner(slug: str) -> str:
    """The placement's default content, as everyone may see it: no exposure, no visitor."""
    from .targeting.banners import render_default

    try:
        return render_default(slug)
    except Exception:
        logger.exception("personalization: banner %r fallback failed; rendering nothing", slug)
        return ""


def fallback_recommendations(
    placement: str, product: Any, category: Any, limit: int, as_cards: bool
) -> str:
    """The control group's products for the placement (what a visitor sees without
    personalization), with no exposure and nothing read of the visitor."""
    from .recommendations import serving
    from .templatetags.personalization import _render_recommendations

    try:
        result = serving.fallback(
            placement, product=product, category=category, limit=limit, as_cards=as_cards
        )
        return _render_recommendations(result, None, as_cards) if result else ""
    except Exception:
        logger.exception("personalization: recommendations %r fallback failed", placement)
        return ""


def render(request: HttpRequest, spec: str) -> str:
    """The personal version of one placeholder (``spec`` is its ``data-pzn-fragment``), with
    its exposure queued; "" for anything unknown or failing (logged)."""
    from .targeting.definitions import current

    if len(spec) > MAX_SPEC:
        return ""
    options = QueryDict(spec)
    kind, placement = options.get("kind", ""), options.get("placement", "")[:100]
    try:
        if kind == POPUP:
            return _popup(request)
        # Only placements that exist: a request must not create one.
        if placement not in current().placements:
            return ""
        if kind == BANNER:
            from .targeting.banners import render_banner

            return str(render_banner(request, placement))
        if kind == RECOMMENDATIONS:
            return _recommendations(request, placement, options)
    except Exception:
        logger.exception("personalization: fragment %r failed; rendering nothing", spec)
    return ""


def _recommendations(request: HttpRequest, placement: str, options: QueryDict) -> str:
    from .products import get_adapter
    from .recommendations.serving import LimitError, parse_limit, recommend
    from .templatetags.personalization import _render_recommendations

    try:
        limit = parse_limit(options.get("limit"))
    except LimitError:
        return ""
    as_cards = bool(getattr(get_adapter(), "recommendations_from_cards", False))
    result = recommend(
        request,
        placement,
        product_key=(options.get("product") or "")[:100] or None,
        category=(options.get("category") or "")[:100] or None,
        limit=limit,
        as_cards=as_cards,
    )
    return _render_recommendations(result, request, as_cards) if result else ""


def _popup(request: HttpRequest) -> str:
    from .popup import popup_context

    popup = popup_context(request)
    if popup is None:
        return ""
    return render_to_string("personalization/popup.html", popup, request=request)


def _language(request: HttpRequest) -> str | None:
    """The page's language, when the shop offers it (``LANGUAGES``); else None."""
    try:
        lang = str(request.GET.get("lang") or "")[:20]
    except Exception:
        return None
    if not lang:
        return None
    try:
        return translation.get_supported_language_variant(lang)
    except LookupError:
        return None


@require_GET
def fragments_view(request: HttpRequest) -> HttpResponse:
    """``GET fragments/?page=…&referrer=…&lang=…&f=…&f=…``: the personal version of each
    placeholder ``f`` of the page, in order, in the page's language:
    ``{"fragments": ["<html>", …]}``. Never cached."""
    try:
        specs = request.GET.getlist("f")
    except Exception:
        specs = []
    if len(specs) > MAX_FRAGMENTS:
        response: HttpResponse = JsonResponse(
            {"detail": f"At most {MAX_FRAGMENTS} fragments per request."}, status=400
        )
    else:
        # In the page's language (its <html lang>), which a URL prefix may have chosen.
        with translation.override(_language(request) or translation.get_language()):
            response = JsonResponse({"fragments": [render(request, spec) for spec in specs]})
    response["Cache-Control"] = "private, no-store"
    return response
