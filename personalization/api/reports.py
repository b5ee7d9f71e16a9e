"""API view of the conversion report, for staff with ``personalization.view_report``:
GET api/report/?start=&end=&goal=."""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import BasePermission, IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import Conversion
from ..reports.parameters import ParameterError, check_goal
from ..reports.period import PeriodError, parse_period
from ..reports.queries import PURCHASE, ReportPreparing, ReportTimeout, build_report
from ..reports.views import can_view_report, failed_message, recoverable
from .base import BaseAPIView
from .schema import OBJECT, errors, report_parameters, schema_for

logger = logging.getLogger(__name__)

MAX_GOAL_LENGTH = int(Conversion._meta.get_field("goal").max_length or 0)
FORMATS = ("", "json")


class CanViewReport(BasePermission):
    """The permission the admin's report page asks for: ``personalization.view_report``."""

    message = gettext_lazy(
        "Reading the conversion report takes the permission personalization.view_report."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        return can_view_report(request.user)


class JSONOnly(DefaultContentNegotiation):
    """Always JSON: a ``format`` parameter is checked by the view (a 400 with a message),
    not turned into a 404 by DRF's format override."""

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        renderer = renderers[0]
        return renderer, renderer.media_type


class ReportView(BaseAPIView):
    """``GET ?start=YYYY-MM-DD&end=YYYY-MM-DD&goal=`` → the report as JSON; 400 for a period
    or goal that cannot be used, or any parameter with a control character; 503 when the
    report cannot be computed now. Staff with ``personalization.view_report`` only."""

    schema = schema_for(
        responses={200: OBJECT, **errors(400, 401, 403, 503)}, parameters=report_parameters()
    )

    permission_classes = [IsAdminUser, CanViewReport]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnly

    def get(self, request: Request) -> Response:
        params = request.query_params
        try:  # control characters: refused by BaseAPIView
            output = params.get("format", "")
            if output not in FORMATS:
                raise ParameterError(
                    _("Unknown format %(format)r; this endpoint answers in json.")
                    % {"format": output[:20]}
                )
            period = parse_period(params.get("start"), params.get("end"))
            goal = params.get("goal", "").strip() or PURCHASE
            if len(goal) > MAX_GOAL_LENGTH:
                raise ParameterError(
                    _("A goal name has at most %(max)d characters.") % {"max": MAX_GOAL_LENGTH}
                )
            check_goal(goal)
        except (ParameterError, PeriodError) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        try:
            with recoverable():
                return Response(build_report(period, goal))
        except ReportTimeout:
            detail = _("This report takes too long to compute; choose a shorter period.")
            return Response({"detail": detail}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        except ReportPreparing as preparing:
            return Response(
                {"detail": preparing.message(), "preparing": True},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(preparing.retry_after)},
            )
        except Exception:
            logger.exception("personalization: the report for %s could not be computed", period)
            return Response(
                {"detail": failed_message()}, status=status.HTTP_503_SERVICE_UNAVAILABLE
            )
