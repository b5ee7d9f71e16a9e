"""Where profiles live: the signed id cookie, the hot profile in the cache, the Visitor row."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from django.core.cache import caches
from django.db import IntegrityError, transaction

from ..conf import app_settings, cached_on_settings
from .visitor import (
    ProfileData,
    VisitorProfile,
    decayed,
    new_visitor_id,
)

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

    from ..models import Visitor

logger = logging.getLogger("personalization")

COOKIE_SALT = "personalization.visitor"
# A signed id is about 50 characters; anything much longer is foreign or tampered with.
MAX_COOKIE_LENGTH = 200
VISITOR_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,32}$")


# Cookie --------------------------------------------------------------------------------
def read_visitor_id(request: HttpRequest) -> str | None:
    """The id from the signed cookie, or None when missing, tampered with, oversized or odd."""
    name = app_settings.COOKIE_NAME
    raw = request.COOKIES.get(name)
    if not raw or len(raw) > MAX_COOKIE_LENGTH:
        return None
    return _verified_id(name, raw)


@cached_on_settings
@functools.lru_cache(maxsize=8192)
def _verified_id(name: str, raw: str) -> str | None:
    """Check a cookie's signature once per process: a visitor sends the same value on every
    request. Only the outcome for that exact string is kept; a SECRET_KEY change clears it."""
    from django.http import HttpRequest

    probe = HttpRequest()
    probe.COOKIES = {name: raw}
    value = probe.get_signed_cookie(name, default=None, salt=COOKIE_SALT)
    return value if isinstance(value, str) and VISITOR_ID_RE.match(value) else None


def write_visitor_cookie(response: HttpResponse, visitor_id: str) -> None:
    response.set_signed_cookie(
        app_settings.COOKIE_NAME,
        visitor_id,
        salt=COOKIE_SALT,
        max_age=app_settings.cookie_max_age,
        domain=app_settings.COOKIE_DOMAIN,
        secure=app_settings.cookie_secure,
        httponly=True,
        samesite="Lax",
    )


def delete_visitor_cookie(response: HttpResponse) -> None:
    response.delete_cookie(
        app_settings.COOKIE_NAME, domain=app_settings.COOKIE_DOMAIN, samesite="Lax"
    )


# Cache ---------------------------------------------------------------------------------
def profile_cache_key(visitor_id: str) -> str:
    return f"pzn:v1:profile:{visitor_id}"


def _cache():  # type: ignore[no-untyped-def]
    return caches[app_settings.CACHE_ALIAS]


def save_to_cache(data: ProfileData) -> None:
    _cache().set(profile_cache_key(data.id), data.to_dict(), app_settings.profile_cache_seconds)


def load(visitor_id: str) -> ProfileData | None:
    """The stored profile: from the cache, else rebuilt from the Visitor row (one query)."""
    data = ProfileData.from_dict(_cache().get(profile_cache_key(visitor_id)))
    if data is not None and data.id == visitor_id:
        return data
    from ..models import Visitor

    row = Visitor.objects.filter(pk=visitor_id).first()
    return profile_from_row(row) if row is not None else None


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
        "in_control_group": data.in_control_group(),
        "fixed_control_group": data.control_group,
        "recently_viewed": list(data.recently_viewed),
        "category_interest": {key: list(value) for key, value in data.interests.items()},
    }


def write_row(visitor: VisitorProfile, data: ProfileData | None = None) -> None:
    """Write the Visitor row in one upsert query (safe against a concurrent first write)."""
    from ..models import Visitor

    data = data or visitor._data
    values = row_values(visitor, data)
    Visitor.objects.bulk_create(
        [Visitor(id=data.id, **values)],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=[name for name in values if name != "first_seen"],
    )
    data.persisted = True


def delete_visitor(visitor_id: str) -> None:
    """Forget a visitor everywhere: the cache entry, the row, the rows that point at it (also
    when the visitor's own row was never written) and its part of the report's roll-ups."""
    from ..models import Visitor
    from ..reports import rollups

    _cache().delete(profile_cache_key(visitor_id))
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
    account = load(account_id) if account_id is not None else None
    if account is not None:
        account.user_id = user.pk
        if account.control_group is None:  # linked before groups were kept with accounts
            account.control_group = account.in_control_group()
        if data.user_id is None:  # this device's anonymous browsing joins the account
            merge_profiles(account, data, now)
            _reassign_related(data.id, account.id)
            Visitor.objects.filter(pk=data.id).delete()
            _cache().delete(profile_cache_key(data.id))
        write_row(visitor, account)
        visitor.switch_to(account)
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
