"""What the recommender learns from (product interactions) and what it serves (lists)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .visitors import Visitor, loose_link


class ProductInteraction(models.Model):
    """A product viewed, added to the cart or bought by a visitor: the recommender's input.

    Views are queued during the request and written with its exposures (one statement on
    PostgreSQL); cart additions and order lines are written when they are tracked."""

    VIEW = "view"
    CART = "cart"
    PURCHASE = "purchase"
    KIND_CHOICES = [(VIEW, _("view")), (CART, _("added to cart")), (PURCHASE, _("purchase"))]

    visitor = loose_link(Visitor, "product_interactions")
    product_id = models.CharField(_("product"), max_length=64)
    kind = models.CharField(_("kind"), max_length=8, choices=KIND_CHOICES)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    country = models.CharField(
        _("country"), max_length=2, blank=True, help_text=_("The visitor's, from GeoIP.")
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("product interaction")
        verbose_name_plural = _("product interactions")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="pzn_interaction_created"),
            models.Index(fields=["visitor", "created_at"], name="pzn_interaction_visitor"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.product_id}"


class RecommendationList(models.Model):
    """One precomputed ranked list, e.g. the products viewed together with product 12, or
    the products popular in Germany. Written by the precompute tasks, read through the cache.

    Served lists have an empty ``fit``. The nightly fit writes its parts' lists under its own
    ``fit`` id first, and switches them in all at once when every part is done."""

    name = models.CharField(_("list"), max_length=40)
    key = models.CharField(_("key"), max_length=100, blank=True)
    items = models.JSONField(_("products and scores"), default=list)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)
    fit = models.CharField(
        _("fit"),
        max_length=32,
        blank=True,
        default="",
        help_text=_("Empty for the lists served; the id of the fit that is writing it else."),
    )
    part = models.PositiveSmallIntegerField(_("part of the fit"), default=0)

    class Meta:
        verbose_name = _("recommendation list")
        verbose_name_plural = _("recommendation lists")
        constraints = [
            models.UniqueConstraint(
                fields=["fit", "name", "key"], name="pzn_recommendation_list_fit_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}:{self.key}" if self.key else self.name
