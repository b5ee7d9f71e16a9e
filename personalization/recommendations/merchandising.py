"""Merchandising: a placement's shop rules (``PlacementRule``), applied when serving.

Staff pin products to positions, exclude products and categories, boost a category or
high-margin products, and set a minimum stock, per placement, in the admin. Nothing is
refitted: serving applies the rules to the candidates the strategy ranked (and the fill),
before the list is cut to its limit, for the personalized and the control group alike:

1. drop the excluded products, the products of an excluded category and the products whose
   stock (the adapter's ``stock()``) is below the minimum (unknown stock is kept); with
   ``exclude_viewed``, the products the visitor viewed (before the strategy ranks: it then
   ranks others in their place);
2. reorder by the boosts: the candidate at position ``p`` (1, 2, … in the strategy's order,
   after step 1) scores ``(1 + b) / p``, where ``b`` is its boost — the weight of its
   category's boost, plus the margin boost's weight times its margin divided by the best
   margin among the candidates — at most :data:`MAX_BOOST`; sorted by score, ties in the
   strategy's order. A boost ``b`` moves a product up to about position ``p / (1 + b)``;
3. insert the pinned products at their positions (the lowest first). A pin to a product that
   is unknown, deleted or unavailable is skipped (and logged once); so is one that step 1
   leaves out, or that cannot be recommended here (the page's product, the cart). The list
   is then cut to its limit, still full as long as there are candidates.

The rules are compiled with the placement (:mod:`personalization.targeting.definitions`),
so they cost serving no query, and saving one reloads them in every process.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ..products import merchandising_facts

logger = logging.getLogger("personalization")

MAX_WEIGHT = 10.0  # the largest weight of one boost rule
MAX_BOOST = 10.0  # the largest boost of one product, boosts added up
# How many bad pins of one placement a process remembers having logged.
MAX_WARNED = 100

PIN = "pin"
EXCLUDE_PRODUCT = "exclude_product"
EXCLUDE_CATEGORY = "exclude_category"
BOOST_CATEGORY = "boost_category"
BOOST_MARGIN = "boost_margin"
MIN_STOCK = "min_stock"
EXCLUDE_VIEWED = "exclude_viewed"


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules read of one product."""

    available: bool
    category: str | None = None
    stock: int | None = None
    margin: float | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Rules:
    """A placement's compiled rules. Several rules of one kind: pins are kept in position
    order; exclusions add up; of several boosts of one category, of several margin boosts,
    and of several minimum stocks, the largest counts."""

    placement: str
    pins: tuple[tuple[int, str], ...] = ()  # (position from 1, product key), by position
    excluded_products: frozenset[str] = frozenset()
    excluded_categories: frozenset[str] = frozenset()
    category_boosts: Mapping[str, float] = field(default_factory=dict)
    margin_boost: float = 0.0
    min_stock: int | None = None
    # Leave out the products the visitor viewed (recently, and in this visit): by default the
    # blend shows them again when they are likely next.
    exclude_viewed: bool = False
    # Bad pins already logged by this process (for these rules: a reload logs them again).
    warned: set[str] = field(default_factory=set, repr=False)

    @property
    def pinned(self) -> list[str]:
        return [key for _, key in self.pins]

    @property
    def filters(self) -> bool:
        """Whether some candidates may be dropped (so more are fetched)."""
        return bool(self.excluded_categories or self.min_stock)

    @property
    def boosts(self) -> bool:
        return bool(self.category_boosts or self.margin_boost)

    @property
    def needs_category(self) -> bool:
        return bool(self.excluded_categories or self.category_boosts)

    def left_out(self) -> set[str]:
        """Product keys the strategy need not rank: excluded or placed by a pin."""
        return {*self.excluded_products, *self.pinned}

    def allows(self, key: str, facts: Facts) -> bool:
        """Whether the exclusions and the minimum stock keep this available product."""
        if key in self.excluded_products:
            return False
        if facts.category is not None and facts.category in self.excluded_categories:
            return False
        return not (
            self.min_stock is not None and facts.stock is not None and facts.stock < self.min_stock
        )

    def arrange(
        self, keys: Iterable[str], facts: Mapping[str, Facts], limit: int, blocked: set[str]
    ) -> list[str]:
        """The keys to show, at most ``limit``: ``keys`` (best first, with repeats, unknown
        and unavailable products) filtered, boosted and with the pins put in, as the module
        says. ``facts`` has the known products (the pinned ones too); ``blocked`` what may
        not be recommended here at all."""
        pinned = set(self.pinned)
        candidates: list[str] = []
        seen: set[str] = set()
        for key in keys:
            if key in seen or key in pinned or key in blocked:
                continue
            seen.add(key)
            found = facts.get(key)
            if found is not None and found.available and self.allows(key, found):
                candidates.append(key)
        if self.boosts:
            candidates = self.boosted(candidates, facts)
        chosen = list(candidates)
        for position, key in self.pins:
            if key in blocked:
                continue
            found = facts.get(key)
            if found is None or not found.available:
                self._warn(key)
                continue
            if self.allows(key, found):
                chosen.insert(min(position - 1, len(chosen)), key)
        return chosen[:limit]

    def boosted(self, keys: list[str], facts: Mapping[str, Facts]) -> list[str]:
        """``keys`` sorted by ``(1 + boost) / position``; ties keep their order."""
        best_margin = 0.0
        if self.margin_boost:
            margins = (facts[key].margin for key in keys)
            best_margin = max((m for m in margins if m is not None and m > 0), default=0.0)

        def score(item: tuple[int, str]) -> tuple[float, int]:
            index, key = item
            found = facts[key]
            boost = 0.0
            if found.category is not None:
                boost += self.category_boosts.get(found.category, 0.0)
            if best_margin > 0 and found.margin is not None and found.margin > 0:
                boost += self.margin_boost * min(found.margin / best_margin, 1.0)
            return (-(1.0 + min(boost, MAX_BOOST)) / (index + 1), index)

        return [key for _, key in sorted(enumerate(keys), key=score)]

    def _warn(self, key: str) -> None:
        if key in self.warned or len(self.warned) >= MAX_WARNED:
            return
        self.warned.add(key)
        logger.warning(
            "personalization: placement %r pins product %r, which is unknown or unavailable; "
            "the pin is skipped",
            self.placement,
            key,
        )


def compile_rules(placement: str, rows: Iterable[Any]) -> Rules | None:
    """The rules of ``placement`` from its ``PlacementRule`` rows; None when it has none.
    A row whose values do not fit its kind (saved around the admin) is skipped and logged."""
    pins: list[tuple[int, int, str]] = []
    excluded_products: set[str] = set()
    excluded_categories: set[str] = set()
    category_boosts: dict[str, float] = {}
    margin_boost = 0.0
    min_stock: int | None = None
    exclude_viewed = False
    for order, row in enumerate(rows):
        kind = row.kind
        product = str(row.product_key or "").strip()
        category = str(row.category_key or "").strip()
        weight = _weight(row.weight)
        if kind == PIN and product and row.position is not None and row.position >= 1:
            pins.append((int(row.position), order, product))
        elif kind == EXCLUDE_PRODUCT and product:
            excluded_products.add(product)
        elif kind == EXCLUDE_CATEGORY and category:
            excluded_categories.add(category)
        elif kind == BOOST_CATEGORY and category and weight is not None:
            category_boosts[category] = max(category_boosts.get(category, 0.0), weight)
        elif kind == BOOST_MARGIN and weight is not None:
            margin_boost = max(margin_boost, weight)
        elif kind == MIN_STOCK and row.min_stock is not None and row.min_stock >= 0:
            min_stock = max(min_stock or 0, int(row.min_stock))
        elif kind == EXCLUDE_VIEWED:
            exclude_viewed = True
        else:
            logger.warning("personalization: placement %r: rule %r skipped", placement, row)
    placed: dict[str, int] = {}
    for position, _, product in sorted(pins):
        placed.setdefault(product, position)  # a product pinned twice: its first position
    rules = Rules(
        placement=placement,
        pins=tuple((position, product) for product, position in placed.items()),
        excluded_products=frozenset(excluded_products),
        excluded_categories=frozenset(excluded_categories),
        category_boosts={key: value for key, value in category_boosts.items() if value > 0},
        margin_boost=margin_boost,
        min_stock=min_stock or None,
        exclude_viewed=exclude_viewed,
    )
    empty = not (
        rules.exclude_viewed
        or rules.pins
        or rules.excluded_products
        or rules.excluded_categories
        or rules.boosts
        or rules.min_stock
    )
    return None if empty else rules


def _weight(value: Any) -> float | None:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(weight):
        return None
    return min(max(weight, 0.0), MAX_WEIGHT)


def card_facts(card: Mapping[str, Any]) -> Facts:
    """The facts of a cached product card (:func:`personalization.products.cards`)."""
    known = card.get("merchandising") or {}
    return Facts(
        available=bool(card.get("available")),
        category=known.get("category"),
        stock=known.get("stock"),
        margin=_number(known.get("margin")),
    )


def product_facts(adapter: Any, product: Any, rules: Rules) -> Facts:
    """The facts of a product instance, read through the adapter (only what ``rules``
    read)."""
    available = bool(adapter.is_available(product))
    if not available or not (rules.needs_category or rules.min_stock or rules.margin_boost):
        return Facts(available=available)
    known = merchandising_facts(adapter, product)
    return Facts(
        available=available,
        category=known["category"],
        stock=known["stock"],
        margin=_number(known["margin"]),
    )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    return number if math.isfinite(number) else None
