"""The report's parameters: control characters and unknown goals get a 400 that says what is
wrong, on the API and on the admin page, in every format, and never a 500 (a NUL byte reaching
PostgreSQL would be one)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.http import QueryDict
from django.test import Client
from django.urls import reverse

from personalization.models import Conversion, Exposure
from personalization.reports.parameters import ParameterError, check_characters, check_goal
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

API = "/personalization/api/report/"
PERIOD = {"start": "2026-11-01", "end": "2026-11-30"}
BAD_TEXTS = ["a\x00b", "\x00", "2026-11-01\x00", "x\x1by", "\x7f", "tab\there", "c1\x85"]


@pytest.fixture
def staff() -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    user = get_user_model().objects.create_user("staff", "s@example.com", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_report"))
    client.force_login(user)
    return client


@pytest.fixture
def recorded_goal():
    at = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
    Exposure.objects.create(
        visitor_id="v", placement="home-hero", kind="banner", content="banner:1", created_at=at
    )
    Conversion.objects.create(
        visitor_id="v", kind=Conversion.OTHER, goal="wishlist", created_at=at + dt.timedelta(1)
    )


def admin_url() -> str:
    return reverse("admin:personalization_report")


# The checks on their own ------------------------------------------------------------------
@pytest.mark.parametrize("text", BAD_TEXTS)
def test_control_characters_are_refused_in_names_and_values(text):
    with pytest.raises(ParameterError, match="control character"):
        check_characters({"goal": text})
    with pytest.raises(ParameterError, match="control character"):
        check_characters({text: "purchase"})
    query = QueryDict(mutable=True)
    query.setlist("goal", ["purchase", text])  # the second of a repeated parameter too
    with pytest.raises(ParameterError):
        check_characters(query)


def test_ordinary_text_passes():
    check_characters({"start": "2026-11-01", "goal": "Anmeldung für den Newsletter ✓"})


def test_known_goals(recorded_goal, django_assert_num_queries):
    with django_assert_num_queries(0):
        for goal in ("purchase", "any", "newsletter_signup", "add_to_cart"):
            check_goal(goal)
    with django_assert_num_queries(1):
        check_goal("wishlist")  # recorded
    with pytest.raises(ParameterError, match="Unknown goal 'wish'"):
        check_goal("wish")


# The API -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["start", "end", "goal", "format", "anything"])
@pytest.mark.parametrize("text", BAD_TEXTS)
def test_the_api_answers_control_characters_with_a_400(staff, name, text):
    response = staff.get(API, {**PERIOD, name: text})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    detail = response.json()["detail"]
    assert f"'{name}'" in detail or "date" in detail  # a date says which one is wrong


def test_the_api_answers_a_control_character_in_a_name_with_a_400(staff):
    response = staff.get(API + "?goal%00=purchase")
    assert response.status_code == 400
    assert "control character" in response.json()["detail"]


def test_the_api_answers_an_unknown_goal_with_a_400(staff, recorded_goal):
    response = staff.get(API, {**PERIOD, "goal": "a-goal-nobody-reached"})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Unknown goal 'a-goal-nobody-reached': use purchase, any, or the name of a "
        "goal recorded with track.goal()."
    }
    for goal in ("wishlist", "newsletter_signup", "any", ""):
        assert staff.get(API, {**PERIOD, "goal": goal}).status_code == 200, goal


def test_the_api_answers_in_json_only(staff):
    assert staff.get(API, {**PERIOD, "format": "json"}).status_code == 200
    response = staff.get(API, {**PERIOD, "format": "csv"})
    assert response.status_code == 400
    assert "json" in response.json()["detail"]


def test_the_api_checks_who_asks_before_what_they_ask():
    client = Client(HTTP_USER_AGENT=BROWSER_UA)
    client.force_login(get_user_model().objects.create_user("customer", "c@example.com", "pw"))
    assert client.get(API, {"goal": "a\x00b"}).status_code == 403


# The admin page ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["start", "end", "goal", "format", "anything"])
@pytest.mark.parametrize("text", ["a\x00b", "\x1b[31m"])
def test_the_page_answers_control_characters_with_a_400_page(staff, name, text):
    response = staff.get(admin_url(), {**PERIOD, name: text})
    assert response.status_code == 400
    body = response.content.decode()
    assert response["Content-Type"].startswith("text/html")
    assert "errornote" in body
    assert "\x00" not in body and "\x1b" not in body


@pytest.mark.parametrize(
    ("output", "content_type"), [("json", "application/json"), ("csv", "text/plain")]
)
def test_the_page_answers_in_the_format_asked_for(staff, output, content_type):
    response = staff.get(admin_url(), {**PERIOD, "goal": "a\x00b", "format": output})
    assert response.status_code == 400
    assert response["Content-Type"].startswith(content_type)
    assert "control character" in response.content.decode()
    unknown = staff.get(admin_url(), {**PERIOD, "goal": "nobody-reached", "format": output})
    assert unknown.status_code == 400
    assert "Unknown goal 'nobody-reached'" in unknown.content.decode()


def test_the_page_answers_an_unknown_goal_with_a_400_page(staff, recorded_goal):
    response = staff.get(admin_url(), {**PERIOD, "goal": "nobody-reached"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Unknown goal &#x27;nobody-reached&#x27;" in body
    assert f'href="{admin_url()}"' in body
    assert staff.get(admin_url(), {**PERIOD, "goal": "wishlist"}).status_code == 200


def test_the_page_sends_anyone_else_to_the_login():
    response = Client().get(admin_url(), {"goal": "a\x00b"})
    assert response.status_code == 302
