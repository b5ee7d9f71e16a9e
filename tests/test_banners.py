"""{% personalized_banner %}: the right banner per segment, defaults for the control group,
one exposure per rendering written in one query, sanitized content, never a 500."""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid

import pytest
from django.core.cache import caches
from django.test import Client
from django.utils import timezone

from personalization.models import Banner, Exposure, Placement, Segment, SegmentRule
from personalization.targeting import bandit, definitions
from personalization.targeting.definitions import BannerContent
from tests.conftest import GOOGLEBOT_UA

pytestmark = pytest.mark.django_db

EXPOSURE_RE = re.compile(r'data-personalization-exposure="([0-9a-f-]{36})"')


@pytest.fixture(autouse=True)
def fresh_definitions(settings):
    # Nobody is held out unless a test says so: a random id would land in it 1 time in 10.
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 0}
    definitions.forget_local()
    bandit.forget_local()
    yield
    definitions.forget_local()
    bandit.forget_local()


def make_segment(slug: str, kind: str, value: str = "") -> Segment:
    segment = Segment.objects.create(name=slug, slug=slug)
    SegmentRule.objects.create(segment=segment, kind=kind, value=value)
    return segment


@pytest.fixture
def hero():
    placement = Placement.objects.create(
        slug="home-hero", name="Home hero", default_title="Welcome to the shop"
    )
    Placement.objects.create(slug="sidebar", name="Sidebar", default_title="Sidebar default")
    first = make_segment("first-timers", "first_visit")
    returning = make_segment("returning", "returning")
    welcome = Banner.objects.create(placement=placement, name="Welcome", title="Hello, newcomer")
    welcome.segments.add(first)
    back = Banner.objects.create(placement=placement, name="Back", title="Welcome back")
    back.segments.add(returning)
    return placement


def page(client: Client):
    response = client.get("/banner-page/")
    assert response.status_code == 200
    return response, response.content.decode()


def test_first_and_returning_visitors_see_their_banners(hero, browser, clock):
    _, html = page(browser)
    assert "Hello, newcomer" in html and "Welcome back" not in html
    clock.shift(31 * 60)
    _, html = page(browser)
    assert "Welcome back" in html and "Hello, newcomer" not in html


def test_each_rendering_logs_one_exposure_matching_the_markup(hero, browser):
    browser.get("/")  # the visitor cookie comes back from here on
    response, html = page(browser)
    ids = EXPOSURE_RE.findall(html)
    assert len(ids) == 2  # hero and sidebar
    rows = {str(e.id): e for e in Exposure.objects.all()}
    assert set(rows) == set(ids)
    hero_row = next(e for e in rows.values() if e.placement == "home-hero")
    banner = Banner.objects.get(name="Welcome")
    assert (hero_row.kind, hero_row.content, hero_row.segment) == (
        "banner",
        f"banner:{banner.pk}",
        "first-timers",
    )
    assert hero_row.is_control is False
    assert hero_row.visitor_id == response.wsgi_request.visitor.id
    assert "Cookie" in response["Vary"]


def test_a_page_writes_its_exposures_in_one_query(hero, browser, clock, django_assert_num_queries):
    page(browser)
    clock.shift(20)
    page(browser)  # the visitor's row is written on the second request
    clock.shift(20)
    with django_assert_num_queries(1):
        page(browser)
    assert Exposure.objects.count() == 6


def test_the_control_group_sees_the_default_and_is_logged_as_control(hero, browser, settings):
    browser.get("/")  # the visitor cookie comes back from here on
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 100}
    _, html = page(browser)
    assert "Welcome to the shop" in html and "Hello, newcomer" not in html
    row = Exposure.objects.get(placement="home-hero")
    assert (row.content, row.is_control) == ("default", True)


def test_no_fitting_banner_shows_the_default(hero, browser):
    browser.get("/")  # the visitor cookie comes back from here on
    Banner.objects.all().delete()
    _, html = page(browser)
    assert "Welcome to the shop" in html
    row = Exposure.objects.get(placement="home-hero")
    assert (row.content, row.is_control) == ("default", False)


def test_priority_decides_between_fitting_banners(hero, browser):
    everyone = Banner.objects.create(
        placement=hero, name="Sale", title="Big sale for all", priority=10
    )
    _, html = page(browser)
    assert "Big sale for all" in html
    everyone.priority = -1
    everyone.save()
    _, html = page(browser)
    assert "Hello, newcomer" in html


def test_schedules_are_respected(hero, browser):
    now = timezone.now()
    Banner.objects.filter(name="Welcome").update(ends_at=now - dt.timedelta(minutes=1))
    future = Banner.objects.create(
        placement=hero, name="Later", title="Not yet", priority=99,
        starts_at=now + dt.timedelta(days=1),
    )  # fmt: skip
    definitions.invalidate()
    _, html = page(browser)
    assert "Hello, newcomer" not in html and future.title not in html
    assert "Welcome to the shop" in html


def test_bots_see_the_default_and_nothing_is_logged(hero):
    _, html = page(Client(HTTP_USER_AGENT=GOOGLEBOT_UA))
    assert "Welcome to the shop" in html
    assert "data-personalization-exposure" not in html
    assert not Exposure.objects.exists()


def test_a_placement_template_can_be_overridden(hero, browser):
    _, html = page(browser)
    assert '<aside class="custom-sidebar"' in html


def test_a_placement_used_before_staff_create_it_renders_nothing_and_is_created_once(
    browser, caplog
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, html = page(browser)
    assert "<section" not in html
    assert "placement 'home-hero' created; edit it in the admin" in caplog.text
    created = Placement.objects.get(slug="home-hero")
    assert (created.name, created.default_title, created.is_active) == ("Home hero", "", True)
    assert Placement.objects.filter(slug="sidebar").exists()
    # Staff fill it in; the page shows it, and warm pages create nothing again.
    created.default_title = "Winter sale"
    created.save()
    _, html = page(browser)
    assert "Winter sale" in html
    assert Placement.objects.count() == 2
    with CaptureQueriesContext(connection) as captured:
        page(browser)
    statements = [query["sql"] for query in captured.captured_queries]
    assert [sql for sql in statements if "SAVEPOINT" not in sql] == [
        next(sql for sql in statements if sql.startswith('INSERT INTO "personalization_exposure"'))
    ]  # the exposures only


def test_a_broken_cache_never_breaks_the_page(hero, browser, unreachable_cache):
    response = browser.get("/banner-page/")
    assert response.status_code == 200


def test_banner_html_is_sanitized(hero, browser):
    banner = Banner.objects.get(name="Welcome")
    banner.body = (
        '<p onclick="steal()">Hi<script>alert(1)</script> <a href="javascript:x()">x</a></p>'
    )
    banner.save()
    banner.refresh_from_db()
    assert "script" not in banner.body and "onclick" not in banner.body
    assert "javascript" not in banner.body
    _, html = page(browser)
    assert "<script>alert(1)</script>" not in html


def test_javascript_links_are_refused():
    from django.core.exceptions import ValidationError

    placement = Placement.objects.create(slug="p", name="P")
    banner = Banner(placement=placement, name="x", cta_url="javascript:alert(1)")
    with pytest.raises(ValidationError) as caught:
        banner.full_clean()
    assert "cta_url" in caught.value.message_dict


class TestBandit:
    def content(self, key: str) -> BannerContent:
        return BannerContent(key, key, key, "", "", "", "")

    def test_thompson_sampling_favours_what_gets_clicked(self):
        good, poor = self.content("banner:1"), self.content("banner:2")
        caches["default"].set(
            bandit.STATS_KEY, {"banner:1|fans": (200, 60), "banner:2|fans": (200, 4)}
        )
        rng = random.Random(7)
        picks = [bandit.choose([(good, "fans"), (poor, "fans")], rng) for _ in range(200)]
        assert picks.count(good) > 190

    def test_without_data_it_explores_both(self):
        one, two = self.content("banner:1"), self.content("banner:2")
        rng = random.Random(3)
        picks = [bandit.choose([(one, ""), (two, "")], rng) for _ in range(400)]
        assert 120 < picks.count(one) < 280

    def test_stats_are_rolled_up_from_exposures_and_clicks(self, hero, browser, clock):
        from personalization.models import Event, Visitor

        banner = Banner.objects.get(name="Welcome")
        for i in range(4):
            visitor_id = f"{i}" * 22
            Visitor.objects.create(
                id=visitor_id, first_seen=timezone.now(), last_seen=timezone.now(),
                first_source="direct", latest_source="direct",
            )  # fmt: skip
            exposure = Exposure.objects.create(
                id=uuid.uuid4(), visitor_id=visitor_id, placement="home-hero", kind="banner",
                content=f"banner:{banner.pk}", segment="first-timers",
            )  # fmt: skip
            if i < 1:
                Event.objects.create(visitor_id=visitor_id, exposure=exposure, kind="click")
        assert bandit.refresh_stats() == 1
        assert bandit._stats() == {f"banner:{banner.pk}|first-timers": (4, 1)}

    def test_a_bandit_placement_renders_one_of_the_fitting_banners(self, hero, browser):
        hero.selection = "bandit"
        hero.save()
        Banner.objects.create(placement=hero, name="Alt", title="Alternative hello").segments.add(
            Segment.objects.get(slug="first-timers")
        )
        _, html = page(browser)
        assert ("Hello, newcomer" in html) != ("Alternative hello" in html)


# Both groups counted under the same condition ----------------------------------------------
def _render_for_both_groups(slug: str) -> dict[bool, tuple[list, str]]:
    from django.test import RequestFactory

    from personalization.targeting.banners import render_banner
    from personalization.testutils import attach_visitor
    from personalization.tracking import pending_exposures

    rendered = {}
    for in_control_group in (False, True):
        request = RequestFactory().get("/")
        attach_visitor(request, in_control_group=in_control_group)
        html = str(render_banner(request, slug))
        rendered[in_control_group] = (pending_exposures(request), html)
    return rendered


@pytest.mark.parametrize(
    ("setup", "has_markup"),
    [
        ("active", True),
        ("inactive", True),
        ("inactive-without-default", False),
        ("no-default-content", False),
        ("unconfigured", False),
    ],
)
def test_control_and_personalized_visitors_get_the_same_exposures(hero, setup, has_markup):
    slug = "home-hero"
    if setup.startswith("inactive"):
        hero.is_active = False
        if setup == "inactive-without-default":
            hero.default_title = ""
        hero.save()
    elif setup == "no-default-content":
        Banner.objects.all().delete()
        hero.default_title = ""
        hero.save()
    elif setup == "unconfigured":
        slug = "not a slug"  # never created, so never configured
    definitions.invalidate()

    rendered = _render_for_both_groups(slug)
    for in_control_group, (exposures, html) in rendered.items():
        assert [row.is_control for row in exposures] == [in_control_group], setup
        assert [row.placement for row in exposures] == [slug]
        ids = EXPOSURE_RE.findall(html)
        assert ids == ([str(exposures[0].id)] if has_markup else []), (setup, in_control_group)
    assert len(rendered[False][0]) == len(rendered[True][0]) == 1
    if setup != "active":  # nothing personalized to choose: both get the default
        assert rendered[False][0][0].content == rendered[True][0][0].content == "default"


def test_an_inactive_placement_logs_its_control_visitors_as_control(hero, browser, settings):
    browser.get("/")  # the visitor cookie comes back from here on
    hero.is_active = False
    hero.save()
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CONTROL_GROUP_PERCENT": 100}
    _, html = page(browser)
    assert "Welcome to the shop" in html
    assert set(Exposure.objects.values_list("is_control", flat=True)) == {True}
