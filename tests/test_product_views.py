"""Recently viewed products and category interest, from PRODUCT_VIEW_URLS and track.product_view."""

from __future__ import annotations

from decimal import Decimal

import pytest

from personalization import track
from personalization.models import Visitor
from personalization.products import DefaultProductAdapter, get_adapter
from personalization.profiling.referrer import Referrer
from personalization.profiling.visitor import ProfileData, decayed
from tests.testapp.models import Book

pytestmark = pytest.mark.django_db


def profile(client) -> dict:
    return client.get("/profile/").json()


class TestProductPages:
    def test_views_fill_recently_viewed_most_recent_first_without_repeats(
        self, browser, make_product
    ):
        a, b, c = make_product(), make_product(), make_product()
        for product in (a, b, c, a):
            assert browser.get(f"/products/{product.slug}/").status_code == 200
        assert profile(browser)["recently_viewed"] == [a.pk, c.pk, b.pk]

    def test_recently_viewed_is_capped(self, browser, make_product, settings):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RECENTLY_VIEWED_MAX": 3}
        products = [make_product() for _ in range(5)]
        for product in products:
            browser.get(f"/products/{product.slug}/")
        assert profile(browser)["recently_viewed"] == [p.pk for p in products[:1:-1]]

    def test_an_unknown_slug_404s_as_usual_and_records_nothing(
        self, browser, django_assert_num_queries
    ):
        with django_assert_num_queries(1):  # the view's own lookup only
            response = browser.get("/products/no-such-thing/")
        assert response.status_code == 404
        assert profile(browser)["recently_viewed"] == []

    @pytest.mark.parametrize("record", [True, False])
    def test_a_warm_product_page_costs_one_insert_for_the_recommender_at_most(
        self, browser, make_product, clock, django_assert_num_queries, settings, record
    ):
        settings.PERSONALIZATION = {
            **settings.PERSONALIZATION,
            "RECORD_PRODUCT_INTERACTIONS": record,
        }
        product = make_product()
        browser.get("/")
        clock.shift(20)
        browser.get("/")  # the row is written: the visitor is returning from now on
        clock.shift(20)
        browser.get(f"/products/{product.slug}/")  # fills the product-info cache
        clock.shift(20)
        # The view's own query, and when recording, the view's ProductInteraction INSERT.
        with django_assert_num_queries(1 + record) as captured:
            browser.get(f"/products/{product.slug}/")
        if record:
            assert "personalization_productinteraction" in captured.captured_queries[-1]["sql"]

    def test_renaming_a_product_clears_its_cached_lookup(self, browser, make_product):
        from tests.testapp.models import Category

        product = make_product(category="camping")
        browser.get(f"/products/{product.slug}/")
        product.category = Category.objects.create(name="Kitchen", slug="kitchen")
        product.save()
        browser.get(f"/products/{product.slug}/")
        # The fresh lookup saw the new category, so kitchen has a score.
        assert "kitchen" in profile(browser)["top_categories"]

    def test_views_are_kept_in_the_row_for_the_next_visit(self, browser, make_product, clock):
        product = make_product()
        browser.get(f"/products/{product.slug}/")
        clock.shift(31 * 60)
        browser.get("/")
        row = Visitor.objects.get()
        assert row.recently_viewed == [product.pk]
        assert "camping" in row.category_interest


class TestCategoryInterest:
    def test_recent_interest_outweighs_old_interest(self, browser, make_product, clock):
        tent = make_product(category="camping")
        pan = make_product(category="kitchen")
        for _ in range(5):
            browser.get(f"/products/{tent.slug}/")
            clock.shift(60)
        clock.shift(30 * 86400)  # a month later: 5 views decayed by 2**(-30/7) ≈ 0.26
        for _ in range(2):
            browser.get(f"/products/{pan.slug}/")
            clock.shift(60)
        assert profile(browser)["top_categories"] == ["kitchen", "camping"]

    def test_without_the_gap_the_stronger_interest_leads(self, browser, make_product, clock):
        tent = make_product(category="camping")
        pan = make_product(category="kitchen")
        for product in (tent, tent, tent, pan, pan):
            browser.get(f"/products/{product.slug}/")
            clock.shift(60)
        assert profile(browser)["top_categories"] == ["camping", "kitchen"]

    def test_decay_halves_per_half_life(self):
        assert decayed(8.0, 0, 7 * 86400, 7 * 86400) == pytest.approx(4.0)
        assert decayed(8.0, 0, 0, 7 * 86400) == 8.0

    def test_categories_beyond_the_cap_drop_the_weakest(self, settings):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CATEGORY_INTEREST_MAX": 2}
        data = ProfileData.new("x" * 22, 0.0, referrer=Referrer())
        data.add_interest("a", 3, 0)
        data.add_interest("b", 1, 0)
        data.add_interest("c", 2, 0)
        assert set(data.interests) == {"a", "c"}


class TestTrackProductView:
    def test_track_product_view_with_a_custom_adapter(self, browser, settings):
        settings.PERSONALIZATION = {
            **settings.PERSONALIZATION,
            "PRODUCT_MODEL": "testapp.Book",
            "PRODUCT_ADAPTER": "tests.testapp.adapters.BookAdapter",
            "PRODUCT_VIEW_URLS": {},
        }
        book = Book.objects.create(title="Dune", isbn="9780441013593", genre="scifi", cost=9)
        assert browser.get(f"/books/{book.isbn}/").status_code == 200
        body = profile(browser)
        assert body["recently_viewed"] == [book.pk]
        assert body["top_categories"] == ["scifi"]
        assert get_adapter().name(book) == "Dune"

    def test_a_page_seen_by_both_mechanisms_counts_once(self, rf, make_product):
        from personalization.middleware import VisitorMiddleware

        product = make_product()
        request = rf.get("/", HTTP_USER_AGENT="Mozilla/5.0")
        VisitorMiddleware(lambda r: None).process_request(request)
        assert track.product_view(request, product) is True
        assert track.product_view(request, product) is False
        assert request.visitor.recently_viewed == [product.pk]

    def test_track_is_a_no_op_without_the_middleware_or_for_bots(self, rf, make_product):
        product = make_product()
        assert track.product_view(rf.get("/"), product) is False
        from personalization.middleware import VisitorMiddleware

        request = rf.get("/", HTTP_USER_AGENT="Googlebot/2.1 (+http://www.google.com/bot.html)")
        VisitorMiddleware(lambda r: None).process_request(request)
        assert track.product_view(request, product) is False
        assert request.visitor.recently_viewed == []


class TestDefaultAdapter:
    def test_reads_the_usual_fields(self, make_product):
        product = make_product(name="Tent", price=Decimal("129.00"), stock=0)
        adapter = DefaultProductAdapter(type(product))
        assert adapter.name(product) == "Tent"
        assert adapter.price(product) == Decimal("129.00")
        assert adapter.category_key(product) == "camping"
        assert adapter.category_name(product) == "Camping"
        assert adapter.url(product) == f"/products/{product.slug}/"
        assert adapter.image_url(product) is None
        assert adapter.is_available(product) is False  # out of stock

    def test_lookups_of_the_wrong_type_give_none(self, make_product):
        product = make_product()
        adapter = DefaultProductAdapter(type(product))
        assert adapter.get_by_field("pk", "not-a-number") is None
        assert adapter.get_by_field("slug", product.slug) == product
