"""The visitor profile: stored data (ProfileData) and the lazy request.visitor object."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from ..conf import app_settings
from .geo import EMPTY_GEO, Geo, locate
from .referrer import Referrer

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger("personalization")

PROFILE_VERSION = 2
# How many of the current visit's views a profile keeps for session-aware recommendations.
VISIT_VIEWS_MAX = 50


def new_visitor_id() -> str:
    """A fresh pseudonymous id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def decayed(score: float, since: float, now: float, half_life: float) -> float:
    """``score`` recorded at ``since``, halved every ``half_life`` seconds until ``now``."""
    if half_life <= 0:
        return score
    age = max(0.0, now - since)
    return score * math.pow(0.5, age / half_life)


@dataclass(slots=True)
class ProfileData:
    """What a tracked visitor's profile holds; kept in the cache as a plain dict."""

    id: str
    first_seen: float
    last_seen: float
    visit_started: float
    visit_count: int = 1
    referrer: Referrer = field(default_factory=Referrer)
    first_referrer: Referrer = field(default_factory=Referrer)
    recently_viewed: list[Any] = field(default_factory=list)
    interests: dict[str, list[float]] = field(default_factory=dict)
    user_id: Any = None
    persisted: bool = False
    # Device class of the current visit: "mobile", "tablet", "desktop" or "" (unknown).
    device: str = ""
    # Product key (str) -> views, for "viewed most" offers; capped like recently_viewed.
    product_views: dict[str, int] = field(default_factory=dict)
    order_count: int = 0
    total_spent: float = 0.0
    last_order_at: float | None = None
    # Last time something went into the cart (for abandoned-cart rules).
    cart_updated_at: float | None = None
    signed_up_at: float | None = None
    popup_dismissed_at: float | None = None
    # The visit_count of the visit in which the signup popup was last shown (0: never).
    popup_shown_visit: int = 0
    # The first valid referral code this visitor arrived with.
    referred_by: str | None = None
    # Products the visitor bought (keys as str), for "viewed but not bought".
    purchased: list[str] = field(default_factory=list)
    # The person's group, fixed when an account was linked (every device of the account gets
    # it); None for a visitor without an account, whose group follows from the id.
    control_group: bool | None = None
    # What the visitor's requests would have written before their cookie came back (see
    # personalization.holding): (model label, field values) pairs, the latest last.
    held: list[Any] = field(default_factory=list)
    # The current visit's product views in order, [product key (str), time] each, oldest
    # first, repeats kept, at most VISIT_VIEWS_MAX: what session-aware recommendations read.
    # Kept in the cache only; views from before visit_started belong to an earlier visit.
    visit_views: list[Any] = field(default_factory=list)

    def in_control_group(self) -> bool:
        """The stored group of an account, else the holdout bucket of the id."""
        if self.control_group is not None:
            return self.control_group
        return control_group_bucket(self.id) < float(app_settings.CONTROL_GROUP_PERCENT)

    @classmethod
    def new(cls, visitor_id: str, now: float, referrer: Referrer) -> ProfileData:
        return cls(
            id=visitor_id,
            first_seen=now,
            last_seen=now,
            visit_started=now,
            referrer=referrer,
            first_referrer=referrer,
        )

    def to_dict(self) -> dict[str, Any]:
        """The cache form: the fields as they are (the cache pickles them at once)."""
        values = {name: getattr(self, name) for name in _FIELD_NAMES}
        values["v"] = PROFILE_VERSION
        values["referrer"] = _referrer_tuple(self.referrer)
        values["first_referrer"] = _referrer_tuple(self.first_referrer)
        return values

    @classmethod
    def from_dict(cls, raw: Any) -> ProfileData | None:
        """Rebuild a profile from the cache; anything malformed or from another version gives
        None, and the profile is then rebuilt from its database row."""
        if not isinstance(raw, dict) or raw.get("v") != PROFILE_VERSION:
            return None
        try:
            values = {name: raw[name] for name in _FIELD_NAMES if name not in _OPTIONAL}
            for name in _OPTIONAL:
                values[name] = raw.get(name) or []
            values["referrer"] = _referrer_from(values["referrer"])
            values["first_referrer"] = _referrer_from(values["first_referrer"])
            data = cls(**values)
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        if not isinstance(data.id, str) or not isinstance(data.visit_count, int):
            return None
        if data.control_group is not None and not isinstance(data.control_group, bool):
            return None
        return data

    def copy(self) -> ProfileData:
        """An independent copy: containers are copied, so changing one leaves the other."""
        twin = replace(self)
        twin.recently_viewed = list(self.recently_viewed)
        twin.interests = {key: list(value) for key, value in self.interests.items()}
        twin.product_views = dict(self.product_views)
        twin.purchased = list(self.purchased)
        twin.held = list(self.held)
        twin.visit_views = list(self.visit_views)
        return twin

    # Browsing history -------------------------------------------------------------------
    def add_view(self, product_pk: Any, category_key: str | None, now: float) -> None:
        limit = int(app_settings.RECENTLY_VIEWED_MAX)
        viewed = [product_pk, *(pk for pk in self.recently_viewed if pk != product_pk)]
        del viewed[limit:]
        self.recently_viewed = viewed
        key = str(product_pk)
        self.product_views[key] = self.product_views.get(key, 0) + 1
        if len(self.product_views) > limit * 2:
            keep = sorted(self.product_views.items(), key=lambda item: -item[1])[: limit * 2]
            self.product_views = dict(keep)
        current = self._this_visit()
        current.append([key, now])
        self.visit_views = current[-VISIT_VIEWS_MAX:]
        if category_key:
            self.add_interest(category_key, 1.0, now)

    def session_views(self) -> list[str]:
        """The current visit's viewed product keys, most recent first, repeats kept."""
        return [str(entry[0]) for entry in reversed(self._this_visit())]

    def _this_visit(self) -> list[Any]:
        """The well-formed entries of ``visit_views`` from the current visit, oldest first."""
        started = self.visit_started
        return [
            entry
            for entry in self.visit_views
            if isinstance(entry, list | tuple)
            and len(entry) == 2
            and isinstance(entry[1], int | float)
            and entry[1] >= started
        ]

    def add_interest(self, category_key: str, weight: float, now: float) -> None:
        half_life = app_settings.interest_half_life_seconds
        score, since = self.interests.get(category_key, (0.0, now))
        self.interests[category_key] = [decayed(score, since, now, half_life) + weight, now]
        limit = int(app_settings.CATEGORY_INTEREST_MAX)
        if len(self.interests) > limit:
            ranked = self.ranked_interests(now)
            self.interests = {key: self.interests[key] for key, _ in ranked[:limit]}

    def ranked_interests(self, now: float) -> list[tuple[str, float]]:
        half_life = app_settings.interest_half_life_seconds
        scores = [
            (key, decayed(score, since, now, half_life))
            for key, (score, since) in self.interests.items()
        ]
        scores.sort(key=lambda item: (-item[1], item[0]))
        return scores


_FIELD_NAMES = tuple(item.name for item in fields(ProfileData))
# Fields a cached profile of an earlier release may lack: they start empty.
_OPTIONAL = ("held", "visit_views")


def _referrer_tuple(referrer: Referrer) -> tuple[Any, ...]:
    return (referrer.source, referrer.host, referrer.referral_code, referrer.campaign)


def _referrer_from(value: Any) -> Referrer:
    """Our own compact form is rebuilt directly (hot path); anything else is validated."""
    if isinstance(value, tuple) and len(value) == 4 and isinstance(value[0], str):
        return Referrer(*value)
    return Referrer.from_dict(value or {})


def control_group_bucket(visitor_id: str) -> float:
    """A stable number in [0, 100) for the id; below CONTROL_GROUP_PERCENT means holdout."""
    salt = str(app_settings.CONTROL_GROUP_SALT)
    digest = hashlib.sha256(f"{salt}:{visitor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


class VisitorProfile:
    """``request.visitor``: attached cheaply; geo and rankings are computed when first read.

    Tracked visitors carry a :class:`ProfileData`. Bots and visitors who opted out get an
    anonymous profile that is never stored (``is_tracked`` is False).
    """

    #: True while staff preview the site (:mod:`personalization.preview`): nothing is recorded.
    is_preview = False

    def __init__(
        self,
        data: ProfileData | None,
        *,
        request: HttpRequest | None = None,
        now: float,
        is_bot: bool = False,
        opted_out: bool = False,
        degraded: bool = False,
        visitor_id: str | None = None,
        loader: Callable[[VisitorProfile], ProfileData] | None = None,
    ) -> None:
        # ``data`` None: a returning visitor within a visit, whose profile is loaded by
        # ``loader`` when something first reads it; a page that reads nothing costs no
        # round trip to the cache and writes nothing.
        self._profile = data
        self._id = data.id if data is not None else str(visitor_id)
        self._loader = loader
        # The profile as loaded, and the cache revision it was loaded at: what this request
        # changed is replayed onto a newer copy when another request saved one meanwhile.
        self._base = data.copy() if data is not None else None
        self.revision: Any = None
        self._request = request
        self._now = now
        self.loaded_at = now
        self.is_bot = is_bot
        self.opted_out = opted_out
        # Set when the profile store failed: the visitor sees defaults, nothing is written.
        self.degraded = degraded
        self.accessed = False
        self.new_visit = False
        self.cookie_needed = False
        # What the request's signed cookie said (personalization.profiling.storage.Cookie).
        self.cookie: Any = None
        self.db_write_needed = False
        # No cookie came with the request (a first request, or a client that keeps none):
        # what it would write is held in the profile until the cookie comes back.
        self.cookieless = False
        self.dirty = False
        self._geo: Geo | None = None
        self._segments: frozenset[str] | None = None
        self._in_control_group: bool | None = None
        self._viewed_this_request: set[Any] = set()
        self.views: list[tuple[Any, str | None, float]] = []

    @property
    def _data(self) -> ProfileData:
        """The stored profile, loaded on first use."""
        if self._profile is None:
            loader, self._loader = self._loader, None
            try:
                if loader is None:
                    raise RuntimeError("a lazy visitor profile without a loader")
                data = loader(self)
            except Exception:
                # Read in the middle of a view: the page goes on with defaults, as it would
                # had the profile failed to load before the view.
                logger.exception(
                    "personalization: could not load the visitor profile; using defaults"
                )
                data = ProfileData.new("anon-" + new_visitor_id(), self._now, Referrer())
                self.degraded = True
                self.dirty = self.cookie_needed = self.db_write_needed = False
            self._profile = data
            if self._base is None:
                self._base = data.copy()
            self._id = data.id
        return self._profile

    @_data.setter
    def _data(self, data: ProfileData) -> None:
        self._profile = data
        self._id = data.id

    @property
    def is_loaded(self) -> bool:
        """Whether this request has read the stored profile (or had it from the start)."""
        return self._profile is not None

    # Contract attributes -------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._id

    @property
    def is_tracked(self) -> bool:
        """False for bots, opted-out visitors and degraded requests: nothing of theirs is stored."""
        return not (self.is_bot or self.opted_out or self.degraded)

    @property
    def is_first_visit(self) -> bool:
        self.accessed = True
        return self._data.visit_count == 1

    @property
    def visit_count(self) -> int:
        self.accessed = True
        return self._data.visit_count

    @property
    def referrer(self) -> Referrer:
        self.accessed = True
        return self._data.referrer

    @property
    def first_referrer(self) -> Referrer:
        self.accessed = True
        return self._data.first_referrer

    @property
    def geo(self) -> Geo:
        self.accessed = True
        return self.current_geo()

    def current_geo(self) -> Geo:
        """The location, looked up once per request (without marking the profile as read)."""
        if self._geo is None:
            self._geo = self._lookup_geo()
        return self._geo

    @property
    def recently_viewed(self) -> list[Any]:
        self.accessed = True
        return list(self._data.recently_viewed)

    @property
    def session_views(self) -> list[str]:
        """Products viewed in this visit, most recent first, repeats kept."""
        self.accessed = True
        return self._data.session_views()

    @property
    def purchased(self) -> list[str]:
        """Products bought before, most recent first."""
        self.accessed = True
        return list(self._data.purchased)

    @property
    def top_categories(self) -> list[str]:
        self.accessed = True
        return [key for key, _ in self._data.ranked_interests(self._now)]

    def category_interest(self, category_key: str) -> float:
        """The recency-weighted interest score of one category (0.0 when never viewed)."""
        self.accessed = True
        score, since = self._data.interests.get(category_key, (0.0, self._now))
        return decayed(score, since, self._now, app_settings.interest_half_life_seconds)

    @property
    def in_control_group(self) -> bool:
        """Deterministic per visitor id; for an account, the group fixed when it was linked."""
        if self._in_control_group is None:
            self._in_control_group = self.is_tracked and self._data.in_control_group()
        return self._in_control_group

    @property
    def sees_personalized(self) -> bool:
        """Whether personalized content may be shown: tracked and not held out."""
        return self.is_tracked and not self.in_control_group

    @property
    def segments(self) -> frozenset[str]:
        self.accessed = True
        if self._segments is None:
            try:
                from ..targeting.segments import segments_for

                self._segments = segments_for(self)
            except Exception:
                logger.exception("personalization: could not compute segments")
                self._segments = frozenset()
        return self._segments

    @property
    def user_id(self) -> Any:
        return self._data.user_id

    @property
    def first_seen(self) -> float:
        return self._data.first_seen

    @property
    def visit_started(self) -> float:
        return self._data.visit_started

    # Changes --------------------------------------------------------------------------
    def record_product_view(self, product_pk: Any, category_key: str | None) -> bool:
        """Add a product view to the profile; once per product per request. False if not tracked."""
        if not self.is_tracked or product_pk in self._viewed_this_request:
            return False
        self._viewed_this_request.add(product_pk)
        self._data.add_view(product_pk, category_key, self._now)
        self.views.append((product_pk, category_key, self._now))
        self.dirty = True
        return True

    def record_view_at(self, product_pk: Any, category_key: str | None, at: float) -> None:
        """Add a view noted earlier (see personalization.deferred) at its own time."""
        self._data.add_view(product_pk, category_key, at)
        self.views.append((product_pk, category_key, at))
        self.dirty = True

    def forget(self) -> None:
        """Stop tracking for the rest of this request: the data was just deleted."""
        self.degraded = True
        self.dirty = self.cookie_needed = self.db_write_needed = False

    def switch_to(
        self, data: ProfileData, *, base: ProfileData | None = None, revision: Any = None
    ) -> None:
        """Continue this request as another stored profile (used when a login merges devices):
        ``data`` as changed from ``base``, the copy loaded at ``revision`` (None: a new one)."""
        self._data = data
        self._loader = None
        self._base = base if base is not None else data.copy()
        self.revision = revision
        self.views = []
        self._in_control_group = None
        self.dirty = True
        self.cookie_needed = True

    def _lookup_geo(self) -> Geo:
        if self._request is None:
            return EMPTY_GEO
        return locate(self._request.META)  # a trusted CDN's headers, else GeoIP

    def __repr__(self) -> str:
        kind = "tracked" if self.is_tracked else ("bot" if self.is_bot else "untracked")
        if self._profile is None:
            return f"<VisitorProfile {self._id} {kind} not loaded>"
        return f"<VisitorProfile {self._id} {kind} visit={self._profile.visit_count}>"
