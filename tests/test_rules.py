"""Segment rules: every kind parses its value (or refuses it with a message) and tests the
profile as documented."""

from __future__ import annotations

import datetime as dt

import pytest

from personalization.profiling.referrer import Referrer
from personalization.targeting.rules import RULE_KINDS, RuleContext, RuleValueError
from personalization.testutils import make_visitor

# 2026-11-02 10:00 UTC is a Monday, 11:00 in the shop's zone (Europe/Berlin).
NOW = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC).timestamp()
DAY = 86400.0


def check(kind: str, value: str, **state) -> bool:
    rule = RULE_KINDS[kind]
    visitor = make_visitor(now=NOW, **state)
    return rule.test(RuleContext(visitor, NOW), rule.parse(value))


def check_data(kind: str, value: str, **data) -> bool:
    rule = RULE_KINDS[kind]
    visitor = make_visitor(now=NOW)
    for key, field_value in data.items():
        setattr(visitor._data, key, field_value)
    return rule.test(RuleContext(visitor, NOW), rule.parse(value))


@pytest.mark.parametrize(
    ("kind", "value", "state", "expected"),
    [
        ("first_visit", "", {"visit_count": 1}, True),
        ("first_visit", "", {"visit_count": 2}, False),
        ("returning", "", {"visit_count": 2}, True),
        ("returning", "", {"visit_count": 1}, False),
        ("visit_count", "2-5", {"visit_count": 5}, True),
        ("visit_count", "2-5", {"visit_count": 6}, False),
        ("visit_count", ">3", {"visit_count": 4}, True),
        ("visit_count", ">3", {"visit_count": 3}, False),
        ("visit_count", "<=2", {"visit_count": 2}, True),
        ("visit_count", "3+", {"visit_count": 30}, True),
        ("referrer_source", "search, social", {"referrer": "social"}, True),
        ("referrer_source", "search", {"referrer": "email"}, False),
        ("campaign", "*", {"referrer": Referrer("campaign", campaign="Winter")}, True),
        ("campaign", "winter, summer", {"referrer": Referrer("email", campaign="Winter")}, True),
        ("campaign", "summer", {"referrer": Referrer("campaign", campaign="Winter")}, False),
        ("campaign", "*", {"referrer": "direct"}, False),
        ("country", "de, AT", {"geo": {"country_code": "AT"}}, True),
        ("country", "DE", {"geo": {"country_code": "FR"}}, False),
        ("country", "DE", {"geo": {}}, False),
        ("region", "bavaria", {"geo": {"country_code": "DE", "region": "Bavaria"}}, True),
        ("city", "London, Paris", {"geo": {"country_code": "GB", "city": "London"}}, True),
        ("city", "Paris", {"geo": {"country_code": "GB", "city": "London"}}, False),
        ("category_interest", "camping >= 2", {"interests": {"camping": 2.5}}, True),
        ("category_interest", "camping >= 2", {"interests": {"camping": 1.5}}, False),
        ("category_interest", "camping", {"interests": {"kitchen": 9}}, False),
        ("viewed_product", "12, 40", {"recently_viewed": [3, 40]}, True),
        ("viewed_product", "12", {"recently_viewed": [3, 40]}, False),
        ("weekday", "mon, tue", {}, True),
        ("weekday", "sat, sun", {}, False),
        ("hour", "9-17", {}, True),  # 11:00 Berlin
        ("hour", "12-17", {}, False),
        ("hour", "22-12", {}, True),  # across midnight
        ("date_range", "2026-11-01..2026-11-02", {}, True),
        ("date_range", "2026-11-03", {}, False),
    ],
)
def test_rule_kinds(kind, value, state, expected):
    assert check(kind, value, **state) is expected


@pytest.mark.parametrize(
    ("kind", "value", "data", "expected"),
    [
        ("order_count", ">3", {"order_count": 4}, True),
        ("order_count", ">3", {"order_count": 3}, False),
        ("order_count", "0", {"order_count": 0}, True),
        ("order_count", "0", {"order_count": 1}, False),
        ("total_spent", ">=100", {"total_spent": 100.0}, True),
        ("total_spent", ">=100", {"total_spent": 99.99}, False),
        ("signed_up", "", {"signed_up_at": NOW - DAY}, True),
        ("signed_up", "", {"signed_up_at": None}, False),
        ("referred", "", {"referred_by": "FRIEND1"}, True),
        ("referred", "", {"referred_by": None}, False),
        ("device", "mobile, tablet", {"device": "tablet"}, True),
        ("device", "mobile", {"device": "desktop"}, False),
        ("abandoned_cart", "2", {"cart_updated_at": NOW - 3 * DAY}, True),
        ("abandoned_cart", "2", {"cart_updated_at": NOW - 1 * DAY}, False),
        (
            "abandoned_cart",
            "2",
            {"cart_updated_at": NOW - 3 * DAY, "last_order_at": NOW - 2.5 * DAY},
            False,
        ),
        ("abandoned_cart", "2", {"cart_updated_at": None}, False),
        ("viewed_product", "7", {"product_views": {"7": 2}}, True),
    ],
)
def test_rule_kinds_on_commerce_data(kind, value, data, expected):
    assert check_data(kind, value, **data) is expected


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("visit_count", "lots", "number or a range"),
        ("visit_count", "2.5", "whole numbers"),
        ("visit_count", "5-2", "ends before it starts"),
        ("visit_count", "<0", "Nothing is below zero"),
        ("first_visit", "yes", "takes no value"),
        ("referrer_source", "search, google", "Unknown: google"),
        ("country", "Germany", "two-letter ISO"),
        ("category_interest", "camping >= 0", "above zero"),
        ("category_interest", "camping >= lots", "category key"),
        ("abandoned_cart", "soon", "number of days"),
        ("weekday", "funday", "Unknown day"),
        ("hour", "25-3", "from 0 to 24"),
        ("hour", "morning", "from-to"),
        ("date_range", "2026-13-01", "a date or a range"),
        ("date_range", "2026-11-30..2026-11-01", "ends before it starts"),
        ("device", "phone", "Unknown: phone"),
        ("order_count", "", "number or a range"),
        ("country", "", "at least one value"),
    ],
)
def test_wrong_values_are_refused_with_a_message(kind, value, message):
    with pytest.raises(RuleValueError) as caught:
        RULE_KINDS[kind].parse(value)
    assert message in str(caught.value)


def test_every_kind_has_a_label_and_help():
    for kind in RULE_KINDS.values():
        assert kind.label and kind.help
