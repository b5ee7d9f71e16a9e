"""GET api/schema/: an OpenAPI 3 description of the app's endpoints, for anyone."""

import json

from django.test import Client


def test_the_schema_describes_every_endpoint_for_anyone():
    response = Client().get("/personalization/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert {"/api/signup/", "/api/events/", "/api/me/", "/api/report/"} <= set(schema["paths"])
    signup = schema["paths"]["/api/signup/"]["post"]
    assert {"200", "201", "400"} <= set(signup["responses"])
    offer = schema["components"]["schemas"]["SignupOffer"]["properties"]
    assert {"coupon_code", "discount", "expires_at"} <= set(offer)
    assert "email" in schema["components"]["schemas"]["SignupRequest"]["properties"]
    report_params = {p["name"] for p in schema["paths"]["/api/report/"]["get"]["parameters"]}
    assert {"start", "end", "goal"} <= report_params
    recommendations = schema["paths"]["/api/recommendations/"]["get"]
    assert {p["name"] for p in recommendations["parameters"]} >= {"placement", "product", "limit"}
    assert {"200", "400"} <= set(recommendations["responses"])
