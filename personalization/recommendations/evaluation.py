"""Offline evaluation: fit on the events before a cut, score strategies on what came after.

Implements ``manage.py personalization_evaluate`` (see the contract's "Offline evaluation"):

- :func:`read_events` parses the events CSV into :class:`~.base.Interaction` objects;
- :func:`split` sorts them stably by time and cuts at the event of index ``⌊0.8 n⌋``;
- :func:`queries` builds, per case, one :class:`Query` per test visitor: the
  :class:`~.base.Context` a strategy sees and the products that count as hits;
- :func:`score` averages the metrics of one recommender over queries;
- :func:`evaluate` does all of it for strategies, through :func:`.strategies.recommend`.

The history a visitor's context is built from: ``viewed`` holds the products they viewed or
put in the cart, ``purchased`` those they bought, both most recent first. The page's product
is never set, so a strategy may recommend what the visitor has just seen (``next-item``
allows repeats). ``now`` is the cut (the target event's time in ``next-item``).
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import engine
from .base import (
    CART,
    KINDS,
    MAX_SESSION,
    PURCHASE,
    SESSION_GAP,
    VIEW,
    Context,
    Interaction,
    MemoryStore,
    Strategy,
)
from .strategies import BUILTIN_STRATEGIES, recommend

FUTURE_PURCHASES = "future-purchases"
NEXT_ITEM = "next-item"
PROTOCOLS = (FUTURE_PURCHASES, NEXT_ITEM)
FUTURE_PURCHASE_CASES = ("all", "new_items", "new_visitors")
NEXT_ITEM_CASE = "next_item"
METRICS = ("hr", "ndcg", "precision", "recall", "mrr")
REQUIRED_COLUMNS = ("visitor_id", "product_id", "timestamp", "event")
CUT_SHARE = (4, 5)  # the cut is the event at index n * 4 // 5 = ⌊0.8 n⌋


class EventsFileError(ValueError):
    """A problem with the events CSV; the message names the line."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


@dataclass(frozen=True, slots=True)
class Split:
    """Events sorted by time (stable), cut at ``cut``: ``history`` before it, ``future`` at
    or after it."""

    cut: dt.datetime
    history: list[Interaction]
    future: list[Interaction]


@dataclass(frozen=True, slots=True)
class Query:
    """One test visitor of one case: what a strategy knows and which products are hits."""

    visitor: str
    context: Context
    targets: frozenset[str]


def read_events(path: str | Path) -> list[Interaction]:
    """The events of a CSV file in file order; raises :class:`EventsFileError`."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        return parse_events(file)


def parse_events(lines: Iterable[str]) -> list[Interaction]:
    """The events of CSV text (an iterable of lines, header first)."""
    reader = csv.DictReader(lines)
    columns = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise EventsFileError(1, f"missing column(s) {', '.join(missing)} in the header")
    reader.fieldnames = columns
    events: list[Interaction] = []
    for row in reader:
        try:
            events.append(_parse_row(row))
        except ValueError as error:
            raise EventsFileError(reader.line_num, str(error)) from None
    return events


def _parse_row(row: dict[str, str | None]) -> Interaction:
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    visitor, product = cell("visitor_id"), cell("product_id")
    if not visitor or not product:
        raise ValueError("visitor_id and product_id must not be empty")
    try:
        at = dt.datetime.fromisoformat(cell("timestamp"))
    except ValueError:
        raise ValueError(f"timestamp {cell('timestamp')!r} is not ISO 8601") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    kind = cell("event").lower()
    if kind not in KINDS:
        raise ValueError(f"unknown event {cell('event')!r} (expected {', '.join(KINDS)})")
    country = cell("country").upper()
    if country and not (len(country) == 2 and country.isalpha() and country.isascii()):
        raise ValueError(f"country {country!r} is not an ISO 3166-1 alpha-2 code")
    quantity = _number(cell("quantity"), "quantity", default=1.0)
    if quantity < 0:
        raise ValueError(f"quantity {quantity} is negative")
    _number(cell("price"), "price", default=0.0)
    return Interaction(visitor, product, at, kind, country, quantity)


def _number(text: str, name: str, *, default: float) -> float:
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} {text!r} is not a finite number")
    return value


def split(events: Sequence[Interaction]) -> Split:
    """Sort stably by time and cut at the timestamp of the event of index ``⌊0.8 n⌋``."""
    if not events:
        raise ValueError("there are no events")
    ordered = sorted(events, key=lambda event: event.at)
    cut = ordered[len(ordered) * CUT_SHARE[0] // CUT_SHARE[1]].at
    boundary = bisect.bisect_left(ordered, cut, key=lambda event: event.at)
    return Split(cut, ordered[:boundary], ordered[boundary:])


def queries(data: Split, protocol: str) -> dict[str, list[Query]]:
    """The test visitors of each case of ``protocol``."""
    if protocol == FUTURE_PURCHASES:
        return _future_purchase_queries(data)
    if protocol == NEXT_ITEM:
        return {NEXT_ITEM_CASE: _next_item_queries(data)}
    raise ValueError(f"unknown protocol {protocol!r} (expected {' or '.join(PROTOCOLS)})")


def _by_visitor(events: Iterable[Interaction]) -> dict[str, list[Interaction]]:
    grouped: dict[str, list[Interaction]] = defaultdict(list)
    for event in events:
        grouped[event.visitor].append(event)
    return grouped


def _first_country(events: Iterable[Interaction]) -> str:
    return next((event.country for event in events if event.country), "")


def history_context(events: Sequence[Interaction], *, now: dt.datetime, country: str) -> Context:
    """A visitor's context from their events in time order."""
    viewed = [e.product for e in reversed(events) if e.kind in (VIEW, CART)]
    purchased = [e.product for e in reversed(events) if e.kind == PURCHASE]
    return Context(
        now=now,
        viewed=list(dict.fromkeys(viewed)),
        purchased=list(dict.fromkeys(purchased)),
        country=country,
        purchased_at={e.product: e.at for e in events if e.kind == PURCHASE},
        session=session_products(events, now=now),
    )


def session_products(events: Sequence[Interaction], *, now: dt.datetime) -> list[str]:
    """The products of the visit going on at ``now``, most recent first, repeats kept: the
    trailing run of ``events`` (in time order) without a gap over :data:`~.base.SESSION_GAP`,
    when its last event is within that gap of ``now``; at most :data:`~.base.MAX_SESSION`."""
    session: list[str] = []
    later = now
    for event in reversed(events):
        if later - event.at > SESSION_GAP or len(session) >= MAX_SESSION:
            break
        session.append(event.product)
        later = event.at
    return session


def _future_purchase_queries(data: Split) -> dict[str, list[Query]]:
    history = _by_visitor(data.history)
    future = _by_visitor(data.future)
    cases: dict[str, list[Query]] = {case: [] for case in FUTURE_PURCHASE_CASES}
    for visitor, events in future.items():
        targets = frozenset(e.product for e in events if e.kind == PURCHASE)
        if not targets:
            continue
        past = history.get(visitor)
        if past is None:
            context = Context(now=data.cut, country=_first_country(events))
            cases["new_visitors"].append(Query(visitor, context, targets))
            continue
        country = _first_country(reversed(past)) or _first_country(events)
        context = history_context(past, now=data.cut, country=country)
        cases["all"].append(Query(visitor, context, targets))
        new_targets = targets - {e.product for e in past}
        if new_targets:
            unseen = dataclasses.replace(context, exclude_history=True)
            cases["new_items"].append(Query(visitor, unseen, frozenset(new_targets)))
    return cases


def _next_item_queries(data: Split) -> list[Query]:
    # History is before the cut, so a visitor absent from it first acted at or after the cut.
    seen_before = {event.visitor for event in data.history}
    result = []
    for visitor, events in _by_visitor(data.future).items():
        if visitor in seen_before or len(events) < 2:
            continue
        *known, last = events
        context = history_context(known, now=last.at, country=_first_country(events))
        result.append(Query(visitor, context, frozenset([last.product])))
    return result


def metrics(recommended: Sequence[str], targets: frozenset[str], k: int) -> dict[str, float]:
    """Binary-relevance metrics of one ranked list at ``k``."""
    top = list(dict.fromkeys(recommended))[:k]
    ranks = [rank for rank, product in enumerate(top, start=1) if product in targets]
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(targets), k) + 1))
    return {
        "hr": 1.0 if ranks else 0.0,
        "ndcg": sum(1.0 / math.log2(rank + 1) for rank in ranks) / ideal,
        "precision": len(ranks) / k,
        "recall": len(ranks) / len(targets),
        "mrr": 1.0 / ranks[0] if ranks else 0.0,
    }


def score(
    cases: Sequence[Query], recommender: Callable[[Query], Sequence[str]], k: int
) -> dict[str, float]:
    """Each metric averaged over ``cases``, and ``users``: how many there are."""
    totals = dict.fromkeys(METRICS, 0.0)
    for query in cases:
        for name, value in metrics(recommender(query), query.targets, k).items():
            totals[name] += value
    averaged: dict[str, float] = {
        name: total / len(cases) if cases else 0.0 for name, total in totals.items()
    }
    averaged["users"] = len(cases)
    return averaged


def evaluate(
    events: Sequence[Interaction],
    protocol: str,
    k: int = 10,
    strategies: Sequence[Strategy] | None = None,
) -> dict[str, Any]:
    """The contract's result for ``strategies`` (default: every built-in one): fitted with
    :func:`.engine.fit` on the events before the cut, served through
    :func:`.strategies.recommend`."""
    if k < 1:
        raise ValueError("k must be at least 1")
    chosen = list(strategies) if strategies is not None else builtin_strategies()
    data = split(events)
    cases = queries(data, protocol)
    store = MemoryStore(engine.fit(data.history, now=data.cut))
    results: dict[str, dict[str, Any]] = {}
    for strategy in chosen:

        def serve(query: Query, strategy: Strategy = strategy) -> list[str]:
            return recommend(strategy, query.context, store, k)

        per_case = {case: score(found, serve, k) for case, found in cases.items()}
        results[strategy.name] = per_case[NEXT_ITEM_CASE] if protocol == NEXT_ITEM else per_case
    return {"protocol": protocol, "k": k, "strategies": results}


def builtin_strategies() -> list[Strategy]:
    """One instance of each built-in strategy."""
    return [strategy() for strategy in BUILTIN_STRATEGIES.values()]


def format_table(result: Mapping[str, Any]) -> str:
    """The result as readable text: one table per strategy (one in all for ``next-item``)."""
    header = f"{'':<18}" + "".join(f"{name:>11}" for name in (*METRICS, "users"))

    def row(label: str, values: Mapping[str, float]) -> str:
        cells = "".join(f"{values[name]:>11.4f}" for name in METRICS)
        return f"{label:<18}{cells}{int(values['users']):>11d}"

    lines = [f"protocol {result['protocol']}, k = {result['k']}"]
    if result["protocol"] == NEXT_ITEM:
        lines += ["", header]
        lines += [row(name, values) for name, values in result["strategies"].items()]
    else:
        for name, per_case in result["strategies"].items():
            lines += ["", name, header]
            lines += [row(case, values) for case, values in per_case.items()]
    return "\n".join(lines)
