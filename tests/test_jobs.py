"""The periodic jobs: `personalization_jobs` lists them, runs them by name or when due, and
records each run; work queued with `jobs.enqueue` waits for the commit and runs without
Celery, or with a broken one, without failing the save that asked for it."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from personalization import jobs
from personalization.models import JobRun, Segment, SegmentRule, Visitor

pytestmark = pytest.mark.django_db

BERLIN = dt.timezone(dt.timedelta(hours=1))  # the test shop's TIME_ZONE in November


@pytest.fixture(autouse=True)
def _fresh_jobs_state():
    """Each test starts with no job-state of this process: nothing logged, no broker failed."""
    jobs._logged.clear()
    jobs._broker["down_until"] = 0.0
    jobs.celery_app.cache_clear()
    yield
    jobs._logged.clear()
    jobs._broker["down_until"] = 0.0
    jobs.celery_app.cache_clear()


@contextlib.contextmanager
def current_celery_app(app: Any) -> Iterator[Any]:
    """Make ``app`` the process's current Celery app, as a shop's own app is."""
    from celery import _state

    saved = _state._tls.current_app
    app.set_current()
    jobs.celery_app.cache_clear()
    try:
        yield app
    finally:
        _state._set_current_app(saved)
        jobs.celery_app.cache_clear()


@pytest.fixture
def broker_down():
    """The shop's Celery app sends tasks to a broker nobody listens on."""
    celery = pytest.importorskip("celery", reason="Celery is not installed (an optional extra)")
    app = celery.Celery("broker-down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    app.conf.task_always_eager = False
    with current_celery_app(app):
        yield app


@pytest.fixture
def broken_celery_app():
    """The shop's Celery app reads its configuration from a module that does not exist."""
    celery = pytest.importorskip("celery", reason="Celery is not installed (an optional extra)")
    app = celery.Celery("misconfigured", set_as_current=False)
    app.config_from_object("tests.no_such_celery_settings")
    with current_celery_app(app):
        yield app


@pytest.fixture
def fallback(settings):
    def set_(value: str) -> None:
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "JOBS_FALLBACK": value}

    return set_


def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("personalization_jobs", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def ran(output: str) -> list[str]:
    return [line.split(":")[0] for line in output.splitlines() if ": done" in line]


def started(name: str) -> dt.datetime | None:
    return JobRun.objects.get(name=name).started_at


def visitors(count: int, visit_count: int) -> None:
    now = timezone.now()
    for n in range(count):
        Visitor.objects.create(
            id=f"{visit_count}v{n}".ljust(22, "x"), first_seen=now, last_seen=now,
            visit_count=visit_count, first_source="direct", latest_source="direct",
        )  # fmt: skip


def segment(slug: str, rule: str) -> Segment:
    seg = Segment.objects.create(name=slug.title(), slug=slug)
    SegmentRule.objects.create(segment=seg, kind="visit_count", value=rule)
    return seg


def personalization_warnings(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "personalization" and record.levelno == logging.WARNING
    ]


# The command --------------------------------------------------------------------------------
def test_list_names_every_job_with_its_schedule_and_last_run(clock):
    out, _ = run_command("--list")
    lines = out.splitlines()
    for name, job in jobs.JOBS.items():
        [line] = [line for line in lines if line.startswith(f"{name} ")]
        assert job.schedule in line and "never run" in line and line.endswith("due")
        assert job.description in out
    assert {"every 5 min", "every 10 min", "daily at 02:45"} <= {
        job.schedule for job in jobs.JOBS.values()
    }

    run_command("trending")
    clock.shift(60)
    out, _ = run_command("--list")
    [line] = [line for line in out.splitlines() if line.startswith("trending ")]
    assert "last run 2026-11-02 11:00 (succeeded)" in line  # shop time (Europe/Berlin)
    assert not line.endswith("due")


def test_list_with_names_lists_only_those():
    out, _ = run_command("--list", "trending", "purge")
    listed = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert listed == ["trending", "purge"]


def test_a_named_job_runs_now_and_its_run_is_recorded(clock, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VISITOR_RETENTION_DAYS": 30}
    long_ago = timezone.now() - dt.timedelta(days=40)
    Visitor.objects.create(
        id="o" * 22, first_seen=long_ago, last_seen=long_ago, first_source="direct",
        latest_source="direct",
    )  # fmt: skip
    out, err = run_command("purge")
    assert out == "purge: done (visitors=1, interactions=0)\n" and err == ""
    assert not Visitor.objects.exists()
    row = JobRun.objects.get(name="purge")
    assert (row.status, row.started_at, row.result) == (
        JobRun.OK,
        timezone.now(),
        {"visitors": 1, "interactions": 0},
    )
    assert row.finished_at == timezone.now() and row.seconds is not None and row.error == ""


def test_without_a_name_exactly_the_due_jobs_run_then_none(
    clock, fallback, no_celery_app, django_capture_on_commit_callbacks
):
    now = timezone.now()  # 2026-11-02 11:00 in Berlin
    today = now.astimezone(BERLIN).replace(hour=0, minute=0)
    last_starts = {
        "trending": now - dt.timedelta(minutes=10),  # every 5 min: due
        "rollups": now - dt.timedelta(minutes=1),  # every 5 min: not yet
        "banner-stats": now - dt.timedelta(minutes=5),  # every 10 min: not yet
        "recommendations": today - dt.timedelta(hours=21),  # yesterday 03:00, due at 02:45
        "segment-counts": today + dt.timedelta(hours=4, minutes=20),  # today after 04:15
        "purge": today + dt.timedelta(hours=3, minutes=31),  # today after 03:30...
        "emails": now - dt.timedelta(minutes=2),  # every 5 min: not yet
    }
    for name, start in last_starts.items():
        JobRun.objects.filter(name=name).update(started_at=start, status=JobRun.OK)
    fallback("defer")
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue("purge")  # ...but asked for since, and no worker takes it
    assert JobRun.objects.get(name="purge").requested_at == now
    assert sorted(jobs.due()) == ["purge", "recommendations", "trending"]

    out, err = run_command()
    assert sorted(ran(out)) == ["purge", "recommendations", "trending"] and err == ""
    for name in ("purge", "recommendations", "trending"):
        assert started(name) == now
    for name in ("rollups", "banner-stats", "segment-counts", "emails"):
        assert started(name) == last_starts[name]
    assert JobRun.objects.get(name="purge").requested_at is None

    assert run_command() == ("No job is due.\n", "")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("2026-11-02 03:14:00+00:00", "2026-11-02 03:16:00+00:00"),  # CET, UTC+1
        ("2026-07-01 02:14:00+00:00", "2026-07-01 02:16:00+00:00"),  # CEST, UTC+2
    ],
)
def test_a_daily_job_is_due_once_past_its_time_in_the_shops_time_zone(before, after):
    """segment-counts is daily at 04:15 shop time (Europe/Berlin), not 04:15 UTC."""
    yesterday = dt.datetime.fromisoformat(before) - dt.timedelta(hours=20)
    JobRun.objects.update(started_at=dt.datetime.fromisoformat(before), status=JobRun.OK)
    JobRun.objects.filter(name="segment-counts").update(started_at=yesterday)
    with time_machine.travel(before, tick=False):
        assert "segment-counts" not in jobs.due()
        assert "segment-counts" not in ran(run_command()[0])
    with time_machine.travel(after, tick=False):
        assert "segment-counts" in jobs.due()
        assert "segment-counts" in ran(run_command()[0])
        assert "segment-counts" not in jobs.due()


def test_an_unknown_name_is_a_clear_error_and_nothing_runs():
    with pytest.raises(CommandError) as error:
        run_command("trending", "nope")
    assert str(error.value) == f"Unknown job(s): nope. Known: {', '.join(jobs.JOBS)}."
    assert not JobRun.objects.filter(started_at__isnull=False).exists()


def test_a_failing_job_is_recorded_with_its_error_and_the_others_still_run(settings, caplog):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "VISITOR_RETENTION_DAYS": "forever"}
    with pytest.raises(CommandError) as error:
        out, err = io.StringIO(), io.StringIO()
        call_command("personalization_jobs", "purge", "trending", stdout=out, stderr=err)
    assert str(error.value) == "1 job(s) failed: purge"
    assert error.value.returncode == 1  # manage.py exits with it
    assert "purge: failed: ValueError: invalid literal for int()" in err.getvalue()
    assert ran(out.getvalue()) == ["trending"]
    failed = JobRun.objects.get(name="purge")
    assert failed.status == JobRun.FAILED and failed.finished_at is not None
    assert "ValueError: invalid literal for int() with base 10: 'forever'" in failed.error
    assert JobRun.objects.get(name="trending").status == JobRun.OK


# Queued work --------------------------------------------------------------------------------
def test_enqueued_work_waits_for_the_commit(no_celery_app, django_capture_on_commit_callbacks):
    visitors(2, visit_count=3)
    seg = segment("loyal", ">2")
    with django_capture_on_commit_callbacks() as callbacks:
        jobs.enqueue("segment-counts", segment_id=seg.pk)
        seg.refresh_from_db()
        assert seg.matching_visitors is None and started("segment-counts") is None
    assert len(callbacks) == 1
    callbacks[0]()  # the commit
    seg.refresh_from_db()
    assert seg.matching_visitors == 2
    assert JobRun.objects.get(name="segment-counts").status == JobRun.OK


def test_work_enqueued_in_a_rolled_back_transaction_never_runs(
    no_celery_app, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        contextlib.suppress(RuntimeError),
        transaction.atomic(),
    ):
        jobs.enqueue("trending")
        raise RuntimeError("the save failed")
    assert callbacks == [] and started("trending") is None


def test_a_run_of_one_segment_leaves_a_request_for_all_standing(
    fallback, no_celery_app, django_capture_on_commit_callbacks
):
    seg = segment("loyal", ">2")
    fallback("defer")
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue("segment-counts")
    jobs.run("segment-counts", segment_id=seg.pk)
    assert JobRun.objects.get(name="segment-counts").requested_at is not None
    assert "segment-counts" in jobs.due()
    jobs.run("segment-counts")
    assert JobRun.objects.get(name="segment-counts").requested_at is None


class TestAdminSaves:
    """A segment saved in the admin is recounted after the save commits, whatever Celery's
    state; the save never fails and an operator sees one warning, not one per save."""

    @pytest.fixture
    def staff(self, client):
        user = get_user_model().objects.create_superuser("staff", "s@example.com", "pw")
        client.force_login(user)
        return client

    def save_segments(self, staff, capture, count: int = 3) -> list[int]:
        statuses = []
        for n in range(count):
            with capture(execute=True):
                response = staff.post(
                    "/admin/personalization/segment/add/",
                    {
                        "name": f"Loyal {n}", "slug": f"loyal-{n}", "description": "",
                        "match": "all", "is_active": "on", "rules-TOTAL_FORMS": "1",
                        "rules-INITIAL_FORMS": "0", "rules-MIN_NUM_FORMS": "0",
                        "rules-MAX_NUM_FORMS": "1000", "rules-0-kind": "visit_count",
                        "rules-0-value": ">2", "rules-0-position": "0",
                    },
                )  # fmt: skip
            statuses.append(response.status_code)
        return statuses

    def assert_saved_and_counted(self, count: int = 3) -> None:
        segments = Segment.objects.order_by("slug")
        assert [seg.slug for seg in segments] == [f"loyal-{n}" for n in range(count)]
        assert [seg.matching_visitors for seg in segments] == [2] * count  # in this process

    def test_without_a_celery_app(
        self, staff, no_celery_app, caplog, django_capture_on_commit_callbacks
    ):
        visitors(2, visit_count=3)
        with caplog.at_level(logging.WARNING, logger="personalization"):
            assert self.save_segments(staff, django_capture_on_commit_callbacks) == [302] * 3
        self.assert_saved_and_counted()
        [warning] = personalization_warnings(caplog)
        assert "no Celery app is configured" in warning and "'inline'" in warning

    def test_with_a_broker_nobody_listens_on(
        self, staff, broker_down, caplog, django_capture_on_commit_callbacks
    ):
        visitors(2, visit_count=3)
        clock = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="personalization"):
            assert self.save_segments(staff, django_capture_on_commit_callbacks) == [302] * 3
        assert time.monotonic() - clock < 3  # a refused broker is not waited for, then skipped
        self.assert_saved_and_counted()
        [warning] = personalization_warnings(caplog)
        assert "the Celery broker did not take job 'segment-counts'" in warning

    def test_with_a_celery_app_that_cannot_load_its_configuration(
        self, staff, broken_celery_app, caplog, django_capture_on_commit_callbacks
    ):
        visitors(2, visit_count=3)
        with caplog.at_level(logging.WARNING, logger="personalization"):
            assert self.save_segments(staff, django_capture_on_commit_callbacks) == [302] * 3
        self.assert_saved_and_counted()
        [warning] = personalization_warnings(caplog)
        assert "the Celery app cannot be used" in warning


def test_a_broker_that_failed_is_tried_again_a_minute_after_it_failed(
    broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue("trending")
    retry_at = jobs._broker["down_until"]
    assert retry_at - time.monotonic() > jobs.BROKER_RETRY_SECONDS - 5
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue("rollups")  # skipped: the broker failed within the minute
    assert jobs._broker["down_until"] == retry_at  # a skip does not put the retry off
    assert JobRun.objects.get(name="rollups").status == JobRun.OK  # run in-process


@pytest.mark.django_db(transaction=True)
def test_the_thread_fallback_runs_the_job_in_a_thread_of_its_own(fallback, no_celery_app):
    visitors(3, visit_count=4)
    seg = segment("loyal", ">2")
    fallback("thread")
    with CaptureQueriesContext(connection) as captured:
        jobs.enqueue("segment-counts", segment_id=seg.pk)  # autocommit: runs "after commit" now
    for thread in threading.enumerate():
        if thread.name == "pzn-job-segment-counts":
            thread.join(timeout=30)
    deadline = time.monotonic() + 30
    while JobRun.objects.get(name="segment-counts").status != JobRun.OK:
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.05)
    seg.refresh_from_db()
    assert seg.matching_visitors == 3
    # The count was read and written on the thread's own connection, not the caller's.
    assert not [query for query in captured.captured_queries if "segment" in query["sql"]]


# The admin's Periodic jobs ------------------------------------------------------------------
def test_the_admin_lists_every_job_before_any_ran_and_runs_the_selected(
    admin_client, django_capture_on_commit_callbacks
):
    JobRun.objects.all().delete()  # a database where no job ever ran, nor migrate made rows
    listing = admin_client.get("/admin/personalization/jobrun/")
    assert listing.status_code == 200
    html = listing.content.decode()
    for name, job in jobs.JOBS.items():
        assert f">{name}<" in html and job.schedule in html

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/personalization/jobrun/",
            {"action": "run_now", "_selected_action": ["trending", "purge"]},
            follow=True,
        )
    assert response.status_code == 200
    assert "Started: purge, trending." in response.content.decode()
    assert {row.name: row.status for row in JobRun.objects.all()} == {
        name: JobRun.OK if name in ("trending", "purge") else "" for name in jobs.JOBS
    }
