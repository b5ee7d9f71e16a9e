"""django-anymail: the tracking webhooks of the shop's email service (SES, Postmark, Mailgun,
SendGrid…) suppress the addresses that bounce or complain. Connected by the app when
django-anymail is installed; the shop only sets up Anymail's tracking webhook."""

from __future__ import annotations

from typing import Any

from ..emails.suppression import on_delivery_event


def on_tracking(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    if getattr(event, "recipient", None):
        on_delivery_event(str(event.event_type), event.recipient)


def connect() -> None:
    from anymail.signals import tracking

    tracking.connect(on_tracking, dispatch_uid="personalization.anymail.tracking")
