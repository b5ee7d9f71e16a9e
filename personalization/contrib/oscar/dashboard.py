"""The conversion report in Oscar's dashboard menu, for staff, without the shop editing
OSCAR_DASHBOARD_NAVIGATION."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

REPORT_URL_NAME = "admin:personalization_report"


def report_access(
    user: Any, url_name: str | None = None, url_args: Any = None, url_kwargs: Any = None
) -> bool:
    """An access function in the shape Oscar's menu calls: active staff with the report's
    permission see the entry (what the report itself asks), and only where the shop's URLconf
    serves the admin."""
    from ...reports.views import can_view_report

    if not can_view_report(user):
        return False
    try:
        reverse(url_name or REPORT_URL_NAME, args=url_args, kwargs=url_kwargs)
    except NoReverseMatch:
        return False
    return True


def navigation_entry() -> dict[str, Any]:
    return {
        "label": _("Personalization"),
        "icon": "fas fa-bullseye",
        "url_name": REPORT_URL_NAME,
        "access_fn": report_access,
    }


def add_navigation_entry() -> bool:
    """Append the report to the dashboard menu unless the shop's menu already links it
    anywhere (a shop places it itself by naming ``admin:personalization_report``). The
    setting is replaced, never changed in place: it may be the list of ``oscar.defaults``."""
    navigation = getattr(settings, "OSCAR_DASHBOARD_NAVIGATION", None)
    if not isinstance(navigation, list | tuple) or _links_report(navigation):
        return False
    settings.OSCAR_DASHBOARD_NAVIGATION = [*navigation, navigation_entry()]
    return True


def _links_report(items: Any) -> bool:
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("url_name") == REPORT_URL_NAME or _links_report(item.get("children") or []):
            return True
    return False
