"""The staff page that starts, changes and ends a preview (``personalization:preview``)."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import state
from .visitor import PreviewVisitor

FIELDS = ("segment", "country", "visit", "group", "banner", "strategy")


class PreviewForm(forms.Form):
    """The overrides of a preview; every one may stay empty."""

    segment = forms.ChoiceField(
        label=_("Segment"),
        required=False,
        help_text=_("You are in this segment, and in no other."),
    )
    country = forms.CharField(
        label=_("Country"),
        required=False,
        max_length=2,
        help_text=_("A two-letter ISO code, e.g. DE."),
    )
    visit = forms.ChoiceField(
        label=_("Visit"),
        required=False,
        choices=[
            ("", _("as it is")),
            ("first", _("first visit")),
            ("returning", _("returning visitor")),
        ],
    )
    group = forms.ChoiceField(
        label=_("Group"),
        required=False,
        choices=[
            ("", _("your own")),
            ("personalized", _("personalized")),
            ("control", _("control (the non-personalized defaults)")),
        ],
    )
    banner = forms.TypedChoiceField(
        label=_("Banner"),
        required=False,
        coerce=int,
        empty_value=None,
        help_text=_("Shown in its placement whatever its segments, dates, group or active flag."),
    )
    strategy = forms.ChoiceField(
        label=_("Recommendations"),
        required=False,
        help_text=_("The strategy of every placement, for the personalized group."),
    )
    next = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from ..models import Banner, Segment
        from ..recommendations.serving import strategies

        super().__init__(*args, **kwargs)
        inactive = _("inactive")
        segments = Segment.objects.order_by("-is_active", "name").values_list(
            "slug", "name", "is_active"
        )
        choice_fields = cast(dict[str, forms.ChoiceField], self.fields)
        choice_fields["segment"].choices = [("", _("as your profile gives them"))] + [
            (slug, f"{name} ({slug})" + ("" if active else f" — {inactive}"))
            for slug, name, active in segments
        ]
        grouped: dict[str, list[tuple[int, str]]] = {}
        for banner in Banner.objects.select_related("placement").order_by(
            "placement__slug", "-priority", "name"
        ):
            label = banner.name + ("" if banner.is_active else f" — {inactive}")
            grouped.setdefault(banner.placement.slug, []).append((banner.pk, label))
        choice_fields["banner"].choices = [("", _("as targeting chooses")), *grouped.items()]
        choice_fields["strategy"].choices = [("", _("each placement's own"))] + [
            (name, name) for name in sorted(strategies())
        ]

    def clean_country(self) -> str:
        value = (self.cleaned_data.get("country") or "").strip().upper()
        if value and not re.fullmatch(r"[A-Z]{2}", value):
            raise forms.ValidationError(_("Use a two-letter ISO country code such as DE or GB."))
        return value

    def preview(self) -> state.Preview:
        preview = state.Preview.from_values({name: self.cleaned_data[name] for name in FIELDS})
        if preview is None:  # the fields check what the cookie does, and more
            raise ValueError("a valid form gave an invalid preview")
        return preview


def _login_url() -> str:
    try:
        return reverse("admin:login")
    except NoReverseMatch:
        return str(settings.LOGIN_URL)


def _next(request: HttpRequest, value: Any) -> str:
    """``value`` when it is a URL of this site, else the home page."""
    if isinstance(value, str) and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return "/"


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def preview_view(request: HttpRequest) -> HttpResponse:
    """GET: the form (filled in from the preview on, then from the query string); POST: start
    or change the preview and go back to ``next``. ``preview=off`` (GET or POST) ends it, for
    anyone: it only deletes the cookie. Staff with ``PREVIEW_PERMISSION`` only: anonymous
    visitors are sent to log in, others get a 403."""
    data = request.POST if request.method == "POST" else request.GET
    if data.get("preview") == "off":
        response = HttpResponseRedirect(_next(request, data.get("next")))
        state.delete(response)
        return response
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), _login_url())
    if not state.may_preview(user):
        raise PermissionDenied
    visitor = getattr(request, "visitor", None)
    current = visitor.preview if isinstance(visitor, PreviewVisitor) else None
    if request.method == "POST":
        form = PreviewForm(request.POST)
        if form.is_valid():
            response = HttpResponseRedirect(_next(request, form.cleaned_data["next"]))
            state.write(response, form.preview(), user)
            return response
        status = 400
    else:
        initial = current.as_query() if current is not None else {}
        initial.update({name: request.GET[name] for name in FIELDS if name in request.GET})
        initial["next"] = _next(request, request.GET.get("next"))
        form = PreviewForm(initial=initial)
        status = 200
    context = {"form": form, "active": current is not None}
    return render(request, "personalization/preview.html", context, status=status)
