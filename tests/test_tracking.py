"""track.order / track.goal / track.add_to_cart: recorded once, validated, never lost."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import OperationalError, connection
from django.http import HttpResponse

from personalization import track
from personalization.middleware import VisitorMiddleware
from personalization.models import Conversion, Event, Visitor
from personalization.profiling import storage
from personalization.profiling.visitor import new_visitor_id
from tests.conftest import BROWSER_UA, GOOGLEBOT_UA


def tracked_request(rf, user_agent: str = BROWSER_UA):
    """A request of a new visitor whose cookie came back: what it tracks is written."""
    request = rf.get("/", HTTP_USER_AGENT=user_agent)
    response = HttpResponse()
    storage.write_visitor_cookie(response, new_visitor_id())
    request.COOKIES = {name: morsel.value for name, morsel in response.cookies.items()}
    VisitorMiddleware(lambda r: None).process_request(request)
    assert request.visitor.visit_count == 1  # the page reads the profile (loaded now)
    return request


@pytest.mark.django_db
class TestOrder:
    def test_an_order_is_recorded_with_its_revenue_and_items(self, rf, make_product):
        product = make_product()
        request = tracked_request(rf)
        conversion = track.order(
            request, order_id="A-1001", total=Decimal("59.90"), currency="eur",
            items=[(product.pk, 2, Decimal("29.95"))],
        )  # fmt: skip
        assert (conversion.kind, conversion.goal, conversion.order_id) == (
            "purchase",
            "purchase",
            "A-1001",
        )
        assert (conversion.revenue, conversion.currency) == (Decimal("59.90"), "EUR")
        assert conversion.items == [[product.pk, 2, "29.95"]]
        assert conversion.is_control == request.visitor.in_control_group

    def test_the_profile_and_row_learn_about_the_order(self, rf, make_product):
        product = make_product()
        request = tracked_request(rf)
        track.order(request, order_id="A-1", total="10.00", items=[(product.pk, 1, "10.00")])
        track.order(request, order_id="A-2", total="15.50")
        data = request.visitor._data
        assert (data.order_count, data.total_spent) == (2, 25.5)
        assert data.purchased == [str(product.pk)]
        row = Visitor.objects.get(pk=request.visitor.id)  # written at once, not next visit
        assert (row.order_count, row.total_spent) == (2, Decimal("25.50"))
        assert row.last_order_at is not None

    def test_an_order_is_credited_to_the_content_clicked_last_within_the_window(self, rf):
        import datetime as dt

        from django.utils import timezone

        from personalization.models import Exposure

        request = tracked_request(rf)
        vid = request.visitor.id
        shown = [("home-hero", "banner"), ("home-hero", "banner"), ("for-you", "recommendation")]
        old, banner, recs = (
            Exposure.objects.create(visitor_id=vid, placement=p, kind=k, content="x")
            for p, k in shown
        )
        now = timezone.now()
        for shown, ago in ((old, dt.timedelta(days=8)), (banner, dt.timedelta(hours=3)),
                           (recs, dt.timedelta(hours=1))):  # fmt: skip
            Event.objects.create(visitor_id=vid, exposure=shown, kind=Event.CLICK,
                                 created_at=now - ago)  # fmt: skip
        assert track.order(request, order_id="C-1", total="10").exposure_id == recs.pk
        Event.objects.filter(exposure__in=[banner, recs]).delete()
        # A click older than ATTRIBUTION_WINDOW_DAYS (7) credits nothing.
        assert track.order(request, order_id="C-2", total="10").exposure_id is None

    def test_a_click_at_the_orders_instant_earns_it_nothing(self, rf):
        import time_machine

        from personalization.models import Exposure

        request = tracked_request(rf)
        vid = request.visitor.id
        with time_machine.travel("2026-11-12 15:00:00+00:00", tick=False):
            earlier = Exposure.objects.create(
                visitor_id=vid, placement="for-you", kind="recommendation", content="x"
            )
            Event.objects.create(visitor_id=vid, exposure=earlier, kind=Event.CLICK)
        with time_machine.travel("2026-11-12 15:30:00+00:00", tick=False):
            confirmation = Exposure.objects.create(
                visitor_id=vid, placement="order-confirmation", kind="banner", content="x"
            )
            Event.objects.create(visitor_id=vid, exposure=confirmation, kind=Event.CLICK)
            conversion = track.order(request, order_id="C-3", total="10")
        assert conversion.created_at == confirmation.created_at
        # The click that came with the order is not before it: the earlier one is credited.
        assert conversion.exposure_id == earlier.pk
        with time_machine.travel("2026-11-12 15:30:01+00:00", tick=False):
            later = track.order(request, order_id="C-4", total="10")
        assert later.exposure_id == confirmation.pk

    def test_a_stale_profile_cannot_take_orders_back_from_the_row(self, browser, clock):
        from personalization.profiling import storage

        browser.get("/")
        clock.shift(20)
        visitor_id = browser.get("/profile/").json()["id"]
        # Orders the cached profile never heard of (counted by another process meanwhile).
        Visitor.objects.filter(pk=visitor_id).update(order_count=3, total_spent=Decimal("30"))
        clock.shift(31 * 60)
        browser.get("/")  # a new visit writes the row from the cached profile
        row = Visitor.objects.get(pk=visitor_id)
        assert (row.visit_count, row.order_count, row.total_spent) == (2, 3, Decimal("30.00"))
        assert browser.post("/order/", {"order_id": "S-1", "total": "5.00"}).status_code == 201
        row.refresh_from_db()
        assert (row.order_count, row.total_spent) == (4, Decimal("35.00"))
        data = storage.load(visitor_id)
        assert (data.order_count, data.total_spent) == (4, 35.0)
        assert data.last_order_at == row.last_order_at.timestamp()

    def test_a_replayed_order_is_recorded_once(self, rf):
        request = tracked_request(rf)
        first = track.order(request, order_id="A-7", total="20")
        again = track.order(request, order_id="A-7", total="20")
        assert again.pk == first.pk
        assert Conversion.objects.filter(order_id="A-7").count() == 1
        assert request.visitor._data.order_count == 1

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"total": "-5"}, "zero or more"),
            ({"total": "lots"}, "must be a number"),
            ({"total": "NaN"}, "zero or more"),
            ({"total": "5", "currency": "euro"}, "three-letter"),
            ({"total": "5", "items": [(1, 0, "5")]}, "quantity must be positive"),
            ({"total": "5", "items": [(1, 1)]}, "(product_pk, quantity, unit_price)"),
            ({"total": "5", "items": [(1, 1, "-1")]}, "zero or more"),
            ({"total": "5", "order_id": ""}, "needs an order_id"),
            ({"total": "5", "order_id": "x" * 65}, "longer than"),
        ],
    )
    def test_bad_input_is_refused_and_nothing_is_written(self, rf, kwargs, message):
        request = tracked_request(rf)
        kwargs = {"order_id": "A-9", **kwargs}
        with pytest.raises(track.TrackingError) as caught:
            track.order(request, **kwargs)
        assert message in str(caught.value)
        assert not Conversion.objects.exists()
        assert request.visitor._data.order_count == 0

    def test_untracked_visitors_are_not_recorded(self, rf):
        assert track.order(tracked_request(rf, GOOGLEBOT_UA), order_id="B-1", total=5) is None
        assert not Conversion.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_of_one_order_make_one_conversion(rf):
    requests = [tracked_request(rf) for _ in range(8)]
    results: list[object] = []
    barrier = threading.Barrier(len(requests))

    def report(request) -> None:
        try:
            barrier.wait()
            results.append(track.order(request, order_id="RACE-1", total="42.00"))
        except OperationalError:
            # SQLite's in-memory test database locks whole tables; PostgreSQL does not.
            assert connection.vendor == "sqlite"
        finally:
            if connection.vendor == "sqlite" and connection.connection is not None:
                # Django keeps in-memory SQLite connections open, and Python 3.13 warns
                # about a thread's one left to the garbage collector.
                connection.connection.close()
            connection.close()

    threads = [threading.Thread(target=report, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Conversion.objects.filter(order_id="RACE-1").count() == 1
    winner = Conversion.objects.get(order_id="RACE-1")
    assert all(result.pk == winner.pk for result in results)
    if connection.vendor == "postgresql":
        assert len(results) == len(requests)  # every report got the one conversion back


@pytest.mark.django_db
class TestGoals:
    @pytest.mark.parametrize(
        ("name", "kind"),
        [
            ("newsletter_signup", "lead"),
            ("signup", "lead"),
            ("app_download", "app_download"),
            ("add_to_cart", "engagement"),
            ("watched_video", "other"),
        ],
    )
    def test_goals_map_to_the_four_kinds_or_other(self, rf, name, kind):
        conversion = track.goal(tracked_request(rf), name)
        assert (conversion.goal, conversion.kind) == (name, kind)

    @pytest.mark.parametrize("name", ["", "   ", "x" * 101, None])
    def test_a_goal_needs_a_sane_name(self, rf, name):
        with pytest.raises(track.TrackingError):
            track.goal(tracked_request(rf), name)
        assert not Conversion.objects.exists()

    def test_add_to_cart_feeds_the_abandoned_cart_rule(self, rf, make_product):
        request = tracked_request(rf)
        product = make_product()
        assert track.add_to_cart(request, product) is True
        assert request.visitor._data.cart_updated_at is not None
        assert Event.objects.get().product_id == str(product.pk)
