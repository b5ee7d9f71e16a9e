"""The recommender's input and output in the admin (read-only), with a recompute action."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .. import jobs
from ..models import ProductInteraction, RecommendationList
from .base import ReadOnlyAdmin


@admin.register(ProductInteraction)
class ProductInteractionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "product_id", "quantity"]
    list_filter = ["kind"]
    search_fields = ["visitor__id", "product_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(RecommendationList)
class RecommendationListAdmin(ReadOnlyAdmin):
    list_display = ["name", "key", "length", "computed_at"]
    list_filter = ["name"]
    search_fields = ["key"]
    actions = ["recompute"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The lists served; a fit's lists written aside until its switch are not shown.
        return super().get_queryset(request).filter(fit="")

    @admin.display(description=_("products"))
    def length(self, obj: RecommendationList) -> int:
        return len(obj.items)

    @admin.action(description=_("Recompute every list now"))
    def recompute(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        jobs.enqueue("recommendations")
        self.message_user(
            request,
            _(
                "Recomputing every list (also under Periodic jobs, or "
                "`manage.py personalization_jobs recommendations`)."
            ),
            messages.SUCCESS,
        )
