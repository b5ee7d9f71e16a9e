"""Recommendations in a shop: interactions logged, lists precomputed, served by the template
tag and the API with exposures, with fallbacks that never break a page."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory
from django.utils import timezone

from personalization import track
from personalization.models import (
    Exposure,
    Placement,
    ProductInteraction,
    RecommendationList,
)
from personalization.recommendations import precompute, serving, store
from personalization.targeting import definitions
from personalization.testutils import attach_visitor
from personalization.tracking import flush_exposures

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_lists():
    store.forget_local()
    serving.strategies.cache_clear()
    yield
    store.forget_local()


@pytest.fixture
def catalogue(make_product):
    """Eight products; many visitors view a+b together, fewer a+c; d is the best seller."""
    products = {name: make_product(slug=name, name=name.upper()) for name in "abcdefgh"}
    now = timezone.now()
    rows = []

    def add(visitor: str, name: str, kind: str, minutes: int, quantity: int = 1) -> None:
        rows.append(
            ProductInteraction(
                visitor_id=visitor,
                product_id=str(products[name].pk),
                kind=kind,
                quantity=quantity,
                created_at=now - dt.timedelta(minutes=minutes),
            )
        )

    for n in range(20):
        add(f"ab{n}", "a", "view", 600 + n)
        add(f"ab{n}", "b", "view", 590 + n)
    for n in range(6):
        add(f"ac{n}", "a", "view", 700 + n)
        add(f"ac{n}", "c", "view", 690 + n)
    for n in range(30):
        add(f"buyer{n}", "d", "purchase", 800 + n)
    for n in range(10):
        add(f"other{n}", "e", "purchase", 900 + n)
        add(f"other{n}", "f", "view", 905 + n)
        add(f"other{n}", "g", "view", 910 + n)
        add(f"other{n}", "h", "view", 915 + n)
    ProductInteraction.objects.bulk_create(rows)
    precompute.recompute_all()
    return products


def request_for(**state):
    request = RequestFactory().get("/")
    attach_visitor(request, **state)
    return request


def render(source: str, request, **context) -> str:
    return Template("{% load personalization %}" + source).render(
        Context({"request": request, **context})
    )


def slugs(result) -> list[str]:
    return [product.slug for product in result]


def test_precompute_stores_lists_that_serving_reads(catalogue):
    assert RecommendationList.objects.exists()
    request = request_for(in_control_group=False)
    result = serving.recommend(request, "product-related", product=catalogue["a"], limit=4)
    assert result.strategy == "auto"
    assert len(result) == 4
    assert "a" not in slugs(result)  # never the page's own product
    assert len(set(slugs(result))) == 4


def test_a_placement_uses_the_strategy_chosen_in_the_admin(catalogue):
    Placement.objects.create(slug="also-viewed", name="Also viewed", strategy="viewed_together")
    definitions.invalidate()
    request = request_for(in_control_group=False)
    result = serving.recommend(request, "also-viewed", product=catalogue["a"], limit=2)
    assert result.strategy == "viewed_together"
    assert slugs(result) == ["b", "c"]
    assert result.title == "Customers who viewed this also viewed"


def test_the_control_group_sees_best_sellers_and_logs_a_control_exposure(catalogue):
    request = request_for(in_control_group=True)
    result = serving.recommend(request, "home-for-you", limit=2)
    assert (result.strategy, result.is_control) == ("bestsellers", True)
    assert slugs(result)[0] == "d"
    assert flush_exposures(request) == 1
    exposure = Exposure.objects.get()
    assert exposure.is_control is True
    assert exposure.kind == Exposure.RECOMMENDATION
    assert exposure.content == "strategy:bestsellers"
    assert exposure.items[0] == catalogue["d"].pk


def test_the_cart_and_unavailable_products_are_left_out(catalogue, settings):
    catalogue["d"].is_available = False
    catalogue["d"].save()
    request = request_for(in_control_group=True)
    result = serving.recommend(request, "home", limit=8)
    assert "d" not in slugs(result)
    assert len(result) == 7


def test_the_tag_renders_items_with_the_exposure_id(catalogue):
    request = request_for(in_control_group=False)
    html = render('{% recommendations "product-related" product=p limit=3 %}', request,
                  p=catalogue["a"])  # fmt: skip
    exposure_id = request.__dict__["_personalization_exposures"][0].id
    assert f'data-personalization-exposure="{exposure_id}"' in html
    assert html.count('class="pzn-recs__item"') == 3
    assert 'href="/products/' in html


def test_the_tag_puts_the_list_in_the_context_with_as(catalogue):
    request = request_for(in_control_group=True)
    html = render(
        '{% recommendations "cart" limit=2 as recs %}{{ recs.strategy }}:'
        "{% for p in recs %}{{ p.slug }},{% endfor %}{{ recs.exposure_id|yesno:'x,-' }}",
        request,
    )
    assert html.startswith("bestsellers:d,")
    assert html.endswith("x")


@pytest.mark.parametrize("limit", ["0", "-1", "1000", "'many'", "2.5"])
def test_a_bad_limit_renders_nothing_and_logs(catalogue, limit, caplog):
    request = request_for(in_control_group=False)
    with caplog.at_level(logging.WARNING, logger="personalization"):
        html = render(f'{{% recommendations "home" limit={limit} %}}', request)
    assert html == ""
    assert "bad limit" in caplog.text


def test_the_tag_refuses_unknown_options():
    with pytest.raises(TemplateSyntaxError):
        Template('{% load personalization %}{% recommendations "home" colour="red" %}')
    with pytest.raises(TemplateSyntaxError):
        Template("{% load personalization %}{% recommendations %}")


def test_warm_rendering_reads_nothing(catalogue, django_assert_num_queries):
    request = request_for(in_control_group=False, recently_viewed=[catalogue["a"].pk])
    source = '{% recommendations "product-related" product=p limit=4 %}'
    render(source, request, p=catalogue["b"])  # warms the lists and the products
    request = request_for(in_control_group=False, recently_viewed=[catalogue["a"].pk])
    with django_assert_num_queries(0):
        html = render(source, request, p=catalogue["b"])
    assert html.count('class="pzn-recs__item"') == 4


def test_each_request_gets_its_own_copies_of_the_products(catalogue):
    """Products are memoised in the process, but what one request's code does to its
    instances (a shop marking a product for its visitor) reaches no other request."""
    first = serving.recommend(request_for(in_control_group=True), "home", limit=4)
    assert first.products
    for product in first.products:
        product.name = "Marked for one visitor"
    second = serving.recommend(request_for(in_control_group=True), "home", limit=4)
    assert [p.pk for p in second.products] == [p.pk for p in first.products]
    assert "Marked for one visitor" not in {p.name for p in second.products}
    assert all(a is not b for a, b in zip(first.products, second.products, strict=True))


def test_a_saved_product_shows_its_new_name_in_the_tag_at_once(catalogue):
    source = '{% recommendations "home" limit=8 %}'
    assert ">D<" in render(source, request_for(in_control_group=True))
    catalogue["d"].name = "Dutch oven"
    catalogue["d"].save()
    html = render(source, request_for(in_control_group=True))
    assert ">Dutch oven<" in html and ">D<" not in html
    catalogue["d"].delete()
    assert "Dutch oven" not in render(source, request_for(in_control_group=True))


def test_products_are_read_again_once_their_memo_expires(catalogue, monkeypatch):
    """Another process's save reaches this one when the memo entry expires (as for cards):
    a change written straight to the table stands for one the memo did not hear of."""
    import time

    from personalization import products
    from tests.testapp.models import Product

    source = '{% recommendations "home" limit=8 %}'
    assert ">D<" in render(source, request_for(in_control_group=True))
    Product.objects.filter(pk=catalogue["d"].pk).update(name="Dutch oven")
    assert ">D<" in render(source, request_for(in_control_group=True))

    class AnHourLater:
        def __getattr__(self, name):
            return getattr(time, name)

        def monotonic(self) -> float:
            return time.monotonic() + 3601

    monkeypatch.setattr(products, "time", AnHourLater())
    assert ">Dutch oven<" in render(source, request_for(in_control_group=True))


def test_unavailable_first_candidates_cost_one_more_query_not_a_short_list(
    catalogue, django_assert_num_queries
):
    """Only the first limit + SPARE candidates are loaded; when they are unavailable the
    rest are read in a second query, and the list is still full."""
    request = request_for(in_control_group=True)
    first = [product.slug for product in serving.recommend(request, "home", limit=2)]
    keys, _ = serving._candidates("bestsellers", serving.context_for(request, None), 2)
    assert len(keys) > 2 + serving.SPARE
    head = {str(key) for key in keys[: 2 + serving.SPARE]}
    for product in catalogue.values():
        if str(product.pk) in head:
            product.is_available = False
            product.save()
    with django_assert_num_queries(2):
        shown = serving._products(keys, 2)
    assert len(shown) == 2
    assert not {str(product.pk) for product in shown} & head
    assert not set(first) & {product.slug for product in shown}
    available = [key for key in keys if key not in head]
    with django_assert_num_queries(0):  # read by the second query, now memoised
        assert [str(product.pk) for product in serving._products(available, 2)] == available[:2]


class Exploding:
    name = "exploding"

    def recommend(self, context, store, limit):
        raise RuntimeError("boom")


def test_a_strategy_that_raises_falls_back_to_the_default_and_logs(catalogue, settings, caplog):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "RECOMMENDATION_STRATEGIES": ["tests.test_recommendations_serving.Exploding"],
        "RECOMMENDATION_DEFAULT_STRATEGY": "exploding",
    }
    request = request_for(in_control_group=False)
    with caplog.at_level(logging.ERROR, logger="personalization"):
        result = serving.recommend(request, "home", limit=2)
    assert result.strategy == "bestsellers"
    assert slugs(result)[0] == "d"
    assert "strategy 'exploding' failed" in caplog.text


def test_lists_are_served_from_the_database_when_the_cache_is_down(catalogue, unreachable_cache):
    store.forget_local()
    request = request_for(in_control_group=True)
    assert slugs(serving.recommend(request, "home", limit=1)) == ["d"]


def test_nothing_precomputed_yet_shows_the_newest_products(make_product):
    for n in range(5):
        make_product(slug=f"new-{n}")
    request = request_for(in_control_group=False)
    html = render('{% recommendations "home" limit=4 %}', request)
    assert html.count('class="pzn-recs__item"') == 4
    assert "/products/new-4/" in html and "/products/new-0/" not in html
    assert len(request.__dict__["_personalization_exposures"]) == 1


# Interactions ------------------------------------------------------------------------------
def test_product_pages_log_views_in_one_insert(client, make_product, django_assert_num_queries):
    product = make_product(slug="tent")
    client.get("/")
    client.get(f"/products/{product.slug}/")
    client.get(f"/products/{product.slug}/")  # the same product again: another view
    views = ProductInteraction.objects.filter(kind="view")
    assert list(views.values_list("product_id", flat=True)) == [str(product.pk)] * 2


def test_orders_and_cart_additions_are_logged(make_product):
    product = make_product()
    request = request_for(in_control_group=False)
    track.add_to_cart(request, product, quantity=2)
    track.order(request, order_id="R-1", total=Decimal("39.80"),
                items=[(product.pk, 2, Decimal("19.90"))])  # fmt: skip
    track.order(
        request, order_id="R-1", total=Decimal("39.80"), items=[(product.pk, 2, Decimal("19.90"))]
    )  # fmt: skip  (a replay)
    rows = list(ProductInteraction.objects.order_by("kind").values_list("kind", "quantity"))
    assert rows == [("cart", 2), ("purchase", 2)]


def test_no_interactions_when_switched_off(client, make_product, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RECORD_PRODUCT_INTERACTIONS": False}
    product = make_product(slug="tent")
    client.get("/")
    client.get(f"/products/{product.slug}/")
    assert not ProductInteraction.objects.exists()


def test_old_interactions_are_purged(make_product, settings):
    from personalization.retention import purge_old_interactions

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RECOMMENDATION_HISTORY_DAYS": 30}
    now = timezone.now()
    for days in (10, 31, 60):
        ProductInteraction.objects.create(
            visitor_id="v", product_id="1", kind="view", created_at=now - dt.timedelta(days=days)
        )
    assert purge_old_interactions() == 2
    assert ProductInteraction.objects.count() == 1


# API ---------------------------------------------------------------------------------------
def test_the_api_returns_recommendations_and_logs_an_exposure(client, catalogue):
    client.get("/")
    response = client.get(
        "/personalization/api/recommendations/",
        {"placement": "product-related", "product": catalogue["a"].pk, "limit": 3},
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body["items"]) == 3
    assert str(catalogue["a"].pk) not in [item["id"] for item in body["items"]]
    assert set(body["items"][0]) == {"id", "name", "url", "price", "image_url"}
    assert Exposure.objects.filter(pk=body["exposure"], kind="recommendation").exists()


class CountingAuthentication:
    """A shop's own DRF authentication, counting when it runs."""

    calls = 0

    def authenticate(self, request):
        CountingAuthentication.calls += 1
        return None

    def authenticate_header(self, request):
        return "Counting"


class UserReadingThrottle:
    """A shop's throttle that reads request.user, as DRF's UserRateThrottle does."""

    def allow_request(self, request, view):
        return request.user is not None

    def wait(self):
        return None


@pytest.mark.parametrize("throttled", [False, True])
def test_the_api_authenticates_a_read_only_when_something_asks_who(
    client, catalogue, monkeypatch, throttled
):
    """The visitor is answered, not the account: DRF's authentication of a GET waits until
    a throttle (or anything) reads request.user. Writes authenticate first (the signup's
    CSRF check is tested with it)."""
    from personalization.api.recommendations import RecommendationsView

    # What a shop's DEFAULT_AUTHENTICATION_CLASSES and DEFAULT_THROTTLE_CLASSES give the view.
    monkeypatch.setattr(RecommendationsView, "authentication_classes", [CountingAuthentication])
    throttles = [UserReadingThrottle] if throttled else []
    monkeypatch.setattr(RecommendationsView, "throttle_classes", throttles)
    CountingAuthentication.calls = 0
    client.get("/")
    query = {"placement": "product-related", "product": catalogue["a"].pk, "limit": 3}
    response = client.get("/personalization/api/recommendations/", query)
    assert response.status_code == 200 and len(response.json()["items"]) == 3
    assert CountingAuthentication.calls == (1 if throttled else 0)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"placement": "home", "limit": "0"}, "limit"),
        ({"placement": "home", "limit": "-3"}, "limit"),
        ({"placement": "home", "limit": "10000000000000000000"}, "limit"),
        ({"placement": "home", "limit": "four"}, "limit"),
        ({"placement": ""}, "placement"),
        ({"placement": "<script>"}, "placement"),
        ({"placement": "home", "product": "999999"}, "product"),
        ({"placement": "home", "product": "not-a-number"}, "product"),
        ({"placement": "home", "product": "x" * 500}, "product"),
    ],
)
def test_the_api_answers_bad_input_with_400_and_a_message(client, catalogue, query, field):
    response = client.get("/personalization/api/recommendations/", query)
    assert response.status_code == 400
    assert field in response.json()


def test_precompute_tasks_are_scheduled():
    beat = pytest.importorskip("django_celery_beat.models", reason="django-celery-beat is optional")
    tasks = dict(beat.PeriodicTask.objects.values_list("task", "interval__every"))
    assert tasks["personalization.refresh_trending"] == 300
    nightly = beat.PeriodicTask.objects.get(task="personalization.recompute_recommendations")
    assert (nightly.crontab.minute, nightly.crontab.hour) == ("45", "2")


def test_a_page_category_leads_the_blend(catalogue, make_product):
    others = [make_product(category="kitchen", slug=f"pan-{n}") for n in range(3)]
    ProductInteraction.objects.bulk_create(
        ProductInteraction(visitor_id=f"cook{n}", product_id=str(pan.pk), kind="purchase")
        for n in range(3)
        for pan in others
    )
    precompute.recompute_all()
    request = request_for(in_control_group=False)
    result = serving.recommend(request, "category-picks", category="kitchen", limit=3)
    assert set(slugs(result)) == {"pan-0", "pan-1", "pan-2"}
    html = render('{% recommendations "category-picks" category="kitchen" limit=2 %}', request)
    assert html.count('class="pzn-recs__item"') == 2 and "/products/pan-" in html


def test_recommendations_for_an_email_come_from_the_stored_visitor(catalogue):
    from personalization.models import Visitor

    now = timezone.now()
    Visitor.objects.create(
        id="reader", first_seen=now, last_seen=now, first_source="email",
        recently_viewed=[catalogue["a"].pk], in_control_group=False,
    )  # fmt: skip
    Visitor.objects.create(id="held-out", first_seen=now, last_seen=now, in_control_group=True)
    result = serving.recommend_for_visitor("reader", "email", limit=3)
    assert result.strategy == "auto" and len(result) == 3
    exposure = Exposure.objects.get(pk=result.exposure_id)
    assert (exposure.placement, exposure.visitor_id, exposure.is_control) == (
        "email",
        "reader",
        False,
    )
    held_out = serving.recommend_for_visitor("held-out", "email", limit=2)
    assert held_out.strategy == "bestsellers" and slugs(held_out)[0] == "d"
    assert Exposure.objects.get(pk=held_out.exposure_id).is_control is True
    assert not serving.recommend_for_visitor("nobody", "email")


def test_a_warm_api_call_reads_nothing_and_writes_its_exposure(client, catalogue):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get("/")
    url = "/personalization/api/recommendations/"
    query = {"placement": "product-related", "product": catalogue["a"].pk, "limit": 4}
    client.get(url, query)  # warms the lists and the product cards
    with CaptureQueriesContext(connection) as captured:
        body = client.get(url, query).json()
    statements = [
        q["sql"] for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")
    ]
    assert len(statements) == 1 and statements[0].startswith(
        'INSERT INTO "personalization_exposure"'
    )
    assert len(body["items"]) == 4


def test_a_saved_product_shows_its_new_name_in_the_api(client, catalogue):
    client.get("/")
    url = "/personalization/api/recommendations/"

    def names() -> list[str]:
        response = client.get(url, {"placement": "x", "limit": 8})
        return [item["name"] for item in response.json()["items"]]

    assert "D" in names()
    catalogue["d"].name = "Dutch oven"
    catalogue["d"].save()
    assert "Dutch oven" in names()
    catalogue["d"].is_available = False
    catalogue["d"].save()
    assert "Dutch oven" not in names()


def test_staff_choose_a_placement_strategy_among_the_known_ones(admin_client):
    url = "/admin/personalization/placement/add/"
    page = admin_client.get(url).content.decode()
    for name in ("auto", "viewed_together", "bought_together", "popular_near_you", "buy_again"):
        assert f'value="{name}"' in page
    form = {"slug": "recs", "name": "Recs", "selection": "priority", "is_active": "on",
            "banners-TOTAL_FORMS": "0", "banners-INITIAL_FORMS": "0",
            "rules-TOTAL_FORMS": "0", "rules-INITIAL_FORMS": "0"}  # fmt: skip
    refused = admin_client.post(url, {**form, "strategy": "made_up"})
    assert refused.status_code == 200 and not Placement.objects.filter(slug="recs").exists()
    assert "made_up is not one of the available choices" in refused.content.decode()
    saved = admin_client.post(url, {**form, "strategy": "trending"})
    assert saved.status_code == 302
    assert Placement.objects.get(slug="recs").strategy == "trending"


def test_right_after_an_order_its_products_are_not_offered_again(catalogue):
    request = request_for(in_control_group=False, purchased=[catalogue["d"].pk])
    ProductInteraction.objects.bulk_create(
        ProductInteraction(visitor_id=f"again{n}", product_id=str(catalogue["d"].pk),
                           kind="purchase", created_at=timezone.now() - dt.timedelta(days=d))
        for n in range(5) for d in (3, 20)
    )  # fmt: skip
    precompute.recompute_all()
    assert "d" in slugs(serving.recommend(request, "order-confirmation", limit=4))
    track.order(request, order_id="J-1", total=Decimal("10.00"),
                items=[(catalogue["d"].pk, 1, Decimal("10.00"))])  # fmt: skip
    assert "d" not in slugs(serving.recommend(request, "order-confirmation", limit=4))


# Both groups counted under the same condition ----------------------------------------------
@pytest.mark.parametrize("with_products", [True, False], ids=["products", "no-products"])
def test_control_and_personalized_visitors_get_the_same_exposures(make_product, with_products):
    if with_products:
        for name in "abc":
            make_product(slug=name, name=name.upper())
    counts = {}
    for in_control_group in (False, True):
        request = request_for(in_control_group=in_control_group)
        html = render('{% recommendations "home-for-you" limit=3 %}', request)
        pending = request.__dict__.get("_personalization_exposures", [])
        assert [row.is_control for row in pending] == [in_control_group]
        assert [row.kind for row in pending] == [Exposure.RECOMMENDATION]
        assert len(pending[0].items) == (3 if with_products else 0)
        # Markup, and its exposure id, only where a list is rendered.
        assert ("data-personalization-exposure" in html) is with_products
        if with_products:
            assert f'data-personalization-exposure="{pending[0].id}"' in html
        counts[in_control_group] = flush_exposures(request)
    assert counts[False] == counts[True] == 1


def test_an_empty_list_in_the_api_still_logs_its_exposure(client):
    client.get("/")  # the visitor cookie comes back from here on
    response = client.get("/personalization/api/recommendations/", {"placement": "home"})
    body = response.json()
    assert body["items"] == []
    exposure = Exposure.objects.get(pk=body["exposure"])
    assert exposure.items == []


def test_an_email_without_products_still_logs_its_exposure():
    from personalization.models import Visitor

    now = timezone.now()
    for vid, held_out in (("reader", False), ("held-out", True)):
        Visitor.objects.create(id=vid, first_seen=now, last_seen=now, in_control_group=held_out)
        result = serving.recommend_for_visitor(vid, "email-welcome", limit=3)
        assert not result
        exposure = Exposure.objects.get(pk=result.exposure_id)
        assert (exposure.visitor_id, exposure.items, exposure.is_control) == (vid, [], held_out)


def alike(a, b) -> bool:
    """Parameters alike: adapted values (PostgreSQL's Jsonb) by what they hold, timestamps
    set on save to the minute (they differ by the time between two preparations), lists (an
    UNNEST's columns) item by item."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(alike(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dt.datetime | str) and isinstance(b, dt.datetime | str):
        return a == b or str(a)[:16] == str(b)[:16]
    return repr(a) == repr(b)


@pytest.mark.parametrize("count", [1, 3])
def test_a_remembered_insert_is_the_statement_django_writes(count, monkeypatch):
    """Exposures and product views are inserted with SQL Django's compiler wrote once for
    their shape; the values are prepared as it prepares them."""
    from django.db import connection
    from django.db.models.sql import InsertQuery

    from personalization import tracking
    from personalization.models import Exposure

    def rows():
        made = []
        for n in range(count):
            made.append(
                Exposure(
                    id=f"00000000-0000-0000-0000-00000000000{n}",
                    visitor_id="v" * 22,
                    placement="home",
                    kind="recommendation",
                    content="strategy:auto",
                    items=["1", 2],
                    segments=["returning"],
                    created_at=timezone.now() - dt.timedelta(days=1),
                )
            )
        for n in range(count):
            made.append(ProductInteraction(visitor_id="v" * 22, product_id=str(n), kind="view"))
        return made

    for model in (Exposure, ProductInteraction):
        first = [row for row in rows() if isinstance(row, model)]
        tracking._insert_sql(model, first, connection)  # the compiler's; remembered
        again = [row for row in rows() if isinstance(row, model)]
        # PostgreSQL inserts several rows with UNNEST, an array per column: left to Django.
        reused = not (connection.vendor == "postgresql" and count > 1)
        with monkeypatch.context() as patch:
            if reused:
                patch.setattr("django.db.models.sql.InsertQuery", None)  # not compiled again
            remembered = tracking._insert_sql(model, again, connection)
        fresh = [row for row in rows() if isinstance(row, model)]
        fields = [f for f in model._meta.concrete_fields if not f.generated]
        if fresh[0].pk is None:
            fields = [f for f in fields if not f.primary_key]
        query = InsertQuery(model)
        query.insert_values(fields, fresh)
        expected = [
            (sql, list(params))
            for sql, params in query.get_compiler(connection=connection).as_sql()
        ]
        assert len(remembered) == len(expected) == 1
        assert remembered[0][0] == expected[0][0]
        # Timestamps set on save differ by the microseconds between the two preparations.
        assert alike(remembered[0][1], expected[0][1]), (remembered, expected)
    tracking.write_rows([(Exposure, [r for r in rows() if isinstance(r, Exposure)])])
    assert Exposure.objects.count() == count
    assert Exposure.objects.get(pk="00000000-0000-0000-0000-000000000000").items == ["1", 2]


@pytest.mark.parametrize(
    ("accept", "status"),
    [(None, 200), ("*/*", 200), ("application/json", 200), ("text/html", 406),
     ("application/json; indent=4", 200), ("text/html, application/json;q=0.9", 200)],
)  # fmt: skip
def test_the_api_negotiates_as_drf_does(client, catalogue, accept, status):
    """The usual Accept headers are answered without parsing; the rest as DRF decides."""
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    response = client.get("/personalization/api/recommendations/", {"placement": "home"}, **headers)
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"].startswith("application/json")
        assert len(response.json()["items"]) == 4


def test_rows_of_an_unknown_kind_are_left_out_of_the_fit(catalogue, settings):
    """A row another piece of code wrote with a kind the fit does not know costs nothing:
    the fit, in one process or in parts, reads around it."""
    ProductInteraction.objects.create(
        visitor_id="w1", product_id=str(catalogue["h"].pk), kind="wish"
    )
    before = dict(store.SharedStore().get_many("viewed_together", [str(catalogue["a"].pk)]))
    result = precompute.recompute_all()
    assert result["lists"] > 0
    store.forget_local()
    after = dict(store.SharedStore().get_many("viewed_together", [str(catalogue["a"].pk)]))
    assert after == before and after
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RECOMMENDATION_FIT_PARTS": 2}
    assert precompute.recompute_all()["lists"] == result["lists"]
