"""The conversion report in Oscar's dashboard menu: added by the app, for staff only, and
the dashboard still renders."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from personalization.contrib.oscar import dashboard

pytestmark = pytest.mark.django_db

REPORT = "/admin/personalization/report/"


@pytest.fixture
def staff(django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(
        "staff", "staff@example.com", "secret", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_report"))
    return user


def test_the_report_is_in_the_dashboard_menu_once(staff, client):
    entries = [
        item for item in settings.OSCAR_DASHBOARD_NAVIGATION
        if item.get("url_name") == "admin:personalization_report"
    ]  # fmt: skip
    assert len(entries) == 1
    assert dashboard.add_navigation_entry() is False  # ready() ran already: not added twice


def test_staff_see_the_entry_and_the_dashboard_renders(staff, client):
    client.force_login(staff)
    page = client.get(reverse("dashboard:index"))
    assert page.status_code == 200
    assert f'href="{REPORT}"' in page.text
    assert reverse("admin:personalization_report") == REPORT
    assert client.get(REPORT).status_code == 200


def test_a_partner_user_in_the_dashboard_does_not_see_it(django_user_model, client):
    from django.contrib.auth.models import Permission

    partner = django_user_model.objects.create_user("partner", "p@example.com", "secret")
    partner.user_permissions.add(Permission.objects.get(codename="dashboard_access"))
    client.force_login(partner)
    page = client.get(reverse("dashboard:index"))
    assert page.status_code == 200
    assert REPORT not in page.text


def test_staff_without_the_report_permission_do_not_see_the_entry(django_user_model):
    clerk = django_user_model.objects.create_user("clerk", "c@example.com", "pw", is_staff=True)
    assert dashboard.report_access(clerk, "admin:personalization_report") is False


def test_the_entry_hides_where_the_admin_is_not_served(staff, settings):
    settings.ROOT_URLCONF = "tests.oscar.urls_without_admin"
    assert dashboard.report_access(staff, "admin:personalization_report") is False


def test_a_shop_that_placed_the_entry_itself_keeps_its_menu(settings):
    own = [
        {"label": "Reports", "children": [{"label": "A/B", "url_name": dashboard.REPORT_URL_NAME}]}
    ]
    settings.OSCAR_DASHBOARD_NAVIGATION = own
    assert dashboard.add_navigation_entry() is False
    assert settings.OSCAR_DASHBOARD_NAVIGATION is own
