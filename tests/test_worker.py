"""A real Celery worker (started by CI against Redis) runs the app's tasks on the database."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from personalization.models import Visitor

pytest.importorskip("celery", reason="Celery is not installed (an optional extra)")

from personalization.tasks import purge_inactive_visitors_task
from tests.celery_app import app

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("PZN_TEST_CELERY_BROKER"),
        reason="needs a broker and a running worker (PZN_TEST_CELERY_BROKER; CI starts one)",
    ),
]


@pytest.fixture
def real_worker():
    app.conf.task_always_eager = False
    yield app
    app.conf.task_always_eager = True


def test_the_worker_purges_visitors_past_retention(real_worker):
    old = timezone.now() - dt.timedelta(days=400)
    recent = timezone.now() - dt.timedelta(days=3)
    for visitor_id, seen in (("o" * 22, old), ("r" * 22, recent)):
        Visitor.objects.create(
            id=visitor_id, first_seen=seen, last_seen=seen, first_source="direct",
            latest_source="direct",
        )  # fmt: skip
    result = purge_inactive_visitors_task.delay()
    assert result.get(timeout=60) == 1
    assert list(Visitor.objects.values_list("pk", flat=True)) == ["r" * 22]
