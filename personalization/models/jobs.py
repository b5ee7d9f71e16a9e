"""Bookkeeping shared by every process: when each periodic job last ran, and version tokens
of the state every process keeps a copy of."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class JobRun(models.Model):
    """The last run of one periodic job (``manage.py personalization_jobs``, a Celery task, or
    work run in-process because no broker took it). One row per job."""

    OK, FAILED, RUNNING = "ok", "failed", "running"
    STATUS_CHOICES = [(OK, _("succeeded")), (FAILED, _("failed")), (RUNNING, _("running"))]

    name = models.CharField(_("job"), max_length=40, primary_key=True)
    requested_at = models.DateTimeField(
        _("requested at"),
        null=True,
        blank=True,
        help_text=_("Set when work was asked for that no worker took: the next run does it."),
    )
    started_at = models.DateTimeField(_("last started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("last finished"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=STATUS_CHOICES, blank=True)
    seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    result = models.JSONField(_("result"), null=True, blank=True)
    error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("periodic job")
        verbose_name_plural = _("periodic jobs")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SharedState(models.Model):
    """A version token in the database, for processes that share no cache (a per-process
    local-memory cache): each compares it with its copy at most every few seconds."""

    key = models.CharField(max_length=100, primary_key=True)
    value = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("shared version")
        verbose_name_plural = _("shared versions")

    def __str__(self) -> str:
        return self.key
