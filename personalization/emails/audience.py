"""Who may receive email: consent from a customer's account and from an import, next to the
popup's (``api/signup/``). Every address is validated, kept once (case-insensitively), with
the words agreed to, when and where."""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

logger = logging.getLogger("personalization")

MAX_CONSENT_CHARS = 500


def normalized(email: Any) -> str | None:
    """The address stripped, or None when it is not a valid address."""
    if not isinstance(email, str):
        return None
    address = email.strip()
    try:
        validate_email(address)
    except ValidationError:
        return None
    return address


def subscribe(
    email: str,
    consent_text: str,
    *,
    source: str,
    visitor_id: str | None = None,
    user: Any = None,
    consent_at: dt.datetime | None = None,
    renew: bool = False,
) -> Any:
    """Record that ``email`` agreed to ``consent_text``; the :class:`EmailRecipient`, or None
    for an invalid address. An address known already keeps its consent and gains the visitor
    and user it lacked; with ``renew`` (a customer who opts in again themselves) an address
    that unsubscribed is subscribed again with the new consent. A bounced or complained
    address stays suppressed whatever happens."""
    from ..models import EmailRecipient

    address = normalized(email)
    if address is None or not consent_text.strip():
        return None
    consent_at = consent_at or timezone.now()
    existing = EmailRecipient.objects.filter(email__iexact=address).first()
    if existing is None:
        try:
            with transaction.atomic():
                return EmailRecipient.objects.create(
                    email=address,
                    visitor_id=visitor_id,
                    user=user,
                    consent_at=consent_at,
                    consent_text=consent_text.strip()[:MAX_CONSENT_CHARS],
                    consent_source=source,
                )
        except IntegrityError:  # recorded by a request at the same moment
            existing = EmailRecipient.objects.filter(email__iexact=address).first()
            if existing is None:
                raise
    changed = []
    if existing.visitor_id is None and visitor_id:
        existing.visitor_id = visitor_id
        changed.append("visitor")
    if existing.user_id is None and user is not None:
        existing.user = user
        changed.append("user")
    if renew and (existing.unsubscribed_at is not None or existing.unsubscribed_flows):
        existing.unsubscribed_at, existing.unsubscribed_flows = None, []
        existing.consent_at, existing.consent_source = consent_at, source
        existing.consent_text = consent_text.strip()[:MAX_CONSENT_CHARS]
        changed += [
            "unsubscribed_at", "unsubscribed_flows", "consent_at", "consent_source",
            "consent_text",
        ]  # fmt: skip
    if changed:
        existing.save(update_fields=changed)
    return existing


def subscribe_customer(request: Any, consent_text: str) -> Any:
    """A logged-in customer opts in (an account page's checkbox): their account's address,
    linked to the account and to this browser's visitor. None without a logged-in customer
    with a valid address."""
    from ..models import EmailRecipient

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    visitor = getattr(request, "visitor", None)
    visitor_id = visitor.id if visitor is not None and visitor.is_tracked else None
    return subscribe(
        getattr(user, "email", "") or "",
        consent_text,
        source=EmailRecipient.SOURCE_ACCOUNT,
        visitor_id=visitor_id,
        user=user,
        renew=True,
    )


def unsubscribe_customer(request: Any) -> bool:
    """A logged-in customer opts out from their account: every address of the account."""
    from ..models import EmailRecipient

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    return bool(
        EmailRecipient.objects.filter(user=user, unsubscribed_at__isnull=True).update(
            unsubscribed_at=timezone.now()
        )
    )


@dataclass
class Imported:
    added: int = 0
    known: int = 0
    invalid: int = 0


def import_rows(rows: Iterable[dict[str, Any]], consent_text: str) -> Imported:
    """Addresses from a list the shop kept with consent: ``email`` and, when known, the
    ``consented_at`` date (ISO 8601; else now). Known addresses keep what they have (an
    import never subscribes again an address that unsubscribed); invalid ones are counted
    and skipped."""
    from ..models import EmailRecipient

    result = Imported()
    for row in rows:
        address = normalized(row.get("email"))
        if address is None:
            result.invalid += 1
            continue
        when = parse_datetime((row.get("consented_at") or "").strip() or "") if row else None
        if when is not None and timezone.is_naive(when):
            when = timezone.make_aware(when)
        if when is not None and when > timezone.now():
            when = None
        if EmailRecipient.objects.filter(email__iexact=address).exists():
            result.known += 1
            continue
        subscribe(address, consent_text, source=EmailRecipient.SOURCE_IMPORT, consent_at=when)
        result.added += 1
    return result


def read_csv(path: Any) -> Iterable[dict[str, Any]]:
    """The rows of a CSV file with a header line (``email``, optionally ``consented_at``),
    streamed."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        names = {name.strip().lower(): name for name in reader.fieldnames or []}
        if "email" not in names:
            raise ValueError("the file has no 'email' column in its first line")
        for row in reader:
            yield {key: row.get(name) for key, name in names.items()}
