"""The blend's sums in NumPy give the Python reference's floats, hence its ranking, to the
last tie; served lists are turned into arrays once."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.core.cache import cache

from personalization.recommendations import store as shared
from personalization.recommendations import strategies, vectors
from personalization.recommendations.base import Context, MemoryStore, RankedList

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
LIST_NAMES = ("item_model", "viewed_together", "bought_together", "session_next")


def random_store(rng: random.Random, products: list[str]) -> MemoryStore:
    """Lists of every kind the blend reads, with tied scores, repeated products and gaps."""

    def ranked(size: int) -> list[tuple[str, float]]:
        chosen = rng.sample(products, size)
        if size > 3 and rng.random() < 0.2:
            chosen[-1] = chosen[0]  # a product twice in one list: its values add up
        scores = sorted((rng.choice([0.5, 1.0, 2.0, rng.random()]) for _ in chosen), reverse=True)
        return list(zip(chosen, scores, strict=True))

    lists: dict[tuple[str, str], list] = {}
    for name in LIST_NAMES:
        for product in products:
            if rng.random() < 0.8:
                lists[(name, product)] = ranked(rng.randint(0, 12))
    for key in ("DE", "FR"):
        lists[("popular_country", key)] = ranked(15)
    for key in ("c1", "c2", "c3"):
        lists[("popular_category", key)] = ranked(10)
    lists[("popular_category", "c0")] = [(products[0], 0.0)]  # no positive score: left out
    for name in ("popular_recent", "trending", "bestsellers"):
        lists[(name, "")] = ranked(20)
    lists[("popular_campaign", "spring")] = ranked(8)
    lists[("replenishment", products[1])] = [(products[1], 0.7)]
    lists[("new_products", "")] = [(product, rng.random()) for product in rng.sample(products, 6)]
    return MemoryStore(lists)


def random_context(rng: random.Random, products: list[str]) -> Context:
    return Context(
        now=NOW,
        viewed=rng.sample(products, rng.randint(0, 25)),
        purchased=rng.sample(products, rng.randint(0, 4)),
        cart=rng.sample(products, rng.randint(0, 2)),
        product=rng.choice([None, *products]),
        country=rng.choice(["", "DE", "FR", "SE"]),
        categories=rng.sample(["c0", "c1", "c2", "c3", "c9"], rng.randint(0, 4)),
        session=[rng.choice(products) for _ in range(rng.randint(0, 10))],
        campaign=rng.choice(["", "spring"]),
        exclude=set(rng.sample(products, rng.randint(0, 3))),
        purchased_at={},
    )


def reference(blend, context, store, weights, limit):
    blocked = context.excluded()
    used = {name for name, weight in weights.items() if weight > 0}
    raw = strategies._raw_from_parts(blend._signal_parts(context, store, used), blocked)
    return strategies._blended(raw, weights, blocked, store, limit)


def vectorised(blend, context, store, weights, limit):
    blocked = context.excluded()
    used = {name for name, weight in weights.items() if weight > 0}
    parts = blend._signal_parts(context, store, used)
    share = strategies._new_product_share()
    return vectors.blended(parts, weights, blocked, limit, store.get("new_products"), share)


def check_against_the_reference(rng, products, contexts, limits):
    """``contexts`` random visitors of a random store: the same ranking as the reference,
    with the default weights and with learned ones, through the blend and directly."""
    store = random_store(rng, products)
    blend = strategies.Blend()
    for _ in range(contexts):
        context = random_context(rng, products)
        weights = blend.weights(context, store)
        learned = {name: rng.choice([0.0, 0.01, rng.random(), 2.0]) for name in weights}
        for limit in limits:
            assert blend.recommend(context, store, limit) == reference(
                blend, context, store, weights, limit
            )
            assert vectorised(blend, context, store, learned, limit) == reference(
                blend, context, store, learned, limit
            )


@pytest.mark.parametrize("seed", range(6))
def test_the_same_ranking_as_the_python_reference(seed):
    # A limit of 1000 takes every candidate, so the order of every score counts.
    check_against_the_reference(random.Random(seed), [f"p{n}" for n in range(60)], 150,
                                (1, 4, 1000))  # fmt: skip


def test_nothing_to_rank():
    blend = strategies.Blend()
    store = MemoryStore({})
    context = Context(now=NOW, product="a", cart=["b"], country="DE")
    assert vectorised(blend, context, store, blend.weights(context, store), 4) == []
    assert vectors.blended({}, {}, set(), 0, [], None) == []


def test_values_it_cannot_sum_are_left_to_python():
    parts = {"recent": ([([("a", "not a number")], 1.0)], False)}
    assert vectors.blended(parts, {"recent": 1.0}, set(), 4, [], None) is None


def test_a_served_list_is_turned_into_arrays_once(settings):
    vectors.forget()
    served = RankedList([("a", 2.0), ("b", 1.0)])
    parts = {"recent": ([(served, 1.0)], False)}
    assert vectors.blended(parts, {"recent": 1.0}, set(), 4, [], None) == ["a", "b"]
    table, codes, values = served.arrays
    assert vectors.blended(parts, {"recent": 1.0}, {"a"}, 4, [], None) == ["b"]
    assert served.arrays[1] is codes and served.arrays[2] is values
    # A fresh table (too many products coded, say) makes them anew, with its own codes.
    vectors.forget()
    assert vectors.blended(parts, {"recent": 1.0}, set(), 4, [], None) == ["a", "b"]
    assert served.arrays[0] is not table


def test_codes_start_afresh_when_full_and_stay_right(monkeypatch):
    monkeypatch.setattr(vectors, "MAX_PRODUCTS", 5)
    vectors.forget()
    check_against_the_reference(random.Random(9), [f"p{n}" for n in range(40)], 40, (8,))


@pytest.mark.django_db
def test_the_serving_store_serves_ranked_lists_and_caches_plain_ones():
    shared.save_lists({("trending", ""): [("a", 2.0), ("b", 1.0)]})
    shared.forget_local()
    served = shared.SharedStore().get("trending")
    assert isinstance(served, RankedList) and served == [("a", 2.0), ("b", 1.0)]
    key = shared._cache_key(shared.current_version(), "trending", "")
    assert type(cache.get(key)) is list  # what other processes unpickle: no class of ours
    shared.forget_local()
    assert isinstance(shared.SharedStore().get("trending"), RankedList)  # from the cache
