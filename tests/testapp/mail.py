"""An email backend that refuses every message, as an SMTP server that is down would."""

from __future__ import annotations

from django.core.mail.backends.base import BaseEmailBackend


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError("connection refused")
