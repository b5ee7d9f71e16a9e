"""The test settings with a user model without ``PermissionsMixin`` (``plainuser.PlainUser``),
on one SQLite file (``PZN_CUSTOMUSER_DB``), without the demo shop."""

import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [
    *(app for app in INSTALLED_APPS if not app.startswith("shop_demo")),
    "tests.plainuser",
]
AUTH_USER_MODEL = "plainuser.PlainUser"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("PZN_CUSTOMUSER_DB", ":memory:"),
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
