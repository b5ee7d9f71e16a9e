"""GET api/schema/: an OpenAPI 3 description of the app's endpoints, for anyone, with the paths
and answers they really have."""

import json

import pytest
from django.test import Client
from django.urls import include, path

from tests.conftest import BROWSER_UA

# A shop that mounts the app elsewhere (used as ROOT_URLCONF by one test below).
urlpatterns = [path("shop/p13n/", include("personalization.urls"))]

ENDPOINTS = ("signup", "events", "me", "report", "recommendations")


def schema_at(url: str) -> dict:
    response = Client().get(url, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_describes_every_endpoint_for_anyone():
    schema = schema_at("/personalization/api/schema/")
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert {f"/personalization/api/{name}/" for name in ENDPOINTS} <= set(paths)
    assert not [p for p in paths if not p.startswith("/personalization/api/")]
    offer = schema["components"]["schemas"]["SignupOffer"]["properties"]
    assert {"coupon_code", "discount", "expires_at"} <= set(offer)
    assert "email" in schema["components"]["schemas"]["SignupRequest"]["properties"]
    report_params = {p["name"] for p in paths["/personalization/api/report/"]["get"]["parameters"]}
    assert {"start", "end", "goal"} <= report_params
    recommendations = paths["/personalization/api/recommendations/"]["get"]
    assert {p["name"] for p in recommendations["parameters"]} >= {"placement", "product", "limit"}


@pytest.mark.parametrize(
    ("path", "method", "answers"),
    [
        ("signup", "post", {"200", "201", "400", "403", "409", "415", "429"}),
        ("events", "post", {"204", "400", "403", "415", "429"}),
        ("recommendations", "get", {"200", "400"}),
        ("me", "get", {"200", "400"}),
        ("me", "delete", {"204"}),
        ("report", "get", {"200", "400", "401", "403", "503"}),
    ],
)
def test_the_schema_lists_the_answers_each_endpoint_gives(path, method, answers):
    schema = schema_at("/personalization/api/schema/")
    responses = schema["paths"][f"/personalization/api/{path}/"][method]["responses"]
    assert answers <= set(responses)
    for code in answers - {"200", "201", "204"}:
        assert responses[code]["description"], code


def test_the_signup_names_its_csrf_token():
    schema = schema_at("/personalization/api/schema/")
    scheme = schema["components"]["securitySchemes"]["csrfToken"]
    assert (scheme["in"], scheme["name"]) == ("header", "X-CSRFToken")


def test_the_paths_follow_where_the_shop_mounts_the_app(settings):
    settings.ROOT_URLCONF = __name__
    schema = schema_at("/shop/p13n/api/schema/")
    assert {f"/shop/p13n/api/{name}/" for name in ENDPOINTS} <= set(schema["paths"])
    assert not [p for p in schema["paths"] if p.startswith("/personalization/")]


def test_every_answer_the_schema_names_for_the_signup_really_happens(db, browser, settings):
    """Not a list copied from the code: each of these codes is produced here."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SIGNUP_THROTTLE_RATE": "5/hour"}
    url = "/personalization/api/signup/"
    stranger = Client(HTTP_USER_AGENT=BROWSER_UA)
    seen = [
        browser.post(url, {"email": "ada@example.com"}, "application/json").status_code,
        browser.post(url, {"email": "ada@example.com"}, "application/json").status_code,
        stranger.post(url, {"email": "ada@example.com"}, "application/json").status_code,
        browser.post(url, "x", "text/plain").status_code,
        browser.post(url, {"email": "x"}, "application/json").status_code,
        browser.post(url, {"email": "b@example.com"}, "application/json").status_code,
        Client(enforce_csrf_checks=True).post(url, {}, "application/json").status_code,
    ]
    assert seen == [201, 200, 409, 415, 400, 429, 403]
    responses = schema_at("/personalization/api/schema/")["paths"][url]["post"]["responses"]
    assert {str(code) for code in seen} <= set(responses)
