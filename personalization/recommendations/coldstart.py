"""Cold start: what serving does before the recommender has learnt enough.

* :func:`fill` — products that fill a list a strategy leaves short, read from the catalogue
  and the orders: the fitted best-seller and popularity lists, else what was most bought,
  added to the cart and viewed over ``RECOMMENDATION_TRENDING_DAYS``, then the newest
  products; only available ones. Cached briefly, so it costs warm serving nothing.
* :func:`request_fit_if_due` — asks for a fit (``jobs.enqueue("recommendations")``) when the
  lists were never fitted, or are past :data:`STALE_AFTER` (no one runs the nightly job), or
  were fitted on a young shop's first few interactions more than :data:`YOUNG_REFIT_AFTER`
  ago — each time only when interactions came in since. It reads the database at most once
  per check period per process, never per request.
* :func:`mark_fitted` — the fit's own record (``SharedState``), which every process reads.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

from .. import resilience
from ..conf import app_settings, on_settings_change
from ..products import get_adapter, get_product_model, valid_keys
from .base import CART, PURCHASE, VIEW

logger = logging.getLogger("personalization")

# Filling ---------------------------------------------------------------------------------
FILL_KEY = "pzn:v1:recommendations-fill"
FILL_SECONDS = 300  # in the shared cache
FILL_LOCAL_SECONDS = 60.0  # in this process
FILL_RETRY_SECONDS = 10.0  # after the database failed
# How much a visitor's strongest interaction with a product counts (as the fitted lists do).
WANTED_WEIGHTS = {PURCHASE: 5, CART: 3, VIEW: 1}
# Fields whose latest value marks a catalogue's newest products (the primary key otherwise).
NEWEST_FIELDS = ("date_created", "created_at", "created", "date_added", "added_at")

_fill: dict[str, Any] = {"keys": None, "until": 0.0}


def fill_size() -> int:
    """How many products :func:`fill` keeps: enough for the largest list, twice over."""
    return max(8, int(app_settings.RECOMMENDATION_MAX_LIMIT) * 2)


def fill() -> list[str]:
    """Primary keys (as strings) of available products to fill short lists with, best first.
    Warm: no SQL, no cache round trip; once a minute a cache read; every few minutes (per
    shop, or per process with a local-memory cache) three queries. Never raises."""
    now = time.monotonic()
    keys = _fill["keys"]
    if keys is not None and now < _fill["until"]:
        return list(keys)
    key = FILL_KEY
    try:
        cache = resilience.cache()
        key = f"{FILL_KEY}:{get_product_model()._meta.label_lower}"
        keys = cache.get(key)
    except Exception:
        logger.warning("personalization: cache unavailable for recommendations", exc_info=True)
        keys = None
    local_seconds = FILL_LOCAL_SECONDS
    if keys is None:
        try:
            keys = compute_fill()
        except Exception:
            logger.exception("personalization: could not read products to fill recommendations")
            keys, local_seconds = [], FILL_RETRY_SECONDS
        else:
            try:
                resilience.cache().set(key, keys, FILL_SECONDS)
            except Exception:
                logger.warning("personalization: could not cache recommendations", exc_info=True)
    _fill.update(keys=list(keys), until=now + local_seconds)
    return list(keys)


def compute_fill(size: int | None = None) -> list[str]:
    """The products :func:`fill` serves, read now (two or three queries)."""
    from .store import SharedStore

    size = size or fill_size()
    store = SharedStore()
    ranked: list[str] = []
    for name in ("bestsellers", "popular_recent", "popular"):
        ranked.extend(product for product, _ in store.get(name))
    ranked = list(dict.fromkeys(ranked))
    if len(ranked) < size:
        ranked = list(dict.fromkeys([*ranked, *most_wanted(size * 2)]))
    adapter = get_adapter()
    chosen = available(adapter, ranked)[:size]
    if len(chosen) < size:
        newest = adapter.get_queryset().order_by(*newest_first(adapter.model))[: size * 2]
        seen = set(chosen)
        for product in newest:
            key = str(adapter.pk(product))
            if key not in seen and adapter.is_available(product):
                seen.add(key)
                chosen.append(key)
                if len(chosen) >= size:
                    break
    return chosen


def most_wanted(limit: int, now: dt.datetime | None = None) -> list[str]:
    """Product ids most bought, added to the cart and viewed over the last
    ``RECOMMENDATION_TRENDING_DAYS``: distinct visitors, weighed by :data:`WANTED_WEIGHTS`."""
    from ..models import ProductInteraction

    since = (now or timezone.now()) - dt.timedelta(
        days=float(app_settings.RECOMMENDATION_TRENDING_DAYS)
    )
    score: Any = None
    for kind, weight in WANTED_WEIGHTS.items():
        term = Count("visitor", filter=Q(kind=kind), distinct=True) * weight
        score = term if score is None else score + term
    rows = (
        ProductInteraction.objects.filter(created_at__gte=since)
        .values("product_id")
        .annotate(wanted=score)
        .order_by("-wanted", "product_id")
        .values_list("product_id", flat=True)
    )
    return [str(product) for product in rows[:limit]]


def available(adapter: Any, keys: list[str]) -> list[str]:
    """The keys of available products among ``keys``, in order (one query)."""
    valid = valid_keys(keys, adapter.model)
    if not valid:
        return []
    found = {str(adapter.pk(item)): item for item in adapter.get_queryset().filter(pk__in=valid)}
    return [key for key in valid if key in found and adapter.is_available(found[key])]


def newest_first(model: type[models.Model]) -> list[str]:
    """An ordering that puts the catalogue's newest products first."""
    for name in NEWEST_FIELDS:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if isinstance(field, models.DateField):
            return [f"-{name}", "-pk"]
    return ["-pk"]


# The first fit -----------------------------------------------------------------------------
FITTED_KEY = "pzn:v1:recommendations-fitted"
# Lists older than this were not refitted by the nightly job (scheduled daily): fit them now.
STALE_AFTER = dt.timedelta(hours=26)
# While the last fit saw fewer interactions than this, refit hourly as data comes in.
YOUNG_INTERACTIONS = 1000
YOUNG_REFIT_AFTER = dt.timedelta(hours=1)
# How often a process looks again while a fit is asked for or data is awaited.
RECHECK_SECONDS = 60.0
# Further requests for a fit within this time are dropped (a fit of a big shop takes a while).
DEDUPE_SECONDS = 900

_fit: dict[str, float] = {"next_check": 0.0}
_lock = threading.Lock()


def mark_fitted(at: dt.datetime, interactions: int) -> None:
    """Record a fit of every list, as of ``at``, on ``interactions`` interactions. Never
    raises: bookkeeping does not fail the fit."""
    from ..models import SharedState

    value = f"{at.isoformat(timespec='seconds')} {int(interactions)}"
    try:
        SharedState.objects.update_or_create(key=FITTED_KEY, defaults={"value": value})
    except Exception:
        logger.warning("personalization: could not record the recommendation fit", exc_info=True)
        return
    _fit["next_check"] = _due_at(at, interactions).timestamp()


def last_fit() -> tuple[dt.datetime, int] | None:
    """(as of when, on how many interactions) of the last fit of every list; None if none."""
    from ..models import SharedState

    value = SharedState.objects.filter(key=FITTED_KEY).values_list("value", flat=True).first()
    if not value:
        return None
    try:
        at, interactions = value.split(" ", 1)
        return dt.datetime.fromisoformat(at), int(interactions)
    except ValueError:
        return None


def _due_at(at: dt.datetime, interactions: int) -> dt.datetime:
    return at + (YOUNG_REFIT_AFTER if interactions < YOUNG_INTERACTIONS else STALE_AFTER)


def fit_reason(now: dt.datetime | None = None) -> tuple[str | None, dt.datetime]:
    """Why every list should be fitted now ("never fitted", "young", "stale"), or None; and
    when to look again. Two queries at most."""
    from ..models import ProductInteraction

    now = now or timezone.now()
    recheck = now + dt.timedelta(seconds=RECHECK_SECONDS)
    fitted = last_fit()
    if fitted is None:
        reason = "never fitted"
        since = now - dt.timedelta(days=float(app_settings.RECOMMENDATION_HISTORY_DAYS))
    else:
        at, interactions = fitted
        due = _due_at(at, interactions)
        if now < due:
            return None, max(due, recheck)
        reason = "stale" if now - at >= STALE_AFTER else "young"
        since = at
    if not ProductInteraction.objects.filter(created_at__gt=since).exists():
        return None, recheck  # nothing new to learn from yet
    return reason, recheck


def request_fit_if_due() -> None:
    """Ask for a fit of every list when :func:`fit_reason` gives one. No SQL until the next
    check is due (wall-clock time, shared with the fit's record). Never raises."""
    now = time.time()
    if now < _fit["next_check"]:
        return
    with _lock:
        if now < _fit["next_check"]:
            return
        _fit["next_check"] = now + RECHECK_SECONDS  # the other threads wait for this check
    try:
        reason, recheck = fit_reason()
    except Exception:
        logger.warning(
            "personalization: could not tell whether to fit recommendations", exc_info=True
        )
        return
    _fit["next_check"] = recheck.timestamp()
    if reason is None:
        return
    from .. import jobs

    logger.info("personalization: recommendation lists %s; asking for a fit", reason)
    jobs.enqueue("recommendations", dedupe_seconds=DEDUPE_SECONDS)


@on_settings_change
def forget_local() -> None:
    """Drop this process's memo of the fill and of the next check (tests; a settings
    change)."""
    _fill.update(keys=None, until=0.0)
    _fit["next_check"] = 0.0
