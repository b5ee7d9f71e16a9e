"""API views: the visitor's own data (see and forget)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from .. import coupons, signups
from ..models import ProductInteraction, Visitor
from ..profiling import storage
from ..profiling.visitor import VisitorProfile
from .base import BaseAPIView
from .schema import OBJECT, errors, schema_for
from .serializers import CouponSerializer, SignupRecordSerializer


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat()


class MeView(BaseAPIView):
    """``GET``: everything stored about the calling visitor. ``DELETE``: forget it all."""

    schema = schema_for(responses={200: OBJECT, 204: None, **errors(400)})

    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        visitor: VisitorProfile = request._request.visitor  # type: ignore[attr-defined]
        if not visitor.is_tracked:
            return Response({"tracked": False, "reason": _untracked_reason(visitor)})
        row = Visitor.objects.filter(pk=visitor.id).values().first()
        geo = visitor.geo
        body: dict[str, Any] = {
            "tracked": True,
            "id": visitor.id,
            "first_seen": _iso(visitor.first_seen),
            "visit_count": visitor.visit_count,
            "is_first_visit": visitor.is_first_visit,
            "referrer": visitor.referrer.as_dict(),
            "first_referrer": visitor.first_referrer.as_dict(),
            "location": geo.as_dict(),
            "recently_viewed": visitor.recently_viewed,
            "top_categories": visitor.top_categories,
            "in_control_group": visitor.in_control_group,
            "segments": sorted(visitor.segments),
            "linked_to_account": visitor.user_id is not None,
            "stored_record": _jsonable(row) if row else None,
            "signups": SignupRecordSerializer(signups.for_visitor(visitor.id), many=True).data,
            "coupons": CouponSerializer(coupons.for_visitor(visitor.id), many=True).data,
            "product_interactions": [
                {"kind": kind, "product": product, "at": at.isoformat()}
                for kind, product, at in ProductInteraction.objects.filter(
                    visitor_id=visitor.id
                ).values_list("kind", "product_id", "created_at")[:500]
            ],
        }
        return Response(body)

    def delete(self, request: Request) -> Response:
        visitor: VisitorProfile = request._request.visitor  # type: ignore[attr-defined]
        if visitor.is_tracked:
            signups.forget_visitor(visitor.id)
            storage.delete_visitor(visitor.id)
            visitor.forget()
        response = Response(status=status.HTTP_204_NO_CONTENT)
        storage.delete_visitor_cookie(response)
        return response


def _untracked_reason(visitor: VisitorProfile) -> str:
    if visitor.opted_out:
        return "opted-out"
    if visitor.is_bot:
        return "bot"
    return "unavailable"


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, dt.datetime) else value
        for key, value in row.items()
    }
