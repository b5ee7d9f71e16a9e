"""The blend's sums in NumPy: the same additions as the Python reference
(:func:`.strategies._blended`), in the same order, so the same floats and the same ranking,
in a fraction of the time a page spends on them.

Products get integer codes, and each list read from the store is turned once into an array
of codes and one of values (kept with the list object). A request then concatenates its
parts, gives each distinct product a column through a scratch array indexed by code (no
sort), sums every signal with one ``numpy.bincount`` (which adds in input order, as the
Python loops do), scales and weighs the signals in their order, and ranks the few best in
Python (ties by product id).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .base import RankedList, SignalParts, best_scored

# Lists other than the store's (the evaluation's) turned into arrays: at most this many kept
# before starting afresh.
MAX_LISTS = 20_000
# Product codes given, at most this many before starting afresh.
MAX_PRODUCTS = 500_000


class _Codes:
    """Product codes and the arrays of the lists seen: one generation, replaced whole when
    full, so a request that holds one keeps consistent codes."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.keys: list[str] = []
        self.lists: dict[int, tuple[Any, np.ndarray, np.ndarray]] = {}
        self.lock = threading.Lock()

    def code(self, product: str) -> int:
        code = self.codes.get(product)
        if code is None:
            with self.lock:
                code = self.codes.get(product)
                if code is None:
                    code = self.codes[product] = len(self.keys)
                    self.keys.append(product)
        return code

    def arrays(
        self, items: Sequence[tuple[str, float]] | Mapping[str, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The codes and values of ``items``. A served list (:class:`.base.RankedList`)
        keeps its own; another list's are kept here while it lives."""
        if isinstance(items, Mapping):  # made for this request: small
            codes = np.fromiter(map(self.code, items), dtype=np.int64, count=len(items))
            values = np.fromiter(items.values(), dtype=np.float64, count=len(items))
            return codes, values
        if isinstance(items, RankedList):
            if items.arrays is not None and items.arrays[0] is self:
                return items.arrays[1], items.arrays[2]
            codes, values = self._made(items)
            items.arrays = (self, codes, values)
            return codes, values
        known = self.lists.get(id(items))
        if known is not None and known[0] is items:
            return known[1], known[2]
        codes, values = self._made(items)
        self.lists[id(items)] = (items, codes, values)  # kept: its id stays its own
        return codes, values

    def _made(self, items: Sequence[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
        codes = np.fromiter((self.code(product) for product, _ in items), dtype=np.int64,
                            count=len(items))  # fmt: skip
        values = np.fromiter((value for _, value in items), dtype=np.float64, count=len(items))
        return codes, values


_current = _Codes()


def _codes() -> _Codes:
    global _current
    current = _current
    if len(current.lists) > MAX_LISTS or len(current.keys) > MAX_PRODUCTS:
        current = _current = _Codes()
    return current


def forget() -> None:
    """Start afresh (tests)."""
    global _current
    _current = _Codes()


def blended(
    parts: Mapping[str, SignalParts],
    weights: Mapping[str, float],
    blocked: set[str],
    limit: int,
    new_products: Sequence[tuple[str, float]],
    share: float | None,
) -> list[str] | None:
    """The ``limit`` best products of the blend of ``parts`` (see
    :func:`.strategies._blended`); None when the parts hold something this cannot sum."""
    if limit <= 0:
        return []
    table = _codes()
    codes_of: list[np.ndarray] = []
    values_of: list[np.ndarray] = []
    weight_of: list[float] = []
    row_of: list[int] = []
    names = list(parts)
    try:
        for row, name in enumerate(names):
            for items, weight in parts[name][0]:
                held = getattr(items, "arrays", None)
                if held is not None and held[0] is table:
                    codes_of.append(held[1])
                    values_of.append(held[2])
                elif not items:
                    continue
                else:
                    codes, values = table.arrays(items)
                    codes_of.append(codes)
                    values_of.append(values)
                weight_of.append(weight)
                row_of.append(row)
    except (TypeError, ValueError):  # a product id that is not a string, a value not a number
        return None
    if not codes_of:
        return []
    # Every code this request reads is given before the scratch array is sized for them.
    excluded_codes = [table.codes.get(product) for product in blocked]
    new_codes, newness = table.arrays(new_products) if new_products else (None, None)
    rows = len(names)
    lengths = np.fromiter(map(len, codes_of), dtype=np.int64, count=len(codes_of))
    codes = np.concatenate(codes_of)
    values = np.concatenate(values_of) * np.repeat(np.array(weight_of), lengths)
    # The distinct products, each given a column: one entry of each stands for it (no sort
    # needed), then each product's slot holds its column.
    entries = np.arange(len(codes))
    slot = _scratch(len(table.keys))
    slot[codes] = entries
    candidates = codes[slot[codes] == entries]
    width = len(candidates)
    slot[candidates] = np.arange(width)
    column = slot[codes]
    cell = np.repeat(np.array(row_of) * width, lengths) + column
    sums = np.bincount(cell, weights=values, minlength=rows * width).reshape(rows, width)
    present = np.bincount(cell, minlength=rows * width).reshape(rows, width) > 0
    excluded = _columns(slot, candidates, excluded_codes)
    if len(excluded):
        # A signal that leaves the excluded out does so before its best score is taken.
        dropping = np.array([row for row, name in enumerate(names) if parts[name][1]], dtype=int)
        if len(dropping):
            sums[np.ix_(dropping, excluded)] = 0.0
            present[np.ix_(dropping, excluded)] = False
    # The best of each row over its products: those it lacks count 0, which changes no
    # decision (a best at or below 0 leaves the signal out either way) and no best above 0.
    factors = [0.0] * rows
    used = []
    for row, top in enumerate(sums.max(axis=1).tolist()):
        if top > 0:  # a signal with no positive score is left out, as in Python
            factors[row] = weights[names[row]] / top
            used.append(row)
    if not used:
        return []
    # Row after row, as the Python loop adds signal after signal (a sum along the first axis
    # of a C-ordered array goes row by row: the same additions, the same floats; a row left
    # out adds 0.0, which changes no sum).
    scores = np.add.reduce(np.array(factors)[:, None] * sums, axis=0)
    scored = np.asarray(present[used].any(axis=0))
    scored[excluded] = False
    kept = np.flatnonzero(scored)
    if not len(kept):
        return []
    if share is not None and new_codes is not None and newness is not None:
        boost = share * float(scores[kept].max())
        if boost > 0:
            at = slot[new_codes]
            known = (at >= 0) & (at < width)
            known[known] = candidates[at[known]] == new_codes[known]  # the slot may be stale
            places = at[known]
            keep = scored[places]
            np.add.at(scores, places[keep], boost * newness[known][keep])
    if len(kept) > 4 * limit:  # as best_scored: the limit-th best score, then all that reach it
        threshold = np.partition(scores[kept], len(kept) - limit)[len(kept) - limit]
        kept = kept[scores[kept] >= threshold]
    keys = table.keys
    best: list[str] = best_scored(
        {keys[code]: score for code, score in zip(candidates[kept].tolist(),
                                                  scores[kept].tolist(), strict=True)},
        limit,
    )  # fmt: skip
    return best


def _columns(slot: np.ndarray, candidates: np.ndarray, codes: list[int | None]) -> np.ndarray:
    """The columns of those of ``codes`` that are among ``candidates`` (``slot`` holding
    each candidate's column, and stale values for other codes)."""
    wanted = np.array([code for code in codes if code is not None], dtype=np.int64)
    if not len(wanted):
        return wanted
    at = slot[wanted]
    known = (at >= 0) & (at < len(candidates))
    known[known] = candidates[at[known]] == wanted[known]
    return at[known]


_local = threading.local()


def _scratch(size: int) -> np.ndarray:
    """This thread's array of one entry per product code (its values are stale: a request
    writes the entries it reads)."""
    slot: np.ndarray | None = getattr(_local, "slot", None)
    if slot is None or len(slot) < size:
        slot = _local.slot = np.full(max(size, 1024) * 2, -1, dtype=np.int64)
    return slot
