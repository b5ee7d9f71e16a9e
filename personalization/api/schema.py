"""The OpenAPI 3 schema of the app's API (drf-spectacular), whatever the shop's DRF settings.

Each view names its schema class here, so a shop need not set DRF's DEFAULT_SCHEMA_CLASS.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from .base import CheckedInput
from .parsers import MAX_BODY_BYTES, MAX_DEPTH

OBJECT = OpenApiTypes.OBJECT
# What each error answer of the API means; the body is JSON: ``{"detail": "..."}``, or for a
# field that is wrong ``{"<field>": ["..."]}``.
ERRORS = {
    400: f"Bad input: a field, the body (malformed, over {MAX_BODY_BYTES} bytes or nested "
    f"deeper than {MAX_DEPTH}), or a control character in the query or the body. The answer "
    "says what is wrong.",
    401: "Not logged in.",
    403: "Not allowed: no CSRF token, a cross-site post, or not staff.",
    409: "The email address was signed up by another visitor; no coupon is shown.",
    415: "A body of another type than the endpoint reads.",
    429: "Too many requests from this client; the Retry-After header says when to retry.",
    503: "The report cannot be given now; Retry-After says when to ask again.",
}


class Schema(AutoSchema):
    """Request and responses given per view, for APIViews without a serializer_class."""

    request: Any = None
    responses: dict[int, Any] = {200: OpenApiTypes.OBJECT}
    parameters: list[OpenApiParameter] = []

    def get_request_serializer(self) -> Any:
        return self.request

    def get_response_serializers(self) -> Any:
        return self.responses

    def get_override_parameters(self) -> list[Any]:
        return list(self.parameters)


class CsrfTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The signup endpoint's check: Django's CSRF token, for anonymous visitors too."""

    target_class = "personalization.api.offers.CsrfEnforcingAuthentication"
    name = "csrfToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRFToken",
            "description": "The value of the csrftoken cookie (Django's CSRF protection).",
        }


def schema_for(**attributes: Any) -> Schema:
    """A schema instance with ``request``, ``responses`` and ``parameters`` set."""
    schema: Schema = type("ViewSchema", (Schema,), attributes)()
    return schema


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers ``codes`` of an endpoint, each with its meaning."""
    return {code: OpenApiResponse(OBJECT, description=ERRORS[code]) for code in codes}


def report_parameters() -> list[OpenApiParameter]:
    return [
        OpenApiParameter("start", OpenApiTypes.DATE, description="First day, shop time."),
        OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, inclusive."),
        OpenApiParameter("goal", OpenApiTypes.STR, description="purchase, any, or a goal name."),
    ]


class PersonalizationSchemaView(CheckedInput, SpectacularAPIView):
    """``GET api/schema/``: the schema of this app's endpoints only, for anyone, with their
    paths as the shop mounts them (``/personalization/api/signup/``)."""

    schema = None  # the schema does not describe itself
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    custom_settings = {
        "TITLE": "django-personalization API",
        "DESCRIPTION": "Signup for a coupon, the click beacon, the visitor's own data, the report.",
        "VERSION": "1",
    }

    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        from .. import urls

        self.urlconf = urls  # type: ignore[assignment]  # a module works as well as its path
        self.custom_settings = {
            **self.custom_settings,
            "SCHEMA_PATH_PREFIX_INSERT": mount_prefix(request.path_info),
        }
        return super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]


def mount_prefix(schema_path: str) -> str:
    """Where the shop includes the app's URLs, read from the path of the schema itself:
    ``/personalization/api/schema/`` → ``/personalization``."""
    own_route = "api/schema/"
    prefix = schema_path[: -len(own_route)] if schema_path.endswith(own_route) else "/"
    return prefix.rstrip("/")
