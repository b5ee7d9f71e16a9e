"""Session-aware recommendations: lists fitted on the order of visits, the blend's signals
for the visit going on, and weights learned from the shop's own history."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time

import numpy as np
import pytest

from personalization.recommendations import engine, learning, sequences
from personalization.recommendations.base import Context, Interaction, MemoryStore
from personalization.recommendations.evaluation import session_products
from personalization.recommendations.strategies import (
    HISTORY,
    SESSION,
    WEIGHTS_LIST,
    Blend,
    recommend,
)

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
IDS = np.array(list("abcdefgh"), dtype=object)


def codes(names: str) -> np.ndarray:
    return np.array(["abcdefgh".index(name) for name in names], dtype=np.int64)


def context(**values) -> Context:
    return Context(now=NOW, **values)


# Lists ------------------------------------------------------------------------------------
def test_what_comes_next_follows_the_order_of_each_visit():
    # Visitor 0: a, b, c in one visit; visitor 1: a then c; visitor 2: c then a.
    lists = sequences.session_next(
        visitor=np.array([0, 0, 0, 1, 1, 2, 2]),
        product=codes("abcacca"),
        age=np.array([1.0, 0.999, 0.998, 2.0, 1.999, 3.0, 2.999]),
        product_ids=IDS,
        top_n=10,
    )
    # From a: b one step later (1), c two steps later (1/2) and one step later (1): 1.5.
    assert lists[("session_next", "a")] == [("c", 0.6), ("b", 0.4)]
    assert lists[("session_next", "b")] == [("c", 1.0)]
    assert lists[("session_next", "c")] == [("a", 1.0)]  # backwards never counts


def test_a_gap_of_more_than_half_an_hour_starts_a_new_visit():
    minute = 1 / 1440
    lists = sequences.session_next(
        visitor=np.array([0, 0, 0]),
        product=codes("abc"),
        age=np.array([1.0, 1.0 - 10 * minute, 1.0 - 50 * minute]),
        product_ids=IDS,
        top_n=10,
    )
    assert lists == {("session_next", "a"): [("b", 1.0)]}


def test_a_pair_counts_once_per_visit_however_often_it_is_repeated():
    # One visitor bounces a, b, a, b, a, b; another goes a, c once.
    lists = sequences.session_next(
        visitor=np.array([0] * 6 + [1, 1]),
        product=codes("ababab" + "ac"),
        age=np.array([1.0 - i * 1e-4 for i in range(6)] + [2.0, 1.9999]),
        product_ids=IDS,
        top_n=10,
    )
    assert dict(lists[("session_next", "a")]) == {"b": 0.5, "c": 0.5}


def test_a_visit_of_thousands_of_views_is_read_from_its_end_and_quickly():
    n = 20_000
    product = np.array([i % 7 for i in range(n)], dtype=np.int64)
    product[-1] = 7  # h, only at the very end
    started = time.perf_counter()
    lists = sequences.session_next(
        visitor=np.zeros(n, dtype=np.int64),
        product=product,
        age=np.linspace(1.0, 0.99, n),
        product_ids=IDS,
        top_n=10,
    )
    assert time.perf_counter() - started < 5
    assert "h" in dict(lists[("session_next", str(IDS[product[-2]]))])
    assert all(len(ranked) <= 10 for ranked in lists.values())


def test_new_products_are_the_recent_ones_with_few_visitors():
    visitor = np.array([*range(30), 40, 41, 42])
    product = codes("a" * 30 + "bbc")
    age = np.array([30.0] * 30 + [2.0, 1.0, 20.0])  # c's first visitor was 20 days ago
    lists = sequences.new_products(visitor, product, age, IDS)
    ranked = dict(lists[("new_products", "")])
    assert set(ranked) == {"b"}  # a has too many visitors, c is not new
    assert ranked["b"] == pytest.approx(1 - 2 / sequences.NEW_PRODUCT_VISITORS)


def test_a_campaigns_list_counts_its_own_visitors():
    lists = sequences.popular_campaign(
        visitor=np.array([0, 0, 1, 2, 3]),
        product=codes("abbcc"),
        age=np.zeros(5),
        weight=np.array([1.0, 5.0, 1.0, 1.0, 1.0]),
        campaign=np.array([1, 1, 1, 2, 0]),
        campaigns=["", "spring", "boots"],
        product_ids=IDS,
        top_n=10,
    )
    assert lists[("popular_campaign", "spring")] == [("b", 6.0), ("a", 1.0)]
    assert lists[("popular_campaign", "boots")] == [("c", 1.0)]
    assert ("popular_campaign", "") not in lists


def test_the_visit_in_an_evaluation_is_the_trailing_run_of_close_events():
    def at(minutes: float) -> dt.datetime:
        return NOW - dt.timedelta(minutes=minutes)

    events = [
        Interaction("v", "old", at(300), "view"),
        Interaction("v", "a", at(20), "view"),
        Interaction("v", "b", at(10), "view"),
        Interaction("v", "a", at(5), "view"),
    ]
    assert session_products(events, now=NOW) == ["a", "b", "a"]
    assert session_products(events, now=NOW + dt.timedelta(hours=2)) == []


# The blend --------------------------------------------------------------------------------
STORE = {
    ("session_next", "shoe"): [("sock", 1.0), ("lace", 0.5)],
    ("session_next", "hat"): [("scarf", 1.0)],
    ("viewed_together", "shoe"): [("boot", 1.0)],
    ("popular_recent", ""): [("mug", 10.0), ("pen", 5.0)],
    ("bestsellers", ""): [("mug", 3.0)],
}


def test_the_last_product_of_the_visit_leads():
    store = MemoryStore(STORE)
    shown = recommend(Blend(), context(session=["shoe", "hat"]), store, 8)
    assert shown[0] == "shoe"  # viewed minutes ago: likely next
    assert shown.index("sock") < shown.index("mug")
    # The same visit the other way round puts what follows the hat first.
    assert recommend(Blend(), context(session=["hat", "shoe"]), store, 4)[:2] == ["hat", "scarf"]


def test_a_product_the_visitor_keeps_coming_back_to_outranks_a_later_one_seen_once():
    shown = recommend(
        Blend(), context(session=["hat", "shoe", "shoe", "shoe", "shoe"]), MemoryStore(STORE), 8
    )
    assert shown.index("shoe") < shown.index("hat")


def test_without_a_visit_the_session_signals_are_silent():
    blend = Blend()
    signals = blend.signals(context(viewed=["shoe"]), MemoryStore(STORE))
    assert not {"session_views", "session_next", "session_similar"} & set(signals)
    assert blend.weights(context(), MemoryStore(STORE))["session_views"] == 0.0


def test_learned_weights_replace_the_defaults_for_their_situation():
    lists = {
        **STORE,
        (WEIGHTS_LIST, SESSION): [("session_views", 0.0), ("session_next", 2.0)],
        (WEIGHTS_LIST, HISTORY): [("recent", 0.0), ("unknown signal", 5.0)],
    }
    store = MemoryStore(lists)
    blend = Blend()
    visit = context(session=["shoe"])
    assert blend.weights(visit, store)["session_next"] == 2.0
    assert "shoe" not in recommend(blend, visit, store, 3)  # re-showing was learned away
    weights = blend.weights(context(), store)
    assert weights["recent"] == 0.0 and "unknown signal" not in weights
    assert weights["country"] == Blend.country_weight


def test_new_products_get_a_bounded_boost_only_where_proposed(settings):
    lists = {
        ("popular_recent", ""): [("old", 10.0), ("fresh", 9.0), ("other", 1.0)],
        ("new_products", ""): [("fresh", 1.0), ("unrelated", 1.0)],
    }
    store = MemoryStore(lists)
    settings.PERSONALIZATION = {"RECOMMENDATION_NEW_PRODUCT_BOOST": 0.25}
    boosted = recommend(Blend(), context(), store, 3)
    assert boosted[0] == "fresh"
    assert "unrelated" not in boosted
    settings.PERSONALIZATION = {"RECOMMENDATION_NEW_PRODUCT_BOOST": 0}
    assert recommend(Blend(), context(), store, 3)[0] == "old"


def test_a_visit_of_thousands_of_views_is_served_from_its_last_views():
    session = [f"p{i % 997}" for i in range(5000)]
    started = time.perf_counter()
    shown = recommend(Blend(), context(session=session), MemoryStore(STORE), 4)
    assert time.perf_counter() - started < 0.5
    assert shown[0] == session[0]


# Learning ---------------------------------------------------------------------------------
def _visits(pattern, n_visitors: int, seed: int = 1) -> list[Interaction]:
    """Visits of five views each, spread over 30 days, generated by ``pattern``."""
    rng = random.Random(seed)
    events = []
    for visitor in range(n_visitors):
        start = NOW - dt.timedelta(days=30) + dt.timedelta(minutes=visitor * 13)
        for step, product in enumerate(pattern(rng)):
            at = start + dt.timedelta(minutes=step)
            events.append(Interaction(f"v{visitor}", product, at, "view"))
    return events


WITHOUT_LEARNING = tuple(f for f in engine.FAMILIES if f.name != "blend_weights")


def _fit(history, now):
    return engine.fit(history, now=now, families=WITHOUT_LEARNING)


def _objective(events, weights_lists) -> float:
    """HR@10 of the blend on each late visit's last view, with ``weights_lists``."""
    cut = sorted(event.at for event in events)[int(len(events) * 0.8)]
    history = [e for e in events if e.at < cut]
    store = MemoryStore({**_fit(history, cut), **weights_lists})
    visits: dict[str, list[Interaction]] = {}
    for event in events:
        if event.at >= cut:
            visits.setdefault(event.visitor, []).append(event)
    hits = total = 0
    for visit in visits.values():
        if len(visit) < 2:
            continue
        total += 1
        seen = [e.product for e in reversed(visit[:-1])]
        hits += visit[-1].product in recommend(Blend(), context(session=seen), store, 10)
    return hits / total


def test_a_shop_whose_visitors_go_back_learns_to_show_the_visit_again():
    catalogue = [f"p{i}" for i in range(400)]

    def back_and_forth(rng):
        first = rng.sample(catalogue, 4)
        return [*first, rng.choice(first[:3])]  # the last view is one seen before

    events = _visits(back_and_forth, 1500)
    learned = learning.learn(events, now=NOW, fit=_fit)
    weights = dict(learned[(WEIGHTS_LIST, SESSION)])
    defaults = {**Blend().history_weights(), **Blend.session_weights}
    assert weights["session_views"] > 0
    assert weights["session_next"] <= defaults["session_next"]
    assert _objective(events, learned) >= _objective(events, {})


def test_a_shop_of_fixed_paths_learns_what_comes_next():
    paths = [[f"s{k}-{i}" for i in range(5)] for k in range(200)]

    def along_a_path(rng):
        return rng.choice(paths)

    events = _visits(along_a_path, 1500)
    learned = learning.learn(events, now=NOW, fit=_fit)
    weights = dict(learned[(WEIGHTS_LIST, SESSION)])
    assert weights["session_next"] >= weights["session_views"]
    assert _objective(events, learned) > 0.9


def test_too_little_history_learns_nothing():
    events = _visits(lambda rng: ["a", "b"], 50)
    assert learning.learn(events, now=NOW, fit=_fit) == {}


# In the shop ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_profile_keeps_this_visits_views_in_order_and_starts_afresh(
    browser, clock, make_product
):
    a, b, c = make_product(), make_product(), make_product()
    for product in (a, b, a):
        browser.get(f"/products/{product.slug}/")
        clock.shift(60)
    assert browser.get("/profile/").json()["session_views"] == [str(a.pk), str(b.pk), str(a.pk)]
    clock.shift(31 * 60)  # a new visit
    browser.get(f"/products/{c.slug}/")
    profile = browser.get("/profile/").json()
    assert profile["session_views"] == [str(c.pk)]
    assert profile["recently_viewed"] == [c.pk, a.pk, b.pk]


@pytest.mark.django_db
def test_a_cached_profile_of_an_earlier_release_still_loads():
    from personalization.profiling.referrer import Referrer
    from personalization.profiling.visitor import ProfileData

    data = ProfileData.new("v1", 1000.0, Referrer())
    raw = data.to_dict()
    del raw["visit_views"]
    loaded = ProfileData.from_dict(raw)
    assert loaded is not None and loaded.visit_views == []
    loaded.add_view("p1", None, 1001.0)
    assert loaded.session_views() == ["p1"]


@pytest.mark.django_db
def test_serving_reads_the_visit_and_a_placement_can_leave_viewed_products_out(rf, make_product):
    from personalization.models import Placement, PlacementRule
    from personalization.recommendations import serving, store
    from personalization.testutils import attach_visitor

    products = [make_product() for _ in range(6)]
    keys = [str(product.pk) for product in products]
    store.save_lists(
        {
            ("session_next", keys[0]): [(keys[1], 1.0)],
            ("popular_recent", ""): [(key, 10.0 - i) for i, key in enumerate(keys[2:])],
        }
    )
    request = rf.get("/")
    visitor = attach_visitor(request, in_control_group=False)
    for key in (keys[3], keys[0]):
        visitor.record_view_at(key, None, time.time())
    context = serving.context_for(request, None)
    assert context.session == [keys[0], keys[3]]
    shown = [str(p.pk) for p in serving.recommend(request, "home", limit=4)]
    assert shown[:2] == [keys[0], keys[1]]  # viewed just now, then what comes next

    placement = Placement.objects.create(slug="home", name="Home")
    PlacementRule.objects.create(placement=placement, kind=PlacementRule.EXCLUDE_VIEWED)
    shown = [str(p.pk) for p in serving.recommend(request, "home", limit=4)]
    assert keys[0] not in shown and keys[3] not in shown
    assert shown[0] == keys[1] and len(shown) == 4


@pytest.mark.django_db
def test_a_product_deleted_after_being_viewed_leaves_no_gap(rf, make_product):
    from personalization.recommendations import serving, store
    from personalization.testutils import attach_visitor

    products = [make_product() for _ in range(6)]
    gone = products.pop(0)
    gone_key = str(gone.pk)
    store.save_lists({("session_next", gone_key): [(str(products[0].pk), 1.0)]})
    request = rf.get("/")
    visitor = attach_visitor(request, in_control_group=False)
    visitor.record_view_at(gone_key, None, time.time())
    gone.delete()
    shown = serving.recommend(request, "home", limit=4)
    keys = [str(product.pk) for product in shown]
    assert len(keys) == 4 and gone_key not in keys
    assert keys[0] == str(products[0].pk)


def test_the_nightly_fit_learns_the_weights_and_fits_the_visit_lists():
    catalogue = [f"p{i}" for i in range(300)]

    def back_and_forth(rng):
        first = rng.sample(catalogue, 4)
        return [*first, rng.choice(first[:3])]

    events = _visits(back_and_forth, 1200)
    events = [dataclasses.replace(e, campaign="spring" if e.visitor < "v3" else "") for e in events]
    lists = engine.fit(events, now=NOW)
    names = {name for name, _ in lists}
    assert {"session_next", "popular_campaign", "blend_weights"} <= names
    assert (WEIGHTS_LIST, SESSION) in lists and ("popular_campaign", "spring") in lists
    # The learned weights are the ones learning gives on the same interactions.
    learned = learning.learn(events, now=NOW, fit=_fit)
    assert dict(lists[(WEIGHTS_LIST, SESSION)]) == dict(learned[(WEIGHTS_LIST, SESSION)])


@pytest.mark.django_db
def test_a_new_visitor_from_a_campaign_gets_what_its_visitors_came_for(rf, make_product):
    from django.utils import timezone

    from personalization.models import ProductInteraction, Visitor
    from personalization.profiling.referrer import Referrer
    from personalization.recommendations import precompute, serving, store
    from personalization.testutils import attach_visitor

    products = [make_product() for _ in range(8)]
    boots, *others = products
    now = timezone.now()
    rows = []
    for n in range(12):  # the campaign's visitors all look at the boots
        Visitor.objects.create(
            id=f"c{n}", first_seen=now, last_seen=now, first_source="email",
            latest_source="email", latest_campaign="winter-boots",
        )  # fmt: skip
        rows.append(ProductInteraction(visitor_id=f"c{n}", product_id=str(boots.pk), kind="view"))
    for n in range(40):  # everyone else makes the others popular
        for product in others:
            rows.append(
                ProductInteraction(visitor_id=f"o{n}", product_id=str(product.pk), kind="view")
            )
    ProductInteraction.objects.bulk_create(rows)
    store.forget_local()
    precompute.recompute_all()
    assert store.SharedStore().get("popular_campaign", "winter-boots")[0][0] == str(boots.pk)

    def first_shown(campaign: str | None) -> str:
        request = rf.get("/")
        attach_visitor(request, in_control_group=False, referrer=Referrer(campaign=campaign))
        return str(serving.recommend(request, "home", limit=4).products[0].pk)

    assert first_shown("winter-boots") == str(boots.pk)
    assert first_shown(None) != str(boots.pk)
