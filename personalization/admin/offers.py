"""Coupons, signups and referral codes in the admin: staff issue and expire coupons; signups
(consent records) are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import coupons, referrals
from ..models import Coupon, ReferralCode, Signup
from .base import ReadOnlyAdmin, user_search_fields


class CodeForm(forms.ModelForm):
    """The code may be left blank: a fresh unguessable one is drawn when saving. (The admin
    builds the form's Meta from the ModelAdmin.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "code" in self.fields:
            self.fields["code"].required = False
            self.fields["code"].help_text = _("Leave blank to generate an unguessable code.")


class CouponForm(CodeForm):
    """Codes are stored as customers' typing is compared: upper case, no spaces."""

    def clean_code(self) -> str:
        return coupons.normalize_code(self.cleaned_data.get("code") or "")

    def clean_currency(self) -> str:
        return (self.cleaned_data.get("currency") or "").upper()

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()  # type: ignore[assignment]  # never None
        kind, value = cleaned.get("kind"), cleaned.get("value")
        if kind and value is not None:
            try:
                coupons.checked_value(kind, value)
            except ValueError:
                self.add_error(
                    "value", _("Enter a percentage above 0 and at most 100, or a positive amount.")
                )
        return cleaned


class CouponStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, Any]]:
        return [("usable", _("usable")), ("redeemed", _("redeemed")), ("expired", _("expired"))]

    def queryset(self, request: Any, queryset: QuerySet[Coupon]) -> QuerySet[Coupon]:
        now = timezone.now()
        unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        if self.value() == "usable":
            return queryset.filter(unexpired, redeemed_at__isnull=True)
        if self.value() == "redeemed":
            return queryset.filter(redeemed_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(redeemed_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    form = CouponForm
    list_display = ["code", "source", "discount", "email", "expires_at", "redeemed", "created_at"]
    list_filter = [CouponStateFilter, "source", "kind"]
    search_fields = ["code", "email", "redeemed_order_id"]
    date_hierarchy = "created_at"
    actions = ["expire_now"]
    # What is fixed once a coupon exists; staff may still change the expiry, email and note.
    issued_fields = [
        "code",
        "kind",
        "value",
        "currency",
        "product_ids",
        "source",
        "visitor",
        "referral",
        "referred_visitor_id",
        "redeemed_at",
        "redeemed_order_id",
        "created_at",
    ]
    add_excluded = ["source", "visitor", "referral", "referred_visitor_id"]

    @admin.display(description=_("discount"))
    def discount(self, coupon: Coupon) -> str:
        return coupon.describe()

    @admin.display(description=_("redeemed"), boolean=True, ordering="redeemed_at")
    def redeemed(self, coupon: Coupon) -> bool:
        return coupon.is_redeemed

    def get_readonly_fields(self, request: Any, obj: Coupon | None = None) -> Any:
        if obj is None:
            return ["redeemed_at", "redeemed_order_id", "created_at"]
        return self.issued_fields

    def get_exclude(self, request: Any, obj: Coupon | None = None) -> Any:
        return self.add_excluded if obj is None else []

    def save_model(self, request: Any, obj: Coupon, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        obj.source = Coupon.SOURCE_MANUAL
        if obj.code:
            obj.save()
        else:
            coupons.save_with_fresh_code(obj, coupons.generate_code)

    @admin.action(description=_("Expire now"))
    def expire_now(self, request: Any, queryset: QuerySet[Coupon]) -> None:
        now = timezone.now()
        count = (
            queryset.filter(redeemed_at__isnull=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .update(expires_at=now)
        )
        message = ngettext("%d coupon expired.", "%d coupons expired.", count) % count
        self.message_user(request, message, messages.SUCCESS)


@admin.register(Signup)
class SignupAdmin(ReadOnlyAdmin):
    """Consent records: never edited; deleted to honour an erasure request."""

    list_display = ["email", "consent_at", "coupon", "user", "created_at"]
    search_fields = ["email", "coupon__code"]
    date_hierarchy = "created_at"
    list_select_related = ["coupon", "user"]

    def get_search_fields(self, request: Any) -> list[str]:
        return [*self.search_fields, *user_search_fields("user")]


@admin.register(ReferralCode)
class ReferralCodeAdmin(admin.ModelAdmin):
    form = CodeForm
    list_display = ["code", "user", "signup", "is_active", "expires_at", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["user", "signup"]
    raw_id_fields = ["user", "signup"]
    actions = ["deactivate"]

    def get_search_fields(self, request: Any) -> list[str]:
        return ["code", "signup__email", *user_search_fields("user")]

    def get_readonly_fields(self, request: Any, obj: ReferralCode | None = None) -> Any:
        # A shared link must keep working: the code never changes once it exists.
        return ["created_at"] if obj is None else ["code", "created_at"]

    def save_model(self, request: Any, obj: ReferralCode, form: Any, change: bool) -> None:
        if change or obj.code:
            super().save_model(request, obj, form, change)
        else:
            coupons.save_with_fresh_code(obj, referrals.generate_code)

    @admin.action(description=_("Deactivate"))
    def deactivate(self, request: Any, queryset: QuerySet[ReferralCode]) -> None:
        codes = list(queryset.filter(is_active=True).values_list("code", flat=True))
        ReferralCode.objects.filter(code__in=codes).update(is_active=False)
        referrals.forget_codes(codes)  # update() sends no signals
        message = ngettext("%d code deactivated.", "%d codes deactivated.", len(codes))
        self.message_user(request, message % len(codes), messages.SUCCESS)
