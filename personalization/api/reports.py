"""API view of the conversion report, for staff: GET api/report/?start=&end=&goal=."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Conversion
from ..reports.period import PeriodError, parse_period
from ..reports.queries import PURCHASE, ReportTimeout, build_report
from .schema import OBJECT, report_parameters, schema_for

MAX_GOAL_LENGTH = Conversion._meta.get_field("goal").max_length


class ReportView(APIView):
    """``GET ?start=YYYY-MM-DD&end=YYYY-MM-DD&goal=`` → the report as JSON; 400 for a period
    or goal that cannot be used. Staff only."""

    schema = schema_for(responses={200: OBJECT, 400: OBJECT}, parameters=report_parameters())

    permission_classes = [IsAdminUser]
    renderer_classes = [JSONRenderer]

    def get(self, request: Request) -> Response:
        params = request.query_params
        try:
            period = parse_period(params.get("start"), params.get("end"))
        except PeriodError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        goal = params.get("goal", "").strip() or PURCHASE
        if len(goal) > MAX_GOAL_LENGTH:
            detail = _("A goal name has at most %(max)d characters.") % {"max": MAX_GOAL_LENGTH}
            return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
        try:
            return Response(build_report(period, goal))
        except ReportTimeout:
            detail = _("This report takes too long to compute; choose a shorter period.")
            return Response({"detail": detail}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
