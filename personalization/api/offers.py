"""API views for the page scripts: email signup for a coupon, and click/popup/cart events."""

from __future__ import annotations

import time
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Event, Exposure
from ..profiling.visitor import VisitorProfile
from ..signups import belongs_to, sign_up
from .schema import OBJECT, schema_for
from .serializers import EventSerializer, SignupOfferSerializer, SignupRequestSerializer
from .throttles import EventsThrottle, SignupThrottle


class CsrfEnforcingAuthentication(SessionAuthentication):
    """Session authentication that checks the CSRF token for anonymous visitors too (DRF
    checks it only for logged-in users): a signup form must not be postable cross-site."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        self.enforce_csrf(request)
        user = getattr(request._request, "user", None)
        return (user, None) if user is not None and user.is_active else None


class PlainTextJSONParser(JSONParser):
    """JSON sent as ``text/plain``: what ``navigator.sendBeacon`` sends for a string body."""

    media_type = "text/plain"


class VisitorAPIView(APIView):
    """JSON in, JSON out (errors too), open to every visitor."""

    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    @staticmethod
    def visitor(request: Request) -> VisitorProfile:
        return request._request.visitor  # type: ignore[attr-defined,no-any-return]


class SignupView(VisitorAPIView):
    """``POST {"email", "consent"}`` → 201 with a new coupon, 200 with the one given before."""

    authentication_classes = [CsrfEnforcingAuthentication]
    throttle_classes = [SignupThrottle]
    schema = schema_for(
        request=SignupRequestSerializer,
        responses={200: SignupOfferSerializer, 201: SignupOfferSerializer, 400: OBJECT},
    )
    parser_classes = [JSONParser, FormParser]

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
            return Response({"detail": detail, "already_signed_up": True})
        body = SignupOfferSerializer(signup, context={"request": request._request}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class EventsView(VisitorAPIView):
    """``POST {"type", "exposure", "product"}`` from the page script → 204.

    Sent with ``navigator.sendBeacon``, which cannot add a CSRF header: instead the exposure
    must be one shown to the calling visitor. Nothing is stored for untracked visitors.
    """

    authentication_classes: list[Any] = []
    throttle_classes = [EventsThrottle]
    schema = schema_for(request=EventSerializer, responses={204: None, 400: OBJECT})
    parser_classes = [JSONParser, PlainTextJSONParser]

    def post(self, request: Request) -> Response:
        visitor = self.visitor(request)
        if not visitor.is_tracked:
            return Response(status=status.HTTP_204_NO_CONTENT)
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
