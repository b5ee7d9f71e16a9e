"""The signup popup's targeting, exposures and markup (the browser test drives its script)."""

from __future__ import annotations

import logging
import time

import pytest
from django.http import HttpResponse
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import include, path

from personalization.popup import popup_context, scripts_context
from personalization.testutils import attach_visitor
from personalization.tracking import pending_exposures

pytestmark = pytest.mark.django_db

DAY = 86400


def _stub(request):  # pragma: no cover - only reversed, never called
    return HttpResponse(status=204)


_api = (
    [
        path("api/signup/", _stub, name="api-signup"),
        path("api/events/", _stub, name="api-events"),
    ],
    "personalization",
)
# This module is the URLconf of the tests below: the popup needs only the two API names.
urlpatterns = [path("personalization/", include(_api))]


@pytest.fixture
def urls(settings):
    settings.ROOT_URLCONF = __name__
    return settings


@pytest.fixture
def popup_settings(urls):
    def apply(**values):
        urls.PERSONALIZATION = {**urls.PERSONALIZATION, **values}

    return apply


def _request(**state):
    request = RequestFactory().get("/")
    state.setdefault("in_control_group", False)
    attach_visitor(request, **state)
    return request


def test_first_visit_sees_the_popup_with_one_exposure(popup_settings):
    popup_settings(
        SIGNUP_POPUP_DELAY_SECONDS=2.5,
        SIGNUP_POPUP_EXIT_INTENT=False,
        SIGNUP_DISCOUNT_PERCENT=12.5,
        SIGNUP_COUPON_DAYS=21,
    )
    request = _request()

    context = popup_context(request)

    [exposure] = pending_exposures(request)
    assert context == {
        "exposure_id": str(exposure.id),
        "delay_ms": 2500,
        "exit_intent": False,
        "signup_url": "/personalization/api/signup/",
        "discount": "12.5%",
        "coupon_days": 21,
    }
    assert (exposure.placement, exposure.kind, exposure.content) == (
        "signup-popup",
        "popup",
        "popup",
    )
    assert exposure.content_label == "Signup popup"
    assert exposure.is_control is False


def test_whole_percentages_have_no_decimals(popup_settings):
    popup_settings(SIGNUP_DISCOUNT_PERCENT=10)
    assert popup_context(_request())["discount"] == "10%"


def test_control_group_sees_nothing_but_is_counted(urls):
    request = _request(in_control_group=True)

    assert popup_context(request) is None
    [exposure] = pending_exposures(request)
    assert (exposure.placement, exposure.kind, exposure.content) == (
        "signup-popup",
        "popup",
        "default",
    )
    assert exposure.is_control is True


@pytest.mark.parametrize("state", [{"is_bot": True}, {"opted_out": True}])
def test_untracked_visitors_get_nothing(urls, state):
    request = _request(**state)
    assert popup_context(request) is None
    assert pending_exposures(request) == []


def test_no_visitor_no_popup(urls):
    assert popup_context(RequestFactory().get("/")) is None
    assert popup_context(None) is None


def test_returning_visitors_are_not_targeted_by_default(urls):
    request = _request(visit_count=2)
    assert popup_context(request) is None
    assert pending_exposures(request) == []


def test_a_segment_replaces_first_visits_as_the_target(popup_settings):
    popup_settings(SIGNUP_POPUP_SEGMENT="bargain-hunters")

    assert popup_context(_request(visit_count=4, segments={"bargain-hunters"})) is not None
    assert popup_context(_request(visit_count=1, segments={"campers"})) is None


def test_never_after_a_signup_but_still_counted(urls):
    request = _request()
    request.visitor._data.signed_up_at = time.time() - 60 * DAY
    assert popup_context(request) is None
    [exposure] = pending_exposures(request)
    assert (exposure.content, exposure.is_control) == ("default", False)


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"signed_up_at": time.time() - 60 * DAY},
        {"popup_dismissed_at": time.time() - DAY},
        {"popup_shown_visit": 3},
    ],
    ids=["offered", "signed-up", "dismissed", "shown-this-visit"],
)
def test_both_groups_are_counted_under_the_same_condition(popup_settings, state):
    """Whether the popup is then offered or not, a targeted visitor of either group gets one
    exposure per page that reaches it, in their own group; markup only where it shows."""
    popup_settings(SIGNUP_POPUP_SEGMENT="all")
    pages = {}
    for in_control_group in (False, True):
        request = _request(visit_count=3, segments={"all"}, in_control_group=in_control_group)
        for name, value in state.items():
            setattr(request.visitor._data, name, value)
        html = Template("{% load personalization %}{% signup_popup %}").render(
            Context({"request": request})
        )
        exposures = pending_exposures(request)
        assert [exposure.is_control for exposure in exposures] == [in_control_group]
        assert ("data-personalization-exposure" in html) is (not in_control_group and not state)
        if "data-personalization-exposure" in html:
            assert f'data-personalization-exposure="{exposures[0].id}"' in html
        pages[in_control_group] = len(exposures)
    assert pages[False] == pages[True] == 1


def test_visitors_it_does_not_target_are_not_counted_in_either_group(urls):
    for in_control_group in (False, True):
        request = _request(visit_count=2, in_control_group=in_control_group)
        assert popup_context(request) is None
        assert pending_exposures(request) == []


@pytest.mark.parametrize(("days_ago", "shown"), [(1, False), (13.9, False), (14.1, True)])
def test_a_dismissal_silences_it_for_dismiss_days(popup_settings, days_ago, shown):
    popup_settings(SIGNUP_POPUP_DISMISS_DAYS=14, SIGNUP_POPUP_SEGMENT="all")
    request = _request(visit_count=3, segments={"all"})
    request.visitor._data.popup_dismissed_at = time.time() - days_ago * DAY
    assert (popup_context(request) is not None) is shown


def test_at_most_once_per_visit(popup_settings):
    popup_settings(SIGNUP_POPUP_SEGMENT="all")
    request = _request(visit_count=3, segments={"all"})
    request.visitor._data.popup_shown_visit = 3
    assert popup_context(request) is None

    request = _request(visit_count=4, segments={"all"})
    request.visitor._data.popup_shown_visit = 3
    assert popup_context(request) is not None


def test_scripts_context(urls):
    assert scripts_context(_request()) == {
        "events_url": "/personalization/api/events/",
        "signup_url": "/personalization/api/signup/",
        "fragments_url": "",  # pages are not cached whole (PAGE_CACHE)
    }


def test_unrouted_api_turns_the_popup_off_with_a_warning(settings, caplog):
    class WithoutTheApi:
        urlpatterns: list = []

    settings.ROOT_URLCONF = WithoutTheApi
    request = _request()
    with caplog.at_level(logging.WARNING, logger="personalization"):
        assert popup_context(request) is None
        assert scripts_context(request) == {"events_url": "", "signup_url": "", "fragments_url": ""}
        html = Template(
            "{% load personalization %}[{% signup_popup %}]{% personalization_scripts %}"
        ).render(Context({"request": request}))

    assert pending_exposures(request) == []
    assert html.startswith("[]")
    assert 'data-events-url=""' in html
    assert "personalization:api-signup" in caplog.text


def test_the_tags_render_an_accessible_dialog_and_the_script(urls):
    request = _request()
    html = Template(
        "{% load personalization %}{% signup_popup %}{% personalization_scripts %}"
    ).render(Context({"request": request}))

    [exposure] = pending_exposures(request)
    assert f'data-personalization-exposure="{exposure.id}"' in html
    for needle in (
        'role="dialog"',
        'aria-modal="true"',
        'aria-labelledby="pzn-popup-title"',
        'aria-describedby="pzn-popup-description"',
        'aria-live="polite"',
        'type="email"',
        'autocomplete="email"',
        "required",
        'name="csrfmiddlewaretoken"',
        'data-pzn-signup-url="/personalization/api/signup/"',
        'data-pzn-delay-ms="8000"',
        'data-pzn-exit-intent="true"',
        "We'll email you offers. Unsubscribe any time.",
        'aria-label="Close"',
        "/static/personalization/personalization.js",
        "/static/personalization/personalization.css",
        'data-events-url="/personalization/api/events/"',
    ):
        assert needle in html, needle
    assert " on" + "click=" not in html.lower()
    assert "<script>" not in html  # no inline script: CSP-friendly
