"""Visitor profiles in the admin (read-only)."""

from django.contrib import admin

from ..models import Visitor
from .base import ReadOnlyAdmin


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
    search_fields = ["id", "user__username", "user__email", "latest_campaign"]
    date_hierarchy = "last_seen"
    list_select_related = ["user"]
    show_full_result_count = False
