"""An email backend for benchmarks: each message is serialised to MIME bytes, as an SMTP
backend does before writing them to the socket (``message.message().as_bytes()``), counted,
and dropped. Nothing is kept, so memory does not grow with the number of emails.

    EMAIL_BACKEND = "benchmarks.email_backend.SerializingBackend"

The counts are the class's, shared by every instance: ``EmailMessage.send()`` opens a backend
of its own for each message.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend


class SerializingBackend(BaseEmailBackend):
    """Serialise, count and drop every message."""

    _lock = threading.Lock()
    messages = 0
    bytes_total = 0
    connections = 0  # backends opened (one per ``EmailMessage.send()`` without a connection)

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.messages = cls.bytes_total = cls.connections = 0

    @classmethod
    def counts(cls) -> dict[str, int]:
        with cls._lock:
            return {
                "messages": cls.messages,
                "bytes": cls.bytes_total,
                "connections": cls.connections,
            }

    def open(self) -> bool:
        if getattr(self, "_opened", False):
            return False
        self._opened = True
        with self._lock:
            type(self).connections += 1
        return True

    def close(self) -> None:
        self._opened = False

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        if not email_messages:
            return 0
        sent, size = 0, 0
        for message in email_messages:
            if not message.recipients():
                continue
            size += len(message.message().as_bytes())
            sent += 1
        with self._lock:
            cls = type(self)
            cls.messages += sent
            cls.bytes_total += size
            if not getattr(self, "_opened", False):
                # What Django's SMTP backend does for a backend not opened first: a
                # connection for this call alone, closed after it.
                cls.connections += 1
        return sent
