from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html

from .models import Category, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "position", "product_count"]
    list_editable = ["position"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_product_count=Count("products"))

    @admin.display(description="Products", ordering="_product_count")
    def product_count(self, obj: Category) -> int:
        return obj._product_count


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "thumbnail",
        "name",
        "category",
        "price",
        "stock",
        "is_available",
        "replenishable",
        "created_at",
    ]
    list_display_links = ["thumbnail", "name"]
    list_editable = ["price", "stock", "is_available"]
    list_filter = ["category", "is_available", "replenishable", "created_at"]
    list_select_related = ["category"]
    search_fields = ["name", "slug", "description", "category__name"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "image_preview"]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["name", "slug", "category", "description"]}),
        ("Sales", {"fields": ["price", "stock", "is_available", "replenishable"]}),
        ("Image", {"fields": ["image", "image_preview"]}),
        ("History", {"fields": ["created_at"]}),
    ]

    @admin.display(description="")
    def thumbnail(self, obj: Product) -> str:
        if not obj.image:
            return ""
        return format_html(
            '<img src="{}" alt="" width="40" height="40" style="border-radius:6px">',
            obj.image.url,
        )

    @admin.display(description="Preview")
    def image_preview(self, obj: Product) -> str:
        if not obj.image:
            return "—"
        return format_html(
            '<img src="{}" alt="" width="240" style="border-radius:8px">', obj.image.url
        )
