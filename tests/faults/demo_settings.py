"""The demo shop's own settings, run by the fault suite as ``make demo`` runs them (DEBUG),
with a database and media folder of its own (``PZN_FAULTS_DIR``) and its cache in the Redis
the suite starts (``REDIS_URL``), with the socket timeouts docs/getting-started.md recommends
unless the demo's settings already set them."""

import os
from pathlib import Path

from shop_demo.settings import *  # noqa: F403
from shop_demo.settings import CACHES, PERSONALIZATION

_HERE = Path(os.environ["PZN_FAULTS_DIR"])

ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _HERE / "shop.sqlite3",
        # A threaded server writes from several threads: wait for the lock, never fail.
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}
MEDIA_ROOT = _HERE / "media"
CACHES["default"]["OPTIONS"] = {
    "socket_connect_timeout": 0.25,
    "socket_timeout": 0.5,
    **CACHES["default"].get("OPTIONS", {}),
}
PERSONALIZATION = {
    **PERSONALIZATION,
    "GEOIP_PATH": str(_HERE / "geoip.mmdb"),
    "CACHE_FAILURE_COOLDOWN": float(os.environ.get("PZN_FAULTS_COOLDOWN", "30")),
}
