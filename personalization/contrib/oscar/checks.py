"""System checks of the Oscar integration: the product settings must name Oscar's product
and adapter, or prices, stock and baskets are not read through Oscar.

| id | when |
| --- | --- |
| ``personalization_oscar.W001`` | PRODUCT_MODEL is not Oscar's product model |
| ``personalization_oscar.W002`` | PRODUCT_ADAPTER is not an OscarProductAdapter |
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Warning, register
from django.utils.module_loading import import_string
from oscar.core.loading import get_model

from ...conf import app_settings

ADAPTER = "personalization.contrib.oscar.adapters.OscarProductAdapter"


@register()
def check_oscar_settings(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    warnings = []
    product_label = get_model("catalogue", "Product")._meta.label
    configured = app_settings.PRODUCT_MODEL
    if not isinstance(configured, str) or configured.lower() != product_label.lower():
        warnings.append(
            Warning(
                f'PERSONALIZATION["PRODUCT_MODEL"] is {configured!r}, not Oscar\'s product '
                f"model {product_label!r}.",
                hint=f'Set PERSONALIZATION["PRODUCT_MODEL"] = "{product_label}".',
                id="personalization_oscar.W001",
            )
        )
    from .adapters import OscarProductAdapter

    try:
        adapter = import_string(app_settings.PRODUCT_ADAPTER)
    except ImportError:
        adapter = None  # personalization.E003 says so
    if adapter is not None and not (
        isinstance(adapter, type) and issubclass(adapter, OscarProductAdapter)
    ):
        warnings.append(
            Warning(
                f'PERSONALIZATION["PRODUCT_ADAPTER"] is {app_settings.PRODUCT_ADAPTER!r}: '
                "prices, stock and baskets are not read through Oscar.",
                hint=f'Set PERSONALIZATION["PRODUCT_ADAPTER"] = "{ADAPTER}" (or a subclass).',
                id="personalization_oscar.W002",
            )
        )
    return warnings
