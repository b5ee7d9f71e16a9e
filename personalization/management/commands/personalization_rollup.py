"""manage.py personalization_rollup: refresh the conversion report's daily roll-ups now."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from personalization.reports import rollups


class Command(BaseCommand):
    help = (
        "Refresh the report's daily roll-ups: the visitors active since the last refresh, or "
        "everyone with --full (after loading or importing rows with past dates)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--full", action="store_true", help="rebuild from every row")
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="compute the parts of a rebuild in this many processes side by side (default "
            "1: the Celery workers take them when there are any, else this process)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["processes"] < 1:
            raise CommandError("--processes is at least 1.")
        result = rollups.refresh(full=options["full"], processes=options["processes"])
        if result.get("building"):
            self.stdout.write(
                f"A rebuild of the report roll-ups is going on: {result['parts_done']} of "
                f"{result['parts']} part(s) done."
            )
            return
        if result.get("queued"):
            self.stdout.write(
                f"Rebuilding the report roll-ups: {result['queued']} of {result['parts']} "
                "part(s) sent to the Celery workers; the report uses them once all are done."
            )
            return
        what = "Rebuilt" if result["rebuilt"] else "Refreshed"
        self.stdout.write(
            f"{what} the report roll-ups: {result['visitors']:,} visitor(s) recomputed in "
            f"{result['seconds']:.1f}s."
        )
