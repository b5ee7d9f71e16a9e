"""`manage.py check` with the settings docs/oscar.md gives: nothing for personalization to
report; and the Oscar integration's own warnings, each triggered."""

from __future__ import annotations

import pytest
from django.core import checks

from personalization.contrib.oscar.checks import check_oscar_settings

pytestmark = pytest.mark.django_db

CONTRACT = {
    "PRODUCT_MODEL": "catalogue.Product",
    "PRODUCT_ADAPTER": "personalization.contrib.oscar.adapters.OscarProductAdapter",
    "PRODUCT_VIEW_URLS": {"catalogue:detail": "pk"},
}


def personalization_messages() -> list[checks.CheckMessage]:
    return [
        message
        for message in checks.run_checks(include_deployment_checks=False)
        if (message.id or "").startswith("personalization")
    ]


def test_the_documented_settings_pass_every_check(settings, tmp_path):
    settings.PERSONALIZATION = CONTRACT
    # A cache every process shares, as in production (the sandbox's local memory is not).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    assert personalization_messages() == []


def test_another_product_model_is_a_warning(settings):
    settings.PERSONALIZATION = {**CONTRACT, "PRODUCT_MODEL": "auth.User"}
    assert [m.id for m in check_oscar_settings()] == ["personalization_oscar.W001"]


def test_the_default_adapter_is_a_warning(settings):
    settings.PERSONALIZATION = {
        **CONTRACT, "PRODUCT_ADAPTER": "personalization.products.DefaultProductAdapter"
    }  # fmt: skip
    warnings = check_oscar_settings()
    assert [m.id for m in warnings] == ["personalization_oscar.W002"]
    assert "OscarProductAdapter" in warnings[0].hint
