"""Who sees what: segments (rules over the visitor profile), placements and their banners."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
