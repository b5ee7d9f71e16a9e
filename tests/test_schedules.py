"""Periodic tasks are registered with django-celery-beat by migrate, once."""

import pytest

pytest.importorskip("django_celery_beat", reason="django-celery-beat is not installed (optional)")

from django_celery_beat.models import PeriodicTask

from personalization.schedules import PERIODIC_TASKS, ensure_periodic_tasks
from tests.celery_app import app

pytestmark = pytest.mark.django_db


def test_migrate_registered_every_periodic_task_with_a_known_task():
    tasks = dict(PeriodicTask.objects.values_list("name", "task"))
    app.loader.import_default_modules()
    for name, (task, _) in PERIODIC_TASKS.items():
        assert tasks[name] == task
        assert task in app.tasks


def test_staff_changes_survive_a_later_migrate():
    PeriodicTask.objects.filter(name__startswith="personalization:").update(enabled=False)
    assert ensure_periodic_tasks() == 0
    assert not PeriodicTask.objects.filter(name__startswith="personalization:", enabled=True)
    PeriodicTask.objects.filter(name="personalization: purge inactive visitors").delete()
    assert ensure_periodic_tasks() == 1
