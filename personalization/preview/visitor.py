"""The visitor a previewing staff member is: their own profile, as it is stored, seen through
the preview's overrides, and never saved.

The overrides act where the app reads the profile: the segments (exactly the one previewed),
the country (``geo``), the visit count (first visit: 1; returning: at least 2), the group
(``control_group``), the banner a placement shows, and the strategy of every placement's
recommendations (through :data:`personalization.targeting.definitions.OVERLAY`, set for the
request by the middleware).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest

from ..profiling import storage
from ..profiling.geo import Geo
from ..profiling.referrer import classify_request
from ..profiling.visitor import ProfileData, VisitorProfile, new_visitor_id
from . import state

logger = logging.getLogger("personalization")

_NOT_READ = object()


class PreviewVisitor(VisitorProfile):
    """``request.visitor`` while staff preview the site; nothing of it is recorded or saved."""

    is_preview = True

    def __init__(
        self, data: ProfileData, *, request: HttpRequest, now: float, preview: state.Preview
    ) -> None:
        super().__init__(data, request=request, now=now)
        self.preview = preview
        self._banner: Any = _NOT_READ
        self._overlay: tuple[Any, Any] = (None, None)  # (shared definitions, as seen)

    @property
    def segments(self) -> frozenset[str]:
        if self.preview.segment:
            self.accessed = True
            return frozenset({self.preview.segment})
        return super().segments

    def _lookup_geo(self) -> Geo:
        if self.preview.country:
            return Geo(country_code=self.preview.country)
        return super()._lookup_geo()

    @property
    def forced_banner_row(self) -> Any:
        """The Banner the preview forces (with its placement), or None; read once."""
        if self._banner is _NOT_READ:
            self._banner = None
            if self.preview.banner is not None:
                from ..models import Banner

                self._banner = (
                    Banner.objects.select_related("placement")
                    .prefetch_related("segments")
                    .filter(pk=self.preview.banner)
                    .first()
                )
        return self._banner

    def forced_banner(self, placement: str) -> Any:
        """The content of the forced banner when it belongs to ``placement``, else None: it is
        shown whatever its segments, dates, active flag and the visitor's group."""
        banner = self.forced_banner_row
        if banner is None or banner.placement.slug != placement:
            return None
        return banner_content(banner)

    def definitions(self, shared: Any) -> Any:
        """The targeting definitions as this preview sees them: every placement's strategy is
        the forced one (made once per request and version)."""
        strategy = self.preview.strategy
        if not strategy:
            return shared
        if self._overlay[0] is not shared:
            placements = {
                slug: dataclasses.replace(placement, strategy=strategy)
                for slug, placement in shared.placements.items()
            }
            self._overlay = (shared, dataclasses.replace(shared, placements=placements))
        return self._overlay[1]


def banner_content(banner: Any) -> Any:
    """A Banner row as a placement renders it (what compiling the definitions makes of it)."""
    from ..targeting.definitions import banner_content as compiled

    return compiled(banner, frozenset(segment.slug for segment in banner.segments.all()))


def visitor_for(request: HttpRequest, now: float) -> PreviewVisitor | None:
    """The previewing visitor of this request, or None when it is no preview (no cookie, or
    one that fails a check: see :mod:`.state`). Never raises."""
    if state.COOKIE_NAME not in request.COOKIES:
        return None  # every request but a previewing staff member's
    try:
        preview = state.read(request)
        if preview is None:
            return None
        return PreviewVisitor(
            previewed(_profile(request, now), preview), request=request, now=now, preview=preview
        )
    except Exception:
        logger.exception("personalization: could not start the preview; showing the site as is")
        request.__dict__[state.REFUSED] = True
        return None


def _profile(request: HttpRequest, now: float) -> ProfileData:
    """A copy of the staff member's stored profile, read without counting a visit or writing
    anything; a new profile when there is none."""
    cookie = storage.read_visitor_cookie(request)
    if cookie is not None:
        loaded = storage.load_stored(cookie.id)
        if loaded is not None:
            return loaded.data.copy()
    visitor_id = cookie.id if cookie is not None else "preview-" + new_visitor_id()
    return ProfileData.new(visitor_id, now, classify_request(request))


def previewed(data: ProfileData, preview: state.Preview) -> ProfileData:
    """``data`` with the preview's visit and group."""
    if preview.visit == "first":
        data.visit_count = 1
    elif preview.visit == "returning":
        data.visit_count = max(2, data.visit_count)
    if preview.group:
        data.control_group = preview.group == "control"
    return data


def overlay(request: HttpRequest) -> contextlib.AbstractContextManager[None]:
    """For the middleware, around the view: the definitions the request's preview sees."""
    visitor = getattr(request, "visitor", None)
    if not isinstance(visitor, PreviewVisitor) or not visitor.preview.strategy:
        return contextlib.nullcontext()
    return _overlaid(visitor)


@contextlib.contextmanager
def _overlaid(visitor: PreviewVisitor) -> Iterator[None]:
    from ..targeting.definitions import OVERLAY

    token = OVERLAY.set(visitor.definitions)
    try:
        yield
    finally:
        OVERLAY.reset(token)
