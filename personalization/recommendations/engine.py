"""Fitting: interactions in, precomputed ranked lists out, with numpy and scipy.sparse.

:func:`fit` computes every list below from the interactions it is given; :func:`fit_trending`
only the trending ones, cheap enough to rerun every few minutes. Each list is keyed by
``(name, key)`` and holds up to ``top_n`` ``(product id, score)`` pairs, best first:

``bestsellers``, key ``""``
    Products by distinct buyers (ties: by purchases), over the whole history. The
    non-personalized default: the control group's list and every strategy's fallback.
``popular``, key ``""``
    Products by distinct visitors, each counted once with the weight of their strongest
    interaction (:data:`KIND_WEIGHTS`: view 1, cart 3, purchase 5), over the whole history.
``popular_recent``, key ``""``
    The same, each visitor's weight halved every :data:`RECENT_HALF_LIFE_DAYS` of age of
    their interaction: what sells and draws interest this week.
``popular_country``, key: ISO country code
    ``popular_recent`` among the visitors of one country.
``popular_category``, key: category key (only when ``categories`` are given)
    Products of one category by the same weights, halved every
    :data:`CATEGORY_HALF_LIFE_DAYS`.
``trending`` (key ``""``) and ``trending_country`` (key: ISO country code)
    Like ``popular_recent`` with a half-life of :data:`TRENDING_HALF_LIFE_DAYS`.
``viewed_together``, key: product id
    Products viewed or put in the cart by the same visitors, by a cosine-like similarity of
    their BM25-weighted visitor rows (:func:`_similar_products`).
``bought_together``, key: product id
    The same over purchases.
``item_model``, key: product id (one of the :data:`ITEM_MODEL_MAX_PRODUCTS` with the most
visitors)
    The products that a visitor who has this one is likely to take too, by their weights in a
    linear item-to-item model over every interaction (EASE, :func:`_item_model`). Summing a
    visitor's products' lists ranks what to offer them next.
``replenishment``, key: product id of a replenishable product that was bought
    One entry, the product itself, scored by how likely a past buyer is to buy it again now:
    the smoothed share of its buyers who bought it on more than one day, times its recent
    demand (``(1 + recent buyers) ** REPLENISHMENT_DEMAND_EXPONENT``, buyers' weights halved
    every :data:`RECENT_HALF_LIFE_DAYS`). Strategies look it up per product the visitor
    bought (``store.get_many("replenishment", context.purchased)``).

A product's interactions count whatever their quantity; repeated interactions of a visitor
with a product count once in the popularity lists (a wholesaler's hundred orders of one item
are one buyer).

The lists come in *families* (:data:`FAMILIES`), each a function of the same encoded
interactions (:class:`Events`) that returns its lists: :func:`fit` runs every family, and
:mod:`.parts` runs them as independent parts of the nightly fit, the two similarity families
split into blocks of products. A new family is one more :class:`Family` line.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from .base import CART, KINDS, PURCHASE, VIEW, Interaction, Ranked

KIND_WEIGHTS = {VIEW: 1.0, CART: 3.0, PURCHASE: 5.0}
TRENDING_HALF_LIFE_DAYS = 1.0
RECENT_HALF_LIFE_DAYS = 7.0
CATEGORY_HALF_LIFE_DAYS = 30.0
# Co-occurrence similarity: BM25 weights of the product x visitor matrix (how much a product's
# number of visitors normalizes its row), and the power of the neighbour's norm in the
# denominator (1 would be the cosine; less leans towards popular neighbours).
BM25_K1 = 1.2
BM25_B = 0.75
NEIGHBOUR_NORM_EXPONENT = 0.5
# Co-occurrence reads each visitor's most recent products only: a visitor with thousands of
# products says little about any pair of them and costs the square of their count.
MAX_PRODUCTS_PER_VISITOR = 500
# Similarities are computed for blocks of products whose co-occurrence entries stay below this.
SIMILARITY_BLOCK_ENTRIES = 4_000_000
# The linear item model (EASE) is fitted on the products with the most visitors, at most this
# many (its cost grows with their cube), with an L2 penalty of this many times their mean
# number of visitors.
ITEM_MODEL_MAX_PRODUCTS = 4000
ITEM_MODEL_L2 = 10.0
# Repurchase shares are smoothed towards the catalogue's share with this many pseudo-buyers.
REPLENISHMENT_PRIOR_BUYERS = 5.0
REPLENISHMENT_DEMAND_EXPONENT = 0.5

_DAY = 86400.0
_ITEM_MODEL_ROWS_PER_BLOCK = 512
_KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}
_WEIGHT_BY_CODE = np.array([KIND_WEIGHTS[kind] for kind in KINDS])
_VIEW, _CART, _PURCHASE = (_KIND_CODES[kind] for kind in (VIEW, CART, PURCHASE))

Lists = dict[tuple[str, str], Ranked]


@dataclass(frozen=True, slots=True)
class Events:
    """Interactions as columns of integer codes; ``age`` in days before ``now``. Codes are
    given in order of first appearance, so the same interactions in the same order always get
    the same codes (ties between lists are broken by code)."""

    visitor: np.ndarray
    product: np.ndarray
    country: np.ndarray
    kind: np.ndarray
    age: np.ndarray
    products: np.ndarray  # product code -> id
    countries: list[str]  # country code -> ISO code ("" = unknown)
    n_visitors: int
    campaign: np.ndarray  # the visitor's campaign code
    campaigns: list[str]  # campaign code -> utm_campaign ("" = none)

    @property
    def n_products(self) -> int:
        return len(self.products)


@dataclass(frozen=True, slots=True)
class Options:
    """What a family reads besides the interactions."""

    top_n: int = 50
    categories: Mapping[str, str] | None = None  # product id -> category key
    replenishable: Set[str] | None = None  # None: every product


# A share of a family that is fitted in blocks of products: (index, count), the blocks of
# product codes whose cost falls in the index-th of count equal slices.
Share = tuple[int, int]
WHOLE: Share = (0, 1)


@dataclass(frozen=True, slots=True)
class Family:
    """Lists fitted together: ``function`` (a dotted path, imported when first used) takes
    the :class:`Events` and the :class:`Options` — and a :data:`Share` when ``blocks`` — and
    returns its lists. ``catalog``: it reads the categories or the replenishable products;
    ``cost``: its seconds per million interactions on the benchmark's shop
    (``benchmarks/bench_fit_scale.py``), which the plan of parts balances."""

    name: str
    function: str
    blocks: bool = False
    catalog: bool = False
    cost: float = 1.0

    def fit(self, events: Events, options: Options, share: Share = WHOLE) -> Lists:
        function = _resolve(self.function)
        return function(events, options, share) if self.blocks else function(events, options)


@functools.cache
def _resolve(path: str) -> Callable[..., Lists]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def fit(
    interactions: Iterable[Interaction],
    *,
    now: dt.datetime,
    categories: Mapping[str, str] | None = None,
    replenishable: set[str] | None = None,
    top_n: int = 50,
    families: Iterable[Family] | None = None,
) -> Lists:
    """Every list of the module docstring, fitted on ``interactions`` as seen at ``now``.

    ``categories`` maps product ids to category keys (products without one are left out of
    ``popular_category``); ``replenishable`` names the products that may be bought again
    (``None``: all of them); ``families``: only these (default :data:`FAMILIES`)."""
    events = encode(interactions, now)
    if not len(events.visitor):
        return {}
    options = Options(top_n=top_n, categories=categories, replenishable=replenishable)
    lists: Lists = {}
    for family in FAMILIES if families is None else families:
        lists.update(family.fit(events, options))
    return {key: ranked for key, ranked in lists.items() if ranked}


def fit_trending(
    interactions: Iterable[Interaction], *, now: dt.datetime, top_n: int = 50
) -> Lists:
    """Only ``trending`` and ``trending_country``: what the shop refreshes every few minutes."""
    events = encode(interactions, now)
    if not len(events.visitor):
        return {}
    return {key: ranked for key, ranked in _trending(events, top_n).items() if ranked}


def encode(interactions: Iterable[Interaction], now: dt.datetime) -> Events:
    """Columns of codes for the interactions; raises ``ValueError`` on an unknown kind."""
    return encode_rows(
        ((item.visitor, item.product, item.at.timestamp(), item.kind, item.country,
          item.campaign) for item in interactions),
        now,
    )  # fmt: skip


def encode_rows(rows: Iterable[tuple[Any, ...]], now: dt.datetime) -> Events:
    """:func:`encode` for rows of (visitor, product, POSIX timestamp, kind, country[,
    campaign]): what a
    database query gives without making an :class:`Interaction` of each (the columns take 33
    bytes an interaction while they are read)."""
    visitor_codes: dict[str, int] = {}
    product_codes: dict[str, int] = {}
    country_codes: dict[str, int] = {"": 0}
    campaign_codes: dict[str, int] = {"": 0}
    visitors, products, countries = array("q"), array("q"), array("q")
    kinds, times, campaigns = array("b"), array("d"), array("q")
    for visitor, product, at, kind, country, *campaign in rows:
        try:
            kinds.append(_KIND_CODES[kind])
        except KeyError:
            raise ValueError(f"Unknown interaction kind {kind!r}") from None
        visitors.append(visitor_codes.setdefault(visitor, len(visitor_codes)))
        products.append(product_codes.setdefault(product, len(product_codes)))
        countries.append(country_codes.setdefault(country, len(country_codes)))
        code = campaign_codes.setdefault(campaign[0] or "", len(campaign_codes)) if campaign else 0
        campaigns.append(code)
        times.append(at)
    age = (now.timestamp() - np.frombuffer(times, dtype=np.float64)) / _DAY
    return Events(
        visitor=np.frombuffer(visitors, dtype=np.int64),
        product=np.frombuffer(products, dtype=np.int64),
        country=np.frombuffer(countries, dtype=np.int64),
        kind=np.frombuffer(kinds, dtype=np.int8),
        age=np.maximum(age, 0.0),
        products=np.array(list(product_codes), dtype=object),
        countries=list(country_codes),
        n_visitors=len(visitor_codes),
        campaign=np.frombuffer(campaigns, dtype=np.int64),
        campaigns=list(campaign_codes),
    )


# The families ------------------------------------------------------------------------------
def popularity(events: Events, options: Options) -> Lists:
    """``bestsellers``, ``popular``, ``popular_recent`` and ``popular_country``."""
    top_n = options.top_n
    everything = np.ones(len(events.visitor), dtype=bool)
    purchases = events.kind == _PURCHASE
    buyers = _popularity(events, purchases, half_life=None, weighted=False)
    purchase_counts = np.bincount(events.product[purchases], minlength=events.n_products)
    lists = {
        ("bestsellers", ""): _ranked(
            events,
            np.flatnonzero(buyers),
            buyers + purchase_counts / (purchase_counts.max() + 1.0),
        )[:top_n],
        ("popular", ""): _top(events, _popularity(events, everything, half_life=None), top_n),
        ("popular_recent", ""): _top(
            events, _popularity(events, everything, half_life=RECENT_HALF_LIFE_DAYS), top_n
        ),
    }
    lists.update(_grouped_popularity(events, "popular_country", RECENT_HALF_LIFE_DAYS, top_n))
    return lists


def trending(events: Events, options: Options) -> Lists:
    """``trending`` and ``trending_country``."""
    return _trending(events, options.top_n)


def categories(events: Events, options: Options) -> Lists:
    """``popular_category``, when the options name categories."""
    if not options.categories:
        return {}
    return _category_popularity(events, options.categories, options.top_n)


def replenishment(events: Events, options: Options) -> Lists:
    """``replenishment`` of the replenishable products."""
    return _replenishment(events, options.replenishable)


def item_model(events: Events, options: Options) -> Lists:
    """``item_model`` of the products with the most visitors."""
    return {
        ("item_model", events.products[product]): ranked
        for product, ranked in _item_model(events, options.top_n)
    }


def viewed_together(events: Events, options: Options, share: Share = WHOLE) -> Lists:
    """``viewed_together`` of the products in ``share``."""
    browsing = (events.kind == _VIEW) | (events.kind == _CART)
    return _similarity_lists("viewed_together", events, browsing, options.top_n, share)


def bought_together(events: Events, options: Options, share: Share = WHOLE) -> Lists:
    """``bought_together`` of the products in ``share``."""
    purchases = events.kind == _PURCHASE
    return _similarity_lists("bought_together", events, purchases, options.top_n, share)


def _similarity_lists(
    name: str, events: Events, mask: np.ndarray, top_n: int, share: Share
) -> Lists:
    return {
        (name, events.products[product]): ranked
        for product, ranked in _similar_products(events, mask, top_n, share)
    }


FAMILIES: tuple[Family, ...] = (
    Family("popularity", f"{__name__}.popularity", cost=0.8),
    Family("trending", f"{__name__}.trending", cost=0.55),
    Family("categories", f"{__name__}.categories", catalog=True, cost=0.25),
    Family("viewed_together", f"{__name__}.viewed_together", blocks=True, cost=1.4),
    Family("bought_together", f"{__name__}.bought_together", blocks=True, cost=0.15),
    Family("item_model", f"{__name__}.item_model", cost=1.2),
    Family("replenishment", f"{__name__}.replenishment", catalog=True, cost=0.1),
    Family("visits", "personalization.recommendations.sequences.visit_lists", cost=4.3),
    Family("campaigns", "personalization.recommendations.sequences.campaign_lists", cost=0.2),
    Family(
        "blend_weights",
        "personalization.recommendations.learning.blend_weights",
        catalog=True,
        cost=2.3,
    ),
)


def _weights(
    events: Events, mask: np.ndarray, half_life: float | None, *, weighted: bool = True
) -> np.ndarray:
    """Each selected interaction's kind weight (1 when not ``weighted``), halved every
    ``half_life`` days of age."""
    weights = _WEIGHT_BY_CODE[events.kind[mask]] if weighted else np.ones(int(mask.sum()))
    if half_life is not None:
        weights = weights * np.exp2(-events.age[mask] / half_life)
    return weights


def _max_per_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys and the largest value of each."""
    if not len(keys):
        return keys, values
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    last = np.flatnonzero(np.r_[keys[1:] != keys[:-1], True])
    return keys[last], values[last]


def _popularity(
    events: Events, mask: np.ndarray, *, half_life: float | None, weighted: bool = True
) -> np.ndarray:
    """Score per product code: the sum over visitors of their strongest (decayed)
    interaction weight (each visitor weighing 1, decayed, when not ``weighted``)."""
    values = _weights(events, mask, half_life, weighted=weighted)
    keys, best = _max_per_key(
        events.visitor[mask] * events.n_products + events.product[mask], values
    )
    return np.bincount(keys % events.n_products, weights=best, minlength=events.n_products)


def _named(events: Events, products: np.ndarray, scores: np.ndarray) -> Ranked:
    """Product codes and their scores as a ranked list of product ids."""
    return list(zip(events.products[products].tolist(), scores.tolist(), strict=True))


def _ranked(events: Events, products: np.ndarray, scores: np.ndarray) -> Ranked:
    """``products`` (codes) sorted by ``scores`` (indexed by code), best first; ties by code."""
    order = products[np.lexsort((products, -scores[products]))]
    return _named(events, order, scores[order])


def _top(events: Events, scores: np.ndarray, top_n: int) -> Ranked:
    return _ranked(events, np.flatnonzero(scores > 0), scores)[:top_n]


def _top_per_group(
    group: np.ndarray, item: np.ndarray, score: np.ndarray, top_n: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each group present, its ``top_n`` items and scores, best first.

    One stable sort orders everything: an entry's key is its group plus its score turned
    into a fraction in [0, 0.5], the best score smallest. Ties (and scores closer than about
    a ten-billionth of the range) keep the input order."""
    if not len(group):
        return
    low, span = score.min(), np.ptp(score)
    fraction = (score - low) / span if span > 0 else np.zeros(len(score))
    order = np.argsort(group + 0.5 * (1.0 - fraction), kind="stable")
    group, item, score = group[order], item[order], score[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        stop = min(end, start + top_n)
        yield int(group[start]), item[start:stop], score[start:stop]


def _grouped_popularity(events: Events, name: str, half_life: float, top_n: int) -> Lists:
    """:func:`_popularity` per visitor country, as lists ``(name, country)``: each visitor
    counts in the country of their interactions."""
    known = events.country > 0
    n_products = events.n_products
    pair = events.country[known] * (events.n_visitors * n_products)
    pair += events.visitor[known] * n_products + events.product[known]
    keys, best = _max_per_key(pair, _weights(events, known, half_life))
    cells, cell_of = np.unique(
        keys // (events.n_visitors * n_products) * n_products + keys % n_products,
        return_inverse=True,
    )
    sums = np.bincount(cell_of, weights=best)
    return {
        (name, events.countries[country]): _named(events, products, scores)
        for country, products, scores in _top_per_group(
            cells // n_products, cells % n_products, sums, top_n
        )
    }


def _trending(events: Events, top_n: int) -> Lists:
    everything = np.ones(len(events.visitor), dtype=bool)
    lists = {
        ("trending", ""): _top(
            events, _popularity(events, everything, half_life=TRENDING_HALF_LIFE_DAYS), top_n
        )
    }
    lists.update(_grouped_popularity(events, "trending_country", TRENDING_HALF_LIFE_DAYS, top_n))
    return lists


def _category_popularity(events: Events, categories: Mapping[str, str], top_n: int) -> Lists:
    """Products of each category by their visitors' weights, halved every
    :data:`CATEGORY_HALF_LIFE_DAYS`."""
    names: dict[str, int] = {}
    category_of = np.array(
        [
            names.setdefault(categories[product], len(names)) if product in categories else -1
            for product in events.products.tolist()
        ],
        dtype=np.int64,
    )
    if not names:
        return {}
    scores = _popularity(
        events, np.ones(len(events.visitor), dtype=bool), half_life=CATEGORY_HALF_LIFE_DAYS
    )
    categorized = np.flatnonzero((category_of >= 0) & (scores > 0))
    keys = list(names)
    return {
        ("popular_category", keys[group]): _named(events, products, values)
        for group, products, values in _top_per_group(
            category_of[categorized], categorized, scores[categorized], top_n
        )
    }


def _similar_products(
    events: Events, mask: np.ndarray, top_n: int, share: Share = WHOLE
) -> Iterator[tuple[int, Ranked]]:
    """Each product's ``top_n`` most similar products among the selected interactions (of the
    products in ``share`` only: see :func:`_blocks`).

    Each product is a row over visitors: the visitors who interacted with it (their
    :data:`MAX_PRODUCTS_PER_VISITOR` most recent products only), BM25-weighted. A visitor's
    column weighs ``log(1 + products / products of the visitor)``, so that a visitor of a few
    products links them more strongly than one who touched everything, and a product with many
    visitors is length-normalized (``BM25_B``, ``BM25_K1``). The similarity of ``b`` to ``a``
    is the dot product of their rows over ``|a| * |b| ** NEIGHBOUR_NORM_EXPONENT``: the cosine
    when the exponent is 1, leaning towards popular neighbours below it."""
    if not mask.any():
        return
    n_products = events.n_products
    keys, latest = _max_per_key(
        events.visitor[mask] * n_products + events.product[mask], -events.age[mask]
    )
    visitor, product = keys // n_products, keys % n_products
    order = np.lexsort((-latest, visitor))
    starts = np.flatnonzero(np.r_[True, visitor[order][1:] != visitor[order][:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = order[rank < MAX_PRODUCTS_PER_VISITOR]
    visitor, product = visitor[keep], product[keep]

    per_visitor = np.bincount(visitor, minlength=events.n_visitors)
    per_product = np.bincount(product, minlength=n_products)
    idf = np.log1p(int((per_product > 0).sum()) / np.maximum(per_visitor, 1))
    length = per_product / per_product[per_product > 0].mean()
    weight = (BM25_K1 + 1.0) / (1.0 + BM25_K1 * (1.0 - BM25_B + BM25_B * length[product]))
    weight *= idf[visitor]
    norms = np.sqrt(np.bincount(product, weights=weight * weight, minlength=n_products))
    shape = (n_products, events.n_visitors)
    rows = sp.csr_matrix((weight / norms[product], (product, visitor)), shape=shape)
    neighbours = sp.csr_matrix(
        (weight / norms[product] ** NEIGHBOUR_NORM_EXPONENT, (visitor, product)),
        shape=shape[::-1],
    )

    # An upper bound of each product's number of neighbours sizes the blocks.
    bound = np.minimum(
        np.bincount(product, weights=per_visitor[visitor].astype(np.float64), minlength=n_products),
        n_products,
    )
    for start, stop in _blocks(bound, share):
        block = (rows[start:stop] @ neighbours).tocoo()
        others = block.col != block.row + start
        row, col, data = block.row[others] + start, block.col[others], block.data[others]
        for product_code, similar, scores in _top_per_group(row, col, data, top_n):
            yield product_code, _named(events, similar, scores)


def _blocks(bound: np.ndarray, share: Share) -> list[tuple[int, int]]:
    """The blocks of product codes ``[start, stop)`` whose entries stay below
    :data:`SIMILARITY_BLOCK_ENTRIES` (``bound``: an upper bound of each product's), and of
    them the share's: those that begin in its slice of the total. The blocks are the same
    whatever the share, so a product's list is computed alike in one part or in many."""
    cumulative = np.cumsum(bound)
    block_of = np.floor_divide(cumulative, SIMILARITY_BLOCK_ENTRIES).astype(np.int64)
    boundaries = np.flatnonzero(np.r_[True, block_of[1:] != block_of[:-1], True])
    starts, stops = boundaries[:-1], boundaries[1:]
    index, count = share
    if count > 1 and len(starts):
        total = float(cumulative[-1]) or 1.0
        before = (cumulative[starts] - bound[starts]) / total
        owner = np.minimum(np.floor(before * count).astype(np.int64), count - 1)
        starts, stops = starts[owner == index], stops[owner == index]
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _item_model(events: Events, top_n: int) -> Iterator[tuple[int, Ranked]]:
    """Each product's ``top_n`` largest positive weights in EASE (Steck, 2019), a linear
    model that predicts each product from the visitor's others: with ``G`` the product
    co-occurrence matrix over visitors plus ``ITEM_MODEL_L2`` on its diagonal and
    ``P = G⁻¹``, product ``b``'s weight for product ``a`` is ``-P[a, b] / P[b, b]``. Summed over
    a visitor's products, the weights score what they are likely to take next."""
    keys = np.unique(events.visitor * events.n_products + events.product)
    visitor, product = keys // events.n_products, keys % events.n_products
    visitors_of = np.bincount(product, minlength=events.n_products)
    chosen = np.lexsort((np.arange(events.n_products), -visitors_of))[:ITEM_MODEL_MAX_PRODUCTS]
    chosen = chosen[visitors_of[chosen] > 0]
    if len(chosen) < 2:
        return
    local = np.full(events.n_products, -1, dtype=np.int64)
    local[chosen] = np.arange(len(chosen))
    inside = local[product] >= 0
    matrix = sp.csr_matrix(
        (np.ones(int(inside.sum())), (visitor[inside], local[product[inside]])),
        shape=(events.n_visitors, len(chosen)),
    )
    gram = (matrix.T @ matrix).toarray()
    diagonal = np.diag_indices_from(gram)
    gram[diagonal] += ITEM_MODEL_L2 * gram[diagonal].mean()
    weights = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
    del gram
    weights /= -np.diag(weights).copy()  # in place: column b over -P[b, b]
    weights[diagonal] = 0.0
    keep = min(top_n, len(chosen) - 1)
    for start in range(0, len(chosen), _ITEM_MODEL_ROWS_PER_BLOCK):
        block = weights[start : start + _ITEM_MODEL_ROWS_PER_BLOCK]
        best = np.argpartition(block, -keep, axis=1)[:, -keep:]
        values = np.take_along_axis(block, best, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        best, values = np.take_along_axis(best, order, axis=1), np.take_along_axis(values, order, 1)
        for offset, (columns, scores) in enumerate(zip(best, values, strict=True)):
            positive = scores > 0
            if positive.any():
                yield (
                    int(chosen[start + offset]),
                    _named(events, chosen[columns[positive]], scores[positive]),
                )


def _replenishment(events: Events, replenishable: Set[str] | None) -> Lists:
    """Per bought product: the smoothed repurchase share times recent demand."""
    purchases = events.kind == _PURCHASE
    if not purchases.any():
        return {}
    n_products = events.n_products
    day = np.floor(events.age[purchases]).astype(np.int64)
    pair = events.visitor[purchases] * n_products + events.product[purchases]
    occasions = np.unique(np.stack([pair, day], axis=1), axis=0)[:, 0]
    pairs, days_per_pair = np.unique(occasions, return_counts=True)
    product = pairs % n_products
    buyers = np.bincount(product, minlength=n_products).astype(np.float64)
    repeaters = np.bincount(product, weights=days_per_pair > 1, minlength=n_products)
    overall = repeaters.sum() / max(buyers.sum(), 1.0)
    share = (repeaters + REPLENISHMENT_PRIOR_BUYERS * overall) / (
        buyers + REPLENISHMENT_PRIOR_BUYERS
    )
    recent = _popularity(events, purchases, half_life=RECENT_HALF_LIFE_DAYS, weighted=False)
    score = share * (1.0 + recent) ** REPLENISHMENT_DEMAND_EXPONENT
    ids = events.products.tolist()
    return {
        ("replenishment", ids[code]): [(ids[code], float(score[code]))]
        for code in np.flatnonzero(buyers).tolist()
        if replenishable is None or ids[code] in replenishable
    }
