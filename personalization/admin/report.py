"""The conversion report's place in the admin: one read-only page instead of a change list."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _

from ..models.measurement import Conversion, Report

ERROR_TEMPLATE = "admin/personalization/report_error.html"
MAX_GOAL_LENGTH = Conversion._meta.get_field("goal").max_length


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
        from ..reports.parameters import ParameterError, check_characters, check_goal
        from ..reports.views import report_view

        try:
            check_characters(request.GET)
            goal = (request.GET.get("goal") or "").strip()
            if goal and len(goal) <= MAX_GOAL_LENGTH:  # the page explains longer ones itself
                check_goal(goal)
        except ParameterError as error:
            return self.bad_request(request, str(error))
        return report_view(request, admin_site=self.admin_site, model_admin=self)

    def bad_request(self, request: HttpRequest, message: str) -> HttpResponse:
        """A 400 in the format asked for (the page when the format itself is unusable)."""
        output = request.GET.get("format")
        if output == "json":
            return JsonResponse({"error": message}, status=400)
        if output == "csv":
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Conversion report"),
            "opts": self.model._meta,
            "error": message,
            "report_url": reverse("admin:personalization_report", current_app=self.admin_site.name),
        }
        return TemplateResponse(request, ERROR_TEMPLATE, context, status=400)

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
