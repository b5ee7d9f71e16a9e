"""``GET api/recommendations/?placement=&product=&limit=``: recommendations as JSON, for
headless shops. The same serving code as ``{% recommendations %}``, with one exposure logged."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from ..products import get_adapter
from ..recommendations.serving import LimitError, parse_limit, recommend
from .offers import VisitorAPIView
from .schema import OBJECT, schema_for

PLACEMENT = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")


class RecommendationsView(VisitorAPIView):
    """Recommended products for the calling visitor in a placement."""

    schema = schema_for(
        responses={200: OBJECT, 400: OBJECT},
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
        product = None
        product_key = (request.query_params.get("product") or "").strip()
        adapter = get_adapter()
        if product_key:
            product = _product(adapter, product_key)
            if product is None:
                return _bad("product", "No product with this id.")
        result = recommend(request._request, placement, product=product, limit=limit)
        return Response(
            {
                "placement": placement,
                "strategy": result.strategy,
                "title": result.title,
                "exposure": result.exposure_id,
                "items": [_item(adapter, item) for item in result.products],
            }
        )


def _bad(field: str, message: str) -> Response:
    return Response({field: [message]}, status=status.HTTP_400_BAD_REQUEST)


def _product(adapter: Any, key: str) -> Any:
    if len(key) > 64:
        return None
    try:
        return adapter.get_queryset().filter(pk=key).first()
    except (ValueError, TypeError, ValidationError):  # not a value of the primary key's type
        return None


def _item(adapter: Any, product: Any) -> dict[str, Any]:
    price = adapter.price(product)
    return {
        "id": str(adapter.pk(product)),
        "name": adapter.name(product),
        "url": adapter.url(product),
        "price": str(price) if price is not None else None,
        "image_url": adapter.image_url(product),
    }
