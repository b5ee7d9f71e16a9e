"""Fitting the recommender on the shop's own interactions and storing its lists.

``recompute_all`` (nightly) fits every list on the last ``RECOMMENDATION_HISTORY_DAYS`` of
product interactions and switches them in; ``refresh_trending`` (every few minutes) refits
only the trending lists over ``RECOMMENDATION_TRENDING_DAYS``. Both are periodic jobs
(:mod:`personalization.jobs`); serving also asks for the first fit of a new shop by itself
(:mod:`.coldstart`).

The nightly fit runs in parts (:mod:`.parts`): in this process, one after another, or with
``RECOMMENDATION_FIT_PARTS`` set and a Celery app with a broker, side by side on the workers
(:mod:`.distributed`). The lists are the same either way.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from ..conf import app_settings
from . import distributed, engine, parts, store
from .base import KINDS, Interaction


def interactions(since: dt.datetime, until: dt.datetime | None = None) -> Iterator[Interaction]:
    """The product interactions created since ``since`` (and before ``until``), oldest first."""
    from ..models import ProductInteraction

    # A row of a kind the fit does not know (written by other code) is left out, not fatal.
    rows = ProductInteraction.objects.filter(created_at__gte=since, kind__in=KINDS)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    values = rows.order_by("created_at", "id").values_list(
        "visitor_id", "product_id", "created_at", "kind", "quantity", "country"
    )
    for visitor_id, product_id, at, kind, quantity, country in values.iterator(chunk_size=20_000):
        yield Interaction(
            visitor=visitor_id,
            product=product_id,
            at=at,
            kind=kind,
            country=country,
            quantity=float(quantity),
        )


def recompute_all(now: dt.datetime | None = None) -> dict[str, Any]:
    """Fit every list as of ``now`` on the recent history and switch them in: on the Celery
    workers when ``RECOMMENDATION_FIT_PARTS`` is set and a Celery app with a broker takes the
    parts (the result then says they were queued), else in this process."""
    now = now or timezone.now()
    split = app_settings.RECOMMENDATION_FIT_PARTS
    plan = parts.plan(now, parts=split)
    parts.discard_others(plan)
    if split:
        sent = distributed.dispatch(plan)
        if sent is not None:
            return sent
        # Whatever was sent before the broker failed must not mix with this fit's lists.
        plan = parts.plan(now, parts=split)
    return parts.run_here(plan)


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
