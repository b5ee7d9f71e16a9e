"""Exposure, event and conversion logs in the admin (read-only)."""

from django.contrib import admin

from ..models import Conversion, Event, Exposure
from .base import ReadOnlyAdmin


@admin.register(Exposure)
class ExposureAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "placement", "kind", "content_label", "segment", "is_control"]
    list_filter = ["kind", "is_control", "placement"]
    search_fields = ["visitor__id", "content", "content_label"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "exposure", "product_id"]
    list_filter = ["kind"]
    search_fields = ["visitor__id", "product_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Conversion)
class ConversionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "goal", "order_id", "revenue", "currency", "is_control"]
    list_filter = ["kind", "goal", "is_control"]
    search_fields = ["order_id", "visitor__id", "goal"]
    date_hierarchy = "created_at"
    show_full_result_count = False
