"""manage.py personalization_rollup: refresh the conversion report's daily roll-ups now."""

from typing import Any

from django.core.management.base import BaseCommand

from personalization.reports import rollups


class Command(BaseCommand):
    help = (
        "Refresh the report's daily roll-ups: the visitors active since the last refresh, or "
        "everyone with --full (after loading or importing rows with past dates)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--full", action="store_true", help="rebuild from every row")

    def handle(self, *args: Any, **options: Any) -> None:
        result = rollups.refresh(full=options["full"])
        what = "Rebuilt" if result["rebuilt"] else "Refreshed"
        self.stdout.write(
            f"{what} the report roll-ups: {result['visitors']:,} visitor(s) recomputed in "
            f"{result['seconds']:.1f}s."
        )
