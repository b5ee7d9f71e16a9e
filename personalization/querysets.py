"""Query helpers attached to the app's models with ``as_manager()``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from .models import Visitor  # noqa: F401  (named in a string below)


class VisitorQuerySet(models.QuerySet["Visitor"]):
    def seen_since(self, when: datetime) -> VisitorQuerySet:
        return self.filter(last_seen__gte=when)

    def not_seen_since(self, when: datetime) -> VisitorQuerySet:
        return self.filter(last_seen__lt=when)

    def returning(self) -> VisitorQuerySet:
        return self.filter(visit_count__gt=1)
