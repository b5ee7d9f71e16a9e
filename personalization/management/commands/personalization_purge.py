"""manage.py personalization_purge: apply the visitor retention period now."""

from typing import Any

from django.core.management.base import BaseCommand

from personalization.conf import app_settings
from personalization.retention import purge_inactive_visitors


class Command(BaseCommand):
    help = "Delete visitors not seen for PERSONALIZATION['VISITOR_RETENTION_DAYS'] days."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = purge_inactive_visitors()
        days = app_settings.VISITOR_RETENTION_DAYS
        self.stdout.write(f"Deleted {deleted} visitor(s) not seen for {days} days.")
