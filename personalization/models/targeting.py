"""Who sees what: segments (rules over the visitor profile), placements and their banners."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..recommendations import merchandising
from ..targeting.rules import RULE_CHOICES


class Segment(models.Model):
    """A named group of visitors, defined by rules combined with all/any."""

    MATCH_ALL = "all"
    MATCH_ANY = "any"
    MATCH_CHOICES = [(MATCH_ALL, _("all rules match")), (MATCH_ANY, _("any rule matches"))]

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    match = models.CharField(_("match"), max_length=3, choices=MATCH_CHOICES, default=MATCH_ALL)
    is_active = models.BooleanField(_("active"), default=True)
    matching_visitors = models.PositiveIntegerField(
        _("visitors of the last 30 days"), null=True, blank=True, editable=False
    )
    counted_at = models.DateTimeField(_("counted at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentRule(models.Model):
    """One condition of a segment; ``value`` is text parsed by the rule's kind."""

    segment = models.ForeignKey(
        Segment, verbose_name=_("segment"), on_delete=models.CASCADE, related_name="rules"
    )
    kind = models.CharField(_("rule"), max_length=32, choices=RULE_CHOICES)
    value = models.CharField(_("value"), max_length=500, blank=True)
    negate = models.BooleanField(
        _("negate"), default=False, help_text=_("Match visitors for whom the rule is false.")
    )
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("rule")
        verbose_name_plural = _("rules")
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        prefix = "not " if self.negate else ""
        return f"{prefix}{self.kind} {self.value}".strip()

    def clean(self) -> None:
        from ..targeting.rules import RULE_KINDS, RuleValueError

        kind = RULE_KINDS.get(self.kind)
        if kind is None:
            raise ValidationError({"kind": _("Unknown rule.")})
        try:
            kind.parse(self.value)
        except RuleValueError as exc:
            raise ValidationError({"value": str(exc)}) from exc


class Placement(models.Model):
    """A spot on the shop's pages (``home-hero``) with its default content."""

    SELECT_PRIORITY = "priority"
    SELECT_BANDIT = "bandit"
    SELECTION_CHOICES = [
        (SELECT_PRIORITY, _("highest priority")),
        (SELECT_BANDIT, _("learn what converts (Thompson sampling)")),
    ]

    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    name = models.CharField(_("name"), max_length=100)
    selection = models.CharField(
        _("when several banners fit"),
        max_length=16,
        choices=SELECTION_CHOICES,
        default=SELECT_PRIORITY,
    )
    default_title = models.CharField(_("default title"), max_length=200, blank=True)
    default_body = models.TextField(_("default body (HTML)"), blank=True)
    default_image = models.ImageField(
        _("default image"), upload_to="personalization/banners/", blank=True
    )
    default_cta_text = models.CharField(_("default button text"), max_length=80, blank=True)
    default_cta_url = models.CharField(_("default button link"), max_length=500, blank=True)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive placements show their default only.")
    )
    strategy = models.CharField(
        _("recommendation strategy"),
        max_length=100,
        blank=True,
        help_text=_(
            "For recommendations shown here: how they are chosen. Empty: the default "
            "(RECOMMENDATION_DEFAULT_STRATEGY, the personal blend)."
        ),
    )
    recommendation_title = models.CharField(
        _("recommendations heading"),
        max_length=200,
        blank=True,
        help_text=_("Shown above the recommendations; empty: the strategy's own heading."),
    )

    class Meta:
        verbose_name = _("placement")
        verbose_name_plural = _("placements")
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        from ..targeting.content import sanitize_html

        self.default_body = sanitize_html(self.default_body)
        super().save(*args, **kwargs)


class PlacementRule(models.Model):
    """A merchandising rule of a placement's recommendations, applied when serving (to the
    control group as well): pin a product to a position, leave out a product, a category,
    what is short of stock or what the visitor already viewed, move a category or
    high-margin products up.
    See docs/recommendations.md, "Merchandising"."""

    # The kinds are the serving code's (:mod:`personalization.recommendations.merchandising`).
    PIN = merchandising.PIN
    EXCLUDE_PRODUCT = merchandising.EXCLUDE_PRODUCT
    EXCLUDE_CATEGORY = merchandising.EXCLUDE_CATEGORY
    BOOST_CATEGORY = merchandising.BOOST_CATEGORY
    BOOST_MARGIN = merchandising.BOOST_MARGIN
    MIN_STOCK = merchandising.MIN_STOCK
    EXCLUDE_VIEWED = merchandising.EXCLUDE_VIEWED
    KIND_CHOICES = [
        (PIN, _("pin a product to a position")),
        (EXCLUDE_PRODUCT, _("exclude a product")),
        (EXCLUDE_CATEGORY, _("exclude a category")),
        (BOOST_CATEGORY, _("boost a category")),
        (BOOST_MARGIN, _("boost by margin")),
        (MIN_STOCK, _("minimum stock")),
        (EXCLUDE_VIEWED, _("leave out what the visitor viewed")),
    ]
    #: The values each kind reads; the others stay empty.
    FIELDS = {
        PIN: ("product_key", "position"),
        EXCLUDE_PRODUCT: ("product_key",),
        EXCLUDE_CATEGORY: ("category_key",),
        BOOST_CATEGORY: ("category_key", "weight"),
        BOOST_MARGIN: ("weight",),
        MIN_STOCK: ("min_stock",),
        EXCLUDE_VIEWED: (),
    }
    VALUE_FIELDS = ("product_key", "category_key", "position", "weight", "min_stock")
    MAX_WEIGHT = 10.0

    placement = models.ForeignKey(
        Placement, verbose_name=_("placement"), on_delete=models.CASCADE, related_name="rules"
    )
    kind = models.CharField(_("rule"), max_length=32, choices=KIND_CHOICES)
    product_key = models.CharField(
        _("product"),
        max_length=64,
        blank=True,
        help_text=_("Pin, exclude a product: the product's key (its primary key)."),
    )
    category_key = models.CharField(
        _("category"),
        max_length=100,
        blank=True,
        help_text=_("Exclude, boost a category: the category's key (its slug)."),
    )
    position = models.PositiveSmallIntegerField(
        _("position"),
        null=True,
        blank=True,
        help_text=_("Pin: 1 is the first product shown."),
    )
    weight = models.FloatField(
        _("weight"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(MAX_WEIGHT)],
        help_text=_(
            "Boosts: 0 to 10. A boost of w moves a product from position p up to about "
            "p / (1 + w) at most."
        ),
    )
    min_stock = models.PositiveIntegerField(
        _("minimum stock"),
        null=True,
        blank=True,
        help_text=_("Minimum stock: products with less are left out (unknown stock is kept)."),
    )

    class Meta:
        verbose_name = _("merchandising rule")
        verbose_name_plural = _("merchandising rules")
        ordering = ["placement", "kind", "position", "pk"]

    def __str__(self) -> str:
        label = dict(self.KIND_CHOICES).get(self.kind, self.kind)
        values = [
            f"{name}={getattr(self, name)}"
            for name in self.FIELDS.get(self.kind, ())
            if getattr(self, name) not in (None, "")
        ]
        return f"{label} ({', '.join(values)})" if values else str(label)

    def clean(self) -> None:
        """Each kind's values are given, the others empty; a pin's position from 1 to
        RECOMMENDATION_MAX_LIMIT. (Whether a product exists is the admin form's check.)"""
        from ..conf import app_settings

        self.product_key = (self.product_key or "").strip()
        self.category_key = (self.category_key or "").strip()
        needed = self.FIELDS.get(self.kind)
        if needed is None:
            raise ValidationError({"kind": _("Unknown rule.")})
        errors: dict[str, Any] = {}
        for name in self.VALUE_FIELDS:
            empty = getattr(self, name) in (None, "")
            if name in needed and empty:
                errors[name] = _("This rule needs a value here.")
            elif name not in needed and not empty:
                errors[name] = _("Not used by this rule: leave it empty.")
        maximum = int(app_settings.RECOMMENDATION_MAX_LIMIT)
        position = self.position
        if "position" not in errors and position is not None and not 1 <= position <= maximum:
            errors["position"] = _("A position from 1 to %(max)d.") % {"max": maximum}
        weight = self.weight
        if "weight" not in errors and weight is not None and not math.isfinite(weight):
            errors["weight"] = _("A number from 0 to 10.")
        if errors:
            raise ValidationError(errors)


class Banner(models.Model):
    """Content for a placement, shown to the visitors of its target segments."""

    placement = models.ForeignKey(
        Placement, verbose_name=_("placement"), on_delete=models.CASCADE, related_name="banners"
    )
    name = models.CharField(_("internal name"), max_length=100)
    title = models.CharField(_("title"), max_length=200, blank=True)
    body = models.TextField(
        _("body (HTML)"), blank=True, help_text=_("Sanitized: scripts and event handlers go.")
    )
    image = models.ImageField(_("image"), upload_to="personalization/banners/", blank=True)
    cta_text = models.CharField(_("button text"), max_length=80, blank=True)
    cta_url = models.CharField(_("button link"), max_length=500, blank=True)
    segments = models.ManyToManyField(
        Segment,
        verbose_name=_("target segments"),
        blank=True,
        related_name="banners",
        help_text=_("Shown to visitors in any of these segments; none: to every visitor."),
    )
    priority = models.IntegerField(_("priority"), default=0, help_text=_("Higher wins."))
    starts_at = models.DateTimeField(_("starts"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("banner")
        verbose_name_plural = _("banners")
        ordering = ["placement", "-priority", "name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        from ..targeting.content import sanitize_html

        self.body = sanitize_html(self.body)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from ..targeting.content import safe_link

        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The end must come after the start.")})
        if self.cta_url and not safe_link(self.cta_url):
            raise ValidationError(
                {"cta_url": _("Use a link starting with /, http://, https:// or mailto:.")}
            )

    def is_live(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        now = now or timezone.now()
        return (
            self.is_active
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )
