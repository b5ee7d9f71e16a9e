"""The Celery app of the test project, configured from Django settings (CELERY_*). Tests
that import it are skipped where Celery is not installed (it is an optional extra)."""

import pytest

Celery = pytest.importorskip("celery", reason="Celery is not installed (an optional extra)").Celery

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.set_default()
