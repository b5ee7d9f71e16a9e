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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

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
class _Events:
    """Interactions as columns of integer codes; ``age`` in days before ``now``."""

    visitor: np.ndarray
    product: np.ndarray
    country: np.ndarray
    kind: np.ndarray
    age: np.ndarray
    products: np.ndarray  # product code -> id
    countries: list[str]  # country code -> ISO code ("" = unknown)
    n_visitors: int

    @property
    def n_products(self) -> int:
        return len(self.products)


def fit(
    interactions: Iterable[Interaction],
    *,
    now: dt.datetime,
    categories: Mapping[str, str] | None = None,
    replenishable: set[str] | None = None,
    top_n: int = 50,
) -> Lists:
    """Every list of the module docstring, fitted on ``interactions`` as seen at ``now``.

    ``categories`` maps product ids to category keys (products without one are left out of
    ``popular_category``); ``replenishable`` names the products that may be bought again
    (``None``: all of them)."""
    events = _encode(interactions, now)
    lists: Lists = {}
    if not len(events.visitor):
        return lists
    everything = np.ones(len(events.visitor), dtype=bool)
    purchases = events.kind == _PURCHASE

    buyers = _popularity(events, purchases, half_life=None, weighted=False)
    purchase_counts = np.bincount(events.product[purchases], minlength=events.n_products)
    lists[("bestsellers", "")] = _ranked(
        events, np.flatnonzero(buyers), buyers + purchase_counts / (purchase_counts.max() + 1.0)
    )[:top_n]
    lists[("popular", "")] = _top(events, _popularity(events, everything, half_life=None), top_n)
    lists[("popular_recent", "")] = _top(
        events, _popularity(events, everything, half_life=RECENT_HALF_LIFE_DAYS), top_n
    )
    lists.update(_grouped_popularity(events, "popular_country", RECENT_HALF_LIFE_DAYS, top_n))
    lists.update(_trending(events, top_n))
    if categories:
        lists.update(_category_popularity(events, categories, top_n))
    browsing = (events.kind == _VIEW) | (events.kind == _CART)
    for name, mask in (("viewed_together", browsing), ("bought_together", purchases)):
        for product, ranked in _similar_products(events, mask, top_n):
            lists[(name, events.products[product])] = ranked
    for product, ranked in _item_model(events, top_n):
        lists[("item_model", events.products[product])] = ranked
    lists.update(_replenishment(events, replenishable))
    return {key: ranked for key, ranked in lists.items() if ranked}


def fit_trending(
    interactions: Iterable[Interaction], *, now: dt.datetime, top_n: int = 50
) -> Lists:
    """Only ``trending`` and ``trending_country``: what the shop refreshes every few minutes."""
    events = _encode(interactions, now)
    if not len(events.visitor):
        return {}
    return {key: ranked for key, ranked in _trending(events, top_n).items() if ranked}


def _encode(interactions: Iterable[Interaction], now: dt.datetime) -> _Events:
    """Columns of codes for the interactions; raises ``ValueError`` on an unknown kind."""
    visitor_codes: dict[str, int] = {}
    product_codes: dict[str, int] = {}
    country_codes: dict[str, int] = {"": 0}
    visitors: list[int] = []
    products: list[int] = []
    countries: list[int] = []
    kinds: list[int] = []
    times: list[float] = []
    for item in interactions:
        try:
            kinds.append(_KIND_CODES[item.kind])
        except KeyError:
            raise ValueError(f"Unknown interaction kind {item.kind!r}") from None
        visitors.append(visitor_codes.setdefault(item.visitor, len(visitor_codes)))
        products.append(product_codes.setdefault(item.product, len(product_codes)))
        countries.append(country_codes.setdefault(item.country, len(country_codes)))
        times.append(item.at.timestamp())
    age = (now.timestamp() - np.array(times, dtype=np.float64)) / _DAY
    return _Events(
        visitor=np.array(visitors, dtype=np.int64),
        product=np.array(products, dtype=np.int64),
        country=np.array(countries, dtype=np.int64),
        kind=np.array(kinds, dtype=np.int8),
        age=np.maximum(age, 0.0),
        products=np.array(list(product_codes), dtype=object),
        countries=list(country_codes),
        n_visitors=len(visitor_codes),
    )


def _weights(
    events: _Events, mask: np.ndarray, half_life: float | None, *, weighted: bool = True
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
    events: _Events, mask: np.ndarray, *, half_life: float | None, weighted: bool = True
) -> np.ndarray:
    """Score per product code: the sum over visitors of their strongest (decayed)
    interaction weight (each visitor weighing 1, decayed, when not ``weighted``)."""
    values = _weights(events, mask, half_life, weighted=weighted)
    keys, best = _max_per_key(
        events.visitor[mask] * events.n_products + events.product[mask], values
    )
    return np.bincount(keys % events.n_products, weights=best, minlength=events.n_products)


def _named(events: _Events, products: np.ndarray, scores: np.ndarray) -> Ranked:
    """Product codes and their scores as a ranked list of product ids."""
    return list(zip(events.products[products].tolist(), scores.tolist(), strict=True))


def _ranked(events: _Events, products: np.ndarray, scores: np.ndarray) -> Ranked:
    """``products`` (codes) sorted by ``scores`` (indexed by code), best first; ties by code."""
    order = products[np.lexsort((products, -scores[products]))]
    return _named(events, order, scores[order])


def _top(events: _Events, scores: np.ndarray, top_n: int) -> Ranked:
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


def _grouped_popularity(events: _Events, name: str, half_life: float, top_n: int) -> Lists:
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


def _trending(events: _Events, top_n: int) -> Lists:
    everything = np.ones(len(events.visitor), dtype=bool)
    lists = {
        ("trending", ""): _top(
            events, _popularity(events, everything, half_life=TRENDING_HALF_LIFE_DAYS), top_n
        )
    }
    lists.update(_grouped_popularity(events, "trending_country", TRENDING_HALF_LIFE_DAYS, top_n))
    return lists


def _category_popularity(events: _Events, categories: Mapping[str, str], top_n: int) -> Lists:
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
    events: _Events, mask: np.ndarray, top_n: int
) -> Iterator[tuple[int, Ranked]]:
    """Each product's ``top_n`` most similar products among the selected interactions.

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
    block_of = np.floor_divide(np.cumsum(bound), SIMILARITY_BLOCK_ENTRIES).astype(np.int64)
    boundaries = np.flatnonzero(np.r_[True, block_of[1:] != block_of[:-1], True])
    for start, stop in zip(boundaries[:-1].tolist(), boundaries[1:].tolist(), strict=True):
        block = (rows[start:stop] @ neighbours).tocoo()
        others = block.col != block.row + start
        row, col, data = block.row[others] + start, block.col[others], block.data[others]
        for product_code, similar, scores in _top_per_group(row, col, data, top_n):
            yield product_code, _named(events, similar, scores)


def _item_model(events: _Events, top_n: int) -> Iterator[tuple[int, Ranked]]:
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


def _replenishment(events: _Events, replenishable: set[str] | None) -> Lists:
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
