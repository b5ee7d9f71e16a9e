"""manage.py personalization_evaluate: score recommendation strategies offline on an events CSV.

    manage.py personalization_evaluate EVENTS.csv --protocol future-purchases|next-item
        [--k 10] [--json OUT.json] [--strategies auto,trending,path.to.MyStrategy]

Fits the lists on the events before the cut and scores the strategies on what came after;
see :mod:`personalization.recommendations.evaluation`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from personalization.recommendations.base import Strategy
from personalization.recommendations.evaluation import (
    PROTOCOLS,
    EventsFileError,
    builtin_strategies,
    evaluate,
    format_table,
    read_events,
)
from personalization.recommendations.strategies import BUILTIN_STRATEGIES


class Command(BaseCommand):
    help = "Evaluate recommendation strategies offline: fit before the cut, score after it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "events", type=Path, help="CSV: visitor_id, product_id, timestamp, event"
        )
        parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
        parser.add_argument("--k", type=int, default=10, help="list length scored (default 10)")
        parser.add_argument("--json", type=Path, help="also write the results to this file")
        parser.add_argument(
            "--strategies",
            help="comma-separated built-in names or dotted paths (default: every built-in one)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["k"] < 1:
            raise CommandError("--k must be at least 1.")
        names = [name.strip() for name in (options["strategies"] or "").split(",")]
        strategies = (
            [_strategy(name) for name in dict.fromkeys(names) if name]
            if options["strategies"]
            else builtin_strategies()
        )
        if not strategies:
            raise CommandError("--strategies names no strategy.")
        try:
            events = read_events(options["events"])
        except EventsFileError as error:
            raise CommandError(f"{options['events']}, {error}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {options['events']}: {error}") from None
        if not events:
            raise CommandError(f"{options['events']} holds no events.")
        result = evaluate(events, options["protocol"], options["k"], strategies)
        self.stdout.write(format_table(result))
        if options["json"]:
            options["json"].write_text(json.dumps(result, indent=2) + "\n")
            self.stdout.write(f"\nWrote {options['json']}")


def _strategy(name: str) -> Strategy:
    """A built-in strategy by name, or any Strategy subclass by dotted path."""
    if name in BUILTIN_STRATEGIES:
        return BUILTIN_STRATEGIES[name]()
    if "." in name:
        try:
            found = import_string(name)
        except ImportError as error:
            raise CommandError(f"Cannot import strategy {name!r}: {error}") from None
        if isinstance(found, type) and issubclass(found, Strategy):
            return found()
    known = ", ".join(BUILTIN_STRATEGIES)
    raise CommandError(f"Unknown strategy {name!r}; built-in ones are {known}.")
