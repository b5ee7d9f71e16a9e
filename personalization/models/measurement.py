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
    KIND_CHOICES = [
        (BANNER, _("banner")),
        (POPUP, _("signup popup")),
        (RECOMMENDATION, _("recommendations")),
        (REFERRAL, _("referral offer")),
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
            models.Index(fields=["visitor", "created_at"], name="pzn_exposure_visitor"),
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
    permissions and URL names); the page itself is ``personalization.reports.views``."""

    class Meta:
        proxy = True
        verbose_name = _("Conversion report")
        verbose_name_plural = _("Conversion report")
