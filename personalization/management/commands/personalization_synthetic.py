"""manage.py personalization_synthetic: load synthetic visitors, exposures and orders in bulk.

For trying the report at scale and for the report benchmark. Rows are streamed with
PostgreSQL's COPY where available (millions of rows a minute), else bulk inserts. The
personalized side's conversion advantage is explicit (``--advantage``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from personalization.conf import app_settings
from personalization.models import Conversion, Event, Exposure, Visitor
from personalization.profiling.visitor import control_group_bucket

PLACEMENTS = [
    ("home-hero", "banner", ["banner:1", "banner:2", "banner:3", "default"]),
    ("category-top", "banner", ["banner:4", "banner:5", "default"]),
    ("product-related", "recommendation", ["strategy:viewed-together", "strategy:auto"]),
    ("home-for-you", "recommendation", ["strategy:auto"]),
    ("signup-popup", "popup", ["popup"]),
]
SOURCES = ["direct", "search", "search", "social", "email", "campaign", "referral", "other"]
COUNTRIES = ["DE", "DE", "DE", "GB", "FR", "NL", "SE", "US", "AT", "CH", ""]
SEGMENTS = ["", "first-time-visitors", "returning-visitors", "camping-fans", "frequent-buyers"]


class Command(BaseCommand):
    help = "Load synthetic visitors, exposures, clicks and orders in bulk (prefix 'syn-')."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--visitors", type=int, default=100_000)
        parser.add_argument("--exposures", type=int, default=1_000_000)
        parser.add_argument("--orders", type=int, default=50_000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument(
            "--pages", type=float, default=4.0, help="mean exposures per visit after the first"
        )
        parser.add_argument(
            "--advantage",
            type=float,
            default=1.3,
            help="how much likelier personalized visitors order",
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--clear", action="store_true", help="delete earlier synthetic rows")

    def handle(self, *args: Any, **options: Any) -> None:
        if min(options["visitors"], options["exposures"], options["days"]) <= 0:
            raise CommandError("--visitors, --exposures and --days must be positive.")
        rng = random.Random(options["seed"])
        started = time.monotonic()
        if options["clear"]:
            self.clear()
        now = timezone.now()
        first_day = now - dt.timedelta(days=options["days"])
        span = (now - first_day).total_seconds()
        percent = float(app_settings.CONTROL_GROUP_PERCENT)

        ids = [f"syn-{options['seed']}-{i:09d}" for i in range(options["visitors"])]
        control = {vid: control_group_bucket(vid) < percent for vid in ids}
        seen: dict[str, tuple[dt.datetime, dt.datetime]] = {}
        exposures_of: dict[str, list[tuple[dt.datetime, str]]] = {}

        def exposure_rows() -> Iterator[tuple[Any, ...]]:
            # Visits, as real traffic comes: a visitor (a few come often) lands at some
            # moment and sees several pages, a few dozen seconds apart.
            remaining = options["exposures"]
            while remaining > 0:
                vid = ids[int(len(ids) * rng.random() ** 2)]
                at = first_day + dt.timedelta(seconds=rng.random() * span)
                is_control = control[vid]
                segment = rng.choice(SEGMENTS)
                pages = min(remaining, 1 + int(rng.expovariate(1 / options["pages"])))
                remaining -= pages
                for _ in range(pages):
                    placement, kind, contents = rng.choice(PLACEMENTS)
                    content = "default" if is_control else rng.choice(contents)
                    first, last = seen.get(vid, (at, at))
                    seen[vid] = (min(first, at), max(last, at))
                    eid = uuid.uuid4()
                    if len(exposures_of.setdefault(vid, [])) < 4:
                        exposures_of[vid].append((at, str(eid)))
                    yield (eid, vid, placement, kind, content, content, [], [], segment,
                           is_control, at)  # fmt: skip
                    at += dt.timedelta(seconds=rng.expovariate(1 / 40))

        columns = ["id", "visitor_id", "placement", "kind", "content", "content_label", "items",
                   "segments", "segment", "is_control", "created_at"]  # fmt: skip
        written = self.copy(Exposure, columns, exposure_rows())
        self.stdout.write(f"{written:,} exposures ({time.monotonic() - started:.0f}s)")

        visitor_rows: Iterator[tuple[Any, ...]] = (
            (vid, first, last, 1 + int(rng.expovariate(1.0)), rng.choice(SOURCES),
             rng.choice(SOURCES), rng.choice(COUNTRIES), control[vid], "", "", "", "", "", "",
             "", [], {}, {}, 0, Decimal("0"), "desktop", "")
            for vid, (first, last) in seen.items()
        )  # fmt: skip
        visitor_columns = [
            "id", "first_seen", "last_seen", "visit_count", "first_source", "latest_source",
            "country_code", "in_control_group", "first_referrer_host", "first_campaign",
            "latest_referrer_host", "latest_campaign", "referral_code", "region", "city",
            "recently_viewed", "category_interest", "product_views", "order_count",
            "total_spent", "device", "time_zone",
        ]  # fmt: skip
        self.copy(Visitor, visitor_columns, visitor_rows)

        exposed = list(exposures_of)
        weights = [options["advantage"] if not control[v] else 1.0 for v in exposed]
        order_rows: list[tuple[Any, ...]] = []
        click_rows: list[tuple[Any, ...]] = []
        for number, vid in enumerate(rng.choices(exposed, weights=weights, k=options["orders"])):
            at, _eid = rng.choice(exposures_of[vid])
            ordered = at + dt.timedelta(hours=rng.expovariate(1 / 20))
            if ordered > now:  # nothing is ordered in the future
                ordered = at + (now - at) * rng.random()
            revenue = Decimal(rng.randint(900, 25000)) / 100
            order_rows.append((vid, "purchase", "purchase", f"syn-{options['seed']}-{number}",
                               revenue, "EUR", [], control[vid], ordered))  # fmt: skip
        for vid in rng.sample(exposed, k=min(len(exposed), options["orders"] * 2)):
            at, eid = rng.choice(exposures_of[vid])
            if not control[vid]:
                click_rows.append((vid, eid, "click", "", at + dt.timedelta(seconds=20)))
        self.copy(Conversion, ["visitor_id", "kind", "goal", "order_id", "revenue", "currency",
                               "items", "is_control", "created_at"], iter(order_rows))  # fmt: skip
        self.copy(Event, ["visitor_id", "exposure_id", "kind", "product_id", "created_at"],
                  iter(click_rows))  # fmt: skip
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {len(seen):,} visitors, {written:,} exposures, {len(order_rows):,} "
                f"orders and {len(click_rows):,} clicks in {time.monotonic() - started:.0f}s."
            )
        )

    def clear(self) -> None:
        for model in (Event, Conversion, Exposure):
            model._base_manager.filter(visitor__id__startswith="syn-")._raw_delete(connection.alias)
        Visitor.objects.filter(pk__startswith="syn-")._raw_delete(connection.alias)

    def copy(self, model: Any, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
        table = model._meta.db_table
        count = 0
        if connection.vendor == "postgresql":
            sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with transaction.atomic(), connection.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row([_pg(value) for value in row])
                    count += 1
            return count
        batch: list[Any] = []
        for row in rows:
            batch.append(model(**dict(zip(columns, row, strict=True))))
            if len(batch) >= 5000:
                model.objects.bulk_create(batch)
                count += len(batch)
                batch.clear()
        model.objects.bulk_create(batch)
        return count + len(batch)


def _pg(value: Any) -> Any:
    """COPY writes JSON columns as text."""
    return json.dumps(value) if isinstance(value, list | dict) else value
