"""API views for the page scripts: email signup for a coupon, and click/popup/cart events."""

from __future__ import annotations

import time
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import Event, Exposure
from ..profiling.visitor import VisitorProfile
from ..signups import belongs_to, sign_up
from .base import VisitorAPIView
from .parsers import BeaconJSONParser, LimitedFormParser, LimitedJSONParser, check_media_type
from .permissions import SameOriginPost
from .schema import errors, schema_for
from .serializers import EventSerializer, SignupOfferSerializer, SignupRequestSerializer
from .throttles import EventsThrottle, SignupThrottle


class CsrfEnforcingAuthentication(SessionAuthentication):
    """Session authentication that checks the CSRF token for anonymous visitors too (DRF
    checks it only for logged-in users): a signup form must not be postable cross-site."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        self.enforce_csrf(request)
        user = getattr(request._request, "user", None)
        return (user, None) if user is not None and user.is_active else None


class SignupView(VisitorAPIView):
    """``POST {"email", "consent"}`` → 201 with a new coupon, 200 with the one given before
    to the same visitor, 409 without a coupon for an address another visitor signed up."""

    authentication_classes = [CsrfEnforcingAuthentication]
    throttle_classes = [SignupThrottle]
    schema = schema_for(
        request=SignupRequestSerializer,
        responses={
            200: SignupOfferSerializer,
            201: SignupOfferSerializer,
            **errors(400, 403, 409, 415, 429),
        },
    )
    parser_classes = [LimitedJSONParser, LimitedFormParser]

    def post(self, request: Request) -> Response:
        serializer = SignupRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            signup, created = sign_up(
                request._request,
                serializer.validated_data["email"],
                serializer.validated_data["consent"],
            )
        except DjangoValidationError as exc:
            raise ValidationError({"email": exc.messages}) from exc
        if not created and not belongs_to(signup, request._request):
            # Someone else's address: its coupon is theirs, so it is not shown here.
            detail = _("This email address has already been signed up.")
            return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
        body = SignupOfferSerializer(signup, context={"request": request._request}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class EventsView(VisitorAPIView):
    """``POST {"type", "exposure", "product"}`` from the page script → 204.

    Sent with ``navigator.sendBeacon``, which cannot add a CSRF header. Instead the post must
    come from the shop's own pages (``SameOriginPost``: what the browser says in
    ``Sec-Fetch-Site`` or ``Origin``, required for a ``text/plain`` body, the one type another
    site could post), and the exposure must be one shown to the calling visitor. Nothing is
    stored for untracked visitors.
    """

    authentication_classes: list[Any] = []
    permission_classes = [SameOriginPost]
    throttle_classes = [EventsThrottle]
    schema = schema_for(
        request=EventSerializer, responses={204: None, **errors(400, 403, 415, 429)}
    )
    parser_classes = [LimitedJSONParser, BeaconJSONParser]

    def post(self, request: Request) -> Response:
        visitor = self.visitor(request)
        check_media_type(request)
        if not visitor.is_tracked or getattr(visitor, "is_preview", False):
            return Response(status=status.HTTP_204_NO_CONTENT)  # a staff preview counts nothing
        serializer = EventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = serializer.validated_data
        record_event(
            visitor, event["type"], exposure_id=event.get("exposure"), product=event["product"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def record_event(
    visitor: VisitorProfile, kind: str, *, exposure_id: Any = None, product: str = ""
) -> Event:
    """Store the event and fold it into the profile; an exposure that is not the visitor's
    raises ValidationError."""
    if exposure_id is not None and not _is_own_exposure(visitor, exposure_id):
        raise ValidationError({"exposure": [_("Unknown exposure.")]})
    event = Event.objects.create(
        visitor_id=visitor.id, exposure_id=exposure_id, kind=kind, product_id=product
    )
    data = visitor._data
    if kind == Event.POPUP_SHOWN:
        data.popup_shown_visit = data.visit_count
    elif kind == Event.POPUP_DISMISSED:
        data.popup_dismissed_at = time.time()
    elif kind == Event.ADD_TO_CART:
        data.cart_updated_at = time.time()
    visitor.dirty = True
    return event


def _is_own_exposure(visitor: VisitorProfile, exposure_id: Any) -> bool:
    return Exposure.objects.filter(pk=exposure_id, visitor_id=visitor.id).exists()
