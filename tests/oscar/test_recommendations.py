"""Recommendations in an Oscar shop: Oscar's prices with their currency, an add-to-basket
button, no basket lines and nothing unavailable; cheap to render; fresh after stock changes;
category segments from Oscar's categories."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.template import engines
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from personalization.models import Placement, Segment, SegmentRule
from personalization.targeting import definitions
from personalization.testutils import attach_visitor

from .shop import add_to_basket, check_out_as_guest

pytestmark = pytest.mark.django_db

API = "/personalization/api/recommendations/"
MEASURED = "/measure/recommendations/"


def recommended(html: str) -> list[str]:
    return re.findall(r'data-personalization-product="(\d+)"', html)


@pytest.fixture
def catalogue(make_product, best_sellers):
    """Six books that sell best in this order: page, basket, sold-out, cheap, pricey, vest
    (a product with variants)."""
    books = {
        "page": make_product("Solaris", price="11.00"),
        "basket": make_product("Ubik", price="9.00"),
        "sold-out": make_product("Roadside Picnic", price="8.00", stock=0),
        "cheap": make_product("Neuromancer", price="7.25"),
        "pricey": make_product("Hyperion", price="1250.00"),
    }
    books["vest"] = make_product("Vest", price=None, structure="parent", category="Clothing")
    make_product("Vest M", parent=books["vest"], price="30.00")
    best_sellers(*books.values())
    # One heading, whoever the visitor is (the control group sees best sellers anyway).
    Placement.objects.create(slug="product-related", name="Related", strategy="bestsellers")
    Placement.objects.create(slug="home", name="Home", strategy="bestsellers")
    definitions.invalidate()
    return books


def test_the_product_page_shows_oscar_prices_and_a_basket_button(shopper, catalogue):
    add_to_basket(shopper, catalogue["basket"])
    page = shopper.get(catalogue["page"].get_absolute_url())
    assert page.status_code == 200
    html = page.text
    assert recommended(html) == [str(catalogue[k].pk) for k in ("cheap", "pricey", "vest")]
    assert "€7.25" in html and "€1,250.00" in html and "€30.00" in html
    cheap = catalogue["cheap"].pk
    assert f'action="{reverse("basket:add", kwargs={"pk": cheap})}"' in html
    vest = catalogue["vest"]
    assert f'action="{reverse("basket:add", kwargs={"pk": vest.pk})}"' not in html  # a size first
    assert 'class="product_pod"' in html
    assert "data-personalization-exposure=" in html


def test_the_recommended_add_to_basket_form_adds_the_product(shopper, catalogue):
    page = shopper.get(catalogue["page"].get_absolute_url())
    cheap = catalogue["cheap"]
    form = re.search(
        rf'<form action="(/basket/add/{cheap.pk}/)" method="post">(.*?)</form>', page.text, re.S
    )
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(2)))
    response = shopper.post(form.group(1), fields)
    assert response.status_code == 302
    basket = shopper.get(reverse("basket:summary")).context["basket"]
    assert [line.product for line in basket.all_lines()] == [cheap]


def test_into_a_variable_the_tag_gives_oscar_products(catalogue):
    request = RequestFactory().get("/")
    attach_visitor(request)
    template = engines["django"].from_string(
        '{% load personalization %}{% recommendations "home" limit=2 as recs %}'
        "{% for product in recs %}{{ product.get_title }}|{% endfor %}"
    )
    assert template.render({}, request) == "Solaris|Ubik|"


def test_the_tag_costs_at_most_two_queries_when_warm(shopper, catalogue):
    add_to_basket(shopper, catalogue["basket"])
    cold = shopper.get(MEASURED)
    warm = shopper.get(MEASURED)
    assert recommended(warm.text) == recommended(cold.text) != []
    assert str(catalogue["basket"].pk) not in recommended(warm.text)
    queries = int(warm["X-Recommendation-Queries"])
    assert queries <= 2, warm["X-Recommendation-SQL"]
    assert int(cold["X-Recommendation-Queries"]) > queries


def test_the_api_gives_oscar_prices_with_their_currency(shopper, catalogue):
    add_to_basket(shopper, catalogue["basket"])
    body = shopper.get(API, {"placement": "home", "limit": 4}).json()
    items = {item["id"]: item for item in body["items"]}
    assert list(items) == [str(catalogue[k].pk) for k in ("page", "cheap", "pricey", "vest")]
    assert items[str(catalogue["cheap"].pk)]["price"] == "7.25"
    assert items[str(catalogue["cheap"].pk)]["currency"] == "EUR"
    assert items[str(catalogue["vest"].pk)]["url"] == catalogue["vest"].get_absolute_url()


def test_a_stock_record_change_shows_at_once(shopper, catalogue):
    def price_of(product) -> str | None:
        items = shopper.get(API, {"placement": "home", "limit": 6}).json()["items"]
        return {item["id"]: item["price"] for item in items}.get(str(product.pk))

    cheap = catalogue["cheap"]
    assert price_of(cheap) == "7.25"
    record = cheap.stockrecords.get()
    record.price = Decimal("6.50")
    record.save()
    assert price_of(cheap) == "6.50"
    record.num_in_stock = 0
    record.save()
    assert price_of(cheap) is None  # sold out: no longer recommended
    variant = catalogue["vest"].children.get().stockrecords.get()
    variant.price = Decimal("27.00")
    variant.save()
    assert price_of(catalogue["vest"]) == "27.00"


def test_what_an_order_sells_out_is_no_longer_recommended(
    shopper, make_product, best_sellers, shipping_country
):
    last_copy = make_product("The Dispossessed", price="10.00", stock=1)
    best_sellers(last_copy, make_product())
    Placement.objects.create(slug="home", name="Home", strategy="bestsellers")
    definitions.invalidate()
    assert _ids(shopper.get(API, {"placement": "home"}))[0] == str(last_copy.pk)  # cached
    buyer = Client(HTTP_USER_AGENT=shopper.defaults["HTTP_USER_AGENT"])
    add_to_basket(buyer, last_copy)
    assert check_out_as_guest(buyer, "buyer@example.com").status_code == 302
    # Oscar allocated the last copy with an UPDATE, which sends no signal.
    assert str(last_copy.pk) not in _ids(shopper.get(API, {"placement": "home"}))


def test_oscar_categories_feed_category_segments(shopper, make_product):
    segment = Segment.objects.create(name="Fiction readers", slug="fiction-readers")
    SegmentRule.objects.create(segment=segment, kind="category_interest", value="fiction >= 1.5")
    definitions.invalidate()
    first, second = make_product(), make_product()
    shopper.get(first.get_absolute_url())
    me = shopper.get("/personalization/api/me/").json()
    assert (me["top_categories"], me["segments"]) == (["fiction"], [])
    shopper.get(second.get_absolute_url())
    me = shopper.get("/personalization/api/me/").json()
    assert me["segments"] == ["fiction-readers"]
    assert me["recently_viewed"] == [second.pk, first.pk]


def test_what_the_middleware_writes_on_a_product_page(shopper, make_product):
    product = make_product()
    shopper.get("/")
    shopper.get(product.get_absolute_url())  # warms the product lookup
    with CaptureQueriesContext(connection) as queries:
        assert shopper.get(make_product().get_absolute_url()).status_code == 200
    ours = [q["sql"] for q in queries if "personalization_" in q["sql"]]
    writes = [sql for sql in ours if not sql.lstrip().startswith("SELECT")]
    # The view for the recommender and the exposure of the page's recommendations: two
    # INSERTs (one statement on PostgreSQL), nothing else.
    assert 1 <= len(writes) <= 2
    written = re.findall(
        r'(INSERT INTO|UPDATE|DELETE FROM) "(personalization_\w+)"', " ".join(writes)
    )
    assert sorted(written) == [
        ("INSERT INTO", "personalization_exposure"),
        ("INSERT INTO", "personalization_productinteraction"),
    ]


def _ids(response) -> list[str]:
    return [item["id"] for item in response.json()["items"]]
