"""Visitor profiles in the admin (read-only)."""

from typing import Any

from django.contrib import admin

from ..models import Visitor
from .base import ReadOnlyAdmin, user_search_fields


@admin.register(Visitor)
class VisitorAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "first_seen",
        "last_seen",
        "visit_count",
        "first_source",
        "latest_source",
        "country_code",
        "device",
        "order_count",
        "total_spent",
        "in_control_group",
        "user",
    ]
    list_filter = ["first_source", "latest_source", "device", "in_control_group", "country_code"]
    search_fields = ["id", "latest_campaign"]
    date_hierarchy = "last_seen"
    list_select_related = ["user"]
    show_full_result_count = False

    def get_search_fields(self, request: Any) -> list[str]:
        # The account's login name and email, as the project's user model names them.
        return [*self.search_fields, *user_search_fields("user")]
