"""On PostgreSQL, analytics rows are committed without waiting for the disk, in a transaction
of their own: never a caller's transaction, never the session's other writes."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from personalization import tracking
from personalization.models import Exposure, Visitor

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's"
    ),
]


def exposure(visitor_id: str) -> Exposure:
    return Exposure(visitor_id=visitor_id, placement="home-hero", kind="banner", content="1")


def setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_the_rows_commit_without_waiting_and_the_session_keeps_its_setting():
    Visitor.objects.create(id="a" * 22, first_seen=timezone.now(), last_seen=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        tracking.write_rows([(Exposure, [exposure("a" * 22), exposure("a" * 22)])])
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "SET LOCAL synchronous_commit TO OFF" in sql
    assert Exposure.objects.count() == 2
    assert setting() == "on"
    assert not connection.in_atomic_block


def test_inside_a_caller_s_transaction_its_durability_is_kept():
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        tracking.write_rows([(Exposure, [exposure("b" * 22)])])
    assert "synchronous_commit" not in " ".join(q["sql"] for q in queries.captured_queries)
    assert Exposure.objects.count() == 1


def test_the_setting_turns_it_off(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRACKING_ASYNC_COMMIT": False}
    with CaptureQueriesContext(connection) as queries:
        tracking.write_rows([(Exposure, [exposure("c" * 22)])])
    assert "synchronous_commit" not in " ".join(q["sql"] for q in queries.captured_queries)
    assert Exposure.objects.count() == 1


def test_a_failed_write_leaves_the_connection_usable():
    bad = exposure("d" * 22)
    bad.placement = "x" * 500  # longer than the column: the database refuses the row
    bad.kind = "k" * 500
    with pytest.raises(DatabaseError):
        tracking.write_rows([(Exposure, [bad])])
    assert not connection.in_atomic_block
    assert setting() == "on"
    tracking.write_rows([(Exposure, [exposure("d" * 22)])])
    assert Exposure.objects.count() == 1
