"""Rebuilding the report's roll-ups in parts: the same cells as one pass, each part counted
once, parts that went missing sent again, and a report that waits for the build rather than
reading millions of raw rows."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from personalization.models import ReportCell, ReportCellPart, ReportRollup, ReportVisitorState
from personalization.reports import rollup_build, rollups
from personalization.reports.period import parse_period
from personalization.reports.queries import ReportPreparing, build_report
from tests.test_report_rollups import random_shop

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def cells() -> list[tuple]:
    return sorted(
        ReportCell.objects.values_list(
            "dimension", "key", "detail", "is_control", "measure", "prev_day", "day", "n",
            "revenue_cents", "label",
        )
    )  # fmt: skip


@pytest.fixture
def later():
    with time_machine.travel("2026-11-20 10:00:00+00:00", tick=False) as traveller:
        yield traveller


def test_parts_add_up_to_the_same_cells_as_one_pass(later, monkeypatch):
    random_shop(4, START, days=30, visitors=150)
    assert rollups.refresh(full=True)["parts"] == 1
    whole, states = cells(), ReportVisitorState.objects.count()
    monkeypatch.setattr(rollup_build, "PART_EXPOSURES", 40)
    result = rollups.refresh(full=True)
    assert result["parts"] > 5
    assert result["visitors"] == states
    assert cells() == whole
    assert not ReportCellPart.objects.exists()  # summed, then dropped
    rollup = ReportRollup.objects.get()
    assert rollup.build is None
    assert rollup.rolled_up_to == timezone.now() - rollups.SLACK
    assert rollup.visitors == states


def test_a_part_counts_once_and_the_report_waits_for_the_last_one(later, monkeypatch, settings):
    random_shop(5, START, days=30, visitors=120)
    rollups.refresh(full=True)
    whole = cells()
    monkeypatch.setattr(rollup_build, "PART_EXPOSURES", 60)
    monkeypatch.setattr(rollup_build, "dispatch", lambda build, parts=None: {"parts": 0})
    rollups.refresh(full=True)  # planned, nothing run: as when the workers have not started
    build = ReportRollup.objects.get().build
    parts = len(build["ranges"])
    assert parts > 2
    assert rollups.status() is None
    first = rollup_build.run_part(build["id"], 0)
    assert first["visitors"] > 0
    assert rollup_build.run_part(build["id"], 0)["skipped"] is True  # run twice: once
    assert rollup_build.run_part("another build", 1)["skipped"] is True
    progress = rollups.refresh()  # the periodic refresh meanwhile
    assert (progress["building"], progress["parts"], progress["parts_done"]) == (True, parts, 1)
    for part in range(1, parts):
        assert rollups.status() is None
        rollup_build.run_part(build["id"], part)
    assert rollups.status() is not None
    assert cells() == whole


def test_missing_parts_are_sent_again_when_the_build_stalls(later, monkeypatch):
    random_shop(6, START, days=20, visitors=60)
    monkeypatch.setattr(rollup_build, "PART_EXPOSURES", 50)
    sent: list[list[int] | None] = []
    real_dispatch = rollup_build.dispatch
    monkeypatch.setattr(rollup_build, "dispatch", lambda build, parts=None: sent.append(parts))
    rollups.refresh(full=True)
    build = ReportRollup.objects.get().build
    rollup_build.run_part(build["id"], 0)
    rollups.refresh()
    assert sent == [None]  # not stalled yet
    later.shift(rollup_build.STALL + dt.timedelta(minutes=1))
    with django_capture_on_commit() as callbacks:
        rollups.refresh()
    for callback in callbacks:
        callback()
    assert sent[1] == list(range(1, len(build["ranges"])))
    real_dispatch(ReportRollup.objects.get().build, sent[1])
    assert rollups.status() is not None


def django_capture_on_commit():
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=False)


def test_an_empty_shop_rebuilds_to_empty_roll_ups(later):
    result = rollups.refresh(full=True)
    assert (result["rebuilt"], result["parts"], result["visitors"]) == (True, 0, 0)
    assert rollups.status() is not None


def test_the_report_is_prepared_rather_than_read_from_millions_of_rows(later, settings):
    from django.core.cache import cache

    from personalization import jobs

    jobs._local_dedupe.clear()  # asked for once in five minutes: earlier tests may have asked
    cache.clear()
    random_shop(7, START, days=20, visitors=40)
    period = parse_period("2026-10-01", "2026-10-31", today=dt.date(2026, 11, 20))
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REPORT_RAW_MAX_EXPOSURES": 10}
    with django_capture_on_commit() as callbacks, pytest.raises(ReportPreparing) as waiting:
        build_report(period)
    assert "being prepared" in waiting.value.message()
    assert callbacks, "the build of the roll-ups is asked for"
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REPORT_RAW_MAX_EXPOSURES": 100_000}
    assert build_report(period)["source"] == "raw"  # few rows: read them meanwhile
    rollups.refresh()
    assert build_report(period)["source"] == "rollups"


def test_the_page_and_the_api_say_the_report_is_being_prepared(later, settings, admin_client):
    from django.urls import reverse

    random_shop(8, START, days=20, visitors=30)
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REPORT_RAW_MAX_EXPOSURES": 5}
    query = {"start": "2026-10-01", "end": "2026-10-31"}
    page = admin_client.get(reverse("admin:personalization_report"), query)
    assert page.status_code == 503
    assert page["Retry-After"] == "30"
    assert "The report is being prepared" in page.content.decode()
    answer = admin_client.get(reverse("personalization:api-report"), query)
    assert answer.status_code == 503
    assert answer.json()["preparing"] is True
    assert answer["Retry-After"] == "30"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="forked processes need a server")
def test_the_command_rebuilds_in_processes_side_by_side(monkeypatch):
    random_shop(9, timezone.now() - dt.timedelta(days=20), days=19, visitors=120)
    call_command("personalization_rollup", "--full", stdout=io.StringIO())
    whole = cells()
    monkeypatch.setattr(rollup_build, "PART_EXPOSURES", 50)
    out = io.StringIO()
    call_command("personalization_rollup", "--full", "--processes", "2", stdout=out)
    assert "Rebuilt the report roll-ups" in out.getvalue()
    assert cells() == whole
    assert rollups.status() is not None
