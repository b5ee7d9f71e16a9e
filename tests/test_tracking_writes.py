"""One write per page: a product page's product view and its exposures reach the database
together, in one statement on PostgreSQL and one INSERT per table elsewhere, with no
transaction around them; a failure is logged and the profile is saved all the same."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from personalization import tracking
from personalization.models import Exposure, ProductInteraction, Visitor
from personalization.recommendations import precompute
from personalization.testutils import attach_visitor

POSTGRESQL = connection.vendor == "postgresql"
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
PAGE = "/products/a/with-recommendations/"


@pytest.fixture
def shop(clock, make_product, settings):
    """Products a, b and c, viewed and bought together by ten visitors: both placements on
    a's page have something to show. Pages with recommendations record product views."""
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PRODUCT_VIEW_URLS": {"shop:product-recs": "slug", "shop:product-clash": "slug"},
    }
    products = {name: make_product(slug=name) for name in "abc"}
    now = timezone.now()
    ProductInteraction.objects.bulk_create(
        ProductInteraction(
            visitor_id=f"history-{n}",
            product_id=str(product.pk),
            kind=kind,
            created_at=now - dt.timedelta(hours=2, minutes=n + offset),
        )
        for n in range(10)
        for offset, product in enumerate(products.values())
        for kind in ("view", "purchase")
    )
    precompute.recompute_all()
    return products


def returning_visitor(browser, clock) -> None:
    browser.get("/")
    clock.shift(20)
    browser.get("/")  # the cookie came back: the visitor's row is written
    clock.shift(20)


def page_statements(browser, clock) -> tuple[list[str], list[str]]:
    """The SQL of a warm product page with recommendations, and the exposure ids it shows."""
    returning_visitor(browser, clock)
    browser.get(PAGE)  # warms the recommendation lists and product cards
    clock.shift(20)
    with CaptureQueriesContext(connection) as captured:
        response = browser.get(PAGE)
    assert response.status_code == 200
    shown = re.findall(r'data-personalization-exposure="([0-9a-f-]{36})"', response.text)
    return [query["sql"] for query in captured.captured_queries], shown


@pytest.mark.parametrize(
    "transactional",
    [
        pytest.param(True, marks=pytest.mark.django_db(transaction=True), id="autocommit"),
        pytest.param(False, marks=pytest.mark.django_db, id="in-a-transaction"),
    ],
)
def test_a_product_page_writes_its_view_and_exposures_at_once(shop, browser, clock, transactional):
    statements, shown = page_statements(browser, clock)
    assert len(shown) == 2  # viewed together, bought together
    writes = [sql for sql in statements if not sql.startswith("SELECT")]
    control = [sql for sql in writes if sql.split()[0].upper() in TRANSACTION_CONTROL]
    writes = [sql for sql in writes if sql not in control]
    if POSTGRESQL:
        [write] = writes
        if transactional:  # a transaction of its own, committed without waiting for the disk
            assert control == ["BEGIN", "COMMIT"]
            assert write.startswith("SET LOCAL synchronous_commit TO OFF; ")
            write = write.removeprefix("SET LOCAL synchronous_commit TO OFF; ")
        else:  # inside the caller's transaction: it keeps its own durability
            assert not control
        assert write.startswith(
            'WITH pzn_insert_0 AS (INSERT INTO "personalization_productinteraction" '
        )
        assert ') INSERT INTO "personalization_exposure" ' in write
    else:
        assert [sql.split(" (")[0] for sql in writes] == [
            'INSERT INTO "personalization_productinteraction"',
            'INSERT INTO "personalization_exposure"',  # both exposures in one INSERT
        ]
        assert not control

    visitor_id = browser.get("/profile/").json()["id"]
    exposures = Exposure.objects.filter(pk__in=shown)
    assert sorted(exposures.values_list("placement", "visitor_id")) == [
        ("product-bought-together", visitor_id),
        ("product-viewed-together", visitor_id),
    ]
    assert all(exposure.items for exposure in exposures)
    views = ProductInteraction.objects.filter(kind="view", visitor_id=visitor_id)
    assert list(views.values_list("product_id", flat=True)) == [str(shop["a"].pk)] * 2


@pytest.mark.django_db(transaction=True)
def test_a_failed_write_is_logged_and_the_profile_is_saved(shop, browser, clock, caplog):
    returning_visitor(browser, clock)
    clock.shift(31 * 60)  # a new visit: the visitor's row is written after the page's rows
    with caplog.at_level(logging.ERROR, logger="personalization"):
        response = browser.get("/products/a/clash/")
    assert response.status_code == 200
    assert "could not write this page's exposures" in caplog.text

    profile = browser.get("/profile/").json()
    assert (profile["recently_viewed"], profile["visit_count"]) == ([shop["a"].pk], 2)
    row = Visitor.objects.get(pk=profile["id"])
    assert (row.recently_viewed, row.visit_count) == ([shop["a"].pk], 2)
    views = ProductInteraction.objects.filter(kind="view", visitor_id=profile["id"])
    # PostgreSQL writes the page's rows together or not at all; elsewhere the view's own
    # INSERT stands when the exposures' fails.
    assert views.count() == (0 if POSTGRESQL else 1)


@pytest.mark.django_db
def test_rows_beyond_one_batch_are_all_written(rf, clock):
    request = rf.get("/")
    visitor = attach_visitor(request, in_control_group=False)
    for n in range(300):
        tracking.queue_interaction(request, n)
        tracking.record_exposure(
            request, placement=f"p{n}", kind="recommendation", content="strategy:auto", items=[n]
        )
    with CaptureQueriesContext(connection) as captured:
        assert tracking.flush_exposures(request) == 300
    if POSTGRESQL:
        assert len(captured.captured_queries) == 1
    assert Exposure.objects.filter(visitor_id=visitor.id).count() == 300
    assert sorted(Exposure.objects.values_list("items", flat=True))[:2] == [[0], [1]]
    views = ProductInteraction.objects.filter(visitor_id=visitor.id, kind="view")
    assert sorted(int(pk) for pk in views.values_list("product_id", flat=True)) == list(range(300))
    assert tracking.flush_exposures(request) == 0  # what was written is not written again


@pytest.mark.django_db
def test_a_clash_raises_a_database_error(rf):
    request = rf.get("/")
    visitor = attach_visitor(request, in_control_group=False)
    exposure_id = tracking.record_exposure(request, placement="p", kind="banner", content="x")
    Exposure.objects.create(
        id=exposure_id, visitor_id=visitor.id, placement="p", kind="banner", content="x"
    )
    with pytest.raises(DatabaseError):
        tracking.flush_exposures(request)
