"""Personalized email: flows (what is due, :mod:`.flows`), claiming and sending once
(:mod:`.sending`), signed links (:mod:`.links`) and the views they lead to (:mod:`.views`)."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

logger = logging.getLogger("personalization")

_warned = {"site_url": False}


def run_due(**kwargs: Any) -> dict[str, int]:
    """The ``emails`` job: send every email that is due and retry the failed ones. Running it
    again, or twice at once, sends nothing twice."""
    from . import flows, links, sending

    counts = {"sent": 0, "control": 0, "sunset": 0, "failed": 0, "retried": 0}
    counts["confirmations"] = 0
    if links.site_url() is None:
        if not _warned["site_url"]:
            logger.warning("personalization: EMAIL_SITE_URL is not set: no email is sent")
            _warned["site_url"] = True
        return counts
    now = timezone.now()
    counts["confirmations"] = sending.send_confirmations(now)
    batch: list[flows.Due] = []
    products: dict[str, Any] = {}  # what emails show of each product, read once a run
    for item in flows.due(now):
        batch.append(item)
        if len(batch) >= sending.BATCH_SIZE:
            _count(sending.process_batch(batch, now, products), counts)
            batch = []
    _count(sending.process_batch(batch, now, products), counts)
    counts["retried"] = sending.retry_failed(now)
    return counts


def _count(sends: list[Any], counts: dict[str, int]) -> None:
    for send in sends:
        if send is not None:
            key = {"sent": "sent", "control": "control", "sunset": "sunset"}.get(send.status)
            counts[key or "failed"] += 1
