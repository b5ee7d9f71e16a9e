"""Lists fitted on the order of visits: what people take next, and what is new.

``session_next``, key: product id
    The products visitors took soon after this one in the same visit (a visit ends after
    :data:`~.base.SESSION_GAP` without an event): each later product within
    :data:`WINDOW` steps counts ``1 / steps``, once per visit (its best), summed over visits
    and divided by the product's own total, so a list reads as "what comes next, and how
    often". The session-aware blend follows it from the last products of the current visit.
``new_products``, key ``""``
    Products first seen within :data:`NEW_PRODUCT_DAYS` of the fit, with fewer than
    :data:`NEW_PRODUCT_VISITORS` visitors: each scored ``1 - visitors / NEW_PRODUCT_VISITORS``
    (the fewer, the larger). The blend gives them a bounded boost (see
    ``RECOMMENDATION_NEW_PRODUCT_BOOST``), so that new products get a share of exposure before
    they have the history the other lists need.
``popular_campaign``, key: a campaign (``utm_campaign``)
    Products by the distinct visitors who came from that campaign, each counting their
    strongest interaction (view 1, cart 3, purchase 5), halved every
    :data:`CAMPAIGN_HALF_LIFE_DAYS`: what a new visitor from the same campaign came for.

Every function takes the interactions as columns of integer codes (as ``engine`` encodes
them) and returns ``{(name, key): ranked}``; :func:`visit_lists` and :func:`campaign_lists`
are the engine's families.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .base import SESSION_GAP, Ranked

if TYPE_CHECKING:
    from .engine import Events, Options

Lists = dict[tuple[str, str], Ranked]

# How many steps ahead in a visit a product counts as following another.
WINDOW = 5
# A visit's last events only: thousands of views in one visit say little about each pair.
MAX_EVENTS_PER_VISIT = 200
NEW_PRODUCT_DAYS = 14.0
NEW_PRODUCT_VISITORS = 20
CAMPAIGN_HALF_LIFE_DAYS = 14.0
_GAP_DAYS = SESSION_GAP.total_seconds() / 86400.0


def visit_lists(events: Events, options: Options) -> Lists:
    """The engine's ``visits`` family: ``session_next`` and ``new_products``."""
    lists = session_next(events.visitor, events.product, events.age, events.products, options.top_n)
    lists.update(
        new_products(events.visitor, events.product, events.age, events.products, options.top_n)
    )
    return lists


def campaign_lists(events: Events, options: Options) -> Lists:
    """The engine's ``campaigns`` family: ``popular_campaign``."""
    from .engine import _WEIGHT_BY_CODE

    return popular_campaign(
        events.visitor,
        events.product,
        events.age,
        _WEIGHT_BY_CODE[events.kind],
        events.campaign,
        events.campaigns,
        events.products,
        options.top_n,
    )


def visits(visitor: np.ndarray, age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The events in visit order — by visitor, then time, then input order — and each
    ordered event's visit number."""
    n = len(visitor)
    order = np.lexsort((np.arange(n), -age, visitor))
    v, a = visitor[order], age[order]
    starts = np.r_[True, (v[1:] != v[:-1]) | ((a[:-1] - a[1:]) > _GAP_DAYS)]
    return order, np.cumsum(starts) - 1


def session_next(
    visitor: np.ndarray,
    product: np.ndarray,
    age: np.ndarray,
    product_ids: np.ndarray,
    top_n: int,
) -> Lists:
    """The ``session_next`` lists (module docstring)."""
    if len(visitor) < 2:
        return {}
    order, visit = visits(visitor, age)
    product = product[order]
    # Keep each visit's last MAX_EVENTS_PER_VISIT events.
    starts = np.flatnonzero(np.r_[True, visit[1:] != visit[:-1]])
    lengths = np.diff(np.r_[starts, len(visit)])
    from_end = np.repeat(starts + lengths, lengths) - np.arange(len(visit))
    keep = from_end <= MAX_EVENTS_PER_VISIT
    product, visit = product[keep], visit[keep]

    n_products = len(product_ids)
    pairs, weights, visits_of = [], [], []
    for steps in range(1, WINDOW + 1):
        if len(product) <= steps:
            break
        same = (visit[steps:] == visit[:-steps]) & (product[steps:] != product[:-steps])
        pairs.append(product[:-steps][same] * n_products + product[steps:][same])
        weights.append(np.full(int(same.sum()), 1.0 / steps))
        visits_of.append(visit[:-steps][same])
    if not pairs:
        return {}
    pair, weight, in_visit = (
        np.concatenate(pairs),
        np.concatenate(weights),
        np.concatenate(visits_of),
    )
    if not len(pair):
        return {}
    # Once per visit: each (visit, pair)'s best weight.
    order = np.lexsort((-weight, pair, in_visit))
    pair, weight, in_visit = pair[order], weight[order], in_visit[order]
    first = np.r_[True, (pair[1:] != pair[:-1]) | (in_visit[1:] != in_visit[:-1])]
    pair, weight = pair[first], weight[first]
    keys, index = np.unique(pair, return_inverse=True)
    totals = np.bincount(index, weights=weight)
    source, target = keys // n_products, keys % n_products
    per_source = np.bincount(source, weights=totals, minlength=n_products)
    scores = totals / per_source[source]
    return _grouped("session_next", source, target, scores, product_ids, top_n, product_ids)


def new_products(
    visitor: np.ndarray,
    product: np.ndarray,
    age: np.ndarray,
    product_ids: np.ndarray,
    top_n: int = 200,
) -> Lists:
    """The ``new_products`` list (module docstring)."""
    if not len(product):
        return {}
    n_products = len(product_ids)
    oldest = np.full(n_products, -np.inf)
    np.maximum.at(oldest, product, age)
    pairs = np.unique(visitor * n_products + product)
    visitors = np.bincount(pairs % n_products, minlength=n_products)
    new = np.flatnonzero(
        (visitors > 0) & (oldest <= NEW_PRODUCT_DAYS) & (visitors < NEW_PRODUCT_VISITORS)
    )
    if not len(new):
        return {}
    score = 1.0 - visitors[new] / NEW_PRODUCT_VISITORS
    order = np.lexsort((new, -score))
    ranked = [(str(product_ids[new[i]]), float(score[i])) for i in order[:top_n].tolist()]
    return {("new_products", ""): ranked}


def popular_campaign(
    visitor: np.ndarray,
    product: np.ndarray,
    age: np.ndarray,
    weight: np.ndarray,
    campaign: np.ndarray,
    campaigns: list[str],
    product_ids: np.ndarray,
    top_n: int,
) -> Lists:
    """The ``popular_campaign`` lists (module docstring); ``campaign`` holds codes into
    ``campaigns``, 0 for none; ``weight`` is each interaction's kind weight."""
    known = campaign > 0
    if not known.any():
        return {}
    n_products = len(product_ids)
    decayed = weight[known] * np.exp2(-age[known] / CAMPAIGN_HALF_LIFE_DAYS)
    n_visitors = int(visitor.max()) + 1
    key = (campaign[known] * n_visitors + visitor[known]) * n_products + product[known]
    order = np.lexsort((decayed, key))
    key, decayed = key[order], decayed[order]
    last = np.r_[key[1:] != key[:-1], True]
    key, best = key[last], decayed[last]
    cell = (key // (n_visitors * n_products)) * n_products + key % n_products
    cells, index = np.unique(cell, return_inverse=True)
    sums = np.bincount(index, weights=best)
    return _grouped(
        "popular_campaign",
        cells // n_products,
        cells % n_products,
        sums,
        product_ids,
        top_n,
        campaigns,
    )


def _grouped(
    name: str,
    group: np.ndarray,
    item: np.ndarray,
    score: np.ndarray,
    product_ids: np.ndarray,
    top_n: int,
    group_keys: Sequence[str] | np.ndarray,
) -> Lists:
    """``{(name, group_keys[group]): its top_n items}``, best first, ties by item code."""
    order = np.lexsort((item, -score, group))
    group, item, score = group[order], item[order], score[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    lists: Lists = {}
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        stop = min(end, start + top_n)
        lists[(name, str(group_keys[int(group[start])]))] = [
            (str(product_ids[i]), float(s))
            for i, s in zip(item[start:stop].tolist(), score[start:stop].tolist(), strict=True)
        ]
    return lists
