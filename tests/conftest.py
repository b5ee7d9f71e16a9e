"""Shared fixtures: a browser-like client, a small catalog and a controllable clock."""

from __future__ import annotations

import importlib.util
import itertools
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import caches
from django.test import Client

from personalization import products
from personalization.profiling import geo
from personalization.recommendations import coldstart, store
from personalization.targeting import bandit, definitions

if importlib.util.find_spec("celery"):
    from tests.celery_app import app as celery_app  # noqa: F401  (the default Celery app)

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

_counter = itertools.count(1)

# tests/oscar/ is a django-oscar shop with settings of its own, run by `nox -s oscar`.
collect_ignore = ["oscar"]


@pytest.fixture(autouse=True)
def _clean_state():
    """Every test starts with an empty cache, no open GeoIP reader and no state a process
    keeps (definitions, recommendation lists and their fill)."""
    caches["default"].clear()
    geo.close_reader()
    products.forget_all_view_info()
    definitions.forget_local()
    bandit.forget_local()
    store.forget_local()
    coldstart.forget_local()
    yield
    caches["default"].clear()
    geo.close_reader()


@pytest.fixture
def browser():
    """A test client that looks like a desktop browser."""
    return Client(HTTP_USER_AGENT=BROWSER_UA)


@pytest.fixture
def clock():
    """A controllable clock: ``clock.shift(seconds)`` moves time forward."""
    with time_machine.travel("2026-11-02 10:00:00+00:00", tick=False) as traveller:
        yield traveller


@pytest.fixture
def make_product(db):
    from tests.testapp.models import Category, Product

    def make(category: str = "camping", **fields):
        cat, _ = Category.objects.get_or_create(slug=category, defaults={"name": category.title()})
        n = next(_counter)
        values = {"name": f"Product {n}", "slug": f"product-{n}", "price": Decimal("19.90")}
        values.update(fields)
        return Product.objects.create(category=cat, **values)

    return make


@pytest.fixture
def demo(settings, tmp_path):
    """Requests go to the demo shop's URLs, templates and middleware, with the demo GeoIP
    database and nobody held out (tests that need a holdout set it)."""
    from personalization.testutils import DEMO_GEOIP_RECORDS, write_geoip_database
    from shop_demo import settings as demo_settings

    geoip = tmp_path / "demo-geoip.mmdb"
    write_geoip_database(geoip, DEMO_GEOIP_RECORDS)
    settings.ROOT_URLCONF = "shop_demo.urls"
    settings.TEMPLATES = demo_settings.TEMPLATES
    settings.MIDDLEWARE = demo_settings.MIDDLEWARE
    settings.STATIC_URL = "/static/"
    settings.MEDIA_URL = "/media/"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PERSONALIZATION = {
        **demo_settings.PERSONALIZATION,
        "GEOIP_PATH": str(geoip),
        "TRUSTED_PROXY_COUNT": 0,
        "CONTROL_GROUP_PERCENT": 0,
        # Product views in the request, in the test's own transaction (the background writer
        # has tests of its own).
        "VIEW_WRITE_DELAY_SECONDS": 0,
    }
    return settings


@pytest.fixture
def unreachable_cache(settings):
    """Profiles go to a Redis cache nobody listens on: every cache call fails."""
    settings.CACHES = {
        **settings.CACHES,
        "broken": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        },
    }
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CACHE_ALIAS": "broken"}
    return settings


@pytest.fixture
def no_celery_app():
    """A shop without a Celery app: Celery is not installed, or no app was ever created (Celery
    then makes a fallback app of its own, which has no broker)."""
    from personalization import jobs

    try:
        from celery import _state
    except ImportError:
        yield
        return
    saved = _state.default_app, _state._tls.current_app
    _state.default_app = _state._tls.current_app = None
    jobs.celery_app.cache_clear()
    try:
        assert jobs.celery_app() is None
        yield
    finally:
        _state.default_app, _state._tls.current_app = saved
        jobs.celery_app.cache_clear()
