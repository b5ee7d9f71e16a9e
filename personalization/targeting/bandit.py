"""Thompson sampling over banners: learn, per segment, which banner gets clicked most.

Each banner in a segment has a Beta(1 + clicks, 1 + exposed visitors - clicks) belief about
its click-through rate; each rendering draws one sample per candidate and shows the best.
Counts come from a roll-up (:func:`refresh_stats`, run by Celery beat) kept in the cache,
so choosing costs no SQL.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from .. import resilience

STATS_KEY = "pzn:v1:bandit-stats"
LOCAL_SECONDS = 60.0
WINDOW_DAYS = 30

_local: dict[str, Any] = {"stats": None, "loaded": 0.0}
_random = random.SystemRandom()


def refresh_stats(window_days: int = WINDOW_DAYS) -> int:
    """Count, per (banner, segment), exposed visitors and those who clicked; store in cache."""
    from ..models import Event, Exposure

    since = timezone.now() - dt.timedelta(days=window_days)
    rows = (
        Exposure.objects.filter(kind=Exposure.BANNER, is_control=False, created_at__gte=since)
        .exclude(content="default")
        .values("content", "segment")
        .annotate(
            shown=Count("visitor", distinct=True),
            clicked=Count("visitor", distinct=True, filter=Q(events__kind=Event.CLICK)),
        )
    )
    stats = {f"{row['content']}|{row['segment']}": (row["shown"], row["clicked"]) for row in rows}
    resilience.cache().set(STATS_KEY, stats, None)
    _local["stats"], _local["loaded"] = stats, time.monotonic()
    return len(stats)


def _stats() -> dict[str, tuple[int, int]]:
    now = time.monotonic()
    if _local["stats"] is None or now - _local["loaded"] > LOCAL_SECONDS:
        _local["stats"] = resilience.cache().get(STATS_KEY) or {}
        _local["loaded"] = now
    stats: dict[str, tuple[int, int]] = _local["stats"]
    return stats


def forget_local() -> None:
    _local["stats"], _local["loaded"] = None, 0.0


def choose(candidates: list[tuple[Any, str]], rng: random.Random | None = None) -> Any:
    """Pick among (banner, segment) pairs by Thompson sampling on their click counts."""
    stats = _stats()
    rng = rng or _random
    best, best_draw = None, -1.0
    for banner, segment in candidates:
        shown, clicked = stats.get(f"{banner.key}|{segment}", (0, 0))
        clicked = min(clicked, shown)
        draw = rng.betavariate(1 + clicked, 1 + shown - clicked)
        if draw > best_draw:
            best, best_draw = banner, draw
    return best
