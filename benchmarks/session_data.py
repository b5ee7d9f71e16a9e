"""Session datasets for the ``next-item`` protocol: real invoices, and simulated click sessions.

Both are lists of :class:`~personalization.recommendations.base.Interaction`, one visitor per
session, and :func:`write_events` writes either as ``manage.py personalization_evaluate``'s
events CSV.

**Online Retail invoices** (:func:`retail_sessions`). Each invoice of the UCI Online Retail
transactions is one session: the visitor id is the invoice number, and its lines are ``view``
events in file order, the first at the invoice time and each next one
:data:`INVOICE_LINE_SECONDS` later, so that sorting by time keeps the invoice's order. Lines are
kept or skipped exactly as ``convert_online_retail.py`` does (cancellations, non-positive
quantities or prices, lines without a customer, postage and other codes that are not products
are skipped), so both benchmarks read the same lines. The country is the row's, as an ISO
code; the quantity is the line's.

**Demo click sessions** (:func:`demo_sessions`): a seeded simulator of what visitors of a shop
shaped like the demo shop click on in one visit. The catalogue (:func:`demo_catalogue`) has
the demo's ten departments and their eight kinds of product each (``demo_data.CATEGORIES``),
with :data:`VARIANTS_PER_KIND` products of each kind instead of two: 3,200 products. Every
product has

- a popularity drawn from a power law: the products, shuffled, get ``1 / rank **``
  :data:`POPULARITY_EXPONENT`;
- a style, a position in [0, 1) along its kind (shuffled too), which decides what looks alike
  and what goes together.

A session is a visitor of one of the demo's personas (``shop_demo.simulation.PERSONAS``) from
one of its countries (``COUNTRY_WEIGHTS``; departments the country favours in
``demo_history.COUNTRY_TASTES`` weigh twice as much). The visitor has a mission: a department
drawn from the persona's interests. They land on a product of it (a kind by the sum of its
products' popularity, then a product by popularity) and then, page after page, do one of:

- **similar** (:data:`SIMILAR`): another product of the same kind, by popularity times
  ``exp(-style distance /`` :data:`SIMILAR_SPREAD` ``)`` — comparing alternatives;
- **complement** (:data:`COMPLEMENT`): a product of a kind that goes with this one — the two
  kinds next to it in its department and one more of the department, fixed per catalogue —
  by popularity times ``exp(-style distance /`` :data:`COMPLEMENT_SPREAD` ``)``;
- **revisit** (:data:`REVISIT`, once two products were seen): back to a product seen earlier in
  the visit, the one seen just before the current one most likely (weight ``1 / n`` for the
  ``n``-th most recent);
- **again** (:data:`AGAIN`): the same product once more (a reload, the reviews tab);
- **browse** (:data:`BROWSE`): a popular product of the department, as from its listing;
- **switch** (:data:`SWITCH`): a popular product of another department of the persona's
  interests, which becomes the current department (most visits stay in one or two).

Each new product viewed goes into the cart with the persona's ``add_to_cart`` times
:data:`CART_SHARE` (a ``cart`` event seconds after the view). A visit with a cart ends in a
purchase of all of it with the persona's ``base_purchase`` times :data:`PURCHASE_FACTOR` (at
most 0.9): ``purchase`` events after the last view.

A visit is one page with :data:`BOUNCE`; otherwise it has the persona's ``pages`` (a uniform
draw) plus, with :data:`LONG_VISIT`, an exponential tail of mean :data:`LONG_VISIT_EXTRA`
pages. Visits start over :data:`DAYS` days from :data:`START` (more by day than at night,
``simulation.random_moment``); pages follow each other after the demo's think time (8 to 75
seconds), and with :data:`PAUSE` after a pause of 2 to 15 minutes, so a visit never has a gap
of 30 minutes. Popularity does not change over the weeks.

Everything is drawn from ``random.Random`` instances seeded by ``seed`` and walks lists in a
fixed order: one seed gives the same events on every run and machine.

    python benchmarks/session_data.py retail OUT.csv
    python benchmarks/session_data.py demo OUT.csv [--sessions 30000] [--seed 1]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import itertools
import math
import random
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.convert_online_retail import COUNTRY_CODES, SOURCE, is_kept  # noqa: E402
from personalization.recommendations.base import (  # noqa: E402
    CART,
    PURCHASE,
    VIEW,
    Interaction,
)
from shop_demo import simulation  # noqa: E402
from shop_demo.catalog.demo_data import CATEGORIES  # noqa: E402
from shop_demo.catalog.demo_history import COUNTRY_TASTES  # noqa: E402

HEADER = ["visitor_id", "product_id", "timestamp", "event", "country", "quantity"]

# Online Retail ---------------------------------------------------------------------------
INVOICE_LINE_SECONDS = 3


def invoice_sessions(rows: Iterable[dict[str, str]]) -> list[Interaction]:
    """Each kept line of the Online Retail rows as a ``view`` of its invoice's visitor, in
    row order, :data:`INVOICE_LINE_SECONDS` apart from the invoice's first line's time."""
    started: dict[str, dt.datetime] = {}
    lines: dict[str, int] = {}
    events: list[Interaction] = []
    for row in rows:
        if not is_kept(row):
            continue
        invoice = row["InvoiceNo"].strip()
        if invoice not in started:
            at = dt.datetime.fromisoformat(row["InvoiceDate"].strip())
            started[invoice] = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
        line = lines.get(invoice, 0)
        lines[invoice] = line + 1
        at = started[invoice] + dt.timedelta(seconds=line * INVOICE_LINE_SECONDS)
        events.append(
            Interaction(
                invoice,
                row["StockCode"].strip(),
                at,
                VIEW,
                COUNTRY_CODES[row["Country"]],
                float(row["Quantity"]),
            )
        )
    return events


def retail_sessions(source: Path = SOURCE) -> list[Interaction]:
    """:func:`invoice_sessions` of the gzipped Online Retail CSV."""
    with gzip.open(source, "rt", newline="", encoding="utf-8") as file:
        return invoice_sessions(csv.DictReader(file))


# Demo click sessions -------------------------------------------------------------------
VARIANTS_PER_KIND = 40
POPULARITY_EXPONENT = 1.0
SIMILAR_SPREAD = 0.05
COMPLEMENT_SPREAD = 0.15
# The most likely neighbours kept per product and related kind (the rest weigh next to nothing).
NEIGHBOURS_KEPT = 12

# What the next page is, by weight (revisit only once two products were seen).
SIMILAR = 0.34
COMPLEMENT = 0.20
REVISIT = 0.15
AGAIN = 0.04
BROWSE = 0.17
SWITCH = 0.05

CART_SHARE = 0.4
PURCHASE_FACTOR = 4.0
MAX_PURCHASE = 0.9
BOUNCE = 0.2
LONG_VISIT = 0.3
LONG_VISIT_EXTRA = 6.0
PAUSE = 0.08
PAUSE_SECONDS = (120.0, 900.0)
DAYS = 42
START = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
DEFAULT_SESSIONS = 30_000


@dataclass(frozen=True)
class _Weighted:
    """Items with cumulative weights, for ``random.choices``."""

    items: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, float]]) -> _Weighted:
        items, weights = zip(*pairs, strict=True)
        return cls(tuple(items), tuple(itertools.accumulate(weights)))

    def draw(self, rng: random.Random) -> str:
        return rng.choices(self.items, cum_weights=self.cumulative)[0]


@dataclass(frozen=True)
class Catalogue:
    """Products of the simulated shop and how visitors move between them."""

    products: tuple[str, ...]
    department: dict[str, str]  # product -> department slug
    kind: dict[str, str]  # product -> kind key ("<department>/<noun slug>")
    popularity: dict[str, float]
    style: dict[str, float]
    complements: dict[str, tuple[str, ...]]  # kind -> the kinds that go with it
    similar: dict[str, _Weighted]  # product -> products of its kind
    related: dict[str, _Weighted]  # product -> products of the kinds that go with it
    listing: dict[str, _Weighted]  # department -> its products, by popularity


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def demo_catalogue(seed: int = 1, variants: int = VARIANTS_PER_KIND) -> Catalogue:
    """The simulated shop: the demo's departments and kinds, ``variants`` products a kind."""
    rng = random.Random(f"session-catalogue:{seed}")
    department: dict[str, str] = {}
    kind_of: dict[str, str] = {}
    style: dict[str, float] = {}
    kinds_by_department: dict[str, list[str]] = {}
    members: dict[str, list[str]] = {}
    for category in CATEGORIES:
        kinds_by_department[category.slug] = []
        for item in category.items:
            kind = f"{category.slug}/{_slug(item.noun)}"
            kinds_by_department[category.slug].append(kind)
            members[kind] = []
            positions = list(range(variants))
            rng.shuffle(positions)
            for number, position in enumerate(positions):
                product = f"{category.slug}-{_slug(item.noun)}-{number:03d}"
                department[product] = category.slug
                kind_of[product] = kind
                style[product] = (position + 0.5) / variants
                members[kind].append(product)
    products = tuple(department)
    ranks = list(range(1, len(products) + 1))
    rng.shuffle(ranks)
    popularity = {
        product: 1.0 / rank**POPULARITY_EXPONENT
        for product, rank in zip(products, ranks, strict=True)
    }
    complements: dict[str, tuple[str, ...]] = {}
    for kinds in kinds_by_department.values():
        for index, kind in enumerate(kinds):
            beside = [kinds[index - 1], kinds[(index + 1) % len(kinds)]]
            others = [other for other in kinds if other != kind and other not in beside]
            complements[kind] = (*beside, rng.choice(others))

    def near(product: str, candidates: Iterable[str], spread: float) -> _Weighted:
        weighted = [
            (other, popularity[other] * math.exp(-abs(style[other] - style[product]) / spread))
            for other in candidates
            if other != product
        ]
        weighted.sort(key=lambda pair: -pair[1])
        return _Weighted.of(weighted[:NEIGHBOURS_KEPT])

    similar = {p: near(p, members[kind_of[p]], SIMILAR_SPREAD) for p in products}
    related = {
        p: near(
            p,
            (o for kind in complements[kind_of[p]] for o in members[kind]),
            COMPLEMENT_SPREAD,
        )
        for p in products
    }
    listing = {
        slug: _Weighted.of((p, popularity[p]) for kind in kinds for p in members[kind])
        for slug, kinds in kinds_by_department.items()
    }
    return Catalogue(
        products, department, kind_of, popularity, style, complements, similar, related, listing
    )


def _department_weights(persona: simulation.Persona, country: str) -> dict[str, float]:
    weights = simulation.category_weights(persona, tuple(c.slug for c in CATEGORIES))
    favoured = COUNTRY_TASTES.get(country, ())
    return {slug: weight * (2.0 if slug in favoured else 1.0) for slug, weight in weights.items()}


def _visit_length(rng: random.Random, persona: simulation.Persona) -> int:
    if rng.random() < BOUNCE:
        return 1
    pages = rng.randint(*persona.pages)
    if rng.random() < LONG_VISIT:
        pages += int(rng.expovariate(1.0 / LONG_VISIT_EXTRA))
    return pages


def _next_product(
    rng: random.Random,
    catalogue: Catalogue,
    seen: list[str],
    departments: dict[str, float],
    current_department: str,
) -> tuple[str, str]:
    """The next product of a visit that has seen ``seen`` (in order), and its department."""
    current = seen[-1]
    earlier = [p for p in dict.fromkeys(reversed(seen)) if p != current]
    moves = {
        "similar": SIMILAR,
        "complement": COMPLEMENT,
        "revisit": REVISIT if earlier else 0.0,
        "again": AGAIN,
        "browse": BROWSE,
        "switch": SWITCH,
    }
    move = str(simulation.weighted_choice(rng, moves))
    if move == "similar":
        return catalogue.similar[current].draw(rng), current_department
    if move == "complement":
        return catalogue.related[current].draw(rng), current_department
    if move == "revisit":
        weights = [1.0 / (n + 1) for n in range(len(earlier))]
        product = rng.choices(earlier, weights=weights)[0]
        return product, catalogue.department[product]
    if move == "again":
        return current, current_department
    if move == "switch":
        others = {slug: w for slug, w in departments.items() if slug != current_department}
        current_department = str(simulation.weighted_choice(rng, others))
    return catalogue.listing[current_department].draw(rng), current_department


def _session(
    rng: random.Random, catalogue: Catalogue, visitor: str, start: dt.datetime
) -> list[Interaction]:
    persona = simulation.weighted_choice(rng, {p: p.weight for p in simulation.PERSONAS})
    assert isinstance(persona, simulation.Persona)
    country = simulation.weighted_choice(rng, simulation.COUNTRY_WEIGHTS) or ""
    assert isinstance(country, str)
    departments = _department_weights(persona, country)
    department = str(simulation.weighted_choice(rng, departments))
    at = simulation.random_moment(rng, start, start + dt.timedelta(days=DAYS))
    seen: list[str] = []
    events: list[Interaction] = []
    cart: list[str] = []
    for page in range(_visit_length(rng, persona)):
        if page == 0:
            product = catalogue.listing[department].draw(rng)
        else:
            wait = simulation.think_time(rng)
            if rng.random() < PAUSE:
                wait += rng.uniform(*PAUSE_SECONDS)
            at += dt.timedelta(seconds=wait)
            product, department = _next_product(rng, catalogue, seen, departments, department)
        first_view = product not in seen
        seen.append(product)
        events.append(Interaction(visitor, product, at, VIEW, country))
        if first_view and rng.random() < persona.add_to_cart * CART_SHARE:
            cart.append(product)
            at += dt.timedelta(seconds=rng.uniform(3.0, 15.0))
            events.append(Interaction(visitor, product, at, CART, country))
    if cart and rng.random() < min(MAX_PURCHASE, persona.base_purchase * PURCHASE_FACTOR):
        at += dt.timedelta(seconds=simulation.think_time(rng))
        for product in cart:
            at += dt.timedelta(seconds=rng.uniform(0.5, 2.0))
            events.append(Interaction(visitor, product, at, PURCHASE, country))
    return events


def demo_sessions(
    sessions: int = DEFAULT_SESSIONS,
    *,
    seed: int = 1,
    catalogue: Catalogue | None = None,
    start: dt.datetime = START,
) -> list[Interaction]:
    """``sessions`` simulated visits (visitor ids ``d000000``…), sorted by time (stable)."""
    catalogue = catalogue or demo_catalogue(seed)
    rng = random.Random(f"session-visits:{seed}")
    events: list[Interaction] = []
    for index in range(sessions):
        events.extend(_session(rng, catalogue, f"d{index:06d}", start))
    events.sort(key=lambda event: event.at)
    return events


# Files ---------------------------------------------------------------------------------
def _quantity(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def write_events(events: Sequence[Interaction], path: Path) -> None:
    """``events`` as the evaluate command's CSV (``visitor_id, product_id, timestamp, event,
    country, quantity``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for e in events:
            writer.writerow(
                [e.visitor, e.product, e.at.isoformat(), e.kind, e.country, _quantity(e.quantity)]
            )


def session_stats(events: Sequence[Interaction]) -> dict[str, float]:
    """Counts that describe a session dataset: sessions, events, products, the mean events per
    session, and the share of events on a product seen earlier in the same session."""
    seen: dict[str, set[str]] = {}
    repeats = 0
    for event in events:
        products = seen.setdefault(event.visitor, set())
        repeats += event.product in products
        products.add(event.product)
    return {
        "sessions": len(seen),
        "events": len(events),
        "products": len({event.product for event in events}),
        "events_per_session": len(events) / len(seen) if seen else 0.0,
        "repeat_share": repeats / len(events) if events else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=("retail", "demo"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args(argv)
    if args.dataset == "retail":
        events = retail_sessions(args.source)
    else:
        events = demo_sessions(args.sessions, seed=args.seed)
    write_events(events, args.out)
    print(f"{len(events)} events written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
