"""What every part of a fit reads: the same interactions, encoded with the same codes.

A fit is pinned to a window of interactions: created in ``[since, now)`` and with an id no
greater than the last one when the fit was planned (``until_id``), so that rows written while
its parts run — a view committed a second after its ``created_at`` — reach none of them. The
rows are read in order of ``(created_at, id)`` and coded in order of first appearance
(:func:`.engine.encode_rows`), so every part, on any host, sees every product under the same
code: the similarity families' blocks of products are ranges of those codes.

A process keeps the encoded interactions of the fit it last read (:func:`events`), so that a
worker which runs several parts of a fit reads them once; :func:`release_when_idle` lets them
go when no part of that fit came for a while, and :func:`release` at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..products import get_adapter
from . import engine
from .base import KINDS

# How long a worker keeps the interactions of its last fit after a part, for the next part.
KEEP_SECONDS = 120.0
CHUNK_SIZE = 20_000

_kept: dict[str, Any] = {"fit": None, "events": None, "used": 0.0}
_lock = threading.Lock()


def rows(
    since: dt.datetime, now: dt.datetime, until_id: int | None = None
) -> Iterator[tuple[str, str, float, str, str, str]]:
    """(visitor, product, POSIX timestamp, kind, country, campaign) of the window's
    interactions, in order of ``(created_at, id)``, streamed from the database; the campaign
    is the visitor's latest (:func:`campaigns`).

    On PostgreSQL the time comes as whole microseconds since the epoch (reading 10 million
    rows took a third of the time it took as aware datetimes), and ``microseconds /
    1_000_000`` is the very float ``timestamp()`` gives."""
    from django.db import connection
    from django.db.models.expressions import RawSQL

    from ..models import ProductInteraction

    # A row of a kind the fit does not know (written by other code) is left out, not fatal.
    query = ProductInteraction.objects.filter(
        created_at__gte=since, created_at__lt=now, kind__in=KINDS
    )
    if until_id is not None:
        query = query.filter(id__lte=until_id)
    query = query.order_by("created_at", "id")
    campaign_of = campaigns(since)
    if connection.vendor == "postgresql":
        column = connection.ops.quote_name("created_at")
        epoch = RawSQL(f"(EXTRACT(EPOCH FROM {column}) * 1000000)::bigint", [])
        values = query.annotate(epoch_us=epoch).values_list(
            "visitor_id", "product_id", "epoch_us", "kind", "country"
        )
        for visitor, product, micro, kind, country in values.iterator(chunk_size=CHUNK_SIZE):
            yield visitor, product, micro / 1_000_000, kind, country, campaign_of.get(visitor, "")
        return
    dated = query.values_list("visitor_id", "product_id", "created_at", "kind", "country")
    for visitor, product, at, kind, country in dated.iterator(chunk_size=CHUNK_SIZE):
        yield visitor, product, at.timestamp(), kind, country, campaign_of.get(visitor, "")


def campaigns(since: dt.datetime) -> dict[str, str]:
    """The latest campaign (``utm_campaign``) of each visitor seen since ``since`` who came
    from one: one query, over visitors with a campaign only."""
    from ..models import Visitor

    query = Visitor.objects.filter(last_seen__gte=since).exclude(latest_campaign="")
    return dict(query.values_list("id", "latest_campaign").iterator(chunk_size=CHUNK_SIZE))


def last_id() -> int | None:
    """The id of the latest interaction written (one index lookup); None if there is none."""
    from ..models import ProductInteraction

    return ProductInteraction.objects.order_by("-id").values_list("id", flat=True).first()


def read(since: dt.datetime, now: dt.datetime, until_id: int | None = None) -> engine.Events:
    """The window's interactions, encoded."""
    return engine.encode_rows(rows(since, now, until_id), now)


def events(plan: dict[str, Any]) -> engine.Events:
    """The interactions of the plan's window, read once per process and fit (a part that is
    still using them when they are let go keeps its own reference)."""
    with _lock:
        if _kept["fit"] != plan["fit"]:
            _kept.update(fit=None, events=None)  # let the previous fit's go first
            since, now = (dt.datetime.fromisoformat(plan[key]) for key in ("since", "now"))
            _kept.update(events=read(since, now, plan["until_id"]), fit=plan["fit"])
        _kept["used"] = time.monotonic()
        return _kept["events"]  # type: ignore[no-any-return]


def release() -> None:
    """Forget the interactions this process keeps."""
    with _lock:
        _kept.update(fit=None, events=None, used=0.0)


def release_when_idle(seconds: float = KEEP_SECONDS) -> None:
    """Forget the kept interactions once no part used them for ``seconds``."""
    timer = threading.Timer(seconds, _release_if_idle, args=(seconds,))
    timer.daemon = True
    timer.start()


def _release_if_idle(seconds: float) -> None:
    with _lock:
        if time.monotonic() - _kept["used"] >= seconds * 0.99:
            _kept.update(fit=None, events=None, used=0.0)


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
