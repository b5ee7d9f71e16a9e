"""The base of the API's views: bodies read by the limited parsers, and no control character
in the query string (PostgreSQL refuses a NUL byte). Both are a 400 with a message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.permissions import SAFE_METHODS, AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from ..profiling.visitor import VisitorProfile
from ..reports.parameters import ParameterError, check_characters
from .parsers import LimitedJSONParser, check_size


class CheckedInput:
    """For an APIView: checks the query and the announced body size once the caller may call
    the view (after authentication, permissions and throttles), before it reads anything."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        try:
            check_characters(request.query_params)
        except ParameterError as exc:
            raise ParseError(str(exc)) from exc
        check_size(request)


class Negotiation(DefaultContentNegotiation):
    """DRF's content negotiation, with the usual requests answered without parsing their
    Accept header: without a format override, no header, ``*/*`` or the first renderer's own
    type get the first renderer, as DRF would choose it; anything else is DRF's to decide."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        choices = list(renderers)
        accept = request.META.get("HTTP_ACCEPT")
        if (
            choices
            and not format_suffix
            and accept in (None, "*/*", choices[0].media_type)
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return choices[0], str(choices[0].media_type)
        chosen: tuple[BaseRenderer, str] = super().select_renderer(request, choices, format_suffix)
        return chosen


class BaseAPIView(CheckedInput, APIView):
    """An API view whose bodies are read by the limited parsers and whose input is checked."""

    parser_classes = [LimitedJSONParser]
    content_negotiation_class: type[BaseContentNegotiation] = Negotiation


class VisitorAPIView(BaseAPIView):
    """JSON in, JSON out (errors too), open to every visitor."""

    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    def perform_authentication(self, request: Request) -> None:
        """A read authenticates only when something asks for ``request.user`` (a throttle,
        say): these views answer the visitor, not the account, and a product page calls
        them on every view. A write authenticates first, as DRF does (with the session,
        that is what checks its CSRF token)."""
        if request.method not in SAFE_METHODS:
            super().perform_authentication(request)

    @staticmethod
    def visitor(request: Request) -> VisitorProfile:
        return request._request.visitor  # type: ignore[attr-defined,no-any-return]
