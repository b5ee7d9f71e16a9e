"""Run by ``tests/test_admin_trust.py`` in a process of its own, with
``DJANGO_SETTINGS_MODULE=tests.customuser.settings``: migrates a fresh SQLite file, then asks
the admin for what staff ask of it, as a superuser of the email-login user model, and prints
what it got as one JSON object."""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.core import checks
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse
    from django.utils import timezone

    from personalization.models import Coupon, ReferralCode, Signup, Visitor

    setup_test_environment()  # templates and contexts recorded, as in a test
    call_command("migrate", verbosity=0, interactive=False)
    now = timezone.now()
    user_model = get_user_model()
    boss = user_model.objects.create_superuser("boss@shop.example", "pw")
    ada = user_model.objects.create_user("ada@example.com", "pw", display_name="Ada")
    bob = user_model.objects.create_user("bob@example.com", "pw", display_name="Bob")
    clerk = user_model.objects.create_user("clerk@shop.example", "pw", is_staff=True)
    analyst = user_model.objects.create_user("analyst@shop.example", "pw", is_staff=True)
    analysts = Group.objects.create(name="Analysts")
    analysts.permissions.add(Permission.objects.get(codename="view_report"))
    analyst.groups.add(analysts)
    for visitor_id, user in (("v-ada", ada), ("v-bob", bob), ("v-none", None)):
        Visitor.objects.create(
            id=visitor_id,
            user=user,
            first_seen=now,
            last_seen=now,
            first_source="direct",
            latest_source="direct",
        )
    for code, user in (("ADA-CODE", ada), ("BOB-CODE", bob)):
        ReferralCode.objects.create(code=code, user=user)
    coupon = Coupon.objects.create(code="WELCOME-ADA", kind=Coupon.PERCENT, value=10)
    Signup.objects.create(email="ada.other@example.com", user=ada, coupon=coupon, consent_at=now)

    def rows(client: Client, path: str, query: str) -> dict[str, Any]:
        response = client.get(path, {"q": query})
        result: dict[str, Any] = {"status": response.status_code}
        if response.status_code == 200:
            result["rows"] = sorted(str(obj) for obj in response.context["cl"].result_list)
        return result

    staff = Client(raise_request_exception=False)
    staff.force_login(boss)
    searched = {
        "visitor": rows(staff, reverse("admin:personalization_visitor_changelist"), "ada@"),
        "referralcode": rows(
            staff, reverse("admin:personalization_referralcode_changelist"), "bob@example"
        ),
        "signup": rows(staff, reverse("admin:personalization_signup_changelist"), "ada@example"),
    }
    # Every changelist of the app with a search: none may fail on this user model.
    every_search = {}
    for model in admin.site._registry:
        if model._meta.app_label != "personalization":
            continue
        url = reverse(f"admin:personalization_{model._meta.model_name}_changelist")
        every_search[model._meta.model_name] = staff.get(url, {"q": "ada"}).status_code

    report = reverse("admin:personalization_report")
    api = reverse("personalization:api-report")
    access = {}
    for name, user in (("superuser", boss), ("staff", clerk), ("staff_in_group", analyst)):
        client = Client(raise_request_exception=False)
        client.force_login(user)
        access[name] = {
            "page": client.get(report).status_code,
            "api": client.get(api).status_code,
            "index_links_report": report in client.get(reverse("admin:index")).text,
        }
    return {
        "user_model": user_model._meta.label,
        "has_username": any(f.name == "username" for f in user_model._meta.get_fields()),
        "visitor_search_fields": admin.site._registry[Visitor].get_search_fields(None),
        "system_check_errors": [
            str(message) for message in checks.run_checks() if message.level >= checks.ERROR
        ],
        "searched": searched,
        "every_search": every_search,
        "report_access": access,
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
