"""Data retention: old visitors are deleted, with their cached profiles; recent ones stay."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.utils import timezone

from personalization import jobs
from personalization.models import Visitor
from personalization.profiling.storage import profile_cache_key
from personalization.retention import purge_inactive_visitors

pytestmark = pytest.mark.django_db


def visitor(visitor_id: str, days_ago: float) -> Visitor:
    seen = timezone.now() - dt.timedelta(days=days_ago)
    caches["default"].set(profile_cache_key(visitor_id), {"v": 1})
    return Visitor.objects.create(
        id=visitor_id,
        first_seen=seen,
        last_seen=seen,
        first_source="direct",
        latest_source="direct",
    )


def test_only_visitors_past_the_retention_period_are_deleted(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VISITOR_RETENTION_DAYS": 30}
    visitor("o" * 22, 31)
    visitor("n" * 22, 29)
    assert purge_inactive_visitors(batch_size=1) == 1
    assert list(Visitor.objects.values_list("pk", flat=True)) == ["n" * 22]
    assert caches["default"].get(profile_cache_key("o" * 22)) is None
    assert caches["default"].get(profile_cache_key("n" * 22)) is not None


def test_zero_keeps_everyone(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VISITOR_RETENTION_DAYS": 0}
    visitor("o" * 22, 3000)
    assert purge_inactive_visitors() == 0
    assert Visitor.objects.count() == 1


def test_the_command_and_the_job_run_the_purge(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VISITOR_RETENTION_DAYS": 10}
    visitor("a" * 22, 11)
    out = StringIO()
    call_command("personalization_purge", stdout=out)
    assert "Deleted 1 visitor(s)" in out.getvalue()
    visitor("b" * 22, 12)
    assert jobs.run("purge")["visitors"] == 1
    assert not Visitor.objects.exists()


def test_the_task_runs_the_purge(settings):
    pytest.importorskip("celery", reason="Celery is optional")
    from personalization.tasks import purge_inactive_visitors_task

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VISITOR_RETENTION_DAYS": 10}
    visitor("b" * 22, 12)
    assert purge_inactive_visitors_task.delay().get() == 1
    assert not Visitor.objects.exists()
