"""A new shop shows full recommendation lists from its first request, filled from the
catalogue and the orders, and asks for its first fit by itself once there is data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from personalization import track
from personalization.models import Exposure, Placement, ProductInteraction
from personalization.products import DefaultProductAdapter
from personalization.recommendations import coldstart, precompute, serving, store
from tests.conftest import BROWSER_UA
from tests.test_recommendations_serving import render, request_for, slugs

pytestmark = pytest.mark.django_db


class CartAdapter(DefaultProductAdapter):
    """The test shop's products, with a cart kept on the request."""

    def cart_product_keys(self, request):
        return [str(key) for key in getattr(request, "cart", [])]


@pytest.fixture
def shop(make_product):
    """Six products, oldest first; one switched off and one sold out, none ever viewed."""
    products = {name: make_product(slug=name, name=name.upper()) for name in "abcdef"}
    products["e"].is_available = False
    products["e"].save()
    products["c"].stock = 0
    products["c"].save()
    return products


def interact(product, kind: str, visitors: int, days_ago: float = 1) -> None:
    at = timezone.now() - dt.timedelta(days=days_ago)
    ProductInteraction.objects.bulk_create(
        ProductInteraction(
            visitor_id=f"{kind}-{product.slug}-{n}", product_id=str(product.pk), kind=kind,
            created_at=at,
        )
        for n in range(visitors)
    )  # fmt: skip


@pytest.mark.parametrize("in_control_group", [False, True])
def test_a_new_shop_fills_every_list_with_its_newest_available_products(shop, in_control_group):
    request = request_for(in_control_group=in_control_group)
    result = serving.recommend(request, "home", limit=4)
    assert result.strategy == ("bestsellers" if in_control_group else "auto")
    assert slugs(result) == ["f", "d", "b", "a"]  # newest first; e is off, c sold out
    assert result.exposure_id is not None
    html = render('{% recommendations "home" limit=3 %}', request_for())
    assert html.count('class="pzn-recs__item"') == 3


def test_the_fill_leads_with_what_was_bought_carted_and_viewed_lately(shop):
    interact(shop["b"], "purchase", 2)  # 10
    interact(shop["a"], "cart", 3)  # 9
    interact(shop["d"], "view", 12)  # 12
    interact(shop["f"], "purchase", 9, days_ago=40)  # long ago: only as the newest product
    interact(shop["e"], "purchase", 9)  # switched off
    result = serving.recommend(request_for(in_control_group=False), "home", limit=4)
    assert slugs(result) == ["d", "b", "a", "f"]


def test_the_fill_leaves_out_the_page_the_cart_and_what_was_just_bought(shop, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PRODUCT_ADAPTER": "tests.test_recommendations_coldstart.CartAdapter",
    }
    request = request_for(in_control_group=True)
    request.cart = [shop["d"].pk]
    track.order(request, order_id="N-1", total=Decimal("19.90"),
                items=[(shop["b"].pk, 1, Decimal("19.90"))])  # fmt: skip
    result = serving.recommend(request, "product", product=shop["f"], limit=4)
    assert slugs(result) == ["a"]  # f: this page; d: in the cart; b: just bought


def test_short_fitted_lists_are_filled_past_unavailable_products(shop, make_product):
    extra = [make_product(slug=f"x{n}") for n in range(4)]
    for product in extra[:3]:
        product.is_available = False
        product.save()
    store.save_lists(
        {("bestsellers", ""): [(str(p.pk), 10.0 - n) for n, p in enumerate([*extra, shop["a"]])]}
    )
    for in_control_group in (False, True):  # the blend and the control group's default alike
        result = serving.recommend(request_for(in_control_group=in_control_group), "h", limit=5)
        assert slugs(result) == ["x3", "a", "f", "d", "b"]


def test_the_api_fills_its_lists_too(client, shop, settings):
    client.defaults["HTTP_USER_AGENT"] = BROWSER_UA
    for percent in (0, 100):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": percent}
        client.cookies.clear()
        client.get("/")
        body = client.get(
            "/personalization/api/recommendations/",
            {"placement": "home", "limit": 3, "product": shop["f"].pk},
        ).json()
        assert [item["name"] for item in body["items"]] == ["D", "B", "A"]
        assert body["strategy"] == ("bestsellers" if percent else "auto")
        assert Exposure.objects.filter(pk=body["exposure"]).exists()
    assert not Placement.objects.exists()  # the API creates no placements


def test_warm_rendering_of_a_new_shop_reads_nothing(shop):
    source = '{% recommendations "home-for-you" limit=4 %}'
    with CaptureQueriesContext(connection) as cold:
        render(source, request_for(in_control_group=False))
    with CaptureQueriesContext(connection) as warm:
        html = render(source, request_for(in_control_group=False))
    assert html.count('class="pzn-recs__item"') == 4
    warm_statements = [q["sql"] for q in warm.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert warm_statements == []
    assert any("testapp_product" in q["sql"] for q in cold.captured_queries)
    assert Placement.objects.filter(slug="home-for-you").exists()  # created, for staff


# The first fit -------------------------------------------------------------------------------
def test_a_fit_is_asked_for_once_there_is_data_and_again_while_the_shop_is_young(shop, clock):
    assert coldstart.fit_reason()[0] is None  # no data: nothing to fit
    interact(shop["a"], "view", 3, days_ago=0)
    assert coldstart.fit_reason()[0] == "never fitted"
    precompute.recompute_all()
    reason, recheck = coldstart.fit_reason()
    assert reason is None and recheck == timezone.now() + coldstart.YOUNG_REFIT_AFTER
    clock.shift(3601)
    assert coldstart.fit_reason()[0] is None  # nothing new since the fit
    interact(shop["b"], "view", 1, days_ago=0)
    assert coldstart.fit_reason()[0] == "young"


def test_an_established_shop_is_refitted_only_when_the_nightly_fit_is_missed(shop, clock):
    interact(shop["a"], "view", coldstart.YOUNG_INTERACTIONS, days_ago=0.5)
    precompute.recompute_all()
    clock.shift(2 * 3600)
    interact(shop["b"], "view", 1, days_ago=0)
    assert coldstart.fit_reason()[0] is None
    clock.shift(25 * 3600)
    assert coldstart.fit_reason()[0] == "stale"


def test_asking_whether_to_fit_reads_nothing_until_the_next_check(shop, clock):
    interact(shop["a"], "view", 2, days_ago=0)
    with CaptureQueriesContext(connection) as first:
        coldstart.request_fit_if_due()
    assert len(first.captured_queries) >= 2  # the fit's record, and whether there is data
    with CaptureQueriesContext(connection) as warm:
        for _ in range(3):
            coldstart.request_fit_if_due()
    assert warm.captured_queries == []
    precompute.recompute_all()  # in this process: the next check is when a refit may be due
    clock.shift(coldstart.RECHECK_SECONDS + 1)
    with CaptureQueriesContext(connection) as later:
        coldstart.request_fit_if_due()
    assert later.captured_queries == []
    clock.shift(3600)
    with CaptureQueriesContext(connection) as due:
        coldstart.request_fit_if_due()
    assert len(due.captured_queries) >= 1


def test_a_placement_that_cannot_be_created_never_breaks_the_page(shop, caplog):
    page = '{% recommendations "new-slot" limit=2 %}<hr>{% personalized_banner "new-hero" %}'
    render('{% recommendations "home" limit=1 %}', request_for())  # loads the definitions
    with connection.cursor() as cursor:  # a real database error from now on
        cursor.execute("ALTER TABLE personalization_placement RENAME TO personalization_gone")
    html = render(page, request_for(in_control_group=False))
    assert html.count('class="pzn-recs__item"') == 2 and html.endswith("<hr>")
    assert "could not create placement 'new-slot'" in caplog.text
    assert "could not create placement 'new-hero'" in caplog.text
    with CaptureQueriesContext(connection) as again:
        render(page, request_for(in_control_group=False))
    assert not [q for q in again.captured_queries if "placement" in q["sql"]]  # in a minute
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE personalization_gone RENAME TO personalization_placement")
    assert Placement.objects.filter(slug="home").count() == 1
