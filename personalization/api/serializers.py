"""API serializers: what the signup, event and offer endpoints accept and return."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ..models import Coupon, Event, Signup
from ..signups import MAX_CONSENT_LENGTH, MAX_EMAIL_LENGTH


class SignupRequestSerializer(serializers.Serializer[Any]):
    """``{"email": ..., "consent": "the text the visitor agreed to"}``."""

    email = serializers.CharField(max_length=MAX_EMAIL_LENGTH, trim_whitespace=True)
    consent = serializers.CharField(
        max_length=MAX_CONSENT_LENGTH, required=False, allow_blank=True, default=""
    )


class CouponSerializer(serializers.ModelSerializer[Coupon]):
    """A coupon as its owner sees it."""

    coupon_code = serializers.CharField(source="code")
    discount = serializers.CharField(source="describe")
    redeemed = serializers.BooleanField(source="is_redeemed")

    class Meta:
        model = Coupon
        fields = ["coupon_code", "discount", "expires_at", "redeemed", "note"]
        read_only_fields = fields


class SignupOfferSerializer(serializers.Serializer[Any]):
    """The answer to a signup: the coupon, and the link the visitor can share."""

    coupon_code = serializers.CharField(source="coupon.code")
    discount = serializers.CharField(source="coupon.describe")
    expires_at = serializers.DateTimeField(source="coupon.expires_at", allow_null=True)
    referral_link = serializers.SerializerMethodField()

    def get_referral_link(self, signup: Signup) -> str | None:
        from ..referrals import code_for_signup, referral_link

        request = self.context.get("request")
        return referral_link(request, code_for_signup(signup)) if request else None


class SignupRecordSerializer(serializers.ModelSerializer[Signup]):
    """A signup as ``GET api/me/`` shows it to the visitor who made it."""

    class Meta:
        model = Signup
        fields = ["email", "consent_at", "consent_text"]
        read_only_fields = fields


class EventSerializer(serializers.Serializer[Any]):
    """``{"type": "click", "exposure": "<uuid>", "product": "<id>"}`` from the page script."""

    type = serializers.ChoiceField(choices=[kind for kind, _label in Event.KIND_CHOICES])
    exposure = serializers.UUIDField(required=False, allow_null=True)
    product = serializers.CharField(
        required=False, allow_blank=True, max_length=64, trim_whitespace=True, default=""
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["type"] != Event.ADD_TO_CART and not attrs.get("exposure"):
            raise serializers.ValidationError(
                {"exposure": [_("This event needs the id of the exposure it is about.")]}
            )
        return attrs
