"""Targeting definitions (segments, placements, banners) compiled once and cached per process.

Staff edit them rarely and every request reads them, so each process keeps a compiled copy
and checks a shared version (:class:`~personalization.versioning.SharedVersion`) at most once
a second; saving any definition bumps the version, and every process reloads on its next
check — within a second through a shared cache, within ``SHARED_STATE_SECONDS`` through the
database otherwise.

A placement that a template uses before staff create it is created, empty, the first time
it renders (:func:`ensure_placement`), so it shows up in the admin ready to edit.
"""

from __future__ import annotations

import contextvars
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..conf import on_settings_change
from ..versioning import SharedVersion
from .content import safe_link
from .rules import RULE_KINDS, RuleContext, RuleValueError

logger = logging.getLogger("personalization")

VERSION_KEY = "pzn:v1:targeting-version"
# The version of definitions loaded while no version could be read: replaced on the next read.
UNKNOWN_VERSION = "unknown"
CHECK_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class CompiledSegment:
    slug: str
    match_all: bool
    # (slot, test, parsed value, negate) per rule; equal rules of different segments share
    # a slot, so a rule is tested once per visitor however many segments use it.
    rules: tuple[tuple[int, Any, Any, bool], ...]

    def matches(self, ctx: RuleContext, results: list[Any] | None = None) -> bool:
        if not self.rules:
            return False
        for slot, test, value, negate in self.rules:
            if results is None:
                outcome = test(ctx, value)
            else:
                outcome = results[slot]
                if outcome is None:
                    outcome = results[slot] = test(ctx, value)
            if (outcome != negate) != self.match_all:
                return not self.match_all
        return self.match_all


@dataclass(frozen=True, slots=True)
class BannerContent:
    """What a banner (or a placement's default) shows, ready to render."""

    key: str  # "banner:12" or "default"
    name: str
    title: str
    body: str  # sanitized HTML
    image_url: str
    cta_text: str
    cta_url: str
    segments: frozenset[str] = frozenset()
    priority: int = 0
    starts_at: float | None = None
    ends_at: float | None = None
    specificity: int = 0

    def is_live(self, now: float) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and (
            self.ends_at is None or now < self.ends_at
        )


@dataclass(frozen=True, slots=True)
class CompiledPlacement:
    slug: str
    name: str
    selection: str
    is_active: bool
    default: BannerContent
    banners: tuple[BannerContent, ...] = field(default_factory=tuple)
    strategy: str = ""  # recommendations: the strategy's name, "" for the default
    recommendation_title: str = ""
    # Its merchandising rules (recommendations.merchandising.Rules); None without any.
    merchandising: Any = None


@dataclass(frozen=True, slots=True)
class Definitions:
    version: str
    segments: tuple[CompiledSegment, ...]
    placements: dict[str, CompiledPlacement]
    rule_slots: int = 0


VERSION = SharedVersion(VERSION_KEY, CHECK_INTERVAL_SECONDS)
_state: dict[str, Any] = {"definitions": None}
_lock = threading.Lock()


def invalidate() -> None:
    """Make every process reload the definitions (called when staff save or delete any)."""
    VERSION.bump()
    forget_local()


@on_settings_change
def forget_local() -> None:
    _state["definitions"] = None
    _created.clear()
    VERSION.forget()


#: How one request sees the definitions, when not as everyone does: a function of the shared
#: definitions, set around the view by the middleware (a staff preview that forces a
#: recommendation strategy, personalization.preview); None for every other request.
OVERLAY: contextvars.ContextVar[Callable[[Definitions], Definitions] | None] = (
    contextvars.ContextVar("personalization_definitions_overlay", default=None)
)


def current() -> Definitions:
    """The compiled definitions (as this request sees them: :data:`OVERLAY`)."""
    overlay = OVERLAY.get()
    shared = _shared()
    return shared if overlay is None else overlay(shared)


def _shared() -> Definitions:
    """The compiled definitions; at most one cache read a second, SQL only after a change.

    When neither the cache nor the database can say which version is current, the copy this
    process has is served; a process without one loads the definitions from the database."""
    definitions: Definitions | None = _state["definitions"]
    try:
        version = VERSION.get()
    except Exception:
        if not _state.get("version_unknown"):  # once, not on every request
            _state["version_unknown"] = True
            logger.warning("personalization: targeting version unknown", exc_info=True)
        if definitions is not None:
            return definitions
        version = UNKNOWN_VERSION
    else:
        _state["version_unknown"] = False
    if definitions is not None and definitions.version == version:
        return definitions
    with _lock:
        definitions = _state["definitions"]
        if definitions is None or definitions.version != version:
            definitions = _state["definitions"] = load(version)
        return definitions


PLACEMENT_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")
# Placements created by this process, or their next attempt after a failure; bounded, so a
# template that makes up slugs cannot fill the table.
MAX_CREATED = 500
CREATE_RETRY_SECONDS = 60.0
_created: dict[str, float] = {}


def ensure_placement(slug: str) -> CompiledPlacement | None:
    """The placement ``slug``; when a template uses it before staff create it, it is created
    (named after its slug, with empty default content: what the template shows without it)
    so that staff find it in the admin ready to edit. Tried once per process and slug, never
    per request; a database error is logged and retried a minute later. Never raises."""
    try:
        found = current().placements.get(slug)
    except Exception:
        logger.warning("personalization: placements unavailable", exc_info=True)
        return None
    if found is not None:
        return found
    now = time.monotonic()
    if _created.get(slug, 0.0) > now or not PLACEMENT_SLUG.match(slug):
        return None
    if slug not in _created and len(_created) >= MAX_CREATED:
        return None
    _created[slug] = math.inf
    try:
        from django.db import transaction

        from ..models import Placement

        with transaction.atomic():
            _, created = Placement.objects.get_or_create(
                slug=slug, defaults={"name": slug.replace("-", " ").replace("_", " ").capitalize()}
            )
        if created:
            logger.info("personalization: placement %r created; edit it in the admin", slug)
        return current().placements.get(slug)
    except Exception:
        _created[slug] = now + CREATE_RETRY_SECONDS
        logger.warning("personalization: could not create placement %r", slug, exc_info=True)
        return None


def load(version: str) -> Definitions:
    """Read and compile every active segment and placement (four queries)."""
    from ..models import Placement, Segment

    segments = []
    slots: dict[tuple[str, str], int] = {}
    for segment in Segment.objects.filter(is_active=True).prefetch_related("rules"):
        compiled = compile_segment(segment, slots)
        if compiled is not None:
            segments.append(compiled)
    placements = {}
    for placement in Placement.objects.prefetch_related("banners__segments", "rules"):
        placements[placement.slug] = compile_placement(placement)
    return Definitions(
        version=version,
        segments=tuple(segments),
        placements=placements,
        rule_slots=len(slots),
    )


def compile_segment(
    segment: Any, slots: dict[tuple[str, str], int] | None = None
) -> CompiledSegment | None:
    """Parse a segment's rules; ``slots`` numbers equal rules across segments."""
    slots = {} if slots is None else slots
    rules = []
    for rule in segment.rules.all():
        kind = RULE_KINDS.get(rule.kind)
        try:
            if kind is None:
                raise RuleValueError(f"unknown rule {rule.kind!r}")
            parsed = kind.parse(rule.value)
            slot = slots.setdefault((rule.kind, rule.value.strip()), len(slots))
            rules.append((slot, kind.test, parsed, rule.negate))
        except RuleValueError as exc:
            logger.warning("personalization: segment %r skipped: %s", segment.slug, exc)
            return None
    return CompiledSegment(
        slug=segment.slug, match_all=segment.match == segment.MATCH_ALL, rules=tuple(rules)
    )


def _image_url(image: Any) -> str:
    try:
        return image.url if image else ""
    except ValueError:
        return ""


def banner_content(banner: Any, segments: frozenset[str], **extra: Any) -> BannerContent:
    """A Banner row as a placement renders it; ``extra``: the schedule and specificity."""
    return BannerContent(
        key=f"banner:{banner.pk}",
        name=banner.name,
        title=banner.title,
        body=banner.body,
        image_url=_image_url(banner.image),
        cta_text=banner.cta_text,
        cta_url=safe_link(banner.cta_url),
        segments=segments,
        priority=banner.priority,
        **extra,
    )


def compile_placement(placement: Any) -> CompiledPlacement:
    from ..recommendations.merchandising import compile_rules

    default = BannerContent(
        key="default",
        name="default",
        title=placement.default_title,
        body=placement.default_body,
        image_url=_image_url(placement.default_image),
        cta_text=placement.default_cta_text,
        cta_url=safe_link(placement.default_cta_url),
    )
    banners = []
    for banner in placement.banners.all():
        if not banner.is_active:
            continue
        slugs = frozenset(segment.slug for segment in banner.segments.all() if segment.is_active)
        if banner.segments.all() and not slugs:
            continue  # every target segment is switched off: nobody should see it
        banners.append(
            banner_content(
                banner,
                slugs,
                starts_at=banner.starts_at.timestamp() if banner.starts_at else None,
                ends_at=banner.ends_at.timestamp() if banner.ends_at else None,
                specificity=1 if slugs else 0,
            )
        )
    banners.sort(key=lambda b: (-b.priority, -b.specificity, b.key))
    return CompiledPlacement(
        slug=placement.slug,
        name=placement.name,
        selection=placement.selection,
        is_active=placement.is_active,
        default=default,
        banners=tuple(banners),
        strategy=placement.strategy,
        recommendation_title=placement.recommendation_title,
        merchandising=compile_rules(placement.slug, placement.rules.all()),
    )
