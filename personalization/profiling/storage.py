"""Where profiles live: the signed id cookie, the hot profile in the cache, the Visitor row."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import re
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db import IntegrityError, transaction

from .. import resilience
from ..conf import app_settings, cached_on_settings
from ..resilience import CacheUnavailable
from . import revisions
from .merge import join, merge_changes
from .revisions import Revision
from .revisions import profile_cache_key as profile_cache_key  # imported from here too
from .visitor import (
    ProfileData,
    VisitorProfile,
    decayed,
    new_visitor_id,
)

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django.http.response import HttpResponseBase

    from ..models import Visitor

logger = logging.getLogger("personalization")

COOKIE_SALT = "personalization.visitor"
# A signed id is about 50 characters; anything much longer is foreign or tampered with.
MAX_COOKIE_LENGTH = 200
VISITOR_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,32}$")


# Cookie --------------------------------------------------------------------------------
class Cookie(NamedTuple):
    """What the signed visitor cookie tells without a round trip to the cache.

    Its value is the visitor id, then flags after dots: ``n`` while the visitor's row is not
    written yet (a new visitor's first answer), ``u<hash>`` once the profile is linked to an
    account (a hash of the user's key). Django signs it with the time it was set, which is
    when the visitor was last seen, to within :data:`TOUCH_SECONDS`."""

    id: str
    signed_at: float
    unwritten: bool = False
    user_hash: str = ""


# The cookie is set again when it is this old, so that its signing time says when the visitor
# was last seen: the end of a visit is known to within this many seconds.
TOUCH_SECONDS = 15.0


def read_visitor_id(request: HttpRequest) -> str | None:
    """The id from the signed cookie, or None when missing, tampered with, oversized or odd."""
    cookie = read_visitor_cookie(request)
    return cookie.id if cookie is not None else None


def read_visitor_cookie(request: HttpRequest) -> Cookie | None:
    """The signed cookie's contents, or None when missing, tampered with, oversized or odd."""
    name = app_settings.COOKIE_NAME
    raw = request.COOKIES.get(name)
    if not raw or len(raw) > MAX_COOKIE_LENGTH:
        return None
    return _verified(name, raw)


@cached_on_settings
@functools.lru_cache(maxsize=8192)
def _verified(name: str, raw: str) -> Cookie | None:
    """Check a cookie's signature once per process: a visitor sends the same value on every
    request for a while. Only the outcome for that exact string is kept; a SECRET_KEY change
    clears it."""
    from django.core import signing
    from django.http import HttpRequest

    probe = HttpRequest()
    probe.COOKIES = {name: raw}
    value = probe.get_signed_cookie(name, default=None, salt=COOKIE_SALT)
    if not isinstance(value, str):
        return None
    visitor_id, *flags = value.split(".")
    if not VISITOR_ID_RE.match(visitor_id):
        return None
    try:  # the signer's own timestamp: value:timestamp:signature
        signed_at = float(signing.b62_decode(raw.rsplit(":", 2)[-2]))
    except (ValueError, IndexError):
        return None
    users = [flag[1:] for flag in flags if flag.startswith("u")]
    return Cookie(visitor_id, signed_at, "n" in flags, users[0] if users else "")


def user_hash(user_pk: Any) -> str:
    """The short mark of an account in the cookie (the cookie is signed; this only tells
    whether the logged-in user is the one the profile is linked to)."""
    if user_pk is None:
        return ""
    return hashlib.sha256(f"pzn-user:{user_pk}".encode()).hexdigest()[:12]


def cookie_value(visitor_id: str, *, unwritten: bool = False, user: str = "") -> str:
    """The cookie's value (before signing) for these facts."""
    return visitor_id + (".n" if unwritten else "") + (f".u{user}" if user else "")


def write_visitor_cookie(response: HttpResponseBase, value: str) -> None:
    """Set the cookie to ``value``: a visitor id, or a :func:`cookie_value`."""
    response.set_signed_cookie(
        app_settings.COOKIE_NAME,
        value,
        salt=COOKIE_SALT,
        max_age=app_settings.cookie_max_age,
        domain=app_settings.COOKIE_DOMAIN,
        secure=app_settings.cookie_secure,
        httponly=True,
        samesite="Lax",
    )


def delete_visitor_cookie(response: HttpResponseBase) -> None:
    response.delete_cookie(
        app_settings.COOKIE_NAME, domain=app_settings.COOKIE_DOMAIN, samesite="Lax"
    )


# Cache ---------------------------------------------------------------------------------
class Loaded(NamedTuple):
    """A stored profile as a request loads it: the data, the cache revision it was loaded at
    and, when it was joined with its row after an outage, the cached copy it came from (what
    a concurrent save compares with) and that it must be saved."""

    data: ProfileData
    revision: Revision
    base: ProfileData | None = None


def load_stored(visitor_id: str) -> Loaded | None:
    """The stored profile: from the cache (one round trip), else rebuilt from the Visitor row
    (one query); None when neither has it. A cache that fails counts as empty."""
    try:
        raw, epoch = revisions.read(visitor_id)
    except CacheUnavailable:
        raw, epoch = None, revisions.current_epoch()
    data = ProfileData.from_dict(raw)
    if data is not None and data.id == visitor_id:
        revision = revisions.revision_of(raw)
        if revision.epoch >= epoch:
            return Loaded(data, revision)
        return _rejoined(data, revision._replace(epoch=epoch))
    from ..models import Visitor

    row = Visitor.objects.filter(pk=visitor_id).first()
    if row is None:
        return None
    return Loaded(profile_from_row(row), Revision(None, 0, epoch))


def load(visitor_id: str) -> ProfileData | None:
    """The stored profile, from the cache or the Visitor row; None when there is none."""
    loaded = load_stored(visitor_id)
    return loaded.data if loaded is not None else None


def _rejoined(cached: ProfileData, revision: Revision) -> Loaded | None:
    """A cached copy saved before the last outage ended, joined with the row that may have
    got orders, visits and views meanwhile; one query, once per profile and outage."""
    from ..models import Visitor

    row = Visitor.objects.filter(pk=cached.id).first()
    if row is None:
        if cached.persisted:  # its row was deleted meanwhile (forgotten, purged)
            revisions.forget(cached.id)
            return None
        return Loaded(cached, revision, cached.copy())
    return Loaded(join(cached, profile_from_row(row), time.time()), revision, cached)


def save_to_cache(data: ProfileData) -> bool:
    """Cache ``data`` as the visitor's whole profile, replacing any copy (for code that built
    it whole); False when the cache is unavailable."""
    try:
        revisions.write_whole(data, revisions.current_epoch())
    except CacheUnavailable:
        return False
    return True


def save(visitor: VisitorProfile) -> None:
    """Store what this request changed: in the cache, merged with whatever another request of
    the visitor saved meanwhile, and in the row when the visit needs it. While the cache is
    unavailable the row is the store, merged the same way under the row's lock."""
    if not (visitor.dirty or visitor.db_write_needed):
        return
    if not resilience.cache().available:  # skipped after a failure: straight to the row
        if visitor.db_write_needed or visitor._data.persisted:
            save_to_row(visitor)
    else:
        if visitor.db_write_needed:  # first, so the cached copy knows the row exists
            write_row(visitor)
            visitor.db_write_needed = False
        if not revisions.save(visitor) and visitor._data.persisted:
            save_to_row(visitor)
    visitor.dirty = False


def save_to_row(visitor: VisitorProfile) -> None:
    """Merge the request's changes into the row, locked meanwhile (the cache is unavailable);
    the profiles the cache still holds are then rejoined with their rows once it is back."""
    from ..models import Visitor

    revisions.note_database_write()
    data = visitor._data
    with transaction.atomic():
        row = Visitor.objects.select_for_update().filter(pk=data.id).first()
        if row is not None:
            stored = profile_from_row(row)
            data = merge_changes(stored, data, visitor._base, visitor.views)  # type: ignore[arg-type]
        write_row(visitor, data)
    visitor._data = data
    visitor._base, visitor.views = data.copy(), []
    visitor.db_write_needed = False


def profile_from_row(row: Visitor) -> ProfileData:
    from .referrer import Referrer

    interests: dict[str, list[float]] = {}
    for key, value in (row.category_interest or {}).items():
        try:
            interests[str(key)] = [float(value[0]), float(value[1])]
        except (TypeError, ValueError, IndexError):
            continue
    started = row.last_seen.timestamp()
    return ProfileData(
        id=row.id,
        first_seen=row.first_seen.timestamp(),
        last_seen=started,
        visit_started=started,
        visit_count=row.visit_count,
        referrer=Referrer(
            source=row.latest_source or "direct",
            host=row.latest_referrer_host or None,
            campaign=row.latest_campaign or None,
        ),
        first_referrer=Referrer(
            source=row.first_source or "direct",
            host=row.first_referrer_host or None,
            campaign=row.first_campaign or None,
        ),
        recently_viewed=list(row.recently_viewed or []),
        interests=interests,
        user_id=row.user_id,
        persisted=True,
        device=row.device,
        product_views=_int_dict(row.product_views),
        order_count=row.order_count,
        total_spent=float(row.total_spent or 0),
        last_order_at=row.last_order_at.timestamp() if row.last_order_at else None,
        signed_up_at=row.signed_up_at.timestamp() if row.signed_up_at else None,
        referred_by=row.referral_code or None,
        control_group=row.fixed_control_group,
    )


def _int_dict(raw: Any) -> dict[str, int]:
    result: dict[str, int] = {}
    for key, value in (raw or {}).items() if isinstance(raw, dict) else ():
        try:
            result[str(key)] = int(value)
        except (TypeError, ValueError):
            continue
    return result


# Database ------------------------------------------------------------------------------
def _aware(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def row_values(visitor: VisitorProfile, data: ProfileData) -> dict[str, Any]:
    geo = visitor.current_geo()
    return {
        "user_id": data.user_id,
        "first_seen": _aware(data.first_seen),
        "last_seen": _aware(data.visit_started),
        "visit_count": data.visit_count,
        "first_source": data.first_referrer.source,
        "first_referrer_host": (data.first_referrer.host or "")[:253],
        "first_campaign": (data.first_referrer.campaign or "")[:200],
        "latest_source": data.referrer.source,
        "latest_referrer_host": (data.referrer.host or "")[:253],
        "latest_campaign": (data.referrer.campaign or "")[:200],
        "referral_code": (data.referred_by or "")[:64],
        "device": data.device[:16],
        "product_views": dict(data.product_views),
        "order_count": data.order_count,
        "total_spent": round(data.total_spent, 2),
        "last_order_at": _aware(data.last_order_at) if data.last_order_at else None,
        "signed_up_at": _aware(data.signed_up_at) if data.signed_up_at else None,
        "country_code": (geo.country_code or "")[:2],
        "region": (geo.region or "")[:128],
        "city": (geo.city or "")[:128],
        "time_zone": (geo.time_zone or "")[:64],
        "in_control_group": data.in_control_group(),
        "fixed_control_group": data.control_group,
        "recently_viewed": list(data.recently_viewed),
        "category_interest": {key: list(value) for key, value in data.interests.items()},
    }


# Counted by atomic increments only (credit_order): a row write never sets them, so a profile
# that missed an order cannot take it back.
COUNTED_FIELDS = ("order_count", "total_spent", "last_order_at")


def write_row(visitor: VisitorProfile, data: ProfileData | None = None) -> None:
    """Write the Visitor row in one upsert query (safe against a concurrent first write)."""
    from ..models import Visitor

    data = data or visitor._data
    values = row_values(visitor, data)
    Visitor.objects.bulk_create(
        [Visitor(id=data.id, **values)],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=[
            name for name in values if name != "first_seen" and name not in COUNTED_FIELDS
        ],
    )
    data.persisted = True


def credit_order(visitor: VisitorProfile, amount: Decimal, at: dt.datetime) -> bool:
    """Count an order in the visitor's row with atomic increments, and copy the row's totals
    into the profile; True when it is the visitor's first order. Concurrent requests of the
    visitor, a stale cached profile or an unreachable cache cannot lose it. Call it inside the
    transaction that records the order, so the order is counted exactly when it is recorded."""
    from django.db.models import F, Value
    from django.db.models.functions import Coalesce, Greatest

    from ..models import Visitor

    data = visitor._data
    rows = Visitor.objects.filter(pk=data.id)
    counted = {
        "order_count": F("order_count") + 1,
        "total_spent": F("total_spent") + amount,
        "last_order_at": Greatest(Coalesce(F("last_order_at"), Value(at)), Value(at)),
    }
    if not data.persisted or not rows.update(**counted):
        write_row(visitor, data)  # the visitor's first write: the order comes with it
        rows.update(**counted)
    visitor.db_write_needed = False
    totals = rows.values(*COUNTED_FIELDS).get()
    data.order_count = totals["order_count"]
    data.total_spent = float(totals["total_spent"])
    data.last_order_at = totals["last_order_at"].timestamp()
    visitor.dirty = True
    return data.order_count == 1


def delete_visitor(visitor_id: str) -> None:
    """Forget a visitor everywhere: the cache entry, the row, the rows that point at it (also
    when the visitor's own row was never written) and its part of the report's roll-ups."""
    from .. import deferred
    from ..models import Visitor
    from ..reports import rollups

    revisions.forget(visitor_id)
    deferred.forget(visitor_id)
    with transaction.atomic():
        rollups.mark_changed([visitor_id])  # what the cells hold of them, to take it away
        Visitor.objects.filter(pk=visitor_id).delete()
        for relation in Visitor._meta.related_objects:
            if not relation.one_to_many:
                continue
            rows = relation.related_model._base_manager.filter(**{relation.field.name: visitor_id})
            if relation.field.null:
                rows.update(**{relation.field.name: None})
            else:
                rows.delete()


# Accounts ------------------------------------------------------------------------------
def _reassign_related(old_id: str, new_id: str) -> None:
    """Point every row that references the old visitor at the new one.

    The device's exposures follow the person even when they were shown in the other group
    (an anonymous device is grouped by its own id until it logs in): such a person is then
    left out of both groups by the report, rather than counted in each."""
    from ..models import Visitor
    from ..reports import rollups

    rollups.mark_changed([old_id, new_id])  # what the cells hold of both, before the move
    for relation in Visitor._meta.related_objects:
        if relation.one_to_many or relation.one_to_one:
            manager = relation.related_model._base_manager
            manager.filter(**{relation.field.name: old_id}).update(**{relation.field.name: new_id})


def merge_profiles(into: ProfileData, source: ProfileData, now: float) -> ProfileData:
    """Fold an anonymous device's profile into the account's profile."""
    into.recently_viewed = list(dict.fromkeys([*source.recently_viewed, *into.recently_viewed]))[
        : int(app_settings.RECENTLY_VIEWED_MAX)
    ]
    for key, (score, since) in source.interests.items():
        into.add_interest(key, 0.0, now)  # bring the account's score to now, then add
        into.interests[key][0] += decayed(
            score, since, now, app_settings.interest_half_life_seconds
        )
    into.visit_count += source.visit_count
    if source.first_seen < into.first_seen:
        into.first_seen = source.first_seen
        into.first_referrer = source.first_referrer
    into.referrer = source.referrer
    into.visit_started = source.visit_started
    into.last_seen = now
    return into


def attach_user(visitor: VisitorProfile, user: Any) -> None:
    """Link the visitor to a user who just logged in; a user seen on another device keeps one
    profile: this device's anonymous browsing is merged into it and the cookie follows.

    The person keeps one group: the account's, fixed when the account was first linked (the
    group the device that first logged in was in), on every device and after every login.

    Runs in a savepoint, so a failure never breaks the login view's transaction. Two devices
    linking the same new user at once: the second hits the unique user link and merges."""
    if not visitor.is_tracked or user is None or user.pk is None:
        return
    if visitor._data.user_id == user.pk:
        return
    try:
        with transaction.atomic():
            _attach_user(visitor, user)
    except IntegrityError:
        with transaction.atomic():
            _attach_user(visitor, user)
    visitor.db_write_needed = False


def _attach_user(visitor: VisitorProfile, user: Any) -> None:
    from ..models import Visitor

    data = visitor._data
    now = time.time()
    account_id = (
        Visitor.objects.filter(user_id=user.pk).exclude(pk=data.id).values_list("pk", flat=True)
    ).first()
    loaded = load_stored(account_id) if account_id is not None else None
    if loaded is not None:
        account = loaded.data
        base = (loaded.base or account).copy()  # what a concurrent save of it compares with
        account.user_id = user.pk
        if account.control_group is None:  # linked before groups were kept with accounts
            account.control_group = account.in_control_group()
        if data.user_id is None:  # this device's anonymous browsing joins the account
            merge_profiles(account, data, now)
            _reassign_related(data.id, account.id)
            Visitor.objects.filter(pk=data.id).delete()
            revisions.forget(data.id)
        write_row(visitor, account)
        visitor.switch_to(account, base=base, revision=loaded.revision)
    elif data.user_id is not None:
        # This browser belonged to another account: start a separate profile for this user,
        # in the group this browser's visits were counted in.
        fresh = ProfileData.new(new_visitor_id(), now, data.referrer)
        fresh.user_id = user.pk
        fresh.control_group = visitor.in_control_group
        write_row(visitor, fresh)
        visitor.switch_to(fresh)
    else:
        # A new account: the person keeps the group this device was in.
        data.user_id = user.pk
        data.control_group = visitor.in_control_group
        try:
            write_row(visitor, data)
        except IntegrityError:
            # Another device won the race; the retry merges into it.
            data.user_id = data.control_group = None
            raise
        visitor.dirty = True
