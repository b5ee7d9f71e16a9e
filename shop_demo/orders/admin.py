from django.contrib import admin

from .models import Order, OrderLine


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ["product", "quantity", "unit_price", "line_total"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Line total")
    def line_total(self, obj: OrderLine):
        return obj.line_total


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "created_at",
        "name",
        "email",
        "country",
        "total",
        "currency",
        "status",
        "user",
    ]
    list_filter = ["status", "created_at", "country", "currency"]
    list_select_related = ["user"]
    search_fields = ["number", "email", "name", "city", "user__username"]
    date_hierarchy = "created_at"
    readonly_fields = ["number", "user", "total", "currency", "created_at", "idempotency_key"]
    inlines = [OrderLineInline]
    fieldsets = [
        (None, {"fields": ["number", "status", "created_at", "user"]}),
        ("Customer", {"fields": ["name", "email", "street", "postal_code", "city", "country"]}),
        ("Totals", {"fields": ["total", "currency", "idempotency_key"]}),
    ]

    def has_add_permission(self, request) -> bool:
        return False  # orders come from the checkout


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ["order", "product", "quantity", "unit_price", "line_total"]
    list_select_related = ["order", "product"]
    list_filter = ["product__category", "order__created_at"]
    search_fields = ["order__number", "product__name"]
    readonly_fields = ["order", "product", "quantity", "unit_price"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Line total")
    def line_total(self, obj: OrderLine):
        return obj.line_total
