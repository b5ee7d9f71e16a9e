"""Fixtures of the Oscar sandbox shop: a browser-like client, products with stock records,
categories and images, a shipping country, and precomputed recommendation lists."""

from __future__ import annotations

import datetime as dt
import io
import itertools
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from oscar.core.loading import get_class, get_model

from personalization import products
from personalization.recommendations import coldstart, precompute, serving, store
from personalization.targeting import bandit, definitions

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
_counter = itertools.count(1)


def pytest_configure(config):
    # Warnings are errors (pyproject.toml), but what Oscar's own code calls deprecated in its
    # dependencies is for Oscar to fix.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:oscar.*")
    config.addinivalue_line(
        "filterwarnings", "ignore::treebeard.deprecation.RemovedInTreebeard8Warning"
    )


@pytest.fixture(autouse=True)
def _clean_state(settings, tmp_path):
    """Every test starts with an empty cache, fresh memos and its own media directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    caches["default"].clear()
    products.forget_all_view_info()
    definitions.forget_local()
    bandit.forget_local()
    store.forget_local()
    coldstart.forget_local()
    serving.strategies.cache_clear()
    yield
    caches["default"].clear()
    store.forget_local()


@pytest.fixture
def shopper():
    """A test client that looks like a desktop browser (bots are never tracked)."""
    return Client(HTTP_USER_AGENT=BROWSER_UA)


@pytest.fixture
def make_product(db):
    """``make_product(title, price=..., stock=..., category="Books > Fiction")``: a product
    with one stock record of Oscar's default partner, in that category."""
    product_class = get_model("catalogue", "ProductClass")
    partner_model = get_model("partner", "Partner")
    create_from_breadcrumbs = get_class("catalogue.categories", "create_from_breadcrumbs")

    def make(
        title: str | None = None,
        *,
        price: str | Decimal | None = "12.50",
        stock: int | None = 10,
        category: str | None = "Books > Fiction",
        currency: str = "EUR",
        parent=None,
        **fields,
    ):
        n = next(_counter)
        kind, _ = product_class.objects.get_or_create(name="Book")
        product = get_model("catalogue", "Product").objects.create(
            title=title if title is not None else f"Product {n}",
            product_class=None if parent else kind,
            parent=parent,
            structure="child" if parent else fields.pop("structure", "standalone"),
            **fields,
        )
        if category and not parent:
            product.categories.add(create_from_breadcrumbs(category))
        if price is not None:
            partner, _ = partner_model.objects.get_or_create(name="Warehouse")
            product.stockrecords.create(
                partner=partner,
                partner_sku=f"SKU-{n}",
                price=Decimal(price),
                price_currency=currency,
                num_in_stock=stock,
            )
        return product

    return make


@pytest.fixture
def image_file():
    """A small real JPEG, as a shop uploads it."""
    from PIL import Image

    def make(name: str = "cover.jpg") -> ContentFile:
        buffer = io.BytesIO()
        Image.new("RGB", (320, 480), (200, 60, 30)).save(buffer, "JPEG")
        return ContentFile(buffer.getvalue(), name=name)

    return make


@pytest.fixture
def shipping_country(db):
    country = get_model("address", "Country")
    return country.objects.create(
        iso_3166_1_a2="GB",
        iso_3166_1_a3="GBR",
        iso_3166_1_numeric="826",
        printable_name="United Kingdom",
        name="United Kingdom of Great Britain and Northern Ireland",
        is_shipping_country=True,
    )


@pytest.fixture
def best_sellers(db):
    """``best_sellers(*products)``: purchases logged so that the products sell best in the
    order given, and the recommendation lists precomputed from them."""
    from personalization.models import ProductInteraction

    def make(*ranked):
        now = timezone.now()
        rows = []
        for rank, product in enumerate(ranked):
            for n in range(3 * (len(ranked) - rank)):
                rows.append(
                    ProductInteraction(
                        visitor_id=f"buyer-{product.pk}-{n}",
                        product_id=str(product.pk),
                        kind=ProductInteraction.PURCHASE,
                        created_at=now - dt.timedelta(hours=2, minutes=n),
                    )
                )
        ProductInteraction.objects.bulk_create(rows)
        precompute.recompute_all()
        store.forget_local()

    return make
