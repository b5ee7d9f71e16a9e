"""``GET api/recommendations/?placement=&product=&limit=``: recommendations as JSON, for
headless shops. The same serving code as ``{% recommendations %}``, with one exposure logged."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from ..products import cards
from ..recommendations.serving import LimitError, parse_limit, recommend
from .base import VisitorAPIView
from .schema import OBJECT, errors, schema_for

PLACEMENT = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")
ITEM_FIELDS = ("id", "name", "url", "price", "image_url")


class RecommendationsView(VisitorAPIView):
    """Recommended products for the calling visitor in a placement."""

    schema = schema_for(
        responses={200: OBJECT, **errors(400)},
        parameters=[
            OpenApiParameter("placement", OpenApiTypes.STR, required=True),
            OpenApiParameter("product", OpenApiTypes.STR, description="the page's product"),
            OpenApiParameter("limit", OpenApiTypes.INT, description="1 to the maximum, 4"),
        ],
    )

    def get(self, request: Request) -> Response:
        placement = (request.query_params.get("placement") or "").strip()
        if not PLACEMENT.match(placement):
            return _bad("placement", "A placement slug of 1 to 100 letters, digits, - or _.")
        try:
            limit = parse_limit(request.query_params.get("limit"))
        except LimitError as exc:
            return _bad("limit", str(exc))
        product_key = (request.query_params.get("product") or "").strip() or None
        if product_key is not None and (len(product_key) > 64 or not cards([product_key])):
            return _bad("product", "No product with this id.")
        result = recommend(
            request._request, placement, product_key=product_key, limit=limit, as_cards=True
        )
        return Response(
            {
                "placement": placement,
                "strategy": result.strategy,
                "title": result.title,
                "exposure": result.exposure_id,
                "items": [_item(card) for card in result.products],
            }
        )


def _item(card: dict[str, Any]) -> dict[str, Any]:
    """A card's public fields, and its price's currency where the adapter knows it."""
    item = {field: card[field] for field in ITEM_FIELDS}
    if card.get("currency"):
        item["currency"] = card["currency"]
    return item


def _bad(field: str, message: str) -> Response:
    return Response({field: [message]}, status=status.HTTP_400_BAD_REQUEST)
