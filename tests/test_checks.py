"""Every system check id, triggered by the misconfiguration it reports."""

from __future__ import annotations

import pytest
from django.core import checks

from personalization import products
from personalization.checks import CHECKS, MIDDLEWARE_PATH
from personalization.products import DefaultProductAdapter

# Django 6.1's model checks ask every database what it supports, as `manage.py check` does.
pytestmark = pytest.mark.django_db


def ids(settings_obj=None) -> list[str]:
    return sorted(
        message.id for message in checks.run_checks() if message.id.startswith("personalization.")
    )


@pytest.fixture
def pzn(settings):
    def set_(**values):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, **values}

    return set_


@pytest.fixture(autouse=True)
def shared_cache(settings):
    """The setup of a shop in production: profiles in a cache every process shares. Nothing
    connects to it, checks only read the settings."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
        },
    }


def messages_of(check_id: str) -> list[checks.CheckMessage]:
    return [message for message in checks.run_checks() if message.id == check_id]


def test_a_correct_setup_passes():
    assert ids() == []


def test_e001_product_model_missing(pzn):
    pzn(PRODUCT_MODEL=None)
    assert "personalization.E001" in ids()


def test_e002_product_model_not_installed(pzn):
    pzn(PRODUCT_MODEL="nosuchapp.Product")
    assert "personalization.E002" in ids()
    pzn(PRODUCT_MODEL="not-a-label")
    assert "personalization.E002" in ids()


def test_e003_adapter_cannot_be_imported(pzn):
    pzn(PRODUCT_ADAPTER="personalization.products.NoSuchAdapter")
    assert "personalization.E003" in ids()


def test_e003_referral_validator_cannot_be_imported(pzn):
    pzn(REFERRAL_CODE_VALIDATOR="nowhere.validate")
    assert "personalization.E003" in ids()


def test_e004_middleware_before_auth(settings):
    middleware = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    settings.MIDDLEWARE = [*middleware[:auth], MIDDLEWARE_PATH, *middleware[auth:]]
    assert ids() == ["personalization.E004"]


def test_e005_bad_values(pzn):
    pzn(CONTROL_GROUP_PERCENT=150, TRUSTED_PROXY_COUNT=-1, VISIT_TIMEOUT_MINUTES="30")
    assert ids().count("personalization.E005") == 3


@pytest.mark.parametrize("value", ["5", -1, None, True])
def test_e005_geoip_check_seconds_not_a_number(pzn, value):
    pzn(GEOIP_CHECK_SECONDS=value)
    [message] = messages_of("personalization.E005")
    assert "GEOIP_CHECK_SECONDS" in message.msg and repr(value) in message.msg
    pzn(GEOIP_CHECK_SECONDS=0.5)
    assert ids() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REPORT_MDE", 0),
        ("REPORT_MDE", -0.1),
        ("REPORT_MDE", "0.2"),
        ("REPORT_POWER", 1),
        ("REPORT_POWER", 0),
        ("REPORT_BASELINE_RATE", 1.5),
        ("REPORT_BASELINE_RATE", True),
    ],
)
def test_e005_a_planned_sample_that_cannot_be_computed(pzn, name, value):
    pzn(**{name: value})
    [message] = messages_of("personalization.E005")
    assert name in message.msg and repr(value) in message.msg


def test_e005_not_for_sensible_planned_samples(pzn):
    pzn(REPORT_MDE=0.05, REPORT_POWER=0.9, REPORT_BASELINE_RATE=0.03)
    assert ids() == []
    pzn(REPORT_BASELINE_RATE=None)
    assert ids() == []


@pytest.mark.parametrize("fallback", ["threads", "", None, "celery"])
def test_e005_unknown_jobs_fallback(pzn, fallback):
    pzn(JOBS_FALLBACK=fallback)
    [message] = messages_of("personalization.E005")
    assert "JOBS_FALLBACK" in message.msg and repr(fallback) in message.msg
    assert "'thread', 'inline', 'defer'" in message.msg


@pytest.mark.parametrize("fallback", ["thread", "inline", "defer"])
def test_e005_not_for_a_known_jobs_fallback(pzn, fallback):
    pzn(JOBS_FALLBACK=fallback)
    assert ids() == []


def test_e005_not_a_dict(settings):
    settings.PERSONALIZATION = ["PRODUCT_MODEL"]
    assert "personalization.E005" in ids()


def test_w001_middleware_missing(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    assert ids() == ["personalization.W001"]


def test_w002_geoip_file_missing(pzn, tmp_path):
    pzn(GEOIP_PATH=str(tmp_path / "missing.mmdb"))
    assert ids() == ["personalization.W002"]


def test_w002_geoip_file_corrupt(pzn, tmp_path):
    path = tmp_path / "corrupt.mmdb"
    path.write_bytes(b"this is not a maxmind database" * 100)
    pzn(GEOIP_PATH=str(path))
    assert ids() == ["personalization.W002"]


def test_w002_not_for_a_good_database(pzn, tmp_path):
    from personalization.testutils import write_geoip_database

    path = write_geoip_database(tmp_path / "city.mmdb", [("81.2.69.0/24", {"country": "GB"})])
    pzn(GEOIP_PATH=str(path))
    assert ids() == []


def test_w003_unknown_url_name_and_field(pzn):
    pzn(PRODUCT_VIEW_URLS={"shop:nope": "slug", "shop:product": "sku"})
    messages = [m for m in checks.run_checks() if m.id == "personalization.W003"]
    assert len(messages) == 2
    assert any("shop:nope" in m.msg for m in messages)
    assert any("'sku'" in m.msg for m in messages)


def test_w003_not_for_the_primary_key(pzn):
    pzn(PRODUCT_VIEW_URLS={"shop:product-by-pk": "pk"})
    assert ids() == []


def test_w003_pk_urls_record_product_views(pzn, browser, make_product):
    pzn(PRODUCT_VIEW_URLS={"shop:product-by-pk": "pk"})
    product = make_product()
    assert browser.get(f"/p/{product.pk}/").status_code == 200
    assert browser.get("/p/999999/").status_code == 404
    assert browser.get("/profile/").json()["recently_viewed"] == [product.pk]
    assert products.view_info("pk", product.pk) == (product.pk, "camping")
    assert products.view_info("pk", "not-a-number") is None


def test_w004_unknown_key(pzn):
    pzn(CONTROL_GROUP_PERCENTAGE=5)
    assert ids() == ["personalization.W004"]


def test_w005_dummy_cache(settings):
    settings.DEBUG = True
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert ids() == ["personalization.W005"]


def test_w005_unknown_alias(pzn):
    pzn(CACHE_ALIAS="profiles")
    assert ids() == ["personalization.W005"]


def test_w006_the_default_adapter_on_a_model_without_price_category_and_image(pzn):
    pzn(PRODUCT_MODEL="testapp.Book", PRODUCT_VIEW_URLS={})
    [message] = messages_of("personalization.W006")
    assert "testapp.Book has no price, category or image" in message.msg
    assert "PRODUCT_ADAPTER" in message.hint
    assert "price(), category_key(), image_url()" in message.hint


def test_w006_names_only_what_the_shops_adapter_does_not_read(pzn):
    pzn(
        PRODUCT_MODEL="testapp.Book",
        PRODUCT_VIEW_URLS={},
        PRODUCT_ADAPTER="tests.test_checks.BookPriceAdapter",
    )
    [message] = messages_of("personalization.W006")
    assert "has no category or image" in message.msg
    assert "price" not in message.msg.split(":")[0]


def test_w006_not_for_a_complete_model_or_an_adapter_of_the_shops_own(pzn):
    assert ids() == []  # testapp.Product has a price, a category and an image
    pzn(
        PRODUCT_MODEL="testapp.Book",
        PRODUCT_VIEW_URLS={},
        PRODUCT_ADAPTER="tests.testapp.adapters.BookAdapter",
    )
    assert ids() == []


class BookPriceAdapter(DefaultProductAdapter):
    """Reads a Book's price; the rest as the default adapter would."""

    def price(self, product):
        return product.cost


@pytest.mark.parametrize("backend", ["locmem.LocMemCache", "dummy.DummyCache"])
def test_w007_a_per_process_cache_in_production(settings, backend):
    settings.CACHES = {"default": {"BACKEND": f"django.core.cache.backends.{backend}"}}
    [message] = messages_of("personalization.W007")
    assert backend.split(".")[1] in message.msg
    settings.DEBUG = True  # one process while developing: fine
    assert "personalization.W007" not in ids()


def test_w007_follows_the_cache_alias(settings, pzn):
    settings.CACHES = {
        **settings.CACHES,
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    assert ids() == []  # the shared default cache keeps the profiles
    pzn(CACHE_ALIAS="local")
    assert ids() == ["personalization.W007"]


def test_every_documented_id_is_tested():
    import pathlib

    source = pathlib.Path(__file__).read_text()
    root = pathlib.Path(__file__).parents[1]
    docs = "".join(path.read_text() for path in [root / "README.md", *root.glob("docs/*.md")])
    for check_id in CHECKS:
        short = check_id.split(".")[1].lower()
        assert f"def test_{short}_" in source, check_id
        assert check_id in docs, f"{check_id} is not documented in the README or docs/"


def test_w008_geo_headers_without_a_country_header(pzn):
    pzn(GEO_HEADERS={"city": "X-City"})
    assert ids() == ["personalization.W008"]


def test_w008_not_for_a_preset(pzn):
    pzn(GEO_HEADERS="cloudflare")
    assert ids() == []


def test_w009_preview_permission_not_app_label_dot_codename(pzn):
    pzn(PREVIEW_PERMISSION="view_banner")
    assert ids() == ["personalization.W009"]


def test_w009_not_for_none(pzn):
    pzn(PREVIEW_PERMISSION=None)
    assert ids() == []
