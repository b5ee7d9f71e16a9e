"""App configuration of the Oscar integration: receivers, checks and the dashboard entry,
all wired in ready()."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PersonalizationOscarConfig(AppConfig):
    name = "personalization.contrib.oscar"
    label = "personalization_oscar"
    verbose_name = _("Personalization for django-oscar")

    def ready(self) -> None:
        from . import checks, dashboard, receivers  # noqa: F401  (registers the checks)

        receivers.connect()
        dashboard.add_navigation_entry()
