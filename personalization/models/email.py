"""Email: who agreed to receive it (with the consent kept), and every email prepared for them."""

from __future__ import annotations

import os
import time
import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .measurement import Exposure
from .visitors import Visitor, loose_link


def ordered_uuid() -> uuid.UUID:
    """A UUID that starts with the time in milliseconds (the layout of UUID version 7):
    rows made one after another sit side by side in the primary key's index, so a campaign
    of a hundred thousand emails appends to it instead of writing all over it."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


class EmailRecipient(models.Model):
    """An address that may receive the shop's personalized email: its consent (when, where,
    the words agreed to), its unsubscriptions and whether it is suppressed (bounced,
    complained)."""

    SOURCE_POPUP = "popup"
    SOURCE_ACCOUNT = "account"
    SOURCE_IMPORT = "import"
    SOURCE_CHOICES = [
        (SOURCE_POPUP, _("signup popup")),
        (SOURCE_ACCOUNT, _("customer account")),
        (SOURCE_IMPORT, _("import")),
    ]

    email = models.EmailField(_("email"))
    visitor = loose_link(Visitor, "email_recipients", optional=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    consent_at = models.DateTimeField(_("consent given"))
    consent_text = models.CharField(_("consent text"), max_length=500)
    consent_source = models.CharField(_("consent from"), max_length=16, choices=SOURCE_CHOICES)
    confirmed_at = models.DateTimeField(
        _("confirmed"),
        null=True,
        blank=True,
        help_text=_("When the address was confirmed by a link (EMAIL_DOUBLE_OPT_IN)."),
    )
    unsubscribed_at = models.DateTimeField(_("unsubscribed from all"), null=True, blank=True)
    unsubscribed_flows = models.JSONField(
        _("unsubscribed from"), default=list, blank=True, help_text=_("Flows, by name.")
    )
    suppressed_at = models.DateTimeField(_("suppressed"), null=True, blank=True)
    suppressed_reason = models.CharField(_("why suppressed"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("email recipient")
        verbose_name_plural = _("email recipients")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="pzn_recipient_unique_email"),
        ]

    def __str__(self) -> str:
        return self.email

    def receives(self, flow: str) -> bool:
        """Whether this address may get an email of ``flow`` now."""
        return (
            self.unsubscribed_at is None
            and self.suppressed_at is None
            and flow not in (self.unsubscribed_flows or [])
        )


class EmailSend(models.Model):
    """One email of a flow for one recipient and one trigger (a visit, an order…): the row
    is claimed before anything is sent, so no recipient gets the same email twice, whatever
    runs at once or again. Control-group recipients get a row and no email."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CONTROL = "control"
    SUNSET = "sunset"
    STATUS_CHOICES = [
        (PENDING, _("being sent")),
        (SENT, _("sent")),
        (FAILED, _("failed, to retry")),
        (CONTROL, _("held out (control group)")),
        (SUNSET, _("not sent: no click on the last emails")),
    ]

    id = models.UUIDField(primary_key=True, default=ordered_uuid, editable=False)
    recipient = models.ForeignKey(
        EmailRecipient, verbose_name=_("recipient"), on_delete=models.CASCADE, related_name="sends"
    )
    visitor = loose_link(Visitor, "email_sends", optional=True)
    flow = models.CharField(_("flow"), max_length=32)
    trigger = models.CharField(_("trigger"), max_length=100)
    status = models.CharField(_("status"), max_length=16, choices=STATUS_CHOICES)
    is_control = models.BooleanField(_("control group"), default=False)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body_text = models.TextField(_("text"), blank=True)
    body_html = models.TextField(_("HTML"), blank=True)
    items = models.JSONField(_("products"), default=list, blank=True)
    exposure = loose_link(Exposure, "email_sends", _("exposure"), optional=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error = models.CharField(_("last error"), max_length=300, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    opened_at = models.DateTimeField(
        _("opened (pixel)"),
        null=True,
        blank=True,
        help_text=_(
            "First load of the tracking pixel (EMAIL_TRACK_OPENS). Unreliable: mail clients "
            "that block images never count, and privacy proxies load it for every email."
        ),
    )
    clicked_at = models.DateTimeField(_("first click"), null=True, blank=True)

    class Meta:
        verbose_name = _("email")
        verbose_name_plural = _("emails (outbox)")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "flow", "trigger"], name="pzn_email_once_per_trigger"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="pzn_email_retry")]

    def __str__(self) -> str:
        return f"{self.flow} → {self.recipient} ({self.get_status_display()})"


class EmailCampaign(models.Model):
    """A one-off email to a segment's recipients (everyone's when no segment), with a block
    personalized for each of them. It goes out with the ``emails`` job once ``send_at`` has
    come, to the recipients who may receive it then, and stays due for ``EMAIL_DUE_DAYS``."""

    name = models.CharField(_("name"), max_length=100)
    segment = models.ForeignKey(
        "personalization.Segment",
        verbose_name=_("segment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text=_("Who receives it; empty: every recipient."),
    )
    subject = models.CharField(_("subject"), max_length=150)
    message = models.TextField(
        _("message"), help_text=_("Plain text above the products picked for each recipient.")
    )
    send_at = models.DateTimeField(
        _("send at"), null=True, blank=True, help_text=_("Empty: a draft, not sent.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("email campaign")
        verbose_name_plural = _("email campaigns")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class EmailFlow(models.Model):
    """Staff's settings of one lifecycle flow. Every field left empty follows the project's
    settings (``EMAIL_FLOWS`` for the delay, the flow's templates for the words)."""

    name = models.CharField(_("flow"), max_length=32, unique=True)
    enabled = models.BooleanField(
        _("on"),
        null=True,
        blank=True,
        help_text=_("Empty: as the settings say (on when EMAIL_FLOWS gives it a delay)."),
    )
    delay_minutes = models.PositiveIntegerField(
        _("delay (minutes)"),
        null=True,
        blank=True,
        help_text=_("Empty: the delay in EMAIL_FLOWS."),
    )
    segment = models.ForeignKey(
        "personalization.Segment",
        verbose_name=_("only for segment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text=_("Only recipients whose visitor is in this segment get it; empty: everyone."),
    )
    subject = models.CharField(
        _("subject"),
        max_length=150,
        blank=True,
        help_text=_("Empty: the template's subject. {{ product }} names the first product."),
    )
    message = models.TextField(
        _("message"),
        blank=True,
        help_text=_("Plain text in place of the template's opening words; empty: the template's."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("email flow")
        verbose_name_plural = _("email flows")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name.replace("_", " ")
