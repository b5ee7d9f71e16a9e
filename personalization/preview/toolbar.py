"""The preview toolbar on the previewed pages, and what the middleware does with a previewing
request's response: never cached, never recorded, the toolbar added before ``</body>``."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.translation import gettext as _

from . import state
from .visitor import PreviewVisitor

logger = logging.getLogger("personalization")

#: Set on a request whose page rendered the toolbar itself ({% personalization_preview_toolbar %}).
RENDERED = "_personalization_preview_toolbar"
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


def preview_url(**query: str) -> str:
    """The preview page's URL with ``query``; "" when the shop has not routed it."""
    try:
        url = reverse("personalization:preview")
    except NoReverseMatch:
        return ""
    return f"{url}?{urlencode(query)}" if query else url


def toolbar_context(request: HttpRequest) -> dict[str, Any] | None:
    """What the toolbar shows: one line per override, and where to change or leave the
    preview; None when the request is no preview."""
    visitor = getattr(request, "visitor", None)
    if not isinstance(visitor, PreviewVisitor):
        return None
    preview = visitor.preview
    here = request.get_full_path()
    items = []
    if preview.segment:
        from ..models import Segment

        name = Segment.objects.filter(slug=preview.segment).values_list("name", flat=True).first()
        items.append((_("Segment"), f"{name} ({preview.segment})" if name else preview.segment))
    if preview.country:
        items.append((_("Country"), preview.country))
    if preview.visit:
        items.append(
            (_("Visit"), _("first visit") if preview.visit == "first" else _("returning visitor"))
        )
    if preview.group:
        items.append(
            (_("Group"), _("control") if preview.group == "control" else _("personalized"))
        )
    if preview.banner is not None:
        banner = visitor.forced_banner_row
        if banner is None:
            label = _("#%(id)s (deleted)") % {"id": preview.banner}
        else:
            label = f"{banner.name} ({banner.placement.slug})"
        items.append((_("Banner"), label))
    if preview.strategy:
        items.append((_("Recommendations"), preview.strategy))
    return {
        "items": items,
        "change_url": preview_url(**preview.as_query(), next=here),
        "leave_url": preview_url(preview="off", next=here),
    }


def render_toolbar(request: HttpRequest) -> str:
    """The toolbar's markup, once per page ("" when the request is no preview)."""
    if request.__dict__.get(RENDERED):
        return ""
    context = toolbar_context(request)
    if context is None:
        return ""
    request.__dict__[RENDERED] = True
    return render_to_string("personalization/preview_toolbar.html", context, request=request)


def handle_response(request: HttpRequest, response: HttpResponseBase) -> bool:
    """For the middleware: True when the request is a preview, whose response is then ready
    (kept out of every cache, the toolbar added to a page) and must be left alone: nothing of
    it is recorded or saved. A refused preview cookie is deleted. Never raises."""
    if not isinstance(getattr(request, "visitor", None), PreviewVisitor):
        if request.__dict__.get(state.REFUSED):
            state.delete(response)
        return False
    try:
        add_never_cache_headers(response)
        patch_vary_headers(response, ("Cookie",))
        _add_toolbar(request, response)
    except Exception:
        logger.exception("personalization: could not add the preview toolbar")
    return True


def _add_toolbar(request: HttpRequest, response: HttpResponseBase) -> None:
    """The toolbar before the page's last ``</body>``: an HTML page of the full content (not
    streamed, not compressed) whose template did not render it already."""
    if (
        request.__dict__.get(RENDERED)
        or not isinstance(response, HttpResponse)  # streamed: never held whole
        or not response.get("Content-Type", "").startswith("text/html")
        or response.has_header("Content-Encoding")
    ):
        return
    content = response.content
    ends = list(_BODY_END.finditer(content))
    if not ends:
        return
    markup = render_toolbar(request).encode(response.charset)
    at = ends[-1].start()
    response.content = content[:at] + markup + content[at:]
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
