"""The OpenAPI 3 schema of the app's API (drf-spectacular), whatever the shop's DRF settings.

Each view names its schema class here, so a shop need not set DRF's DEFAULT_SCHEMA_CLASS.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

OBJECT = OpenApiTypes.OBJECT


class Schema(AutoSchema):
    """Request and responses given per view, for APIViews without a serializer_class."""

    request: Any = None
    responses: dict[int, Any] = {200: OpenApiTypes.OBJECT}
    parameters: list[OpenApiParameter] = []

    def get_request_serializer(self) -> Any:
        return self.request

    def get_response_serializers(self) -> Any:
        return self.responses

    def get_override_parameters(self) -> list[OpenApiParameter]:
        return list(self.parameters)


def schema_for(**attributes: Any) -> Schema:
    """A schema instance with ``request``, ``responses`` and ``parameters`` set."""
    return type("ViewSchema", (Schema,), attributes)()


def report_parameters() -> list[OpenApiParameter]:
    return [
        OpenApiParameter("start", OpenApiTypes.DATE, description="First day, shop time."),
        OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, inclusive."),
        OpenApiParameter("goal", OpenApiTypes.STR, description="purchase, any, or a goal name."),
    ]


class PersonalizationSchemaView(SpectacularAPIView):
    """``GET api/schema/``: the schema of this app's endpoints only, for anyone."""

    schema = None  # the schema does not describe itself
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    custom_settings = {
        "TITLE": "django-personalization API",
        "DESCRIPTION": "Signup for a coupon, the click beacon, the visitor's own data, the report.",
        "VERSION": "1",
    }

    def _get_schema_response(self, request: Any) -> Any:
        from .. import urls

        self.urlconf = urls
        return super()._get_schema_response(request)
