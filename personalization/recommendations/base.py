"""The recommender's shared vocabulary: interactions in, precomputed lists, strategies out.

The same code serves the shop and runs the offline evaluation:

- ``engine.fit(interactions, now=...)`` turns interactions (views, carts, purchases) into
  ranked **lists** keyed by ``(list name, key)`` — e.g. ``("viewed_together", product id)`` or
  ``("popular_country", "DE")``. A Celery task stores them; the evaluation keeps them in memory.
- A **strategy** (a :class:`Strategy` subclass) ranks products for a :class:`Context` — what is
  known about the visitor at the moment — reading only those lists through a
  :class:`ListStore`. Serving never fits anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

VIEW = "view"
CART = "cart"
PURCHASE = "purchase"
KINDS = (VIEW, CART, PURCHASE)

Ranked = list[tuple[str, float]]  # (product id, score), best first


# A signal's parts: lists (or dicts) of (product, value), each with the weight its values are
# multiplied by; the signal is their sum per product.
Segment = tuple[Sequence[tuple[str, float]] | Mapping[str, float], float]


# A signal: its parts, and whether the excluded products leave it before its best is taken.
SignalParts = tuple[list[Segment], bool]


class RankedList(list[tuple[str, float]]):
    """A :data:`Ranked` list as the serving store holds it, with room for the arrays the
    blend makes of it once (:mod:`.vectors`)."""

    __slots__ = ("arrays",)

    def __init__(self, items: Iterable[tuple[str, float]] = ()) -> None:
        super().__init__(items)
        self.arrays: Any = None


# A product bought more recently than this is in the order being placed or just placed: it is
# not offered again, and what goes with it is.
REBUY_AFTER = dt.timedelta(hours=1)
# A visit (a session) ends after this long without an event, as the middleware's visits do.
SESSION_GAP = dt.timedelta(minutes=30)
# How many of the current visit's views a strategy reads, most recent first.
MAX_SESSION = 50


@dataclass(frozen=True, slots=True)
class Interaction:
    """One thing a visitor did with a product. ``at`` is an aware datetime."""

    visitor: str
    product: str
    at: dt.datetime
    kind: str  # VIEW, CART or PURCHASE
    country: str = ""  # ISO alpha-2 of the visitor, "" when unknown
    quantity: float = 1.0
    campaign: str = ""  # the utm_campaign the visitor came from, "" when none


@dataclass
class Context:
    """What is known about the visitor when recommending. Product ids are strings."""

    now: dt.datetime
    viewed: list[str] = field(default_factory=list)  # most recent first, no repeats
    purchased: list[str] = field(default_factory=list)  # most recent first, no repeats
    cart: list[str] = field(default_factory=list)
    product: str | None = None  # the product on the page, if any
    country: str = ""
    categories: list[str] = field(default_factory=list)  # strongest interest first
    # The products viewed in the current visit, most recent first, repeats kept (a product
    # viewed twice appears twice): what the shopper does now.
    session: list[str] = field(default_factory=list)
    # A new visitor's first signals: the category of the page they landed on and the
    # campaign (utm_campaign) they came from; "" when unknown.
    landing_category: str = ""
    campaign: str = ""
    exclude: set[str] = field(default_factory=set)  # never recommend these
    # Evaluation's "new items" case: recommend nothing the visitor viewed or bought.
    exclude_history: bool = False
    # When known: the latest purchase of each product in ``purchased``. A product bought
    # moments ago is not one to offer again yet.
    purchased_at: dict[str, dt.datetime] = field(default_factory=dict)

    def excluded(self) -> set[str]:
        """Products a strategy must not return."""
        blocked = set(self.exclude) | set(self.cart)
        if self.product:
            blocked.add(self.product)
        if self.exclude_history:
            blocked.update(self.viewed)
            blocked.update(self.purchased)
        blocked.update(self.just_bought())
        return blocked

    def just_bought(self) -> list[str]:
        """Products of ``purchased`` bought within :data:`REBUY_AFTER`."""
        return [
            product
            for product in self.purchased
            if product in self.purchased_at and self.now - self.purchased_at[product] < REBUY_AFTER
        ]


def best_scored(scores: Mapping[str, float], limit: int) -> list[str]:
    """The ``limit`` best-scored products (ties by id, for a stable order)."""
    if limit <= 0:
        return []
    if len(scores) > 4 * limit:
        # The limit-th best score (a sort in C beats a heap in Python here), then only the
        # products that reach it are sorted with their ties.
        threshold = sorted(scores.values(), reverse=True)[limit - 1]
        top = [product for product, score in scores.items() if score >= threshold]
    else:
        top = list(scores)
    top.sort(key=lambda product: (-scores[product], product))
    return top[:limit]


class ListStore(Protocol):
    """Read access to precomputed lists."""

    def get(self, name: str, key: str = "") -> Ranked: ...

    def get_many(self, name: str, keys: Iterable[str]) -> Mapping[str, Ranked]: ...


class MemoryStore:
    """Lists held in a dict: the evaluation's store, and the serving store's local copy."""

    def __init__(self, lists: Mapping[tuple[str, str], Ranked]) -> None:
        self.lists = dict(lists)

    def get(self, name: str, key: str = "") -> Ranked:
        return self.lists.get((name, key), [])

    def get_many(self, name: str, keys: Iterable[str]) -> dict[str, Ranked]:
        return {key: self.lists[(name, key)] for key in keys if (name, key) in self.lists}


class Strategy:
    """Base class of recommendation strategies. Subclass it, give it a ``name`` and a
    ``recommend``, and list its dotted path in ``PERSONALIZATION["RECOMMENDATION_STRATEGIES"]``.

    ``recommend`` returns up to ``limit`` product ids, best first, without repeats and without
    ``context.excluded()``. It may return fewer; the caller fills up with the fallback."""

    name: str = ""
    label: str = ""

    def recommend(self, context: Context, store: ListStore, limit: int) -> list[str]:
        raise NotImplementedError
