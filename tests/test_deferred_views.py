"""Product views written after the response by the process's background writer: no statement
of their own on the page, nothing lost on a failed write, an exit or a fork, nothing left of
a visitor who asked to be forgotten."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from personalization import deferred
from personalization.models import ProductInteraction, Visitor
from personalization.profiling import storage
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def delay(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 0.2}
    yield 0.2
    deferred.flush()


def eventually(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def returning(make_product) -> tuple[Client, list]:
    products = [make_product(slug=f"p{n}") for n in range(3)]
    browser = Client(HTTP_USER_AGENT=BROWSER_UA)
    browser.get("/")
    browser.get("/")  # the cookie came back: the row is written
    return browser, products


def views() -> int:
    return ProductInteraction.objects.filter(kind=ProductInteraction.VIEW).count()


def test_a_product_page_writes_its_view_after_the_response(delay, make_product):
    browser, products = returning(make_product)
    with CaptureQueriesContext(connection) as page:
        assert browser.get("/products/p0/").status_code == 200
    inserts = [q["sql"] for q in page.captured_queries if "INSERT INTO" in q["sql"]]
    assert inserts == []  # no statement of its own
    assert eventually(lambda: views() == 1)
    row = ProductInteraction.objects.get()
    assert row.product_id == str(products[0].pk) and row.visitor_id == Visitor.objects.get().pk


def test_many_views_go_in_one_statement(delay, make_product, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 30}
    browser, _ = returning(make_product)
    for n in range(3):
        browser.get(f"/products/p{n}/")
    assert deferred.waiting() == 3 and views() == 0
    with CaptureQueriesContext(connection) as flush:
        assert deferred.flush() == 3
    inserts = [q for q in flush.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(inserts) == 1  # the products were looked up (once each), then one INSERT
    assert views() == 3


def test_the_views_reach_the_profile_after_the_response(delay, make_product, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 30}
    browser, products = returning(make_product)
    browser.get("/products/p0/")
    browser.get("/products/p1/")
    visitor_id = Visitor.objects.get().pk
    assert storage.load(visitor_id).recently_viewed == []  # not in the stored profile yet
    deferred.flush()
    stored = storage.load(visitor_id)
    assert stored.recently_viewed == [products[1].pk, products[0].pk]
    assert stored.product_views == {str(products[0].pk): 1, str(products[1].pk): 1}
    assert views() == 2


def test_the_next_page_that_reads_the_profile_knows_the_views_at_once(
    delay, make_product, settings
):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 30}
    browser, products = returning(make_product)
    browser.get("/products/p0/")
    browser.get("/products/p1/")
    body = browser.get("/profile/").json()  # no wait: this process adds them itself
    assert body["recently_viewed"] == [products[1].pk, products[0].pk]
    assert views() == 0 and deferred.waiting() == 2
    deferred.flush()  # the rows only: the views are in the profile once
    stored = storage.load(Visitor.objects.get().pk)
    assert stored.product_views == {str(products[0].pk): 1, str(products[1].pk): 1}
    assert views() == 2


def test_a_page_that_read_the_profile_records_the_view_itself(delay, make_product, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 30}
    browser, products = returning(make_product)
    browser.get("/products/p0/", {"read": "1"})
    assert browser.get("/profile/").json()["recently_viewed"] == [products[0].pk]
    assert deferred.waiting() == 1 and views() == 0  # its row waits all the same
    deferred.flush()
    assert views() == 1


def test_with_no_delay_the_view_is_written_with_the_page(make_product, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 0}
    browser, _ = returning(make_product)
    browser.get("/products/p0/")
    assert views() == 1 and deferred.waiting() == 0


def test_a_failed_write_keeps_the_rows_and_logs_once(delay, make_product, settings, caplog):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 30}
    browser, _ = returning(make_product)
    browser.get("/products/p0/")
    table = ProductInteraction._meta.db_table
    with connection.cursor() as cursor:  # the table is gone for a while: a real failure
        cursor.execute(f"ALTER TABLE {table} RENAME TO pzn_away")
    try:
        assert deferred.flush() == 0
        browser.get("/products/p1/")
        assert deferred.flush() == 0
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE pzn_away RENAME TO {table}")
    assert deferred.waiting() == 2
    failures = [r for r in caplog.records if "could not write" in r.getMessage()]
    assert len(failures) == 1
    assert deferred.flush() == 2 and views() == 2
    assert any("written again" in r.getMessage() for r in caplog.records)


def test_a_forgotten_visitor_leaves_no_view_behind(delay, make_product, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 30}
    browser, _ = returning(make_product)
    browser.get("/products/p0/")
    other = Client(HTTP_USER_AGENT=BROWSER_UA)
    returning_other = [other.get("/") for _ in range(2)]
    assert returning_other[-1].status_code == 200
    other.get("/products/p1/")
    assert deferred.waiting() == 2
    assert browser.delete("/personalization/api/me/").status_code in (200, 204)
    assert deferred.waiting() == 1  # dropped in this process at once
    # A forgotten visitor's row that waits in another process: dropped when written.
    forgotten = ProductInteraction(visitor_id="x" * 22, product_id="1", kind="view")
    assert deferred.defer_views([forgotten])
    assert deferred.flush() == 1  # the other visitor's view only
    (row,) = ProductInteraction.objects.all()
    assert row.visitor_id == other.cookies["pzn_vid"].value.split(":")[0].split(".")[0]


def test_past_the_limit_the_page_writes_its_own_view(delay, make_product, monkeypatch, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 30}
    monkeypatch.setattr(deferred, "MAX_ROWS", 1)
    browser, _ = returning(make_product)
    browser.get("/products/p0/")
    browser.get("/products/p1/")
    assert deferred.waiting() == 1 and views() == 1  # the second page wrote its own


def test_the_rows_left_are_written_at_exit(delay, make_product, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 30}
    browser, _ = returning(make_product)
    browser.get("/products/p0/")
    assert views() == 0
    deferred._write_on_exit()
    assert views() == 1 and deferred.waiting() == 0


def test_a_forked_child_starts_empty_and_the_parent_keeps_its_rows(delay, make_product, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VIEW_WRITE_DELAY_SECONDS": 30}
    browser, _ = returning(make_product)
    browser.get("/products/p0/")
    pid = os.fork()
    if pid == 0:  # the child: nothing of the parent's to write twice
        os._exit(0 if deferred.waiting() == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert deferred.waiting() == 1
    assert deferred.flush() == 1 and views() == 1


def test_track_product_view_is_deferred_the_same_way(delay, settings):
    from tests.testapp.models import Book

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PRODUCT_MODEL": "testapp.Book",
        "PRODUCT_ADAPTER": "tests.testapp.adapters.BookAdapter",
        "PRODUCT_VIEW_URLS": {},
        "VIEW_WRITE_DELAY_SECONDS": 30,
    }
    book = Book.objects.create(title="Dune", isbn="9780441013593", genre="scifi", cost=9)
    browser = Client(HTTP_USER_AGENT=BROWSER_UA)
    browser.get("/")
    browser.get("/")
    assert browser.get(f"/books/{book.isbn}/").status_code == 200
    assert deferred.waiting() == 1 and views() == 0
    body = browser.get("/profile/").json()
    assert body["recently_viewed"] == [book.pk] and body["top_categories"] == ["scifi"]
    assert deferred.flush() == 1
    assert ProductInteraction.objects.get().product_id == str(book.pk)
