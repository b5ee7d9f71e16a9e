"""Merchandising rules per placement: pins, exclusions, boosts and a minimum stock, edited in
the admin and applied when serving — by the template tag and the API, to the personalized
and the control group alike — without a refit, within the warm query budget."""

from __future__ import annotations

import logging
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from personalization.models import Exposure, Placement, PlacementRule, ProductInteraction, Visitor
from personalization.products import BaseProductAdapter, DefaultProductAdapter, cards
from personalization.recommendations import merchandising, precompute, serving, store
from personalization.recommendations.merchandising import Facts
from personalization.tracking import flush_exposures
from tests.test_recommendations_serving import render, request_for

pytestmark = pytest.mark.django_db

URL = "/personalization/api/recommendations/"
# Best sellers first: the control group's order. Personalized visitors of the placement
# "shelf" (strategy: recently viewed) viewed t3, s3 and l3 (l3 last), so they get those three,
# the latest first, then the best sellers.
CONTROL = ["t0", "s0", "l0", "t1", "s1", "l1", "t2", "s2", "l2", "t3", "s3", "l3"]
VIEWED = ["t3", "s3", "l3"]
PERSONAL = ["l3", "s3", "t3", *(slug for slug in CONTROL if slug not in VIEWED)]
CATEGORIES = {"t": "tents", "s": "stoves", "l": "lamps"}
MARGINS = {"l2": Decimal("12.50")}


class MarginAdapter(DefaultProductAdapter):
    """A shop that knows the margin of some products."""

    def margin(self, product):
        return MARGINS.get(product.slug)


@pytest.fixture(autouse=True)
def _fresh_lists():
    store.forget_local()
    serving.strategies.cache_clear()
    yield
    store.forget_local()


@pytest.fixture
def shop(make_product):
    """Twelve products in three categories; best sellers in the order of CONTROL."""
    products = {
        slug: make_product(slug=slug, name=slug.upper(), category=CATEGORIES[slug[0]])
        for slug in CONTROL
    }
    ProductInteraction.objects.bulk_create(
        ProductInteraction(visitor_id=f"{slug}-{n}", product_id=str(products[slug].pk),
                           kind="purchase")
        for index, slug in enumerate(CONTROL)
        for n in range(30 - 2 * index)
    )  # fmt: skip
    precompute.recompute_all()
    store.forget_local()
    return products


@pytest.fixture
def shelf(shop):
    return Placement.objects.create(slug="shelf", name="Shelf", strategy="recently_viewed")


def rule(placement: Placement, kind: str, **values) -> PlacementRule:
    created = PlacementRule(placement=placement, kind=kind, **values)
    created.full_clean()
    created.save()
    return created


@pytest.fixture(params=["tag", "api"])
def via(request):
    return request.param


@pytest.fixture(params=["personalized", "control"])
def group(request):
    return request.param


@pytest.fixture
def base(group):
    """The list without rules, best first."""
    return CONTROL if group == "control" else PERSONAL


@pytest.fixture
def show(shop, shelf, via, group, client, settings):
    """``show(limit)``: the slugs the visitor of ``group`` is shown in "shelf", through the
    template tag or the API."""
    control = group == "control"
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "CONTROL_GROUP_PERCENT": 100 if control else 0,
    }
    slug_of = {str(product.pk): slug for slug, product in shop.items()}
    if via == "api":
        client.get("/")
        for slug in VIEWED:
            client.get(f"/products/{slug}/")

    def show(limit: int = 4) -> list[str]:
        if via == "tag":
            viewed = [shop[slug].pk for slug in reversed(VIEWED)]
            request = request_for(in_control_group=control, recently_viewed=viewed)
            html = render(f'{{% recommendations "shelf" limit={limit} %}}', request)
            keys = re.findall(r'data-personalization-product="([^"]+)"', html)
            pending = request.__dict__["_personalization_exposures"]
            assert [row.is_control for row in pending] == [control]
            assert pending[0].content == ("strategy:bestsellers" if control else
                                          "strategy:recently_viewed")  # fmt: skip
        else:
            body = client.get(URL, {"placement": "shelf", "limit": limit}).json()
            assert body["strategy"] == ("bestsellers" if control else "recently_viewed")
            assert Exposure.objects.get(pk=body["exposure"]).is_control is control
            keys = [item["id"] for item in body["items"]]
        return [slug_of[key] for key in keys]

    return show


# Serving, through the tag and the API, in both groups --------------------------------------
def test_without_rules_the_strategy_order_is_served(show, base):
    assert show() == base[:4]
    assert show(limit=12) == base


def test_pinned_products_take_their_positions(show, shelf, shop, group):
    rule(shelf, PlacementRule.PIN, product_key=str(shop["t2"].pk), position=1)
    rule(shelf, PlacementRule.PIN, product_key=str(shop["l2"].pk), position=3)
    expected = {"control": ["t2", "t0", "l2", "s0"], "personalized": ["t2", "l3", "l2", "s3"]}
    assert show() == expected[group]
    assert show(limit=2) == expected[group][:2]  # a pin past the limit is not shown


def test_a_pin_already_in_the_list_moves_to_its_position(show, shelf, shop, base):
    fourth = base[3]
    rule(shelf, PlacementRule.PIN, product_key=str(shop[fourth].pk), position=1)
    assert show() == [fourth, *base[:3]]


def test_excluded_products_and_categories_are_left_out(show, shelf, shop, group):
    rule(shelf, PlacementRule.EXCLUDE_PRODUCT, product_key=str(shop["t0"].pk))
    rule(shelf, PlacementRule.EXCLUDE_CATEGORY, category_key="stoves")
    expected = {"control": ["l0", "t1", "l1", "t2"], "personalized": ["l3", "t3", "l0", "t1"]}
    assert show() == expected[group]  # the list is still full


def test_an_excluded_category_that_does_not_exist_does_nothing(show, shelf, base):
    rule(shelf, PlacementRule.EXCLUDE_CATEGORY, category_key="no-such-category")
    assert show() == base[:4]


def test_a_boosted_category_moves_up_by_the_documented_formula(show, shelf, group):
    # score = (1 + boost) / position: l0 (3rd best seller, boost 2) ties with the 1st.
    rule(shelf, PlacementRule.BOOST_CATEGORY, category_key="lamps", weight=2)
    expected = {"control": ["t0", "l0", "s0", "l1"], "personalized": ["l3", "s3", "l0", "t3"]}
    assert show() == expected[group]


def test_a_margin_boost_reads_the_adapter(show, shelf, settings, group):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PRODUCT_ADAPTER": "tests.test_merchandising.MarginAdapter",
    }
    # l2 has the best margin (boost 4: 5 / 9 in the control's list), the others none known.
    rule(shelf, PlacementRule.BOOST_MARGIN, weight=4)
    expected = {"control": ["t0", "l2", "s0", "l0"], "personalized": ["l3", "s3", "l2", "t3"]}
    assert show() == expected[group]


def test_products_below_the_minimum_stock_are_left_out(show, shelf, shop, base):
    for slug, stock in (("t0", 2), ("s3", 1), ("s0", 5)):
        shop[slug].stock = stock
        shop[slug].save()
    rule(shelf, PlacementRule.MIN_STOCK, min_stock=5)
    assert show() == [slug for slug in base if slug not in {"t0", "s3"}][:4]


def test_a_pin_to_an_unavailable_or_deleted_product_is_skipped_and_logged_once(
    show, shelf, shop, base, make_product, caplog
):
    gone = make_product(slug="gone", category="lamps")
    gone_key = str(gone.pk)
    gone.delete()
    shop["t2"].is_available = False
    shop["t2"].save()
    rule(shelf, PlacementRule.PIN, product_key=gone_key, position=1)
    rule(shelf, PlacementRule.PIN, product_key=str(shop["t2"].pk), position=2)
    rule(shelf, PlacementRule.PIN, product_key=str(shop["l2"].pk), position=3)
    expected = [slug for slug in base if slug not in {"t2", "l2"}]
    expected.insert(2, "l2")
    with caplog.at_level(logging.WARNING, logger="personalization"):
        assert show() == expected[:4]  # the limit is still filled
        assert show() == expected[:4]
    warnings = [r.getMessage() for r in caplog.records if "pins product" in r.getMessage()]
    assert len(warnings) == 2  # once per bad pin, not per request
    assert any(repr(gone_key) in message for message in warnings)


def test_a_pin_excluded_by_another_rule_is_not_shown(show, shelf, shop, base):
    shop["l2"].stock = 1
    shop["l2"].save()
    rule(shelf, PlacementRule.PIN, product_key=str(shop["l2"].pk), position=1)
    rule(shelf, PlacementRule.MIN_STOCK, min_stock=2)
    assert show() == base[:4]


def test_rules_apply_at_once_when_saved_or_deleted(show, shelf, shop, base):
    assert show() == base[:4]
    excluded = rule(shelf, PlacementRule.EXCLUDE_PRODUCT, product_key=str(shop[base[0]].pk))
    assert show() == base[1:5]
    excluded.delete()
    assert show() == base[:4]


# Other placements, pages and outside a request ---------------------------------------------
def test_rules_belong_to_their_placement(shelf, shop):
    rule(shelf, PlacementRule.EXCLUDE_CATEGORY, category_key="tents")
    request = request_for(in_control_group=True)
    assert [p.slug for p in serving.recommend(request, "elsewhere", limit=3)] == CONTROL[:3]
    assert [p.slug for p in serving.recommend(request, "shelf", limit=3)] == ["s0", "l0", "s1"]


def test_a_pin_is_not_shown_on_its_own_product_page(shelf, shop):
    rule(shelf, PlacementRule.PIN, product_key=str(shop["l3"].pk), position=1)
    request = request_for(in_control_group=True)
    html = render('{% recommendations "shelf" product=p limit=3 %}', request, p=shop["l3"])
    assert f'data-personalization-product="{shop["l3"].pk}"' not in html
    assert html.count('class="pzn-recs__item"') == 3


def test_recommendations_for_an_email_follow_the_rules(shelf, shop):
    rule(shelf, PlacementRule.PIN, product_key=str(shop["l3"].pk), position=1)
    rule(shelf, PlacementRule.EXCLUDE_CATEGORY, category_key="stoves")
    for visitor_id, held_out in (("reader", False), ("held-out", True)):
        Visitor.objects.create(id=visitor_id, first_seen=timezone.now(),
                               last_seen=timezone.now(), in_control_group=held_out)  # fmt: skip
        result = serving.recommend_for_visitor(visitor_id, "shelf", limit=3)
        assert [p.slug for p in result] == ["l3", "t0", "l0"]


def test_both_groups_still_log_one_exposure_each(shelf, shop):
    rule(shelf, PlacementRule.EXCLUDE_CATEGORY, category_key="tents")
    for control in (False, True):
        request = request_for(in_control_group=control)
        render('{% recommendations "shelf" limit=3 %}', request)
        assert flush_exposures(request) == 1
    assert list(Exposure.objects.values_list("is_control", flat=True).order_by("is_control")) == [
        False,
        True,
    ]


# The warm query budget ---------------------------------------------------------------------
@pytest.fixture
def every_rule(shelf, shop, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PRODUCT_ADAPTER": "tests.test_merchandising.MarginAdapter",
    }
    rule(shelf, PlacementRule.PIN, product_key=str(shop["l2"].pk), position=1)
    rule(shelf, PlacementRule.PIN, product_key=str(shop["s2"].pk), position=3)
    rule(shelf, PlacementRule.EXCLUDE_PRODUCT, product_key=str(shop["t0"].pk))
    rule(shelf, PlacementRule.EXCLUDE_CATEGORY, category_key="no-such-category")
    rule(shelf, PlacementRule.BOOST_CATEGORY, category_key="lamps", weight=1.5)
    rule(shelf, PlacementRule.BOOST_MARGIN, weight=3)
    rule(shelf, PlacementRule.MIN_STOCK, min_stock=1)
    return shelf


def test_warm_rendering_with_rules_costs_at_most_one_query(
    every_rule, shop, django_assert_max_num_queries
):
    source = '{% recommendations "shelf" limit=4 %}'
    render(source, request_for(in_control_group=False))  # warms the lists and the rules
    for control in (False, True):
        with django_assert_max_num_queries(1):
            html = render(source, request_for(in_control_group=control))
        assert html.count('class="pzn-recs__item"') == 4
        assert html.index(f'product="{shop["l2"].pk}"') < html.index(f'product="{shop["s2"].pk}"')


def test_a_warm_api_call_with_rules_only_writes_its_exposure(every_rule, shop, client):
    client.get("/")
    query = {"placement": "shelf", "limit": 4}
    client.get(URL, query)  # warms the lists, the cards and the rules
    with CaptureQueriesContext(connection) as captured:
        body = client.get(URL, query).json()
    statements = [
        q["sql"] for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")
    ]
    assert len(statements) == 1 and statements[0].startswith(
        'INSERT INTO "personalization_exposure"'
    )
    ids = [item["id"] for item in body["items"]]
    assert len(ids) == 4 and ids[0] == str(shop["l2"].pk) and ids[2] == str(shop["s2"].pk)
    assert str(shop["t0"].pk) not in ids


# The admin ---------------------------------------------------------------------------------
ADD_URL = "/admin/personalization/placement/add/"


def placement_form(*rows: dict, slug: str = "new-shelf") -> dict:
    data = {"slug": slug, "name": "New shelf", "selection": "priority", "is_active": "on",
            "strategy": "", "banners-TOTAL_FORMS": "0", "banners-INITIAL_FORMS": "0",
            "rules-TOTAL_FORMS": str(len(rows)), "rules-INITIAL_FORMS": "0"}  # fmt: skip
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"rules-{index}-{name}"] = value
    return data


def test_staff_add_rules_in_the_placement_inline(admin_client, shop):
    page = admin_client.get(ADD_URL).content.decode()
    assert "merchandising rule" in page.lower() and 'value="boost_margin"' in page
    response = admin_client.post(
        ADD_URL,
        placement_form(
            {"kind": "pin", "product_key": str(shop["l2"].pk), "position": "2"},
            {"kind": "exclude_product", "product_key": f" {shop['t0'].pk} "},
            {"kind": "exclude_category", "category_key": "stoves"},
            {"kind": "boost_category", "category_key": "lamps", "weight": "2.5"},
            {"kind": "boost_margin", "weight": "10"},
            {"kind": "min_stock", "min_stock": "3"},
        ),
    )
    assert response.status_code == 302
    saved = Placement.objects.get(slug="new-shelf")
    rows = {r.kind: r for r in saved.rules.all()}
    assert len(rows) == 6
    assert (rows["pin"].product_key, rows["pin"].position) == (str(shop["l2"].pk), 2)
    assert rows["exclude_product"].product_key == str(shop["t0"].pk)
    assert rows["boost_category"].weight == 2.5 and rows["min_stock"].min_stock == 3
    # Served at once: the placement's compiled rules were reloaded.
    request = request_for(in_control_group=True)
    result = serving.recommend(request, "new-shelf", limit=4)
    assert [p.slug for p in result] == ["l0", "l2", "l1", "l3"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"kind": "pin", "product_key": "999999", "position": "1"}, "No product with this key."),
        ({"kind": "pin", "product_key": "not-a-key", "position": "1"}, "No product with this key."),
        ({"kind": "exclude_product", "product_key": "999999"}, "No product with this key."),
        ({"kind": "pin", "product_key": "{t0}", "position": "0"}, "A position from 1 to 24."),
        ({"kind": "pin", "product_key": "{t0}", "position": "25"}, "A position from 1 to 24."),
        ({"kind": "pin", "product_key": "{t0}"}, "This rule needs a value here."),
        ({"kind": "pin", "position": "1"}, "This rule needs a value here."),
        ({"kind": "boost_category", "category_key": "x", "weight": "11"}, "than or equal to 10"),
        ({"kind": "boost_category", "category_key": "x", "weight": "-1"}, "than or equal to 0"),
        ({"kind": "boost_category", "category_key": "x", "weight": "nan"}, "Enter a number."),
        ({"kind": "boost_category", "weight": "1"}, "This rule needs a value here."),
        ({"kind": "boost_margin"}, "This rule needs a value here."),
        ({"kind": "min_stock", "min_stock": "-2"}, "greater than or equal to 0"),
        ({"kind": "exclude_category", "category_key": "x", "weight": "1"}, "Not used by this rule"),
        ({"kind": "made_up", "category_key": "lamps"}, "is not one of the available choices"),
    ],
)  # fmt: skip
def test_the_inline_refuses_bad_rules(admin_client, shop, row, message):
    row = {name: value.format(t0=shop["t0"].pk) for name, value in row.items()}
    response = admin_client.post(ADD_URL, placement_form(row))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Placement.objects.filter(slug="new-shelf").exists()


def test_a_product_pinned_twice_is_refused(admin_client, shop):
    key = str(shop["t0"].pk)
    response = admin_client.post(
        ADD_URL,
        placement_form(
            {"kind": "pin", "product_key": key, "position": "1"},
            {"kind": "exclude_product", "product_key": key},
        ),
    )
    assert response.status_code == 200
    assert "more than one pin or exclusion" in response.content.decode()
    assert not Placement.objects.filter(slug="new-shelf").exists()


def test_a_saved_pin_whose_product_was_deleted_does_not_block_the_placement(
    admin_client, shelf, make_product
):
    product = make_product(slug="soon-gone")
    pin = rule(shelf, PlacementRule.PIN, product_key=str(product.pk), position=1)
    product.delete()
    data = placement_form(slug="shelf")
    data.update({"name": "Renamed", "strategy": "recently_viewed", "rules-TOTAL_FORMS": "1",
                 "rules-INITIAL_FORMS": "1", "rules-0-id": str(pin.pk),
                 "rules-0-placement": str(shelf.pk), "rules-0-kind": "pin",
                 "rules-0-product_key": pin.product_key, "rules-0-position": "1"})  # fmt: skip
    response = admin_client.post(f"/admin/personalization/placement/{shelf.pk}/change/", data)
    assert response.status_code == 302
    assert Placement.objects.get(pk=shelf.pk).name == "Renamed"
    # Entering it again, though, is refused.
    data.update({"rules-0-position": "2"})
    data["rules-0-product_key"] = f"{pin.product_key} "
    response = admin_client.post(f"/admin/personalization/placement/{shelf.pk}/change/", data)
    assert response.status_code == 302  # an unchanged product (spaces aside) is not checked
    data["rules-0-kind"] = "exclude_product"
    data["rules-0-position"] = ""
    response = admin_client.post(f"/admin/personalization/placement/{shelf.pk}/change/", data)
    assert response.status_code == 200 and "No product with this key." in response.content.decode()


# The adapter -------------------------------------------------------------------------------
def test_the_adapter_reads_stock_and_margin_and_cards_carry_them(shop, settings):
    from tests.testapp.models import Product

    adapter = DefaultProductAdapter(Product)
    assert adapter.stock(shop["t0"]) == 10
    assert adapter.margin(shop["t0"]) is None
    assert BaseProductAdapter.stock(adapter, object()) is None  # no stock field: unknown
    assert BaseProductAdapter.margin(adapter, shop["t0"]) is None
    card = cards([str(shop["l2"].pk)])[str(shop["l2"].pk)]
    assert card["merchandising"] == {"category": "lamps", "stock": 10, "margin": None}
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PRODUCT_ADAPTER": "tests.test_merchandising.MarginAdapter",
    }
    card = cards([str(shop["l2"].pk)])[str(shop["l2"].pk)]
    assert card["merchandising"]["margin"] == "12.50"


# The rules themselves ----------------------------------------------------------------------
class Row:
    def __init__(self, kind, product_key="", category_key="", position=None, weight=None,
                 min_stock=None):  # fmt: skip
        self.kind, self.product_key, self.category_key = kind, product_key, category_key
        self.position, self.weight, self.min_stock = position, weight, min_stock


def test_compiling_bounds_weights_and_keeps_the_first_pin_of_a_product():
    rules = merchandising.compile_rules(
        "p",
        [
            Row("pin", product_key="a", position=3),
            Row("pin", product_key="a", position=1),
            Row("pin", product_key="b", position=1),
            Row("boost_category", category_key="x", weight=50),
            Row("boost_category", category_key="x", weight=2),
            Row("boost_margin", weight=float("nan")),  # skipped
            Row("min_stock", min_stock=2),
            Row("min_stock", min_stock=4),
            Row("exclude_category"),  # no category: skipped
        ],
    )
    assert rules.pins == ((1, "a"), (1, "b"))
    assert dict(rules.category_boosts) == {"x": merchandising.MAX_WEIGHT}
    assert (rules.margin_boost, rules.min_stock) == (0.0, 4)
    assert merchandising.compile_rules("p", []) is None
    assert merchandising.compile_rules("p", [Row("boost_margin", weight=0)]) is None


def test_boosts_are_bounded_and_unknown_stock_is_kept():
    keys = [f"k{n}" for n in range(1, 31)]
    facts = {key: Facts(available=True, category="plain", stock=None) for key in keys}
    facts["k30"] = Facts(available=True, category="star", stock=None, margin=5.0)
    facts["k2"] = Facts(available=True, category="plain", stock=0)
    rules = merchandising.Rules(
        placement="p", category_boosts={"star": 10.0}, margin_boost=10.0, min_stock=1
    )
    arranged = rules.arrange(keys, facts, 30, set())
    assert "k2" not in arranged and "k3" in arranged  # unknown stock: kept
    # k30 is 29th once k2 is out; its boost, 20, is capped at 10: it scores 11 / 29, and
    # passes every product after position 29 / 11.
    assert arranged.index("k30") == 2
