"""The built-in strategies, and :func:`recommend`, the one way serving and evaluation call them.

Each strategy reads the lists of :mod:`.engine` through a :class:`~.base.ListStore` and
never fits anything. :class:`Blend` (``auto``) is the personal mix; the others are single
signals a placement can choose, with ``bestsellers`` as the non-personalized default.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

from . import vectors
from .base import (
    MAX_SESSION,
    Context,
    ListStore,
    Ranked,
    Segment,
    SignalParts,
    Strategy,
    best_scored,
)

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


def _seed_weights(seeds: Iterable[str], decay: float) -> dict[str, float]:
    """``1 / (1 + position) ** decay`` per distinct seed: earlier seeds count more."""
    distinct = dict.fromkeys(seeds)
    known = _decays.get(decay)
    if known is None or len(known) < len(distinct):
        known = [1.0 / (1.0 + position) ** decay for position in range(max(len(distinct), 128))]
        if len(_decays) < 64:  # a few decays are in use: the blend's and the strategies'
            _decays[decay] = known
    return dict(zip(distinct, known, strict=False))


# Per decay, the weights of the first positions, worked out once.
_decays: dict[float, list[float]] = {}


def _neighbour_parts(
    lists: Iterable[Mapping[str, Ranked]],
    weights: Mapping[str, float],
    *,
    each_on_its_own_scale: bool = False,
) -> list[Segment]:
    """The seeds' item-to-item ``lists``, each weighing its seed's weight (divided by the
    list's best score with ``each_on_its_own_scale``)."""
    parts: list[Segment] = []
    for by_seed in lists:
        for seed, ranked in by_seed.items():
            weight = weights[seed]
            if each_on_its_own_scale:
                top = ranked[0][1] if ranked else 0.0
                if top <= 0:
                    continue
                weight /= top
            parts.append((ranked, weight))
    return parts


def _summed(parts: Iterable[Segment]) -> dict[str, float]:
    """Each product's sum of ``weight * value`` over ``parts``, in their order."""
    scores: dict[str, float] = {}
    get = scores.get
    for items, weight in parts:
        pairs = items.items() if isinstance(items, Mapping) else items
        for product, value in pairs:
            scores[product] = get(product, 0.0) + weight * value
    return scores


def _neighbours(
    lists: Iterable[Mapping[str, Ranked]],
    weights: Mapping[str, float],
    blocked: set[str],
    *,
    each_on_its_own_scale: bool = False,
) -> dict[str, float]:
    """Products in the seeds' item-to-item ``lists``: the sum of their scores times the
    seeds' weights (each list first divided by its best score with
    ``each_on_its_own_scale``), without ``blocked``."""
    scores = _summed(_neighbour_parts(lists, weights, each_on_its_own_scale=each_on_its_own_scale))
    for product in blocked:  # fewer than the items: cheaper once here than per item
        scores.pop(product, None)
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
        return best_scored(_neighbours(lists, weights, context.excluded()), limit)


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
        return best_scored(_buy_again_scores(context, store, self.recency_decay), limit)


class Bestsellers(_OneList):
    """The most bought products: the non-personalized default."""

    name = "bestsellers"
    label = "Bestsellers"
    list_name = "bestsellers"


class Blend(Strategy):
    """The personal mix, for any visitor, and session-aware.

    Signals (:meth:`signals`), each scoring its candidates in [0, 1] (divided by its best
    score) and weighed; a product's score is the sum:

    - ``buy_again``: the visitor's past purchases, as :class:`BuyAgain` ranks them;
    - ``viewed``: the visitor's views, the latest first;
    - ``item_model``: the ``item_model`` lists of the visitor's history (the page's product,
      cart, views and purchases, most recent first, each weighing
      ``1 / (1 + position) ** seed_decay``), and ``neighbours``: the co-occurrence lists of
      the products outside the item model;
    - ``intent``: the co-occurrence neighbours of the page's product and the cart;
    - ``category``: the popular products of the visitor's top categories (a first visit's
      landing category first);
    - ``country``, ``recent``, ``trending``: recent favourites of the visitor's country, of
      everyone, and what trends;
    - ``campaign``: what the visitors of the campaign they came from took;
    - this visit (``Context.session``): ``session_views``, the products viewed in it, the
      latest and the most revisited first (a product viewed minutes ago is often the next
      one); ``session_next``, what visitors take next after its last products
      (``session_next`` lists); ``session_similar``, their co-occurrence neighbours.

    Weights: two sets, one for a visitor in the middle of a visit (``session`` set) and one
    without (``history`` set: an email, a first page). Each shop's nightly fit learns both on
    its own history (:mod:`.learning`, stored as the ``blend_weights`` lists); until then,
    and for a signal the fit did not learn, the class's ``…_weight`` attributes (history) and
    :attr:`session_weights` apply. A signal that knows nothing of the visitor adds nothing,
    which leaves a new visitor their country's and campaign's favourites mixed with what
    sells everywhere, and gives a returning customer mostly what they buy again and what
    goes with it.

    New products (``new_products``: first seen lately, few visitors) get a bounded boost,
    never learned: up to ``RECOMMENDATION_NEW_PRODUCT_BOOST`` times the best candidate's
    score, and only when another signal already proposes them."""

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
    campaign_weight = 0.3
    seeds = 100
    seed_decay = 0.15
    # Until the fit learns them: the weights while a visit is going on.
    session_weights: Mapping[str, float] = {
        "session_views": 1.0,
        "session_next": 1.0,
        "session_similar": 0.5,
    }
    session_decay = 1.0  # how fast older views of the visit count less
    session_seeds = 10  # how many of the visit's last products its lists start from

    def history_weights(self) -> dict[str, float]:
        """The default weights without a visit going on: the class's attributes."""
        return {
            "buy_again": self.buy_again_weight,
            "viewed": self.viewed_weight,
            "item_model": self.item_model_weight,
            "neighbours": self.neighbour_weight,
            "intent": self.intent_weight,
            "category": self.category_weight,
            "country": self.country_weight,
            "recent": self.recent_weight,
            "trending": self.trending_weight,
            "campaign": self.campaign_weight,
            **dict.fromkeys(SESSION_SIGNALS, 0.0),
        }

    def weights(self, context: Context, store: ListStore) -> dict[str, float]:
        """The weight of each signal for this context: learned by the fit when it did."""
        situation = SESSION if context.session else HISTORY
        weights = self.history_weights()
        if situation == SESSION:
            weights.update(self.session_weights)
        for signal, weight in store.get(WEIGHTS_LIST, situation):
            if signal in weights:
                weights[signal] = float(weight)
        return weights

    def signals(
        self, context: Context, store: ListStore, names: Iterable[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """Each signal's scores, divided by its best (signals of ``names`` only, default
        every one); excluded products are left out."""
        blocked = context.excluded()
        raw = self._raw_signals(context, store, set(SIGNALS if names is None else names), blocked)
        return {name: _scaled(signal, blocked) for name, signal in raw.items()}

    def _raw_signals(
        self, context: Context, store: ListStore, wanted: set[str], blocked: set[str]
    ) -> dict[str, Mapping[str, float]]:
        """Each wanted signal's scores as found (not scaled; may hold ``blocked``)."""
        return _raw_from_parts(self._signal_parts(context, store, wanted), blocked)

    def _signal_parts(
        self, context: Context, store: ListStore, wanted: set[str]
    ) -> dict[str, SignalParts]:
        """Each wanted signal as the parts it sums (:data:`Segment`), and whether it leaves
        the excluded products out before its best score is taken."""
        found: dict[str, SignalParts] = {}
        if "buy_again" in wanted:
            buy_again = _buy_again_scores(context, store, self.buy_again_decay)
            found["buy_again"] = ([(buy_again, 1.0)], False)
        if "viewed" in wanted:
            found["viewed"] = ([(_seed_weights(context.viewed[:MAX_SEEDS], 1.0), 1.0)], False)
        current = [context.product] if context.product else []
        if wanted & {"item_model", "neighbours"}:
            history = [*current, *context.cart, *_interleave(context.viewed, context.purchased)]
            weights = _seed_weights(history[: self.seeds], self.seed_decay)
            modelled = store.get_many("item_model", weights)
            found["item_model"] = (_neighbour_parts([modelled], weights), True)
            others = [seed for seed in weights if seed not in modelled]
            co_occurring = (store.get_many(name, others) for name in CO_OCCURRENCE_LISTS)
            found["neighbours"] = (_neighbour_parts(co_occurring, weights), True)
        if "intent" in wanted:
            intent = _seed_weights([*current, *context.cart, *context.just_bought()], 1.0)
            around = (store.get_many(name, intent) for name in CO_OCCURRENCE_LISTS)
            found["intent"] = (_neighbour_parts(around, intent), True)
        if "category" in wanted:
            found["category"] = (_category_parts(context, store), False)
        if "country" in wanted and context.country:
            found["country"] = ([(store.get("popular_country", context.country), 1.0)], False)
        if "recent" in wanted:
            found["recent"] = ([(store.get("popular_recent"), 1.0)], False)
        if "trending" in wanted:
            found["trending"] = ([(store.get("trending"), 1.0)], False)
        if "campaign" in wanted and context.campaign:
            campaign = store.get("popular_campaign", context.campaign[:100])
            found["campaign"] = ([(campaign, 1.0)], False)
        if context.session:
            found.update(self._session_parts(context, store, wanted))
        return found

    def _session_parts(
        self, context: Context, store: ListStore, wanted: set[str]
    ) -> dict[str, SignalParts]:
        session = context.session[:MAX_SESSION]
        found: dict[str, SignalParts] = {}
        if "session_views" in wanted:
            views: dict[str, float] = {}
            for position, product in enumerate(session):
                views[product] = views.get(product, 0.0) + 1.0 / (1.0 + position) ** (
                    self.session_decay
                )
            found["session_views"] = ([(views, 1.0)], False)
        seeds = list(dict.fromkeys(session))[: self.session_seeds]
        if "session_next" in wanted:
            steep = _seed_weights(seeds, 2.0 * self.session_decay)
            lists = [store.get_many("session_next", steep)]
            found["session_next"] = (
                _neighbour_parts(lists, steep, each_on_its_own_scale=True),
                True,
            )
        if "session_similar" in wanted:
            weights = _seed_weights(seeds, self.session_decay)
            around = (store.get_many(name, weights) for name in CO_OCCURRENCE_LISTS)
            found["session_similar"] = (
                _neighbour_parts(around, weights, each_on_its_own_scale=True),
                True,
            )
        return found

    def recommend(self, context: Context, store: ListStore, limit: int) -> list[str]:
        weights = self.weights(context, store)
        used = {name for name, weight in weights.items() if weight > 0}
        blocked = context.excluded()
        if type(self)._raw_signals is not Blend._raw_signals:  # a subclass's own signals
            return _blended(self._raw_signals(context, store, used, blocked), weights, blocked,
                            store, limit)  # fmt: skip
        parts = self._signal_parts(context, store, used)
        ranked = vectors.blended(
            parts, weights, blocked, limit, store.get("new_products"), _new_product_share()
        )
        if ranked is not None:
            return ranked
        return _blended(_raw_from_parts(parts, blocked), weights, blocked, store, limit)


def _raw_from_parts(
    parts: Mapping[str, SignalParts], blocked: set[str]
) -> dict[str, Mapping[str, float]]:
    """Each signal's sums (:func:`_summed`), the excluded products left out where it says."""
    found: dict[str, Mapping[str, float]] = {}
    for name, (segments, drops_blocked) in parts.items():
        scores = _summed(segments)
        if drops_blocked:
            for product in blocked:
                scores.pop(product, None)
        found[name] = scores
    return found


def _blended(
    raw: Mapping[str, Mapping[str, float]],
    weights: Mapping[str, float],
    blocked: set[str],
    store: ListStore,
    limit: int,
) -> list[str]:
    """The blend's ranking of its signals ``raw``, in Python: each signal divided by its best
    score and weighed, summed in the signals' order; then the new products' boost. The
    reference for :func:`.vectors.blended`, which gives the same floats."""
    scores: dict[str, float] = {}
    get = scores.get
    for name, signal in raw.items():
        top = max(signal.values(), default=0.0)
        if top <= 0:
            continue
        factor = weights[name] / top
        if not scores:  # the first signal: the same sums, built at once
            scores = {product: factor * value for product, value in signal.items()}
            get = scores.get
            continue
        for product, value in signal.items():
            scores[product] = get(product, 0.0) + factor * value
    for product in blocked:  # fewer than the candidates: cheaper once here than per item
        scores.pop(product, None)
    _boost_new(scores, store)
    return best_scored(scores, limit)


# The blend's signals, and its two weight sets (keys of the ``blend_weights`` lists).
SESSION_SIGNALS = ("session_views", "session_next", "session_similar")
SIGNALS = (
    "buy_again",
    "viewed",
    "item_model",
    "neighbours",
    "intent",
    "category",
    "country",
    "recent",
    "trending",
    "campaign",
    *SESSION_SIGNALS,
)
WEIGHTS_LIST = "blend_weights"
SESSION, HISTORY = "session", "history"


def _scaled(signal: Mapping[str, float], blocked: set[str]) -> dict[str, float]:
    """``signal`` without ``blocked`` products, divided by its best score; {} when it has
    no positive score."""
    top = max(signal.values(), default=0.0)
    if top <= 0:
        return {}
    return {product: value / top for product, value in signal.items() if product not in blocked}


def _new_product_share() -> float | None:
    """``RECOMMENDATION_NEW_PRODUCT_BOOST`` at most 1; None when it is not a number."""
    from ..conf import app_settings

    try:
        return min(float(app_settings.RECOMMENDATION_NEW_PRODUCT_BOOST), 1.0)
    except (TypeError, ValueError):
        return None


def _boost_new(scores: dict[str, float], store: ListStore) -> None:
    """Raise the new products among ``scores`` by up to ``RECOMMENDATION_NEW_PRODUCT_BOOST``
    (at most 1) times the best score, in proportion to their newness."""
    if not scores:
        return
    share = _new_product_share()
    if share is None:
        return
    boost = share * max(scores.values())
    if not boost > 0:
        return
    for product, newness in store.get("new_products"):
        if product in scores:
            scores[product] += boost * newness


def _interleave(first: Sequence[str], second: Sequence[str]) -> list[str]:
    """``first[0], second[0], first[1], second[1], …``, then the rest of the longer."""
    both = min(len(first), len(second))
    pairs = zip(first[:both], second[:both], strict=True)
    return [*itertools.chain.from_iterable(pairs), *first[both:], *second[both:]]


def _category_parts(context: Context, store: ListStore) -> list[Segment]:
    """Popular products of the visitor's categories, each list divided by its best score and
    by ``1 + its position``: the strongest interest weighs most."""
    interests = context.categories[:MAX_CATEGORIES]
    lists = store.get_many("popular_category", interests)
    parts: list[Segment] = []
    for position, category in enumerate(interests):
        ranked = lists.get(category, [])
        top = ranked[0][1] if ranked else 0.0
        if top > 0:
            parts.append((ranked, 1.0 / top / (1.0 + position)))
    return parts


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
