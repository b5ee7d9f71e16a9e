"""manage.py personalization_jobs: run the app's periodic jobs (for cron, or by hand)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from personalization import jobs


class Command(BaseCommand):
    help = (
        "Run the personalization jobs that are due (every few minutes from cron), or the jobs "
        "named. --list shows every job, its schedule and its last run. Each run is idempotent."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="jobs to run now")
        parser.add_argument(
            "--list", action="store_true", help="list the jobs (or those named) and stop"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        unknown = [name for name in options["names"] if name not in jobs.JOBS]
        if unknown:
            raise CommandError(
                f"Unknown job(s): {', '.join(unknown)}. Known: {', '.join(jobs.JOBS)}."
            )
        if options["list"]:
            self.list_jobs(options["names"] or list(jobs.JOBS))
            return
        names = options["names"] or jobs.due()
        if not names:
            self.stdout.write("No job is due.")
            return
        failed = []
        for name in names:
            try:
                result = jobs.run(name)
            except Exception as exc:
                failed.append(name)
                self.stderr.write(f"{name}: failed: {type(exc).__name__}: {exc}")
                continue
            self.stdout.write(f"{name}: done ({_summary(result)})")
        if failed:
            raise CommandError(f"{len(failed)} job(s) failed: {', '.join(failed)}")

    def list_jobs(self, names: list[str]) -> None:
        from personalization.models import JobRun

        rows = {row.name: row for row in JobRun.objects.all()}
        due = set(jobs.due())
        width = max(len(name) for name in names)
        for name in names:
            job = jobs.JOBS[name]
            row = rows.get(name)
            if row is None or row.started_at is None:
                last = "never run"
            else:
                when = timezone.localtime(row.started_at).strftime("%Y-%m-%d %H:%M")
                last = f"last run {when} ({row.get_status_display() or '?'})"
            flag = "  due" if name in due else ""
            self.stdout.write(f"{name:<{width}}  {job.schedule:<17} {last}{flag}")
            self.stdout.write(f"{'':<{width}}  {job.description}")


def _summary(result: Any) -> str:
    if isinstance(result, dict):
        parts = [
            f"{key}={value}" for key, value in result.items() if isinstance(value, int | float)
        ]
        return ", ".join(parts[:6]) or "ok"
    return str(result)
