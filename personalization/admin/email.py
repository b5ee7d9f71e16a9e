"""Email in the admin: recipients (consent records, read-only but for unsubscribing) and the
outbox, every email prepared, with its text and HTML as the recipient got them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import EmailRecipient, EmailSend
from .base import ReadOnlyAdmin


@admin.register(EmailRecipient)
class EmailRecipientAdmin(ReadOnlyAdmin):
    list_display = ["email", "consent_source", "consent_at", "unsubscribed_at", "suppressed_at"]
    list_filter = ["consent_source", ("unsubscribed_at", admin.EmptyFieldListFilter)]
    search_fields = ["email"]
    date_hierarchy = "consent_at"
    actions = ["unsubscribe"]

    @admin.action(description=_("Unsubscribe the selected addresses from all email"))
    def unsubscribe(self, request: Any, queryset: Any) -> None:
        count = queryset.filter(unsubscribed_at__isnull=True).update(unsubscribed_at=timezone.now())
        self.message_user(request, _("%(count)d unsubscribed.") % {"count": count})


@admin.register(EmailSend)
class EmailSendAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "flow", "recipient", "status", "subject", "sent_at"]
    list_filter = ["flow", "status", "is_control"]
    search_fields = ["recipient__email", "subject"]
    date_hierarchy = "created_at"
    list_select_related = ["recipient"]
    readonly_fields = ["preview"]
    exclude = ["body_html"]

    @admin.display(description=_("as the recipient sees it"))
    def preview(self, obj: EmailSend) -> Any:
        if not obj.body_html:
            return "—"
        # Sandboxed: the email's HTML cannot run script or reach the admin's session.
        return format_html(
            '<iframe sandbox srcdoc="{}" style="width:100%;max-width:640px;height:560px;'
            'border:1px solid #ccc;background:#fff" title="{}"></iframe>',
            obj.body_html,
            obj.subject,
        )
