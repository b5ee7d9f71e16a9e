"""The conversion report's place in the admin: one read-only page instead of a change list,
for staff with the ``personalization.view_report`` permission."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

from ..models.measurement import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Staff with ``personalization.view_report`` see the report (and its link in the admin
    index); nobody adds, changes or deletes through it (it has no rows)."""

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

        # report_view answers staff without the permission with a 403 (JSON for ?format=json).
        return report_view(request, admin_site=self.admin_site, model_admin=self)

    def has_module_permission(self, request: HttpRequest) -> bool:
        # Listed in the admin index and sidebar exactly for those who may open it.
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        from ..reports.views import can_view_report  # at request time, as above

        return can_view_report(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
