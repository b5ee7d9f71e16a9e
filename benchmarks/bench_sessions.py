"""Benchmark: predicting the next item of a session, the strategies against session baselines.

Two session datasets (``session_data.py``): the UCI Online Retail invoices, each invoice one
session of ``view`` events in line order, and seeded simulated click sessions in a catalogue
shaped like the demo shop's. For each, the ``next-item`` protocol at k = 10: events sorted by
time and cut at the event ⌊0.8 n⌋; the test sessions are those that start at or after the
cut and have at least two events; a recommender sees every event of the session but the last
and must rank the last one's product (repeats allowed).

Every built-in strategy is scored by ``evaluation.evaluate`` (the code of
``manage.py personalization_evaluate``), whatever the strategies do at the time of the run.
In the same run, on the same test sessions (``evaluation.split`` and ``queries``) and with the
same metrics (``evaluation.score``), the baselines below, coded here and not in the app; each
fills its list up to 10 from popularity and leaves out what the strategies must leave out
(``Context.excluded()``):

- **co-occurrence on the last item**: the fitted ``viewed_together`` list (``engine.fit`` on
  the events before the cut) of the session's last product;
- **re-show the session**: the session's distinct products, the most recent first;
- **session kNN**: V-SKNN-like. The session's distinct products weigh ``1 / (1 + r)`` (``r``
  the recency rank, 0 for the last one); among the :data:`SKNN_SAMPLE` most recent past
  sessions sharing a product with its :data:`SKNN_ITEMS` most recent ones, the
  :data:`SKNN_NEIGHBOURS` most similar (the shared products' weights over the norms of both
  sessions' vectors, a past session's products weighing 1) vote for their products with their
  similarity;
- **popularity**: products by the number of sessions before the cut they were in.

HR, NDCG and MRR at 10 per recommender, and the blend's (``auto``) ratio to the better of the
first two baselines on HR and NDCG.

    python benchmarks/bench_sessions.py [--dataset retail|demo|all] [--sessions 30000]
        [--seed 1] [--csv DIR] [--json OUT.json] [--write]

``--csv DIR`` also writes ``DIR/retail_sessions.csv`` and ``DIR/demo_sessions.csv``, for
``manage.py personalization_evaluate DIR/demo_sessions.csv --protocol next-item``.
"""

from __future__ import annotations

import os

# One core: the BLAS behind numpy and scipy must not spread over the others.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import heapq  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from benchmarks import session_data  # noqa: E402
from benchmarks.convert_online_retail import SOURCE  # noqa: E402
from benchmarks.results import machine, write_section  # noqa: E402
from personalization.recommendations import engine  # noqa: E402
from personalization.recommendations.base import Interaction, MemoryStore  # noqa: E402
from personalization.recommendations.evaluation import (  # noqa: E402
    NEXT_ITEM,
    NEXT_ITEM_CASE,
    Query,
    Split,
    evaluate,
    queries,
    score,
    split,
)

K = 10
BLEND = "auto"
SHOWN_METRICS = ("hr", "ndcg", "mrr")
CO_OCCURRENCE = "co-occurrence on the last item"
RESHOW = "re-show the session"
SESSION_KNN = "session kNN"
POPULARITY = "popularity"
SKNN_ITEMS = 20
SKNN_SAMPLE = 500
SKNN_NEIGHBOURS = 100
CSV_NAMES = {"retail": "retail_sessions.csv", "demo": "demo_sessions.csv"}

Recommender = Callable[[Query], list[str]]


# Baselines ------------------------------------------------------------------------------
def _sessions(events: Sequence[Interaction]) -> dict[str, list[Interaction]]:
    """Events grouped by visitor, in the order given."""
    grouped: dict[str, list[Interaction]] = defaultdict(list)
    for event in events:
        grouped[event.visitor].append(event)
    return grouped


class SessionKNN:
    """V-SKNN-like neighbours over the sessions before the cut (see the module docstring)."""

    def __init__(self, history: Sequence[Interaction]) -> None:
        past = _sessions(history)
        # Sessions numbered by their last event's time, so a larger number is more recent.
        order = sorted(past, key=lambda visitor: (past[visitor][-1].at, visitor))
        self.products = [frozenset(e.product for e in past[visitor]) for visitor in order]
        self.sessions_of: dict[str, list[int]] = defaultdict(list)
        for number, products in enumerate(self.products):
            for product in products:
                self.sessions_of[product].append(number)  # increasing numbers

    def scores(self, session: Sequence[str]) -> dict[str, float]:
        """Products by their neighbours' votes, for ``session`` (products in time order)."""
        recent = list(dict.fromkeys(reversed(session)))
        weight = {product: 1.0 / (1.0 + rank) for rank, product in enumerate(recent)}
        candidates: set[int] = set()
        for product in recent[:SKNN_ITEMS]:
            candidates.update(self.sessions_of.get(product, [])[-SKNN_SAMPLE:])
        norm = sum(w * w for w in weight.values()) ** 0.5
        similarity = {}
        for number in heapq.nlargest(SKNN_SAMPLE, candidates):
            neighbour = self.products[number]
            shared = sum(weight[p] for p in neighbour.intersection(weight))
            similarity[number] = shared / (norm * len(neighbour) ** 0.5)
        votes: dict[str, float] = defaultdict(float)
        for number in heapq.nlargest(SKNN_NEIGHBOURS, similarity, key=similarity.__getitem__):
            for product in self.products[number]:
                votes[product] += similarity[number]
        return votes


def baselines(data: Split, store: MemoryStore) -> dict[str, Recommender]:
    """The baselines of the module docstring, over ``data``'s test sessions."""
    counts = Counter(product for _, product in {(e.visitor, e.product) for e in data.history})
    popular = sorted(counts, key=lambda product: (-counts[product], product))[: 10 * K]
    known = {visitor: events[:-1] for visitor, events in _sessions(data.future).items()}
    knn = SessionKNN(data.history)

    def top(ranked: Sequence[str], query: Query) -> list[str]:
        blocked = query.context.excluded()
        chosen = [p for p in dict.fromkeys(ranked) if p not in blocked][:K]
        chosen += [p for p in popular if p not in blocked and p not in chosen][: K - len(chosen)]
        return chosen

    def co_occurrence(query: Query) -> list[str]:
        last = known[query.visitor][-1].product
        return top([p for p, _ in store.get("viewed_together", last)], query)

    def reshow(query: Query) -> list[str]:
        return top([e.product for e in reversed(known[query.visitor])], query)

    def session_knn(query: Query) -> list[str]:
        votes = knn.scores([e.product for e in known[query.visitor]])
        return top(sorted(votes, key=lambda p: (-votes[p], p)), query)

    return {
        CO_OCCURRENCE: co_occurrence,
        RESHOW: reshow,
        SESSION_KNN: session_knn,
        POPULARITY: lambda query: top([], query),
    }


# Datasets -------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    title: str
    description: str
    events: list[Interaction]


def load(name: str, *, sessions: int, seed: int, source: Path) -> Dataset:
    if name == "retail":
        return Dataset(
            name,
            "Online Retail invoices as sessions",
            "UCI Online Retail (a UK gift-ware wholesaler's 2010-12 → 2011-12 invoices): each "
            "invoice one session, its lines `view` events in file order "
            f"{session_data.INVOICE_LINE_SECONDS} s apart from the invoice time; lines kept "
            "as `convert_online_retail.py` keeps them (no cancellations, returns, fees or "
            "lines without a customer).",
            session_data.retail_sessions(source),
        )
    return Dataset(
        name,
        "Simulated click sessions in the demo shop's catalogue",
        f"`session_data.demo_sessions({sessions}, seed={seed})`: the demo's 10 departments "
        f"× 8 kinds × {session_data.VARIANTS_PER_KIND} products, popularity by a power law; "
        "the demo's personas and countries browse one or two departments, follow similar and "
        "complementary products, go back to products seen minutes before, put some in the "
        f"cart and buy some, over {session_data.DAYS} days (the generative model is "
        "documented in `session_data.py`).",
        session_data.demo_sessions(sessions, seed=seed),
    )


# Running --------------------------------------------------------------------------------
def run(dataset: Dataset) -> dict:
    """Strategies (through ``evaluate``) and baselines on one dataset, with its counts."""
    started = time.perf_counter()
    strategies = evaluate(dataset.events, NEXT_ITEM, K)["strategies"]
    strategy_seconds = time.perf_counter() - started
    data = split(dataset.events)
    cases = queries(data, NEXT_ITEM)[NEXT_ITEM_CASE]
    store = MemoryStore(engine.fit(data.history, now=data.cut))
    scored = {name: score(cases, rec, K) for name, rec in baselines(data, store).items()}
    users = {int(values["users"]) for values in [*strategies.values(), *scored.values()]}
    assert users == {len(cases)}, f"strategies and baselines scored different sessions: {users}"
    counts = session_data.session_stats(dataset.events)
    counts.update(
        history_events=len(data.history),
        future_events=len(data.future),
        history_sessions=len({e.visitor for e in data.history}),
        test_sessions=len(cases),
        cut=data.cut.isoformat(),
    )
    ratios = {}
    if BLEND in strategies:
        for metric in ("hr", "ndcg"):
            best = max(scored[CO_OCCURRENCE][metric], scored[RESHOW][metric])
            ratios[metric] = strategies[BLEND][metric] / best if best else None
    return {
        "title": dataset.title,
        "description": dataset.description,
        "counts": counts,
        "strategies": strategies,
        "baselines": scored,
        "auto_ratio": ratios,
        "seconds": {
            "strategies": strategy_seconds,
            "total": time.perf_counter() - started,
        },
    }


# Report ---------------------------------------------------------------------------------
def metric_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    header = "| recommender | " + " | ".join(f"{m.upper()}@{K}" for m in SHOWN_METRICS)
    lines = [header + " | users |", "| --- |" + " ---: |" * (len(SHOWN_METRICS) + 1)]
    for name, values in rows.items():
        cells = " | ".join(f"{values[metric]:.3f}" for metric in SHOWN_METRICS)
        lines.append(f"| {name} | {cells} | {int(values['users'])} |")
    return "\n".join(lines)


def dataset_section(result: Mapping) -> str:
    counts = result["counts"]
    rows = {
        (f"`{name}` (blend)" if name == BLEND else f"`{name}`"): values
        for name, values in result["strategies"].items()
    }
    rows.update({f"baseline: {name}": values for name, values in result["baselines"].items()})
    ratio = {
        metric: "n/a" if value is None else f"{value:.2f}"
        for metric, value in result["auto_ratio"].items()
    }
    verdict = (
        f"`auto` against the better of co-occurrence on the last item and re-show the "
        f"session: HR@{K} × {ratio['hr']}, NDCG@{K} × {ratio['ndcg']}."
        if ratio
        else ""
    )
    return f"""### {result["title"]}

{result["description"]}

{counts["sessions"]:,} sessions, {counts["events"]:,} events, {counts["products"]:,} products;
{counts["events_per_session"]:.1f} events per session, {100 * counts["repeat_share"]:.1f}% of
events on a product already seen in the session. Cut at {counts["cut"][:16].replace("T", " ")}:
{counts["history_events"]:,} events ({counts["history_sessions"]:,} sessions) before it;
{counts["test_sessions"]:,} test sessions. Strategies and baselines took
{result["seconds"]["total"]:.0f} s.

{metric_table(rows)}

{verdict}
"""


def report(results: Mapping[str, Mapping], command: str, seconds: float) -> str:
    sections = "\n".join(dataset_section(result) for result in results.values())
    return f"""
## Recommendations: the next item of a session

Run on {dt.date.today().isoformat()} — {machine()}; one thread; {seconds:.0f} s in all.
`{command}`.

Protocol `next-item`, k = {K}: events sorted by time, cut at the event ⌊0.8 n⌋; test sessions
start at or after the cut and have at least two events; a recommender sees the session but
its last event and ranks that event's product (repeats allowed). Strategies are scored by
`personalization.recommendations.evaluation.evaluate`; the baselines, coded in
`benchmarks/bench_sessions.py`, on the same test sessions: the fitted `viewed_together` list
of the session's last product, the session's own products (most recent first), a
V-SKNN-like session kNN (the {SKNN_NEIGHBOURS} most similar of the {SKNN_SAMPLE} most recent
past sessions sharing a product), and popularity (sessions per product); each filled up to
{K} from popularity.

{sections}"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("retail", "demo", "all"), default="all")
    parser.add_argument("--sessions", type=int, default=session_data.DEFAULT_SESSIONS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--csv", type=Path, metavar="DIR")
    parser.add_argument("--json", type=Path, metavar="OUT")
    parser.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args(argv)
    names = ("retail", "demo") if args.dataset == "all" else (args.dataset,)
    started = time.perf_counter()
    results = {}
    for name in names:
        print(f"{name}: loading ...", file=sys.stderr)
        dataset = load(name, sessions=args.sessions, seed=args.seed, source=args.source)
        if args.csv:
            session_data.write_events(dataset.events, args.csv / CSV_NAMES[name])
        print(f"{name}: evaluating ...", file=sys.stderr)
        results[name] = run(dataset)
    seconds = time.perf_counter() - started
    command = f"python benchmarks/bench_sessions.py --dataset {args.dataset}"
    if "demo" in names:
        command += f" --sessions {args.sessions} --seed {args.seed}"
    body = report(results, command, seconds)
    print(body)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"k": K, "datasets": results}, indent=2) + "\n")
    if args.write:
        write_section("bench_sessions", body)


if __name__ == "__main__":
    main()
