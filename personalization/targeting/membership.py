"""Counting a segment's members among recent visitors, for the admin."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.utils import timezone

from ..profiling.geo import Geo
from ..profiling.storage import profile_from_row
from ..profiling.visitor import VisitorProfile
from .definitions import compile_segment
from .rules import RuleContext

DEFAULT_DAYS = 30


def visitor_from_row(row: Any, now: float) -> VisitorProfile:
    visitor = VisitorProfile(profile_from_row(row), now=now)
    visitor._geo = Geo(
        country_code=row.country_code or None, region=row.region or None, city=row.city or None
    )
    return visitor


def count_members(segment: Any, days: int = DEFAULT_DAYS, save: bool = True) -> int:
    """How many visitors seen in the last ``days`` match the segment's rules now."""
    from ..models import Visitor

    compiled = compile_segment(segment)
    count = 0
    if compiled is not None:
        now = time.time()
        since = timezone.now() - dt.timedelta(days=days)
        for row in Visitor.objects.seen_since(since).iterator(chunk_size=2000):
            if compiled.matches(RuleContext(visitor_from_row(row, now), now)):
                count += 1
    if save:
        type(segment).objects.filter(pk=segment.pk).update(
            matching_visitors=count, counted_at=timezone.now()
        )
    return count


def count_all(days: int = DEFAULT_DAYS) -> int:
    from ..models import Segment

    segments = list(Segment.objects.prefetch_related("rules"))
    for segment in segments:
        count_members(segment, days)
    return len(segments)


def count(segment_id: int | None = None, days: int = DEFAULT_DAYS) -> int:
    """The job: recount one segment (0 when it no longer exists), or every segment."""
    from ..models import Segment

    if segment_id is None:
        return count_all(days)
    segment = Segment.objects.prefetch_related("rules").filter(pk=segment_id).first()
    return count_members(segment, days) if segment is not None else 0
