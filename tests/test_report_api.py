"""GET api/report/: the conversion report as JSON, for staff only; bad periods get a 400."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse

from personalization.models import Conversion, Exposure
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

REPORT = "/personalization/api/report/"
CONTRACT_KEYS = {"start", "end", "personalized", "control", "lift", "by_placement", "daily"}
GROUP_KEYS = {
    "visitors",
    "converted_visitors",
    "conversion_rate",
    "orders",
    "revenue",
    "average_order_value",
    "revenue_per_visitor",
    "revenue_per_visitor_ci95",
    "average_order_value_ci95",
}


def logged_in(**flags) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    name = "staff" if flags else "customer"
    user = get_user_model().objects.create_user(name, f"{name}@example.com", "pw", **flags)
    client.force_login(user)
    return client


@pytest.fixture
def staff() -> Client:
    return logged_in(is_staff=True, is_superuser=True)  # superusers have view_report


@pytest.fixture
def some_data():
    shown_at = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
    Exposure.objects.bulk_create(
        [
            Exposure(
                visitor_id=vid,
                placement="home-hero",
                kind=Exposure.BANNER,
                content="default" if vid == "c" else "banner:1",
                is_control=vid == "c",
                created_at=shown_at,
            )
            for vid in ("a", "b", "c")
        ]
    )
    Conversion.objects.create(
        visitor_id="a",
        kind=Conversion.PURCHASE,
        goal="purchase",
        order_id="A-1",
        revenue=Decimal("42.50"),
        created_at=shown_at + dt.timedelta(hours=1),
    )
    Conversion.objects.create(
        visitor_id="b",
        kind=Conversion.LEAD,
        goal="newsletter_signup",
        created_at=shown_at + dt.timedelta(hours=1),
    )


def test_the_url_is_named():
    assert reverse("personalization:api-report") == REPORT


def test_staff_get_the_report(staff, some_data):
    response = staff.get(REPORT, {"start": "2026-11-01", "end": "2026-11-03"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) >= CONTRACT_KEYS
    assert set(body["personalized"]) == GROUP_KEYS == set(body["control"])
    assert (body["start"], body["end"], body["goal"]) == ("2026-11-01", "2026-11-03", "purchase")
    assert body["personalized"] == {
        "visitors": 2,
        "converted_visitors": 1,
        "conversion_rate": 50.0,
        "orders": 1,
        "revenue": "42.50",
        "average_order_value": "42.50",
        "revenue_per_visitor": "21.25",
        "revenue_per_visitor_ci95": ["0.00", "62.90"],
        "average_order_value_ci95": None,  # one order
    }
    assert body["control"]["visitors"] == 1
    assert set(body["lift"]) >= {"relative", "ci95", "p_value"}
    assert body["by_placement"][0]["placement"] == "home-hero"
    assert [day["date"] for day in body["daily"]] == ["2026-11-01", "2026-11-02", "2026-11-03"]


def test_a_superuser_who_is_not_staff_is_refused():
    # IsAdminUser asks for is_staff, as the admin site does.
    client = logged_in(is_superuser=True)
    assert client.get(REPORT).status_code == 403


def test_the_goal_can_be_chosen(staff, some_data):
    query = {"start": "2026-11-01", "end": "2026-11-03", "goal": "newsletter_signup"}
    body = staff.get(REPORT, query).json()
    assert body["goal"] == "newsletter_signup"
    assert body["personalized"]["converted_visitors"] == 1
    assert body["personalized"]["revenue"] == "0.00"
    blank = staff.get(REPORT, {**query, "goal": ""}).json()
    assert blank["goal"] == "purchase"


def test_a_goal_name_too_long_is_refused(staff):
    response = staff.get(REPORT, {"goal": "x" * 101})
    assert response.status_code == 400
    assert response.json() == {"detail": "A goal name has at most 100 characters."}


def test_without_dates_the_last_30_days(staff, clock):
    body = staff.get(REPORT).json()
    assert (body["start"], body["end"]) == ("2026-10-04", "2026-11-02")
    assert len(body["daily"]) == 30


def test_visitors_who_are_not_staff_are_refused():
    response = logged_in().get(REPORT)
    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to perform this action."}


def test_anonymous_visitors_are_refused():
    response = Client(HTTP_USER_AGENT=BROWSER_UA).get(REPORT)
    assert response.status_code in (401, 403)
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            {"start": "2026-11-30", "end": "2026-11-01"},
            "The start (2026-11-30) is after the end (2026-11-01).",
        ),
        (
            {"start": "1/11/2026", "end": "2026-11-30"},
            "The start date '1/11/2026' is not a date in the form YYYY-MM-DD.",
        ),
        (
            {"start": "2026-11-01", "end": "2026-11-31"},
            "The end date '2026-11-31' is not a date in the form YYYY-MM-DD.",
        ),
        (
            {"start": "2024-01-01", "end": "2026-11-30"},
            "The period covers 1065 days; at most 366 are allowed.",
        ),
    ],
)
def test_a_bad_period_is_a_400_that_says_why(staff, query, detail):
    response = staff.get(REPORT, query)
    assert response.status_code == 400
    assert response.json() == {"detail": detail}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
def test_a_report_that_takes_too_long_is_cancelled_with_a_503(settings):
    import uuid

    from django.utils import timezone

    now = timezone.now()
    Exposure.objects.bulk_create(
        Exposure(
            id=uuid.uuid4(), visitor_id=f"v{i % 5000}", placement="home-hero", kind="banner",
            content="banner:1", is_control=i % 10 == 0, created_at=now - dt.timedelta(hours=i % 48),
        )
        for i in range(40_000)
    )  # fmt: skip
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REPORT_TIMEOUT_SECONDS": 0.001}
    staff = get_user_model().objects.create_user(
        "boss", "b@example.com", "pw", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(staff)
    response = client.get("/personalization/api/report/")
    assert response.status_code == 503
    assert "shorter period" in response.json()["detail"]
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REPORT_TIMEOUT_SECONDS": 60}
    assert client.get("/personalization/api/report/").status_code == 200
