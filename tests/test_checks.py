"""Every system check id, triggered by the misconfiguration it reports."""

from __future__ import annotations

import pytest
from django.core import checks

from personalization.checks import CHECKS, MIDDLEWARE_PATH


def ids(settings_obj=None) -> list[str]:
    return sorted(
        message.id for message in checks.run_checks() if message.id.startswith("personalization.")
    )


@pytest.fixture
def pzn(settings):
    def set_(**values):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, **values}

    return set_


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


def test_w004_unknown_key(pzn):
    pzn(CONTROL_GROUP_PERCENTAGE=5)
    assert ids() == ["personalization.W004"]


def test_w005_dummy_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert ids() == ["personalization.W005"]


def test_w005_unknown_alias(pzn):
    pzn(CACHE_ALIAS="profiles")
    assert ids() == ["personalization.W005"]


def test_every_documented_id_is_tested():
    import pathlib

    source = pathlib.Path(__file__).read_text()
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    for check_id in CHECKS:
        short = check_id.split(".")[1].lower()
        assert f"def test_{short}_" in source, check_id
        assert check_id in readme, f"{check_id} is not documented in the README"
