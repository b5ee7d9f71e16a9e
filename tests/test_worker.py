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


def test_the_workers_share_a_rebuild_of_the_report_roll_ups(real_worker, monkeypatch):
    import time

    from personalization.models import ReportCell
    from personalization.reports import rollup_build, rollups
    from tests.test_report_rollups import random_shop

    def cells() -> list[tuple]:
        return sorted(ReportCell.objects.values_list("dimension", "key", "detail", "is_control",
                                                     "measure", "prev_day", "day", "n",
                                                     "revenue_cents"))  # fmt: skip

    random_shop(11, timezone.now() - dt.timedelta(days=20), days=19, visitors=100)
    monkeypatch.setattr(rollup_build, "PART_EXPOSURES", 60)
    result = rollups.refresh(full=True)
    assert result["parts"] > 1
    assert result["queued"] == result["parts"]  # every part went to the workers
    deadline = time.monotonic() + 120
    while rollups.status() is None:
        assert time.monotonic() < deadline, "the workers did not finish the rebuild"
        time.sleep(0.5)
    by_workers = cells()
    assert by_workers
    real_worker.conf.task_always_eager = True  # the same rebuild in this process
    assert rollups.refresh(full=True)["queued"] == 0
    assert cells() == by_workers


def test_the_workers_fit_the_recommendations_as_a_chord(real_worker, settings, make_product):
    from celery.result import AsyncResult

    from personalization.models import RecommendationList
    from personalization.recommendations import precompute
    from tests.test_fit_parts import make_shop, one_fit, served

    now = make_shop(make_product)
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RECOMMENDATION_FIT_PARTS": 3}
    sent = precompute.recompute_all(now)
    assert sent["queued"] and sent["parts"] == 3
    finished = AsyncResult(sent["task"], app=real_worker).get(timeout=120)
    assert finished["parts"] == 3 and finished["interactions"] == 3000
    assert served() == one_fit(now)
    assert not RecommendationList.objects.exclude(fit="").exists()
