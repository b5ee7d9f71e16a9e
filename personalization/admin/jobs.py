"""The periodic jobs in the admin: when each last ran, how it went, and a *run now* action."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .. import jobs
from ..models import JobRun
from .base import ReadOnlyAdmin


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ["name", "schedule", "description", "started_at", "status", "seconds"]
    readonly_fields = [
        "name", "requested_at", "started_at", "finished_at", "status", "seconds", "result", "error"
    ]  # fmt: skip
    actions = ["run_now"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobRun]:
        # A row per job, so the list (and its action) is there before any job ran; migrate
        # creates them, this covers jobs added since.
        queryset = super().get_queryset(request).filter(name__in=list(jobs.JOBS))
        if queryset.count() < len(jobs.JOBS):
            JobRun.objects.bulk_create(
                [JobRun(name=name) for name in jobs.JOBS], ignore_conflicts=True
            )
        return queryset

    @admin.display(description=_("schedule"))
    def schedule(self, obj: JobRun) -> str:
        return jobs.JOBS[obj.name].schedule

    @admin.display(description=_("what it does"))
    def description(self, obj: JobRun) -> str:
        return jobs.JOBS[obj.name].description

    @admin.action(description=_("Run the selected jobs now"))
    def run_now(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        names = [name for name in queryset.values_list("name", flat=True) if name in jobs.JOBS]
        for name in names:
            jobs.enqueue(name)
        self.message_user(
            request,
            _("Started: %(names)s. Reload this page to see when they finish.")
            % {"names": ", ".join(names)},
            messages.SUCCESS,
        )
