"""The test projects' PostgreSQL database from PZN_TEST_DATABASE_URL (the main suite's and the
Oscar sandbox's settings both read it); None when the variable is not set."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit


def postgresql_from_env(test_name: str, **options: Any) -> dict[str, Any] | None:
    """The ``default`` database named by PZN_TEST_DATABASE_URL, its test database called
    PZN_TEST_DB_NAME or ``test_name``; ``options`` are added to it."""
    database_url = os.environ.get("PZN_TEST_DATABASE_URL", "")
    if not database_url:
        return None
    url = urlsplit(database_url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": (url.path or "/postgres").lstrip("/") or "postgres",
        "USER": url.username or "postgres",
        "PASSWORD": url.password or "",
        "HOST": url.hostname or "127.0.0.1",
        "PORT": str(url.port or 5432),
        **options,
        "TEST": {"NAME": os.environ.get("PZN_TEST_DB_NAME", test_name)},
    }
