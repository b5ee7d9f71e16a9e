"""The shipped test helpers build profiles that behave like real ones."""

from __future__ import annotations

from django.test import RequestFactory

from personalization.profiling.geo import Geo
from personalization.testutils import attach_visitor, make_visitor


def test_make_visitor_sets_every_contract_attribute():
    visitor = make_visitor(
        visit_count=4,
        referrer="search",
        geo={"country_code": "SE", "city": "Linköping"},
        recently_viewed=[3, 1],
        interests={"camping": 5, "kitchen": 1},
        in_control_group=True,
        segments={"frequent-buyers"},
    )
    assert visitor.visit_count == 4
    assert visitor.is_first_visit is False
    assert visitor.referrer.source == "search"
    assert visitor.geo == Geo(country_code="SE", city="Linköping")
    assert visitor.recently_viewed == [3, 1]
    assert visitor.top_categories == ["camping", "kitchen"]
    assert visitor.in_control_group is True
    assert visitor.sees_personalized is False
    assert visitor.segments == frozenset({"frequent-buyers"})
    assert visitor.is_tracked is True


def test_defaults_describe_a_new_direct_visitor():
    visitor = make_visitor()
    assert (visitor.is_first_visit, visitor.referrer.source, visitor.recently_viewed) == (
        True,
        "direct",
        [],
    )
    assert visitor.geo == Geo()


def test_attach_visitor_sets_request_visitor():
    request = RequestFactory().get("/")
    visitor = attach_visitor(request, opted_out=True)
    assert request.visitor is visitor
    assert visitor.is_tracked is False
