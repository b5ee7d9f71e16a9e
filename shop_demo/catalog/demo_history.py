"""A month of made-up shopping history, so that a fresh demo shop has recommendations to show.

Visitors from the demo's countries browse mostly within one favourite department, in visits
of a few product views, put some in the cart and buy some; shoppers in each country lean
towards a few departments, so *popular near you* differs by country. Rows are
``ProductInteraction`` rows with visitor ids starting ``seed-``; they never appear in the
conversion report, which counts exposures.
"""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

# Departments each country's shoppers favour (the demo's GeoIP database covers these).
COUNTRY_TASTES = {
    "DE": ["camping", "hiking", "cycling"],
    "GB": ["coffee-tea", "garden", "books"],
    "US": ["electronics", "fitness", "camping"],
    "SE": ["hiking", "home", "kitchen"],
    "FR": ["kitchen", "coffee-tea", "cycling"],
    "NL": ["cycling", "garden", "home"],
}
COUNTRY_WEIGHTS = {"DE": 40, "GB": 15, "US": 15, "SE": 10, "FR": 10, "NL": 10}


def seed_history(visitors: int = 600, days: int = 30, seed: int = 7) -> int:
    """Write the history once (again only when there is none); returns the rows written."""
    from personalization.models import ProductInteraction

    from .models import Product

    if ProductInteraction.objects.filter(visitor__id__startswith="seed-").exists():
        return 0
    rng = random.Random(seed)
    by_category: dict[str, list[Product]] = {}
    for product in Product.objects.filter(is_available=True).select_related("category"):
        by_category.setdefault(product.category.slug, []).append(product)
    if not by_category:
        return 0
    countries = list(COUNTRY_WEIGHTS)
    weights = list(COUNTRY_WEIGHTS.values())
    now = timezone.now()
    rows = []
    for number in range(visitors):
        vid = f"seed-{number:05d}"
        country = rng.choices(countries, weights)[0]
        tastes = [slug for slug in COUNTRY_TASTES[country] if slug in by_category]
        favourite = rng.choice(tastes or list(by_category))
        for _visit in range(1 + int(rng.expovariate(1.2))):
            at = now - dt.timedelta(seconds=rng.random() * days * 86400)
            shelf = by_category[favourite if rng.random() < 0.8 else rng.choice(list(by_category))]
            # Neighbours on a shelf are looked at together (a tent, then its footprint).
            start = rng.randrange(len(shelf))
            viewed = [shelf[(start + step) % len(shelf)] for step in range(rng.randint(2, 5))]
            for product in viewed:
                rows.append(_row(vid, product, "view", at, country))
                at += dt.timedelta(seconds=rng.randint(20, 180))
            if rng.random() < 0.3:
                basket = viewed[: rng.randint(1, 2)]
                for product in basket:
                    rows.append(_row(vid, product, "cart", at, country))
                if rng.random() < 0.6:
                    for product in basket:
                        rows.append(_row(vid, product, "purchase", at, country))
    ProductInteraction.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _row(visitor_id: str, product, kind: str, at: dt.datetime, country: str):  # type: ignore[no-untyped-def]
    from personalization.models import ProductInteraction

    return ProductInteraction(
        visitor_id=visitor_id,
        product_id=str(product.pk),
        kind=kind,
        created_at=at,
        country=country,
    )
