"""Offers: single-use coupons, email signups that earn one, and customers' referral codes."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .visitors import Visitor, loose_link


class Coupon(models.Model):
    """A unique, single-use discount code."""

    PERCENT = "percent"
    AMOUNT = "amount"
    KIND_CHOICES = [(PERCENT, _("percent off")), (AMOUNT, _("amount off"))]

    SOURCE_SIGNUP = "signup"
    SOURCE_REFERRAL_WELCOME = "referral-welcome"
    SOURCE_REFERRAL_REWARD = "referral-reward"
    SOURCE_MANUAL = "manual"
    SOURCE_CHOICES = [
        (SOURCE_SIGNUP, _("email signup")),
        (SOURCE_REFERRAL_WELCOME, _("referral: welcome offer")),
        (SOURCE_REFERRAL_REWARD, _("referral: reward")),
        (SOURCE_MANUAL, _("issued by staff")),
    ]

    code = models.CharField(_("code"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=KIND_CHOICES, default=PERCENT)
    value = models.DecimalField(_("value"), max_digits=10, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    product_ids = models.JSONField(
        _("products"),
        default=list,
        blank=True,
        help_text=_("Primary keys of the products it applies to; empty: the whole order."),
    )
    source = models.CharField(_("source"), max_length=20, choices=SOURCE_CHOICES)
    email = models.EmailField(_("email"), blank=True)
    visitor = loose_link(Visitor, "coupons", optional=True)
    referral = models.ForeignKey(
        "ReferralCode",
        verbose_name=_("referral"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="coupons",
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    referred_visitor_id = models.CharField(
        _("referred visitor"),
        max_length=32,
        blank=True,
        help_text=_("For a referral reward: the referred visitor whose first order earned it."),
    )
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    redeemed_at = models.DateTimeField(_("redeemed"), null=True, blank=True)
    redeemed_order_id = models.CharField(_("redeemed by order"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["expires_at"], name="pzn_coupon_expires")]
        constraints = [
            # A referred visitor earns their referrer one reward, however often it is attempted.
            models.UniqueConstraint(
                fields=["referred_visitor_id"],
                condition=Q(source="referral-reward") & ~Q(referred_visitor_id=""),
                name="pzn_coupon_one_reward_per_referral",
            )
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_redeemed(self) -> bool:
        return self.redeemed_at is not None

    def is_expired(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def describe(self) -> str:
        """``10%`` or ``5.00 EUR``, written the active language's way (``12,5 %``)."""
        if self.kind == self.PERCENT:
            percent = number_format(Decimal(f"{self.value.normalize():f}"))
            # Translators: a coupon's value, "10%"; French and German write "10 %".
            return gettext("%(percent)s%%") % {"percent": percent}
        return f"{number_format(self.value, 2)} {self.currency}".strip()


class Signup(models.Model):
    """An email address a visitor gave, with their consent, in exchange for a coupon."""

    email = models.EmailField(_("email"))
    visitor = loose_link(Visitor, "signups", optional=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    coupon = models.OneToOneField(
        Coupon, verbose_name=_("coupon"), on_delete=models.PROTECT, related_name="signup"
    )
    consent_at = models.DateTimeField(_("consent given"))
    consent_text = models.CharField(_("consent text"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("signup")
        verbose_name_plural = _("signups")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="pzn_signup_unique_email"),
        ]

    def __str__(self) -> str:
        return self.email


class ReferralCode(models.Model):
    """A customer's (or signed-up visitor's) personal code for ``?ref=CODE`` links."""

    code = models.CharField(_("code"), max_length=64, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="personalization_referral_code",
    )
    signup = models.OneToOneField(
        Signup,
        verbose_name=_("signup"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="referral_code",
    )
    is_active = models.BooleanField(_("active"), default=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("referral code")
        verbose_name_plural = _("referral codes")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.code

    def is_valid(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        return self.is_active and (
            self.expires_at is None or (now or timezone.now()) < self.expires_at
        )
