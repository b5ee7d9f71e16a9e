"""Storefront pages: home, category, product detail and search."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from shop_demo.views import without_control_characters

from .models import Category, Product

PAGE_SIZE = 12
SORT_OPTIONS = {
    "name": ("Name (A to Z)", ("name",)),
    "-name": ("Name (Z to A)", ("-name",)),
    "price": ("Price (low to high)", ("price", "name")),
    "-price": ("Price (high to low)", ("-price", "name")),
}
DEFAULT_SORT = "name"


def home(request: HttpRequest) -> HttpResponse:
    categories = list(
        Category.objects.annotate(
            product_count=Count("products", filter=Q(products__is_available=True)),
            first_product_id=Min(
                "products__pk", filter=Q(products__is_available=True, products__stock__gt=0)
            ),
        ).order_by("position", "name")  # Meta.ordering is not applied to GROUP BY queries
    )
    # One in-stock product per category, so the shop window shows the whole range.
    first_ids = [c.first_product_id for c in categories if c.first_product_id]
    by_id = Product.objects.select_related("category").in_bulk(first_ids)
    for category in categories:
        category.cover = by_id.get(category.first_product_id)
    featured = [by_id[pk] for pk in first_ids if pk in by_id][:8]
    return render(
        request,
        "catalog/home.html",
        {"categories": categories, "featured_products": featured},
    )


def category_detail(request: HttpRequest, slug: str) -> HttpResponse:
    category = get_object_or_404(Category, slug=slug)
    sort = request.GET.get("sort", DEFAULT_SORT)
    if sort not in SORT_OPTIONS:
        sort = DEFAULT_SORT
    products = category.products.select_related("category").order_by(*SORT_OPTIONS[sort][1])
    page = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "catalog/category.html",
        {
            "category": category,
            "page_obj": page,
            "products": page.object_list,
            "sort": sort,
            "sort_options": [(key, label) for key, (label, _) in SORT_OPTIONS.items()],
        },
    )


def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(Product.objects.select_related("category"), slug=slug)
    related = (
        Product.objects.available()
        .filter(category=product.category)
        .exclude(pk=product.pk)
        .select_related("category")
        .order_by("-stock", "name")[:4]
    )
    return render(
        request,
        "catalog/product_detail.html",
        {"product": product, "category": product.category, "related_products": related},
    )


def search(request: HttpRequest) -> HttpResponse:
    query = without_control_characters(request.GET.get("q", "")).strip()[:100]
    page = None
    if query:
        products = (
            Product.objects.filter(
                Q(name__icontains=query)
                | Q(description__icontains=query)
                | Q(category__name__icontains=query)
            )
            .select_related("category")
            .order_by("-is_available", "name")
        )
        page = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "catalog/search.html",
        {
            "query": query,
            "page_obj": page,
            "products": page.object_list if page else [],
        },
    )
