"""The conversion report's place in the admin: one read-only page instead of a change list."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

from ..models.measurement import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Staff see the report; nobody adds, changes or deletes through it (it has no rows)."""

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.changelist_view)
        return [
            path("", view, name="personalization_report"),
            # The name the admin index and sidebar link to, for the same page.
            path("", view, name="personalization_report_changelist"),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Imported here so that loading the admin never pulls in the report's queries.
        from ..reports.views import report_view

        return report_view(request, admin_site=self.admin_site, model_admin=self)

    def has_module_permission(self, request: HttpRequest) -> bool:
        # Any staff member may read the report, so it is listed for them without a permission.
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
