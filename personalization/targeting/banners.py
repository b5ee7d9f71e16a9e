"""Choosing and rendering the banner of a placement for one visitor."""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.template.loader import select_template
from django.utils.safestring import SafeString, mark_safe

from .. import tracking
from ..conf import app_settings
from ..models import Exposure
from . import bandit
from .definitions import BannerContent, CompiledPlacement, current, ensure_placement

logger = logging.getLogger("personalization")

DEFAULT_CONTENT = "default"


def eligible(placement: CompiledPlacement, visitor: Any, now: float) -> list[tuple[Any, str]]:
    """(banner, the target segment it matched — "" for everyone) for every banner that fits."""
    segments = visitor.segments
    found = []
    for banner in placement.banners:
        if not banner.is_live(now):
            continue
        if not banner.segments:
            found.append((banner, ""))
            continue
        matched = banner.segments & segments
        if matched:
            found.append((banner, min(matched)))
    return found


def choose(placement: CompiledPlacement, visitor: Any, now: float) -> tuple[BannerContent, str]:
    """The banner to show a personalized visitor, and the segment it was chosen for."""
    candidates = eligible(placement, visitor, now)
    if not candidates:
        return placement.default, ""
    selection = placement.selection or app_settings.BANNER_SELECTION
    if selection == "bandit" and len(candidates) > 1:
        banner = bandit.choose(candidates)
        return banner, dict((b.key, s) for b, s in candidates)[banner.key]
    return candidates[0]  # sorted by priority, then specificity


@functools.lru_cache(maxsize=256)
def _template_for(slug: str) -> Any:
    return select_template([f"personalization/banner_{slug}.html", "personalization/banner.html"])


def render_banner(request: Any, slug: str) -> SafeString:
    """Render the placement for this request's visitor and queue its exposure. A placement
    that does not exist yet is created, with empty default content, for staff to fill in.

    Every tracked visitor who reaches the placement gets one exposure, in their own group,
    whatever is shown: an inactive or unconfigured placement, or one whose content is empty,
    is logged for control and personalized visitors alike, so both groups are counted under
    the same condition. Markup (and its exposure id) is rendered only when there is content."""
    placement = current().placements.get(slug) or ensure_placement(slug)
    visitor: Any = getattr(request, "visitor", None)
    if visitor is not None:
        visitor.accessed = True  # the page now depends on who asks: Vary: Cookie
    tracked = visitor is not None and visitor.is_tracked
    is_control = bool(tracked and visitor.in_control_group)
    if placement is None:
        if tracked:
            tracking.record_exposure(
                request,
                placement=slug,
                kind=Exposure.BANNER,
                content=DEFAULT_CONTENT,
                is_control=is_control,
            )
        return mark_safe("")
    content, segment = placement.default, ""
    # Staff previewing a banner see it in its placement, whatever its segments, dates or group.
    forced = visitor.forced_banner(slug) if getattr(visitor, "is_preview", False) else None
    if forced is not None:
        content = forced
    elif tracked and placement.is_active and not is_control:
        content, segment = choose(placement, visitor, visitor._now)
    exposure_id = None
    if tracked:
        exposure_id = tracking.record_exposure(
            request,
            placement=slug,
            kind=Exposure.BANNER,
            content=content.key,
            label=content.name,
            is_control=is_control,
            segment=segment,
        )
    if not (content.title or content.body or content.image_url or content.cta_text):
        return mark_safe("")
    context = {
        "placement": placement,
        "banner": content,
        "exposure_id": exposure_id,
        "is_default": content.key == DEFAULT_CONTENT,
    }
    html: str = _template_for(slug).render(context, request)
    return mark_safe(html)


def render_default(slug: str) -> str:
    """The placement's default content, as a page cached for everyone shows it until the
    visitor's own banner replaces it: no visitor read, no exposure. "" without content."""
    placement = current().placements.get(slug)
    if placement is None:
        return ""
    content = placement.default
    if not (content.title or content.body or content.image_url or content.cta_text):
        return ""
    context = {"placement": placement, "banner": content, "exposure_id": None, "is_default": True}
    return str(_template_for(slug).render(context))
