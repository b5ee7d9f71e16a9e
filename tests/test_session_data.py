"""The session benchmark's datasets: invoices as sessions, the click simulator, its baselines."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import bench_sessions, session_data
from benchmarks.session_data import (
    DAYS,
    INVOICE_LINE_SECONDS,
    START,
    demo_catalogue,
    demo_sessions,
    invoice_sessions,
    write_events,
)
from personalization.recommendations.base import CART, PURCHASE, VIEW, Interaction, MemoryStore
from personalization.recommendations.evaluation import NEXT_ITEM, queries, read_events, split

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.UTC


def line(invoice: str, code: str, minute: int, **changes: str) -> dict[str, str]:
    row = {
        "InvoiceNo": invoice,
        "StockCode": code,
        "Description": "",
        "Quantity": "2",
        "InvoiceDate": f"2011-03-01 09:{minute:02d}:00",
        "UnitPrice": "1.25",
        "CustomerID": "12345.0",
        "Country": "Germany",
    }
    return {**row, **changes}


# Invoices as sessions ----------------------------------------------------------------------
def test_each_invoice_is_a_session_of_views_in_line_order():
    rows = [
        line("500001", "22423", 0),
        line("500001", "85123A", 0, Quantity="6"),
        line("500002", "21212", 1, Country="EIRE"),
        line("500001", "10002", 1),  # a later line of the first invoice, timed a minute on
    ]
    events = invoice_sessions(rows)
    start = dt.datetime(2011, 3, 1, 9, 0, tzinfo=UTC)
    step = dt.timedelta(seconds=INVOICE_LINE_SECONDS)
    assert events == [
        Interaction("500001", "22423", start, VIEW, "DE", 2.0),
        Interaction("500001", "85123A", start + step, VIEW, "DE", 6.0),
        Interaction("500002", "21212", start + dt.timedelta(minutes=1), VIEW, "IE", 2.0),
        Interaction("500001", "10002", start + 2 * step, VIEW, "DE", 2.0),
    ]


def test_invoice_lines_are_skipped_as_the_purchase_converter_skips_them():
    rows = [
        line("C500003", "22423", 0, Quantity="-2"),  # a cancellation
        line("500004", "22423", 0, Quantity="0"),
        line("500004", "22424", 0, UnitPrice="0"),
        line("500004", "22425", 0, CustomerID=""),
        line("500004", "POST", 0),
        line("500004", "M", 0),
        line("500004", "22426", 0),
    ]
    assert [(e.visitor, e.product) for e in invoice_sessions(rows)] == [("500004", "22426")]


def test_the_cut_keeps_every_invoices_line_order():
    # Two long invoices of the same minute, their lines interleaved in the file.
    rows = []
    for number in range(40):
        rows.append(line("500010", f"2{number:04d}", 5))
        rows.append(line("500011", f"3{number:04d}", 5))
    data = split(invoice_sessions(rows))
    for invoice, prefix in (("500010", "2"), ("500011", "3")):
        products = [e.product for e in [*data.history, *data.future] if e.visitor == invoice]
        assert products == [f"{prefix}{number:04d}" for number in range(40)]


# The click simulator -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalogue() -> session_data.Catalogue:
    return demo_catalogue(seed=3)


@pytest.fixture(scope="module")
def simulated(catalogue) -> list[Interaction]:
    return demo_sessions(2000, seed=3, catalogue=catalogue)


def by_session(events: list[Interaction]) -> dict[str, list[Interaction]]:
    sessions: dict[str, list[Interaction]] = {}
    for event in events:
        sessions.setdefault(event.visitor, []).append(event)
    return sessions


def test_the_catalogue_has_the_demos_departments_and_a_power_law(catalogue):
    assert len(catalogue.products) == 10 * 8 * session_data.VARIANTS_PER_KIND
    assert len(set(catalogue.department.values())) == 10
    assert len(set(catalogue.kind.values())) == 80
    assert sorted(catalogue.popularity.values(), reverse=True) == pytest.approx(
        [1.0 / rank for rank in range(1, len(catalogue.products) + 1)]
    )
    # Similar products are of the same kind; complements of other kinds of the department.
    product = catalogue.products[123]
    assert {catalogue.kind[p] for p in catalogue.similar[product].items} == {
        catalogue.kind[product]
    }
    related = {catalogue.kind[p] for p in catalogue.related[product].items}
    assert related <= set(catalogue.complements[catalogue.kind[product]])
    assert {catalogue.department[p] for p in catalogue.related[product].items} == {
        catalogue.department[product]
    }


def test_the_simulator_is_deterministic_and_depends_on_its_seed(simulated, catalogue):
    assert demo_sessions(2000, seed=3, catalogue=catalogue) == simulated
    assert demo_sessions(200, seed=4)[:50] != demo_sessions(200, seed=3)[:50]


def test_the_simulator_gives_the_same_events_in_another_process(tmp_path):
    # Another string hash seed: nothing may depend on the order of a set of strings.
    path = tmp_path / "sessions.csv"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from benchmarks.session_data import demo_sessions, write_events\n"
        "write_events(demo_sessions(300, seed=5), Path(sys.argv[1]))\n"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", code, str(path)], cwd=ROOT, env=environment, check=True, timeout=60
    )
    assert read_events(path) == demo_sessions(300, seed=5)


def back_visits(events: list[Interaction]) -> tuple[float, float]:
    """The shares of views that go back to a product seen before the previous page, and that
    show the previous page's product again."""
    back = again = total = 0
    for session in by_session(events).values():
        views = [e.product for e in session if e.kind == VIEW]
        for index in range(2, len(views)):
            total += 1
            again += views[index] == views[index - 1]
            back += views[index] != views[index - 1] and views[index] in views[: index - 1]
    return back / total, again / total


def test_visits_go_back_to_products_seen_minutes_before(simulated, catalogue, monkeypatch):
    back, again = back_visits(simulated)
    revisit, reload = session_data.REVISIT, session_data.AGAIN
    monkeypatch.setattr(session_data, "REVISIT", 0.0)
    monkeypatch.setattr(session_data, "AGAIN", 0.0)
    without_back, without_again = back_visits(demo_sessions(2000, seed=3, catalogue=catalogue))
    # Comparing similar products already goes back and forth, and a listing may show the
    # current product again; revisits and reloads add to both.
    assert back > without_back + 0.5 * revisit
    assert again > without_again + 0.5 * reload


def test_visits_stay_in_one_or_two_departments(simulated, catalogue):
    sessions = by_session(simulated).values()
    departments = [len({catalogue.department[e.product] for e in s}) for s in sessions]
    counts = Counter(departments)
    assert (counts[1] + counts[2]) / len(departments) > 0.9
    assert counts[1] / len(departments) > 0.5


def test_pages_are_seconds_to_minutes_apart_within_the_weeks(simulated):
    for events in by_session(simulated).values():
        for before, after in itertools.pairwise(events):
            assert dt.timedelta(0) < after.at - before.at < dt.timedelta(minutes=30)
    assert simulated[0].at >= START
    assert simulated[-1].at < START + dt.timedelta(days=DAYS, hours=6)
    assert simulated == sorted(simulated, key=lambda event: event.at)


def test_carts_follow_views_and_purchases_follow_carts(simulated):
    kinds = Counter(event.kind for event in simulated)
    assert kinds[CART] > 0 and kinds[PURCHASE] > 0
    for events in by_session(simulated).values():
        viewed: set[str] = set()
        carted: set[str] = set()
        for event in events:
            if event.kind == CART:
                assert event.product in viewed
                carted.add(event.product)
            elif event.kind == PURCHASE:
                assert event.product in carted
            viewed.add(event.product)


def test_the_cut_leaves_test_sessions(simulated):
    found = queries(split(simulated), NEXT_ITEM)["next_item"]
    assert 0.1 < len(found) / 2000 < 0.25


def test_sessions_are_written_as_the_evaluate_commands_csv(simulated, tmp_path):
    rows = [line("500001", "22423", 0, Quantity="3"), line("500001", "22424", 0)]
    for events in (simulated[:500], invoice_sessions(rows)):
        path = tmp_path / "events.csv"
        write_events(events, path)
        assert read_events(path) == events


# The benchmark's baselines ----------------------------------------------------------------
def test_baselines_use_the_last_item_the_session_and_popularity():
    def at(day: int, minute: int = 0) -> dt.datetime:
        return dt.datetime(2026, 1, day, 9, minute, tzinfo=UTC)

    past = ["AB", "AC", "AD", "BE", "AF", "GH", "IJ", "KL"]  # A in 4 sessions, B in 2
    history = [
        Interaction(f"h{number}", product, at(1 + number, minute), VIEW)
        for number, products in enumerate(past)
        for minute, product in enumerate(products)
    ]
    session = [
        Interaction("s", product, at(20, minute), VIEW) for minute, product in enumerate("BCBX")
    ]
    data = split([*history, *session])  # 20 events: the cut is the session's first
    assert data.history == history
    store = MemoryStore({("viewed_together", "B"): [("E", 0.9), ("C", 0.5)]})
    recommenders = bench_sessions.baselines(data, store)
    (query,) = queries(data, NEXT_ITEM)["next_item"]
    assert query.targets == {"X"}
    assert recommenders["popularity"](query)[:5] == ["A", "B", "C", "D", "E"]
    assert recommenders["co-occurrence on the last item"](query)[:5] == ["E", "C", "A", "B", "D"]
    assert recommenders["re-show the session"](query)[:4] == ["B", "C", "A", "D"]
    # B weighs 1 and C 1/2: h0 (A, B) and h3 (B, E) are the nearest, then h1 (A, C).
    assert recommenders["session kNN"](query)[:5] == ["B", "A", "E", "C", "D"]
    assert all(len(recommend(query)) == bench_sessions.K for recommend in recommenders.values())
