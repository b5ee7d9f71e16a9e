"""Settings for the test suite (never the demo's): SQLite + local memory by default;
PZN_TEST_DATABASE_URL / PZN_TEST_REDIS_URL switch to PostgreSQL and Redis."""

import importlib.util
import os
from urllib.parse import urlsplit

import django

from tests.databases import postgresql_from_env

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "shop.example", "www.shop.example", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "Europe/Berlin"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # Celery and django-celery-beat are optional: the suite also runs without them.
    *(["django_celery_beat"] if importlib.util.find_spec("django_celery_beat") else []),
    "personalization",
    "tests.testapp",
    # The demo shop's apps, for its own tests (tests/test_demo_shop.py).
    "shop_demo.catalog",
    "shop_demo.cart",
    "shop_demo.orders",
    "shop_demo.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "personalization.middleware.VisitorMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_postgresql = postgresql_from_env("test_personalization")
if _postgresql:
    DATABASES = {"default": _postgresql}
    if os.environ.get("PZN_CELERY_WORKER"):
        # The Celery worker of the CI run works on the database the test run creates.
        DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

_redis_url = os.environ.get("PZN_TEST_REDIS_URL", "")
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _redis_url and _xdist_worker.removeprefix("gw").isdigit():
    # Tests clear the cache (FLUSHDB): each pytest-xdist worker gets a Redis database of its
    # own, counting down from the one named (the Celery broker of CI uses the one below it).
    _n = int(_xdist_worker.removeprefix("gw"))
    if _n:
        _base = urlsplit(_redis_url)
        _db = int((_base.path or "/0").lstrip("/") or 0)
        _redis_url = _base._replace(path=f"/{(_db - 2 - _n) % 16}").geturl()
if _redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _redis_url,
            "KEY_PREFIX": "pzn-tests",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if django.VERSION >= (6, 1):
    # Django 6.1 sends mail through MAILERS (the test runner keeps it in memory).
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
STATIC_URL = "/static/"
# Tasks run eagerly, except in tests/test_worker.py, which sends them to a real worker when
# PZN_TEST_CELERY_BROKER names a broker (CI starts the worker, with PZN_CELERY_WORKER set: what
# the worker's tasks send, such as a chord's callback, goes through the broker too).
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("PZN_CELERY_WORKER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = os.environ.get("PZN_TEST_CELERY_BROKER", "memory://")
CELERY_RESULT_BACKEND = os.environ.get("PZN_TEST_CELERY_BROKER") or None

PERSONALIZATION = {
    "PRODUCT_MODEL": "testapp.Product",
    "PRODUCT_VIEW_URLS": {"shop:product": "slug"},
    "CONTROL_GROUP_PERCENT": 10,
    # Work queued without a broker runs at commit in the test's own thread (its database).
    "JOBS_FALLBACK": "inline",
    # Product views are written with the page, in the test's own transaction; the background
    # writer has tests of its own (tests/test_deferred_views.py).
    "VIEW_WRITE_DELAY_SECONDS": 0,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"personalization": {"level": "DEBUG"}},
}
