"""Segments, placements and banners: what staff edit to target content without code."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from .. import jobs
from ..models import Banner, Placement, PlacementRule, Segment, SegmentRule
from ..targeting.rules import RULE_KINDS


def _rule_help() -> str:
    return format_html(
        "<p>{}</p><ul>{}</ul>",
        _("Each rule reads the visitor's profile. Values:"),
        format_html_join(
            "", "<li><b>{}</b>: {}</li>", ((kind.label, kind.help) for kind in RULE_KINDS.values())
        ),
    )


class SegmentRuleInline(admin.TabularInline):
    model = SegmentRule
    extra = 1
    fields = ["kind", "value", "negate", "position"]


def _recount(segment_ids: list[int]) -> None:
    """Recount after the save commits, on a worker or in-process; never fails the save."""
    for segment_id in segment_ids:
        jobs.enqueue("segment-counts", segment_id=segment_id)


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "match", "is_active", "rule_summary", "members", "counted_at"]
    list_filter = ["is_active", "match"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["matching_visitors", "counted_at"]
    inlines = [SegmentRuleInline]
    actions = ["recount_members"]

    def get_fieldsets(self, request: Any, obj: Any = None) -> Any:
        return [
            (None, {"fields": ["name", "slug", "description", "match", "is_active"]}),
            (
                _("Members"),
                {"fields": ["matching_visitors", "counted_at"], "description": _rule_help()},
            ),
        ]

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("rules")

    @admin.display(description=_("rules"))
    def rule_summary(self, obj: Segment) -> str:
        joiner = " and " if obj.match == Segment.MATCH_ALL else " or "
        return joiner.join(str(rule) for rule in obj.rules.all()) or "—"

    @admin.display(description=_("visitors (30 days)"), ordering="matching_visitors")
    def members(self, obj: Segment) -> Any:
        return "…" if obj.matching_visitors is None else obj.matching_visitors

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        _recount([form.instance.pk])

    @admin.action(description=_("Recount members among the last 30 days' visitors"))
    def recount_members(self, request: Any, queryset: Any) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        _recount(ids)
        self.message_user(request, _("Recounting %d segment(s).") % len(ids), messages.SUCCESS)


class BannerInline(admin.TabularInline):
    model = Banner
    extra = 0
    fields = ["name", "priority", "is_active", "starts_at", "ends_at"]
    show_change_link = True


def _product_exists(key: str) -> bool:
    """Whether the adapter's products (those recommendations may show) include ``key``."""
    from ..products import get_adapter, valid_keys

    adapter = get_adapter()
    valid = valid_keys([key], adapter.model)
    return bool(valid) and adapter.get_queryset().filter(pk__in=valid).exists()


class PlacementRuleForm(forms.ModelForm):
    """A pin, or an excluded product, names a product the shop has (checked when the
    product is entered or the kind changed: a rule saved earlier whose product was deleted
    since does not stop the placement from being saved; serving skips it)."""

    class Meta:
        model = PlacementRule
        fields = ["kind", "product_key", "position", "category_key", "weight", "min_stock"]

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean()  # type: ignore[assignment]  # never None
        kind = data.get("kind")
        key = (data.get("product_key") or "").strip()
        entered = not self.instance.pk or {"kind", "product_key"} & set(self.changed_data)
        names_product = kind in (PlacementRule.PIN, PlacementRule.EXCLUDE_PRODUCT)
        if key and entered and names_product and not _product_exists(key):
            self.add_error("product_key", _("No product with this key."))
        return data


class PlacementRuleFormSet(forms.BaseInlineFormSet):
    """One rule per product: a product pinned twice, or pinned and excluded, is refused."""

    def clean(self) -> None:
        super().clean()
        seen: dict[str, str] = {}
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE"):
                continue
            kind = data.get("kind")
            key = (data.get("product_key") or "").strip()
            if kind not in (PlacementRule.PIN, PlacementRule.EXCLUDE_PRODUCT) or not key:
                continue
            if key in seen:
                raise forms.ValidationError(
                    _("Product %(key)s has more than one pin or exclusion here."),
                    params={"key": key},
                )
            seen[key] = kind


class PlacementRuleInline(admin.TabularInline):
    """Merchandising rules: applied to the placement's recommendations when serving, for
    the control group too."""

    model = PlacementRule
    form = PlacementRuleForm
    formset = PlacementRuleFormSet
    extra = 0
    fields = ["kind", "product_key", "position", "category_key", "weight", "min_stock"]


class PlacementForm(forms.ModelForm):
    """Offers the recommendation strategies known to this process by name."""

    class Meta:
        model = Placement
        fields = [
            "slug", "name", "selection", "is_active", "strategy", "recommendation_title",
            "default_title", "default_body", "default_image", "default_cta_text",
            "default_cta_url",
        ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from ..recommendations.serving import TITLES, strategies

        choices: list[tuple[str, Any]] = [("", _("default (the personal blend)"))]
        choices += [(name, str(TITLES.get(name, name))) for name in sorted(strategies())]
        self.fields["strategy"] = forms.ChoiceField(
            label=_("recommendation strategy"),
            choices=choices,
            required=False,
            help_text=Placement._meta.get_field("strategy").help_text,
        )


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    form = PlacementForm
    list_display = ["slug", "name", "selection", "strategy", "is_active", "banner_count"]
    list_filter = ["selection", "is_active"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [BannerInline, PlacementRuleInline]
    fieldsets = [
        (None, {"fields": ["slug", "name", "selection", "is_active"]}),
        (
            _("Recommendations"),
            {
                "fields": ["strategy", "recommendation_title"],
                "description": _(
                    "Merchandising rules (below) pin, exclude and boost products in this "
                    "placement's recommendations, for the control group too."
                ),
            },
        ),
        (
            _("Default content (control group, and visitors no banner fits)"),
            {
                "fields": [
                    "default_title",
                    "default_body",
                    "default_image",
                    "default_cta_text",
                    "default_cta_url",
                ]
            },
        ),
    ]

    @admin.display(description=_("banners"))
    def banner_count(self, obj: Placement) -> int:
        return obj.banners.count()


@admin.register(Banner)
class BannerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "placement",
        "priority",
        "is_active",
        "starts_at",
        "ends_at",
        "target",
        "preview",
    ]
    list_filter = ["placement", "is_active", "segments"]
    search_fields = ["name", "title", "body"]
    filter_horizontal = ["segments"]
    list_select_related = ["placement"]
    fieldsets = [
        (None, {"fields": ["placement", "name", "is_active", "priority"]}),
        (_("Content"), {"fields": ["title", "body", "image", "cta_text", "cta_url"]}),
        (_("Who and when"), {"fields": ["segments", "starts_at", "ends_at"]}),
    ]

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("segments")

    @admin.display(description=_("shown to"))
    def target(self, obj: Banner) -> str:
        names = [segment.name for segment in obj.segments.all()]
        return ", ".join(names) if names else str(_("everyone"))

    @admin.display(description=_("title"))
    def preview(self, obj: Banner) -> str:
        return obj.title[:60]
