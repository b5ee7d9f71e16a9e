"""Two copies of one profile made one, so that no request's changes are lost to another's.

* :func:`merge_changes`: a request saves its profile but another request of the same visitor
  saved one since it was loaded; what this request changed is replayed onto that newer copy.
* :func:`join`: after a cache outage, the copy the cache kept and the copy the database got
  meanwhile; counts and times at their highest, lists united, the row's word on orders.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..conf import app_settings
from .visitor import ProfileData, decayed

# Fields with a rule of their own in merge_changes; every other field is taken from the
# request's copy when the request changed it, else from the newer copy.
_RULED = frozenset(
    {
        "id",
        "first_seen",
        "first_referrer",
        "last_seen",
        "visit_started",
        "visit_count",
        "referrer",
        "device",
        "recently_viewed",
        "visit_views",
        "interests",
        "product_views",
        "order_count",
        "total_spent",
        "last_order_at",
        "purchased",
        "persisted",
    }
)
_SET_BY_REQUESTS = tuple(item.name for item in fields(ProfileData) if item.name not in _RULED)
_BROWSING = ("recently_viewed", "interests", "product_views", "visit_views")
_ORDERS = ("order_count", "total_spent", "last_order_at")


def _order_rank(data: ProfileData) -> tuple[int, float]:
    return (data.order_count, data.last_order_at or 0.0)


def _take_orders(into: ProfileData, source: ProfileData) -> None:
    """Orders are counted in the database, each copy holding what the row said after some
    order: the copy that counts more is the later one."""
    if _order_rank(source) > _order_rank(into):
        for name in _ORDERS:
            setattr(into, name, getattr(source, name))


def merge_changes(
    fresh: ProfileData,
    ours: ProfileData,
    base: ProfileData,
    views: list[tuple[Any, str | None, float]],
) -> ProfileData:
    """``fresh``, saved by another request after ``base`` was loaded, with what this request
    changed from ``base`` to ``ours``: its product views replayed, a visit it started counted
    unless the other request started it too, purchases added, and any other field it set."""
    result = fresh.copy()
    if ours.visit_started != base.visit_started and fresh.visit_started == base.visit_started:
        result.visit_count = fresh.visit_count + max(0, ours.visit_count - base.visit_count)
        result.visit_started = ours.visit_started
        result.referrer = ours.referrer
        result.device = ours.device
    result.last_seen = max(fresh.last_seen, ours.last_seen)
    if ours.first_seen < result.first_seen:
        result.first_seen, result.first_referrer = ours.first_seen, ours.first_referrer
    if views:
        for product_pk, category_key, at in views:
            result.add_view(product_pk, category_key, at)
    else:  # changed otherwise (a login's merge, a test helper): this request's lists
        copied = ours.copy()
        for name in _BROWSING:
            if getattr(ours, name) != getattr(base, name):
                setattr(result, name, getattr(copied, name))
    _take_orders(result, ours)
    known = set(base.purchased)
    bought = [key for key in ours.purchased if key not in known]
    if bought:
        result.purchased = list(dict.fromkeys([*bought, *result.purchased]))[:200]
    result.persisted = fresh.persisted or ours.persisted
    for name in _SET_BY_REQUESTS:
        mine = getattr(ours, name)
        if mine != getattr(base, name):
            setattr(result, name, mine)
    return result


def join(cached: ProfileData, stored: ProfileData, now: float) -> ProfileData:
    """The cache's copy of a profile joined with the database's, each of which may hold what
    the other missed while the cache was unreachable. The database decides the account, the
    group and the orders; the cache's copy keeps what only it holds (purchases, popup and
    cart times)."""
    result = cached.copy()
    if stored.first_seen < cached.first_seen:
        result.first_seen, result.first_referrer = stored.first_seen, stored.first_referrer
    result.last_seen = max(cached.last_seen, stored.last_seen)
    if (stored.visit_count, stored.visit_started) > (cached.visit_count, cached.visit_started):
        result.visit_count = stored.visit_count
        result.visit_started = stored.visit_started
        result.referrer, result.device = stored.referrer, stored.device or cached.device
    known = set(cached.recently_viewed)
    newer = [key for key in stored.recently_viewed if key not in known]
    limit = int(app_settings.RECENTLY_VIEWED_MAX)
    result.recently_viewed = list(dict.fromkeys([*newer, *cached.recently_viewed]))[:limit]
    for key, count in stored.product_views.items():
        result.product_views[key] = max(count, result.product_views.get(key, 0))
    if len(result.product_views) > limit * 2:
        keep = sorted(result.product_views.items(), key=lambda item: -item[1])[: limit * 2]
        result.product_views = dict(keep)
    half_life = app_settings.interest_half_life_seconds
    for key, (score, since) in stored.interests.items():
        mine = result.interests.get(key)
        if mine is None or decayed(score, since, now, half_life) > decayed(
            mine[0], mine[1], now, half_life
        ):
            result.interests[key] = [score, since]
    if len(result.interests) > int(app_settings.CATEGORY_INTEREST_MAX):
        ranked = result.ranked_interests(now)[: int(app_settings.CATEGORY_INTEREST_MAX)]
        result.interests = {key: result.interests[key] for key, _ in ranked}
    for name in _ORDERS:  # counted in the database only
        setattr(result, name, getattr(stored, name))
    result.user_id, result.control_group = stored.user_id, stored.control_group
    if stored.signed_up_at and (result.signed_up_at or 0) < stored.signed_up_at:
        result.signed_up_at = stored.signed_up_at
    result.referred_by = cached.referred_by or stored.referred_by
    result.persisted = True
    return result
