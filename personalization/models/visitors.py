"""Durable records: one Visitor per pseudonymous visitor (written at most once per visit)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..profiling.referrer import SOURCES
from ..querysets import VisitorQuerySet

SOURCE_CHOICES = [(source, source.capitalize()) for source in SOURCES]


class Visitor(models.Model):
    """The durable side of a visitor profile; the hot side lives in Django's cache."""

    id = models.CharField(_("visitor id"), max_length=32, primary_key=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="personalization_visitor",
    )
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(
        _("last seen"),
        help_text=_("Start of the latest visit (profiles are written once per visit)."),
    )
    visit_count = models.PositiveIntegerField(_("visits"), default=1)
    first_source = models.CharField(_("first source"), max_length=16, choices=SOURCE_CHOICES)
    first_referrer_host = models.CharField(_("first referrer host"), max_length=253, blank=True)
    first_campaign = models.CharField(_("first campaign"), max_length=200, blank=True)
    latest_source = models.CharField(_("latest source"), max_length=16, choices=SOURCE_CHOICES)
    latest_referrer_host = models.CharField(_("latest referrer host"), max_length=253, blank=True)
    latest_campaign = models.CharField(_("latest campaign"), max_length=200, blank=True)
    referral_code = models.CharField(_("referral code on landing"), max_length=64, blank=True)
    country_code = models.CharField(_("country"), max_length=2, blank=True, db_index=True)
    region = models.CharField(_("region"), max_length=128, blank=True)
    city = models.CharField(_("city"), max_length=128, blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, blank=True, help_text=_("From GeoIP, e.g. Europe/Paris.")
    )
    in_control_group = models.BooleanField(_("in control group"), default=False)
    fixed_control_group = models.BooleanField(
        _("group kept for the account"),
        null=True,
        blank=True,
        help_text=_(
            "The group of the person, fixed when an account was first linked to this visitor "
            "and kept for every device of that account, whatever CONTROL_GROUP_PERCENT later "
            "says; empty for a visitor without an account, whose group follows from its id."
        ),
    )
    device = models.CharField(_("device"), max_length=16, blank=True)
    order_count = models.PositiveIntegerField(_("orders"), default=0)
    total_spent = models.DecimalField(_("total spent"), max_digits=12, decimal_places=2, default=0)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    signed_up_at = models.DateTimeField(_("signed up"), null=True, blank=True)
    recently_viewed = models.JSONField(_("recently viewed products"), default=list, blank=True)
    product_views = models.JSONField(
        _("product views"),
        default=dict,
        blank=True,
        help_text=_("Product key -> number of views, for the most viewed products."),
    )
    category_interest = models.JSONField(
        _("category interest"),
        default=dict,
        blank=True,
        help_text=_("Category key -> [score, unix time of the score]."),
    )

    objects = VisitorQuerySet.as_manager()

    class Meta:
        verbose_name = _("visitor")
        verbose_name_plural = _("visitors")
        ordering = ["-last_seen"]
        indexes = [models.Index(fields=["last_seen"], name="pzn_visitor_last_seen")]

    def __str__(self) -> str:
        return self.id


def loose_link(
    to: Any, related_name: str, verbose_name: Any = None, *, optional: bool = False
) -> models.ForeignKey[Any, Any]:
    """A foreign key without a database constraint: exposures, events, conversions and offers
    are written before the visitor's own row may exist (a first request), and logs must not
    wait on the row they point at. The ORM still follows the relation and applies on_delete:
    required links cascade, optional ones are cleared."""
    return models.ForeignKey(
        to,
        verbose_name=verbose_name if verbose_name is not None else _("visitor"),
        null=optional,
        blank=optional,
        on_delete=models.SET_NULL if optional else models.CASCADE,
        db_constraint=False,
        related_name=related_name,
    )
