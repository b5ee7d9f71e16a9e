"""Which segments a visitor is in now, computed in memory from the profile."""

from __future__ import annotations

import logging
from typing import Any

from .definitions import current
from .rules import RuleContext

logger = logging.getLogger("personalization")


def segments_for(visitor: Any, now: float | None = None) -> frozenset[str]:
    """Slugs of the active segments whose rules the visitor meets. Never raises."""
    if not visitor.is_tracked:
        return frozenset()
    ctx = RuleContext(visitor, visitor._now if now is None else now)
    definitions = current()
    results: list[bool | None] = [None] * definitions.rule_slots
    matched = []
    for segment in definitions.segments:
        try:
            if segment.matches(ctx, results):
                matched.append(segment.slug)
        except Exception:
            logger.exception("personalization: segment %r failed to evaluate", segment.slug)
    return frozenset(matched)
