"""Fitting the recommender on the shop's own interactions and storing its lists.

``recompute_all`` (nightly) reads the last ``RECOMMENDATION_HISTORY_DAYS`` of product
interactions, fits every list and replaces them; ``refresh_trending`` (every few minutes)
refits only the trending lists over ``RECOMMENDATION_TRENDING_DAYS``. Both are periodic jobs
(:mod:`personalization.jobs`); serving also asks for the first fit of a new shop by itself
(:mod:`.coldstart`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from ..conf import app_settings
from ..products import get_adapter
from . import coldstart, engine, store
from .base import Interaction

logger = logging.getLogger("personalization")


def interactions(since: dt.datetime) -> Iterator[Interaction]:
    """The product interactions since ``since``, oldest first."""
    from ..models import ProductInteraction

    rows = (
        ProductInteraction.objects.filter(created_at__gte=since)
        .order_by("created_at")
        .values_list("visitor_id", "product_id", "created_at", "kind", "quantity", "country")
    )
    for visitor_id, product_id, at, kind, quantity, country in rows.iterator(chunk_size=20_000):
        yield Interaction(
            visitor=visitor_id,
            product=product_id,
            at=at,
            kind=kind,
            country=country,
            quantity=float(quantity),
        )


def catalog() -> tuple[dict[str, str], set[str]]:
    """Every product's category key, and the replenishable products, from the adapter."""
    adapter = get_adapter()
    categories: dict[str, str] = {}
    replenishable: set[str] = set()
    for product in adapter.get_queryset().iterator(chunk_size=2000):
        key = str(adapter.pk(product))
        category = adapter.category_key(product)
        if category:
            categories[key] = str(category)
        if adapter.is_replenishable(product):
            replenishable.add(key)
    return categories, replenishable


def recompute_all(now: dt.datetime | None = None) -> dict[str, Any]:
    """Fit every list on the recent history and replace the stored lists."""
    started = time.monotonic()
    now = now or timezone.now()
    since = now - dt.timedelta(days=float(app_settings.RECOMMENDATION_HISTORY_DAYS))
    categories, replenishable = catalog()
    history = list(interactions(since))
    lists = engine.fit(history, now=now, categories=categories, replenishable=replenishable)
    written = store.save_lists(lists)
    coldstart.mark_fitted(now, len(history))
    result = {
        "interactions": len(history),
        "lists": written,
        "seconds": round(time.monotonic() - started, 3),
    }
    logger.info("personalization: recommendations recomputed: %s", result)
    return result


def refresh_trending(now: dt.datetime | None = None) -> dict[str, Any]:
    """Refit only the trending lists, over the last RECOMMENDATION_TRENDING_DAYS."""
    started = time.monotonic()
    now = now or timezone.now()
    since = now - dt.timedelta(days=float(app_settings.RECOMMENDATION_TRENDING_DAYS))
    recent = list(interactions(since))
    lists = engine.fit_trending(recent, now=now)
    written = store.save_lists(lists)
    return {
        "interactions": len(recent),
        "lists": written,
        "seconds": round(time.monotonic() - started, 3),
    }
