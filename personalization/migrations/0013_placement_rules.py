import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("personalization", "0012_email_flows_opens_time_zone"),
    ]

    operations = [
        migrations.CreateModel(
            name="PlacementRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("pin", "pin a product to a position"),
                            ("exclude_product", "exclude a product"),
                            ("exclude_category", "exclude a category"),
                            ("boost_category", "boost a category"),
                            ("boost_margin", "boost by margin"),
                            ("min_stock", "minimum stock"),
                        ],
                        max_length=32,
                        verbose_name="rule",
                    ),
                ),
                (
                    "product_key",
                    models.CharField(
                        blank=True,
                        help_text="Pin, exclude a product: the product's key (its primary key).",
                        max_length=64,
                        verbose_name="product",
                    ),
                ),
                (
                    "category_key",
                    models.CharField(
                        blank=True,
                        help_text="Exclude, boost a category: the category's key (its slug).",
                        max_length=100,
                        verbose_name="category",
                    ),
                ),
                (
                    "position",
                    models.PositiveSmallIntegerField(
                        blank=True,
                        help_text="Pin: 1 is the first product shown.",
                        null=True,
                        verbose_name="position",
                    ),
                ),
                (
                    "weight",
                    models.FloatField(
                        blank=True,
                        help_text=(
                            "Boosts: 0 to 10. A boost of w moves a product from position p up "
                            "to about p / (1 + w) at most."
                        ),
                        null=True,
                        validators=[
                            django.core.validators.MinValueValidator(0.0),
                            django.core.validators.MaxValueValidator(10.0),
                        ],
                        verbose_name="weight",
                    ),
                ),
                (
                    "min_stock",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text=(
                            "Minimum stock: products with less are left out (unknown stock is "
                            "kept)."
                        ),
                        null=True,
                        verbose_name="minimum stock",
                    ),
                ),
                (
                    "placement",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rules",
                        to="personalization.placement",
                        verbose_name="placement",
                    ),
                ),
            ],
            options={
                "verbose_name": "merchandising rule",
                "verbose_name_plural": "merchandising rules",
                "ordering": ["placement", "kind", "position", "pk"],
            },
        ),
    ]
