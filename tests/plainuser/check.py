"""Run by ``tests/test_admin_trust.py`` in a process of its own, with
``DJANGO_SETTINGS_MODULE=tests.plainuser.settings``: a user model without
``is_superuser``. Migrates a fresh SQLite file, has a staff member and a customer see a banner
and buy, computes the report (page, API, rollups) and prints what it got as one JSON object."""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from personalization.models import Conversion, Exposure, Visitor
    from personalization.reports import rollups

    call_command("migrate", verbosity=0, interactive=False)
    now = timezone.now()
    user_model = get_user_model()
    clerk = user_model.objects.create_user("clerk@shop.example", "pw", is_staff=True)
    ada = user_model.objects.create_user("ada@example.com", "pw")
    visitors = (("v-clerk", clerk, False), ("v-ada", ada, False), ("v-bob", None, True))
    for visitor_id, user, control in visitors:
        Visitor.objects.create(
            id=visitor_id, user=user, first_seen=now, last_seen=now, in_control_group=control
        )
        Exposure.objects.create(
            visitor_id=visitor_id,
            placement="home-hero",
            kind="banner",
            content="1",
            is_control=control,
        )
        Conversion.objects.create(
            visitor_id=visitor_id,
            kind=Conversion.PURCHASE,
            order_id=f"o-{visitor_id}",
            revenue=10,
            is_control=control,
        )
    rollups_result = {"ok": True}
    try:
        rollups.refresh()
    except Exception as exc:  # what a shop's job would log
        rollups_result = {"ok": False, "error": repr(exc)}
    staff = Client(raise_request_exception=False)
    staff.force_login(clerk)
    api = staff.get(reverse("personalization:api-report"))
    body = api.json() if api.status_code == 200 else {}
    return {
        "has_is_superuser": any(f.name == "is_superuser" for f in user_model._meta.get_fields()),
        "page": staff.get(reverse("admin:personalization_report")).status_code,
        "api": api.status_code,
        "personalized": body.get("personalized"),
        "control": body.get("control"),
        "rollups": rollups_result,
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
