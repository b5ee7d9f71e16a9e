"""The blend's weights, learned from each shop's own history in the nightly fit.

:func:`learn` holds out the last fifth of the interactions it is given (by time), fits every
list on the rest with the same fit as the shop's, and asks the blend for its signals
(:meth:`.strategies.Blend.signals`, the serving code itself) on two kinds of question:

- **session**: in each held-out visit of two or more interactions, the last one, knowing the
  visit before it and the visitor's earlier history (how the site's placements are used);
- **history**: a visitor's later purchases (every later interaction when the shop records no
  purchases), knowing their history but no visit going on (emails, a first page); for a
  visitor new in the held-out part, only their country and campaign.

For each kind it searches the weights by coordinate ascent from the defaults over a grid of
multiples, maximising HR@10 + NDCG@10 on those questions (a step must gain
:data:`MIN_GAIN` of it), and returns them as the lists
``("blend_weights", "session")`` and ``("blend_weights", "history")``: ``(signal, weight)``
pairs that the blend reads in place of its defaults. With fewer than :data:`MIN_QUESTIONS`
questions of a kind, nothing is learned for it and the defaults stay.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import KINDS, PURCHASE, SESSION_GAP, Context, Interaction, MemoryStore, Ranked
from .evaluation import history_context
from .strategies import HISTORY, SESSION, SESSION_SIGNALS, SIGNALS, WEIGHTS_LIST, Blend

if TYPE_CHECKING:
    from .engine import Events, Options

logger = logging.getLogger("personalization")

Lists = dict[tuple[str, str], Ranked]
Fit = Callable[[Sequence[Interaction], dt.datetime], Lists]

K = 10
HOLDOUT_SHARE = 0.2
# Learning reads at most this many of the most recent interactions (its fit is a second fit).
MAX_EVENTS = 500_000
MIN_QUESTIONS = 200
MAX_QUESTIONS = 1000
# Candidates per question: the best of each signal (a product outside every signal's best
# this many does not reach the first K).
CANDIDATES_PER_SIGNAL = 30
MULTIPLES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
PASSES = 2
# A step of the search must raise the objective by this share of it: smaller gains are
# the questions' noise, and the defaults stay.
MIN_GAIN = 0.005
SEED = 20261201
# Learning needs times only relative to each other: the encoded ages are counted back from it.
_REFERENCE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def blend_weights(events: Events, options: Options) -> Lists:
    """The engine's ``blend_weights`` family: :func:`learn` on the encoded interactions,
    with every other family as the fit."""
    from . import engine

    families = tuple(family for family in engine.FAMILIES if family.name != "blend_weights")

    def fit(history: Sequence[Interaction], now: dt.datetime) -> Lists:
        return engine.fit(
            history,
            now=now,
            categories=options.categories,
            replenishable=set(options.replenishable) if options.replenishable else None,
            top_n=options.top_n,
            families=families,
        )

    return learn(_interactions(events), now=_REFERENCE, fit=fit)


def _interactions(events: Events) -> list[Interaction]:
    """The most recent :data:`MAX_EVENTS` encoded interactions as :class:`Interaction`\\ s,
    oldest first; visitors are named by their codes."""
    chosen = np.argsort(events.age, kind="stable")[:MAX_EVENTS]
    recent = chosen[np.lexsort((chosen, -events.age[chosen]))]  # oldest first, ties in order
    day = dt.timedelta(days=1)
    products, countries, campaigns = events.products, events.countries, events.campaigns
    return [
        Interaction(
            visitor=str(visitor),
            product=str(products[product]),
            at=_REFERENCE - age * day,
            kind=KINDS[kind],
            country=countries[country],
            campaign=campaigns[campaign],
        )
        for visitor, product, age, kind, country, campaign in zip(
            events.visitor[recent].tolist(),
            events.product[recent].tolist(),
            events.age[recent].tolist(),
            events.kind[recent].tolist(),
            events.country[recent].tolist(),
            events.campaign[recent].tolist(),
            strict=True,
        )
    ]


@dataclasses.dataclass(frozen=True, slots=True)
class Question:
    context: object  # a Context
    targets: frozenset[str]


def learn(interactions: Sequence[Interaction], *, now: dt.datetime, fit: Fit) -> Lists:
    """The ``blend_weights`` lists learned from ``interactions`` (module docstring); ``fit``
    turns interactions and a time into lists, as the nightly fit does."""
    events = sorted(interactions, key=lambda event: event.at)[-MAX_EVENTS:]
    if len(events) < 2 * MIN_QUESTIONS:
        return {}
    boundary = int(len(events) * (1.0 - HOLDOUT_SHARE))
    cut = events[boundary].at
    history = [event for event in events if event.at < cut]
    future = [event for event in events if event.at >= cut]
    if not history or not future:
        return {}
    store = MemoryStore(fit(history, cut))
    blend = Blend()
    learned: Lists = {}
    for situation, questions in (
        (SESSION, session_questions(history, future)),
        (HISTORY, history_questions(history, future, cut)),
    ):
        if len(questions) < MIN_QUESTIONS:
            logger.info(
                "personalization: %d %s questions; the blend keeps its default %s weights",
                len(questions),
                situation,
                situation,
            )
            continue
        names = SIGNALS if situation == SESSION else _without_session(SIGNALS)
        table = _Table.build(blend, store, questions, names)
        defaults = _defaults(blend, situation, names)
        weights, gain = table.search(defaults)
        learned[(WEIGHTS_LIST, situation)] = [(name, weights[name]) for name in names]
        logger.info(
            "personalization: blend %s weights learned on %d questions (objective %.4f, "
            "defaults %.4f): %s",
            situation,
            len(questions),
            gain,
            table.objective(defaults),
            weights,
        )
    return learned


def _without_session(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(name for name in names if name not in SESSION_SIGNALS)


def _defaults(blend: Blend, situation: str, names: Sequence[str]) -> dict[str, float]:
    weights = blend.history_weights()
    if situation == SESSION:
        weights.update(blend.session_weights)
    return {name: float(weights.get(name, 0.0)) for name in names}


def _by_visitor(events: Sequence[Interaction]) -> dict[str, list[Interaction]]:
    grouped: dict[str, list[Interaction]] = defaultdict(list)
    for event in events:
        grouped[event.visitor].append(event)
    return grouped


def _sample(items: list[Any]) -> list[Any]:
    """At most :data:`MAX_QUESTIONS` of ``items``, drawn with a fixed seed."""
    if len(items) <= MAX_QUESTIONS:
        return items
    return random.Random(SEED).sample(items, MAX_QUESTIONS)


def _country(events: Sequence[Interaction]) -> str:
    return next((event.country for event in reversed(events) if event.country), "")


def session_questions(
    history: Sequence[Interaction], future: Sequence[Interaction]
) -> list[Question]:
    """The last interaction of each held-out visit of two or more, from what came before."""
    earlier = _by_visitor(history)
    visits: list[tuple[list[Interaction], int]] = []  # (a visitor's events, a visit's end)
    for events in _by_visitor(future).values():
        start = 0
        for index in range(1, len(events) + 1):
            if index < len(events) and events[index].at - events[index - 1].at <= SESSION_GAP:
                continue
            if index - start >= 2:
                visits.append((events, index))
            start = index
    questions = []
    for events, end in _sample(visits):
        last = events[end - 1]
        known = [*earlier.get(last.visitor, []), *events[: end - 1]]
        context = history_context(known, now=last.at, country=_country(known))
        context.campaign = last.campaign
        questions.append(Question(context, frozenset([last.product])))
    return questions


def history_questions(
    history: Sequence[Interaction], future: Sequence[Interaction], cut: dt.datetime
) -> list[Question]:
    """Each returning visitor's later purchases (every later interaction in a shop without
    purchases), from their history, with no visit going on."""
    kinds = {PURCHASE} if any(event.kind == PURCHASE for event in future) else None
    earlier = _by_visitor(history)
    chosen = []
    for visitor, events in _by_visitor(future).items():
        targets = frozenset(e.product for e in events if kinds is None or e.kind in kinds)
        if targets:
            chosen.append((visitor, events, targets))
    questions = []
    for visitor, events, targets in _sample(chosen):
        past = earlier.get(visitor, [])
        if past:
            context = history_context(past, now=cut, country=_country(past))
            context.campaign = past[-1].campaign
        else:  # a new visitor: where from and which campaign, no more
            context = Context(now=cut, country=_country(events[:1]), campaign=events[0].campaign)
        context.session = []
        questions.append(Question(context, targets))
    return questions


@dataclasses.dataclass
class _Table:
    """Every question's candidates (rows) with their signals (columns), and for each row
    that is a target, the other rows of its question (pairs) to rank it against."""

    names: tuple[str, ...]
    scores: np.ndarray  # rows x signals
    question: np.ndarray  # each target row's question
    target: np.ndarray  # the target rows
    rival: np.ndarray  # pairs: a rival row ...
    against: np.ndarray  # ... and the index (into ``target``) of the target it competes with
    ahead_on_tie: np.ndarray  # per pair: the rival wins a tie (the blend breaks ties by id)
    ideal: np.ndarray  # per question: the best possible DCG@K

    @classmethod
    def build(
        cls, blend: Blend, store: MemoryStore, questions: Sequence[Question], names: Sequence[str]
    ) -> _Table:
        column = {name: index for index, name in enumerate(names)}
        blocks: list[np.ndarray] = []
        question_of, target_rows, rivals, against, ties = [], [], [], [], []
        ideal = np.zeros(len(questions))
        offset = 0
        for index, item in enumerate(questions):
            signals = blend.signals(item.context, store, names)  # type: ignore[arg-type]
            candidates: dict[str, int] = {}
            for signal in signals.values():
                for product in heapq.nsmallest(
                    CANDIDATES_PER_SIGNAL,
                    signal,
                    key=lambda p, s=signal: (-s[p], p),  # type: ignore[misc]
                ):
                    candidates.setdefault(product, len(candidates))
            block = np.zeros((len(candidates), len(names)))
            for name, signal in signals.items():
                j = column[name]
                for product, value in signal.items():
                    row = candidates.get(product)
                    if row is not None:
                        block[row, j] = value
            blocks.append(block)
            products = list(candidates)
            for product in item.targets & candidates.keys():
                row = candidates[product]
                target_rows.append(offset + row)
                question_of.append(index)
                for other, rival in enumerate(products):
                    if other != row:
                        rivals.append(offset + other)
                        against.append(len(target_rows) - 1)
                        ties.append(rival < product)
            offset += len(candidates)
            ideal[index] = sum(1.0 / np.log2(rank + 2) for rank in range(min(len(item.targets), K)))
        return cls(
            names=tuple(names),
            scores=np.vstack(blocks) if blocks else np.zeros((0, len(names))),
            question=np.array(question_of, dtype=np.int64),
            target=np.array(target_rows, dtype=np.int64),
            rival=np.array(rivals, dtype=np.int64),
            against=np.array(against, dtype=np.int64),
            ahead_on_tie=np.array(ties, dtype=bool),
            ideal=ideal,
        )

    def objective(self, weights: Mapping[str, float]) -> float:
        """Mean HR@K + NDCG@K over the questions, ranking as the blend does."""
        n = len(self.ideal)
        if not n or not len(self.target):
            return 0.0
        score = self.scores @ np.array([weights[name] for name in self.names])
        mine = score[self.target][self.against]
        theirs = score[self.rival]
        ahead = (theirs > mine) | ((theirs == mine) & self.ahead_on_tie)
        rank = np.bincount(self.against, weights=ahead, minlength=len(self.target))
        hits = (rank < K) & (score[self.target] > 0)
        gains = np.bincount(self.question[hits], weights=1.0 / np.log2(rank[hits] + 2), minlength=n)
        hit = np.bincount(self.question[hits], minlength=n) > 0
        return float((hit.sum() + (gains / np.maximum(self.ideal, 1e-12)).sum()) / n)

    def search(self, start: Mapping[str, float]) -> tuple[dict[str, float], float]:
        """Coordinate ascent from ``start`` over :data:`MULTIPLES` of each weight (of 1 for
        a weight of 0)."""
        weights = dict(start)
        best = self.objective(weights)
        for _ in range(PASSES):
            improved = False
            for name in self.names:
                base = start[name] or 1.0
                for multiple in MULTIPLES:
                    trial = {**weights, name: base * multiple}
                    if trial[name] == weights[name]:
                        continue
                    value = self.objective(trial)
                    if value > best + max(1e-9, MIN_GAIN * best):
                        best, weights, improved = value, trial, True
            if not improved:
                break
        return weights, best
