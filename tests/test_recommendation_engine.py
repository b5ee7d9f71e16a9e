"""The recommender's engine and strategies on small hand-made histories."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from personalization.recommendations import engine
from personalization.recommendations.base import (
    CART,
    PURCHASE,
    VIEW,
    Context,
    Interaction,
    MemoryStore,
    Ranked,
)
from personalization.recommendations.strategies import (
    BUILTIN_STRATEGIES,
    Blend,
    BoughtTogether,
    BuyAgain,
    PopularNearYou,
    RecentlyViewed,
    Trending,
    ViewedTogether,
    recommend,
)

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def event(
    visitor: str,
    product: str,
    kind: str = VIEW,
    days_ago: float = 1.0,
    country: str = "",
) -> Interaction:
    return Interaction(visitor, product, NOW - dt.timedelta(days=days_ago), kind, country)


def products(ranked: Ranked) -> list[str]:
    return [product for product, _ in ranked]


def context(**kwargs: object) -> Context:
    return Context(now=NOW, **kwargs)  # type: ignore[arg-type]


# Engine ------------------------------------------------------------------------------------
def test_nothing_to_fit_gives_no_lists():
    assert engine.fit([], now=NOW) == {}
    assert engine.fit_trending([], now=NOW) == {}


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="wish"):
        engine.fit([event("a", "p1", kind="wish")], now=NOW)


def test_viewed_together_ranks_by_shared_visitors():
    lists = engine.fit(
        [
            event("a", "p1"),
            event("a", "p2"),
            event("b", "p1"),
            event("b", "p2"),
            event("c", "p1"),
            event("c", "p3"),
            event("d", "p4"),
            event("d", "p5"),
        ],
        now=NOW,
    )
    assert products(lists[("viewed_together", "p1")]) == ["p2", "p3"]
    assert products(lists[("viewed_together", "p2")]) == ["p1"]
    assert products(lists[("viewed_together", "p4")]) == ["p5"]
    scores = dict(lists[("viewed_together", "p1")])
    assert scores["p2"] > scores["p3"] > 0
    # Views say nothing about what is bought together.
    assert ("bought_together", "p1") not in lists


def test_a_visitor_who_touched_everything_links_less_than_a_focused_one():
    many = [event("wholesaler", f"p{i}") for i in range(1, 9)]
    lists = engine.fit([*many, event("focused", "p1"), event("focused", "p3")], now=NOW)
    scores = dict(lists[("viewed_together", "p1")])
    assert products(lists[("viewed_together", "p1")])[0] == "p3"
    assert scores["p3"] > scores["p2"]


def test_bought_together_uses_purchases_only():
    lists = engine.fit(
        [
            event("a", "p1", PURCHASE),
            event("a", "p2", PURCHASE),
            event("a", "p3", VIEW),
            event("b", "p1", PURCHASE),
            event("b", "p2", PURCHASE),
        ],
        now=NOW,
    )
    assert products(lists[("bought_together", "p1")]) == ["p2"]
    assert "p3" not in products(lists.get(("viewed_together", "p1"), []))


def test_bestsellers_count_distinct_buyers_and_only_purchases():
    lists = engine.fit(
        [
            *[event("big", "bulk", PURCHASE, days_ago=i) for i in range(1, 11)],
            event("a", "loved", PURCHASE),
            event("b", "loved", PURCHASE),
            *[event(f"v{i}", "looked-at") for i in range(6)],
        ],
        now=NOW,
    )
    assert products(lists[("bestsellers", "")]) == ["loved", "bulk"]
    # popular counts every kind, each visitor once: two buyers (weight 5 each), six viewers
    # (1 each), one buyer.
    assert products(lists[("popular", "")]) == ["loved", "looked-at", "bulk"]


def test_decay_puts_recent_interest_first():
    old = [event(f"o{i}", "old-favourite", days_ago=60) for i in range(6)]
    new = [event(f"n{i}", "new-thing", days_ago=0.5) for i in range(2)]
    lists = engine.fit([*old, *new], now=NOW)
    assert products(lists[("popular", "")]) == ["old-favourite", "new-thing"]
    assert products(lists[("popular_recent", "")]) == ["new-thing", "old-favourite"]
    assert products(lists[("trending", "")]) == ["new-thing", "old-favourite"]


def test_trending_half_life_is_shorter_than_recent_popularity():
    # Three views 4 days ago against one view 1 hour ago: a week's half-life still prefers the
    # three, a day's prefers the fresh one.
    interactions = [
        *[event(f"o{i}", "last-week", days_ago=4) for i in range(3)],
        event("n", "this-hour", days_ago=1 / 24),
    ]
    lists = engine.fit(interactions, now=NOW)
    assert products(lists[("popular_recent", "")]) == ["last-week", "this-hour"]
    assert products(lists[("trending", "")]) == ["this-hour", "last-week"]


def test_kinds_weigh_differently():
    lists = engine.fit(
        [event("a", "viewed", VIEW), event("b", "carted", CART), event("c", "bought", PURCHASE)],
        now=NOW,
    )
    assert products(lists[("popular", "")]) == ["bought", "carted", "viewed"]


def test_repeated_interactions_of_one_visitor_count_once():
    lists = engine.fit(
        [*[event("fan", "p1", days_ago=1 + i / 10) for i in range(20)], event("a", "p2"),
         event("b", "p2")],
        now=NOW,
    )  # fmt: skip
    assert products(lists[("popular", "")]) == ["p2", "p1"]


def test_popular_country():
    lists = engine.fit(
        [
            event("de1", "pretzel", PURCHASE, country="DE"),
            event("de2", "pretzel", PURCHASE, country="DE"),
            event("de3", "tea", PURCHASE, country="DE"),
            event("gb1", "tea", PURCHASE, country="GB"),
            event("x", "tea", PURCHASE),
        ],
        now=NOW,
    )
    assert products(lists[("popular_country", "DE")]) == ["pretzel", "tea"]
    assert products(lists[("popular_country", "GB")]) == ["tea"]
    assert ("popular_country", "") not in lists
    assert products(lists[("trending_country", "DE")]) == ["pretzel", "tea"]


def test_popular_category_only_with_categories():
    interactions = [
        event("a", "tent"),
        event("b", "tent"),
        event("c", "stove"),
        event("d", "mug"),
        event("e", "unknown"),
    ]
    assert not any(name == "popular_category" for name, _ in engine.fit(interactions, now=NOW))
    lists = engine.fit(
        interactions,
        now=NOW,
        categories={"tent": "camping", "stove": "camping", "mug": "kitchen"},
    )
    assert products(lists[("popular_category", "camping")]) == ["tent", "stove"]
    assert products(lists[("popular_category", "kitchen")]) == ["mug"]
    assert {key for name, key in lists if name == "popular_category"} == {"camping", "kitchen"}


def test_replenishment_prefers_products_bought_again():
    interactions = []
    for visitor in ("a", "b", "c"):
        interactions += [
            event(visitor, "coffee", PURCHASE, days_ago=40),
            event(visitor, "coffee", PURCHASE, days_ago=10),
            event(visitor, "kettle", PURCHASE, days_ago=40),
        ]
    lists = engine.fit(interactions, now=NOW)
    coffee = lists[("replenishment", "coffee")]
    kettle = lists[("replenishment", "kettle")]
    assert products(coffee) == ["coffee"] and products(kettle) == ["kettle"]
    assert coffee[0][1] > kettle[0][1] > 0
    only = engine.fit(interactions, now=NOW, replenishable={"coffee"})
    assert ("replenishment", "coffee") in only and ("replenishment", "kettle") not in only


def test_top_n_caps_every_list():
    interactions = [event(f"v{i}", f"p{j}") for i in range(6) for j in range(i + 1)]
    lists = engine.fit(interactions, now=NOW, top_n=3)
    assert all(len(ranked) <= 3 for ranked in lists.values())
    assert products(lists[("popular", "")]) == ["p0", "p1", "p2"]


def test_lists_hold_strings_and_floats_best_first():
    lists = engine.fit(
        [event("a", "1", PURCHASE), event("a", "2", PURCHASE), event("b", "1", PURCHASE)],
        now=NOW,
    )
    for ranked in lists.values():
        assert all(isinstance(p, str) and isinstance(s, float) for p, s in ranked)
        assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_fit_trending_recomputes_only_the_trending_lists():
    interactions = [
        event("a", "p1", country="DE"),
        event("b", "p1", PURCHASE, country="FR"),
        event("b", "p2", PURCHASE, country="FR"),
    ]
    full = engine.fit(interactions, now=NOW)
    trending = engine.fit_trending(interactions, now=NOW)
    assert {name for name, _ in trending} == {"trending", "trending_country"}
    assert trending == {key: ranked for key, ranked in full.items() if key in trending}


def test_item_model_links_products_of_the_same_visitors():
    interactions = []
    for i in range(8):
        interactions += [event(f"c{i}", "chips", PURCHASE), event(f"c{i}", "salsa", PURCHASE)]
    for i in range(8):
        interactions += [event(f"g{i}", "glue", PURCHASE), event(f"g{i}", "paper", PURCHASE)]
    lists = engine.fit(interactions, now=NOW)
    assert products(lists[("item_model", "chips")]) == ["salsa"]
    assert products(lists[("item_model", "glue")]) == ["paper"]


# Strategies --------------------------------------------------------------------------------
SHOP = [
    # Camping gear goes together; so do kitchen things.
    *[event(f"camper{i}", "tent", PURCHASE, country="DE") for i in range(4)],
    *[event(f"camper{i}", "stove", PURCHASE, country="DE") for i in range(3)],
    *[event(f"camper{i}", "lamp", VIEW, country="DE") for i in range(2)],
    *[event(f"cook{i}", "pan", PURCHASE, country="FR") for i in range(5)],
    *[event(f"cook{i}", "knife", PURCHASE, country="FR") for i in range(3)],
    *[event(f"cook{i}", "apron", VIEW, country="FR") for i in range(2)],
    *[event(f"buyer{i}", "coffee", PURCHASE, days_ago=30) for i in range(3)],
    *[event(f"buyer{i}", "coffee", PURCHASE, days_ago=2) for i in range(3)],
    *[event(f"camper{i}", "tent", VIEW, days_ago=2, country="DE") for i in range(4)],
    *[event(f"cook{i}", "pan", VIEW, days_ago=2, country="FR") for i in range(4)],
    *[event(f"viewer{i}", "hot-gadget", VIEW, days_ago=0.1) for i in range(15)],
]


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    return MemoryStore(engine.fit(SHOP, now=NOW))


def test_builtin_names():
    assert set(BUILTIN_STRATEGIES) == {
        "recently_viewed",
        "viewed_together",
        "bought_together",
        "trending",
        "popular_near_you",
        "buy_again",
        "bestsellers",
        "auto",
    }
    assert all(cls.name == name for name, cls in BUILTIN_STRATEGIES.items())


def test_recommend_fills_from_bestsellers_without_repeats_or_excluded(store):
    seen = context(viewed=["tent", "lamp", "tent"], cart=["pan"], exclude={"stove"})
    result = recommend(RecentlyViewed(), seen, store, 5)
    assert result[:2] == ["tent", "lamp"]
    assert len(result) == len(set(result)) == 5
    assert not {"pan", "stove"} & set(result)
    # Then bestsellers, in order, then popular products.
    bestsellers = [p for p, _ in store.get("bestsellers") if p not in {"tent", "pan", "stove"}]
    assert result[2:4] == bestsellers == ["coffee", "knife"]
    assert result[4] == "hot-gadget"


def test_recommend_fills_from_popular_after_bestsellers(store):
    everything = {p for p, _ in store.get("popular")}
    result = recommend(RecentlyViewed(), context(), store, 50)
    assert set(result) == everything
    assert result[: len(store.get("bestsellers"))] == products(store.get("bestsellers"))
    assert recommend(RecentlyViewed(), context(), store, 0) == []


def test_recently_viewed_and_page_product(store):
    visitor = context(viewed=["lamp", "tent", "apron"], product="tent")
    assert RecentlyViewed().recommend(visitor, store, 3) == ["lamp", "apron"]


def test_viewed_together_from_the_page_or_the_history(store):
    assert ViewedTogether().recommend(context(product="lamp"), store, 5) == ["tent"]
    assert ViewedTogether().recommend(context(viewed=["apron"]), store, 5) == ["pan"]
    assert ViewedTogether().recommend(context(viewed=["apron"], cart=["tent"]), store, 5) == [
        "lamp",
        "pan",
    ]


def test_bought_together_from_the_page_or_the_cart(store):
    assert BoughtTogether().recommend(context(product="tent"), store, 3) == ["stove"]
    assert BoughtTogether().recommend(context(cart=["pan"]), store, 3) == ["knife"]
    assert BoughtTogether().recommend(context(cart=["pan"], product="knife"), store, 3) == []


def test_trending(store):
    assert Trending().recommend(context(), store, 1) == ["hot-gadget"]
    assert Trending().recommend(context(exclude={"hot-gadget"}), store, 1) != ["hot-gadget"]


def test_popular_near_you_falls_back_to_global(store):
    assert PopularNearYou().recommend(context(country="FR"), store, 2) == ["pan", "knife"]
    assert PopularNearYou().recommend(context(country="DE"), store, 2) == ["tent", "stove"]
    nowhere = PopularNearYou().recommend(context(country="JP"), store, 3)
    assert nowhere == products(store.get("popular_recent"))[:3]


def test_buy_again_ranks_what_is_bought_again(store):
    visitor = context(purchased=["tent", "coffee"])
    assert BuyAgain().recommend(visitor, store, 2) == ["coffee", "tent"]
    assert BuyAgain().recommend(
        context(purchased=["tent", "coffee"], cart=["coffee"]), store, 2
    ) == ["tent"]
    assert BuyAgain().recommend(context(purchased=["never-sold"]), store, 2) == []


def test_buy_again_skips_products_that_are_not_replenishable():
    lists = engine.fit(SHOP, now=NOW, replenishable={"coffee"})
    visitor = context(purchased=["tent", "coffee"])
    assert BuyAgain().recommend(visitor, MemoryStore(lists), 5) == ["coffee"]


def test_blend_for_a_brand_new_visitor_starts_with_their_country(store):
    french = recommend(Blend(), context(country="FR"), store, 4)
    assert french[:2] == ["pan", "knife"]
    german = recommend(Blend(), context(country="DE"), store, 4)
    assert german[:2] == ["tent", "stove"]
    anywhere = recommend(Blend(), context(), store, 3)
    assert anywhere[0] == products(store.get("popular_recent"))[0]
    # A country without a list of its own falls back to everyone's favourites.
    assert recommend(Blend(), context(country="JP"), store, 3) == anywhere


def test_blend_for_a_returning_customer(store):
    customer = context(purchased=["coffee", "pan"], viewed=["lamp"], country="DE")
    result = recommend(Blend(), customer, store, 6)
    assert result[0] == "coffee"
    assert "knife" in result  # bought with the pan
    assert len(result) == len(set(result)) == 6


def test_blend_never_repeats_fills_the_limit_and_respects_exclusions(store):
    everything = {p for p, _ in store.get("popular")}
    customer = context(
        purchased=["coffee", "pan"],
        viewed=["lamp", "tent"],
        cart=["knife"],
        product="stove",
        exclude={"hot-gadget"},
        country="DE",
    )
    result = recommend(Blend(), customer, store, 20)
    assert len(result) == len(set(result))
    assert not {"knife", "stove", "hot-gadget"} & set(result)
    assert set(result) == everything - {"knife", "stove", "hot-gadget"}
    assert len(recommend(Blend(), customer, store, 3)) == 3


def test_blend_with_exclude_history_recommends_only_new_products(store):
    customer = context(purchased=["pan", "coffee"], viewed=["apron"], exclude_history=True)
    result = recommend(Blend(), customer, store, 4)
    assert not {"coffee", "pan", "apron"} & set(result)
    assert result[0] == "knife"  # bought with the pan
    assert len(result) == 4
    assert recommend(Blend(), dataclasses.replace(customer, exclude_history=False), store, 1) == [
        "coffee"
    ]


def test_strategies_only_read_the_store():
    class ReadOnly(MemoryStore):
        def __setattr__(self, name: str, value: object) -> None:
            if name != "lists" or hasattr(self, "lists"):
                raise AssertionError("a strategy wrote to the store")
            super().__setattr__(name, value)

    lists = engine.fit(SHOP, now=NOW)
    frozen = ReadOnly({key: list(ranked) for key, ranked in lists.items()})
    visitor = context(purchased=["coffee"], viewed=["lamp"], cart=["pan"], country="FR")
    for strategy in BUILTIN_STRATEGIES.values():
        recommend(strategy(), visitor, frozen, 5)
    assert frozen.lists == lists


def test_blend_on_a_product_page_leans_on_the_product(store):
    assert recommend(Blend(), context(product="tent"), store, 1) == ["stove"]
    assert recommend(Blend(), context(product="pan"), store, 1) == ["knife"]


def test_blend_follows_category_interests():
    categories = {"tent": "camping", "stove": "camping", "lamp": "camping", "pan": "kitchen"}
    lists = MemoryStore(engine.fit(SHOP, now=NOW, categories=categories))
    assert recommend(Blend(), context(categories=["kitchen"]), lists, 1) == ["pan"]
    assert recommend(Blend(), context(categories=["camping"]), lists, 1) == ["tent"]


def test_item_model_covers_the_most_seen_products_and_the_blend_falls_back(monkeypatch):
    assert ("item_model", "stove") in engine.fit(SHOP, now=NOW)
    monkeypatch.setattr(engine, "ITEM_MODEL_MAX_PRODUCTS", 3)
    lists = engine.fit(SHOP, now=NOW)
    assert {key for name, key in lists if name == "item_model"} <= {"hot-gadget", "tent", "pan"}
    # The stove is outside the item model: its co-occurrence neighbour, the tent, stands in
    # (without it, the most popular product, the pan, would come first).
    customer = context(purchased=["stove"], exclude_history=True)
    assert recommend(Blend(), customer, MemoryStore(lists), 1) == ["tent"]
    without = Blend()
    without.neighbour_weight = 0.0
    assert recommend(without, customer, MemoryStore(lists), 1) == ["pan"]


def test_what_was_just_bought_is_not_offered_again(store):
    earlier = context(purchased=["coffee", "pan"], country="DE")
    assert "coffee" in recommend(Blend(), earlier, store, 3)
    just_now = context(
        purchased=["coffee", "pan"],
        country="DE",
        purchased_at={"coffee": NOW - dt.timedelta(minutes=2), "pan": NOW - dt.timedelta(days=20)},
    )
    result = recommend(Blend(), just_now, store, 3)
    assert "coffee" not in result  # in the order just placed
    assert "pan" in result  # bought long ago: due again
    assert recommend(BuyAgain(), just_now, store, 3)[0] == "pan"
