"""Email in the admin: recipients (consent records, read-only but for unsubscribing) and the
outbox, every email prepared, with its text and HTML as the recipient got them.

An email's HTML is shown in a sandboxed frame loaded from a URL of its own, whose response
carries a policy of its own (:data:`EMAIL_DOCUMENT_CSP`): emails need inline styles, which the
admin's pages, under a strict Content-Security-Policy, must not have (a ``srcdoc`` frame
would inherit the admin page's policy and lose them). Its open-tracking pixel is replaced by
a blank inline image there, so staff reading an email are not counted as its recipient
opening it."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMultiAlternatives
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..emails import flows, links, sending
from ..models import EmailCampaign, EmailFlow, EmailRecipient, EmailSend
from .base import ReadOnlyAdmin

# The policy of an email's own document: no script at all (sandbox), its inline styles and the
# shop's images, and shown only in a frame of the admin's own pages.
EMAIL_DOCUMENT_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src http: https: data:; "
    "font-src http: https: data:; frame-ancestors 'self'"
)
EMAIL_MEDIA = {"all": ["personalization/admin/email.css"]}


# A transparent 1×1 GIF, in place of the tracking pixel in the admin's copy of an email.
BLANK_IMAGE = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def without_open_pixel(html: str) -> str:
    """``html`` with every open-tracking pixel of this app's (``EMAIL_TRACK_OPENS``), whatever
    its host, replaced by :data:`BLANK_IMAGE`."""
    try:
        path = reverse("personalization:email-open", args=["TOKEN"])
    except NoReverseMatch:
        return html
    prefix, _, suffix = path.partition("TOKEN")
    pixel = re.compile(
        r"(?:https?:)?(?://[^\s\"'<>/]+)?" + re.escape(prefix) + r"[^\s\"'<>/]+" + re.escape(suffix)
    )
    return pixel.sub(BLANK_IMAGE, html)


def email_document(html: str) -> HttpResponse:
    """An email's HTML as a document of its own, for the admin's preview frame; its tracking
    pixel is not loaded (:func:`without_open_pixel`)."""
    response = HttpResponse(without_open_pixel(html), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = EMAIL_DOCUMENT_CSP
    # Django 6.0's CSP middleware leaves a policy a response has; django-csp's, when told so.
    response._csp_exempt = True  # type: ignore[attr-defined]
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["Cache-Control"] = "private, no-store"
    return response


def email_frame(src: str, title: str) -> Any:
    """The sandboxed frame that shows an email's HTML: no script, no access to the admin."""
    return format_html(
        '<iframe sandbox src="{}" class="pzn-email-frame" title="{}"></iframe>', src, title
    )


@admin.register(EmailRecipient)
class EmailRecipientAdmin(ReadOnlyAdmin):
    list_display = ["email", "consent_source", "consent_at", "unsubscribed_at", "suppressed_at"]
    list_filter = ["consent_source", ("unsubscribed_at", admin.EmptyFieldListFilter)]
    search_fields = ["email"]
    date_hierarchy = "consent_at"
    actions = ["unsubscribe"]

    readonly_fields = ["previews"]

    @admin.display(description=_("preview"))
    def previews(self, obj: EmailRecipient) -> Any:
        """Links to each flow's email as this recipient would get it now."""
        if obj.pk is None:
            return "—"
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:personalization_email_preview", args=[obj.pk, flow]), flow)
                for flow in flows.FLOWS
            ),
        )

    def get_urls(self) -> list[URLPattern]:
        preview = self.admin_site.admin_view(self.preview_view)
        body = self.admin_site.admin_view(self.preview_body_view)
        return [
            path("<int:pk>/preview/<str:flow>/", preview, name="personalization_email_preview"),
            path(
                "<int:pk>/preview/<str:flow>/body/",
                body,
                name="personalization_email_preview_body",
            ),
            *super().get_urls(),
        ]

    def _recipient(self, request: HttpRequest, pk: int, flow: str) -> EmailRecipient:
        if not self.has_view_permission(request):
            raise PermissionDenied
        recipient = EmailRecipient.objects.filter(pk=pk).first()
        if recipient is None or flow not in flows.FLOWS:
            raise Http404
        return recipient

    @staticmethod
    def _composed(recipient: EmailRecipient, flow: str) -> EmailSend:
        email = EmailSend(id=uuid.uuid4(), recipient=recipient, flow=flow, trigger="preview")
        sending.compose(email, flows.preview(flow, recipient))
        return email

    def preview_body_view(self, request: HttpRequest, pk: int, flow: str) -> HttpResponse:
        """The HTML of the preview alone, for its frame (nothing is recorded)."""
        recipient = self._recipient(request, pk, flow)
        if links.site_url() is None:
            raise Http404
        try:
            email = self._composed(recipient, flow)
        except Exception as exc:  # the page itself says why; this frame only shows the reason
            return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
        return email_document(email.body_html)

    def preview_view(self, request: HttpRequest, pk: int, flow: str) -> HttpResponse:
        """The email ``flow`` would send this recipient now; POST sends it to the staff
        member's own address as a test (nothing is recorded, and its links track nothing)."""
        recipient = self._recipient(request, pk, flow)
        if links.site_url() is None:
            messages.error(request, _("Set PERSONALIZATION['EMAIL_SITE_URL'] to preview emails."))
            return HttpResponseRedirect(reverse("admin:personalization_emailrecipient_changelist"))
        try:
            email = self._composed(recipient, flow)
        except Exception as exc:  # the job would fail this email the same way
            messages.error(
                request,
                _("This email cannot be rendered for %(email)s: %(error)s")
                % {"email": recipient.email, "error": exc},
            )
            return HttpResponseRedirect(
                reverse("admin:personalization_emailrecipient_change", args=[recipient.pk])
            )
        if request.method == "POST":
            to = getattr(request.user, "email", "")
            if not to:
                messages.error(request, _("Your account has no email address to send a test to."))
            else:
                message = EmailMultiAlternatives(
                    subject=f"[Test] {email.subject}",
                    body=email.body_text,
                    from_email=app_settings.EMAIL_FROM or None,
                    to=[to],
                )
                message.attach_alternative(email.body_html, "text/html")
                message.send()
                messages.success(request, _("A test was sent to %(to)s.") % {"to": to})
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": _("%(flow)s for %(email)s") % {"flow": flow, "email": recipient.email},
            "recipient": recipient,
            "email": email,
            "opts": self.model._meta,
            "flows": flows.FLOWS,
            "flow": flow,
        }
        return TemplateResponse(request, "admin/personalization/email_preview.html", context)

    @admin.action(description=_("Unsubscribe the selected addresses from all email"))
    def unsubscribe(self, request: Any, queryset: Any) -> None:
        count = queryset.filter(unsubscribed_at__isnull=True).update(unsubscribed_at=timezone.now())
        self.message_user(request, _("%(count)d unsubscribed.") % {"count": count})


@admin.register(EmailSend)
class EmailSendAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at", "flow", "recipient", "status", "subject", "sent_at", "clicked_at",
        "opened_at",
    ]  # fmt: skip
    list_filter = ["flow", "status", "is_control"]
    search_fields = ["recipient__email", "subject"]
    date_hierarchy = "created_at"
    list_select_related = ["recipient"]
    readonly_fields = ["preview"]
    exclude = ["body_html"]

    class Media:
        css = EMAIL_MEDIA

    def get_urls(self) -> list[URLPattern]:
        body = self.admin_site.admin_view(self.body_view)
        return [
            path("<uuid:pk>/body/", body, name="personalization_emailsend_body"),
            *super().get_urls(),
        ]

    def body_view(self, request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
        """The email's HTML as it was sent, for the preview's frame."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        email = get_object_or_404(EmailSend.objects.only("body_html"), pk=pk)
        if not email.body_html:
            raise Http404
        return email_document(email.body_html)

    @admin.display(description=_("as the recipient sees it"))
    def preview(self, obj: EmailSend) -> Any:
        if not obj.body_html or obj.pk is None:
            return "—"
        # Sandboxed: the email's HTML cannot run script or reach the admin's session.
        return email_frame(
            reverse("admin:personalization_emailsend_body", args=[obj.pk]), obj.subject
        )


@admin.register(EmailCampaign)
class EmailCampaignAdmin(admin.ModelAdmin):
    """Staff write a campaign, pick a segment and a time; the emails job sends it then."""

    list_display = ["name", "segment", "send_at", "emails_sent"]
    list_filter = ["segment"]
    search_fields = ["name", "subject"]
    fields = ["name", "segment", "subject", "message", "send_at"]

    @admin.display(description=_("emails sent"))
    def emails_sent(self, obj: EmailCampaign) -> int:
        return EmailSend.objects.filter(
            flow="campaign", trigger=f"campaign:{obj.pk}", status=EmailSend.SENT
        ).count()


WHEN = {
    flows.WELCOME: _("after the signup"),
    flows.BROWSE_ABANDONMENT: _("after the visit ended"),
    flows.CART_ABANDONMENT: _("after the visit ended"),
    flows.POST_PURCHASE: _("after the order"),
    flows.WINBACK: _("after the last order, at least (and 1.5× the customer's usual gap)"),
}


@admin.register(EmailFlow)
class EmailFlowAdmin(admin.ModelAdmin):
    """The five lifecycle flows, always listed: staff switch each on or off, set its delay,
    keep it to a segment and write its subject and opening words. Empty fields follow the
    project's settings (EMAIL_FLOWS) and the flow's templates."""

    list_display = ["__str__", "runs", "segment", "subject", "updated_at"]
    fields = ["name", "enabled", "delay_minutes", "segment", "subject", "message", "runs"]
    readonly_fields = ["name", "runs"]
    list_select_related = ["segment"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Every flow has its row (empty fields: as the settings say).
        known = set(EmailFlow.objects.values_list("name", flat=True))
        EmailFlow.objects.bulk_create(
            [EmailFlow(name=name) for name in flows.FLOWS if name not in known],
            ignore_conflicts=True,
        )
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).filter(name__in=flows.FLOWS)

    @admin.display(description=_("now"))
    def runs(self, obj: EmailFlow) -> str:
        config = flows.configs().get(obj.name)
        if config is None or config.delay is None:
            return str(_("off"))
        minutes = int(config.delay.total_seconds() // 60)
        if minutes < 0 and obj.name in (flows.BROWSE_ABANDONMENT, flows.CART_ABANDONMENT):
            after_view = max(0, app_settings.visit_timeout_seconds // 60 + minutes)
            return f"{_('on')}: " + str(_("%(n)d min after the last view") % {"n": after_view})
        if minutes % 1440 == 0 and minutes:
            amount = _("%(n)d days") % {"n": minutes // 1440}
        elif minutes % 60 == 0 and minutes:
            amount = _("%(n)d h") % {"n": minutes // 60}
        else:
            amount = _("%(n)d min") % {"n": minutes}
        return f"{_('on')}: {amount} {WHEN.get(obj.name, '')}"
