"""manage.py personalization_import_recipients FILE.csv --consent "the words agreed to"

Adds the addresses of a CSV file (a header line with ``email`` and, when known,
``consented_at``) as email recipients with that consent; see
:mod:`personalization.emails.audience`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from personalization.emails.audience import import_rows, read_csv


class Command(BaseCommand):
    help = "Import email addresses that agreed to receive the shop's email."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, help="CSV with a header line: email[,consented_at]")
        parser.add_argument(
            "--consent",
            required=True,
            help="the words the addresses agreed to, kept with each (up to 500 characters)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["consent"].strip():
            raise CommandError("--consent must say what the addresses agreed to.")
        if not options["file"].is_file():
            raise CommandError(f"{options['file']}: no such file.")
        try:
            result = import_rows(read_csv(options["file"]), options["consent"])
        except (ValueError, UnicodeDecodeError) as error:
            raise CommandError(f"{options['file']}: {error}") from None
        self.stdout.write(
            f"{result.added} added, {result.known} already known, "
            f"{result.invalid} invalid (skipped)."
        )
