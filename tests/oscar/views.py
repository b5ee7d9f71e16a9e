"""A page of the sandbox shop that renders the recommendations tag alone and says in a header
how many SQL queries that rendering took (the middleware's writes come after it)."""

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.test.utils import CaptureQueriesContext

TEMPLATE = '{% load personalization %}{% recommendations "home" limit=4 %}'


def measured_recommendations(request: HttpRequest) -> HttpResponse:
    template = engines["django"].from_string(TEMPLATE)
    with CaptureQueriesContext(connection) as queries:
        html = template.render({}, request)
    response = HttpResponse(html)
    response["X-Recommendation-Queries"] = str(len(queries))
    response["X-Recommendation-SQL"] = " | ".join(q["sql"] for q in queries).replace("\n", " ")
    return response
