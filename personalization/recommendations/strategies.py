"""The built-in strategies, and :func:`recommend`, the one way serving and evaluation call them.

Each strategy reads the lists of :mod:`.engine` through a :class:`~.base.ListStore` and
never fits anything. :class:`Blend` (``auto``) is the personal mix; the others are single
signals a placement can choose, with ``bestsellers`` as the non-personalized default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .base import Context, ListStore, Ranked, Strategy

# How much of a visitor's history item-to-item strategies start from, most recent first.
MAX_SEEDS = 20
# How many of the visitor's past purchases buy-again ranks.
MAX_BUY_AGAIN = 200
# How many of the visitor's top categories the blend draws from.
MAX_CATEGORIES = 5
CO_OCCURRENCE_LISTS = ("viewed_together", "bought_together")


def recommend(strategy: Strategy, context: Context, store: ListStore, limit: int) -> list[str]:
    """Up to ``limit`` product ids from ``strategy``, without repeats or excluded products,
    filled up from ``bestsellers`` and then ``popular`` when the strategy returns fewer."""
    if limit <= 0:
        return []
    blocked = context.excluded()
    chosen: list[str] = []
    seen: set[str] = set()

    def take(products: Iterable[str]) -> bool:
        for product in products:
            if product not in blocked and product not in seen:
                seen.add(product)
                chosen.append(product)
                if len(chosen) >= limit:
                    return True
        return False

    if take(strategy.recommend(context, store, limit)):
        return chosen
    for name in ("bestsellers", "popular"):
        if take(product for product, _ in store.get(name)):
            break
    return chosen


def _first(ranked: Iterable[str], blocked: set[str], limit: int) -> list[str]:
    """The first ``limit`` distinct products of ``ranked`` that are not ``blocked``."""
    chosen: list[str] = []
    for product in dict.fromkeys(ranked):
        if product not in blocked:
            chosen.append(product)
            if len(chosen) >= limit:
                break
    return chosen


def _best(scores: Mapping[str, float], limit: int) -> list[str]:
    """The ``limit`` best-scored products (ties by id, for a stable order)."""
    return sorted(scores, key=lambda product: (-scores[product], product))[:limit]


def _seed_weights(seeds: Iterable[str], decay: float) -> dict[str, float]:
    """``1 / (1 + position) ** decay`` per distinct seed: earlier seeds count more."""
    return {
        seed: 1.0 / (1.0 + position) ** decay for position, seed in enumerate(dict.fromkeys(seeds))
    }


def _neighbours(
    lists: Iterable[Mapping[str, Ranked]], weights: Mapping[str, float], blocked: set[str]
) -> dict[str, float]:
    """Products in the seeds' item-to-item ``lists``: the sum of their scores times the
    seeds' weights."""
    scores: dict[str, float] = {}
    for by_seed in lists:
        for seed, ranked in by_seed.items():
            for product, similarity in ranked:
                if product not in blocked:
                    scores[product] = scores.get(product, 0.0) + weights[seed] * similarity
    return scores


def _buy_again_scores(context: Context, store: ListStore, decay: float) -> dict[str, float]:
    """The visitor's past purchases that are replenishable: each product's replenishment
    score, divided by ``(1 + its position in context.purchased) ** decay``."""
    blocked = context.excluded()
    history = [product for product in context.purchased[:MAX_BUY_AGAIN] if product not in blocked]
    position = {product: index for index, product in enumerate(history)}
    lists = store.get_many("replenishment", history)
    return {
        product: ranked[0][1] / (1.0 + position[product]) ** decay
        for product, ranked in lists.items()
        if ranked
    }


class RecentlyViewed(Strategy):
    """The products the visitor viewed, most recent first."""

    name = "recently_viewed"
    label = "Recently viewed"

    def recommend(self, context: Context, store: ListStore, limit: int) -> list[str]:
        return _first(context.viewed, context.excluded(), limit)


class _ItemToItem(Strategy):
    """Neighbours of the page's product in the ``lists`` named, or, off product pages, of the
    visitor's cart and recent history."""

    lists: tuple[str, ...] = ()

    def seeds(self, context: Context) -> list[str]:
        raise NotImplementedError

    def recommend(self, context: Context, store: ListStore, limit: int) -> list[str]:
        seeds = [context.product] if context.product else self.seeds(context)[:MAX_SEEDS]
        weights = _seed_weights(seeds, 1.0)
        lists = (store.get_many(name, weights) for name in self.lists)
        return _best(_neighbours(lists, weights, context.excluded()), limit)


class ViewedTogether(_ItemToItem):
    """Products viewed by the visitors who viewed this one (or the visitor's recent views)."""

    name = "viewed_together"
    label = "Customers who viewed this also viewed"
    lists = ("viewed_together",)

    def seeds(self, context: Context) -> list[str]:
        return [*context.cart, *context.viewed]


class BoughtTogether(_ItemToItem):
    """Products bought by the customers who bought this one (or the visitor's cart, recent
    views and purchases)."""

    name = "bought_together"
    label = "Customers who bought this also bought"
    lists = ("bought_together",)

    def seeds(self, context: Context) -> list[str]:
        return [*context.cart, *context.viewed, *context.purchased]


class _OneList(Strategy):
    """The products of one precomputed list (``list_name``), in its order."""

    list_name = ""

    def recommend(self, context: Context, store: ListStore, limit: int) -> list[str]:
        return _first((p for p, _ in store.get(self.list_name)), context.excluded(), limit)


class Trending(_OneList):
    """What draws the most interest over the last day or so."""

    name = "trending"
    label = "Trending now"
    list_name = "trending"


class PopularNearYou(Strategy):
    """Recently popular in the visitor's country; recently popular everywhere without one."""

    name = "popular_near_you"
    label = "Popular near you"

    def recommend(self, context: Context, store: ListStore, limit: int) -> list[str]:
        ranked = store.get("popular_country", context.country) if context.country else []
        ranked = [*ranked, *store.get("popular_recent")]
        return _first((p for p, _ in ranked), context.excluded(), limit)


class BuyAgain(Strategy):
    """The visitor's past purchases, most likely to be bought again first: replenishable
    products that past buyers often rebuy and that sell now, the recent purchases first."""

    name = "buy_again"
    label = "Buy again"
    recency_decay = 0.5

    def recommend(self, context: Context, store: ListStore, limit: int) -> list[str]:
        return _best(_buy_again_scores(context, store, self.recency_decay), limit)


class Bestsellers(_OneList):
    """The most bought products: the non-personalized default."""

    name = "bestsellers"
    label = "Bestsellers"
    list_name = "bestsellers"


class Blend(Strategy):
    """The personal mix, for any visitor.

    Signals, each scoring its candidates in [0, 1] (divided by its best score) and weighed by
    its ``…_weight``; a product's score is the sum:

    - buy again: the visitor's past purchases, as :class:`BuyAgain` ranks them;
    - recently viewed: the visitor's views, the latest first;
    - taste: the ``item_model`` lists of the visitor's history (the page's product, cart,
      views and purchases, most recent first, each weighing
      ``1 / (1 + position) ** seed_decay``), and the co-occurrence lists of the products
      outside the item model;
    - intent: the co-occurrence neighbours of the page's product and the cart;
    - category interests: the popular products of the visitor's top categories;
    - place and time: recent favourites of the visitor's country, of everyone, and trending.

    A signal that knows nothing of the visitor adds nothing, which leaves a new visitor their
    country's recent favourites mixed with what sells everywhere, and gives a returning
    customer mostly what they buy again and what goes with it. The weights were chosen on the
    training period of a year of real purchases (``benchmarks/bench_recommendations.py``)."""

    name = "auto"
    label = "Recommended for you"

    buy_again_weight = 3.0
    buy_again_decay = 0.5
    viewed_weight = 0.5
    item_model_weight = 0.75
    neighbour_weight = 0.75
    intent_weight = 1.0
    category_weight = 0.3
    country_weight = 0.3
    recent_weight = 0.2
    trending_weight = 0.1
    seeds = 100
    seed_decay = 0.15

    def recommend(self, context: Context, store: ListStore, limit: int) -> list[str]:
        blocked = context.excluded()
        scores: dict[str, float] = {}

        def add(weight: float, signal: Mapping[str, float]) -> None:
            top = max(signal.values(), default=0.0)
            if weight <= 0 or top <= 0:
                return
            for product, value in signal.items():
                if product not in blocked:
                    scores[product] = scores.get(product, 0.0) + weight * value / top

        add(self.buy_again_weight, _buy_again_scores(context, store, self.buy_again_decay))
        add(self.viewed_weight, _seed_weights(context.viewed[:MAX_SEEDS], 1.0))
        current = [context.product] if context.product else []
        history = [*current, *context.cart, *_interleave(context.viewed, context.purchased)]
        weights = _seed_weights(history[: self.seeds], self.seed_decay)
        modelled = store.get_many("item_model", weights)
        add(self.item_model_weight, _neighbours([modelled], weights, blocked))
        others = [seed for seed in weights if seed not in modelled]
        co_occurring = (store.get_many(name, others) for name in CO_OCCURRENCE_LISTS)
        add(self.neighbour_weight, _neighbours(co_occurring, weights, blocked))
        intent = _seed_weights([*current, *context.cart, *context.just_bought()], 1.0)
        around = (store.get_many(name, intent) for name in CO_OCCURRENCE_LISTS)
        add(self.intent_weight, _neighbours(around, intent, blocked))
        add(self.category_weight, _category_scores(context, store))
        if context.country:
            add(self.country_weight, dict(store.get("popular_country", context.country)))
        add(self.recent_weight, dict(store.get("popular_recent")))
        add(self.trending_weight, dict(store.get("trending")))
        return _best(scores, limit)


def _interleave(first: Sequence[str], second: Sequence[str]) -> list[str]:
    """``first[0], second[0], first[1], second[1], …``."""
    merged: list[str] = []
    for index in range(max(len(first), len(second))):
        merged.extend(sequence[index] for sequence in (first, second) if index < len(sequence))
    return merged


def _category_scores(context: Context, store: ListStore) -> dict[str, float]:
    """Popular products of the visitor's categories, the strongest interest weighing most."""
    interests = context.categories[:MAX_CATEGORIES]
    lists = store.get_many("popular_category", interests)
    scores: dict[str, float] = {}
    for position, category in enumerate(interests):
        ranked = lists.get(category, [])
        top = ranked[0][1] if ranked else 0.0
        for product, value in ranked:
            if top > 0:
                scores[product] = scores.get(product, 0.0) + value / top / (1.0 + position)
    return scores


BUILTIN_STRATEGIES: dict[str, type[Strategy]] = {
    strategy.name: strategy
    for strategy in (
        Blend,
        RecentlyViewed,
        ViewedTogether,
        BoughtTogether,
        Trending,
        PopularNearYou,
        BuyAgain,
        Bestsellers,
    )
}
