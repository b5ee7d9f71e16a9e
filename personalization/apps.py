"""App configuration: wires checks and signal receivers in ready(), nothing at import."""

from __future__ import annotations

import contextlib
from typing import Any

from django.apps import AppConfig, apps
from django.db import DatabaseError
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = _("Personalization")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers, referrals  # noqa: F401  (registers the checks)

        receivers.connect_product_receivers()
        receivers.connect_targeting_receivers()
        referrals.connect_receivers()
        try:  # the email service's bounces and complaints, through django-anymail
            from .contrib import anymail
        except ImportError:
            pass
        else:
            with contextlib.suppress(ImportError):
                anymail.connect()
        post_migrate.connect(
            register_periodic_tasks, sender=self, dispatch_uid="personalization.periodic_tasks"
        )


def register_periodic_tasks(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """After migrate: a row per job (the admin's *Periodic jobs* lists them all, ready to run),
    and the schedule in django-celery-beat where it is installed."""
    from .jobs import JOBS
    from .models import JobRun

    with contextlib.suppress(DatabaseError):
        JobRun.objects.using(using).bulk_create(
            [JobRun(name=name) for name in JOBS], ignore_conflicts=True
        )
    if not apps.is_installed("django_celery_beat"):
        return
    from .schedules import ensure_periodic_tasks

    # e.g. `migrate personalization` before django-celery-beat's own tables exist
    with contextlib.suppress(DatabaseError):
        ensure_periodic_tasks()
