"""OscarProductAdapter: names, prices and stock through Oscar's strategy, categories,
images, variants as their parents, the basket, and products loaded in a few queries."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from oscar.apps.basket.middleware import BasketMiddleware
from oscar.apps.partner import strategy
from oscar.core.loading import get_model

from personalization.contrib.oscar.adapters import OscarProductAdapter
from personalization.products import get_adapter

from .shop import add_to_basket

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")


class TaxSelector:
    """A shop whose strategy charges 20% tax (Oscar's sample UK strategy)."""

    def strategy(self, request=None, user=None, **kwargs):
        return strategy.UK(request)


class DeferredTaxSelector:
    """A shop that learns the tax only at checkout (Oscar's sample US strategy)."""

    def strategy(self, request=None, user=None, **kwargs):
        return strategy.US(request)


@pytest.fixture
def adapter():
    return OscarProductAdapter(Product)


def test_the_contract_settings_give_the_oscar_adapter():
    assert isinstance(get_adapter(), OscarProductAdapter)


def test_a_standalone_product_is_read_through_the_strategy(adapter, make_product):
    product = make_product("The Left Hand of Darkness", price="12.50", category="Books > SF")
    assert adapter.pk(product) == product.pk
    assert adapter.name(product) == "The Left Hand of Darkness"
    assert adapter.url(product) == product.get_absolute_url()
    assert adapter.price(product) == Decimal("12.50")
    assert adapter.currency(product) == "EUR"
    assert adapter.is_available(product) is True
    assert adapter.category_key(product) == "sf"
    assert adapter.category_name(product) == "SF"
    assert adapter.card_extras(product) == {"can_add_to_basket": True}


def test_prices_include_tax_when_the_strategy_knows_it(adapter, make_product):
    product = make_product(price="12.50")
    adapter.selector = TaxSelector()
    assert adapter.price(product) == Decimal("15.00")
    deferred = OscarProductAdapter(Product)
    deferred.selector = DeferredTaxSelector()
    assert deferred.price(Product.objects.get(pk=product.pk)) == Decimal("12.50")


@pytest.mark.parametrize(
    ("price", "stock", "public"),
    [("9.99", 0, True), (None, None, True), ("9.99", 5, False)],
    ids=["out-of-stock", "no-stock-record", "not-public"],
)
def test_what_cannot_be_bought_is_unavailable(adapter, make_product, price, stock, public):
    product = make_product(price=price, stock=stock, is_public=public)
    assert adapter.is_available(product) is False
    assert adapter.card_extras(product) == {"can_add_to_basket": False}
    if price is None:
        assert adapter.price(product) is None
        assert adapter.currency(product) is None


def test_variants_count_as_their_parent(adapter, make_product):
    parent = make_product("T-shirt", price=None, structure="parent", category="Clothing")
    small = make_product("T-shirt S", parent=parent, price="15.00", stock=0)
    large = make_product("T-shirt L", parent=parent, price="17.00", stock=3)
    assert adapter.pk(small) == adapter.pk(large) == parent.pk
    assert adapter.category_key(small) == "clothing"
    assert adapter.url(small) == parent.get_absolute_url()
    loaded = adapter.get_queryset().get(pk=parent.pk)
    assert adapter.is_available(loaded) is True  # one variant is in stock
    oscar_price = strategy.Selector().strategy().fetch_for_parent(parent).price  # "From …"
    assert adapter.price(loaded) == oscar_price.incl_tax == Decimal("17.00")
    assert adapter.card_extras(loaded) == {"can_add_to_basket": False}  # a size to choose
    assert not adapter.get_queryset().filter(pk=small.pk).exists()  # never recommended
    assert adapter.get_by_field("pk", small.pk) == small  # but its page is recorded


def test_a_product_without_stock_in_any_variant_is_unavailable(adapter, make_product):
    parent = make_product(price=None, structure="parent")
    make_product(parent=parent, price="15.00", stock=0)
    assert adapter.is_available(adapter.get_queryset().get(pk=parent.pk)) is False


def test_stock_is_what_the_strategy_says_can_be_bought(adapter, make_product):
    product = make_product(stock=10)
    record = product.stockrecords.get()
    record.num_allocated = 3
    record.save()
    assert adapter.stock(adapter.get_queryset().get(pk=product.pk)) == 7  # net stock
    assert adapter.stock(make_product(price=None)) is None  # no stock record: unknown
    parent = make_product(price=None, structure="parent")
    for stock in (4, 0, 5):
        make_product(parent=parent, price="15.00", stock=stock)
    assert adapter.stock(adapter.get_queryset().get(pk=parent.pk)) == 9  # its variants'
    assert adapter.stock(Product.objects.get(pk=parent.pk)) == 9  # not prefetched


def test_the_image_is_a_thumbnail_of_the_primary_image(adapter, make_product, image_file):
    product = make_product()
    assert adapter.image_url(product) is None  # Oscar shows its "image not found"
    product.images.create(original=image_file("back.jpg"), display_order=1)
    product.images.create(original=image_file("front.jpg"), display_order=0)
    url = adapter.image_url(Product.objects.get(pk=product.pk))
    assert url.startswith("/media/cache/") and url.endswith(".jpg")
    adapter.thumbnail_size = None
    assert adapter.image_url(Product.objects.get(pk=product.pk)).endswith("front.jpg")


def test_loading_many_products_costs_the_same_few_queries(
    adapter, make_product, image_file, django_assert_max_num_queries
):
    def load_cards(products):
        keys = [p.pk for p in products]
        # products; their stock records, images, public variants (and theirs), categories
        with django_assert_max_num_queries(6):
            return {
                p.pk: (adapter.price(p), adapter.is_available(p), adapter.category_key(p),
                       adapter.image_url(p), adapter.card_extras(p), adapter.stock(p))
                for p in adapter.get_queryset().filter(pk__in=keys)
            }  # fmt: skip

    adapter.thumbnail_size = None
    few = [make_product(category=f"Books > Shelf {n}") for n in range(2)]
    many = [make_product(category=f"Books > Shelf {n}") for n in range(12)]
    for product in few + many:
        product.images.create(original=image_file())
    parent = make_product(price=None, structure="parent", category=None)
    make_product(parent=parent, price="3.00")
    assert len(load_cards(few)) == 2
    cards = load_cards([*many, parent])
    assert len(cards) == 13
    assert cards[parent.pk][:3] == (Decimal("3.00"), True, None)
    assert cards[many[5].pk][2] == "shelf-5"


def test_the_basket_is_read_without_loading_it(adapter, make_product, shopper):
    in_basket, elsewhere = make_product(), make_product()
    parent = make_product(price=None, structure="parent")
    variant = make_product(parent=parent, price="8.00")
    add_to_basket(shopper, in_basket)
    add_to_basket(shopper, variant)
    request = RequestFactory().get("/", HTTP_COOKIE=_cookie_header(shopper))
    request.user = AnonymousUser()
    assert sorted(adapter.cart_product_keys(request)) == sorted(
        [str(in_basket.pk), str(parent.pk), str(variant.pk)]
    )
    assert str(elsewhere.pk) not in adapter.cart_product_keys(request)
    assert adapter.cart_product_keys(RequestFactory().get("/")) == []


def test_a_basket_the_page_read_costs_no_query(
    adapter, make_product, shopper, django_assert_num_queries
):
    product = make_product()
    add_to_basket(shopper, product)
    request = RequestFactory().get("/", HTTP_COOKIE=_cookie_header(shopper))
    request.user = AnonymousUser()
    BasketMiddleware(lambda request: None)(request)  # attaches the lazy basket
    assert request.basket.id  # loaded, its lines not read yet
    with django_assert_num_queries(1):
        assert adapter.cart_product_keys(request) == [str(product.pk)]
    assert request.basket.num_items == 1  # the page's mini-basket reads the lines
    with django_assert_num_queries(0):
        assert adapter.cart_product_keys(request) == [str(product.pk)]


def _cookie_header(client) -> str:
    return "; ".join(f"{key}={morsel.value}" for key, morsel in client.cookies.items())
