"""``python manage.py demo_setup``: fill the demo shop with a catalog, images and a GeoIP file.

Idempotent: whatever already exists (categories and products by slug, images, the admin
user, the GeoIP database) is left untouched, so running it twice changes nothing. The one
exception: a product picture that an older version of this command drew (one picture per
department) is drawn anew; a picture uploaded in the admin is never replaced.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from shop_demo.catalog.demo_data import CATEGORIES, product_specs
from shop_demo.catalog.demo_images import is_current_picture, render_product_image
from shop_demo.catalog.demo_targeting import setup_targeting
from shop_demo.catalog.models import Category, Product


class Command(BaseCommand):
    help = (
        "Write the demo GeoIP database, migrate, and create the demo catalog (with generated "
        "images) and admin user."
    )
    # The GeoIP file is written before anything checks for it.
    requires_system_checks: list[str] = []

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        self.setup_geoip()
        call_command("migrate", interactive=False, verbosity=0)
        with transaction.atomic():
            self.setup_catalog()
            new_segments, new_banners = setup_targeting()
        self.stdout.write(
            f"Targeting: {new_segments} new segments, {new_banners} new banners "
            "(edit them in the admin under Personalization)."
        )
        self.setup_recommendations()
        self.setup_admin()
        self.stdout.write(
            self.style.SUCCESS(f"Demo shop ready ({time.monotonic() - started:.1f}s).")
        )

    def setup_recommendations(self) -> None:
        """A month of shopping history, then the recommendation lists fitted on it."""
        from personalization.recommendations import precompute

        from ...demo_history import seed_history

        written = seed_history()
        result = precompute.recompute_all()
        self.stdout.write(
            f"Recommendations: {written} history rows written, {result['lists']} lists "
            f"computed from {result['interactions']} interactions."
        )

    def setup_catalog(self) -> None:
        new_categories = new_products = new_images = 0
        for position, spec in enumerate(CATEGORIES, start=1):
            category, created = Category.objects.get_or_create(
                slug=spec.slug,
                defaults={
                    "name": spec.name,
                    "description": spec.description,
                    "position": position * 10,
                },
            )
            new_categories += created
            existing = {p.slug: p for p in Product.objects.filter(category=category)}
            for item in product_specs(spec):
                product = existing.get(item.slug)
                if product is None:
                    product, created = Product.objects.get_or_create(
                        slug=item.slug,
                        defaults={
                            "name": item.name,
                            "category": category,
                            "price": item.price,
                            "description": item.description,
                            "stock": item.stock,
                            "is_available": item.is_available,
                            "replenishable": item.replenishable,
                        },
                    )
                    new_products += created
                name = f"products/{product.slug}.jpg"
                current = product.image.name if product.image else ""
                if current and current != name and default_storage.exists(current):
                    continue  # a picture of its own, uploaded in the admin
                if default_storage.exists(name) and is_current_picture(name):
                    if current != name:
                        product.image.name = name
                        product.save(update_fields=["image"])
                    continue
                if default_storage.exists(name):  # drawn by an older demo_setup
                    default_storage.delete(name)
                name = default_storage.save(name, ContentFile(render_product_image(item)))
                new_images += 1
                product.image.name = name
                product.save(update_fields=["image"])
        self.stdout.write(
            f"Catalog: {Category.objects.count()} categories ({new_categories} new), "
            f"{Product.objects.count()} products ({new_products} new), {new_images} images drawn."
        )

    def setup_admin(self) -> None:
        if not settings.DEBUG:
            self.stdout.write("DEBUG is off: no demo admin user created.")
            return
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            return
        User.objects.create_superuser("admin", "admin@example.com", "admin")
        self.stdout.write(
            self.style.WARNING("Created demo superuser admin / admin (DEBUG only; do not deploy).")
        )

    def setup_geoip(self) -> None:
        path = getattr(settings, "PERSONALIZATION", {}).get("GEOIP_PATH")
        if not path:
            self.stdout.write("PERSONALIZATION['GEOIP_PATH'] is not set: no GeoIP database.")
            return
        path = Path(path)
        if path.exists():
            return
        if importlib.util.find_spec("personalization.testutils") is None:
            self.stdout.write(
                self.style.WARNING(
                    "personalization.testutils is missing: no demo GeoIP database written."
                )
            )
            return
        from personalization.testutils import DEMO_GEOIP_RECORDS, write_geoip_database

        path.parent.mkdir(parents=True, exist_ok=True)
        write_geoip_database(str(path), DEMO_GEOIP_RECORDS)
        self.stdout.write(f"Wrote the demo GeoIP database to {path}.")
