"""Segments: computed in memory from the profile, definitions cached and reloaded on save,
editable by staff with validated rules, counted among recent visitors."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from personalization.models import Segment, SegmentRule, Visitor
from personalization.targeting import definitions
from personalization.targeting.membership import count_members
from personalization.targeting.segments import segments_for
from personalization.testutils import make_visitor
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.django_db


def segment(slug: str, *rules: tuple[str, str], match: str = "all", negate=()) -> Segment:
    seg = Segment.objects.create(name=slug.title(), slug=slug, match=match)
    for position, (kind, value) in enumerate(rules):
        SegmentRule.objects.create(
            segment=seg, kind=kind, value=value, position=position, negate=kind in negate
        )
    return seg


@pytest.fixture(autouse=True)
def fresh_definitions():
    definitions.forget_local()
    yield
    definitions.forget_local()


def test_all_and_any_and_negation():
    segment("returning-campers", ("returning", ""), ("category_interest", "camping >= 2"))
    segment("social-or-email", ("referrer_source", "social"), ("referrer_source", "email"),
            match="any")  # fmt: skip
    segment("not-german", ("country", "DE"), negate=("country",))
    visitor = make_visitor(
        visit_count=3, interests={"camping": 3}, referrer="email", geo={"country_code": "FR"}
    )
    assert segments_for(visitor) == {"returning-campers", "social-or-email", "not-german"}
    newcomer = make_visitor(visit_count=1, referrer="direct", geo={"country_code": "DE"})
    assert segments_for(newcomer) == frozenset()


def test_request_visitor_segments_through_the_middleware(client, clock):
    segment("first-timers", ("first_visit", ""))
    body = client.get("/profile/", HTTP_USER_AGENT=BROWSER_UA).json()
    assert body["segments"] == ["first-timers"]


def test_warm_evaluation_costs_no_sql(django_assert_num_queries):
    for i in range(20):
        segment(f"s{i}", ("visit_count", f">{i}"))
    segments_for(make_visitor())  # loads the definitions
    with django_assert_num_queries(0):
        assert segments_for(make_visitor(visit_count=5)) == {"s0", "s1", "s2", "s3", "s4"}


def test_saving_a_rule_reloads_the_definitions_everywhere():
    import time

    seg = segment("big-spenders", ("total_spent", ">=100"))
    visitor = make_visitor()
    visitor._data.total_spent = 80.0
    assert segments_for(visitor) == frozenset()
    stale = definitions._state["definitions"]
    rule = seg.rules.get()
    rule.value = ">=50"
    rule.save()  # bumps the shared version in the cache
    # Another process still holds the old copy; within its check interval it keeps it ...
    definitions._state["definitions"] = stale
    definitions.VERSION._value, definitions.VERSION._checked = stale.version, time.monotonic()
    assert segments_for(visitor) == frozenset()
    # ... and after it, it sees the new version and reloads.
    definitions.VERSION._checked = time.monotonic() - 5
    assert segments_for(visitor) == {"big-spenders"}


def test_a_rule_that_no_longer_parses_disables_only_its_segment(caplog):
    segment("ok", ("first_visit", ""))
    broken = segment("broken", ("first_visit", ""))
    SegmentRule.objects.filter(segment=broken).update(value="oops")
    assert segments_for(make_visitor()) == {"ok"}
    assert "broken" in caplog.text


def test_inactive_segments_never_match():
    seg = segment("first", ("first_visit", ""))
    seg.is_active = False
    seg.save()
    assert segments_for(make_visitor()) == frozenset()


def test_untracked_visitors_are_in_no_segment():
    segment("first", ("first_visit", ""))
    assert segments_for(make_visitor(opted_out=True)) == frozenset()


def test_members_are_counted_among_recent_visitors():
    seg = segment("frequent-buyers", ("order_count", ">3"))
    now = timezone.now()

    def row(visitor_id, orders, days_ago):
        seen = now - dt.timedelta(days=days_ago)
        Visitor.objects.create(
            id=visitor_id, first_seen=seen, last_seen=seen, first_source="direct",
            latest_source="direct", order_count=orders,
        )  # fmt: skip

    row("a" * 22, 5, 1)
    row("b" * 22, 4, 29)
    row("c" * 22, 9, 31)  # too long ago
    row("d" * 22, 1, 2)
    assert count_members(seg) == 2
    seg.refresh_from_db()
    assert seg.matching_visitors == 2 and seg.counted_at is not None


class TestAdmin:
    @pytest.fixture
    def staff(self, client):
        user = get_user_model().objects.create_superuser("staff", "s@example.com", "pw")
        client.force_login(user)
        return client

    def form(self, kind: str, value: str) -> dict:
        return {
            "name": "Campers",
            "slug": "campers",
            "description": "",
            "match": "all",
            "is_active": "on",
            "rules-TOTAL_FORMS": "1",
            "rules-INITIAL_FORMS": "0",
            "rules-MIN_NUM_FORMS": "0",
            "rules-MAX_NUM_FORMS": "1000",
            "rules-0-kind": kind,
            "rules-0-value": value,
            "rules-0-position": "0",
        }

    def test_a_wrong_value_is_refused_with_a_message(self, staff):
        response = staff.post(
            "/admin/personalization/segment/add/", self.form("visit_count", "many")
        )
        assert response.status_code == 200
        assert "number or a range" in response.content.decode()
        assert not Segment.objects.exists()

    def test_a_good_segment_is_saved_and_counted(self, staff, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = staff.post(
                "/admin/personalization/segment/add/",
                self.form("category_interest", "camping >= 2"),
            )
        assert response.status_code == 302
        # the recount waits for the save to commit (as does the definitions' new version)
        assert sum("segment-counts" in repr(callback) for callback in callbacks) == 1
        seg = Segment.objects.get()
        assert seg.rules.get().kind == "category_interest"
        assert seg.matching_visitors == 0  # counted after commit (Celery runs eagerly in tests)
        listing = staff.get("/admin/personalization/segment/")
        assert "camping" in listing.content.decode()
