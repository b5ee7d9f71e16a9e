"""Settings of the processes that ``tests/processes.py`` runs: the test settings, with one
SQLite file that every process shares (``PZN_PROCESS_DB``) and, in each process, Django's
default local-memory cache, which no other process sees."""

import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, PERSONALIZATION

INSTALLED_APPS = [
    app for app in INSTALLED_APPS if not app.startswith("shop_demo") and app != "django_celery_beat"
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["PZN_PROCESS_DB"],
        "OPTIONS": {"timeout": 30},
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PERSONALIZATION = {
    **PERSONALIZATION,
    "SHARED_STATE_SECONDS": float(os.environ.get("PZN_SHARED_STATE_SECONDS", "30")),
    "JOBS_FALLBACK": "inline",
    "CONTROL_GROUP_PERCENT": 0,
}
