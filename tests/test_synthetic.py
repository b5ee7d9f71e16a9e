"""The bulk loader of synthetic data writes consistent rows (SQLite path; COPY on PostgreSQL)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from personalization.models import Conversion, Event, Exposure, Visitor

pytestmark = pytest.mark.django_db


def test_it_loads_visitors_exposures_orders_and_clicks_consistently():
    call_command(
        "personalization_synthetic", visitors=300, exposures=3000, orders=120, days=30, seed=3,
        advantage=2.0, stdout=StringIO(),
    )  # fmt: skip
    assert Exposure.objects.count() == 3000
    assert Conversion.objects.filter(kind="purchase").count() == 120
    exposed = set(Exposure.objects.values_list("visitor_id", flat=True))
    assert set(Visitor.objects.values_list("pk", flat=True)) == exposed
    # Control visitors only ever see the default content.
    assert not Exposure.objects.filter(is_control=True).exclude(content="default").exists()
    # Every order and click belongs to a visitor who was exposed before it.
    for conversion in Conversion.objects.all()[:50]:
        assert Exposure.objects.filter(
            visitor_id=conversion.visitor_id, created_at__lte=conversion.created_at
        ).exists()
    assert not Event.objects.filter(exposure__is_control=True).exists()
    # Visits have several page views each; nothing happens in the future.
    assert Exposure.objects.values("visitor_id", "segment").distinct().count() < 1500
    assert not Conversion.objects.filter(created_at__gt=timezone.now()).exists()
    assert not Exposure.objects.filter(created_at__gt=timezone.now()).exists()
    # The advantage shows: personalized visitors order more often per visitor.
    by_group = dict(
        Conversion.objects.values_list("is_control").annotate(n=Count("visitor", distinct=True))
    )
    visitors = dict(Visitor.objects.values_list("in_control_group").annotate(n=Count("id")))
    assert by_group[False] / visitors[False] > by_group.get(True, 0) / max(1, visitors.get(True, 1))


def test_clear_removes_only_synthetic_rows():
    call_command("personalization_synthetic", visitors=50, exposures=200, orders=10, days=5,
                 stdout=StringIO())  # fmt: skip
    call_command("personalization_synthetic", visitors=50, exposures=100, orders=5, days=5,
                 clear=True, stdout=StringIO())  # fmt: skip
    assert Exposure.objects.count() == 100
