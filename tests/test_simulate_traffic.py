"""``manage.py simulate_traffic``: simulated visitors through the demo shop's real middleware
and views leave real visitors, exposures, clicks, signups and orders behind."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from personalization.testutils import DEMO_IPS
from shop_demo import simulation as sim

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(demo):
    """A small catalog: camping-heavy, one sold-out product (the demo's targeting is created
    by the command itself when missing)."""
    from shop_demo.catalog.models import Category, Product

    specs = {
        "camping": ["Tent", "Stove", "Sleeping Bag", "Headlamp", "Lantern", "Sleeping Mat"],
        "coffee-tea": ["Espresso Beans", "Green Tea", "Coffee Grinder", "Mug"],
        "kitchen": ["Cast Iron Pan", "Chef Knife", "Cutting Board"],
    }
    products = []
    for position, (slug, names) in enumerate(specs.items()):
        category = Category.objects.create(name=slug.title(), slug=slug, position=position)
        for number, name in enumerate(names):
            products.append(
                Product.objects.create(
                    name=name,
                    slug=f"{slug}-{number}",
                    category=category,
                    price=Decimal("19.90") + number * 10,
                    stock=0 if name == "Lantern" else 40,
                )
            )
    return products


def simulate(**options) -> str:
    out = StringIO()
    defaults = {"visitors": 40, "days": 3, "seed": 1, "advantage": 2.0, "control_percent": 30}
    arguments = {key: value for key, value in {**defaults, **options}.items() if value is not None}
    call_command("simulate_traffic", **arguments, stdout=out)
    return out.getvalue()


def test_simulated_visitors_leave_real_traces(catalog):
    from personalization.models import Conversion, Coupon, Event, Exposure, Signup, Visitor
    from personalization.reports import rollups
    from shop_demo.catalog.models import Product
    from shop_demo.orders.models import Order

    stock = dict(Product.objects.values_list("pk", "stock"))
    rollups.refresh()  # a shop whose report already reads roll-ups
    started = datetime.now(UTC)
    output = simulate()

    # Every simulated visitor has a profile row (each makes at least two requests); the
    # crawlers, which walk several pages with one cookie jar each, have none.
    visitors = Visitor.objects.all()
    assert visitors.count() == 40
    assert "no cookie" in output
    ids = set(visitors.values_list("pk", flat=True))
    assert set(Exposure.objects.values_list("visitor_id", flat=True)) <= ids
    # From several sources, countries and devices, over the last three days.
    assert len(set(visitors.values_list("first_source", flat=True))) >= 4
    assert len(set(visitors.values_list("country_code", flat=True)) - {""}) >= 4
    assert len(set(visitors.values_list("device", flat=True))) >= 2
    first_seen = min(visitors.values_list("first_seen", flat=True))
    assert (started - first_seen).days <= 3 and (started - first_seen).total_seconds() > 3600
    assert max(visitors.values_list("last_seen", flat=True)) < started
    # Returning visitors: visits at least 30 minutes apart count as new visits.
    assert visitors.filter(visit_count__gt=1).exists()
    # Both groups saw content: personalized, and the control group's defaults.
    assert visitors.filter(in_control_group=True).exists()
    assert Exposure.objects.filter(is_control=True).exists()
    assert Exposure.objects.filter(is_control=False).exclude(content="default").exists()
    # Clicks on what was shown, popup answers and signups with their coupon.
    assert Event.objects.filter(kind=Event.CLICK, exposure__isnull=False).exists()
    assert Event.objects.filter(kind=Event.POPUP_SHOWN).exists()
    signups = Signup.objects.select_related("coupon")
    assert signups.exists()
    assert all(signup.coupon.source == Coupon.SOURCE_SIGNUP for signup in signups)
    assert all(signup.visitor_id in ids for signup in signups)
    # Orders through the real checkout, each recorded once as a purchase conversion.
    orders = Order.objects.all()
    assert orders.exists()
    purchases = Conversion.objects.filter(kind=Conversion.PURCHASE)
    assert sorted(purchases.values_list("order_id", flat=True)) == sorted(
        orders.values_list("number", flat=True)
    )
    assert f"orders            {orders.count()} " in output
    # What was bought got its stock back: the catalog is as it was seeded.
    assert dict(Product.objects.values_list("pk", "stock")) == stock
    # The summary says the lift is simulated, and how.
    assert "personalized" in output and "control" in output
    assert "This lift is simulated" in output and "--advantage" in output
    # The roll-ups were rebuilt: the report shows the simulated visitors at once, with the
    # figures the raw rows give.
    assert "Rebuilt the report's roll-ups" in output
    assert_report_shows_the_raw_figures()


def assert_report_shows_the_raw_figures() -> None:
    from django.test import override_settings

    from personalization.models import Exposure
    from personalization.reports.period import parse_period
    from personalization.reports.queries import build_report

    period = parse_period(None, None)
    report = build_report(period)
    assert report["source"] == "rollups" and report["live_visitors"] == 0
    with override_settings(PERSONALIZATION={**settings.PERSONALIZATION, "REPORT_ROLLUPS": False}):
        raw = build_report(period)
    assert raw["source"] == "raw"
    shown = Exposure.objects.values("visitor_id").distinct().count()
    assert report["personalized"]["visitors"] + report["control"]["visitors"] == shown
    for key in ("personalized", "control", "lift", "by_placement", "daily"):
        assert report[key] == raw[key]


def test_without_rollups_it_says_what_to_run(catalog):
    from personalization.reports import rollups
    from personalization.reports.period import parse_period
    from personalization.reports.queries import build_report

    rollups.refresh()
    output = simulate(visitors=3, days=1, no_rollups=True)
    assert "python manage.py personalization_rollup --full" in output
    # Until then the roll-ups, refreshed before the simulated (past) rows, leave them out.
    report = build_report(parse_period(None, None))
    assert report["personalized"]["visitors"] + report["control"]["visitors"] == 0
    call_command("personalization_rollup", full=True, stdout=StringIO())
    assert_report_shows_the_raw_figures()


def test_aa_is_advantage_one_and_refuses_another_advantage(catalog):
    with pytest.raises(CommandError, match="--aa means --advantage 1"):
        simulate(aa=True, advantage=2.0)
    output = simulate(visitors=3, days=1, aa=True, advantage=None)
    assert "advantage 1..." in output
    assert "This was an A/A run" in output and "This lift is simulated" not in output


def test_a_holdout_unlike_the_setting_is_flagged_for_the_report(catalog):
    output = simulate(visitors=3, days=1, control_percent=30)  # the setting holds out 0%
    assert "The control group was 30% for this run, but CONTROL_GROUP_PERCENT is 0%" in output
    assert "sample-ratio check" in output


def test_same_seed_same_visitors(catalog):
    """Orders depend on the random visitor ids (the control group is a hash of them), but
    who comes, from where and how often depends only on the seed. (How a visit is classified
    may differ: a referral link is valid only once a referrer exists, and the first run's
    signups, which depend on the groups, make referrers for the second.)"""
    from personalization.models import Visitor

    def visitors_since(known: set[str]) -> list[tuple[str, int]]:
        rows = Visitor.objects.exclude(pk__in=known)
        return sorted(rows.values_list("country_code", "visit_count"))

    simulate(visitors=25, days=2, seed=7)
    first = visitors_since(set())
    known = set(Visitor.objects.values_list("pk", flat=True))
    simulate(visitors=25, days=2, seed=7)
    second = visitors_since(known)
    assert len(first) == len(second) == 25
    assert second == first


def test_the_plan_depends_only_on_the_seed():
    snapshot = sim.CatalogSnapshot(
        categories=("camping", "kitchen"),
        products_by_category={"camping": ("tent", "stove"), "kitchen": ("pan",)},
    )
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)

    def plan(seed: int) -> list:
        return sim.plan_visitors(50, 7, now, random.Random(seed), snapshot, DEMO_IPS)

    assert plan(3) == plan(3)
    assert plan(3) != plan(4)
    sources = Counter(visit.landing.source for visitor in plan(3) for visit in visitor.visits)
    assert {"search", "direct", "social", "email", "campaign", "referral"} <= set(sources)
    for visitor in plan(3):
        starts = [visit.start for visit in visitor.visits]
        assert all(b - a >= sim.MIN_GAP_BETWEEN_VISITS for a, b in itertools.pairwise(starts))


def test_purchase_probability_is_the_documented_product():
    camper = next(persona for persona in sim.PERSONAS if persona.name == "camper")
    base = camper.base_purchase
    assert sim.purchase_probability(camper, False, False, 1.5) == base
    assert sim.purchase_probability(camper, True, False, 1.5) == pytest.approx(base * 1.5)
    # Once more the advantage after a click on personalized content.
    assert sim.purchase_probability(camper, True, True, 1.5) == pytest.approx(base * 1.5 * 1.5)
    assert sim.purchase_probability(camper, True, True, 0.5) == pytest.approx(base * 0.25)
    assert sim.purchase_probability(camper, True, True, 100) == sim.MAX_PURCHASE_PROBABILITY


@pytest.mark.parametrize("persona", sim.PERSONAS, ids=lambda persona: persona.name)
def test_advantage_one_is_a_true_a_a(persona):
    """With --advantage 1 neither the group nor a click changes the chance to buy."""
    chances = {
        sim.purchase_probability(persona, personalized, clicked, 1.0)
        for personalized in (False, True)
        for clicked in (False, True)
    }
    assert chances == {persona.base_purchase}


def test_an_empty_catalog_is_refused(demo):
    with pytest.raises(CommandError, match="demo_setup"):
        simulate()
