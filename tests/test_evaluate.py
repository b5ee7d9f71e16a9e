"""Offline evaluation: metrics, the cut, each case's visitors, the CSV and the command."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from personalization.recommendations.base import PURCHASE, VIEW, Context, Interaction, Strategy
from personalization.recommendations.evaluation import (
    EventsFileError,
    evaluate,
    metrics,
    parse_events,
    queries,
    split,
)
from personalization.recommendations.strategies import Bestsellers

HEADER = "visitor_id,product_id,timestamp,event,country,quantity,price"
PADDING = [f"v9,Z,2026-01-{day:02d}T09:00:00,view,," for day in range(11, 21)]
# 25 events: the cut is event 20 (0-based), 2026-01-21. Bestsellers before it: A (4 buyers),
# then B and D (2 each; B first seen).
EVENTS = [
    HEADER,
    "v1,A,2026-01-01T09:00:00,purchase,DE,2,3.50",
    "v1,B,2026-01-02T09:00:00,purchase,DE,,",
    "v2,A,2026-01-03T09:00:00,purchase,FR,,",
    "v3,A,2026-01-04T09:00:00,purchase,GB,,",
    "v2,B,2026-01-05T09:00:00,purchase,FR,,",
    "v3,C,2026-01-06T09:00:00,view,GB,,",
    "v1,C,2026-01-07T09:00:00,view,DE,,",
    "v4,A,2026-01-08T09:00:00,purchase,DE,,",
    "v4,D,2026-01-09T09:00:00,purchase,DE,,",
    "v2,D,2026-01-10T09:00:00,purchase,FR,,",
    *PADDING,
    "v1,D,2026-01-21T09:00:00,purchase,DE,,",
    "v1,E,2026-01-22T09:00:00,purchase,DE,,",
    "v2,A,2026-01-23T09:00:00,purchase,FR,,",
    "v7,B,2026-01-24T09:00:00,view,,,",
    "v7,B,2026-01-25T09:00:00,purchase,SE,,",
]
UTC = dt.UTC


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text("\n".join(EVENTS) + "\n")
    return path


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, 1, day, hour, tzinfo=UTC)


# Metrics ---------------------------------------------------------------------------------
def test_metrics_by_hand():
    found = metrics(["a", "b", "c", "d"], frozenset({"b", "d", "e"}), 4)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert found == pytest.approx(
        {"hr": 1.0, "precision": 0.5, "recall": 2 / 3, "ndcg": dcg / ideal, "mrr": 0.5}
    )


def test_metrics_only_count_the_first_k_and_divide_precision_by_k():
    assert metrics(["x", "y", "a"], frozenset({"a"}), 2) == {
        "hr": 0.0,
        "ndcg": 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "mrr": 0.0,
    }
    short = metrics(["a"], frozenset({"a"}), 10)
    assert short["precision"] == pytest.approx(0.1)
    assert short["ndcg"] == pytest.approx(1.0)  # ideal DCG over min(1 target, k)


def test_metrics_ideal_dcg_stops_at_k():
    found = metrics(["a", "b"], frozenset({"a", "b", "c", "d"}), 2)
    assert found["ndcg"] == pytest.approx(1.0)
    assert found["recall"] == pytest.approx(0.5)


# The cut -----------------------------------------------------------------------------------
def interaction(visitor: str, when: dt.datetime, product: str = "p") -> Interaction:
    return Interaction(visitor, product, when, PURCHASE)


def test_cut_is_the_event_at_index_floor_of_80_percent():
    events = [interaction(f"v{i}", at(1 + i)) for i in range(7)]  # ⌊5.6⌋ = 5
    data = split(events)
    assert data.cut == at(6)
    assert [e.visitor for e in data.history] == ["v0", "v1", "v2", "v3", "v4"]
    assert [e.visitor for e in data.future] == ["v5", "v6"]
    assert split(events[:5]).cut == at(5)  # ⌊4.0⌋ = 4


def test_sort_is_stable_and_ties_at_the_cut_are_future():
    events = [
        interaction("late", at(3)),
        interaction("first", at(1)),
        interaction("second", at(1)),
        interaction("tie-1", at(2)),
        interaction("tie-2", at(2)),
        interaction("tie-3", at(2)),
        interaction("tie-4", at(2)),
        interaction("tie-5", at(2)),
        interaction("tie-6", at(2)),
        interaction("last", at(4)),
    ]
    data = split(events)
    # Sorted: first, second, tie-1 … tie-6, late, last; index 8 is "late".
    assert data.cut == at(3)
    assert [e.visitor for e in data.history] == [
        "first", "second", "tie-1", "tie-2", "tie-3", "tie-4", "tie-5", "tie-6",
    ]  # fmt: skip
    # Index 8 falls inside a tie: every event of the cut's timestamp is future.
    tied = [interaction("a", at(1)), *(interaction(f"t{i}", at(2)) for i in range(4))]
    data = split(tied)
    assert data.cut == at(2)
    assert [e.visitor for e in data.history] == ["a"]
    assert [e.visitor for e in data.future] == ["t0", "t1", "t2", "t3"]


def test_split_needs_events():
    with pytest.raises(ValueError):
        split([])


# Cases -------------------------------------------------------------------------------------
def test_future_purchase_cases_select_their_visitors(events_csv):
    data = split(parse_events(events_csv.read_text().splitlines()))
    assert data.cut == at(21)
    cases = queries(data, "future-purchases")
    by_visitor = {case: {q.visitor: q for q in found} for case, found in cases.items()}
    # v1 and v2 have history and buy afterwards; v3 and v4 buy nothing more; v7 is new.
    assert set(by_visitor["all"]) == {"v1", "v2"}
    assert by_visitor["all"]["v1"].targets == {"D", "E"}
    assert by_visitor["all"]["v2"].targets == {"A"}
    v1 = by_visitor["all"]["v1"].context
    assert v1.purchased == ["B", "A"] and v1.viewed == ["C"] and v1.country == "DE"
    assert v1.now == at(21) and not v1.exclude_history
    # v2 bought A before: nothing new, dropped.
    assert set(by_visitor["new_items"]) == {"v1"}
    assert by_visitor["new_items"]["v1"].targets == {"D", "E"}
    assert by_visitor["new_items"]["v1"].context.exclude_history
    assert by_visitor["new_items"]["v1"].context.excluded() == {"A", "B", "C"}
    # A new visitor is known by the first country of their future events only.
    assert set(by_visitor["new_visitors"]) == {"v7"}
    newcomer = by_visitor["new_visitors"]["v7"]
    assert newcomer.targets == {"B"}
    assert newcomer.context == Context(now=at(21), country="SE")


def test_next_item_takes_new_visitors_with_two_events(events_csv):
    data = split(parse_events(events_csv.read_text().splitlines()))
    found = queries(data, "next-item")["next_item"]
    assert [q.visitor for q in found] == ["v7"]
    assert found[0].targets == {"B"}
    assert found[0].context.viewed == ["B"] and found[0].context.purchased == []
    assert found[0].context.country == "SE"


def test_next_item_keeps_duplicates_and_sees_all_but_the_last():
    history = [interaction(f"old{i}", at(1)) for i in range(20)]
    session = [
        Interaction("s", "a", at(5, 10), VIEW),
        Interaction("s", "b", at(5, 11), VIEW),
        Interaction("s", "a", at(5, 12), VIEW),
        Interaction("s", "a", at(5, 13), PURCHASE),
    ]
    single = [Interaction("one", "x", at(5, 14), VIEW)]
    found = queries(split([*history, *session, *single]), "next-item")["next_item"]
    assert [q.visitor for q in found] == ["s"]
    assert found[0].context.viewed == ["a", "b"]
    assert found[0].targets == {"a"}
    assert found[0].context.now == at(5, 13)


def test_unknown_protocol():
    with pytest.raises(ValueError, match="protocol"):
        queries(split([interaction("v", at(1))]), "clicks")


# Evaluate ----------------------------------------------------------------------------------
def test_evaluate_future_purchases_by_hand(events_csv):
    events = parse_events(events_csv.read_text().splitlines())
    result = evaluate(events, "future-purchases", 2, [Bestsellers()])
    assert result["protocol"] == "future-purchases" and result["k"] == 2
    found = result["strategies"]["bestsellers"]
    # all: v1 gets [A, B] against {D, E}: nothing; v2 gets [A, B] against {A}: rank 1.
    assert found["all"] == pytest.approx(
        {"hr": 0.5, "ndcg": 0.5, "precision": 0.25, "recall": 0.5, "mrr": 0.5, "users": 2}
    )
    # new_items: v1 without A, B, C gets [D, Z] (Z from popular) against {D, E}.
    assert found["new_items"] == pytest.approx(
        {
            "hr": 1.0,
            "ndcg": 1 / (1 + 1 / math.log2(3)),
            "precision": 0.5,
            "recall": 0.5,
            "mrr": 1.0,
            "users": 1,
        }
    )
    # new_visitors: v7 gets [A, B] against {B}: rank 2.
    assert found["new_visitors"] == pytest.approx(
        {"hr": 1.0, "ndcg": 1 / math.log2(3), "precision": 0.5, "recall": 1.0, "mrr": 0.5,
         "users": 1}
    )  # fmt: skip


def test_evaluate_next_item_by_hand(events_csv):
    events = parse_events(events_csv.read_text().splitlines())
    result = evaluate(events, "next-item", 2, [Bestsellers()])
    assert result["strategies"]["bestsellers"] == pytest.approx(
        {"hr": 1.0, "ndcg": 1 / math.log2(3), "precision": 0.5, "recall": 1.0, "mrr": 0.5,
         "users": 1}
    )  # fmt: skip


def test_evaluate_runs_every_builtin_strategy_by_default(events_csv):
    events = parse_events(events_csv.read_text().splitlines())
    result = evaluate(events, "future-purchases", 3)
    assert list(result["strategies"]) == [
        "auto",
        "recently_viewed",
        "viewed_together",
        "bought_together",
        "trending",
        "popular_near_you",
        "buy_again",
        "bestsellers",
    ]
    # buy_again gives v1 back A and B, filled up with the bestseller D (a hit), and v2 its
    # A, B and D (A is a hit).
    assert result["strategies"]["buy_again"]["all"]["hr"] == 1.0
    assert result["strategies"]["buy_again"]["all"]["precision"] == pytest.approx(1 / 3)


# The CSV -----------------------------------------------------------------------------------
def test_parse_events_reads_optional_columns_and_zones():
    events = parse_events(
        [
            "event,timestamp,product_id,visitor_id,quantity",
            "view,2026-01-01T10:00:00,p1,v1,",
            "cart,2026-01-01T10:00:00+02:00,p2,v1,3",
            "purchase,2026-01-01T10:00:00Z,p3,v2,1.5",
        ]
    )
    assert [e.at for e in events] == [
        at(1, 10),
        dt.datetime(2026, 1, 1, 8, tzinfo=UTC),
        at(1, 10),
    ]
    assert events[0].at.tzinfo is not None
    assert [e.quantity for e in events] == [1.0, 3.0, 1.5]
    assert [e.country for e in events] == ["", "", ""]


@pytest.mark.parametrize(
    ("rows", "line", "message"),
    [
        (["visitor_id,product_id,timestamp"], 1, "event"),
        ([HEADER, "v1,A,2026-01-01T09:00:00,view,,,", "v1,B,yesterday,view,,,"], 3, "timestamp"),
        ([HEADER, "v1,A,2026-01-01T09:00:00,like,,,"], 2, "unknown event"),
        ([HEADER, "v1,A,2026-01-01T09:00:00,view,,,", "v1,A,2026-01-01T09:00:00,view,,x,"],
         3, "quantity"),
        ([HEADER, "v1,A,2026-01-01T09:00:00,view,Germany,,"], 2, "country"),
        ([HEADER, "v1,A,2026-01-01T09:00:00,view,,,free"], 2, "price"),
        ([HEADER, ",A,2026-01-01T09:00:00,view,,,"], 2, "visitor_id"),
    ],
)  # fmt: skip
def test_parse_errors_name_the_line(rows, line, message):
    with pytest.raises(EventsFileError, match=message) as raised:
        parse_events(rows)
    assert raised.value.line == line
    assert f"line {line}:" in str(raised.value)


# The command -------------------------------------------------------------------------------
class OnlyZ(Strategy):
    name = "only_z"

    def recommend(self, context: Context, store: object, limit: int) -> list[str]:
        return ["Z"]


def test_command_writes_the_contract_json(events_csv, tmp_path, capsys):
    out = tmp_path / "result.json"
    call_command(
        "personalization_evaluate",
        str(events_csv),
        "--protocol",
        "future-purchases",
        "--k",
        "2",
        "--json",
        str(out),
    )
    result = json.loads(out.read_text())
    assert set(result) == {"protocol", "k", "strategies"}
    assert result["protocol"] == "future-purchases" and result["k"] == 2
    assert "auto" in result["strategies"] and "bestsellers" in result["strategies"]
    for per_case in result["strategies"].values():
        assert set(per_case) == {"all", "new_items", "new_visitors"}
        for values in per_case.values():
            assert set(values) == {"hr", "ndcg", "precision", "recall", "mrr", "users"}
    assert result["strategies"]["bestsellers"]["all"]["hr"] == 0.5
    printed = capsys.readouterr().out
    assert "bestsellers" in printed and "new_visitors" in printed and "users" in printed


def test_command_next_item_json_and_chosen_strategies(events_csv, tmp_path):
    out = tmp_path / "result.json"
    call_command(
        "personalization_evaluate",
        str(events_csv),
        "--protocol=next-item",
        "--strategies=bestsellers,tests.test_evaluate.OnlyZ",
        f"--json={out}",
    )
    result = json.loads(out.read_text())
    assert result["protocol"] == "next-item" and result["k"] == 10
    assert list(result["strategies"]) == ["bestsellers", "only_z"]
    assert result["strategies"]["bestsellers"]["users"] == 1
    assert set(result["strategies"]["only_z"]) == {"hr", "ndcg", "precision", "recall", "mrr",
                                                   "users"}  # fmt: skip
    # only_z's Z is filled up with bestsellers A, B: the target B comes third.
    assert result["strategies"]["only_z"]["mrr"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("rows", "line"),
    [
        (["visitor_id,product_id,event", "v1,A,view"], 1),
        ([HEADER, "v1,A,2026-01-01T09:00:00,view,,,", "v1,A,2026-13-01T09:00:00,view,,,"], 3),
        ([HEADER, "v1,A,2026-01-01T09:00:00,view,,,", "v1,A,2026-01-01T09:00:00,click,,,"], 3),
    ],
)
def test_command_errors_name_the_line(tmp_path, rows, line):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(CommandError, match=f"line {line}:"):
        call_command("personalization_evaluate", str(path), "--protocol", "next-item")


def test_command_rejects_unknown_strategies_and_missing_files(events_csv, tmp_path):
    with pytest.raises(CommandError, match="Unknown strategy 'nope'"):
        call_command(
            "personalization_evaluate", str(events_csv), "--protocol=next-item", "--strategies=nope"
        )
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("personalization_evaluate", str(tmp_path / "missing.csv"),
                     "--protocol=next-item")  # fmt: skip
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER + "\n")
    with pytest.raises(CommandError, match="no events"):
        call_command("personalization_evaluate", str(empty), "--protocol=next-item")
    with pytest.raises(CommandError, match="--k"):
        call_command("personalization_evaluate", str(events_csv), "--protocol=next-item", "--k=0")
