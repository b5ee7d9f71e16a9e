"""Where the links in emails lead: unsubscribing (a page, and RFC 8058 one-click) and tracked
clicks. Both need no login: the link's signature is the proof. A tampered link gets a 400."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..profiling import storage
from .links import ALL, BadLink, read_click, read_confirm, read_open, read_unsubscribe

# A transparent 1×1 GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
    b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@csrf_exempt  # one-click unsubscribe is a POST from the mail client, with no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation page (mail scanners follow links: a GET changes nothing);
    POST unsubscribes, from the mail client's one-click button or from that page."""
    from ..models import EmailRecipient

    try:
        recipient_id, flow = read_unsubscribe(token)
    except BadLink:
        return HttpResponseBadRequest(_("This unsubscribe link is not valid."))
    recipient = EmailRecipient.objects.filter(pk=recipient_id).first()
    if recipient is None:  # forgotten meanwhile: nothing left to send to
        return render(
            request, "personalization/email/unsubscribe.html", {"done": True, "flow": flow}
        )
    context = {"email": recipient.email, "flow": flow, "done": False}
    if request.method == "POST":
        if flow == ALL:
            EmailRecipient.objects.filter(pk=recipient.pk, unsubscribed_at__isnull=True).update(
                unsubscribed_at=timezone.now()
            )
        elif flow not in (recipient.unsubscribed_flows or []):
            recipient.unsubscribed_flows = [*(recipient.unsubscribed_flows or []), flow]
            recipient.save(update_fields=["unsubscribed_flows"])
        context["done"] = True
    return render(request, "personalization/email/unsubscribe.html", context)


@csrf_exempt  # the link's signature is the proof; the page has no session to protect
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Double opt-in: GET shows a button (mail scanners follow links), POST confirms."""
    from ..models import EmailRecipient

    try:
        recipient_id = read_confirm(token)
    except BadLink:
        return HttpResponseBadRequest(_("This confirmation link is not valid."))
    recipient = EmailRecipient.objects.filter(pk=recipient_id).first()
    if recipient is None:
        return HttpResponseBadRequest(_("This address is not known any more."))
    done = recipient.confirmed_at is not None
    if request.method == "POST" and not done:
        EmailRecipient.objects.filter(pk=recipient.pk, confirmed_at__isnull=True).update(
            confirmed_at=timezone.now()
        )
        done = True
    context = {"email": recipient.email, "done": done}
    return render(request, "personalization/email/confirm_page.html", context)


@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, token: str) -> HttpResponse:
    """Record the click on an email's link, then go to the shop's page it names (only ever
    a path of the shop). The click is the browser's visitor's; a browser that has no visitor
    cookie yet continues as the email's visitor, so what it orders is attributed."""
    from ..models import EmailSend, Event

    try:
        send_id, path = read_click(token)
    except BadLink:
        return HttpResponseBadRequest(_("This link is not valid."))
    response = HttpResponseRedirect(path)
    send = EmailSend.objects.filter(pk=send_id).only("pk", "visitor_id", "exposure_id").first()
    visitor = getattr(request, "visitor", None)
    if send is None or request.method == "HEAD" or visitor is None or not visitor.is_tracked:
        return response
    if getattr(visitor, "is_preview", False):  # a staff preview counts nothing
        return response
    visitor_id = visitor.id
    if visitor.cookie is None and send.visitor_id:  # a new browser: the email's visitor
        visitor.forget()  # this request's new profile is not kept
        visitor_id = send.visitor_id
        storage.write_visitor_cookie(response, visitor_id)
    Event.objects.create(visitor_id=visitor_id, exposure_id=send.exposure_id, kind=Event.CLICK)
    EmailSend.objects.filter(pk=send.pk, clicked_at__isnull=True).update(clicked_at=timezone.now())
    return response


@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """The tracking pixel (``EMAIL_TRACK_OPENS``): the email's first open is noted. Opens are
    unreliable (blocked images, privacy proxies that load every image): they only keep a
    recipient who opens from the sunset, and the report never counts them."""
    from ..models import EmailSend

    try:
        send_id = read_open(token)
    except BadLink:
        return HttpResponseBadRequest("This image link is not valid.")
    if request.method == "GET":
        EmailSend.objects.filter(pk=send_id, opened_at__isnull=True).update(
            opened_at=timezone.now()
        )
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, private"
    return response
