"""What was shown and what followed: exposures, events on them, and conversions."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .visitors import Visitor, loose_link


class Exposure(models.Model):
    """One rendering of personalized (or, for the control group, default) content."""

    BANNER = "banner"
    POPUP = "popup"
    RECOMMENDATION = "recommendation"
    REFERRAL = "referral"
    EMAIL = "email"
    KIND_CHOICES = [
        (BANNER, _("banner")),
        (POPUP, _("signup popup")),
        (RECOMMENDATION, _("recommendations")),
        (REFERRAL, _("referral offer")),
        (EMAIL, _("email")),
    ]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    visitor = loose_link(Visitor, "exposures")
    placement = models.CharField(_("placement"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=KIND_CHOICES)
    content = models.CharField(
        _("content"), max_length=100, help_text=_("What was shown, e.g. banner:12 or default.")
    )
    content_label = models.CharField(_("content name"), max_length=200, blank=True)
    items = models.JSONField(_("items shown"), default=list, blank=True)
    segments = models.JSONField(_("visitor's segments"), default=list, blank=True)
    segment = models.CharField(
        _("target segment"),
        max_length=100,
        blank=True,
        help_text=_("The target segment the content was chosen for; empty: for everyone."),
    )
    is_control = models.BooleanField(_("control group"), default=False)
    created_at = models.DateTimeField(_("shown at"), default=timezone.now)

    class Meta:
        verbose_name = _("exposure")
        verbose_name_plural = _("exposures")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="pzn_exposure_created"),
            # The report's lookups: a visitor's exposures of one group around an instant, and
            # whether a visitor was shown the other group at all.
            models.Index(fields=["visitor", "is_control", "created_at"], name="pzn_exposure_group"),
        ]

    def __str__(self) -> str:
        return f"{self.placement}: {self.content}"


class Event(models.Model):
    """Something a visitor did with what they were shown: a click, a popup dismissed."""

    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    POPUP_SHOWN = "popup_shown"
    POPUP_DISMISSED = "popup_dismissed"
    KIND_CHOICES = [
        (CLICK, _("click")),
        (ADD_TO_CART, _("add to cart")),
        (POPUP_SHOWN, _("popup shown")),
        (POPUP_DISMISSED, _("popup dismissed")),
    ]

    visitor = loose_link(Visitor, "events")
    exposure = loose_link(Exposure, "events", _("exposure"), optional=True)
    kind = models.CharField(_("kind"), max_length=20, choices=KIND_CHOICES)
    product_id = models.CharField(_("product"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="pzn_event_created")]

    def __str__(self) -> str:
        return self.kind


class Conversion(models.Model):
    """An order or another goal reached by a visitor."""

    PURCHASE = "purchase"
    LEAD = "lead"
    ENGAGEMENT = "engagement"
    APP_DOWNLOAD = "app_download"
    OTHER = "other"
    KIND_CHOICES = [
        (PURCHASE, _("purchase")),
        (LEAD, _("lead")),
        (ENGAGEMENT, _("engagement")),
        (APP_DOWNLOAD, _("app download")),
        (OTHER, _("other goal")),
    ]

    visitor = loose_link(Visitor, "conversions")
    kind = models.CharField(_("kind"), max_length=16, choices=KIND_CHOICES)
    goal = models.CharField(_("goal"), max_length=100)
    # NULL for goals, so the unique constraint holds only for orders.
    order_id = models.CharField(_("order"), max_length=64, null=True, blank=True)  # noqa: DJ001
    revenue = models.DecimalField(
        _("revenue"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    items = models.JSONField(_("items"), default=list, blank=True)
    exposure = loose_link(Exposure, "conversions", _("clicked content"), optional=True)
    is_control = models.BooleanField(_("control group"), default=False)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_id"],
                condition=Q(order_id__isnull=False),
                name="pzn_conversion_unique_order",
            )
        ]
        indexes = [
            models.Index(fields=["created_at"], name="pzn_conversion_created"),
            models.Index(fields=["visitor", "created_at"], name="pzn_conversion_visitor"),
        ]

    def __str__(self) -> str:
        return self.order_id or self.goal


class Report(Exposure):
    """No data of its own: gives the conversion report a place in the admin (its app list,
    permissions and URL names); the page itself is ``personalization.reports.views``.

    Reading the report (its page, CSV, JSON and ``api/report/``) takes the permission
    ``personalization.view_report``, the only one the model has: it has no rows to add, change
    or delete."""

    class Meta:
        proxy = True
        verbose_name = _("Conversion report")
        verbose_name_plural = _("Conversion report")
        default_permissions = ("view",)


class CellFields(models.Model):
    """A cell's slice, days and sums (see :class:`ReportCell`)."""

    dimension = models.CharField(max_length=16)
    key = models.CharField(max_length=200, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    is_control = models.BooleanField()
    measure = models.CharField(max_length=120)
    prev_day = models.IntegerField(help_text=_("Proleptic ordinal of a shop-time date, 0: none."))
    day = models.IntegerField(help_text=_("Proleptic ordinal of a shop-time date."))
    n = models.BigIntegerField(default=0)
    revenue_cents = models.BigIntegerField(default=0)
    label = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True


class ReportCell(CellFields):
    """A daily roll-up cell of the conversion report (``personalization.reports.rollups``).

    For each set of days a visitor has in a slice (days exposed, days whose exposures led to a
    conversion, days of clicked content, a conversion's covering days), every day ``day`` of
    the set adds ``n`` to the cell whose ``prev_day`` is the set's day before it (0 for the
    first). A visitor's set meets a period [a, b] exactly when one of these cells has
    ``prev_day < a <= day <= b``, so summing those cells counts each visitor once, whatever
    the period, and the table's size depends on the number of days, not of visitors."""

    class Meta:
        verbose_name = _("report roll-up cell")
        verbose_name_plural = _("report roll-up cells")
        constraints = [
            models.UniqueConstraint(
                fields=["dimension", "key", "detail", "is_control", "measure", "prev_day", "day"],
                name="pzn_report_cell_unique",
            )
        ]
        indexes = [models.Index(fields=["day", "prev_day"], name="pzn_report_cell_day")]

    def __str__(self) -> str:
        return f"{self.dimension}:{self.key}:{self.measure}@{self.day}"


class ReportCellPart(CellFields):
    """Cells of one part of a rebuild, summed into :class:`ReportCell` when every part is done
    (parts computed side by side write here without waiting on each other)."""

    build = models.CharField(max_length=32)

    class Meta:
        verbose_name = _("report roll-up cell of a rebuild")
        verbose_name_plural = _("report roll-up cells of a rebuild")

    def __str__(self) -> str:
        return f"{self.build}:{self.dimension}:{self.key}:{self.measure}@{self.day}"


class ReportVisitorState(models.Model):
    """What the roll-ups hold of one visitor, so a later refresh can replace it: the
    visitor's attributes as rolled up (their rows, up to the roll-ups' cutoff, are read again),
    and, for a visitor whose rows were moved or deleted since, what the cells hold of them."""

    visitor_id = models.CharField(max_length=32, primary_key=True)
    country = models.CharField(max_length=2, blank=True, default="")
    source = models.CharField(max_length=16, blank=True, default="")
    staff = models.BooleanField(default=False)
    dirty = models.BooleanField(
        default=False, help_text=_("Recompute at the next refresh (rows moved or deleted).")
    )
    pending = models.JSONField(
        null=True,
        blank=True,
        help_text=_("The visitor's part of the cells, kept when their rows were moved or deleted."),
    )

    class Meta:
        verbose_name = _("report roll-up of a visitor")
        verbose_name_plural = _("report roll-ups of visitors")
        indexes = [
            models.Index(fields=["visitor_id"], condition=Q(dirty=True), name="pzn_report_dirty")
        ]

    def __str__(self) -> str:
        return self.visitor_id


class ReportRollup(models.Model):
    """The roll-ups' bookkeeping: one row, locked while a refresh runs."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    rolled_up_to = models.DateTimeField(null=True, blank=True)
    window_days = models.FloatField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    rebuilt_at = models.DateTimeField(null=True, blank=True)
    visitors = models.PositiveIntegerField(default=0)
    last_duration = models.FloatField(null=True, blank=True)
    rebuild_duration = models.FloatField(null=True, blank=True)
    build = models.JSONField(
        null=True,
        blank=True,
        help_text=_(
            "The rebuild going on: its parts (ranges of visitor ids), cutoff and progress."
        ),
    )

    class Meta:
        verbose_name = _("report roll-up status")
        verbose_name_plural = _("report roll-up status")

    def __str__(self) -> str:
        return f"rolled up to {self.rolled_up_to}"
