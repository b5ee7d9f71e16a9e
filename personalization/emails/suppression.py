"""What an email service reports back: bounces and complaints suppress an address (no more
email to it), an unsubscription through the service unsubscribes it from all."""

from __future__ import annotations

import logging

from django.utils import timezone

logger = logging.getLogger("personalization")

# The reasons an address is suppressed for, as email services report them.
SUPPRESSING = {"bounced", "complained", "rejected", "failed"}


def suppress(email: str, reason: str) -> int:
    """Stop all email to ``email`` (any case) for ``reason``; how many addresses changed."""
    from ..models import EmailRecipient

    changed = EmailRecipient.objects.filter(
        email__iexact=(email or "").strip(), suppressed_at__isnull=True
    ).update(suppressed_at=timezone.now(), suppressed_reason=str(reason)[:32])
    if changed:
        logger.info("personalization: suppressed an email address (%s)", reason)
    return changed


def unsubscribe_all(email: str) -> int:
    from ..models import EmailRecipient

    return EmailRecipient.objects.filter(
        email__iexact=(email or "").strip(), unsubscribed_at__isnull=True
    ).update(unsubscribed_at=timezone.now())


def on_delivery_event(event_type: str, email: str) -> int:
    """Feed one event of an email service in: ``bounced``, ``complained``, ``rejected`` or
    ``failed`` suppress the address, ``unsubscribed`` unsubscribes it; others are ignored."""
    if event_type in SUPPRESSING:
        return suppress(email, event_type)
    if event_type == "unsubscribed":
        return unsubscribe_all(email)
    return 0
