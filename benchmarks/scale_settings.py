"""Settings for the report-at-scale benchmark: the test settings on a PostgreSQL database of
its own (PZN_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/pzn_scale)."""

import os
from urllib.parse import urlsplit

from tests.settings import *  # noqa: F403

_url = urlsplit(
    os.environ.get("PZN_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/pzn_scale")
)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": (_url.path or "/pzn_scale").lstrip("/"),
        "USER": _url.username or "postgres",
        "PASSWORD": _url.password or "",
        "HOST": _url.hostname or "127.0.0.1",
        "PORT": str(_url.port or 5432),
    }
}
